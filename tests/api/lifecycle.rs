//! The token lifecycle: refresh rotation and reuse detection, narrowing, expiry, client
//! credentials, private_key_jwt, introspection for every reason a token stops being active,
//! revocation, several instances on one database, and the purge of expired rows.

use onyx_id::keys::{Algorithm, KeyMaterial, encode_jws};
use serde_json::{Value, json};

use crate::helpers::*;

on_each_backend!(
    plain:
    refresh_tokens_rotate_and_a_reused_one_revokes_the_whole_family,
    a_refresh_may_narrow_the_scopes_but_never_widen_them,
    refresh_tokens_have_an_idle_and_an_absolute_lifetime,
    client_credentials_issue_app_level_scopes_to_confidential_apps_only,
    client_credentials_tokens_issued_at_once_are_all_stored,
    private_key_jwt_authenticates_and_refuses_replays_and_bad_assertions,
    introspection_answers_inactive_for_every_reason_a_token_stops,
    a_withdrawn_consent_stops_its_tokens_at_introspection_userinfo_and_refresh,
    revocation_follows_rfc_7009,
    concurrent_introspections_by_resource_servers_each_get_their_own_answer,
    a_revocation_at_one_instance_is_seen_by_the_next_introspection_at_another,
    the_purge_removes_expired_rows_but_keeps_spent_refresh_tokens_for_reuse_detection,
);

const API: &str = "https://api.travel.example";

/// An app with the code, refresh and client-credentials grants.
struct ResourceServer {
    id: String,
    secret: String,
}

async fn resource_server(app: &TestApp, audience: &str) -> ResourceServer {
    let v = onyx_id::admin::create_resource_server(
        &app.state.db,
        app.clock_now(),
        "Travel API",
        audience,
    )
    .await
    .unwrap();
    ResourceServer {
        id: v.client_id,
        secret: v.client_secret,
    }
}

async fn introspect_at(base: &str, id: &str, secret: &str, token: &str) -> Value {
    let (status, v) = post_form(
        format!("{base}/introspect"),
        id,
        Some(secret),
        &[("token", token)],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert!(v["active"].is_boolean(), "active is a JSON boolean: {v}");
    v
}

async fn revoke(
    app: &TestApp,
    client: &Client,
    token: &str,
    hint: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("token", token)];
    if let Some(h) = hint {
        form.push(("token_type_hint", h));
    }
    http()
        .post(app.url("/revoke"))
        .basic_auth(&client.client_id, client.client_secret.as_deref())
        .form(&form)
        .send()
        .await
        .unwrap()
}

/// A public app with the code grant only.
async fn public_app(app: &TestApp) -> Client {
    let mut p = full_spec(&["openid"]);
    p.public = true;
    p.grant_types = vec!["authorization_code".into()];
    app.create_app_with(p).await
}

/// Signs in with `scope` and exchanges the code; returns the token response.
async fn sign_in(app: &TestApp, client: &Client, email: &str, scope: &str) -> Value {
    let (code, verifier) = authorize_code(app, &client.client_id, email, scope).await;
    let res = exchange(app, client, &code, &verifier).await;
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

async fn refresh_tokens_rotate_and_a_reused_one_revokes_the_whole_family(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app
        .create_app_with(full_spec(&["openid", "offline_access", "profile"]))
        .await;
    app.create_user("ana@example.com", "Ana").await;
    let first = sign_in(
        &app,
        &client,
        "ana@example.com",
        "openid offline_access profile",
    )
    .await;
    let (at1, rt1) = (text(&first, "access_token"), text(&first, "refresh_token"));

    let (status, second) = refresh(&app, &client, &rt1).await;
    assert_eq!(status, 200, "{second}");
    let (at2, rt2) = (
        text(&second, "access_token"),
        text(&second, "refresh_token"),
    );
    assert_ne!(rt1, rt2, "every use rotates");
    assert_eq!(second["scope"], "openid offline_access profile");
    assert_eq!(introspect(&app, &client, &at2).await["active"], true);
    assert_eq!(
        introspect(&app, &client, &rt1).await["active"],
        false,
        "a spent refresh token is inactive"
    );
    assert_eq!(introspect(&app, &client, &rt2).await["active"], true);

    // The old one again: refused, and everything of the family stops.
    let (status, err) = refresh(&app, &client, &rt1).await;
    assert_eq!(status, 400);
    assert_eq!(err["error"], "invalid_grant");
    for t in [&at1, &at2, &rt2] {
        assert_eq!(
            introspect(&app, &client, t).await["active"],
            false,
            "family revoked"
        );
    }
    let (_, err) = refresh(&app, &client, &rt2).await;
    assert_eq!(err["error"], "invalid_grant");
}

async fn a_refresh_may_narrow_the_scopes_but_never_widen_them(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app
        .create_app_with(full_spec(&["openid", "offline_access", "profile", "email"]))
        .await;
    app.create_user("ben@example.com", "Ben").await;
    let first = sign_in(
        &app,
        &client,
        "ben@example.com",
        "openid offline_access profile",
    )
    .await;
    let rt = text(&first, "refresh_token");
    let (status, err) = token(
        &app,
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("scope", "openid email"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"], "invalid_scope");
    assert!(text(&err, "error_description").contains("email"));
    // A refused refresh does not spend the token.
    let (status, narrow) = token(
        &app,
        &client,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &rt),
            ("scope", "openid"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{narrow}");
    assert_eq!(narrow["scope"], "openid");
    assert_eq!(
        introspect(&app, &client, &text(&narrow, "access_token")).await["scope"],
        "openid"
    );
    // The successor keeps the grant's full scope.
    let (_, again) = refresh(&app, &client, &text(&narrow, "refresh_token")).await;
    assert_eq!(again["scope"], "openid offline_access profile");
}

async fn refresh_tokens_have_an_idle_and_an_absolute_lifetime(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut spec = full_spec(&["openid", "offline_access"]);
    spec.lifetimes.refresh_token_idle = Some(100);
    spec.lifetimes.refresh_token_absolute = Some(250);
    spec.lifetimes.access_token = Some(30);
    let client = app.create_app_with(spec).await;
    app.create_user("cai@example.com", "Cai").await;

    let first = sign_in(&app, &client, "cai@example.com", "openid offline_access").await;
    assert_eq!(first["expires_in"], 30, "the app's access token lifetime");
    app.clock.advance(101);
    let (_, err) = refresh(&app, &client, &text(&first, "refresh_token")).await;
    assert_eq!(err["error"], "invalid_grant", "idle too long");

    let mut rt = text(
        &sign_in(&app, &client, "cai@example.com", "openid offline_access").await,
        "refresh_token",
    );
    for _ in 0..2 {
        app.clock.advance(90);
        let (status, v) = refresh(&app, &client, &rt).await;
        assert_eq!(status, 200, "{v}");
        rt = text(&v, "refresh_token");
    }
    app.clock.advance(90);
    let (_, err) = refresh(&app, &client, &rt).await;
    assert_eq!(
        err["error"], "invalid_grant",
        "past the absolute lifetime even when used often"
    );
}

#[tokio::test]
async fn offline_access_needs_the_refresh_grant_and_only_it_brings_a_refresh_token() {
    let app = spawn_app(Backend::Sqlite).await;
    let client = app.create_app(&["openid", "offline_access"]).await;
    let (url, _) = authorize_url(&app, &client.client_id, "openid offline_access", &[]);
    let back = location(http().get(url).send().await.unwrap().headers());
    assert_eq!(query(&back)["error"], "invalid_scope");

    let client = app
        .create_app_with(full_spec(&["openid", "offline_access"]))
        .await;
    app.create_user("dee@example.com", "Dee").await;
    let t = sign_in(&app, &client, "dee@example.com", "openid").await;
    assert!(
        t.get("refresh_token").is_none(),
        "no offline_access, no refresh token"
    );
    let (_, err) = refresh(&app, &client, "made-up").await;
    assert_eq!(err["error"], "invalid_grant");
}

async fn client_credentials_issue_app_level_scopes_to_confidential_apps_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut with_events = full_spec(&["openid", "profile", "grants:read", "events:subscribe"]);
    with_events.consent.capabilities = vec!["advanced_event_subscriptions".into()];
    let client = app.create_app_with(with_events).await;
    // Without the gated capability, events:subscribe is unavailable, and says why.
    let gated = app
        .create_app_with(full_spec(&["openid", "grants:read", "events:subscribe"]))
        .await;
    let (status, err) = token(
        &app,
        &gated,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "events:subscribe"),
        ],
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(err["error"], "invalid_scope");
    let why = err["error_description"].as_str().unwrap_or_default();
    assert!(
        why.contains("events:subscribe") && why.contains("scope_gated"),
        "{why}"
    );
    let (_, v) = token(&app, &gated, &[("grant_type", "client_credentials")]).await;
    assert_eq!(
        v["scope"], "grants:read",
        "by default only what the app may hold"
    );
    let (status, v) = token(
        &app,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "grants:read"),
        ],
    )
    .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["scope"], "grants:read");
    assert!(v.get("refresh_token").is_none() && v.get("id_token").is_none());
    let seen = introspect(&app, &client, &text(&v, "access_token")).await;
    assert_eq!(seen["active"], true);
    assert_eq!(seen["sub"], client.client_id.as_str());
    assert_eq!(seen["client_id"], client.client_id.as_str());
    // Without a scope: every app-level scope the app is approved for.
    let (_, v) = token(&app, &client, &[("grant_type", "client_credentials")]).await;
    assert_eq!(v["scope"], "events:subscribe grants:read");
    // User scopes are never granted this way.
    let (status, err) = token(
        &app,
        &client,
        &[("grant_type", "client_credentials"), ("scope", "profile")],
    )
    .await;
    assert_eq!(
        (status.as_u16(), err["error"].as_str()),
        (400, Some("invalid_scope"))
    );
    let (_, err) = token(
        &app,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("scope", "connectivity:catalogue"),
        ],
    )
    .await;
    assert_eq!(err["error"], "invalid_scope", "not approved for this app");

    let public = public_app(&app).await;
    let (status, err) = post_form(app.url("/token"), "", None, &[]).await;
    assert_eq!(status, 401, "{err}");
    let res = http()
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &public.client_id),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "unauthorized_client"
    );
    let code_only = app.create_app(&["openid", "grants:read"]).await;
    let (_, err) = token(&app, &code_only, &[("grant_type", "client_credentials")]).await;
    assert_eq!(
        err["error"], "unauthorized_client",
        "the grant must be allowed"
    );
}

/// `n` client-credentials requests at once, each on its own task.
fn cc_requests(
    app: &TestApp,
    client: &Client,
    n: usize,
) -> tokio::task::JoinSet<(reqwest::StatusCode, Value)> {
    let mut set = tokio::task::JoinSet::new();
    for _ in 0..n {
        let url = app.url("/token");
        let (id, secret) = (client.client_id.clone(), client.client_secret.clone());
        set.spawn(async move {
            let form = [
                ("grant_type", "client_credentials"),
                ("scope", "grants:read"),
            ];
            post_form(url, &id, secret.as_deref(), &form).await
        });
    }
    set
}

/// Tokens requested together share a commit (one batch statement on PostgreSQL, one inline
/// transaction on SQLite): every one of them is stored and active.
async fn client_credentials_tokens_issued_at_once_are_all_stored(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app
        .create_app_with(full_spec(&["openid", "grants:read"]))
        .await;
    let mut jtis = std::collections::HashSet::new();
    for (status, v) in cc_requests(&app, &client, 40).join_all().await {
        assert_eq!(status, 200, "{v}");
        let seen = introspect(&app, &client, &text(&v, "access_token")).await;
        assert_eq!(seen["active"], true);
        assert_eq!(seen["scope"], "grants:read");
        jtis.insert(text(&seen, "jti"));
    }
    assert_eq!(jtis.len(), 40);
}

/// On SQLite, token batches are written on the runtime's thread when the write lock is free, and
/// queue behind another writer when it is not.
#[tokio::test]
async fn client_credentials_tokens_wait_for_a_sqlite_lock_held_elsewhere() {
    let app = spawn_app(Backend::Sqlite).await;
    let client = app
        .create_app_with(full_spec(&["openid", "grants:read"]))
        .await;
    // Another writer holds the lock: the requests wait for it instead of failing.
    let path = app
        .database_url
        .strip_prefix("sqlite://")
        .expect("a SQLite URL")
        .to_string();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.execute_batch("BEGIN IMMEDIATE").unwrap();
    let mut waiting = cc_requests(&app, &client, 5);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        waiting.try_join_next().is_none(),
        "no token is issued before it is stored"
    );
    other.execute_batch("COMMIT").unwrap();
    for (status, v) in waiting.join_all().await {
        assert_eq!(status, 200, "{v}");
        let seen = introspect(&app, &client, &text(&v, "access_token")).await;
        assert_eq!(seen["active"], true);
    }
}

struct KeyPair {
    kid: String,
    material: KeyMaterial,
}

fn key_pair(kid: &str) -> KeyPair {
    KeyPair {
        kid: kid.into(),
        material: KeyMaterial::generate(Algorithm::ES256).unwrap(),
    }
}

fn assertion(
    key: &KeyPair,
    client_id: &str,
    aud: impl Into<Value>,
    exp_in: i64,
    jti: &str,
    now: i64,
) -> String {
    let aud: Value = aud.into();
    let claims = json!({ "iss": client_id, "sub": client_id, "aud": aud, "exp": now + exp_in, "iat": now, "jti": jti });
    encode_jws(&key.kid, Algorithm::ES256, "JWT", &claims, &key.material).unwrap()
}

async fn private_key_jwt_authenticates_and_refuses_replays_and_bad_assertions(backend: Backend) {
    let app = spawn_app(backend).await;
    let key = key_pair("k1");
    let jwks = json!({ "keys": [key.material.public_jwk(&key.kid, Algorithm::ES256)] }).to_string();
    let mut spec = full_spec(&["grants:read"]);
    spec.grant_types = vec!["client_credentials".into()];
    spec.redirect_uris = vec![];
    spec.jwks = Some(jwks);
    let v = onyx_id::admin::create_app(&app.state.db, app.clock_now(), spec)
        .await
        .unwrap();
    // As the CLI prints it: no secret at all.
    let v = serde_json::to_value(v).unwrap();
    assert!(v.get("client_secret").is_none());
    assert_eq!(v["token_endpoint_auth_method"], "private_key_jwt");
    let id = text(&v, "client_id");
    let now = app.clock_now();
    let call = |a: String| {
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
    let token_url = app.url("/token");
    let good = assertion(&key, &id, app.issuer.as_str(), 60, "jti-1", now);
    let (status, v) = call(good.clone()).await;
    assert_eq!(status, 200, "{v}");
    let (status, err) = call(good).await;
    assert_eq!(
        (status, err["error"].as_str()),
        (401, Some("invalid_client")),
        "a replayed jti"
    );
    assert!(text(&err, "error_description").contains("jti"));
    // An array that contains the issuer is accepted too.
    assert_eq!(
        call(assertion(
            &key,
            &id,
            json!(["https://elsewhere.example", app.issuer]),
            60,
            "jti-2",
            now
        ))
        .await
        .0,
        200
    );
    for (why, a) in [
        (
            "another audience",
            assertion(&key, &id, "https://elsewhere.example", 60, "jti-3", now),
        ),
        // Endpoint URLs are not the issuer identifier (RFC 7523bis audience injection).
        (
            "the token endpoint as audience",
            assertion(&key, &id, token_url.as_str(), 60, "jti-7", now),
        ),
        (
            "the introspection endpoint as audience",
            assertion(&key, &id, app.url("/introspect"), 60, "jti-8", now),
        ),
        (
            "an array without the issuer",
            assertion(
                &key,
                &id,
                json!([token_url, "https://elsewhere.example"]),
                60,
                "jti-9",
                now,
            ),
        ),
        (
            "expired",
            assertion(&key, &id, app.issuer.as_str(), -120, "jti-4", now),
        ),
        (
            "lives too long",
            assertion(&key, &id, app.issuer.as_str(), 3600, "jti-5", now),
        ),
        (
            "signed by another key",
            assertion(&key_pair("k1"), &id, app.issuer.as_str(), 60, "jti-6", now),
        ),
        ("not a JWT", "abc".to_string()),
    ] {
        let (status, err) = call(a).await;
        assert_eq!(
            (status, err["error"].as_str()),
            (401, Some("invalid_client")),
            "{why}: {err}"
        );
    }
    // Such an app has no secret to present.
    let (status, _) = post_form(
        app.url("/token"),
        &id,
        Some("guess"),
        &[("grant_type", "client_credentials")],
    )
    .await;
    assert_eq!(status, 401);
}

async fn introspection_answers_inactive_for_every_reason_a_token_stops(backend: Backend) {
    let app = spawn_app(backend).await;
    let rs = resource_server(&app, API).await;
    let client = app
        .create_app_with(full_spec(&["openid", "grants:read"]))
        .await;
    let other = app
        .create_app_with(full_spec(&["openid", "grants:read"]))
        .await;
    let cc = |resource: Option<&'static str>| {
        let (app, client) = (&app, &client);
        async move {
            let mut form = vec![("grant_type", "client_credentials")];
            if let Some(r) = resource {
                form.push(("resource", r));
            }
            text(&token(app, client, &form).await.1, "access_token")
        }
    };
    let for_api = cc(Some(API)).await;
    let active = introspect_at(&app.address, &rs.id, &rs.secret, &for_api).await;
    assert_eq!(active["active"], true);
    for k in [
        "scope",
        "client_id",
        "sub",
        "aud",
        "exp",
        "iat",
        "token_type",
        "jti",
        "iss",
    ] {
        assert!(active.get(k).is_some(), "{k} in {active}");
    }
    assert_eq!(active["aud"], API);
    assert_eq!(active["token_type"], "Bearer");
    // Who may see what: the resource server its audience, an app its own tokens.
    let default_aud = cc(None).await;
    assert_eq!(
        introspect_at(&app.address, &rs.id, &rs.secret, &default_aud).await["active"],
        false
    );
    assert_eq!(introspect(&app, &other, &for_api).await["active"], false);
    assert_eq!(introspect(&app, &client, &for_api).await["active"], true);
    // Not genuine.
    let mut forged = for_api.clone();
    let last = forged.pop();
    forged.push(if last == Some('A') { 'B' } else { 'A' });
    assert_eq!(introspect(&app, &client, &forged).await["active"], false);
    // Revoked.
    let t = cc(None).await;
    assert_eq!(revoke(&app, &client, &t, None).await.status(), 200);
    assert_eq!(introspect(&app, &client, &t).await["active"], false);
    // The app loses access, then gets it back: at once, both ways.
    let t = cc(Some(API)).await;
    let set = |state: &'static str, reason: Option<&'static str>| {
        let app = &app;
        let client_id = client.client_id.clone();
        async move {
            let target = onyx_id::partner::apps::any_app(&app.state.db, &client_id)
                .await
                .unwrap();
            onyx_id::partner::access_change::set_access(
                &app.state.db,
                app.clock_now(),
                "test",
                &target,
                onyx_id::partner::access_change::AccessChange::parse(
                    state,
                    reason,
                    None,
                    Vec::new(),
                    None,
                )
                .unwrap(),
            )
            .await
            .unwrap();
        }
    };
    set("suspended", Some("abuse_review")).await;
    assert_eq!(
        introspect_at(&app.address, &rs.id, &rs.secret, &t).await["active"],
        false
    );
    set("active", None).await;
    assert_eq!(
        introspect_at(&app.address, &rs.id, &rs.secret, &t).await["active"],
        true
    );
    // Expired.
    app.clock.advance(3601);
    assert_eq!(
        introspect_at(&app.address, &rs.id, &rs.secret, &t).await["active"],
        false
    );
    // The caller must authenticate.
    let (status, err) = post_form(
        app.url("/introspect"),
        &rs.id,
        Some("wrong"),
        &[("token", &t)],
    )
    .await;
    assert_eq!(
        (status.as_u16(), err["error"].as_str()),
        (401, Some("invalid_client"))
    );
}

async fn a_withdrawn_consent_stops_its_tokens_at_introspection_userinfo_and_refresh(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let client = app
        .create_app_with(full_spec(&["openid", "offline_access"]))
        .await;
    app.create_user("eve@example.com", "Eve").await;
    let t = sign_in(&app, &client, "eve@example.com", "openid offline_access").await;
    sqlx::query("UPDATE grants SET status = 'revoked'")
        .execute(app.sql().await)
        .await
        .unwrap();
    assert_eq!(
        introspect(&app, &client, &text(&t, "access_token")).await["active"],
        false
    );
    assert_eq!(
        introspect(&app, &client, &text(&t, "refresh_token")).await["active"],
        false
    );
    let res = http()
        .get(app.url("/userinfo"))
        .bearer_auth(text(&t, "access_token"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let (_, err) = refresh(&app, &client, &text(&t, "refresh_token")).await;
    assert_eq!(err["error"], "invalid_grant");
}

async fn revocation_follows_rfc_7009(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app
        .create_app_with(full_spec(&["openid", "offline_access"]))
        .await;
    let other = app
        .create_app_with(full_spec(&["openid", "offline_access"]))
        .await;
    app.create_user("fay@example.com", "Fay").await;
    let t = sign_in(&app, &client, "fay@example.com", "openid offline_access").await;
    let (at, rt) = (text(&t, "access_token"), text(&t, "refresh_token"));

    // Unknown tokens, and already revoked ones: exactly 200.
    assert_eq!(
        revoke(&app, &client, "no-such-token", None).await.status(),
        200
    );
    // Another app may not revoke it.
    let res = revoke(&app, &other, &rt, Some("refresh_token")).await;
    assert_eq!(res.status(), 400);
    assert_eq!(introspect(&app, &client, &rt).await["active"], true);
    // Revoking the refresh token revokes its access tokens too.
    let res = revoke(&app, &client, &rt, Some("refresh_token")).await;
    assert_eq!(res.status(), 200);
    assert_eq!(introspect(&app, &client, &at).await["active"], false);
    assert_eq!(introspect(&app, &client, &rt).await["active"], false);
    assert_eq!(
        revoke(&app, &client, &rt, None).await.status(),
        200,
        "again: still 200"
    );
    let (_, err) = refresh(&app, &client, &rt).await;
    assert_eq!(err["error"], "invalid_grant");

    // Revoking an access token (with a wrong hint) revokes only it.
    let t = sign_in(&app, &client, "fay@example.com", "openid offline_access").await;
    assert_eq!(
        revoke(
            &app,
            &client,
            &text(&t, "access_token"),
            Some("refresh_token")
        )
        .await
        .status(),
        200
    );
    assert_eq!(
        introspect(&app, &client, &text(&t, "access_token")).await["active"],
        false
    );
    assert_eq!(
        introspect(&app, &client, &text(&t, "refresh_token")).await["active"],
        true
    );
    // Public apps revoke with their client_id.
    let public = public_app(&app).await;
    let res = http()
        .post(app.url("/revoke"))
        .form(&[("token", "x"), ("client_id", &public.client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
}

/// Resource servers' introspections that arrive together (on PostgreSQL they share one
/// statement) each get their own answer: active, revoked, unknown, someone else's audience, or a
/// failed authentication.
async fn concurrent_introspections_by_resource_servers_each_get_their_own_answer(backend: Backend) {
    let app = spawn_app(backend).await;
    let travel = resource_server(&app, API).await;
    let other = resource_server(&app, "https://other.example").await;
    let client = app
        .create_app_with(full_spec(&["openid", "grants:read"]))
        .await;
    let form = [("grant_type", "client_credentials"), ("resource", API)];
    let mut live = Vec::new();
    for _ in 0..6 {
        live.push(text(&token(&app, &client, &form).await.1, "access_token"));
    }
    let revoked = text(&token(&app, &client, &form).await.1, "access_token");
    assert_eq!(revoke(&app, &client, &revoked, None).await.status(), 200);
    // (caller id, secret, token, expected status, expected `active`)
    let mut cases: Vec<(String, String, String, u16, bool)> = Vec::new();
    for at in &live {
        cases.push((
            travel.id.clone(),
            travel.secret.clone(),
            at.clone(),
            200,
            true,
        ));
        cases.push((
            other.id.clone(),
            other.secret.clone(),
            at.clone(),
            200,
            false,
        ));
    }
    cases.push((
        travel.id.clone(),
        travel.secret.clone(),
        revoked.clone(),
        200,
        false,
    ));
    cases.push((
        travel.id.clone(),
        travel.secret.clone(),
        "garbage".into(),
        200,
        false,
    ));
    cases.push((
        travel.id.clone(),
        "wrong".into(),
        live[0].clone(),
        401,
        false,
    ));
    cases.push((
        "rs_unknown".into(),
        travel.secret.clone(),
        live[0].clone(),
        401,
        false,
    ));
    let mut set = tokio::task::JoinSet::new();
    for (i, (id, secret, at, _, _)) in cases.iter().cloned().enumerate() {
        let url = app.url("/introspect");
        set.spawn(async move {
            let answer = post_form(url, &id, Some(&secret), &[("token", &at)]).await;
            (i, answer)
        });
    }
    for (i, (status, v)) in set.join_all().await {
        let (_, _, _, want_status, want_active) = &cases[i];
        assert_eq!(status, *want_status, "case {i}: {v}");
        if status == 200 {
            assert_eq!(v["active"], *want_active, "case {i}: {v}");
        } else {
            assert_eq!(v["error"], "invalid_client", "case {i}: {v}");
        }
    }
    // Lookups that wait together go out as one statement on PostgreSQL, and each still
    // gets its own row.
    if let Some(before) = app.state.db.pipelined_lookups() {
        use onyx_id::store::tokens::{Lookup, resource_server_and_status};
        let db = &app.state.db;
        let (a, b, c) = (
            Lookup::of(&live[0]),
            Lookup::of(&revoked),
            Lookup::of(&live[1]),
        );
        let (mine, revoked_one, unknown) = tokio::join!(
            resource_server_and_status(db, &travel.id, &a),
            resource_server_and_status(db, &other.id, &b),
            resource_server_and_status(db, "rs_unknown", &c),
        );
        assert_eq!(
            db.pipelined_lookups().unwrap_or_default() - before,
            1,
            "three lookups, one statement"
        );
        let (rs, status) = mine.unwrap().expect("travel exists");
        assert_eq!(rs.client_id, travel.id);
        let status = status.expect("live[0] is stored");
        assert!(status.token.revoked_at.is_none());
        let (rs, status) = revoked_one.unwrap().expect("other exists");
        assert_eq!(rs.client_id, other.id);
        assert!(status.expect("stored").token.revoked_at.is_some());
        assert!(unknown.unwrap().is_none(), "no such resource server");
    }
}

async fn a_revocation_at_one_instance_is_seen_by_the_next_introspection_at_another(
    backend: Backend,
) {
    let a = spawn_app(backend).await;
    let b = a.second_instance().await;
    let rs = resource_server(&a, API).await;
    let client = a
        .create_app_with(full_spec(&["openid", "offline_access", "grants:read"]))
        .await;
    a.create_user("gil@example.com", "Gil").await;
    for _ in 0..3 {
        let (_, t) = token(
            &a,
            &client,
            &[("grant_type", "client_credentials"), ("resource", API)],
        )
        .await;
        let at = text(&t, "access_token");
        assert_eq!(
            introspect_at(&b, &rs.id, &rs.secret, &at).await["active"],
            true
        );
        assert_eq!(revoke(&a, &client, &at, None).await.status(), 200);
        assert_eq!(
            introspect_at(&b, &rs.id, &rs.secret, &at).await["active"],
            false,
            "seen at B at once"
        );
    }
    // On PostgreSQL these lookups run on the pipelined connections, not from any cache.
    assert_eq!(
        a.state.db.pipelined_lookups().is_some(),
        matches!(backend, Backend::Postgres)
    );
    if let Some(before) = a.state.db.pipelined_lookups() {
        let (_, t) = token(&a, &client, &[("grant_type", "client_credentials")]).await;
        assert_eq!(
            introspect(&a, &client, &text(&t, "access_token")).await["active"],
            true
        );
        assert!(
            a.state.db.pipelined_lookups().unwrap_or_default() >= before + 2,
            "app and token lookups"
        );
    }
    // A refresh family revoked at B is dead at A.
    let t = sign_in(&a, &client, "gil@example.com", "openid offline_access").await;
    let (status, _) = post_form(
        format!("{b}/revoke"),
        &client.client_id,
        client.client_secret.as_deref(),
        &[("token", &text(&t, "refresh_token"))],
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        introspect(&a, &client, &text(&t, "access_token")).await["active"],
        false
    );
}

#[tokio::test]
async fn resource_indicators_must_name_a_registered_resource_server() {
    let app = spawn_app(Backend::Sqlite).await;
    resource_server(&app, API).await;
    let client = app
        .create_app_with(full_spec(&["openid", "grants:read"]))
        .await;
    let (status, err) = token(
        &app,
        &client,
        &[
            ("grant_type", "client_credentials"),
            ("resource", "https://unknown.example"),
        ],
    )
    .await;
    assert_eq!(
        (status.as_u16(), err["error"].as_str()),
        (400, Some("invalid_target"))
    );
    let (url, _) = authorize_url(
        &app,
        &client.client_id,
        "openid",
        &[("resource", "https://unknown.example")],
    );
    let back = location(http().get(url).send().await.unwrap().headers());
    assert_eq!(query(&back)["error"], "invalid_target");
    // A code requested for the API gives tokens for the API.
    app.create_user("hu@example.com", "Hu").await;
    let browser = browser();
    let (url, verifier) = authorize_url(&app, &client.client_id, "openid", &[("resource", API)]);
    let login = location(browser.get(url).send().await.unwrap().headers());
    let consent = log_in(&app, &browser, &login, "hu@example.com").await;
    let code = query(&answer_consent(&app, &browser, &consent, "approve").await)["code"].clone();
    let t: Value = exchange(&app, &client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        introspect(&app, &client, &text(&t, "access_token")).await["aud"],
        API
    );
}

#[tokio::test]
async fn bad_input_to_introspection_and_revocation_gets_json_errors() {
    let app = spawn_app(Backend::Sqlite).await;
    let client = app.create_app_with(full_spec(&["openid"])).await;
    let secret = client.client_secret.clone().unwrap();
    for path in ["/introspect", "/revoke"] {
        let cases: Vec<(&str, reqwest::RequestBuilder)> = vec![
            (
                "no credentials",
                http().post(app.url(path)).form(&[("token", "x")]),
            ),
            (
                "no token",
                http()
                    .post(app.url(path))
                    .basic_auth(&client.client_id, Some(&secret))
                    .form(&[("a", "b")]),
            ),
            (
                "json",
                http()
                    .post(app.url(path))
                    .basic_auth(&client.client_id, Some(&secret))
                    .header("content-type", "application/json")
                    .body("{\"token\":\"x\"}"),
            ),
            (
                "invalid utf-8",
                http()
                    .post(app.url(path))
                    .basic_auth(&client.client_id, Some(&secret))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body(b"token=%FF%FE".to_vec()),
            ),
            (
                "huge token",
                http()
                    .post(app.url(path))
                    .basic_auth(&client.client_id, Some(&secret))
                    .form(&[("token", "t".repeat(10_000))]),
            ),
            (
                "duplicate token",
                http()
                    .post(app.url(path))
                    .basic_auth(&client.client_id, Some(&secret))
                    .header("content-type", "application/x-www-form-urlencoded")
                    .body("token=a&token=b"),
            ),
        ];
        for (what, req) in cases {
            let res = req.send().await.unwrap();
            let status = res.status();
            assert!(status.is_client_error(), "{path} {what}: {status}");
            let v: Value = res
                .json()
                .await
                .unwrap_or_else(|e| panic!("{path} {what}: not JSON: {e}"));
            assert!(v["error"].is_string(), "{path} {what}: {v}");
        }
    }
    // A public app may not introspect.
    let public = public_app(&app).await;
    let res = http()
        .post(app.url("/introspect"))
        .form(&[("token", "x"), ("client_id", &public.client_id)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(
        http()
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

async fn the_purge_removes_expired_rows_but_keeps_spent_refresh_tokens_for_reuse_detection(
    backend: Backend,
) {
    let app = spawn_app(backend).await;
    let client = app
        .create_app_with(full_spec(&["openid", "offline_access", "grants:read"]))
        .await;
    app.create_user("ida@example.com", "Ida").await;
    let t = sign_in(&app, &client, "ida@example.com", "openid offline_access").await;
    let rt1 = text(&t, "refresh_token");
    let (_, t2) = refresh(&app, &client, &rt1).await;
    token(&app, &client, &[("grant_type", "client_credentials")]).await;
    let pool = app.sql().await.clone();
    let count = |table: &'static str| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM {table}"
            )))
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(count("access_tokens").await, 3);
    app.clock.advance(2 * 3600);
    let removed = onyx_id::store::purge::purge_expired(&app.state.db, app.clock_now())
        .await
        .unwrap();
    assert!(
        removed >= 4,
        "access tokens, the code and the session: {removed}"
    );
    assert_eq!(count("access_tokens").await, 0);
    assert_eq!(count("auth_codes").await, 0);
    assert_eq!(
        count("refresh_tokens").await,
        2,
        "spent and live refresh tokens stay"
    );
    // Reuse is still recognised after the purge.
    let (_, err) = refresh(&app, &client, &rt1).await;
    assert_eq!(err["error"], "invalid_grant");
    let (_, err) = refresh(&app, &client, &text(&t2, "refresh_token")).await;
    assert_eq!(
        err["error"], "invalid_grant",
        "the family was revoked by the reuse"
    );
}

#[tokio::test]
async fn discovery_advertises_the_lifecycle_endpoints() {
    let app = spawn_app(Backend::Sqlite).await;
    let d: Value = get_json(&http(), app.url("/.well-known/openid-configuration")).await;
    assert_eq!(d["introspection_endpoint"], app.url("/introspect"));
    assert_eq!(d["revocation_endpoint"], app.url("/revoke"));
    for g in ["authorization_code", "refresh_token", "client_credentials"] {
        assert!(
            d["grant_types_supported"]
                .as_array()
                .unwrap()
                .iter()
                .any(|v| v == g),
            "{g}"
        );
    }
    assert!(
        d["token_endpoint_auth_methods_supported"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v == "private_key_jwt")
    );
    let rfc8414: Value =
        get_json(&http(), app.url("/.well-known/oauth-authorization-server")).await;
    assert_eq!(rfc8414, d);
}
