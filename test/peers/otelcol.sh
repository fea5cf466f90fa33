#!/usr/bin/env bash
# Builds, starts and stops the real OpenTelemetry Collector the OTLP tests talk to.
#
#   test/peers/otelcol.sh build          build once into the cache, print the binary path
#   test/peers/otelcol.sh start          start on a free loopback port (or $OTELCOL_PORT), print env lines
#   test/peers/otelcol.sh stop [DIR]     stop the instance started in DIR ($OTELCOL_DIR, else the last one)
#   test/peers/otelcol.sh url  [DIR]     print the OTLP/HTTP base URL of that instance
#
# The binary is cached at ${AC_CACHE:-$HOME/.cache/authentik-collector}/otelcol-<hash>, where <hash>
# covers go.mod, go.sum and main.go: a change to any of them builds a new binary, otherwise the build
# step is a no-op. Go modules come from the Go module proxy into the default GOMODCACHE.
#
# `start` prints, one per line:
#   OTELCOL_OTLP_URL=http://127.0.0.1:PORT   base URL (POST /v1/logs)
#   OTELCOL_OUTPUT=/tmp/.../output.json      what the file exporter writes (one OTLP/JSON request per line)
#   OTELCOL_DIR=/tmp/...                     instance directory (config, log, pid)
#   OTELCOL_PID=1234
# so `eval "$(test/peers/otelcol.sh start)"; export OTELCOL_OTLP_URL OTELCOL_OUTPUT OTELCOL_DIR` works.
#
# `start` options (environment):
#   OTELCOL_PORT=N              listen on this port instead of a free one
#   OTELCOL_EXPORTERS=debug     pipeline exporters (default "file,debug"); without `file` nothing is
#                               written and OTELCOL_OUTPUT is not printed (used by bench/otlp.ts)
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
SRC="$HERE/otelcol"
CACHE="${AC_CACHE:-$HOME/.cache/authentik-collector}"
LAST="$CACHE/otelcol-last-instance-$(cd "$HERE/../.." && pwd -P | sha256sum | cut -c1-12)"

log() { echo "otelcol.sh: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

binary_path() {
  local hash
  hash="$(cat "$SRC/go.mod" "$SRC/go.sum" "$SRC/main.go" | sha256sum | cut -c1-16)"
  echo "$CACHE/otelcol-$hash"
}

cmd_build() {
  local bin
  bin="$(binary_path)"
  if [[ -x "$bin" ]]; then
    echo "$bin"
    return 0
  fi
  command -v go >/dev/null || die "Go is not installed (needed once to build the collector peer)"
  mkdir -p "$CACHE"
  # One build at a time per cache; a second caller waits and then finds the binary.
  exec 9>"$CACHE/otelcol-build.lock"
  flock 9
  if [[ ! -x "$bin" ]]; then
    log "building the collector peer into $bin (first build downloads modules; may take minutes)"
    local start=$SECONDS tmp="$bin.tmp.$$"
    (cd "$SRC" && GOFLAGS=-mod=mod CGO_ENABLED=0 go build -trimpath -o "$tmp" .) || {
      rm -f "$tmp"
      die "go build failed in $SRC"
    }
    mv "$tmp" "$bin"
    log "built in $((SECONDS - start)) s"
  fi
  flock -u 9
  exec 9>&-
  echo "$bin"
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

# Succeeds once something answers HTTP on the port (the OTLP receiver answers GET /v1/logs with 405).
port_answers() {
  node -e '
    const req = require("http").get({ host: "127.0.0.1", port: Number(process.argv[1]), path: "/v1/logs", timeout: 500 },
      (res) => { res.resume(); process.exit(0); });
    req.on("error", () => process.exit(1));
    req.on("timeout", () => { req.destroy(); process.exit(1); });' "$1"
}

cmd_start() {
  local bin dir port out pid
  bin="$(cmd_build)"
  local exporters="${OTELCOL_EXPORTERS:-file,debug}"
  [[ "$exporters" =~ ^(file|debug)(,(file|debug))*$ ]] || die "OTELCOL_EXPORTERS must list file and/or debug"
  exporters="${exporters//,/, }"
  dir="$(mktemp -d "${TMPDIR:-/tmp}/otelcol-peer.XXXXXX")"
  out="$dir/output.json"
  for attempt in 1 2 3; do
    port="${OTELCOL_PORT:-$(free_port)}"
    cat >"$dir/config.yaml" <<EOF
receivers:
  otlp:
    protocols:
      http:
        endpoint: 127.0.0.1:$port
exporters:
  file:
    path: $out
    format: json
    flush_interval: 100ms
  debug:
    verbosity: basic
service:
  telemetry:
    logs:
      level: info
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [otlp]
      exporters: [$exporters]
EOF
    "$bin" --config "$dir/config.yaml" >"$dir/otelcol.log" 2>&1 &
    pid=$!
    echo "$pid" >"$dir/pid"
    echo "$port" >"$dir/port"
    for _ in $(seq 1 100); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      if port_answers "$port"; then
        mkdir -p "$CACHE"
        echo "$dir" >"$LAST"
        echo "OTELCOL_OTLP_URL=http://127.0.0.1:$port"
        [[ "$exporters" == *file* ]] && echo "OTELCOL_OUTPUT=$out"
        echo "OTELCOL_DIR=$dir"
        echo "OTELCOL_PID=$pid"
        return 0
      fi
      sleep 0.1
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    log "collector did not come up on port $port (attempt $attempt); log:"
    tail -n 20 "$dir/otelcol.log" >&2 || true
    [[ -z "${OTELCOL_PORT:-}" ]] || break # a fixed port will not get better
  done
  die "could not start the collector peer (see $dir/otelcol.log)"
}

instance_dir() {
  local dir="${1:-${OTELCOL_DIR:-}}"
  if [[ -z "$dir" && -f "$LAST" ]]; then dir="$(cat "$LAST")"; fi
  [[ -n "$dir" && -d "$dir" ]] || die "no collector instance found (pass its directory or set OTELCOL_DIR)"
  echo "$dir"
}

cmd_stop() {
  local dir pid
  dir="$(instance_dir "${1:-}")"
  if [[ -f "$dir/pid" ]]; then
    pid="$(cat "$dir/pid")"
    if kill -0 "$pid" 2>/dev/null; then
      kill -TERM "$pid"
      for _ in $(seq 1 50); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
      done
      kill -0 "$pid" 2>/dev/null && kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  if [[ -f "$LAST" && "$(cat "$LAST")" == "$dir" ]]; then rm -f "$LAST"; fi
  rm -rf "$dir"
  log "stopped ($dir removed)"
}

cmd_url() {
  local dir
  dir="$(instance_dir "${1:-}")"
  echo "http://127.0.0.1:$(cat "$dir/port")"
}

case "${1:-}" in
  build) cmd_build ;;
  start) cmd_start ;;
  stop) cmd_stop "${2:-}" ;;
  url) cmd_url "${2:-}" ;;
  *)
    echo "usage: $0 {build|start|stop [DIR]|url [DIR]}" >&2
    exit 2
    ;;
esac
