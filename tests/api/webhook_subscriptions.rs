//! Changing an endpoint's event types through the partner API (issue 13, "Event types per
//! endpoint"): `PATCH /api/v1/apps/{client_id}/webhooks/{endpoint_id}` with `{"events": [...]}`,
//! checked as at creation. Events of a removed type no longer arrive; an added one does.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::partner_api::{
    DOMAIN, app_in_preview_with, decide, get, good_draft, partner, patch, publish, put,
};
use crate::support::receiver::Receiver;
use onyx_id::webhooks::endpoints;

on_each_backend!(
    a_partner_changes_an_endpoints_event_types_and_only_the_new_ones_arrive,
    a_change_of_event_types_is_checked_as_at_creation,
);

/// A live partner app (domain verification reaches the loopback publisher) whose webhooks go to
/// loopback over http, with an endpoint on `receiver` subscribed to `events`. Returns the
/// operator's key, the partner's, the app's client_id and the endpoint's partner API path.
async fn partner_app_with_endpoint(
    backend: Backend,
    receiver: &Receiver,
    events: &[&str],
) -> (TestApp, String, String, String, String) {
    let published = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let port = publish(published.clone()).await;
    let app = spawn_app_with(backend, &move |s| {
        let v = &mut s.domain_verification;
        v.allow_private = true;
        v.insecure_http = true;
        v.resolve = vec![(
            DOMAIN.to_string(),
            std::net::SocketAddr::from(([127, 0, 0, 1], port)),
        )];
        s.webhooks.allow_private = true;
        s.webhooks.insecure_http = true;
        s.webhooks.poll_interval = Duration::from_millis(50);
    })
    .await;
    let (op, key, client_id, _) = app_in_preview_with(&app, &published, good_draft()).await;
    let row = onyx_id::store::apps::by_client_id(&app.state.db, &client_id)
        .await
        .unwrap()
        .unwrap();
    let events: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    let added = endpoints::add(
        &app.state.db,
        None,
        &app.state.webhook_secrets,
        &app.state.settings.webhooks,
        &row,
        &receiver.url("/onyx"),
        &events,
        app.clock_now(),
    )
    .await
    .expect("adding the endpoint");
    receiver.trust(&added.secret);
    let path = format!("/api/v1/apps/{client_id}/webhooks/{}", added.endpoint_id);
    (app, op, key, client_id, path)
}

/// How many deliveries of `event_type` the endpoint's log holds.
async fn logged(app: &TestApp, endpoint: &str, key: &str, event_type: &str) -> usize {
    let (status, log) = get(app, &format!("{endpoint}/deliveries"), key).await;
    assert_eq!(status, 200, "{log}");
    log.as_array()
        .unwrap()
        .iter()
        .filter(|d| d["event_type"] == event_type)
        .count()
}

async fn a_partner_changes_an_endpoints_event_types_and_only_the_new_ones_arrive(backend: Backend) {
    let receiver = Receiver::start().await;
    let (app, op, key, client_id, endpoint) =
        partner_app_with_endpoint(backend, &receiver, &["app.review.updated"]).await;

    // Subscribed to review decisions: one arrives.
    let (status, v) = decide(&app, &op, &client_id, "support", "approved").await;
    assert_eq!(status, 200, "{v}");
    let review = receiver.next_of("app.review.updated", 0).await;
    assert!(review.verified);
    assert_eq!(review.body["data"]["step"], "support");

    // The partner swaps review decisions for capability changes.
    let (status, e) = patch(
        &app,
        &endpoint,
        &key,
        json!({ "events": ["app.capability.updated"] }),
    )
    .await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(e["events"], json!(["app.capability.updated"]));
    assert_eq!(e["state"], "enabled");
    // The change is in the audit log with the key that made it, written with the change.
    let (_, audit) = get(
        &app,
        &format!("/api/v1/operator/audit?client_id={client_id}"),
        &op,
    )
    .await;
    let entry = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "webhook.events_set")
        .unwrap_or_else(|| panic!("no webhook.events_set entry in {audit}"));
    assert!(
        entry["actor"].as_str().unwrap().contains("/key:"),
        "{entry}"
    );
    assert_eq!(entry["detail"]["events"], json!(["app.capability.updated"]));
    let (_, listed) = get(&app, &format!("/api/v1/apps/{client_id}/webhooks"), &key).await;
    assert_eq!(
        listed[0]["events"],
        json!(["app.capability.updated"]),
        "{listed}"
    );

    // A review decision now writes no delivery to the endpoint (the event and its deliveries
    // commit with the decision, so the log is complete once the answer is back)…
    let (status, v) = decide(&app, &op, &client_id, "privacy_security", "approved").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(logged(&app, &endpoint, &key, "app.review.updated").await, 1);
    // …and a capability change arrives.
    let (status, v) = put(
        &app,
        &format!("/api/v1/operator/apps/{client_id}/capabilities/advanced_event_subscriptions"),
        &op,
        json!({ "state": "enabled", "note": "approved for the pilot" }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let cap = receiver.next_of("app.capability.updated", 0).await;
    assert!(cap.verified);
    assert_eq!(
        cap.body["data"]["capability"],
        "advanced_event_subscriptions"
    );
    assert_eq!(
        logged(&app, &endpoint, &key, "app.capability.updated").await,
        1
    );
    let reviews = receiver
        .got()
        .iter()
        .filter(|d| d.event_type() == "app.review.updated")
        .count();
    assert_eq!(reviews, 1, "the removed type no longer arrives");

    // With the capability enabled, the endpoint may take the gated per-scope types too.
    let (status, e) = patch(
        &app,
        &endpoint,
        &key,
        json!({ "events": ["permission.granted", "app.capability.updated"] }),
    )
    .await;
    assert_eq!(status, 200, "{e}");
    assert_eq!(
        e["events"],
        json!(["app.capability.updated", "permission.granted"])
    );
}

async fn a_change_of_event_types_is_checked_as_at_creation(backend: Backend) {
    let receiver = Receiver::start().await;
    let (app, op, key, client_id, endpoint) =
        partner_app_with_endpoint(backend, &receiver, &["consent.revoked"]).await;
    let unchanged = |e: &Value| e["events"] == json!(["consent.revoked"]);

    // An unknown type: 400, naming it and the known ones.
    let (status, v) = patch(
        &app,
        &endpoint,
        &key,
        json!({ "events": ["consent.revoked", "consent.nope"] }),
    )
    .await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"], "unknown_event_type");
    let said = v["error_description"].as_str().unwrap();
    assert!(
        said.contains("\"consent.nope\" is not an event type"),
        "{said}"
    );
    assert!(said.contains("app.access.changed"), "{said}");

    // A gated type without its capability: refused with the capability and its state, as when
    // the endpoint is added.
    let (status, v) = patch(
        &app,
        &endpoint,
        &key,
        json!({ "events": ["permission.revoked"] }),
    )
    .await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"], "event_type_gated");
    assert_eq!(v["capability"], "advanced_event_subscriptions");
    let said = v["error_description"].as_str().unwrap();
    assert!(
        said.contains("permission.revoked is an advanced event subscription"),
        "{said}"
    );
    // The same words as when an endpoint is added with it.
    let row = onyx_id::store::apps::by_client_id(&app.state.db, &client_id)
        .await
        .unwrap()
        .unwrap();
    let at_creation = endpoints::add(
        &app.state.db,
        None,
        &app.state.webhook_secrets,
        &app.state.settings.webhooks,
        &row,
        &receiver.url("/other"),
        &["permission.revoked".to_string()],
        app.clock_now(),
    )
    .await
    .expect_err("a gated type at creation");
    assert_eq!(at_creation.to_string(), said);

    // No type at all, a body that does not fit, an endpoint that is not the app's.
    let (status, v) = patch(&app, &endpoint, &key, json!({ "events": [] })).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"], "invalid_events");
    let (status, v) = patch(
        &app,
        &endpoint,
        &key,
        json!({ "events": "consent.revoked" }),
    )
    .await;
    assert_eq!(
        (status.as_u16(), v["error"].clone()),
        (400, json!("invalid_request")),
        "{v}"
    );
    let (status, v) = patch(
        &app,
        &endpoint,
        &key,
        json!({ "events": ["consent.revoked"], "url": "https://elsewhere.example/" }),
    )
    .await;
    assert_eq!(
        status, 400,
        "the URL is the reviewed one and does not change: {v}"
    );
    let (status, v) = patch(
        &app,
        &format!("/api/v1/apps/{client_id}/webhooks/ep_nope"),
        &key,
        json!({ "events": ["consent.revoked"] }),
    )
    .await;
    assert_eq!(
        (status.as_u16(), v["error"].clone()),
        (404, json!("not_found")),
        "{v}"
    );
    let (_, other) = partner(&app, &op, "other@partner.example", "Other Ltd").await;
    let (status, _) = patch(
        &app,
        &endpoint,
        &other,
        json!({ "events": ["consent.granted"] }),
    )
    .await;
    assert_eq!(status, 404, "another partner's app is not found");

    // None of it changed the endpoint.
    let (_, e) = get(&app, &endpoint, &key).await;
    assert!(unchanged(&e), "{e}");
}
