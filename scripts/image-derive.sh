#!/usr/bin/env bash
# An image of your own migrations on top of dbinit, without Docker: a Dockerfile such as
# README's two lines (`FROM dbinit:dev` + `COPY migrations /migrations`) built by buildah
# (`buildah build` in a throwaway vfs store, so the shared one's tags stay as `make image` left
# them; COPY needs no container runtime), its first
# FROM taken from the image archive `make image` wrote, so nothing is pulled. Written as an OCI
# archive, which scripts/image-load.sh imports into the node:
#   scripts/image-derive.sh CONTEXT TAG OUT      (CONTEXT holds Dockerfile and migrations/)
#   IMAGE_ARCHIVE=OUT scripts/image-load.sh
#   BASE_ARCHIVE=target/image/dbinit.oci.tar     the dbinit image FROM stands for
# Prints OUT.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=node/lib.sh
. "$here/node/lib.sh"
LOG_TAG=image-derive
[ $# -eq 3 ] || die "usage: $0 CONTEXT TAG OUT_ARCHIVE"
ctx=$1 tag=$2 out=$3
case "$tag" in */*) ;; *) tag=docker.io/library/$tag ;; esac
base=${BASE_ARCHIVE:-$here/../target/image/dbinit.oci.tar}
[ -f "$base" ] || die "no base image archive at $base: run make image"
[ -f "$ctx/Dockerfile" ] || die "no Dockerfile in $ctx"
command -v buildah >/dev/null || apt_install buildah
store=$(mktemp -d "${TMPDIR:-/tmp}/dbinit-derive-XXXXXX")
trap 'rm -rf "$store"' EXIT
b() { buildah --root "$store/root" --runroot "$store/run" --storage-driver vfs "$@"; }
b build -q --pull=never --from "oci-archive:$base" -f "$ctx/Dockerfile" -t "$tag" "$ctx" >/dev/null
mkdir -p "$(dirname "$out")"
rm -f "$out.tmp"
b push -q "$tag" "oci-archive:$out.tmp:$tag"
mv "$out.tmp" "$out"
log "$tag ($ctx) -> $out ($(du -k "$out" | cut -f1) KiB)"
echo "$out"
