#!/usr/bin/env bash
# Shared implementation of test/peers/opensearch.sh and test/peers/elasticsearch.sh: downloads (Maven
# Central, through `mvn`), caches, starts and stops a real single-node search server on loopback.
#
#   test/peers/searchserver.sh FLAVOR start    start (or find the running one), print KEY=VALUE lines
#   test/peers/searchserver.sh FLAVOR stop     stop it and remove its directory
#   test/peers/searchserver.sh FLAVOR status   "running <url>" (exit 0) or "stopped" (exit 1)
#   test/peers/searchserver.sh FLAVOR url      print the URL of the running instance
#   test/peers/searchserver.sh FLAVOR fetch    only download into the cache, print the zip path
#   test/peers/searchserver.sh FLAVOR java     print the JDK home this version runs on (used by opensearch-cluster.sh)
#
# FLAVOR is opensearch or elasticsearch. The distributions are the "integ-test-zip" builds their plugin
# developers test against (no bundled JDK, core modules only):
#   org.opensearch.distribution.integ-test-zip:opensearch:${OPENSEARCH_VERSION:-2.19.6}:zip
#   org.elasticsearch.distribution.integ-test-zip:elasticsearch:${ELASTICSEARCH_VERSION:-8.19.21}:zip
#
# Environment: AC_CACHE (default ~/.cache/authentik-collector; zips under peers/), OPENSEARCH_PORT /
# ELASTICSEARCH_PORT (default 9201 / 9202, a free port when taken), AC_PEER_INGEST (default 1: OpenSearch
# gets the ingest-common module from Maven Central, see opensearch_ingest_module), AC_PEER_HEAP (default
# "-Xms256m -Xmx512m"), AC_PEER_TIMEOUT (seconds to wait for health, default 120), JAVA_HOME (used
# when its version fits, otherwise a fitting JDK under /usr/lib/jvm is picked).
#
# Both servers refuse to run as root: as root the server runs as `nobody` (setpriv), from an instance
# directory under ${TMPDIR:-/tmp} that it can write.
set -euo pipefail

FLAVOR="${1:-}"
CMD="${2:-}"
CACHE="${AC_CACHE:-$HOME/.cache/authentik-collector}"
PEERS="$CACHE/peers"
TIMEOUT="${AC_PEER_TIMEOUT:-120}"
HEAP="${AC_PEER_HEAP:--Xms256m -Xmx512m}"

case "$FLAVOR" in
  opensearch)
    VERSION="${OPENSEARCH_VERSION:-2.19.6}"
    GROUP="org.opensearch.distribution.integ-test-zip"
    PORT_DEFAULT="${OPENSEARCH_PORT:-9201}"
    FIXED_PORT="${OPENSEARCH_PORT:-}"
    BIN="opensearch"
    CONF="opensearch.yml"
    JAVA_OPTS_VAR="OPENSEARCH_JAVA_OPTS"
    JAVA_HOME_VAR="OPENSEARCH_JAVA_HOME"
    TMP_VAR="OPENSEARCH_TMPDIR"
    ENV_PREFIX="OPENSEARCH"
    ;;
  elasticsearch)
    VERSION="${ELASTICSEARCH_VERSION:-8.19.21}"
    GROUP="org.elasticsearch.distribution.integ-test-zip"
    PORT_DEFAULT="${ELASTICSEARCH_PORT:-9202}"
    FIXED_PORT="${ELASTICSEARCH_PORT:-}"
    BIN="elasticsearch"
    CONF="elasticsearch.yml"
    JAVA_OPTS_VAR="ES_JAVA_OPTS"
    JAVA_HOME_VAR="ES_JAVA_HOME"
    TMP_VAR="ES_TMPDIR"
    ENV_PREFIX="ELASTICSEARCH"
    ;;
  *)
    echo "usage: $0 {opensearch|elasticsearch} {start|stop|status|url|fetch}" >&2
    exit 2
    ;;
esac
MAJOR="${VERSION%%.*}"
# One instance per checkout: several clones (or git worktrees) on one machine each get their own server,
# so one checkout's `npm test` never stops another's. The zips stay shared in $PEERS.
CHECKOUT_KEY="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd -P | sha256sum | cut -c1-12)"
STATE="$PEERS/$FLAVOR-$CHECKOUT_KEY.state"
ZIP="$PEERS/$FLAVOR-$VERSION.zip"

log() { echo "$FLAVOR.sh: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# Which Java versions the distribution runs on (OpenSearch 2.x needs the SecurityManager, gone in 24).
java_range() {
  case "$FLAVOR:$MAJOR" in
    opensearch:1 | opensearch:2) echo "11 23" ;;
    opensearch:*) echo "21 99" ;;
    elasticsearch:7) echo "11 21" ;;
    elasticsearch:8) echo "17 24" ;;
    *) echo "21 99" ;;
  esac
}

java_major() {
  local v
  v="$("$1/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9][0-9.]*\).*/\1/p' | head -1)"
  [[ -n "$v" ]] || return 1
  if [[ "$v" == 1.* ]]; then v="${v#1.}"; fi
  echo "${v%%.*}"
}

# Prints a JDK home whose version fits, lowest fitting version first (closest to what was tested).
find_java() {
  local range min max c m best="" bestm=999
  range="$(java_range)"
  min="${range% *}"
  max="${range#* }"
  local candidates=()
  [[ -n "${JAVA_HOME:-}" ]] && candidates+=("$JAVA_HOME")
  for c in /usr/lib/jvm/*; do [[ -x "$c/bin/java" ]] && candidates+=("$c"); done
  if command -v java >/dev/null; then candidates+=("$(dirname "$(dirname "$(readlink -f "$(command -v java)")")")"); fi
  for c in "${candidates[@]}"; do
    [[ -x "$c/bin/java" ]] || continue
    m="$(java_major "$c")" || continue
    if ((m >= min && m <= max && m < bestm)); then
      best="$c"
      bestm="$m"
    fi
  done
  [[ -n "$best" ]] || die "no Java between $min and $max found (JAVA_HOME or /usr/lib/jvm); $FLAVOR $VERSION needs one"
  readlink -f "$best"
}

cmd_fetch() {
  if [[ -s "$ZIP" ]]; then
    echo "$ZIP"
    return 0
  fi
  command -v mvn >/dev/null || die "mvn not found: install Maven (apt-get install -y maven) to download $FLAVOR"
  mkdir -p "$PEERS"
  local artifact="$GROUP:$FLAVOR:$VERSION:zip"
  local rel="${GROUP//.//}/$FLAVOR/$VERSION/$FLAVOR-$VERSION.zip"
  local repo="${AC_M2_REPO:-$HOME/.m2/repository}"
  if [[ ! -s "$repo/$rel" ]]; then
    log "downloading $artifact with mvn (once; cached in $PEERS)"
    local out
    if ! out="$(mvn -B -q dependency:get -Dartifact="$artifact" -Dtransitive=false -Dmaven.repo.local="$repo" 2>&1)"; then
      echo "$out" | tail -n 20 >&2
      die "mvn dependency:get -Dartifact=$artifact -Dtransitive=false failed"
    fi
  fi
  [[ -s "$repo/$rel" ]] || die "mvn reported success but $repo/$rel is missing"
  cp "$repo/$rel" "$ZIP.tmp.$$"
  mv "$ZIP.tmp.$$" "$ZIP"
  echo "$ZIP"
}

# --- OpenSearch ingest modules (self-contained; AC_PEER_INGEST=0 turns it off) -------------------------
# The integ-test distribution ships no ingest processors. OpenSearch publishes the ingest-common module on
# Maven Central as a plain jar (org.opensearch.plugin:ingest-common:<version>, with opensearch-grok,
# opensearch-dissect, joni and jcodings as dependencies); this assembles it into modules/ingest-common
# with a plugin descriptor, so pipelines with set/rename/json/... processors run (the Fleet coexistence
# test uses one as default_pipeline). Built once per version under $PEERS.
opensearch_ingest_module() { # home
  local home="$1" mod="$PEERS/opensearch-ingest-common-$VERSION"
  if [[ ! -s "$mod/plugin-descriptor.properties" ]]; then
    command -v mvn >/dev/null || die "mvn not found: install Maven to download the ingest-common module"
    local work
    work="$(mktemp -d "${TMPDIR:-/tmp}/ac-ingest.XXXXXX")"
    cat >"$work/pom.xml" <<POM
<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.authentik-collector</groupId>
  <artifactId>opensearch-ingest-common-module</artifactId>
  <version>1</version>
  <dependencies>
    <dependency>
      <groupId>org.opensearch.plugin</groupId>
      <artifactId>ingest-common</artifactId>
      <version>$VERSION</version>
    </dependency>
  </dependencies>
</project>
POM
    log "downloading org.opensearch.plugin:ingest-common:$VERSION and its dependencies with mvn (once)"
    local out
    if ! out="$(mvn -B -q -f "$work/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
      -DoutputDirectory="$work/module" -Dmaven.repo.local="${AC_M2_REPO:-$HOME/.m2/repository}" 2>&1)"; then
      echo "$out" | tail -n 20 >&2
      rm -rf "$work"
      die "mvn could not fetch org.opensearch.plugin:ingest-common:$VERSION"
    fi
    [[ -s "$work/module/ingest-common-$VERSION.jar" ]] || die "ingest-common-$VERSION.jar missing after mvn"
    # extended.plugins stays empty: lang-painless is not in this distribution, and the module only
    # needs it for its painless allowlist extension (not loaded without painless).
    cat >"$work/module/plugin-descriptor.properties" <<DESC
description=Module for ingest processors (assembled from Maven Central by test/peers/searchserver.sh)
version=$VERSION
name=ingest-common
classname=org.opensearch.ingest.common.IngestCommonPlugin
java.version=11
opensearch.version=$VERSION
extended.plugins=
has.native.controller=false
DESC
    rm -rf "$mod.tmp.$$"
    mv "$work/module" "$mod.tmp.$$"
    rm -rf "$work" "$mod"
    mv "$mod.tmp.$$" "$mod"
  fi
  cp -r "$mod" "$home/modules/ingest-common"
}
# ----------------------------------------------------------------------------------------------------

port_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

free_port() {
  node -e 'const s=require("net").createServer();s.listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'
}

healthy() { # url
  curl -fsS -m 3 "$1/_cluster/health?wait_for_status=yellow&timeout=2s" >/dev/null 2>&1
}

read_state() {
  URL=""
  PID=""
  DIR=""
  [[ -f "$STATE" ]] || return 1
  # shellcheck disable=SC1090
  . "$STATE"
  URL="${STATE_URL:-}"
  PID="${STATE_PID:-}"
  DIR="${STATE_DIR:-}"
  [[ -n "$URL" && -n "$DIR" ]]
}

write_state() {
  printf 'STATE_URL=%s\nSTATE_PID=%s\nSTATE_DIR=%s\n' "$URL" "$PID" "$DIR" >"$STATE"
}

# The server's pid: from its pid file (written by -p, sometimes only well after -d returned), else the
# process whose command line names the instance directory.
server_pid() {
  local dir="$1" p=""
  [[ -s "$dir/pid" ]] && p="$(cat "$dir/pid")"
  if [[ -z "$p" ]]; then
    local c
    for c in $(pgrep -f -- "$dir/" || true); do
      if [[ "$(cat "/proc/$c/comm" 2>/dev/null)" == java ]]; then
        p="$c"
        break
      fi
    done
  fi
  echo "$p"
}

# The recorded process is alive and is still our server (a recycled pid is not).
running() {
  read_state || return 1
  [[ -n "$PID" ]] || PID="$(server_pid "$DIR")"
  [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null && [[ -n "$DIR" ]] &&
    tr '\0' ' ' <"/proc/$PID/cmdline" 2>/dev/null | grep -qF "$DIR"
}

print_env() {
  if [[ "$FLAVOR" == opensearch ]]; then
    echo "OPENSEARCH_URL=$URL"
  else
    echo "ES_TEST_URLS=$URL"
  fi
  echo "${ENV_PREFIX}_DIR=$DIR"
  echo "${ENV_PREFIX}_PID=$PID"
  echo "${ENV_PREFIX}_VERSION=$VERSION"
}

cmd_start() {
  mkdir -p "$PEERS"
  exec 9>"$PEERS/$FLAVOR-$CHECKOUT_KEY.lock"
  flock 9
  if running && healthy "$URL"; then
    log "already running at $URL"
    print_env
    return 0
  fi
  if read_state; then
    if ! running; then PID=""; fi # dead (or recycled pid): only clean up its directory
    cmd_cleanup
  fi
  local tool
  for tool in unzip curl setsid; do
    command -v "$tool" >/dev/null || die "$tool not found (apt-get install -y unzip curl util-linux)"
  done
  local zip java port dir start=$SECONDS
  zip="$(cmd_fetch)"
  java="$(find_java)"
  port="$PORT_DEFAULT"
  if ! port_free "$port"; then
    [[ -z "$FIXED_PORT" ]] || die "port $port is in use"
    port="$(free_port)"
  fi
  dir="$(mktemp -d "${TMPDIR:-/tmp}/ac-$FLAVOR.XXXXXX")"
  chmod 755 "$dir"
  unzip -q "$zip" -d "$dir" || die "cannot unpack $zip"
  local home="$dir/$FLAVOR-$VERSION"
  [[ -x "$home/bin/$BIN" ]] || die "unexpected layout in $zip (no $FLAVOR-$VERSION/bin/$BIN)"
  mkdir -p "$dir/data" "$dir/logs" "$dir/tmp"
  if [[ "$FLAVOR" == opensearch && "${AC_PEER_INGEST:-1}" != 0 ]]; then opensearch_ingest_module "$home"; fi
  {
    echo "cluster.name: authentik-collector-test"
    echo "node.name: $FLAVOR-test"
    echo "discovery.type: single-node"
    echo "network.host: 127.0.0.1"
    echo "http.port: $port"
    echo "path.data: $dir/data"
    echo "path.logs: $dir/logs"
    echo "cluster.routing.allocation.disk.threshold_enabled: false"
    # Only settings this distribution knows: security exists only where its module/plugin is present.
    if [[ -d "$home/modules/x-pack-security" ]]; then echo "xpack.security.enabled: false"; fi
    if [[ -d "$home/plugins/opensearch-security" ]]; then echo "plugins.security.disabled: true"; fi
  } >"$home/config/$CONF"
  local runas=()
  if [[ "$(id -u)" == 0 ]]; then
    chown -R 65534:65534 "$dir"
    runas=(setpriv --reuid=65534 --regid=65534 --clear-groups)
  fi
  log "starting $FLAVOR $VERSION on 127.0.0.1:$port (Java $(java_major "$java") at $java, heap $HEAP, dir $dir)"
  # -d daemonizes once the node has started; -p writes the pid file. setsid and closing fd 9 (the lock)
  # keep the server out of the caller's process group and lock.
  if ! env -i PATH=/usr/bin:/bin HOME="$dir" LANG=C.UTF-8 \
    "$JAVA_HOME_VAR=$java" "$JAVA_OPTS_VAR=$HEAP" "$TMP_VAR=$dir/tmp" \
    setsid "${runas[@]}" "$home/bin/$BIN" -d -p "$dir/pid" </dev/null >"$dir/start.out" 2>&1 9>&-; then
    tail -n 30 "$dir/start.out" >&2
    tail -n 30 "$dir/logs/"*.log >&2 2>/dev/null || true
    die "$home/bin/$BIN -d failed (output above; kept $dir)"
  fi
  URL="http://127.0.0.1:$port"
  DIR="$dir"
  PID="$(server_pid "$dir")"
  write_state
  local deadline=$((SECONDS + TIMEOUT))
  until [[ -n "$PID" ]] && healthy "$URL"; do
    [[ -n "$PID" ]] || { PID="$(server_pid "$dir")" && write_state; }
    if [[ -n "$PID" ]] && ! kill -0 "$PID" 2>/dev/null; then
      tail -n 40 "$dir/logs/"*.log >&2 2>/dev/null || tail -n 40 "$dir/start.out" >&2
      rm -f "$STATE"
      die "$FLAVOR exited during start-up (log above; kept $dir)"
    fi
    if ((SECONDS > deadline)); then
      tail -n 40 "$dir/logs/"*.log >&2 2>/dev/null || tail -n 40 "$dir/start.out" >&2
      cmd_cleanup
      die "$FLAVOR not healthy (yellow) within $TIMEOUT s at $URL (stopped it)"
    fi
    sleep 1
  done
  log "up at $URL after $((SECONDS - start)) s"
  print_env
}

cmd_stop_locked() {
  if ! read_state; then
    log "not running"
    return 0
  fi
  if ! running; then PID=""; fi
  cmd_cleanup
  log "stopped"
}

# Stops $PID (when set) and removes $DIR and the state file.
cmd_cleanup() {
  if [[ -n "$PID" ]] && kill -0 "$PID" 2>/dev/null; then
    kill -TERM "$PID" 2>/dev/null || true
    for _ in $(seq 1 300); do
      kill -0 "$PID" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$PID" 2>/dev/null; then
      log "still running after 30 s; killing $PID"
      kill -KILL "$PID" 2>/dev/null || true
    fi
  fi
  if [[ -n "$DIR" && "$DIR" == "${TMPDIR:-/tmp}"/ac-"$FLAVOR".* ]]; then rm -rf "$DIR"; fi
  rm -f "$STATE"
}

cmd_stop() {
  mkdir -p "$PEERS"
  exec 9>"$PEERS/$FLAVOR-$CHECKOUT_KEY.lock"
  flock 9
  cmd_stop_locked
}

cmd_status() {
  if running && healthy "$URL"; then
    echo "running $URL (pid $PID, $DIR)"
  elif running; then
    echo "starting or unhealthy $URL (pid $PID)"
    return 1
  else
    echo "stopped"
    return 1
  fi
}

cmd_url() {
  running || die "not running (start it with test/peers/$FLAVOR.sh start)"
  echo "$URL"
}

case "$CMD" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  url) cmd_url ;;
  fetch) cmd_fetch ;;
  java) find_java ;;
  *)
    echo "usage: $0 $FLAVOR {start|stop|status|url|fetch|java}" >&2
    exit 2
    ;;
esac
