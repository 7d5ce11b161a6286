#!/usr/bin/env bash
# `make image-load`: import the image archive (make image) into the cluster's containerd (CRI
# namespace k8s.io; both nodes' when there are two), where the kubelet finds it without
# pulling. With IMAGE_LOADER set, hand the archive to that command instead, e.g.
# IMAGE_LOADER='kind load image-archive' for a kind cluster.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=node/lib.sh
. "$here/node/lib.sh"
LOG_TAG=image-load
cd "$here/.."
archive=${IMAGE_ARCHIVE:-target/image/dbinit.oci.tar}
[ -f "$archive" ] || die "no image archive at $archive: run make image"
if [ -n "${IMAGE_LOADER:-}" ]; then
  log "$IMAGE_LOADER $archive"
  $IMAGE_LOADER "$archive"
  exit 0
fi
running containerd || die "the node's containerd is not running ($N): run make cluster-up"
ctr_k8s images import "$archive" >/dev/null
log "imported $archive: $(ctr_k8s images ls -q | grep -v '^sha256:' | tr '\n' ' ')"
# The second node, when there is one, gets the same image.
if [ -f "$N2/netns" ]; then
  select_node2
  running containerd || die "the second node's containerd is not running ($N): run make cluster-up"
  ctr_k8s images import "$archive" >/dev/null
  log "imported $archive into the second node ($NS)"
fi
