//! Attacks on the partner program that the security review found, each against the real
//! server on both backends: the grants API ignoring access state and `grants:read`, an approval
//! publishing an edit the reviewer never saw, access causes overwriting each other (and a
//! partner lifting an operator's limit), a lapsed domain still shown as verified, and CLI
//! changes missing from the audit log.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::cli::{one_json_object, onyx};
use crate::support::partner_api::{
    DOMAIN, app_in_preview_with, decide, draft_version, get, good_draft, operator_key, patch, post,
    publish, put, spawn_program,
};

on_each_backend!(
    a_suspended_app_is_refused_at_the_grants_api_and_a_limited_one_reads_with_its_state,
    the_grants_api_needs_grants_read_and_says_so_when_it_is_withdrawn,
    an_app_the_review_approved_holds_grants_read_and_reads_its_users_grants,
    an_approval_on_an_older_draft_version_is_refused_and_the_live_app_keeps_what_was_seen,
    the_cli_decides_a_step_only_on_the_draft_version_it_names,
    a_partner_re_verifying_its_domain_never_lifts_an_operators_limit,
    automatic_causes_stack_and_each_restore_clears_only_its_own,
    a_lapsed_domain_is_never_shown_as_verified_on_the_consent_screen_or_connected_apps,
    cli_changes_to_apps_users_grants_and_keys_are_in_the_audit_log,
);

/// Every grants API path for this user.
fn grants_paths(sub: &str) -> [(reqwest::Method, String); 3] {
    [
        (reqwest::Method::GET, format!("/api/v1/grants/{sub}")),
        (
            reqwest::Method::GET,
            format!("/api/v1/grants/{sub}/history"),
        ),
        (reqwest::Method::DELETE, format!("/api/v1/grants/{sub}")),
    ]
}

/// An app made with `apps create`, and a user who granted it openid, profile and email.
async fn app_with_a_grant(app: &TestApp) -> (Client, String) {
    let mut s = spec(&["openid", "profile", "email"]);
    s.grant_types = vec!["authorization_code".into(), "client_credentials".into()];
    let client = app.create_app_with(s).await;
    let sub = app.create_user("gil@example.com", "Gil").await;
    let (code, verifier) = authorize_code(
        app,
        &client.client_id,
        "gil@example.com",
        "openid profile email",
    )
    .await;
    assert_eq!(exchange(app, &client, &code, &verifier).await.status(), 200);
    (client, sub)
}

fn access_of(v: &Value) -> (String, String, Value) {
    (
        v["access"]["state"].as_str().unwrap_or("").to_string(),
        v["access"]["reason"].as_str().unwrap_or("").to_string(),
        v["access"]["withdrawn_scopes"].clone(),
    )
}

/// The (source, reason) of each cause the app's access lists.
fn causes(v: &Value) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v["access"]["causes"]
        .as_array()
        .unwrap_or_else(|| panic!("no causes in {v}"))
        .iter()
        .map(|c| {
            (
                c["source"].as_str().unwrap().to_string(),
                c["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    out.sort();
    out
}

// ---------------------------------------------------------------------------------------------
// Item 5: the grants API respects access state and grants:read
// ---------------------------------------------------------------------------------------------

async fn a_suspended_app_is_refused_at_the_grants_api_and_a_limited_one_reads_with_its_state(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let op = operator_key(&app, "reviewer@onyx.example").await;
    let (client, sub) = app_with_a_grant(&app).await;
    let access = format!("/api/v1/operator/apps/{}/access", client.client_id);
    let read = format!("/api/v1/grants/{sub}");

    let (status, g) = grants_api(&app, &client, reqwest::Method::GET, &read).await;
    assert_eq!(
        (status, g["access_state"].clone()),
        (StatusCode::OK, json!("active")),
        "{g}"
    );

    // Limited: it still reads its grants, and the answer says it is limited.
    let (status, v) = put(
        &app,
        &access,
        &op,
        json!({ "state": "limited", "reason": "region_withdrawn", "withdrawn_scopes": ["email"] }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (status, g) = grants_api(&app, &client, reqwest::Method::GET, &read).await;
    assert_eq!(status, 200, "{g}");
    assert_eq!(
        (g["access_state"].clone(), g["access_reason"].clone()),
        (json!("limited"), json!("region_withdrawn"))
    );
    let (status, h) = grants_api(
        &app,
        &client,
        reqwest::Method::GET,
        &format!("{read}/history"),
    )
    .await;
    assert_eq!(
        (status, h["access_state"].clone()),
        (StatusCode::OK, json!("limited"))
    );

    // Suspended: every grants API call is 403 with the state and the reason.
    let (status, v) = put(
        &app,
        &access,
        &op,
        json!({ "state": "suspended", "reason": "abuse_review", "note": "spam" }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    for (method, path) in grants_paths(&sub) {
        let (status, e) = grants_api(&app, &client, method.clone(), &path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {e}");
        assert_eq!(e["access_state"], "suspended", "{e}");
        assert_eq!(e["reason"], "abuse_review", "{e}");
        assert!(
            e["error_description"]
                .as_str()
                .unwrap()
                .contains("suspended"),
            "{e}"
        );
    }
    // The refused DELETE changed nothing: the grant still stands once access is back.
    put(&app, &access, &op, json!({ "state": "active" })).await;
    let (status, g) = grants_api(&app, &client, reqwest::Method::GET, &read).await;
    assert_eq!(
        (status, g["state"].clone()),
        (StatusCode::OK, json!("granted")),
        "{g}"
    );
}

async fn the_grants_api_needs_grants_read_and_says_so_when_it_is_withdrawn(backend: Backend) {
    let app = spawn_app(backend).await;
    let op = operator_key(&app, "reviewer@onyx.example").await;
    let (client, sub) = app_with_a_grant(&app).await;
    // `apps create` approves grants:read by default: the app's own token carries it.
    let (_, shown) = get(
        &app,
        &format!("/api/v1/operator/apps/{}", client.client_id),
        &op,
    )
    .await;
    assert!(
        shown["live"]["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("grants:read")),
        "{shown}"
    );
    let own_token = || async { client_credentials(&app, &client, "grants:read").await.0 };
    assert_eq!(own_token().await, 200);

    let (status, v) = put(
        &app,
        &format!("/api/v1/operator/apps/{}/access", client.client_id),
        &op,
        json!({
            "state": "limited",
            "reason": "operator_decision",
            "withdrawn_scopes": ["grants:read"],
        }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    for (method, path) in grants_paths(&sub) {
        let (status, e) = grants_api(&app, &client, method.clone(), &path).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path}: {e}");
        assert_eq!(
            (
                e["error"].clone(),
                e["scope"].clone(),
                e["access_state"].clone()
            ),
            (
                json!("insufficient_scope"),
                json!("grants:read"),
                json!("limited")
            ),
            "{e}"
        );
        assert!(
            e["error_description"]
                .as_str()
                .unwrap()
                .contains("grants:read"),
            "{e}"
        );
    }
    // Nor does the app's own token carry it any more.
    assert_eq!(own_token().await, 400);
}

async fn an_app_the_review_approved_holds_grants_read_and_reads_its_users_grants(backend: Backend) {
    let published = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let port = publish(published.clone()).await;
    let app = spawn_program(backend, port).await;
    let (op, key, client_id, secret) = app_in_preview_with(&app, &published, good_draft()).await;
    let (_, shown) = get(&app, &format!("/api/v1/apps/{client_id}"), &key).await;
    assert!(
        shown["live"]["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("grants:read")),
        "{shown}"
    );
    put(
        &app,
        &format!("/api/v1/apps/{client_id}/test-accounts"),
        &key,
        json!({ "emails": ["tess@partner.example"] }),
    )
    .await;
    let sub = app.create_user("tess@partner.example", "Tess").await;
    let (code, verifier) =
        authorize_code(&app, &client_id, "tess@partner.example", "openid profile").await;
    let client = Client {
        client_id: client_id.clone(),
        client_secret: Some(secret),
    };
    assert_eq!(
        exchange(&app, &client, &code, &verifier).await.status(),
        200
    );
    let (status, g) = grants_api(
        &app,
        &client,
        reqwest::Method::GET,
        &format!("/api/v1/grants/{sub}"),
    )
    .await;
    assert_eq!(
        (status, g["state"].clone()),
        (StatusCode::OK, json!("granted")),
        "{g}"
    );
    drop(op);
}

// ---------------------------------------------------------------------------------------------
// Item 6: a review approves what the reviewer saw
// ---------------------------------------------------------------------------------------------

async fn an_approval_on_an_older_draft_version_is_refused_and_the_live_app_keeps_what_was_seen(
    backend: Backend,
) {
    let published = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let port = publish(published.clone()).await;
    let app = spawn_program(backend, port).await;
    let (op, key, client_id, _) = app_in_preview_with(&app, &published, good_draft()).await;
    let path = format!("/api/v1/apps/{client_id}");
    let step = format!("/api/v1/operator/apps/{client_id}/steps/redirect_uris");

    // The partner changes a redirect URI: the step is pending again, at a new version.
    let (status, v) = patch(
        &app,
        &path,
        &key,
        json!({ "redirect_uris": ["https://app.example/new-callback"] }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let seen = v["draft_version"].as_i64().unwrap();
    // The operator reads the review: it shows the version.
    let (_, review) = get(&app, &format!("{path}/review"), &key).await;
    assert_eq!(review["draft_version"], seen, "{review}");
    let (_, queue) = get(&app, "/api/v1/operator/reviews", &op).await;
    assert_eq!(queue["reviews"][0]["draft_version"], seen, "{queue}");

    // While the operator reads, the partner swaps the URI for another.
    let (status, v) = patch(
        &app,
        &path,
        &key,
        json!({ "redirect_uris": ["https://app.example/swapped"] }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["draft_version"], seen + 1);

    // The approval names the version read: refused, with what changed since.
    let (status, e) = put(
        &app,
        &step,
        &op,
        json!({ "state": "approved", "note": "checked", "draft_version": seen }),
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{e}");
    assert_eq!(e["error"], "draft_changed");
    assert_eq!(e["draft_version"], seen + 1);
    assert_eq!(e["changed_fields"], json!(["redirect_uris"]));
    assert_eq!(
        (
            e["changes"][0]["before"].clone(),
            e["changes"][0]["after"].clone()
        ),
        (
            json!(["https://app.example/new-callback"]),
            json!(["https://app.example/swapped"])
        ),
        "{e}"
    );
    assert!(
        e["error_description"]
            .as_str()
            .unwrap()
            .contains("redirect_uris"),
        "{e}"
    );
    // The live app did not get the edit: the swapped URI is still refused at authorize.
    let (_, v) = get(&app, &path, &key).await;
    assert_eq!(v["live"]["redirect_uris"], json!([REDIRECT]), "{v}");
    let (url, _) = authorize_url(&app, &client_id, "openid", &[]);
    let url = url.replace(
        "redirect_uri=https%3A%2F%2Fapp.example%2Fcallback",
        "redirect_uri=https%3A%2F%2Fapp.example%2Fswapped",
    );
    let res = http().get(url).send().await.unwrap();
    assert_eq!(res.status(), 400, "the unapproved redirect URI is refused");

    // A decision without a version is refused too.
    let (status, e) = put(
        &app,
        &step,
        &op,
        json!({ "state": "approved", "note": "ok" }),
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{e}");
    assert!(
        e["error_description"]
            .as_str()
            .unwrap()
            .contains("draft_version is required")
    );

    // On the version the operator now read, it goes through and records that version.
    let (status, v) = decide(&app, &op, &client_id, "redirect_uris", "approved").await;
    assert_eq!(status, 200, "{v}");
    let rec = v["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "redirect_uris")
        .unwrap()
        .clone();
    assert_eq!(rec["decided_on_draft_version"], seen + 1, "{v}");
    let (_, v) = get(&app, &path, &key).await;
    assert_eq!(
        v["live"]["redirect_uris"],
        json!(["https://app.example/swapped"])
    );
}

async fn the_cli_decides_a_step_only_on_the_draft_version_it_names(backend: Backend) {
    let published = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let port = publish(published.clone()).await;
    let app = spawn_program(backend, port).await;
    let (op, key, client_id, _) = app_in_preview_with(&app, &published, good_draft()).await;
    let (_, v) = patch(
        &app,
        &format!("/api/v1/apps/{client_id}"),
        &key,
        json!({ "support_url": "https://app.example/support" }),
    )
    .await;
    let current = v["draft_version"].as_i64().unwrap();
    let (code, out, _) = onyx(&app, &["apps", "show", "--app", &client_id], None).await;
    assert_eq!(code, 0);
    assert_eq!(one_json_object(&out)["draft_version"], current);
    let decide_on = |version: Option<String>| {
        let mut args = vec![
            "reviews".to_string(),
            "decide".into(),
            "--app".into(),
            client_id.clone(),
            "--step".into(),
            "support".into(),
            "--state".into(),
            "approved".into(),
        ];
        if let Some(v) = version {
            args.extend(["--draft-version".to_string(), v]);
        }
        args
    };
    for (version, needle) in [
        (None, "draft_version is required"),
        (Some((current - 1).to_string()), "support_url"),
    ] {
        let args = decide_on(version);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, out, err) = onyx(&app, &args, None).await;
        assert_eq!(code, 1, "{err}");
        assert_eq!(err.trim().lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{needle} in {err}");
        assert_eq!(one_json_object(&out)["error"], "invalid_input");
    }
    let args = decide_on(Some(current.to_string()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (code, out, err) = onyx(&app, &args, None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(one_json_object(&out)["draft_version"], current);
    assert_eq!(draft_version(&app, &op, &client_id).await, current);
}

// ---------------------------------------------------------------------------------------------
// Item 7: access causes stack
// ---------------------------------------------------------------------------------------------

/// A preview app that needs review for one scope (so onyx-id's automatic limits withdraw it).
async fn reviewed_app(
    app: &TestApp,
    published: &std::sync::Arc<std::sync::Mutex<String>>,
) -> (String, String, String, String) {
    let mut draft = good_draft();
    draft["scopes"] = json!(["openid", "profile", "email", "assertions:read"]);
    draft["justifications"] = json!({ "assertions:read": "Check travellers are over 18." });
    app_in_preview_with(app, published, draft).await
}

async fn a_partner_re_verifying_its_domain_never_lifts_an_operators_limit(backend: Backend) {
    let published = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let port = publish(published.clone()).await;
    let app = spawn_program(backend, port).await;
    let (op, key, client_id, _) = reviewed_app(&app, &published).await;
    let access = format!("/api/v1/operator/apps/{client_id}/access");
    let path = format!("/api/v1/apps/{client_id}");

    // An operator limits the app for its domain, by hand.
    let (status, v) = put(
        &app,
        &access,
        &op,
        json!({
            "state": "limited",
            "reason": "verification_lapsed",
            "note": "the domain changed hands",
            "withdrawn_scopes": ["email"],
        }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    // The partner verifies the domain again: the operator's limit stays.
    let (_, v) = post(
        &app,
        &format!("{path}/domain-verification"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(
        (v["verified"].clone(), v["access_restored"].clone()),
        (json!(true), json!(false)),
        "{v}"
    );
    let (_, v) = get(&app, &path, &key).await;
    assert_eq!(
        access_of(&v),
        (
            "limited".into(),
            "verification_lapsed".into(),
            json!(["email"])
        ),
        "{v}"
    );
    assert_eq!(
        causes(&v),
        [("operator".into(), "verification_lapsed".into())]
    );
    assert_eq!(v["access"]["causes"][0]["note"], "the domain changed hands");
    // An edit, a resubmission: still limited.
    patch(
        &app,
        &path,
        &key,
        json!({ "support_url": "https://app.example/support" }),
    )
    .await;
    post(&app, &format!("{path}/submit"), &key, json!({})).await;
    let (_, v) = get(&app, &path, &key).await;
    assert_eq!(access_of(&v).0, "limited", "{v}");
}

async fn automatic_causes_stack_and_each_restore_clears_only_its_own(backend: Backend) {
    let published = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let port = publish(published.clone()).await;
    let app = spawn_program(backend, port).await;
    let (op, key, client_id, _) = reviewed_app(&app, &published).await;
    let path = format!("/api/v1/apps/{client_id}");
    let dv = format!("{path}/domain-verification");

    // An operator reopens a step: review_reopened.
    let (status, v) = put(
        &app,
        &format!("/api/v1/operator/apps/{client_id}/steps/redirect_uris"),
        &op,
        json!({
            "state": "changes_requested",
            "note": "explain the callback",
            "draft_version": draft_version(&app, &op, &client_id).await,
        }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(access_of(&v).0, "limited");
    // Meanwhile the domain lapses: a second cause.
    let token = published.lock().unwrap().clone();
    *published.lock().unwrap() = String::new();
    let (_, v) = post(&app, &dv, &key, json!({})).await;
    assert_eq!(v["verification_lapsed"], true, "{v}");
    let (_, v) = get(&app, &path, &key).await;
    assert_eq!(
        causes(&v),
        [
            ("automatic".into(), "review_reopened".into()),
            ("automatic".into(), "verification_lapsed".into())
        ],
        "{v}"
    );

    // The step is approved again: its cause goes, the lapsed domain's stays.
    let (status, v) = decide(&app, &op, &client_id, "redirect_uris", "approved").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        access_of(&v),
        (
            "limited".into(),
            "verification_lapsed".into(),
            json!(["assertions:read"])
        ),
        "{v}"
    );
    assert_eq!(
        causes(&v),
        [("automatic".into(), "verification_lapsed".into())]
    );

    // An operator's own limit stacks on it; the withdrawn scopes add up.
    let access = format!("/api/v1/operator/apps/{client_id}/access");
    let (_, v) = put(
        &app,
        &access,
        &op,
        json!({ "state": "limited", "reason": "region_withdrawn", "withdrawn_scopes": ["email"] }),
    )
    .await;
    assert_eq!(access_of(&v).2, json!(["assertions:read", "email"]), "{v}");
    // A suspension on top: suspended; clearing it by name leaves both limits.
    let (_, v) = put(
        &app,
        &access,
        &op,
        json!({ "state": "suspended", "reason": "abuse_review" }),
    )
    .await;
    assert_eq!(access_of(&v).0, "suspended");
    let (status, v) = put(
        &app,
        &access,
        &op,
        json!({ "state": "active", "cause": "abuse_review" }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(access_of(&v).0, "limited", "{v}");
    assert_eq!(causes(&v).len(), 2, "{v}");

    // The domain verifies again: only the operator's limit remains.
    *published.lock().unwrap() = token;
    let (_, v) = post(&app, &dv, &key, json!({})).await;
    assert_eq!(
        (
            v["verified"].clone(),
            v["access_restored"].clone(),
            v["cause_cleared"].clone()
        ),
        (json!(true), json!(false), json!(true)),
        "{v}"
    );
    let (_, v) = get(&app, &path, &key).await;
    assert_eq!(
        access_of(&v),
        (
            "limited".into(),
            "region_withdrawn".into(),
            json!(["email"])
        )
    );
    // The operator restores: no cause remains, access is active.
    let (_, v) = put(&app, &access, &op, json!({ "state": "active" })).await;
    assert_eq!(
        access_of(&v),
        ("active".into(), "restored".into(), json!([]))
    );
    assert_eq!(causes(&v), Vec::<(String, String)>::new());
    // Naming a cause the app does not have is a conflict that says so.
    let (status, e) = put(
        &app,
        &access,
        &op,
        json!({ "state": "active", "cause": "abuse_review" }),
    )
    .await;
    assert_eq!(
        (status, e["error"].clone()),
        (StatusCode::CONFLICT, json!("no_such_cause"))
    );
}

async fn a_lapsed_domain_is_never_shown_as_verified_on_the_consent_screen_or_connected_apps(
    backend: Backend,
) {
    let published = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let port = publish(published.clone()).await;
    let app = spawn_program(backend, port).await;
    let (_, key, client_id, _) = app_in_preview_with(&app, &published, good_draft()).await;
    put(
        &app,
        &format!("/api/v1/apps/{client_id}/test-accounts"),
        &key,
        json!({ "emails": ["tess@partner.example"] }),
    )
    .await;
    app.create_user("tess@partner.example", "Tess").await;
    let verified = format!("Verified domain: <strong>{DOMAIN}</strong>");

    // Verified: the consent screen says so.
    let browser = browser();
    let (url, _) = authorize_url(&app, &client_id, "openid profile", &[]);
    let res = browser.get(url).send().await.unwrap();
    let login = location(res.headers());
    let consent = log_in(&app, &browser, &login, "tess@partner.example").await;
    assert!(consent.starts_with("/consent"), "{consent}");
    let page = get_text(&browser, app.url(&consent)).await;
    assert!(page.contains(&verified), "{page}");
    answer_consent(&app, &browser, &consent, "approve").await;
    let account = get_text(&browser, app.url("/account/apps")).await;
    assert!(
        account.contains(&format!("Verified domain {DOMAIN}")),
        "{account}"
    );

    // The domain stops serving its token: the verification lapses.
    *published.lock().unwrap() = String::new();
    let (_, v) = post(
        &app,
        &format!("/api/v1/apps/{client_id}/domain-verification"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(v["verification_lapsed"], true, "{v}");

    let (url, _) = authorize_url(&app, &client_id, "openid profile", &[("prompt", "consent")]);
    let res = browser.get(url).send().await.unwrap();
    let consent = location(res.headers());
    assert!(consent.starts_with("/consent"), "{consent}");
    let page = get_text(&browser, app.url(&consent)).await;
    assert!(!page.contains("Verified domain:"), "{page}");
    assert!(page.contains("This app has no verified domain."), "{page}");
    let account = get_text(&browser, app.url("/account/apps")).await;
    assert!(!account.contains("Verified domain"), "{account}");
}

// ---------------------------------------------------------------------------------------------
// Item 12: the audit log is complete
// ---------------------------------------------------------------------------------------------

async fn cli_changes_to_apps_users_grants_and_keys_are_in_the_audit_log(backend: Backend) {
    let app = spawn_app(backend).await;
    let (code, out, err) = onyx(
        &app,
        &[
            "apps",
            "create",
            "--name",
            "Audit Buddy",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid",
            "--scope",
            "profile",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let client = Client::from_created(&one_json_object(&out));
    let sub = app.create_user("hal@example.com", "Hal").await;
    let (code, out, err) = onyx(
        &app,
        &[
            "users",
            "update",
            "--email",
            "hal@example.com",
            "--risk",
            "elevated",
            "--verified",
            "true",
            "--region",
            "DE",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}: {out}");
    let (code_value, verifier) =
        authorize_code(&app, &client.client_id, "hal@example.com", "openid profile").await;
    assert_eq!(
        exchange(&app, &client, &code_value, &verifier)
            .await
            .status(),
        200
    );
    let (code, _, err) = onyx(
        &app,
        &[
            "grants",
            "revoke",
            "--user",
            "hal@example.com",
            "--app",
            &client.client_id,
            "--scope",
            "profile",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (code, _, err) = onyx(&app, &["keys", "rotate"], None).await;
    assert_eq!(code, 0, "{err}");

    let (code, out, _) = onyx(&app, &["audit"], None).await;
    assert_eq!(code, 0);
    let entries = one_json_object(&out)["entries"].as_array().unwrap().clone();
    let entry = |action: &str| {
        entries
            .iter()
            .find(|e| e["action"] == action)
            .unwrap_or_else(|| panic!("no {action} in {entries:?}"))
            .clone()
    };
    for action in [
        "app.created",
        "user.updated",
        "grant.revoked",
        "keys.rotated",
    ] {
        let e = entry(action);
        assert_eq!(e["actor"], "cli", "{e}");
        assert!(e["at"].as_i64().unwrap() > 0, "{e}");
        assert!(e["detail"].get("os_user").is_some(), "{e}");
    }
    let e = entry("app.created");
    assert_eq!(e["client_id"], client.client_id.as_str());
    assert_eq!(e["detail"]["name"], "Audit Buddy");
    assert!(
        e["detail"]["scopes"]
            .as_array()
            .unwrap()
            .contains(&json!("profile"))
    );
    let e = entry("user.updated");
    assert_eq!(e["detail"]["user_id"], sub.as_str());
    assert_eq!(
        e["detail"]["changes"],
        json!({
            "email_verified": { "from": false, "to": true },
            "region": { "from": null, "to": "DE" },
            "risk_level": { "from": "normal", "to": "elevated" },
        })
    );
    let e = entry("grant.revoked");
    assert_eq!(
        (
            e["client_id"].clone(),
            e["detail"]["user_id"].clone(),
            e["detail"]["scopes"].clone()
        ),
        (json!(client.client_id), json!(sub), json!(["profile"]))
    );
    let e = entry("keys.rotated");
    assert_eq!(e["detail"]["keys"].as_array().unwrap().len(), 2, "{e}");
    // The same log through the operator API.
    let op = operator_key(&app, "reviewer@onyx.example").await;
    let (_, v) = get(
        &app,
        &format!("/api/v1/operator/audit?client_id={}", client.client_id),
        &op,
    )
    .await;
    let actions: Vec<&str> = v["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["grant.revoked", "app.created"], "{v}");
}
