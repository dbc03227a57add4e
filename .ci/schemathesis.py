#!/usr/bin/env python3
"""A property-based run of the partner, operator and grants APIs against the served OpenAPI
document (issue 12): Schemathesis reads /api/v1/openapi.json from a server started from the
built binary, sends generated requests to every operation of every tag, and fails on a server
error or on an answer the document does not allow.

    .ci/schemathesis.py BINARY [MAX_EXAMPLES]

The server runs on SQLite in a temporary folder, seeded through the CLI the way the tests and
the benchmark seed theirs: an operator and its key, a partner with its owner and key, an app of
that partner (the client_id every partner and operator operation works on), and an Onyx app
holding grants:read with one user's grant to it (the `sub` of the grants API). Checks:
not_a_server_error, status_code_conformance, content_type_conformance,
response_schema_conformance; phases: examples, coverage, fuzzing and stateful (links inferred
from the responses). About three minutes with the default MAX_EXAMPLES.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ left in bench/
sys.path.insert(0, os.path.join(HERE, "..", "bench"))
import bench  # noqa: E402  (the sign-in and consent flow as a browser does it)

CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"
PASSWORD = "schemathesis-password"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def cli(binary, env, *args, stdin=None):
    p = subprocess.run([binary, *args], input=stdin, capture_output=True, text=True, env=env)
    if p.returncode != 0:
        sys.exit(f"schemathesis.py: {' '.join(args[:2])} failed ({p.returncode}): {p.stderr.strip()}")
    return json.loads(p.stdout)


def api(base, method, path, key, body):
    req = urllib.request.Request(base + path, method=method, data=json.dumps(body).encode(),
                                 headers={"Authorization": "Bearer " + key,
                                          "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read())


def user(binary, env, email, name):
    return cli(binary, env, "users", "create", "--email", email, "--name", name,
               "--password-stdin", stdin=PASSWORD + "\n")["user_id"]


def grant(base, client_id):
    """Signs `grants@onyx.example` in to the app and approves its request (a grant to read)."""
    b = bench.Browser(base)
    status, headers, body, _ = bench.authorize(b, client_id)
    loc = bench.expect_redirect("GET /authorize", status, headers, body)
    status, _, page = b.call("GET", loc)
    status, headers, body = b.call("POST", "/login", {
        "request_id": bench.hidden(page, "request_id"), "csrf_token": bench.hidden(page, "csrf_token"),
        "email": "grants@onyx.example", "password": PASSWORD})
    loc = bench.expect_redirect("POST /login", status, headers, body)
    status, _, page = b.call("GET", loc)
    status, headers, body = b.call("POST", "/consent", {
        "request_id": bench.hidden(page, "request_id"), "csrf_token": bench.hidden(page, "csrf_token"),
        "shown": bench.hidden(page, "shown"), "decision": "approve"})
    bench.expect_redirect("POST /consent", status, headers, body)


def main(argv):
    if len(argv) < 2:
        sys.exit(__doc__)
    binary = os.path.abspath(argv[1])
    max_examples = argv[2] if len(argv) > 2 else "25"
    work = tempfile.mkdtemp(prefix="onyx-schemathesis-")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    env = dict(os.environ, ONYX_DRAIN_SECONDS="0", ONYX_DATABASE_URL=f"sqlite://{work}/onyx.db", ONYX_KEYS_DIR=f"{work}/keys",
               ONYX_ISSUER=base, ONYX_BIND=f"127.0.0.1:{port}", RUST_LOG="warn")
    server = None
    try:
        user(binary, env, "operator@onyx.example", "Onyx Reviewer")
        op_key = cli(binary, env, "operators", "create", "--email", "operator@onyx.example")["api_key"]
        sub = user(binary, env, "grants@onyx.example", "Grace Grants")
        onyx_app = cli(binary, env, "apps", "create", "--name", "Grants Reader",
                       "--redirect-uri", bench.REDIRECT_URI, "--scope", "openid",
                       "--scope", "offline_access", "--scope", "grants:read",
                       "--grant-type", "authorization_code", "--grant-type", "refresh_token",
                       "--grant-type", "client_credentials")
        log = open(f"{work}/server.log", "w")
        server = subprocess.Popen([binary, "serve"], env=env, stdout=log, stderr=subprocess.STDOUT)
        bench.cmd_wait(base + "/healthz", 30)

        user(binary, env, "owner@partner.example", "Partner Owner")
        partner = api(base, "POST", "/api/v1/operator/partners", op_key, {
            "name": "Fuzz Ltd", "website": "https://partner.example", "regions": ["GB"],
            "support_contact": "help@partner.example", "owner_email": "owner@partner.example"})
        app = api(base, "POST", "/api/v1/apps", partner["api_key"], {
            "name": "Fuzz Trips", "description": "Plan trips.", "use_case": "travel",
            "purpose": "Show your name on your bookings.", "consent_copy": "We never share it.",
            "domain": "app.example", "redirect_uris": ["https://app.example/callback"],
            "scopes": ["openid", "profile"]})
        grant(base, onyx_app["client_id"])

        config = f"""
[auth.openapi.partnerKey]
bearer = "${{ST_PARTNER_KEY}}"
[auth.openapi.operatorKey]
bearer = "${{ST_OPERATOR_KEY}}"
[auth.openapi.clientBasic]
username = "${{ST_CLIENT_ID}}"
password = "${{ST_CLIENT_SECRET}}"

[parameters]
client_id = "{app['client_id']}"
partner_id = "{partner['partner_id']}"
sub = "{sub}"
"""
        with open(f"{work}/schemathesis.toml", "w") as f:
            f.write(config)
        run_env = dict(os.environ, ST_PARTNER_KEY=partner["api_key"], ST_OPERATOR_KEY=op_key,
                       ST_CLIENT_ID=onyx_app["client_id"], ST_CLIENT_SECRET=onyx_app["client_secret"])
        cmd = ["schemathesis", "--config-file", f"{work}/schemathesis.toml", "run",
               base + "/api/v1/openapi.json", "--checks", CHECKS,
               "--phases", "examples,coverage,fuzzing,stateful", "--max-examples", max_examples,
               "--workers", "1", "--seed", os.environ.get("ST_SEED", "12"),
               "--suppress-health-check", "all", "--no-shrink",
               "--report", "junit", "--report-dir", os.path.abspath(os.path.join(HERE, "..", "target", "schemathesis"))]
        print("+", " ".join(cmd), flush=True)
        # From the work folder, where Schemathesis keeps its cache.
        status = subprocess.run(cmd, env=run_env, cwd=work).returncode
        if server.poll() is not None:
            print(f"schemathesis.py: the server exited ({server.returncode})", file=sys.stderr)
            status = status or 1
        problems = [line for line in open(f"{work}/server.log") if '"ERROR"' in line or " ERROR " in line]
        if problems:
            print(f"schemathesis.py: the server logged {len(problems)} errors, first: {problems[0][:300]}",
                  file=sys.stderr)
            status = status or 1
        return status
    finally:
        if server is not None and server.poll() is None:
            server.terminate()
            server.wait(timeout=10)
        if os.environ.get("ST_KEEP"):
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv))
