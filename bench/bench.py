#!/usr/bin/env python3
"""Helpers for bench/run.sh and bench/growth.sh (Python 3 standard library only).

  bench.py wait URL SECONDS                 wait until URL answers 200
  bench.py setup BIN OUT_ENV                create the user, app and resource server with the CLI
                                            (ONYX_* settings from the environment); write a
                                            shell-sourceable file of their credentials
  bench.py tokens BASE SEED_ENV OUTDIR POOLS SIZE
                                            sign in through the browser flow once, then redeem
                                            POOLS*SIZE authorization codes into refresh-token pool
                                            files OUTDIR/pool-N.txt; get an access token for the
                                            resource server (client_credentials + resource) and
                                            one the app introspects itself; print ONYX_AT=...
                                            and ONYX_SELF_AT=... for the shell
  bench.py peer-token BASE                  print the peer's access token (client_credentials)
  bench.py run OUT PIDS -- CMD...           run a wrk command into OUT, then append how much CPU
                                            other processes took meanwhile ("bench-foreign-cpu:
                                            N%" of one core): all busy time less that of PIDS
                                            (comma-separated), of postgres, and of CMD itself
  bench.py report RAWDIR OUT_MD META_JSON   parse the wrk outputs into the results table
                                            (keeping growth.sh's section of OUT_MD)
  bench.py grow BACKEND URL ROWS CLIENT_ID AUDIENCE
                                            add stored access tokens with SQL until there are ROWS
  bench.py growth-report RAWDIR OUT_MD COMMIT ELAPSED CONNS DURATION RUNS
                                            write growth.sh's section ("How cost grows") of OUT_MD
"""

import base64
import hashlib
import http.cookiejar
import json
import os
import re
import resource
import secrets
import shlex
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

REDIRECT_URI = "https://bench.example/cb"
AUDIENCE = "https://api.bench.example"
EMAIL = "bench@bench.example"
PASSWORD = "bench-password-bench"
PEER_BASIC = base64.b64encode(b"bench:benchsecret-benchsecret-benchsecret").decode()


def die(msg):
    print(f"bench.py: {msg}", file=sys.stderr)
    sys.exit(1)


def basic(client_id, secret):
    return base64.b64encode(f"{client_id}:{secret}".encode()).decode()


# ---------------------------------------------------------------------------------------------
# HTTP without following redirects, with a cookie jar (the browser side of the sign-in).


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


class Browser:
    def __init__(self, base):
        self.base = base.rstrip("/")
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(self.jar), NoRedirect()
        )

    def call(self, method, path, form=None, headers=None):
        """Returns (status, headers, body text); 3xx and 4xx are answers, not exceptions."""
        url = path if path.startswith("http") else self.base + path
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
        if data is not None:
            req.add_header("Content-Type", "application/x-www-form-urlencoded")
        try:
            with self.opener.open(req, timeout=30) as r:
                return r.status, r.headers, r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers, e.read().decode()


def hidden(html, name):
    m = re.search(r'name="%s" value="([^"]*)"' % re.escape(name), html)
    if not m:
        die(f"no hidden input {name!r} in the page:\n{html[:500]}")
    return m.group(1)


def expect_redirect(step, status, headers, body):
    if status not in (302, 303):
        die(f"{step}: expected a redirect, got {status}: {body[:300]}")
    return headers["Location"]


# ---------------------------------------------------------------------------------------------


def cmd_wait(url, seconds):
    deadline = time.time() + float(seconds)
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as r:
                if r.status == 200:
                    return
        except Exception:
            pass
        time.sleep(0.2)
    die(f"{url} did not answer within {seconds} s")


def cli(binary, *args, stdin=None):
    p = subprocess.run(
        [binary, *args], input=stdin, capture_output=True, text=True, check=False
    )
    if p.returncode != 0:
        die(f"{' '.join(args[:2])} failed ({p.returncode}): {p.stderr.strip()}")
    return json.loads(p.stdout)


def cmd_setup(binary, out):
    cli(binary, "users", "create", "--email", EMAIL, "--name", "Bench User",
        "--password-stdin", stdin=PASSWORD + "\n")
    app = cli(binary, "apps", "create", "--name", "Bench App", "--redirect-uri", REDIRECT_URI,
              "--scope", "openid", "--scope", "offline_access", "--scope", "grants:read",
              "--grant-type", "authorization_code", "--grant-type", "refresh_token",
              "--grant-type", "client_credentials")
    rs = cli(binary, "resource-servers", "create", "--name", "Bench API", "--audience", AUDIENCE)
    values = {
        "APP_ID": app["client_id"],
        "APP_BASIC": basic(app["client_id"], app["client_secret"]),
        "RS_BASIC": basic(rs["client_id"], rs["client_secret"]),
        "AUDIENCE": rs["audience"],
    }
    with open(out, "w") as f:
        for k, v in values.items():
            f.write(f"{k}={shlex.quote(v)}\n")


def read_env(path):
    values = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.strip().partition("=")
            values[k] = shlex.split(v)[0] if v else ""
    return values


def token_post(browser, form, basic_value):
    status, _, body = browser.call(
        "POST", "/token", form, headers={"Authorization": "Basic " + basic_value}
    )
    if status != 200:
        die(f"POST /token {form.get('grant_type')}: {status} {body[:300]}")
    return json.loads(body)


def authorize(browser, client_id):
    """One authorization request; returns (status, headers, body, verifier)."""
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    query = urllib.parse.urlencode({
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": REDIRECT_URI,
        "scope": "openid offline_access",
        "state": secrets.token_urlsafe(8),
        "code_challenge": challenge.rstrip(b"=").decode(),
        "code_challenge_method": "S256",
    })
    status, headers, body = browser.call("GET", "/authorize?" + query)
    return status, headers, body, verifier


def code_from(location):
    if not location.startswith(REDIRECT_URI):
        die(f"expected a redirect to {REDIRECT_URI}, got {location}")
    q = urllib.parse.parse_qs(urllib.parse.urlparse(location).query)
    if "code" not in q:
        die(f"no code in {location}")
    return q["code"][0]


def cmd_tokens(base, seed_env, outdir, pools, size):
    seed = read_env(seed_env)
    b = Browser(base)
    # First request: sign in, then consent; later ones come straight back with a code.
    status, headers, body, verifier = authorize(b, seed["APP_ID"])
    loc = expect_redirect("GET /authorize", status, headers, body)
    status, _, page = b.call("GET", loc)
    if status != 200:
        die(f"GET {loc}: {status} {page[:300]}")
    status, headers, body = b.call("POST", "/login", {
        "request_id": hidden(page, "request_id"), "csrf_token": hidden(page, "csrf_token"),
        "email": EMAIL, "password": PASSWORD})
    loc = expect_redirect("POST /login", status, headers, body)
    if loc.startswith("/consent") or "/consent?" in loc:
        status, _, page = b.call("GET", loc)
        if status != 200:
            die(f"GET {loc}: {status} {page[:300]}")
        status, headers, body = b.call("POST", "/consent", {
            "request_id": hidden(page, "request_id"), "csrf_token": hidden(page, "csrf_token"),
            "shown": hidden(page, "shown"),
            "decision": "approve"})
        loc = expect_redirect("POST /consent", status, headers, body)
    codes = [(code_from(loc), verifier)]
    while len(codes) < pools * size:
        status, headers, body, verifier = authorize(b, seed["APP_ID"])
        codes.append((code_from(expect_redirect("GET /authorize", status, headers, body)),
                      verifier))
    refresh = []
    for code, verifier in codes:
        answer = token_post(b, {"grant_type": "authorization_code", "code": code,
                                "redirect_uri": REDIRECT_URI, "code_verifier": verifier},
                            seed["APP_BASIC"])
        if "refresh_token" not in answer:
            die(f"no refresh_token in {answer}")
        refresh.append(answer["refresh_token"])
    for i in range(pools):
        with open(os.path.join(outdir, f"pool-{i}.txt"), "w") as f:
            f.write("\n".join(refresh[i * size:(i + 1) * size]) + "\n")
    at = token_post(b, {"grant_type": "client_credentials", "scope": "grants:read",
                        "resource": seed["AUDIENCE"]}, seed["APP_BASIC"])["access_token"]
    # Check the introspection answer once before measuring it.
    status, _, body = b.call("POST", "/introspect", {"token": at},
                             headers={"Authorization": "Basic " + seed["RS_BASIC"]})
    if status != 200 or not json.loads(body).get("active"):
        die(f"introspection of the benchmark token is not active: {status} {body[:300]}")
    # The app's own token (default audience), which it introspects itself.
    own = token_post(b, {"grant_type": "client_credentials", "scope": "grants:read"},
                     seed["APP_BASIC"])["access_token"]
    status, _, body = b.call("POST", "/introspect", {"token": own},
                             headers={"Authorization": "Basic " + seed["APP_BASIC"]})
    if status != 200 or not json.loads(body).get("active"):
        die(f"the app's introspection of its own token is not active: {status} {body[:300]}")
    print(f"ONYX_AT={shlex.quote(at)}")
    print(f"ONYX_SELF_AT={shlex.quote(own)}")


def cmd_peer_token(base):
    b = Browser(base)
    answer = token_post(b, {"grant_type": "client_credentials", "scope": "api:read"}, PEER_BASIC)
    print(answer["access_token"])


# ---------------------------------------------------------------------------------------------
# Running wrk while watching for other load on the machine (a build, a test run...).

TICK = os.sysconf("SC_CLK_TCK")


def busy_ticks():
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    return sum(fields) - fields[3] - fields[4]  # less idle and iowait


def own_ticks(watched):
    """CPU ticks so far of the bench's own processes: `watched` (the servers), postgres, and the
    kernel's threads (writeback, journaling: work the bench causes)."""
    ticks = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                comm, rest = f.read().split(" (", 1)[1].rsplit(")", 1)
        except (OSError, IndexError, ValueError):
            continue
        fields = rest.split()
        if pid in watched or comm == "postgres" or fields[1] == "2" or pid == "2":
            ticks[pid] = int(fields[11]) + int(fields[12])  # utime + stime, all threads
    return ticks


def cmd_run(out, pids, cmd):
    watched = {p for p in pids.split(",") if p}
    busy0, own0, t0 = busy_ticks(), own_ticks(watched), time.time()
    child0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(out, "w") as f:
        subprocess.run(cmd, stdout=f, stderr=subprocess.STDOUT, check=False)
    child1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    busy1, own1, t1 = busy_ticks(), own_ticks(watched), time.time()
    # A process that started meanwhile counts whole; one that ended is left out.
    own = sum(t - own0.get(p, 0) for p, t in own1.items())
    wrk = (child1.ru_utime + child1.ru_stime) - (child0.ru_utime + child0.ru_stime)
    foreign = ((busy1 - busy0) - own) / TICK - wrk
    with open(out, "a") as f:
        f.write(f"bench-foreign-cpu: {max(0.0, foreign) / (t1 - t0) * 100:.0f}%\n")


# ---------------------------------------------------------------------------------------------
# wrk output -> results.md

FOREIGN_LIMIT = 15  # % of one core used by other processes during a run: the run is flagged

UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}
CASES = [
    ("introspection", "introspection of an active access token (a resource server)"),
    ("introspection_self", "introspection of an active access token (the app, its own)"),
    ("client_credentials", "client_credentials token (ES256 JWT)"),
    ("client_credentials_dpop", "client_credentials with a DPoP proof (ES256; BENCH_DPOP=1)"),
    ("refresh", "refresh_token rotation"),
    ("revocation", "token revocation (RFC 7009, refresh tokens)"),
    ("discovery", "discovery document (HTTP floor)"),
]


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    return float(m.group(1)) * UNITS_MS[m.group(2)]


def parse_wrk(path):
    """One wrk run: {'rps', 'p50', 'p99', 'errors': [..]}."""
    with open(path) as f:
        text = f.read()
    run = {"errors": []}
    m = re.search(r"^Requests/sec:\s+([\d.]+)", text, re.M)
    run["rps"] = float(m.group(1)) if m else None
    for pct in ("50", "99"):
        m = re.search(r"^\s+%s(?:\.000)?%%\s+(\S+)" % pct, text, re.M)
        run["p" + pct] = to_ms(m.group(1)) if m else None
    m = re.search(r"^\s+(\d+) requests in", text, re.M)
    run["requests"] = int(m.group(1)) if m else 0
    if run["rps"] is None or run["p99"] is None:
        run["errors"].append("no wrk summary: " + text.strip().replace("\n", " ")[:200])
    if run["requests"] == 0:
        run["errors"].append("no request completed")
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", text)
    if m and int(m.group(1)):
        run["errors"].append(f"{m.group(1)} non-2xx/3xx responses")
    m = re.search(r"Socket errors: (.*)", text)
    if m and any(int(n) for n in re.findall(r"\d+", m.group(1))):
        run["errors"].append("socket errors: " + m.group(1).strip())
    m = re.search(r"^bench-foreign-cpu: (\d+)%", text, re.M)
    run["foreign"] = int(m.group(1)) if m else 0
    m = re.search(r"^bench-bad-status: (\d+)", text, re.M)
    if not m:
        run["errors"].append("the script's status count is missing")
    elif int(m.group(1)):
        first = re.search(r"^bench-first-bad: (.*)", text, re.M)
        run["errors"].append(f"{m.group(1)} non-2xx or wrong answers"
                             + (f" (first: {first.group(1)[:160]})" if first else ""))
    return run


def summarise(runs):
    """Medians of the runs, or None with the reasons when any run failed."""
    errors = [e for r in runs for e in r["errors"]]
    if not runs or errors:
        return {"failed": True, "errors": errors or ["not run"], "runs": runs}
    return {
        "failed": False,
        "rps": statistics.median(r["rps"] for r in runs),
        "p50": statistics.median(r["p50"] for r in runs),
        "p99": statistics.median(r["p99"] for r in runs),
        "min": min(r["rps"] for r in runs),
        "max": max(r["rps"] for r in runs),
        "foreign": max(r["foreign"] for r in runs),
        "runs": runs,
    }


def fmt_ms(v):
    return f"{v:.2f} ms" if v < 10 else f"{v:.1f} ms"


def verdict(ok):
    return "**met**" if ok else "**not met**"


def cmd_report(rawdir, out, meta_path):
    with open(meta_path) as f:
        meta = json.load(f)
    out_before = open(out).read() if os.path.exists(out) else ""
    results = {}  # (backend, case, server) -> summary
    for name in sorted(os.listdir(rawdir)):
        m = re.fullmatch(r"(\w+)--(\w+)--(\w+)--(\d+)\.txt", name)
        if m:
            results.setdefault(m.groups()[:3], []).append(parse_wrk(os.path.join(rawdir, name)))
    summaries = {k: summarise(v) for k, v in results.items()}
    backends = [b for b in ("sqlite", "postgres") if any(k[0] == b for k in summaries)]

    lines = [
        "# onyx-id load benchmark",
        "",
        f"- Date: {meta['date']}",
        f"- Machine: {meta['nproc']} cores, {meta['cpu']}, {meta['mem']}; kernel {meta['kernel']}",
        f"- onyx-id: commit {meta['commit']} (release build), RUST_LOG=warn",
        f"- Peer: node-oidc-provider {meta['peer_version']} on node {meta['node']}",
        f"- Load: `taskset -c 1 wrk -t1 -c{meta['connections']} -d{meta['duration']} --latency`, "
        f"{meta['runs']} runs per case after a {meta['warmup']} warm-up, onyx and peer runs "
        "interleaved; servers pinned with `taskset -c 0`. Figures are medians of the runs; "
        "req/s range in brackets.",
        f"- Command: `bash bench/run.sh` (took {meta.get('elapsed', '?')})",
        "- Cases: introspection of an active access token (onyx-id: `POST /introspect` by a "
        "resource server, token issued with `resource=`; and by the app of its own token, default "
        "audience; peer, in both rows: the client introspecting its opaque token at "
        "`/token/introspection`); `client_credentials` (onyx-id: scope `grants:read`, default "
        "audience; peer: `FORMAT=jwt ALG=ES256`, scope `api:read`); refresh_token rotation "
        "(onyx-id only: every request spends a refresh token and gets its successor); discovery "
        "document (`GET /.well-known/openid-configuration`, the HTTP floor); with `BENCH_DPOP=1`, "
        "`client_credentials` with a fresh ES256 DPoP proof per request (onyx-id only: the "
        "proof verified, its jti recorded, the token bound).",
    ]
    for note in meta.get("notes", []):
        lines.append(f"- Note: {note}")
    flagged = [k for k, v in summaries.items() if not v["failed"] and v["foreign"] > FOREIGN_LIMIT]
    if flagged:
        lines.append(f"- † {len(flagged)} figure(s) had other load on the machine (more than "
                     f"{FOREIGN_LIMIT}% of a core used by processes outside the bench during a "
                     "run; see the last table): treat them with care, or run again on a quiet "
                     "machine.")

    def cell(s):
        if s is None:
            return ["n/a"] * 3
        if s["failed"]:
            return ["FAILED", "–", "–"]
        mark = " †" if s["foreign"] > FOREIGN_LIMIT else ""
        return [f"{s['rps']:,.0f} ({s['min']:,.0f}–{s['max']:,.0f}){mark}", fmt_ms(s["p50"]),
                fmt_ms(s["p99"])]

    failures = []
    for b in backends:
        lines += ["", f"## {'SQLite' if b == 'sqlite' else 'PostgreSQL'}", "",
                  "| case | onyx req/s | onyx p50 | onyx p99 | peer req/s | peer p50 | peer p99 "
                  "| onyx/peer |",
                  "|---|---:|---:|---:|---:|---:|---:|---:|"]
        for case, label in CASES:
            o = summaries.get((b, case, "onyx"))
            p = summaries.get((b, case, "peer"))
            if o is None and p is None:
                continue
            ratio = "–"
            if o and p and not o["failed"] and not p["failed"]:
                ratio = f"{o['rps'] / p['rps']:.2f}x"
            lines.append(f"| {label} | " + " | ".join(cell(o) + cell(p)) + f" | {ratio} |")
            for server, s in (("onyx", o), ("peer", p)):
                if s and s["failed"]:
                    failures.append(f"{b} / {case} / {server}: " + "; ".join(s["errors"][:3]))

    def ok(b, case, server):
        s = summaries.get((b, case, server))
        return s if s and not s["failed"] else None

    lines += ["", "## Targets", "", "| target | backend | measured | verdict |", "|---|---|---|---|"]
    # Issue 17 sets the ratios to the peer on SQLite (both introspection callers against the
    # peer's introspection, client_credentials against the peer's FORMAT=jwt ES256 mode); on
    # PostgreSQL its target is "within 1.5x of SQLite", and the ratios to the peer are shown for
    # information.
    def verdict_for(b, met):
        return verdict(met) if b == "sqlite" else "information (the target: within 1.5x of SQLite)"

    targets = [
        ("introspection", "introspection (resource server) >= 10x peer, p99 < 3 ms", 10, 3),
        ("introspection_self", "introspection (the app, its own token) >= 10x peer, p99 < 3 ms",
         10, 3),
        ("client_credentials", "client_credentials ES256 >= 10x peer ES256 (FORMAT=jwt)", 10,
         None),
    ]
    for b in backends:
        for case, label, ratio, p99 in targets:
            o = ok(b, case, "onyx")
            p = ok(b, case, "peer")
            if o and p:
                r = o["rps"] / p["rps"]
                met = r >= ratio and (p99 is None or o["p99"] < p99)
                shown = f"{r:.2f}x" + (f", p99 {fmt_ms(o['p99'])}" if p99 else "")
                lines.append(f"| {label} | {b} | {shown} | {verdict_for(b, met)} |")
            elif (b, case, "onyx") in summaries:
                lines.append(f"| {label} | {b} | failed run | {verdict_for(b, False)} |")
    if "postgres" in backends and "sqlite" in backends:
        for case, label in CASES:
            s, pg = ok("sqlite", case, "onyx"), ok("postgres", case, "onyx")
            if s and pg:
                r = s["rps"] / pg["rps"]
                lines.append(f"| PostgreSQL within 1.5x of SQLite | {case} | SQLite/PostgreSQL "
                             f"{r:.2f}x | {verdict(r <= 1.5)} |")
            elif ("sqlite", case, "onyx") in summaries or ("postgres", case, "onyx") in summaries:
                lines.append(f"| PostgreSQL within 1.5x of SQLite | {case} | failed run | "
                             f"{verdict(False)} |")
    elif "postgres" not in backends:
        lines.append("| PostgreSQL within 1.5x of SQLite | – | PostgreSQL not measured | "
                     "**not measured** |")

    if failures:
        lines += ["", "## Failed cases", ""] + [f"- {f}" for f in failures]

    # The sections written by hand about one issue's work ("## Issue N: ...") stay, in order.
    kept = issue_sections(out_before)
    if kept:
        lines += ["", kept.rstrip("\n")]

    lines += ["", "## Every run", "",
              "Other load: CPU used by processes outside the bench during the run, in % of one "
              "core.", "",
              "| backend | case | server | req/s | p50 | p99 | other load |",
              "|---|---|---|---:|---:|---:|---:|"]
    for (b, case, server), s in sorted(summaries.items()):
        for r in s["runs"]:
            if r["errors"]:
                lines.append(f"| {b} | {case} | {server} | error: {r['errors'][0][:80]} | | "
                             f"| {r['foreign']}% |")
            else:
                lines.append(f"| {b} | {case} | {server} | {r['rps']:,.0f} | "
                             f"{fmt_ms(r['p50'])} | {fmt_ms(r['p99'])} | {r['foreign']}% |")
    with open(out, "w") as f:
        f.write("\n".join(lines) + "\n" + growth_section(out_before))
    return 1 if failures else 0


GROWTH_HEADER = "## How cost grows"


def issue_sections(text):
    """The report's sections headed "## Issue ...", each up to the next "## " heading: notes
    written by hand about one issue's measurements, kept when run.sh rewrites the report."""
    kept, keeping = [], False
    for line in text.splitlines(keepends=True):
        if line.startswith("## "):
            keeping = line.startswith("## Issue ")
        if keeping:
            kept.append(line)
    return "".join(kept)


def growth_section(text):
    """The section bench/growth.sh writes (always the last one), kept when run.sh rewrites the
    rest of the report."""
    i = text.find(GROWTH_HEADER)
    return "\n" + text[i:] if i >= 0 else ""


def cmd_grow(backend, url, rows, client_id, audience):
    """Adds stored access tokens (active, expiring in a year, none revoked) with SQL until the
    table holds `rows`."""
    rows = int(rows)
    now = int(time.time())
    expires = now + 365 * 24 * 3600
    chunk = 1_000_000
    if backend == "sqlite":
        import sqlite3
        db = sqlite3.connect(url.removeprefix("sqlite://"))
        have = db.execute("SELECT COUNT(*) FROM access_tokens").fetchone()[0]
        while have < rows:
            upto = min(rows, have + chunk)
            db.execute(
                "WITH RECURSIVE n(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM n WHERE i < ?) "
                "INSERT INTO access_tokens (jti, token_hash, client_id, scope, audience, "
                "issued_at, expires_at) "
                "SELECT 'bulk-' || i, lower(hex(randomblob(32))), ?, 'grants:read', ?, ?, ? "
                "FROM n", (have + 1, upto, client_id, audience, now, expires))
            db.commit()
            have = upto
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        db.close()
    else:
        def psql(sql):
            return subprocess.run(["psql", url, "-qAt", "-v", "ON_ERROR_STOP=1", "-c", sql],
                                  check=True, capture_output=True, text=True).stdout.strip()
        have = int(psql("SELECT COUNT(*) FROM access_tokens"))
        while have < rows:
            upto = min(rows, have + chunk)
            psql("INSERT INTO access_tokens (jti, token_hash, client_id, scope, audience, "
                 "issued_at, expires_at) "
                 f"SELECT 'bulk-' || i, md5(i::text) || md5((-i)::text), '{client_id}', "
                 f"'grants:read', '{audience}', {now}, {expires} "
                 f"FROM generate_series({have + 1}, {upto}) AS i")
            have = upto
        psql("VACUUM ANALYZE access_tokens")


def cmd_growth_report(rawdir, out, commit, elapsed, conns, duration, runs):
    results = {}  # (backend, size, case) -> summary
    for name in sorted(os.listdir(rawdir)):
        m = re.fullmatch(r"(\w+)--(\d+)--(\w+)--(\d+)\.txt", name)
        if m:
            b, size, case, _ = m.groups()
            results.setdefault((b, int(size), case), []).append(
                parse_wrk(os.path.join(rawdir, name)))
    summaries = {k: summarise(v) for k, v in results.items()}

    def cell(s):
        if s is None:
            return ["n/a", "n/a"]
        if s["failed"]:
            return ["FAILED: " + s["errors"][0][:60], "–"]
        mark = " †" if s["foreign"] > FOREIGN_LIMIT else ""
        return [f"{s['rps']:,.0f} ({s['min']:,.0f}–{s['max']:,.0f}){mark}", fmt_ms(s["p99"])]

    lines = [
        GROWTH_HEADER,
        "",
        f"`bash bench/growth.sh` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"commit {commit}, took {elapsed}. The stored access tokens are generated with SQL "
        "(active, none expired) in the seeded database while the server is stopped; then "
        f"`wrk -t1 -c{conns} -d{duration}`, {runs} runs per case (medians; req/s range in "
        "brackets), server on core 0, wrk on core 1. Introspection is by a resource server of "
        "one of them; client_credentials writes a new one per request. † marks runs with "
        "other load on the machine.",
        "",
        "| backend | stored access tokens | introspection req/s | introspection p99 "
        "| client_credentials req/s | client_credentials p99 |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for b, size in sorted({(k[0], k[1]) for k in summaries}, key=lambda k: (k[0] != "sqlite", k[1])):
        row = cell(summaries.get((b, size, "introspection"))) + \
            cell(summaries.get((b, size, "client_credentials")))
        lines.append(f"| {'SQLite' if b == 'sqlite' else 'PostgreSQL'} | {size:,} | "
                     + " | ".join(row) + " |")
    before = open(out).read() if os.path.exists(out) else ""
    i = before.find(GROWTH_HEADER)
    head = (before[:i] if i >= 0 else before).rstrip("\n")
    with open(out, "w") as f:
        f.write((head + "\n\n" if head else "") + "\n".join(lines) + "\n")
    failed = any(s["failed"] for s in summaries.values())
    return 1 if failed or not summaries else 0


def main(argv):
    if len(argv) < 2:
        die(__doc__)
    cmd, args = argv[1], argv[2:]
    if cmd == "wait":
        cmd_wait(*args)
    elif cmd == "setup":
        cmd_setup(*args)
    elif cmd == "tokens":
        base, seed_env, outdir, pools, size = args
        cmd_tokens(base, seed_env, outdir, int(pools), int(size))
    elif cmd == "peer-token":
        cmd_peer_token(*args)
    elif cmd == "run":
        if len(args) < 4 or args[2] != "--":
            die(__doc__)
        cmd_run(args[0], args[1], args[3:])
    elif cmd == "report":
        sys.exit(cmd_report(*args))
    elif cmd == "grow":
        cmd_grow(*args)
    elif cmd == "growth-report":
        sys.exit(cmd_growth_report(*args))
    else:
        die(__doc__)


if __name__ == "__main__":
    main(sys.argv)
