#!/usr/bin/env python3
"""What writing events costs the consent changes that cause them (issue 13, "Cost").

    python3 bench/consent_events.py [BINARY] [--postgres BASE_URL] [--runs 3] [--duration 5s]

The case is the grants API's partner DELETE of a whole grant (`DELETE /api/v1/grants/{sub}`,
bench/grant_delete.lua): every request ends a different active grant, revoking its permissions
with their history rows and enqueueing a `consent.revoked` event in the same transaction. Two
variants, on one server, runs interleaved:

- without: the app has no enabled endpoint, so the enqueue is one query that finds no
  subscriber and writes nothing;
- with: the app has one enabled endpoint subscribed to `consent.revoked` (a local receiver,
  an asyncio server on core 1 that answers 204), so each change also writes the event's
  outbox row, and the worker splits the rows into events and deliveries and delivers them on
  the server's core meanwhile;
- written: the same endpoint, but its URL is a port that never answers (a listener that
  accepts nothing), so the worker has at most its 64 attempts in flight and otherwise only
  splits the outbox: what remains is the cost of writing the event (the outbox row, and its
  split into the event and its delivery). Its deliveries are marked failed after the run.

Seeding: bench.py's setup (user, app, resource server) and one real sign-in and consent make
the template grant; it is then copied in SQL into a fresh pool of users with an active grant
for each run (a grant can be ended once). The endpoint is switched between runs by its state
(`enabled` / `disabled`), and each run waits until the worker has no delivery left. The server
is pinned to core 0 (`taskset -c 0`), wrk to core 1 (`-t1 -c32`). Prints a JSON line per run
and a summary: median req/s per variant, the range, and the other load (CPU used by
processes outside the bench, % of a core).
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import bench  # noqa: E402
import webhooks  # noqa: E402

PORT = 18090
BASE = f"http://127.0.0.1:{PORT}"


def copy_grants(db, tag, n):
    """n users, each with a copy of the template grant (active); returns their ids."""
    tmpl_grant, tmpl_user = db.scalar(
        "SELECT id || ' ' || user_id FROM grants WHERE status = 'active' AND id NOT LIKE 'bg_%'"
        " ORDER BY created_at LIMIT 1").split(" ")

    def columns(table):
        if db.sqlite:
            import sqlite3
            con = sqlite3.connect(db.sqlite)
            cols = [r[1] for r in con.execute(f"PRAGMA table_info({table})")]
            con.close()
            return cols
        out = subprocess.run(
            ["psql", db.url, "-qAt", "-c",
             f"SELECT column_name FROM information_schema.columns WHERE table_name = '{table}'"
             " ORDER BY ordinal_position"], check=True, capture_output=True, text=True).stdout
        return out.split()

    i = "CAST(nums.i AS TEXT)"
    new = {
        "users": {"id": f"'bu_{tag}_' || {i}", "email": f"'b_{tag}_' || {i} || '@bench.example'"},
        "grants": {"id": f"'bg_{tag}_' || {i}", "user_id": f"'bu_{tag}_' || {i}"},
        "grant_scopes": {"grant_id": f"'bg_{tag}_' || {i}"},
    }
    template = {"users": f"t.id = '{tmpl_user}'", "grants": f"t.id = '{tmpl_grant}'",
                "grant_scopes": f"t.grant_id = '{tmpl_grant}'"}
    sql = []
    for table in ("users", "grants", "grant_scopes"):
        cols = columns(table)
        exprs = [new[table].get(c, f"t.{c}") for c in cols]
        sql.append(f"INSERT INTO {table} ({', '.join(cols)}) SELECT {', '.join(exprs)}"
                   f" FROM {table} t, {webhooks.numbers(n)} WHERE {template[table]};")
    db.execute("\n".join(sql))
    return [f"bu_{tag}_{k}" for k in range(1, n + 1)]


def start_server(binary, env, log):
    server = subprocess.Popen(["taskset", "-c", "0", binary, "serve"], env=env,
                              stdout=log, stderr=log)
    bench.cmd_wait(f"{BASE}/healthz", 30)
    return server


def waiting(db, rows):
    """COUNT(*) of `rows`; 0 for a table the binary does not have (the outbox before 0020)."""
    try:
        return int(db.scalar(f"SELECT COUNT(*) FROM {rows}"))
    except Exception:  # noqa: BLE001 - an older schema
        return 0


def main():
    p = argparse.ArgumentParser(description="the cost of events on consent changes")
    p.add_argument("binary", nargs="?", default=os.path.join(HERE, "..", "target", "release", "onyx-id"))
    p.add_argument("--postgres", default=None, help="a PostgreSQL server URL: a fresh database there")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--duration", default="5s")
    p.add_argument("--warmup", default="2s")
    p.add_argument("--pool", type=int, default=40000, help="grants per run")
    p.add_argument("--connections", type=int, default=32)
    args = p.parse_args()
    work = tempfile.mkdtemp(prefix="onyx-consent-bench.")
    drop = None
    server = None
    log = open(os.path.join(work, "server.log"), "w")
    try:
        if args.postgres:
            url, drop = webhooks.fresh_postgres(args.postgres)
            pool_size = "4"
        else:
            url = f"sqlite://{os.path.join(work, 'onyx.db')}"
            pool_size = "8"
        db = webhooks.Db(url)
        env = dict(os.environ, ONYX_DRAIN_SECONDS="0", ONYX_DATABASE_URL=url, ONYX_KEYS_DIR=os.path.join(work, "keys"),
                   ONYX_BIND=f"127.0.0.1:{PORT}", ONYX_ISSUER=BASE, ONYX_DB_POOL_SIZE=pool_size,
                   ONYX_WEBHOOK_ALLOW_PRIVATE="1", ONYX_WEBHOOK_INSECURE_HTTP="1",
                   RUST_LOG="warn")
        seed_env = os.path.join(work, "seed.env")
        subprocess.run([sys.executable, os.path.join(HERE, "bench.py"), "setup", args.binary, seed_env],
                       env=env, check=True, stdout=subprocess.DEVNULL)
        seed = bench.read_env(seed_env)
        # The template grant: a real sign-in and consent (bench.py's token seeding, one code).
        server = start_server(args.binary, env, log)
        pools = os.path.join(work, "pools")
        os.mkdir(pools)
        subprocess.run([sys.executable, os.path.join(HERE, "bench.py"), "tokens", BASE, seed_env,
                        pools, "1", "1"], check=True, stdout=subprocess.DEVNULL)
        added = webhooks.cli(args.binary, env, "apps", "webhooks", "add", "--app", seed["APP_ID"],
                             "--url", "http://127.0.0.1:9/hook", "--event", "consent.revoked")
        receiver = webhooks.Receiver(added["secret"])
        threading.Thread(target=lambda: os.sched_setaffinity(0, {1}) or receiver.run(),
                         daemon=True).start()
        receiver.ready.wait()
        endpoint = added["endpoint_id"]
        db.execute(f"UPDATE webhook_endpoints SET url = 'http://127.0.0.1:{receiver.port}/hook'"
                   f" WHERE id = '{endpoint}'")

        # A port that accepts no connection and answers nothing.
        import socket
        stalled = socket.socket()
        stalled.bind(("127.0.0.1", 0))
        stalled.listen(1)
        stalled_url = f"http://127.0.0.1:{stalled.getsockname()[1]}/hook"
        receiver_url = f"http://127.0.0.1:{receiver.port}/hook"
        variants = ("without", "with", "written")
        plan = [("w", v, args.warmup) for v in variants]
        plan += [(str(r), v, args.duration) for r in range(1, args.runs + 1) for v in variants]
        results = []
        for run, variant, duration in plan:
            tag = f"{ {'without': 'off', 'with': 'on', 'written': 'wr'}[variant]}{run}"
            subs = copy_grants(db, tag, args.pool)
            pool_file = os.path.join(work, f"pool-{tag}.txt")
            with open(pool_file, "w") as f:
                f.write("\n".join(subs) + "\n")
            state = "disabled" if variant == "without" else "enabled"
            url = stalled_url if variant == "written" else receiver_url
            db.execute(f"UPDATE webhook_endpoints SET state = '{state}', url = '{url}'"
                       f" WHERE id = '{endpoint}'")
            # No delivery of an earlier run is left for the worker.
            for _ in range(600):
                if waiting(db, "webhook_deliveries WHERE state = 'pending'") + waiting(db, "webhook_outbox") == 0:
                    break
                time.sleep(0.1)
            out = os.path.join(work, f"wrk-{tag}.txt")
            bench.cmd_run(out, str(server.pid), [
                "env", f"BENCH_LUA_DIR={HERE}", f"POOL={pool_file}", f"BASIC={seed['APP_BASIC']}",
                "taskset", "-c", "1", "wrk", "-t1", f"-c{args.connections}", f"-d{duration}",
                "--latency", "-s", os.path.join(HERE, "grant_delete.lua"), BASE])
            r = bench.parse_wrk(out)
            if variant == "written":
                # What is still in the outbox is split first (into deliveries that will hang).
                for _ in range(600):
                    if waiting(db, "webhook_outbox") == 0:
                        break
                    time.sleep(0.1)
                db.execute("UPDATE webhook_deliveries SET state = 'failed'"
                           " WHERE state = 'pending' AND lease_owner IS NULL")
            left = int(db.scalar(f"SELECT COUNT(*) FROM grants WHERE id LIKE 'bg_{tag}_%'"
                                 " AND status = 'active'"))
            events = int(db.scalar(
                f"SELECT COUNT(*) FROM webhook_deliveries d JOIN webhook_events e ON e.id = d.event_id"
                f" WHERE e.type = 'consent.revoked' AND d.endpoint_id = '{endpoint}'"))
            if left == 0:
                r["errors"].append("the pool ran out: later requests changed nothing")
            line = {"run": run, "variant": variant, "rps": r["rps"], "p50_ms": r["p50"],
                    "p99_ms": r["p99"], "requests": r["requests"], "grants_left": left,
                    "deliveries_so_far": events, "other_load_pct": r["foreign"],
                    "errors": r["errors"]}
            print(json.dumps(line), flush=True)
            if run != "w":
                results.append(line)
        summary = {"backend": "postgres" if args.postgres else "sqlite",
                   "bad_signatures": receiver.bad, "delivered": receiver.count}
        for variant in variants:
            rps = [r["rps"] for r in results if r["variant"] == variant and r["rps"]]
            summary[variant] = {
                "median_rps": round(statistics.median(rps)) if rps else None,
                "min_rps": round(min(rps)) if rps else None,
                "max_rps": round(max(rps)) if rps else None,
                "median_p99_ms": statistics.median(
                    [r["p99_ms"] for r in results if r["variant"] == variant and r["p99_ms"]] or [0]),
                "other_load_pct": [r["other_load_pct"] for r in results if r["variant"] == variant],
            }
        for variant in ("with", "written"):
            if summary["without"]["median_rps"] and summary[variant]["median_rps"]:
                summary[f"{variant}_change_pct"] = round(
                    (summary[variant]["median_rps"] / summary["without"]["median_rps"] - 1) * 100, 1)
        summary["failed"] = any(r["errors"] for r in results) or receiver.bad > 0
        print(json.dumps(summary))
        return 1 if summary["failed"] else 0
    finally:
        if server:
            server.terminate()
            server.wait()
        log.close()
        if os.environ.get("BENCH_KEEP"):
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)
        if drop:
            drop()


if __name__ == "__main__":
    sys.exit(main())
