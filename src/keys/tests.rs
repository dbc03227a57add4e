use super::*;
use crate::config::DatabaseUrl;

/// A fresh database: a SQLite file, or a PostgreSQL database (dropped afterwards).
struct TestDb {
    db: Db,
    backend: &'static str,
    _dir: tempfile::TempDir,
    drop_pg: Option<(String, String)>,
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if let Some((admin, name)) = self.drop_pg.take() {
            let _ = std::thread::spawn(move || {
                use sqlx::Connection;
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    if let Ok(mut c) = sqlx::PgConnection::connect(&admin).await {
                        let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                            "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                        )))
                        .execute(&mut c)
                        .await;
                    }
                });
            })
            .join();
        }
    }
}

/// A fresh database on each backend: SQLite always, PostgreSQL when
/// `ONYX_TEST_POSTGRES_URL` names a server (required under `CI`, as for the API tests).
async fn databases() -> Vec<TestDb> {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("onyx.db").display());
    let mut all = vec![TestDb {
        db: Db::connect(&DatabaseUrl::parse(&url).unwrap())
            .await
            .unwrap(),
        backend: "sqlite",
        _dir: dir,
        drop_pg: None,
    }];
    let Ok(admin) = std::env::var("ONYX_TEST_POSTGRES_URL") else {
        assert!(
            std::env::var("CI").is_err(),
            "under CI the keys tests need ONYX_TEST_POSTGRES_URL"
        );
        return all;
    };
    use sqlx::Connection;
    let name = format!(
        "onyx_keys_{}",
        crate::crypto::random_token(9)
            .to_lowercase()
            .replace('-', "_")
    );
    let mut conn = sqlx::PgConnection::connect(&admin).await.unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .unwrap();
    let mut url = url::Url::parse(&admin).unwrap();
    url.set_path(&format!("/{name}"));
    all.push(TestDb {
        db: Db::connect(&DatabaseUrl::parse(url.as_str()).unwrap())
            .await
            .unwrap(),
        backend: "postgres",
        _dir: tempfile::tempdir().unwrap(),
        drop_pg: Some((admin, name)),
    });
    all
}

fn kek(byte: u8) -> KeyEncryptionKey {
    use base64::Engine;
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode([byte; 32]);
    KeyEncryptionKey::parse(&raw).unwrap()
}

fn kids(set: &KeySet, now: Timestamp) -> Vec<String> {
    set.jwks(now)["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_string())
        .collect()
}

/// A keys folder as a deployment from before migration 0018 kept it: `keys.json` and one
/// PEM per key. Returns the keys, to sign with as the old server did.
fn write_folder(dir: &Path, keys: &[(&str, Algorithm, Timestamp)]) -> Vec<SigningKey> {
    let mut entries = Vec::new();
    let mut loaded = Vec::new();
    for (kid, alg, activates_at) in keys {
        let material = KeyMaterial::generate(*alg).unwrap();
        let file = format!("{kid}.{}.pem", alg.as_str().to_ascii_lowercase());
        std::fs::write(dir.join(&file), material.to_pem()).unwrap();
        entries.push(serde_json::json!({
            "kid": kid, "alg": alg.as_str(), "file": file, "created_at": activates_at,
            "activates_at": activates_at, "retires_at": null,
        }));
        loaded.push(SigningKey {
            kid: kid.to_string(),
            alg: *alg,
            activates_at: *activates_at,
            retires_at: None,
            material,
        });
    }
    std::fs::write(
        dir.join("keys.json"),
        serde_json::json!({ "keys": entries }).to_string(),
    )
    .unwrap();
    loaded
}

#[tokio::test]
async fn a_new_database_gets_one_key_per_algorithm_and_rotation_publishes_before_signing() {
    for t in databases().await {
        let folder = tempfile::tempdir().unwrap();
        let store = KeyStore::open(&t.db, &kek(1), folder.path(), 1000)
            .await
            .unwrap();
        // A second instance on the same database finds the keys and adds none.
        let other = KeyStore::open(&t.db, &kek(1), folder.path(), 1000)
            .await
            .unwrap();
        let set = store.current().await;
        let es = set.signer(Algorithm::ES256, 1000).unwrap();
        assert!(
            set.signer(Algorithm::RS256, 1000).is_some(),
            "{}",
            t.backend
        );
        assert_eq!(kids(&set, 1000).len(), 2, "{}", t.backend);
        assert_eq!(kids(&*other.current().await, 1000), kids(&set, 1000));

        rotate(
            &t.db,
            &kek(1),
            folder.path(),
            2000,
            120,
            Retire::After(3600),
        )
        .await
        .unwrap();
        // Both instances see it at their next call.
        for set in [store.current().await, other.current().await] {
            // Published at once, signing only after the publish-ahead window.
            assert_eq!(kids(&set, 2000).len(), 4, "{}", t.backend);
            assert_eq!(set.signer(Algorithm::ES256, 2000).unwrap().kid, es.kid);
            let new = set.signer(Algorithm::ES256, 2120).unwrap();
            assert_ne!(new.kid, es.kid);
            // The old key leaves the JWKS once its tokens have expired.
            assert_eq!(kids(&set, 2120 + 3600).len(), 2, "{}", t.backend);
        }
        // Nothing was written to the folder.
        assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 0);
    }
}

#[tokio::test]
async fn a_rotation_in_the_same_second_as_the_last_one_signs_with_the_new_key() {
    for t in databases().await {
        let folder = tempfile::tempdir().unwrap();
        let store = KeyStore::open(&t.db, &kek(1), folder.path(), 1000)
            .await
            .unwrap();
        let mut before = store
            .current()
            .await
            .signer(Algorithm::ES256, 1000)
            .unwrap();
        // `keys rotate --now` three times in the second the first keys were made: every key
        // activates at 1000, and the newest signs each time.
        for round in 1..=3 {
            rotate(&t.db, &kek(1), folder.path(), 1000, 0, Retire::After(3600))
                .await
                .unwrap();
            let set = store.current().await;
            for alg in [Algorithm::ES256, Algorithm::RS256] {
                let signer = set.signer(alg, 1000).unwrap();
                assert!(signer.retires_at.is_none(), "{} round {round}", t.backend);
            }
            let now = set.signer(Algorithm::ES256, 1000).unwrap();
            assert_ne!(now.kid, before.kid, "{} round {round}", t.backend);
            before = now;
        }
    }
}

#[tokio::test]
async fn revoking_the_old_keys_takes_them_out_of_the_jwks_at_once() {
    for t in databases().await {
        let folder = tempfile::tempdir().unwrap();
        let store = KeyStore::open(&t.db, &kek(1), folder.path(), 1000)
            .await
            .unwrap();
        let old = store
            .current()
            .await
            .signer(Algorithm::ES256, 1000)
            .unwrap();
        // A rotation that keeps them, then one that revokes everything before it.
        rotate(
            &t.db,
            &kek(1),
            folder.path(),
            2000,
            120,
            Retire::After(3600),
        )
        .await
        .unwrap();
        let added = rotate(&t.db, &kek(1), folder.path(), 2010, 0, Retire::Now)
            .await
            .unwrap();
        let set = store.current().await;
        let published = kids(&set, 2010);
        assert_eq!(published.len(), 2, "only the newest keys: {published:?}");
        assert!(!published.contains(&old.kid));
        let mut added: Vec<String> = added.into_iter().map(|(kid, _, _)| kid).collect();
        let mut published = published;
        added.sort();
        published.sort();
        assert_eq!(added, published, "{}", t.backend);
        let signer = set.signer(Algorithm::ES256, 2010).unwrap();
        assert!(published.contains(&signer.kid));
        // Their rows are gone too.
        assert_eq!(store::all(&t.db).await.unwrap().len(), 2, "{}", t.backend);
    }
}

#[tokio::test]
async fn only_tokens_these_keys_signed_verify() {
    for t in databases().await {
        let folder = tempfile::tempdir().unwrap();
        let store = KeyStore::open(&t.db, &kek(1), folder.path(), 1000)
            .await
            .unwrap();
        let set = store.current().await;
        let claims = serde_json::json!({"sub": "u1"});
        for alg in [Algorithm::ES256, Algorithm::RS256] {
            let token = set
                .signer(alg, 1000)
                .unwrap()
                .sign_jwt("JWT", &claims)
                .unwrap();
            assert_eq!(set.verify_jwt(&token, 1000), Some(claims.clone()));
            let mut tampered = token.clone();
            tampered.insert(token.find('.').unwrap() + 2, 'x');
            assert_eq!(set.verify_jwt(&tampered, 1000), None);
        }
        let foreign = KeyMaterial::generate(Algorithm::ES256).unwrap();
        let kid = set.signer(Algorithm::ES256, 1000).unwrap().kid.clone();
        // Another key under a kid of this set.
        let token = encode_jws(&kid, Algorithm::ES256, "JWT", &claims, &foreign).unwrap();
        assert_eq!(set.verify_jwt(&token, 1000), None, "{}", t.backend);
        assert_eq!(set.verify_jwt("a.b", 1000), None);
    }
}

#[tokio::test]
async fn the_jwks_never_carries_private_parameters_and_the_rows_are_sealed() {
    for t in databases().await {
        let folder = tempfile::tempdir().unwrap();
        let store = KeyStore::open(&t.db, &kek(1), folder.path(), 1000)
            .await
            .unwrap();
        let jwks = store.current().await.jwks(1000).to_string();
        for private in ["\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\""] {
            assert!(!jwks.contains(private), "{private} in {jwks}");
        }
        let rows = store::all(&t.db).await.unwrap();
        assert_eq!(rows.len(), 2);
        for row in rows {
            assert!(row.sealed_pem.starts_with("v1:"), "{}", t.backend);
            assert!(!row.sealed_pem.contains("PRIVATE KEY"));
            // Sealed for its own row: under another kid it does not open.
            let sealer = kek(1).sealer();
            assert!(sealer.open(&key_aad(&row.kid), &row.sealed_pem).is_some());
            assert!(sealer.open(&key_aad("other"), &row.sealed_pem).is_none());
        }
    }
}

#[tokio::test]
async fn the_folders_keys_are_imported_once_with_their_kids_and_times() {
    for t in databases().await {
        let folder = tempfile::tempdir().unwrap();
        let old = write_folder(
            folder.path(),
            &[
                ("old-es", Algorithm::ES256, 500),
                ("old-rs", Algorithm::RS256, 500),
                ("next-es", Algorithm::ES256, 1100),
            ],
        );
        let claims = serde_json::json!({"sub": "u1"});
        let signed_before = old[0].sign_jwt("JWT", &claims).unwrap();
        let store = KeyStore::open(&t.db, &kek(1), folder.path(), 1000)
            .await
            .unwrap();
        let set = store.current().await;
        assert_eq!(
            kids(&set, 1000),
            vec!["old-es", "old-rs", "next-es"],
            "{}",
            t.backend
        );
        assert_eq!(set.signer(Algorithm::ES256, 1000).unwrap().kid, "old-es");
        assert_eq!(set.signer(Algorithm::ES256, 1100).unwrap().kid, "next-es");
        assert_eq!(set.verify_jwt(&signed_before, 1000), Some(claims.clone()));
        // Once: a folder changed afterwards is not read again.
        std::fs::remove_file(folder.path().join("keys.json")).unwrap();
        write_folder(folder.path(), &[("later", Algorithm::ES256, 1000)]);
        let again = KeyStore::open(&t.db, &kek(1), folder.path(), 1000)
            .await
            .unwrap();
        assert_eq!(kids(&*again.current().await, 1000).len(), 3);
    }
}

#[tokio::test]
async fn another_kek_opens_nothing_and_changes_nothing() {
    for t in databases().await {
        let folder = tempfile::tempdir().unwrap();
        KeyStore::open(&t.db, &kek(1), folder.path(), 1000)
            .await
            .unwrap();
        let before = store::all(&t.db).await.unwrap().len();
        let e = KeyStore::open(&t.db, &kek(2), folder.path(), 1000)
            .await
            .err()
            .unwrap();
        assert!(matches!(e, KeysError::WrongKek), "{}: {e}", t.backend);
        assert!(e.to_string().starts_with(
            "the signing keys in the database cannot be opened with this key encryption key"
        ));
        let e = rotate(&t.db, &kek(2), folder.path(), 2000, 0, Retire::Now)
            .await
            .unwrap_err();
        assert!(matches!(e, KeysError::WrongKek), "{}: {e}", t.backend);
        assert_eq!(store::all(&t.db).await.unwrap().len(), before);
    }
}

#[tokio::test]
async fn an_instance_secret_is_imported_from_its_file_once_and_shared() {
    for t in databases().await {
        let folder = tempfile::tempdir().unwrap();
        let file = folder.path().join("webhook-secrets.key");
        {
            use base64::Engine;
            let raw = base64::engine::general_purpose::STANDARD.encode([5u8; 32]);
            std::fs::write(&file, raw).unwrap();
        }
        let first = instance_secret(&t.db, &kek(1), "imported", &file)
            .await
            .unwrap();
        assert_eq!(first, [5u8; 32], "{}", t.backend);
        // So a webhook secret sealed with the file's key before still opens.
        {
            use crate::webhooks::secrets::{SecretBox, SigningSecret};
            let secret = SigningSecret::generate();
            let sealed_before = SecretBox::from_key(&[5u8; 32]).seal("ep_1", &secret);
            let webhooks_folder = tempfile::tempdir().unwrap();
            std::fs::copy(&file, webhooks_folder.path().join("webhook-secrets.key")).unwrap();
            let sealer = SecretBox::load(&t.db, &kek(1), webhooks_folder.path())
                .await
                .unwrap();
            let opened = sealer.open("ep_1", &sealed_before).unwrap();
            assert_eq!(opened.expose(), secret.expose(), "{}", t.backend);
        }
        // The file is not read again.
        std::fs::remove_file(&file).unwrap();
        let again = instance_secret(&t.db, &kek(1), "imported", &file)
            .await
            .unwrap();
        assert_eq!(again, first);
        // Without a file: generated, then the same for every caller.
        let made = instance_secret(&t.db, &kek(1), "made", &file)
            .await
            .unwrap();
        assert_ne!(made, [5u8; 32]);
        assert_eq!(
            instance_secret(&t.db, &kek(1), "made", &file)
                .await
                .unwrap(),
            made
        );
        let stored = store::instance_secret(&t.db, "made")
            .await
            .unwrap()
            .unwrap();
        assert!(stored.starts_with("v1:"));
        let e = instance_secret(&t.db, &kek(2), "made", &file)
            .await
            .unwrap_err();
        assert!(
            matches!(e, KeysError::WrongKekForSecret(ref n) if n == "made"),
            "{}: {e}",
            t.backend
        );
    }
}
