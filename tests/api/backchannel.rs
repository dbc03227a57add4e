//! Back-Channel Logout 1.0: when a session ends, every app that got an ID token in it and
//! registered a `backchannel_logout_uri` receives a signed `logout_token`, through the outbox,
//! with retries and an attempt log; "Sign out of this app" tells one app and revokes its
//! session tokens, and keeps the grant and the session.

use reqwest::StatusCode;

use crate::helpers::{
    Backend, TestApp, get_text, hidden_field, introspect, location, spawn_app_with, text,
};
use crate::support::logout::{
    self, LogoutReceiver, SignedIn, authorize_goes_to, claims_of, end_session_endpoint, sign_in,
};

on_each_backend!(
    rp_initiated_logout_sends_each_app_a_verified_logout_token_with_the_id_token_s_sid,
    signing_out_of_an_app_tells_that_app_and_ends_its_session_tokens_only,
    a_failing_receiver_gets_retries_and_each_attempt_is_logged,
);

const EMAIL: &str = "ada@example.com";

/// Ends `s`'s session at the end-session endpoint with its ID token as the hint.
async fn sign_out(app: &TestApp, s: &SignedIn) {
    let url = format!(
        "{}?id_token_hint={}",
        end_session_endpoint(app).await,
        s.id_token
    );
    let res = s.browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

async fn rp_initiated_logout_sends_each_app_a_verified_logout_token_with_the_id_token_s_sid(
    backend: Backend,
) {
    let app = spawn_app_with(backend, &logout::local).await;
    app.create_user(EMAIL, "Ada").await;
    let (first_rx, second_rx) = (LogoutReceiver::start().await, LogoutReceiver::start().await);
    let first = logout::app_with(&app, "Travel Buddy", Some(&first_rx), &["openid"]).await;
    let mut spec = crate::helpers::spec(&["openid"]);
    spec.name = "Trip Sync".into();
    spec.id_token_alg = "RS256".into();
    spec.backchannel_logout_uri = Some(second_rx.url());
    let second = app.create_app_with(spec).await;
    // An app with no back-channel URI, and one that got no ID token, are not told.
    let silent = logout::app_with(&app, "Quiet App", None, &["openid"]).await;
    let no_id_rx = LogoutReceiver::start().await;
    let no_id = logout::app_with(&app, "No ID", Some(&no_id_rx), &["profile"]).await;

    let s = sign_in(&app, &first, EMAIL, "openid").await;
    let second_tokens = logout::tokens_in(&app, &s.browser, &second, EMAIL, "openid").await;
    logout::tokens_in(&app, &s.browser, &silent, EMAIL, "openid").await;
    let no_id_tokens = logout::tokens_in(&app, &s.browser, &no_id, EMAIL, "profile").await;
    assert!(no_id_tokens.get("id_token").is_none());
    let second_id = claims_of(&text(&second_tokens, "id_token"));
    assert_eq!(second_id["sid"], s.sid, "one sid for the whole session");

    sign_out(&app, &s).await;

    let token = first_rx.next(0).await;
    let claims = logout::verify_logout_token(&app, &first, &token).await;
    assert_eq!(claims["sid"], s.sid, "the sid of the ID token");
    assert_eq!(claims["sub"], s.sub, "the sub of the ID token");
    assert_eq!(claims["aud"], first.client_id.as_str());
    assert_eq!(claims["iss"], app.issuer.as_str());
    assert_eq!(logout::header_of(&token)["alg"], "ES256");

    let token = second_rx.next(0).await;
    let claims = logout::verify_logout_token(&app, &second, &token).await;
    assert_eq!(claims["sid"], s.sid);
    assert_eq!(claims["sub"], second_id["sub"]);
    assert_eq!(claims["aud"], second.client_id.as_str());
    // Signed as the app's ID tokens are.
    assert_eq!(logout::header_of(&token)["alg"], "RS256");
    assert!(first_rx.all_form_encoded() && second_rx.all_form_encoded());

    // Exactly one each, and none to the app that got no ID token.
    assert_eq!(first_rx.settled_count().await, 1);
    assert_eq!(second_rx.tokens().len(), 1);
    assert_eq!(no_id_rx.tokens().len(), 0);
    let delivered: Vec<(String, String)> =
        sqlx::query_as("SELECT client_id, state FROM logout_deliveries ORDER BY client_id")
            .fetch_all(app.sql().await)
            .await
            .unwrap();
    let mut expected = vec![
        (first.client_id.clone(), "delivered".to_string()),
        (second.client_id.clone(), "delivered".to_string()),
    ];
    expected.sort();
    assert_eq!(delivered, expected);
    assert_eq!(
        logout::attempts(&app, &first.client_id).await,
        [(1, "delivered".to_string(), Some(200))]
    );
}

/// The CSRF token of the browser's Connected apps page.
async fn apps_page_csrf(app: &TestApp, s: &SignedIn) -> String {
    let html = get_text(&s.browser, app.url("/account/apps")).await;
    hidden_field(&html, "csrf_token")
}

async fn signing_out_of_an_app_tells_that_app_and_ends_its_session_tokens_only(backend: Backend) {
    let app = spawn_app_with(backend, &logout::local).await;
    app.create_user(EMAIL, "Ada").await;
    let rx = LogoutReceiver::start().await;
    let other_rx = LogoutReceiver::start().await;
    let client = logout::app_with(
        &app,
        "Travel Buddy",
        Some(&rx),
        &["openid", "offline_access"],
    )
    .await;
    let other = logout::app_with(&app, "Trip Sync", Some(&other_rx), &["openid"]).await;
    // Two sessions signed in to the app (two browsers), and another app in the first.
    let s = sign_in(&app, &client, EMAIL, "openid").await;
    let s2 = sign_in(&app, &client, EMAIL, "openid").await;
    let other_tokens = logout::tokens_in(&app, &s.browser, &other, EMAIL, "openid").await;
    // The app also stays connected while the person is away, in the first session.
    let offline =
        logout::tokens_in(&app, &s.browser, &client, EMAIL, "openid offline_access").await;

    let sign_out_of_app = app.url("/account/apps/sign-out");
    // Without the CSRF token: refused, nothing sent.
    let res = s
        .browser
        .post(&sign_out_of_app)
        .form(&[("client_id", client.client_id.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    // An app the person never connected: a page.
    let csrf = apps_page_csrf(&app, &s).await;
    let res = s
        .browser
        .post(&sign_out_of_app)
        .form(&[("csrf_token", csrf.as_str()), ("client_id", "no-such-app")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.text().await.unwrap().contains("No such connected app"));
    // Without a session: to the login page.
    let res = crate::helpers::browser()
        .post(&sign_out_of_app)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("client_id", client.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(res.headers()).starts_with("/login"));
    assert_eq!(rx.settled_count().await, 0);

    let res = s
        .browser
        .post(&sign_out_of_app)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("client_id", client.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(res.headers()), "/account/apps");

    // One logout token per session the app got an ID token in.
    let mut sids = vec![
        logout::verify_logout_token(&app, &client, &rx.next(0).await).await["sid"].clone(),
        logout::verify_logout_token(&app, &client, &rx.next(1).await).await["sid"].clone(),
    ];
    sids.sort_by_key(|v| v.to_string());
    let mut expected = vec![
        serde_json::Value::from(s.sid.clone()),
        serde_json::Value::from(s2.sid.clone()),
    ];
    expected.sort_by_key(|v| v.to_string());
    assert_eq!(sids, expected);
    assert_eq!(rx.settled_count().await, 2);
    assert_eq!(other_rx.tokens().len(), 0, "the other app is not told");

    // The app's session tokens are revoked; its offline_access ones and the other app's stay.
    assert_eq!(
        introspect(&app, &client, &s.access_token()).await["active"],
        false
    );
    assert_eq!(
        introspect(&app, &client, &s2.access_token()).await["active"],
        false
    );
    assert_eq!(
        introspect(&app, &client, &text(&offline, "access_token")).await["active"],
        true
    );
    let (status, _) =
        crate::helpers::refresh(&app, &client, &text(&offline, "refresh_token")).await;
    assert_eq!(status, 200);
    assert_eq!(
        introspect(&app, &other, &text(&other_tokens, "access_token")).await["active"],
        true
    );
    // The grant and both sessions stay: signing in again needs no password and no consent.
    let again = authorize_goes_to(&app, &s.browser, &client).await;
    assert!(again.starts_with(crate::helpers::REDIRECT), "{again}");
    let again = authorize_goes_to(&app, &s2.browser, &client).await;
    assert!(again.starts_with(crate::helpers::REDIRECT), "{again}");

    // Ending the first session now tells the other app only: this one was already told.
    let url = format!(
        "{}?id_token_hint={}",
        end_session_endpoint(&app).await,
        s.id_token
    );
    assert_eq!(s.browser.get(url).send().await.unwrap().status(), 200);
    let claims = logout::verify_logout_token(&app, &other, &other_rx.next(0).await).await;
    assert_eq!(claims["sid"], s.sid);
    assert_eq!(rx.settled_count().await, 2);
}

async fn a_failing_receiver_gets_retries_and_each_attempt_is_logged(backend: Backend) {
    let app = spawn_app_with(backend, &logout::local).await;
    app.create_user(EMAIL, "Ada").await;
    let rx = LogoutReceiver::start().await;
    rx.answer(&[500, 500]);
    let client = logout::app_told_at(&app, &rx, &["openid"]).await;
    let s = sign_in(&app, &client, EMAIL, "openid").await;
    sign_out(&app, &s).await;

    let first = rx.next(0).await;
    // The next attempt waits for the schedule (1 s on the test clock).
    assert_eq!(rx.settled_count().await, 1);
    app.clock.advance(1);
    let second = rx.next(1).await;
    assert_eq!(rx.settled_count().await, 2);
    app.clock.advance(1);
    let third = rx.next(2).await;
    assert_eq!(rx.settled_count().await, 3);

    // Each attempt is signed afresh, with the delivery's one jti.
    let claims: Vec<serde_json::Value> = [&first, &second, &third]
        .iter()
        .map(|t| claims_of(t))
        .collect();
    assert_eq!(claims[0]["jti"], claims[1]["jti"]);
    assert_eq!(claims[1]["jti"], claims[2]["jti"]);
    assert!(claims[2]["iat"].as_i64() > claims[0]["iat"].as_i64());
    let last = logout::verify_logout_token(&app, &client, &third).await;
    assert_eq!(last["sid"], s.sid);

    assert_eq!(
        logout::attempts(&app, &client.client_id).await,
        [
            (1, "failed".to_string(), Some(500)),
            (2, "failed".to_string(), Some(500)),
            (3, "delivered".to_string(), Some(200)),
        ]
    );
    let (state, attempts, failures): (String, i64, i64) = sqlx::query_as(
        "SELECT state, attempts, failures FROM logout_deliveries WHERE client_id = $1",
    )
    .bind(&client.client_id)
    .fetch_one(app.sql().await)
    .await
    .unwrap();
    assert_eq!((state.as_str(), attempts, failures), ("delivered", 3, 2));
    let url: String = sqlx::query_scalar("SELECT DISTINCT url FROM logout_attempts")
        .fetch_one(app.sql().await)
        .await
        .unwrap();
    assert_eq!(url, rx.url());
}
