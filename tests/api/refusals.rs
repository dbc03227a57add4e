//! Each refusal of the sign-in flow: what is refused, with which error, and that nothing unsafe
//! happens (no redirect to an unregistered URI, no token from a bad exchange).

use crate::helpers::*;

on_each_backend!(
    an_unregistered_redirect_uri_gets_an_error_page_and_is_never_redirected_to,
    authorize_refuses_missing_or_plain_pkce_and_bad_parameters_with_rfc_errors,
    the_token_endpoint_refuses_a_wrong_verifier_and_a_wrong_redirect_uri,
    a_replayed_code_is_refused_and_revokes_the_tokens_issued_from_it,
    client_authentication_failures_are_invalid_client_with_401,
    cors_allows_only_the_origins_an_app_registered,
);

async fn an_unregistered_redirect_uri_gets_an_error_page_and_is_never_redirected_to(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid"]).await;
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[]);
    for evil in [
        "https://evil.example/callback",
        "https://app.example/callback/",
        "https://app.example/callback?x=1",
        "https://APP.example/callback",
    ] {
        let bad = url.replace(
            &url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
            &url::form_urlencoded::byte_serialize(evil.as_bytes()).collect::<String>(),
        );
        let res = http().get(bad).send().await.unwrap();
        assert_eq!(res.status(), 400, "{evil}");
        assert!(res.headers().get("location").is_none(), "{evil}");
        assert!(res.text().await.unwrap().contains("not registered"));
    }
    // An unknown client gets a page too.
    let res = http()
        .get(url.replace(&client.client_id, "nobody"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    // A missing client_id as well.
    let res = http()
        .get(app.url("/authorize?response_type=code"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
}

#[tokio::test]
async fn a_loopback_redirect_uri_may_use_any_port() {
    let app = spawn_app(Backend::Sqlite).await;
    let mut s = spec(&["openid"]);
    s.redirect_uris = vec!["http://127.0.0.1/cb".into()];
    s.public = true;
    let client = app.create_app_with(s).await;
    let (url, _) = authorize_url(&app, &client.client_id, "openid", &[]);
    let url = url.replace(
        &url::form_urlencoded::byte_serialize(REDIRECT.as_bytes()).collect::<String>(),
        &url::form_urlencoded::byte_serialize(b"http://127.0.0.1:51234/cb").collect::<String>(),
    );
    let res = http().get(url).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(res.headers()).starts_with("/login"));
}

/// Parameters to set (`Some`) or remove (`None`) in an otherwise valid authorize request.
type Changes<'a> = &'a [(&'a str, Option<&'a str>)];

async fn authorize_error(
    app: &TestApp,
    client_id: &str,
    replace: &[(&str, Option<&str>)],
) -> std::collections::HashMap<String, String> {
    let (verifier_url, _) = authorize_url(app, client_id, "openid", &[]);
    let mut q = query(&verifier_url);
    for (k, v) in replace {
        match v {
            Some(v) => {
                q.insert(k.to_string(), v.to_string());
            }
            None => {
                q.remove(*k);
            }
        }
    }
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(q.iter())
        .finish();
    let res = http()
        .get(app.url(&format!("/authorize?{encoded}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let back = location(res.headers());
    assert!(
        back.starts_with(REDIRECT),
        "errors go back to the registered URI: {back}"
    );
    let q = query(&back);
    assert_eq!(q["state"], "st-123");
    assert_eq!(q["iss"], app.issuer);
    q
}

async fn authorize_refuses_missing_or_plain_pkce_and_bad_parameters_with_rfc_errors(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid", "profile"]).await;
    let id = client.client_id.as_str();
    let cases: Vec<(Changes, &str)> = vec![
        (
            &[("code_challenge", None), ("code_challenge_method", None)],
            "invalid_request",
        ),
        (
            &[("code_challenge_method", Some("plain"))],
            "invalid_request",
        ),
        (&[("code_challenge_method", None)], "invalid_request"),
        (&[("code_challenge", Some("too-short"))], "invalid_request"),
        (
            &[("response_type", Some("token"))],
            "unsupported_response_type",
        ),
        (&[("response_type", None)], "invalid_request"),
        (&[("scope", Some("openid email"))], "invalid_scope"),
        (&[("scope", Some("openid admin"))], "invalid_scope"),
        (&[("scope", Some("openid openid"))], "invalid_scope"),
        (&[("scope", None)], "invalid_scope"),
        (&[("prompt", Some("none login"))], "invalid_request"),
        (&[("max_age", Some("-1"))], "invalid_request"),
        (&[("request", Some("eyJ.x.y"))], "request_not_supported"),
        (&[("response_mode", Some("fragment"))], "invalid_request"),
    ];
    for (replace, expected) in cases {
        let q = authorize_error(&app, id, replace).await;
        assert_eq!(q["error"], expected, "{replace:?}");
        assert!(!q["error_description"].is_empty());
    }
    let q = authorize_error(&app, id, &[("scope", Some("openid email"))]).await;
    assert!(
        q["error_description"].contains("email"),
        "the description names the scope"
    );
}

async fn the_token_endpoint_refuses_a_wrong_verifier_and_a_wrong_redirect_uri(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid"]).await;
    app.create_user("lu@example.com", "Lu").await;
    let (code, _) = authorize_code(&app, &client.client_id, "lu@example.com", "openid").await;
    let (other_verifier, _) = pkce();
    let res = exchange(&app, &client, &code, &other_verifier).await;
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_grant"
    );

    let (code, verifier) =
        authorize_code(&app, &client.client_id, "lu@example.com", "openid").await;
    let res = http()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://app.example/other"),
            ("code_verifier", &verifier),
            ("client_id", &client.client_id),
            ("client_secret", client.client_secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_grant"
    );

    // A missing verifier is a malformed request.
    let (code, _) = authorize_code(&app, &client.client_id, "lu@example.com", "openid").await;
    let res = exchange(&app, &client, &code, "").await;
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );

    // An expired code.
    let (code, verifier) =
        authorize_code(&app, &client.client_id, "lu@example.com", "openid").await;
    app.clock.advance(61);
    let res = exchange(&app, &client, &code, &verifier).await;
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_grant"
    );
}

async fn a_replayed_code_is_refused_and_revokes_the_tokens_issued_from_it(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid"]).await;
    app.create_user("mo@example.com", "Mo").await;
    let (code, verifier) =
        authorize_code(&app, &client.client_id, "mo@example.com", "openid").await;
    let first = exchange(&app, &client, &code, &verifier).await;
    assert_eq!(first.status(), 200);
    let at = first.json::<serde_json::Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        http()
            .get(app.url("/userinfo"))
            .bearer_auth(&at)
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let replay = exchange(&app, &client, &code, &verifier).await;
    assert_eq!(replay.status(), 400);
    let body: serde_json::Value = replay.json().await.unwrap();
    assert_eq!(body["error"], "invalid_grant");
    let res = http()
        .get(app.url("/userinfo"))
        .bearer_auth(&at)
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        401,
        "the token from the replayed code is revoked"
    );
}

async fn client_authentication_failures_are_invalid_client_with_401(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid"]).await;
    app.create_user("nia@example.com", "Nia").await;
    let (code, verifier) =
        authorize_code(&app, &client.client_id, "nia@example.com", "openid").await;
    let wrong = Client {
        client_id: client.client_id.clone(),
        client_secret: Some("wrong-secret".into()),
    };
    let res = exchange(&app, &wrong, &code, &verifier).await;
    assert_eq!(res.status(), 401);
    assert!(
        res.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic")
    );
    assert_eq!(res.headers()["content-type"], "application/json");
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_client"
    );
    // Basic with the wrong secret.
    let res = http()
        .post(app.url("/token"))
        .basic_auth(&client.client_id, Some("nope"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    // Confidential app without credentials.
    let res = exchange(
        &app,
        &Client {
            client_id: client.client_id.clone(),
            client_secret: None,
        },
        &code,
        &verifier,
    )
    .await;
    assert_eq!(res.status(), 401);
    // Two methods at once.
    let res = http()
        .post(app.url("/token"))
        .basic_auth(&client.client_id, client.client_secret.as_deref())
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_secret", client.client_secret.as_deref().unwrap()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "invalid_request"
    );
}

#[tokio::test]
async fn basic_credentials_are_form_url_decoded_as_strict_clients_send_them() {
    let app = spawn_app(Backend::Sqlite).await;
    let client = app.create_app(&["openid"]).await;
    app.create_user("oz@example.com", "Oz").await;
    let (code, verifier) =
        authorize_code(&app, &client.client_id, "oz@example.com", "openid").await;
    let enc = |s: &str| {
        url::form_urlencoded::byte_serialize(s.as_bytes())
            .collect::<String>()
            .replace('-', "%2D")
    };
    let res = http()
        .post(app.url("/token"))
        .basic_auth(
            enc(&client.client_id),
            Some(enc(client.client_secret.as_deref().unwrap())),
        )
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn an_unknown_grant_type_is_unsupported() {
    let app = spawn_app(Backend::Sqlite).await;
    let client = app.create_app(&["openid"]).await;
    let res = http()
        .post(app.url("/token"))
        .basic_auth(&client.client_id, client.client_secret.as_deref())
        .form(&[
            ("grant_type", "password"),
            ("username", "a"),
            ("password", "b"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert_eq!(
        res.json::<serde_json::Value>().await.unwrap()["error"],
        "unsupported_grant_type"
    );
}

async fn cors_allows_only_the_origins_an_app_registered(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut s = spec(&["openid"]);
    s.public = true;
    s.origins = vec!["https://spa.example".into()];
    let spa = app.create_app_with(s).await;
    let mut s = spec(&["openid"]);
    s.public = true;
    s.origins = vec!["https://other.example".into()];
    let _other = app.create_app_with(s).await;
    app.create_user("pia@example.com", "Pia").await;

    // Preflights: registered by some app → allowed; unknown → no allow header.
    for (origin, allowed) in [
        ("https://spa.example", true),
        ("https://other.example", true),
        ("https://evil.example", false),
    ] {
        let res = http()
            .request(reqwest::Method::OPTIONS, app.url("/token"))
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success());
        assert_eq!(
            res.headers().get("access-control-allow-origin").is_some(),
            allowed,
            "{origin}"
        );
    }

    // The real request: only the app's own origin gets the allow header.
    let (code, verifier) = authorize_code(&app, &spa.client_id, "pia@example.com", "openid").await;
    let post = |origin: &'static str, code: String, verifier: String| {
        let (url, id) = (app.url("/token"), spa.client_id.clone());
        async move {
            http()
                .post(url)
                .header("Origin", origin)
                .form(&[
                    ("grant_type", "authorization_code"),
                    ("code", &code),
                    ("redirect_uri", REDIRECT),
                    ("code_verifier", &verifier),
                    ("client_id", &id),
                ])
                .send()
                .await
                .unwrap()
        }
    };
    let res = post("https://other.example", code.clone(), verifier.clone()).await;
    assert!(
        res.headers().get("access-control-allow-origin").is_none(),
        "another app's origin is not this app's"
    );
    assert_eq!(res.status(), 400);
    let res = post("https://spa.example", code, verifier).await;
    assert_eq!(
        res.status(),
        200,
        "the refused request did not spend the code"
    );
    assert_eq!(
        res.headers()["access-control-allow-origin"],
        "https://spa.example"
    );
}
