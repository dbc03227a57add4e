//! The operating part of the partner console: domain verification (the token, where to publish
//! it, a check that says why it fails), test accounts and the launch checklist with its
//! evidence, capability requests with a reason, client secret rotation (shown once, the old one
//! working through the window), and webhooks (test event, deliveries log, event types, signing
//! secret, enable, retry). Owners and developers both manage the app; another partner's member
//! finds nothing; every form needs the CSRF token, and every action is in the audit log with
//! the person who did it.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::browser::*;
use crate::support::console::*;
use crate::support::partner_api::{self, DOMAIN, decide, good_draft, publish};
use crate::support::receiver::Receiver;
use onyx_id::webhooks::endpoints;

on_each_backend!(
    the_domain_page_shows_the_token_and_a_check_says_why_it_fails_until_it_is_published,
    test_accounts_are_set_at_the_launch_page_and_a_bad_address_is_refused_at_its_line,
    the_launch_checklist_shows_each_requirement_with_its_evidence_and_production_approval,
    a_capability_is_requested_with_a_reason_and_without_one_the_field_says_so,
    a_rotated_secret_is_shown_once_and_the_old_one_works_through_the_window,
    a_public_app_has_no_secret_to_rotate,
    a_test_event_reaches_the_receiver_and_shows_in_the_deliveries_log,
    an_approved_url_is_set_up_as_an_endpoint_with_its_secret_shown_once,
    event_types_and_the_signing_secret_of_an_endpoint_are_changed_from_its_page,
    a_disabled_endpoint_is_enabled_again_and_its_failed_delivery_retried,
    more_than_fifty_deliveries_are_shown_a_page_at_a_time,
    another_partners_member_finds_nothing_and_a_developer_manages_the_app,
    a_form_without_the_csrf_token_changes_nothing,
    every_action_is_in_the_audit_log_with_the_person_who_did_it,
);

/// A server whose domain verification fetches `app.example` from a loopback publisher and whose
/// webhooks may go to loopback over http; the partner program on it; the publisher's body.
async fn program(backend: Backend) -> (TestApp, Program, Arc<Mutex<String>>) {
    let published = Arc::new(Mutex::new(String::new()));
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
    let p = Program::start(&app).await;
    (app, p, published)
}

/// A new app of the partner (good draft, `client_type`); its client id and secret.
async fn new_app(app: &TestApp, p: &Program, client_type: &str) -> (String, Option<String>) {
    let mut draft = good_draft();
    draft["client_type"] = json!(client_type);
    let (status, v) = partner_api::post(app, "/api/v1/apps", &p.partner_key, draft).await;
    assert_eq!(status, 201, "{v}");
    (
        v["client_id"].as_str().unwrap().to_string(),
        v["client_secret"].as_str().map(String::from),
    )
}

/// An app submitted, its domain verified through the API and its first steps approved.
async fn app_in_preview(
    app: &TestApp,
    p: &Program,
    published: &Arc<Mutex<String>>,
) -> (String, String) {
    let (client_id, secret) = new_app(app, p, "confidential").await;
    let key = &p.partner_key;
    partner_api::post(
        app,
        &format!("/api/v1/apps/{client_id}/submit"),
        key,
        json!({}),
    )
    .await;
    let dv = format!("/api/v1/apps/{client_id}/domain-verification");
    let (_, challenge) = partner_api::get(app, &dv, key).await;
    *published.lock().unwrap() = challenge["token"].as_str().unwrap().to_string();
    let (_, v) = partner_api::post(app, &dv, key, json!({})).await;
    assert_eq!(v["verified"], true, "{v}");
    for step in [
        "company",
        "app_identity",
        "use_case",
        "scopes",
        "domain",
        "redirect_uris",
    ] {
        let (status, v) = decide(app, &p.op_key, &client_id, step, "approved").await;
        assert_eq!(status, 200, "{step}: {v}");
    }
    (client_id, secret.unwrap())
}

/// An endpoint of the app on `receiver`, trusted by it; its id.
async fn endpoint_on(app: &TestApp, client_id: &str, receiver: &Receiver) -> String {
    let row = onyx_id::store::apps::by_client_id(&app.state.db, client_id)
        .await
        .unwrap()
        .unwrap();
    let added = endpoints::add(
        &app.state.db,
        None,
        &app.state.webhook_secrets,
        &app.state.settings.webhooks,
        &row,
        &receiver.url("/onyx"),
        &[],
        app.clock_now(),
    )
    .await
    .expect("adding the endpoint");
    receiver.trust(&added.secret);
    added.endpoint_id
}

/// The text of the element `<code id="{id}">`.
fn code(html: &str, id: &str) -> String {
    let open = format!(r#"<code id="{id}""#);
    let start = html
        .find(&open)
        .unwrap_or_else(|| panic!("no #{id} in {html}"));
    let start = start + html[start..].find('>').unwrap() + 1;
    let end = html[start..].find("</code>").unwrap() + start;
    html[start..end].to_string()
}

async fn audit(app: &TestApp, p: &Program, client_id: &str) -> Vec<Value> {
    let (_, v) = partner_api::get(
        app,
        &format!("/api/v1/operator/audit?client_id={client_id}"),
        &p.op_key,
    )
    .await;
    v["entries"].as_array().cloned().unwrap_or_default()
}

async fn user_id(app: &TestApp, email: &str) -> String {
    onyx_id::store::users::by_email(&app.state.db, email)
        .await
        .unwrap()
        .unwrap()
        .id
}

/// Waits (up to 10 s) until the endpoint's page says `what`.
async fn page_says(c: &Console, path: &str, what: &str) -> String {
    let found = crate::support::wait::until(Duration::from_millis(50), || async {
        let html = c.page(path).await;
        words(&html).contains(what).then_some(html)
    })
    .await;
    if let Some(html) = found {
        return html;
    }
    panic!("{path} never said {what:?}: {}", words(&c.page(path).await));
}

async fn the_domain_page_shows_the_token_and_a_check_says_why_it_fails_until_it_is_published(
    backend: Backend,
) {
    let (app, p, published) = program(backend).await;
    let (client_id, _) = new_app(&app, &p, "confidential").await;
    let dev = Console::sign_in(&app, DEVELOPER).await;
    let path = format!("/partner/apps/{client_id}/domain");
    let page = dev.page(&path).await;
    let token = code(&page, "domain-token");
    assert!(token.len() > 20, "{token}");
    assert_eq!(
        code(&page, "domain-url"),
        format!("http://{DOMAIN}/.well-known/onyx-id-verification")
    );
    assert!(words(&page).contains("Not verified"), "{}", words(&page));

    // Nothing published yet: the check says why in words.
    let a = dev.post(&format!("{path}/check"), &[]).await;
    assert_eq!(a.status, 200, "{}", a.html);
    let said = words(&a.html);
    assert!(said.contains("The check failed."), "{said}");
    assert!(said.contains("answered with status 404"), "{said}");
    assert!(a.html.contains(r#"role="alert""#));

    // Something else published: it says what it found.
    *published.lock().unwrap() = "not-the-token".into();
    let a = dev.post(&format!("{path}/check"), &[]).await;
    assert!(
        words(&a.html).contains("instead of the token"),
        "{}",
        words(&a.html)
    );

    *published.lock().unwrap() = token.clone();
    let (to, page) = dev.post_and_follow(&format!("{path}/check"), &[]).await;
    assert_eq!(to, format!("{path}?done=verified"));
    let said = words(&page);
    assert!(said.contains("The domain is verified"), "{said}");
    assert!(said.contains("Verified on"), "{said}");
    // The same token stays.
    assert_eq!(code(&page, "domain-token"), token);
    let (_, v) = partner_api::get(
        &app,
        &format!("/api/v1/apps/{client_id}/domain-verification"),
        &p.partner_key,
    )
    .await;
    assert_eq!(v["verified"], true, "{v}");
}

async fn test_accounts_are_set_at_the_launch_page_and_a_bad_address_is_refused_at_its_line(
    backend: Backend,
) {
    let (app, p, _) = program(backend).await;
    let (client_id, _) = new_app(&app, &p, "confidential").await;
    let owner = Console::sign_in(&app, OWNER).await;
    let path = format!("/partner/apps/{client_id}/launch");
    let page = owner.page(&path).await;
    assert!(words(&page).contains("has not been submitted for review yet"));
    assert!(page.contains(r#"<textarea id="emails" name="emails""#));

    let typed = "tester@partner.example\nnot an address\n";
    let a = owner
        .post(
            &format!("/partner/apps/{client_id}/test-accounts"),
            &[("emails", typed)],
        )
        .await;
    assert_eq!(a.status, 400, "{}", a.html);
    assert!(a.html.contains(r#"id="emails-error""#), "{}", a.html);
    assert!(words(&a.html).contains("Line 2:"), "{}", words(&a.html));
    assert!(a.html.contains(r#"aria-invalid="true""#));
    assert!(
        a.html.contains("tester@partner.example\nnot an address"),
        "typed kept"
    );
    let (_, v) = partner_api::get(
        &app,
        &format!("/api/v1/apps/{client_id}/test-accounts"),
        &p.partner_key,
    )
    .await;
    assert_eq!(v["test_accounts"], json!([]), "nothing saved: {v}");

    let (to, page) = owner
        .post_and_follow(
            &format!("/partner/apps/{client_id}/test-accounts"),
            &[(
                "emails",
                "Tester@Partner.example\r\n\r\n second@partner.example ",
            )],
        )
        .await;
    assert_eq!(to, format!("{path}?done=accounts"));
    assert!(words(&page).contains("The test accounts were saved."));
    assert!(
        page.contains("second@partner.example\ntester@partner.example"),
        "{page}"
    );
    let (_, v) = partner_api::get(
        &app,
        &format!("/api/v1/apps/{client_id}/test-accounts"),
        &p.partner_key,
    )
    .await;
    assert_eq!(
        v["test_accounts"],
        json!(["second@partner.example", "tester@partner.example"])
    );
}

async fn the_launch_checklist_shows_each_requirement_with_its_evidence_and_production_approval(
    backend: Backend,
) {
    let (app, p, published) = program(backend).await;
    let (client_id, _) = app_in_preview(&app, &p, &published).await;
    let dev = Console::sign_in(&app, DEVELOPER).await;
    let page = dev.page(&format!("/partner/apps/{client_id}/launch")).await;
    let said = words(&page);
    for label in [
        "Verified app ownership (domain)",
        "Approved scopes",
        "A sign-in flow completed in preview",
        "Tested webhook delivery",
        "A successful revocation call in preview",
    ] {
        assert!(said.contains(label), "{label}: {said}");
    }
    assert!(page.contains(r#"id="requirement-verified_ownership""#));
    assert!(
        said.contains(&format!("Met Verified app ownership (domain) Evidence: {DOMAIN} served its verification token on")),
        "{said}"
    );
    assert!(said.contains("Not met A sign-in flow completed in preview Evidence: No sign-in has completed in preview yet."), "{said}");
    assert!(
        said.contains(
            "Not applicable Tested webhook delivery Evidence: The app has no webhook endpoint."
        ),
        "{said}"
    );
    assert!(said.contains("Not ready"), "{said}");
    // Production approval: the step's state, and the note once decided.
    assert!(
        said.contains("Production approval step Waiting for Onyx"),
        "{said}"
    );
    assert!(said.contains("The app is in preview"), "{said}");
    let (status, _) = decide(
        &app,
        &p.op_key,
        &client_id,
        "production",
        "changes_requested",
    )
    .await;
    assert_eq!(status, 200);
    let said = words(&dev.page(&format!("/partner/apps/{client_id}/launch")).await);
    assert!(said.contains("Changes requested"), "{said}");
    assert!(said.contains("Reviewer's note “checked”"), "{said}");
}

async fn a_capability_is_requested_with_a_reason_and_without_one_the_field_says_so(
    backend: Backend,
) {
    let (app, p, _) = program(backend).await;
    let (client_id, _) = new_app(&app, &p, "confidential").await;
    let owner = Console::sign_in(&app, OWNER).await;
    let path = format!("/partner/apps/{client_id}/capabilities");
    let page = owner.page(&path).await;
    let said = words(&page);
    assert!(said.contains("Expanded messaging Unavailable"), "{said}");
    assert!(
        said.contains("The app has not asked for expanded messaging."),
        "{said}"
    );

    let action = format!("{path}/expanded_messaging");
    let a = owner.post(&action, &[("reason", "   ")]).await;
    assert_eq!(a.status, 400, "{}", a.html);
    assert!(
        a.html.contains(r#"id="reason-expanded_messaging-error""#),
        "{}",
        a.html
    );
    assert!(words(&a.html).contains("Say why the app needs this capability"));
    let (_, v) = partner_api::get(
        &app,
        &format!("/api/v1/apps/{client_id}/capabilities"),
        &p.partner_key,
    )
    .await;
    let state = |v: &Value, name: &str| {
        v["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["capability"] == name)
            .unwrap()["state"]
            .clone()
    };
    assert_eq!(state(&v, "expanded_messaging"), "unavailable");

    let (to, page) = owner
        .post_and_follow(&action, &[("reason", "We send trip reminders by SMS.")])
        .await;
    assert!(to.starts_with(&format!("{path}?done=requested")), "{to}");
    let said = words(&page);
    assert!(said.contains("Expanded messaging Requested"), "{said}");
    assert!(said.contains("Onyx has not decided yet"), "{said}");
    assert!(said.contains("We send trip reminders by SMS."), "{said}");
    let (_, v) = partner_api::get(
        &app,
        &format!("/api/v1/apps/{client_id}/capabilities"),
        &p.partner_key,
    )
    .await;
    assert_eq!(state(&v, "expanded_messaging"), "requested");

    // Asked already: refused at the field, with what was typed.
    let a = owner.post(&action, &[("reason", "again please")]).await;
    assert_eq!(a.status, 409, "{}", a.html);
    assert!(a.html.contains(r#"id="reason-expanded_messaging-error""#));
    // An operator gates another one: the page says so, with no request form.
    let (status, _) = partner_api::put(
        &app,
        &format!("/api/v1/operator/apps/{client_id}/capabilities/community_execution"),
        &p.op_key,
        json!({ "state": "gated", "note": "not in your market yet" }),
    )
    .await;
    assert_eq!(status, 200);
    let page = owner.page(&path).await;
    assert!(words(&page).contains("Community execution Gated"));
    assert!(words(&page).contains("not in your market yet"));
    assert!(!page.contains(r#"id="reason-community_execution""#));
    // An unknown capability is not a page.
    let a = owner
        .post(&format!("{path}/flying"), &[("reason", "x")])
        .await;
    assert_eq!(a.status, 404);
}

async fn a_rotated_secret_is_shown_once_and_the_old_one_works_through_the_window(backend: Backend) {
    let (app, p, published) = program(backend).await;
    let (client_id, old) = app_in_preview(&app, &p, &published).await;
    let dev = Console::sign_in(&app, DEVELOPER).await;
    let path = format!("/partner/apps/{client_id}/secret");
    let page = dev.page(&path).await;
    assert!(words(&page).contains("None: only the current secret works."));

    let a = dev.post(&path, &[("overlap_seconds", "3600")]).await;
    assert_eq!(a.status, 200, "{}", a.html);
    assert_eq!(
        a.html.matches(r#"id="client-secret""#).count(),
        1,
        "shown once"
    );
    let new = code(&a.html, "client-secret");
    assert!(new.len() >= 32, "{new}");
    let said = words(&a.html);
    assert!(
        said.contains("The old secret keeps working for 1 hour , until"),
        "{said}"
    );
    assert!(said.contains("shown only this once"));
    let again = dev.page(&path).await;
    assert!(!again.contains(&new), "never shown again");
    assert!(
        words(&again).contains("Still accepted for 1 hour, until"),
        "{}",
        words(&again)
    );

    let with = |s: &str| Client {
        client_id: client_id.clone(),
        client_secret: Some(s.to_string()),
    };
    let authenticated =
        |(status, v): (StatusCode, Value)| status == 200 || v["error"] != "invalid_client";
    assert!(authenticated(
        client_credentials(&app, &with(&new), "openid").await
    ));
    assert!(
        authenticated(client_credentials(&app, &with(&old), "openid").await),
        "old in the window"
    );
    app.clock.advance(3601);
    let (status, v) = client_credentials(&app, &with(&old), "openid").await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_client"))
    );
    assert!(authenticated(
        client_credentials(&app, &with(&new), "openid").await
    ));
    assert!(words(&dev.page(&path).await).contains("None: only the current secret works."));

    // An overlap that is not offered is refused at the field, and nothing changes.
    let a = dev.post(&path, &[("overlap_seconds", "99999999")]).await;
    assert_eq!(a.status, 400);
    assert!(a.html.contains(r#"id="overlap_seconds-error""#));
    assert!(authenticated(
        client_credentials(&app, &with(&new), "openid").await
    ));
}

async fn a_public_app_has_no_secret_to_rotate(backend: Backend) {
    let (app, p, _) = program(backend).await;
    let (client_id, secret) = new_app(&app, &p, "public").await;
    assert!(secret.is_none());
    let owner = Console::sign_in(&app, OWNER).await;
    let path = format!("/partner/apps/{client_id}/secret");
    let page = owner.page(&path).await;
    assert!(
        words(&page).contains("it has no client secret"),
        "{}",
        words(&page)
    );
    assert!(!page.contains("Rotate the secret"));
    let a = owner.post(&path, &[]).await;
    assert_eq!(a.status, 409, "{}", a.html);
    assert!(words(&a.html).contains("This app does not authenticate with a client secret."));
    assert!(!a.html.contains(r#"id="client-secret""#));
}

async fn a_test_event_reaches_the_receiver_and_shows_in_the_deliveries_log(backend: Backend) {
    let (app, p, published) = program(backend).await;
    let (client_id, _) = app_in_preview(&app, &p, &published).await;
    let dev = Console::sign_in(&app, DEVELOPER).await;
    let list = format!("/partner/apps/{client_id}/webhooks");
    let page = dev.page(&list).await;
    let said = words(&page);
    assert!(
        said.contains("This app has no webhook endpoint yet."),
        "{said}"
    );
    assert!(said.contains("webhooks review step"), "{said}");

    let receiver = Receiver::start().await;
    let endpoint_id = endpoint_on(&app, &client_id, &receiver).await;
    let page = dev.page(&list).await;
    assert!(words(&page).contains(&receiver.url("/onyx")));
    assert!(words(&page).contains("Enabled"));
    assert!(words(&page).contains("Not tested yet"));
    let path = format!("{list}/{endpoint_id}");
    let page = dev.page(&path).await;
    assert!(words(&page).contains("Nothing has been delivered to this endpoint yet."));

    let (to, _) = dev.post_and_follow(&format!("{path}/test"), &[]).await;
    assert_eq!(to, format!("{path}?done=test#deliveries"));
    let got = receiver.next_of("webhook.test", 0).await;
    assert!(got.verified, "signed with the endpoint's secret");
    let page = page_says(&dev, &path, "Delivered webhook.test").await;
    let said = words(&page);
    assert!(said.contains(&format!("webhook-id {}", got.id)), "{said}");
    assert!(said.contains("HTTP 204"), "{said}");
    assert!(said.contains("A test delivery succeeded on"), "{said}");
    // The launch checklist reads it.
    let launch = words(&dev.page(&format!("/partner/apps/{client_id}/launch")).await);
    assert!(launch.contains("Met Tested webhook delivery"), "{launch}");
}

async fn an_approved_url_is_set_up_as_an_endpoint_with_its_secret_shown_once(backend: Backend) {
    let (app, p, _) = program(backend).await;
    let approved = "https://hooks.app.example/onyx";
    let mut draft = partner_api::good_draft();
    draft["webhooks"] = json!([approved, "https://hooks.app.example/later"]);
    let (status, v) = partner_api::post(&app, "/api/v1/apps", &p.partner_key, draft).await;
    assert_eq!(status, 201, "{v}");
    let client_id = v["client_id"].as_str().unwrap().to_string();
    let list = format!("/partner/apps/{client_id}/webhooks");
    let dev = Console::sign_in(&app, DEVELOPER).await;

    // Before the review approves the URLs there is nothing to set up, and a forged form is
    // refused at its field.
    let page = dev.page(&list).await;
    assert!(!page.contains("Set up an endpoint"), "{page}");
    assert!(words(&page).contains("In the draft, not approved yet"));
    let refused = dev
        .post(&list, &[("url", approved), ("events", "webhook.test")])
        .await;
    assert_eq!(refused.status, 409, "{}", refused.html);
    assert!(
        words(&refused.html).contains("The webhooks review step has not approved"),
        "{}",
        words(&refused.html)
    );
    assert!(refused.html.contains(r#"role="alert""#), "in the banner");

    partner_api::post(
        &app,
        &format!("/api/v1/apps/{client_id}/submit"),
        &p.partner_key,
        json!({}),
    )
    .await;
    let (status, v) = decide(&app, &p.op_key, &client_id, "webhooks", "approved").await;
    assert_eq!(status, 200, "{v}");
    let page = dev.page(&list).await;
    assert!(
        words(&page).contains("Set up an endpoint"),
        "{}",
        words(&page)
    );
    assert!(
        page.contains(r#"id="event-consent-granted" checked"#),
        "defaults ticked"
    );
    assert!(!page.contains(r#"id="event-permission-granted" checked"#));

    // No URL chosen, or no event type: the field says so and the ticks are kept.
    let a = dev.post(&list, &[("events", "webhook.test")]).await;
    assert_eq!(a.status, 400);
    assert!(words(&a.html).contains("Choose the approved URL to set up."));
    assert!(a.html.contains(r#"id="event-webhook-test" checked"#));
    assert!(!a.html.contains(r#"id="event-consent-granted" checked"#));
    let a = dev.post(&list, &[("url", approved)]).await;
    assert_eq!(a.status, 400);
    assert!(words(&a.html).contains("Choose at least one event type for the endpoint."));
    // A gated event type without the capability is refused at the event types.
    let a = dev
        .post(
            &list,
            &[("url", approved), ("events", "permission.granted")],
        )
        .await;
    assert_eq!(a.status, 409, "{}", a.html);
    assert!(a.html.contains(r#"id="events-error""#), "{}", a.html);

    // Set up: the secret is shown this once, on a page that is not stored.
    let a = dev
        .post(
            &list,
            &[
                ("url", approved),
                ("events", "consent.revoked"),
                ("events", "webhook.test"),
            ],
        )
        .await;
    assert_eq!(a.status, 200, "{}", a.html);
    let secret = code(&a.html, "webhook-secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(words(&a.html).contains("The endpoint is set up and enabled."));
    let (_, api) = partner_api::get(
        &app,
        &format!("/api/v1/apps/{client_id}/webhooks"),
        &p.partner_key,
    )
    .await;
    assert_eq!(api.as_array().map(Vec::len), Some(1), "{api}");
    assert_eq!(api[0]["url"], approved);
    assert_eq!(api[0]["events"], json!(["consent.revoked", "webhook.test"]));
    let endpoint_id = api[0]["endpoint_id"].as_str().unwrap();
    let shown = dev.page(&format!("{list}/{endpoint_id}")).await;
    assert!(!shown.contains(&secret), "the secret is shown only once");
    let page = dev.page(&list).await;
    assert!(
        page.contains(r#"value="https://hooks.app.example/later""#)
            && !page.contains(&format!(r#"value="{approved}""#)),
        "only the other approved URL is left to set up: {}",
        words(&page)
    );
    // Twice is refused (the URL has its endpoint).
    let again = dev
        .post(&list, &[("url", approved), ("events", "webhook.test")])
        .await;
    assert_eq!(again.status, 409, "{}", again.html);

    let entry = audit(&app, &p, &client_id)
        .await
        .into_iter()
        .find(|e| e["action"] == "webhook.endpoint_added")
        .expect("the set-up is audited");
    let dev_id = user_id(&app, DEVELOPER).await;
    assert_eq!(
        entry["actor"],
        format!("partner:{}/user:{dev_id}", p.partner_id)
    );
    assert_eq!(entry["detail"]["url"], approved);
}

async fn event_types_and_the_signing_secret_of_an_endpoint_are_changed_from_its_page(
    backend: Backend,
) {
    let (app, p, published) = program(backend).await;
    let (client_id, _) = app_in_preview(&app, &p, &published).await;
    let receiver = Receiver::start().await;
    let endpoint_id = endpoint_on(&app, &client_id, &receiver).await;
    let owner = Console::sign_in(&app, OWNER).await;
    let path = format!("/partner/apps/{client_id}/webhooks/{endpoint_id}");
    let page = owner.page(&path).await;
    assert!(
        page.contains(r#"id="event-consent-granted" checked"#),
        "defaults ticked"
    );
    assert!(!page.contains(r#"id="event-permission-granted" checked"#));
    assert!(words(&page).contains(
        "Gated: it needs the advanced_event_subscriptions capability, which this app does not have."
    ));

    let (to, page) = owner
        .post_and_follow(
            &format!("{path}/events"),
            &[("events", "app.review.updated"), ("events", "webhook.test")],
        )
        .await;
    assert_eq!(to, format!("{path}?done=events"));
    assert!(page.contains(r#"id="event-app-review-updated" checked"#));
    assert!(!page.contains(r#"id="event-consent-granted" checked"#));
    let api = format!("/api/v1/apps/{client_id}/webhooks/{endpoint_id}");
    let (_, v) = partner_api::get(&app, &api, &p.partner_key).await;
    assert_eq!(v["events"], json!(["app.review.updated", "webhook.test"]));

    // A gated type without the capability, and none at all: refused at the field, typed kept.
    let a = owner
        .post(
            &format!("{path}/events"),
            &[
                ("events", "permission.granted"),
                ("events", "consent.revoked"),
            ],
        )
        .await;
    assert_eq!(a.status, 409, "{}", a.html);
    assert!(a.html.contains(r#"id="events-error""#));
    assert!(
        words(&a.html).contains("advanced event subscription"),
        "{}",
        words(&a.html)
    );
    assert!(
        a.html.contains(r#"id="event-permission-granted" checked"#),
        "typed kept"
    );
    assert!(a.html.contains(r#"id="event-consent-revoked" checked"#));
    let a = owner.post(&format!("{path}/events"), &[]).await;
    assert_eq!(a.status, 400);
    assert!(words(&a.html).contains("Name at least one event type"));
    let (_, v) = partner_api::get(&app, &api, &p.partner_key).await;
    assert_eq!(
        v["events"],
        json!(["app.review.updated", "webhook.test"]),
        "unchanged"
    );

    // A review decision now arrives.
    decide(&app, &p.op_key, &client_id, "support", "approved").await;
    assert!(receiver.next_of("app.review.updated", 0).await.verified);

    // The signing secret: a new one shown once, the overlap window said.
    let a = owner.post(&format!("{path}/secret"), &[]).await;
    assert_eq!(a.status, 200, "{}", a.html);
    let secret = code(&a.html, "webhook-secret");
    assert!(secret.starts_with("whsec_"), "{secret}");
    let said = words(&a.html);
    assert!(
        said.contains("signed with both the new and the old secret for 24 hours , until"),
        "{said}"
    );
    let page = owner.page(&path).await;
    assert!(!page.contains(&secret));
    assert!(
        words(&page).contains("the previous secret still signs beside the new one for 24 hours")
    );
    // Deliveries go on, signed (the receiver trusts the old secret and now the new).
    receiver.trust(&secret);
    owner.post_and_follow(&format!("{path}/test"), &[]).await;
    assert!(receiver.next_of("webhook.test", 0).await.verified);
}

async fn a_disabled_endpoint_is_enabled_again_and_its_failed_delivery_retried(backend: Backend) {
    let (app, p, published) = program(backend).await;
    let (client_id, _) = app_in_preview(&app, &p, &published).await;
    let receiver = Receiver::start().await;
    let endpoint_id = endpoint_on(&app, &client_id, &receiver).await;
    let dev = Console::sign_in(&app, DEVELOPER).await;
    let path = format!("/partner/apps/{client_id}/webhooks/{endpoint_id}");

    receiver.answer(410);
    dev.post_and_follow(&format!("{path}/test"), &[]).await;
    page_says(&dev, &path, "Failed webhook.test").await;
    // The page reads the endpoint and its deliveries in two queries: on PostgreSQL a page drawn
    // while the worker commits can show the failed delivery beside the endpoint's old state, so
    // the state is waited for too.
    let page = page_says(&dev, &path, "Disabled").await;
    let said = words(&page);
    assert!(said.contains("Failed webhook.test"), "{said}");
    assert!(said.contains("The endpoint answered 410 Gone"), "{said}");
    assert!(said.contains("HTTP 410"), "{said}");
    assert!(!page.contains("/test\""), "no test while disabled");
    let list = words(
        &dev.page(&format!("/partner/apps/{client_id}/webhooks"))
            .await,
    );
    assert!(
        list.contains("Disabled The endpoint answered 410 Gone")
            || list.contains("The endpoint answered 410 Gone"),
        "{list}"
    );

    // The failed delivery can be retried only once the endpoint is enabled again.
    let (_, log) = partner_api::get(
        &app,
        &format!("/api/v1/apps/{client_id}/webhooks/{endpoint_id}/deliveries"),
        &p.partner_key,
    )
    .await;
    let delivery_id = log[0]["delivery_id"].as_str().unwrap().to_string();
    let retry = format!("/partner/apps/{client_id}/webhook-deliveries/{delivery_id}/retry");
    let a = dev.post(&retry, &[]).await;
    assert_eq!(a.status, 409, "{}", a.html);
    assert!(
        words(&a.html)
            .contains("No failed delivery of this app to an enabled endpoint has that id.")
    );

    let (to, page) = dev.post_and_follow(&format!("{path}/enable"), &[]).await;
    assert_eq!(to, format!("{path}?done=enabled"));
    assert!(words(&page).contains("The endpoint is enabled again"));
    receiver.answer(204);
    let (to, _) = dev.post_and_follow(&retry, &[]).await;
    assert_eq!(to, format!("{path}?done=retried#deliveries"));
    let again = receiver.next_of("webhook.test", 1).await;
    assert_eq!(again.id, receiver.got()[0].id, "the same webhook-id");
    let page = page_says(&dev, &path, "Delivered webhook.test").await;
    assert!(words(&page).contains("HTTP 204"));
}

async fn more_than_fifty_deliveries_are_shown_a_page_at_a_time(backend: Backend) {
    let (app, p, published) = program(backend).await;
    let (client_id, _) = app_in_preview(&app, &p, &published).await;
    let receiver = Receiver::start().await;
    let endpoint_id = endpoint_on(&app, &client_id, &receiver).await;
    for _ in 0..51 {
        endpoints::send_test(
            &app.state.db,
            None,
            &client_id,
            &endpoint_id,
            app.clock_now(),
        )
        .await
        .unwrap();
    }
    let owner = Console::sign_in(&app, OWNER).await;
    let path = format!("/partner/apps/{client_id}/webhooks/{endpoint_id}");
    let page = owner.page(&path).await;
    assert_eq!(page.matches(r#"<li id="delivery-"#).count(), 50);
    assert!(words(&page).contains("Showing 1–50 of 51"));
    assert!(page.contains(&format!(r#"href="{path}?page=2""#)));
    let page = owner.page(&format!("{path}?page=2")).await;
    assert_eq!(page.matches(r#"<li id="delivery-"#).count(), 1);
}

async fn another_partners_member_finds_nothing_and_a_developer_manages_the_app(backend: Backend) {
    let (app, p, published) = program(backend).await;
    let (client_id, _) = app_in_preview(&app, &p, &published).await;
    let receiver = Receiver::start().await;
    let endpoint_id = endpoint_on(&app, &client_id, &receiver).await;
    p.other_partner(&app).await;
    let other = Console::sign_in(&app, "other@other.example").await;
    let base = format!("/partner/apps/{client_id}");
    let pages = [
        format!("{base}/domain"),
        format!("{base}/launch"),
        format!("{base}/capabilities"),
        format!("{base}/secret"),
        format!("{base}/webhooks"),
        format!("{base}/webhooks/{endpoint_id}"),
    ];
    for page in &pages {
        assert_eq!(other.get(page).await.status, 404, "GET {page}");
    }
    let actions = [
        format!("{base}/domain/check"),
        format!("{base}/test-accounts"),
        format!("{base}/capabilities/expanded_messaging"),
        format!("{base}/secret"),
        format!("{base}/webhooks/{endpoint_id}/test"),
        format!("{base}/webhooks/{endpoint_id}/secret"),
        format!("{base}/webhooks/{endpoint_id}/enable"),
        format!("{base}/webhooks/{endpoint_id}/events"),
        format!("{base}/webhook-deliveries/x.{endpoint_id}/retry"),
    ];
    for action in &actions {
        let a = other
            .post(
                action,
                &[
                    ("emails", "x@y.example"),
                    ("reason", "r"),
                    ("events", "webhook.test"),
                ],
            )
            .await;
        assert_eq!(a.status, 404, "POST {action}");
    }
    let before = audit(&app, &p, &client_id).await.len();
    // A person of no partner: no access.
    app.create_user("nobody@example.com", "Nobody").await;
    let nobody = Console::sign_in(&app, "nobody@example.com").await;
    assert_eq!(nobody.get(&pages[0]).await.status, 403);
    // Signed out: to sign-in.
    let anon = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = anon.get(app.url(&pages[1])).send().await.unwrap();
    assert_eq!(res.status(), 303);

    // The developer reads every page and acts.
    let dev = Console::sign_in(&app, DEVELOPER).await;
    for page in &pages {
        dev.page(page).await;
    }
    let a = dev.post(&format!("{base}/secret"), &[]).await;
    assert_eq!(a.status, 200);
    assert_eq!(
        audit(&app, &p, &client_id).await.len(),
        before + 1,
        "nothing else was done"
    );
    // An endpoint of another app of the same partner is not this app's.
    let (second, _) = new_app(&app, &p, "confidential").await;
    assert_eq!(
        dev.get(&format!("/partner/apps/{second}/webhooks/{endpoint_id}"))
            .await
            .status,
        404
    );
    assert_eq!(
        dev.post(
            &format!("/partner/apps/{second}/webhooks/{endpoint_id}/test"),
            &[]
        )
        .await
        .status,
        404
    );
}

async fn a_form_without_the_csrf_token_changes_nothing(backend: Backend) {
    let (app, p, published) = program(backend).await;
    let (client_id, _) = app_in_preview(&app, &p, &published).await;
    let receiver = Receiver::start().await;
    let endpoint_id = endpoint_on(&app, &client_id, &receiver).await;
    let owner = Console::sign_in(&app, OWNER).await;
    let before = audit(&app, &p, &client_id).await.len();
    let base = format!("/partner/apps/{client_id}");
    for (action, fields) in [
        (format!("{base}/domain/check"), vec![]),
        (
            format!("{base}/test-accounts"),
            vec![("emails", "a@b.example")],
        ),
        (
            format!("{base}/capabilities/expanded_messaging"),
            vec![("reason", "because")],
        ),
        (format!("{base}/secret"), vec![]),
        (format!("{base}/webhooks/{endpoint_id}/test"), vec![]),
        (format!("{base}/webhooks/{endpoint_id}/secret"), vec![]),
        (format!("{base}/webhooks/{endpoint_id}/enable"), vec![]),
        (
            format!("{base}/webhooks/{endpoint_id}/events"),
            vec![("events", "webhook.test")],
        ),
    ] {
        let res = owner
            .browser
            .post(app.url(&action))
            .form(&fields)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "POST {action}");
        let html = res.text().await.unwrap();
        assert!(html.contains("This form has expired"), "{html}");
        // A wrong token is refused too.
        let mut with_wrong = fields.clone();
        with_wrong.push(("csrf_token", "not-the-token"));
        let res = owner
            .browser
            .post(app.url(&action))
            .form(&with_wrong)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "POST {action} with a wrong token");
    }
    assert_eq!(
        audit(&app, &p, &client_id).await.len(),
        before,
        "nothing was done"
    );
    let (_, v) = partner_api::get(
        &app,
        &format!("/api/v1/apps/{client_id}/webhooks/{endpoint_id}"),
        &p.partner_key,
    )
    .await;
    assert!(v["previous_secret_valid_until"].is_null(), "{v}");
    assert_ne!(v["events"], json!(["webhook.test"]));
    let (_, log) = partner_api::get(
        &app,
        &format!("/api/v1/apps/{client_id}/webhooks/{endpoint_id}/deliveries"),
        &p.partner_key,
    )
    .await;
    assert_eq!(log, json!([]));
}

async fn every_action_is_in_the_audit_log_with_the_person_who_did_it(backend: Backend) {
    let (app, p, published) = program(backend).await;
    let (client_id, _) = new_app(&app, &p, "confidential").await;
    let owner = Console::sign_in(&app, OWNER).await;
    let dev = Console::sign_in(&app, DEVELOPER).await;
    let base = format!("/partner/apps/{client_id}");
    let token = code(&owner.page(&format!("{base}/domain")).await, "domain-token");
    owner.post(&format!("{base}/domain/check"), &[]).await;
    *published.lock().unwrap() = token;
    owner
        .post_and_follow(&format!("{base}/domain/check"), &[])
        .await;
    owner
        .post_and_follow(
            &format!("{base}/test-accounts"),
            &[("emails", "t@partner.example")],
        )
        .await;
    dev.post_and_follow(
        &format!("{base}/capabilities/expanded_messaging"),
        &[("reason", "SMS reminders")],
    )
    .await;
    assert_eq!(dev.post(&format!("{base}/secret"), &[]).await.status, 200);
    let receiver = Receiver::start().await;
    let endpoint_id = endpoint_on(&app, &client_id, &receiver).await;
    let ep = format!("{base}/webhooks/{endpoint_id}");
    receiver.answer(410);
    dev.post_and_follow(&format!("{ep}/test"), &[]).await;
    page_says(&dev, &ep, "Failed webhook.test").await;
    dev.post_and_follow(&format!("{ep}/enable"), &[]).await;
    dev.post_and_follow(&format!("{ep}/events"), &[("events", "webhook.test")])
        .await;
    assert_eq!(dev.post(&format!("{ep}/secret"), &[]).await.status, 200);
    let (_, log) = partner_api::get(
        &app,
        &format!("/api/v1/apps/{client_id}/webhooks/{endpoint_id}/deliveries"),
        &p.partner_key,
    )
    .await;
    let delivery_id = log[0]["delivery_id"].as_str().unwrap().to_string();
    dev.post_and_follow(
        &format!("{base}/webhook-deliveries/{delivery_id}/retry"),
        &[],
    )
    .await;

    let owner_actor = format!(
        "partner:{}/user:{}",
        p.partner_id,
        user_id(&app, OWNER).await
    );
    let dev_actor = format!(
        "partner:{}/user:{}",
        p.partner_id,
        user_id(&app, DEVELOPER).await
    );
    let entries = audit(&app, &p, &client_id).await;
    let by = |action: &str| -> Vec<String> {
        entries
            .iter()
            .filter(|e| e["action"] == action)
            .map(|e| e["actor"].as_str().unwrap_or_default().to_string())
            .collect()
    };
    assert_eq!(
        by("domain.verification_failed"),
        std::slice::from_ref(&owner_actor)
    );
    assert_eq!(by("domain.verified"), std::slice::from_ref(&owner_actor));
    assert_eq!(
        by("app.test_accounts_set"),
        std::slice::from_ref(&owner_actor)
    );
    for action in [
        "capability.requested",
        "app.secret_rotated",
        "webhook.test_sent",
        "webhook.enabled",
        "webhook.events_set",
        "webhook.secret_rotated",
        "webhook.delivery_retried",
    ] {
        assert_eq!(
            by(action),
            std::slice::from_ref(&dev_actor),
            "{action}: {entries:?}"
        );
    }
    let events_set = entries
        .iter()
        .find(|e| e["action"] == "webhook.events_set")
        .unwrap();
    assert_eq!(
        events_set["detail"]["events"],
        json!(["webhook.test"]),
        "{events_set}"
    );
}

/// Every operating page at phone and desktop widths: axe-core finds no WCAG 2.2 AA violation.
#[tokio::test]
async fn the_operating_pages_read_well_at_phone_and_desktop_widths_and_pass_axe() {
    if !browser_available() {
        return;
    }
    let (app, p, published) = program(backends()[0]).await;
    let (client_id, _) = app_in_preview(&app, &p, &published).await;
    let receiver = Receiver::start().await;
    let endpoint_id = endpoint_on(&app, &client_id, &receiver).await;
    partner_api::put(
        &app,
        &format!("/api/v1/apps/{client_id}/test-accounts"),
        &p.partner_key,
        json!({ "emails": ["tester@partner.example"] }),
    )
    .await;
    partner_api::post(
        &app,
        &format!("/api/v1/apps/{client_id}/capabilities/expanded_messaging"),
        &p.partner_key,
        json!({ "justification": "Trip reminders by SMS." }),
    )
    .await;
    endpoints::send_test(
        &app.state.db,
        None,
        &client_id,
        &endpoint_id,
        app.clock_now(),
    )
    .await
    .unwrap();
    receiver.next_of("webhook.test", 0).await;

    let driver = Chromedriver::start();
    let browser = driver.browser().await;
    let base = format!("/partner/apps/{client_id}");
    browser
        .goto(&app.url(&format!("/login?next={base}/domain")))
        .await
        .unwrap();
    type_into(&browser, "#email", DEVELOPER).await;
    type_into(&browser, "#password", PASSWORD).await;
    click(&browser, "button[type=submit]").await;
    element(&browser, "#domain-token").await;
    shoot_and_check(&browser, "console-domain").await;
    // A failed check, in words.
    *published.lock().unwrap() = String::new();
    click(&browser, r#"form[action$="/domain/check"] button"#).await;
    element(&browser, ".check-failed").await;
    shoot_and_check(&browser, "console-domain-failed").await;

    for (page, name, ready) in [
        ("/launch", "console-launch", "#emails"),
        (
            "/capabilities",
            "console-capabilities",
            "#capability-expanded_messaging",
        ),
        ("/secret", "console-secret", "#overlap_seconds"),
        ("/webhooks", "console-webhooks", ".endpoints"),
    ] {
        browser
            .goto(&app.url(&format!("{base}{page}")))
            .await
            .unwrap();
        element(&browser, ready).await;
        shoot_and_check(&browser, name).await;
    }
    // A refused test-accounts form: the error at its field.
    browser
        .goto(&app.url(&format!("{base}/launch")))
        .await
        .unwrap();
    type_into(&browser, "#emails", "\nnot an address").await;
    click(&browser, r#"form[action$="/test-accounts"] button"#).await;
    element(&browser, "#emails-error").await;
    shoot_and_check(&browser, "console-launch-error").await;
    // A rotated secret, shown once.
    browser
        .goto(&app.url(&format!("{base}/secret")))
        .await
        .unwrap();
    click(&browser, r#"form[action$="/secret"] button"#).await;
    element(&browser, "#client-secret").await;
    shoot_and_check(&browser, "console-secret-rotated").await;
    // The endpoint with its deliveries.
    browser
        .goto(&app.url(&format!("{base}/webhooks/{endpoint_id}")))
        .await
        .unwrap();
    element(&browser, "#deliveries").await;
    shoot_and_check(&browser, "console-webhook-endpoint").await;
    click(&browser, r#"form[action$="/secret"] button"#).await;
    element(&browser, "#webhook-secret").await;
    shoot_and_check(&browser, "console-webhook-secret").await;

    // An app whose webhooks review step approved a URL: the set-up form, and the new endpoint
    // with its secret shown once.
    let mut draft = partner_api::good_draft();
    draft["name"] = json!("Hook Buddy");
    draft["webhooks"] = json!(["https://hooks.app.example/onyx"]);
    let (_, v) = partner_api::post(&app, "/api/v1/apps", &p.partner_key, draft).await;
    let hooked = v["client_id"].as_str().unwrap().to_string();
    partner_api::post(
        &app,
        &format!("/api/v1/apps/{hooked}/submit"),
        &p.partner_key,
        json!({}),
    )
    .await;
    let (status, v) = decide(&app, &p.op_key, &hooked, "webhooks", "approved").await;
    assert_eq!(status, 200, "{v}");
    browser
        .goto(&app.url(&format!("/partner/apps/{hooked}/webhooks")))
        .await
        .unwrap();
    element(&browser, ".endpoint-add").await;
    shoot_and_check(&browser, "console-webhook-set-up").await;
    click(&browser, ".endpoint-add button[type=submit]").await;
    element(&browser, "#webhook-secret").await;
    shoot_and_check(&browser, "console-webhook-created").await;
}
