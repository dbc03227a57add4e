//! The sign-in flow, driven by the `openidconnect` crate as a partner app would drive it.

use openidconnect::core::{CoreAuthenticationFlow, CoreJwsSigningAlgorithm, CoreUserInfoClaims};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, CsrfToken, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    Scope, TokenResponse,
};

use crate::helpers::*;

on_each_backend!(
    a_confidential_app_signs_a_user_in_end_to_end,
    a_public_app_signs_a_user_in_with_pkce_and_rsa_id_tokens,
    declining_consent_returns_access_denied_with_the_state,
    a_granted_app_skips_the_consent_screen_unless_prompt_consent_asks_for_it,
    prompt_none_never_shows_a_page,
    prompt_login_and_max_age_ask_for_a_fresh_login_and_report_auth_time,
    wrong_credentials_get_one_generic_message_and_repeated_failures_are_limited,
    userinfo_releases_only_the_claims_of_granted_scopes,
);

async fn full_flow(app: &TestApp, client: &Client, alg: CoreJwsSigningAlgorithm) {
    app.create_user("ada@example.com", "Ada Lovelace").await;
    let http = http();
    let oidc = oidc_client(app, client, &http).await;
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let (auth_url, csrf_state, nonce) = oidc
        .authorize_url(
            CoreAuthenticationFlow::AuthorizationCode,
            CsrfToken::new_random,
            Nonce::new_random,
        )
        .add_scope(Scope::new("profile".into()))
        .add_scope(Scope::new("email".into()))
        .set_pkce_challenge(challenge)
        .url();

    // The browser part: authorize → login → consent → back to the app.
    let browser = browser();
    let res = browser.get(auth_url.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let login = location(res.headers());
    assert!(login.starts_with("/login?request_id="), "{login}");
    let consent = log_in(app, &browser, &login, "ada@example.com").await;
    assert!(consent.starts_with("/consent?request_id="), "{consent}");
    let page = get_text(&browser, absolute(app, &consent)).await;
    assert!(
        page.contains("Travel Buddy"),
        "the consent page names the app"
    );
    assert!(
        page.contains("Your email address") && page.contains("Your name"),
        "scope labels from the catalogue"
    );
    let back = answer_consent(app, &browser, &consent, "approve").await;
    assert!(back.starts_with(REDIRECT), "{back}");
    let q = query(&back);
    assert_eq!(q["state"], *csrf_state.secret());
    assert_eq!(q["iss"], app.issuer, "RFC 9207 iss in the response");

    let tokens = oidc
        .exchange_code(AuthorizationCode::new(q["code"].clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http)
        .await
        .expect("code exchange");
    let id_token = tokens
        .id_token()
        .expect("an ID token for an openid request");
    let verifier = oidc.id_token_verifier().set_allowed_algs(vec![alg.clone()]);
    let claims = id_token
        .claims(&verifier, &nonce)
        .expect("the ID token verifies against the JWKS");
    assert_eq!(id_token.signing_alg().unwrap(), &alg);
    let expected_hash = AccessTokenHash::from_token(
        tokens.access_token(),
        id_token.signing_alg().unwrap(),
        id_token.signing_key(&verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(claims.access_token_hash(), Some(&expected_hash));
    assert!(claims.auth_time().is_some());

    let info: CoreUserInfoClaims = oidc
        .user_info(
            tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject(), claims.subject());
    assert_eq!(info.email().map(|e| e.as_str()), Some("ada@example.com"));
    assert_eq!(
        info.name().and_then(|n| n.get(None)).map(|n| n.as_str()),
        Some("Ada Lovelace")
    );
}

async fn a_confidential_app_signs_a_user_in_end_to_end(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid", "profile", "email"]).await;
    full_flow(&app, &client, CoreJwsSigningAlgorithm::EcdsaP256Sha256).await;
}

async fn a_public_app_signs_a_user_in_with_pkce_and_rsa_id_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut s = spec(&["openid", "profile", "email"]);
    s.public = true;
    s.id_token_alg = "RS256".into();
    let client = app.create_app_with(s).await;
    assert!(client.client_secret.is_none());
    full_flow(&app, &client, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256).await;
}

async fn declining_consent_returns_access_denied_with_the_state(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid"]).await;
    app.create_user("bo@example.com", "Bo").await;
    let browser = browser();
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[]);
    let login = location(browser.get(url).send().await.unwrap().headers());
    let consent = log_in(&app, &browser, &login, "bo@example.com").await;
    let back = answer_consent(&app, &browser, &consent, "deny").await;
    assert!(back.starts_with(REDIRECT));
    let q = query(&back);
    assert_eq!(q["error"], "access_denied");
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], app.issuer);
    assert!(!q.contains_key("code"));
}

async fn a_granted_app_skips_the_consent_screen_unless_prompt_consent_asks_for_it(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid", "profile", "email"]).await;
    app.create_user("cy@example.com", "Cy").await;
    let browser = browser();
    let (url, _) = authorize_url(&app, &client.client_id, "openid profile", &[]);
    let login = location(browser.get(url).send().await.unwrap().headers());
    let consent = log_in(&app, &browser, &login, "cy@example.com").await;
    answer_consent(&app, &browser, &consent, "approve").await;

    // Same scopes again: straight back with a code.
    let (url, _) = authorize_url(&app, &client.client_id, "openid profile", &[]);
    let back = location(browser.get(url).send().await.unwrap().headers());
    assert!(
        back.starts_with(REDIRECT) && query(&back).contains_key("code"),
        "{back}"
    );

    // prompt=none works too now.
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[("prompt", "none")]);
    let back = location(browser.get(url).send().await.unwrap().headers());
    assert!(query(&back).contains_key("code"), "{back}");

    // A new scope: the screen again, for the new scope only.
    let (url, _) = authorize_url(&app, &client.client_id, "openid profile email", &[]);
    let consent = location(browser.get(url).send().await.unwrap().headers());
    assert!(consent.starts_with("/consent"), "{consent}");
    let html = get_text(&browser, absolute(&app, &consent)).await;
    let asked = &html[..html
        .find("Already allowed")
        .expect("already granted scopes are listed apart")];
    assert!(asked.contains("Your email address") && !asked.contains("Your name"));

    // prompt=consent forces the screen.
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[("prompt", "consent")]);
    let consent = location(browser.get(url).send().await.unwrap().headers());
    assert!(consent.starts_with("/consent"), "{consent}");
}

async fn prompt_none_never_shows_a_page(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid"]).await;
    app.create_user("di@example.com", "Di").await;
    let browser = browser();
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[("prompt", "none")]);
    let back = location(browser.get(url).send().await.unwrap().headers());
    assert_eq!(query(&back)["error"], "login_required");
    assert_eq!(query(&back)["state"], "st-123");

    // Signed in but not yet consented.
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[]);
    let login = location(browser.get(url).send().await.unwrap().headers());
    log_in(&app, &browser, &login, "di@example.com").await;
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[("prompt", "none")]);
    let back = location(browser.get(url).send().await.unwrap().headers());
    assert_eq!(query(&back)["error"], "consent_required");
}

async fn prompt_login_and_max_age_ask_for_a_fresh_login_and_report_auth_time(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid"]).await;
    app.create_user("ed@example.com", "Ed").await;
    let (code, verifier) =
        authorize_code(&app, &client.client_id, "ed@example.com", "openid").await;
    let first: serde_json::Value = exchange(&app, &client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    assert!(first["id_token"].is_string());

    let browser = browser();
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[]);
    let login = location(browser.get(url).send().await.unwrap().headers());
    log_in(&app, &browser, &login, "ed@example.com").await;
    app.clock.advance(600);
    // max_age=60 after ten minutes: login again.
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[("max_age", "60")]);
    let next = location(browser.get(url).send().await.unwrap().headers());
    assert!(next.starts_with("/login"), "{next}");
    // prompt=login: login again even with a fresh session.
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[("prompt", "login")]);
    let next = location(browser.get(url).send().await.unwrap().headers());
    assert!(next.starts_with("/login"), "{next}");
    let back = log_in(&app, &browser, &next, "ed@example.com").await;
    assert!(
        back.starts_with(REDIRECT),
        "consent was given before: {back}"
    );
}

async fn wrong_credentials_get_one_generic_message_and_repeated_failures_are_limited(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid"]).await;
    app.create_user("fi@example.com", "Fi").await;
    let browser = browser();
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[]);
    let login = location(browser.get(url).send().await.unwrap().headers());
    let html = get_text(&browser, app.url(&login)).await;
    let (rid, csrf) = (
        hidden_field(&html, "request_id"),
        hidden_field(&html, "csrf_token"),
    );
    let attempt = |email: &'static str, password: &'static str| {
        let browser = browser.clone();
        let (rid, csrf, url) = (rid.clone(), csrf.clone(), app.url("/login"));
        async move {
            browser
                .post(url)
                .form(&[
                    ("request_id", rid.as_str()),
                    ("csrf_token", csrf.as_str()),
                    ("email", email),
                    ("password", password),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let wrong_password = attempt("fi@example.com", "not the password").await;
    assert_eq!(wrong_password.status(), 200);
    let a = wrong_password.text().await.unwrap();
    let b = attempt("nobody@example.com", "not the password")
        .await
        .text()
        .await
        .unwrap();
    assert!(a.contains("The email or password is not correct."));
    assert!(
        b.contains("The email or password is not correct."),
        "an unknown email looks the same"
    );
    for _ in 0..4 {
        attempt("fi@example.com", "still wrong").await;
    }
    let limited = attempt("fi@example.com", PASSWORD).await;
    assert_eq!(
        limited.status(),
        429,
        "even the right password waits after 5 failures"
    );
    app.clock.advance(16 * 60);
    let ok = attempt("fi@example.com", PASSWORD).await;
    assert_eq!(ok.status(), 303);
}

#[tokio::test]
async fn login_and_consent_pages_cannot_be_framed_or_cached_and_forms_need_the_csrf_token() {
    let app = spawn_app(Backend::Sqlite).await;
    let client = app.create_app(&["openid"]).await;
    app.create_user("gus@example.com", "Gus").await;
    let browser = browser();
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[]);
    let login = location(browser.get(url).send().await.unwrap().headers());
    let page = browser.get(app.url(&login)).send().await.unwrap();
    for (h, v) in [
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
        ("referrer-policy", "no-referrer"),
    ] {
        assert_eq!(page.headers()[h], v, "{h}");
    }
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("frame-ancestors 'none'")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("type=\"email\"") && html.contains("type=\"password\""));
    // A login post without the CSRF token is refused.
    let res = browser
        .post(app.url("/login"))
        .form(&[
            ("request_id", hidden_field(&html, "request_id").as_str()),
            ("email", "gus@example.com"),
            ("password", PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let consent = log_in(&app, &browser, &login, "gus@example.com").await;
    let page = browser.get(app.url(&consent)).send().await.unwrap();
    assert_eq!(page.headers()["x-frame-options"], "DENY");
    let html = page.text().await.unwrap();
    let forged = browser
        .post(app.url("/consent"))
        .form(&[
            ("request_id", hidden_field(&html, "request_id").as_str()),
            ("csrf_token", "forged"),
            ("decision", "approve"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 400);
    // The session cookie is HttpOnly and SameSite=Lax (and not Secure on an http issuer).
    let fresh = super::helpers::browser();
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[]);
    let login = location(fresh.get(url).send().await.unwrap().headers());
    let html = get_text(&fresh, app.url(&login)).await;
    let res = fresh
        .post(app.url("/login"))
        .form(&[
            ("request_id", hidden_field(&html, "request_id")),
            ("csrf_token", hidden_field(&html, "csrf_token")),
            ("email", "gus@example.com".into()),
            ("password", PASSWORD.into()),
        ])
        .send()
        .await
        .unwrap();
    let cookie = res.headers()["set-cookie"].to_str().unwrap().to_string();
    assert!(
        cookie.starts_with("onyx_session=")
            && cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Lax")
    );
    assert!(!cookie.contains("Secure"));
}

async fn userinfo_releases_only_the_claims_of_granted_scopes(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid", "profile", "email"]).await;
    app.create_user("hal@example.com", "Hal").await;
    let (code, verifier) =
        authorize_code(&app, &client.client_id, "hal@example.com", "openid").await;
    let tokens: serde_json::Value = exchange(&app, &client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let at = tokens["access_token"].as_str().unwrap();
    let (_, info) = userinfo(&app, at).await;
    assert!(info["sub"].is_string());
    assert!(
        info.get("email").is_none() && info.get("name").is_none(),
        "{info}"
    );
    // POST with the token in the form body works too (RFC 6750 §2.2).
    let res = http()
        .post(app.url("/userinfo"))
        .form(&[("access_token", at)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    // No token, or a bad one: 401 with a Bearer challenge.
    let res = http().get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Bearer")
    );
    let res = http()
        .get(app.url("/userinfo"))
        .bearer_auth("garbage")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .contains("error=\"invalid_token\"")
    );
    // An expired token is refused.
    app.clock.advance(3601);
    let res = http()
        .get(app.url("/userinfo"))
        .bearer_auth(at)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn a_plain_oauth_request_without_openid_gets_no_id_token() {
    let app = spawn_app(Backend::Sqlite).await;
    let client = app.create_app(&["openid", "profile"]).await;
    app.create_user("ivy@example.com", "Ivy").await;
    let (code, verifier) =
        authorize_code(&app, &client.client_id, "ivy@example.com", "profile").await;
    let res = exchange(&app, &client, &code, &verifier).await;
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["cache-control"], "no-store");
    let tokens: serde_json::Value = res.json().await.unwrap();
    assert!(tokens.get("id_token").is_none());
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "profile");
    assert!(tokens["expires_in"].is_number());
    // The access token is an RFC 9068 JWT.
    let at = tokens["access_token"].as_str().unwrap();
    let parts: Vec<&str> = at.split('.').collect();
    assert_eq!(parts.len(), 3);
    use base64::Engine;
    let decode = |p: &str| -> serde_json::Value {
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(p)
                .unwrap(),
        )
        .unwrap()
    };
    let (header, claims) = (decode(parts[0]), decode(parts[1]));
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["alg"], "ES256");
    for claim in [
        "iss",
        "sub",
        "aud",
        "client_id",
        "scope",
        "exp",
        "iat",
        "jti",
    ] {
        assert!(claims.get(claim).is_some(), "{claim} in {claims}");
    }
    assert_eq!(claims["client_id"], client.client_id.as_str());
}

#[tokio::test]
async fn the_oauth2_crate_completes_a_plain_oauth_flow() {
    use oauth2::basic::BasicClient;
    use oauth2::{AuthUrl, TokenUrl};
    let app = spawn_app(Backend::Sqlite).await;
    let client = app.create_app(&["openid", "profile"]).await;
    app.create_user("jo@example.com", "Jo").await;
    let oauth = BasicClient::new(oauth2::ClientId::new(client.client_id.clone()))
        .set_client_secret(oauth2::ClientSecret::new(
            client.client_secret.clone().unwrap(),
        ))
        .set_auth_uri(AuthUrl::new(app.url("/authorize")).unwrap())
        .set_token_uri(TokenUrl::new(app.url("/token")).unwrap())
        .set_redirect_uri(oauth2::RedirectUrl::new(REDIRECT.into()).unwrap());
    let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
    let (url, state) = oauth
        .authorize_url(oauth2::CsrfToken::new_random)
        .add_scope(oauth2::Scope::new("profile".into()))
        .set_pkce_challenge(challenge)
        .url();
    let browser = browser();
    let login = location(browser.get(url.as_str()).send().await.unwrap().headers());
    let consent = log_in(&app, &browser, &login, "jo@example.com").await;
    let back = answer_consent(&app, &browser, &consent, "approve").await;
    let q = query(&back);
    assert_eq!(q["state"], *state.secret());
    let tokens = oauth
        .exchange_code(oauth2::AuthorizationCode::new(q["code"].clone()))
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .expect("HTTP Basic client authentication and code exchange");
    assert_eq!(tokens.scopes().unwrap()[0].as_str(), "profile");
}

#[tokio::test]
async fn keys_rotate_publishes_the_new_key_first_and_signs_with_it_later() {
    let app = spawn_app(Backend::Sqlite).await;
    let jwks = |app: &TestApp| {
        let url = app.url("/jwks.json");
        async move {
            http()
                .get(url)
                .send()
                .await
                .unwrap()
                .json::<serde_json::Value>()
                .await
                .unwrap()
        }
    };
    let before = jwks(&app).await;
    assert_eq!(before["keys"].as_array().unwrap().len(), 2);
    let mut settings = app.state.settings.clone();
    settings.keys_dir = app.keys_dir.clone();
    let out = onyx_id::admin::rotate_keys(&app.state.db, &settings, app.clock_now(), false, false)
        .await
        .unwrap();
    let new_es = out.keys[0].kid.clone();
    let after = jwks(&app).await;
    let kids: Vec<&str> = after["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert_eq!(kids.len(), 4, "old and new keys are published");
    assert!(kids.contains(&new_es.as_str()));

    let client = app.create_app(&["openid"]).await;
    app.create_user("kim@example.com", "Kim").await;
    let kid_of = |jwt: &str| -> String {
        use base64::Engine;
        let h: serde_json::Value = serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(jwt.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        h["kid"].as_str().unwrap().to_string()
    };
    let (code, verifier) =
        authorize_code(&app, &client.client_id, "kim@example.com", "openid").await;
    let t: serde_json::Value = exchange(&app, &client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    assert_ne!(
        kid_of(t["id_token"].as_str().unwrap()),
        new_es,
        "not signing yet"
    );
    app.clock.advance(121);
    let (code, verifier) =
        authorize_code(&app, &client.client_id, "kim@example.com", "openid").await;
    let t: serde_json::Value = exchange(&app, &client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        kid_of(t["id_token"].as_str().unwrap()),
        new_es,
        "signing after the publish-ahead window"
    );
}
