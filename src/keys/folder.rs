//! The keys folder (`ONYX_KEYS_DIR`). Before migration 0018 it held the signing keys (one
//! PKCS#8 PEM per key and `keys.json`, the manifest) and the instance secrets; now it holds only
//! `key-encryption.key` when `ONYX_KEY_ENCRYPTION_KEY` is not set. Its old contents are read
//! once, to be imported into the database on first start, and are left on disk.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::Deserialize;

use super::material::{Algorithm, KeyMaterial};
use crate::clock::Timestamp;

const MANIFEST: &str = "keys.json";

#[derive(Debug, Clone, Deserialize)]
struct ManifestEntry {
    kid: String,
    alg: Algorithm,
    file: String,
    created_at: Timestamp,
    activates_at: Timestamp,
    retires_at: Option<Timestamp>,
}

#[derive(Debug, Clone, Default, Deserialize)]
struct Manifest {
    keys: Vec<ManifestEntry>,
}

/// A key from the folder, with its kid and times as the manifest gave them.
pub(super) struct FileKey {
    pub kid: String,
    pub alg: Algorithm,
    pub pem: String,
    pub created_at: Timestamp,
    pub activates_at: Timestamp,
    pub retires_at: Option<Timestamp>,
}

/// The keys the folder's manifest lists, each checked to be usable; `None` when the folder has
/// no manifest (a fresh deployment). Keys already retired at `now` are left out.
pub(super) fn read_keys(dir: &Path, now: Timestamp) -> anyhow::Result<Option<Vec<FileKey>>> {
    let path = dir.join(MANIFEST);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    };
    let manifest: Manifest = serde_json::from_str(&text)
        .map_err(|e| anyhow::anyhow!("{} is not valid: {e}", path.display()))?;
    let mut keys = Vec::new();
    for entry in manifest
        .keys
        .into_iter()
        .filter(|k| k.retires_at.is_none_or(|r| r > now))
    {
        let pem = std::fs::read_to_string(dir.join(&entry.file))
            .map_err(|e| anyhow::anyhow!("cannot read key {}: {e}", entry.file))?;
        KeyMaterial::from_pem(entry.alg, &pem)
            .map_err(|e| anyhow::anyhow!("key {} is not usable: {e}", entry.file))?;
        keys.push(FileKey {
            kid: entry.kid,
            alg: entry.alg,
            pem,
            created_at: entry.created_at,
            activates_at: entry.activates_at,
            retires_at: entry.retires_at,
        });
    }
    if keys.is_empty() {
        anyhow::bail!(
            "{} lists no key that is still published: move it away to start with new keys",
            path.display()
        );
    }
    Ok(Some(keys))
}

/// The 32-byte secret in the folder's file `path` (base64), if there is one.
pub(super) fn read_secret(path: &Path) -> anyhow::Result<Option<[u8; 32]>> {
    let raw = match std::fs::read_to_string(path) {
        Ok(raw) => raw,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
    };
    let bytes: [u8; 32] = STANDARD
        .decode(raw.trim())
        .ok()
        .and_then(|b| b.try_into().ok())
        .ok_or_else(|| anyhow::anyhow!("{} does not hold a 32-byte key", path.display()))?;
    Ok(Some(bytes))
}

/// The keys folder, readable by this user only (0700): it may hold the key encryption key, and
/// from before, the private keys. A folder found open to others is closed where it can be,
/// with a warning either way.
pub(super) fn create_private_dir(dir: &Path) -> std::io::Result<()> {
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

/// Writes `contents` to a new file readable by this user only (0600) and returns it; when the
/// file exists already (written before, or by another instance starting at the same moment),
/// returns what it holds instead.
pub(super) fn write_new_private(path: &Path, contents: &str) -> anyhow::Result<String> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    match opts.open(path) {
        Ok(mut f) => {
            f.write_all(contents.as_bytes())?;
            f.sync_all()?;
            Ok(contents.to_string())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            // Another instance may have created it an instant ago and not written it yet.
            for _ in 0..40 {
                let found = std::fs::read_to_string(path)
                    .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
                if !found.is_empty() {
                    return Ok(found);
                }
                std::thread::sleep(std::time::Duration::from_millis(25));
            }
            anyhow::bail!("{} is empty", path.display())
        }
        Err(e) => anyhow::bail!("cannot write {}: {e}", path.display()),
    }
}
