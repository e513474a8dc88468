#!/usr/bin/env bash
# Gateway benchmark: `bash scripts/bench-gateway.sh [SECONDS-PER-RUN]`
#
# Builds GatewayBenchmark in release mode and runs it: direct to nginx, through nginx
# proxy_pass, and through the gateway (auth, recording, masking on), for small GETs and a
# 1 MiB LIST with 1 and 64 clients. Needs Debian's nginx and wrk (installed when missing).
# Not run by CI: figures depend on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! command -v wrk >/dev/null || [ ! -x /usr/sbin/nginx ]; then
  SUDO=""; [ "$(id -u)" != 0 ] && SUDO="sudo"
  $SUDO apt-get update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends nginx wrk
fi
# A scratch path of its own: a release build does not invalidate the debug one in .build.
swift build -c release --scratch-path .build-release --product GatewayBenchmark
exec .build-release/release/GatewayBenchmark "${1:-5}"
