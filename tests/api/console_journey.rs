//! The partner program's whole journey in the consoles, in headless Chromium over WebDriver: a
//! partner owner signs in and creates an app with an unsafe redirect URI and sees the finding
//! next to the field; fixes it, verifies the domain against a loopback server and submits; an
//! operator approves step by step and asks for changes on one step with a note; the partner
//! reads the note, changes the draft and resubmits, and the operator approves; then preview, the
//! launch checklist and production. Also: a developer cannot open the keys page, and a member of
//! another partner gets "not found" for this partner's app.
//!
//! Screenshots of the pages on the way go to `target/test-artifacts/journey-*.png` (390 and
//! 1280 px, each checked with axe-core). With `ONYX_UPDATE_DOCS_SCREENSHOTS` set, the README's
//! screenshots in `docs/screenshots/` are refreshed from them.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fantoccini::{Client as Browser, Locator};
use serde_json::Value;

use crate::helpers::*;
use crate::support::browser::*;
use crate::support::console::{DEVELOPER, OPERATOR, OWNER, Program};
use crate::support::partner_api::{self, DOMAIN};

/// The README's screenshots: (artifact, the name it is kept under in `docs/screenshots/`).
const DOCS: [(&str, &str); 6] = [
    ("journey-partner-apps", "partner-apps"),
    ("journey-partner-finding", "partner-draft-finding"),
    ("journey-review-app", "review-app"),
    ("journey-partner-changes-requested", "partner-review-note"),
    ("journey-partner-launch", "partner-launch"),
    ("journey-review-queue", "review-queue"),
];

/// Clicks `css` and waits until the page shows `then` (a click does not wait for the
/// navigation it starts).
async fn click_then(browser: &Browser, css: &str, then: &str) {
    click(browser, css).await;
    element(browser, then).await;
}

/// Replaces what a field holds with `text`.
async fn fill(browser: &Browser, css: &str, text: &str) {
    let e = element(browser, css).await;
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

async fn text_of(browser: &Browser, css: &str) -> String {
    element(browser, css).await.text().await.unwrap()
}

async fn source(browser: &Browser) -> String {
    browser.source().await.unwrap()
}

/// Signs `email` in on the login page the browser is sent to from `path`, which it then shows.
async fn sign_in_at(app: &TestApp, browser: &Browser, path: &str, email: &str) {
    browser.goto(&app.url(path)).await.unwrap();
    type_into(browser, "#email", email).await;
    type_into(browser, "#password", PASSWORD).await;
    click(browser, "button[type=submit]").await;
    element(browser, "header.console").await;
}

/// The operator decides `step` on the app's review page, with `note`.
async fn decide(browser: &Browser, client_id: &str, step: &str, state: &str, note: &str) {
    let form = format!(r#"form[action="/review/apps/{client_id}/steps/{step}"]"#);
    click(browser, &format!("{form} #{step}-state-{state}")).await;
    fill(browser, &format!("{form} #{step}-note"), note).await;
    click(browser, &format!("{form} button[type=submit]")).await;
    // Back on the app's review page with the decision recorded.
    element(browser, r#"p.notice[role="status"]"#).await;
    let page = source(browser).await;
    assert!(
        !page.contains(r#"role="alert""#) || !page.contains(&format!("step-{step}")),
        "the decision on {step} was refused: {page}"
    );
}

async fn api_app(app: &TestApp, p: &Program, client_id: &str) -> Value {
    let (_, v) = partner_api::get(app, &format!("/api/v1/apps/{client_id}"), &p.partner_key).await;
    v
}

fn step_state(v: &Value, step: &str) -> String {
    v["review"]["steps"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["step"] == step))
        .and_then(|s| s["state"].as_str())
        .unwrap_or_default()
        .to_string()
}

#[tokio::test]
async fn a_partner_takes_an_app_from_draft_to_production_in_the_consoles() {
    if !browser_available() {
        return;
    }
    let published = Arc::new(Mutex::new(String::new()));
    let port = partner_api::publish(published.clone()).await;
    let app = partner_api::spawn_program(backends()[0], port).await;
    let p = Program::start(&app).await;
    let driver = Chromedriver::start();

    // 1. The owner signs in and creates an app with an unsafe redirect URI.
    let owner = driver.browser().await;
    sign_in_at(&app, &owner, "/partner", OWNER).await;
    assert!(source(&owner).await.contains("Buddy Ltd"));
    shoot_and_check(&owner, "journey-partner-apps").await;
    click_then(
        &owner,
        r#"a[href^="/partner/apps/new"]"#,
        r#"form[action="/partner/apps"]"#,
    )
    .await;
    fill(&owner, "#name", "Travel Buddy").await;
    fill(&owner, "#description", "Plan trips with friends.").await;
    element(&owner, "#use_case")
        .await
        .select_by_value("travel")
        .await
        .unwrap();
    fill(&owner, "#purpose", "Show your name on your bookings.").await;
    fill(
        &owner,
        "#consent_copy",
        "Travel Buddy never shares your details with airlines.",
    )
    .await;
    fill(&owner, "#domain", DOMAIN).await;
    fill(&owner, "#redirect_uris", "http://app.example/callback").await;
    fill(&owner, "#origins", "https://app.example").await;
    fill(&owner, "#support_url", "https://app.example/help").await;
    for scope in ["openid", "profile", "email"] {
        let b = element(&owner, &format!("#scope-{scope}")).await;
        if !b.is_selected().await.unwrap() {
            b.click().await.unwrap();
        }
    }
    click_then(
        &owner,
        r#"form[action="/partner/apps"] button[type=submit]"#,
        "#client-secret",
    )
    .await;
    let secret = text_of(&owner, "#client-secret").await;
    assert!(secret.len() >= 32, "the client secret is shown: {secret}");
    let edit = element(&owner, r#"a[href$="/edit"]"#).await;
    let href = edit.attr("href").await.unwrap().unwrap();
    let client_id = href
        .trim_start_matches("/partner/apps/")
        .trim_end_matches("/edit")
        .to_string();
    edit.click().await.unwrap();

    // The finding is next to the field, in words.
    let finding = text_of(&owner, "#redirect_uris-error").await;
    assert!(
        finding.contains("https") && !finding.contains("redirect_uri_not_https"),
        "a finding in words: {finding}"
    );
    let uris = element(&owner, "#redirect_uris").await;
    assert_eq!(
        uris.attr("aria-invalid").await.unwrap().as_deref(),
        Some("true")
    );
    shoot_and_check(&owner, "journey-partner-finding").await;

    // 2. They fix it, verify the domain and submit.
    fill(&owner, "#redirect_uris", REDIRECT).await;
    click_then(
        &owner,
        r#"button[name="action"][value="save"]"#,
        r#"p.notice[role="status"]"#,
    )
    .await;
    assert!(
        owner
            .find(Locator::Css("#redirect_uris-error"))
            .await
            .is_err(),
        "the finding is gone once fixed: {}",
        source(&owner).await
    );
    owner
        .goto(&app.url(&format!("/partner/apps/{client_id}/domain")))
        .await
        .unwrap();
    let token = text_of(&owner, "#domain-token").await;
    let url = text_of(&owner, "#domain-url").await;
    assert_eq!(
        url,
        format!("http://{DOMAIN}/.well-known/onyx-id-verification")
    );
    *published.lock().unwrap() = token.clone();
    click_then(
        &owner,
        r#"form[action$="/domain/check"] button"#,
        r#"p.notice[role="status"]"#,
    )
    .await;
    let v = api_app(&app, &p, &client_id).await;
    assert_eq!(v["domain_verification"]["verified_domain"], DOMAIN, "{v}");
    owner
        .goto(&app.url(&format!("/partner/apps/{client_id}/review")))
        .await
        .unwrap();
    // The review's steps are on the page only once it is submitted (the edit link, in the
    // app's navigation, is there before the click's navigation ends).
    click_then(&owner, r#"form[action$="/submit"] button"#, "#step-company").await;
    let v = api_app(&app, &p, &client_id).await;
    assert_eq!(step_state(&v, "company"), "pending", "submitted: {v}");

    // 3. The operator approves step by step, and asks for changes on the scopes.
    let operator = driver.browser().await;
    sign_in_at(&app, &operator, "/review", OPERATOR).await;
    let queue = source(&operator).await;
    assert!(queue.contains("Travel Buddy"), "{queue}");
    shoot_and_check(&operator, "journey-review-queue").await;
    click_then(
        &operator,
        &format!(r#"a[href="/review/apps/{client_id}"]"#),
        "#step-company",
    )
    .await;
    shoot_and_check(&operator, "journey-review-app").await;
    for step in [
        "company",
        "app_identity",
        "use_case",
        "domain",
        "redirect_uris",
        "support",
        "privacy_security",
    ] {
        decide(&operator, &client_id, step, "approved", "Checked.").await;
    }
    let note = "Email is not needed to show a name on bookings: remove it.";
    decide(&operator, &client_id, "scopes", "changes_requested", note).await;
    let v = api_app(&app, &p, &client_id).await;
    assert_eq!(step_state(&v, "scopes"), "changes_requested", "{v}");
    assert_eq!(step_state(&v, "redirect_uris"), "approved", "{v}");

    // 4. The partner reads the note, changes the draft and resubmits; the operator approves.
    owner
        .goto(&app.url(&format!("/partner/apps/{client_id}/review")))
        .await
        .unwrap();
    let page = source(&owner).await;
    assert!(page.contains(note), "the reviewer's note: {page}");
    shoot_and_check(&owner, "journey-partner-changes-requested").await;
    owner
        .goto(&app.url(&format!("/partner/apps/{client_id}/edit")))
        .await
        .unwrap();
    click(&owner, "#scope-email").await;
    click_then(
        &owner,
        r#"button[name="action"][value="save"]"#,
        r#"p.notice[role="status"]"#,
    )
    .await;
    owner
        .goto(&app.url(&format!("/partner/apps/{client_id}/review")))
        .await
        .unwrap();
    click(&owner, r#"form[action$="/submit"] button"#).await;
    // The click does not wait for its navigation: wait for the resubmission itself (the steps
    // are on the page before and after it), which the audit log records.
    let resubmitted = crate::support::wait::until(Duration::from_millis(50), || async {
        let (_, log) = partner_api::get(
            &app,
            &format!("/api/v1/operator/audit?client_id={client_id}"),
            &p.op_key,
        )
        .await;
        log["entries"]
            .as_array()
            .is_some_and(|e| e.iter().any(|e| e["action"] == "review.resubmitted"))
            .then_some(())
    })
    .await;
    assert!(resubmitted.is_some(), "the draft was resubmitted");
    let v = api_app(&app, &p, &client_id).await;
    assert_eq!(
        v["draft"]["scopes"],
        serde_json::json!(["openid", "profile"])
    );
    operator
        .goto(&app.url(&format!("/review/apps/{client_id}")))
        .await
        .unwrap();
    decide(&operator, &client_id, "scopes", "approved", "Thanks.").await;
    let v = api_app(&app, &p, &client_id).await;
    assert_eq!(v["stage"], "preview", "{v}");

    // 5. Preview: test accounts, the checklist, then production.
    app.create_user("tester@partner.example", "Tess Tester")
        .await;
    owner
        .goto(&app.url(&format!("/partner/apps/{client_id}/launch")))
        .await
        .unwrap();
    fill(&owner, "#emails", "tester@partner.example").await;
    click_then(
        &owner,
        r#"form[action$="/test-accounts"] button"#,
        r#"p.notice[role="status"]"#,
    )
    .await;
    // The app does what the checklist asks: a sign-in in preview and a revocation.
    let client = Client {
        client_id: client_id.clone(),
        client_secret: Some(secret.clone()),
    };
    let (code, verifier) =
        authorize_code(&app, &client_id, "tester@partner.example", "openid profile").await;
    let res = exchange(&app, &client, &code, &verifier).await;
    assert_eq!(res.status(), 200);
    let tokens: Value = res.json().await.unwrap();
    let res = http()
        .post(app.url("/revoke"))
        .basic_auth(&client_id, Some(&secret))
        .form(&[("token", tokens["access_token"].as_str().unwrap())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    owner.refresh().await.unwrap();
    let page = source(&owner).await;
    assert!(
        page.contains("A sign-in flow completed in preview"),
        "the checklist with its evidence: {page}"
    );
    shoot_and_check(&owner, "journey-partner-launch").await;
    operator
        .goto(&app.url(&format!("/review/apps/{client_id}")))
        .await
        .unwrap();
    decide(&operator, &client_id, "production", "approved", "Ready.").await;
    let v = api_app(&app, &p, &client_id).await;
    assert_eq!(v["stage"], "production", "{v}");
    owner
        .goto(&app.url(&format!("/partner/apps/{client_id}")))
        .await
        .unwrap();
    let page = source(&owner).await;
    assert!(page.contains("Production"), "{page}");

    // Isolation: a developer cannot open the keys page; another partner finds nothing.
    let dev = driver.browser().await;
    sign_in_at(&app, &dev, "/partner", DEVELOPER).await;
    dev.goto(&app.url(&format!("/partner/team/{}/keys", p.partner_id)))
        .await
        .unwrap();
    assert_eq!(text_of(&dev, "h1").await, "No access");
    p.other_partner(&app).await;
    let other = driver.browser().await;
    sign_in_at(&app, &other, "/partner", "other@other.example").await;
    other
        .goto(&app.url(&format!("/partner/apps/{client_id}")))
        .await
        .unwrap();
    assert_eq!(text_of(&other, "h1").await, "Not found");
    let page = source(&other).await;
    assert!(!page.contains("Travel Buddy"), "{page}");

    for b in [owner, operator, dev, other] {
        b.close().await.unwrap();
    }
    drop(driver);
    keep_docs_screenshots();
}

/// Copies the README's screenshots from this run into `docs/screenshots/` when asked to.
fn keep_docs_screenshots() {
    if std::env::var_os("ONYX_UPDATE_DOCS_SCREENSHOTS").is_none() {
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let docs = root.join("docs/screenshots");
    std::fs::create_dir_all(&docs).unwrap();
    for (artifact, name) in DOCS {
        for (suffix, out) in [("", ""), ("-390", "-390")] {
            let from = root.join(format!("target/test-artifacts/{artifact}{suffix}.png"));
            std::fs::copy(&from, docs.join(format!("{name}{out}.png")))
                .unwrap_or_else(|e| panic!("{}: {e}", from.display()));
        }
    }
}
