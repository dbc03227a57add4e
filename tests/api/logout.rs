//! RP-Initiated Logout 1.0 at the end-session endpoint: a verified `id_token_hint` signs the
//! person out at once and sends them back to a registered `post_logout_redirect_uri` with
//! `state`; anything else is asked about or refused, never redirected to an unregistered
//! address. And the tokens a session's end revokes, and those it leaves.

use onyx_id::keys::{Algorithm, KeyMaterial, encode_jws};
use reqwest::StatusCode;

use crate::helpers::{
    Backend, Client, TestApp, browser, hidden_field, introspect, location, query, refresh,
    spawn_app_with, text, userinfo,
};
use crate::support::logout::{
    self, SIGNED_OUT, SignedIn, authorize_goes_to, claims_of, end_session_endpoint, header_of,
    sign_in,
};

on_each_backend!(
    a_verified_hint_signs_out_and_returns_to_the_app_with_state,
    the_end_session_endpoint_takes_a_form_post,
    an_unregistered_post_logout_redirect_uri_gets_a_page_never_a_redirect,
    a_forged_hint_gets_a_confirmation_page_whose_form_needs_csrf,
    an_expired_hint_still_signs_out,
    without_a_return_address_the_person_sees_they_are_signed_out,
    sign_out_revokes_the_session_s_tokens_but_offline_access_survives,
    apps_create_registers_the_sign_out_uris_and_refuses_bad_ones,
    a_partner_s_sign_out_uris_are_pre_checked_reviewed_and_then_live,
    the_purge_forgets_the_token_families_of_sessions_that_expired,
);

async fn count(app: &TestApp, table: &str) -> i64 {
    sqlx::query_scalar(sqlx::AssertSqlSafe(format!("SELECT COUNT(*) FROM {table}")))
        .fetch_one(app.sql().await)
        .await
        .unwrap()
}

const EMAIL: &str = "ada@example.com";

async fn setup(backend: Backend) -> (TestApp, Client, SignedIn) {
    let app = spawn_app_with(backend, &logout::local).await;
    app.create_user(EMAIL, "Ada").await;
    let client = logout::app_with(&app, "Travel Buddy", None, &["openid", "profile"]).await;
    let signed_in = sign_in(&app, &client, EMAIL, "openid profile").await;
    (app, client, signed_in)
}

/// The end-session URL with `pairs`.
async fn end_session_url(app: &TestApp, pairs: &[(&str, &str)]) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    format!("{}?{q}", end_session_endpoint(app).await)
}

/// Whether the browser is still signed in: `/authorize` goes straight back to the app.
async fn still_signed_in(app: &TestApp, s: &SignedIn, client: &Client) -> bool {
    let to = authorize_goes_to(app, &s.browser, client).await;
    assert!(
        to.starts_with("/login") || to.starts_with("https://app.example/callback"),
        "{to}"
    );
    !to.starts_with("/login")
}

/// The session cookie is cleared by this answer.
fn clears_the_session_cookie(res: &reqwest::Response) -> bool {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("onyx_session=;") && c.contains("Max-Age=0"))
}

async fn a_verified_hint_signs_out_and_returns_to_the_app_with_state(backend: Backend) {
    let (app, client, s) = setup(backend).await;
    // Discovery says where, and that back-channel logout is supported.
    let d: serde_json::Value = reqwest::get(app.url("/.well-known/openid-configuration"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        d["end_session_endpoint"],
        format!("{}/end_session", app.issuer)
    );
    assert_eq!(d["backchannel_logout_supported"], true);
    assert_eq!(d["backchannel_logout_session_supported"], true);
    // The ID token's sid is the session's public id (the cookie's secret is only stored
    // hashed, as the key).
    let sessions: Vec<(String, String)> = sqlx::query_as("SELECT sid, id_hash FROM sessions")
        .fetch_all(app.sql().await)
        .await
        .unwrap();
    assert_eq!(sessions.len(), 1);
    assert_eq!(sessions[0].0, s.sid);
    assert_ne!(sessions[0].1, s.sid);
    assert!(still_signed_in(&app, &s, &client).await);
    assert_eq!(count(&app, "session_families").await, 1);

    let url = end_session_url(
        &app,
        &[
            ("id_token_hint", s.id_token.as_str()),
            ("post_logout_redirect_uri", SIGNED_OUT),
            ("state", "bye-42"),
        ],
    )
    .await;
    let res = s.browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(clears_the_session_cookie(&res));
    let back = location(res.headers());
    assert!(back.starts_with(SIGNED_OUT), "{back}");
    assert_eq!(query(&back)["state"], "bye-42");
    // The next authorization asks the person to sign in again.
    assert!(!still_signed_in(&app, &s, &client).await);
    assert_eq!(count(&app, "sessions").await, 0);
    assert_eq!(
        count(&app, "session_families").await,
        0,
        "the links went with it"
    );
}

async fn the_end_session_endpoint_takes_a_form_post(backend: Backend) {
    let (app, client, s) = setup(backend).await;
    let res = s
        .browser
        .post(end_session_endpoint(&app).await)
        .form(&[
            ("id_token_hint", s.id_token.as_str()),
            ("client_id", client.client_id.as_str()),
            ("post_logout_redirect_uri", SIGNED_OUT),
            ("state", "posted"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(query(&location(res.headers()))["state"], "posted");
    assert!(!still_signed_in(&app, &s, &client).await);
}

async fn an_unregistered_post_logout_redirect_uri_gets_a_page_never_a_redirect(backend: Backend) {
    let (app, client, s) = setup(backend).await;
    let other = logout::app_with(&app, "Other App", None, &["openid"]).await;
    let hint = s.id_token.as_str();
    let cases: Vec<Vec<(&str, &str)>> = vec![
        // Not registered by the app.
        vec![
            ("id_token_hint", hint),
            (
                "post_logout_redirect_uri",
                "https://evil.example/signed-out",
            ),
        ],
        // Registered, but not byte for byte.
        vec![
            ("id_token_hint", hint),
            (
                "post_logout_redirect_uri",
                "https://app.example/signed-out/",
            ),
        ],
        // No app identified: no redirect at all.
        vec![("post_logout_redirect_uri", SIGNED_OUT)],
        // The client_id and the hint disagree.
        vec![
            ("id_token_hint", hint),
            ("client_id", other.client_id.as_str()),
            ("post_logout_redirect_uri", SIGNED_OUT),
        ],
        // An app that does not exist.
        vec![
            ("client_id", "no-such-app"),
            ("post_logout_redirect_uri", SIGNED_OUT),
        ],
    ];
    for pairs in cases {
        let res = s
            .browser
            .get(end_session_url(&app, &pairs).await)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST, "{pairs:?}");
        assert!(res.headers().get("location").is_none(), "{pairs:?}");
        assert_eq!(res.headers()["x-frame-options"], "DENY");
        let html = res.text().await.unwrap();
        assert!(html.contains("Cannot sign out"), "{html}");
        // Refused before anything ended.
        assert!(still_signed_in(&app, &s, &client).await, "{pairs:?}");
    }
}

/// `s`'s ID token, signed by a key onyx-id does not hold (under onyx-id's own `kid`).
fn forged(s: &SignedIn) -> String {
    let kid = text(&header_of(&s.id_token), "kid");
    let key = KeyMaterial::generate(Algorithm::ES256).unwrap();
    encode_jws(&kid, Algorithm::ES256, "JWT", &claims_of(&s.id_token), &key).unwrap()
}

async fn a_forged_hint_gets_a_confirmation_page_whose_form_needs_csrf(backend: Backend) {
    let (app, client, s) = setup(backend).await;
    let forged = forged(&s);
    let url = end_session_url(
        &app,
        &[
            ("id_token_hint", forged.as_str()),
            ("client_id", client.client_id.as_str()),
            ("post_logout_redirect_uri", SIGNED_OUT),
            ("state", "asked"),
        ],
    )
    .await;
    let res = s.browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let html = res.text().await.unwrap();
    assert!(html.contains("Sign out of Onyx ID?"), "{html}");
    assert!(html.contains("Travel Buddy"), "{html}");
    assert!(html.contains(EMAIL), "{html}");
    // Nothing ended yet.
    assert!(still_signed_in(&app, &s, &client).await);

    let mut form = vec![
        ("client_id", hidden_field(&html, "client_id")),
        (
            "post_logout_redirect_uri",
            hidden_field(&html, "post_logout_redirect_uri"),
        ),
        ("state", hidden_field(&html, "state")),
    ];
    let confirm = app.url("/end_session/confirm");
    // Without the CSRF token (or with another), the form is refused and nothing ends.
    for csrf in [None, Some("x".repeat(43))] {
        let mut f = form.clone();
        if let Some(c) = csrf {
            f.push(("csrf_token", c));
        }
        let res = s.browser.post(&confirm).form(&f).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        assert!(res.headers().get("location").is_none());
        assert!(still_signed_in(&app, &s, &client).await);
    }
    // From another browser (no CSRF cookie), too.
    let elsewhere = browser();
    let mut f = form.clone();
    f.push(("csrf_token", hidden_field(&html, "csrf_token")));
    let res = elsewhere.post(&confirm).form(&f).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);

    form.push(("csrf_token", hidden_field(&html, "csrf_token")));
    let res = s.browser.post(&confirm).form(&form).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(clears_the_session_cookie(&res));
    let back = location(res.headers());
    assert!(back.starts_with(SIGNED_OUT), "{back}");
    assert_eq!(query(&back)["state"], "asked");
    assert!(!still_signed_in(&app, &s, &client).await);

    // A confirmation form edited to another return address is refused like the request.
    let s2 = sign_in(&app, &client, EMAIL, "openid profile").await;
    let res = s2
        .browser
        .get(end_session_url(&app, &[("client_id", client.client_id.as_str())]).await)
        .send()
        .await
        .unwrap();
    let html = res.text().await.unwrap();
    let res = s2
        .browser
        .post(&confirm)
        .form(&[
            ("csrf_token", hidden_field(&html, "csrf_token")),
            ("client_id", client.client_id.clone()),
            (
                "post_logout_redirect_uri",
                "https://evil.example/".to_string(),
            ),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert!(res.headers().get("location").is_none());
    assert!(still_signed_in(&app, &s2, &client).await);
}

async fn an_expired_hint_still_signs_out(backend: Backend) {
    let (app, client, s) = setup(backend).await;
    let exp = claims_of(&s.id_token)["exp"].as_i64().unwrap();
    // Past the ID token's expiry, within the session's lifetime.
    app.clock.advance(exp - app.clock_now() + 60);
    assert!(still_signed_in(&app, &s, &client).await);
    let url = end_session_url(
        &app,
        &[
            ("id_token_hint", s.id_token.as_str()),
            ("post_logout_redirect_uri", SIGNED_OUT),
            ("state", "late"),
        ],
    )
    .await;
    let res = s.browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(query(&location(res.headers()))["state"], "late");
    assert!(!still_signed_in(&app, &s, &client).await);
}

async fn without_a_return_address_the_person_sees_they_are_signed_out(backend: Backend) {
    let (app, client, s) = setup(backend).await;
    let url = end_session_url(&app, &[("id_token_hint", s.id_token.as_str())]).await;
    let res = s.browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(clears_the_session_cookie(&res));
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let html = res.text().await.unwrap();
    assert!(html.contains("You are signed out"), "{html}");
    assert!(!still_signed_in(&app, &s, &client).await);
    // Signed out already: the same request again just says so.
    let url = end_session_url(&app, &[("id_token_hint", s.id_token.as_str())]).await;
    let res = s.browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("You are signed out"));
}

async fn sign_out_revokes_the_session_s_tokens_but_offline_access_survives(backend: Backend) {
    let app = spawn_app_with(backend, &logout::local).await;
    app.create_user(EMAIL, "Ada").await;
    let online = logout::app_with(&app, "Travel Buddy", None, &["openid", "profile"]).await;
    let offline = logout::app_with(
        &app,
        "Trip Sync",
        None,
        &["openid", "offline_access", "profile"],
    )
    .await;
    let s = sign_in(&app, &online, EMAIL, "openid profile").await;
    // The same session signs in to the second app, which stays connected while the person is
    // away (offline_access).
    let kept = logout::tokens_in(
        &app,
        &s.browser,
        &offline,
        EMAIL,
        "openid offline_access profile",
    )
    .await;
    assert_eq!(claims_of(&text(&kept, "id_token"))["sid"], s.sid);
    let kept_refresh = text(&kept, "refresh_token");
    assert_eq!(
        introspect(&app, &online, &s.access_token()).await["active"],
        true
    );

    let url = end_session_url(&app, &[("id_token_hint", s.id_token.as_str())]).await;
    let res = s.browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);

    // The session's own tokens are revoked…
    assert_eq!(
        introspect(&app, &online, &s.access_token()).await["active"],
        false
    );
    let (status, _) = userinfo(&app, &s.access_token()).await;
    assert_eq!(status, 401);
    // … and the offline_access ones still work: the access token, and the refresh token.
    assert_eq!(
        introspect(&app, &offline, &text(&kept, "access_token")).await["active"],
        true
    );
    let (status, renewed) = refresh(&app, &offline, &kept_refresh).await;
    assert_eq!(status, 200, "{renewed}");
    assert_eq!(
        introspect(&app, &offline, &text(&renewed, "access_token")).await["active"],
        true
    );
}

async fn apps_create_registers_the_sign_out_uris_and_refuses_bad_ones(backend: Backend) {
    use crate::support::cli::{one_json_object, onyx};
    let (app, _, s) = setup(backend).await;
    let (code, out, err) = onyx(
        &app,
        &[
            "apps",
            "create",
            "--name",
            "Cli App",
            "--redirect-uri",
            crate::helpers::REDIRECT,
            "--post-logout-redirect-uri",
            "https://cli.example/bye",
            "--post-logout-redirect-uri",
            "http://127.0.0.1:8400/bye",
            "--backchannel-logout-uri",
            "https://cli.example/onyx/logout",
            "--backchannel-logout-session-required",
            "false",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let created = one_json_object(&out);
    assert_eq!(
        created["post_logout_redirect_uris"],
        serde_json::json!(["https://cli.example/bye", "http://127.0.0.1:8400/bye"])
    );
    assert_eq!(
        created["backchannel_logout_uri"],
        "https://cli.example/onyx/logout"
    );
    assert_eq!(created["backchannel_logout_session_required"], false);
    // The registered URI is honoured for that app, named by client_id (after confirming).
    let cli_client = text(&created, "client_id");
    let url = end_session_url(
        &app,
        &[
            ("client_id", cli_client.as_str()),
            ("post_logout_redirect_uri", "https://cli.example/bye"),
        ],
    )
    .await;
    let html = s
        .browser
        .get(url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Cli App asked to sign you out"), "{html}");
    assert_eq!(
        hidden_field(&html, "post_logout_redirect_uri"),
        "https://cli.example/bye"
    );

    for (flag, value) in [
        ("--post-logout-redirect-uri", "https://cli.example/bye#x"),
        ("--post-logout-redirect-uri", "http://cli.example/bye"),
        ("--post-logout-redirect-uri", "not a url"),
        ("--backchannel-logout-uri", "http://cli.example/logout"),
        ("--backchannel-logout-uri", "https://cli.example/logout#x"),
        ("--backchannel-logout-uri", "https://u:p@cli.example/logout"),
    ] {
        let (code, _, err) = onyx(
            &app,
            &[
                "apps",
                "create",
                "--name",
                "Bad",
                "--redirect-uri",
                crate::helpers::REDIRECT,
                flag,
                value,
            ],
            None,
        )
        .await;
        assert_ne!(code, 0, "{flag} {value}");
        assert!(err.contains(flag), "{flag} {value}: {err}");
    }
}

async fn a_partner_s_sign_out_uris_are_pre_checked_reviewed_and_then_live(backend: Backend) {
    use crate::support::partner_api::{
        app_in_preview_with, decide, good_draft, patch, publish, spawn_program,
    };
    use serde_json::json;
    let published = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let port = publish(published.clone()).await;
    let app = spawn_program(backend, port).await;
    let (op, key, client_id, secret) = app_in_preview_with(&app, &published, good_draft()).await;
    let path = format!("/api/v1/apps/{client_id}");

    // Changing them reopens the redirect URI step, and the pre-checks judge them.
    let (status, v) = patch(
        &app,
        &path,
        &key,
        json!({
            "post_logout_redirect_uris": ["http://app.example/signed-out"],
            "backchannel_logout_uri": "http://app.example/onyx/logout",
        }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let step = v["review"]["steps"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["step"] == "redirect_uris")
        .unwrap()
        .clone();
    assert_eq!(step["state"], "pending", "{v}");
    assert_eq!(v["live"]["post_logout_redirect_uris"], json!([]));
    let (status, v) = decide(&app, &op, &client_id, "redirect_uris", "approved").await;
    assert_eq!(status, 409, "{v}");
    let codes: Vec<&str> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["code"].as_str().unwrap())
        .collect();
    assert!(
        codes.contains(&"post_logout_redirect_uri_not_https"),
        "{codes:?}"
    );
    assert!(
        codes.contains(&"backchannel_logout_uri_not_https"),
        "{codes:?}"
    );

    // Fixed and approved: live.
    let (status, v) = patch(
        &app,
        &path,
        &key,
        json!({
            "post_logout_redirect_uris": ["https://app.example/signed-out"],
            "backchannel_logout_uri": "https://app.example/onyx/logout",
            "backchannel_logout_session_required": false,
        }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["draft"]["post_logout_redirect_uris"],
        json!(["https://app.example/signed-out"])
    );
    let (status, v) = decide(&app, &op, &client_id, "redirect_uris", "approved").await;
    assert_eq!(status, 200, "{v}");
    let (_, v) = crate::support::partner_api::get(&app, &path, &key).await;
    assert_eq!(
        v["live"]["post_logout_redirect_uris"],
        json!(["https://app.example/signed-out"])
    );
    assert_eq!(
        v["live"]["backchannel_logout_uri"],
        "https://app.example/onyx/logout"
    );
    assert_eq!(v["live"]["backchannel_logout_session_required"], false);
    // The end-session endpoint honours it for the app (nobody is signed in here: straight
    // back).
    let res = crate::helpers::http()
        .get(
            end_session_url(
                &app,
                &[
                    ("client_id", client_id.as_str()),
                    ("post_logout_redirect_uri", "https://app.example/signed-out"),
                    ("state", "s1"),
                ],
            )
            .await,
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(res.headers()),
        "https://app.example/signed-out?state=s1"
    );

    // A test account signs in to the app, then signs out on onyx-id's pages: the partner
    // finds the back-channel logout of that session in the app's log, with its attempt (the
    // app's host does not resolve here, so the attempt failed, with its error).
    let deliveries = format!("/api/v1/apps/{client_id}/backchannel-logout/deliveries");
    let (status, v) = crate::support::partner_api::get(&app, &deliveries, &key).await;
    assert_eq!((status, v.clone()), (StatusCode::OK, json!([])), "{v}");
    app.create_user("tester@partner.example", "Tess Tester")
        .await;
    let (status, v) = crate::support::partner_api::put(
        &app,
        &format!("/api/v1/apps/{client_id}/test-accounts"),
        &key,
        json!({ "emails": ["tester@partner.example"] }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let client = Client {
        client_id: client_id.clone(),
        client_secret: Some(secret.clone()),
    };
    let s = sign_in(&app, &client, "tester@partner.example", "openid").await;
    let html = crate::helpers::get_text(&s.browser, app.url("/account/apps")).await;
    let res = s
        .browser
        .post(app.url("/account/sign-out"))
        .form(&[("csrf_token", hidden_field(&html, "csrf_token"))])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let attempted = crate::support::wait::until(std::time::Duration::from_millis(100), || async {
        let (status, v) = crate::support::partner_api::get(&app, &deliveries, &key).await;
        assert_eq!(status, 200, "{v}");
        v[0]["attempts"]
            .as_array()
            .is_some_and(|a| !a.is_empty())
            .then_some(v)
    })
    .await;
    let listed = attempted.unwrap_or_else(|| json!([]));
    let d = &listed[0];
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(d["sid"], s.sid, "{d}");
    assert_eq!(d["sub"], s.sub);
    assert_eq!(d["ending"], "signed_out");
    assert!(d["jti"].as_str().is_some_and(|j| !j.is_empty()), "{d}");
    let attempt = &d["attempts"][0];
    assert_eq!(attempt["attempt"], 1, "{d}");
    assert_eq!(attempt["url"], "https://app.example/onyx/logout");
    assert_ne!(attempt["outcome"], "delivered", "{d}");
    assert!(
        attempt["error"].as_str().is_some_and(|e| !e.is_empty()),
        "{d}"
    );
}

async fn the_purge_forgets_the_token_families_of_sessions_that_expired(backend: Backend) {
    let (app, client, _s) = setup(backend).await;
    // A second session, still live when the first has expired.
    let lifetime = app.state.settings.lifetimes.session;
    app.clock.advance(lifetime - 60);
    let live = sign_in(&app, &client, EMAIL, "openid profile").await;
    assert_eq!(count(&app, "session_families").await, 2);
    app.clock.advance(120);
    onyx_id::store::purge::purge_expired(&app.state.db, app.clock_now())
        .await
        .unwrap();
    let left: Vec<String> = sqlx::query_scalar("SELECT sid FROM session_families")
        .fetch_all(app.sql().await)
        .await
        .unwrap();
    assert_eq!(left, [live.sid]);
}
