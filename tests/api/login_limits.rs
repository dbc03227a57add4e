//! Sign-in limits under attack: parallel guesses, lockouts that must not reach the owner,
//! guessing spread over many addresses, IPv6 /64s, trusted proxies and busy password checks.

use std::time::Duration;

use onyx_id::config::TrustedProxies;
use reqwest::StatusCode;

use crate::helpers::*;
use crate::support::cli::assert_serve_refuses;

on_each_backend!(
    sixteen_parallel_wrong_passwords_get_no_more_password_checks_than_the_limit,
    the_owner_signs_in_from_another_address_while_an_attacker_is_locked_out,
    the_per_account_ceiling_stops_guessing_spread_over_many_addresses,
    ipv6_addresses_in_one_64_share_a_counter,
    forwarded_for_is_ignored_from_a_peer_that_is_not_a_trusted_proxy,
    the_rightmost_forwarded_address_that_is_not_a_proxy_is_the_client,
    one_wrong_password_per_person_behind_a_trusted_proxy_locks_no_one_out,
);

const WRONG: &str = "The email or password is not correct.";
const LOCKED: &str = "Too many sign-in attempts";
const BUSY: &str = "Too many sign-ins right now";

/// A login page for an authorization request in progress, and a browser that holds its CSRF
/// cookie.
struct LoginForm {
    browser: reqwest::Client,
    url: String,
    request_id: String,
    csrf: String,
}

impl LoginForm {
    async fn open(app: &TestApp) -> Self {
        let client = app.create_app(&["openid"]).await;
        let browser = browser();
        let (url, _) = authorize_url(app, &client.client_id, "openid", &[]);
        let login = location(browser.get(url).send().await.unwrap().headers());
        let html = get_text(&browser, app.url(&login)).await;
        Self {
            browser,
            url: app.url("/login"),
            request_id: hidden_field(&html, "request_id"),
            csrf: hidden_field(&html, "csrf_token"),
        }
    }

    /// Posts the form, claiming to come from `from` (an `X-Forwarded-For` value) if given.
    fn attempt(
        &self,
        from: Option<&str>,
        email: &str,
        password: &str,
    ) -> impl Future<Output = (StatusCode, String)> + Send + 'static {
        let mut req = self.browser.post(&self.url).form(&[
            ("request_id", self.request_id.as_str()),
            ("csrf_token", self.csrf.as_str()),
            ("email", email),
            ("password", password),
        ]);
        if let Some(from) = from {
            req = req.header("x-forwarded-for", from);
        }
        async move {
            let res = req.send().await.unwrap();
            let status = res.status();
            let retry_after = res.headers().contains_key("retry-after");
            let body = res.text().await.unwrap();
            if status == StatusCode::TOO_MANY_REQUESTS {
                assert!(retry_after, "a 429 says when to try again");
            }
            (status, body)
        }
    }
}

fn is_wrong(r: &(StatusCode, String)) -> bool {
    r.0 == StatusCode::OK && r.1.contains(WRONG)
}

fn is_locked(r: &(StatusCode, String)) -> bool {
    r.0 == StatusCode::TOO_MANY_REQUESTS && r.1.contains(LOCKED)
}

async fn sixteen_parallel_wrong_passwords_get_no_more_password_checks_than_the_limit(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_user("fi@example.com", "Fi").await;
    let form = LoginForm::open(&app).await;
    let checked_before = app.state.password_checks.checked();
    let mut guesses = tokio::task::JoinSet::new();
    for i in 0..16 {
        guesses.spawn(form.attempt(None, "fi@example.com", &format!("guess {i}")));
    }
    let results = guesses.join_all().await;
    let wrong = results.iter().filter(|r| is_wrong(r)).count();
    let locked = results.iter().filter(|r| is_locked(r)).count();
    assert_eq!(
        (wrong, locked),
        (5, 11),
        "5 guesses are checked, the others refused: {:?}",
        results.iter().map(|r| r.0).collect::<Vec<_>>()
    );
    assert_eq!(
        app.state.password_checks.checked() - checked_before,
        5,
        "argon2 ran once per allowed guess"
    );
    let owner = form.attempt(None, "fi@example.com", PASSWORD).await;
    assert!(is_locked(&owner), "the limit holds for the 17th too");
}

async fn the_owner_signs_in_from_another_address_while_an_attacker_is_locked_out(backend: Backend) {
    let app = spawn_app_with(backend, &trust_localhost).await;
    app.create_user("fi@example.com", "Fi").await;
    let form = LoginForm::open(&app).await;
    let attacker = Some("198.51.100.7");
    for i in 0..5 {
        let r = form
            .attempt(attacker, "fi@example.com", &format!("guess {i}"))
            .await;
        assert!(is_wrong(&r), "guess {i}: {:?}", r.0);
    }
    let r = form.attempt(attacker, "fi@example.com", "guess 6").await;
    assert!(is_locked(&r), "the attacker is locked out: {:?}", r.0);
    let owner = form
        .attempt(Some("203.0.113.9"), "fi@example.com", PASSWORD)
        .await;
    assert_eq!(owner.0, StatusCode::SEE_OTHER, "the owner signs in");
    let r = form.attempt(attacker, "fi@example.com", PASSWORD).await;
    assert!(
        is_locked(&r),
        "the owner's success does not free the attacker"
    );
}

async fn the_per_account_ceiling_stops_guessing_spread_over_many_addresses(backend: Backend) {
    let app = spawn_app_with(backend, &|s| {
        trust_localhost(s);
        s.login_limits.per_account = 8;
    })
    .await;
    app.create_user("fi@example.com", "Fi").await;
    let form = LoginForm::open(&app).await;
    for i in 0..8 {
        let from = format!("198.51.100.{i}");
        let r = form.attempt(Some(&from), "fi@example.com", "guess").await;
        assert!(is_wrong(&r), "{from}: {:?}", r.0);
    }
    let r = form
        .attempt(Some("198.51.100.200"), "fi@example.com", "guess")
        .await;
    assert!(is_locked(&r), "the 9th guess is refused: {:?}", r.0);
    let other = form
        .attempt(Some("198.51.100.201"), "someone@example.com", "guess")
        .await;
    assert!(is_wrong(&other), "other accounts are not affected");
    app.clock.advance(16 * 60);
    let owner = form
        .attempt(Some("203.0.113.9"), "fi@example.com", PASSWORD)
        .await;
    assert_eq!(owner.0, StatusCode::SEE_OTHER, "after the window");
}

async fn ipv6_addresses_in_one_64_share_a_counter(backend: Backend) {
    let app = spawn_app_with(backend, &trust_localhost).await;
    app.create_user("fi@example.com", "Fi").await;
    let form = LoginForm::open(&app).await;
    for i in 1..=5 {
        let from = format!("2001:db8:1:2::{i:x}");
        let r = form.attempt(Some(&from), "fi@example.com", "guess").await;
        assert!(is_wrong(&r), "{from}: {:?}", r.0);
    }
    let same_64 = form
        .attempt(
            Some("2001:db8:1:2:ffff:ffff:ffff:ffff"),
            "fi@example.com",
            PASSWORD,
        )
        .await;
    assert!(is_locked(&same_64), "the whole /64 is one client");
    let next_64 = form
        .attempt(Some("2001:db8:1:3::1"), "fi@example.com", PASSWORD)
        .await;
    assert_eq!(
        next_64.0,
        StatusCode::SEE_OTHER,
        "another /64 is another client"
    );
}

async fn forwarded_for_is_ignored_from_a_peer_that_is_not_a_trusted_proxy(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("fi@example.com", "Fi").await;
    let form = LoginForm::open(&app).await;
    for i in 0..5 {
        let from = format!("198.51.100.{i}");
        let r = form.attempt(Some(&from), "fi@example.com", "guess").await;
        assert!(is_wrong(&r), "{from}: {:?}", r.0);
    }
    let r = form
        .attempt(Some("203.0.113.9"), "fi@example.com", PASSWORD)
        .await;
    assert!(
        is_locked(&r),
        "a made-up X-Forwarded-For does not escape the lockout: {:?}",
        r.0
    );
}

async fn the_rightmost_forwarded_address_that_is_not_a_proxy_is_the_client(backend: Backend) {
    let app = spawn_app_with(backend, &|s| {
        s.trusted_proxies =
            TrustedProxies::parse(&["127.0.0.1/32".to_string(), "10.0.0.0/8".to_string()]).unwrap();
    })
    .await;
    app.create_user("fi@example.com", "Fi").await;
    let form = LoginForm::open(&app).await;
    // The client prepends whatever it likes; the proxies append what they saw.
    for i in 0..5 {
        let from = format!("192.0.2.{i}, 198.51.100.7, 10.0.0.5");
        let r = form.attempt(Some(&from), "fi@example.com", "guess").await;
        assert!(is_wrong(&r), "{from}: {:?}", r.0);
    }
    let r = form
        .attempt(
            Some("192.0.2.99, 198.51.100.7, 10.0.0.5"),
            "fi@example.com",
            PASSWORD,
        )
        .await;
    assert!(is_locked(&r), "the made-up entry is not the client");
    let owner = form
        .attempt(Some("198.51.100.8, 10.0.0.5"), "fi@example.com", PASSWORD)
        .await;
    assert_eq!(owner.0, StatusCode::SEE_OTHER);
}

async fn one_wrong_password_per_person_behind_a_trusted_proxy_locks_no_one_out(backend: Backend) {
    let app = spawn_app_with(backend, &trust_localhost).await;
    app.create_user("fi@example.com", "Fi").await;
    let form = LoginForm::open(&app).await;
    // More people than the per-address limit (30), each mistyping once.
    for i in 0..32 {
        let from = format!("198.51.100.{i}");
        let email = format!("person{i}@example.com");
        let r = form.attempt(Some(&from), &email, "typo").await;
        assert!(is_wrong(&r), "{from}: {:?}", r.0);
    }
    let owner = form
        .attempt(Some("198.51.100.40"), "fi@example.com", PASSWORD)
        .await;
    assert_eq!(owner.0, StatusCode::SEE_OTHER, "nobody is locked out");
}

#[tokio::test]
async fn when_every_password_check_is_busy_a_sign_in_gets_a_try_again_page() {
    let app = spawn_app_with(Backend::Sqlite, &|s| {
        s.login_limits.concurrent_checks = 1;
        s.login_limits.check_wait = Duration::from_millis(200);
    })
    .await;
    app.create_user("fi@example.com", "Fi").await;
    let form = LoginForm::open(&app).await;
    let checked_before = app.state.password_checks.checked();
    // Hold the one check, as a flood of sign-ins would.
    let held = app.state.password_checks.permits.acquire().await.unwrap();
    for _ in 0..6 {
        let (status, body) = form.attempt(None, "fi@example.com", PASSWORD).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(body.contains(BUSY), "{body}");
    }
    assert_eq!(app.state.password_checks.checked(), checked_before);
    drop(held);
    let (status, _) = form.attempt(None, "fi@example.com", PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::SEE_OTHER,
        "sign-ins that were never checked do not count as failures"
    );
}

#[tokio::test]
async fn an_invalid_trusted_proxy_or_limit_stops_the_server_with_a_one_line_reason() {
    let app = spawn_app(Backend::Sqlite).await;
    for (var, value) in [
        ("ONYX_TRUSTED_PROXIES", "10.0.0.0/8,10.0.0.0/33"),
        ("ONYX_TRUSTED_PROXIES", "proxy.example"),
        ("ONYX_LOGIN_MAX_FAILURES_PER_ACCOUNT", "0"),
        ("ONYX_LOGIN_FAILURE_WINDOW", "100000"),
        ("ONYX_MAX_PENDING_REQUESTS_PER_ADDRESS", "0"),
        ("ONYX_MAX_PENDING_REQUESTS_PER_APP", "-1"),
    ] {
        assert_serve_refuses(&app, var, value).await;
    }
}
