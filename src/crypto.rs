//! Small, well-understood building blocks on top of `ring`, `subtle` and `argon2`: random
//! identifiers, hashes of stored secrets, constant-time comparison, password hashing and the
//! one sealing scheme for values kept encrypted at rest ([`Sealer`]). Nothing here invents a
//! primitive.

use std::fmt;

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use ring::digest;
use ring::rand::{SecureRandom, SystemRandom};
use subtle::ConstantTimeEq;

/// `n` bytes from the operating system's CSPRNG, base64url-encoded.
pub fn random_token(n: usize) -> String {
    let mut buf = vec![0u8; n];
    // SystemRandom only fails when the OS has no entropy source at all; there is no safe way to
    // go on issuing credentials then.
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the operating system's random number generator failed");
    URL_SAFE_NO_PAD.encode(buf)
}

/// `N` bytes from the operating system's CSPRNG.
pub fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    // SystemRandom only fails when the OS has no entropy source at all; there is no safe way to
    // go on making keys then.
    SystemRandom::new()
        .fill(&mut buf)
        .expect("the operating system's random number generator failed");
    buf
}

/// A 128-bit random identifier (22 characters), for rows and `jti`s.
pub fn random_id() -> String {
    random_token(16)
}

/// A time-ordered unique identifier: 32 lowercase hex digits, 48 bits of Unix milliseconds
/// then 80 random bits. Ids issued close together sort together, so rows written often and
/// keyed by one (access tokens) land at the end of their index rather than on a random page.
pub fn ordered_id() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let mut buf = [0u8; 16];
    buf[..6].copy_from_slice(&ms.to_be_bytes()[2..]);
    SystemRandom::new()
        .fill(&mut buf[6..])
        .expect("the operating system's random number generator failed");
    let mut out = String::with_capacity(32);
    for b in buf {
        use std::fmt::Write;
        let _ = write!(out, "{b:02x}");
    }
    out
}

/// A 256-bit random secret (43 characters), for codes, tokens, sessions and client secrets.
pub fn random_secret() -> String {
    random_token(32)
}

pub fn sha256(data: &[u8]) -> [u8; 32] {
    let d = digest::digest(&digest::SHA256, data);
    let mut out = [0u8; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// The value stored in place of a high-entropy secret (authorization code, token, session id,
/// machine-generated client secret): SHA-256, base64url. A 256-bit random secret cannot be
/// brute-forced from its hash, so a slow password hash would only cost time on every request.
pub fn secret_hash(secret: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(secret.as_bytes()))
}

/// Constant-time equality of two byte strings (the length is not secret).
pub fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// A secret value: prints redacted, has no derived equality.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Read from a flag or a variable as it is (checked where it is used, which names it).
impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Self(s.to_string()))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret([redacted])")
    }
}

/// What a sealed value starts with, naming the sealing scheme.
const SEALED_PREFIX: &str = "v1:";

/// Seals small values at rest (webhook signing secrets, signing keys, instance secrets):
/// AES-256-GCM (`ring::aead`) with a random 96-bit nonce per value, written `v1:` + base64 of
/// nonce, ciphertext and tag. The caller passes the row's identity as associated data, so a
/// sealed value copied into another row does not open. A random nonce is safe here: far fewer
/// than 2^32 values are ever sealed under one key.
pub struct Sealer {
    key: LessSafeKey,
}

impl fmt::Debug for Sealer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Sealer([redacted])")
    }
}

impl Sealer {
    pub fn new(key: &[u8; 32]) -> Self {
        // AES-256 takes exactly 32 bytes, which the type guarantees.
        let key = UnboundKey::new(&AES_256_GCM, key).expect("a 32-byte AES-256 key");
        Self {
            key: LessSafeKey::new(key),
        }
    }

    /// `plain` sealed for the row `aad`: `v1:` + base64 of nonce, ciphertext and tag.
    pub fn seal(&self, aad: &str, plain: &[u8]) -> String {
        let nonce_bytes = random_bytes::<NONCE_LEN>();
        let mut sealed = plain.to_vec();
        // Sealing fails only for inputs of absurd length (gigabytes), never for a key or a
        // secret; an empty answer never opens, so such a value would fail closed.
        if self
            .key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce_bytes),
                Aad::from(aad.as_bytes()),
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

    /// The value sealed for the row `aad`; `None` when it does not open (another key, another
    /// row, or altered).
    pub fn open(&self, aad: &str, sealed: &str) -> Option<Vec<u8>> {
        let raw = STANDARD.decode(sealed.strip_prefix(SEALED_PREFIX)?).ok()?;
        if raw.len() < NONCE_LEN {
            return None;
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).ok()?;
        let mut body = body.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(aad.as_bytes()), &mut body)
            .ok()?;
        Some(plain.to_vec())
    }
}

/// Hashes a person's password with argon2id (default parameters: 19 MiB, 2 passes).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| anyhow::anyhow!("hashing a password failed: {e}"))
}

/// Verifies a password against a stored argon2 PHC string. A malformed stored hash counts as a
/// mismatch (and is logged by the caller's context), never as a success.
pub fn verify_password(password: &str, phc: &str) -> bool {
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// A valid argon2id hash of a random password, verified against when an account does not exist
/// so that a wrong email costs as long as a wrong password.
pub fn dummy_password_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password(&random_secret()).unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_password_verifies_only_against_its_own_hash() {
        let h = hash_password("correct horse battery staple").unwrap();
        assert!(verify_password("correct horse battery staple", &h));
        assert!(!verify_password("correct horse battery stapler", &h));
        assert!(!verify_password("anything", "not a phc string"));
    }

    #[test]
    fn ordered_ids_are_unique_and_sort_by_time() {
        let a = ordered_id();
        std::thread::sleep(std::time::Duration::from_millis(2));
        let b = ordered_id();
        assert_eq!((a.len(), b.len()), (32, 32));
        assert!(
            a.bytes()
                .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
        );
        assert!(a < b, "{a} then {b}");
        let same_ms: std::collections::HashSet<String> = (0..1000).map(|_| ordered_id()).collect();
        assert_eq!(same_ms.len(), 1000);
    }

    #[test]
    fn ct_eq_compares_contents_and_length() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"abcd"));
    }

    #[test]
    fn secrets_print_redacted() {
        assert_eq!(
            format!("{:?}", Secret::new("hunter2")),
            "Secret([redacted])"
        );
    }
}

/// Why [`verify_with_jwk`] did not accept a signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JwkVerifyError {
    /// The JWK lacks a member the algorithm needs, or a member is not base64url of the right size.
    UnusableKey,
    /// The key is usable, and the signature does not verify with it.
    BadSignature,
}

/// Verifies a JWS signature (RFC 7515 §5.2) over `message` with a public JWK, in `ring`:
/// `ES256` (an EC P-256 key, the 64-byte `R || S` signature of RFC 7518 §3.4), `EdDSA`
/// (an OKP Ed25519 key, RFC 8037), `PS256` and `RS256` (RSA keys of 2048 to 8192 bits). The
/// caller has already checked that the key's type fits the algorithm's. `ring`'s ECDSA is
/// several times faster than the portable arithmetic behind `jsonwebtoken`'s `rust_crypto`
/// backend, which matters on paths that verify a signature per request (DPoP proofs).
pub fn verify_with_jwk(
    alg: &str,
    jwk: &serde_json::Map<String, serde_json::Value>,
    message: &[u8],
    signature: &[u8],
) -> Result<(), JwkVerifyError> {
    use ring::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
    let member = |name: &str| -> Result<Vec<u8>, JwkVerifyError> {
        jwk.get(name)
            .and_then(serde_json::Value::as_str)
            .and_then(|s| URL_SAFE_NO_PAD.decode(s).ok())
            .filter(|b| !b.is_empty())
            .ok_or(JwkVerifyError::UnusableKey)
    };
    let checked = |ok: bool| {
        if ok {
            Ok(())
        } else {
            Err(JwkVerifyError::BadSignature)
        }
    };
    match alg {
        "ES256" => {
            let (x, y) = (member("x")?, member("y")?);
            if x.len() != 32 || y.len() != 32 {
                return Err(JwkVerifyError::UnusableKey);
            }
            // The uncompressed SEC1 point: 0x04 || x || y (ring checks it is on the curve).
            let mut point = Vec::with_capacity(65);
            point.push(4);
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            checked(
                UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, &point)
                    .verify(message, signature)
                    .is_ok(),
            )
        }
        "EdDSA" => {
            let x = member("x")?;
            if x.len() != 32 {
                return Err(JwkVerifyError::UnusableKey);
            }
            checked(
                UnparsedPublicKey::new(&signature::ED25519, &x)
                    .verify(message, signature)
                    .is_ok(),
            )
        }
        "PS256" | "RS256" => {
            let n = member("n")?;
            let bits = n.iter().skip_while(|b| **b == 0).count() * 8;
            if !(2048..=8192).contains(&bits) {
                return Err(JwkVerifyError::UnusableKey);
            }
            let key = RsaPublicKeyComponents { n, e: member("e")? };
            let params = if alg == "PS256" {
                &signature::RSA_PSS_2048_8192_SHA256
            } else {
                &signature::RSA_PKCS1_2048_8192_SHA256
            };
            checked(key.verify(params, message, signature).is_ok())
        }
        _ => Err(JwkVerifyError::UnusableKey),
    }
}
