//! Webhook events from their real causes (issue 13): a consent flow, a removal on Connected
//! apps, a partner's DELETE, an expiry found by the purge through the injectable clock, an
//! operator's limit, a review step and a capability change, each delivered to a real receiver
//! that verifies its signature; the partner API's endpoints; the launch checklist; the CLI.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::cli::{one_json_object, onyx};
use crate::support::partner_api::{app_in_preview_with, get, partner, post, publish};
use crate::support::receiver::Receiver;
use onyx_id::partner::access::{AccessReason, AccessState, CapabilityState};
use onyx_id::store::apps::App;
use onyx_id::webhooks::endpoints;

on_each_backend!(
    consent_changes_by_the_user_the_partner_and_the_purge_reach_the_partner_in_order,
    onyx_limits_and_capability_changes_reach_the_partner_and_gated_types_need_their_capability,
    a_review_decision_reaches_the_partner_and_a_test_delivery_meets_the_launch_checklist,
    the_cli_adds_lists_tests_and_rotates_an_apps_endpoints,
);

/// Deliveries to loopback over http, polled often (tests only).
fn local(s: &mut onyx_id::config::Settings) {
    s.webhooks.allow_private = true;
    s.webhooks.insecure_http = true;
    s.webhooks.poll_interval = Duration::from_millis(50);
}

async fn app_row(app: &TestApp, client_id: &str) -> App {
    onyx_id::store::apps::by_client_id(&app.state.db, client_id)
        .await
        .unwrap()
        .expect("the app exists")
}

/// Adds the receiver as an endpoint of the app (every type that is not gated unless `events`
/// names some) and trusts its secret.
async fn subscribe(
    app: &TestApp,
    receiver: &Receiver,
    client_id: &str,
    path: &str,
    events: &[&str],
) -> String {
    let events: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    let sealer = &app.state.webhook_secrets;
    let added = endpoints::add(
        &app.state.db,
        None,
        sealer,
        &app.state.settings.webhooks,
        &app_row(app, client_id).await,
        &receiver.url(path),
        &events,
        app.clock_now(),
    )
    .await
    .expect("adding the endpoint");
    receiver.trust(&added.secret);
    added.endpoint_id
}

fn permission_states(data: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = data["permissions"]
        .as_array()
        .unwrap_or_else(|| panic!("no permissions in {data}"))
        .iter()
        .map(|p| {
            (
                p["scope"].as_str().unwrap().to_string(),
                p["state"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = list
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    out.sort();
    out
}

/// A browser signed in as `email` that approved `scope` for the app; returns it.
async fn approve_in_browser(
    app: &TestApp,
    client_id: &str,
    email: &str,
    scope: &str,
) -> reqwest::Client {
    let browser = browser();
    let (url, _) = authorize_url(app, client_id, scope, &[]);
    let res = browser.get(url).send().await.unwrap();
    let login = location(res.headers());
    let next = log_in(app, &browser, &login, email).await;
    assert!(next.starts_with("/consent"), "{next}");
    answer_consent(app, &browser, &next, "approve").await;
    browser
}

async fn consent_changes_by_the_user_the_partner_and_the_purge_reach_the_partner_in_order(
    backend: Backend,
) {
    let app = spawn_app_with(backend, &local).await;
    let receiver = Receiver::start().await;
    let mut s = spec(&["openid", "profile", "email"]);
    s.consent.consent_ttl = Some(600);
    s.grant_types = vec!["authorization_code".into(), "client_credentials".into()];
    let client = app.create_app_with(s).await;
    let sub = app.create_user("ada@example.com", "Ada").await;
    subscribe(&app, &receiver, &client.client_id, "/onyx", &[]).await;

    // The consent screen's approval: consent.granted, the first event of the grant.
    let browser = approve_in_browser(
        &app,
        &client.client_id,
        "ada@example.com",
        "openid profile email",
    )
    .await;
    let granted = receiver.next_of("consent.granted", 0).await;
    assert!(granted.verified, "signed with the endpoint's secret");
    let data = &granted.body["data"];
    assert_eq!(data["client_id"], client.client_id.as_str());
    assert_eq!(data["sub"], sub.as_str(), "the subject of the app's tokens");
    assert_eq!(data["actor"], "user");
    assert_eq!(data["sequence"], 1);
    assert!(!data["history_id"].as_str().unwrap_or_default().is_empty());
    assert_eq!(
        permission_states(data),
        pairs(&[
            ("email", "granted"),
            ("openid", "granted"),
            ("profile", "granted")
        ])
    );
    let expires = data["permissions"][0]["expires_at"]
        .as_str()
        .unwrap_or_default();
    assert!(expires.ends_with('Z'), "RFC 3339: {expires}");
    let grant_id = data["grant_id"].as_str().unwrap().to_string();
    assert!(granted.body["timestamp"].as_str().unwrap().ends_with('Z'));

    // Connected apps: the user removes one permission.
    let page = browser
        .get(app.url("/account/apps"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let csrf = hidden_field(&page, "csrf_token");
    let res = browser
        .post(app.url("/account/apps/revoke"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("client_id", client.client_id.as_str()),
            ("scope", "email"),
        ])
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_redirection() || res.status() == 200,
        "{}",
        res.status()
    );
    let revoked = receiver.next_of("consent.revoked", 0).await;
    let data = &revoked.body["data"];
    assert_eq!(
        (data["actor"].clone(), data["sequence"].clone()),
        (json!("user"), json!(2))
    );
    assert_eq!(data["grant_id"], grant_id.as_str());
    assert_eq!(
        permission_states(data),
        pairs(&[
            ("email", "revoked"),
            ("openid", "granted"),
            ("profile", "granted")
        ])
    );

    // The partner gives up the whole grant through the grants API.
    let (status, v) = grants_api(
        &app,
        &client,
        reqwest::Method::DELETE,
        &format!("/api/v1/grants/{sub}"),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let ended = receiver.next_of("consent.revoked", 1).await;
    let data = &ended.body["data"];
    assert_eq!(
        (data["actor"].clone(), data["sequence"].clone()),
        (json!("partner"), json!(3))
    );
    assert!(
        permission_states(data)
            .iter()
            .all(|(_, state)| state == "revoked"),
        "{data}"
    );

    // Reconnecting is a new decision: a new grant, consent.granted again, its own sequence.
    approve_in_browser(&app, &client.client_id, "ada@example.com", "openid profile").await;
    let again = receiver.next_of("consent.granted", 1).await;
    let data = &again.body["data"];
    assert_ne!(data["grant_id"], grant_id.as_str(), "a new grant");
    assert_eq!(data["sequence"], 1);

    // Its permissions expire; the purge finds them and the partner hears it.
    app.clock.advance(601);
    onyx_id::store::grants::record_expiries(&app.state.db, app.clock_now())
        .await
        .unwrap();
    let expired = receiver.next_of("consent.expired", 0).await;
    assert!(expired.verified);
    let data = &expired.body["data"];
    assert_eq!(data["actor"], "onyx");
    assert!(
        permission_states(data)
            .iter()
            .any(|(_, state)| state == "expired"),
        "{data}"
    );
    let ids: std::collections::HashSet<String> =
        receiver.got().iter().map(|d| d.id.clone()).collect();
    assert_eq!(
        ids.len(),
        receiver.got().len(),
        "every event has its own webhook-id"
    );
}

async fn onyx_limits_and_capability_changes_reach_the_partner_and_gated_types_need_their_capability(
    backend: Backend,
) {
    let app = spawn_app_with(backend, &local).await;
    let receiver = Receiver::start().await;
    let client = app.create_app(&["openid", "profile", "email"]).await;
    app.create_user("bo@example.com", "Bo").await;
    subscribe(&app, &receiver, &client.client_id, "/onyx", &[]).await;

    // An operator limits the app, withdrawing one scope.
    let change = onyx_id::partner::access_change::AccessChange {
        state: AccessState::Limited,
        reason: AccessReason::AbuseReview,
        note: Some("checking reports".into()),
        withdrawn: vec!["email".into()],
        cause: None,
    };
    let a = app_row(&app, &client.client_id).await;
    onyx_id::partner::access_change::set_access(&app.state.db, app.clock_now(), "op", &a, change)
        .await
        .expect("limiting the app");
    let limited = receiver.next_of("app.access.changed", 0).await;
    assert!(limited.verified);
    let data = &limited.body["data"];
    assert_eq!(data["state"], "limited");
    assert_eq!(data["reasons"], json!(["abuse_review"]));
    assert_eq!(data["withdrawn_scopes"], json!(["email"]));

    // A gated type needs advanced event subscriptions.
    let sealer = &app.state.webhook_secrets;
    let refused = endpoints::add(
        &app.state.db,
        None,
        sealer,
        &app.state.settings.webhooks,
        &app_row(&app, &client.client_id).await,
        &receiver.url("/refused"),
        &["permission.granted".to_string()],
        app.clock_now(),
    )
    .await
    .expect_err("a gated type without its capability");
    assert_eq!(refused.code(), "event_type_gated");
    assert!(
        refused.to_string().contains("advanced_event_subscriptions"),
        "{refused}"
    );

    // Onyx enables the capability: the partner hears it, and may subscribe.
    let change = onyx_id::partner::capabilities::CapabilityChange {
        name: "advanced_event_subscriptions".into(),
        state: CapabilityState::Enabled,
        reason: None,
        note: None,
    };
    let a = app_row(&app, &client.client_id).await;
    onyx_id::partner::capabilities::set_capability(
        &app.state.db,
        app.clock_now(),
        "op",
        &a,
        change,
    )
    .await
    .expect("enabling the capability");
    let cap = receiver.next_of("app.capability.updated", 0).await;
    assert_eq!(
        (
            cap.body["data"]["capability"].clone(),
            cap.body["data"]["state"].clone()
        ),
        (json!("advanced_event_subscriptions"), json!("enabled"))
    );
    subscribe(
        &app,
        &receiver,
        &client.client_id,
        "/detail",
        &["permission.granted"],
    )
    .await;

    // Now a consent decision sends the per-scope detail too.
    approve_in_browser(&app, &client.client_id, "bo@example.com", "openid profile").await;
    let detail = receiver.next_of("permission.granted", 0).await;
    assert!(detail.verified);
    let scope = detail.body["data"]["permission"]["scope"]
        .as_str()
        .unwrap_or_default();
    assert!(["openid", "profile"].contains(&scope), "{}", detail.body);
    receiver.next_of("consent.granted", 0).await;

    // Restoring the app is a change too.
    let change = onyx_id::partner::access_change::AccessChange {
        state: AccessState::Active,
        reason: AccessReason::Restored,
        note: None,
        withdrawn: vec![],
        cause: None,
    };
    let a = app_row(&app, &client.client_id).await;
    onyx_id::partner::access_change::set_access(&app.state.db, app.clock_now(), "op", &a, change)
        .await
        .expect("restoring the app");
    let restored = receiver.next_of("app.access.changed", 1).await;
    assert_eq!(restored.body["data"]["state"], "active");
    assert_eq!(restored.body["data"]["withdrawn_scopes"], json!([]));
}

async fn a_review_decision_reaches_the_partner_and_a_test_delivery_meets_the_launch_checklist(
    backend: Backend,
) {
    let published = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let port = publish(published.clone()).await;
    // The partner program's server (domain verification reaches the loopback publisher), with
    // deliveries to loopback.
    let app = spawn_app_with(backend, &|s| {
        local(s);
        let v = &mut s.domain_verification;
        v.allow_private = true;
        v.insecure_http = true;
        v.resolve = vec![(
            crate::support::partner_api::DOMAIN.to_string(),
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )];
    })
    .await;
    let receiver = Receiver::start().await;
    let draft = crate::support::partner_api::good_draft();
    let (op, key, client_id, _) = app_in_preview_with(&app, &published, draft).await;

    // No endpoint at all: the checklist item does not apply (and is not "met").
    let launch = format!("/api/v1/apps/{client_id}/launch-checklist");
    let (status, v) = get(&app, &launch, &key).await;
    assert_eq!(status, 200, "{v}");
    let item = webhook_item(&v);
    assert_eq!(
        (item["status"].clone(), item["met"].clone()),
        (json!("not_applicable"), json!(false))
    );

    // The partner API refuses an endpoint the webhooks step has not approved.
    let hooks = format!("/api/v1/apps/{client_id}/webhooks");
    let (status, v) = post(
        &app,
        &hooks,
        &key,
        json!({ "url": "https://hooks.app.example/onyx" }),
    )
    .await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"], "endpoint_not_approved");
    let (status, v) = get(&app, &hooks, &key).await;
    assert_eq!((status.as_u16(), v), (200, json!([])));

    // An endpoint (the development shortcut's service call): a review decision reaches it.
    let endpoint_id = subscribe(&app, &receiver, &client_id, "/onyx", &[]).await;
    let (status, v) =
        crate::support::partner_api::decide(&app, &op, &client_id, "support", "approved").await;
    assert_eq!(status, 200, "{v}");
    let review = receiver.next_of("app.review.updated", 0).await;
    assert!(review.verified);
    assert_eq!(
        (
            review.body["data"]["step"].clone(),
            review.body["data"]["state"].clone()
        ),
        (json!("support"), json!("approved"))
    );
    assert_eq!(review.body["data"]["note"], "checked");

    // Untested, the checklist item holds up the launch.
    let (_, v) = get(&app, &launch, &key).await;
    assert_eq!(webhook_item(&v)["status"], "not_met", "{v}");

    // A test event through the partner API; once delivered, the item is met.
    let (status, sent) = post(
        &app,
        &format!("{hooks}/{endpoint_id}/test"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(status, 202, "{sent}");
    let test = receiver.next_of("webhook.test", 0).await;
    assert!(test.verified);
    assert_eq!(test.id, sent["event_id"].as_str().unwrap());
    let met = crate::support::wait::until(Duration::from_millis(50), || async {
        let (_, v) = get(&app, &launch, &key).await;
        (webhook_item(&v)["status"] == "met").then_some(())
    })
    .await;
    assert!(
        met.is_some(),
        "a successful signed test delivery meets the item"
    );

    // The deliveries log shows it, attempt by attempt.
    let (status, log) = get(&app, &format!("{hooks}/{endpoint_id}/deliveries"), &key).await;
    assert_eq!(status, 200, "{log}");
    let entries = log.as_array().unwrap();
    let test_delivery = entries
        .iter()
        .find(|d| d["event_id"] == sent["event_id"])
        .unwrap_or_else(|| panic!("the test delivery is listed: {log}"));
    assert_eq!(test_delivery["state"], "delivered");
    assert_eq!(test_delivery["attempts"][0]["status"], 204);

    // The webhooks step approves a list without the receiver's URL: that endpoint stops, and
    // the approved URL may now be added through the partner API.
    let approved_url = "https://hooks.app.example/onyx";
    let (status, v) = crate::support::partner_api::patch(
        &app,
        &format!("/api/v1/apps/{client_id}"),
        &key,
        json!({ "webhooks": [approved_url] }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, v) =
        crate::support::partner_api::decide(&app, &op, &client_id, "webhooks", "approved").await;
    assert_eq!(status, 200, "{v}");
    let (_, endpoint) = get(&app, &format!("{hooks}/{endpoint_id}"), &key).await;
    assert_eq!(
        (
            endpoint["state"].clone(),
            endpoint["disabled_reason"].clone()
        ),
        (json!("disabled"), json!("not_approved")),
        "{endpoint}"
    );
    let (status, v) = post(&app, &hooks, &key, json!({ "url": approved_url })).await;
    assert_eq!(status, 201, "{v}");
    assert!(v["secret"].as_str().unwrap().starts_with("whsec_"));

    // Another partner sees none of it.
    let (_, other) = partner(&app, &op, "other@partner.example", "Other Ltd").await;
    let (status, _) = get(&app, &hooks, &other).await;
    assert_eq!(status, 404);
}

fn webhook_item(launch: &Value) -> Value {
    launch["requirements"]
        .as_array()
        .and_then(|r| {
            r.iter()
                .find(|i| i["requirement"] == "webhook_delivery_tested")
        })
        .cloned()
        .unwrap_or_else(|| panic!("no webhook item in {launch}"))
}

async fn the_cli_adds_lists_tests_and_rotates_an_apps_endpoints(backend: Backend) {
    let app = spawn_app_with(backend, &local).await;
    let client = app.create_app(&["openid"]).await;
    let id = client.client_id.as_str();
    let url = "https://hooks.example/onyx";

    let (code, out, err) = onyx(
        &app,
        &[
            "apps",
            "webhooks",
            "add",
            "--app",
            id,
            "--url",
            url,
            "--event",
            "consent.revoked",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let added = one_json_object(&out);
    assert_eq!(added["url"], url);
    assert_eq!(added["events"], json!(["consent.revoked"]));
    let secret = added["secret"].as_str().unwrap();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let endpoint = added["endpoint_id"].as_str().unwrap();

    let (code, out, _) = onyx(&app, &["apps", "webhooks", "list", "--app", id], None).await;
    assert_eq!(code, 0);
    let listed = one_json_object(&out);
    assert_eq!(listed["endpoints"][0]["endpoint_id"], endpoint);
    assert!(!out.contains(secret), "a listing never shows the secret");

    let (code, out, _) = onyx(
        &app,
        &[
            "apps",
            "webhooks",
            "rotate-secret",
            "--app",
            id,
            "--endpoint",
            endpoint,
        ],
        None,
    )
    .await;
    assert_eq!(code, 0);
    let rotated = one_json_object(&out);
    assert_ne!(rotated["secret"], secret);
    assert!(rotated["previous_secret_valid_until"].as_i64().unwrap() > app.clock_now());

    let (code, out, _) = onyx(
        &app,
        &[
            "apps",
            "webhooks",
            "test",
            "--app",
            id,
            "--endpoint",
            endpoint,
        ],
        None,
    )
    .await;
    assert_eq!(code, 0);
    let sent = one_json_object(&out);
    assert!(
        sent["event_id"].as_str().unwrap().starts_with("msg_"),
        "{sent}"
    );

    let (code, out, _) = onyx(
        &app,
        &[
            "apps",
            "webhooks",
            "deliveries",
            "--app",
            id,
            "--endpoint",
            endpoint,
        ],
        None,
    )
    .await;
    assert_eq!(code, 0);
    let log = one_json_object(&out);
    assert_eq!(log["deliveries"][0]["event_id"], sent["event_id"]);

    // Bad input: a clear one-line refusal.
    let (code, out, err) = onyx(
        &app,
        &[
            "apps",
            "webhooks",
            "add",
            "--app",
            id,
            "--url",
            "ftp://x.example/",
        ],
        None,
    )
    .await;
    assert_ne!(code, 0);
    assert_eq!(one_json_object(&out)["error"], "invalid_input");
    assert!(err.contains("invalid_url"), "{err}");
    let (code, _, err) = onyx(&app, &["apps", "webhooks", "list", "--app", "nope"], None).await;
    assert_ne!(code, 0);
    assert!(!err.is_empty());

    // The audit log has the changes, never the secret.
    let (_, out, _) = onyx(&app, &["audit"], None).await;
    assert!(
        out.contains("webhook.endpoint_added") && out.contains("webhook.secret_rotated"),
        "{out}"
    );
    assert!(!out.contains(secret), "the audit log holds no secret");
}
