//! Attacks a security review found, each performed against the real server: "stay connected"
//! removed but refresh going on, a consent screen opened by another page taking grants away, the
//! consent page skipping a required sign-in, an answer granting what the page never showed, a
//! resource server's token read at userinfo, and signing keys leaving the JWKS too early or too
//! late. Each runs once per backend, as its own test.

use onyx_id::admin::{self, AppSpec};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

on_each_backend!(
    removing_stay_connected_stops_refresh_at_once,
    refresh_stops_when_offline_access_is_no_longer_usable_and_introspection_agrees,
    a_consent_screen_left_unanswered_takes_nothing_away,
    declining_a_repeated_question_keeps_what_was_granted,
    the_consent_page_cannot_skip_a_required_sign_in,
    the_answer_grants_only_what_the_page_showed,
    userinfo_refuses_a_token_minted_for_a_resource_server,
    a_retired_key_stays_published_as_long_as_an_apps_tokens_live,
);

const API: &str = "https://api.travel.example";

/// openid and profile required; email and offline_access optional; refresh allowed.
fn connected_spec() -> AppSpec {
    let mut s = spec(&["openid", "profile"]);
    s.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    s.consent.optional_scopes = vec!["email".into(), "offline_access".into()];
    s
}

/// Signs in with a fresh browser and allows `scope` with every optional scope ticked: the
/// browser (still signed in) and the token response.
async fn connect(
    app: &TestApp,
    client: &Client,
    email: &str,
    scope: &str,
) -> (reqwest::Client, Value) {
    let browser = browser();
    let (url, verifier) = authorize_url(app, &client.client_id, scope, &[]);
    let res = browser.get(url).send().await.unwrap();
    let next = log_in(app, &browser, &location(res.headers()), email).await;
    let html = consent_page(app, &browser, &next).await;
    let ticked: Vec<&str> = scope.split(' ').collect();
    let res = post_consent(app, &browser, &html, "approve", &ticked).await;
    assert_eq!(res.status(), 303);
    let back = location(res.headers());
    let res = exchange(app, client, &query(&back)["code"], &verifier).await;
    assert_eq!(res.status(), 200);
    (browser, res.json().await.unwrap())
}

/// The partner API's view of the user's grant: scope → state.
async fn states(app: &TestApp, client: &Client, sub: &str) -> Vec<(String, String)> {
    let path = format!("/api/v1/grants/{sub}");
    let (_, v) = grants_api(app, client, reqwest::Method::GET, &path).await;
    let mut out: Vec<(String, String)> = v["permissions"]
        .as_array()
        .unwrap_or_else(|| panic!("no permissions in {v}"))
        .iter()
        .map(|p| (text(p, "scope"), text(p, "state")))
        .collect();
    out.sort();
    out
}

fn pairs(v: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = v
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    out.sort();
    out
}

async fn removing_stay_connected_stops_refresh_at_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app_with(connected_spec()).await;
    let sub = app.create_user("ada@example.com", "Ada").await;
    app.create_user("bo@example.com", "Bo").await;
    let scope = "openid profile offline_access";

    // Remove on Connected apps.
    let (browser, tokens) = connect(&app, &client, "ada@example.com", scope).await;
    let rt = text(&tokens, "refresh_token");
    let html = get_text(&browser, app.url("/account/apps")).await;
    let res = browser
        .post(app.url("/account/apps/revoke"))
        .form(&[
            ("csrf_token", hidden_field(&html, "csrf_token").as_str()),
            ("client_id", client.client_id.as_str()),
            ("scope", "offline_access"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    assert_eq!(introspect(&app, &client, &rt).await["active"], false);
    let (status, err) = refresh(&app, &client, &rt).await;
    assert_eq!(
        (status, text(&err, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    // What is left of the grant still works: the access token, for openid and profile.
    let seen = introspect(&app, &client, &text(&tokens, "access_token")).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["scope"], "openid profile");
    let _ = sub;

    // The partner's DELETE of offline_access alone.
    let cy = app.create_user("cy@example.com", "Cy").await;
    let (_, tokens) = connect(&app, &client, "cy@example.com", scope).await;
    let rt = text(&tokens, "refresh_token");
    let path = format!("/api/v1/grants/{cy}?scope=offline_access");
    let (status, _) = grants_api(&app, &client, reqwest::Method::DELETE, &path).await;
    assert_eq!(status, 200);
    assert_eq!(
        states(&app, &client, &cy).await,
        pairs(&[
            ("openid", "granted"),
            ("profile", "granted"),
            ("offline_access", "revoked"),
        ])
    );
    let (status, err) = refresh(&app, &client, &rt).await;
    assert_eq!(
        (status, text(&err, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    // A scope list it cannot read is refused, and changes nothing.
    let path = format!("/api/v1/grants/{cy}?scope=no-such-scope");
    let (status, _) = grants_api(&app, &client, reqwest::Method::DELETE, &path).await;
    assert_eq!(status, 400);
    assert_eq!(states(&app, &client, &cy).await.len(), 3);

    // `grants revoke --scope offline_access` (Onyx).
    let (_, tokens) = connect(&app, &client, "bo@example.com", scope).await;
    let rt = text(&tokens, "refresh_token");
    admin::revoke_grant(
        &app.state.db,
        app.clock_now(),
        "bo@example.com",
        &client.client_id,
        Some("offline_access"),
    )
    .await
    .unwrap();
    let (status, err) = refresh(&app, &client, &rt).await;
    assert_eq!(
        (status, text(&err, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
}

async fn refresh_stops_when_offline_access_is_no_longer_usable_and_introspection_agrees(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let client = app.create_app_with(connected_spec()).await;
    app.create_user("cy@example.com", "Cy").await;
    let (_, tokens) = connect(
        &app,
        &client,
        "cy@example.com",
        "openid profile email offline_access",
    )
    .await;

    // The user removes email: the successor refresh token carries only what is still usable.
    admin::revoke_grant(
        &app.state.db,
        app.clock_now(),
        "cy@example.com",
        &client.client_id,
        Some("email"),
    )
    .await
    .unwrap();
    let (status, next) = refresh(&app, &client, &text(&tokens, "refresh_token")).await;
    assert_eq!(status, 200, "{next}");
    let rt = text(&next, "refresh_token");
    let seen = introspect(&app, &client, &rt).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["scope"], "openid profile offline_access");

    // Onyx withdraws its approval of offline_access (nothing revokes the refresh token itself):
    // introspection already says inactive, and the refresh is refused and ends the family.
    let approved = json!(["openid", "profile", "email", "grants:read"]).to_string();
    sqlx::query("UPDATE apps SET scopes = $1, optional_scopes = $2 WHERE client_id = $3")
        .bind(&approved)
        .bind(json!(["email"]).to_string())
        .bind(&client.client_id)
        .execute(app.sql().await)
        .await
        .unwrap();
    assert_eq!(introspect(&app, &client, &rt).await["active"], false);
    let (status, err) = refresh(&app, &client, &rt).await;
    assert_eq!(
        (status, text(&err, "error")),
        (StatusCode::BAD_REQUEST, "invalid_grant".into())
    );
    // The approval comes back, but the family's refresh tokens are revoked for good.
    sqlx::query("UPDATE apps SET scopes = $1, optional_scopes = $2 WHERE client_id = $3")
        .bind(json!(["openid", "profile", "grants:read"]).to_string())
        .bind(json!(["email", "offline_access"]).to_string())
        .bind(&client.client_id)
        .execute(app.sql().await)
        .await
        .unwrap();
    assert_eq!(introspect(&app, &client, &rt).await["active"], false);
    let (status, _) = refresh(&app, &client, &rt).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

async fn a_consent_screen_left_unanswered_takes_nothing_away(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app_with(connected_spec()).await;
    let sub = app.create_user("di@example.com", "Di").await;
    let (browser, tokens) = connect(
        &app,
        &client,
        "di@example.com",
        "openid profile offline_access",
    )
    .await;
    let granted = pairs(&[
        ("openid", "granted"),
        ("profile", "granted"),
        ("offline_access", "granted"),
    ]);
    assert_eq!(states(&app, &client, &sub).await, granted);

    // Any page can send the signed-in browser here; the screen is shown and never answered.
    let (url, _) = authorize_url(
        &app,
        &client.client_id,
        "openid profile offline_access",
        &[("prompt", "consent")],
    );
    let res = browser.get(url).send().await.unwrap();
    let html = consent_page(&app, &browser, &location(res.headers())).await;
    assert!(html.contains("Allow"), "the question is asked");
    assert_eq!(states(&app, &client, &sub).await, granted);
    let seen = introspect(&app, &client, &text(&tokens, "access_token")).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["scope"], "openid profile offline_access");
    let (status, next) = refresh(&app, &client, &text(&tokens, "refresh_token")).await;
    assert_eq!(status, 200, "{next}");

    // The question is in the history, without rewriting a permission; shown twice, noted once.
    let _ = browser
        .get(app.url(&format!(
            "/consent?request_id={}",
            hidden_field(&html, "request_id")
        )))
        .send()
        .await
        .unwrap();
    let path = format!("/api/v1/grants/{sub}/history");
    let (_, history) = grants_api(&app, &client, reqwest::Method::GET, &path).await;
    let entries = history["entries"]
        .as_array()
        .unwrap_or_else(|| panic!("a history list: {history}"))
        .clone();
    // After the first question and its answer, only notes of the question asked again.
    let asked: Vec<&Value> = entries
        .iter()
        .skip(6)
        .filter(|e| e["reason"] == "awaiting_decision")
        .collect();
    assert_eq!(entries.len(), 9, "{history}");
    assert_eq!(asked.len(), 3, "one note per scope asked again: {history}");
    for e in asked {
        assert_eq!(e["old_state"], "granted", "{e}");
        assert_eq!(e["new_state"], "granted", "{e}");
    }

    // Incremental: a new scope is `requested` on its own; the granted ones stay granted.
    let (url, _) = authorize_url(&app, &client.client_id, "openid profile email", &[]);
    let res = browser.get(url).send().await.unwrap();
    let _ = consent_page(&app, &browser, &location(res.headers())).await;
    assert_eq!(
        states(&app, &client, &sub).await,
        pairs(&[
            ("openid", "granted"),
            ("profile", "granted"),
            ("offline_access", "granted"),
            ("email", "requested"),
        ])
    );
    let seen = introspect(&app, &client, &text(&next, "access_token")).await;
    assert_eq!(seen["active"], true, "{seen}");
}

async fn declining_a_repeated_question_keeps_what_was_granted(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app_with(connected_spec()).await;
    let sub = app.create_user("ed@example.com", "Ed").await;
    let (browser, tokens) = connect(&app, &client, "ed@example.com", "openid profile").await;
    let (url, _) = authorize_url(
        &app,
        &client.client_id,
        "openid profile email",
        &[("prompt", "consent")],
    );
    let res = browser.get(url).send().await.unwrap();
    let html = consent_page(&app, &browser, &location(res.headers())).await;
    let res = post_consent(&app, &browser, &html, "deny", &[]).await;
    assert_eq!(res.status(), 303);
    assert_eq!(query(&location(res.headers()))["error"], "access_denied");
    // The new scope is denied; what the person granted before still stands.
    assert_eq!(
        states(&app, &client, &sub).await,
        pairs(&[
            ("openid", "granted"),
            ("profile", "granted"),
            ("email", "denied")
        ])
    );
    let seen = introspect(&app, &client, &text(&tokens, "access_token")).await;
    assert_eq!(seen["active"], true, "{seen}");
}

async fn the_consent_page_cannot_skip_a_required_sign_in(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid", "profile"]).await;
    app.create_user("fay@example.com", "Fay").await;
    let browser = browser();
    // Signed in an hour ago (answering a first request).
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[]);
    let res = browser.get(url).send().await.unwrap();
    let next = log_in(&app, &browser, &location(res.headers()), "fay@example.com").await;
    let html = consent_page(&app, &browser, &next).await;
    assert_eq!(
        post_consent(&app, &browser, &html, "approve", &[])
            .await
            .status(),
        303
    );
    for extra in [[("prompt", "login")], [("max_age", "60")]] {
        app.clock.advance(3600);
        let (url, _) = authorize_url(&app, &client.client_id, "openid profile", &extra);
        let res = browser.get(url).send().await.unwrap();
        let login = location(res.headers());
        assert!(
            login.starts_with("/login?request_id="),
            "{extra:?}: {login}"
        );
        let request_id = query(&app.url(&login))["request_id"].clone();
        // The browser goes to the consent page instead of signing in again.
        let consent = format!("/consent?request_id={request_id}");
        let res = browser.get(app.url(&consent)).send().await.unwrap();
        assert_eq!(res.status(), 303, "{extra:?}");
        assert_eq!(location(res.headers()), login, "{extra:?}: sent to sign in");
        // Nor can it post an answer with the CSRF token the login page gave it.
        let login_html = get_text(&browser, app.url(&login)).await;
        let res = browser
            .post(app.url("/consent"))
            .form(&[
                ("request_id", request_id.as_str()),
                (
                    "csrf_token",
                    hidden_field(&login_html, "csrf_token").as_str(),
                ),
                ("decision", "approve"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{extra:?}");
        let to = location(res.headers());
        assert!(
            to.starts_with("/login"),
            "{extra:?}: no code, sign in first: {to}"
        );
        // Signing in again answers it, with the new auth_time.
        let mut next = log_in(&app, &browser, &login, "fay@example.com").await;
        if next.starts_with("/consent") {
            let html = consent_page(&app, &browser, &next).await;
            next = location(
                post_consent(&app, &browser, &html, "approve", &[])
                    .await
                    .headers(),
            );
        }
        assert!(query(&next).contains_key("code"), "{extra:?}: {next}");
    }
}

async fn the_answer_grants_only_what_the_page_showed(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut s = spec(&["openid", "profile"]);
    s.consent.pending_scopes = vec!["email".into()];
    s.consent.consent_copy = "We never share your details.".into();
    let client = app.create_app_with(s).await;
    let sub = app.create_user("gil@example.com", "Gil").await;
    let browser = browser();
    let (url, verifier) = authorize_url(&app, &client.client_id, "openid profile email", &[]);
    let res = browser.get(url).send().await.unwrap();
    let next = log_in(&app, &browser, &location(res.headers()), "gil@example.com").await;
    let shown = consent_page(&app, &browser, &next).await;
    assert!(shown.contains("Not available"), "email waits for review");

    // While the page is open, Onyx approves email and the app edits its consent copy.
    sqlx::query("UPDATE apps SET scopes = $1, pending_scopes = '[]', consent_copy = $2 WHERE client_id = $3")
        .bind(json!(["openid", "profile", "email", "grants:read"]).to_string())
        .bind("We share your email with our airline partners.")
        .bind(&client.client_id)
        .execute(app.sql().await)
        .await
        .unwrap();
    let res = post_consent(&app, &browser, &shown, "approve", &[]).await;
    assert_eq!(res.status(), 200, "the page is shown again, no code");
    let again = res.text().await.unwrap();
    assert!(
        again.contains("changed since the page was shown"),
        "{again}"
    );
    assert!(again.contains("airline partners"));
    // Nothing was granted from the stale page.
    assert!(
        !states(&app, &client, &sub)
            .await
            .iter()
            .any(|(_, st)| st == "granted"),
        "no permission granted from a page that was never shown"
    );
    // A forged digest fares no better.
    let forged = again.replace(&hidden_field(&again, "shown"), "AAAA");
    assert_eq!(
        post_consent(&app, &browser, &forged, "approve", &[])
            .await
            .status(),
        200
    );

    // The page as shown now is answered, with the copy version it showed.
    let res = post_consent(&app, &browser, &again, "approve", &[]).await;
    assert_eq!(res.status(), 303);
    let back = location(res.headers());
    let res = exchange(&app, &client, &query(&back)["code"], &verifier).await;
    let tokens: Value = res.json().await.unwrap();
    assert_eq!(tokens["scope"], "openid profile email");
    let version =
        onyx_id::consent::copy_version("", "We share your email with our airline partners.");
    let stored: String = sqlx::query_scalar("SELECT copy_version FROM grants WHERE user_id = $1")
        .bind(&sub)
        .fetch_one(app.sql().await)
        .await
        .unwrap();
    assert_eq!(stored, version);
}

async fn userinfo_refuses_a_token_minted_for_a_resource_server(backend: Backend) {
    let app = spawn_app(backend).await;
    admin::create_resource_server(&app.state.db, app.clock_now(), "Travel API", API)
        .await
        .unwrap();
    let client = app.create_app(&["openid", "profile"]).await;
    app.create_user("hal@example.com", "Hal").await;
    for (resource, expected) in [
        (None, StatusCode::OK),
        (Some(API), StatusCode::UNAUTHORIZED),
    ] {
        let extra: Vec<(&str, &str)> = resource.map(|r| ("resource", r)).into_iter().collect();
        let browser = browser();
        let (url, verifier) = authorize_url(&app, &client.client_id, "openid profile", &extra);
        let res = browser.get(url).send().await.unwrap();
        let mut next = log_in(&app, &browser, &location(res.headers()), "hal@example.com").await;
        if next.starts_with("/consent") {
            let html = consent_page(&app, &browser, &next).await;
            next = location(
                post_consent(&app, &browser, &html, "approve", &[])
                    .await
                    .headers(),
            );
        }
        let tokens: Value = exchange(&app, &client, &query(&next)["code"], &verifier)
            .await
            .json()
            .await
            .unwrap();
        let res = http()
            .get(app.url("/userinfo"))
            .bearer_auth(text(&tokens, "access_token"))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), expected, "resource {resource:?}");
        if expected == StatusCode::UNAUTHORIZED {
            let challenge = res.headers()["www-authenticate"]
                .to_str()
                .unwrap()
                .to_string();
            assert!(challenge.contains("invalid_token"), "{challenge}");
        }
    }
}

async fn a_retired_key_stays_published_as_long_as_an_apps_tokens_live(backend: Backend) {
    let app = spawn_app(backend).await;
    // An app whose access tokens live 8 hours, far longer than the server's hour.
    let mut s = spec(&["openid"]);
    s.lifetimes.access_token = Some(8 * 3600);
    app.create_app_with(s).await;
    let kids = |app: &TestApp| {
        let url = app.url("/jwks.json");
        async move {
            let v: Value = http().get(url).send().await.unwrap().json().await.unwrap();
            v["keys"]
                .as_array()
                .unwrap()
                .iter()
                .map(|k| text(k, "kid"))
                .collect::<Vec<_>>()
        }
    };
    let old = kids(&app).await;
    let mut settings = app.state.settings.clone();
    settings.keys_dir = app.keys_dir.clone();
    let out = admin::rotate_keys(&app.state.db, &settings, app.clock_now(), false, false)
        .await
        .unwrap();
    assert_eq!(
        out.previous_keys_published_until,
        app.clock_now() + 120 + 8 * 3600
    );
    // Past the server's own lifetimes, a token the app got just before the switch still lives.
    app.clock.advance(120 + 3600 + 60);
    let published = kids(&app).await;
    assert!(
        old.iter().all(|k| published.contains(k)),
        "old keys still published"
    );
    app.clock.advance(8 * 3600);
    let published = kids(&app).await;
    assert!(
        old.iter().all(|k| !published.contains(k)),
        "gone once those tokens expired"
    );

    // A compromised key: --now --revoke-old takes every older key out at once.
    let before = kids(&app).await;
    let out = admin::rotate_keys(&app.state.db, &settings, app.clock_now(), true, true)
        .await
        .unwrap();
    assert!(out.previous_keys_revoked);
    let after = kids(&app).await;
    assert_eq!(
        after.len(),
        2,
        "only the new ES256 and RS256 keys: {after:?}"
    );
    assert!(before.iter().all(|k| !after.contains(k)));
}
