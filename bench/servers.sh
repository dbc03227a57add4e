# Sourced by bench/run.sh and bench/growth.sh: starting and stopping onyx-id the same way in both.
# Uses BIN, ONYX_PORT, ONYX_URL, PG_POOL, work and here from the script that sources it.

stop() { # pid: TERM, then KILL after 5 s
  local pid="$1"
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
}

start_onyx() { # backend database_url: onyx-id on core 0, its pid in onyx_pid
  local pool=8
  [ "$1" = postgres ] && pool="$PG_POOL"
  ONYX_BIND="127.0.0.1:$ONYX_PORT" ONYX_ISSUER="$ONYX_URL" ONYX_DATABASE_URL="$2" \
    ONYX_DB_POOL_SIZE="$pool" ONYX_KEYS_DIR="$work/keys-$1" RUST_LOG=warn ONYX_LOG_FORMAT=json \
    taskset -c 0 "$BIN" serve >>"$work/onyx-$1.log" 2>&1 &
  onyx_pid=$!
  python3 "$here/bench.py" wait "$ONYX_URL/healthz" 60
}
