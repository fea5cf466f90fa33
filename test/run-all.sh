#!/usr/bin/env bash
# The project's test command (`npm test`): unit tests, then the real peers (a search server and an
# OpenTelemetry Collector, started by the scripts in test/peers/), the integration tests against them,
# and the chaos suite. Peers are stopped on exit. Set AC_SKIP_PEERS=1 to run without real peers
# (integration tests then skip with a reason); in CI (CI=true) a peer that fails to start fails the run.
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export AC_CACHE="${AC_CACHE:-$HOME/.cache/authentik-collector}"
mkdir -p "$AC_CACHE" test/.tmp
status=0
peers=()
unit_only=0
[ "${1:-}" = "--unit-only" ] && unit_only=1

stop_peers() {
  for p in "${peers[@]}"; do bash "test/peers/$p.sh" stop >/dev/null 2>&1 || true; done
}
trap stop_peers EXIT

start_peer() { # name -> runs test/peers/<name>.sh start in the background, output in test/.tmp/<name>.env
  local name=$1
  if [ -x "test/peers/$name.sh" ] || [ -f "test/peers/$name.sh" ]; then
    peers+=("$name")
    (bash "test/peers/$name.sh" start >"test/.tmp/$name.env" 2>"test/.tmp/$name.log"; echo $? >"test/.tmp/$name.rc") &
  fi
}

if [ "${AC_SKIP_PEERS:-0}" != "1" ]; then
  start_peer otelcol
  start_peer opensearch
fi

echo "== unit tests"
node --test --test-reporter=spec --test-timeout=300000 \
  'runtime/**/*.test.ts' 'receivers/**/*.test.ts' 'processors/**/*.test.ts' 'exporters/**/*.test.ts' \
  'test/emulator/**/*.test.ts' 'test/kit/**/*.test.ts' 'test/docs/**/*.test.ts' 'bench/**/*.test.ts' || status=1

if [ "${AC_SKIP_PEERS:-0}" != "1" ]; then
  wait
  # Elasticsearch after OpenSearch: two JVMs at once are too much for a 2-core machine while tests run.
  start_peer elasticsearch
  wait
  for p in "${peers[@]}"; do
    rc=$(cat "test/.tmp/$p.rc" 2>/dev/null || echo 1)
    if [ "$rc" != "0" ]; then
      echo "!! peer $p failed to start (exit $rc); its log:" >&2
      tail -n 40 "test/.tmp/$p.log" >&2
      if [ "${CI:-}" = "true" ]; then status=1; fi
    else
      # Each peer script prints KEY=VALUE lines describing where it listens.
      set -a; . "test/.tmp/$p.env"; set +a
      echo "== peer $p up: $(tr '\n' ' ' <"test/.tmp/$p.env")"
    fi
  done
fi

if [ "$unit_only" = "1" ]; then exit $status; fi

if ls test/integration/*.test.ts >/dev/null 2>&1; then
  echo "== integration tests (real peers)"
  node --test --test-reporter=spec --test-concurrency=1 --test-timeout=600000 'test/integration/**/*.test.ts' || status=1
fi

if ls test/chaos/*.test.ts >/dev/null 2>&1; then
  echo "== chaos suite"
  node --test --test-reporter=spec --test-concurrency=1 --test-timeout=900000 'test/chaos/**/*.test.ts' || status=1
fi

exit $status
