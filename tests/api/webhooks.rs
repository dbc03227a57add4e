//! Webhooks (issue 13): events enqueued in a transaction are delivered to a real receiver that
//! verifies every signature with the Standard Webhooks reference library; retries keep the
//! same `webhook-id`; 410 disables; 429 honours `Retry-After`; secrets rotate with an overlap;
//! the delivery guard refuses internal addresses and never follows a redirect; gated types
//! need their capability; two instances on one PostgreSQL deliver each event once.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use onyx_id::admin::AppSpec;
use onyx_id::config::Settings;
use onyx_id::store::access_causes;
use onyx_id::store::apps::App;
use onyx_id::webhooks::endpoints::{self, NewEndpoint};
use onyx_id::webhooks::events::{AccessChangedData, Event, EventKind};
use onyx_id::webhooks::secrets::SecretBox;
use onyx_id::webhooks::{self, DeliveryState, DisabledReason, EndpointState, WebhookError};

use crate::helpers::{Backend, TestApp, spawn_app_with};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    id: String,
    path: String,
    /// How many signatures the header carried.
    signatures: usize,
    /// Which of the known secrets (by index) verified it.
    verified_by: Vec<usize>,
    body: serde_json::Value,
}

#[derive(Default)]
struct ReceiverState {
    secrets: Vec<String>,
    got: Vec<Received>,
    /// Answers to give, in order; then 200.
    script: VecDeque<(u16, Vec<(&'static str, String)>)>,
}

/// A real axum server on 127.0.0.1 that verifies every delivery's signature.
#[derive(Clone)]
struct Receiver {
    base: String,
    port: u16,
    state: Arc<Mutex<ReceiverState>>,
}

impl Receiver {
    async fn start() -> Self {
        let state: Arc<Mutex<ReceiverState>> = Arc::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let shared = state.clone();
        let handler = move |uri: axum::http::Uri, headers: HeaderMap, body: axum::body::Bytes| {
            let state = shared.clone();
            async move { receive(&state, uri.path(), &headers, &body) }
        };
        let router = axum::Router::new().fallback(handler);
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            base: format!("http://127.0.0.1:{port}"),
            port,
            state,
        }
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn trust(&self, secret: &str) {
        self.state.lock().unwrap().secrets.push(secret.to_string());
    }

    fn answer(&self, status: u16, headers: Vec<(&'static str, String)>) {
        self.state
            .lock()
            .unwrap()
            .script
            .push_back((status, headers));
    }

    fn got(&self) -> Vec<Received> {
        self.state.lock().unwrap().got.clone()
    }

    async fn wait_for(&self, n: usize) -> Vec<Received> {
        let found = crate::support::wait::until(Duration::from_millis(20), || async {
            let got = self.got();
            (got.len() >= n).then_some(got)
        })
        .await;
        if let Some(got) = found {
            return got;
        }
        panic!("the receiver got {} requests, not {n}", self.got().len());
    }
}

fn receive(
    state: &Mutex<ReceiverState>,
    path: &str,
    headers: &HeaderMap,
    body: &[u8],
) -> axum::response::Response {
    let mut s = state.lock().unwrap();
    let verified_by = s
        .secrets
        .iter()
        .enumerate()
        .filter(|(_, secret)| {
            standardwebhooks::Webhook::new(secret)
                .unwrap()
                .verify(body, headers)
                .is_ok()
        })
        .map(|(i, _)| i)
        .collect();
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_string()
    };
    assert_eq!(header("content-type"), "application/json");
    s.got.push(Received {
        id: header("webhook-id"),
        path: path.to_string(),
        signatures: header("webhook-signature").split(' ').count(),
        verified_by,
        body: serde_json::from_slice(body).unwrap_or_default(),
    });
    if path == "/redirect" {
        return (StatusCode::FOUND, [("location", "/hook")]).into_response();
    }
    let (status, extra) = s.script.pop_front().unwrap_or((200, vec![]));
    let mut resp = (StatusCode::from_u16(status).unwrap(), "answer").into_response();
    for (name, value) in extra {
        resp.headers_mut().insert(name, value.parse().unwrap());
    }
    resp
}

/// Deliveries to loopback over http, fast polling and a short schedule (tests only).
fn local(s: &mut Settings) {
    s.webhooks.allow_private = true;
    s.webhooks.insecure_http = true;
    s.webhooks.poll_interval = Duration::from_millis(50);
    s.webhooks.retry_schedule = vec![Duration::from_secs(1); 3];
}

/// http allowed, but not private addresses: the production guard.
fn guarded(s: &mut Settings) {
    local(s);
    s.webhooks.allow_private = false;
}

/// A live app whose review scope `events:subscribe` and gated capability are enabled.
async fn live_app(app: &TestApp, capabilities: &[&str]) -> App {
    let mut spec = AppSpec::new(
        "Hooked",
        &["https://app.example/callback"],
        &["openid", "events:subscribe"],
    );
    spec.consent.capabilities = capabilities.iter().map(|c| c.to_string()).collect();
    let client = app.create_app_with(spec).await;
    onyx_id::store::apps::by_client_id(&app.state.db, &client.client_id)
        .await
        .unwrap()
        .unwrap()
}

fn sealer(app: &TestApp) -> &SecretBox {
    &app.state.webhook_secrets
}

/// A server delivering to loopback, a live app, and one endpoint of it (every non-gated type)
/// at a receiver that trusts the endpoint's secret.
async fn receiving(backend: Backend) -> (TestApp, Receiver, App, NewEndpoint) {
    let app = spawn_app_with(backend, &local).await;
    let rx = Receiver::start().await;
    let a = live_app(&app, &[]).await;
    let ep = add(&app, &a, &rx.url("/hook"), &[]).await;
    rx.trust(&ep.secret);
    (app, rx, a, ep)
}

async fn add(app: &TestApp, a: &App, url: &str, events: &[&str]) -> NewEndpoint {
    let events: Vec<String> = events.iter().map(|e| e.to_string()).collect();
    endpoints::add(
        &app.state.db,
        None,
        sealer(app),
        &app.state.settings.webhooks,
        a,
        url,
        &events,
        app.clock_now(),
    )
    .await
    .expect("adding an endpoint")
}

fn access_event(a: &App, now: i64) -> Event {
    Event::new(
        EventKind::AppAccessChanged(AccessChangedData {
            client_id: a.client_id.clone(),
            state: onyx_id::partner::access::AccessState::Limited,
            reasons: vec![onyx_id::partner::access::AccessReason::AbuseReview],
            withdrawn_scopes: vec!["events:subscribe".into()],
        }),
        now,
    )
}

/// Enqueues `n` events in one transaction, as a cause would, and wakes the worker.
async fn enqueue(app: &TestApp, a: &App, n: usize) -> Vec<String> {
    let now = app.clock_now();
    let mut tx = app.state.db.begin().await.unwrap();
    let mut ids = Vec::new();
    for _ in 0..n {
        let done = webhooks::enqueue(&mut tx, &a.client_id, &access_event(a, now), now)
            .await
            .unwrap();
        ids.extend(done.event_id);
    }
    tx.commit().await.unwrap();
    webhooks::wake();
    ids
}

async fn deliveries(app: &TestApp, a: &App) -> Vec<webhooks::DeliveryView> {
    endpoints::deliveries(&app.state.db, &a.client_id, None)
        .await
        .unwrap()
}

/// Waits until the app's newest delivery satisfies `done`.
async fn wait_delivery(
    app: &TestApp,
    a: &App,
    done: impl Fn(&webhooks::DeliveryView) -> bool,
) -> webhooks::DeliveryView {
    let found = crate::support::wait::until(Duration::from_millis(20), || async {
        deliveries(app, a).await.into_iter().next().filter(&done)
    })
    .await;
    if let Some(d) = found {
        return d;
    }
    panic!(
        "the delivery never got there: {:#?}",
        deliveries(app, a).await
    );
}

async fn endpoint_state(app: &TestApp, a: &App, id: &str) -> webhooks::EndpointView {
    endpoints::get(&app.state.db, &a.client_id, id, app.clock_now())
        .await
        .unwrap()
}

async fn send_test(
    app: &TestApp,
    a: &App,
    endpoint_id: &str,
) -> Result<webhooks::TestSent, WebhookError> {
    endpoints::send_test(
        &app.state.db,
        None,
        &a.client_id,
        endpoint_id,
        app.clock_now(),
    )
    .await
}

async fn an_enqueued_event_is_delivered_signed_once_with_its_id(backend: Backend) {
    let (app, rx, a, ep) = receiving(backend).await;
    assert!(ep.secret.starts_with("whsec_"));
    let ids = enqueue(&app, &a, 1).await;
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].id, ids[0]);
    assert_eq!(
        got[0].verified_by,
        vec![0],
        "signed with the endpoint's secret"
    );
    assert_eq!(got[0].body["type"], "app.access.changed");
    assert_eq!(got[0].body["data"]["client_id"], a.client_id.as_str());
    assert!(got[0].body["timestamp"].as_str().unwrap().ends_with('Z'));
    let d = wait_delivery(&app, &a, |d| d.state == DeliveryState::Delivered).await;
    assert_eq!(d.event_id, ids[0]);
    assert_eq!(d.attempts.len(), 1);
    assert_eq!(d.attempts[0].status, Some(200));
    // An event type the endpoint does not receive is not written at all.
    let mut tx = app.state.db.begin().await.unwrap();
    let test_only = webhooks::enqueue(
        &mut tx,
        &a.client_id,
        &Event::new(
            EventKind::AppCapabilityUpdated(webhooks::events::CapabilityUpdatedData {
                client_id: a.client_id.clone(),
                capability: "expanded_messaging".into(),
                state: onyx_id::partner::access::CapabilityState::Requested,
            }),
            app.clock_now(),
        ),
        app.clock_now(),
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(test_only.deliveries, 1, "every non-gated type by default");
    rx.wait_for(2).await;
    // The secret is not in the database in plain text.
    let stored: String = sqlx::query_scalar("SELECT secret FROM webhook_endpoints")
        .fetch_one(app.sql().await)
        .await
        .unwrap();
    assert!(!stored.contains(&ep.secret[6..]));
}

async fn a_failing_receiver_gets_the_same_id_on_every_retry_and_the_log_shows_each_attempt(
    backend: Backend,
) {
    let (app, rx, a, ep) = receiving(backend).await;
    rx.answer(500, vec![]);
    rx.answer(302, vec![("location", "/elsewhere".into())]);
    let ids = enqueue(&app, &a, 1).await;
    rx.wait_for(1).await;
    wait_delivery(&app, &a, |d| d.attempts.len() == 1).await;
    app.clock.advance(1);
    rx.wait_for(2).await;
    wait_delivery(&app, &a, |d| d.attempts.len() == 2).await;
    app.clock.advance(1);
    let got = rx.wait_for(3).await;
    assert!(got.iter().all(|r| r.id == ids[0]), "{got:?}");
    assert!(got.iter().all(|r| r.verified_by == vec![0]));
    assert!(
        got.iter().all(|r| r.path == "/hook"),
        "a 302 is not followed"
    );
    let d = wait_delivery(&app, &a, |d| d.state == DeliveryState::Delivered).await;
    let statuses: Vec<_> = d.attempts.iter().map(|t| t.status).collect();
    assert_eq!(statuses, vec![Some(500), Some(302), Some(200)]);
    assert_eq!(
        d.attempts.iter().map(|t| t.attempt).collect::<Vec<_>>(),
        vec![1, 2, 3]
    );
    assert!(d.attempts[1].error.as_deref().unwrap().contains("redirect"));
    assert!(d.attempts.iter().all(|t| t.latency_ms >= 0));
    // The endpoint is healthy again.
    assert_eq!(
        endpoint_state(&app, &a, &ep.endpoint_id)
            .await
            .failing_since,
        None
    );
}

async fn after_the_last_retry_the_delivery_fails_and_can_be_retried(backend: Backend) {
    let app = spawn_app_with(backend, &|s| {
        local(s);
        s.webhooks.retry_schedule = vec![Duration::from_secs(1)];
    })
    .await;
    let rx = Receiver::start().await;
    let a = live_app(&app, &[]).await;
    let ep = add(&app, &a, &rx.url("/hook"), &[]).await;
    rx.trust(&ep.secret);
    rx.answer(500, vec![]);
    rx.answer(500, vec![]);
    enqueue(&app, &a, 1).await;
    wait_delivery(&app, &a, |d| d.attempts.len() == 1).await;
    app.clock.advance(1);
    let d = wait_delivery(&app, &a, |d| d.state == DeliveryState::Failed).await;
    assert_eq!(d.attempts.len(), 2);
    endpoints::retry(
        &app.state.db,
        None,
        &a.client_id,
        &d.delivery_id,
        app.clock_now(),
    )
    .await
    .unwrap();
    let d = wait_delivery(&app, &a, |d| d.state == DeliveryState::Delivered).await;
    assert_eq!(d.attempts.len(), 3);
    let got = rx.wait_for(3).await;
    assert!(got.iter().all(|r| r.id == d.event_id));
    // Only a failed delivery can be retried.
    let err = endpoints::retry(
        &app.state.db,
        None,
        &a.client_id,
        &d.delivery_id,
        app.clock_now(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "not_retryable");
}

async fn a_410_disables_the_endpoint(backend: Backend) {
    let app = spawn_app_with(backend, &local).await;
    let rx = Receiver::start().await;
    let a = live_app(&app, &[]).await;
    let ep = add(&app, &a, &rx.url("/hook"), &[]).await;
    rx.answer(410, vec![]);
    enqueue(&app, &a, 1).await;
    let d = wait_delivery(&app, &a, |d| d.state == DeliveryState::Failed).await;
    assert_eq!(d.attempts[0].outcome, "gone");
    let e = endpoint_state(&app, &a, &ep.endpoint_id).await;
    assert_eq!(e.state, EndpointState::Disabled);
    assert_eq!(e.disabled_reason, Some(DisabledReason::Gone));
    assert!(e.disabled_reason_text.unwrap().contains("410"));
    assert!(
        enqueue(&app, &a, 1).await.is_empty(),
        "a disabled endpoint gets nothing"
    );
    let err = send_test(&app, &a, &ep.endpoint_id).await.unwrap_err();
    assert_eq!(err.code(), "endpoint_disabled");
    let e = endpoints::enable(
        &app.state.db,
        None,
        &a.client_id,
        &ep.endpoint_id,
        app.clock_now(),
    )
    .await
    .unwrap();
    assert_eq!(e.state, EndpointState::Enabled);
    assert_eq!(enqueue(&app, &a, 1).await.len(), 1);
    rx.wait_for(2).await;
}

async fn a_429_is_retried_after_its_retry_after(backend: Backend) {
    let (app, rx, a, _) = receiving(backend).await;
    rx.answer(429, vec![("retry-after", "120".into())]);
    enqueue(&app, &a, 1).await;
    let d = wait_delivery(&app, &a, |d| {
        d.attempts.len() == 1 && d.next_attempt_at != Some(d.created_at)
    })
    .await;
    assert_eq!(d.attempts[0].status, Some(429));
    assert_eq!(d.next_attempt_at, Some(d.attempts[0].at + 120));
    // The schedule's 1 s is not what counts.
    app.clock.advance(5);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.got().len(), 1);
    app.clock.advance(115);
    rx.wait_for(2).await;
    wait_delivery(&app, &a, |d| d.state == DeliveryState::Delivered).await;
}

async fn a_rotated_secret_signs_beside_the_new_one_until_the_overlap_ends(backend: Backend) {
    let (app, rx, a, ep) = receiving(backend).await;
    let rotated = endpoints::rotate_secret(
        &app.state.db,
        None,
        sealer(&app),
        &a.client_id,
        &ep.endpoint_id,
        app.clock_now(),
    )
    .await
    .unwrap();
    assert_ne!(rotated.secret, ep.secret);
    assert_eq!(
        rotated.previous_secret_valid_until,
        app.clock_now() + webhooks::ROTATION_OVERLAP
    );
    rx.trust(&rotated.secret);
    let sent = send_test(&app, &a, &ep.endpoint_id).await.unwrap();
    let got = rx.wait_for(1).await;
    assert_eq!(got[0].id, sent.event_id);
    assert_eq!(got[0].body["type"], "webhook.test");
    assert_eq!(got[0].signatures, 2);
    assert_eq!(
        got[0].verified_by,
        vec![0, 1],
        "both the old and the new secret"
    );
    app.clock.advance(webhooks::ROTATION_OVERLAP + 1);
    send_test(&app, &a, &ep.endpoint_id).await.unwrap();
    let got = rx.wait_for(2).await;
    assert_eq!(got[1].signatures, 1);
    assert_eq!(got[1].verified_by, vec![1], "only the new secret");
    wait_delivery(&app, &a, |d| d.state == DeliveryState::Delivered).await;
    let view = endpoint_state(&app, &a, &ep.endpoint_id).await;
    assert_eq!(view.previous_secret_valid_until, None);
    assert!(view.tested_at.is_some(), "a successful test is recorded");
}

async fn a_private_address_is_refused_and_the_endpoint_disables_itself(backend: Backend) {
    let app = spawn_app_with(backend, &guarded).await;
    let a = live_app(&app, &[]).await;
    let ep = add(&app, &a, "http://10.255.255.1:9/hook", &[]).await;
    enqueue(&app, &a, 1).await;
    let d = wait_delivery(&app, &a, |d| d.state == DeliveryState::Failed).await;
    assert_eq!(d.attempts[0].outcome, "security_failure");
    assert_eq!(d.attempts[0].status, None);
    let error = d.attempts[0].error.clone().unwrap();
    assert!(error.contains("a private address"), "{error}");
    let e = endpoint_state(&app, &a, &ep.endpoint_id).await;
    assert_eq!(e.disabled_reason, Some(DisabledReason::SecurityFailure));
    assert_eq!(e.disabled_note.as_deref(), Some(error.as_str()));
    // The app is limited for it: its event subscriptions are withdrawn.
    let causes = access_causes::of_app(&app.state.db, &a.client_id)
        .await
        .unwrap();
    assert_eq!(causes.len(), 1, "{causes:?}");
    assert_eq!(
        causes[0].reason,
        onyx_id::partner::access::AccessReason::WebhookSecurityFailure
    );
    assert_eq!(
        causes[0].withdrawn_scopes,
        vec!["events:subscribe".to_string()]
    );
}

async fn a_name_resolving_to_loopback_is_refused_without_the_allow_flag(backend: Backend) {
    let app = spawn_app_with(backend, &guarded).await;
    let rx = Receiver::start().await;
    let a = live_app(&app, &[]).await;
    let ep = add(&app, &a, &format!("http://localhost:{}/hook", rx.port), &[]).await;
    send_test(&app, &a, &ep.endpoint_id).await.unwrap();
    let d = wait_delivery(&app, &a, |d| d.state == DeliveryState::Failed).await;
    assert_eq!(d.attempts[0].outcome, "security_failure");
    assert!(d.attempts[0].error.as_deref().unwrap().contains("loopback"));
    assert!(rx.got().is_empty(), "nothing reached the receiver");
    let e = endpoint_state(&app, &a, &ep.endpoint_id).await;
    assert_eq!(e.state, EndpointState::Disabled);
}

async fn a_redirect_is_never_followed(backend: Backend) {
    let app = spawn_app_with(backend, &local).await;
    let rx = Receiver::start().await;
    let a = live_app(&app, &[]).await;
    let ep = add(&app, &a, &rx.url("/redirect"), &[]).await;
    rx.trust(&ep.secret);
    send_test(&app, &a, &ep.endpoint_id).await.unwrap();
    let d = wait_delivery(&app, &a, |d| d.attempts.len() == 1).await;
    assert_eq!(
        d.state,
        DeliveryState::Pending,
        "a redirect is a failure, retried"
    );
    assert_eq!(d.attempts[0].status, Some(302));
    tokio::time::sleep(Duration::from_millis(200)).await;
    let got = rx.got();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].path, "/redirect", "the Location was not fetched");
}

async fn a_successful_test_delivery_lifts_the_security_cause(backend: Backend) {
    let app = spawn_app_with(backend, &local).await;
    let rx = Receiver::start().await;
    let a = live_app(&app, &[]).await;
    let ep = add(&app, &a, &rx.url("/hook"), &[]).await;
    // As an earlier security failure left it.
    let mut tx = app.state.db.begin().await.unwrap();
    access_causes::put(
        &mut tx,
        &a.client_id,
        &onyx_id::partner::access::AccessCause {
            source: onyx_id::partner::access::CauseSource::Automatic,
            reason: onyx_id::partner::access::AccessReason::WebhookSecurityFailure,
            state: onyx_id::partner::access::AccessState::Limited,
            note: Some("resolved to 10.0.0.1".into()),
            withdrawn_scopes: vec!["events:subscribe".into()],
            actor: "onyx-id".into(),
            at: app.clock_now(),
        },
    )
    .await
    .unwrap();
    access_causes::recompute(&mut tx, &a.client_id, app.clock_now())
        .await
        .unwrap();
    tx.commit().await.unwrap();
    // An ordinary delivery lifts nothing; a test does.
    enqueue(&app, &a, 1).await;
    wait_delivery(&app, &a, |d| d.state == DeliveryState::Delivered).await;
    assert_eq!(
        access_causes::of_app(&app.state.db, &a.client_id)
            .await
            .unwrap()
            .len(),
        1
    );
    send_test(&app, &a, &ep.endpoint_id).await.unwrap();
    // (Lifting the cause sends an app.access.changed event after the test: look for the test
    // among all deliveries, not only the newest.)
    let tested = crate::support::wait::until(Duration::from_millis(20), || async {
        deliveries(&app, &a)
            .await
            .iter()
            .any(|d| d.event_type == "webhook.test" && d.state == DeliveryState::Delivered)
            .then_some(())
    })
    .await;
    assert!(tested.is_some(), "the test delivery got there");
    for _ in 0..100 {
        if access_causes::of_app(&app.state.db, &a.client_id)
            .await
            .unwrap()
            .is_empty()
        {
            let after = onyx_id::store::apps::by_client_id(&app.state.db, &a.client_id)
                .await
                .unwrap()
                .unwrap();
            assert_eq!(after.access, onyx_id::partner::access::AccessState::Active);
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("the cause was not lifted");
}

async fn gated_event_types_are_refused_without_the_capability(backend: Backend) {
    let app = spawn_app_with(backend, &local).await;
    let a = live_app(&app, &[]).await;
    let err = endpoints::add(
        &app.state.db,
        None,
        sealer(&app),
        &app.state.settings.webhooks,
        &a,
        "https://hooks.partner.example/onyx",
        &["permission.revoked".to_string()],
        app.clock_now(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "event_type_gated");
    assert!(matches!(err, WebhookError::Subscription(_)));
    assert!(
        err.to_string().contains("advanced_event_subscriptions"),
        "{err}"
    );
    // With the capability enabled they are accepted.
    let b = live_app(&app, &["advanced_event_subscriptions"]).await;
    let ep = add(
        &app,
        &b,
        "https://hooks.partner.example/onyx",
        &["permission.revoked"],
    )
    .await;
    assert_eq!(ep.events, vec![webhooks::EventType::PermissionRevoked]);
    // Plain http is refused unless the insecure setting is on; this server has it on.
    let strict = onyx_id::webhooks::WebhookSettings::default();
    let err = endpoints::add(
        &app.state.db,
        None,
        sealer(&app),
        &strict,
        &a,
        "http://hooks.partner.example/onyx",
        &[],
        app.clock_now(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), "invalid_url");
}

async fn two_instances_on_one_database_deliver_each_event_exactly_once(backend: Backend) {
    if !matches!(backend, Backend::Postgres) {
        // On SQLite one instance delivers.
        return;
    }
    let app = spawn_app_with(backend, &local).await;
    let mut settings = Settings::parse(
        "127.0.0.1:0",
        &app.issuer,
        &app.database_url,
        app.keys_dir.to_str().unwrap(),
    )
    .unwrap();
    local(&mut settings);
    let _second = onyx_id::startup::build_state(settings, Arc::new(app.clock.clone()))
        .await
        .unwrap();
    let rx = Receiver::start().await;
    let a = live_app(&app, &[]).await;
    let ep = add(&app, &a, &rx.url("/hook"), &[]).await;
    rx.trust(&ep.secret);
    let mut ids = Vec::new();
    for _ in 0..4 {
        ids.extend(enqueue(&app, &a, 50).await);
    }
    assert_eq!(ids.len(), 200);
    let got = rx.wait_for(200).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let got_all = rx.got();
    assert_eq!(got_all.len(), 200, "no event twice");
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for r in &got {
        *counts.entry(r.id.as_str()).or_default() += 1;
        assert_eq!(r.verified_by, vec![0]);
    }
    assert!(ids.iter().all(|id| counts.get(id.as_str()) == Some(&1)));
}

async fn an_endpoint_failing_every_delivery_for_5_days_is_disabled_with_the_reason(
    backend: Backend,
) {
    let app = spawn_app_with(backend, &local).await;
    let rx = Receiver::start().await;
    let a = live_app(&app, &[]).await;
    let ep = add(&app, &a, &rx.url("/hook"), &[]).await;
    for _ in 0..3 {
        rx.answer(500, vec![]);
    }
    enqueue(&app, &a, 1).await;
    wait_delivery(&app, &a, |d| d.attempts.len() == 1).await;
    let since = endpoint_state(&app, &a, &ep.endpoint_id)
        .await
        .failing_since;
    assert_eq!(since, Some(app.clock_now()), "the failure streak starts");
    app.clock.advance(webhooks::FAILING_LIMIT - 1);
    wait_delivery(&app, &a, |d| d.attempts.len() == 2).await;
    assert_eq!(
        endpoint_state(&app, &a, &ep.endpoint_id).await.state,
        EndpointState::Enabled
    );
    app.clock.advance(1);
    let d = wait_delivery(&app, &a, |d| d.state == DeliveryState::Failed).await;
    assert_eq!(d.attempts.len(), 3);
    let e = endpoint_state(&app, &a, &ep.endpoint_id).await;
    assert_eq!(e.state, EndpointState::Disabled);
    assert_eq!(e.disabled_reason, Some(DisabledReason::Failing));
    assert!(e.disabled_reason_text.unwrap().contains("5 days"));
}

async fn a_delivery_whose_lease_expired_is_claimed_again_and_a_live_lease_is_respected(
    backend: Backend,
) {
    let (app, rx, a, ep) = receiving(backend).await;
    let wall = onyx_id::clock::Clock::now(&onyx_id::clock::SystemClock);
    let now = app.clock_now();
    let mut tx = app.state.db.begin().await.unwrap();
    let mut ids = Vec::new();
    // As a worker that died mid-delivery leaves them: one lease expired, one still running.
    for lease_until in [wall - 1, wall + 3600] {
        // Written with its delivery at once (past the outbox), so its lease can be set here.
        let id = webhooks::new_event_id();
        let body = access_event(&a, now).body();
        let event = onyx_id::store::webhooks::Outgoing {
            event_id: &id,
            client_id: &a.client_id,
            event_type: "app.access.changed",
            body: &body,
            endpoints: std::slice::from_ref(&ep.endpoint_id),
        };
        onyx_id::store::webhooks::insert_event(&mut tx, &event, now)
            .await
            .unwrap();
        sqlx::query(
            "UPDATE webhook_deliveries SET lease_owner = 'dead', lease_until = $1
             WHERE event_id = $2",
        )
        .bind(lease_until)
        .bind(&id)
        .execute(&mut *tx)
        .await
        .unwrap();
        ids.push(id);
    }
    tx.commit().await.unwrap();
    webhooks::wake();
    let got = rx.wait_for(1).await;
    assert_eq!(
        got[0].id, ids[0],
        "the expired lease is claimed again, with the same id"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.got().len(), 1, "a live lease is its worker's");
}

/// The outbox keeps the endpoints subscribed when the change was made; the worker makes their
/// deliveries later. An endpoint disabled in between gets a failed delivery with the reason (as
/// disabling fails the pending ones, so a partner can retry it once the endpoint is enabled
/// again), and nothing is posted to it.
async fn an_event_whose_endpoint_was_disabled_before_the_outbox_was_split_is_logged_not_delivered(
    backend: Backend,
) {
    let (app, rx, a, ep) = receiving(backend).await;
    let now = app.clock_now();
    let mut tx = app.state.db.begin().await.unwrap();
    let done = webhooks::enqueue(&mut tx, &a.client_id, &access_event(&a, now), now)
        .await
        .unwrap();
    assert_eq!(done.deliveries, 1);
    onyx_id::store::webhooks::disable(&mut tx, &ep.endpoint_id, "gone", "answered 410", now)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    webhooks::wake();
    let d = wait_delivery(&app, &a, |_| true).await;
    assert_eq!(Some(d.event_id.as_str()), done.event_id.as_deref());
    assert_eq!(d.state, DeliveryState::Failed);
    assert!(
        d.last_error
            .as_deref()
            .unwrap_or_default()
            .contains("disabled (gone)"),
        "{d:?}"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        rx.got().is_empty(),
        "nothing is posted to a disabled endpoint"
    );
}

on_each_backend!(
    an_enqueued_event_is_delivered_signed_once_with_its_id,
    a_failing_receiver_gets_the_same_id_on_every_retry_and_the_log_shows_each_attempt,
    after_the_last_retry_the_delivery_fails_and_can_be_retried,
    a_410_disables_the_endpoint,
    a_delivery_whose_lease_expired_is_claimed_again_and_a_live_lease_is_respected,
    an_event_whose_endpoint_was_disabled_before_the_outbox_was_split_is_logged_not_delivered,
    an_endpoint_failing_every_delivery_for_5_days_is_disabled_with_the_reason,
    a_429_is_retried_after_its_retry_after,
    a_rotated_secret_signs_beside_the_new_one_until_the_overlap_ends,
    a_private_address_is_refused_and_the_endpoint_disables_itself,
    a_name_resolving_to_loopback_is_refused_without_the_allow_flag,
    a_redirect_is_never_followed,
    a_successful_test_delivery_lifts_the_security_cause,
    gated_event_types_are_refused_without_the_capability,
    two_instances_on_one_database_deliver_each_event_exactly_once,
);
