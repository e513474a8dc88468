#!/usr/bin/env bash
# Throwaway PostgreSQL for the SessionStore tests.
#   start: creates (once) and starts a cluster under /tmp/agentgate-pg on 127.0.0.1:55432 with
#          trust auth on loopback and a database agentgate_test; idempotent. Prints the URL as
#          its ONLY stdout line; everything else goes to stderr.
#   stop:  stops it (data stays until /tmp is cleaned; `stop --purge` removes it).
#   restart [SECONDS]: stops it (fast: open connections are cut), waits SECONDS (default 0)
#          and starts it again; prints the URL like start. For the failover tests, which run
#          it on a cluster of their own (AGENTGATE_PG_DIR, AGENTGATE_PG_PORT).
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

# Runs "$@" holding none of this script's descriptors but stdin, stdout and stderr. The
# server pg_ctl starts outlives us and would otherwise keep whatever our caller gave us
# open; Foundation's Process (the tests start this script with it) waits for its socket to
# close, so it would wait for the server to stop.
without_inherited_fds() {
  (
    for fd in /proc/$BASHPID/fd/*; do
      fd=${fd##*/}
      if [ "$fd" -gt 2 ]; then eval "exec $fd>&-"; fi
    done
    "$@"
  )
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
    without_inherited_fds as_pg "$BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w \
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

restart() {
  stop
  sleep "${1:-0}"
  start
}

case "${1:-}" in
  start) start ;;
  stop) shift; stop "${1:-}" ;;
  restart) shift; restart "${1:-0}" ;;
  *) echo "usage: $0 start | stop [--purge] | restart [SECONDS]" >&2; exit 2 ;;
esac
