//! One guard against internal addresses (`onyx_id::net::is_public_address`): the webhook
//! pre-check and domain verification refuse the same addresses, including the IPv6 forms that
//! carry an internal IPv4 address (NAT64, 6to4, Teredo) and the multicast and reserved IPv4
//! ranges the pre-check used to let through.

use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::partner_api::{DOMAIN, good_draft, operator_key, partner, post};

on_each_backend!(
    the_webhook_pre_check_refuses_internal_addresses_in_every_form,
    domain_verification_refuses_a_domain_that_resolves_to_an_ipv6_form_of_an_internal_address,
);

/// A partner registered by an operator; returns the partner's API key.
async fn partner_key(app: &TestApp) -> String {
    let op = operator_key(app, "reviewer@onyx.example").await;
    partner(app, &op, "owner@partner.example", "Buddy Ltd")
        .await
        .1
}

/// A draft that passes every pre-check except its `webhooks`.
fn draft(webhooks: &[&str]) -> Value {
    let mut draft = good_draft();
    draft["webhooks"] = json!(webhooks);
    draft
}

/// Creates and submits an app; returns its client id and the findings of the pre-checks.
async fn submit(app: &TestApp, key: &str, body: Value) -> (String, Vec<Value>) {
    let (status, created) = post(app, "/api/v1/apps", key, body).await;
    assert_eq!(status, 201, "{created}");
    let client_id = created["client_id"].as_str().unwrap().to_string();
    let (status, review) = post(
        app,
        &format!("/api/v1/apps/{client_id}/submit"),
        key,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{review}");
    (client_id, review["findings"].as_array().unwrap().clone())
}

async fn the_webhook_pre_check_refuses_internal_addresses_in_every_form(backend: Backend) {
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

async fn domain_verification_refuses_a_domain_that_resolves_to_an_ipv6_form_of_an_internal_address(
    backend: Backend,
) {
    for (address, kind) in [
        ("[2002:7f00:1::1]:80", "loopback"),
        ("[2001:0:808:808::80ff:fffe]:80", "loopback"),
        ("[2001:0:c0a8:1::f7f7:fbfb]:80", "private"),
        ("[64:ff9b:1:7f00:0:100::]:80", "loopback"),
        ("[64:ff9b::a9fe:a9fe]:80", "link-local"),
        ("224.0.0.1:80", "multicast"),
        ("240.0.0.1:80", "reserved"),
    ] {
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
        let (status, v) = post(
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
