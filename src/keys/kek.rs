//! The key encryption key (KEK): the one secret outside the database, sealing the signing keys
//! and the instance secrets stored in it. From `ONYX_KEY_ENCRYPTION_KEY`, else from the file
//! `key-encryption.key` in the keys folder, written on first start so that a fresh clone runs
//! with no setup.

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::config::Settings;
use crate::crypto::{Sealer, random_bytes};

/// The variable (and, as `--key-encryption-key`, the flag) that carries the KEK.
pub const KEK_VARIABLE: &str = "ONYX_KEY_ENCRYPTION_KEY";

/// The KEK's file in the keys folder, used when the variable is not set.
pub const KEK_FILE: &str = "key-encryption.key";

/// 32 random bytes, written base64url without padding (43 characters) in the variable and the
/// file alike, so the file's contents can be moved into the variable as they are. Prints
/// redacted and has no equality.
#[derive(Clone)]
pub struct KeyEncryptionKey([u8; 32]);

impl fmt::Debug for KeyEncryptionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyEncryptionKey([redacted])")
    }
}

impl KeyEncryptionKey {
    /// Reads 43 base64url characters (no padding) that decode to 32 bytes; `None` otherwise.
    pub fn parse(raw: &str) -> Option<Self> {
        let raw = raw.trim();
        if raw.len() != 43 {
            return None;
        }
        let bytes: [u8; 32] = URL_SAFE_NO_PAD.decode(raw).ok()?.try_into().ok()?;
        Some(Self(bytes))
    }

    /// `parse`, with the one line that stops start-up naming the variable.
    pub fn from_setting(raw: &str) -> Result<Self, String> {
        Self::parse(raw).ok_or_else(|| {
            format!(
                "{KEK_VARIABLE} must be 32 random bytes written base64url without padding \
                 (43 characters, e.g. `openssl rand -base64 32 | tr '+/' '-_' | tr -d '='`)"
            )
        })
    }

    /// The configured KEK, else the one in the keys folder's `key-encryption.key`, which is
    /// created (0600, in a 0700 folder) when missing.
    pub fn resolve(settings: &Settings) -> anyhow::Result<Self> {
        if let Some(kek) = &settings.key_encryption_key {
            return Ok(kek.clone());
        }
        super::folder::create_private_dir(&settings.keys_dir).map_err(|e| {
            anyhow::anyhow!(
                "cannot create the keys folder {}: {e}",
                settings.keys_dir.display()
            )
        })?;
        let path = settings.keys_dir.join(KEK_FILE);
        let fresh = URL_SAFE_NO_PAD.encode(random_bytes::<32>());
        let contents = super::folder::write_new_private(&path, &fresh)?;
        let created = contents == fresh;
        let kek = Self::parse(&contents).ok_or_else(|| {
            anyhow::anyhow!(
                "{} does not hold a key encryption key (32 bytes, base64url without padding)",
                path.display()
            )
        })?;
        if created {
            tracing::warn!(
                file = %path.display(),
                "no {KEK_VARIABLE} is set: a new key encryption key was written to the keys folder; back it up, and set the same {KEK_VARIABLE} on every instance that shares this database"
            );
        }
        Ok(kek)
    }

    pub(crate) fn sealer(&self) -> Sealer {
        Sealer::new(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_43_base64url_characters_of_32_bytes_are_a_kek() {
        let good = URL_SAFE_NO_PAD.encode([7u8; 32]);
        assert!(KeyEncryptionKey::parse(&good).is_some());
        assert!(KeyEncryptionKey::parse(&format!("{good}\n")).is_some());
        for bad in [
            String::new(),
            good[..42].to_string(),
            format!("{good}A"),
            format!("{good}="),
            URL_SAFE_NO_PAD.encode([7u8; 31]),
            good.replace(&good[..1], "+"),
            "not a key at all, not a key at all, not a".to_string(),
        ] {
            assert!(KeyEncryptionKey::parse(&bad).is_none(), "{bad:?}");
        }
        let message = KeyEncryptionKey::from_setting("short").unwrap_err();
        assert!(message.starts_with("ONYX_KEY_ENCRYPTION_KEY must be"));
        assert!(!format!("{:?}", KeyEncryptionKey::parse(&good).unwrap()).contains(&good));
    }

    #[test]
    fn without_the_variable_the_kek_is_written_once_to_the_keys_folder() {
        let dir = tempfile::tempdir().unwrap();
        let keys = dir.path().join("keys");
        let settings = Settings::parse(
            "127.0.0.1:0",
            "http://127.0.0.1:8080",
            "sqlite://x.db",
            keys.to_str().unwrap(),
        )
        .unwrap();
        let first = KeyEncryptionKey::resolve(&settings).unwrap();
        let again = KeyEncryptionKey::resolve(&settings).unwrap();
        assert_eq!(first.0, again.0);
        let text = std::fs::read_to_string(keys.join(KEK_FILE)).unwrap();
        assert_eq!(KeyEncryptionKey::parse(&text).unwrap().0, first.0);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(keys.join(KEK_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        // A configured one wins over the file.
        let mut configured = settings.clone();
        configured.key_encryption_key = Some(KeyEncryptionKey([9; 32]));
        assert_eq!(KeyEncryptionKey::resolve(&configured).unwrap().0, [9; 32]);
    }
}
