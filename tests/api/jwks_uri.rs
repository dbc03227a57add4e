//! An app's keys at its `jwks_uri` (issue 16), fetched through the public-address guard by
//! `onyx_id::oauth::jwks_uri` from a loopback server of the test's own: cached, refetched once
//! for an unknown `kid` and then not again within the refetch interval; a failed fetch is not
//! retried at every request either. Refused: a private address (unless allowed), an answer that
//! is not 200 (a redirect is not followed), one over the size cap, a slow one, a set with a
//! private key in it. And end to end, on both backends: an app made with `--jwks-uri`
//! authenticates at the token endpoint with `private_key_jwt`, through a key rotation.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use onyx_id::admin::AppSpec;
use onyx_id::keys::{Algorithm, KeyMaterial, encode_jws};
use onyx_id::oauth::jwks_uri::{JwksCache, JwksError, JwksFetchSettings};
use serde_json::{Value, json};

use crate::helpers::*;

on_each_backend!(an_app_with_a_jwks_uri_authenticates_with_its_published_keys_through_a_rotation);

const KEY_A: &str = r#"{"kty":"EC","crv":"P-256","kid":"a","use":"sig","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;

/// What the publisher answers, and how many times it was asked.
struct Published {
    status: StatusCode,
    body: String,
    delay: Duration,
}

#[derive(Clone)]
struct Publisher {
    now: Arc<Mutex<Published>>,
    hits: Arc<AtomicUsize>,
}

impl Publisher {
    fn set(&self, status: StatusCode, body: String) {
        let mut p = self.now.lock().unwrap();
        p.status = status;
        p.body = body;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn serve(State(p): State<Publisher>) -> Response {
    p.hits.fetch_add(1, Ordering::SeqCst);
    let (status, body, delay) = {
        let now = p.now.lock().unwrap();
        (now.status, now.body.clone(), now.delay)
    };
    tokio::time::sleep(delay).await;
    if status == StatusCode::FOUND {
        return (status, [("location", "http://127.0.0.1:1/elsewhere")]).into_response();
    }
    (status, [("content-type", "application/json")], body).into_response()
}

/// A loopback publisher of a JWKS at `/jwks.json`; its URL.
async fn publisher() -> (Publisher, String) {
    let p = Publisher {
        now: Arc::new(Mutex::new(Published {
            status: StatusCode::OK,
            body: keys(&[KEY_A]),
            delay: Duration::ZERO,
        })),
        hits: Arc::new(AtomicUsize::new(0)),
    };
    let router = Router::new()
        .route("/jwks.json", get(serve))
        .with_state(p.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, router).await });
    (p, format!("http://127.0.0.1:{port}/jwks.json"))
}

fn keys(keys: &[&str]) -> String {
    format!(r#"{{"keys":[{}]}}"#, keys.join(","))
}

fn local() -> JwksFetchSettings {
    JwksFetchSettings {
        allow_private: true,
        insecure_http: true,
        timeout: Duration::from_millis(500),
        ..JwksFetchSettings::default()
    }
}

#[tokio::test]
async fn a_set_is_fetched_once_then_read_from_the_cache() {
    let (p, uri) = publisher().await;
    let cache = JwksCache::default();
    let s = local();
    let set = cache.keys(&s, "app", &uri, Some("a")).await.unwrap();
    assert!(set.find("a").is_some());
    cache.keys(&s, "app", &uri, Some("a")).await.unwrap();
    cache.keys(&s, "app", &uri, None).await.unwrap();
    assert_eq!(p.hits(), 1, "the cached set answers");
    // Another app (or another URI for the same app) is its own entry.
    cache.keys(&s, "other", &uri, Some("a")).await.unwrap();
    assert_eq!(p.hits(), 2);
    // Once the set is older than the cache's lifetime, it is fetched again.
    let short = JwksFetchSettings {
        cache_ttl: Duration::ZERO,
        ..local()
    };
    cache.keys(&short, "app", &uri, Some("a")).await.unwrap();
    assert_eq!(p.hits(), 3);
}

#[tokio::test]
async fn an_unknown_kid_is_refetched_once_and_then_not_again_within_the_interval() {
    let (p, uri) = publisher().await;
    let cache = JwksCache::default();
    let s = local();
    cache.keys(&s, "app", &uri, Some("a")).await.unwrap();
    // The app rotates: its new key "b" is published; an assertion with kid "b" refetches.
    let key_b = KEY_A.replace(r#""kid":"a""#, r#""kid":"b""#);
    p.set(StatusCode::OK, keys(&[KEY_A, &key_b]));
    let set = cache.keys(&s, "app", &uri, Some("b")).await.unwrap();
    assert!(set.find("b").is_some());
    assert_eq!(p.hits(), 2);
    // A made-up kid: the refetch just made counts, so nothing is fetched, and it is refused.
    let err = cache
        .keys(&s, "app", &uri, Some("made-up"))
        .await
        .unwrap_err();
    assert!(
        matches!(err, JwksError::UnknownKid(ref k) if k == "made-up"),
        "{err}"
    );
    for _ in 0..20 {
        assert!(cache.keys(&s, "app", &uri, Some("made-up")).await.is_err());
    }
    assert_eq!(p.hits(), 2, "no fetch per made-up kid");
    // The known keys still work from the cache meanwhile.
    cache.keys(&s, "app", &uri, Some("a")).await.unwrap();
    // After the interval, one more refetch is allowed.
    let no_wait = JwksFetchSettings {
        refetch_interval: Duration::ZERO,
        ..local()
    };
    assert!(
        cache
            .keys(&no_wait, "app", &uri, Some("made-up"))
            .await
            .is_err()
    );
    assert_eq!(p.hits(), 3);
}

#[tokio::test]
async fn bad_answers_are_refused_in_words_and_not_fetched_again_at_once() {
    let (p, uri) = publisher().await;
    let s = local();

    p.set(StatusCode::NOT_FOUND, "gone".into());
    let cache = JwksCache::default();
    let err = cache.keys(&s, "app", &uri, Some("a")).await.unwrap_err();
    assert_eq!(err.to_string(), "the jwks_uri answered HTTP 404, not 200");
    // Failing, it is not asked again at each assertion.
    p.set(StatusCode::OK, keys(&[KEY_A]));
    assert!(cache.keys(&s, "app", &uri, Some("a")).await.is_err());
    assert_eq!(p.hits(), 1);

    p.set(StatusCode::FOUND, String::new());
    let err = JwksCache::default()
        .keys(&s, "app", &uri, None)
        .await
        .unwrap_err();
    assert!(
        matches!(err, JwksError::Status(302)),
        "redirects are not followed: {err}"
    );

    p.set(
        StatusCode::OK,
        format!(r#"{{"keys":[],"pad":"{}"}}"#, "x".repeat(70_000)),
    );
    let err = JwksCache::default()
        .keys(&s, "app", &uri, None)
        .await
        .unwrap_err();
    assert!(matches!(err, JwksError::TooLarge(65_536)), "{err}");

    let private = KEY_A.replace(
        r#""use":"sig""#,
        r#""use":"sig","d":"jpsQnnGQmL-YBIffH1136cspYG6-0iY7X1fCE9-E9LI""#,
    );
    p.set(StatusCode::OK, keys(&[&private]));
    let err = JwksCache::default()
        .keys(&s, "app", &uri, None)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("holds a private key"), "{err}");

    p.set(StatusCode::OK, "<html>".into());
    let err = JwksCache::default()
        .keys(&s, "app", &uri, None)
        .await
        .unwrap_err();
    assert!(matches!(err, JwksError::NotJwks(_)), "{err}");

    p.set(StatusCode::OK, keys(&[KEY_A]));
    p.now.lock().unwrap().delay = Duration::from_secs(2);
    let started = std::time::Instant::now();
    let err = JwksCache::default()
        .keys(&s, "app", &uri, None)
        .await
        .unwrap_err();
    assert!(matches!(err, JwksError::Fetch(_)), "{err}");
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "the timeout holds"
    );
}

#[tokio::test]
async fn a_private_address_or_plain_http_is_refused_by_the_guard() {
    let (p, uri) = publisher().await;
    let production = JwksFetchSettings {
        insecure_http: true,
        ..JwksFetchSettings::default()
    };
    let err = JwksCache::default()
        .keys(&production, "app", &uri, None)
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("the jwks_uri's host resolves to 127.0.0.1"),
        "{err}"
    );
    let err = JwksCache::default()
        .keys(&JwksFetchSettings::default(), "app", &uri, None)
        .await
        .unwrap_err();
    assert_eq!(err.to_string(), "the jwks_uri must be an https URL");
    assert_eq!(p.hits(), 0, "nothing reached the publisher");
}

/// A `private_key_jwt` assertion for the token endpoint, signed by `key` under `kid`.
fn assertion(
    key: &KeyMaterial,
    kid: &str,
    client_id: &str,
    aud: &str,
    jti: &str,
    now: i64,
) -> String {
    let claims = json!({ "iss": client_id, "sub": client_id, "aud": aud, "exp": now + 60, "iat": now, "jti": jti });
    encode_jws(kid, Algorithm::ES256, "JWT", &claims, key).unwrap()
}

async fn an_app_with_a_jwks_uri_authenticates_with_its_published_keys_through_a_rotation(
    backend: Backend,
) {
    let app = spawn_app_with(backend, &|s| {
        s.jwks_fetch.allow_private = true;
        s.jwks_fetch.insecure_http = true;
    })
    .await;
    let (p, uri) = publisher().await;
    let first = KeyMaterial::generate(Algorithm::ES256).unwrap();
    let jwk = |k: &KeyMaterial, kid: &str| k.public_jwk(kid, Algorithm::ES256).to_string();
    p.set(StatusCode::OK, keys(&[&jwk(&first, "k1")]));

    let mut spec = AppSpec::new("Keys Elsewhere", &[], &["grants:read"]);
    spec.grant_types = vec!["client_credentials".into()];
    spec.jwks_uri = Some(uri.clone());
    let created = onyx_id::admin::create_app(&app.state.db, app.clock_now(), spec)
        .await
        .unwrap();
    let created = serde_json::to_value(created).unwrap();
    assert!(created.get("client_secret").is_none(), "{created}");
    assert_eq!(created["token_endpoint_auth_method"], "private_key_jwt");
    assert_eq!(created["jwks_uri"], uri.as_str());
    let id = created["client_id"].as_str().unwrap().to_string();
    let issuer = app.issuer.as_str().to_string();
    let token = |a: String| {
        let url = app.url("/token");
        async move {
            let res = http()
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    (
                        "client_assertion_type",
                        "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
                    ),
                    ("client_assertion", &a),
                ])
                .send()
                .await
                .unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let now = app.clock_now();
    let (status, v) = token(assertion(&first, "k1", &id, &issuer, "j1", now)).await;
    assert_eq!(status, 200, "{v}");
    let (status, _) = token(assertion(&first, "k1", &id, &issuer, "j2", now)).await;
    assert_eq!(status, 200);
    assert_eq!(p.hits(), 1, "the set is cached");

    // The app rotates: an assertion under the new kid refetches the set once.
    let second = KeyMaterial::generate(Algorithm::ES256).unwrap();
    p.set(
        StatusCode::OK,
        keys(&[&jwk(&first, "k1"), &jwk(&second, "k2")]),
    );
    let (status, v) = token(assertion(&second, "k2", &id, &issuer, "j3", now)).await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(p.hits(), 2);
    // A kid it never published: refused in words, without another fetch.
    let stranger = KeyMaterial::generate(Algorithm::ES256).unwrap();
    let (status, v) = token(assertion(&stranger, "k9", &id, &issuer, "j4", now)).await;
    assert_eq!(
        (status, v["error"].as_str()),
        (401, Some("invalid_client")),
        "{v}"
    );
    assert!(
        v["error_description"]
            .as_str()
            .unwrap()
            .contains("no key of the jwks_uri's set has the kid \"k9\""),
        "{v}"
    );
    assert_eq!(p.hits(), 2);
    // A published kid with a key that is not the one that signed: the signature fails.
    let (status, _) = token(assertion(&stranger, "k2", &id, &issuer, "j5", now)).await;
    assert_eq!(status, 401);

    // Registration refuses what could never be fetched safely.
    for (bad, why) in [
        ("http://keys.example/jwks.json", "https"),
        ("https://user:pw@keys.example/jwks.json", "credentials"),
        ("not a url", "not a URL"),
    ] {
        let mut spec = AppSpec::new("Bad Keys", &[], &["grants:read"]);
        spec.grant_types = vec!["client_credentials".into()];
        spec.jwks_uri = Some(bad.into());
        let err = onyx_id::admin::create_app(&app.state.db, app.clock_now(), spec)
            .await
            .err()
            .unwrap_or_else(|| panic!("{bad} was registered"));
        assert!(err.to_string().contains(why), "{bad}: {err}");
    }
}
