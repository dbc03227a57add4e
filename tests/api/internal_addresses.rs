//! One guard against internal addresses (`onyx_id::net::is_public_address`): the webhook
//! pre-check and domain verification refuse the same addresses, including the IPv6 forms that
//! carry an internal IPv4 address (NAT64, 6to4, Teredo) and the multicast and reserved IPv4
//! ranges the pre-check used to let through.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const DOMAIN: &str = "app.example";

async fn call(app: &TestApp, path: &str, key: &str, body: Value) -> (StatusCode, Value) {
    let res = http()
        .post(app.url(path))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}"));
    (status, v)
}

/// A partner registered by an operator; returns the partner's API key.
async fn partner_key(app: &TestApp) -> String {
    app.create_user("reviewer@onyx.example", "Onyx Reviewer")
        .await;
    let op = onyx_id::partner::partners::create_operator(
        &app.state.db,
        app.clock_now(),
        "test",
        "reviewer@onyx.example",
    )
    .await
    .unwrap()
    .api_key;
    app.create_user("owner@partner.example", "Partner Owner")
        .await;
    let (status, v) = call(
        app,
        "/api/v1/operator/partners",
        &op,
        json!({
            "name": "Buddy Ltd",
            "website": "https://partner.example",
            "regions": ["GB"],
            "support_contact": "help@partner.example",
            "owner_email": "owner@partner.example",
        }),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    v["api_key"].as_str().unwrap().to_string()
}

/// A draft that passes every pre-check except its `webhooks`.
fn draft(webhooks: &[&str]) -> Value {
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
        "webhooks": webhooks,
    })
}

/// Creates and submits an app; returns its client id and the findings of the pre-checks.
async fn submit(app: &TestApp, key: &str, body: Value) -> (String, Vec<Value>) {
    let (status, created) = call(app, "/api/v1/apps", key, body).await;
    assert_eq!(status, 201, "{created}");
    let client_id = created["client_id"].as_str().unwrap().to_string();
    let (status, review) = call(
        app,
        &format!("/api/v1/apps/{client_id}/submit"),
        key,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{review}");
    (client_id, review["findings"].as_array().unwrap().clone())
}

#[tokio::test]
async fn the_webhook_pre_check_refuses_internal_addresses_in_every_form() {
    let internal = [
        "https://224.0.0.1/onyx",
        "https://240.0.0.1/onyx",
        "https://255.255.255.255/onyx",
        "https://0.0.0.0/onyx",
        "https://198.18.0.1/onyx",
        "https://[64:ff9b::7f00:1]/onyx",
        "https://[64:ff9b::a9fe:a9fe]/latest",
        "https://[64:ff9b:1:7f00:0:100::]/onyx",
        "https://[2002:7f00:1::1]/onyx",
        "https://[2002:a9fe:a9fe::]/latest",
        "https://[2001:0:808:808::80ff:fffe]/onyx",
        "https://[::127.0.0.1]/onyx",
        "https://[ff02::1]/onyx",
    ];
    for backend in backends() {
        let app = spawn_app(backend).await;
        let key = partner_key(&app).await;
        let mut webhooks = vec!["https://hooks.partner.example/onyx"];
        webhooks.extend(internal);
        let (_, findings) = submit(&app, &key, draft(&webhooks)).await;
        for (i, webhook) in internal.iter().enumerate() {
            let field = format!("webhooks[{}]", i + 1);
            let finding = findings
                .iter()
                .find(|f| f["field"] == field.as_str())
                .unwrap_or_else(|| panic!("{webhook} was accepted: {findings:?}"));
            assert_eq!(finding["code"], "webhook_invalid", "{finding}");
            assert!(
                finding["message"].as_str().unwrap().contains("public host"),
                "{finding}"
            );
        }
        assert!(
            !findings.iter().any(|f| f["field"] == "webhooks[0]"),
            "a public webhook passes: {findings:?}"
        );
        assert_eq!(findings.len(), internal.len(), "{findings:?}");
    }
}

#[tokio::test]
async fn domain_verification_refuses_a_domain_that_resolves_to_an_ipv6_form_of_an_internal_address()
{
    for (address, kind) in [
        ("[2002:7f00:1::1]:80", "loopback"),
        ("[2001:0:808:808::80ff:fffe]:80", "loopback"),
        ("[2001:0:c0a8:1::f7f7:fbfb]:80", "private"),
        ("[64:ff9b:1:7f00:0:100::]:80", "loopback"),
        ("[64:ff9b::a9fe:a9fe]:80", "link-local"),
        ("224.0.0.1:80", "multicast"),
        ("240.0.0.1:80", "reserved"),
    ] {
        for backend in backends() {
            let addr: std::net::SocketAddr = address.parse().unwrap();
            let app = spawn_app_with(backend, &move |s| {
                let v = &mut s.domain_verification;
                v.insecure_http = true;
                v.resolve = vec![(DOMAIN.to_string(), addr)];
            })
            .await;
            let key = partner_key(&app).await;
            let (client_id, _) = submit(&app, &key, draft(&[])).await;
            let dv = app.url(&format!("/api/v1/apps/{client_id}/domain-verification"));
            let res = http().get(&dv).bearer_auth(&key).send().await.unwrap();
            assert_eq!(res.status(), 200, "the challenge");
            let (status, v) = call(
                &app,
                &format!("/api/v1/apps/{client_id}/domain-verification"),
                &key,
                json!({}),
            )
            .await;
            assert_eq!(status, 200, "{v}");
            assert_eq!(v["verified"], false, "{address}: {v}");
            assert_eq!(v["error"], "address_not_public", "{address}: {v}");
            let said = v.to_string();
            assert!(said.contains(kind), "{address}: {said}");
        }
    }
}
