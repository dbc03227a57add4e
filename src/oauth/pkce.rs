//! Proof Key for Code Exchange (RFC 7636), `S256` only: OAuth 2.1 and RFC 9700 §2.1.1 require
//! PKCE of every client, and `plain` protects nothing once the request leaks.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::crypto::{ct_eq, sha256};

/// `code_challenge` (RFC 7636 §4.2): base64url of a SHA-256, so exactly 43 characters.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct CodeChallenge(String);

impl CodeChallenge {
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        if raw.len() == 43 && raw.bytes().all(is_b64url) {
            Ok(Self(raw.to_string()))
        } else {
            Err("code_challenge must be the 43-character base64url SHA-256 of the code_verifier")
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn is_b64url(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Whether `verifier` (RFC 7636 §4.1: 43–128 unreserved characters) answers `challenge`.
pub fn verify(verifier: &str, challenge: &str) -> Result<(), &'static str> {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    if !well_formed {
        return Err("code_verifier must be 43 to 128 unreserved characters");
    }
    let computed = URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()));
    if ct_eq(computed.as_bytes(), challenge.as_bytes()) {
        Ok(())
    } else {
        Err("code_verifier does not match the code_challenge")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_appendix_b_example_verifies() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(CodeChallenge::parse(challenge).is_ok());
        assert!(verify(verifier, challenge).is_ok());
        assert!(verify("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXj", challenge).is_err());
        assert!(verify("short", challenge).is_err());
    }
}
