//! Webhooks to an https endpoint whose certificate is invalid (issue 13, "Security failure"):
//! a real https receiver on loopback presents a self-signed certificate, or one for another
//! host. The server delivers over https only (no insecure-http escape) and to loopback (the
//! allow-private escape), and trusts the test CA of fixtures/webhook-tls beside the public
//! roots (`--webhook-extra-root-cert`). The attempt is logged with the reason, the endpoint
//! disables itself, the app is limited with the cause `webhook_security_failure`, and a test
//! delivery that succeeds after the fix lifts it.

use std::time::Duration;

use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::partner_api::{DOMAIN, app_in_preview_with, get, good_draft, post, publish};
use crate::support::receiver::Receiver;
use crate::support::tls::{Cert, TlsListener, fixture};
use onyx_id::config::Settings;
use onyx_id::webhooks::endpoints;

on_each_backend!(
    a_self_signed_certificate_disables_the_endpoint_and_limits_the_app_until_a_test_after_the_fix,
    a_certificate_for_another_host_is_refused_even_from_a_trusted_authority,
);

/// The partner program's server (domain verification reaches the loopback publisher on
/// `publisher`), delivering webhooks over https only, to loopback, trusting the test CA.
fn https_to_loopback(s: &mut Settings, publisher: u16) {
    let v = &mut s.domain_verification;
    v.allow_private = true;
    v.insecure_http = true;
    v.resolve = vec![(
        DOMAIN.to_string(),
        std::net::SocketAddr::from(([127, 0, 0, 1], publisher)),
    )];
    let w = &mut s.webhooks;
    w.allow_private = true;
    w.insecure_http = false;
    w.extra_roots = onyx_id::webhooks::settings::read_roots(&fixture("ca.pem")).unwrap();
    w.poll_interval = Duration::from_millis(50);
    w.retry_schedule = vec![Duration::from_secs(1); 3];
}

/// An https receiver on loopback presenting `cert`, and its endpoint URL.
async fn https_receiver(cert: Cert) -> (Receiver, crate::support::tls::Presented, String) {
    let (listener, presented) = TlsListener::bind(cert).await;
    let base = format!("https://localhost:{}", listener.port());
    let url = format!("{base}/onyx");
    (Receiver::serve(listener, base), presented, url)
}

/// Adds `url` as an endpoint of the app (the development shortcut's service call, as
/// `apps webhooks add` makes it); returns its id and secret.
async fn add_endpoint(app: &TestApp, client_id: &str, url: &str) -> (String, String) {
    let row = onyx_id::store::apps::by_client_id(&app.state.db, client_id)
        .await
        .unwrap()
        .expect("the app exists");
    let added = endpoints::add(
        &app.state.db,
        None,
        &app.state.webhook_secrets,
        &app.state.settings.webhooks,
        &row,
        url,
        &[],
        app.clock_now(),
    )
    .await
    .expect("adding the endpoint");
    (added.endpoint_id, added.secret)
}

/// Polls the partner API at `path` until `done` holds of its answer.
async fn until(app: &TestApp, path: &str, key: &str, done: impl Fn(&Value) -> bool) -> Value {
    let found = crate::support::wait::until(Duration::from_millis(20), || async {
        let (status, v) = get(app, path, key).await;
        assert_eq!(status, 200, "{v}");
        done(&v).then_some(v)
    })
    .await;
    if let Some(v) = found {
        return v;
    }
    let (_, last) = get(app, path, key).await;
    panic!("{path} never got there: {last:#}");
}

/// The delivery of `event_id` in a deliveries log, once it is `state`.
fn delivery<'a>(log: &'a Value, event_id: &Value, state: &str) -> Option<&'a Value> {
    log.as_array()?
        .iter()
        .find(|d| &d["event_id"] == event_id && d["state"] == state)
}

async fn a_self_signed_certificate_disables_the_endpoint_and_limits_the_app_until_a_test_after_the_fix(
    backend: Backend,
) {
    let published = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let publisher = publish(published.clone()).await;
    let app = spawn_app_with(backend, &move |s| https_to_loopback(s, publisher)).await;
    let (receiver, presented, url) = https_receiver(Cert::SelfSigned).await;
    // A live app with a scope that needs review: what a security failure withdraws.
    let mut draft = good_draft();
    draft["scopes"] = json!(["openid", "profile", "email", "assertions:read"]);
    draft["justifications"] = json!({ "assertions:read": "Check travellers are over 18." });
    let (_, key, client_id, _) = app_in_preview_with(&app, &published, draft).await;
    let (endpoint_id, secret) = add_endpoint(&app, &client_id, &url).await;
    receiver.trust(&secret);
    let hooks = format!("/api/v1/apps/{client_id}/webhooks");
    let endpoint = format!("{hooks}/{endpoint_id}");

    // A test event: the handshake fails on the certificate, and nothing is posted.
    let (status, sent) = post(&app, &format!("{endpoint}/test"), &key, json!({})).await;
    assert_eq!(status, 202, "{sent}");
    let log = until(&app, &format!("{endpoint}/deliveries"), &key, |log| {
        delivery(log, &sent["event_id"], "failed").is_some()
    })
    .await;
    let failed = delivery(&log, &sent["event_id"], "failed").unwrap();
    let attempts = failed["attempts"].as_array().unwrap();
    assert_eq!(
        attempts.len(),
        1,
        "a security failure is not retried: {failed}"
    );
    assert_eq!(attempts[0]["outcome"], "security_failure");
    assert_eq!(
        attempts[0]["status"],
        Value::Null,
        "the endpoint never answered"
    );
    let error = attempts[0]["error"].as_str().unwrap().to_string();
    assert_eq!(
        error,
        "the endpoint's TLS certificate is not valid: it is not issued by a certificate \
         authority onyx-id trusts (a self-signed certificate, or a chain without its \
         intermediate certificates)"
    );
    assert!(receiver.got().is_empty(), "nothing reached the receiver");
    assert!(
        presented.saw_a_failed_handshake().await,
        "the receiver saw the handshake refused"
    );

    // The endpoint disabled itself, and says why.
    let (_, e) = get(&app, &endpoint, &key).await;
    assert_eq!(e["state"], "disabled", "{e}");
    assert_eq!(e["disabled_reason"], "security_failure");
    assert_eq!(e["disabled_note"], error.as_str());
    assert!(
        e["disabled_reason_text"]
            .as_str()
            .unwrap()
            .contains("invalid certificate"),
        "{e}"
    );

    // The app is limited with the automatic cause, which the partner can read.
    let app_path = format!("/api/v1/apps/{client_id}");
    let (_, v) = get(&app, &app_path, &key).await;
    let access = &v["access"];
    assert_eq!(access["state"], "limited", "{access}");
    assert_eq!(access["reason"], "webhook_security_failure");
    assert_eq!(
        access["reason_text"],
        "The app's webhook endpoints failed a security check."
    );
    assert_eq!(access["withdrawn_scopes"], json!(["assertions:read"]));
    let causes = access["causes"].as_array().unwrap();
    assert_eq!(causes.len(), 1, "{access}");
    assert_eq!(causes[0]["source"], "automatic");
    assert_eq!(causes[0]["reason"], "webhook_security_failure");
    assert_eq!(causes[0]["note"], error.as_str());

    // The partner fixes it: a certificate from an authority the server trusts. Enabling the
    // endpoint lifts nothing; a successful test delivery does.
    presented.present(Cert::Valid);
    let (status, e) = post(&app, &format!("{endpoint}/enable"), &key, json!({})).await;
    assert_eq!(
        (status.as_u16(), e["state"].clone()),
        (200, json!("enabled")),
        "{e}"
    );
    let (_, v) = get(&app, &app_path, &key).await;
    assert_eq!(v["access"]["reason"], "webhook_security_failure", "{v}");
    let (status, sent) = post(&app, &format!("{endpoint}/test"), &key, json!({})).await;
    assert_eq!(status, 202, "{sent}");
    let test = receiver.next_of("webhook.test", 0).await;
    assert!(test.verified, "signed with the endpoint's secret");
    assert_eq!(test.id, sent["event_id"].as_str().unwrap());
    let v = until(&app, &app_path, &key, |v| v["access"]["state"] == "active").await;
    assert_eq!(v["access"]["causes"], json!([]), "{v}");
    assert_eq!(v["access"]["withdrawn_scopes"], json!([]));
    let (_, e) = get(&app, &endpoint, &key).await;
    assert!(e["tested_at"].is_i64(), "{e}");
}

async fn a_certificate_for_another_host_is_refused_even_from_a_trusted_authority(backend: Backend) {
    let app = spawn_app_with(backend, &|s| https_to_loopback(s, 9)).await;
    let (receiver, presented, url) = https_receiver(Cert::OtherHost).await;
    let client = app.create_app(&["openid"]).await;
    let (endpoint_id, _) = add_endpoint(&app, &client.client_id, &url).await;
    let sent = endpoints::send_test(
        &app.state.db,
        None,
        &client.client_id,
        &endpoint_id,
        app.clock_now(),
    )
    .await
    .unwrap();
    let done = crate::support::wait::until(Duration::from_millis(20), || async {
        endpoints::deliveries(&app.state.db, &client.client_id, Some(&endpoint_id))
            .await
            .unwrap()
            .into_iter()
            .find(|d| d.event_id == sent.event_id && !d.attempts.is_empty())
    })
    .await;
    let d = done.expect("the test delivery was attempted");
    assert_eq!(d.attempts[0].outcome, "security_failure");
    let error = d.attempts[0].error.clone().unwrap();
    assert_eq!(
        error,
        "the endpoint's TLS certificate is not valid: it is not valid for localhost (it names \
         DnsName(\"hooks.other.example\"))"
    );
    assert!(receiver.got().is_empty());
    assert!(presented.saw_a_failed_handshake().await);
    let e = endpoints::get(
        &app.state.db,
        &client.client_id,
        &endpoint_id,
        app.clock_now(),
    )
    .await
    .unwrap();
    assert_eq!(
        e.disabled_reason,
        Some(onyx_id::webhooks::DisabledReason::SecurityFailure)
    );
    assert_eq!(e.disabled_note.as_deref(), Some(error.as_str()));
}
