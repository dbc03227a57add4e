//! Endpoint signing secrets: their format (`whsec_` + base64 of 32 random bytes), the Standard
//! Webhooks 1.0 signature (HMAC-SHA256 of `{id}.{timestamp}.{body}`, `ring::hmac`), and their
//! sealing at rest ([`crate::crypto::Sealer`], under an instance secret kept in the database).

use std::fmt;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::hmac;

use crate::crypto::{Sealer, random_bytes};
use crate::keys::KeyEncryptionKey;
use crate::store::Db;

/// What every secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";

/// The sealing key's file in the keys folder, before it moved into the database (imported
/// from there on first start, so secrets sealed before still open).
pub const SEALING_KEY_FILE: &str = "webhook-secrets.key";

/// The sealing key's name among the instance secrets in the database.
pub const SEALING_KEY_NAME: &str = "webhook-secrets";

/// An endpoint's signing secret. Prints redacted and has no equality; [`Self::expose`] is the
/// one way to its text, shown to the partner once.
#[derive(Clone)]
pub struct SigningSecret(Vec<u8>);

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(redacted)")
    }
}

impl SigningSecret {
    /// A fresh secret of 32 random bytes.
    pub fn generate() -> Self {
        Self(random_bytes::<32>().to_vec())
    }

    /// Reads `whsec_<base64>`.
    pub fn parse(raw: &str) -> Option<Self> {
        let key = STANDARD.decode(raw.strip_prefix(SECRET_PREFIX)?).ok()?;
        (!key.is_empty()).then_some(Self(key))
    }

    /// The secret as the partner keeps it: `whsec_` + base64.
    pub fn expose(&self) -> String {
        format!("{SECRET_PREFIX}{}", STANDARD.encode(&self.0))
    }

    /// `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">` (Standard Webhooks 1.0).
    pub fn sign(&self, id: &str, timestamp: i64, body: &[u8]) -> String {
        let key = hmac::Key::new(hmac::HMAC_SHA256, &self.0);
        let mut ctx = hmac::Context::with_key(&key);
        ctx.update(id.as_bytes());
        ctx.update(b".");
        ctx.update(timestamp.to_string().as_bytes());
        ctx.update(b".");
        ctx.update(body);
        format!("v1,{}", STANDARD.encode(ctx.sign().as_ref()))
    }
}

/// The `webhook-signature` header: one signature per secret, space-separated (during a
/// rotation's overlap both the new and the previous secret sign).
pub fn signature_header(
    secrets: &[SigningSecret],
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    secrets
        .iter()
        .map(|s| s.sign(id, timestamp, body))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Seals signing secrets at rest: AES-256-GCM with a random nonce per secret and the
/// endpoint's id as associated data (a sealed secret moved to another row does not open).
pub struct SecretBox {
    sealer: Sealer,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(redacted)")
    }
}

impl SecretBox {
    /// Opens the sealing key, an instance secret in the database sealed by the key encryption
    /// key: imported from the keys folder's `webhook-secrets.key` on first start when there is
    /// one (so secrets sealed before still open), generated otherwise. Every instance sharing
    /// the database gets the same key.
    pub async fn load(
        db: &Db,
        kek: &KeyEncryptionKey,
        keys_dir: &std::path::Path,
    ) -> anyhow::Result<Self> {
        let key = crate::keys::instance_secret(
            db,
            kek,
            SEALING_KEY_NAME,
            &keys_dir.join(SEALING_KEY_FILE),
        )
        .await?;
        Ok(Self::from_key(&key))
    }

    pub fn from_key(key: &[u8; 32]) -> Self {
        Self {
            sealer: Sealer::new(key),
        }
    }

    /// `v1:` + base64 of nonce, ciphertext and tag.
    pub fn seal(&self, endpoint_id: &str, secret: &SigningSecret) -> String {
        self.sealer.seal(endpoint_id, &secret.0)
    }

    /// The secret sealed for `endpoint_id`; `None` when it does not open (another key, another
    /// row, or altered).
    pub fn open(&self, endpoint_id: &str, sealed: &str) -> Option<SigningSecret> {
        self.sealer.open(endpoint_id, sealed).map(SigningSecret)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_test_vectors() {
        // The specification's example (standard-webhooks spec/standard-webhooks.md).
        let secret = SigningSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(
            secret.sign(
                "msg_p5jXN8AQM9LWM0D4loKWxJek",
                1614265330,
                br#"{"test": 2432232314}"#
            ),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
        // The reference Rust library's own vector.
        let secret = SigningSecret::parse("whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD").unwrap();
        assert_eq!(
            secret.sign(
                "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
                1649367553,
                br#"{"email":"test@example.com","username":"test_user"}"#
            ),
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw="
        );
    }

    #[test]
    fn several_secrets_sign_space_separated() {
        let a = SigningSecret::generate();
        let b = SigningSecret::generate();
        let header = signature_header(&[a.clone(), b.clone()], "msg_1", 1, b"{}");
        assert_eq!(
            header,
            format!(
                "{} {}",
                a.sign("msg_1", 1, b"{}"),
                b.sign("msg_1", 1, b"{}")
            )
        );
    }

    #[test]
    fn a_secret_is_whsec_and_32_random_bytes_and_prints_redacted() {
        let s = SigningSecret::generate();
        let text = s.expose();
        assert!(text.starts_with("whsec_"));
        assert_eq!(STANDARD.decode(&text[6..]).unwrap().len(), 32);
        assert_eq!(SigningSecret::parse(&text).unwrap().expose(), text);
        assert!(!format!("{s:?}").contains(&text[6..]));
        assert_ne!(SigningSecret::generate().expose(), text);
    }

    #[test]
    fn sealed_secrets_open_only_with_their_key_and_row() {
        let sealer = SecretBox::from_key(&[1; 32]);
        let secret = SigningSecret::generate();
        let sealed = sealer.seal("ep_1", &secret);
        assert!(sealed.starts_with("v1:"));
        assert!(!sealed.contains(&secret.expose()[6..]));
        assert_ne!(
            sealed,
            sealer.seal("ep_1", &secret),
            "a fresh nonce each time"
        );
        assert_eq!(
            sealer.open("ep_1", &sealed).unwrap().expose(),
            secret.expose()
        );
        assert!(sealer.open("ep_2", &sealed).is_none());
        assert!(
            SecretBox::from_key(&[1; 32])
                .open("ep_1", &sealed)
                .is_some()
        );
        assert!(
            SecretBox::from_key(&[2; 32])
                .open("ep_1", &sealed)
                .is_none()
        );
    }
}
