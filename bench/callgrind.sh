#!/usr/bin/env bash
# Counts the instructions onyx-id executes per request of one bench case, under valgrind's
# callgrind. Unlike wrk's requests per second, the count does not depend on what else the
# machine is doing: the same binary and requests give the same total, so two builds can be
# compared on a busy machine, to the function.
#
#   bash bench/callgrind.sh BIN [discovery|introspection|introspection_self|client_credentials] [N]
#
# BIN is a release binary (build one with CARGO_PROFILE_RELEASE_DEBUG=line-tables-only for
# function names). Seeds a fresh SQLite database like run.sh, starts BIN under callgrind with
# instrumentation off, sends 200 warm-up requests, then collects over N (default 2000) requests on
# one keep-alive connection, and prints the instructions per request and the top functions
# (inclusive). Keeps callgrind.out in $work (printed) for callgrind_annotate.
set -euo pipefail
# The servers measured here stop at once on SIGTERM (no drain: nothing balances them).
export ONYX_DRAIN_SECONDS=0
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BIN="$(realpath "$1")"
CASE="${2:-discovery}"
N="${3:-2000}"
PORT="${BENCH_ONYX_PORT:-18091}"
URL="http://127.0.0.1:$PORT"

command -v valgrind >/dev/null || { apt-get update -qq && apt-get install -y -qq valgrind >/dev/null; }
work="$(mktemp -d "${TMPDIR:-/tmp}/onyx-callgrind.XXXXXX")"
pid=""
cleanup() {
  if [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null; then kill -TERM "$pid"; wait "$pid" || true; fi
}
trap cleanup EXIT

export ONYX_DATABASE_URL="sqlite://$work/onyx.db" ONYX_KEYS_DIR="$work/keys" RUST_LOG=warn \
  ONYX_LOG_FORMAT=json
python3 "$here/bench.py" setup "$BIN" "$work/seed.env"
# shellcheck disable=SC1090
source "$work/seed.env"
ONYX_BIND="127.0.0.1:$PORT" ONYX_ISSUER="$URL" valgrind --tool=callgrind --instr-atstart=no \
  --callgrind-out-file="$work/callgrind.out" "$BIN" serve >"$work/onyx.log" 2>&1 &
pid=$!
python3 "$here/bench.py" wait "$URL/healthz" 120
token=""
if [ "$CASE" = introspection ] || [ "$CASE" = introspection_self ]; then
  mkdir -p "$work/pools"
  eval "$(python3 "$here/bench.py" tokens "$URL" "$work/seed.env" "$work/pools" 1 1)"
  token="$ONYX_AT"
  [ "$CASE" = introspection_self ] && token="$ONYX_SELF_AT"
fi

# One keep-alive connection, as wrk's; instrumentation is switched on after the warm-up.
CASE="$CASE" N="$N" URL="$URL" TOKEN="$token" RS_BASIC="${RS_BASIC:-}" \
  APP_BASIC="${APP_BASIC:-}" PID="$pid" python3 - <<'EOF'
import http.client, os, subprocess, urllib.parse
case, n, url = os.environ["CASE"], int(os.environ["N"]), urllib.parse.urlsplit(os.environ["URL"])
conn = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
if case == "discovery":
    req = ("GET", "/.well-known/openid-configuration", None, {})
elif case == "introspection":
    req = ("POST", "/introspect", "token=" + os.environ["TOKEN"] + "&token_type_hint=access_token",
           {"Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic " + os.environ["RS_BASIC"]})
elif case == "introspection_self":
    # The app introspecting its own token, with its own credentials.
    req = ("POST", "/introspect", "token=" + os.environ["TOKEN"] + "&token_type_hint=access_token",
           {"Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic " + os.environ["APP_BASIC"]})
elif case == "client_credentials":
    req = ("POST", "/token", "grant_type=client_credentials&scope=grants%3Aread",
           {"Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "Basic " + os.environ["APP_BASIC"]})
else:
    raise SystemExit(f"unknown case {case}")
def send(k):
    for _ in range(k):
        conn.request(req[0], req[1], body=req[2], headers=req[3])
        r = conn.getresponse()
        body = r.read()
        if r.status != 200 or (case.startswith("introspection") and b'"active":true' not in body):
            raise SystemExit(f"unexpected answer {r.status}: {body[:200]!r}")
send(200)
subprocess.run(["callgrind_control", "--instr=on", os.environ["PID"]], check=True,
               stdout=subprocess.DEVNULL)
send(n)
subprocess.run(["callgrind_control", "--instr=off", os.environ["PID"]], check=True,
               stdout=subprocess.DEVNULL)
EOF
kill -TERM "$pid"
wait "$pid" || true
pid=""
set +o pipefail # head and grep -m1 close the pipes below early
total="$(callgrind_annotate "$work/callgrind.out" 2>/dev/null | grep -m1 "PROGRAM TOTALS" | awk '{gsub(",","",$1); print $1}')"
echo "== $CASE: $N requests, $total instructions, $((total / N)) per request"
echo "== inclusive, top 40 (instructions per request)"
callgrind_annotate --inclusive=yes "$work/callgrind.out" 2>/dev/null \
  | grep -E "^ *[0-9,]+ \(" | head -40 \
  | sed -E 's/ \[[^]]*\]$//' | awk -v n="$N" '{c=$1; gsub(",","",c); $1=""; $2=""; printf "%9d %s\n", c/n, substr($0,3)}'
echo "== kept: $work"
