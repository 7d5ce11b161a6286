#!/usr/bin/env bash
# Installs what the tests and the demo need on a Debian machine, only what is missing:
# PostgreSQL server binaries (initdb, pg_ctl, postgres), psql, redis-server.
set -euo pipefail

need=()
compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || need+=(postgresql)
command -v psql >/dev/null || need+=(postgresql-client)
command -v redis-server >/dev/null || [ -x /usr/bin/redis-server ] || need+=(redis-server)
command -v runuser >/dev/null || need+=(util-linux)
command -v curl >/dev/null || need+=(curl)
command -v openssl >/dev/null || need+=(openssl)
# The splitter's test oracle (pg_query: libpg_query through bindgen) needs libclang.
dpkg -s libclang-dev >/dev/null 2>&1 || need+=(libclang-dev)
# tests/lint.rs checks `dbinit lint --output json` against its JSON Schema with a real validator.
python3 -c 'import jsonschema' 2>/dev/null || need+=(python3-jsonschema)
# The pooler tests run a real PgBouncer.
[ -x /usr/sbin/pgbouncer ] || need+=(pgbouncer)
# docs/reviewing.md's CI gate reads `dbinit status --output json` with jq, and a test runs it.
command -v jq >/dev/null || need+=(jq)

if [ ${#need[@]} -eq 0 ]; then
  exit 0
fi
echo "deps: installing ${need[*]}" >&2
sudo=""
if [ "$(id -u)" -ne 0 ]; then sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
# Debian starts the packaged services; tests start their own servers on free ports.
for svc in postgresql redis-server; do
  $sudo systemctl stop "$svc" 2>/dev/null || $sudo service "$svc" stop 2>/dev/null || true
done
