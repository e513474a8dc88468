#!/usr/bin/env bash
# Runs AgentGate's test suite: `bash scripts/test.sh [swift test arguments...]`
#
# Starts the throwaway PostgreSQL of scripts/postgres-test-server.sh (when that script exists)
# and exports its URL as AGENTGATE_TEST_POSTGRES_URL, so the SessionStore tests run against a
# real PostgreSQL as well as SQLite. Without PostgreSQL those tests fail (they say why), and
# with AGENTGATE_REQUIRE_POSTGRES=1 (CI sets it) a failed start stops the run at once.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${AGENTGATE_TEST_POSTGRES_URL:-}" ] && [ -f scripts/postgres-test-server.sh ]; then
  if url=$(bash scripts/postgres-test-server.sh start); then
    export AGENTGATE_TEST_POSTGRES_URL="$url"
    echo "test.sh: PostgreSQL for tests at $AGENTGATE_TEST_POSTGRES_URL" >&2
  elif [ "${AGENTGATE_REQUIRE_POSTGRES:-0}" = 1 ]; then
    echo "test.sh: could not start the test PostgreSQL (AGENTGATE_REQUIRE_POSTGRES=1)" >&2
    exit 1
  else
    echo "test.sh: no test PostgreSQL; the PostgreSQL tests will fail" >&2
  fi
fi

exec swift test "$@"
