//! Sign-out helpers, for every test of a way a session ends: an app registered with a
//! back-channel logout URI on a receiver in the test, a browser signed in to it through the
//! real login and consent pages with its tokens, and the checks a strict relying party makes of
//! a `logout_token` (signature against the server's JWKS, `typ`, `iss`, `aud`, `events`, `sid`,
//! no `nonce`).
//!
//! ```ignore
//! let app = spawn_app_with(backend, &logout::local).await;
//! let receiver = LogoutReceiver::start().await;
//! let client = logout::app_told_at(&app, &receiver, &["openid"]).await;
//! let signed_in = logout::sign_in(&app, &client, "ada@example.com", "openid").await;
//! // … end the session some way …
//! let token = receiver.next(0).await;
//! let claims = logout::verify_logout_token(&app, &client, &token).await;
//! assert_eq!(claims["sid"], signed_in.sid);
//! ```

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use onyx_id::admin::AppSpec;
use onyx_id::config::Settings;
use serde_json::Value;

use crate::helpers::{
    Client, REDIRECT, TestApp, answer_consent, authorize_url, browser, exchange, get_json, json_of,
    location, log_in, query, spec, text,
};

/// Where the test apps send people after sign-out.
pub const SIGNED_OUT: &str = "https://app.example/signed-out";

/// Back-channel deliveries to loopback over http, fast polling and a 1-second retry schedule
/// (the test-only allow flags, as the webhook tests use them).
pub fn local(s: &mut Settings) {
    s.webhooks.allow_private = true;
    s.webhooks.insecure_http = true;
    s.webhooks.poll_interval = Duration::from_millis(50);
    s.webhooks.retry_schedule = vec![Duration::from_secs(1); 3];
}

#[derive(Default)]
struct Inner {
    /// Every `logout_token` received, in order.
    tokens: Vec<String>,
    /// Whether each request was form-encoded.
    form_encoded: Vec<bool>,
    /// The statuses to answer next (then 200).
    script: VecDeque<u16>,
}

/// A back-channel logout receiver: a real axum server on 127.0.0.1 that keeps every
/// `logout_token` posted to it and answers 200, or what it was told to.
#[derive(Clone)]
pub struct LogoutReceiver {
    base: String,
    inner: Arc<Mutex<Inner>>,
}

impl LogoutReceiver {
    pub async fn start() -> Self {
        let inner: Arc<Mutex<Inner>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let shared = inner.clone();
        let handler = move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let inner = shared.clone();
            async move {
                let mut s = inner.lock().unwrap();
                let form = headers
                    .get("content-type")
                    .and_then(|v| v.to_str().ok())
                    .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
                let token = url::form_urlencoded::parse(&body)
                    .find(|(k, _)| k == "logout_token")
                    .map(|(_, v)| v.into_owned())
                    .unwrap_or_default();
                s.tokens.push(token);
                s.form_encoded.push(form);
                let status = s.script.pop_front().unwrap_or(200);
                StatusCode::from_u16(status).unwrap()
            }
        };
        let router = axum::Router::new().fallback(handler);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self { base, inner }
    }

    /// The URL to register as `backchannel_logout_uri`.
    pub fn url(&self) -> String {
        format!("{}/onyx/logout", self.base)
    }

    /// Answers the next requests with `statuses`, then 200 again.
    pub fn answer(&self, statuses: &[u16]) {
        self.inner.lock().unwrap().script.extend(statuses);
    }

    /// Every logout token received so far.
    pub fn tokens(&self) -> Vec<String> {
        self.inner.lock().unwrap().tokens.clone()
    }

    /// Whether every request so far was `application/x-www-form-urlencoded`.
    pub fn all_form_encoded(&self) -> bool {
        self.inner.lock().unwrap().form_encoded.iter().all(|f| *f)
    }

    /// Waits for the logout token after the first `seen`.
    pub async fn next(&self, seen: usize) -> String {
        let found = super::wait::until(Duration::from_millis(20), || async {
            self.tokens().get(seen).cloned()
        })
        .await;
        if let Some(t) = found {
            return t;
        }
        panic!(
            "no logout token #{seen} arrived; got {}",
            self.tokens().len()
        );
    }

    /// Waits a little and says how many tokens arrived (for "nothing more came").
    pub async fn settled_count(&self) -> usize {
        tokio::time::sleep(Duration::from_millis(400)).await;
        self.tokens().len()
    }
}

/// A confidential app at `REDIRECT`, approved for `scopes`, with the code and refresh grants,
/// `SIGNED_OUT` as post-logout redirect URI and, when `receiver` is given, its back-channel
/// logout URI there.
pub async fn app_with(
    app: &TestApp,
    name: &str,
    receiver: Option<&LogoutReceiver>,
    scopes: &[&str],
) -> Client {
    let mut s: AppSpec = spec(scopes);
    s.name = name.to_string();
    s.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    s.post_logout_redirect_uris = vec![SIGNED_OUT.to_string()];
    s.backchannel_logout_uri = receiver.map(LogoutReceiver::url);
    app.create_app_with(s).await
}

/// [`app_with`], told at `receiver`.
pub async fn app_told_at(app: &TestApp, receiver: &LogoutReceiver, scopes: &[&str]) -> Client {
    app_with(app, "Travel Buddy", Some(receiver), scopes).await
}

/// A browser signed in to onyx-id, and the tokens one app got in that session.
pub struct SignedIn {
    pub browser: reqwest::Client,
    pub tokens: Value,
    pub id_token: String,
    /// The ID token's `sid`.
    pub sid: String,
    /// The ID token's `sub`.
    pub sub: String,
}

impl SignedIn {
    pub fn access_token(&self) -> String {
        text(&self.tokens, "access_token")
    }
}

/// The claims of a JWT, unverified (the tests verify where it matters).
pub fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// The header of a JWT.
pub fn header_of(jwt: &str) -> Value {
    let header = jwt.split('.').next().expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap()
}

/// Authorizes `client` for `scope` in `browser` (signing in and approving when asked) and
/// exchanges the code; the token response.
pub async fn tokens_in(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &Client,
    email: &str,
    scope: &str,
) -> Value {
    let (url, verifier) = authorize_url(app, &client.client_id, scope, &[]);
    let res = browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let mut next = location(res.headers());
    if next.starts_with("/login") {
        next = log_in(app, browser, &next, email).await;
    }
    if next.starts_with("/consent") {
        next = answer_consent(app, browser, &next, "approve").await;
    }
    assert!(next.starts_with(REDIRECT), "back to the app: {next}");
    let code = query(&next)["code"].clone();
    let (status, tokens) = json_of(exchange(app, client, &code, &verifier).await).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

/// A fresh browser signed in as `email`, with `client`'s tokens for `scope` (which must hold
/// `openid`).
pub async fn sign_in(app: &TestApp, client: &Client, email: &str, scope: &str) -> SignedIn {
    let browser = browser();
    let tokens = tokens_in(app, &browser, client, email, scope).await;
    let id_token = text(&tokens, "id_token");
    let claims = claims_of(&id_token);
    SignedIn {
        browser,
        sid: text(&claims, "sid"),
        sub: text(&claims, "sub"),
        id_token,
        tokens,
    }
}

/// Where `/authorize` sends `browser` for `client` now: `/login…` once signed out.
pub async fn authorize_goes_to(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &Client,
) -> String {
    let (url, _) = authorize_url(app, &client.client_id, "openid", &[]);
    let res = browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 303);
    location(res.headers())
}

/// Verifies a logout token as a strict relying party does (Back-Channel Logout 1.0 §2.6):
/// the signature against the server's JWKS (`kid` from the header), `typ: logout+jwt`, `iss`,
/// `aud` = the app, `iat`, `exp` two minutes later, a `jti`, the back-channel `events` member
/// and no `nonce`; returns its claims.
pub async fn verify_logout_token(app: &TestApp, client: &Client, token: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).expect("a JWS header");
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(get_json(&reqwest::Client::new(), app.url("/jwks.json")).await)
            .unwrap();
    let kid = header.kid.clone().expect("a kid");
    let jwk = jwks.find(&kid).expect("the kid is in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_audience(&[&client.client_id]);
    validation.set_issuer(&[&app.issuer]);
    // The manual clock may be ahead of the wall clock: exp is checked against it below.
    validation.validate_exp = false;
    validation.required_spec_claims = ["iss", "aud", "iat", "jti"]
        .into_iter()
        .map(String::from)
        .collect();
    let data = jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("the logout token does not verify: {e}"));
    let claims = data.claims;
    assert_eq!(
        claims["events"],
        serde_json::json!({"http://schemas.openid.net/event/backchannel-logout": {}})
    );
    assert!(claims.get("nonce").is_none(), "no nonce: {claims}");
    assert!(claims["sid"].is_string(), "a sid: {claims}");
    assert!(claims["sub"].is_string(), "a sub: {claims}");
    assert!(!text(&claims, "jti").is_empty());
    let (iat, exp) = (
        claims["iat"].as_i64().unwrap(),
        claims["exp"].as_i64().unwrap(),
    );
    assert_eq!(exp - iat, 120, "valid two minutes: {claims}");
    assert!(exp > app.clock_now(), "not expired: {claims}");
    claims
}

/// The back-channel attempts logged for app `client_id`: (attempt, outcome, status), oldest
/// first.
pub async fn attempts(app: &TestApp, client_id: &str) -> Vec<(i64, String, Option<i64>)> {
    sqlx::query_as(
        "SELECT a.attempt, a.outcome, a.status FROM logout_attempts a
         JOIN logout_deliveries d ON d.id = a.delivery_id
         WHERE d.client_id = $1 ORDER BY a.at, a.attempt",
    )
    .bind(client_id)
    .fetch_all(app.sql().await)
    .await
    .unwrap()
}

/// The URL of the end-session endpoint, from discovery.
pub async fn end_session_endpoint(app: &TestApp) -> String {
    let d = get_json(
        &reqwest::Client::new(),
        app.url("/.well-known/openid-configuration"),
    )
    .await;
    text(&d, "end_session_endpoint")
}
