#!/usr/bin/env bash
# A real two-node OpenSearch cluster on loopback, for failover tests of the elasticsearch exporter.
#
#   test/peers/opensearch-cluster.sh start          start both nodes (or find them running), wait until the
#                                                   cluster has 2 nodes and is green, print KEY=VALUE lines
#   test/peers/opensearch-cluster.sh stop           stop both nodes and remove the instance directory
#   test/peers/opensearch-cluster.sh status         "running <urls>" (exit 0), "degraded …" or "stopped" (exit 1)
#   test/peers/opensearch-cluster.sh urls           print the comma-separated HTTP URLs
#   test/peers/opensearch-cluster.sh kill-node N    kill -9 node N (1 or 2): a crash, nothing is shut down
#   test/peers/opensearch-cluster.sh start-node N   start node N again (same data directory), wait for 2 nodes
#
# Node 1 is cluster-manager-eligible and holds data; node 2 holds data only. A cluster keeps a cluster
# manager only while a majority of its manager-eligible nodes is up, so a two-node cluster can survive the
# loss of one node only when that node is not manager-eligible: kill node 2 to test failover (killing
# node 1 leaves node 2 answering 503 "cluster_manager_not_discovered" on writes, which is also a test).
# Indices get one replica by default, so with both nodes up every shard has a copy on each node.
#
# The zip is the one test/peers/searchserver.sh caches (`searchserver.sh opensearch fetch`, same
# OPENSEARCH_VERSION). One unpacked distribution serves both nodes, each with its own config, data and
# logs directory (OPENSEARCH_PATH_CONF) under one instance directory ${TMPDIR:-/tmp}/ac-oscluster.XXXXXX.
# State is kept per checkout in $AC_CACHE/peers/opensearch-cluster-<checkout>.state (several clones or
# worktrees on one machine each get their own cluster), guarded by a lock.
#
# Environment: AC_CACHE (default ~/.cache/authentik-collector), AC_CLUSTER_HEAP (per node, default
# "-Xms256m -Xmx384m"), AC_PEER_TIMEOUT (seconds to wait for the cluster, default 180), JAVA_HOME (used
# when its version fits, else a fitting JDK under /usr/lib/jvm), OPENSEARCH_VERSION (default 2.19.6).
# Ports: free ones, chosen at start (two HTTP, two transport).
#
# OpenSearch refuses to run as root: as root the nodes run as `nobody` (setpriv), each in its own session.
set -euo pipefail

CMD="${1:-}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
CACHE="${AC_CACHE:-$HOME/.cache/authentik-collector}"
PEERS="$CACHE/peers"
TIMEOUT="${AC_PEER_TIMEOUT:-180}"
HEAP="${AC_CLUSTER_HEAP:--Xms256m -Xmx384m}"
VERSION="${OPENSEARCH_VERSION:-2.19.6}"
CHECKOUT_KEY="$(cd "$HERE/../.." && pwd -P | sha256sum | cut -c1-12)"
STATE="$PEERS/opensearch-cluster-$CHECKOUT_KEY.state"
LOCK="$PEERS/opensearch-cluster-$CHECKOUT_KEY.lock"
PREFIX="${TMPDIR:-/tmp}/ac-oscluster."

log() { echo "opensearch-cluster.sh: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# The JDK is chosen by searchserver.sh, with the same version rules as the single-node peer.
find_java() { OPENSEARCH_VERSION="$VERSION" bash "$HERE/searchserver.sh" opensearch java; }

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

read_state() {
  DIR="" HOME_DIR="" JAVA="" HTTP1="" HTTP2="" TRANSPORT1="" TRANSPORT2=""
  [[ -f "$STATE" ]] || return 1
  # shellcheck disable=SC1090
  . "$STATE"
  DIR="${STATE_DIR:-}"
  HOME_DIR="${STATE_HOME:-}"
  JAVA="${STATE_JAVA:-}"
  HTTP1="${STATE_HTTP1:-}"
  HTTP2="${STATE_HTTP2:-}"
  TRANSPORT1="${STATE_TRANSPORT1:-}"
  TRANSPORT2="${STATE_TRANSPORT2:-}"
  [[ -n "$DIR" ]]
}

write_state() {
  printf 'STATE_DIR=%s\nSTATE_HOME=%s\nSTATE_JAVA=%s\nSTATE_HTTP1=%s\nSTATE_HTTP2=%s\nSTATE_TRANSPORT1=%s\nSTATE_TRANSPORT2=%s\n' \
    "$DIR" "$HOME_DIR" "$JAVA" "$HTTP1" "$HTTP2" "$TRANSPORT1" "$TRANSPORT2" >"$STATE"
}

url_of() { # node
  local p
  if [[ "$1" == 1 ]]; then p="$HTTP1"; else p="$HTTP2"; fi
  echo "http://127.0.0.1:$p"
}

# Pid of node N: from its pid file, else the java process whose command line names its config directory.
node_pid() {
  local nd="$DIR/node$1" p="" c
  [[ -s "$nd/pid" ]] && p="$(cat "$nd/pid")"
  if [[ -z "$p" ]]; then
    for c in $(pgrep -f -- "$nd/config" || true); do
      if [[ "$(cat "/proc/$c/comm" 2>/dev/null)" == java ]]; then
        p="$c"
        break
      fi
    done
  fi
  # Alive and still ours (a recycled pid is not).
  if [[ -n "$p" ]] && kill -0 "$p" 2>/dev/null && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -qF "$nd/config"; then
    echo "$p"
  fi
}

answers() { # url
  curl -fsS -m 3 "$1/" >/dev/null 2>&1
}

# Both nodes joined and every shard allocated.
cluster_ready() {
  curl -fsS -m 5 "$(url_of 1)/_cluster/health?wait_for_nodes=2&wait_for_status=green&timeout=3s" >/dev/null 2>&1
}

write_node_config() { # node
  local n="$1" nd="$DIR/node$1" http transport roles
  if [[ "$n" == 1 ]]; then
    http="$HTTP1"
    transport="$TRANSPORT1"
    roles="[cluster_manager, data, ingest]"
  else
    http="$HTTP2"
    transport="$TRANSPORT2"
    roles="[data, ingest]"
  fi
  mkdir -p "$nd/data" "$nd/logs" "$nd/tmp"
  rm -rf "$nd/config"
  cp -r "$HOME_DIR/config" "$nd/config"
  {
    echo "cluster.name: ac-cluster-$CHECKOUT_KEY"
    echo "node.name: os-node-$n"
    echo "node.roles: $roles"
    echo "network.host: 127.0.0.1"
    echo "http.port: $http"
    echo "transport.port: $transport"
    echo "discovery.seed_hosts: [\"127.0.0.1:$TRANSPORT1\", \"127.0.0.1:$TRANSPORT2\"]"
    echo "cluster.initial_cluster_manager_nodes: [os-node-1]"
    echo "path.data: $nd/data"
    echo "path.logs: $nd/logs"
    echo "cluster.routing.allocation.disk.threshold_enabled: false"
    # A node that left is noticed within seconds (defaults: 3 missed pings of 10 s).
    echo "cluster.fault_detection.follower_check.interval: 1s"
    echo "cluster.fault_detection.follower_check.timeout: 5s"
    echo "cluster.fault_detection.follower_check.retry_count: 2"
    if [[ -d "$HOME_DIR/plugins/opensearch-security" ]]; then echo "plugins.security.disabled: true"; fi
  } >"$nd/config/opensearch.yml"
}

launch_node() { # node
  local n="$1" nd="$DIR/node$1"
  rm -f "$nd/pid"
  local runas=()
  if [[ "$(id -u)" == 0 ]]; then
    chown -R 65534:65534 "$DIR"
    runas=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  fi
  log "starting node $n on $(url_of "$n") (transport $([[ $n == 1 ]] && echo "$TRANSPORT1" || echo "$TRANSPORT2"), heap $HEAP)"
  # -d daemonizes once the node has started; setsid and closing fd 9 (the lock) keep the node out of the
  # caller's process group and lock.
  if ! env -i PATH=/usr/bin:/bin HOME="$nd" LANG=C.UTF-8 \
    OPENSEARCH_JAVA_HOME="$JAVA" OPENSEARCH_JAVA_OPTS="$HEAP" OPENSEARCH_TMPDIR="$nd/tmp" \
    OPENSEARCH_PATH_CONF="$nd/config" \
    setsid "${runas[@]}" "$HOME_DIR/bin/opensearch" -d -p "$nd/pid" </dev/null >"$nd/start.out" 2>&1 9>&-; then
    tail -n 30 "$nd/start.out" >&2
    tail -n 30 "$nd/logs/"*.log >&2 2>/dev/null || true
    return 1
  fi
}

# Waits until both nodes joined and the cluster is green; fails when a node died or time ran out.
wait_ready() {
  local deadline=$((SECONDS + TIMEOUT)) n
  until cluster_ready; do
    for n in 1 2; do
      if [[ -s "$DIR/node$n/pid" && -z "$(node_pid "$n")" ]]; then
        tail -n 40 "$DIR/node$n/logs/"*.log >&2 2>/dev/null || tail -n 40 "$DIR/node$n/start.out" >&2
        log "node $n exited during start-up (log above; kept $DIR)"
        return 1
      fi
    done
    if ((SECONDS > deadline)); then
      for n in 1 2; do tail -n 20 "$DIR/node$n/logs/"*.log >&2 2>/dev/null || true; done
      log "cluster not green with 2 nodes within $TIMEOUT s at $(url_of 1)"
      return 1
    fi
    sleep 1
  done
}

print_env() {
  echo "OPENSEARCH_CLUSTER_URLS=$(url_of 1),$(url_of 2)"
  echo "OPENSEARCH_CLUSTER_PIDS=$(node_pid 1),$(node_pid 2)"
  echo "OPENSEARCH_CLUSTER_DIR=$DIR"
  echo "OPENSEARCH_CLUSTER_VERSION=$VERSION"
}

lock() {
  mkdir -p "$PEERS"
  exec 9>"$LOCK"
  flock 9
}

# Stops every node that runs (TERM, KILL after 30 s), removes the instance directory and the state.
cleanup() {
  local n p
  for n in 1 2; do
    p="$(node_pid "$n")"
    [[ -n "$p" ]] && kill -TERM "$p" 2>/dev/null || true
  done
  for n in 1 2; do
    p="$(node_pid "$n")"
    [[ -n "$p" ]] || continue
    for _ in $(seq 1 300); do
      kill -0 "$p" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$p" 2>/dev/null; then
      log "node $n still running after 30 s; killing $p"
      kill -KILL "$p" 2>/dev/null || true
    fi
  done
  # Only ever an instance directory this script made (TMPDIR may differ from the start's).
  if [[ -n "$DIR" && "$(basename "$DIR")" == ac-oscluster.* ]]; then rm -rf "$DIR"; fi
  rm -f "$STATE"
}

cmd_start() {
  lock
  if read_state; then
    if [[ -n "$(node_pid 1)" && -n "$(node_pid 2)" ]] && cluster_ready; then
      log "already running at $(url_of 1),$(url_of 2)"
      print_env
      return 0
    fi
    cleanup
  fi
  local tool zip start=$SECONDS
  for tool in unzip curl setsid flock; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y unzip curl util-linux)"
  done
  zip="$(OPENSEARCH_VERSION="$VERSION" bash "$HERE/searchserver.sh" opensearch fetch)"
  JAVA="$(find_java)"
  HTTP1="$(free_port)"
  HTTP2="$(free_port)"
  TRANSPORT1="$(free_port)"
  TRANSPORT2="$(free_port)"
  DIR="$(mktemp -d "${PREFIX}XXXXXX")"
  chmod 755 "$DIR"
  unzip -q "$zip" -d "$DIR" || die "cannot unpack $zip"
  HOME_DIR="$DIR/opensearch-$VERSION"
  [[ -x "$HOME_DIR/bin/opensearch" ]] || die "unexpected layout in $zip (no opensearch-$VERSION/bin/opensearch)"
  write_state
  log "OpenSearch $VERSION, Java at $JAVA, instance $DIR"
  write_node_config 1
  write_node_config 2
  if ! launch_node 1 || ! launch_node 2; then
    cleanup
    die "a node failed to start (output above)"
  fi
  if ! wait_ready; then
    cleanup
    die "cluster did not form (stopped it)"
  fi
  log "up at $(url_of 1),$(url_of 2) after $((SECONDS - start)) s"
  print_env
}

cmd_stop() {
  lock
  if ! read_state; then
    rm -f "$STATE"
    log "not running"
    return 0
  fi
  cleanup
  log "stopped"
}

cmd_status() {
  if ! read_state; then
    echo "stopped"
    return 1
  fi
  local p1 p2
  p1="$(node_pid 1)"
  p2="$(node_pid 2)"
  if [[ -n "$p1" && -n "$p2" ]] && cluster_ready; then
    echo "running $(url_of 1),$(url_of 2) (pids $p1,$p2, $DIR)"
  else
    echo "degraded: node 1 ${p1:+pid }${p1:-down}, node 2 ${p2:+pid }${p2:-down} ($DIR)"
    return 1
  fi
}

node_arg() {
  [[ "${1:-}" == 1 || "${1:-}" == 2 ]] || die "usage: $0 $CMD {1|2}"
}

cmd_kill_node() {
  node_arg "${1:-}"
  lock
  read_state || die "not running"
  local p
  p="$(node_pid "$1")"
  [[ -n "$p" ]] || die "node $1 is not running"
  kill -KILL "$p"
  for _ in $(seq 1 100); do
    kill -0 "$p" 2>/dev/null || break
    sleep 0.1
  done
  log "killed node $1 (pid $p, $(url_of "$1"))"
}

cmd_start_node() {
  node_arg "${1:-}"
  lock
  read_state || die "not running (use start)"
  if [[ -n "$(node_pid "$1")" ]]; then
    log "node $1 already running"
  else
    launch_node "$1" || die "node $1 failed to start (output above)"
  fi
  wait_ready || die "cluster not back to 2 nodes"
  log "node $1 back at $(url_of "$1")"
  print_env
}

case "$CMD" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  urls)
    read_state || die "not running (start it with $0 start)"
    echo "$(url_of 1),$(url_of 2)"
    ;;
  kill-node) cmd_kill_node "${2:-}" ;;
  start-node) cmd_start_node "${2:-}" ;;
  *)
    echo "usage: $0 {start|stop|status|urls|kill-node N|start-node N}" >&2
    exit 2
    ;;
esac
