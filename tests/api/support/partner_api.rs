//! The partner program's API as its tests call it: a server whose domain verification reaches a
//! loopback server, the JSON calls with a partner or operator key, an operator and a partner
//! registered, a draft that passes every pre-check, review decisions, and an app taken to
//! preview.

use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::helpers::*;

/// The domain of the test partner's app: `REDIRECT` lives on it.
pub const DOMAIN: &str = "app.example";

/// A server whose domain verification fetches `app.example` from a loopback server over http.
pub async fn spawn_program(backend: Backend, verification_port: u16) -> TestApp {
    spawn_app_with(backend, &move |s| {
        let v = &mut s.domain_verification;
        v.allow_private = true;
        v.insecure_http = true;
        v.resolve = vec![(
            DOMAIN.to_string(),
            std::net::SocketAddr::from(([127, 0, 0, 1], verification_port)),
        )];
    })
    .await
}

/// A tiny HTTP server on loopback that answers every request with `body` (the published
/// verification token). Returns its port.
pub async fn publish(body: std::sync::Arc<std::sync::Mutex<String>>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let body = body.lock().unwrap().clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 2048];
                let _ = sock.read(&mut buf).await;
                let status = if body.is_empty() {
                    "404 Not Found"
                } else {
                    "200 OK"
                };
                let res = format!(
                    "HTTP/1.1 {status}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                    body.len()
                );
                let _ = sock.write_all(res.as_bytes()).await;
            });
        }
    });
    port
}

/// Calls the partner program API with a key; returns the status and the JSON answer.
pub async fn call(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    key: Option<&str>,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = http().request(method, app.url(path));
    if let Some(k) = key {
        req = req.bearer_auth(k);
    }
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, v)
}

pub async fn get(app: &TestApp, path: &str, key: &str) -> (StatusCode, Value) {
    call(app, reqwest::Method::GET, path, Some(key), None).await
}

pub async fn post(app: &TestApp, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
    call(app, reqwest::Method::POST, path, Some(key), Some(body)).await
}

pub async fn put(app: &TestApp, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
    call(app, reqwest::Method::PUT, path, Some(key), Some(body)).await
}

pub async fn patch(app: &TestApp, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
    call(app, reqwest::Method::PATCH, path, Some(key), Some(body)).await
}

/// An operator key, made the way `onyx-id operators create` makes one.
pub async fn operator_key(app: &TestApp, email: &str) -> String {
    app.create_user(email, "Onyx Reviewer").await;
    onyx_id::partner::partners::create_operator(&app.state.db, app.clock_now(), "test", email)
        .await
        .unwrap()
        .api_key
}

/// A partner registered by an operator through the API; returns its id and key.
pub async fn partner(app: &TestApp, op: &str, owner: &str, name: &str) -> (String, String) {
    app.create_user(owner, "Partner Owner").await;
    let (status, v) = post(
        app,
        "/api/v1/operator/partners",
        op,
        json!({
            "name": name,
            "website": "https://partner.example",
            "regions": ["GB", "FR"],
            "support_contact": "help@partner.example",
            "owner_email": owner,
        }),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    (
        v["partner_id"].as_str().unwrap().to_string(),
        v["api_key"].as_str().unwrap().to_string(),
    )
}

/// A draft that passes every pre-check.
pub fn good_draft() -> Value {
    json!({
        "name": "Travel Buddy",
        "description": "Plan trips with friends.",
        "use_case": "travel",
        "purpose": "Show your name on your bookings.",
        "consent_copy": "Travel Buddy never shares your details with airlines.",
        "domain": DOMAIN,
        "redirect_uris": [REDIRECT],
        "origins": ["https://app.example"],
        "support_url": "https://app.example/help",
        "scopes": ["openid", "profile", "email"],
        "optional_scopes": ["email"],
    })
}

/// The draft version an operator reviewing the app sees now.
pub async fn draft_version(app: &TestApp, op: &str, client_id: &str) -> Value {
    let (_, v) = get(app, &format!("/api/v1/operator/apps/{client_id}"), op).await;
    v["draft_version"].clone()
}

pub async fn decide(
    app: &TestApp,
    op: &str,
    client_id: &str,
    step: &str,
    state: &str,
) -> (StatusCode, Value) {
    let version = draft_version(app, op, client_id).await;
    put(
        app,
        &format!("/api/v1/operator/apps/{client_id}/steps/{step}"),
        op,
        json!({ "state": state, "note": "checked", "draft_version": version }),
    )
    .await
}

/// Where the browser lands when `email` starts signing in to the app.
pub async fn sign_in(app: &TestApp, client_id: &str, email: &str) -> (String, String) {
    sign_in_and_approve(app, client_id, email, "openid profile").await
}

pub async fn app_in_preview_with(
    app: &TestApp,
    published: &std::sync::Arc<std::sync::Mutex<String>>,
    draft: Value,
) -> (String, String, String, String) {
    let op = operator_key(app, "reviewer@onyx.example").await;
    let (_, key) = partner(app, &op, "owner@partner.example", "Buddy Ltd").await;
    let (_, created) = post(app, "/api/v1/apps", &key, draft).await;
    let client_id = created["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    post(
        app,
        &format!("/api/v1/apps/{client_id}/submit"),
        &key,
        json!({}),
    )
    .await;
    let dv = format!("/api/v1/apps/{client_id}/domain-verification");
    let (_, challenge) = get(app, &dv, &key).await;
    *published.lock().unwrap() = challenge["token"].as_str().unwrap().to_string();
    let (_, v) = post(app, &dv, &key, json!({})).await;
    assert_eq!(v["verified"], true, "{v}");
    for step in [
        "company",
        "app_identity",
        "use_case",
        "scopes",
        "domain",
        "redirect_uris",
    ] {
        let (status, v) = decide(app, &op, &client_id, step, "approved").await;
        assert_eq!(status, 200, "{step}: {v}");
    }
    (op, key, client_id, secret)
}
