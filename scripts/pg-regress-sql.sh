#!/usr/bin/env bash
# PostgreSQL 15's own regression SQL (src/test/regress/sql/*.sql), the corpus that
# tests/splitter.rs splits with dbinit's splitter and with the real PostgreSQL parser
# (pg_query). Fetched once from Debian's postgresql-15 source package and cached outside the
# repo; prints the directory on stdout. A no-op once cached.
set -euo pipefail

cache=${DBINIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dbinit}
dir=$cache/pg15-regress-sql
if [ -f "$dir/.complete" ]; then
  echo "$dir"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Source packages come from the same Debian archive as the machine's binary packages.
if [ -f /etc/apt/sources.list.d/debian.sources ] && ! grep -rqs '^Types: deb-src' /etc/apt/sources.list.d/; then
  sed 's/^Types: deb$/Types: deb-src/' /etc/apt/sources.list.d/debian.sources |
    $sudo tee /etc/apt/sources.list.d/debian-src.sources >/dev/null
  $sudo apt-get update -qq >&2
elif [ -f /etc/apt/sources.list ] && ! grep -qs '^deb-src' /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null; then
  sed -n 's/^deb /deb-src /p' /etc/apt/sources.list | $sudo tee /etc/apt/sources.list.d/debian-src.list >/dev/null
  $sudo apt-get update -qq >&2
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/dbinit-pgsrc-XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"
echo "pg-regress-sql: fetching Debian's postgresql-15 source package (once)" >&2
# Newest first; a version whose source a mirror does not carry (seen: the security archive's)
# falls through to the next one the archive lists.
fetched=""
for ver in $(apt-cache showsrc postgresql-15 | sed -n 's/^Version: //p' | sort -rV | uniq); do
  if apt-get source --download-only "postgresql-15=$ver" >&2; then
    fetched=$ver
    break
  fi
  rm -f postgresql-15_*
done
if [ -z "$fetched" ]; then
  echo "pg-regress-sql: no version of Debian's postgresql-15 source package could be fetched" >&2
  exit 1
fi
origs=(postgresql-15_*.orig.tar.bz2 postgresql-15_*.orig.tar.gz postgresql-15_*.orig.tar.xz)
orig=""
for f in "${origs[@]}"; do [ -f "$f" ] && orig=$f && break; done
[ -n "$orig" ] || { echo "pg-regress-sql: no upstream tarball in the source package" >&2; exit 1; }
tar -xf "$orig" --wildcards --no-anchored 'src/test/regress/sql/*.sql'
dirs=(postgresql-15*/src/test/regress/sql)
found=${dirs[0]}
files=("$found"/*.sql)
count=${#files[@]}
if [ "$count" -lt 100 ]; then
  echo "pg-regress-sql: only $count .sql files in $orig; expected PostgreSQL's regression suite" >&2
  exit 1
fi
rm -rf "$dir.tmp"
mkdir -p "$dir.tmp"
cp "$found"/*.sql "$dir.tmp/"
# The source package's version, so a report can say which 15.x the corpus is.
basename "$orig" >"$dir.tmp/.source"
touch "$dir.tmp/.complete"
rm -rf "$dir"
mv "$dir.tmp" "$dir"
chmod -R a+rX "$dir"
echo "$dir"
