//! The account pages around sessions: the sessions page (browser, OS, address and times of each
//! session; end one, or all the others), the password change on the security page, and
//! sign-out. Each browser is its own cookie jar; an ended session is signed out on its next
//! request.

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, SET_COOKIE};

use crate::helpers::*;

on_each_backend!(
    a_session_ended_from_another_browser_is_signed_out_on_its_next_request,
    ending_all_other_sessions_keeps_only_this_one,
    another_persons_session_is_refused_without_saying_whether_it_exists,
    ending_this_session_on_the_sessions_page_signs_this_browser_out,
    the_sessions_page_shows_each_browser_its_system_address_and_times,
    a_password_change_checks_the_current_password_and_the_rules_and_ends_the_other_sessions,
    wrong_current_passwords_count_toward_the_sign_in_limit,
    sign_out_answers_post_only_needs_the_csrf_token_and_ends_the_session,
);

const FIREFOX_ON_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0";
const SAFARI_ON_IPHONE: &str = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
const CHROME_ON_MAC: &str = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
const NEW_PASSWORD: &str = "a brand new passphrase";

/// A browser signed in to the account pages, and its session cookie's secret.
struct Signed {
    browser: reqwest::Client,
    secret: String,
}

fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("onyx_session="))
        .map(|c| c.split(';').next().unwrap_or_default().to_string())
}

/// Signs in on `/login?next=/account/apps` from a browser sending `user_agent`, from `from` (an
/// `X-Forwarded-For` value, with the test server trusted as a proxy) if given. Answers the
/// login's status and, when it signed in, the browser.
async fn try_sign_in(
    app: &TestApp,
    email: &str,
    password: &str,
    user_agent: &str,
    from: Option<&str>,
) -> (StatusCode, String, Option<Signed>) {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .user_agent(user_agent)
        .build()
        .unwrap();
    let login = get_text(&browser, app.url("/login?next=/account/apps")).await;
    let mut req = browser.post(app.url("/login")).form(&[
        ("next", "/account/apps"),
        ("csrf_token", &hidden_field(&login, "csrf_token")),
        ("email", email),
        ("password", password),
    ]);
    if let Some(from) = from {
        req = req.header("x-forwarded-for", from);
    }
    let res = req.send().await.unwrap();
    let status = res.status();
    let secret = session_cookie(res.headers());
    let body = res.text().await.unwrap();
    let signed = match (status, secret) {
        (StatusCode::SEE_OTHER, Some(secret)) => Some(Signed { browser, secret }),
        _ => None,
    };
    (status, body, signed)
}

async fn sign_in(app: &TestApp, email: &str, user_agent: &str, from: Option<&str>) -> Signed {
    let (status, body, signed) = try_sign_in(app, email, PASSWORD, user_agent, from).await;
    signed.unwrap_or_else(|| panic!("signing in: {status} {body}"))
}

/// An account page as this browser gets it: its status, `Location` and body.
async fn open(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
) -> (StatusCode, String, String) {
    let res = browser.get(app.url(path)).send().await.unwrap();
    let status = res.status();
    let to = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, to, res.text().await.unwrap())
}

/// The page at `path`, which must answer 200 with the page headers.
async fn page(app: &TestApp, browser: &reqwest::Client, path: &str) -> String {
    let res = browser.get(app.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    let h = res.headers();
    assert_eq!(h["x-frame-options"], "DENY", "{path}");
    assert!(
        h["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'"),
        "{path}"
    );
    assert_eq!(h["cache-control"], "no-store", "{path}");
    res.text().await.unwrap()
}

/// Whether this browser is sent to sign in from the account pages.
async fn is_signed_out(app: &TestApp, browser: &reqwest::Client) -> bool {
    let (status, to, _) = open(app, browser, "/account/sessions").await;
    status == 303 && to == "/login?next=/account/sessions"
}

async fn post(
    app: &TestApp,
    browser: &reqwest::Client,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let res = browser.post(app.url(path)).form(form).send().await.unwrap();
    let status = res.status();
    let to = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, to, res.text().await.unwrap())
}

/// The sids of the `End session` forms on a sessions page (the other sessions).
fn other_sids(html: &str) -> Vec<String> {
    html.split(r#"name="sid" value=""#)
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_string())
        .collect()
}

async fn a_session_ended_from_another_browser_is_signed_out_on_its_next_request(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("di@example.com", "Di").await;
    let laptop = sign_in(&app, "di@example.com", CHROME_ON_MAC, None).await;
    let phone = sign_in(&app, "di@example.com", SAFARI_ON_IPHONE, None).await;
    assert!(!is_signed_out(&app, &phone.browser).await);

    let html = page(&app, &laptop.browser, "/account/sessions").await;
    let others = other_sids(&html);
    assert_eq!(others.len(), 1, "one other session: {html}");
    let csrf = hidden_field(&html, "csrf_token");

    // Without the CSRF token, nothing ends.
    let form = [("csrf_token", "forged"), ("sid", others[0].as_str())];
    let (status, _, _) = post(&app, &laptop.browser, "/account/sessions/end", &form).await;
    assert_eq!(status, 400);
    assert!(!is_signed_out(&app, &phone.browser).await);

    let form = [("csrf_token", csrf.as_str()), ("sid", others[0].as_str())];
    let (status, to, _) = post(&app, &laptop.browser, "/account/sessions/end", &form).await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/account/sessions?ended=1")
    );
    let after = page(&app, &laptop.browser, &to).await;
    assert!(after.contains("The session has ended"), "{after}");
    assert!(other_sids(&after).is_empty(), "{after}");

    // The phone's next request: sign in again. The laptop stays signed in.
    assert!(is_signed_out(&app, &phone.browser).await);
    let (status, to, _) = open(&app, &phone.browser, "/account/apps").await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/login?next=/account/apps")
    );
    assert!(!is_signed_out(&app, &laptop.browser).await);
    // The phone's cookie names no session any more.
    let sid = onyx_id::store::sessions::sid_of_secret(&app.state.db, &phone.secret).await;
    assert_eq!(sid.unwrap(), None);
}

async fn ending_all_other_sessions_keeps_only_this_one(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("di@example.com", "Di").await;
    app.create_user("eve@example.com", "Eve").await;
    let this = sign_in(&app, "di@example.com", CHROME_ON_MAC, None).await;
    let mut others = Vec::new();
    for ua in [SAFARI_ON_IPHONE, FIREFOX_ON_WINDOWS, FIREFOX_ON_WINDOWS] {
        others.push(sign_in(&app, "di@example.com", ua, None).await);
    }
    let eve = sign_in(&app, "eve@example.com", FIREFOX_ON_WINDOWS, None).await;

    let html = page(&app, &this.browser, "/account/sessions").await;
    assert_eq!(other_sids(&html).len(), 3, "{html}");
    let csrf = hidden_field(&html, "csrf_token");
    let (status, _, _) = post(
        &app,
        &this.browser,
        "/account/sessions/end-others",
        &[("csrf_token", "forged")],
    )
    .await;
    assert_eq!(status, 400, "needs the CSRF token");
    let form = [("csrf_token", csrf.as_str())];
    let (status, to, _) = post(&app, &this.browser, "/account/sessions/end-others", &form).await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/account/sessions?ended=3")
    );
    let after = page(&app, &this.browser, &to).await;
    assert!(after.contains("3 sessions have ended"), "{after}");
    assert!(
        after.contains("You are not signed in anywhere else."),
        "{after}"
    );

    for other in &others {
        assert!(is_signed_out(&app, &other.browser).await);
    }
    assert!(!is_signed_out(&app, &this.browser).await, "this one stays");
    assert!(
        !is_signed_out(&app, &eve.browser).await,
        "another person's stay"
    );
}

async fn another_persons_session_is_refused_without_saying_whether_it_exists(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("di@example.com", "Di").await;
    let eve_id = app.create_user("eve@example.com", "Eve").await;
    let di = sign_in(&app, "di@example.com", CHROME_ON_MAC, None).await;
    let eve = sign_in(&app, "eve@example.com", FIREFOX_ON_WINDOWS, None).await;
    let now = app.clock_now();
    let eves = onyx_id::store::sessions::of_user(&app.state.db, &eve_id, now)
        .await
        .unwrap();
    let eve_sid = eves[0].sid.clone();

    let html = page(&app, &di.browser, "/account/sessions").await;
    let csrf = hidden_field(&html, "csrf_token");
    let refuse = |sid: String| {
        let (app, browser, csrf) = (&app, &di.browser, csrf.clone());
        async move {
            let form = [("csrf_token", csrf.as_str()), ("sid", sid.as_str())];
            post(app, browser, "/account/sessions/end", &form).await
        }
    };
    let (status, _, body) = refuse(eve_sid.clone()).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("That session is not one of yours, or it has ended already."),
        "{body}"
    );
    assert!(!body.contains(&eve_sid), "{body}");
    assert!(!body.contains("eve@example.com"), "{body}");
    // The same answer for a sid that does not exist, and for none.
    let (status, _, unknown) = refuse("no-such-session".into()).await;
    assert_eq!(status, 404);
    let (status, _, empty) = refuse(String::new()).await;
    assert_eq!(status, 404);
    let refusal = |html: &str| {
        html.split("<main")
            .nth(1)
            .map(|m| m.replace(&csrf, ""))
            .unwrap()
    };
    assert_eq!(refusal(&body), refusal(&unknown));
    assert_eq!(refusal(&body), refusal(&empty));

    assert!(
        !is_signed_out(&app, &eve.browser).await,
        "Eve's session stays"
    );
    assert!(!is_signed_out(&app, &di.browser).await);
}

async fn ending_this_session_on_the_sessions_page_signs_this_browser_out(backend: Backend) {
    let app = spawn_app(backend).await;
    let di_id = app.create_user("di@example.com", "Di").await;
    let di = sign_in(&app, "di@example.com", CHROME_ON_MAC, None).await;
    let other = sign_in(&app, "di@example.com", SAFARI_ON_IPHONE, None).await;
    let now = app.clock_now();
    let this_sid = onyx_id::store::sessions::sid_of_secret(&app.state.db, &di.secret)
        .await
        .unwrap()
        .unwrap();

    let html = page(&app, &di.browser, "/account/sessions").await;
    let csrf = hidden_field(&html, "csrf_token");
    let form = [("csrf_token", csrf.as_str()), ("sid", this_sid.as_str())];
    let res = di
        .browser
        .post(app.url("/account/sessions/end"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        session_cookie(res.headers()).as_deref(),
        Some(""),
        "cleared"
    );
    let body = res.text().await.unwrap();
    assert!(body.contains("You are signed out"), "{body}");
    assert!(is_signed_out(&app, &di.browser).await);
    assert!(
        !is_signed_out(&app, &other.browser).await,
        "only this one ended"
    );
    let left = onyx_id::store::sessions::of_user(&app.state.db, &di_id, now)
        .await
        .unwrap();
    assert_eq!(left.len(), 1);
    assert_ne!(left[0].sid, this_sid);
}

async fn the_sessions_page_shows_each_browser_its_system_address_and_times(backend: Backend) {
    let app = spawn_app_with(backend, &trust_localhost).await;
    app.create_user("di@example.com", "Di").await;
    let phone = sign_in(
        &app,
        "di@example.com",
        SAFARI_ON_IPHONE,
        Some("198.51.100.4"),
    )
    .await;
    app.clock.advance(3 * 60);
    let laptop = sign_in(
        &app,
        "di@example.com",
        FIREFOX_ON_WINDOWS,
        Some("203.0.113.7"),
    )
    .await;
    app.clock.advance(2 * 60);

    let html = page(&app, &laptop.browser, "/account/sessions").await;
    let (this, others) = html.split_once(r#"id="other-sessions""#).unwrap();
    // This device: Firefox on Windows, from 203.0.113.7, used just now.
    let this = this.split_once(r#"id="this-device""#).unwrap().1;
    for shown in [
        "Firefox 131",
        "Windows 10",
        "203.0.113.7",
        "Just now",
        "This device",
    ] {
        assert!(this.contains(shown), "{shown} for this device: {this}");
    }
    // The other: Safari on an iPhone, from 198.51.100.4, last used 5 minutes ago.
    for shown in ["Safari 17", "iPhone", "198.51.100.4", "5 minutes ago"] {
        assert!(
            others.contains(shown),
            "{shown} for the other session: {others}"
        );
    }
    assert!(!others.contains("203.0.113.7"), "{others}");
    let started = time::OffsetDateTime::from_unix_timestamp(app.clock_now() - 5 * 60).unwrap();
    let date = format!("{} {} {}", started.day(), started.month(), started.year());
    assert!(others.contains(&date), "when it started ({date}): {others}");

    // The phone uses its session: its last use moves; now the laptop is 3 minutes behind.
    app.clock.advance(3 * 60);
    page(&app, &phone.browser, "/account/apps").await;
    let html = page(&app, &phone.browser, "/account/sessions").await;
    let others = html.split_once(r#"id="other-sessions""#).unwrap().1;
    assert!(
        others.contains("Firefox 131") && others.contains("3 minutes ago"),
        "{others}"
    );
}

/// Posts the password form from `browser`'s security page.
async fn change_password(
    app: &TestApp,
    browser: &reqwest::Client,
    current: &str,
    new: &str,
    confirm: &str,
) -> (StatusCode, String, String) {
    let html = page(app, browser, "/account/security").await;
    for field in [
        "current-password",
        "new-password",
        r#"autocomplete="username""#,
    ] {
        assert!(html.contains(field), "{field}: {html}");
    }
    let form = [
        ("csrf_token", hidden_field(&html, "csrf_token")),
        ("current_password", current.to_string()),
        ("new_password", new.to_string()),
        ("confirm_password", confirm.to_string()),
    ];
    let res = browser
        .post(app.url("/account/security/password"))
        .form(&form)
        .send()
        .await
        .unwrap();
    let status = res.status();
    let to = res
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, to, res.text().await.unwrap())
}

async fn a_password_change_checks_the_current_password_and_the_rules_and_ends_the_other_sessions(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    app.create_user("di@example.com", "Di").await;
    app.create_user("eve@example.com", "Eve").await;
    let di = sign_in(&app, "di@example.com", CHROME_ON_MAC, None).await;
    let phone = sign_in(&app, "di@example.com", SAFARI_ON_IPHONE, None).await;
    let eve = sign_in(&app, "eve@example.com", FIREFOX_ON_WINDOWS, None).await;

    // Each mistake gets its message, and changes nothing.
    let cases = [
        (
            "",
            NEW_PASSWORD,
            NEW_PASSWORD,
            "Enter your current password.",
        ),
        (
            "wrong password",
            NEW_PASSWORD,
            NEW_PASSWORD,
            "Your current password is not correct.",
        ),
        (PASSWORD, "short", "short", "at least 8 characters"),
        (
            PASSWORD,
            NEW_PASSWORD,
            "a brand new passphrasf",
            "The two new passwords are not the same.",
        ),
    ];
    for (current, new, confirm, message) in cases {
        let (status, _, body) = change_password(&app, &di.browser, current, new, confirm).await;
        assert_eq!(status, 200, "{body}");
        assert!(body.contains(message), "{message}: {body}");
        assert!(body.contains(r#"aria-invalid="true""#), "{body}");
    }
    let long = "x".repeat(1025);
    let (_, _, body) = change_password(&app, &di.browser, PASSWORD, &long, &long).await;
    assert!(body.contains("too long"), "{body}");
    assert!(
        !is_signed_out(&app, &phone.browser).await,
        "nothing changed yet"
    );

    // Without the CSRF token: refused.
    let form = [
        ("csrf_token", "forged"),
        ("current_password", PASSWORD),
        ("new_password", NEW_PASSWORD),
        ("confirm_password", NEW_PASSWORD),
    ];
    let (status, _, _) = post(&app, &di.browser, "/account/security/password", &form).await;
    assert_eq!(status, 400);

    let (status, to, _) =
        change_password(&app, &di.browser, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/account/security?changed=1")
    );
    let after = page(&app, &di.browser, &to).await;
    assert!(
        after.contains("Your password is changed. Your other session has ended."),
        "{after}"
    );
    assert!(
        !is_signed_out(&app, &di.browser).await,
        "this session stays"
    );
    assert!(is_signed_out(&app, &phone.browser).await, "the other ended");
    assert!(
        !is_signed_out(&app, &eve.browser).await,
        "another person's stays"
    );

    // The new password signs in; the old one does not.
    let (_, body, signed) =
        try_sign_in(&app, "di@example.com", PASSWORD, CHROME_ON_MAC, None).await;
    assert!(
        signed.is_none() && body.contains("The email or password is not correct."),
        "{body}"
    );
    let (status, _, signed) =
        try_sign_in(&app, "di@example.com", NEW_PASSWORD, CHROME_ON_MAC, None).await;
    assert!(signed.is_some(), "{status}");
}

async fn wrong_current_passwords_count_toward_the_sign_in_limit(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("di@example.com", "Di").await;
    let di = sign_in(&app, "di@example.com", CHROME_ON_MAC, None).await;
    let limit = app.state.settings.login_limits.per_account_and_address;
    // One wrong sign-in, then wrong current passwords up to the limit: they share a counter.
    let (_, body, signed) = try_sign_in(&app, "di@example.com", "nope", CHROME_ON_MAC, None).await;
    assert!(signed.is_none(), "{body}");
    for _ in 1..limit {
        let (status, _, body) =
            change_password(&app, &di.browser, "still wrong", NEW_PASSWORD, NEW_PASSWORD).await;
        assert_eq!(status, 200);
        assert!(
            body.contains("Your current password is not correct."),
            "{body}"
        );
    }
    // Locked: even the right current password is not checked now.
    let res = {
        let html = page(&app, &di.browser, "/account/security").await;
        let form = [
            ("csrf_token", hidden_field(&html, "csrf_token")),
            ("current_password", PASSWORD.to_string()),
            ("new_password", NEW_PASSWORD.to_string()),
            ("confirm_password", NEW_PASSWORD.to_string()),
        ];
        di.browser
            .post(app.url("/account/security/password"))
            .form(&form)
            .send()
            .await
            .unwrap()
    };
    assert_eq!(res.status(), 429);
    assert!(res.headers().contains_key("retry-after"));
    let body = res.text().await.unwrap();
    assert!(body.contains("Too many wrong passwords"), "{body}");
    // Sign-in from here is locked too; the password did not change.
    let (status, body, _) =
        try_sign_in(&app, "di@example.com", PASSWORD, CHROME_ON_MAC, None).await;
    assert_eq!(status, 429, "{body}");

    // After the window, the right current password works.
    let window = app.state.settings.login_limits.window;
    app.clock.advance(window + 1);
    let (status, to, body) =
        change_password(&app, &di.browser, PASSWORD, NEW_PASSWORD, NEW_PASSWORD).await;
    assert_eq!(
        (status, to.as_str()),
        (StatusCode::SEE_OTHER, "/account/security?changed=0"),
        "{body}"
    );
}

async fn sign_out_answers_post_only_needs_the_csrf_token_and_ends_the_session(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user("di@example.com", "Di").await;
    let di = sign_in(&app, "di@example.com", CHROME_ON_MAC, None).await;
    let other = sign_in(&app, "di@example.com", SAFARI_ON_IPHONE, None).await;

    // Every account page has the header, with its Sign out form; the current page is marked.
    for (path, current) in [
        ("/account/apps", "Connected apps"),
        ("/account/sessions", "Sessions"),
        ("/account/security", "Security"),
    ] {
        let html = page(&app, &di.browser, path).await;
        assert!(
            html.contains(r#"<form class="sign-out" method="post" action="/account/sign-out">"#),
            "{html}"
        );
        assert!(
            html.contains(&format!(r#"aria-current="page">{current}</a>"#)),
            "{html}"
        );
        assert_eq!(html.matches("aria-current").count(), 1, "{html}");
        assert!(html.contains(r#"action="/account/sessions/end""#) || path != "/account/sessions");
    }

    // A GET asks and signs nobody out.
    let html = page(&app, &di.browser, "/account/sign-out").await;
    assert!(html.contains("Sign out of Onyx ID?"), "{html}");
    assert!(!is_signed_out(&app, &di.browser).await);
    // A POST without the CSRF token is refused.
    let (status, _, _) = post(
        &app,
        &di.browser,
        "/account/sign-out",
        &[("csrf_token", "forged")],
    )
    .await;
    assert_eq!(status, 400);
    let (status, _, _) = post(&app, &di.browser, "/account/sign-out", &[]).await;
    assert_eq!(status, 400);
    assert!(!is_signed_out(&app, &di.browser).await);

    let csrf = hidden_field(&html, "csrf_token");
    let res = di
        .browser
        .post(app.url("/account/sign-out"))
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    assert_eq!(res.headers()["x-frame-options"], "DENY");
    let cleared = res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|c| c.starts_with("onyx_session=;") && c.contains("Max-Age=0"));
    assert!(
        cleared,
        "the session cookie is cleared: {:?}",
        res.headers()
    );
    let body = res.text().await.unwrap();
    assert!(body.contains("You are signed out"), "{body}");

    for path in ["/account/apps", "/account/sessions", "/account/security"] {
        let (status, to, _) = open(&app, &di.browser, path).await;
        assert_eq!(
            (status, to),
            (StatusCode::SEE_OTHER, format!("/login?next={path}"))
        );
    }
    // The old cookie, sent again, names no session.
    let replay = http()
        .get(app.url("/account/apps"))
        .header("cookie", format!("onyx_session={}", di.secret))
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 303);
    assert!(
        !is_signed_out(&app, &other.browser).await,
        "only this browser signed out"
    );
    // Signed out, a GET says so.
    let html = page(&app, &di.browser, "/account/sign-out").await;
    assert!(html.contains("You are signed out"), "{html}");
}
