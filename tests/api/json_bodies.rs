//! The partner and operator APIs read a body only when it is sent as `application/json`
//! (415 otherwise, in the one JSON error body), and refuse a body that names a member twice in
//! one object (400 `invalid_request`) instead of keeping one of the two silently. An empty body
//! still means `{}`.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::partner_api::{get, operator_key, partner, post};

on_each_backend!(
    a_body_that_is_not_sent_as_json_is_refused_with_415,
    a_body_that_names_a_member_twice_is_refused_with_400,
);

async fn send(app: &TestApp, path: &str, key: &str, ct: Option<&str>, body: &str) -> (u16, Value) {
    let mut req = http()
        .post(app.url(path))
        .bearer_auth(key)
        .body(body.to_string());
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    assert_eq!(res.headers()["cache-control"], "no-store", "{path}");
    (status, res.json().await.unwrap())
}

async fn a_body_that_is_not_sent_as_json_is_refused_with_415(backend: Backend) {
    let app = spawn_app(backend).await;
    let op = operator_key(&app, "reviewer@onyx.example").await;
    let (_, key) = partner(&app, &op, "owner@acme.example", "Acme").await;
    let body = r#"{"name": "ci"}"#;
    for ct in [
        None,
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
    ] {
        let (status, v) = send(&app, "/api/v1/partner/keys", &key, ct, body).await;
        assert_eq!(status, 415, "{ct:?}: {v}");
        assert_eq!(v["error"], "unsupported_media_type", "{v}");
        assert!(
            v["error_description"]
                .as_str()
                .unwrap()
                .contains("application/json")
        );
    }
    // The media type is case-insensitive and may carry parameters.
    let ct = Some("Application/JSON; charset=utf-8");
    let (status, v) = send(&app, "/api/v1/partner/keys", &key, ct, body).await;
    assert_eq!(status, 201, "{v}");
    // An empty body is still `{}`, whatever its content type.
    let (status, _) = get(&app, "/api/v1/apps", &key).await;
    assert_eq!(status, StatusCode::OK);
    let (status, v) = send(&app, "/api/v1/apps/nope/submit", &key, None, "").await;
    assert_eq!(status, 404, "{v}");
}

async fn a_body_that_names_a_member_twice_is_refused_with_400(backend: Backend) {
    let app = spawn_app(backend).await;
    let op = operator_key(&app, "reviewer@onyx.example").await;
    let (_, key) = partner(&app, &op, "owner@acme.example", "Acme").await;
    let json = Some("application/json");
    let (status, v) = send(
        &app,
        "/api/v1/partner/keys",
        &key,
        json,
        r#"{"name": "ci", "name": "other"}"#,
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"], "invalid_request");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("\"name\" appears twice"),
        "{v}"
    );
    // Nested objects too (an app's justifications).
    let body = r#"{"name": "Trips", "justifications": {"email": "a", "email": "b"}}"#;
    let (status, v) = send(&app, "/api/v1/apps", &key, json, body).await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("appears twice"),
        "{v}"
    );
    // Nothing was written.
    let (status, v) = post(&app, "/api/v1/partner/keys", &key, json!({ "name": "ok" })).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let (_, apps) = get(&app, "/api/v1/apps", &key).await;
    assert_eq!(apps["apps"], json!([]));
}
