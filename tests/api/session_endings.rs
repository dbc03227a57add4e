//! The three ways a session ends on onyx-id's own pages (signing out, "End session" from another
//! of the person's sessions, a password change) tell every app that got an ID token in it, with
//! a verified logout token whose `sid` is the ID token's, and end that session's tokens; the
//! fourth way, RP-initiated logout, is in `logout.rs` and `backchannel.rs`. A sign-in replaces
//! the session's secret: the same person's session goes on (same `sid`), anyone else's ends.

use crate::helpers::{
    Backend, PASSWORD, TestApp, get_text, hidden_field, introspect, location, spawn_app_with,
};
use crate::support::logout::{self, LogoutReceiver, SignedIn, authorize_goes_to, sign_in};

on_each_backend!(
    signing_out_on_the_account_pages_tells_the_app_and_ends_the_session_tokens,
    ending_a_session_from_another_one_tells_the_app_of_that_session_only,
    a_password_change_tells_the_apps_of_the_other_sessions_and_keeps_this_one,
    signing_in_again_keeps_the_session_and_another_person_signing_in_ends_it,
);

const EMAIL: &str = "ada@example.com";

/// The CSRF token on `browser`'s page `path`.
async fn csrf_on(app: &TestApp, browser: &reqwest::Client, path: &str) -> String {
    hidden_field(&get_text(browser, app.url(path)).await, "csrf_token")
}

/// Checks that `rx`'s first logout token is `client`'s, for `s`'s session, and that the
/// session's access token is no longer active.
async fn assert_told_and_ended(
    app: &TestApp,
    client: &crate::helpers::Client,
    rx: &LogoutReceiver,
    s: &SignedIn,
) {
    let token = rx.next(0).await;
    let claims = logout::verify_logout_token(app, client, &token).await;
    assert_eq!(
        claims["sid"], s.sid,
        "the sid of the ended session's ID token"
    );
    assert_eq!(claims["sub"], s.sub);
    assert_eq!(rx.settled_count().await, 1, "exactly one logout token");
    let status = introspect(app, client, &s.access_token()).await;
    assert_eq!(status["active"], false, "the session's access token ended");
}

async fn signing_out_on_the_account_pages_tells_the_app_and_ends_the_session_tokens(
    backend: Backend,
) {
    let app = spawn_app_with(backend, &logout::local).await;
    app.create_user(EMAIL, "Ada").await;
    let rx = LogoutReceiver::start().await;
    let client = logout::app_with(&app, "Travel Buddy", Some(&rx), &["openid"]).await;
    let s = sign_in(&app, &client, EMAIL, "openid").await;
    assert_eq!(
        introspect(&app, &client, &s.access_token()).await["active"],
        true
    );

    let csrf = csrf_on(&app, &s.browser, "/account/apps").await;
    let res = s
        .browser
        .post(app.url("/account/sign-out"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "{}", res.status());

    assert_told_and_ended(&app, &client, &rx, &s).await;
    assert!(
        authorize_goes_to(&app, &s.browser, &client)
            .await
            .starts_with("/login")
    );
}

async fn ending_a_session_from_another_one_tells_the_app_of_that_session_only(backend: Backend) {
    let app = spawn_app_with(backend, &logout::local).await;
    app.create_user(EMAIL, "Ada").await;
    let rx = LogoutReceiver::start().await;
    let client = logout::app_with(&app, "Travel Buddy", Some(&rx), &["openid"]).await;
    // Two browsers, each signed in through the app: the phone's session is ended from the laptop.
    let phone = sign_in(&app, &client, EMAIL, "openid").await;
    let laptop = sign_in(&app, &client, EMAIL, "openid").await;
    assert_ne!(phone.sid, laptop.sid);

    let csrf = csrf_on(&app, &laptop.browser, "/account/sessions").await;
    let res = laptop
        .browser
        .post(app.url("/account/sessions/end"))
        .form(&[("csrf_token", csrf.as_str()), ("sid", phone.sid.as_str())])
        .send()
        .await
        .unwrap();
    assert!(
        res.status().is_success() || res.status() == 303,
        "{}",
        res.status()
    );

    assert_told_and_ended(&app, &client, &rx, &phone).await;
    // The laptop's session and tokens go on.
    assert_eq!(
        introspect(&app, &client, &laptop.access_token()).await["active"],
        true
    );
    assert!(
        !authorize_goes_to(&app, &laptop.browser, &client)
            .await
            .starts_with("/login")
    );
    assert!(
        authorize_goes_to(&app, &phone.browser, &client)
            .await
            .starts_with("/login")
    );
}

async fn a_password_change_tells_the_apps_of_the_other_sessions_and_keeps_this_one(
    backend: Backend,
) {
    let app = spawn_app_with(backend, &logout::local).await;
    app.create_user(EMAIL, "Ada").await;
    let rx = LogoutReceiver::start().await;
    let client = logout::app_with(&app, "Travel Buddy", Some(&rx), &["openid"]).await;
    let phone = sign_in(&app, &client, EMAIL, "openid").await;
    let laptop = sign_in(&app, &client, EMAIL, "openid").await;

    let csrf = csrf_on(&app, &laptop.browser, "/account/security").await;
    let new = "a new and longer passphrase";
    let res = laptop
        .browser
        .post(app.url("/account/security/password"))
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("current_password", PASSWORD),
            ("new_password", new),
            ("confirm_password", new),
        ])
        .send()
        .await
        .unwrap();
    let status = res.status();
    let to = if status == 303 {
        location(res.headers())
    } else {
        String::new()
    };
    assert!(status.is_success() || status == 303, "{status} {to}");

    assert_told_and_ended(&app, &client, &rx, &phone).await;
    assert_eq!(
        introspect(&app, &client, &laptop.access_token()).await["active"],
        true
    );
    assert!(
        !authorize_goes_to(&app, &laptop.browser, &client)
            .await
            .starts_with("/login")
    );
}

/// Signs in on `browser`'s account sign-in page as `email`.
async fn sign_in_on_the_account_page(app: &TestApp, browser: &reqwest::Client, email: &str) {
    let html = get_text(browser, app.url("/login?next=/account/apps")).await;
    let res = browser
        .post(app.url("/login"))
        .form(&[
            ("csrf_token", hidden_field(&html, "csrf_token")),
            ("next", hidden_field(&html, "next")),
            ("email", email.to_string()),
            ("password", PASSWORD.to_string()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
}

async fn signing_in_again_keeps_the_session_and_another_person_signing_in_ends_it(
    backend: Backend,
) {
    let app = spawn_app_with(backend, &logout::local).await;
    app.create_user(EMAIL, "Ada").await;
    app.create_user("bob@example.com", "Bob").await;
    let rx = LogoutReceiver::start().await;
    let client = logout::app_with(&app, "Travel Buddy", Some(&rx), &["openid"]).await;
    let s = sign_in(&app, &client, EMAIL, "openid").await;
    let old_cookie = s
        .browser
        .get(app.url("/account/apps"))
        .send()
        .await
        .unwrap();
    assert_eq!(old_cookie.status(), 200);

    // The same person again: the session goes on under a new secret, with the same sid.
    sign_in_on_the_account_page(&app, &s.browser, EMAIL).await;
    let again = logout::tokens_in(&app, &s.browser, &client, EMAIL, "openid").await;
    let claims = logout::claims_of(&crate::helpers::text(&again, "id_token"));
    assert_eq!(claims["sid"], s.sid, "the same session");
    let told: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM logout_deliveries")
        .fetch_one(app.sql().await)
        .await
        .unwrap();
    assert_eq!(told, 0, "nobody is told of a session that goes on");
    assert_eq!(
        introspect(&app, &client, &s.access_token()).await["active"],
        true
    );

    // Someone else in the same browser: Ada's session ends, and the app is told.
    sign_in_on_the_account_page(&app, &s.browser, "bob@example.com").await;
    assert_told_and_ended(&app, &client, &rx, &s).await;
}
