//! The review console: an operator reads the queue (oldest first, counts per step, filtered by
//! step), opens an app's review (every step with its fields, the diff against its last
//! approval, its findings) and decides a step on the draft version shown; sets capabilities,
//! access and trust level; reads the app's audit log. Refusals are shown at the form with what
//! was typed; only operators get in, re-checked at every request; every form needs the CSRF
//! token.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::browser::*;
use crate::support::console::*;
use crate::support::partner_api;

on_each_backend!(
    the_queue_lists_open_reviews_oldest_first_with_counts_and_filters_by_step,
    an_operator_approves_a_step_with_the_form_and_the_api_shows_it_with_the_console_actor,
    changes_requested_without_a_note_is_refused_at_the_form_with_what_was_typed_kept,
    a_decision_on_a_draft_that_changed_since_the_page_was_read_is_refused_in_words,
    the_diff_shows_the_approved_and_the_draft_value_of_a_field_changed_since_approval,
    capabilities_access_and_trust_level_are_set_from_the_apps_review_and_take_effect_at_once,
    the_audit_log_lists_the_decisions_with_the_console_actor_a_page_at_a_time,
    only_operators_get_in_and_a_revoked_operator_is_refused_on_the_next_request,
    a_form_without_the_csrf_token_is_refused_and_changes_nothing,
);

/// A partner app with a good draft, submitted for review; returns its client id.
async fn submitted(app: &TestApp, p: &Program, name: &str) -> String {
    let mut draft = partner_api::good_draft();
    draft["name"] = json!(name);
    let (status, created) = partner_api::post(app, "/api/v1/apps", &p.partner_key, draft).await;
    assert_eq!(status, 201, "{created}");
    let cid = created["client_id"].as_str().unwrap().to_string();
    let (status, v) = partner_api::post(
        app,
        &format!("/api/v1/apps/{cid}/submit"),
        &p.partner_key,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    cid
}

async fn operator_console(app: &TestApp) -> (Console, String) {
    let op = Console::sign_in(app, OPERATOR).await;
    let uid: String = sqlx::query_scalar("SELECT id FROM users WHERE email = $1")
        .bind(OPERATOR)
        .fetch_one(app.sql().await)
        .await
        .unwrap();
    (op, uid)
}

/// The HTML of `<section id="step-{step}">`.
fn step_section<'a>(html: &'a str, step: &str) -> &'a str {
    let start = html
        .find(&format!(r#"<section id="step-{step}""#))
        .unwrap_or_else(|| panic!("the page has the {step} step: {html}"));
    let end = html[start..].find("</section>").unwrap() + start;
    &html[start..end]
}

async fn review_of(app: &TestApp, p: &Program, cid: &str) -> Value {
    let (_, v) = partner_api::get(app, &format!("/api/v1/operator/apps/{cid}"), &p.op_key).await;
    v["review"].clone()
}

fn step_of<'a>(review: &'a Value, step: &str) -> &'a Value {
    review["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == step)
        .unwrap()
}

async fn the_queue_lists_open_reviews_oldest_first_with_counts_and_filters_by_step(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let first = submitted(&app, &p, "First Trips").await;
    app.clock.advance(60);
    let second = submitted(&app, &p, "Second Trips").await;
    let (status, v) =
        partner_api::decide(&app, &p.op_key, &first, "app_identity", "approved").await;
    assert_eq!(status, 200, "{v}");

    let (op, _) = operator_console(&app).await;
    let html = op.page("/review").await;
    let text = words(&html);
    let (a, b) = (
        html.find(&format!("review-{first}"))
            .expect("the first app is listed"),
        html.find(&format!("review-{second}"))
            .expect("the second app is listed"),
    );
    assert!(a < b, "oldest first: {text}");
    assert!(text.contains("Buddy Ltd"), "the partner is named: {text}");
    assert!(
        text.contains("First Trips") && text.contains("Second Trips"),
        "{text}"
    );
    assert!(text.contains("Every open review (2)"), "{text}");
    assert!(text.contains("App identity (1)"), "{text}");
    assert!(text.contains("Company (2)"), "{text}");
    assert!(
        html.contains(r#"<a href="/review" aria-current="true">"#),
        "{html}"
    );

    let html = op.page("/review?step=app_identity").await;
    assert!(
        !html.contains(&format!("review-{first}")),
        "approved there: {html}"
    );
    assert!(html.contains(&format!("review-{second}")), "{html}");
    assert!(
        html.contains(r#"<a href="/review?step=app_identity" aria-current="true">"#),
        "{html}"
    );
    assert!(words(&html).contains("Waiting on App identity"), "{html}");

    let a = op.get("/review?step=nonsense").await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.html);
    assert!(
        words(&a.html).contains("can be filtered by one of these steps"),
        "{}",
        a.html
    );
}

async fn an_operator_approves_a_step_with_the_form_and_the_api_shows_it_with_the_console_actor(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let cid = submitted(&app, &p, "Travel Buddy").await;
    let (op, uid) = operator_console(&app).await;
    let html = op.page(&format!("/review/apps/{cid}")).await;
    let section = step_section(&html, "app_identity");
    assert!(
        section.contains(&format!(
            r#"action="/review/apps/{cid}/steps/app_identity""#
        )),
        "{section}"
    );
    for value in [
        "approved",
        "changes_requested",
        "rejected",
        "not_applicable",
    ] {
        assert!(
            section.contains(&format!(r#"id="app_identity-state-{value}""#)),
            "{value}: {section}"
        );
    }
    assert!(section.contains(r#"id="app_identity-note""#), "{section}");
    assert!(
        words(section).contains("Travel Buddy"),
        "the draft's name: {section}"
    );
    assert!(
        words(section).contains("never approved"),
        "no approval to compare with: {section}"
    );
    let version = hidden_field(section, "draft_version");

    let (to, html) = op
        .post_and_follow(
            &format!("/review/apps/{cid}/steps/app_identity"),
            &[
                ("state", "approved"),
                ("note", "Name and words are fine."),
                ("draft_version", &version),
            ],
        )
        .await;
    assert_eq!(
        to,
        format!("/review/apps/{cid}?done=decided#step-app_identity")
    );
    assert!(words(&html).contains("The decision was recorded"), "{html}");
    assert!(
        words(step_section(&html, "app_identity")).contains("Approved"),
        "{html}"
    );

    let review = review_of(&app, &p, &cid).await;
    let step = step_of(&review, "app_identity");
    assert_eq!(step["state"], "approved", "{review}");
    assert_eq!(
        step["reviewer"],
        format!("operator:{uid}/console"),
        "{review}"
    );
    assert_eq!(step["note"], "Name and words are fine.", "{review}");
}

async fn changes_requested_without_a_note_is_refused_at_the_form_with_what_was_typed_kept(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let cid = submitted(&app, &p, "Travel Buddy").await;
    let (op, _) = operator_console(&app).await;
    let html = op.page(&format!("/review/apps/{cid}")).await;
    let version = hidden_field(&html, "draft_version");
    let a = op
        .post(
            &format!("/review/apps/{cid}/steps/use_case"),
            &[
                ("state", "changes_requested"),
                ("note", "   "),
                ("draft_version", &version),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.html);
    let section = step_section(&a.html, "use_case");
    assert!(section.contains(r#"id="use_case-note-error""#), "{section}");
    assert!(words(section).contains("a note is required"), "{section}");
    assert!(section.contains(r#"aria-invalid="true""#), "{section}");
    assert!(
        section.contains(r#"id="use_case-state-changes_requested" checked"#),
        "the choice is kept: {section}"
    );
    // Another step's form is as it was.
    assert!(
        !step_section(&a.html, "scopes").contains("checked"),
        "{}",
        a.html
    );

    // A typed note is kept too when the decision is refused for another reason.
    let a = op
        .post(
            &format!("/review/apps/{cid}/steps/use_case"),
            &[
                ("note", "Say more about trips."),
                ("draft_version", &version),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.html);
    let section = step_section(&a.html, "use_case");
    assert!(words(section).contains("Choose a decision"), "{section}");
    assert!(
        section.contains("Say more about trips.</textarea>"),
        "{section}"
    );

    let review = review_of(&app, &p, &cid).await;
    assert_eq!(step_of(&review, "use_case")["state"], "pending", "{review}");
}

async fn a_decision_on_a_draft_that_changed_since_the_page_was_read_is_refused_in_words(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let cid = submitted(&app, &p, "Travel Buddy").await;
    let (op, _) = operator_console(&app).await;
    let html = op.page(&format!("/review/apps/{cid}")).await;
    let read_version = hidden_field(&html, "draft_version");

    let (status, v) = partner_api::patch(
        &app,
        &format!("/api/v1/apps/{cid}"),
        &p.partner_key,
        json!({ "description": "Plan trips with friends and family." }),
    )
    .await;
    assert_eq!(status, 200, "{v}");

    let a = op
        .post(
            &format!("/review/apps/{cid}/steps/app_identity"),
            &[
                ("state", "approved"),
                ("note", "Looks right."),
                ("draft_version", &read_version),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.html);
    let section = step_section(&a.html, "app_identity");
    let text = words(section);
    assert!(
        text.contains("The draft changed since you read it"),
        "{text}"
    );
    assert!(text.contains("Description changed"), "{text}");
    assert!(section.contains("Looks right.</textarea>"), "{section}");
    // The page now shows the new draft, and its version for the next decision.
    assert!(
        text.contains("Plan trips with friends and family."),
        "{text}"
    );
    let now_version = hidden_field(section, "draft_version");
    assert_ne!(now_version, read_version);

    let review = review_of(&app, &p, &cid).await;
    assert_eq!(
        step_of(&review, "app_identity")["state"],
        "pending",
        "{review}"
    );
    op.post_and_follow(
        &format!("/review/apps/{cid}/steps/app_identity"),
        &[("state", "approved"), ("draft_version", &now_version)],
    )
    .await;
}

async fn the_diff_shows_the_approved_and_the_draft_value_of_a_field_changed_since_approval(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let cid = submitted(&app, &p, "Travel Buddy").await;
    let (op, _) = operator_console(&app).await;
    let html = op.page(&format!("/review/apps/{cid}")).await;
    let version = hidden_field(&html, "draft_version");
    op.post_and_follow(
        &format!("/review/apps/{cid}/steps/app_identity"),
        &[("state", "approved"), ("draft_version", &version)],
    )
    .await;
    let html = op.page(&format!("/review/apps/{cid}")).await;
    assert!(
        words(step_section(&html, "app_identity")).contains("Nothing changed since"),
        "{html}"
    );

    // The partner renames the app: the step reopens, and its diff shows both names.
    let (status, v) = partner_api::patch(
        &app,
        &format!("/api/v1/apps/{cid}"),
        &p.partner_key,
        json!({ "name": "Trip Buddy" }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let html = op.page(&format!("/review/apps/{cid}")).await;
    let section = step_section(&html, "app_identity");
    assert!(
        section.contains(r#"<table class="list diff">"#),
        "{section}"
    );
    let text = words(section);
    assert!(text.contains("Waiting for a decision"), "reopened: {text}");
    assert!(
        text.contains("Name Before: Travel Buddy After: Trip Buddy"),
        "{text}"
    );
    assert!(
        !text.contains("Description Before:"),
        "unchanged fields are not in the diff: {text}"
    );
    // Other steps were never approved.
    assert!(
        words(step_section(&html, "scopes")).contains("never approved"),
        "{html}"
    );
    // The findings are shown in words, at their step.
    let (status, v) = partner_api::patch(
        &app,
        &format!("/api/v1/apps/{cid}"),
        &p.partner_key,
        json!({ "redirect_uris": ["http://app.example/callback"] }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let html = op.page(&format!("/review/apps/{cid}")).await;
    let section = step_section(&html, "redirect_uris");
    assert!(
        words(section).contains("Redirect URIs, line 1:"),
        "{section}"
    );
    assert!(
        !section.contains("redirect_uri_not_https"),
        "no codes: {section}"
    );
    // Approving a step with blocking findings is refused at its form.
    let version = hidden_field(section, "draft_version");
    let a = op
        .post(
            &format!("/review/apps/{cid}/steps/redirect_uris"),
            &[("state", "approved"), ("draft_version", &version)],
        )
        .await;
    assert_eq!(a.status, StatusCode::CONFLICT, "{}", a.html);
    assert!(
        words(step_section(&a.html, "redirect_uris")).contains("the partner must fix them first"),
        "{}",
        a.html
    );
}

async fn capabilities_access_and_trust_level_are_set_from_the_apps_review_and_take_effect_at_once(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    // An app registered by an operator can be opened too.
    let mut s = spec(&["openid", "profile", "email"]);
    s.grant_types = vec!["authorization_code".into(), "client_credentials".into()];
    let client = app.create_app_with(s).await;
    let cid = client.client_id.clone();
    let (op, uid) = operator_console(&app).await;
    let html = op.page(&format!("/review/apps/{cid}")).await;
    assert!(
        words(&html).contains("has not been submitted for review"),
        "{html}"
    );
    assert!(
        html.contains(&format!(r#"action="/review/apps/{cid}/access""#)),
        "{html}"
    );
    assert_eq!(
        client_credentials(&app, &client, "grants:read").await.0,
        200
    );

    // A capability.
    let (to, html) = op
        .post_and_follow(
            &format!("/review/apps/{cid}/capabilities/expanded_messaging"),
            &[
                ("state", "gated"),
                ("reason", "market_not_launched"),
                ("note", "Not in this market yet."),
            ],
        )
        .await;
    assert!(to.ends_with("#capability-expanded_messaging"), "{to}");
    assert!(
        words(&html).contains(
            "Onyx holds expanded messaging back for this app for now: Not in this market yet."
        ),
        "{html}"
    );
    let a = op
        .post(
            &format!("/review/apps/{cid}/capabilities/expanded_messaging"),
            &[
                ("state", "enabled"),
                ("reason", "Not A Code"),
                ("note", "kept"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.html);
    assert!(
        a.html.contains(r#"id="cap-expanded_messaging-error""#),
        "{}",
        a.html
    );
    assert!(a.html.contains(r#"value="Not A Code""#), "{}", a.html);

    // A limit withdraws a scope at once; a limit without one is refused at its field.
    let a = op
        .post(
            &format!("/review/apps/{cid}/access"),
            &[
                ("state", "limited"),
                ("reason", "operator_decision"),
                ("note", "n"),
            ],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.html);
    assert!(
        a.html.contains(r#"id="access-withdrawn-error""#),
        "{}",
        a.html
    );
    assert!(
        a.html.contains(r#"id="access-state-limited" checked"#),
        "{}",
        a.html
    );
    let (_, html) = op
        .post_and_follow(
            &format!("/review/apps/{cid}/access"),
            &[
                ("state", "limited"),
                ("reason", "scopes_revoked"),
                ("withdrawn", "grants:read"),
                ("note", "Until the audit ends."),
            ],
        )
        .await;
    assert!(words(&html).contains("Access: Limited"), "{html}");
    assert!(
        words(&html).contains("Access this app relied on was revoked."),
        "{html}"
    );
    assert_ne!(
        client_credentials(&app, &client, "grants:read").await.0,
        200
    );

    // A suspension: the token endpoint refuses the very next request.
    op.post_and_follow(
        &format!("/review/apps/{cid}/access"),
        &[
            ("state", "suspended"),
            ("reason", "abuse_review"),
            ("note", "Reports of spam."),
        ],
    )
    .await;
    let (status, v) = client_credentials(&app, &client, "openid").await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["access_state"], "suspended", "{v}");

    // A restore clears the operator's causes.
    let (_, html) = op
        .post_and_follow(
            &format!("/review/apps/{cid}/access"),
            &[("state", "active")],
        )
        .await;
    assert!(words(&html).contains("Access: Active"), "{html}");
    assert_eq!(
        client_credentials(&app, &client, "grants:read").await.0,
        200
    );

    // The trust level.
    let (_, html) = op
        .post_and_follow(
            &format!("/review/apps/{cid}/trust-level"),
            &[("trust_level", "verified")],
        )
        .await;
    assert!(words(&html).contains("Now: Verified"), "{html}");
    let a = op
        .post(
            &format!("/review/apps/{cid}/trust-level"),
            &[("trust_level", "godlike")],
        )
        .await;
    assert_eq!(a.status, StatusCode::BAD_REQUEST, "{}", a.html);
    assert!(a.html.contains(r#"id="trust_level-error""#), "{}", a.html);

    let (_, shown) =
        partner_api::get(&app, &format!("/api/v1/operator/apps/{cid}"), &p.op_key).await;
    assert_eq!(shown["trust_level"], "verified", "{shown}");
    assert_eq!(shown["access"]["state"], "active", "{shown}");
    let (_, log) = partner_api::get(
        &app,
        &format!("/api/v1/operator/audit?client_id={cid}"),
        &p.op_key,
    )
    .await;
    let actor = format!("operator:{uid}/console");
    for action in [
        "capability.set",
        "access.limited",
        "access.suspended",
        "app.trust_level_set",
    ] {
        assert!(
            log["entries"]
                .as_array()
                .unwrap()
                .iter()
                .any(|e| e["action"] == action && e["actor"] == actor),
            "{action}: {log}"
        );
    }

    // An unknown app is the not-found page.
    let a = op.get("/review/apps/no-such-app").await;
    assert_eq!(a.status, StatusCode::NOT_FOUND, "{}", a.html);
}

async fn the_audit_log_lists_the_decisions_with_the_console_actor_a_page_at_a_time(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let cid = submitted(&app, &p, "Travel Buddy").await;
    let (op, uid) = operator_console(&app).await;
    let html = op.page(&format!("/review/apps/{cid}")).await;
    let version = hidden_field(&html, "draft_version");
    op.post_and_follow(
        &format!("/review/apps/{cid}/steps/company"),
        &[
            ("state", "approved"),
            ("note", "Known partner."),
            ("draft_version", &version),
        ],
    )
    .await;
    let text = words(&op.page(&format!("/review/apps/{cid}")).await);
    assert!(
        text.contains(&format!(
            "by {OPERATOR} (operator), in the review console on"
        )),
        "the step's reviewer in words: {text}"
    );
    let html = op.page(&format!("/review/apps/{cid}/audit")).await;
    let text = words(&html);
    assert!(text.contains("Review step decided"), "{text}");
    // Who, in words (an account by its email, a key by its partner and name), beside the
    // actor as stored.
    assert!(
        text.contains(&format!(
            "By {OPERATOR} (operator), in the review console operator:{uid}/console"
        )),
        "{text}"
    );
    assert!(text.contains("By Buddy Ltd, with the API key"), "{text}");
    assert!(text.contains("step: company"), "{text}");
    assert!(text.contains("Submitted for review"), "{text}");
    assert!(!html.contains(r#"class="pager""#), "one page: {html}");

    for i in 0..55 {
        let level = if i % 2 == 0 { "verified" } else { "basic" };
        let a = op
            .post(
                &format!("/review/apps/{cid}/trust-level"),
                &[("trust_level", level)],
            )
            .await;
        assert_eq!(a.status, StatusCode::SEE_OTHER, "{}", a.html);
    }
    // 1 creation, 1 submission, 1 decision, 55 trust levels: 58 entries, 50 on the first page.
    let html = op.page(&format!("/review/apps/{cid}/audit")).await;
    assert!(words(&html).contains("Showing 1–50 of 58"), "{html}");
    assert_eq!(html.matches("Trust level set").count(), 50, "newest first");
    assert!(
        html.contains(&format!(r#"href="/review/apps/{cid}/audit?page=2""#)),
        "{html}"
    );
    let html = op.page(&format!("/review/apps/{cid}/audit?page=2")).await;
    let text = words(&html);
    assert!(text.contains("Showing 51–58 of 58"), "{text}");
    assert!(
        text.contains("Review step decided") && text.contains("App registered"),
        "{text}"
    );
    // The API's log is unchanged: newest first, its own limit.
    let (_, log) = partner_api::get(
        &app,
        &format!("/api/v1/operator/audit?client_id={cid}&limit=3"),
        &p.op_key,
    )
    .await;
    assert_eq!(log["entries"].as_array().unwrap().len(), 3, "{log}");
    assert_eq!(log["entries"][0]["action"], "app.trust_level_set", "{log}");
}

async fn only_operators_get_in_and_a_revoked_operator_is_refused_on_the_next_request(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let cid = submitted(&app, &p, "Travel Buddy").await;
    let owner = Console::sign_in(&app, OWNER).await;
    let gets = [
        "/review".to_string(),
        "/review?step=company".to_string(),
        format!("/review/apps/{cid}"),
        format!("/review/apps/{cid}/audit"),
        "/review/apps/no-such-app".to_string(),
    ];
    for path in &gets {
        let a = owner.get(path).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.html);
        assert!(words(&a.html).contains("No access"), "{path}: {}", a.html);
    }
    let posts: [(String, Vec<(&str, &str)>); 4] = [
        (
            format!("/review/apps/{cid}/steps/company"),
            vec![("state", "approved"), ("draft_version", "1")],
        ),
        (
            format!("/review/apps/{cid}/capabilities/expanded_messaging"),
            vec![("state", "enabled")],
        ),
        (
            format!("/review/apps/{cid}/access"),
            vec![("state", "suspended"), ("reason", "abuse_review")],
        ),
        (
            format!("/review/apps/{cid}/trust-level"),
            vec![("trust_level", "trusted")],
        ),
    ];
    for (path, fields) in &posts {
        let a = owner.post(path, fields).await;
        assert_eq!(a.status, StatusCode::FORBIDDEN, "{path}: {}", a.html);
    }
    let (_, shown) =
        partner_api::get(&app, &format!("/api/v1/operator/apps/{cid}"), &p.op_key).await;
    assert_eq!(shown["access"]["state"], "active", "{shown}");
    assert_eq!(shown["trust_level"], "basic", "{shown}");
    assert_eq!(
        step_of(&shown["review"], "company")["state"],
        "pending",
        "{shown}"
    );

    // Signed out: to the sign-in page, and back here after.
    let anonymous = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let res = anonymous.get(app.url("/review")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(res.headers()).contains("/login?next=/review"));

    // An operator whose role is taken away is refused on their next request.
    let (op, _) = operator_console(&app).await;
    op.page("/review").await;
    sqlx::query("UPDATE users SET operator = 0 WHERE email = $1")
        .bind(OPERATOR)
        .execute(app.sql().await)
        .await
        .unwrap();
    assert_eq!(op.get("/review").await.status, StatusCode::FORBIDDEN);
    let a = op.get(&format!("/review/apps/{cid}")).await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
    let a = op
        .post(
            &format!("/review/apps/{cid}/trust-level"),
            &[("trust_level", "trusted")],
        )
        .await;
    assert_eq!(a.status, StatusCode::FORBIDDEN);
}

async fn a_form_without_the_csrf_token_is_refused_and_changes_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = Program::start(&app).await;
    let cid = submitted(&app, &p, "Travel Buddy").await;
    let (op, _) = operator_console(&app).await;
    let html = op.page(&format!("/review/apps/{cid}")).await;
    let version = hidden_field(&html, "draft_version");
    let posts: [(String, Vec<(&str, &str)>); 4] = [
        (
            format!("/review/apps/{cid}/steps/company"),
            vec![("state", "approved"), ("draft_version", &version)],
        ),
        (
            format!("/review/apps/{cid}/capabilities/expanded_messaging"),
            vec![("state", "enabled")],
        ),
        (
            format!("/review/apps/{cid}/access"),
            vec![("state", "suspended"), ("reason", "abuse_review")],
        ),
        (
            format!("/review/apps/{cid}/trust-level"),
            vec![("trust_level", "trusted")],
        ),
    ];
    for (path, fields) in &posts {
        for token in [None, Some("not-the-token")] {
            let mut form: Vec<(&str, &str)> = fields.clone();
            if let Some(t) = token {
                form.push(("csrf_token", t));
            }
            let res = op
                .browser
                .post(app.url(path))
                .form(&form)
                .send()
                .await
                .unwrap();
            assert!(
                res.status().is_client_error(),
                "{path} with {token:?}: {}",
                res.status()
            );
        }
    }
    let (_, shown) =
        partner_api::get(&app, &format!("/api/v1/operator/apps/{cid}"), &p.op_key).await;
    assert_eq!(shown["access"]["state"], "active", "{shown}");
    assert_eq!(shown["trust_level"], "basic", "{shown}");
    assert_eq!(
        step_of(&shown["review"], "company")["state"],
        "pending",
        "{shown}"
    );
    assert_eq!(
        shown["capabilities"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["capability"] == "expanded_messaging")
            .unwrap()["state"],
        "unavailable",
        "{shown}"
    );
}

/// The queue, an app's review with findings and a diff, and its audit log, in a real browser:
/// axe finds nothing, and the screenshots at 390 and 1280 px are looked at.
#[tokio::test]
async fn the_review_console_reads_well_at_phone_and_desktop_widths_and_passes_axe() {
    if !browser_available() {
        return;
    }
    let app = spawn_app(backends()[0]).await;
    let p = Program::start(&app).await;
    let cid = submitted(&app, &p, "Travel Buddy").await;
    app.clock.advance(3600);
    submitted(&app, &p, "Weekend Planner").await;
    for step in ["company", "app_identity"] {
        let (status, v) = partner_api::decide(&app, &p.op_key, &cid, step, "approved").await;
        assert_eq!(status, 200, "{v}");
    }
    // A rename reopens app identity (a diff); a plain-http redirect URI is a finding.
    let (status, v) = partner_api::patch(
        &app,
        &format!("/api/v1/apps/{cid}"),
        &p.partner_key,
        json!({
            "name": "Trip Buddy",
            "redirect_uris": ["http://app.example/callback", "https://app.example/callback"],
        }),
    )
    .await;
    assert_eq!(status, 200, "{v}");

    let driver = Chromedriver::start();
    let browser = driver.browser().await;
    browser.goto(&app.url("/login?next=/review")).await.unwrap();
    type_into(&browser, "#email", OPERATOR).await;
    type_into(&browser, "#password", PASSWORD).await;
    click(&browser, "button[type=submit]").await;
    element(&browser, "nav.step-filters").await;
    shoot_and_check(&browser, "console-review-queue").await;

    browser
        .goto(&app.url(&format!("/review/apps/{cid}")))
        .await
        .unwrap();
    element(&browser, "#step-app_identity table.diff").await;
    element(&browser, "#step-redirect_uris ul.findings").await;
    shoot_and_check(&browser, "console-review-app").await;
    // The forms below the steps: capabilities, access and trust level.
    shoot_at(&browser, "#capabilities", "console-review-app-capabilities").await;
    shoot_at(&browser, "#access", "console-review-app-access").await;

    // A refused decision, with its error at the form.
    click(&browser, "#use_case-state-changes_requested").await;
    click(&browser, "#step-use_case button[type=submit]").await;
    element(&browser, "#use_case-note-error").await;
    shoot_and_check(&browser, "console-review-app-refused").await;

    browser
        .goto(&app.url(&format!("/review/apps/{cid}/audit")))
        .await
        .unwrap();
    element(&browser, "table.audit").await;
    shoot_and_check(&browser, "console-review-audit").await;
}
