//! Unauthenticated `/authorize` requests store a row each: capped per client address and per
//! app, and `state` and `nonce` are bounded while long ones keep working.

use openidconnect::core::CoreAuthenticationFlow;
use openidconnect::{AuthorizationCode, CsrfToken, Nonce, PkceCodeChallenge, TokenResponse};
use reqwest::StatusCode;

use crate::helpers::*;

on_each_backend!(
    pending_requests_over_the_cap_per_address_get_a_page_while_other_addresses_still_work,
    pending_requests_over_the_cap_per_app_get_a_page_while_other_apps_still_work,
    state_and_nonce_of_512_bytes_work_and_513_are_refused,
    state_and_nonce_of_64_to_100_characters_keep_working_through_a_whole_flow,
);

/// Starts an authorization request from `from` (an `X-Forwarded-For` value).
async fn start(app: &TestApp, client_id: &str, from: &str) -> reqwest::Response {
    let (url, _) = authorize_url(app, client_id, "openid", &[]);
    http()
        .get(url)
        .header("x-forwarded-for", from)
        .send()
        .await
        .unwrap()
}

async fn assert_waits_for_login(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "{what}");
    assert!(
        location(res.headers()).starts_with("/login?request_id="),
        "{what}"
    );
}

async fn assert_too_many_waiting(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS, "{what}");
    assert!(res.headers().contains_key("retry-after"), "{what}");
    let page = res.text().await.unwrap();
    assert!(page.contains("Too many sign-ins waiting"), "{what}: {page}");
}

async fn pending_requests_over_the_cap_per_address_get_a_page_while_other_addresses_still_work(
    backend: Backend,
) {
    let app = spawn_app_with(backend, &|s| {
        trust_localhost(s);
        s.pending_requests.per_address = 3;
    })
    .await;
    let client = app.create_app(&["openid"]).await;
    for i in 0..3 {
        assert_waits_for_login(
            start(&app, &client.client_id, "198.51.100.7").await,
            &format!("request {i}"),
        )
        .await;
    }
    assert_too_many_waiting(
        start(&app, &client.client_id, "198.51.100.7").await,
        "the 4th request from one address",
    )
    .await;
    assert_waits_for_login(
        start(&app, &client.client_id, "198.51.100.8").await,
        "another address",
    )
    .await;
    // IPv6 addresses count per /64, like the sign-in limits.
    for i in 1..=3 {
        let from = format!("2001:db8:5:6::{i}");
        assert_waits_for_login(start(&app, &client.client_id, &from).await, &from).await;
    }
    assert_too_many_waiting(
        start(&app, &client.client_id, "2001:db8:5:6::99").await,
        "the 4th request from one /64",
    )
    .await;
    // Requests that expired unanswered stop counting.
    app.clock.advance(31 * 60);
    assert_waits_for_login(
        start(&app, &client.client_id, "198.51.100.7").await,
        "after the first ones expired",
    )
    .await;
}

async fn pending_requests_over_the_cap_per_app_get_a_page_while_other_apps_still_work(
    backend: Backend,
) {
    let app = spawn_app_with(backend, &|s| {
        trust_localhost(s);
        s.pending_requests.per_app = 3;
    })
    .await;
    let flooded = app.create_app(&["openid"]).await;
    let other = app.create_app(&["openid"]).await;
    for i in 0..3 {
        let from = format!("198.51.100.{i}");
        assert_waits_for_login(start(&app, &flooded.client_id, &from).await, &from).await;
    }
    assert_too_many_waiting(
        start(&app, &flooded.client_id, "203.0.113.1").await,
        "the 4th request to one app",
    )
    .await;
    assert_waits_for_login(
        start(&app, &other.client_id, "203.0.113.1").await,
        "another app",
    )
    .await;
}

/// An authorize URL with the given `state` and `nonce`.
fn authorize_with(app: &TestApp, client_id: &str, state: &str, nonce: &str) -> String {
    let (_, challenge) = pkce();
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid"),
            ("state", state),
            ("nonce", nonce),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    app.url(&format!("/authorize?{q}"))
}

async fn state_and_nonce_of_512_bytes_work_and_513_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid"]).await;
    let (ok, long) = ("s".repeat(512), "s".repeat(513));
    let res = http()
        .get(authorize_with(&app, &client.client_id, &ok, &ok))
        .send()
        .await
        .unwrap();
    assert_waits_for_login(res, "512 bytes each").await;

    let res = http()
        .get(authorize_with(&app, &client.client_id, &long, "n"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let back = location(res.headers());
    assert!(back.starts_with(REDIRECT), "{back}");
    let q = query(&back);
    assert_eq!(q["error"], "invalid_request");
    assert!(q["error_description"].contains("state"), "{back}");
    assert!(
        !q.contains_key("state"),
        "the oversized state is not echoed"
    );

    let res = http()
        .get(authorize_with(&app, &client.client_id, "st", &long))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let q = query(&location(res.headers()));
    assert_eq!(q["error"], "invalid_request");
    assert!(q["error_description"].contains("nonce"));
    assert_eq!(q["state"], "st");
}

async fn state_and_nonce_of_64_to_100_characters_keep_working_through_a_whole_flow(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid"]).await;
    app.create_user("ada@example.com", "Ada").await;
    let http = http();
    let oidc = oidc_client(&app, &client, &http).await;
    for len in [64, 65, 100] {
        let state = onyx_id::crypto::random_token(len)[..len].to_string();
        let nonce_value = format!("{}{}", "n".repeat(len - 10), "0123456789");
        let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
        let (auth_url, csrf, nonce) = oidc
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                {
                    let state = state.clone();
                    move || CsrfToken::new(state.clone())
                },
                {
                    let nonce = nonce_value.clone();
                    move || Nonce::new(nonce.clone())
                },
            )
            .set_pkce_challenge(challenge)
            .url();
        let browser = browser();
        let res = browser.get(auth_url.as_str()).send().await.unwrap();
        let login = location(res.headers());
        let next = log_in(&app, &browser, &login, "ada@example.com").await;
        let back = if next.starts_with("/consent") {
            answer_consent(&app, &browser, &next, "approve").await
        } else {
            next
        };
        let q = query(&back);
        assert_eq!(q["state"], *csrf.secret(), "state of {len} characters");
        let tokens = oidc
            .exchange_code(AuthorizationCode::new(q["code"].clone()))
            .unwrap()
            .set_pkce_verifier(verifier)
            .request_async(&http)
            .await
            .expect("code exchange");
        let id_token = tokens.id_token().expect("an ID token");
        id_token
            .claims(&oidc.id_token_verifier(), &nonce)
            .unwrap_or_else(|e| panic!("the nonce of {len} characters comes back: {e}"));
    }
}
