//! The FAPI 2.0 Security Profile per app (`apps create --profile fapi2`): pushed requests,
//! DPoP-bound tokens, private_key_jwt signed with ES256, PS256 or EdDSA for the issuer only,
//! no http redirect but native loopback, long nonces, 303 redirects, and refresh tokens that
//! do not rotate.

use onyx_id::admin::AppSpec;
use onyx_id::keys::{Algorithm, KeyMaterial, encode_jws};
use onyx_id::store::apps::Profile;
use reqwest::StatusCode;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P384_SHA384_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::dpop::{DpopKey, b64, jwt_claims, token_url};

const EMAIL: &str = "ada@example.com";
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
const RULE: &str = "the FAPI 2.0 profile of this app requires";

on_each_backend!(
    a_fapi2_app_signs_in_through_par_with_dpop_and_keeps_its_refresh_token,
    a_fapi2_app_is_refused_authorize_without_a_pushed_request,
    a_fapi2_app_is_refused_tokens_without_a_dpop_proof,
    a_fapi2_app_is_refused_assertions_of_other_algorithms_and_audiences,
    a_fapi2_app_is_refused_a_client_secret,
    apps_create_profile_fapi2_registers_the_profile_and_refuses_what_breaks_it,
    a_partner_draft_under_the_profile_is_prechecked_for_its_keys_and_redirects,
    a_partner_draft_with_keys_and_the_profile_makes_the_live_app_fapi2_once_approved,
);

/// A fapi2 app's keys: the ES256 key it signs with, and an RS256 and an ES384 key it
/// registered too (which the profile does not let it use).
struct Keys {
    es256: KeyMaterial,
    rs256: KeyMaterial,
    es384: EcdsaKeyPair,
}

impl Keys {
    fn new() -> Self {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, &rng).unwrap();
        Self {
            es256: KeyMaterial::generate(Algorithm::ES256).unwrap(),
            rs256: KeyMaterial::generate(Algorithm::RS256).unwrap(),
            es384: EcdsaKeyPair::from_pkcs8(&ECDSA_P384_SHA384_FIXED_SIGNING, pkcs8.as_ref(), &rng)
                .unwrap(),
        }
    }

    fn jwks(&self) -> String {
        let p = self.es384.public_key().as_ref();
        let p384 = json!({
            "kty": "EC", "crv": "P-384", "kid": "p384", "alg": "ES384",
            "x": b64(&p[1..49]), "y": b64(&p[49..97]),
        });
        json!({ "keys": [
            self.es256.public_jwk("es", Algorithm::ES256),
            self.rs256.public_jwk("rs", Algorithm::RS256),
            p384,
        ]})
        .to_string()
    }

    /// An assertion for `aud`, signed with ES256 (or with `alg`: "RS256", "ES384").
    fn assertion(&self, app: &TestApp, client_id: &str, aud: &str, alg: &str) -> String {
        let now = app.clock_now();
        let claims = json!({
            "iss": client_id, "sub": client_id, "aud": aud, "exp": now + 60, "iat": now,
            "jti": onyx_id::crypto::random_id(),
        });
        match alg {
            "ES256" => encode_jws("es", Algorithm::ES256, "JWT", &claims, &self.es256).unwrap(),
            "RS256" => encode_jws("rs", Algorithm::RS256, "JWT", &claims, &self.rs256).unwrap(),
            "ES384" => {
                let header = json!({ "alg": "ES384", "typ": "JWT", "kid": "p384" });
                let input = format!(
                    "{}.{}",
                    b64(header.to_string().as_bytes()),
                    b64(claims.to_string().as_bytes())
                );
                let sig = self
                    .es384
                    .sign(&SystemRandom::new(), input.as_bytes())
                    .unwrap();
                format!("{input}.{}", b64(sig.as_ref()))
            }
            other => panic!("no {other} key"),
        }
    }
}

fn fapi2_spec(keys: &Keys) -> AppSpec {
    let mut s = spec(&["openid", "profile", "offline_access"]);
    s.grant_types = vec!["authorization_code".into(), "refresh_token".into()];
    s.jwks = Some(keys.jwks());
    s.profile = Some(Profile::Fapi2);
    s
}

/// The parameters of an authorization request, with `challenge` as PKCE and `nonce`.
fn request(challenge: &str, nonce: &str) -> Vec<(&'static str, String)> {
    vec![
        ("response_type", "code".into()),
        ("redirect_uri", REDIRECT.into()),
        ("scope", "openid profile offline_access".into()),
        ("state", "st-fapi".into()),
        ("nonce", nonce.into()),
        ("code_challenge", challenge.into()),
        ("code_challenge_method", "S256".into()),
        ("prompt", "consent".into()),
    ]
}

/// POSTs `form` to `path` with `assertion` and DPoP `proof` (when given).
async fn post(
    app: &TestApp,
    path: &str,
    mut form: Vec<(&'static str, String)>,
    assertion: Option<String>,
    proof: Option<String>,
) -> (StatusCode, Value) {
    if let Some(a) = assertion {
        form.push(("client_assertion_type", JWT_BEARER.into()));
        form.push(("client_assertion", a));
    }
    let mut req = http().post(app.url(path));
    if let Some(p) = proof {
        req = req.header("DPoP", p);
    }
    json_of(req.form(&form).send().await.unwrap()).await
}

/// Pushes a request with `nonce`; the request_uri and the PKCE verifier.
async fn push(app: &TestApp, keys: &Keys, client_id: &str, nonce: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let a = keys.assertion(app, client_id, &app.issuer, "ES256");
    let (status, v) = post(app, "/par", request(&challenge, nonce), Some(a), None).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    (text(&v, "request_uri"), verifier)
}

/// From `/authorize?client_id&request_uri` to the code: every redirect of `/authorize` is
/// a 303, sign in, consent.
async fn code_for(app: &TestApp, client_id: &str, request_uri: &str) -> String {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([("client_id", client_id), ("request_uri", request_uri)])
        .finish();
    let browser = browser();
    let res = browser
        .get(app.url(&format!("/authorize?{q}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let login = location(res.headers());
    assert!(login.starts_with("/login"), "{login}");
    let next = log_in(app, &browser, &login, EMAIL).await;
    let back = if next.starts_with("/consent") {
        answer_consent(app, &browser, &next, "approve").await
    } else {
        next
    };
    assert!(back.starts_with(REDIRECT), "{back}");
    let q = query(&back);
    assert_eq!(q["state"], "st-fapi", "{back}");
    q["code"].clone()
}

fn code_form(code: &str, verifier: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "authorization_code".into()),
        ("code", code.into()),
        ("redirect_uri", REDIRECT.into()),
        ("code_verifier", verifier.into()),
    ]
}

fn refresh_form(rt: &str) -> Vec<(&'static str, String)> {
    vec![
        ("grant_type", "refresh_token".into()),
        ("refresh_token", rt.into()),
    ]
}

async fn a_fapi2_app_signs_in_through_par_with_dpop_and_keeps_its_refresh_token(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, "Ada").await;
    let keys = Keys::new();
    let client = app.create_app_with(fapi2_spec(&keys)).await;
    let id = client.client_id.clone();
    assert!(client.client_secret.is_none());
    // FAPI 2.0 §5.3.2.2: nonces of 64 characters and more.
    let nonce = "n".repeat(128);
    let (request_uri, verifier) = push(&app, &keys, &id, &nonce).await;
    let code = code_for(&app, &id, &request_uri).await;

    let key = DpopKey::es256();
    let proof = || Some(key.proof("POST", &token_url(&app), app.clock_now()));
    let assertion = || Some(keys.assertion(&app, &id, &app.issuer, "ES256"));
    let (status, t) = post(
        &app,
        "/token",
        code_form(&code, &verifier),
        assertion(),
        proof(),
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP", "{t}");
    assert_eq!(
        jwt_claims(&text(&t, "access_token"))["cnf"]["jkt"],
        key.jkt()
    );
    assert_eq!(jwt_claims(&text(&t, "id_token"))["nonce"], nonce.as_str());
    let rt = text(&t, "refresh_token");

    // The refresh token does not rotate: the same one comes back, and works again.
    for _ in 0..2 {
        let (status, r) = post(&app, "/token", refresh_form(&rt), assertion(), proof()).await;
        assert_eq!(status, 200, "{r}");
        assert_eq!(r["refresh_token"], rt.as_str(), "{r}");
        assert_eq!(r["token_type"], "DPoP", "{r}");
        assert_ne!(r["access_token"], t["access_token"]);
    }
    // A refresh without a proof is refused like any of the app's token requests.
    let (status, r) = post(&app, "/token", refresh_form(&rt), assertion(), None).await;
    assert_eq!(
        (status, r["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_dpop_proof")),
        "{r}"
    );
    // It stays revocable.
    let revoke = vec![
        ("token", rt.clone()),
        ("token_type_hint", "refresh_token".into()),
    ];
    let (status, v) = post(&app, "/revoke", revoke, assertion(), None).await;
    assert_eq!(status, 200, "{v}");
    let (status, r) = post(&app, "/token", refresh_form(&rt), assertion(), proof()).await;
    assert_eq!(
        (status, r["error"].clone()),
        (StatusCode::BAD_REQUEST, json!("invalid_grant")),
        "{r}"
    );
}

async fn a_fapi2_app_is_refused_authorize_without_a_pushed_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let keys = Keys::new();
    let client = app.create_app_with(fapi2_spec(&keys)).await;
    let (url, _) = authorize_url(&app, &client.client_id, "openid profile", &[]);
    let res = http().get(url).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let to = location(res.headers());
    assert!(to.starts_with(REDIRECT), "{to}");
    let q = query(&to);
    assert_eq!(q["error"], "invalid_request");
    assert!(q["error_description"].contains(RULE), "{q:?}");
    assert!(q["error_description"].contains("(PAR)"), "{q:?}");
}

async fn a_fapi2_app_is_refused_tokens_without_a_dpop_proof(backend: Backend) {
    let app = spawn_app(backend).await;
    app.create_user(EMAIL, "Ada").await;
    let keys = Keys::new();
    let client = app.create_app_with(fapi2_spec(&keys)).await;
    let id = client.client_id.clone();
    let nonce = "a".repeat(64);
    let (request_uri, verifier) = push(&app, &keys, &id, &nonce).await;
    let code = code_for(&app, &id, &request_uri).await;
    let assertion = || Some(keys.assertion(&app, &id, &app.issuer, "ES256"));
    let (status, t) = post(
        &app,
        "/token",
        code_form(&code, &verifier),
        assertion(),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{t}");
    assert_eq!(t["error"], "invalid_dpop_proof", "{t}");
    assert!(text(&t, "error_description").contains(RULE), "{t}");
    // The refusal did not spend the code: with a proof it gets tokens.
    let key = DpopKey::es256();
    let proof = Some(key.proof("POST", &token_url(&app), app.clock_now()));
    let (status, t) = post(
        &app,
        "/token",
        code_form(&code, &verifier),
        assertion(),
        proof,
    )
    .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["token_type"], "DPoP", "{t}");
    assert_eq!(jwt_claims(&text(&t, "id_token"))["nonce"], nonce.as_str());
}

async fn a_fapi2_app_is_refused_assertions_of_other_algorithms_and_audiences(backend: Backend) {
    let app = spawn_app(backend).await;
    let keys = Keys::new();
    let client = app.create_app_with(fapi2_spec(&keys)).await;
    let id = client.client_id.clone();
    let (_, challenge) = pkce();
    let form = || request(&challenge, "n-1");
    for alg in ["RS256", "ES384"] {
        let a = keys.assertion(&app, &id, &app.issuer, alg);
        let (status, v) = post(&app, "/par", form(), Some(a), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{alg}: {v}");
        assert_eq!(v["error"], "invalid_client", "{v}");
        let why = text(&v, "error_description");
        assert!(
            why.contains(RULE) && why.contains("ES256, PS256 or EdDSA"),
            "{why}"
        );
    }
    // `aud` must be the issuer: the token or PAR endpoint's URL is refused.
    for aud in [app.url("/token"), app.url("/par")] {
        let a = keys.assertion(&app, &id, &aud, "ES256");
        let (status, v) = post(&app, "/par", form(), Some(a), None).await;
        assert_eq!(
            (status, v["error"].clone()),
            (StatusCode::UNAUTHORIZED, json!("invalid_client")),
            "{v}"
        );
    }
    let a = keys.assertion(&app, &id, &app.issuer, "ES256");
    let (status, v) = post(&app, "/par", form(), Some(a), None).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    // The same RS256 key still works for an app without the profile.
    let mut plain = fapi2_spec(&keys);
    plain.profile = None;
    let other = app.create_app_with(plain).await;
    let a = keys.assertion(&app, &other.client_id, &app.issuer, "RS256");
    let (status, v) = post(&app, "/par", form(), Some(a), None).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
}

async fn a_fapi2_app_is_refused_a_client_secret(backend: Backend) {
    let app = spawn_app(backend).await;
    // An app with a secret cannot be made fapi2; one whose row says so anyway (defence in
    // depth) is refused its secret at the push and the token endpoint.
    let client = app.create_app(&["openid", "profile"]).await;
    let secret = client.client_secret.clone().unwrap();
    sqlx::query("UPDATE apps SET profile = 'fapi2' WHERE client_id = $1")
        .bind(&client.client_id)
        .execute(app.sql().await)
        .await
        .unwrap();
    let (_, challenge) = pkce();
    let mut form = request(&challenge, "n-1");
    form.push(("client_id", client.client_id.clone()));
    form.push(("client_secret", secret.clone()));
    let (status, v) = post(&app, "/par", form, None, None).await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_client")),
        "{v}"
    );
    assert!(text(&v, "error_description").contains(RULE), "{v}");
    let res = http()
        .post(app.url("/token"))
        .basic_auth(&client.client_id, Some(&secret))
        .form(&[("grant_type", "refresh_token"), ("refresh_token", "x")])
        .send()
        .await
        .unwrap();
    let (status, v) = json_of(res).await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_client")),
        "{v}"
    );
    assert!(text(&v, "error_description").contains(RULE), "{v}");
}

async fn apps_create_profile_fapi2_registers_the_profile_and_refuses_what_breaks_it(
    backend: Backend,
) {
    use crate::support::cli::{one_json_object, onyx};
    let app = spawn_app(backend).await;
    let keys = Keys::new();
    let dir = tempfile::tempdir().unwrap();
    let jwks_file = dir.path().join("jwks.json");
    std::fs::write(&jwks_file, keys.jwks()).unwrap();
    let jwks_path = jwks_file.to_str().unwrap();
    let create = |redirect: &'static str, extra: &'static [&'static str], with_keys: bool| {
        let mut args = vec![
            "apps",
            "create",
            "--name",
            "Bank",
            "--redirect-uri",
            redirect,
            "--scope",
            "openid",
        ];
        if with_keys {
            args.extend(["--jwks-file", jwks_path]);
        }
        args.extend_from_slice(extra);
        let app = &app;
        async move { onyx(app, &args, None).await }
    };
    let (code, out, err) = create(REDIRECT, &["--profile", "fapi2"], true).await;
    assert_eq!(code, 0, "{err}");
    let made = one_json_object(&out);
    assert_eq!(made["profile"], "fapi2", "{made}");
    assert_eq!(
        made["token_endpoint_auth_method"], "private_key_jwt",
        "{made}"
    );
    let id = text(&made, "client_id");
    let (code, out, err) = onyx(&app, &["apps", "show", "--app", &id], None).await;
    assert_eq!(code, 0, "{err}");
    assert_eq!(one_json_object(&out)["live"]["profile"], "fapi2");
    // Native loopback redirects are allowed.
    let (code, _, err) = create("http://127.0.0.1:8080/cb", &["--profile", "fapi2"], true).await;
    assert_eq!(code, 0, "{err}");
    // Without a profile nothing is shown.
    let (code, out, err) = create(REDIRECT, &[], false).await;
    assert_eq!(code, 0, "{err}");
    let plain = one_json_object(&out);
    assert!(plain.get("profile").is_none_or(Value::is_null), "{plain}");

    // Any app's http redirect must be on a loopback host; the profile's only native loopback.
    let (code, out, err) = create("http://app.example/cb", &["--profile", "fapi2"], true).await;
    assert_ne!(code, 0, "{out}");
    assert!(err.contains("http://app.example/cb"), "{err}");
    let refused = [
        (
            create(REDIRECT, &["--profile", "fapi2"], false).await,
            "private_key_jwt",
        ),
        (
            create("http://localhost:8080/cb", &["--profile", "fapi2"], true).await,
            "localhost",
        ),
        (
            create(
                REDIRECT,
                &["--profile", "fapi2", "--id-token-alg", "RS256"],
                true,
            )
            .await,
            "RS256",
        ),
    ];
    for ((code, out, err), names) in refused {
        assert_ne!(code, 0, "{out}");
        let said = format!("{out}{err}");
        assert!(said.contains(RULE) && said.contains(names), "{said}");
    }
    let (code, _, err) = create(REDIRECT, &["--profile", "fapi1"], true).await;
    assert_ne!(code, 0);
    assert!(err.contains("fapi2"), "{err}");
}

fn codes(findings: &Value) -> Vec<String> {
    findings
        .as_array()
        .unwrap()
        .iter()
        .map(|f| text(f, "code"))
        .collect()
}

async fn a_partner_draft_under_the_profile_is_prechecked_for_its_keys_and_redirects(
    backend: Backend,
) {
    use crate::support::partner_api::{good_draft, operator_key, partner, post as api_post};
    let app = spawn_app(backend).await;
    let op = operator_key(&app, "reviewer@onyx.example").await;
    let (_, key) = partner(&app, &op, "owner@partner.example", "Buddy Ltd").await;
    let submit = |draft: Value| {
        let (app, key) = (&app, key.clone());
        async move {
            let (status, created) = api_post(app, "/api/v1/apps", &key, draft).await;
            assert_eq!(status, 201, "{created}");
            let id = text(&created, "client_id");
            let (status, review) =
                api_post(app, &format!("/api/v1/apps/{id}/submit"), &key, json!({})).await;
            assert_eq!(status, 200, "{review}");
            review["findings"].clone()
        }
    };
    let mut draft = good_draft();
    draft["profile"] = json!("fapi2");
    draft["redirect_uris"] = json!([
        REDIRECT,
        "http://localhost:8400/cb",
        "http://127.0.0.1:8400/cb"
    ]);
    draft["jwks"] =
        json!({ "keys": [{ "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA", "d": "AA" }] });
    draft["jwks_uri"] = json!("http://keys.example/jwks.json");
    let findings = submit(draft).await;
    let found = codes(&findings);
    for code in [
        "profile_redirect_uri_not_allowed",
        "jwks_invalid",
        "jwks_uri_not_https",
        "jwks_and_jwks_uri",
    ] {
        assert!(found.contains(&code.to_string()), "{code} in {findings}");
    }
    let loopback = findings
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["code"] == "profile_redirect_uri_not_allowed")
        .map(|f| text(f, "field"))
        .collect::<Vec<_>>();
    assert_eq!(loopback, ["redirect_uris[1]"], "{findings}");
    for f in findings.as_array().unwrap() {
        if text(f, "code").starts_with("jwks") || text(f, "code").starts_with("profile") {
            assert_eq!(f["step"], "redirect_uris", "{f}");
        }
    }

    let mut keyless = good_draft();
    keyless["profile"] = json!("fapi2");
    assert!(codes(&submit(keyless).await).contains(&"profile_requires_keys".to_string()));
    let mut symmetric = good_draft();
    symmetric["jwks"] = json!({ "keys": [{ "kty": "oct", "k": "c2VjcmV0" }] });
    symmetric["jwks_uri"] = json!(null);
    assert!(codes(&submit(symmetric).await).contains(&"jwks_invalid".to_string()));
    let mut internal = good_draft();
    internal["jwks_uri"] = json!("https://10.0.0.1/jwks.json");
    assert!(codes(&submit(internal).await).contains(&"jwks_uri_invalid".to_string()));
    // Without the profile and with good keys, nothing is found.
    let mut fine = good_draft();
    fine["jwks"] = serde_json::from_str(&Keys::new().jwks()).unwrap();
    assert_eq!(submit(fine).await, json!([]));
}

async fn a_partner_draft_with_keys_and_the_profile_makes_the_live_app_fapi2_once_approved(
    backend: Backend,
) {
    use crate::support::partner_api::{
        app_in_preview_with, get, good_draft, publish, spawn_program,
    };
    let published = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let port = publish(published.clone()).await;
    let app = spawn_program(backend, port).await;
    let keys = Keys::new();
    let mut draft = good_draft();
    draft["profile"] = json!("fapi2");
    draft["jwks"] = serde_json::from_str(&keys.jwks()).unwrap();
    let (_, key, client_id, secret) = app_in_preview_with(&app, &published, draft).await;
    let (status, v) = get(&app, &format!("/api/v1/apps/{client_id}"), &key).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["draft"]["profile"], "fapi2", "{v}");
    assert_eq!(v["live"]["profile"], "fapi2", "{v}");
    let (auth_method, jwks): (String, Option<String>) =
        sqlx::query_as("SELECT auth_method, jwks FROM apps WHERE client_id = $1")
            .bind(&client_id)
            .fetch_one(app.sql().await)
            .await
            .unwrap();
    assert_eq!(auth_method, "private_key_jwt");
    assert!(jwks.is_some_and(|j| j.contains("\"es\"")));

    // The client secret no longer works; an ES256 assertion does, and PAR is required.
    let (_, challenge) = pkce();
    let request = |challenge: &str, nonce: &str| {
        let mut form = request(challenge, nonce);
        form.retain(|(k, _)| *k != "scope");
        form.push(("scope", "openid profile".into()));
        form
    };
    let mut form = request(&challenge, "n-1");
    form.push(("client_id", client_id.clone()));
    form.push(("client_secret", secret));
    let (status, v) = post(&app, "/par", form, None, None).await;
    assert_eq!(
        (status, v["error"].clone()),
        (StatusCode::UNAUTHORIZED, json!("invalid_client")),
        "{v}"
    );
    let a = keys.assertion(&app, &client_id, &app.issuer, "ES256");
    let (status, v) = post(&app, "/par", request(&challenge, "n-1"), Some(a), None).await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let a = keys.assertion(&app, &client_id, &app.issuer, "RS256");
    let (status, v) = post(&app, "/par", request(&challenge, "n-1"), Some(a), None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{v}");
    let (url, _) = authorize_url(&app, &client_id, "openid profile", &[]);
    let res = http().get(url).send().await.unwrap();
    let q = query(&location(res.headers()));
    assert!(q["error_description"].contains(RULE), "{q:?}");

    // Dropping the profile is a change of the redirect URIs' step: the live app keeps it
    // until the step is approved again.
    let (status, v) = crate::support::partner_api::patch(
        &app,
        &format!("/api/v1/apps/{client_id}"),
        &key,
        json!({ "profile": null }),
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["live"]["profile"], "fapi2", "{v}");
    assert!(v["draft"]["profile"].is_null(), "{v}");
}
