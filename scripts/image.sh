#!/usr/bin/env bash
# `make image`: the dbinit image without Docker or a registry. Static glibc binaries
# (scripts/image/build-bins.sh), the tree from
# scripts/image/rootfs.sh, buildah FROM scratch with a vfs store under the cache dir and no RUN
# steps; written as an OCI archive (default target/image/dbinit.oci.tar) and checked against
# the Dockerfile (scripts/image/check.py). Prints the archive path.
#   IMAGE=docker.io/library/dbinit:dev  IMAGE_ARCHIVE=target/image/dbinit.oci.tar
#   IMAGE_OPT_LEVEL=s|z|3               the release profile's opt-level (build-bins.sh)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=node/lib.sh
. "$here/node/lib.sh"
LOG_TAG=image
cd "$here/.."
image=${IMAGE:-docker.io/library/dbinit:dev}
case "$image" in */*) ;; *) image=docker.io/library/$image ;; esac
archive=${IMAGE_ARCHIVE:-target/image/dbinit.oci.tar}
target=x86_64-unknown-linux-gnu
command -v buildah >/dev/null || apt_install buildah
command -v readelf >/dev/null || apt_install binutils
[ -f /etc/ssl/certs/ca-certificates.crt ] || apt_install ca-certificates

log "cargo build --release --target $target (static glibc, opt-level ${IMAGE_OPT_LEVEL:-s})"
nice -n 10 "$here/image/build-bins.sh"
bins=target/$target/release

work=$(mktemp -d "${TMPDIR:-/tmp}/dbinit-image-XXXXXX")
trap 'rm -rf "$work"' EXIT
"$here/image/rootfs.sh" "$work/rootfs" "$bins"

c=$(buildah_ from scratch)
buildah_ copy "$c" "$work/rootfs/" / >/dev/null
buildah_ config --entrypoint '["/dbinit"]' --cmd '[]' --user 65532:65532 \
  --label org.opencontainers.image.title=dbinit "$c"
buildah_ commit -q --rm "$c" "$image" >/dev/null
mkdir -p "$(dirname "$archive")"
rm -f "$archive.tmp"
buildah_ push -q "$image" "oci-archive:$archive.tmp:$image"
mv "$archive.tmp" "$archive"
# Drop the store's older, now untagged builds of the image.
buildah_ rmi --prune >/dev/null 2>&1 || true
python3 "$here/image/check.py" --dockerfile Dockerfile --archive "$archive" --bins "$bins" >&2
log "$image -> $archive ($(du -k "$archive" | cut -f1) KiB archive; $(python3 "$here/image/check.py" --size "$archive"))"
echo "$archive"
