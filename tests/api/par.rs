//! Pushed authorization requests (RFC 9126): the push and its JSON refusals, the request_uri
//! at `/authorize` (single-use, short-lived, bound to its app, standing in for every other
//! parameter), and apps that must push, by their registration, their partner draft, or the
//! server's setting.

use onyx_id::admin::AppSpec;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::partner_api::{app_in_preview_with, get, publish, put, spawn_program};

/// A form body, as pushed.
type Form = Vec<(&'static str, String)>;

const PREFIX: &str = "urn:ietf:params:oauth:request_uri:";
const EMAIL: &str = "ada@example.com";

on_each_backend!(
    a_pushed_request_signs_a_confidential_app_in_and_its_code_gets_tokens,
    a_public_app_pushes_with_its_client_id_and_pkce,
    a_request_uri_works_once,
    a_request_uri_expires_after_sixty_seconds,
    a_request_uri_is_refused_to_another_app_and_stays_usable_by_its_own,
    parameters_beside_the_request_uri_are_ignored_at_authorize,
    push_refusals_are_json_with_the_rfc_codes,
    push_client_authentication_is_that_of_the_token_endpoint,
    an_app_registered_to_require_par_is_refused_without_it,
    the_server_setting_requires_par_of_every_app_and_discovery_says_so,
    discovery_names_the_par_endpoint,
    a_partner_draft_that_requires_par_makes_the_live_app_require_it_once_approved,
    a_request_uri_taken_at_one_instance_is_refused_at_another,
    apps_create_require_par_registers_an_app_that_must_push,
    a_private_key_jwt_app_pushes_with_an_assertion_for_the_issuer,
    an_app_suspended_after_its_push_is_refused_at_authorize,
    a_dpop_proof_at_the_push_binds_the_code_to_its_key,
);

/// The parameters of an authorization request to push, with `challenge` as PKCE.
fn request(challenge: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "openid profile".into()),
        ("state", "st-par".into()),
        ("nonce", "n-par".into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
    ]
}

/// Pushes `form` to `/par` as `client` authenticates (HTTP Basic with a secret, else its
/// client_id in the body): the status, the headers and the JSON answer.
async fn push_as(
    app: &TestApp,
    client: &Client,
    form: &[(&str, String)],
) -> (StatusCode, HeaderMap, Value) {
    let mut req = http().post(app.url("/par"));
    let mut form = form.to_vec();
    match &client.client_secret {
        Some(secret) => req = req.basic_auth(&client.client_id, Some(secret)),
        None => form.push(("client_id", client.client_id.clone())),
    }
    let res = req.form(&form).send().await.unwrap();
    let headers = res.headers().clone();
    let (status, v) = json_of(res).await;
    (status, headers, v)
}

/// Pushes a good request for `client`; returns the request_uri and the PKCE verifier.
async fn pushed(app: &TestApp, client: &Client) -> (String, String) {
    let (verifier, challenge) = pkce();
    let (status, _, v) = push_as(app, client, &request(&challenge)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    (text(&v, "request_uri"), verifier)
}

/// `/authorize` with only `client_id` and `request_uri` (and `extra`).
fn authorize_with(
    app: &TestApp,
    client_id: &str,
    request_uri: &str,
    extra: &[(&str, &str)],
) -> String {
    let mut pairs = vec![("client_id", client_id), ("request_uri", request_uri)];
    pairs.extend_from_slice(extra);
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(pairs)
        .finish();
    app.url(&format!("/authorize?{q}"))
}

/// From `/authorize` at `url` to the redirect back to the app: sign in, approve.
async fn sign_in_at(app: &TestApp, url: &str) -> String {
    let browser = browser();
    let res = browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let login = location(res.headers());
    assert!(login.starts_with("/login"), "{login}");
    let next = log_in(app, &browser, &login, EMAIL).await;
    if next.starts_with("/consent") {
        answer_consent(app, &browser, &next, "approve").await
    } else {
        next
    }
}

/// The status and body of a GET that must not redirect.
async fn page(url: &str) -> (StatusCode, String) {
    let res = http().get(url).send().await.unwrap();
    assert!(
        res.headers().get("location").is_none(),
        "a page, not a redirect: {:?}",
        res.headers().get("location")
    );
    (res.status(), res.text().await.unwrap())
}

/// The query of a redirect back to the app (`REDIRECT`).
fn back_to_app(res: &reqwest::Response) -> std::collections::HashMap<String, String> {
    assert_eq!(res.status(), 303);
    let to = location(res.headers());
    assert!(to.starts_with(REDIRECT), "{to}");
    query(&to)
}

async fn a_pushed_request_signs_a_confidential_app_in_and_its_code_gets_tokens(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, "Ada").await;
    let client = app.create_app(&["openid", "profile"]).await;
    let (verifier, challenge) = pkce();
    let (status, headers, v) = push_as(&app, &client, &request(&challenge)).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(headers["cache-control"], "no-store");
    let request_uri = text(&v, "request_uri");
    assert!(request_uri.starts_with(PREFIX), "{v}");
    assert!(
        request_uri.len() > PREFIX.len() + 40,
        "a long random part: {v}"
    );
    assert_eq!(v["expires_in"], 60, "{v}");

    let back = sign_in_at(
        &app,
        &authorize_with(&app, &client.client_id, &request_uri, &[]),
    )
    .await;
    let q = query(&back);
    assert!(back.starts_with(REDIRECT), "{back}");
    assert_eq!(q["state"], "st-par");
    assert_eq!(q["iss"], app.issuer);
    let (status, tokens) = json_of(exchange(&app, &client, &q["code"], &verifier).await).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(tokens["token_type"], "Bearer");
    assert_eq!(tokens["scope"], "openid profile");
    assert!(tokens["id_token"].is_string(), "{tokens}");
    let (status, claims) = userinfo(&app, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(
        (status, claims["name"].clone()),
        (StatusCode::OK, json!("Ada"))
    );
}

async fn a_public_app_pushes_with_its_client_id_and_pkce(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, "Ada").await;
    let client = app
        .create_app_with(AppSpec {
            public: true,
            ..spec(&["openid", "profile"])
        })
        .await;
    assert!(client.client_secret.is_none());
    let (request_uri, verifier) = pushed(&app, &client).await;
    let back = sign_in_at(
        &app,
        &authorize_with(&app, &client.client_id, &request_uri, &[]),
    )
    .await;
    let q = query(&back);
    let (status, tokens) = json_of(exchange(&app, &client, &q["code"], &verifier).await).await;
    assert_eq!(status, 200, "{tokens}");
    // The verifier is what proves a public app: another one is refused.
    let (request_uri, _) = pushed(&app, &client).await;
    let back = sign_in_at(
        &app,
        &authorize_with(&app, &client.client_id, &request_uri, &[]),
    )
    .await;
    let (status, v) =
        json_of(exchange(&app, &client, &query(&back)["code"], &pkce().0).await).await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_grant"))
    );
}

async fn a_request_uri_works_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid", "profile"]).await;
    let (request_uri, _) = pushed(&app, &client).await;
    let url = authorize_with(&app, &client.client_id, &request_uri, &[]);
    let res = http().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(res.headers()).starts_with("/login"));
    let (status, body) = page(&url).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("already used"), "{body}");
    // A made-up one, and one of another form, get the same page.
    for other in [
        format!("{PREFIX}made-up"),
        "https://app.example/request.jwt".into(),
    ] {
        let (status, body) = page(&authorize_with(&app, &client.client_id, &other, &[])).await;
        assert_eq!(status, 400, "{other}: {body}");
        assert!(body.contains("not valid"), "{body}");
    }
}

async fn a_request_uri_expires_after_sixty_seconds(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid", "profile"]).await;
    let (fresh, _) = pushed(&app, &client).await;
    let (stale, _) = pushed(&app, &client).await;
    app.clock.advance(59);
    let res = http()
        .get(authorize_with(&app, &client.client_id, &fresh, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "59 s: still usable");
    app.clock.advance(1);
    let (status, body) = page(&authorize_with(&app, &client.client_id, &stale, &[])).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("expired"), "{body}");
    // The purge removes what expired.
    let removed = onyx_id::store::purge::purge_expired(&app.state.db, app.clock_now() + 1)
        .await
        .unwrap();
    assert!(removed >= 1);
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pushed_requests")
        .fetch_one(app.sql().await)
        .await
        .unwrap();
    assert_eq!(left, 0);
}

async fn a_request_uri_is_refused_to_another_app_and_stays_usable_by_its_own(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid", "profile"]).await;
    let other = app.create_app(&["openid", "profile"]).await;
    let (request_uri, _) = pushed(&app, &client).await;
    let (status, body) = page(&authorize_with(&app, &other.client_id, &request_uri, &[])).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("another app"), "{body}");
    // Without a client_id it is refused too.
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("request_uri", &request_uri)
        .finish();
    let (status, body) = page(&app.url(&format!("/authorize?{q}"))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("client_id is missing"), "{body}");
    let res = http()
        .get(authorize_with(&app, &client.client_id, &request_uri, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "its own app still uses it");
}

async fn parameters_beside_the_request_uri_are_ignored_at_authorize(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, "Ada").await;
    let client = app
        .create_app_with(AppSpec::new(
            "Travel Buddy",
            &[REDIRECT, "https://app.example/other"],
            &["openid", "profile", "email"],
        ))
        .await;
    let (request_uri, verifier) = pushed(&app, &client).await;
    let url = authorize_with(
        &app,
        &client.client_id,
        &request_uri,
        &[
            ("redirect_uri", "https://app.example/other"),
            ("scope", "openid email"),
            ("state", "changed"),
            ("code_challenge", "x".repeat(43).as_str()),
            ("response_type", "token"),
        ],
    );
    let back = sign_in_at(&app, &url).await;
    assert!(
        back.starts_with(&format!("{REDIRECT}?")),
        "the pushed redirect_uri: {back}"
    );
    let q = query(&back);
    assert_eq!(q["state"], "st-par");
    let (status, tokens) = json_of(exchange(&app, &client, &q["code"], &verifier).await).await;
    assert_eq!(status, 200, "the pushed code_challenge: {tokens}");
    assert_eq!(tokens["scope"], "openid profile", "the pushed scope");
}

async fn push_refusals_are_json_with_the_rfc_codes(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid", "profile"]).await;
    let (_, challenge) = pkce();
    let good = request(&challenge);
    let with = |name: &'static str, value: &str| {
        let mut f: Vec<(&'static str, String)> =
            good.iter().filter(|(k, _)| *k != name).cloned().collect();
        f.push((name, value.to_string()));
        f
    };
    let without = |name: &str| -> Vec<(&'static str, String)> {
        good.iter().filter(|(k, _)| *k != name).cloned().collect()
    };
    let cases: Vec<(&str, Form, &str, &str)> = vec![
        (
            "unregistered redirect_uri",
            with("redirect_uri", "https://evil.example/cb"),
            "invalid_request",
            "redirect_uri",
        ),
        (
            "no redirect_uri",
            without("redirect_uri"),
            "invalid_request",
            "redirect_uri",
        ),
        (
            "unknown scope",
            with("scope", "openid telepathy"),
            "invalid_scope",
            "telepathy",
        ),
        (
            "unapproved scope",
            with("scope", "openid email"),
            "invalid_scope",
            "email",
        ),
        (
            "no PKCE",
            without("code_challenge"),
            "invalid_request",
            "code_challenge",
        ),
        (
            "plain PKCE",
            with("code_challenge_method", "plain"),
            "invalid_request",
            "S256",
        ),
        (
            "another response_type",
            with("response_type", "token"),
            "unsupported_response_type",
            "code",
        ),
        (
            "a request_uri inside the push",
            with("request_uri", &format!("{PREFIX}abc")),
            "invalid_request",
            "request_uri",
        ),
        (
            "a request object",
            with("request", "eyJhbGciOiJub25lIn0.e30."),
            "request_not_supported",
            "request objects",
        ),
        (
            "a bad prompt",
            with("prompt", "sometimes"),
            "invalid_request",
            "prompt",
        ),
        (
            "an unknown resource",
            with("resource", "https://api.unknown.example"),
            "invalid_target",
            "resource",
        ),
    ];
    for (what, form, code, mentions) in cases {
        let (status, headers, v) = push_as(&app, &client, &form).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{what}: {v}");
        assert!(
            headers.get("location").is_none(),
            "{what}: never a redirect"
        );
        assert!(
            headers["content-type"]
                .to_str()
                .unwrap()
                .starts_with("application/json"),
            "{what}"
        );
        assert_eq!(v["error"], code, "{what}: {v}");
        let description = v["error_description"].as_str().unwrap_or_default();
        assert!(description.contains(mentions), "{what}: {v}");
    }
    // Nothing was stored by a refused push.
    let stored: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM pushed_requests")
        .fetch_one(app.sql().await)
        .await
        .unwrap();
    assert_eq!(stored, 0);
    // A JSON body is not a push.
    let res = http()
        .post(app.url("/par"))
        .basic_auth(&client.client_id, client.client_secret.as_deref())
        .json(&json!({ "response_type": "code" }))
        .send()
        .await
        .unwrap();
    let (status, v) = json_of(res).await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_request"))
    );
    // A suspended app cannot push.
    sqlx::query("UPDATE apps SET access_state = 'suspended', access_reason = 'abuse_review' WHERE client_id = $1")
        .bind(&client.client_id)
        .execute(app.sql().await)
        .await
        .unwrap();
    let (status, _, v) = push_as(&app, &client, &good).await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("unauthorized_client")),
        "{v}"
    );
}

async fn push_client_authentication_is_that_of_the_token_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid", "profile"]).await;
    let secret = client.client_secret.clone().unwrap();
    let (_, challenge) = pkce();
    let form = request(&challenge);
    let post = |auth: Option<(&str, &str)>, extra: Vec<(&'static str, String)>| {
        let mut req = http().post(app.url("/par"));
        if let Some((id, s)) = auth {
            req = req.basic_auth(id, Some(s));
        }
        let mut body = form.clone();
        body.extend(extra);
        async move { json_of(req.form(&body).send().await.unwrap()).await }
    };
    // A wrong secret.
    let res = http()
        .post(app.url("/par"))
        .basic_auth(&client.client_id, Some("wrong"))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert!(res.headers().get("www-authenticate").is_some());
    let (_, v) = json_of(res).await;
    assert_eq!(v["error"], "invalid_client", "{v}");
    // No authentication at all, and only the client_id of a confidential app.
    let (status, v) = post(None, vec![]).await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_client")),
        "{v}"
    );
    let (status, v) = post(None, vec![("client_id", client.client_id.clone())]).await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_client")),
        "{v}"
    );
    // client_secret_post works.
    let (status, v) = post(
        None,
        vec![
            ("client_id", client.client_id.clone()),
            ("client_secret", secret.clone()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // A client_id in the body that is not the authenticated app's.
    let other = app.create_app(&["openid", "profile"]).await;
    let (status, v) = post(
        Some((&client.client_id, &secret)),
        vec![("client_id", other.client_id.clone())],
    )
    .await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_request")),
        "{v}"
    );
    // Basic and a body secret together.
    let (status, v) = post(
        Some((&client.client_id, &secret)),
        vec![("client_secret", secret.clone())],
    )
    .await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_request")),
        "{v}"
    );
    // The stored request holds no credential.
    let stored: Vec<String> = sqlx::query_scalar("SELECT params FROM pushed_requests")
        .fetch_all(app.sql().await)
        .await
        .unwrap();
    assert_eq!(stored.len(), 1);
    assert!(
        !stored[0].contains(&secret) && !stored[0].contains("client_secret"),
        "{stored:?}"
    );
}

async fn an_app_registered_to_require_par_is_refused_without_it(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, "Ada").await;
    let client = app
        .create_app_with(AppSpec {
            require_par: true,
            ..spec(&["openid", "profile"])
        })
        .await;
    let (url, _) = authorize_url(&app, &client.client_id, "openid profile", &[]);
    let res = http().get(url).send().await.unwrap();
    let q = back_to_app(&res);
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "st-123");
    assert_eq!(
        q["error_description"],
        format!(
            "this app must use pushed authorization requests (PAR): push the request to {}/par first",
            app.issuer
        )
    );
    // A request that is wrong besides gets the same answer.
    let (url, _) = authorize_url(&app, &client.client_id, "openid telepathy", &[]);
    let q = back_to_app(&http().get(url).send().await.unwrap());
    assert!(q["error_description"].contains("(PAR)"), "{q:?}");
    // An unregistered redirect URI is a page still.
    let (url, _) = authorize_url(&app, &client.client_id, "openid profile", &[]);
    let (status, _) = page(&url.replace("callback", "elsewhere")).await;
    assert_eq!(status, 400);
    // Pushed, it works; and another app is not concerned.
    let (request_uri, verifier) = pushed(&app, &client).await;
    let back = sign_in_at(
        &app,
        &authorize_with(&app, &client.client_id, &request_uri, &[]),
    )
    .await;
    let (status, v) =
        json_of(exchange(&app, &client, &query(&back)["code"], &verifier).await).await;
    assert_eq!(status, 200, "{v}");
    let free = app.create_app(&["openid", "profile"]).await;
    let (url, _) = authorize_url(&app, &free.client_id, "openid profile", &[]);
    let res = http().get(url).send().await.unwrap();
    assert!(location(res.headers()).starts_with("/login"));
}

async fn the_server_setting_requires_par_of_every_app_and_discovery_says_so(backend: Backend) {
    let app = spawn_app_with(backend, &|s| s.require_pushed_authorization_requests = true).await;
    app.create_user(EMAIL, "Ada").await;
    let client = app.create_app(&["openid", "profile"]).await;
    let doc = get_json(&http(), app.url("/.well-known/openid-configuration")).await;
    assert_eq!(doc["require_pushed_authorization_requests"], true, "{doc}");
    let (url, _) = authorize_url(&app, &client.client_id, "openid profile", &[]);
    let q = back_to_app(&http().get(url).send().await.unwrap());
    assert_eq!(q["error"], "invalid_request");
    assert!(
        q["error_description"].contains(&format!("{}/par", app.issuer)),
        "{q:?}"
    );
    // An unknown app gets the page.
    let (url, _) = authorize_url(&app, "no-such-app", "openid profile", &[]);
    let (status, body) = page(&url).await;
    assert_eq!(status, 400);
    assert!(body.contains("not registered"), "{body}");
    let (request_uri, verifier) = pushed(&app, &client).await;
    let back = sign_in_at(
        &app,
        &authorize_with(&app, &client.client_id, &request_uri, &[]),
    )
    .await;
    let (status, v) =
        json_of(exchange(&app, &client, &query(&back)["code"], &verifier).await).await;
    assert_eq!(status, 200, "{v}");
}

async fn discovery_names_the_par_endpoint(backend: Backend) {
    let app = spawn_app(backend).await;
    for path in [
        "/.well-known/openid-configuration",
        "/.well-known/oauth-authorization-server",
    ] {
        let doc = get_json(&http(), app.url(path)).await;
        assert_eq!(
            doc["pushed_authorization_request_endpoint"],
            format!("{}/par", app.issuer),
            "{doc}"
        );
        assert_eq!(doc["require_pushed_authorization_requests"], false);
    }
}

async fn a_partner_draft_that_requires_par_makes_the_live_app_require_it_once_approved(
    backend: Backend,
) {
    let published = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let port = publish(published.clone()).await;
    let app = spawn_program(backend, port).await;
    let mut draft = crate::support::partner_api::good_draft();
    draft["require_pushed_authorization_requests"] = json!(true);
    let (_, key, client_id, secret) = app_in_preview_with(&app, &published, draft).await;
    let (status, v) = get(&app, &format!("/api/v1/apps/{client_id}"), &key).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        v["draft"]["require_pushed_authorization_requests"], true,
        "{v}"
    );
    assert_eq!(
        v["live"]["require_pushed_authorization_requests"], true,
        "{v}"
    );
    app.create_user(EMAIL, "Ada").await;
    let (status, v) = put(
        &app,
        &format!("/api/v1/apps/{client_id}/test-accounts"),
        &key,
        json!({ "emails": [EMAIL] }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    let client = Client {
        client_id: client_id.clone(),
        client_secret: Some(secret),
    };
    let (url, _) = authorize_url(&app, &client_id, "openid profile", &[]);
    let q = back_to_app(&http().get(url).send().await.unwrap());
    assert!(q["error_description"].contains("(PAR)"), "{q:?}");
    let (request_uri, verifier) = pushed(&app, &client).await;
    let back = sign_in_at(&app, &authorize_with(&app, &client_id, &request_uri, &[])).await;
    let (status, v) =
        json_of(exchange(&app, &client, &query(&back)["code"], &verifier).await).await;
    assert_eq!(status, 200, "{v}");

    // Turning it off is a change of the redirect URIs' step: it reopens it, and the live app
    // keeps requiring PAR until the step is approved again.
    let (status, v) = crate::support::partner_api::patch(
        &app,
        &format!("/api/v1/apps/{client_id}"),
        &key,
        json!({ "require_pushed_authorization_requests": false }),
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
    assert_eq!(
        v["live"]["require_pushed_authorization_requests"], true,
        "{v}"
    );
}

async fn a_request_uri_taken_at_one_instance_is_refused_at_another(backend: Backend) {
    let a = spawn_app(backend).await;
    let b = a.second_instance().await;
    let client = a.create_app(&["openid", "profile"]).await;
    let at = |base: &str, request_uri: &str| {
        let q = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("client_id", &client.client_id)
            .append_pair("request_uri", request_uri)
            .finish();
        format!("{base}/authorize?{q}")
    };
    let (request_uri, _) = pushed(&a, &client).await;
    let res = http()
        .get(at(&a.address, &request_uri))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let (status, body) = page(&at(&b, &request_uri)).await;
    assert_eq!(status, 400, "{body}");
    // Both at once: exactly one of them gets it.
    for _ in 0..5 {
        let (request_uri, _) = pushed(&a, &client).await;
        let (x, y) = tokio::join!(
            http().get(at(&a.address, &request_uri)).send(),
            http().get(at(&b, &request_uri)).send(),
        );
        let mut statuses = [x.unwrap().status().as_u16(), y.unwrap().status().as_u16()];
        statuses.sort();
        assert_eq!(statuses, [303, 400]);
    }
}

async fn apps_create_require_par_registers_an_app_that_must_push(backend: Backend) {
    use crate::support::cli::{one_json_object, onyx};
    let app = spawn_app(backend).await;
    let args = [
        "apps",
        "create",
        "--name",
        "Strict",
        "--redirect-uri",
        REDIRECT,
        "--scope",
        "openid",
        "--scope",
        "profile",
    ];
    let (code, out, err) = onyx(&app, &[&args[..], &["--require-par"]].concat(), None).await;
    assert_eq!(code, 0, "{err}");
    let strict = one_json_object(&out);
    assert_eq!(
        strict["require_pushed_authorization_requests"], true,
        "{strict}"
    );
    let (code, out, err) = onyx(&app, &args, None).await;
    assert_eq!(code, 0, "{err}");
    let free = one_json_object(&out);
    assert_eq!(
        free["require_pushed_authorization_requests"], false,
        "{free}"
    );

    let client_id = text(&strict, "client_id");
    let (code, out, err) = onyx(&app, &["apps", "show", "--app", &client_id], None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        one_json_object(&out)["live"]["require_pushed_authorization_requests"],
        true
    );
    let (url, _) = authorize_url(&app, &client_id, "openid profile", &[]);
    let q = back_to_app(&http().get(url).send().await.unwrap());
    assert!(q["error_description"].contains("(PAR)"), "{q:?}");
    let (url, _) = authorize_url(&app, &text(&free, "client_id"), "openid profile", &[]);
    let res = http().get(url).send().await.unwrap();
    assert!(location(res.headers()).starts_with("/login"));
}

#[test]
fn the_server_setting_is_read_from_its_flag_and_its_variable() {
    use clap::{CommandFactory, Parser};
    let setting = |args: &[&str]| {
        onyx_id::cli::Cli::try_parse_from(args)
            .unwrap()
            .server
            .settings()
            .unwrap()
            .require_pushed_authorization_requests
    };
    assert!(!setting(&["onyx-id", "serve"]));
    assert!(setting(&[
        "onyx-id",
        "serve",
        "--require-pushed-authorization-requests"
    ]));
    let var = onyx_id::cli::Cli::command()
        .get_arguments()
        .find(|a| a.get_id() == "require_pushed_authorization_requests")
        .and_then(|a| a.get_env().map(|e| e.to_string_lossy().into_owned()));
    assert_eq!(
        var.as_deref(),
        Some("ONYX_REQUIRE_PUSHED_AUTHORIZATION_REQUESTS")
    );
}

async fn a_private_key_jwt_app_pushes_with_an_assertion_for_the_issuer(backend: Backend) {
    use onyx_id::keys::{Algorithm, KeyMaterial, encode_jws};
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, "Ada").await;
    let key = KeyMaterial::generate(Algorithm::ES256).unwrap();
    let jwks = json!({ "keys": [key.public_jwk("k1", Algorithm::ES256)] }).to_string();
    let client = app
        .create_app_with(AppSpec {
            jwks: Some(jwks),
            ..spec(&["openid", "profile"])
        })
        .await;
    assert!(client.client_secret.is_none());
    let id = client.client_id.clone();
    let assertion = |aud: &str, jti: &str| {
        let now = app.clock_now();
        let claims =
            json!({ "iss": id, "sub": id, "aud": aud, "exp": now + 60, "iat": now, "jti": jti });
        encode_jws("k1", Algorithm::ES256, "JWT", &claims, &key).unwrap()
    };
    let push = |a: String| {
        let (verifier, challenge) = pkce();
        let mut form = request(&challenge);
        form.push((
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer".into(),
        ));
        form.push(("client_assertion", a));
        let url = app.url("/par");
        async move {
            let res = http().post(url).form(&form).send().await.unwrap();
            let (status, v) = json_of(res).await;
            (status, v, verifier)
        }
    };
    // The PAR endpoint's URL is not an audience (as the token endpoint's is not).
    let (status, v, _) = push(assertion(&app.url("/par"), "j-0")).await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_client")),
        "{v}"
    );
    let (status, v, verifier) = push(assertion(&app.issuer, "j-1")).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let stored: Vec<String> = sqlx::query_scalar("SELECT params FROM pushed_requests")
        .fetch_all(app.sql().await)
        .await
        .unwrap();
    assert!(!stored[0].contains("client_assertion"), "{stored:?}");
    let back = sign_in_at(
        &app,
        &authorize_with(&app, &id, &text(&v, "request_uri"), &[]),
    )
    .await;
    let code = query(&back)["code"].clone();
    let res = http()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier.as_str()),
            (
                "client_assertion_type",
                "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
            ),
            ("client_assertion", assertion(&app.issuer, "j-2").as_str()),
        ])
        .send()
        .await
        .unwrap();
    let (status, v) = json_of(res).await;
    assert_eq!(status, 200, "{v}");
    // A replayed assertion is refused at the push too.
    let (status, v, _) = push(assertion(&app.issuer, "j-1")).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    // The endpoint answers other methods in JSON.
    let (status, v) = json_of(http().get(app.url("/par")).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{v}");
    assert!(v["error"].is_string(), "{v}");
}

async fn an_app_suspended_after_its_push_is_refused_at_authorize(backend: Backend) {
    use crate::support::cli::onyx;
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid", "profile"]).await;
    let (request_uri, _) = pushed(&app, &client).await;
    let (code, _, err) = onyx(
        &app,
        &[
            "apps",
            "access",
            "--app",
            &client.client_id,
            "--state",
            "suspended",
            "--reason",
            "abuse_review",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let (status, body) = page(&authorize_with(&app, &client.client_id, &request_uri, &[])).await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("cannot use Onyx ID at the moment"), "{body}");
}

/// Pushes `form` with a `DPoP` header, authenticated with HTTP Basic.
async fn push_with_proof(
    app: &TestApp,
    client: &Client,
    form: &[(&str, String)],
    proof: &str,
) -> (StatusCode, Value) {
    let res = http()
        .post(app.url("/par"))
        .basic_auth(&client.client_id, client.client_secret.as_ref())
        .header("DPoP", proof)
        .form(form)
        .send()
        .await
        .unwrap();
    json_of(res).await
}

/// RFC 9449 §10.1: a proof sent with the push binds the code, as `dpop_jkt` would.
async fn a_dpop_proof_at_the_push_binds_the_code_to_its_key(backend: Backend) {
    use crate::support::dpop::{DpopKey, token, token_url};
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, "Ada").await;
    let client = app.create_app(&["openid", "profile"]).await;
    let key = DpopKey::es256();
    let other = DpopKey::es256();
    let par_url = format!("{}/par", app.issuer);
    let redeem = |code: String, verifier: String, proof: String| {
        let (app, client) = (&app, &client);
        async move {
            let form = [
                ("grant_type", "authorization_code"),
                ("code", code.as_str()),
                ("redirect_uri", REDIRECT),
                ("code_verifier", verifier.as_str()),
            ];
            let (status, _, v) = token(app, client, &form, &[&proof]).await;
            (status, v)
        }
    };
    let flow = |verifier: String, challenge: String| {
        let (app, client, key, par_url) = (&app, &client, &key, &par_url);
        async move {
            let proof = key.proof("POST", par_url, app.clock_now());
            let (status, v) = push_with_proof(app, client, &request(&challenge), &proof).await;
            assert_eq!(status, StatusCode::CREATED, "{v}");
            let url = authorize_with(app, &client.client_id, &text(&v, "request_uri"), &[]);
            let back = sign_in_at(app, &url).await;
            (query(&back)["code"].clone(), verifier)
        }
    };

    // Another key cannot redeem the code.
    let (verifier, challenge) = pkce();
    let (code, verifier) = flow(verifier, challenge).await;
    let (status, v) = redeem(
        code,
        verifier,
        other.proof("POST", &token_url(&app), app.clock_now()),
    )
    .await;
    assert_eq!(
        (status.as_u16(), v["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{v}"
    );
    // The pushing key does, and its tokens are bound to it.
    let (verifier, challenge) = pkce();
    let (code, verifier) = flow(verifier, challenge).await;
    let (status, v) = redeem(
        code,
        verifier,
        key.proof("POST", &token_url(&app), app.clock_now()),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");

    // A dpop_jkt naming another key than the proof's, or a proof made for /token, is refused.
    let (_, challenge) = pkce();
    let mut form = request(&challenge);
    form.push(("dpop_jkt", other.jkt()));
    let proof = key.proof("POST", &par_url, app.clock_now());
    let (status, v) = push_with_proof(&app, &client, &form, &proof).await;
    assert_eq!(
        (status.as_u16(), v["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{v}"
    );
    let proof = key.proof("POST", &token_url(&app), app.clock_now());
    let (status, v) = push_with_proof(&app, &client, &request(&challenge), &proof).await;
    assert_eq!(
        (status.as_u16(), v["error"].as_str()),
        (400, Some("invalid_dpop_proof")),
        "{v}"
    );
}
