#!/usr/bin/env python3
"""Instructions and queries per consent change, with and without a subscribed endpoint
(issue 13, "Cost"): the case of bench/consent_events.py, counted instead of timed.

    python3 bench/callgrind_consent.py BINARY [--requests 1000] [--queries-only]

On SQLite. Seeds like consent_events.py (bench.py's setup, one real sign-in and consent for the
template grant, copied in SQL into a pool of users with an active grant each; an endpoint added
with the CLI). Then, on one server and one keep-alive connection, two phases of the partner's
`DELETE /api/v1/grants/{sub}`, each ending a different grant:

- without: the endpoint disabled, so no enabled endpoint is subscribed;
- written: the endpoint enabled and subscribed to `consent.revoked`, its URL a port that
  accepts nothing, so each change writes its event's outbox row and the worker only splits
  the rows into events and deliveries (its first 64 attempts hang; nothing else is claimed
  while they do). Under callgrind the server runs many times slower, so each split takes
  fewer rows than at full speed, and the split's share here is larger than in a timed run.

First, with the server logging sqlx's statements (`RUST_LOG=sqlx::query=debug`), the SQL
statements per request of each phase. Then (unless --queries-only) the server again under
valgrind's callgrind, instrumentation on only while the measured requests run (after 200
warm-up requests per phase): instructions per request of each phase, every thread of the
process counted (the request path, SQLite's, the worker, the WAL checkpointer), and the
functions that differ most. Like bench/callgrind.sh, the counts do not depend on the machine's
load. BINARY should be a release build with CARGO_PROFILE_RELEASE_DEBUG=line-tables-only for
function names.
"""

import argparse
import http.client
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
import consent_events  # noqa: E402
import webhooks  # noqa: E402

PORT = 18092
BASE = f"http://127.0.0.1:{PORT}"
WARMUP = 200


def delete_all(subs, basic):
    conn = http.client.HTTPConnection("127.0.0.1", PORT, timeout=120)
    for sub in subs:
        conn.request("DELETE", f"/api/v1/grants/{sub}", headers={"Authorization": f"Basic {basic}"})
        r = conn.getresponse()
        body = r.read()
        if r.status != 200:
            sys.exit(f"unexpected answer {r.status}: {body[:200]!r}")
    conn.close()


def set_endpoint(db, endpoint, state, url):
    db.execute(f"UPDATE webhook_endpoints SET state = '{state}', url = '{url}' WHERE id = '{endpoint}'")


def main():
    p = argparse.ArgumentParser(description="instructions and queries per consent change")
    p.add_argument("binary")
    p.add_argument("--requests", type=int, default=1000)
    p.add_argument("--queries-only", action="store_true")
    args = p.parse_args()
    binary = os.path.realpath(args.binary)
    work = tempfile.mkdtemp(prefix="onyx-callgrind-consent.")
    server = None
    try:
        url = f"sqlite://{os.path.join(work, 'onyx.db')}"
        db = webhooks.Db(url)
        env = dict(os.environ, ONYX_DRAIN_SECONDS="0", ONYX_DATABASE_URL=url, ONYX_KEYS_DIR=os.path.join(work, "keys"),
                   ONYX_BIND=f"127.0.0.1:{PORT}", ONYX_ISSUER=BASE,
                   ONYX_WEBHOOK_ALLOW_PRIVATE="1", ONYX_WEBHOOK_INSECURE_HTTP="1",
                   RUST_LOG="warn", ONYX_LOG_FORMAT="json")
        seed_env = os.path.join(work, "seed.env")
        subprocess.run([sys.executable, os.path.join(HERE, "bench.py"), "setup", binary, seed_env],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        seed = bench.read_env(seed_env)
        log = open(os.path.join(work, "seed.log"), "w")
        server = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=log)
        bench.cmd_wait(f"{BASE}/healthz", 30)
        pools = os.path.join(work, "pools")
        os.mkdir(pools)
        subprocess.run([sys.executable, os.path.join(HERE, "bench.py"), "tokens", BASE, seed_env,
                        pools, "1", "1"], check=True, stdout=subprocess.DEVNULL)
        server.terminate()
        server.wait()
        server = None
        added = webhooks.cli(binary, env, "apps", "webhooks", "add", "--app", seed["APP_ID"],
                             "--url", "http://127.0.0.1:9/hook", "--event", "consent.revoked")
        endpoint = added["endpoint_id"]
        stalled = socket.socket()
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(1)
        stalled_url = f"http://127.0.0.1:{stalled.getsockname()[1]}/hook"
        phases = (("without", "disabled"), ("written", "enabled"))

        # 1. Statements per request, from sqlx's log.
        n_q = min(args.requests, 200)
        qenv = dict(env, RUST_LOG="warn,sqlx::query=debug")
        qlog_path = os.path.join(work, "queries.log")
        qlog = open(qlog_path, "w")
        server = subprocess.Popen([binary, "serve"], env=qenv, stdout=qlog, stderr=qlog)
        bench.cmd_wait(f"{BASE}/healthz", 30)
        queries = {}
        for variant, state in phases:
            subs = consent_events.copy_grants(db, f"q{variant}", n_q + 20)
            set_endpoint(db, endpoint, state, stalled_url)
            delete_all(subs[:20], seed["APP_BASIC"])
            time.sleep(1.5)
            qlog.flush()
            before = open(qlog_path).read().count('"sqlx::query"')
            start = time.time()
            delete_all(subs[20:], seed["APP_BASIC"])
            took = time.time() - start
            qlog.flush()
            lines = open(qlog_path).read().count('"sqlx::query"') - before
            # The worker's polls (one a second) are in the count too; shown apart.
            queries[variant] = {"statements_per_request": round(lines / n_q, 2),
                                "seconds": round(took, 2)}
        server.terminate()
        server.wait()
        server = None
        print(json.dumps({"statements": queries}), flush=True)
        if args.queries_only:
            return 0

        # 2. Instructions per request, under callgrind.
        if not shutil.which("valgrind"):
            subprocess.run(["apt-get", "install", "-y", "-qq", "valgrind"], check=True)
        out = os.path.join(work, "callgrind.out")
        vlog = open(os.path.join(work, "valgrind.log"), "w")
        server = subprocess.Popen(["valgrind", "--tool=callgrind", "--instr-atstart=no",
                                   f"--callgrind-out-file={out}", binary, "serve"],
                                  env=env, stdout=vlog, stderr=vlog)
        bench.cmd_wait(f"{BASE}/healthz", 180)
        result = {}
        for i, (variant, state) in enumerate(phases):
            subs = consent_events.copy_grants(db, f"c{variant}", args.requests + WARMUP)
            set_endpoint(db, endpoint, state, stalled_url)
            delete_all(subs[:WARMUP], seed["APP_BASIC"])
            time.sleep(2)
            ctl = ["callgrind_control"]
            subprocess.run(ctl + ["--zero", str(server.pid)], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(ctl + ["--instr=on", str(server.pid)], check=True, stdout=subprocess.DEVNULL)
            delete_all(subs[WARMUP:], seed["APP_BASIC"])
            subprocess.run(ctl + ["--instr=off", str(server.pid)], check=True, stdout=subprocess.DEVNULL)
            subprocess.run(ctl + [f"--dump={variant}", str(server.pid)], check=True,
                           stdout=subprocess.DEVNULL)
        server.terminate()
        server.wait()
        server = None
        dumps = sorted(f for f in os.listdir(work) if f.startswith("callgrind.out"))
        per_fn = {}
        for variant, _ in phases:
            def trigger(f):
                with open(os.path.join(work, f), errors="replace") as fh:
                    head = fh.read(4000)
                return next((l for l in head.splitlines() if l.startswith("desc: Trigger")), "")
            dump = next(os.path.join(work, f) for f in dumps if variant in trigger(f))
            ann = subprocess.run(["callgrind_annotate", "--inclusive=yes", dump],
                                 capture_output=True, text=True).stdout
            total = int(re.search(r"([\d,]+) \(100.0%\)\s+PROGRAM TOTALS", ann).group(1).replace(",", ""))
            result[variant] = total // args.requests
            per_fn[variant] = {}
            for line in ann.splitlines():
                m = re.match(r"\s*([\d,]+) \([ \d.]+%\)\s+(.*)$", line)
                if m and "PROGRAM TOTALS" not in line:
                    per_fn[variant][re.sub(r" \[[^]]*\]$", "", m.group(2))] = \
                        int(m.group(1).replace(",", "")) // args.requests
        print(json.dumps({"instructions_per_request": result,
                          "written_minus_without": result["written"] - result["without"]}))
        diff = sorted(((per_fn["written"].get(k, 0) - per_fn["without"].get(k, 0), k)
                       for k in set(per_fn["written"]) | set(per_fn["without"])), reverse=True)
        print("== inclusive instructions per request, written minus without (top 40)")
        for d, k in diff[:40]:
            print(f"{d:9d} {per_fn['without'].get(k, 0):9d} -> {per_fn['written'].get(k, 0):9d}  {k[:150]}")
        return 0
    finally:
        if server:
            server.terminate()
            server.wait()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
