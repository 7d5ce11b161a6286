#!/usr/bin/env bash
# `make demo`: a throwaway PostgreSQL + Redis on free ports in a temp dir, then the main job
# (`dbinit run`) against them, twice: the first run does the work, the second is a no-op.
# Everything is stopped and removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

bin=${DBINIT_BIN:-target/release/dbinit}
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n1)
work=$(mktemp -d /tmp/dbinit-demo-XXXXXX)
chmod 755 "$work"
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

pg_port=$(free_port)
redis_port=$(free_port)
password="demo-$(od -An -N8 -tx8 /dev/urandom | tr -d ' ')"

cleanup() {
  as_pg "$pgbin/pg_ctl" -D "$work/pg" -m fast stop >/dev/null 2>&1 || true
  [ -n "${redis_pid:-}" ] && kill "$redis_pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

echo "== throwaway PostgreSQL on 127.0.0.1:$pg_port and Redis on 127.0.0.1:$redis_port (in $work)"
printf '%s' "$password" > "$work/pw"
[ "$(id -u)" -eq 0 ] && chown postgres "$work" "$work/pw"
as_pg "$pgbin/initdb" -D "$work/pg" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
  --pwfile="$work/pw" -E UTF8 --locale=C -N >/dev/null
as_pg "$pgbin/pg_ctl" -D "$work/pg" -l "$work/pg.log" -w \
  -o "-p $pg_port -k $work -c listen_addresses=127.0.0.1" start >/dev/null
redis-server --port "$redis_port" --bind 127.0.0.1 --save '' --appendonly no \
  --requirepass "$password" >"$work/redis.log" 2>&1 &
redis_pid=$!

export POSTGRES_HOST=127.0.0.1 POSTGRES_PORT=$pg_port POSTGRES_USER=postgres
export POSTGRES_PASSWORD_FILE=$work/pw POSTGRES_DB=agentic_deals
export REDIS_HOST=127.0.0.1 REDIS_PORT=$redis_port REDIS_PASSWORD_FILE=$work/pw
export DBINIT_TIMEOUT=30s DBINIT_TERMINATION_MESSAGE_PATH=$work/termination-log

cmd=${DEMO_COMMAND:-run}
echo "== $bin $cmd"
"$bin" "$cmd"
echo "== termination message: $(cat "$work/termination-log")"
if [ "$cmd" = run ]; then
  echo "== second run (every pod start after the first pays only this)"
  "$bin" "$cmd"
  echo "== $bin status"
  "$bin" status
  echo "== tables in agentic_deals"
  PGPASSWORD=$password psql -X -h 127.0.0.1 -p "$pg_port" -U postgres -d agentic_deals -c '\dt'
fi
