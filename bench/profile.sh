#!/usr/bin/env bash
# Profiles onyx-id under the load of one bench case with perf (Debian's linux-perf).
#
#   bash bench/profile.sh [introspection|client_credentials|refresh|discovery] [sqlite|postgres]
#
# Builds a release binary with frame pointers and line tables into its own target dir
# ($PROFILE_TARGET, default /tmp/onyx-prof-target; the normal build is not touched), seeds it
# like run.sh, then runs wrk (taskset -c 1, -c32) for 12 s and records onyx-id (taskset -c 0)
# for 8 s in the middle: `perf stat` (per-request instructions, context switches) and
# `perf record -g`. Prints the top of `perf report --no-children` (self time) and of
# `perf report --children` (inclusive), by symbol; keeps perf.data in $work (printed).
set -euo pipefail
# The servers measured here stop at once on SIGTERM (no drain: nothing balances them).
export ONYX_DRAIN_SECONDS=0
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
CASE="${1:-introspection}"
BACKEND="${2:-sqlite}"
PG_BASE="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
PORT="${BENCH_ONYX_PORT:-18090}"
URL="http://127.0.0.1:$PORT"
TARGET="${PROFILE_TARGET:-/tmp/onyx-prof-target}"

command -v perf >/dev/null || { apt-get update -qq && apt-get install -y -qq linux-perf >/dev/null; }
command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
(cd "$root" && CARGO_TARGET_DIR="$TARGET" RUSTFLAGS="-C force-frame-pointers=yes" \
  CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release --quiet)
BIN="$TARGET/release/onyx-id"

work="$(mktemp -d "${TMPDIR:-/tmp}/onyx-profile.XXXXXX")"
pid=""
pg_db=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
  if [ -n "$pg_db" ]; then
    psql "$PG_BASE/postgres" -qAt -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
}
trap cleanup EXIT

if [ "$BACKEND" = postgres ]; then
  pg_db="onyx_profile_$$"
  psql "$PG_BASE/postgres" -qAt -c "CREATE DATABASE $pg_db" >/dev/null
  DB="$PG_BASE/$pg_db"
else
  DB="sqlite://$work/onyx.db"
fi
export ONYX_DATABASE_URL="$DB" ONYX_KEYS_DIR="$work/keys" RUST_LOG=warn ONYX_LOG_FORMAT=json
python3 "$here/bench.py" setup "$BIN" "$work/seed.env"
# shellcheck disable=SC1090
source "$work/seed.env"
ONYX_BIND="127.0.0.1:$PORT" ONYX_ISSUER="$URL" taskset -c 0 "$BIN" serve >"$work/onyx.log" 2>&1 &
pid=$!
python3 "$here/bench.py" wait "$URL/healthz" 30
mkdir -p "$work/pools"
eval "$(python3 "$here/bench.py" tokens "$URL" "$work/seed.env" "$work/pools" 1 48)"

case "$CASE" in
  introspection) script=introspect.lua; vars=(TOKEN="$ONYX_AT" BASIC="$RS_BASIC" INTROSPECT_PATH=/introspect) ;;
  client_credentials) script=token_cc.lua; vars=(BASIC="$APP_BASIC" SCOPE=grants%3Aread) ;;
  refresh) script=refresh.lua; vars=(BASIC="$APP_BASIC" POOL="$work/pools/pool-0.txt") ;;
  discovery) script=discovery.lua; vars=() ;;
  *) echo "unknown case $CASE" >&2; exit 1 ;;
esac
env "${vars[@]}" BENCH_LUA_DIR="$here" taskset -c 1 \
  wrk -t1 -c32 -d12s --latency -s "$here/$script" "$URL" >"$work/wrk.txt" 2>&1 &
wrk_pid=$!
sleep 2
perf stat -e task-clock,context-switches,cpu-migrations,instructions,cycles -p "$pid" \
  -o "$work/stat.txt" -- sleep 3
perf record -F 1999 -g -o "$work/perf.data" -p "$pid" -- sleep 5 2>/dev/null
wait "$wrk_pid" || true
set +o pipefail # head closes the pipes below early
report() { perf report -i "$work/perf.data" --stdio -g none "$@" 2>/dev/null | grep -vE "^#|^$" | sed 's/  */ /g'; }
echo "== wrk"; grep -E "Requests/sec|50%|99%|Non-2xx|Socket|bench-bad" "$work/wrk.txt"
echo "== perf stat (3 s)"; grep -vE "^#|^$" "$work/stat.txt"
echo "== CPU by thread"; report --no-children --sort comm | head -5
echo "== self time (perf report --no-children), top 30"; report --no-children --sort sym | head -30
echo "== inclusive time of onyx-id, sqlx, hyper and crypto frames (perf report --children)"
report --children --sort sym --percent-limit 0.3 \
  | grep -E "onyx_id::|sqlx_[a-z]+::.*(ping|acquire|fetch|execute|begin|commit|Timeout|try_from)|flume::Shared<T>::send|ConnectionWorker::establish|Dispatcher.*poll_(read|write)|__GI___writev|sqlite3_step|sqlite3VdbeExec|p256|ecdsa|ring_core|jsonwebtoken|serde_json|finish_task_switch|futex_wake|Timeout<T>" \
  | head -60
echo "== kept: $work (perf.data, onyx.log, wrk.txt)"
