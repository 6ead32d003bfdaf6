#!/usr/bin/env bash
# CI for vehicle-data's non-Go users (`make web-test`): Spectral on openapi.yaml, the generated
# TypeScript types (fresh, type-checked, smoke-tested), the Postman collection run by newman,
# Swagger UI at /docs and the dashboard at /ui/ (built fresh, then in headless Chromium), against real servers on free localhost ports: one
# open, one with an API token. Every check runs even when an earlier one fails; the last line is
# `web: N passed, M failed`, and the exit status is non-zero when M > 0.
#
# Needs Node >= 20.17 and npm; installs Debian's chromium with apt-get when missing (CHROMIUM
# names another binary). Artefacts (screenshot, newman reports, server logs) go to
# ARTIFACTS_DIR, default web/artifacts.
set -uo pipefail
WEB=$(cd "$(dirname "$0")/.." && pwd)
ROOT=$(cd "$WEB/.." && pwd)
export ARTIFACTS_DIR=${ARTIFACTS_DIR:-$WEB/artifacts}
export CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
TOKEN=t0k3n
export DASHBOARD_PERF_ROWS=${DASHBOARD_PERF_ROWS:-1000000}
START=$(date +%s)
passed=0
failed=0
summary=()

# check NAME CMD...: runs one check, counts it, keeps its time for the summary.
check() {
  local name=$1 t0 rc
  shift
  t0=$(date +%s)
  printf '\n--- %s\n' "$name"
  "$@"
  rc=$?
  if [ "$rc" -eq 0 ]; then
    passed=$((passed + 1))
    summary+=("$(printf 'ok      %4ss  %s' "$(($(date +%s) - t0))" "$name")")
  else
    failed=$((failed + 1))
    summary+=("$(printf 'FAILED  %4ss  %s (exit %s)' "$(($(date +%s) - t0))" "$name" "$rc")")
  fi
  return 0
}

finish() {
  printf '\n=== web summary (%ss in all)\n' "$(($(date +%s) - START))"
  printf '%s\n' "${summary[@]}"
  printf 'web: %d passed, %d failed\n' "$passed" "$failed"
  exit $((failed > 0))
}

# setup NAME CMD...: a check the rest depends on; when it fails, stop here.
setup() {
  check "$@"
  [ "${summary[-1]:0:2}" = ok ] || finish
}

# --- servers: started in the background, stopped on any exit ---
TMP=$(mktemp -d)
chmod 711 "$TMP" # the embedded PostgreSQL runs as `postgres` and must reach its data dir
PIDS=()
cleanup() {
  local pid
  for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null; done
  for pid in "${PIDS[@]}"; do wait "$pid" 2>/dev/null; done
  rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() {
  node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });'
}

# start_server NAME [ARGS...]: starts the server on a free port, without waiting for it
# (wait_ready does); sets URL_<NAME>. Runs in this shell, not in check, to keep PIDS and URL_*.
start_server() {
  local name=$1 port
  shift
  if ! port=$(free_port); then
    failed=$((failed + 1))
    summary+=("FAILED           start server $name: no free port")
    finish
  fi
  "$BIN" serve --addr "127.0.0.1:$port" --data-dir "$TMP/$name" "$@" \
    >"$ARTIFACTS_DIR/server-$name.log" 2>&1 &
  PIDS+=($!)
  printf -v "URL_$name" 'http://127.0.0.1:%s' "$port"
}

# wait_ready NAME: polls /readyz for up to 90 s; shows the server's log when it never answers.
wait_ready() {
  local var="URL_$1" i
  for i in $(seq 180); do
    if curl -fsS -o /dev/null "${!var}/readyz" 2>/dev/null; then
      echo "server $1 ready at ${!var}"
      return 0
    fi
    sleep 0.5
  done
  echo "server $1 not ready at ${!var} after 90s:" >&2
  tail -n 30 "$ARTIFACTS_DIR/server-$1.log" >&2
  return 1
}

install_chromium() {
  if [ -x "$CHROMIUM" ]; then "$CHROMIUM" --version 2>/dev/null; return 0; fi
  if [ "$CHROMIUM" != /usr/bin/chromium ] || ! command -v apt-get >/dev/null; then
    echo "no Chromium at $CHROMIUM; install Debian's chromium or set CHROMIUM" >&2
    return 1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium ||
    { apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium; }
}

# The committed build of the dashboard is what web/ui builds (also in make check-generated; here
# it prints the gzipped sizes and holds the bundle to its budget).
fresh_ui() {
  UI_OUT=$TMP/ui bash "$WEB/scripts/build-ui.sh" &&
    diff -r "$ROOT/gen/ui" "$TMP/ui" ||
    { echo "gen/ui differs from what web/ui builds: run make ui-generate" >&2; return 1; }
}

fresh_types() {
  local fresh=$TMP/schema.d.ts
  TS_OUT=$fresh bash "$WEB/scripts/generate-ts.sh" >/dev/null &&
    diff -u "$ROOT/gen/ts/schema.d.ts" "$fresh" ||
    { echo "gen/ts/schema.d.ts differs from openapi.yaml: run make web-generate" >&2; return 1; }
}

mkdir -p "$ARTIFACTS_DIR"
cd "$WEB" || exit 1

# --- setup ---
setup "Chromium present" install_chromium
setup "npm ci (web/package-lock.json)" npm ci --prefer-offline
# Built into the temp dir, so a `make run` or benchmark using bin/vehicle-data is left alone.
BIN=$TMP/vehicle-data
setup "build the server (go build ./cmd/vehicle-data)" bash -c 'cd "$1" && go build -o "$2" ./cmd/vehicle-data' _ "$ROOT" "$BIN"
start_server open
start_server token --api-tokens "$TOKEN"
echo "starting servers: open at $URL_open, with --api-tokens at $URL_token"

# --- checks that need no server (while the servers start) ---
check "Spectral: openapi.yaml has no error or warning" \
  npx --no-install spectral lint --ruleset "$ROOT/.spectral.yaml" --fail-severity=warn "$ROOT/openapi.yaml"
check "gen/ts/schema.d.ts is what openapi.yaml generates" fresh_types
check "tsc --noEmit (strict): smoke test, e2e and scripts" npx --no-install tsc --noEmit -p tsconfig.json
check "tsc --noEmit (strict): the dashboard (web/ui)" npx --no-install tsc --noEmit -p ui/tsconfig.json
check "gen/ui is what web/ui builds; bundle within its gzipped budget" fresh_ui
check "Postman collection converted, with status checks" env -u VEHICLE_DATA_URL bash scripts/postman.sh

setup "server (open) ready" wait_ready open
setup "server (--api-tokens) ready" wait_ready token

# --- checks against live servers ---
check "TypeScript smoke test (open server)" env VEHICLE_DATA_URL="$URL_open" npx --no-install tsx smoke/smoke.ts
check "TypeScript smoke test (token server, with and without the token)" \
  env VEHICLE_DATA_URL="$URL_token" VEHICLE_DATA_TOKEN="$TOKEN" npx --no-install tsx smoke/smoke.ts
check "newman: documented statuses, no 5xx (open server)" \
  env VEHICLE_DATA_URL="$URL_open" NEWMAN_SUFFIX=-open bash scripts/postman.sh
check "newman: documented statuses, token accepted (token server)" \
  env VEHICLE_DATA_URL="$URL_token" VEHICLE_DATA_TOKEN="$TOKEN" NEWMAN_SUFFIX=-token bash scripts/postman.sh
check "Swagger UI /docs in headless Chromium" env VEHICLE_DATA_URL="$URL_open" node e2e/docs.mjs
# DASHBOARD_PERF_ROWS (default below) loads a vehicle of that many rows and times the dashboard
# with it; 0 skips that part.
check "Dashboard /ui/ in headless Chromium (open server, token server, ${DASHBOARD_PERF_ROWS} rows timed)" \
  env VEHICLE_DATA_URL="$URL_open" VEHICLE_DATA_TOKEN_URL="$URL_token" VEHICLE_DATA_TOKEN="$TOKEN" \
  DASHBOARD_PERF_ROWS="$DASHBOARD_PERF_ROWS" node e2e/dashboard.mjs

finish
