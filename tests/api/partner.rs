//! The partner program through its API: a partner's journey from registration to production
//! (pre-checks, fixes, domain verification against a loopback server, review step by step,
//! preview with test accounts, the launch checklist), reopening on edit, gated capabilities at
//! authorize, token and introspection, limit and suspend taking effect on the very next request,
//! secret rotation, partner isolation, and bad input on every endpoint.

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::partner_api::*;

on_each_backend!(
    a_partner_goes_from_registration_through_review_and_preview_to_production,
    editing_a_reviewed_field_reopens_its_steps_and_the_live_app_keeps_what_was_approved,
    each_gated_capability_state_is_seen_at_authorize_token_and_introspection,
    limit_and_suspend_take_effect_on_the_very_next_request_for_live_tokens_too,
    a_rotated_secret_overlaps_the_old_one_for_the_window_asked,
    one_partner_cannot_read_or_change_another_partners_apps,
    bad_input_on_every_endpoint_gets_a_json_error_that_names_the_problem,
    onyx_id_limits_a_live_app_on_its_own_when_a_step_reopens_or_its_domain_lapses,
);

fn codes(findings: &Value) -> Vec<String> {
    findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap().to_string())
        .collect()
}

async fn a_partner_goes_from_registration_through_review_and_preview_to_production(
    backend: Backend,
) {
    let published = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let port = publish(published.clone()).await;
    let app = spawn_program(backend, port).await;
    let op = operator_key(&app, "reviewer@onyx.example").await;
    let (_, key) = partner(&app, &op, "owner@partner.example", "Buddy Ltd").await;

    // Register an app with problems: pre-checks find them on submit.
    let mut bad = good_draft();
    bad["name"] = json!("Onyx Travel");
    bad["consent_copy"] = json!("");
    bad["redirect_uris"] = json!(["http://app.example/callback", "https://app.example/cb#x"]);
    bad["scopes"] = json!(["openid", "profile", "email", "trust:read"]);
    let (status, created) = post(&app, "/api/v1/apps", &key, bad).await;
    assert_eq!(status, 201, "{created}");
    let client_id = created["client_id"].as_str().unwrap().to_string();
    let secret = created["client_secret"].as_str().unwrap().to_string();
    assert_eq!(created["stage"], "draft");
    let (status, review) = post(
        &app,
        &format!("/api/v1/apps/{client_id}/submit"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{review}");
    let found = codes(&review["findings"]);
    for code in [
        "name_impersonates_onyx",
        "consent_copy_missing",
        "redirect_uri_not_https",
        "redirect_uri_fragment",
        "scope_excessive",
    ] {
        assert!(found.contains(&code.to_string()), "{code} in {found:?}");
    }

    // A draft app signs nobody in.
    let (url, _) = authorize_url(&app, &client_id, "openid", &[]);
    let res = http().get(url).send().await.unwrap();
    assert_eq!(res.status(), 400);
    let page = res.text().await.unwrap();
    assert!(
        page.contains("App unavailable") && page.contains("review"),
        "{page}"
    );

    // Findings block approval of their step, and say why.
    let (status, v) = decide(&app, &op, &client_id, "redirect_uris", "approved").await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"], "step_blocked");
    assert!(codes(&v["findings"]).contains(&"redirect_uri_not_https".to_string()));

    // The partner fixes the draft and submits again: nothing blocks.
    let (status, v) = patch(
        &app,
        &format!("/api/v1/apps/{client_id}"),
        &key,
        good_draft(),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let (_, review) = post(
        &app,
        &format!("/api/v1/apps/{client_id}/submit"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(review["findings"], json!([]), "{review}");
    let steps: Vec<(String, String)> = review["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["step"].as_str().unwrap().into(),
                s["state"].as_str().unwrap().into(),
            )
        })
        .collect();
    assert!(steps.contains(&("webhooks".into(), "not_applicable".into())));
    assert!(steps.contains(&("connectivity_catalogue".into(), "not_applicable".into())));

    // Domain verification: the token must be published on the domain.
    let dv = format!("/api/v1/apps/{client_id}/domain-verification");
    let (status, challenge) = get(&app, &dv, &key).await;
    assert_eq!(status, 200, "{challenge}");
    assert_eq!(
        challenge["url"],
        format!("http://{DOMAIN}/.well-known/onyx-id-verification")
    );
    let token = challenge["token"].as_str().unwrap().to_string();
    let (_, v) = post(&app, &dv, &key, json!({})).await;
    assert_eq!(v["verified"], false, "{v}");
    let (status, v) = decide(&app, &op, &client_id, "domain", "approved").await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::CONFLICT, json!("domain_not_verified"))
    );
    *published.lock().unwrap() = "something else".into();
    let (_, v) = post(&app, &dv, &key, json!({})).await;
    assert_eq!(
        (v["verified"].clone(), v["error"].clone()),
        (json!(false), json!("token_mismatch")),
        "{v}"
    );
    *published.lock().unwrap() = format!("{token}\n");
    let (_, v) = post(&app, &dv, &key, json!({})).await;
    assert_eq!(v["verified"], true, "{v}");

    // Review, step by step.
    for step in ["company", "app_identity", "use_case", "scopes", "domain"] {
        let (status, v) = decide(&app, &op, &client_id, step, "approved").await;
        assert_eq!(status, 200, "{step}: {v}");
        assert_eq!(v["stage"], "draft", "{step}");
    }
    let (_, v) = decide(&app, &op, &client_id, "redirect_uris", "approved").await;
    assert_eq!(
        v["stage"], "preview",
        "identity, scopes and redirect URIs approved: {v}"
    );
    for step in ["support", "privacy_security"] {
        let (status, v) = decide(&app, &op, &client_id, step, "approved").await;
        assert_eq!(status, 200, "{step}: {v}");
    }

    // Production needs the launch checklist.
    let (status, v) = decide(&app, &op, &client_id, "production", "approved").await;
    assert_eq!(status, 409, "{v}");
    assert_eq!(v["error"], "launch_requirements_unmet");
    let checklist = v["launch_checklist"].as_array().unwrap();
    let unmet: Vec<&str> = checklist
        .iter()
        .filter(|r| r["status"] == "not_met")
        .map(|r| r["requirement"].as_str().unwrap())
        .collect();
    assert_eq!(unmet, ["sign_in_tested", "revocation_tested"]);
    // No webhook endpoint: the item does not apply (it is not "met"), and holds nothing up.
    let hooks = checklist
        .iter()
        .find(|r| r["requirement"] == "webhook_delivery_tested")
        .unwrap();
    assert_eq!(
        (hooks["status"].clone(), hooks["met"].clone()),
        (json!("not_applicable"), json!(false))
    );

    // Preview signs in only the partner's test accounts.
    app.create_user("tester@partner.example", "Tess Tester")
        .await;
    app.create_user("someone@else.example", "Sam Someone").await;
    let (status, v) = put(
        &app,
        &format!("/api/v1/apps/{client_id}/test-accounts"),
        &key,
        json!({ "emails": ["Tester@Partner.example"] }),
    )
    .await;
    assert_eq!(
        (status, v["test_accounts"].clone()),
        (StatusCode::OK, json!(["tester@partner.example"]))
    );
    let (back, _) = sign_in(&app, &client_id, "someone@else.example").await;
    let q = query(&back);
    assert_eq!(q["error"], "access_denied", "{back}");
    assert!(q["error_description"].contains("preview"), "{back}");
    let (back, verifier) = sign_in(&app, &client_id, "tester@partner.example").await;
    let client = Client {
        client_id: client_id.clone(),
        client_secret: Some(secret.clone()),
    };
    let res = exchange(&app, &client, &query(&back)["code"], &verifier).await;
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
    let (_, launch) = get(
        &app,
        &format!("/api/v1/apps/{client_id}/launch-checklist"),
        &key,
    )
    .await;
    assert_eq!(launch["ready_for_production"], true, "{launch}");

    // Production: everyone may sign in.
    let (status, v) = decide(&app, &op, &client_id, "production", "approved").await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        (v["stage"].clone(), v["state"].clone()),
        (json!("production"), json!("approved"))
    );
    let (back, _) = sign_in(&app, &client_id, "someone@else.example").await;
    assert!(query(&back).contains_key("code"), "{back}");

    // Every decision is in the audit log, which refuses to be rewritten.
    let (_, audit) = get(
        &app,
        &format!("/api/v1/operator/audit?client_id={client_id}"),
        &op,
    )
    .await;
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "app.created",
        "review.submitted",
        "domain.verified",
        "review.step_decided",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    let rewrite = sqlx::query("UPDATE audit_log SET action = 'x'")
        .execute(app.sql().await)
        .await;
    assert!(rewrite.is_err(), "the audit log is append-only");
    let erase = sqlx::query("DELETE FROM audit_log")
        .execute(app.sql().await)
        .await;
    assert!(erase.is_err(), "the audit log is append-only");
}

/// A partner app taken to preview (identity, scopes, redirect URIs approved and the domain
/// verified). Returns the operator key, the partner key, the client id and secret.
async fn app_in_preview(
    app: &TestApp,
    published: &std::sync::Arc<std::sync::Mutex<String>>,
) -> (String, String, String, String) {
    app_in_preview_with(app, published, good_draft()).await
}

async fn editing_a_reviewed_field_reopens_its_steps_and_the_live_app_keeps_what_was_approved(
    backend: Backend,
) {
    let published = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let port = publish(published.clone()).await;
    let app = spawn_program(backend, port).await;
    let (op, key, client_id, _) = app_in_preview(&app, &published).await;
    let path = format!("/api/v1/apps/{client_id}");

    let (status, v) = patch(
        &app,
        &path,
        &key,
        json!({ "redirect_uris": ["https://app.example/new-callback"] }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let state_of = |v: &Value, step: &str| {
        v["review"]["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["step"] == step)
            .map(|s| s["state"].as_str().unwrap().to_string())
            .unwrap()
    };
    assert_eq!(state_of(&v, "redirect_uris"), "pending");
    assert_eq!(state_of(&v, "app_identity"), "approved");
    assert_eq!(v["review"]["state"], "open");
    // Live: the approved redirect URI still works, the new one does not yet.
    assert_eq!(v["live"]["redirect_uris"], json!([REDIRECT]));
    assert_eq!(
        v["draft"]["redirect_uris"],
        json!(["https://app.example/new-callback"])
    );

    let (_, v) = patch(
        &app,
        &path,
        &key,
        json!({ "consent_copy": "We never share your details." }),
    )
    .await;
    assert_eq!(state_of(&v, "app_identity"), "pending");
    assert_eq!(
        v["live"]["consent_copy"],
        "Travel Buddy never shares your details with airlines."
    );
    // An unchanged value reopens nothing.
    let (_, v) = patch(
        &app,
        &path,
        &key,
        json!({ "support_url": "https://app.example/help" }),
    )
    .await;
    assert_eq!(
        state_of(&v, "support"),
        "pending",
        "support was never approved"
    );
    assert_eq!(state_of(&v, "scopes"), "approved");
    // Approving again makes the new values live.
    decide(&app, &op, &client_id, "app_identity", "approved").await;
    let (_, v) = get(&app, &path, &key).await;
    assert_eq!(v["live"]["consent_copy"], "We never share your details.");

    // The reopening is in the audit log.
    let (_, audit) = get(
        &app,
        &format!("/api/v1/operator/audit?client_id={client_id}"),
        &op,
    )
    .await;
    assert!(
        audit["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "app.draft_updated"
                && e["detail"]["reopened_steps"] == json!(["redirect_uris"]))
    );
}

async fn each_gated_capability_state_is_seen_at_authorize_token_and_introspection(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let op = operator_key(&app, "reviewer@onyx.example").await;
    let mut s = spec(&[
        "openid",
        "community:access",
        "grants:read",
        "events:subscribe",
    ]);
    s.grant_types = vec!["authorization_code".into(), "client_credentials".into()];
    let client = app.create_app_with(s).await;
    let cap_path = format!("/api/v1/operator/apps/{}/capabilities/", client.client_id);
    app.create_user("ada@example.com", "Ada").await;

    // Not requested: the capability's scopes are unavailable, with the reason, everywhere.
    let (status, v) = client_credentials(&app, &client, "grants:read events:subscribe").await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"], "invalid_scope");
    assert_eq!(v["capability"], "advanced_event_subscriptions");
    assert_eq!(v["capability_state"], "unavailable");
    let (url, _) = authorize_url(&app, &client.client_id, "openid community:access", &[]);
    let browser = browser();
    let res = browser.get(url).send().await.unwrap();
    let login = location(res.headers());
    let consent = log_in(&app, &browser, &login, "ada@example.com").await;
    let html = get_text(&browser, absolute(&app, &consent)).await;
    assert!(html.contains("capability Onyx has not enabled"), "{html}");
    // Each state of the community capability, as the consent screen shows it.
    for state in ["requested", "gated", "enabled"] {
        let (status, v) = put(
            &app,
            &format!("{cap_path}community_execution"),
            &op,
            json!({ "state": state }),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        let (url, _) = authorize_url(&app, &client.client_id, "openid community:access", &[]);
        let res = browser.get(url).send().await.unwrap();
        let consent = location(res.headers());
        assert!(consent.starts_with("/consent"), "{state}: {consent}");
        let html = get_text(&browser, absolute(&app, &consent)).await;
        let gated = html.contains("capability Onyx has not enabled");
        assert_eq!(gated, state != "enabled", "{state}: {html}");
        assert!(html.contains("Your communities"), "{state}: {html}");
    }

    for (state, expect_ok) in [("requested", false), ("gated", false), ("enabled", true)] {
        let (status, v) = put(
            &app,
            &format!("{cap_path}advanced_event_subscriptions"),
            &op,
            json!({ "state": state, "note": "market not launched" }),
        )
        .await;
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["state"], state);
        let (status, v) = client_credentials(&app, &client, "grants:read events:subscribe").await;
        if expect_ok {
            assert_eq!(status, 200, "{v}");
            let token = v["access_token"].as_str().unwrap().to_string();
            assert_eq!(
                introspect(&app, &client, &token).await["scope"],
                "grants:read events:subscribe"
            );
            // Gating it again withdraws it from the live token at once.
            put(
                &app,
                &format!("{cap_path}advanced_event_subscriptions"),
                &op,
                json!({ "state": "gated", "reason": "capacity" }),
            )
            .await;
            assert_eq!(
                introspect(&app, &client, &token).await["scope"],
                "grants:read"
            );
        } else {
            assert_eq!(status, 400, "{v}");
            assert_eq!(v["capability_state"], state, "{v}");
        }
    }
}

async fn limit_and_suspend_take_effect_on_the_very_next_request_for_live_tokens_too(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let op = operator_key(&app, "reviewer@onyx.example").await;
    let mut s = spec(&["openid", "profile", "email", "offline_access"]);
    s.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    let client = app.create_app_with(s).await;
    app.create_user("ada@example.com", "Ada").await;
    let (code, verifier) = authorize_code(
        &app,
        &client.client_id,
        "ada@example.com",
        "openid profile email offline_access",
    )
    .await;
    let tokens: Value = exchange(&app, &client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let access_path = format!("/api/v1/operator/apps/{}/access", client.client_id);

    // Limited: email is withdrawn from the live token, from userinfo and from refresh.
    let (status, v) = put(
        &app,
        &access_path,
        &op,
        json!({ "state": "limited", "reason": "region_withdrawn", "withdrawn_scopes": ["email"] }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let i = introspect(&app, &client, &access).await;
    assert_eq!(i["scope"], "openid profile offline_access", "{i}");
    let email = i["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["scope"] == "email")
        .unwrap()
        .clone();
    assert_eq!(
        (email["state"].clone(), email["reason"].clone()),
        (json!("limited"), json!("app_access_limited")),
        "{email}"
    );
    let (_, info) = userinfo(&app, &access).await;
    assert!(
        info.get("email").is_none() && info["name"] == "Ada",
        "{info}"
    );
    let (_, refreshed) = crate::helpers::refresh(&app, &client, &refresh).await;
    assert_eq!(
        refreshed["scope"], "openid profile offline_access",
        "{refreshed}"
    );
    let access = refreshed["access_token"].as_str().unwrap().to_string();

    // Suspended: nothing works, and every refusal says why.
    let (status, _) = put(
        &app,
        &access_path,
        &op,
        json!({ "state": "suspended", "reason": "abuse_review", "note": "reports of spam" }),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(introspect(&app, &client, &access).await["active"], false);
    let res = http()
        .get(app.url("/userinfo"))
        .bearer_auth(&access)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let (status, v) = client_credentials(&app, &client, "openid").await;
    assert_eq!(status, 400);
    assert_eq!(
        (
            v["error"].clone(),
            v["access_state"].clone(),
            v["reason"].clone()
        ),
        (
            json!("unauthorized_client"),
            json!("suspended"),
            json!("abuse_review")
        ),
        "{v}"
    );
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[]);
    let page = http().get(url).send().await.unwrap().text().await.unwrap();
    assert!(
        page.contains("App unavailable") && page.contains("abuse"),
        "{page}"
    );

    // Restored: explicitly, and at once.
    let (status, v) = put(&app, &access_path, &op, json!({ "state": "active" })).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["access"]["reason"], "restored");
    assert_eq!(introspect(&app, &client, &access).await["active"], true);
    // Bad requests name what is wrong.
    let (status, v) = put(
        &app,
        &access_path,
        &op,
        json!({ "state": "limited", "reason": "abuse_review" }),
    )
    .await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_request"))
    );
    let (status, _) = put(
        &app,
        &access_path,
        &op,
        json!({ "state": "suspended", "reason": "because" }),
    )
    .await;
    assert_eq!(status, 400);
}

async fn a_rotated_secret_overlaps_the_old_one_for_the_window_asked(backend: Backend) {
    let published = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let port = publish(published.clone()).await;
    let app = spawn_program(backend, port).await;
    let (_, key, client_id, old) = app_in_preview(&app, &published).await;
    let (status, v) = post(
        &app,
        &format!("/api/v1/apps/{client_id}/secret"),
        &key,
        json!({ "overlap_seconds": 600 }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let new = v["client_secret"].as_str().unwrap().to_string();
    let with = |s: &str| Client {
        client_id: client_id.clone(),
        client_secret: Some(s.to_string()),
    };
    assert_eq!(
        client_credentials(&app, &with(&new), "openid").await.0,
        400,
        "openid is not an app scope"
    );
    let auth_ok = |status: StatusCode, v: &Value| status == 200 || v["error"] != "invalid_client";
    let (s1, v1) = client_credentials(&app, &with(&old), "openid").await;
    assert!(
        auth_ok(s1, &v1),
        "the old secret works in the overlap: {v1}"
    );
    app.clock.advance(601);
    let (s2, v2) = client_credentials(&app, &with(&old), "openid").await;
    assert_eq!(
        (s2, v2["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_client"))
    );
    let (s3, v3) = client_credentials(&app, &with(&new), "openid").await;
    assert!(auth_ok(s3, &v3), "{v3}");
    let (status, _) = post(
        &app,
        &format!("/api/v1/apps/{client_id}/secret"),
        &key,
        json!({ "overlap_seconds": -1 }),
    )
    .await;
    assert_eq!(status, 400);
}

async fn one_partner_cannot_read_or_change_another_partners_apps(backend: Backend) {
    let app = spawn_app(backend).await;
    let op = operator_key(&app, "reviewer@onyx.example").await;
    let (_, key_a) = partner(&app, &op, "a@partner.example", "Partner A").await;
    let (_, key_b) = partner(&app, &op, "b@partner.example", "Partner B").await;
    let (_, created) = post(&app, "/api/v1/apps", &key_a, good_draft()).await;
    let a_app = created["client_id"].as_str().unwrap().to_string();
    let dev_app = app.create_app(&["openid"]).await.client_id;

    for id in [&a_app, &dev_app] {
        for (method, path, body) in [
            (reqwest::Method::GET, format!("/api/v1/apps/{id}"), None),
            (
                reqwest::Method::PATCH,
                format!("/api/v1/apps/{id}"),
                Some(json!({ "name": "Mine now" })),
            ),
            (
                reqwest::Method::POST,
                format!("/api/v1/apps/{id}/submit"),
                Some(json!({})),
            ),
            (
                reqwest::Method::GET,
                format!("/api/v1/apps/{id}/review"),
                None,
            ),
            (
                reqwest::Method::POST,
                format!("/api/v1/apps/{id}/secret"),
                Some(json!({})),
            ),
            (
                reqwest::Method::PUT,
                format!("/api/v1/apps/{id}/test-accounts"),
                Some(json!({ "emails": [] })),
            ),
            (
                reqwest::Method::POST,
                format!("/api/v1/apps/{id}/capabilities/expanded_messaging"),
                Some(json!({})),
            ),
        ] {
            let (status, v) = call(&app, method, &path, Some(&key_b), body).await;
            assert_eq!(
                (status, v["error"].clone()),
                (StatusCode::NOT_FOUND, json!("not_found")),
                "{path}"
            );
        }
    }
    let (_, list) = get(&app, "/api/v1/apps", &key_b).await;
    assert_eq!(list["apps"], json!([]));
    let (_, v) = get(&app, &format!("/api/v1/apps/{a_app}"), &key_a).await;
    assert_eq!(
        v["draft"]["name"], "Travel Buddy",
        "B's attempts changed nothing"
    );

    // Keys: the wrong kind is refused with 403, none or a revoked one with 401.
    let (status, v) = get(&app, "/api/v1/operator/reviews", &key_a).await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::FORBIDDEN, json!("insufficient_scope"))
    );
    let (status, _) = get(&app, "/api/v1/apps", &op).await;
    assert_eq!(status, 403);
    let (status, _) = call(&app, reqwest::Method::GET, "/api/v1/apps", None, None).await;
    assert_eq!(status, 401);
    let (status, _) = get(&app, "/api/v1/apps", "onyxpk_not-a-key").await;
    assert_eq!(status, 401);
    let (status, made) = post(
        &app,
        "/api/v1/partner/keys",
        &key_a,
        json!({ "name": "ci" }),
    )
    .await;
    assert_eq!(status, 201, "{made}");
    let second = made["api_key"].as_str().unwrap();
    assert_eq!(get(&app, "/api/v1/apps", second).await.0, 200);
    let id = made["api_key_id"].as_str().unwrap();
    let (status, _) = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/partner/keys/{id}"),
        Some(&key_b),
        None,
    )
    .await;
    assert_eq!(status, 404, "B cannot revoke A's key");
    let (status, _) = call(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/partner/keys/{id}"),
        Some(&key_a),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(get(&app, "/api/v1/apps", second).await.0, 401);
    // Keys are stored hashed.
    let stored: Vec<(String,)> = sqlx::query_as("SELECT key_hash FROM api_keys")
        .fetch_all(app.sql().await)
        .await
        .unwrap();
    assert!(
        stored
            .iter()
            .all(|(h,)| !h.starts_with("onyx") && h != second)
    );
}

async fn bad_input_on_every_endpoint_gets_a_json_error_that_names_the_problem(backend: Backend) {
    let app = spawn_app(backend).await;
    let op = operator_key(&app, "reviewer@onyx.example").await;
    let (partner_id, key) = partner(&app, &op, "owner@partner.example", "Buddy Ltd").await;
    let (_, created) = post(&app, "/api/v1/apps", &key, good_draft()).await;
    let id = created["client_id"].as_str().unwrap().to_string();
    let not_json = "{\"name\": ";
    let cases: Vec<(reqwest::Method, String, &str)> = vec![
        (reqwest::Method::POST, "/api/v1/apps".into(), &key),
        (reqwest::Method::PATCH, format!("/api/v1/apps/{id}"), &key),
        (
            reqwest::Method::POST,
            format!("/api/v1/apps/{id}/secret"),
            &key,
        ),
        (
            reqwest::Method::PUT,
            format!("/api/v1/apps/{id}/test-accounts"),
            &key,
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/apps/{id}/capabilities/expanded_messaging"),
            &key,
        ),
        (reqwest::Method::POST, "/api/v1/partner/keys".into(), &key),
        (
            reqwest::Method::POST,
            "/api/v1/operator/partners".into(),
            &op,
        ),
        (
            reqwest::Method::POST,
            format!("/api/v1/operator/partners/{partner_id}/members"),
            &op,
        ),
        (
            reqwest::Method::PUT,
            format!("/api/v1/operator/apps/{id}/steps/company"),
            &op,
        ),
        (
            reqwest::Method::PUT,
            format!("/api/v1/operator/apps/{id}/capabilities/expanded_messaging"),
            &op,
        ),
        (
            reqwest::Method::PUT,
            format!("/api/v1/operator/apps/{id}/access"),
            &op,
        ),
    ];
    for (method, path, k) in &cases {
        for body in [
            not_json.to_string(),
            "[1, 2]".to_string(),
            "{\"surprise\": true}".to_string(),
            "\"\u{0}\"".to_string(),
        ] {
            let res = http()
                .request(method.clone(), app.url(path))
                .bearer_auth(k)
                .header("content-type", "application/json")
                .body(body.clone())
                .send()
                .await
                .unwrap();
            let status = res.status();
            let v: Value = res
                .json()
                .await
                .unwrap_or_else(|_| panic!("{path} {body}: not JSON"));
            assert_eq!(status, 400, "{method} {path} {body}: {v}");
            assert_eq!(v["error"], "invalid_request", "{path} {body}: {v}");
            assert!(
                v["error_description"]
                    .as_str()
                    .is_some_and(|d| !d.is_empty())
            );
        }
    }
    // Wrong values name the field or the choices.
    for (path, body, needle) in [
        (
            format!("/api/v1/apps/{id}"),
            json!({ "scopes": "openid" }),
            "scopes",
        ),
        (
            format!("/api/v1/apps/{id}"),
            json!({ "name": "x".repeat(300) }),
            "name",
        ),
        (
            format!("/api/v1/apps/{id}"),
            json!({ "redirect_uris": vec!["https://app.example/cb"; 60] }),
            "redirect_uris",
        ),
    ] {
        let (status, v) = patch(&app, &path, &key, body).await;
        assert_eq!(status, 400, "{v}");
        assert!(
            v["error_description"].as_str().unwrap().contains(needle),
            "{v}"
        );
    }
    let (status, v) = put(
        &app,
        &format!("/api/v1/operator/apps/{id}/steps/vibes"),
        &op,
        json!({ "state": "approved" }),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("app_identity"),
        "{v}"
    );
    let (status, v) = put(
        &app,
        &format!("/api/v1/operator/apps/{id}/steps/company"),
        &op,
        json!({ "state": "approved" }),
    )
    .await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::CONFLICT, json!("not_submitted"))
    );
    post(&app, &format!("/api/v1/apps/{id}/submit"), &key, json!({})).await;
    let (status, v) = put(
        &app,
        &format!("/api/v1/operator/apps/{id}/steps/company"),
        &op,
        json!({ "state": "rejected" }),
    )
    .await;
    assert_eq!(status, 400, "a rejection needs a note: {v}");
    let (status, v) = post(
        &app,
        &format!("/api/v1/apps/{id}/capabilities/teleportation"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("unknown_capability"))
    );
    let (status, v) = post(
        &app,
        &format!("/api/v1/apps/{id}/capabilities/expanded_messaging"),
        &key,
        json!({ "justification": "bookings" }),
    )
    .await;
    assert_eq!(
        (status, v["state"].clone()),
        (StatusCode::OK, json!("requested")),
        "{v}"
    );
    let (status, v) = post(
        &app,
        &format!("/api/v1/apps/{id}/capabilities/expanded_messaging"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(
        (status, v["error"].clone(), v["state"].clone()),
        (
            StatusCode::CONFLICT,
            json!("capability_requested"),
            json!("requested")
        )
    );
    put(
        &app,
        &format!("/api/v1/operator/apps/{id}/capabilities/expanded_messaging"),
        &op,
        json!({ "state": "gated", "reason": "market_not_launched" }),
    )
    .await;
    let (status, v) = post(
        &app,
        &format!("/api/v1/apps/{id}/capabilities/expanded_messaging"),
        &key,
        json!({}),
    )
    .await;
    assert_eq!(
        (
            status,
            v["error"].clone(),
            v["capability"].clone(),
            v["reason"].clone()
        ),
        (
            StatusCode::CONFLICT,
            json!("capability_gated"),
            json!("expanded_messaging"),
            json!("market_not_launched")
        )
    );
    let (status, v) = get(&app, "/api/v1/operator/audit?limit=lots", &op).await;
    assert_eq!(status, 400, "{v}");
    // The OpenAPI document is served and describes these endpoints.
    let res = http()
        .get(app.url("/api/v1/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    assert!(doc["paths"]["/api/v1/apps/{client_id}/submit"]["post"].is_object());
}

async fn onyx_id_limits_a_live_app_on_its_own_when_a_step_reopens_or_its_domain_lapses(
    backend: Backend,
) {
    let published = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let port = publish(published.clone()).await;
    let app = spawn_program(backend, port).await;
    let mut draft = good_draft();
    draft["scopes"] = json!(["openid", "profile", "email", "assertions:read"]);
    draft["justifications"] = json!({ "assertions:read": "Check travellers are over 18." });
    let (op, key, client_id, _) = app_in_preview_with(&app, &published, draft).await;
    let path = format!("/api/v1/apps/{client_id}");
    let access = |v: &Value| {
        (
            v["access"]["state"].as_str().unwrap().to_string(),
            v["access"]["reason"].as_str().unwrap_or("").to_string(),
            v["access"]["withdrawn_scopes"].clone(),
        )
    };

    // An operator reopens an approved step of the live app: what needs review is withdrawn.
    let (status, v) = put(
        &app,
        &format!("/api/v1/operator/apps/{client_id}/steps/redirect_uris"),
        &op,
        json!({
            "state": "changes_requested",
            "note": "explain the second callback",
            "draft_version": draft_version(&app, &op, &client_id).await,
        }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        access(&v),
        (
            "limited".into(),
            "review_reopened".into(),
            json!(["assertions:read"])
        )
    );
    // Approved again: given back.
    let (_, v) = decide(&app, &op, &client_id, "redirect_uris", "approved").await;
    assert_eq!(
        access(&v),
        ("active".into(), "restored".into(), json!([])),
        "{v}"
    );

    // The domain stops serving its token: the verification lapses and the app is limited.
    let dv = format!("{path}/domain-verification");
    let token = published.lock().unwrap().clone();
    *published.lock().unwrap() = String::new();
    let (_, v) = post(&app, &dv, &key, json!({})).await;
    assert_eq!(
        (
            v["verified"].clone(),
            v["verification_lapsed"].clone(),
            v["access_limited"].clone()
        ),
        (json!(false), json!(true), json!(true)),
        "{v}"
    );
    let (_, v) = get(&app, &path, &key).await;
    assert_eq!(access(&v).1, "verification_lapsed");
    assert_eq!(v["domain_verification"]["verified_domain"], Value::Null);
    // Published again: verified and restored.
    *published.lock().unwrap() = token;
    let (_, v) = post(&app, &dv, &key, json!({})).await;
    assert_eq!(
        (v["verified"].clone(), v["access_restored"].clone()),
        (json!(true), json!(true)),
        "{v}"
    );
    let (_, audit) = get(
        &app,
        &format!("/api/v1/operator/audit?client_id={client_id}"),
        &op,
    )
    .await;
    let automatic: Vec<(&str, &str)> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["actor"] == "onyx-id")
        .map(|e| {
            (
                e["action"].as_str().unwrap(),
                e["detail"]["reason"]
                    .as_str()
                    .or(e["detail"]["cause"].as_str())
                    .unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        automatic,
        [
            ("access.restored", "verification_lapsed"),
            ("access.limited", "verification_lapsed"),
            ("access.restored", "review_reopened"),
            ("access.limited", "review_reopened"),
        ]
    );
}
