//! Signing keys: generated into `ONYX_KEYS_DIR` on first start, rotated by `onyx-id keys
//! rotate`, published in the JWKS. The folder holds one PKCS#8 PEM file per key and
//! `keys.json`, the manifest; a running server re-reads the manifest when it changes, so a
//! rotation made by the CLI is seen on the next request without a restart.

mod jws;
mod material;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

pub use jws::encode_jws;
pub use material::{Algorithm, KeyMaterial};

use crate::clock::Timestamp;

const MANIFEST: &str = "keys.json";

#[derive(Debug, Clone, Serialize, Deserialize)]
struct ManifestEntry {
    kid: String,
    alg: Algorithm,
    file: String,
    created_at: Timestamp,
    /// From this time on, the key signs (before it, it is only published).
    activates_at: Timestamp,
    /// From this time on, the key is no longer published (tokens it signed have expired).
    retires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Manifest {
    keys: Vec<ManifestEntry>,
}

/// One loaded key.
pub struct SigningKey {
    pub kid: String,
    pub alg: Algorithm,
    activates_at: Timestamp,
    retires_at: Option<Timestamp>,
    material: KeyMaterial,
}

impl SigningKey {
    pub fn sign_jwt(&self, typ: &str, claims: &serde_json::Value) -> anyhow::Result<String> {
        encode_jws(&self.kid, self.alg, typ, claims, &self.material)
    }
}

/// The keys of one manifest version.
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

/// The keys folder as the running server sees it.
pub struct KeyStore {
    dir: PathBuf,
    current: RwLock<Arc<KeySet>>,
    stamp: Mutex<Option<FileStamp>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct FileStamp {
    modified: Option<SystemTime>,
    len: u64,
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(FileStamp {
        modified: meta.modified().ok(),
        len: meta.len(),
    })
}

impl KeyStore {
    /// Opens the folder, generating the first ES256 and RS256 keys when it has none.
    pub fn open_or_init(dir: &Path, now: Timestamp) -> anyhow::Result<Self> {
        create_private_dir(dir)
            .map_err(|e| anyhow::anyhow!("cannot create the keys folder {}: {e}", dir.display()))?;
        let manifest_path = dir.join(MANIFEST);
        if !manifest_path.exists() {
            let mut manifest = Manifest::default();
            for alg in [Algorithm::ES256, Algorithm::RS256] {
                manifest.keys.push(generate_into(dir, alg, now, now)?);
            }
            write_manifest(dir, &manifest)?;
        }
        let stamp = stamp(&manifest_path);
        let set = load(dir)?;
        Ok(Self {
            dir: dir.to_owned(),
            current: RwLock::new(Arc::new(set)),
            stamp: Mutex::new(stamp),
        })
    }

    /// The current keys, re-read first if the manifest changed on disk.
    pub fn current(&self) -> Arc<KeySet> {
        let path = self.dir.join(MANIFEST);
        let now_stamp = stamp(&path);
        let changed = {
            let guard = self.stamp.lock().unwrap_or_else(|p| p.into_inner());
            *guard != now_stamp
        };
        if changed {
            match load(&self.dir) {
                Ok(set) => {
                    *self.current.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(set);
                    *self.stamp.lock().unwrap_or_else(|p| p.into_inner()) = now_stamp;
                    tracing::info!(dir = %self.dir.display(), "signing keys reloaded");
                }
                Err(e) => {
                    // Keep signing with the keys we have rather than failing every request.
                    tracing::error!(error = %e, "the keys manifest changed but cannot be loaded");
                }
            }
        }
        self.current
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
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
/// leave the JWKS as `retire` says. Keys already retired are deleted.
pub fn rotate(
    dir: &Path,
    now: Timestamp,
    publish_ahead: i64,
    retire: Retire,
) -> anyhow::Result<Vec<(String, Algorithm, Timestamp)>> {
    let _ = KeyStore::open_or_init(dir, now)?;
    let mut manifest = read_manifest(dir)?;
    let activates_at = now + publish_ahead.max(0);
    let mut added = Vec::new();
    for alg in [Algorithm::ES256, Algorithm::RS256] {
        for k in manifest.keys.iter_mut().filter(|k| k.alg == alg) {
            k.retires_at = match (retire, k.retires_at) {
                (Retire::Now, _) => Some(now),
                (Retire::After(keep), None) => Some(activates_at + keep.max(0)),
                (Retire::After(_), already) => already,
            };
        }
        let entry = generate_into(dir, alg, now, activates_at)?;
        added.push((entry.kid.clone(), alg, activates_at));
        manifest.keys.push(entry);
    }
    let (keep, gone): (Vec<_>, Vec<_>) = manifest
        .keys
        .into_iter()
        .partition(|k| k.retires_at.is_none_or(|r| r > now));
    manifest.keys = keep;
    write_manifest(dir, &manifest)?;
    for k in gone {
        let _ = std::fs::remove_file(dir.join(&k.file));
    }
    Ok(added)
}

fn generate_into(
    dir: &Path,
    alg: Algorithm,
    now: Timestamp,
    activates_at: Timestamp,
) -> anyhow::Result<ManifestEntry> {
    let material = KeyMaterial::generate(alg)?;
    let kid = crate::crypto::random_token(12);
    let file = format!("{kid}.{}.pem", alg.as_str().to_ascii_lowercase());
    write_private(&dir.join(&file), &material.to_pem())?;
    Ok(ManifestEntry {
        kid,
        alg,
        file,
        created_at: now,
        activates_at,
        retires_at: None,
    })
}

fn read_manifest(dir: &Path) -> anyhow::Result<Manifest> {
    let path = dir.join(MANIFEST);
    let text = std::fs::read_to_string(&path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{} is not valid: {e}", path.display()))
}

fn load(dir: &Path) -> anyhow::Result<KeySet> {
    let manifest = read_manifest(dir)?;
    let mut keys = Vec::new();
    for entry in manifest.keys {
        let pem = std::fs::read_to_string(dir.join(&entry.file))
            .map_err(|e| anyhow::anyhow!("cannot read key {}: {e}", entry.file))?;
        let material = KeyMaterial::from_pem(entry.alg, &pem)
            .map_err(|e| anyhow::anyhow!("key {} is not usable: {e}", entry.file))?;
        keys.push(Arc::new(SigningKey {
            kid: entry.kid,
            alg: entry.alg,
            activates_at: entry.activates_at,
            retires_at: entry.retires_at,
            material,
        }));
    }
    if keys.is_empty() {
        anyhow::bail!("the keys manifest lists no key");
    }
    Ok(KeySet { keys })
}

/// Writes the manifest atomically (temporary file, then rename), so a server reading it never
/// sees half of it.
fn write_manifest(dir: &Path, manifest: &Manifest) -> anyhow::Result<()> {
    let tmp = dir.join(format!(
        ".{MANIFEST}.{}.tmp",
        crate::crypto::random_token(6)
    ));
    std::fs::write(&tmp, serde_json::to_vec_pretty(manifest)?)?;
    std::fs::rename(&tmp, dir.join(MANIFEST))?;
    Ok(())
}

/// The keys folder, readable by this user only (0700): the private keys are 0600 each, and the
/// folder's listing and manifest say which keys exist and when they rotate. A folder found
/// open to others is closed where it can be, with a warning either way.
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if let Some(parent) = dir.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
        match std::fs::DirBuilder::new().mode(0o700).create(dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => {
                let mode = std::fs::metadata(dir)?.permissions().mode();
                if mode & 0o077 != 0 {
                    // Best effort: a folder mounted read-only (a secret volume) stays as it is.
                    let shown = format!("{:o}", mode & 0o777);
                    match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
                        Ok(()) => {
                            tracing::warn!(dir = %dir.display(), mode = shown, "the keys folder was open to other users: set it to 0700")
                        }
                        Err(e) => {
                            tracing::warn!(dir = %dir.display(), mode = shown, error = %e, "the keys folder is open to other users and cannot be closed")
                        }
                    }
                }
            }
            Err(e) => return Err(e),
        }
        Ok(())
    }
    #[cfg(not(unix))]
    {
        std::fs::create_dir_all(dir)
    }
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;
    f.write_all(contents.as_bytes())?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_folder_gets_one_key_per_algorithm_and_rotation_publishes_before_signing() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open_or_init(dir.path(), 1000).unwrap();
        let set = store.current();
        let es = set.signer(Algorithm::ES256, 1000).unwrap();
        assert!(set.signer(Algorithm::RS256, 1000).is_some());
        assert_eq!(set.jwks(1000)["keys"].as_array().unwrap().len(), 2);

        rotate(dir.path(), 2000, 120, Retire::After(3600)).unwrap();
        let set = store.current();
        // Published at once, signing only after the publish-ahead window.
        assert_eq!(set.jwks(2000)["keys"].as_array().unwrap().len(), 4);
        assert_eq!(set.signer(Algorithm::ES256, 2000).unwrap().kid, es.kid);
        let new = set.signer(Algorithm::ES256, 2120).unwrap();
        assert_ne!(new.kid, es.kid);
        // The old key leaves the JWKS once its tokens have expired.
        assert_eq!(set.jwks(2120 + 3600)["keys"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn revoking_the_old_keys_takes_them_out_of_the_jwks_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open_or_init(dir.path(), 1000).unwrap();
        let old = store.current().signer(Algorithm::ES256, 1000).unwrap();
        // A rotation that keeps them, then one that revokes everything before it.
        rotate(dir.path(), 2000, 120, Retire::After(3600)).unwrap();
        rotate(dir.path(), 2010, 0, Retire::Now).unwrap();
        let set = store.current();
        let kids: Vec<String> = set.jwks(2010)["keys"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["kid"].as_str().unwrap().to_string())
            .collect();
        assert_eq!(
            kids.len(),
            2,
            "only the newest ES256 and RS256 keys: {kids:?}"
        );
        assert!(!kids.contains(&old.kid));
        let signer = set.signer(Algorithm::ES256, 2010).unwrap();
        assert!(kids.contains(&signer.kid));
        // Their files are gone from the folder too.
        let pems = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .ends_with(".pem")
            })
            .count();
        assert_eq!(pems, 2);
    }

    #[test]
    fn only_tokens_these_keys_signed_verify() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open_or_init(dir.path(), 1000).unwrap();
        let set = store.current();
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
        let other = tempfile::tempdir().unwrap();
        let foreign = KeyStore::open_or_init(other.path(), 1000).unwrap();
        let token = foreign
            .current()
            .signer(Algorithm::ES256, 1000)
            .unwrap()
            .sign_jwt("JWT", &claims)
            .unwrap();
        assert_eq!(set.verify_jwt(&token, 1000), None);
        assert_eq!(set.verify_jwt("a.b", 1000), None);
    }

    #[test]
    fn the_jwks_never_carries_private_parameters() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open_or_init(dir.path(), 1000).unwrap();
        let jwks = store.current().jwks(1000).to_string();
        for private in ["\"d\"", "\"p\"", "\"q\"", "\"dp\"", "\"dq\"", "\"qi\""] {
            assert!(!jwks.contains(private), "{private} in {jwks}");
        }
    }
}
