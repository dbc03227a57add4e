//! Many instances, tested (issue 17): three `onyx-id serve` processes on one PostgreSQL database,
//! with one issuer and one key encryption key, each with a keys folder of its own (several
//! stateless instances behind one public name: the signing keys and instance secrets are in the
//! database).
//! PostgreSQL only: without `ONYX_TEST_POSTGRES_URL` the test is skipped, and under `CI` it fails
//! (`postgres_runs()`).

use std::process::Stdio;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, Command};

use crate::helpers::*;
use crate::support::cli::one_json_object;

#[tokio::test]
async fn three_instances_on_one_postgres_database_act_as_one() {
    if crate::helpers::postgres_runs() {
        three_instances_act_as_one().await
    }
}

const ISSUER: &str = "https://id.example";

/// The database and key encryption key the processes share; each process gets a keys folder of
/// its own under `folders`.
struct Place {
    database_url: String,
    kek: String,
    folders: tempfile::TempDir,
    pg_drop: Option<(String, String)>,
}

impl Drop for Place {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.pg_drop.take() {
            drop_postgres_database(admin, name);
        }
    }
}

/// An `onyx-id` process with the keys folder `folder` (its own, under the place's).
fn onyx(place: &Place, folder: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_onyx-id"));
    cmd.env("ONYX_DATABASE_URL", &place.database_url)
        .env("ONYX_KEYS_DIR", place.folders.path().join(folder))
        .env("ONYX_KEY_ENCRYPTION_KEY", &place.kek)
        .env("ONYX_ISSUER", ISSUER)
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    cmd
}

async fn cli(place: &Place, args: &[&str], stdin: Option<&str>) -> Value {
    let mut child = onyx(place, "cli")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("running onyx-id");
    {
        let mut input = child.stdin.take().unwrap();
        if let Some(s) = stdin {
            input.write_all(s.as_bytes()).await.unwrap();
        }
    }
    let out = child.wait_with_output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{args:?}: {stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    one_json_object(&stdout)
}

/// One `onyx-id serve` process and its base URL.
struct Instance {
    base: String,
    child: Child,
}

impl Instance {
    /// `path` at this instance; an address under the shared issuer is asked of it too.
    fn url(&self, path: &str) -> String {
        let path = path.strip_prefix(ISSUER).unwrap_or(path);
        format!("{}{path}", self.base)
    }
}

async fn serve(place: &Place, folder: &str) -> Instance {
    // A free port: bound, read and released; the process binds it next.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let child = onyx(place, folder)
        .arg("serve")
        .env("ONYX_BIND", format!("127.0.0.1:{port}"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting onyx-id serve");
    let base = format!("http://127.0.0.1:{port}");
    // Ready when /healthz answers 200 (up to 60 s on a loaded machine).
    let client = http();
    for _ in 0..600 {
        if let Ok(res) = client.get(format!("{base}/healthz")).send().await
            && res.status() == 200
        {
            return Instance { base, child };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("onyx-id serve on {base} did not become ready");
}

/// The browser part at `at`: authorize, log in, approve. Returns the code and PKCE verifier.
async fn sign_in(at: &Instance, client_id: &str, email: &str) -> (String, String) {
    let browser = browser();
    let (verifier, challenge) = pkce();
    let q = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs([
            ("response_type", "code"),
            ("client_id", client_id),
            ("redirect_uri", REDIRECT),
            ("scope", "openid offline_access"),
            ("state", "st"),
            ("nonce", "n"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ])
        .finish();
    let res = browser
        .get(at.url(&format!("/authorize?{q}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    let login = location(res.headers());
    let html = get_text(&browser, at.url(&login)).await;
    let res = browser
        .post(at.url("/login"))
        .form(&[
            ("request_id", hidden_field(&html, "request_id")),
            ("csrf_token", hidden_field(&html, "csrf_token")),
            ("email", email.to_string()),
            ("password", PASSWORD.to_string()),
        ])
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
    let (database_url, admin, name) = fresh_postgres_database().await;
    let place = Place {
        database_url,
        kek: {
            use base64::Engine;
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(onyx_id::crypto::random_bytes::<32>())
        },
        folders: tempfile::tempdir().unwrap(),
        pg_drop: Some((admin, name)),
    };
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
    let (a, b, c) = tokio::join!(serve(&place, "a"), serve(&place, "b"), serve(&place, "c"));

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
