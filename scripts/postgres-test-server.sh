#!/usr/bin/env bash
# Throwaway PostgreSQL for the SessionStore tests.
#   start: creates (once) and starts a cluster under /tmp/agentgate-pg on 127.0.0.1:55432 with
#          trust auth on loopback and a database agentgate_test; idempotent. Prints the URL as
#          its ONLY stdout line; everything else goes to stderr.
#   stop:  stops it (data stays until /tmp is cleaned; `stop --purge` removes it).
# We run as root in CI, and PostgreSQL refuses to run as root, so the cluster belongs to
# the `postgres` OS user.
set -euo pipefail

DIR=${AGENTGATE_PG_DIR:-/tmp/agentgate-pg}
PORT=${AGENTGATE_PG_PORT:-55432}
DB=agentgate_test
BIN=${AGENTGATE_PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)}
URL="postgres://postgres@127.0.0.1:${PORT}/${DB}"

log() { echo "postgres-test-server: $*" >&2; }

as_pg() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

start() {
  [ -x "$BIN/initdb" ] || { log "no initdb under $BIN; install postgresql (apt-get install postgresql)"; exit 1; }
  mkdir -p "$DIR"
  [ "$(id -u)" = 0 ] && chown postgres: "$DIR"
  if [ ! -f "$DIR/data/PG_VERSION" ]; then
    log "initdb in $DIR/data"
    as_pg "$BIN/initdb" -D "$DIR/data" -U postgres --auth=trust --no-sync >&2
  fi
  if as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
    log "already running"
  else
    log "starting on 127.0.0.1:$PORT (log: $DIR/server.log)"
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
      -o "-p $PORT -k $DIR -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200" start >&2
  fi
  if ! as_pg "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -tAc \
      "SELECT 1 FROM pg_database WHERE datname = '$DB'" | grep -q 1; then
    log "creating database $DB"
    as_pg "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U postgres "$DB" >&2
  fi
  echo "$URL"
}

stop() {
  if [ -f "$DIR/data/PG_VERSION" ] && as_pg "$BIN/pg_ctl" -D "$DIR/data" status >/dev/null 2>&1; then
    as_pg "$BIN/pg_ctl" -D "$DIR/data" -m fast -w stop >&2
  else
    log "not running"
  fi
  if [ "${1:-}" = "--purge" ]; then rm -rf "$DIR"; log "removed $DIR"; fi
}

case "${1:-}" in
  start) start ;;
  stop) shift; stop "${1:-}" ;;
  *) echo "usage: $0 start | stop [--purge]" >&2; exit 2 ;;
esac
