#!/usr/bin/env bash
# The other teams' migration tools, installed from their registries for the acceptance tests
# (tests/layouts.rs: real `sqlx migrate add/run`, `dbmate new/up/status`) into a cache outside
# the repo (~/.cache/dbinit/tools, shared with tools.md's spike); a no-op when they are there.
# Prints the cache path; the tests find each tool under it (tests/harness/tools.rs).
#
#   tools/cargo/bin/sqlx       sqlx-cli 0.9.0 from crates.io (postgres + rustls only). Built
#                              from source, unoptimised (the tests run it, `make bench` builds
#                              its own optimised peers): ~4 min on 2 cores the first time.
#   tools/npm/node_modules/.bin/dbmate   dbmate 2.36.0 from npm (a static Go binary), ~6 s.
#   tools/venv/bin/{alembic,python}      Alembic 1.20.1, SQLAlchemy, psycopg2-binary and
#                              Django 5.x from PyPI, for tool mode's tests (#21), ~1 min.
# golang-migrate, Prisma and Flyway have no CLI installable here (no Go proxy; Prisma's engines
# and Flyway's JVM download at run time): tool mode unit-tests their file rules from source.
set -euo pipefail
cache=${DBINIT_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/dbinit}/tools
mkdir -p "$cache"
# One installer at a time (two tiers, or two worktrees, may ask at once); the others wait and
# then find the tools there.
exec 9>"$cache.lock"
flock 9
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

need=()
command -v npm >/dev/null || need+=(npm)
python3 -c 'import venv, ensurepip' 2>/dev/null || need+=(python3-venv)
if [ ${#need[@]} -gt 0 ]; then
  echo "migration-tools: installing ${need[*]}" >&2
  $sudo apt-get update -qq >&2
  $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >&2
fi

if [ ! -x "$cache/cargo/bin/sqlx" ]; then
  echo "migration-tools: building sqlx-cli 0.9.0 (once, ~4 min on 2 cores)" >&2
  nice cargo install -q --locked --debug --root "$cache/cargo" sqlx-cli --version 0.9.0 \
    --no-default-features --features postgres,rustls >&2
fi
if [ ! -x "$cache/npm/node_modules/.bin/dbmate" ]; then
  echo "migration-tools: installing dbmate 2.36.0 from npm" >&2
  npm install -s --no-audit --no-fund --prefix "$cache/npm" dbmate@2.36.0 >&2
fi
if ! "$cache/venv/bin/python" -c 'import alembic, sqlalchemy, psycopg2, django' 2>/dev/null; then
  echo "migration-tools: installing Alembic, SQLAlchemy, psycopg2-binary and Django from PyPI" >&2
  python3 -m venv "$cache/venv" >&2
  "$cache/venv/bin/pip" install -q 'alembic==1.20.1' sqlalchemy psycopg2-binary 'django>=5,<6' >&2
fi
echo "$cache"
