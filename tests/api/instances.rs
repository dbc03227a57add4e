//! Many instances, tested (issue 17): three `onyx-id serve` processes on one PostgreSQL database,
//! with one issuer and one key encryption key (`ONYX_KEY_ENCRYPTION_KEY`), each with a keys folder
//! of its own, as the signing keys and instance secrets are in the database (several stateless
//! instances behind one public name):
//! a sign-in spread over them, a revocation, a key rotation, the login limits, a suspension,
//! webhook deliveries exactly once, and one of them killed under load.
//! PostgreSQL only: without `ONYX_TEST_POSTGRES_URL` the test is skipped, and under `CI` it fails
//! (`postgres_runs()`).

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::processes::{Instance, Place};
use crate::support::receiver::Receiver;

#[tokio::test]
async fn three_instances_on_one_postgres_database_act_as_one() {
    if crate::helpers::postgres_runs() {
        three_instances_act_as_one().await
    }
}

const ISSUER: &str = "https://id.example";

/// Failed sign-ins allowed per account and address, across the three instances.
const LOGIN_LIMIT: usize = 3;

/// How many test events the exactly-once check sends.
const EVENTS: usize = 12;

async fn cli(place: &Place, args: &[&str], stdin: Option<&str>) -> Value {
    place.cli(args, stdin).await
}

/// The browser part at `at`: authorize, log in, approve. Returns the code and PKCE verifier.
async fn sign_in(at: &Instance, client_id: &str, email: &str) -> (String, String) {
    let browser = browser();
    let (url, verifier) = authorize_url_at(at, client_id, "openid offline_access");
    let res = browser.get(url).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let login = location(res.headers());
    let html = get_text(&browser, at.url(&login)).await;
    let res = browser
        .post(at.url("/login"))
        .form(&login_form(&html, email, PASSWORD))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "login should redirect");
    let mut next = location(res.headers());
    if next.starts_with("/consent") {
        let html = get_text(&browser, at.url(&next)).await;
        let res = browser
            .post(at.url("/consent"))
            .form(&[
                ("request_id", hidden_field(&html, "request_id")),
                ("csrf_token", hidden_field(&html, "csrf_token")),
                ("shown", hidden_field(&html, "shown")),
                ("decision", "approve".to_string()),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303);
        next = location(res.headers());
    }
    (query(&next)["code"].clone(), verifier)
}

async fn post(
    at: &Instance,
    client: &Client,
    path: &str,
    form: &[(&str, &str)],
) -> (StatusCode, Value) {
    post_form(
        at.url(path),
        &client.client_id,
        client.client_secret.as_deref(),
        form,
    )
    .await
}

async fn active_at(at: &Instance, client: &Client, token: &str) -> bool {
    let (status, v) = post(at, client, "/introspect", &[("token", token)]).await;
    assert_eq!(status, 200, "{v}");
    v["active"].as_bool().expect("active is a boolean")
}

/// The `kid` in a JWT's header.
fn kid_of(jwt: &str) -> String {
    use base64::Engine;
    let head = jwt.split('.').next().unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(head)
        .unwrap();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    text(&v, "kid")
}

/// The JWKS an instance publishes, found through its discovery document.
async fn jwks_of(at: &Instance) -> Value {
    let discovery = get_json(&http(), at.url("/.well-known/openid-configuration")).await;
    let jwks_uri = text(&discovery, "jwks_uri");
    // The published address is the shared issuer's; the path is asked of this instance.
    let path = jwks_uri
        .strip_prefix(ISSUER)
        .expect("jwks_uri under the issuer");
    get_json(&http(), at.url(path)).await
}

async fn three_instances_act_as_one() {
    let place = Place::new(Backend::Postgres)
        .await
        .env("ONYX_ISSUER", ISSUER)
        .env(
            "ONYX_LOGIN_MAX_FAILURES_PER_ACCOUNT_ADDRESS",
            &LOGIN_LIMIT.to_string(),
        )
        .env("ONYX_WEBHOOK_ALLOW_PRIVATE", "1")
        .env("ONYX_WEBHOOK_INSECURE_HTTP", "1")
        .env("ONYX_KEY_ENCRYPTION_KEY", &{
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(onyx_id::crypto::random_bytes::<32>())
        });
    // A keys folder per instance: nothing in them is shared.
    let folders: Vec<tempfile::TempDir> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    cli(
        &place,
        &[
            "users",
            "create",
            "--email",
            "ada@example.com",
            "--name",
            "Ada",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    cli(
        &place,
        &[
            "users",
            "create",
            "--email",
            "fi@example.com",
            "--name",
            "Fi",
            "--password-stdin",
        ],
        Some(&format!("{PASSWORD}\n")),
    )
    .await;
    let created = cli(
        &place,
        &[
            "apps",
            "create",
            "--name",
            "Travel Buddy",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "openid",
            "--scope",
            "offline_access",
            "--grant-type",
            "authorization_code",
            "--grant-type",
            "refresh_token",
        ],
        None,
    )
    .await;
    let client = Client::from_created(&created);
    let (a, b, c) = tokio::join!(
        place.serve_with_keys_folder(folders[0].path()),
        place.serve_with_keys_folder(folders[1].path()),
        place.serve_with_keys_folder(folders[2].path())
    );

    // A sign-in at A, the code exchanged at B, the refresh token used at C.
    let (code, verifier) = sign_in(&a, &client.client_id, "ada@example.com").await;
    let (status, tokens) = post(
        &b,
        &client,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", &verifier),
        ],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let (status, refreshed) = post(
        &c,
        &client,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &text(&tokens, "refresh_token")),
        ],
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    let access = text(&refreshed, "access_token");
    assert!(active_at(&a, &client, &access).await);

    // Revoked at B: inactive at A and C on the very next request.
    let (status, v) = post(&b, &client, "/revoke", &[("token", &access)]).await;
    assert_eq!(status, 200, "{v}");
    assert!(!active_at(&a, &client, &access).await, "inactive at A");
    assert!(!active_at(&c, &client, &access).await, "inactive at C");

    // `keys rotate --now` from the CLI: every instance publishes the same keys, with the new
    // kid, and signs with it.
    let before = jwks_of(&a).await;
    cli(&place, &["keys", "rotate", "--now"], None).await;
    let after_a = jwks_of(&a).await;
    assert_ne!(after_a, before, "a new key is published");
    assert_eq!(jwks_of(&b).await, after_a, "B publishes A's keys");
    assert_eq!(jwks_of(&c).await, after_a, "C publishes A's keys");
    let old: Vec<&Value> = before["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| &k["kid"])
        .collect();
    let new_kids: Vec<String> = after_a["keys"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|k| !old.contains(&&k["kid"]))
        .map(|k| text(k, "kid"))
        .collect();
    assert!(!new_kids.is_empty(), "{after_a}");
    for at in [&a, &b, &c] {
        let (code, verifier) = sign_in(at, &client.client_id, "ada@example.com").await;
        let (status, t) = post(
            at,
            &client,
            "/token",
            &[
                ("grant_type", "authorization_code"),
                ("code", &code),
                ("redirect_uri", REDIRECT),
                ("code_verifier", &verifier),
            ],
        )
        .await;
        assert_eq!(status, 200, "{t}");
        let kid = kid_of(&text(&t, "id_token"));
        assert!(
            new_kids.contains(&kid),
            "{} signs with a new key: {kid}",
            at.base
        );
    }

    login_limits_count_across_instances(&[&a, &b, &c], &client).await;
    a_suspension_at_one_instance_is_refused_at_the_others(&place, &a, &b, &c).await;
    webhook_events_are_delivered_exactly_once(&place, &client).await;

    // One instance killed mid-load: no request to the other two fails.
    let (status, cc) = post(
        &a,
        &client,
        "/token",
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &text(&refreshed, "refresh_token")),
        ],
    )
    .await;
    assert_eq!(status, 200, "{cc}");
    let live = text(&cc, "access_token");
    let mut c = c;
    let mut load = tokio::task::JoinSet::new();
    let survivors = [a.base.clone(), b.base.clone()];
    for i in 0..300usize {
        let url = format!("{}/introspect", survivors[i % 2]);
        let (id, secret, token) = (
            client.client_id.clone(),
            client.client_secret.clone(),
            live.clone(),
        );
        load.spawn(async move {
            let (status, v) =
                post_form(url.clone(), &id, secret.as_deref(), &[("token", &token)]).await;
            (url, status, v)
        });
        if i == 100 {
            c.child.start_kill().expect("SIGKILL");
        }
        if i % 10 == 0 {
            tokio::task::yield_now().await;
        }
    }
    let results = load.join_all().await;
    c.child.wait().await.unwrap();
    for (url, status, v) in &results {
        assert_eq!(*status, 200, "{url}: {v}");
        assert_eq!(v["active"], true, "{url}: {v}");
    }
    drop((a, b));
}

/// Wrong passwords for Fi at A, B and C, one each: the limit is reached across the three, so
/// the next attempt is refused at any of them, with the right password too.
async fn login_limits_count_across_instances(all: &[&Instance; 3], client: &Client) {
    let email = "fi@example.com";
    let attempt = async |at: &Instance, password: &str| {
        let browser = browser();
        let (url, _) = authorize_url_at(at, &client.client_id, "openid");
        let login = location(browser.get(url).send().await.unwrap().headers());
        let html = get_text(&browser, at.url(&login)).await;
        let res = browser
            .post(at.url("/login"))
            .form(&login_form(&html, email, password))
            .send()
            .await
            .unwrap();
        res.status()
    };
    for i in 0..LOGIN_LIMIT {
        let at = all[i % 3];
        assert_eq!(
            attempt(at, "not the password").await,
            StatusCode::OK,
            "wrong password #{i} at {}: the form again",
            at.base
        );
    }
    for at in all {
        assert_eq!(
            attempt(at, PASSWORD).await,
            StatusCode::TOO_MANY_REQUESTS,
            "{} counts the failures made at the others",
            at.base
        );
    }
}

/// An authorization request for `scope` at `at`; the URL and the PKCE verifier.
fn authorize_url_at(at: &Instance, client_id: &str, scope: &str) -> (String, String) {
    let (verifier, challenge) = pkce();
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("scope", scope),
            ("state", "st"),
            ("nonce", "n"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    (at.url(&format!("/authorize?{q}")), verifier)
}

/// An operator suspends an app through the API at A: at B and C its next token request is
/// refused, and the token it had is inactive.
async fn a_suspension_at_one_instance_is_refused_at_the_others(
    place: &Place,
    a: &Instance,
    b: &Instance,
    c: &Instance,
) {
    let op = cli(
        place,
        &["operators", "create", "--email", "ada@example.com"],
        None,
    )
    .await;
    let op_key = text(&op, "api_key");
    let created = cli(
        place,
        &[
            "apps",
            "create",
            "--name",
            "Machine",
            "--redirect-uri",
            REDIRECT,
            "--scope",
            "grants:read",
            "--grant-type",
            "client_credentials",
        ],
        None,
    )
    .await;
    let machine = Client::from_created(&created);
    let cc = [
        ("grant_type", "client_credentials"),
        ("scope", "grants:read"),
    ];
    let (status, before) = post(b, &machine, "/token", &cc).await;
    assert_eq!(status, 200, "{before}");
    let held = text(&before, "access_token");
    assert!(active_at(c, &machine, &held).await);

    let res = http()
        .put(a.url(&format!(
            "/api/v1/operator/apps/{}/access",
            machine.client_id
        )))
        .bearer_auth(&op_key)
        .json(&json!({"state": "suspended", "reason": "abuse_review", "note": "checking"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    for at in [b, c] {
        let (status, v) = post(at, &machine, "/token", &cc).await;
        assert!(status.is_client_error(), "{}: {status} {v}", at.base);
        assert_eq!(v["access_state"], "suspended", "{}: {v}", at.base);
        let (status, v) = post(at, &machine, "/introspect", &[("token", &held)]).await;
        assert!(
            status.is_client_error() || v["active"] == false,
            "{}: the held token is not active: {status} {v}",
            at.base
        );
    }
}

/// Test events sent while three workers share the outbox: each arrives once, not once per
/// instance.
async fn webhook_events_are_delivered_exactly_once(place: &Place, client: &Client) {
    let receiver = Receiver::start().await;
    let added = cli(
        place,
        &[
            "apps",
            "webhooks",
            "add",
            "--app",
            &client.client_id,
            "--url",
            &receiver.url("/hook"),
        ],
        None,
    )
    .await;
    receiver.trust(&text(&added, "secret"));
    let endpoint = text(&added, "endpoint_id");
    let mut sent = Vec::new();
    for _ in 0..EVENTS {
        let v = cli(
            place,
            &[
                "apps",
                "webhooks",
                "test",
                "--app",
                &client.client_id,
                "--endpoint",
                &endpoint,
            ],
            None,
        )
        .await;
        sent.push(text(&v, "event_id"));
    }
    let last = receiver.next_of("webhook.test", EVENTS - 1).await;
    assert!(last.verified);
    // Long enough for a second claim of any of them to arrive.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut times: BTreeMap<String, usize> = BTreeMap::new();
    for d in receiver.got() {
        *times.entry(d.id).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = sent.into_iter().map(|id| (id, 1)).collect();
    assert_eq!(times, expected, "every event once, none twice");
}
