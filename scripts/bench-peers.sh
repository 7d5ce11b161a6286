#!/usr/bin/env bash
# Installs the tools `make bench` compares dbinit with, from the package registries, into a
# cache outside the repo (~/.cache/dbinit/bench); a no-op when they are there. Prints the
# cache path. Liquibase is not installed: no registry reachable here ships a runnable one.
set -euo pipefail
cache=${DBINIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dbinit}/bench
mkdir -p "$cache"
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

need=()
for pkg in libssl-dev pkg-config time python3-venv; do dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg"); done
command -v npm >/dev/null || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

# Rust peers (refinery_cli builds native-tls against OpenSSL: a peer's choice, not ours).
[ -x "$cache/cargo/bin/refinery" ] || cargo install -q --locked --root "$cache/cargo" \
  refinery_cli --version 0.10.0 --no-default-features --features postgresql >&2
[ -x "$cache/cargo/bin/sqlx" ] || cargo install -q --locked --root "$cache/cargo" \
  sqlx-cli --version 0.9.0 --no-default-features --features postgres,rustls >&2
# Go peer, as its npm package ships it.
[ -x "$cache/npm/node_modules/.bin/dbmate" ] || npm install -s --prefix "$cache/npm" dbmate@2.36.0 >&2
# Python peer.
if [ ! -x "$cache/venv/bin/alembic" ]; then
  python3 -m venv "$cache/venv"
  "$cache/venv/bin/pip" install -q alembic==1.20.1 psycopg2-binary >&2
fi
echo "$cache"
