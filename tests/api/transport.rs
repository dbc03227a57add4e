//! Transport and files: PostgreSQL over TLS for the pool and the pipelined connections
//! (`sslmode=require`, `verify-full` with `sslrootcert`, a wrong CA refused at start), private
//! modes for the keys folder and the SQLite files, and HSTS on every answer of an https issuer.
//!
//! The TLS tests need the local PostgreSQL to serve TLS with a certificate for 127.0.0.1 and
//! `ONYX_TEST_POSTGRES_TLS_ROOT_CERT` naming its CA: `.ci/run` sets both up (without restarting
//! the cluster). Without them these tests say so and skip, except under CI, where they fail.

use std::path::PathBuf;

use onyx_id::config::DatabaseUrl;
use serde_json::Value;

use crate::helpers::*;

on_each_backend!(every_answer_of_an_https_issuer_carries_strict_transport_security,);

/// A CA certificate that signed nothing on the test server (its key was thrown away).
const OTHER_CA: &str = "-----BEGIN CERTIFICATE-----
MIIBpjCCAU2gAwIBAgIUD8s0j7faxzC5Ej77LJFrAU8U3gEwCgYIKoZIzj0EAwIw
KDEmMCQGA1UEAwwdYSBDQSB0aGF0IHNpZ25lZCBub3RoaW5nIGhlcmUwIBcNMjYx
MjAxMjIwNzIxWhgPMjEyNjExMDcyMjA3MjFaMCgxJjAkBgNVBAMMHWEgQ0EgdGhh
dCBzaWduZWQgbm90aGluZyBoZXJlMFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAE
DQt5sqIjtK/Rkrge517acXyDUpMVzF3cTcUKbW5bnylw/0I2ArB/oxGfyHxOn7+W
3ysHHzvPas0ytSpUhLXR6aNTMFEwHQYDVR0OBBYEFHZ6rriYr1BYuhcwnynjjXvs
3fW8MB8GA1UdIwQYMBaAFHZ6rriYr1BYuhcwnynjjXvs3fW8MA8GA1UdEwEB/wQF
MAMBAf8wCgYIKoZIzj0EAwIDRwAwRAIgVb3TouomwseI8Jhi3q1v3Yc2dOMy894I
UBtqn5BoePQCIBDOQJw1L6a8J9ZjBJJacs8simgh73RL1mEtEW8SEQ0B
-----END CERTIFICATE-----
";

/// The CA of the test PostgreSQL's certificate, or `None` (said loudly) when this machine has
/// no TLS set-up. Under CI a missing set-up fails the test instead.
fn tls_root_cert() -> Option<PathBuf> {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("SKIPPED: no ONYX_TEST_POSTGRES_URL, so no PostgreSQL to test TLS against");
        return None;
    }
    match std::env::var("ONYX_TEST_POSTGRES_TLS_ROOT_CERT") {
        Ok(path) if !path.is_empty() => Some(PathBuf::from(path)),
        _ if std::env::var("CI").is_ok_and(|v| !v.is_empty()) => {
            panic!(
                "CI must run the PostgreSQL TLS tests: .ci/run sets ONYX_TEST_POSTGRES_TLS_ROOT_CERT"
            )
        }
        _ => {
            eprintln!(
                "\n!!! SKIPPED: PostgreSQL TLS tests. Set ONYX_TEST_POSTGRES_TLS_ROOT_CERT to the CA of a \
                 PostgreSQL serving TLS for 127.0.0.1 (.ci/run sets this up) to run them.\n"
            );
            None
        }
    }
}

/// Adds query parameters to the app's database URL.
fn with_params(params: String) -> impl Fn(&mut onyx_id::config::Settings) {
    move |s| {
        let url = format!("{}?{params}", s.database_url.expose());
        let pool_size = s.database_url.pool_size;
        s.database_url = DatabaseUrl::parse(&url)
            .and_then(|u| u.with_pool_size(pool_size))
            .expect("a database URL with TLS parameters");
    }
}

/// An app allowed the client credentials grant.
async fn machine_client(app: &TestApp) -> Client {
    let mut spec = spec(&["openid", "grants:read"]);
    spec.grant_types = vec!["client_credentials".into()];
    app.create_app_with(spec).await
}

/// Issues a token with the client credentials grant and introspects it (the introspection's
/// lookups run on the pipelined connections); returns the introspection answer.
async fn issue_and_introspect(app: &TestApp, client: &Client) -> Value {
    let (status, token) = client_credentials(app, client, "grants:read").await;
    assert_eq!(status, 200);
    let token = token["access_token"].as_str().expect("an access token");
    introspect(app, client, token).await
}

/// Checks, through the app's own pool, that its connection is TLS and that every connection to
/// its database (the pool's and the pipelined ones) is.
async fn assert_every_connection_is_tls(app: &TestApp) {
    let pool = app.sql().await;
    let mine: i64 = sqlx::query_scalar(
        "SELECT CAST(CASE WHEN ssl THEN 1 ELSE 0 END AS BIGINT) FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(mine, 1, "the pool's connection is TLS");
    let (clear, total): (i64, i64) = sqlx::query_as(
        "SELECT count(*) FILTER (WHERE NOT s.ssl), count(*)
           FROM pg_stat_activity a JOIN pg_stat_ssl s ON s.pid = a.pid
          WHERE a.datname = current_database() AND a.backend_type = 'client backend'",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    assert_eq!(clear, 0, "no connection to the app's database is in clear");
    assert!(
        total >= 2,
        "the pool and the pipeline are connected ({total})"
    );
}

async fn assert_works_end_to_end_over_tls(app: &TestApp) {
    let client = machine_client(app).await;
    let before = app
        .state
        .db
        .pipelined_lookups()
        .expect("pipelined connections");
    let v = issue_and_introspect(app, &client).await;
    assert_eq!(v["active"], true, "{v}");
    assert!(
        app.state.db.pipelined_lookups().unwrap_or_default() > before,
        "the introspection ran on the pipelined connection (over TLS), not on the pool"
    );
    assert_every_connection_is_tls(app).await;
}

#[tokio::test]
async fn the_server_works_end_to_end_over_tls_with_sslmode_require() {
    if tls_root_cert().is_none() {
        return;
    }
    let app = try_spawn_app(
        Backend::Postgres,
        None,
        &with_params("sslmode=require".into()),
    )
    .await
    .expect("starting with sslmode=require");
    assert_works_end_to_end_over_tls(&app).await;
}

#[tokio::test]
async fn the_server_works_end_to_end_over_tls_with_sslmode_verify_full_and_its_ca() {
    let Some(ca) = tls_root_cert() else {
        return;
    };
    let params = format!("sslmode=verify-full&sslrootcert={}", ca.display());
    let app = try_spawn_app(Backend::Postgres, None, &with_params(params))
        .await
        .expect("starting with sslmode=verify-full");
    assert_works_end_to_end_over_tls(&app).await;
}

#[tokio::test]
async fn verify_full_against_a_wrong_ca_stops_the_start_with_a_clear_error() {
    if tls_root_cert().is_none() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let other = dir.path().join("other-ca.pem");
    std::fs::write(&other, OTHER_CA).unwrap();
    for params in [
        format!("sslmode=verify-full&sslrootcert={}", other.display()),
        format!("sslmode=verify-ca&sslrootcert={}", other.display()),
        // Without sslrootcert only the public roots are trusted: not this server's CA either.
        "sslmode=verify-full".to_string(),
    ] {
        let err = match try_spawn_app(Backend::Postgres, None, &with_params(params.clone())).await {
            Ok(_) => panic!("{params}: the server started against a certificate it cannot trust"),
            Err(e) => format!("{e:#}"),
        };
        assert!(
            err.contains("cannot connect to PostgreSQL (sslmode=verify-")
                && err.to_lowercase().contains("certificate"),
            "{params}: {err}"
        );
        assert!(!err.contains('\n'), "one line: {err}");
    }
    // A root certificate file that cannot be read is named before any connection is tried.
    let missing = dir.path().join("missing.pem");
    let params = format!("sslmode=verify-full&sslrootcert={}", missing.display());
    let err = match try_spawn_app(Backend::Postgres, None, &with_params(params)).await {
        Ok(_) => panic!("the server started with an unreadable sslrootcert"),
        Err(e) => format!("{e:#}"),
    };
    assert!(
        err.contains("sslrootcert") && err.contains("missing.pem"),
        "{err}"
    );
}

#[test]
fn a_bad_sslmode_is_a_one_line_startup_error() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_onyx-id"))
        .arg("serve")
        .env(
            "ONYX_DATABASE_URL",
            "postgres://postgres@127.0.0.1:5432/test?sslmode=verify_full",
        )
        .env("ONYX_ISSUER", "http://127.0.0.1:9")
        .env("ONYX_BIND", "127.0.0.1:0")
        .env("ONYX_KEYS_DIR", "/nonexistent/onyx-keys")
        .output()
        .expect("running onyx-id");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains("sslmode") && lines[0].contains("verify-full"),
        "{stderr}"
    );
}

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[cfg(unix)]
#[tokio::test]
async fn a_fresh_server_keeps_its_keys_folder_and_sqlite_files_to_itself() {
    let data = tempfile::tempdir().unwrap();
    let keys = data.path().join("state").join("keys");
    let db = data.path().join("state").join("onyx.db");
    let (keys_c, db_c) = (keys.clone(), db.clone());
    let app = try_spawn_app(Backend::Sqlite, None, &move |s| {
        s.keys_dir = keys_c.clone();
        s.database_url = DatabaseUrl::parse(&format!("sqlite://{}", db_c.display())).unwrap();
    })
    .await
    .expect("starting on a fresh folder");
    // A write, so that the write-ahead log and its index exist.
    let client = machine_client(&app).await;
    assert_eq!(issue_and_introspect(&app, &client).await["active"], true);
    assert_eq!(mode(&keys), 0o700, "keys folder");
    // The key encryption key the server wrote there (no ONYX_KEY_ENCRYPTION_KEY is set).
    let files: Vec<PathBuf> = std::fs::read_dir(&keys)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(
        files.iter().any(|f| f.ends_with(onyx_id::keys::KEK_FILE)),
        "{files:?}"
    );
    for path in files {
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    for suffix in ["", "-wal", "-shm"] {
        let file = PathBuf::from(format!("{}{suffix}", db.display()));
        assert_eq!(mode(&file), 0o600, "{}", file.display());
    }
}

#[cfg(unix)]
#[tokio::test]
async fn a_keys_folder_open_to_others_is_closed_at_start() {
    // spawn_app's keys folder is copied in with the default mode (0755 under umask 022).
    let app = spawn_app(Backend::Sqlite).await;
    assert_eq!(mode(&app.keys_dir), 0o700);
}

/// Answers of many kinds: a JSON document, a page, an OAuth error, a 404 page, the stylesheet,
/// a redirect, and a body too large (413).
async fn answers(app: &TestApp) -> Vec<(String, reqwest::Response)> {
    let http = http();
    let mut out = Vec::new();
    for path in [
        "/.well-known/openid-configuration",
        "/jwks.json",
        "/healthz",
        "/readyz",
        "/metrics",
        "/static/onyx.css",
        "/no/such/page",
        "/authorize?client_id=nobody",
        "/login",
    ] {
        out.push((path.into(), http.get(app.url(path)).send().await.unwrap()));
    }
    let bad_grant = http
        .post(app.url("/token"))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    out.push(("POST /token".into(), bad_grant));
    let too_big = http
        .post(app.url("/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 200 * 1024])
        .send()
        .await
        .unwrap();
    out.push(("POST /token (200 KiB)".into(), too_big));
    out
}

async fn every_answer_of_an_https_issuer_carries_strict_transport_security(backend: Backend) {
    let app = try_spawn_app(backend, Some("https://id.onyx.example"), &|_| {})
        .await
        .expect("starting with an https issuer");
    let mut statuses = std::collections::BTreeSet::new();
    for (what, res) in answers(&app).await {
        statuses.insert(res.status().as_u16());
        assert_eq!(
            res.headers()
                .get("strict-transport-security")
                .map(|v| v.to_str().unwrap()),
            Some("max-age=31536000; includeSubDomains"),
            "{what} ({})",
            res.status()
        );
    }
    for status in [200, 400, 404, 413] {
        assert!(
            statuses.contains(&status),
            "a {status} was checked: {statuses:?}"
        );
    }
}

#[tokio::test]
async fn an_http_issuer_on_loopback_sends_no_strict_transport_security() {
    let app = spawn_app(Backend::Sqlite).await;
    for (what, res) in answers(&app).await {
        assert!(
            res.headers().get("strict-transport-security").is_none(),
            "{what}"
        );
    }
}
