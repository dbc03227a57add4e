//! A DPoP client (RFC 9449) written for the tests: keys and proofs signed with `ring`, which
//! the server does not use to verify them (it verifies with jsonwebtoken's RustCrypto
//! backend), and the RFC 7638 thumbprint computed here from the JWK's members.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use ring::rand::SystemRandom;
use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

use crate::helpers::{Client, TestApp, http, json_of};

pub fn b64(v: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(v)
}

/// A client's DPoP key: ES256 (P-256) or EdDSA (Ed25519).
pub enum DpopKey {
    Es256(EcdsaKeyPair),
    Ed25519(Ed25519KeyPair),
}

impl DpopKey {
    pub fn es256() -> Self {
        let rng = SystemRandom::new();
        let alg = &signature::ECDSA_P256_SHA256_FIXED_SIGNING;
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(alg, &rng).unwrap();
        Self::Es256(EcdsaKeyPair::from_pkcs8(alg, pkcs8.as_ref(), &rng).unwrap())
    }

    pub fn ed25519() -> Self {
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
        Self::Ed25519(Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap())
    }

    pub fn alg(&self) -> &'static str {
        match self {
            Self::Es256(_) => "ES256",
            Self::Ed25519(_) => "EdDSA",
        }
    }

    /// The public JWK.
    pub fn jwk(&self) -> Value {
        match self {
            Self::Es256(k) => {
                let p = k.public_key().as_ref();
                json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])})
            }
            Self::Ed25519(k) => {
                json!({"kty": "OKP", "crv": "Ed25519", "x": b64(k.public_key().as_ref())})
            }
        }
    }

    /// RFC 7638 §3: the required members in lexicographic order, no whitespace, SHA-256.
    pub fn jkt(&self) -> String {
        let j = self.jwk();
        let canonical = match self {
            Self::Es256(_) => format!(
                r#"{{"crv":"P-256","kty":"EC","x":"{}","y":"{}"}}"#,
                j["x"].as_str().unwrap(),
                j["y"].as_str().unwrap()
            ),
            Self::Ed25519(_) => format!(
                r#"{{"crv":"Ed25519","kty":"OKP","x":"{}"}}"#,
                j["x"].as_str().unwrap()
            ),
        };
        b64(onyx_id::crypto::sha256(canonical.as_bytes()).as_ref())
    }

    /// The proof header: `typ`, `alg` and this key's `jwk`.
    pub fn header(&self) -> Value {
        json!({"typ": "dpop+jwt", "alg": self.alg(), "jwk": self.jwk()})
    }

    /// A JWS over `header` and `claims`, signed with this key whatever the header says.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = match self {
            Self::Es256(k) => k
                .sign(&SystemRandom::new(), input.as_bytes())
                .unwrap()
                .as_ref()
                .to_vec(),
            Self::Ed25519(k) => k.sign(input.as_bytes()).as_ref().to_vec(),
        };
        format!("{input}.{}", b64(&sig))
    }

    /// A proper proof for `method` and `url` at `iat`, with a fresh `jti`.
    pub fn proof(&self, method: &str, url: &str, iat: i64) -> String {
        self.sign(&self.header(), &claims(method, url, iat))
    }

    /// A proper proof for a resource request with `access_token` (`ath`).
    pub fn proof_for_token(&self, method: &str, url: &str, iat: i64, access_token: &str) -> String {
        let mut c = claims(method, url, iat);
        c["ath"] = ath(access_token).into();
        self.sign(&self.header(), &c)
    }
}

/// `htm`, `htu`, `iat` and a fresh `jti`.
pub fn claims(method: &str, url: &str, iat: i64) -> Value {
    json!({"htm": method, "htu": url, "iat": iat, "jti": onyx_id::crypto::random_id()})
}

/// base64url(SHA-256(access token)) (RFC 9449 §4.2).
pub fn ath(access_token: &str) -> String {
    b64(onyx_id::crypto::sha256(access_token.as_bytes()).as_ref())
}

/// The token endpoint's public URL (what `htu` names).
pub fn token_url(app: &TestApp) -> String {
    format!("{}/token", app.issuer)
}

pub fn userinfo_url(app: &TestApp) -> String {
    format!("{}/userinfo", app.issuer)
}

/// A token request to `base` (an instance's address) with a `DPoP` header per proof; a
/// confidential app authenticates with HTTP Basic, a public one names itself in the body.
pub async fn token_at(
    base: &str,
    client: &Client,
    form: &[(&str, &str)],
    proofs: &[&str],
) -> (StatusCode, HeaderMap, Value) {
    let mut form: Vec<(&str, &str)> = form.to_vec();
    let mut req = http().post(format!("{base}/token"));
    match &client.client_secret {
        Some(s) => req = req.basic_auth(&client.client_id, Some(s)),
        None => form.push(("client_id", &client.client_id)),
    }
    for p in proofs {
        req = req.header("DPoP", *p);
    }
    let res = req.form(&form).send().await.unwrap();
    let headers = res.headers().clone();
    let (status, v) = json_of(res).await;
    (status, headers, v)
}

/// [`token_at`] the app's own address.
pub async fn token(
    app: &TestApp,
    client: &Client,
    form: &[(&str, &str)],
    proofs: &[&str],
) -> (StatusCode, HeaderMap, Value) {
    token_at(&app.address, client, form, proofs).await
}

/// The claims of a JWT (read, not verified: the tests look at what the server put in).
pub fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}
