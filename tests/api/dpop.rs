//! DPoP (RFC 9449): proofs at the token endpoint bind the tokens to the client's key (`cnf.jkt`,
//! `token_type: DPoP`), userinfo takes such a token only with a proof of that key, a public
//! app's refresh tokens and a `dpop_jkt` code stay bound, each faulty proof is refused with
//! `invalid_dpop_proof`, nonces, apps that require DPoP, and a proof never accepted twice, on
//! any instance.

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;
use crate::support::dpop::{self, DpopKey, jwt_claims, token_url, userinfo_url};

on_each_backend!(
    a_proof_binds_the_code_flows_tokens_and_userinfo_wants_a_proof_of_that_key,
    a_public_apps_refresh_token_is_bound_to_its_key_and_stays_bound,
    each_faulty_proof_is_refused_with_invalid_dpop_proof,
    an_app_made_with_dpop_nonce_gets_a_nonce_and_a_retry_with_it_succeeds,
    a_code_bound_by_dpop_jkt_is_redeemed_only_with_that_key,
    a_dpop_bound_app_refuses_token_requests_without_a_proof,
    client_credentials_with_a_proof_is_bound,
    a_proof_used_at_one_instance_is_refused_at_another,
    the_iat_window_is_a_setting_and_old_proof_ids_are_purged,
    apps_create_takes_dpop_bound_and_dpop_nonce_and_shows_them,
    a_browser_app_may_send_a_dpop_header_and_read_the_nonce,
);

/// An app with the code, refresh and client-credentials grants.
fn code_form<'a>(code: &'a str, verifier: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", REDIRECT),
        ("code_verifier", verifier),
    ]
}

/// Asserts a 400 `invalid_dpop_proof` whose description contains `about`.
fn assert_invalid_proof(status: StatusCode, v: &Value, about: &str) {
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"], "invalid_dpop_proof", "{v}");
    let d = v["error_description"].as_str().unwrap_or_default();
    assert!(d.contains(about), "the description names {about:?}: {v}");
}

async fn userinfo_with(
    app: &TestApp,
    scheme: &str,
    token: &str,
    proof: Option<&str>,
) -> (StatusCode, String, Value) {
    let mut req = http()
        .get(app.url("/userinfo"))
        .header("Authorization", format!("{scheme} {token}"));
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    let res = req.send().await.unwrap();
    let challenge = res
        .headers()
        .get("www-authenticate")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    let (status, v) = json_of(res).await;
    (status, challenge, v)
}

async fn a_proof_binds_the_code_flows_tokens_and_userinfo_wants_a_proof_of_that_key(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let discovery = get_json(&http(), app.url("/.well-known/openid-configuration")).await;
    let algs = discovery["dpop_signing_alg_values_supported"]
        .as_array()
        .unwrap();
    assert!(algs.contains(&"ES256".into()) && algs.contains(&"EdDSA".into()));

    let client = app.create_app(&["openid", "profile"]).await;
    app.create_user("ada@example.com", "Ada").await;
    let key = DpopKey::es256();
    let (code, verifier) =
        authorize_code(&app, &client.client_id, "ada@example.com", "openid profile").await;
    let proof = key.proof("POST", &token_url(&app), app.clock_now());
    let (status, _, t) = dpop::token(&app, &client, &code_form(&code, &verifier), &[&proof]).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");
    let at = text(&t, "access_token");
    assert_eq!(jwt_claims(&at)["cnf"]["jkt"], key.jkt());

    let seen = introspect(&app, &client, &at).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["cnf"]["jkt"], key.jkt(), "{seen}");
    assert_eq!(seen["token_type"], "DPoP");

    // Userinfo: the DPoP scheme, with a proof for this request and this token.
    let now = app.clock_now();
    let url = userinfo_url(&app);
    let (status, _, v) = userinfo_with(
        &app,
        "DPoP",
        &at,
        Some(&key.proof_for_token("GET", &url, now, &at)),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["name"], "Ada");
    // POST too, with htm POST; a proof made for GET is refused there.
    let post = |proof: String| {
        http()
            .post(app.url("/userinfo"))
            .header("Authorization", format!("DPoP {at}"))
            .header("DPoP", proof)
            .send()
    };
    let res = post(key.proof_for_token("POST", &url, now, &at))
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, v) = json_of(
        post(key.proof_for_token("GET", &url, now, &at))
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_dpop_proof"))
    );
    // The same token as a bearer token is refused.
    let (status, challenge, _) = userinfo_with(&app, "Bearer", &at, None).await;
    assert_eq!(status, 401);
    assert!(challenge.starts_with("DPoP "), "{challenge}");
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    assert!(challenge.contains("algs=\"ES256 EdDSA"), "{challenge}");
    // Without ath, with another key, or with no proof at all: invalid_dpop_proof.
    let no_ath = key.proof("GET", &url, now);
    let other = DpopKey::ed25519().proof_for_token("GET", &url, now, &at);
    for proof in [Some(no_ath.as_str()), Some(other.as_str()), None] {
        let (status, challenge, v) = userinfo_with(&app, "DPoP", &at, proof).await;
        assert_eq!(status, 401, "{v}");
        assert_eq!(v["error"], "invalid_dpop_proof", "{v}");
        assert!(
            challenge.contains("error=\"invalid_dpop_proof\""),
            "{challenge}"
        );
    }

    // Without a proof the tokens stay bearer tokens, as before.
    let (code, verifier) =
        authorize_code(&app, &client.client_id, "ada@example.com", "openid profile").await;
    let (status, _, t) = dpop::token(&app, &client, &code_form(&code, &verifier), &[]).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "Bearer");
    let bearer = text(&t, "access_token");
    assert!(jwt_claims(&bearer).get("cnf").is_none());
    assert_eq!(userinfo(&app, &bearer).await.0, 200);
    let seen = introspect(&app, &client, &bearer).await;
    assert!(seen.get("cnf").is_none(), "{seen}");
    // An unbound token with the DPoP scheme is refused.
    let proof = key.proof_for_token("GET", &url, now, &bearer);
    let (status, _, v) = userinfo_with(&app, "DPoP", &bearer, Some(&proof)).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (StatusCode::UNAUTHORIZED, Some("invalid_token"))
    );
}

async fn a_public_apps_refresh_token_is_bound_to_its_key_and_stays_bound(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut s = spec(&["openid", "offline_access"]);
    s.public = true;
    s.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    let client = app.create_app_with(s).await;
    app.create_user("bo@example.com", "Bo").await;
    let key = DpopKey::ed25519();
    let (code, verifier) = authorize_code(
        &app,
        &client.client_id,
        "bo@example.com",
        "openid offline_access",
    )
    .await;
    let url = token_url(&app);
    let proof = key.proof("POST", &url, app.clock_now());
    let (status, _, t) = dpop::token(&app, &client, &code_form(&code, &verifier), &[&proof]).await;
    assert_eq!(status, 200, "{t}");
    let rt = text(&t, "refresh_token");
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];

    let wrong = DpopKey::es256().proof("POST", &url, app.clock_now());
    let (status, _, v) = dpop::token(&app, &client, &form, &[&wrong]).await;
    assert_invalid_proof(status, &v, "another DPoP key");
    let (status, _, v) = dpop::token(&app, &client, &form, &[]).await;
    assert_invalid_proof(status, &v, "bound to a DPoP key");

    // The refusals left the token unspent: the right key refreshes it.
    let right = key.proof("POST", &url, app.clock_now());
    let (status, _, t) = dpop::token(&app, &client, &form, &[&right]).await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP");
    assert_eq!(
        jwt_claims(&text(&t, "access_token"))["cnf"]["jkt"],
        key.jkt()
    );

    // The successor keeps the binding.
    let next = text(&t, "refresh_token");
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", next.as_str()),
    ];
    let wrong = DpopKey::ed25519().proof("POST", &url, app.clock_now());
    let (status, _, v) = dpop::token(&app, &client, &form, &[&wrong]).await;
    assert_invalid_proof(status, &v, "another DPoP key");
    let right = key.proof("POST", &url, app.clock_now());
    let (status, _, t) = dpop::token(&app, &client, &form, &[&right]).await;
    assert_eq!(status, 200, "{t}");
}

async fn each_faulty_proof_is_refused_with_invalid_dpop_proof(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app
        .create_app_with(full_spec(&["openid", "grants:read"]))
        .await;
    let form = [("grant_type", "client_credentials")];
    let key = DpopKey::es256();
    let url = token_url(&app);
    let now = app.clock_now();

    // A replayed proof: accepted once only.
    let proof = key.proof("POST", &url, now);
    let (status, _, v) = dpop::token(&app, &client, &form, &[&proof]).await;
    assert_eq!(status, 200, "{v}");
    let (status, _, v) = dpop::token(&app, &client, &form, &[&proof]).await;
    assert_invalid_proof(status, &v, "already used");

    let with = |k: &str, value: Value| {
        let mut c = dpop::claims("POST", &url, now);
        c[k] = value;
        key.sign(&key.header(), &c)
    };
    let header_with = |k: &str, value: Value| {
        let mut h = key.header();
        h[k] = value;
        key.sign(&h, &dpop::claims("POST", &url, now))
    };
    let mut private_jwk = key.jwk();
    private_jwk["d"] = dpop::b64(&[1; 32]).into();
    let alg_none = {
        let h = serde_json::json!({"typ": "dpop+jwt", "alg": "none", "jwk": key.jwk()});
        let c = dpop::claims("POST", &url, now);
        format!(
            "{}.{}.",
            dpop::b64(h.to_string().as_bytes()),
            dpop::b64(c.to_string().as_bytes())
        )
    };
    let cases = [
        (
            "a wrong htu",
            with("htu", format!("{}/userinfo", app.issuer).into()),
            "htu",
        ),
        (
            "another server's htu",
            with("htu", "https://other.example/token".into()),
            "htu",
        ),
        ("a wrong htm", with("htm", "GET".into()), "htm"),
        ("a stale iat", with("iat", (now - 120).into()), "iat"),
        (
            "an iat in the future",
            with("iat", (now + 120).into()),
            "iat",
        ),
        ("no jti", with("jti", Value::Null), "jti"),
        ("an HS256 alg", header_with("alg", "HS256".into()), "alg"),
        ("alg none", alg_none, "alg"),
        (
            "a private key in the jwk",
            header_with("jwk", private_jwk),
            "private",
        ),
        (
            "a bad signature",
            header_with("jwk", DpopKey::es256().jwk()),
            "signature",
        ),
        ("another typ", header_with("typ", "JWT".into()), "typ"),
        ("no jwk", header_with("jwk", Value::Null), "jwk"),
        ("not a JWT", "not-a-jwt".to_string(), "JWT"),
    ];
    for (what, proof, about) in cases {
        let (status, _, v) = dpop::token(&app, &client, &form, &[&proof]).await;
        assert_eq!(status, 400, "{what}: {v}");
        assert_invalid_proof(status, &v, about);
    }
    // Two DPoP headers, each a good proof.
    let (a, b) = (key.proof("POST", &url, now), key.proof("POST", &url, now));
    let (status, _, v) = dpop::token(&app, &client, &form, &[&a, &b]).await;
    assert_invalid_proof(status, &v, "exactly one DPoP header");
    // Each of them is still unspent: refusals record no jti.
    let (status, _, v) = dpop::token(&app, &client, &form, &[&a]).await;
    assert_eq!(status, 200, "{v}");
}

async fn an_app_made_with_dpop_nonce_gets_a_nonce_and_a_retry_with_it_succeeds(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut s = full_spec(&["openid", "grants:read"]);
    s.dpop_nonce_required = true;
    let client = app.create_app_with(s).await;
    let form = [("grant_type", "client_credentials")];
    let key = DpopKey::es256();
    let url = token_url(&app);

    let first = key.proof("POST", &url, app.clock_now());
    let (status, headers, v) = dpop::token(&app, &client, &form, &[&first]).await;
    assert_eq!(status, 400, "{v}");
    assert_eq!(v["error"], "use_dpop_nonce", "{v}");
    let nonce = headers
        .get("dpop-nonce")
        .expect("a DPoP-Nonce header")
        .to_str()
        .unwrap()
        .to_string();

    let mut c = dpop::claims("POST", &url, app.clock_now());
    c["nonce"] = "not-the-nonce".into();
    let (_, _, v) = dpop::token(&app, &client, &form, &[&key.sign(&key.header(), &c)]).await;
    assert_eq!(v["error"], "use_dpop_nonce", "a wrong nonce: {v}");

    c["nonce"] = nonce.clone().into();
    c["jti"] = "retry-1".into();
    let (status, headers, v) =
        dpop::token(&app, &client, &form, &[&key.sign(&key.header(), &c)]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");
    assert!(
        headers.get("dpop-nonce").is_some(),
        "a fresh nonce with the answer"
    );

    // The nonce still holds in the next slot, not after.
    app.clock.advance(onyx_id::oauth::dpop::NONCE_SLOT);
    let mut c = dpop::claims("POST", &url, app.clock_now());
    c["nonce"] = nonce.clone().into();
    let (status, _, v) = dpop::token(&app, &client, &form, &[&key.sign(&key.header(), &c)]).await;
    assert_eq!(status, 200, "{v}");
    app.clock.advance(onyx_id::oauth::dpop::NONCE_SLOT);
    let mut c = dpop::claims("POST", &url, app.clock_now());
    c["nonce"] = nonce.into();
    let (_, headers, v) = dpop::token(&app, &client, &form, &[&key.sign(&key.header(), &c)]).await;
    assert_eq!(v["error"], "use_dpop_nonce", "an old nonce: {v}");

    // At userinfo too: 401 with a DPoP challenge naming use_dpop_nonce, then the retry.
    app.create_user("ed@example.com", "Ed").await;
    let mut s = spec(&["openid"]);
    s.dpop_nonce_required = true;
    let signer = app.create_app_with(s).await;
    let (code, verifier) =
        authorize_code(&app, &signer.client_id, "ed@example.com", "openid").await;
    let nonce = headers["dpop-nonce"].to_str().unwrap().to_string();
    let mut c = dpop::claims("POST", &url, app.clock_now());
    c["nonce"] = nonce.into();
    let proof = key.sign(&key.header(), &c);
    let (status, _, t) = dpop::token(&app, &signer, &code_form(&code, &verifier), &[&proof]).await;
    assert_eq!(status, 200, "{t}");
    let at = text(&t, "access_token");
    let info = userinfo_url(&app);
    let now = app.clock_now();
    let (status, challenge, v) = userinfo_with(
        &app,
        "DPoP",
        &at,
        Some(&key.proof_for_token("GET", &info, now, &at)),
    )
    .await;
    assert_eq!(status, 401, "{v}");
    assert!(
        challenge.contains("error=\"use_dpop_nonce\""),
        "{challenge}"
    );
    let res = http()
        .get(app.url("/userinfo"))
        .header("Authorization", format!("DPoP {at}"))
        .header("DPoP", key.proof_for_token("GET", &info, now, &at))
        .send()
        .await
        .unwrap();
    let nonce = res.headers()["dpop-nonce"].to_str().unwrap().to_string();
    let mut c = dpop::claims("GET", &info, now);
    c["ath"] = dpop::ath(&at).into();
    c["nonce"] = nonce.into();
    let (status, _, v) = userinfo_with(&app, "DPoP", &at, Some(&key.sign(&key.header(), &c))).await;
    assert_eq!(status, 200, "{v}");
}

/// Signs in with `extra` authorization parameters; returns where the browser is sent back.
async fn sign_in_with(app: &TestApp, client_id: &str, extra: &[(&str, &str)]) -> (String, String) {
    let browser = browser();
    let (url, verifier) = authorize_url(app, client_id, "openid", extra);
    let res = browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let login = location(res.headers());
    if !login.starts_with("/login") {
        return (login, verifier);
    }
    let next = log_in(app, &browser, &login, "cy@example.com").await;
    let back = if next.starts_with("/consent") {
        answer_consent(app, &browser, &next, "approve").await
    } else {
        next
    };
    (back, verifier)
}

async fn a_code_bound_by_dpop_jkt_is_redeemed_only_with_that_key(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid"]).await;
    app.create_user("cy@example.com", "Cy").await;
    let key = DpopKey::es256();
    let url = token_url(&app);

    // A malformed dpop_jkt goes back to the app as invalid_request.
    let (back, _) = sign_in_with(&app, &client.client_id, &[("dpop_jkt", "short")]).await;
    assert_eq!(query(&back)["error"], "invalid_request", "{back}");

    let jkt = key.jkt();
    for (proof, ok) in [
        (
            Some(DpopKey::es256().proof("POST", &url, app.clock_now())),
            false,
        ),
        (None, false),
        (Some(key.proof("POST", &url, app.clock_now())), true),
    ] {
        let (back, verifier) = sign_in_with(&app, &client.client_id, &[("dpop_jkt", &jkt)]).await;
        let code = query(&back)["code"].clone();
        let proofs: Vec<&str> = proof.iter().map(String::as_str).collect();
        let (status, _, v) =
            dpop::token(&app, &client, &code_form(&code, &verifier), &proofs).await;
        if ok {
            assert_eq!(status, 200, "{v}");
            assert_eq!(jwt_claims(&text(&v, "access_token"))["cnf"]["jkt"], jkt);
        } else {
            assert_invalid_proof(status, &v, "authorization code");
        }
    }
}

async fn a_dpop_bound_app_refuses_token_requests_without_a_proof(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut s = full_spec(&["openid", "offline_access", "grants:read"]);
    s.dpop_bound = true;
    let client = app.create_app_with(s).await;
    let form = [("grant_type", "client_credentials")];
    let (status, _, v) = dpop::token(&app, &client, &form, &[]).await;
    assert_invalid_proof(status, &v, "requires DPoP-bound tokens");
    let key = DpopKey::ed25519();
    let proof = key.proof("POST", &token_url(&app), app.clock_now());
    let (status, _, v) = dpop::token(&app, &client, &form, &[&proof]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");

    // The refresh grant too.
    app.create_user("di@example.com", "Di").await;
    let (code, verifier) = authorize_code(
        &app,
        &client.client_id,
        "di@example.com",
        "openid offline_access",
    )
    .await;
    let proof = key.proof("POST", &token_url(&app), app.clock_now());
    let (status, _, t) = dpop::token(&app, &client, &code_form(&code, &verifier), &[&proof]).await;
    assert_eq!(status, 200, "{t}");
    let rt = text(&t, "refresh_token");
    let refresh = [
        ("grant_type", "refresh_token"),
        ("refresh_token", rt.as_str()),
    ];
    let (status, _, v) = dpop::token(&app, &client, &refresh, &[]).await;
    assert_invalid_proof(status, &v, "requires DPoP-bound tokens");
    // A confidential app's refresh token is not bound to the key: another key refreshes it,
    // and the new access token is bound to that key.
    let other = DpopKey::es256();
    let proof = other.proof("POST", &token_url(&app), app.clock_now());
    let (status, _, v) = dpop::token(&app, &client, &refresh, &[&proof]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(
        jwt_claims(&text(&v, "access_token"))["cnf"]["jkt"],
        other.jkt()
    );
}

async fn client_credentials_with_a_proof_is_bound(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app
        .create_app_with(full_spec(&["openid", "grants:read"]))
        .await;
    let key = DpopKey::es256();
    let proof = key.proof("POST", &token_url(&app), app.clock_now());
    let form = [("grant_type", "client_credentials")];
    let (status, _, v) = dpop::token(&app, &client, &form, &[&proof]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "DPoP");
    let at = text(&v, "access_token");
    assert_eq!(jwt_claims(&at)["cnf"]["jkt"], key.jkt());
    let seen = introspect(&app, &client, &at).await;
    assert_eq!(seen["cnf"]["jkt"], key.jkt(), "{seen}");
    // Without a proof: a bearer token, as before.
    let (status, _, v) = dpop::token(&app, &client, &form, &[]).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_type"], "Bearer");
    // Revocation needs no proof.
    let (status, _) = app_post(&app, &client, "/revoke", &[("token", &at)]).await;
    assert_eq!(status, 200);
    assert_eq!(introspect(&app, &client, &at).await["active"], false);
}

async fn a_proof_used_at_one_instance_is_refused_at_another(backend: Backend) {
    let a = spawn_app(backend).await;
    let b = a.second_instance().await;
    let client = a
        .create_app_with(full_spec(&["openid", "grants:read"]))
        .await;
    let key = DpopKey::es256();
    let form = [("grant_type", "client_credentials")];
    for _ in 0..3 {
        let proof = key.proof("POST", &token_url(&a), a.clock_now());
        let (status, _, v) = dpop::token_at(&a.address, &client, &form, &[&proof]).await;
        assert_eq!(status, 200, "{v}");
        let (status, _, v) = dpop::token_at(&b, &client, &form, &[&proof]).await;
        assert_invalid_proof(status, &v, "already used");
    }
    // The other way round, and a fresh proof works at B.
    let proof = key.proof("POST", &token_url(&a), a.clock_now());
    let (status, _, v) = dpop::token_at(&b, &client, &form, &[&proof]).await;
    assert_eq!(status, 200, "{v}");
    let (status, _, v) = dpop::token_at(&a.address, &client, &form, &[&proof]).await;
    assert_invalid_proof(status, &v, "already used");
}

async fn the_iat_window_is_a_setting_and_old_proof_ids_are_purged(backend: Backend) {
    let app = spawn_app_with(backend, &|s| s.dpop_iat_window = 300).await;
    let client = app
        .create_app_with(full_spec(&["openid", "grants:read"]))
        .await;
    let form = [("grant_type", "client_credentials")];
    let key = DpopKey::es256();
    let url = token_url(&app);
    let now = app.clock_now();
    let (status, _, v) =
        dpop::token(&app, &client, &form, &[&key.proof("POST", &url, now - 240)]).await;
    assert_eq!(status, 200, "inside a 300 s window: {v}");
    let (status, _, v) =
        dpop::token(&app, &client, &form, &[&key.proof("POST", &url, now - 360)]).await;
    assert_invalid_proof(status, &v, "more than 300 seconds");

    let pool = app.sql().await;
    let count = || async {
        sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM dpop_proof_jtis")
            .fetch_one(pool)
            .await
            .unwrap()
    };
    assert_eq!(count().await, 1, "the accepted proof's jti, only");
    // Kept while a proof with that iat could still be accepted, purged after.
    onyx_id::store::purge::purge_expired(&app.state.db, app.clock_now())
        .await
        .unwrap();
    assert_eq!(count().await, 1);
    app.clock.advance(301);
    onyx_id::store::purge::purge_expired(&app.state.db, app.clock_now())
        .await
        .unwrap();
    assert_eq!(count().await, 0);

    crate::support::cli::assert_serve_refuses(&app, "ONYX_DPOP_IAT_WINDOW", "0").await;
    crate::support::cli::assert_serve_refuses(&app, "ONYX_DPOP_IAT_WINDOW", "100000").await;
}

async fn apps_create_takes_dpop_bound_and_dpop_nonce_and_shows_them(backend: Backend) {
    use crate::support::cli::{one_json_object, onyx};
    let app = spawn_app(backend).await;
    let (code, out, err) = onyx(
        &app,
        &[
            "apps",
            "create",
            "--name",
            "Strict",
            "--redirect-uri",
            REDIRECT,
            "--grant-type",
            "client_credentials",
            "--scope",
            "grants:read",
            "--dpop-bound",
            "--dpop-nonce",
        ],
        None,
    )
    .await;
    assert_eq!(code, 0, "{err}");
    let created = one_json_object(&out);
    assert_eq!(created["dpop_bound_access_tokens"], true, "{created}");
    assert_eq!(created["dpop_nonce_required"], true, "{created}");
    let client_id = text(&created, "client_id");
    let (_, out, err) = onyx(&app, &["apps", "show", "--app", &client_id], None).await;
    let shown = one_json_object(&out);
    assert_eq!(
        shown["live"]["dpop_bound_access_tokens"], true,
        "{shown} {err}"
    );
    assert_eq!(shown["live"]["dpop_nonce_required"], true, "{shown}");

    // Both apply: no proof is refused, a proof without the nonce gets one.
    let client = Client::from_created(&created);
    let form = [("grant_type", "client_credentials")];
    let (status, _, v) = dpop::token(&app, &client, &form, &[]).await;
    assert_invalid_proof(status, &v, "requires DPoP-bound tokens");
    let proof = DpopKey::es256().proof("POST", &token_url(&app), app.clock_now());
    let (_, headers, v) = dpop::token(&app, &client, &form, &[&proof]).await;
    assert_eq!(v["error"], "use_dpop_nonce", "{v}");
    assert!(headers.get("dpop-nonce").is_some());

    let (_, out, _) = onyx(
        &app,
        &[
            "apps",
            "create",
            "--name",
            "Plain",
            "--redirect-uri",
            REDIRECT,
        ],
        None,
    )
    .await;
    let plain = one_json_object(&out);
    assert_eq!(plain["dpop_bound_access_tokens"], false, "{plain}");
    assert_eq!(plain["dpop_nonce_required"], false, "{plain}");
}

async fn a_browser_app_may_send_a_dpop_header_and_read_the_nonce(backend: Backend) {
    let app = spawn_app(backend).await;
    let origin = "https://spa.example";
    let mut s = spec(&["openid", "offline_access"]);
    s.public = true;
    s.origins = vec![origin.into()];
    s.dpop_nonce_required = true;
    let client = app.create_app_with(s).await;
    let res = http()
        .request(reqwest::Method::OPTIONS, app.url("/token"))
        .header("Origin", origin)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "dpop, content-type")
        .send()
        .await
        .unwrap();
    let allowed = res.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap();
    assert!(allowed.split(", ").any(|h| h == "dpop"), "{allowed}");

    let proof = DpopKey::es256().proof("POST", &token_url(&app), app.clock_now());
    let res = http()
        .post(app.url("/token"))
        .header("Origin", origin)
        .header("DPoP", proof)
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", "x"),
            ("client_id", client.client_id.as_str()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let h = res.headers();
    assert_eq!(h["access-control-allow-origin"], origin);
    let exposed = h["access-control-expose-headers"].to_str().unwrap();
    assert!(exposed.contains("DPoP-Nonce"), "{exposed}");
    assert!(h.get("dpop-nonce").is_some());
}
