//! Consent as an account state: partial and incremental consent, consent copy changes,
//! unavailable scopes with their reasons, expiry by policy, revocation by the user (one scope,
//! the whole app), by the partner and by Onyx, reconnecting, and the history of each — seen
//! through the token response, introspection, userinfo, the partner API and the Connected apps
//! page.

use onyx_id::admin::{self, AppSpec, UserChanges};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

on_each_backend!(
    plain:
    partial_remembered_incremental_consent_and_a_copy_change,
    unavailable_scopes_are_shown_with_their_reason_never_dropped_silently,
    expiry_by_policy_stops_use_at_once_and_renewal_is_asked,
    users_revoke_on_the_connected_apps_page_partners_and_onyx_revoke_too,
    the_partner_api_needs_the_apps_credentials_and_shows_only_its_own_users,
);

/// openid and profile required, email and offline_access optional, refresh allowed.
fn travel_spec() -> AppSpec {
    let mut s = spec(&["openid", "profile"]);
    s.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    s.consent.optional_scopes = vec!["email".into(), "offline_access".into()];
    s.consent.purpose = "Show your name on your bookings.".into();
    s.consent.consent_copy = "Travel Buddy never shares your details with airlines.".into();
    s.consent.domain = Some("app.example".into());
    s
}

/// A signed-in browser at the authorize step: returns where the server sent it.
async fn authorize(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &Client,
    scope: &str,
    extra: &[(&str, &str)],
) -> (String, String) {
    let (url, verifier) = authorize_url(app, &client.client_id, scope, extra);
    let res = browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    (location(res.headers()), verifier)
}

/// Signs in at the start of a flow (the browser has no session yet).
async fn first_authorize(
    app: &TestApp,
    browser: &reqwest::Client,
    client: &Client,
    email: &str,
    scope: &str,
) -> (String, String) {
    let (login, verifier) = authorize(app, browser, client, scope, &[]).await;
    assert!(login.starts_with("/login"), "{login}");
    (log_in(app, browser, &login, email).await, verifier)
}

/// Approves, ticking only `ticked` among the optional scopes; returns the redirect.
async fn approve(app: &TestApp, browser: &reqwest::Client, html: &str, ticked: &[&str]) -> String {
    let res = post_consent(app, browser, html, "approve", ticked).await;
    assert_eq!(res.status(), 303);
    location(res.headers())
}

async fn tokens(app: &TestApp, client: &Client, back: &str, verifier: &str) -> Value {
    let q = query(back);
    let res = exchange(app, client, &q["code"], verifier).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn permission<'a>(v: &'a Value, scope: &str) -> &'a Value {
    v["permissions"]
        .as_array()
        .and_then(|a| a.iter().find(|p| p["scope"] == scope))
        .unwrap_or_else(|| panic!("no permission {scope} in {v}"))
}

fn states(v: &Value) -> Vec<(String, String)> {
    v["permissions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["scope"].as_str().unwrap().to_string(),
                p["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

async fn partial_remembered_incremental_consent_and_a_copy_change(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app_with(travel_spec()).await;
    let sub = app.create_user("ada@example.com", "Ada").await;
    let browser = browser();

    // The screen shows the purpose, the app's words, its domain, and lets the user untick
    // only the optional scopes.
    let (next, verifier) = first_authorize(
        &app,
        &browser,
        &client,
        "ada@example.com",
        "openid profile email",
    )
    .await;
    let html = consent_page(&app, &browser, &next).await;
    for text in [
        "Show your name on your bookings.",
        "never shares your details",
        "app.example",
        "Your email address",
    ] {
        assert!(html.contains(text), "{text} missing from the consent page");
    }
    assert!(html.contains("name=\"scope:email\""));
    assert!(
        !html.contains("name=\"scope:profile\""),
        "profile is required"
    );
    // While the screen is open, the partner sees the request.
    let (_, g) = grants_api(
        &app,
        &client,
        reqwest::Method::GET,
        &format!("/api/v1/grants/{sub}"),
    )
    .await;
    assert_eq!(g["state"], "requested", "{g}");
    assert_eq!(permission(&g, "email")["reason"], "awaiting_decision");

    // Unticking email: a limited grant; the flow goes on with what was granted.
    let back = approve(&app, &browser, &html, &[]).await;
    let t = tokens(&app, &client, &back, &verifier).await;
    assert_eq!(
        t["scope"], "openid profile",
        "the token response says what was granted"
    );
    let at_ = text(&t, "access_token");
    let seen = introspect(&app, &client, &at_).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["scope"], "openid profile");
    let email = permission(&seen, "email");
    assert_eq!(
        (email["state"].as_str(), email["reason"].as_str()),
        (Some("denied"), Some("user_declined"))
    );
    assert!(
        email["description"]
            .as_str()
            .unwrap()
            .contains("chose not to")
    );
    assert_eq!(permission(&seen, "profile")["state"], "granted");
    let (status, claims) = userinfo(&app, &at_).await;
    assert_eq!(status, 200);
    assert_eq!(claims["name"], "Ada");
    assert!(
        claims.get("email").is_none(),
        "no email claim without the email permission"
    );
    let (_, g) = grants_api(
        &app,
        &client,
        reqwest::Method::GET,
        &format!("/api/v1/grants/{sub}"),
    )
    .await;
    assert_eq!(g["state"], "limited", "{g}");

    // Remembered: the same scopes again go straight back to the app.
    let (back, verifier) = authorize(&app, &browser, &client, "openid profile", &[]).await;
    assert!(
        back.starts_with("https://app.example/callback?code="),
        "{back}"
    );
    tokens(&app, &client, &back, &verifier).await;
    // prompt=consent asks again.
    let (next, _) = authorize(
        &app,
        &browser,
        &client,
        "openid profile",
        &[("prompt", "consent")],
    )
    .await;
    assert!(next.starts_with("/consent"), "{next}");

    // Incremental: asking for email again shows a screen for email only.
    let (next, verifier) = authorize(&app, &browser, &client, "openid profile email", &[]).await;
    let html = consent_page(&app, &browser, &next).await;
    let asked = html.split("Already allowed").next().unwrap();
    assert!(
        asked.contains("Your email address") && !asked.contains("Your name"),
        "{html}"
    );
    let back = approve(&app, &browser, &html, &["email"]).await;
    let t = tokens(&app, &client, &back, &verifier).await;
    assert_eq!(t["scope"], "openid profile email");
    let (_, claims) = userinfo(&app, &text(&t, "access_token")).await;
    assert_eq!(claims["email"], "ada@example.com");

    // A new consent copy (intended use) asks every scope again, and says why.
    sqlx::query(
        "UPDATE apps SET purpose = 'Show your name and send you receipts.' WHERE client_id = $1",
    )
    .bind(&client.client_id)
    .execute(app.sql().await)
    .await
    .unwrap();
    let (next, _) = authorize(&app, &browser, &client, "openid profile", &[]).await;
    let html = consent_page(&app, &browser, &next).await;
    assert!(html.contains("has changed how it describes"), "{html}");
    assert!(html.contains("send you receipts"));

    // The history: every change, in order, with actor and copy version.
    let (status, h) = grants_api(
        &app,
        &client,
        reqwest::Method::GET,
        &format!("/api/v1/grants/{sub}/history"),
    )
    .await;
    assert_eq!(status, 200, "{h}");
    let entries: Vec<(String, String, String)> = h["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (text(e, "scope"), text(e, "new_state"), text(e, "actor")))
        .collect();
    let has = |scope: &str, state: &str, actor: &str| {
        entries.contains(&(scope.to_string(), state.to_string(), actor.to_string()))
    };
    assert!(
        has("email", "requested", "app") && has("email", "denied", "user"),
        "{entries:?}"
    );
    assert!(
        has("email", "granted", "user") && has("profile", "granted", "user"),
        "{entries:?}"
    );
    let versions: std::collections::BTreeSet<&str> = h["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["consent_copy_version"].as_str())
        .collect();
    assert!(!versions.is_empty());
    // Append-only, also for someone with database access.
    let rewrite = sqlx::query("UPDATE permission_history SET new_state = 'granted'")
        .execute(app.sql().await)
        .await;
    assert!(rewrite.is_err(), "the history cannot be rewritten");
    let erase = sqlx::query("DELETE FROM permission_history")
        .execute(app.sql().await)
        .await;
    assert!(erase.is_err(), "the history cannot be erased");
}

async fn unavailable_scopes_are_shown_with_their_reason_never_dropped_silently(backend: Backend) {
    let app = spawn_app(backend).await;
    // A verified app approved for trust:read (which needs a trusted one), community:access
    // without its capability, assertions:read asked of an unverified account, and
    // links:read still in review.
    let mut s = spec(&[
        "openid",
        "profile",
        "trust:read",
        "community:access",
        "assertions:read",
    ]);
    s.consent.trust_level = onyx_id::scopes::TrustLevel::Verified;
    s.consent.pending_scopes = vec!["links:read".into()];
    let client = app.create_app_with(s).await;
    app.create_user("bo@example.com", "Bo").await;
    let browser = browser();
    let (next, verifier) = first_authorize(
        &app,
        &browser,
        &client,
        "bo@example.com",
        "openid profile trust:read community:access assertions:read links:read",
    )
    .await;
    let html = consent_page(&app, &browser, &next).await;
    let unavailable = html
        .split("Not available")
        .nth(1)
        .expect("an unavailable section");
    for sentence in [
        "Onyx has not approved this app for this access.",
        "depends on a capability",
        "needs an Onyx account with a verified email",
        "has not finished reviewing",
    ] {
        assert!(unavailable.contains(sentence), "{sentence} missing: {html}");
    }
    assert!(
        !html.contains("name=\"scope:trust:read\""),
        "unavailable scopes are not selectable"
    );
    let back = approve(&app, &browser, &html, &[]).await;
    let t = tokens(&app, &client, &back, &verifier).await;
    assert_eq!(t["scope"], "openid profile");
    let seen = introspect(&app, &client, &text(&t, "access_token")).await;
    for (scope, reason) in [
        ("trust:read", "app_not_approved"),
        ("community:access", "scope_gated"),
        ("assertions:read", "account_not_eligible"),
        ("links:read", "review_required"),
    ] {
        let p = permission(&seen, scope);
        assert_eq!(
            (p["state"].as_str(), p["reason"].as_str()),
            (Some("unavailable"), Some(reason)),
            "{seen}"
        );
    }

    // Region: messaging:send with its capability and trust, for an account in a region where
    // it is not offered; then the account moves there and it becomes available; then away
    // again: the granted permission is limited, with the reason, at once.
    let mut s = spec(&["openid", "messaging:send"]);
    s.consent.trust_level = onyx_id::scopes::TrustLevel::Verified;
    s.consent.capabilities = vec!["expanded_messaging".into()];
    let messenger = app.create_app_with(s).await;
    let (next, _) = authorize(&app, &browser, &messenger, "openid messaging:send", &[]).await;
    let html = consent_page(&app, &browser, &next).await;
    assert!(html.contains("not offered in the account"), "{html}");
    let changes = UserChanges {
        region: Some(Some("GB".into())),
        ..Default::default()
    };
    admin::update_user(&app.state.db, "bo@example.com", &changes)
        .await
        .unwrap();
    let (next, verifier) =
        authorize(&app, &browser, &messenger, "openid messaging:send", &[]).await;
    let html = consent_page(&app, &browser, &next).await;
    assert!(
        html.contains("Send you messages") && !html.contains("Not available"),
        "{html}"
    );
    let back = approve(&app, &browser, &html, &[]).await;
    let t = tokens(&app, &messenger, &back, &verifier).await;
    assert_eq!(t["scope"], "openid messaging:send");
    let token = text(&t, "access_token");
    let moved = UserChanges {
        region: Some(Some("BR".into())),
        ..Default::default()
    };
    admin::update_user(&app.state.db, "bo@example.com", &moved)
        .await
        .unwrap();
    let seen = introspect(&app, &messenger, &token).await;
    assert_eq!(seen["scope"], "openid", "{seen}");
    let p = permission(&seen, "messaging:send");
    assert_eq!(
        (p["state"].as_str(), p["reason"].as_str()),
        (Some("limited"), Some("region_not_supported"))
    );

    // Excessive, unsafe, duplicated and unknown requests are refused before any screen.
    for (scope, words) in [
        ("openid email", "not approved for this app"),
        ("openid grants:read", "the app's own access"),
        ("openid profile profile", "more than once"),
        ("openid telepathy", "not supported"),
    ] {
        let (back, _) = authorize(&app, &browser, &client, scope, &[]).await;
        let q = query(&back);
        assert_eq!(q["error"], "invalid_scope", "{scope}: {back}");
        assert!(
            q["error_description"].contains(words),
            "{scope}: {}",
            q["error_description"]
        );
    }
    // Nothing grantable at all: invalid_scope naming each scope and why.
    let (back, _) = authorize(&app, &browser, &client, "trust:read", &[]).await;
    let q = query(&back);
    assert_eq!(q["error"], "invalid_scope");
    assert!(
        q["error_description"].contains("trust:read")
            && q["error_description"].contains("app_not_approved")
    );
}

async fn expiry_by_policy_stops_use_at_once_and_renewal_is_asked(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut s = travel_spec();
    s.consent.consent_ttl = Some(600);
    s.lifetimes.access_token = Some(3600);
    let client = app.create_app_with(s).await;
    let sub = app.create_user("cy@example.com", "Cy").await;
    let browser = browser();
    let (next, verifier) = first_authorize(
        &app,
        &browser,
        &client,
        "cy@example.com",
        "openid profile offline_access",
    )
    .await;
    let html = consent_page(&app, &browser, &next).await;
    assert!(
        html.contains("This access lasts until"),
        "the screen says when consent ends: {html}"
    );
    let back = approve(&app, &browser, &html, &["offline_access"]).await;
    let t = tokens(&app, &client, &back, &verifier).await;
    let (token, refresh) = (text(&t, "access_token"), text(&t, "refresh_token"));
    let granted_until = app.clock_now() + 600;
    let seen = introspect(&app, &client, &token).await;
    assert_eq!(permission(&seen, "profile")["expires_at"], granted_until);

    app.clock.advance(601);
    let seen = introspect(&app, &client, &token).await;
    assert_eq!(seen["active"], false, "every permission expired: {seen}");
    let (status, _) = userinfo(&app, &token).await;
    assert_eq!(status, 401);
    let (status, err) = crate::helpers::refresh(&app, &client, &refresh).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"], "invalid_grant");
    let (_, g) = grants_api(
        &app,
        &client,
        reqwest::Method::GET,
        &format!("/api/v1/grants/{sub}"),
    )
    .await;
    assert_eq!(g["state"], "expired", "{g}");
    let p = permission(&g, "profile");
    assert_eq!(
        (p["state"].as_str(), p["reason"].as_str()),
        (Some("expired"), Some("expired_by_policy"))
    );

    // The sweep writes the expiry into the history, dated when it happened.
    onyx_id::store::grants::record_expiries(&app.state.db, app.clock_now())
        .await
        .unwrap();
    let (_, h) = grants_api(
        &app,
        &client,
        reqwest::Method::GET,
        &format!("/api/v1/grants/{sub}/history"),
    )
    .await;
    let expired: Vec<&Value> = h["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["new_state"] == "expired")
        .collect();
    assert_eq!(expired.len(), 3, "{h}");
    assert!(
        expired
            .iter()
            .all(|e| e["at"] == granted_until && e["actor"] == "onyx")
    );

    // Renewal: the app asks again and the user sees the screen again.
    let (next, _) = authorize(&app, &browser, &client, "openid profile", &[]).await;
    assert!(next.starts_with("/consent"), "{next}");
}

async fn account_page(app: &TestApp, browser: &reqwest::Client) -> String {
    let res = browser.get(app.url("/account/apps")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    res.text().await.unwrap()
}

async fn remove(
    app: &TestApp,
    browser: &reqwest::Client,
    csrf: &str,
    client_id: &str,
    scope: Option<&str>,
) -> StatusCode {
    let mut form = vec![("csrf_token", csrf), ("client_id", client_id)];
    if let Some(s) = scope {
        form.push(("scope", s));
    }
    browser
        .post(app.url("/account/apps/revoke"))
        .form(&form)
        .send()
        .await
        .unwrap()
        .status()
}

async fn users_revoke_on_the_connected_apps_page_partners_and_onyx_revoke_too(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app_with(travel_spec()).await;
    let sub = app.create_user("di@example.com", "Di").await;
    app.create_user("eve@example.com", "Eve").await;

    // The page needs a session, and sends to sign-in and back.
    let res = http().get(app.url("/account/apps")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(location(res.headers()), "/login?next=/account/apps");

    let browser = browser();
    let (next, verifier) = first_authorize(
        &app,
        &browser,
        &client,
        "di@example.com",
        "openid profile email offline_access",
    )
    .await;
    let html = consent_page(&app, &browser, &next).await;
    let back = approve(&app, &browser, &html, &["email", "offline_access"]).await;
    let t = tokens(&app, &client, &back, &verifier).await;
    let (token, refresh) = (text(&t, "access_token"), text(&t, "refresh_token"));

    let page = account_page(&app, &browser).await;
    for text in [
        "Travel Buddy",
        "Your email address",
        "Allowed",
        "Last used",
        "History",
    ] {
        assert!(page.contains(text), "{text} missing: {page}");
    }
    let csrf = hidden_field(&page, "csrf_token");

    // Forms need the CSRF token.
    assert_eq!(
        remove(&app, &browser, "forged", &client.client_id, None).await,
        400
    );

    // Another person cannot see or remove Di's grant.
    let eve = crate::helpers::browser();
    let res = eve
        .get(app.url("/login?next=/account/apps"))
        .send()
        .await
        .unwrap();
    let login = res.text().await.unwrap();
    let res = eve
        .post(app.url("/login"))
        .form(&[
            ("next", "/account/apps"),
            ("csrf_token", &hidden_field(&login, "csrf_token")),
            ("email", "eve@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(location(res.headers()), "/account/apps");
    let eve_page = account_page(&app, &eve).await;
    assert!(!eve_page.contains("Travel Buddy"), "{eve_page}");
    let eve_csrf = hidden_field(&login, "csrf_token");
    assert_eq!(
        remove(&app, &eve, &eve_csrf, &client.client_id, None).await,
        404
    );
    assert_eq!(introspect(&app, &client, &token).await["active"], true);

    // Di removes email: it leaves the token's scope at once; the rest keeps working.
    assert_eq!(
        remove(&app, &browser, &csrf, &client.client_id, Some("email")).await,
        303
    );
    let seen = introspect(&app, &client, &token).await;
    assert_eq!(seen["active"], true);
    assert!(!seen["scope"].as_str().unwrap().contains("email"), "{seen}");
    let p = permission(&seen, "email");
    assert_eq!(
        (p["state"].as_str(), p["reason"].as_str()),
        (Some("revoked"), Some("revoked_by_user"))
    );
    let (_, claims) = userinfo(&app, &token).await;
    assert!(claims.get("email").is_none() && claims["name"] == "Di");

    // Then the whole app: tokens inactive, refresh and userinfo refused, at once.
    assert_eq!(
        remove(&app, &browser, &csrf, &client.client_id, None).await,
        303
    );
    assert_eq!(introspect(&app, &client, &token).await["active"], false);
    let (status, _) = userinfo(&app, &token).await;
    assert_eq!(status, 401);
    let (status, _) = crate::helpers::refresh(&app, &client, &refresh).await;
    assert_eq!(status, 400);
    let (_, g) = grants_api(
        &app,
        &client,
        reqwest::Method::GET,
        &format!("/api/v1/grants/{sub}"),
    )
    .await;
    assert_eq!(g["state"], "revoked");
    assert_eq!(g["ended_reason"], "revoked_by_user");
    let page = account_page(&app, &browser).await;
    assert!(page.contains("Disconnected apps"), "{page}");

    // Reconnecting is a new decision: the screen again, and a new grant.
    let (next, verifier) = authorize(&app, &browser, &client, "openid profile", &[]).await;
    let html = consent_page(&app, &browser, &next).await;
    assert!(!html.contains("Already allowed"));
    let back = approve(&app, &browser, &html, &[]).await;
    let t = tokens(&app, &client, &back, &verifier).await;
    let (_, g2) = grants_api(
        &app,
        &client,
        reqwest::Method::GET,
        &format!("/api/v1/grants/{sub}"),
    )
    .await;
    assert_ne!(g2["grant_id"], g["grant_id"]);
    assert_eq!(g2["state"], "granted");

    // Onyx removes one permission (the operator CLI's path)...
    let v = admin::revoke_grant(
        &app.state.db,
        app.clock_now(),
        "di@example.com",
        &client.client_id,
        Some("profile"),
    )
    .await
    .unwrap();
    assert!(!v.grant_ended);
    let seen = introspect(&app, &client, &text(&t, "access_token")).await;
    assert_eq!(permission(&seen, "profile")["reason"], "revoked_by_onyx");
    // ...and the partner gives up the rest.
    let (status, g3) = grants_api(
        &app,
        &client,
        reqwest::Method::DELETE,
        &format!("/api/v1/grants/{sub}"),
    )
    .await;
    assert_eq!(status, 200, "{g3}");
    assert_eq!(g3["state"], "revoked");
    assert_eq!(permission(&g3, "openid")["reason"], "revoked_by_partner");
    assert_eq!(
        introspect(&app, &client, &text(&t, "access_token")).await["active"],
        false
    );

    // The operator's view lists both grants and the whole history.
    let shown = admin::show_grants(&app.state.db, app.clock_now(), "di@example.com")
        .await
        .unwrap();
    let shown = serde_json::to_value(shown).unwrap();
    assert_eq!(shown["grants"].as_array().unwrap().len(), 2);
    let actors: std::collections::BTreeSet<&str> = shown["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["actor"].as_str())
        .collect();
    assert_eq!(
        actors.into_iter().collect::<Vec<_>>(),
        ["app", "onyx", "partner", "user"]
    );
}

async fn the_partner_api_needs_the_apps_credentials_and_shows_only_its_own_users(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app_with(travel_spec()).await;
    let other = app.create_app(&["openid"]).await;
    let sub = app.create_user("fay@example.com", "Fay").await;
    let (code, verifier) =
        authorize_code(&app, &client.client_id, "fay@example.com", "openid profile").await;
    assert_eq!(
        exchange(&app, &client, &code, &verifier).await.status(),
        200
    );

    let path = format!("/api/v1/grants/{sub}");
    let res = http().get(app.url(&path)).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let err: Value = res.json().await.unwrap();
    assert_eq!(err["error"], "invalid_client");
    let res = http()
        .get(app.url(&path))
        .basic_auth(&client.client_id, Some("wrong"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let (status, g) = grants_api(&app, &other, reqwest::Method::GET, &path).await;
    assert_eq!(
        (status, g["error"].as_str()),
        (StatusCode::NOT_FOUND, Some("not_found"))
    );
    let (status, _) = grants_api(
        &app,
        &client,
        reqwest::Method::GET,
        "/api/v1/grants/no-such-user",
    )
    .await;
    assert_eq!(status, 404);
    let (status, g) = grants_api(&app, &client, reqwest::Method::GET, &path).await;
    assert_eq!(status, 200);
    assert_eq!(
        states(&g),
        [
            ("openid".to_string(), "granted".to_string()),
            ("profile".to_string(), "granted".to_string())
        ]
    );
    assert!(g["last_used_at"].is_i64(), "{g}");
}
