#!/usr/bin/env bash
# Build (once per source change) the two helper images the node needs, FROM scratch with
# buildah (vfs store under the cache dir, no daemon, no registry, no RUN steps), as
# docker-archives under $CACHE/images/ that `ctr images import` takes:
#   $PAUSE_IMAGE    the pod sandbox: pause.c, static (sleeps, reaps zombies, exits on TERM)
#   $TESTBOX_IMAGE  busybox-static + `incluster` (a static Go client that calls the apiserver
#                   with the pod's ServiceAccount token), for the cluster's own checks
# Prints the two archive paths.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=lib.sh
. "$here/lib.sh"
LOG_TAG=aux-images
out=$CACHE/images
mkdir -p "$out"
key=$(cat "$here/pause.c" "$here/incluster/main.go" "$here/incluster/go.mod" "$here/aux-images.sh" /bin/busybox |
  sha256sum | cut -c1-12)
pause_tar=$out/pause-$key.tar
testbox_tar=$out/testbox-$key.tar
if [ -f "$pause_tar" ] && [ -f "$testbox_tar" ]; then
  echo "$pause_tar $testbox_tar"
  exit 0
fi
work=$(mktemp -d "${TMPDIR:-/tmp}/dbinit-aux-images-XXXXXX")
trap 'rm -rf "$work"' EXIT

gcc -static -Os -o "$work/pause" "$here/pause.c"
strip "$work/pause"
(cd "$here/incluster" && CGO_ENABLED=0 GOFLAGS=-mod=mod GOPROXY=off GOCACHE="$CACHE/gocache-small" \
  HOME="$work" go build -trimpath -ldflags='-s -w' -o "$work/incluster" .)

c=$(buildah_ from scratch)
buildah_ copy "$c" "$work/pause" /pause >/dev/null
buildah_ config --entrypoint '["/pause"]' --cmd '[]' --user 65535:65535 "$c"
buildah_ commit -q --rm "$c" "$PAUSE_IMAGE" >/dev/null
buildah_ push -q "$PAUSE_IMAGE" "docker-archive:$pause_tar.tmp:$PAUSE_IMAGE"
mv "$pause_tar.tmp" "$pause_tar"

root=$work/rootfs
mkdir -p "$root/bin" "$root/tmp" "$root/etc" "$root/root"
cp /bin/busybox "$root/bin/busybox"      # Debian busybox-static: statically linked
for a in $(/bin/busybox --list); do [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"; done
cp "$work/incluster" "$root/bin/incluster"
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
echo 'root:x:0:' >"$root/etc/group"
chmod 1777 "$root/tmp"
c=$(buildah_ from scratch)
buildah_ copy "$c" "$root/" / >/dev/null
buildah_ config --cmd '["/bin/sh"]' --env PATH=/bin "$c"
buildah_ commit -q --rm "$c" "$TESTBOX_IMAGE" >/dev/null
buildah_ push -q "$TESTBOX_IMAGE" "docker-archive:$testbox_tar.tmp:$TESTBOX_IMAGE"
mv "$testbox_tar.tmp" "$testbox_tar"
log "built $PAUSE_IMAGE and $TESTBOX_IMAGE"
echo "$pause_tar $testbox_tar"
