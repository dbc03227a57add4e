//! Signing keys: stored in the database (`signing_keys`, migration 0018), each private key
//! sealed with the key encryption key ([`KeyEncryptionKey`]); generated on first start, or
//! imported then from the keys folder of a deployment that kept them there; rotated by
//! `onyx-id keys rotate`; published in the JWKS. Every change bumps the one-row
//! `key_generation` counter in its transaction, and [`KeyStore::current`] reads the counter
//! per request and reloads the keys when it moved, so a rotation made on any instance (or by
//! the CLI) is seen by every instance on its next request, and they all publish the same JWKS.
//!
//! The instance secrets (the webhook secrets' sealing key, the DPoP nonce key) live in the
//! database too, sealed the same way ([`instance_secret`]).

mod folder;
mod jws;
mod kek;
mod material;

use std::path::Path;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

pub use jws::encode_jws;
pub use kek::{KEK_FILE, KEK_VARIABLE, KeyEncryptionKey};
pub use material::{Algorithm, KeyMaterial};

use crate::clock::Timestamp;
use crate::crypto::Sealer;
use crate::store::Db;
use crate::store::keys::{self as store, StoredKey};

/// One loaded key.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    /// From this time on, the key signs (before it, it is only published).
    activates_at: Timestamp,
    /// From this time on, the key is no longer published (tokens it signed have expired).
    retires_at: Option<Timestamp>,
    material: KeyMaterial,
}

impl SigningKey {
    pub fn sign_jwt(&self, typ: &str, claims: &serde_json::Value) -> anyhow::Result<String> {
        encode_jws(&self.kid, self.alg, typ, claims, &self.material)
    }
}

/// The keys of one generation.
pub struct KeySet {
    keys: Vec<Arc<SigningKey>>,
}

impl KeySet {
    /// The key that signs with `alg` at `now`: the newest one already active.
    pub fn signer(&self, alg: Algorithm, now: Timestamp) -> Option<Arc<SigningKey>> {
        self.keys
            .iter()
            .filter(|k| {
                k.alg == alg && k.activates_at <= now && k.retires_at.is_none_or(|r| r > now)
            })
            .max_by_key(|k| k.activates_at)
            .cloned()
    }

    /// The public JWKS at `now` (RFC 7517 §5): every key not yet retired, including keys that
    /// will start signing soon, so clients have them before they see them.
    pub fn jwks(&self, now: Timestamp) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .keys
            .iter()
            .filter(|k| k.retires_at.is_none_or(|r| r > now))
            .map(|k| k.material.public_jwk(&k.kid, k.alg))
            .collect();
        serde_json::json!({ "keys": keys })
    }

    /// The claims of `token`, a JWS compact serialization, when one of these keys not retired
    /// at `now` signed it (its `kid` and `alg` name the key). Only the signature is checked:
    /// the caller judges the claims (an expired ID token is still a valid `id_token_hint`).
    pub fn verify_jwt(&self, token: &str, now: Timestamp) -> Option<serde_json::Value> {
        use base64::Engine;
        use base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut parts = token.split('.');
        let (header, payload, sig) = (parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() {
            return None;
        }
        let h: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).ok()?).ok()?;
        let (kid, alg) = (h.get("kid")?.as_str()?, h.get("alg")?.as_str()?);
        let key = self.keys.iter().find(|k| {
            k.kid == kid && k.alg.as_str() == alg && k.retires_at.is_none_or(|r| r > now)
        })?;
        let sig = URL_SAFE_NO_PAD.decode(sig).ok()?;
        let signed = &token[..header.len() + 1 + payload.len()];
        if !key.material.verify(signed.as_bytes(), &sig) {
            return None;
        }
        let claims: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        claims.is_object().then_some(claims)
    }

    pub fn algorithms(&self) -> Vec<Algorithm> {
        let mut algs: Vec<Algorithm> = self.keys.iter().map(|k| k.alg).collect();
        algs.sort();
        algs.dedup();
        algs
    }
}

/// The associated data a signing key is sealed with: its row, so that it opens nowhere else.
fn key_aad(kid: &str) -> String {
    format!("signing_keys:{kid}")
}

/// The associated data of an instance secret.
fn secret_aad(name: &str) -> String {
    format!("instance_secrets:{name}")
}

/// Why the keys in the database cannot be used. Stops start-up with its message.
#[derive(Debug, thiserror::Error)]
pub enum KeysError {
    #[error(
        "the signing keys in the database cannot be opened with this key encryption key \
         ({KEK_VARIABLE}, or {KEK_FILE} in the keys folder when it is not set): set the one \
         they were sealed with, the same on every instance"
    )]
    WrongKek,
    #[error(
        "the instance secret {0:?} in the database cannot be opened with this key encryption \
         key ({KEK_VARIABLE}, or {KEK_FILE} in the keys folder when it is not set): set the one \
         it was sealed with, the same on every instance"
    )]
    WrongKekForSecret(String),
    #[error("signing key {kid} in the database is not usable: {why}")]
    Unusable { kid: String, why: String },
    #[error("the database holds no signing key")]
    Empty,
    #[error(transparent)]
    Db(#[from] sqlx::Error),
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

/// The keys as the running server sees them: the set of the last generation it read.
pub struct KeyStore {
    db: Db,
    sealer: Sealer,
    loaded: RwLock<Loaded>,
    /// One reload at a time; requests arriving meanwhile wait for its result.
    reload: tokio::sync::Mutex<()>,
    /// After a failed reload, no other is tried before this instant (the old keys sign
    /// meanwhile), so a broken row costs one attempt every few seconds, not one per request.
    retry_after: Mutex<Option<Instant>>,
}

#[derive(Clone)]
struct Loaded {
    generation: i64,
    set: Arc<KeySet>,
}

/// How long a failed reload is not retried.
const RELOAD_BACKOFF: Duration = Duration::from_secs(5);

impl KeyStore {
    /// Opens the keys in the database. On the first start of a database it imports the keys
    /// of `keys_dir` (a deployment from before the keys moved into the database) or, when
    /// there are none, generates one ES256 and one RS256 key. A KEK that does not open the
    /// stored keys is [`KeysError::WrongKek`].
    pub async fn open(
        db: &Db,
        kek: &KeyEncryptionKey,
        keys_dir: &Path,
        now: Timestamp,
    ) -> Result<Self, KeysError> {
        let sealer = kek.sealer();
        initialise(db, &sealer, keys_dir, now).await?;
        let loaded = load(db, &sealer).await?;
        Ok(Self {
            db: db.clone(),
            sealer,
            loaded: RwLock::new(loaded),
            reload: tokio::sync::Mutex::new(()),
            retry_after: Mutex::new(None),
        })
    }

    /// The current keys: the generation is read from the database first (one primary-key
    /// read), and the keys reloaded when it changed. When the database cannot be read, the
    /// keys last loaded go on signing rather than every request failing.
    pub async fn current(&self) -> Arc<KeySet> {
        let cached = self.cached();
        // Boxed: the lookup's future (every path of `store::fast::rows`) would otherwise make
        // the futures of all the signing handlers larger, and each is moved when awaited
        // (callgrind, client_credentials, debug build: 131k more instructions per request
        // unboxed, 31k boxed).
        let generation = match Box::pin(store::generation(&self.db)).await {
            Ok(g) => g,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the key generation: signing with the keys last loaded");
                return cached.set;
            }
        };
        if generation == cached.generation {
            return cached.set;
        }
        // Boxed for the same reason: the reload's future (the key rows' query) is large.
        Box::pin(self.reload(generation)).await
    }

    fn cached(&self) -> Loaded {
        self.loaded
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    async fn reload(&self, seen: i64) -> Arc<KeySet> {
        let _one = self.reload.lock().await;
        let cached = self.cached();
        // Another request reloaded while this one waited.
        if cached.generation >= seen {
            return cached.set;
        }
        {
            let mut retry = self.retry_after.lock().unwrap_or_else(|p| p.into_inner());
            if retry.is_some_and(|at| Instant::now() < at) {
                return cached.set;
            }
            *retry = None;
        }
        match load(&self.db, &self.sealer).await {
            Ok(loaded) => {
                tracing::info!(generation = loaded.generation, "signing keys reloaded");
                let set = loaded.set.clone();
                *self.loaded.write().unwrap_or_else(|p| p.into_inner()) = loaded;
                set
            }
            Err(e) => {
                // Keep signing with the keys we have rather than failing every request.
                tracing::error!(error = %e, "the signing keys changed but cannot be loaded");
                *self.retry_after.lock().unwrap_or_else(|p| p.into_inner()) =
                    Some(Instant::now() + RELOAD_BACKOFF);
                cached.set
            }
        }
    }
}

/// The generation and the keys, read in that order: a change committed in between makes the
/// generation look older than the keys, so the next request reloads once more; never the
/// other way round, which would keep stale keys under a new generation.
async fn load(db: &Db, sealer: &Sealer) -> Result<Loaded, KeysError> {
    let generation = store::generation(db).await?;
    let rows = store::all(db).await?;
    let mut keys = Vec::with_capacity(rows.len());
    for row in rows {
        keys.push(Arc::new(open_key(sealer, row)?));
    }
    if keys.is_empty() {
        return Err(KeysError::Empty);
    }
    Ok(Loaded {
        generation,
        set: Arc::new(KeySet { keys }),
    })
}

fn open_key(sealer: &Sealer, row: StoredKey) -> Result<SigningKey, KeysError> {
    let pem = sealer
        .open(&key_aad(&row.kid), &row.sealed_pem)
        .ok_or(KeysError::WrongKek)?;
    let unusable = |why: String| KeysError::Unusable {
        kid: row.kid.clone(),
        why,
    };
    let alg = Algorithm::parse(&row.alg)
        .ok_or_else(|| unusable(format!("unknown algorithm {:?}", row.alg)))?;
    let pem = String::from_utf8(pem).map_err(|_| unusable("not a PEM".into()))?;
    let material = KeyMaterial::from_pem(alg, &pem).map_err(|e| unusable(e.to_string()))?;
    Ok(SigningKey {
        kid: row.kid,
        alg,
        activates_at: row.activates_at,
        retires_at: row.retires_at,
        material,
    })
}

/// A new key's row, its private key sealed.
fn sealed_row(
    sealer: &Sealer,
    kid: String,
    alg: Algorithm,
    pem: &str,
    created_at: Timestamp,
    activates_at: Timestamp,
    retires_at: Option<Timestamp>,
) -> StoredKey {
    StoredKey {
        sealed_pem: sealer.seal(&key_aad(&kid), pem.as_bytes()),
        kid,
        alg: alg.as_str().to_string(),
        created_at,
        activates_at,
        retires_at,
    }
}

fn generated_row(
    sealer: &Sealer,
    alg: Algorithm,
    now: Timestamp,
    activates_at: Timestamp,
) -> anyhow::Result<StoredKey> {
    let material = KeyMaterial::generate(alg)?;
    let kid = crate::crypto::random_token(12);
    Ok(sealed_row(
        sealer,
        kid,
        alg,
        &material.to_pem(),
        now,
        activates_at,
        None,
    ))
}

/// Gives a database with no signing key its first ones: those of the keys folder when it has
/// a `keys.json` (kids and times kept, so tokens they signed still verify), else a new ES256
/// and RS256 key. One transaction, which takes the generation row first: of two instances
/// starting at once on a new database, the second waits, then finds the keys and adds none.
async fn initialise(
    db: &Db,
    sealer: &Sealer,
    keys_dir: &Path,
    now: Timestamp,
) -> Result<(), KeysError> {
    if store::any(db).await? {
        return Ok(());
    }
    let from_folder = folder::read_keys(keys_dir, now)?;
    let rows = match &from_folder {
        Some(keys) => keys
            .iter()
            .map(|k| {
                sealed_row(
                    sealer,
                    k.kid.clone(),
                    k.alg,
                    &k.pem,
                    k.created_at,
                    k.activates_at,
                    k.retires_at,
                )
            })
            .collect(),
        None => vec![
            generated_row(sealer, Algorithm::ES256, now, now)?,
            generated_row(sealer, Algorithm::RS256, now, now)?,
        ],
    };
    let mut tx = db.begin().await?;
    store::bump_generation(&mut tx).await?;
    if !store::all_in(&mut tx).await?.is_empty() {
        tx.rollback().await?;
        return Ok(());
    }
    for row in &rows {
        store::insert(&mut tx, row).await?;
    }
    tx.commit().await?;
    if from_folder.is_some() {
        tracing::info!(
            dir = %keys_dir.display(),
            kids = ?rows.iter().map(|r| r.kid.as_str()).collect::<Vec<_>>(),
            "the signing keys of the keys folder were imported into the database, sealed with the key encryption key; the folder's keys.json and PEM files are no longer read and may be removed once every instance runs this version"
        );
    } else {
        tracing::info!("generated the first ES256 and RS256 signing keys into the database");
    }
    Ok(())
}

/// When the keys a rotation replaces leave the JWKS.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retire {
    /// This many seconds after the new keys start signing: the longest life of a token the
    /// old ones signed.
    After(i64),
    /// At once, with every key not yet retired (a compromised key): tokens they signed no
    /// longer verify against the JWKS.
    Now,
}

/// Adds a new key per algorithm that signs from `now + publish_ahead`; the keys it replaces
/// leave the JWKS as `retire` says. Keys already retired are deleted. One transaction, which
/// bumps the generation, so every instance sees the rotation on its next request. The stored
/// keys must open with `kek` first: keys sealed with another KEK would not load anywhere.
pub async fn rotate(
    db: &Db,
    kek: &KeyEncryptionKey,
    keys_dir: &Path,
    now: Timestamp,
    publish_ahead: i64,
    retire: Retire,
) -> Result<Vec<(String, Algorithm, Timestamp)>, KeysError> {
    let sealer = kek.sealer();
    initialise(db, &sealer, keys_dir, now).await?;
    let activates_at = now + publish_ahead.max(0);
    let new: Vec<(Algorithm, StoredKey)> = [Algorithm::ES256, Algorithm::RS256]
        .into_iter()
        .map(|alg| Ok((alg, generated_row(&sealer, alg, now, activates_at)?)))
        .collect::<anyhow::Result<_>>()?;
    let mut tx = db.begin().await?;
    store::bump_generation(&mut tx).await?;
    let existing = store::all_in(&mut tx).await?;
    for row in &existing {
        if sealer.open(&key_aad(&row.kid), &row.sealed_pem).is_none() {
            return Err(KeysError::WrongKek);
        }
    }
    for row in &existing {
        let retires_at = match (retire, row.retires_at) {
            (Retire::Now, _) => Some(now),
            (Retire::After(keep), None) => Some(activates_at + keep.max(0)),
            (Retire::After(_), already) => already,
        };
        if retires_at != row.retires_at {
            store::set_retires_at(&mut tx, &row.kid, retires_at).await?;
        }
    }
    for (_, row) in &new {
        store::insert(&mut tx, row).await?;
    }
    store::delete_retired(&mut tx, now).await?;
    tx.commit().await?;
    Ok(new
        .into_iter()
        .map(|(alg, row)| (row.kid, alg, row.activates_at))
        .collect())
}

/// The instance secret `name` (32 bytes every instance sharing the database must agree on),
/// sealed in `instance_secrets` by the KEK. On first use it is imported from `legacy_file`
/// (where it lived in the keys folder before) when that exists, else generated; of two
/// instances storing it at once, the first one's stays and both use it.
pub async fn instance_secret(
    db: &Db,
    kek: &KeyEncryptionKey,
    name: &str,
    legacy_file: &Path,
) -> Result<[u8; 32], KeysError> {
    let sealer = kek.sealer();
    let aad = secret_aad(name);
    if store::instance_secret(db, name).await?.is_none() {
        let from_file = folder::read_secret(legacy_file)?;
        let value = from_file.unwrap_or_else(crate::crypto::random_bytes::<32>);
        store::insert_instance_secret(db, name, &sealer.seal(&aad, &value)).await?;
        if from_file.is_some() {
            tracing::info!(
                name,
                file = %legacy_file.display(),
                "an instance secret of the keys folder was imported into the database, sealed with the key encryption key; the file is no longer read"
            );
        }
    }
    let sealed = store::instance_secret(db, name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("the instance secret {name:?} was stored but is missing"))?;
    sealer
        .open(&aad, &sealed)
        .and_then(|v| <[u8; 32]>::try_from(v).ok())
        .ok_or_else(|| KeysError::WrongKekForSecret(name.to_string()))
}

#[cfg(test)]
mod tests {
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
}
