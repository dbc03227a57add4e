//! A real browser: headless Chromium driven over WebDriver (chromedriver) signs in, unticks an
//! optional permission on the consent screen, and later removes the app on Connected apps. The
//! app's side is checked over HTTP after each step: its tokens, introspection, userinfo and the
//! partner API. A second test walks every page a person sees (sign-in, consent, Connected apps,
//! Sessions, Security, sign-out) at 390 px and 1280 px: a screenshot of each into
//! `target/test-artifacts/`, and axe-core finds no WCAG 2.2 AA violation. The browser and its
//! tools are in `support/browser.rs`.

use std::time::{Duration, Instant};

use fantoccini::Locator;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::browser::*;

/// A permission's state and reason in an introspection or partner API answer.
fn permission<'a>(v: &'a Value, scope: &str) -> (&'a str, &'a str) {
    let perms = v["permissions"].as_array();
    let p = perms.and_then(|ps| ps.iter().find(|p| p["scope"] == scope));
    let p = p.unwrap_or_else(|| panic!("no permission {scope} in {v}"));
    (
        p["state"].as_str().unwrap_or(""),
        p["reason"].as_str().unwrap_or(""),
    )
}

#[tokio::test]
async fn a_person_unticks_a_permission_then_removes_the_app_in_a_real_browser() {
    if !browser_available() {
        return;
    }
    let app = spawn_app(backends()[0]).await;
    app.create_user("mia@example.com", "Mia").await;
    // A redirect URI on the test server's loopback address that nothing serves: the test reads
    // the code from the browser's address bar.
    let redirect = app.url("/partner-app/callback");
    let purpose = "Plan your trips and share them with your friends.";
    let mut s = spec(&["openid", "profile"]);
    s.redirect_uris = vec![redirect.clone()];
    s.consent.optional_scopes = vec!["email".into()];
    s.consent.purpose = purpose.into();
    s.consent.consent_copy = "Travel Buddy never posts without asking you.".into();
    let client = app.create_app_with(s).await;

    let driver = Chromedriver::start();
    let browser = driver.browser().await;

    // Authorize: the server sends the browser to sign in first.
    let (verifier, challenge) = pkce();
    let params = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("scope", "openid profile email"),
            ("state", "st-browser"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let authorize = app.url(&format!("/authorize?{params}"));
    browser.goto(&authorize).await.unwrap();
    type_into(&browser, "#email", "mia@example.com").await;
    type_into(&browser, "#password", PASSWORD).await;
    click(&browser, "button[type=submit]").await;

    // The consent screen: the purpose, email optional and ticked, profile required (no box).
    let approve = element(&browser, r#"button[name="decision"][value="approve"]"#).await;
    let page = browser.source().await.unwrap();
    let shown = element(&browser, "p.purpose").await.text().await.unwrap();
    assert_eq!(shown, purpose, "the purpose on the consent page: {page}");
    let email_box = element(&browser, r#"input[name="scope:email"]"#).await;
    let ticked = email_box.is_selected().await.unwrap();
    assert!(ticked, "email is ticked at first: {page}");
    let profile_box = Locator::Css(r#"input[name="scope:profile"]"#);
    let boxes = browser.find_all(profile_box).await.unwrap();
    assert!(boxes.is_empty(), "profile is needed: no box: {page}");
    shoot(&browser, "consent-screen").await;

    // Untick email and allow: the browser comes back to the app with a code.
    email_box.click().await.unwrap();
    assert!(!email_box.is_selected().await.unwrap(), "email unticked");
    approve.click().await.unwrap();
    // The click does not wait for the navigation: wait until the consent page is gone.
    element(&browser, r#"html:not(:has(button[name="decision"]))"#).await;
    let back = browser.current_url().await.unwrap().to_string();
    assert!(back.starts_with(&redirect), "back at the app: {back}");
    let q = query(&back);
    let state = q.get("state").map(String::as_str);
    assert_eq!(state, Some("st-browser"), "{back}");
    let code = q.get("code").unwrap_or_else(|| panic!("a code in {back}"));

    // The app exchanges the code: no email, as the person chose.
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &redirect),
        ("code_verifier", &verifier),
    ];
    let (status, tokens) = app_post(&app, &client, "/token", &form).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["scope"], "openid profile", "{tokens}");
    let access = tokens["access_token"].as_str().unwrap().to_string();
    let seen = introspect(&app, &client, &access).await;
    assert_eq!(seen["active"], true, "{seen}");
    assert_eq!(seen["scope"], "openid profile", "{seen}");
    let email = permission(&seen, "email");
    assert_eq!(email, ("denied", "user_declined"), "{seen}");
    assert_eq!(permission(&seen, "profile").0, "granted", "{seen}");
    let sub = seen["sub"].as_str().unwrap().to_string();
    let (status, me) = userinfo(&app, &access).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["name"], "Mia", "{me}");
    assert!(me.get("email").is_none(), "no email without consent: {me}");

    // Connected apps, in the same signed-in browser: remove all access.
    browser.goto(&app.url("/account/apps")).await.unwrap();
    let id = &client.client_id;
    let section = format!(r#"section.connected-app[id="app-{id}"]"#);
    let section = element(&browser, &section).await;
    let page = browser.source().await.unwrap();
    let table = section.find(Locator::Css("table")).await;
    assert!(table.is_ok(), "a permissions table: {page}");
    let remove_all = section.find(Locator::XPath(REMOVE_ALL)).await;
    let remove_all = remove_all.unwrap_or_else(|_| panic!("a Remove all access button: {page}"));
    remove_all.click().await.unwrap();
    let ended = format!(r#"section.connected-app.ended[id="app-{id}"]"#);
    element(&browser, &ended).await;
    let page = browser.source().await.unwrap();
    assert!(page.contains("Disconnected apps"), "{page}");
    shoot(&browser, "connected-apps").await;
    browser.close().await.unwrap();
    drop(driver);

    // What the app sees now: its token is dead and the partner API says revoked by the user.
    let seen = introspect(&app, &client, &access).await;
    assert_eq!(seen["active"], false, "{seen}");
    let (status, me) = userinfo(&app, &access).await;
    assert_eq!(status, 401, "{me}");
    let secret = client.client_secret.as_deref();
    let req = http()
        .get(app.url(&format!("/api/v1/grants/{sub}")))
        .basic_auth(id, secret);
    let (status, grant) = json_of(req.send().await.unwrap()).await;
    assert_eq!(status, 200, "{grant}");
    assert_eq!(grant["state"], "revoked", "{grant}");
    let all = grant["permissions"].as_array().map_or(0, Vec::len);
    assert_eq!(all, 3, "openid, profile and email: {grant}");
    for scope in ["openid", "profile"] {
        let removed = permission(&grant, scope);
        assert_eq!(removed, ("revoked", "revoked_by_user"), "{grant}");
    }
    let email = permission(&grant, "email");
    assert_eq!(email, ("denied", "user_declined"), "{grant}");
}

const FIREFOX_ON_WINDOWS: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0";

/// Whether the focused element shows the focus ring (a solid outline).
async fn focus_ring(browser: &fantoccini::Client, css: &str) -> String {
    let script = r#"
        const el = document.querySelector(arguments[0]);
        el.focus();
        const s = getComputedStyle(el);
        return `${el.matches(":focus-visible")} ${s.outlineStyle} ${s.outlineWidth} ${s.outlineColor}`;
    "#;
    let v = browser.execute(script, vec![json!(css)]).await.unwrap();
    v.as_str().unwrap_or_default().to_string()
}

#[tokio::test]
async fn every_page_reads_well_at_phone_and_desktop_widths_and_passes_axe() {
    if !browser_available() {
        return;
    }
    let app = spawn_app(backends()[0]).await;
    app.create_user("mia@example.com", "Mia").await;
    let redirect = app.url("/partner-app/callback");
    // Besides sign-in, name and email: community:access without its capability and links:read
    // still in review, both unavailable with a reason (the longest words on Connected apps).
    let mut s = spec(&["openid", "profile", "email", "community:access"]);
    s.redirect_uris = vec![redirect.clone()];
    s.consent.optional_scopes = vec!["email".into()];
    s.consent.pending_scopes = vec!["links:read".into()];
    s.consent.purpose = "Plan your trips and share them with your friends.".into();
    let client = app.create_app_with(s).await;

    // Another session of Mia's, from Firefox on Windows, for the sessions page.
    let firefox = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .cookie_store(true)
        .user_agent(FIREFOX_ON_WINDOWS)
        .build()
        .unwrap();
    let login = get_text(&firefox, app.url("/login?next=/account/apps")).await;
    let res = firefox
        .post(app.url("/login"))
        .form(&[
            ("next", "/account/apps"),
            ("csrf_token", &hidden_field(&login, "csrf_token")),
            ("email", "mia@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);

    let driver = Chromedriver::start();
    let browser = driver.browser().await;
    let (_, challenge) = pkce();
    let params = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client.client_id.as_str()),
            ("redirect_uri", redirect.as_str()),
            ("scope", "openid profile email community:access links:read"),
            ("state", "st-pages"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    browser
        .goto(&app.url(&format!("/authorize?{params}")))
        .await
        .unwrap();
    let at = browser.current_url().await.unwrap().to_string();
    assert!(at.contains("/login?request_id="), "at the login page: {at}");
    element(&browser, "#email").await;
    shoot_and_check(&browser, "page-login").await;
    type_into(&browser, "#email", "mia@example.com").await;
    type_into(&browser, "#password", PASSWORD).await;
    click(&browser, "button[type=submit]").await;
    let approve = element(&browser, r#"button[name="decision"][value="approve"]"#).await;
    shoot_and_check(&browser, "page-consent").await;
    approve.click().await.unwrap();
    element(&browser, r#"html:not(:has(button[name="decision"]))"#).await;

    // Connected apps: the header marks the page; two separate actions per app.
    browser.goto(&app.url("/account/apps")).await.unwrap();
    let current = element(&browser, r#"nav a[aria-current="page"]"#).await;
    assert_eq!(current.text().await.unwrap(), "Connected apps");
    let page = browser.source().await.unwrap();
    for needed in [
        "Unavailable",
        r#"action="/account/apps/sign-out""#,
        "Sign out of Travel Buddy",
        "Remove all access for Travel Buddy",
        r#"action="/account/sign-out""#,
    ] {
        assert!(page.contains(needed), "{needed} on Connected apps: {page}");
    }
    // Links and summaries get the buttons' focus ring.
    let button = focus_ring(&browser, ".sign-out button").await;
    assert!(button.starts_with("true solid 3px"), "button: {button}");
    for css in [".account-nav a", "summary"] {
        let ring = focus_ring(&browser, css).await;
        assert_eq!(ring, button, "{css} has the buttons' focus ring");
    }
    shoot_and_check(&browser, "page-connected-apps").await;
    // At 390 px, no word of the permissions is broken over two lines ("Remov / e").
    browser.set_window_size(390, 900).await.unwrap();
    let split = r#"
        const split = [];
        for (const cell of document.querySelectorAll(".permissions th, .permissions td")) {
          const walk = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
          for (let node = walk.nextNode(); node; node = walk.nextNode()) {
            for (const m of node.textContent.matchAll(/\S+/g)) {
              const r = document.createRange();
              r.setStart(node, m.index);
              r.setEnd(node, m.index + m[0].length);
              const lines = new Set([...r.getClientRects()].map(b => Math.round(b.top)));
              if (lines.size > 1) split.push(m[0]);
            }
          }
        }
        return split;
    "#;
    let split = browser.execute(split, vec![]).await.unwrap();
    assert_eq!(split, json!([]), "words split over two lines at 390 px");
    browser.set_window_size(1280, 900).await.unwrap();

    // Sessions: this device, and Firefox on Windows.
    browser.goto(&app.url("/account/sessions")).await.unwrap();
    element(&browser, ".session.current").await;
    let other = element(&browser, "ul.sessions .session")
        .await
        .text()
        .await
        .unwrap();
    assert!(other.contains("Firefox 131 on Windows 10"), "{other}");
    shoot_and_check(&browser, "page-sessions").await;

    // Security, and its form after a wrong current password.
    browser.goto(&app.url("/account/security")).await.unwrap();
    element(&browser, "#current_password").await;
    shoot_and_check(&browser, "page-security").await;
    type_into(&browser, "#current_password", "not my password").await;
    type_into(&browser, "#new_password", "a brand new passphrase").await;
    type_into(&browser, "#confirm_password", "a brand new passphrase").await;
    click(
        &browser,
        r#"form[action="/account/security/password"] button"#,
    )
    .await;
    let error = element(&browser, "#password-error")
        .await
        .text()
        .await
        .unwrap();
    assert_eq!(error, "Your current password is not correct.");
    shoot_and_check(&browser, "page-security-error").await;

    // Sign out: a GET asks; the form's POST signs out.
    browser.goto(&app.url("/account/sign-out")).await.unwrap();
    element(&browser, r#"form[action="/account/sign-out"] button"#).await;
    shoot_and_check(&browser, "page-sign-out").await;
    click(&browser, r#"form[action="/account/sign-out"] button"#).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        // The page changes under the click: find the heading afresh each time.
        let h1 = browser.find(Locator::Css("h1")).await;
        if let Ok(h1) = h1
            && h1.text().await.ok().as_deref() == Some("You are signed out")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "{}",
            browser.source().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    shoot_and_check(&browser, "page-signed-out").await;
    browser.goto(&app.url("/account/sessions")).await.unwrap();
    element(&browser, "#email").await;
    let at = browser.current_url().await.unwrap().to_string();
    assert!(at.contains("/login?next=/account/sessions"), "{at}");
    browser.close().await.unwrap();
    drop(driver);
}
