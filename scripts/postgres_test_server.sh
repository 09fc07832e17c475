#!/usr/bin/env bash
# A private PostgreSQL server for the PostgreSQL tests and benchmarks (never the system one):
#   scripts/postgres_test_server.sh start   # prints the DSN to export as NORTHSTAR_TEST_POSTGRES_DSN
#   scripts/postgres_test_server.sh stop
# PGPORT (default 55432) and PGROOT (default /tmp/northstar-pg) choose the port and the
# cluster folder. PostgreSQL refuses to run as root, so as root the cluster belongs to and
# runs as the `postgres` user (Debian's package creates it).
set -euo pipefail
PORT="${PGPORT:-55432}"
ROOT="${PGROOT:-/tmp/northstar-pg}"
USER_NAME=northstar
PASSWORD=northstar
DB=northstar
BIN="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)"
[ -x "$BIN/initdb" ] || BIN="$(dirname "$(command -v initdb)")"

as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "${1:-start}" in
  start)
    if [ ! -f "$ROOT/data/PG_VERSION" ]; then
      mkdir -p "$ROOT"
      [ "$(id -u)" -eq 0 ] && chown postgres: "$ROOT"
      printf '%s\n' "$PASSWORD" > "$ROOT/.pw"
      [ "$(id -u)" -eq 0 ] && chown postgres: "$ROOT/.pw"
      as_owner "$BIN/initdb" -D "$ROOT/data" -U "$USER_NAME" --pwfile="$ROOT/.pw" -A scram-sha-256 \
        -E UTF8 --locale=C.UTF-8 >/dev/null
    fi
    if ! as_owner "$BIN/pg_ctl" -D "$ROOT/data" status >/dev/null 2>&1; then
      # Small, unsafe-on-crash settings: a test server holds nothing worth a fsync.
      as_owner "$BIN/pg_ctl" -D "$ROOT/data" -l "$ROOT/server.log" -w start -o \
        "-p $PORT -k $ROOT -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c timezone=UTC -c max_connections=100" >/dev/null
    fi
    PGPASSWORD="$PASSWORD" psql -h 127.0.0.1 -p "$PORT" -U "$USER_NAME" -d postgres -tAc \
      "select 1 from pg_database where datname = '$DB'" | grep -q 1 \
      || PGPASSWORD="$PASSWORD" psql -h 127.0.0.1 -p "$PORT" -U "$USER_NAME" -d postgres -qc "create database $DB"
    echo "postgresql://$USER_NAME:$PASSWORD@127.0.0.1:$PORT/$DB"
    ;;
  stop)
    as_owner "$BIN/pg_ctl" -D "$ROOT/data" -m fast -w stop >/dev/null 2>&1 || true
    ;;
  *)
    echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
