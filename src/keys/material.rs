//! Key material: generation, PKCS#8 PEM storage, parsing once into `ring` key pairs, and the
//! public JWK (RFC 7518 §6). RSA keys are generated with the `rsa` crate (ring cannot generate
//! RSA keys) and then used through ring like the EC ones.

use crate::wire::{try_from_string, wire_enum};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, KeyPair, RsaKeyPair};

wire_enum! {
    /// JWS algorithms onyx-id signs with (RFC 7518 §3.1).
    /// Its name (the JWS `alg`, the key files, `--id-token-alg`) is derived once, from the variant.
    #[derive(PartialOrd, Ord, Hash)]
    #[serde(try_from = "String")]
    pub enum Algorithm {
        ES256,
        RS256,
    }
}

try_from_string!(Algorithm, "algorithm");

pub enum KeyMaterial {
    Ec {
        pair: EcdsaKeyPair,
        pkcs8: Vec<u8>,
        rng: SystemRandom,
    },
    Rsa {
        pair: RsaKeyPair,
        pkcs8: Vec<u8>,
        rng: SystemRandom,
    },
}

const PEM_LABEL: &str = "PRIVATE KEY";

impl KeyMaterial {
    pub fn generate(alg: Algorithm) -> anyhow::Result<Self> {
        let pkcs8 = match alg {
            Algorithm::ES256 => {
                let rng = SystemRandom::new();
                EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
                    .map_err(|_| anyhow::anyhow!("generating a P-256 key failed"))?
                    .as_ref()
                    .to_vec()
            }
            Algorithm::RS256 => {
                use rsa::pkcs8::EncodePrivateKey;
                let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048)?;
                key.to_pkcs8_der()?.as_bytes().to_vec()
            }
        };
        Self::from_pkcs8(alg, pkcs8)
    }

    pub fn from_pkcs8(alg: Algorithm, pkcs8: Vec<u8>) -> anyhow::Result<Self> {
        let rng = SystemRandom::new();
        Ok(match alg {
            Algorithm::ES256 => {
                let pair = EcdsaKeyPair::from_pkcs8(
                    &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
                    &pkcs8,
                    &rng,
                )
                .map_err(|e| anyhow::anyhow!("not a P-256 PKCS#8 key: {e}"))?;
                Self::Ec { pair, pkcs8, rng }
            }
            Algorithm::RS256 => {
                let pair = RsaKeyPair::from_pkcs8(&pkcs8)
                    .map_err(|e| anyhow::anyhow!("not an RSA PKCS#8 key: {e}"))?;
                Self::Rsa { pair, pkcs8, rng }
            }
        })
    }

    pub fn to_pem(&self) -> String {
        let der = match self {
            Self::Ec { pkcs8, .. } | Self::Rsa { pkcs8, .. } => pkcs8,
        };
        let b64 = STANDARD.encode(der);
        let mut out = format!("-----BEGIN {PEM_LABEL}-----\n");
        for chunk in b64.as_bytes().chunks(64) {
            out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
            out.push('\n');
        }
        out.push_str(&format!("-----END {PEM_LABEL}-----\n"));
        out
    }

    pub fn from_pem(alg: Algorithm, pem: &str) -> anyhow::Result<Self> {
        let body: String = pem
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("-----"))
            .collect();
        let der = STANDARD
            .decode(body)
            .map_err(|e| anyhow::anyhow!("the PEM body is not base64: {e}"))?;
        Self::from_pkcs8(alg, der)
    }

    pub fn sign(&self, message: &[u8]) -> anyhow::Result<Vec<u8>> {
        match self {
            Self::Ec { pair, rng, .. } => pair
                .sign(rng, message)
                .map(|s| s.as_ref().to_vec())
                .map_err(|_| anyhow::anyhow!("ES256 signing failed")),
            Self::Rsa { pair, rng, .. } => {
                let mut sig = vec![0u8; pair.public().modulus_len()];
                pair.sign(&signature::RSA_PKCS1_SHA256, rng, message, &mut sig)
                    .map_err(|_| anyhow::anyhow!("RS256 signing failed"))?;
                Ok(sig)
            }
        }
    }

    /// Whether `signature` is this key's signature of `message`.
    pub fn verify(&self, message: &[u8], sig: &[u8]) -> bool {
        match self {
            Self::Ec { pair, .. } => signature::UnparsedPublicKey::new(
                &signature::ECDSA_P256_SHA256_FIXED,
                pair.public_key().as_ref(),
            )
            .verify(message, sig)
            .is_ok(),
            Self::Rsa { pair, .. } => signature::UnparsedPublicKey::new(
                &signature::RSA_PKCS1_2048_8192_SHA256,
                pair.public().as_ref(),
            )
            .verify(message, sig)
            .is_ok(),
        }
    }

    /// The public half as a JWK, with `kid`, `alg` and `use`; never a private parameter.
    pub fn public_jwk(&self, kid: &str, alg: Algorithm) -> serde_json::Value {
        match self {
            Self::Ec { pair, .. } => {
                // Uncompressed SEC1 point: 0x04 || x || y.
                let point = pair.public_key().as_ref();
                let (x, y) = point[1..].split_at(32);
                serde_json::json!({
                    "kty": "EC", "crv": "P-256", "kid": kid, "alg": alg.as_str(), "use": "sig",
                    "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y),
                })
            }
            Self::Rsa { pair, .. } => {
                let public: ring::rsa::PublicKeyComponents<Vec<u8>> = pair.public().into();
                let (n, e) = (public.n, public.e);
                serde_json::json!({
                    "kty": "RSA", "kid": kid, "alg": alg.as_str(), "use": "sig",
                    "n": URL_SAFE_NO_PAD.encode(n), "e": URL_SAFE_NO_PAD.encode(e),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn algorithms_have_one_name_for_parse_print_and_serde() {
        use strum::{IntoEnumIterator, VariantNames};
        assert_eq!(Algorithm::VARIANTS, ["ES256", "RS256"]);
        for alg in Algorithm::iter() {
            assert_eq!(Algorithm::parse(alg.as_str()), Some(alg));
            let json = serde_json::to_value(alg).unwrap();
            assert_eq!(json, alg.as_str());
            assert_eq!(serde_json::from_value::<Algorithm>(json).unwrap(), alg);
        }
        assert!(serde_json::from_value::<Algorithm>("es256".into()).is_err());
    }
}
