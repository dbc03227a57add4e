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
            // The latest to activate. A rotation within the same second as the previous key's
            // activation ties on `activates_at`: the newer key is the one the rotation left
            // without a retirement time (it gave one to every key before it), so it wins.
            .max_by_key(|k| (k.activates_at, k.retires_at.is_none(), k.retires_at))
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
mod tests;
