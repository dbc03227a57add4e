#!/usr/bin/env python3
"""Webhook delivery throughput (issue 13): how many events per second one onyx-id process,
pinned to one core, delivers to a local receiver.

    python3 bench/webhooks.py [BINARY] [EVENTS] [--postgres BASE_URL]

SQLite by default; with --postgres (or BENCH_WEBHOOKS_PG), a fresh database on that server
(e.g. postgres://postgres@127.0.0.1:5432), dropped at the end.

An app and its endpoint are made with the CLI (a real sealed whsec_ secret). EVENTS events,
with one delivery each, are then written into the outbox while no server runs, exactly as the
code that causes events writes them (same tables and columns). The server is started pinned
to core 0 (`taskset -c 0`) with the receiver on core 1; the time from its start until the
receiver has had every event, minus the start-up measured without events, gives the rate.
The receiver is a small asyncio HTTP server that answers 204 and checks one delivery's
Standard Webhooks signature in every hundred (HMAC-SHA256 over "{id}.{timestamp}.{body}").
Prints one JSON line: {"backend", "events", "seconds", "events_per_second", "target", "met"}.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time

TARGET = 500


def cli(binary, env, *args):
    p = subprocess.run([binary, *args], capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"webhooks.py: {' '.join(args[:3])} failed: {p.stderr.strip()}")
    return json.loads(p.stdout)


class Receiver:
    """Counts deliveries; verifies a sample of signatures."""

    def __init__(self, secret):
        self.key = base64.b64decode(secret.removeprefix("whsec_"))
        self.count = 0
        self.bad = 0
        self.port = None
        self.ready = threading.Event()

    async def handle(self, reader, writer):
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                headers = {}
                for line in head.decode("latin-1").split("\r\n")[1:]:
                    if ":" in line:
                        k, v = line.split(":", 1)
                        headers[k.strip().lower()] = v.strip()
                body = await reader.readexactly(int(headers.get("content-length", "0")))
                self.count += 1
                if self.count % 100 == 1:
                    msg = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.".encode() + body
                    want = base64.b64encode(hmac.new(self.key, msg, hashlib.sha256).digest()).decode()
                    got = [s.split(",", 1)[1] for s in headers["webhook-signature"].split(" ")]
                    if want not in got:
                        self.bad += 1
                writer.write(b"HTTP/1.1 204 No Content\r\ncontent-length: 0\r\n\r\n")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def run(self):
        async def main():
            server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
            self.port = server.sockets[0].getsockname()[1]
            self.ready.set()
            async with server:
                await server.serve_forever()

        asyncio.run(main())


class Db:
    """The bench's own SQL on the server's database: sqlite3 for SQLite, psql for PostgreSQL.
    Statements carry only values the bench made, as literals."""

    def __init__(self, url):
        self.url = url
        self.sqlite = url.removeprefix("sqlite://") if url.startswith("sqlite://") else None

    def execute(self, sql):
        if self.sqlite:
            con = sqlite3.connect(self.sqlite, timeout=30)
            with con:
                con.executescript(sql)
            con.close()
        else:
            subprocess.run(["psql", self.url, "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
                           check=True, capture_output=True)

    def scalar(self, sql):
        if self.sqlite:
            con = sqlite3.connect(self.sqlite, timeout=30)
            row = con.execute(sql).fetchone()
            con.close()
            return row[0] if row else None
        out = subprocess.run(["psql", self.url, "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
                             check=True, capture_output=True, text=True).stdout.strip()
        return out.splitlines()[0] if out else None


def numbers(n):
    """A subquery of the numbers 1..n (both backends)."""
    return (f"(WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {int(n)})"
            " SELECT i FROM n) nums")


def fill_outbox(db, client_id, endpoint_id, n):
    """n events with one delivery each, due now, as `webhooks::enqueue` writes them."""
    now = int(time.time())
    body = json.dumps({
        "type": "app.capability.updated",
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now)),
        "data": {"client_id": client_id, "capability": "bench", "state": "enabled"},
    }, separators=(",", ":")).replace("'", "''")
    event_id = "'msg_bench' || CAST(nums.i AS TEXT)"
    db.execute(
        f"INSERT INTO webhook_events (id, client_id, type, body, created_at) "
        f"SELECT {event_id}, '{client_id}', 'app.capability.updated', '{body}', {now} "
        f"FROM {numbers(n)};"
        f"INSERT INTO webhook_deliveries (id, event_id, endpoint_id, state, next_attempt_at,"
        f" created_at, updated_at) "
        f"SELECT {event_id} || '.{endpoint_id}', {event_id}, '{endpoint_id}', 'pending', "
        f"{now}, {now}, {now} FROM {numbers(n)};"
    )


def fresh_postgres(base):
    """A new database on the server at `base`; returns its URL and a function that drops it."""
    name = f"onyx_bench_hooks_{os.getpid()}_{int(time.time())}"
    admin = f"{base.rstrip('/')}/postgres"
    subprocess.run(["psql", admin, "-qAt", "-c", f"CREATE DATABASE {name}"], check=True,
                   capture_output=True)

    def drop():
        subprocess.run(["psql", admin, "-qAt", "-c",
                        f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"], capture_output=True)

    return f"{base.rstrip('/')}/{name}", drop


def timed_serve(binary, env, receiver, want, timeout=120):
    """Starts the server pinned to core 0; seconds until the receiver has `want` deliveries."""
    start_count = receiver.count
    started = time.monotonic()
    server = subprocess.Popen(["taskset", "-c", "0", binary, "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while receiver.count - start_count < want:
            if time.monotonic() - started > timeout:
                sys.exit(f"webhooks.py: only {receiver.count - start_count} of {want} arrived")
            if server.poll() is not None:
                sys.exit("webhooks.py: the server exited")
            time.sleep(0.005)
        return time.monotonic() - started
    finally:
        server.terminate()
        server.wait()


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    parser = argparse.ArgumentParser(description="webhook delivery throughput")
    parser.add_argument("binary", nargs="?",
                        default=os.path.join(here, "..", "target", "release", "onyx-id"))
    parser.add_argument("events", nargs="?", type=int, default=5000)
    parser.add_argument("--postgres", default=os.environ.get("BENCH_WEBHOOKS_PG"),
                        help="a PostgreSQL server URL (postgres://user@host:port): run on a fresh "
                             "database there instead of SQLite")
    args = parser.parse_args()
    binary, events = args.binary, args.events
    work = tempfile.mkdtemp(prefix="onyx-webhooks-bench.")
    drop = None
    try:
        if args.postgres:
            url, drop = fresh_postgres(args.postgres)
        else:
            url = f"sqlite://{os.path.join(work, 'onyx.db')}"
        db = Db(url)
        env = dict(os.environ, ONYX_DRAIN_SECONDS="0", ONYX_DATABASE_URL=url,
                   ONYX_KEYS_DIR=os.path.join(work, "keys"), ONYX_BIND="127.0.0.1:0",
                   ONYX_ISSUER="http://127.0.0.1:9", ONYX_WEBHOOK_ALLOW_PRIVATE="1",
                   ONYX_WEBHOOK_INSECURE_HTTP="1", RUST_LOG="error")
        app = cli(binary, env, "apps", "create", "--name", "Bench Hooks",
                  "--redirect-uri", "https://bench.example/cb", "--scope", "openid")
        # The secret is known only after the endpoint exists, so the receiver's port is a
        # placeholder first: the URL is rewritten below.
        added = cli(binary, env, "apps", "webhooks", "add", "--app", app["client_id"],
                    "--url", "http://127.0.0.1:9/hook")
        receiver = Receiver(added["secret"])
        threading.Thread(target=lambda: os.sched_setaffinity(0, {1}) or receiver.run(),
                         daemon=True).start()
        receiver.ready.wait()
        db.execute(f"UPDATE webhook_endpoints SET url = 'http://127.0.0.1:{receiver.port}/hook'"
                   f" WHERE id = '{added['endpoint_id']}'")
        # The start-up alone (one event), then the run.
        fill_outbox(db, app["client_id"], added["endpoint_id"], 1)
        startup = timed_serve(binary, env, receiver, 1)
        db.execute("DELETE FROM webhook_attempts; DELETE FROM webhook_deliveries;"
                   " DELETE FROM webhook_events;")
        fill_outbox(db, app["client_id"], added["endpoint_id"], events)
        total = timed_serve(binary, env, receiver, events)
        seconds = max(total - startup, 1e-6)
        rate = events / seconds
        print(json.dumps({
            "backend": "postgres" if args.postgres else "sqlite",
            "events": events, "seconds": round(seconds, 3), "startup_seconds": round(startup, 3),
            "events_per_second": round(rate), "bad_signatures": receiver.bad,
            "target": TARGET, "met": rate >= TARGET and receiver.bad == 0,
        }))
        return 0 if receiver.bad == 0 else 1
    finally:
        if drop:
            drop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
