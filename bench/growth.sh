#!/usr/bin/env bash
# How cost grows: introspection and token issue with 10k, 1M and 10M stored access tokens.
# The stored rows are generated with SQL (not HTTP), in the database of a seeded onyx-id; the
# server is stopped while rows are added and started again for each size. Writes the section
# "How cost grows" of bench/results.md (the rest of the file is run.sh's and stays as it is).
#
#   bash bench/growth.sh           (from the repository root; about 10 minutes per backend)
#
# Settings (environment): BENCH_GROWTH_SIZES="10000 1000000 10000000" BENCH_DURATION=10s
# BENCH_WARMUP=3s BENCH_RUNS=3 BENCH_CONNECTIONS=32 BENCH_BACKENDS="sqlite postgres" BENCH_PG
# BENCH_PG_POOL=4 BENCH_BIN BENCH_OUT BENCH_ONYX_PORT=18080 BENCH_KEEP=1, as for run.sh;
# BENCH_COMMIT, the commit a prebuilt BENCH_BIN was built from.
# Servers are pinned to core 0 and wrk to core 1, as in run.sh; no peer runs here.
set -euo pipefail
# The servers measured here stop at once on SIGTERM (no drain: nothing balances them).
export ONYX_DRAIN_SECONDS=0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
SIZES="${BENCH_GROWTH_SIZES:-10000 1000000 10000000}"
DURATION="${BENCH_DURATION:-10s}"
WARMUP="${BENCH_WARMUP:-3s}"
RUNS="${BENCH_RUNS:-3}"
CONNS="${BENCH_CONNECTIONS:-32}"
BACKENDS="${BENCH_BACKENDS:-sqlite postgres}"
if [ -z "${BENCH_PG:-}" ] && [ -S /var/run/postgresql/.s.PGSQL.5432 ]; then
  PG_BASE="postgres://postgres@%2Fvar%2Frun%2Fpostgresql"
else
  PG_BASE="${BENCH_PG:-postgres://postgres@127.0.0.1:5432}"
fi
PG_POOL="${BENCH_PG_POOL:-4}"
ONYX_PORT="${BENCH_ONYX_PORT:-18080}"
ONYX_URL="http://127.0.0.1:$ONYX_PORT"
OUT="${BENCH_OUT:-$here/results.md}"
started=$(date +%s)

log() { printf '[growth %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

command -v wrk >/dev/null || { apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
if [ -n "${BENCH_BIN:-}" ]; then
  BIN="$(realpath "$BENCH_BIN")"
else
  log "building onyx-id (release)"
  (cd "$root" && cargo build --release --quiet)
  BIN="$root/target/release/onyx-id"
fi
work="$(mktemp -d "${TMPDIR:-/tmp}/onyx-growth.XXXXXX")"
raw="$work/raw"
mkdir -p "$raw"
onyx_pid=""
pg_db=""
# stop PID, start_onyx BACKEND URL
# shellcheck source=bench/servers.sh
source "$here/servers.sh"
cleanup() {
  stop "$onyx_pid"
  [ -n "$pg_db" ] && psql "$PG_BASE/postgres" -qAt -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1
  if [ -n "${BENCH_KEEP:-}" ]; then log "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

wrk_run() { # out duration script [VAR=value...]
  local out="$1" duration="$2" script="$3"
  shift 3
  python3 "$here/bench.py" run "$out" "$onyx_pid" -- env "$@" BENCH_LUA_DIR="$here" \
    taskset -c 1 wrk -t1 -c"$CONNS" -d"$duration" --latency -s "$here/$script" "$ONYX_URL"
}
introspection() {
  wrk_run "$1" "$2" introspect.lua TOKEN="$ONYX_AT" BASIC="$RS_BASIC" INTROSPECT_PATH=/introspect
}
client_credentials() {
  wrk_run "$1" "$2" token_cc.lua BASIC="$APP_BASIC" SCOPE=grants%3Aread
}

grow() { # backend url rows: adds stored access tokens until the table holds `rows`
  python3 "$here/bench.py" grow "$1" "$2" "$3" "$APP_ID" "$AUDIENCE"
}

for backend in $BACKENDS; do
  case "$backend" in
    sqlite) url="sqlite://$work/onyx-growth.db" ;;
    postgres)
      if ! psql "$PG_BASE/postgres" -qAt -c 'SELECT 1' >/dev/null 2>&1; then
        log "PostgreSQL at $PG_BASE does not answer: skipped"
        continue
      fi
      pg_db="onyx_growth_$$"
      psql "$PG_BASE/postgres" -qAt -c "CREATE DATABASE $pg_db" >/dev/null
      url="$PG_BASE/$pg_db"
      ;;
    *) log "unknown backend $backend"; exit 1 ;;
  esac
  log "$backend: seeding with the CLI"
  ONYX_DATABASE_URL="$url" ONYX_KEYS_DIR="$work/keys-$backend" RUST_LOG=warn \
    python3 "$here/bench.py" setup "$BIN" "$work/seed-$backend.env"
  # shellcheck disable=SC1090
  source "$work/seed-$backend.env" # APP_ID APP_BASIC RS_BASIC AUDIENCE
  start_onyx "$backend" "$url"
  mkdir -p "$work/pools-$backend"
  eval "$(python3 "$here/bench.py" tokens "$ONYX_URL" "$work/seed-$backend.env" \
    "$work/pools-$backend" 1 1)" # sets ONYX_AT
  for size in $SIZES; do
    stop "$onyx_pid"
    log "$backend: $size stored access tokens"
    grow "$backend" "$url" "$size"
    start_onyx "$backend" "$url"
    for c in introspection client_credentials; do
      "$c" "$raw/warmup-$backend-$size-$c.txt" "$WARMUP"
      for i in $(seq "$RUNS"); do "$c" "$raw/$backend--$size--$c--$i.txt" "$DURATION"; done
    done
  done
  stop "$onyx_pid"
  onyx_pid=""
  if [ -n "$pg_db" ]; then
    psql "$PG_BASE/postgres" -qAt -c "DROP DATABASE $pg_db WITH (FORCE)" >/dev/null
    pg_db=""
  fi
done

elapsed=$(($(date +%s) - started))
# BENCH_COMMIT names what a prebuilt BENCH_BIN was built from (default: this checkout).
commit="${BENCH_COMMIT:-$(cd "$root" && git rev-parse --short HEAD)$(cd "$root" && git diff --quiet HEAD -- src migrations Cargo.toml Cargo.lock || echo ' + uncommitted changes')}"
python3 "$here/bench.py" growth-report "$raw" "$OUT" "$commit" "$elapsed s" "$CONNS" "$DURATION" "$RUNS"
log "done in ${elapsed} s: $OUT"
