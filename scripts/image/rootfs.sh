#!/usr/bin/env bash
# The image's file tree, in ONE place for both builders: `make image` (buildah, FROM scratch)
# copies it, and the Dockerfile's build stage runs this script and COPYs its output into
# `FROM scratch`. scripts/image/check.py proves the two images agree.
# Usage: rootfs.sh DEST BIN_DIR    (BIN_DIR holds the static dbinit and dbinit-job)
#   /dbinit, /dbinit-job                   static glibc binaries (no loader, no libraries)
#   /etc/passwd, /etc/group                root and nonroot (65532), the user the image runs as
#   /etc/nsswitch.conf                     hosts: files dns
#   /etc/ssl/certs/ca-certificates.crt     CA roots for PostgreSQL/Redis TLS (verify-full)
#   /tmp                                   1777, for a writable emptyDir mount or none
# No /migrations: dbinit reads that directory instead of its built-in set when it exists, so
# a user's `FROM dbinit` + `COPY migrations /migrations` holds exactly the user's files.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
dest=$1 bins=$2
ca=${CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
[ -d "$dest" ] && [ -n "$(ls -A "$dest")" ] && { echo "rootfs.sh: $dest is not empty" >&2; exit 2; }
for b in dbinit dbinit-job; do
  [ -x "$bins/$b" ] || { echo "rootfs.sh: $bins/$b is missing" >&2; exit 2; }
  # FROM scratch has no dynamic loader: refuse a dynamically linked binary.
  # The whole header first: `readelf | grep -q` under pipefail would fail (and let a dynamic
  # binary through) when grep stops at its match and readelf dies of SIGPIPE.
  headers=$(readelf -l "$bins/$b" 2>/dev/null) || true
  if grep -q 'Requesting program interpreter' <<<"$headers"; then
    echo "rootfs.sh: $bins/$b is dynamically linked; build with RUSTFLAGS='-C target-feature=+crt-static'" >&2
    exit 2
  fi
done
[ -f "$ca" ] || { echo "rootfs.sh: no CA bundle at $ca (install ca-certificates)" >&2; exit 2; }
umask 022
mkdir -p "$dest/etc/ssl/certs" "$dest/tmp"
install -m 0755 "$bins/dbinit" "$bins/dbinit-job" "$dest/"
install -m 0644 "$here/passwd" "$here/group" "$here/nsswitch.conf" "$dest/etc/"
install -m 0644 "$ca" "$dest/etc/ssl/certs/ca-certificates.crt"
chmod 1777 "$dest/tmp"
