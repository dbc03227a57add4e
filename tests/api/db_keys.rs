//! Signing keys in the database (issue 17, "Keys in the database"): the keys folder of a
//! deployment from before is imported on first start with its kids; the keys are sealed at rest
//! with the key encryption key (`ONYX_KEY_ENCRYPTION_KEY`); a rotation made by the CLI is seen
//! by the running server on its next request; a wrong or malformed key encryption key stops
//! start-up with a clear line.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use onyx_id::keys::{Algorithm, KeyMaterial};
use serde_json::{Value, json};

use crate::helpers::*;
use crate::support::cli::{assert_serve_refuses, one_json_object, onyx};

on_each_backend!(
    the_keys_folder_is_imported_with_its_kids_and_its_tokens_still_verify,
    a_wrong_key_encryption_key_stops_start_up_with_a_clear_line,
    no_private_key_or_instance_secret_is_stored_in_clear,
    a_malformed_key_encryption_key_is_refused,
);

on_each_backend!(
    plain:
    a_rotation_by_the_cli_is_seen_by_the_running_server_on_its_next_request,
);

async fn jwks_kids(app: &TestApp) -> Vec<String> {
    let jwks = get_json(&http(), app.url("/jwks.json")).await;
    jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| text(k, "kid"))
        .collect()
}

fn kid_of(jwt: &str) -> String {
    let header: Value = serde_json::from_slice(
        &URL_SAFE_NO_PAD
            .decode(jwt.split('.').next().unwrap())
            .unwrap(),
    )
    .unwrap();
    text(&header, "kid")
}

/// A key of the folder's `keys.json` and its PEM, as the server kept them before.
fn folder_key(app: &TestApp, alg: Algorithm) -> (String, KeyMaterial) {
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(app.keys_dir.join("keys.json")).unwrap()).unwrap();
    let entry = manifest["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["alg"] == alg.as_str())
        .unwrap()
        .clone();
    let pem = std::fs::read_to_string(app.keys_dir.join(text(&entry, "file"))).unwrap();
    (
        text(&entry, "kid"),
        KeyMaterial::from_pem(alg, &pem).unwrap(),
    )
}

/// Verifies `token` against the server's JWKS as a relying party does.
async fn verifies_against_the_jwks(app: &TestApp, token: &str) -> Value {
    let header = jsonwebtoken::decode_header(token).unwrap();
    let jwks: jsonwebtoken::jwk::JwkSet =
        serde_json::from_value(get_json(&http(), app.url("/jwks.json")).await).unwrap();
    let jwk = jwks
        .find(header.kid.as_deref().unwrap())
        .expect("the kid is in the JWKS");
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).unwrap();
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.required_spec_claims = Default::default();
    jsonwebtoken::decode::<Value>(token, &key, &validation)
        .unwrap_or_else(|e| panic!("does not verify: {e}"))
        .claims
}

async fn the_keys_folder_is_imported_with_its_kids_and_its_tokens_still_verify(backend: Backend) {
    let app = spawn_app(backend).await;
    // spawn_app's keys folder holds the fixture keys as a deployment from before kept them.
    let mut kids = jwks_kids(&app).await;
    let mut expected = fixture_kids();
    kids.sort();
    expected.sort();
    assert_eq!(kids, expected, "the JWKS publishes the folder's keys");
    let stored: Vec<(String,)> = sqlx::query_as("SELECT kid FROM signing_keys ORDER BY kid")
        .fetch_all(app.sql().await)
        .await
        .unwrap();
    let stored: Vec<String> = stored.into_iter().map(|(k,)| k).collect();
    assert_eq!(stored, expected);

    // A token the folder's key signed (before the import, as the old server did) still
    // verifies, for a relying party and for the server itself (an id_token_hint).
    for alg in [Algorithm::ES256, Algorithm::RS256] {
        let (kid, material) = folder_key(&app, alg);
        let claims = json!({"iss": app.issuer, "sub": "u1", "aud": "c1"});
        let token = onyx_id::keys::encode_jws(&kid, alg, "JWT", &claims, &material).unwrap();
        assert_eq!(verifies_against_the_jwks(&app, &token).await, claims);
        let set = app.state.keys.current().await;
        assert_eq!(set.verify_jwt(&token, app.clock_now()), Some(claims));
    }
    // And the server signs with the imported keys.
    let client = app.create_app(&["openid"]).await;
    app.create_user("kim@example.com", "Kim").await;
    let (code, verifier) =
        authorize_code(&app, &client.client_id, "kim@example.com", "openid").await;
    let t: Value = exchange(&app, &client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    assert!(expected.contains(&kid_of(&text(&t, "id_token"))), "{t}");

    // A second instance on the same database imports nothing more.
    let second = app.second_instance().await;
    let jwks = get_json(&http(), format!("{second}/jwks.json")).await;
    assert_eq!(jwks, get_json(&http(), app.url("/jwks.json")).await);
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys")
        .fetch_one(app.sql().await)
        .await
        .unwrap();
    assert_eq!(n, 2);
}

async fn a_rotation_by_the_cli_is_seen_by_the_running_server_on_its_next_request(backend: Backend) {
    let app = spawn_app(backend).await;
    let client = app.create_app(&["openid"]).await;
    app.create_user("kim@example.com", "Kim").await;
    let before = jwks_kids(&app).await;

    // `onyx-id keys rotate --now`: another process, on the app's database and keys folder.
    let (status, stdout, stderr) = onyx(&app, &["keys", "rotate", "--now"], None).await;
    assert_eq!(status, 0, "{stdout} {stderr}");
    let out = one_json_object(&stdout);
    assert_eq!(out["rotated"], true);
    assert_eq!(out["previous_keys_revoked"], false);
    let added: Vec<(String, String)> = out["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| (text(k, "kid"), text(k, "alg")))
        .collect();
    assert_eq!(
        added
            .iter()
            .map(|(_, alg)| alg.as_str())
            .collect::<Vec<_>>(),
        ["ES256", "RS256"],
        "{out}"
    );

    // The very next request publishes the new keys beside the old.
    let after = jwks_kids(&app).await;
    for (kid, _) in &added {
        assert!(after.contains(kid), "{kid} in {after:?}");
    }
    for kid in &before {
        assert!(
            after.contains(kid),
            "the old {kid} stays published: {after:?}"
        );
    }
    // And signs new ID tokens with the new ES256 key (`--now`: no publish-ahead wait). The CLI
    // rotated at the wall clock's time, which may be a second or so past the app's manual one.
    let signs_from = out["keys"][0]["signs_from"].as_i64().unwrap();
    app.clock.advance((signs_from - app.clock_now()).max(0));
    let (code, verifier) =
        authorize_code(&app, &client.client_id, "kim@example.com", "openid").await;
    let t: Value = exchange(&app, &client, &code, &verifier)
        .await
        .json()
        .await
        .unwrap();
    let id_token = text(&t, "id_token");
    assert_eq!(kid_of(&id_token), added[0].0, "{t}");
    verifies_against_the_jwks(&app, &id_token).await;

    // `--revoke-old`: the old keys leave the JWKS at once.
    let (status, stdout, stderr) =
        onyx(&app, &["keys", "rotate", "--now", "--revoke-old"], None).await;
    assert_eq!(status, 0, "{stdout} {stderr}");
    let out = one_json_object(&stdout);
    assert_eq!(out["previous_keys_revoked"], true);
    let mut newest: Vec<String> = out["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| text(k, "kid"))
        .collect();
    let mut now_published = jwks_kids(&app).await;
    newest.sort();
    now_published.sort();
    assert_eq!(now_published, newest);
}

/// `onyx-id serve` on the app's database with `kek` as ONYX_KEY_ENCRYPTION_KEY: its exit code
/// and stderr (it stops at once, or is stopped after 20 s).
async fn serve_with_kek(app: &TestApp, kek: &str) -> (Option<i32>, String) {
    let folder = tempfile::tempdir().unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_onyx-id"))
        .arg("serve")
        .env("ONYX_DATABASE_URL", &app.database_url)
        .env("ONYX_KEYS_DIR", folder.path())
        .env("ONYX_KEY_ENCRYPTION_KEY", kek)
        .env("ONYX_BIND", "127.0.0.1:0")
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let out = tokio::time::timeout(std::time::Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("serve with a wrong key encryption key exits")
        .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn a_wrong_key_encryption_key_stops_start_up_with_a_clear_line(backend: Backend) {
    let app = spawn_app(backend).await;
    let wrong = URL_SAFE_NO_PAD.encode(onyx_id::crypto::random_bytes::<32>());
    let (code, stderr) = serve_with_kek(&app, &wrong).await;
    assert_ne!(code, Some(0), "{stderr}");
    let lines: Vec<&str> = stderr.trim().lines().collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].contains(
            "the signing keys in the database cannot be opened with this key encryption key"
        ),
        "{stderr}"
    );
    assert!(lines[0].contains("ONYX_KEY_ENCRYPTION_KEY"), "{stderr}");
    assert!(
        !stderr.contains(&wrong),
        "the key is never printed: {stderr}"
    );
    assert!(!stderr.contains("panicked"), "{stderr}");

    // The right one (the file the app wrote, as the variable) starts.
    let right = std::fs::read_to_string(app.keys_dir.join(onyx_id::keys::KEK_FILE)).unwrap();
    let cli_with_right = tokio::process::Command::new(env!("CARGO_BIN_EXE_onyx-id"))
        .args(["keys", "rotate"])
        .env("ONYX_DATABASE_URL", &app.database_url)
        .env("ONYX_KEYS_DIR", tempfile::tempdir().unwrap().path())
        .env("ONYX_KEY_ENCRYPTION_KEY", right.trim())
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    assert!(
        cli_with_right.status.success(),
        "{}",
        String::from_utf8_lossy(&cli_with_right.stderr)
    );
    // A rotation with the wrong one is refused and adds nothing.
    let rows_before: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys")
        .fetch_one(app.sql().await)
        .await
        .unwrap();
    let cli_with_wrong = tokio::process::Command::new(env!("CARGO_BIN_EXE_onyx-id"))
        .args(["keys", "rotate"])
        .env("ONYX_DATABASE_URL", &app.database_url)
        .env("ONYX_KEYS_DIR", tempfile::tempdir().unwrap().path())
        .env("ONYX_KEY_ENCRYPTION_KEY", &wrong)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    assert!(!cli_with_wrong.status.success());
    let said = String::from_utf8_lossy(&cli_with_wrong.stdout).to_string()
        + &String::from_utf8_lossy(&cli_with_wrong.stderr);
    assert!(
        said.contains("cannot be opened with this key encryption key"),
        "{said}"
    );
    let rows_after: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM signing_keys")
        .fetch_one(app.sql().await)
        .await
        .unwrap();
    assert_eq!(rows_after, rows_before);
}

async fn no_private_key_or_instance_secret_is_stored_in_clear(backend: Backend) {
    let app = spawn_app(backend).await;
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT kid, sealed_pem FROM signing_keys ORDER BY kid")
            .fetch_all(app.sql().await)
            .await
            .unwrap();
    assert_eq!(rows.len(), 2);
    for (kid, sealed) in &rows {
        assert!(sealed.starts_with("v1:"), "{kid}: {sealed}");
        assert!(!sealed.contains("PRIVATE KEY"), "{kid}");
        // Nor the PEM's base64 body.
        let (_, material) = folder_key(
            &app,
            if fixture_kids()[0] == *kid {
                Algorithm::ES256
            } else {
                Algorithm::RS256
            },
        );
        let body: String = material
            .to_pem()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        assert!(!sealed.contains(&body[..40]), "{kid}");
    }
    // The webhook secrets' sealing key and the DPoP nonce key, sealed the same way.
    let secrets: Vec<(String, String)> =
        sqlx::query_as("SELECT name, sealed FROM instance_secrets ORDER BY name")
            .fetch_all(app.sql().await)
            .await
            .unwrap();
    let names: Vec<&str> = secrets.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(names, ["dpop-nonce", "webhook-secrets"]);
    for (name, sealed) in &secrets {
        assert!(sealed.starts_with("v1:"), "{name}: {sealed}");
    }
    // A sealed key moved to another row does not open: the server refuses to start.
    sqlx::query(
        "UPDATE signing_keys SET sealed_pem = (SELECT sealed_pem FROM signing_keys WHERE kid = $1)
         WHERE kid = $2",
    )
    .bind(&rows[0].0)
    .bind(&rows[1].0)
    .execute(app.sql().await)
    .await
    .unwrap();
    let kek = std::fs::read_to_string(app.keys_dir.join(onyx_id::keys::KEK_FILE)).unwrap();
    let (code, stderr) = serve_with_kek(&app, kek.trim()).await;
    assert_ne!(code, Some(0), "{stderr}");
    assert!(stderr.contains("cannot be opened"), "{stderr}");
}

async fn a_malformed_key_encryption_key_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let good = URL_SAFE_NO_PAD.encode([7u8; 32]);
    for bad in [
        "not-a-key".to_string(),
        // Padded, standard alphabet, one byte short, one character long.
        format!("{good}="),
        base64::engine::general_purpose::STANDARD.encode([0xfbu8; 32]),
        URL_SAFE_NO_PAD.encode([7u8; 31]),
        format!("{good}A"),
    ] {
        assert_serve_refuses(&app, "ONYX_KEY_ENCRYPTION_KEY", &bad).await;
    }
}
