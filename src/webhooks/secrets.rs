//! Endpoint signing secrets: their format (`whsec_` + base64 of 32 random bytes), the Standard
//! Webhooks 1.0 signature (HMAC-SHA256 of `{id}.{timestamp}.{body}`, `ring::hmac`), and their
//! sealing at rest (AES-256-GCM, `ring::aead`, with a key in the keys folder).

use std::fmt;
use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::hmac;
use ring::rand::{SecureRandom, SystemRandom};

/// What every secret starts with.
pub const SECRET_PREFIX: &str = "whsec_";

/// The sealing key's file in the keys folder.
pub const SEALING_KEY_FILE: &str = "webhook-secrets.key";

/// What a sealed secret starts with, naming the sealing scheme.
const SEALED_PREFIX: &str = "v1:";

fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // SystemRandom only fails when the OS has no entropy source at all; there is no safe way to
    // go on issuing secrets then.
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the operating system's random number generator failed");
    buf
}

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
    key: LessSafeKey,
}

impl fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretBox(redacted)")
    }
}

impl SecretBox {
    /// Opens the sealing key in `keys_dir`, creating it (0600) on first use. Every instance
    /// sharing a database must share the keys folder, as for the signing keys.
    pub fn open_or_create(keys_dir: &Path) -> anyhow::Result<Self> {
        let path = keys_dir.join(SEALING_KEY_FILE);
        let raw = match std::fs::read_to_string(&path) {
            Ok(raw) => raw,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_key_file(&path)?,
            Err(e) => anyhow::bail!("cannot read {}: {e}", path.display()),
        };
        let bytes = STANDARD
            .decode(raw.trim())
            .map_err(|_| anyhow::anyhow!("{} is not base64", path.display()))?;
        let key = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| anyhow::anyhow!("{} does not hold a 32-byte key", path.display()))?;
        Ok(Self {
            key: LessSafeKey::new(key),
        })
    }

    /// `v1:` + base64 of nonce, ciphertext and tag.
    pub fn seal(&self, endpoint_id: &str, secret: &SigningSecret) -> String {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut sealed = secret.0.clone();
        // Sealing fails only for inputs of absurd length, never for a 32-byte secret.
        if self
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(endpoint_id.as_bytes()),
                &mut sealed,
            )
            .is_err()
        {
            return String::new();
        }
        let mut out = nonce_bytes.to_vec();
        out.extend_from_slice(&sealed);
        format!("{SEALED_PREFIX}{}", STANDARD.encode(out))
    }

    /// The secret sealed for `endpoint_id`; `None` when it does not open (another key, another
    /// row, or altered).
    pub fn open(&self, endpoint_id: &str, sealed: &str) -> Option<SigningSecret> {
        let raw = STANDARD.decode(sealed.strip_prefix(SEALED_PREFIX)?).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(endpoint_id.as_bytes()), &mut body)
            .ok()?;
        Some(SigningSecret(plain.to_vec()))
    }
}

/// Writes a new random key, readable by this user only; when another instance wrote one first,
/// reads that one.
pub(crate) fn create_key_file(path: &Path) -> anyhow::Result<String> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let contents = STANDARD.encode(random_bytes::<32>());
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
            Ok(contents)
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Ok(std::fs::read_to_string(path)?)
        }
        Err(e) => anyhow::bail!("cannot write {}: {e}", path.display()),
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
        let dir = tempfile::tempdir().unwrap();
        let sealer = SecretBox::open_or_create(dir.path()).unwrap();
        let secret = SigningSecret::generate();
        let sealed = sealer.seal("ep_1", &secret);
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
        // The same folder gives the same key; another folder another.
        let again = SecretBox::open_or_create(dir.path()).unwrap();
        assert!(again.open("ep_1", &sealed).is_some());
        let other = tempfile::tempdir().unwrap();
        assert!(
            SecretBox::open_or_create(other.path())
                .unwrap()
                .open("ep_1", &sealed)
                .is_none()
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(SEALING_KEY_FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
