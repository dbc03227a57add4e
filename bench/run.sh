#!/usr/bin/env bash
# Load benchmark: onyx-id against node-oidc-provider (../shared/bench-peer), side by side in one
# run, on SQLite and on PostgreSQL. Writes bench/results.md.
#
#   bash bench/run.sh            (from the repository root; about 10 minutes)
#
# Servers run pinned to core 0 (taskset -c 0), wrk to core 1 (-t1 -c32). Each case gets a
# warm-up, then BENCH_RUNS runs of BENCH_DURATION, onyx and peer interleaved; the report takes
# the medians, and a case with any non-2xx answer or socket error is reported as failed. Each
# run also records the CPU that processes outside the bench took meanwhile (a build, tests):
# figures with more than 15% of a core of such load are marked in the report.
# Cases: introspection of an active access token by a resource server and by the app of its own
# token (peer: opaque token, introspected by its client), client_credentials
# (both ES256 JWTs), refresh_token rotation (onyx only), token revocation (onyx only), discovery
# document (HTTP floor); with BENCH_DPOP=1 also client_credentials with a DPoP proof per request
# (onyx only; each run's proofs are made just before it by bench/dpop_proofs.rs, BENCH_DPOP_POOL
# of them, default 150000: a run faster than that per duration empties the pool and fails).
#
# Settings (environment): BENCH_DURATION=10s BENCH_WARMUP=3s BENCH_RUNS=3 BENCH_CONNECTIONS=32
# BENCH_BACKENDS="sqlite postgres" BENCH_PG (default: the local server's Unix socket in
# /var/run/postgresql when it exists, else postgres://postgres@127.0.0.1:5432)
# BENCH_PG_POOL=4 (onyx-id's --db-pool-size on PostgreSQL: the server shares the 2 cores)
# BENCH_BIN (a prebuilt onyx-id binary instead of building this checkout's; to compare builds),
# BENCH_OUT (where the report goes; default bench/results.md, which it rewrites from the top),
# BENCH_QUIET_WAIT=300 BENCH_ONYX_PORT=18080 BENCH_PEER_PORT=13000; BENCH_KEEP=1 keeps the work
# dir (raw wrk outputs, server logs). PostgreSQL is skipped, with a note, when the server does
# not answer. The peer's npm install is cached in $PEER_WORK (run-peer.sh's default).
# Exit status: 0 when every case ran cleanly, 1 when a case failed or setup went wrong.
set -euo pipefail
# The servers measured here stop at once on SIGTERM (no drain: nothing balances them).
export ONYX_DRAIN_SECONDS=0

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/.." && pwd)"
peer_dir="$(cd "$root/../shared/bench-peer" && pwd)"
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
PEER_PORT="${BENCH_PEER_PORT:-13000}"
ONYX_URL="http://127.0.0.1:$ONYX_PORT"
PEER_URL="http://127.0.0.1:$PEER_PORT"
POOL_SIZE=$((CONNS + 16)) # refresh tokens per run: one per connection, and some slack
started=$(date +%s)

log() { printf '[bench %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# ---- 1. tools, build, work dir -------------------------------------------------------------
if ! command -v wrk >/dev/null; then
  log "installing wrk"
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
for tool in taskset python3 node npm; do
  command -v "$tool" >/dev/null || { log "missing: $tool"; exit 1; }
done
if [ -n "${BENCH_BIN:-}" ]; then
  BIN="$(realpath "$BENCH_BIN")"
  log "using the prebuilt $BIN"
else
  log "building onyx-id (release)"
  (cd "$root" && cargo build --release --quiet)
  BIN="$root/target/release/onyx-id"
fi
if [ "${BENCH_DPOP:-0}" = 1 ]; then
  log "building the DPoP proof maker (release)"
  (cd "$root" && cargo build --release --quiet --example dpop_proofs)
  PROOFS="$root/target/release/examples/dpop_proofs"
fi
DPOP_POOL="${BENCH_DPOP_POOL:-150000}"

work="$(mktemp -d "${TMPDIR:-/tmp}/onyx-bench.XXXXXX")"
raw="$work/raw"
mkdir -p "$raw"
notes=()
onyx_pid=""
peer_pid=""
pg_db=""

# stop PID, start_onyx BACKEND URL
# shellcheck source=bench/servers.sh
source "$here/servers.sh"

cleanup() {
  stop "$onyx_pid"
  stop "$peer_pid"
  if [ -n "$pg_db" ]; then
    psql "$PG_BASE/postgres" -qAt -c "DROP DATABASE IF EXISTS $pg_db WITH (FORCE)" >/dev/null 2>&1 || true
  fi
  if [ -n "${BENCH_KEEP:-}" ]; then log "kept $work (wrk outputs, server logs)"; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- servers -------------------------------------------------------------------------------
start_peer() { # format
  PORT="$PEER_PORT" FORMAT="$1" ALG=ES256 taskset -c 0 bash "$peer_dir/run-peer.sh" \
    >>"$work/peer.log" 2>&1 &
  peer_pid=$! # run-peer.sh execs node, so this is the server's pid
  python3 "$here/bench.py" wait "$PEER_URL/.well-known/openid-configuration" 180
}

# ---- wrk -----------------------------------------------------------------------------------
wrk_run() { # out duration url script [VAR=value...]
  local out="$1" duration="$2" url="$3" script="$4"
  shift 4
  python3 "$here/bench.py" run "$out" "$onyx_pid,$peer_pid" -- env "$@" BENCH_LUA_DIR="$here" \
    taskset -c 1 wrk -t1 -c"$CONNS" -d"$duration" --latency -s "$here/$script" "$url"
}

# One function per (server, case): out-file duration.
onyx_introspection() {
  wrk_run "$1" "$2" "$ONYX_URL" introspect.lua TOKEN="$ONYX_AT" BASIC="$RS_BASIC" \
    INTROSPECT_PATH=/introspect
}
peer_introspection() {
  wrk_run "$1" "$2" "$PEER_URL" introspect.lua TOKEN="$PEER_AT" BASIC="$PEER_BASIC" \
    INTROSPECT_PATH=/token/introspection
}
# The other caller: the app introspecting its own token (the peer's case is the same one).
onyx_introspection_self() {
  wrk_run "$1" "$2" "$ONYX_URL" introspect.lua TOKEN="$ONYX_SELF_AT" BASIC="$APP_BASIC" \
    INTROSPECT_PATH=/introspect
}
peer_introspection_self() { peer_introspection "$@"; }
onyx_client_credentials() {
  wrk_run "$1" "$2" "$ONYX_URL" token_cc.lua BASIC="$APP_BASIC" SCOPE=grants%3Aread
}
peer_client_credentials() {
  wrk_run "$1" "$2" "$PEER_URL" token_cc.lua BASIC="$PEER_BASIC" SCOPE=api%3Aread
}
onyx_refresh() { # every run spends its own pool of refresh tokens
  wrk_run "$1" "$2" "$ONYX_URL" refresh.lua BASIC="$APP_BASIC" POOL="$work/pools/pool-$pool_next.txt"
  pool_next=$((pool_next + 1))
}
onyx_revocation() { # cycles through the warm-up's pool (spent by then: their families revoked)
  wrk_run "$1" "$2" "$ONYX_URL" revoke.lua BASIC="$APP_BASIC" POOL="$work/pools/pool-0.txt"
}
onyx_client_credentials_dpop() { # every run gets proofs made just before it (iat window)
  local proofs="$work/proofs.txt"
  "$PROOFS" "$ONYX_URL/token" "$DPOP_POOL" >"$proofs"
  wrk_run "$1" "$2" "$ONYX_URL" token_cc_dpop.lua BASIC="$APP_BASIC" SCOPE=grants%3Aread \
    POOL="$proofs"
}
onyx_discovery() { wrk_run "$1" "$2" "$ONYX_URL" discovery.lua; }
peer_discovery() { wrk_run "$1" "$2" "$PEER_URL" discovery.lua; }

bench_case() { # backend case server...: warm-up each, then RUNS rounds, servers interleaved
  local backend="$1" case="$2" s i
  shift 2
  log "$backend: $case ($*)"
  for s in "$@"; do "${s}_${case}" "$raw/warmup-$backend-$case-$s.txt" "$WARMUP"; done
  for i in $(seq "$RUNS"); do
    for s in "$@"; do "${s}_${case}" "$raw/$backend--$case--$s--$i.txt" "$DURATION"; done
  done
}

# Other load (a build, a test run) skews every figure: wait up to BENCH_QUIET_WAIT seconds
# (default 300) for a quiet machine, then go on anyway (the report marks the runs it touched).
quiet_wait="${BENCH_QUIET_WAIT:-300}"
while :; do
  python3 "$here/bench.py" run "$work/quiet.txt" "" -- sleep 3
  load="$(sed -n 's/^bench-foreign-cpu: \([0-9]*\)%/\1/p' "$work/quiet.txt")"
  [ "$load" -le 15 ] && break
  if [ "$quiet_wait" -le 0 ]; then log "the machine is still busy ($load% of a core): going on"; break; fi
  log "the machine is busy ($load% of a core used by other processes): waiting"
  sleep 7
  quiet_wait=$((quiet_wait - 10))
done

PEER_BASIC="$(printf 'bench:benchsecret-benchsecret-benchsecret' | base64 -w0)"

# ---- 2-4. one pass per backend -------------------------------------------------------------
bench_backend() { # backend database_url
  local backend="$1" url="$2"
  log "$backend: seeding with the CLI"
  ONYX_DATABASE_URL="$url" ONYX_KEYS_DIR="$work/keys-$backend" RUST_LOG=warn \
    python3 "$here/bench.py" setup "$BIN" "$work/seed-$backend.env"
  # shellcheck disable=SC1090
  source "$work/seed-$backend.env" # APP_ID APP_BASIC RS_BASIC AUDIENCE
  start_onyx "$backend" "$url"
  log "$backend: onyx-id up (pid $onyx_pid); seeding refresh tokens"
  rm -rf "$work/pools" && mkdir -p "$work/pools"
  # A pool for the warm-up and one for each run.
  eval "$(python3 "$here/bench.py" tokens "$ONYX_URL" "$work/seed-$backend.env" "$work/pools" \
    $((RUNS + 1)) "$POOL_SIZE")" # sets ONYX_AT and ONYX_SELF_AT
  pool_next=0

  start_peer opaque
  PEER_AT="$(python3 "$here/bench.py" peer-token "$PEER_URL")"
  bench_case "$backend" introspection onyx peer
  bench_case "$backend" introspection_self onyx peer
  bench_case "$backend" discovery onyx peer
  stop "$peer_pid"
  start_peer jwt
  bench_case "$backend" client_credentials onyx peer
  stop "$peer_pid"
  peer_pid=""
  bench_case "$backend" refresh onyx
  bench_case "$backend" revocation onyx
  if [ "${BENCH_DPOP:-0}" = 1 ]; then bench_case "$backend" client_credentials_dpop onyx; fi

  kill -0 "$onyx_pid" 2>/dev/null ||
    notes+=("onyx-id exited during the $backend pass; its last log line: \`$(tail -n1 "$work/onyx-$backend.log" | cut -c1-300)\`")
  stop "$onyx_pid"
  onyx_pid=""
  local problems
  local pattern='"level":"(ERROR|WARN)"'
  problems="$(grep -cE "$pattern" "$work/onyx-$backend.log" || true)"
  if [ "$problems" != "0" ]; then
    notes+=("onyx-id logged $problems WARN/ERROR lines on $backend, first: \`$(grep -m1 -E "$pattern" "$work/onyx-$backend.log" | cut -c1-300)\`")
  fi
}

for backend in $BACKENDS; do
  case "$backend" in
    sqlite)
      bench_backend sqlite "sqlite://$work/onyx-bench.db"
      ;;
    postgres)
      if ! psql "$PG_BASE/postgres" -qAt -c 'SELECT 1' >/dev/null 2>&1; then
        log "PostgreSQL at $PG_BASE does not answer: skipped"
        notes+=("PostgreSQL at $PG_BASE did not answer: not measured.")
        continue
      fi
      pg_db="onyx_bench_$$"
      psql "$PG_BASE/postgres" -qAt -c "CREATE DATABASE $pg_db" >/dev/null
      notes+=("PostgreSQL $(psql "$PG_BASE/postgres" -qAt -c 'SHOW server_version') runs on this machine unpinned (it shares both cores with onyx-id and wrk); onyx-id connects over $( [[ $PG_BASE == *%2F* ]] && echo 'its Unix socket' || echo TCP ) with --db-pool-size $PG_POOL.")
      bench_backend postgres "$PG_BASE/$pg_db"
      psql "$PG_BASE/postgres" -qAt -c "DROP DATABASE $pg_db WITH (FORCE)" >/dev/null
      pg_db=""
      ;;
    *) log "unknown backend $backend"; exit 1 ;;
  esac
done

# ---- 5-6. report ---------------------------------------------------------------------------
elapsed=$(($(date +%s) - started))
python3 - "$work/meta.json" "${notes[@]+"${notes[@]}"}" <<EOF
import json, platform, sys
def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"
def mem():
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal"):
            return f"{int(line.split()[1]) / 1048576:.0f} GiB RAM"
json.dump({
    "date": "$(date -u '+%Y-%m-%d %H:%M UTC')",
    "nproc": "$(nproc)", "cpu": cpu(), "mem": mem(), "kernel": platform.release(),
    "commit": "$(cd "$root" && git rev-parse --short HEAD)$(cd "$root" && git diff --quiet HEAD -- src migrations Cargo.toml Cargo.lock || echo ' + uncommitted changes')",
    "peer_version": json.load(open("$peer_dir/package.json"))["dependencies"]["oidc-provider"],
    "node": "$(node --version)",
    "connections": "$CONNS", "duration": "$DURATION", "warmup": "$WARMUP", "runs": "$RUNS",
    "elapsed": "${elapsed} s",
    "notes": sys.argv[2:],
}, open(sys.argv[1], "w"))
EOF
status=0
OUT="${BENCH_OUT:-$here/results.md}"
python3 "$here/bench.py" report "$raw" "$OUT" "$work/meta.json" || status=$?
log "done in ${elapsed} s: $OUT"
cat "$OUT"
exit "$status"
