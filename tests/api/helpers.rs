//! `spawn_app()`: the real server on 127.0.0.1:0 with a fresh database (a SQLite file per
//! test, or a fresh PostgreSQL database per test when `ONYX_TEST_POSTGRES_URL` is set, dropped
//! afterwards), its own keys folder and a clock the test can move.

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use onyx_id::admin::{self, AppSpec};
use onyx_id::clock::{Clock, ManualClock};
use onyx_id::config::{Settings, TrustedProxies};
use onyx_id::keys::{Algorithm, KeyMaterial};
use onyx_id::startup::{AppState, build_state, run};
use openidconnect::core::{CoreClient, CoreProviderMetadata};
use openidconnect::{
    ClientId, ClientSecret, EndpointMaybeSet, EndpointNotSet, EndpointSet, IssuerUrl, RedirectUrl,
};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, LOCATION};
use serde_json::{Value, json};
use sqlx::Connection;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
    /// SQLite with every query through sqlx (`DatabaseUrl::plain_sqlx`): no direct reads, no
    /// inline token writer.
    SqlitePlain,
    /// PostgreSQL with every query through sqlx's pool: no pipelined connections.
    PostgresPlain,
}

impl Backend {
    /// Whether the fast paths are off (`DatabaseUrl::plain_sqlx`).
    pub fn is_plain(self) -> bool {
        matches!(self, Backend::SqlitePlain | Backend::PostgresPlain)
    }
}

/// SQLite always; PostgreSQL too when `ONYX_TEST_POSTGRES_URL` is set.
pub fn backends() -> Vec<Backend> {
    let mut b = vec![Backend::Sqlite];
    if std::env::var("ONYX_TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty()) {
        b.push(Backend::Postgres);
    }
    b
}

/// Whether the PostgreSQL case of a test runs: yes when `ONYX_TEST_POSTGRES_URL` is set. Without
/// it the case says it is skipped, except under CI (`CI` set), where a PostgreSQL case that
/// cannot run is a failure, not a silent pass.
pub fn postgres_runs() -> bool {
    if backends().contains(&Backend::Postgres) {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| !v.is_empty()) {
        panic!("CI is set but ONYX_TEST_POSTGRES_URL is not: CI must run every PostgreSQL case");
    }
    eprintln!("SKIPPED: the PostgreSQL case, as ONYX_TEST_POSTGRES_URL is not set");
    false
}

/// Registers each `async fn name(backend: Backend)` as two tests, `name::sqlite` and
/// `name::postgres`, so a failure names its backend and PostgreSQL still runs when SQLite
/// fails. The PostgreSQL case follows `postgres_runs()`. `on_each_backend!(plain: …)` adds
/// `name::sqlite_plain` and `name::postgres_plain`, the same test with the fast paths off.
macro_rules! on_each_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            use crate::helpers::Backend;

            #[tokio::test]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await
            }

            #[tokio::test]
            async fn postgres() {
                if crate::helpers::postgres_runs() {
                    super::$name(Backend::Postgres).await
                }
            }
        }
    )*};
    // `plain:` adds `name::sqlite_plain` and `name::postgres_plain`: the same test with the fast
    // paths off, so the sqlx path they fall back to is covered on both backends.
    (plain: $($name:ident),* $(,)?) => {$(
        mod $name {
            use crate::helpers::Backend;

            #[tokio::test]
            async fn sqlite() {
                super::$name(Backend::Sqlite).await
            }

            #[tokio::test]
            async fn postgres() {
                if crate::helpers::postgres_runs() {
                    super::$name(Backend::Postgres).await
                }
            }

            #[tokio::test]
            async fn sqlite_plain() {
                super::$name(Backend::SqlitePlain).await
            }

            #[tokio::test]
            async fn postgres_plain() {
                if crate::helpers::postgres_runs() {
                    super::$name(Backend::PostgresPlain).await
                }
            }
        }
    )*};
}

pub struct TestApp {
    pub address: String,
    /// The `--metrics-bind` address, when the test set one.
    pub internal_address: Option<String>,
    pub issuer: String,
    pub clock: ManualClock,
    pub state: AppState,
    pub database_url: String,
    pub keys_dir: PathBuf,
    /// The fast paths are off (`Backend::SqlitePlain`, `Backend::PostgresPlain`).
    pub plain: bool,
    /// The test's own connections to the app's database (see [`TestApp::sql`]).
    sql: tokio::sync::OnceCell<sqlx::AnyPool>,
    _dir: tempfile::TempDir,
    pg_drop: Option<(String, String)>,
}

impl TestApp {
    /// A pool of the test's own on the app's database, for a test that sets up or inspects rows
    /// directly: the server's own connections are private to its store.
    pub async fn sql(&self) -> &sqlx::AnyPool {
        self.sql
            .get_or_init(|| async {
                sqlx::any::AnyPoolOptions::new()
                    .max_connections(2)
                    .connect(&self.database_url)
                    .await
                    .expect("the test's own connection to the app's database")
            })
            .await
    }
}

/// One set of keys for the whole test binary (an RSA key takes a moment to generate), copied
/// into each app's own keys folder in the form a deployment kept them in before they moved into
/// the database (one PKCS#8 PEM per key and `keys.json`): each app imports them on its first
/// start, so every test starts through the import.
fn fixture_keys() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = tempfile::tempdir().expect("tempdir");
        let created = ManualClock::new().now() - 3600;
        let entries: Vec<Value> = [Algorithm::ES256, Algorithm::RS256]
            .into_iter()
            .map(|alg| {
                let material = KeyMaterial::generate(alg).expect("generating a test key");
                let kid = onyx_id::crypto::random_token(12);
                let file = format!("{kid}.{}.pem", alg.as_str().to_ascii_lowercase());
                std::fs::write(dir.path().join(&file), material.to_pem()).unwrap();
                json!({
                    "kid": kid, "alg": alg.as_str(), "file": file,
                    "created_at": created, "activates_at": created, "retires_at": null,
                })
            })
            .collect();
        std::fs::write(
            dir.path().join("keys.json"),
            json!({ "keys": entries }).to_string(),
        )
        .unwrap();
        dir
    })
    .path()
}

/// The kids of the fixture keys' `keys.json`, as every test app imports them.
pub fn fixture_kids() -> Vec<String> {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(fixture_keys().join("keys.json")).unwrap()).unwrap();
    manifest["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| text(k, "kid"))
        .collect()
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
}

pub async fn fresh_postgres_database() -> (String, String, String) {
    let admin_url = std::env::var("ONYX_TEST_POSTGRES_URL").expect("ONYX_TEST_POSTGRES_URL");
    let name = format!(
        "onyx_test_{}",
        onyx_id::crypto::random_token(9)
            .to_lowercase()
            .replace('-', "_")
    );
    let mut conn = sqlx::PgConnection::connect(&admin_url)
        .await
        .expect("connecting to PostgreSQL");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("creating a test database");
    let mut url = url::Url::parse(&admin_url).expect("ONYX_TEST_POSTGRES_URL is a URL");
    url.set_path(&format!("/{name}"));
    (url.to_string(), admin_url, name)
}

/// A server started on a random port.
struct Started {
    address: String,
    internal_address: Option<String>,
    issuer: String,
    state: AppState,
    database_url: String,
    keys_dir: PathBuf,
}

/// Starts a server on a random port; its issuer is its own address unless `issuer` is given (as
/// for a second instance behind the same public name), and `configure` changes its settings
/// first.
async fn start_server(
    database_url: &str,
    keys_dir: &Path,
    issuer: Option<&str>,
    clock: &ManualClock,
    configure: &dyn Fn(&mut Settings),
) -> anyhow::Result<Started> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let address = format!("http://{}", listener.local_addr()?);
    let issuer = issuer.unwrap_or(&address).to_string();
    let mut settings = Settings::parse(
        &listener.local_addr()?.to_string(),
        &issuer,
        database_url,
        keys_dir.to_str().unwrap(),
    )
    .map_err(anyhow::Error::msg)?;
    configure(&mut settings);
    let database_url = settings.database_url.expose().to_string();
    let keys_dir = settings.keys_dir.clone();
    // `--metrics-bind`: its own listener (port 0 gets one from the system).
    let internal = match settings.metrics_bind {
        Some(addr) => Some(tokio::net::TcpListener::bind(addr).await?),
        None => None,
    };
    let internal_address = match &internal {
        Some(l) => Some(format!("http://{}", l.local_addr()?)),
        None => None,
    };
    let state = build_state(settings, Arc::new(clock.clone())).await?;
    tokio::spawn(run(listener, internal, state.clone()));
    Ok(Started {
        address,
        internal_address,
        issuer,
        state,
        database_url,
        keys_dir,
    })
}

/// The test server listens on 127.0.0.1: trusting it as a proxy lets a test speak from any
/// address through `X-Forwarded-For`.
pub fn trust_localhost(s: &mut Settings) {
    s.trusted_proxies = TrustedProxies::parse(&["127.0.0.1/32".to_string()]).unwrap();
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    spawn_app_with(backend, &|_| {}).await
}

/// `spawn_app`, with settings changed by `configure` first.
pub async fn spawn_app_with(backend: Backend, configure: &dyn Fn(&mut Settings)) -> TestApp {
    try_spawn_app(backend, None, configure)
        .await
        .expect("building the app")
}

/// `spawn_app_with`, with the issuer given (an https issuer, as behind a TLS front end; `None`
/// for the server's own address) and a start-up failure returned instead of a panic.
pub async fn try_spawn_app(
    backend: Backend,
    issuer: Option<&str>,
    configure: &dyn Fn(&mut Settings),
) -> anyhow::Result<TestApp> {
    // Server logs go to the test's captured output: shown when a test fails.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new("warn"))
        .with_test_writer()
        .try_init();
    let dir = tempfile::tempdir()?;
    let keys_dir = dir.path().join("keys");
    copy_dir(fixture_keys(), &keys_dir);
    let (database_url, pg_drop) = match backend {
        Backend::Sqlite | Backend::SqlitePlain => (
            format!("sqlite://{}", dir.path().join("onyx.db").display()),
            None,
        ),
        Backend::Postgres | Backend::PostgresPlain => {
            let (url, admin, name) = fresh_postgres_database().await;
            (url, Some((admin, name)))
        }
    };
    let clock = ManualClock::new();
    let plain = backend.is_plain();
    let configure = |s: &mut Settings| {
        configure(s);
        s.database_url.plain_sqlx = plain;
    };
    let started = match start_server(&database_url, &keys_dir, issuer, &clock, &configure).await {
        Ok(started) => started,
        Err(e) => {
            if let Some((admin, name)) = pg_drop {
                drop_postgres_database(admin, name);
            }
            return Err(e);
        }
    };
    Ok(TestApp {
        address: started.address,
        internal_address: started.internal_address,
        issuer: started.issuer,
        clock,
        state: started.state,
        database_url: started.database_url,
        keys_dir: started.keys_dir,
        plain,
        sql: tokio::sync::OnceCell::new(),
        _dir: dir,
        pg_drop,
    })
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_drop.take() {
            drop_postgres_database(admin, name);
        }
    }
}

pub const PASSWORD: &str = "correct horse battery staple";
pub const REDIRECT: &str = "https://app.example/callback";

pub struct Client {
    pub client_id: String,
    pub client_secret: Option<String>,
}

impl Client {
    /// The credentials in the answer that created an app (`apps create`).
    pub fn from_created(created: &Value) -> Client {
        Client {
            client_id: text(created, "client_id"),
            client_secret: created["client_secret"].as_str().map(str::to_string),
        }
    }
}

impl TestApp {
    /// Another instance on the same database and keys, with the same issuer and clock (as
    /// several stateless instances behind one name). Returns its base URL.
    pub async fn second_instance(&self) -> String {
        let started = start_server(
            &self.database_url,
            &self.keys_dir,
            Some(&self.issuer),
            &self.clock,
            &|s| s.database_url.plain_sqlx = self.plain,
        )
        .await
        .expect("a second instance");
        started.address
    }

    pub fn clock_now(&self) -> i64 {
        self.clock.now()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.address, path)
    }

    pub async fn create_user(&self, email: &str, name: &str) -> String {
        let v = admin::create_user(&self.state.db, self.clock.now(), email, name, PASSWORD)
            .await
            .expect("creating a user");
        v.user_id
    }

    pub async fn create_app_with(&self, spec: AppSpec) -> Client {
        let v = admin::create_app(&self.state.db, self.clock.now(), spec)
            .await
            .expect("creating an app");
        Client {
            client_id: v.client_id,
            client_secret: v.client_secret,
        }
    }

    /// A confidential app at `REDIRECT` approved for `scopes`.
    pub async fn create_app(&self, scopes: &[&str]) -> Client {
        self.create_app_with(spec(scopes)).await
    }
}

/// `spec`, with every grant type (client credentials and refresh tokens too).
pub fn full_spec(scopes: &[&str]) -> AppSpec {
    let mut s = spec(scopes);
    s.grant_types = vec![
        "authorization_code".into(),
        "refresh_token".into(),
        "client_credentials".into(),
    ];
    s
}

pub fn spec(scopes: &[&str]) -> AppSpec {
    AppSpec::new("Travel Buddy", &[REDIRECT], scopes)
}

/// An HTTP client that follows no redirects (the tests look at each one).
pub fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A browser: keeps cookies, follows no redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .build()
        .unwrap()
}

pub fn location(headers: &HeaderMap) -> String {
    headers
        .get(LOCATION)
        .expect("a Location header")
        .to_str()
        .unwrap()
        .to_string()
}

/// The value of a hidden form field in a page.
pub fn hidden_field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no field {name} in {html}"))
        + marker.len();
    let end = html[start..].find('"').unwrap() + start;
    html[start..end].to_string()
}

/// The query parameters of a URL.
pub fn query(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .into_owned()
        .collect()
}

/// A PKCE pair (verifier, S256 challenge).
pub fn pkce() -> (String, String) {
    let verifier = onyx_id::crypto::random_token(48);
    let challenge = {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(onyx_id::crypto::sha256(verifier.as_bytes()))
    };
    (verifier, challenge)
}

/// An authorize URL with PKCE for `client` and `scope`, plus the verifier.
pub fn authorize_url(
    app: &TestApp,
    client_id: &str,
    scope: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let (verifier, challenge) = pkce();
    let mut pairs = vec![
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", REDIRECT),
        ("scope", scope),
        ("state", "st-123"),
        ("nonce", "n-456"),
        ("code_challenge", challenge.as_str()),
        ("code_challenge_method", "S256"),
    ];
    pairs.extend_from_slice(extra);
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    (app.url(&format!("/authorize?{q}")), verifier)
}

/// Follows one redirect from the server (relative or absolute Location).
pub fn absolute(app: &TestApp, location: &str) -> String {
    if location.starts_with('/') {
        app.url(location)
    } else {
        location.to_string()
    }
}

/// Signs in on the login page the browser was sent to; returns where the server sends it next.
pub async fn log_in(
    app: &TestApp,
    browser: &reqwest::Client,
    login_url: &str,
    email: &str,
) -> String {
    let page = browser.get(absolute(app, login_url)).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let res = browser
        .post(app.url("/login"))
        .form(&login_form(&html, email, PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "login should redirect");
    location(res.headers())
}

/// The sign-in form of the login page `html`, filled in.
pub fn login_form(html: &str, email: &str, password: &str) -> [(&'static str, String); 4] {
    [
        ("request_id", hidden_field(html, "request_id")),
        ("csrf_token", hidden_field(html, "csrf_token")),
        ("email", email.to_string()),
        ("password", password.to_string()),
    ]
}

/// Answers the consent page; returns the redirect to the client.
pub async fn answer_consent(
    app: &TestApp,
    browser: &reqwest::Client,
    consent_url: &str,
    decision: &str,
) -> String {
    let html = consent_page(app, browser, consent_url).await;
    let res = post_consent(app, browser, &html, decision, &[]).await;
    assert_eq!(res.status(), 303);
    location(res.headers())
}

/// The whole browser part: authorize, log in, approve if asked. Returns where the server sends
/// the browser back to the app, and the PKCE verifier.
pub async fn sign_in_and_approve(
    app: &TestApp,
    client_id: &str,
    email: &str,
    scope: &str,
) -> (String, String) {
    let browser = browser();
    let (url, verifier) = authorize_url(app, client_id, scope, &[]);
    let res = browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let login = location(res.headers());
    let next = log_in(app, &browser, &login, email).await;
    let back = if next.starts_with("/consent") {
        answer_consent(app, &browser, &next, "approve").await
    } else {
        next
    };
    (back, verifier)
}

/// `sign_in_and_approve`; returns the code and the verifier.
pub async fn authorize_code(
    app: &TestApp,
    client_id: &str,
    email: &str,
    scope: &str,
) -> (String, String) {
    let (back, verifier) = sign_in_and_approve(app, client_id, email, scope).await;
    (query(&back)["code"].clone(), verifier)
}

/// Exchanges a code with client_secret_post; returns the response.
pub async fn exchange(
    app: &TestApp,
    client: &Client,
    code: &str,
    verifier: &str,
) -> reqwest::Response {
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
        ("client_id", client.client_id.as_str()),
    ];
    if let Some(s) = &client.client_secret {
        form.push(("client_secret", s));
    }
    http()
        .post(app.url("/token"))
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// Drops a test database (from outside async code: on a small runtime of its own).
pub fn drop_postgres_database(admin: String, name: String) {
    let _ = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            if let Ok(mut conn) = sqlx::PgConnection::connect(&admin).await {
                let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                    "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                )))
                .execute(&mut conn)
                .await;
            }
        });
    })
    .join();
}

/// A string field of a JSON value, or a panic naming the field and the value.
pub fn text(v: &Value, key: &str) -> String {
    v[key]
        .as_str()
        .unwrap_or_else(|| panic!("no {key} in {v}"))
        .to_string()
}

/// The body of a GET to `url` (a page, mostly).
pub async fn get_text(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> String {
    client.get(url).send().await.unwrap().text().await.unwrap()
}

/// The JSON body of a GET to `url`.
pub async fn get_json(client: &reqwest::Client, url: impl reqwest::IntoUrl) -> Value {
    client.get(url).send().await.unwrap().json().await.unwrap()
}

/// The status and the JSON body of a response: `null` for an empty body, a panic for a body
/// that is not JSON.
pub async fn json_of(res: reqwest::Response) -> (StatusCode, Value) {
    let status = res.status();
    let body = res.text().await.unwrap();
    if body.is_empty() {
        return (status, Value::Null);
    }
    let v = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON ({status}): {body}"));
    (status, v)
}

/// A form POST to `url` with HTTP Basic credentials: the status and the JSON answer.
pub async fn post_form(
    url: String,
    id: &str,
    secret: Option<&str>,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let req = http().post(url).basic_auth(id, secret).form(form);
    json_of(req.send().await.unwrap()).await
}

/// A form POST to `path` with the app's own credentials (HTTP Basic), as the app makes it.
pub async fn app_post(
    app: &TestApp,
    client: &Client,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    let secret = client.client_secret.as_deref();
    post_form(app.url(path), &client.client_id, secret, form).await
}

/// A token request with the app's own credentials.
pub async fn token(app: &TestApp, client: &Client, form: &[(&str, &str)]) -> (StatusCode, Value) {
    app_post(app, client, "/token", form).await
}

/// Introspects `token` with the app's own credentials; the answer, checked to be a 200 whose
/// `active` is a JSON boolean.
pub async fn introspect(app: &TestApp, client: &Client, token: &str) -> Value {
    let (status, v) = app_post(app, client, "/introspect", &[("token", token)]).await;
    assert_eq!(status, 200, "{v}");
    assert!(v["active"].is_boolean(), "active is a JSON boolean: {v}");
    v
}

/// Presents a refresh token with the app's own credentials.
pub async fn refresh(app: &TestApp, client: &Client, refresh_token: &str) -> (StatusCode, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", refresh_token),
    ];
    token(app, client, &form).await
}

/// The client credentials grant for `scope`.
pub async fn client_credentials(
    app: &TestApp,
    client: &Client,
    scope: &str,
) -> (StatusCode, Value) {
    let form = [("grant_type", "client_credentials"), ("scope", scope)];
    token(app, client, &form).await
}

/// Userinfo with a Bearer token.
pub async fn userinfo(app: &TestApp, token: &str) -> (StatusCode, Value) {
    let req = http().get(app.url("/userinfo")).bearer_auth(token);
    json_of(req.send().await.unwrap()).await
}

/// The grants API (`/api/v1/grants/…`) with the app's own credentials.
pub async fn grants_api(
    app: &TestApp,
    client: &Client,
    method: reqwest::Method,
    path: &str,
) -> (StatusCode, Value) {
    let secret = client.client_secret.as_deref();
    let req = http()
        .request(method, app.url(path))
        .basic_auth(&client.client_id, secret);
    json_of(req.send().await.unwrap()).await
}

/// The consent page's HTML, after following `url` (a path or URL) with a signed-in browser.
pub async fn consent_page(app: &TestApp, browser: &reqwest::Client, url: &str) -> String {
    assert!(
        url.starts_with("/consent"),
        "expected the consent page, got {url}"
    );
    let res = browser.get(absolute(app, url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let frame = res.headers()["x-frame-options"].to_str().unwrap();
    assert_eq!(frame, "DENY");
    res.text().await.unwrap()
}

/// Posts the consent form of `html` with `decision`, ticking `ticked` optional scopes.
pub async fn post_consent(
    app: &TestApp,
    browser: &reqwest::Client,
    html: &str,
    decision: &str,
    ticked: &[&str],
) -> reqwest::Response {
    let mut form = vec![
        ("request_id".to_string(), hidden_field(html, "request_id")),
        ("csrf_token".to_string(), hidden_field(html, "csrf_token")),
        ("shown".to_string(), hidden_field(html, "shown")),
        ("decision".to_string(), decision.to_string()),
    ];
    for s in ticked {
        form.push((format!("scope:{s}"), "allow".to_string()));
    }
    let req = browser.post(app.url("/consent")).form(&form);
    req.send().await.unwrap()
}

/// An `openidconnect` client for `client`, from the server's discovery document (as a partner
/// app sets one up), redirecting to `REDIRECT`.
pub async fn oidc_client(
    app: &TestApp,
    client: &Client,
    http: &reqwest::Client,
) -> CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
> {
    let issuer = IssuerUrl::new(app.issuer.clone()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, http)
        .await
        .expect("discovery");
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(client.client_id.clone()),
        client.client_secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(REDIRECT.to_string()).unwrap())
}
