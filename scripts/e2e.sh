#!/usr/bin/env bash
# `make e2e`: the end-to-end tests (tests/e2e.rs) with pods a real kubelet starts from the image
# built here. Default: on the one-node cluster — brought up (scripts/cluster-up.sh, idempotent)
# and given the current image (make image, image-load) first; its $DBINIT_NODE_DIR/env is the
# tests' environment. With --kubeconfig FILE: on that cluster instead (e.g. kind), the image
# archive handed to $IMAGE_LOADER (e.g. 'kind load image-archive') when set.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=node/lib.sh
. "$here/node/lib.sh"
LOG_TAG=e2e
cd "$here/.."
image=${IMAGE:-docker.io/library/dbinit:dev}
case "$image" in */*) ;; *) image=docker.io/library/$image ;; esac
if [ "${1:-}" = --kubeconfig ]; then
  [ -f "${2:-}" ] || die "KUBECONFIG=${2:-} is not a file"
  "$here/image.sh" >/dev/null
  if [ -n "${IMAGE_LOADER:-}" ]; then
    "$here/image-load.sh"
  else
    log "no IMAGE_LOADER given: $image must already be on the cluster's nodes"
  fi
  # The node's own settings do not apply there; DBINIT_NODE_IP (where that cluster's pods reach
  # the tests' PostgreSQL/Redis, e.g. the kind network's gateway) is the caller's to give.
  unset DBINIT_NETNS DBINIT_CONTAINERD_SOCK DBINIT_NODE_DIR
  export KUBECONFIG=$2
else
  [ "$(id -u)" -eq 0 ] || die "the one-node cluster needs root; or give a cluster: make e2e KUBECONFIG=... IMAGE_LOADER=..."
  # The image first: its release build takes minutes, and cluster-up (idempotent, seconds)
  # right before the load also brings back a node whose processes died meanwhile.
  "$here/image.sh" >/dev/null
  "$here/cluster-up.sh" >/dev/null
  "$here/image-load.sh"
  # README's `make cluster-check`: the node's basics first, so a broken node fails here, named.
  "$here/cluster-check.sh"
  . "$N/env"
fi
export DBINIT_E2E_IMAGE=$image
export DBINIT_IMAGE_ARCHIVE=$PWD/${IMAGE_ARCHIVE:-target/image/dbinit.oci.tar}
log "cargo test -p dbinit-tests --test e2e (KUBECONFIG=$KUBECONFIG)"
nice -n 5 ${CARGO:-cargo} test -p dbinit-tests --test e2e -- --test-threads=1
