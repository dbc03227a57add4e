//! The refusals the framework decides on (a body too large, a wrong method, no such route, a
//! path that is not UTF-8, an over-long URI or header block) answer in onyx-id's one JSON error
//! shape with `no-store` on the JSON routes, and with the error page on the pages. No storage
//! is involved: SQLite is enough.

use reqwest::{Method, Response};

use crate::helpers::*;

/// Checks a JSON refusal: status, `application/json`, `no-store`, and the one body shape.
async fn assert_json_refusal(res: Response, status: u16, code: &str, what: &str) {
    assert_eq!(res.status().as_u16(), status, "{what}");
    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("application/json"), "{what}: {ct}");
    assert_eq!(
        res.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "{what}"
    );
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], code, "{what}: {body}");
    let description = body["error_description"].as_str().unwrap_or_default();
    assert!(!description.is_empty(), "{what}: {body}");
    let members: Vec<&String> = body.as_object().unwrap().keys().collect();
    assert_eq!(members, ["error", "error_description"], "{what}: {body}");
}

/// Checks a refusal on a page: status and the HTML error page.
async fn assert_page_refusal(res: Response, status: u16, what: &str) {
    assert_eq!(res.status().as_u16(), status, "{what}");
    let ct = res.headers()["content-type"].to_str().unwrap().to_string();
    assert!(ct.starts_with("text/html"), "{what}: {ct}");
    assert_eq!(
        res.headers()
            .get("cache-control")
            .map(|v| v.to_str().unwrap()),
        Some("no-store"),
        "{what}"
    );
    let body = res.text().await.unwrap();
    assert!(body.contains("<html"), "{what}: {body}");
}

#[tokio::test]
async fn a_body_over_64_kib_is_refused_with_the_json_error_shape() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in ["/token", "/api/v1/apps", "/introspect"] {
        let res = http()
            .post(app.url(path))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(vec![b'a'; 65 * 1024])
            .send()
            .await
            .unwrap();
        assert_json_refusal(res, 413, "request_too_large", path).await;
    }
}

#[tokio::test]
async fn a_body_over_64_kib_to_a_page_gets_the_error_page() {
    let app = spawn_app(Backend::Sqlite).await;
    let res = http()
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 65 * 1024])
        .send()
        .await
        .unwrap();
    assert_page_refusal(res, 413, "POST /login").await;
}

#[tokio::test]
async fn a_wrong_method_is_refused_with_the_json_error_shape_and_the_allow_header() {
    let app = spawn_app(Backend::Sqlite).await;
    for (method, path) in [
        (Method::GET, "/token"),
        (Method::DELETE, "/introspect"),
        (Method::PUT, "/jwks.json"),
        (Method::POST, "/api/v1/grants/someone/history"),
    ] {
        let res = http()
            .request(method.clone(), app.url(path))
            .send()
            .await
            .unwrap();
        let what = format!("{method} {path}");
        assert!(res.headers().contains_key("allow"), "{what}");
        assert_json_refusal(res, 405, "method_not_allowed", &what).await;
    }
}

#[tokio::test]
async fn a_wrong_method_on_a_page_gets_the_error_page() {
    let app = spawn_app(Backend::Sqlite).await;
    let res = http().delete(app.url("/login")).send().await.unwrap();
    assert!(res.headers().contains_key("allow"));
    assert_page_refusal(res, 405, "DELETE /login").await;
}

#[tokio::test]
async fn an_unknown_route_under_api_v1_is_a_json_404() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in ["/api/v1/nothing", "/api/v1/partner/nothing/here", "/api/v1"] {
        let res = http().get(app.url(path)).send().await.unwrap();
        assert_json_refusal(res, 404, "not_found", path).await;
    }
    // Outside the APIs an unknown address is still a page.
    let res = http().get(app.url("/nothing-here")).send().await.unwrap();
    assert_page_refusal(res, 404, "/nothing-here").await;
}

#[tokio::test]
async fn a_path_parameter_that_is_not_utf8_is_a_json_400() {
    let app = spawn_app(Backend::Sqlite).await;
    for path in [
        "/api/v1/grants/%FF%FE",
        "/api/v1/grants/%C3%28/history",
        "/api/v1/operator/apps/%FF",
    ] {
        let res = http().get(app.url(path)).send().await.unwrap();
        assert_json_refusal(res, 400, "invalid_request", path).await;
    }
}

#[tokio::test]
async fn an_over_long_uri_is_a_readable_414() {
    let app = spawn_app(Backend::Sqlite).await;
    let long = "a".repeat(40 * 1024);
    for path in ["/token", "/api/v1/grants/someone", "/userinfo"] {
        let res = http()
            .get(app.url(&format!("{path}?x={long}")))
            .send()
            .await
            .unwrap();
        assert_json_refusal(res, 414, "uri_too_long", path).await;
    }
    let res = http()
        .get(app.url(&format!("/authorize?x={long}")))
        .send()
        .await
        .unwrap();
    assert_page_refusal(res, 414, "/authorize").await;
}

#[tokio::test]
async fn over_long_headers_are_a_readable_431() {
    let app = spawn_app(Backend::Sqlite).await;
    let big = "b".repeat(8 * 1024);
    for path in ["/token", "/api/v1/apps"] {
        let mut req = http().get(app.url(path));
        for i in 0..10 {
            req = req.header(format!("x-filler-{i}"), &big);
        }
        let res = req.send().await.unwrap();
        assert_json_refusal(res, 431, "headers_too_large", path).await;
    }
    let mut req = http().get(app.url("/login"));
    for i in 0..10 {
        req = req.header(format!("x-filler-{i}"), &big);
    }
    assert_page_refusal(req.send().await.unwrap(), 431, "/login").await;
}

#[tokio::test]
async fn answers_within_the_limits_are_untouched() {
    let app = spawn_app(Backend::Sqlite).await;
    // A refusal onyx-id writes itself keeps its own body (here an OAuth error).
    let client = app.create_app(&["openid"]).await;
    let res = http()
        .post(app.url("/token"))
        .basic_auth(&client.client_id, client.client_secret.as_deref())
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(res.headers()["pragma"], "no-cache");
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["error"], "unsupported_grant_type", "{body}");
    // A URI and headers just under the limits are served.
    let res = http()
        .get(app.url(&format!("/jwks.json?x={}", "a".repeat(30 * 1024))))
        .header("x-filler", "c".repeat(60 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn refusals_before_routing_still_carry_strict_transport_security_and_no_route_headers() {
    let app = try_spawn_app(Backend::Sqlite, Some("https://id.onyx.example"), &|_| {})
        .await
        .expect("starting with an https issuer");
    let long = "a".repeat(40 * 1024);
    let res = http()
        .get(app.url(&format!("/token?x={long}")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.headers()["strict-transport-security"],
        "max-age=31536000; includeSubDomains"
    );
    // Refused before the /token route was matched: its Allow list is not in the answer.
    assert!(res.headers().get("allow").is_none());
    assert_json_refusal(res, 414, "uri_too_long", "GET /token (40 KiB)").await;
    let res = http().get(app.url("/token")).send().await.unwrap();
    assert!(res.headers().contains_key("strict-transport-security"));
    assert_json_refusal(res, 405, "method_not_allowed", "GET /token").await;
}
