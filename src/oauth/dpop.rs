//! DPoP (RFC 9449): checking a proof (§4.3), its `jti` never accepted twice (§11.1), server
//! nonces (§8) and the key thumbprint (RFC 7638) that binds tokens and codes to the key.
//!
//! [`verify`] has no I/O: the header, the signature with the header's own `jwk`, `htm`, `htu`,
//! `iat` and `ath`. [`Nonces`] makes and checks nonces with no state (an HMAC over a time slot,
//! with a key in the database every instance shares, sealed by the key encryption key). The endpoints then record the `jti`
//! (`store::dpop::record_jti`) and bind what they issue to [`Proof::jkt`].

use std::path::Path;

use axum::http::HeaderMap;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::hmac;
use serde_json::Value;

use crate::crypto::{ct_eq, sha256};

/// The proof algorithms accepted, as discovery lists them (`dpop_signing_alg_values_supported`).
pub const ALGS: [&str; 3] = ["ES256", "EdDSA", "PS256"];

/// The `DPoP` request header (§4.1) and the `DPoP-Nonce` response header (§8.1).
pub const HEADER: &str = "dpop";
pub const NONCE_HEADER: &str = "dpop-nonce";

/// Longer proofs are not parsed (a proof with an RSA-4096 key is under 2 KiB).
const MAX_PROOF_LEN: usize = 8192;
/// Longest `jti` accepted, in bytes.
const MAX_JTI_LEN: usize = 256;
/// How long one nonce slot lasts, seconds; a nonce is accepted in its slot and the next.
pub const NONCE_SLOT: i64 = 300;
/// The nonce key's file in the keys folder, before it moved into the database (imported from
/// there on first start).
pub const NONCE_KEY_FILE: &str = "dpop-nonce.key";
/// The nonce key's name among the instance secrets in the database.
pub const NONCE_KEY_NAME: &str = "dpop-nonce";

/// JWK members that only a private (or symmetric) key has (RFC 7518 §6.2.2, §6.3.2, §6.4;
/// RFC 8037 §2). A proof's `jwk` must carry none of them (RFC 9449 §4.2).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// An RFC 7638 JWK SHA-256 thumbprint, base64url without padding (43 characters): what a
/// DPoP-bound token's `cnf.jkt` (RFC 9449 §6.1) and the `dpop_jkt` parameter (§10) carry.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct Jkt(String);

impl Jkt {
    /// A thumbprint as a client sends it (`dpop_jkt`).
    pub fn parse(raw: &str) -> Result<Self, &'static str> {
        let decoded = (raw.len() == 43)
            .then(|| URL_SAFE_NO_PAD.decode(raw).ok())
            .flatten();
        match decoded {
            Some(bytes) if bytes.len() == 32 => Ok(Self(raw.to_string())),
            _ => Err("dpop_jkt must be a base64url SHA-256 JWK thumbprint (43 characters)"),
        }
    }

    /// The thumbprint of a public JWK (RFC 7638 §3): its required members in lexicographic
    /// order, no whitespace, hashed with SHA-256. `None` for a key type DPoP does not accept.
    pub fn of(jwk: &serde_json::Map<String, Value>) -> Option<Self> {
        let members: &[&str] = match jwk.get("kty")?.as_str()? {
            "EC" => &["crv", "kty", "x", "y"],
            "OKP" => &["crv", "kty", "x"],
            "RSA" => &["e", "kty", "n"],
            _ => return None,
        };
        let mut canonical = String::from("{");
        for (i, m) in members.iter().enumerate() {
            let v = jwk.get(*m)?.as_str()?;
            if i > 0 {
                canonical.push(',');
            }
            canonical.push_str(&serde_json::to_string(m).ok()?);
            canonical.push(':');
            canonical.push_str(&serde_json::to_string(v).ok()?);
        }
        canonical.push('}');
        Some(Self(URL_SAFE_NO_PAD.encode(sha256(canonical.as_bytes()))))
    }

    /// A thumbprint read back from a row or a token this server issued.
    pub fn stored(s: String) -> Self {
        Self(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether `other` is the same key (compared in constant time).
    pub fn matches(&self, other: &str) -> bool {
        ct_eq(self.0.as_bytes(), other.as_bytes())
    }
}

/// Why a proof is not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `invalid_dpop_proof`, with what is wrong.
    Invalid(String),
    /// `use_dpop_nonce`: the proof lacks the current server nonce (§8).
    UseNonce,
}

fn invalid(why: impl Into<String>) -> Refusal {
    Refusal::Invalid(why.into())
}

/// A proof that passed [`verify`]. Its `jti` is still to be recorded.
#[derive(Debug)]
pub struct Proof {
    /// The thumbprint of the key that signed it.
    pub jkt: Jkt,
    pub jti: String,
    pub iat: i64,
    pub nonce: Option<String>,
}

impl Proof {
    /// What the replay table stores: the `jti` hashed with the key's thumbprint, so that two
    /// clients' `jti`s never collide and no raw `jti` is kept.
    pub fn replay_key(&self) -> String {
        crate::crypto::secret_hash(&format!("{}:{}", self.jkt.as_str(), self.jti))
    }
}

/// What the request a proof comes with must match.
pub struct Expect<'a> {
    /// The request's method (`htm`).
    pub method: &'a str,
    /// The endpoint's public URL, from the issuer (`htu`).
    pub url: &'a str,
    pub now: i64,
    /// How far `iat` may be from `now`, seconds.
    pub window: i64,
    /// The access token sent with the proof, at a resource (`ath`, §4.2).
    pub access_token: Option<&'a str>,
}

/// The one `DPoP` header's value, if any. Two headers, or one holding a list, is refused
/// (§4.3, check 1).
pub fn header(headers: &HeaderMap) -> Result<Option<&str>, Refusal> {
    let mut values = headers.get_all(HEADER).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid("send exactly one DPoP header"));
    }
    let v = first
        .to_str()
        .map_err(|_| invalid("the DPoP header is not a JWT"))?
        .trim();
    if v.is_empty() || v.contains(',') || v.contains(' ') {
        return Err(invalid("the DPoP header must hold exactly one JWT"));
    }
    Ok(Some(v))
}

/// The normalised form of an `htu` (§4.3, check 9; RFC 3986 §6.2.2 and §6.2.3): scheme and
/// host lowercase, the default port dropped, an empty path as `/`, no query and no fragment.
pub fn normalise_htu(raw: &str) -> Option<String> {
    let mut url = url::Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return None;
    }
    url.set_query(None);
    url.set_fragment(None);
    Some(url.to_string())
}

fn decode_part(part: &str) -> Option<Value> {
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).ok()?).ok()
}

fn numeric(v: Option<&Value>) -> Option<i64> {
    let v = v?;
    v.as_i64().or_else(|| v.as_f64().map(|f| f as i64))
}

/// Checks a proof (§4.3): a JWT with `typ: dpop+jwt`, an accepted asymmetric `alg`, a public
/// `jwk` in its header that verifies its signature, `htm` and `htu` of this request, `iat`
/// within the window, a `jti`, and `ath` when an access token comes with it.
pub fn verify(proof: &str, expect: &Expect<'_>) -> Result<Proof, Refusal> {
    if proof.len() > MAX_PROOF_LEN {
        return Err(invalid("the DPoP proof is too long"));
    }
    let mut parts = proof.split('.');
    let (Some(h), Some(p), Some(sig), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(invalid("the DPoP proof is not a signed JWT (three parts)"));
    };
    let header = decode_part(h).ok_or_else(|| invalid("the DPoP proof's header is not JSON"))?;
    if header.get("typ").and_then(Value::as_str) != Some("dpop+jwt") {
        return Err(invalid("the DPoP proof's typ must be dpop+jwt"));
    }
    let alg = match header.get("alg").and_then(Value::as_str) {
        Some(alg @ ("ES256" | "EdDSA" | "PS256")) => alg,
        Some(other) => {
            return Err(invalid(format!(
                "the DPoP proof's alg {:?} is not accepted: use one of {}",
                other.chars().take(16).collect::<String>(),
                ALGS.join(", ")
            )));
        }
        None => return Err(invalid("the DPoP proof has no alg")),
    };
    let jwk = header
        .get("jwk")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("the DPoP proof's header has no jwk"))?;
    if let Some(m) = PRIVATE_MEMBERS.iter().find(|m| jwk.contains_key(**m)) {
        return Err(invalid(format!(
            "the DPoP proof's jwk must be a public key (it has the private member {m:?})"
        )));
    }
    let fits = match (alg, jwk.get("kty").and_then(Value::as_str)) {
        ("ES256", Some("EC")) => jwk.get("crv").and_then(Value::as_str) == Some("P-256"),
        ("EdDSA", Some("OKP")) => jwk.get("crv").and_then(Value::as_str) == Some("Ed25519"),
        ("PS256", Some("RSA")) => true,
        _ => false,
    };
    if !fits {
        return Err(invalid(
            "the DPoP proof's jwk does not fit its alg (ES256: EC P-256, EdDSA: OKP Ed25519, PS256: RSA)",
        ));
    }
    let jkt = Jkt::of(jwk).ok_or_else(|| invalid("the DPoP proof's jwk is incomplete"))?;
    let signed = &proof[..h.len() + 1 + p.len()];
    let signature = URL_SAFE_NO_PAD
        .decode(sig)
        .map_err(|_| invalid("the DPoP proof's signature is not base64url"))?;
    crate::crypto::verify_with_jwk(alg, jwk, signed.as_bytes(), &signature).map_err(
        |e| match e {
            crate::crypto::JwkVerifyError::BadSignature => {
                invalid("the DPoP proof's signature does not verify with its jwk")
            }
            crate::crypto::JwkVerifyError::UnusableKey => {
                invalid("the DPoP proof's jwk is not usable")
            }
        },
    )?;
    let claims = decode_part(p)
        .filter(Value::is_object)
        .ok_or_else(|| invalid("the DPoP proof's claims are not a JSON object"))?;
    if claims.get("htm").and_then(Value::as_str) != Some(expect.method) {
        return Err(invalid(format!(
            "the DPoP proof's htm must be {}",
            expect.method
        )));
    }
    let htu = claims
        .get("htu")
        .and_then(Value::as_str)
        .and_then(normalise_htu);
    if htu.is_none() || htu != normalise_htu(expect.url) {
        return Err(invalid(format!(
            "the DPoP proof's htu must be {}",
            expect.url
        )));
    }
    let iat = numeric(claims.get("iat")).ok_or_else(|| invalid("the DPoP proof has no iat"))?;
    if (iat - expect.now).abs() > expect.window {
        return Err(invalid(format!(
            "the DPoP proof's iat is more than {} seconds from the server's time",
            expect.window
        )));
    }
    let jti = claims
        .get("jti")
        .and_then(Value::as_str)
        .filter(|j| !j.is_empty() && j.len() <= MAX_JTI_LEN)
        .ok_or_else(|| invalid("the DPoP proof needs a jti (1 to 256 characters)"))?
        .to_string();
    if let Some(token) = expect.access_token {
        let want = URL_SAFE_NO_PAD.encode(sha256(token.as_bytes()));
        let ath = claims.get("ath").and_then(Value::as_str).unwrap_or("");
        if !ct_eq(ath.as_bytes(), want.as_bytes()) {
            return Err(invalid(
                "the DPoP proof's ath must be the base64url SHA-256 of the access token",
            ));
        }
    }
    Ok(Proof {
        jkt,
        jti,
        iat,
        nonce: claims
            .get("nonce")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// Server nonces with no state (§8): the HMAC-SHA256 of the time slot, with a key every
/// instance reads from the shared database. A nonce is accepted in its slot and the next,
/// so one handed out just before a slot ends still works.
pub struct Nonces {
    key: hmac::Key,
}

impl std::fmt::Debug for Nonces {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Nonces([redacted])")
    }
}

impl Nonces {
    pub fn from_key(bytes: &[u8]) -> Self {
        Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        }
    }

    /// Opens the nonce key, an instance secret in the database sealed by the key encryption
    /// key (imported from the keys folder's `dpop-nonce.key` on first start when there is one,
    /// generated otherwise), so every instance makes and accepts the same nonces.
    pub async fn load(
        db: &crate::store::Db,
        kek: &crate::keys::KeyEncryptionKey,
        keys_dir: &Path,
    ) -> anyhow::Result<Self> {
        let key =
            crate::keys::instance_secret(db, kek, NONCE_KEY_NAME, &keys_dir.join(NONCE_KEY_FILE))
                .await?;
        Ok(Self::from_key(&key))
    }

    fn for_slot(&self, slot: i64) -> String {
        let mut msg = b"dpop-nonce:".to_vec();
        msg.extend_from_slice(&slot.to_be_bytes());
        URL_SAFE_NO_PAD.encode(hmac::sign(&self.key, &msg).as_ref())
    }

    /// The nonce to hand out now.
    pub fn current(&self, now: i64) -> String {
        self.for_slot(now.div_euclid(NONCE_SLOT))
    }

    /// Whether `nonce` is the current or the previous slot's.
    pub fn accepts(&self, nonce: &str, now: i64) -> bool {
        let slot = now.div_euclid(NONCE_SLOT);
        [slot, slot - 1]
            .iter()
            .any(|s| ct_eq(self.for_slot(*s).as_bytes(), nonce.as_bytes()))
    }

    /// Whether `proof` carries an accepted nonce; else `use_dpop_nonce`.
    pub fn check(&self, proof: &Proof, now: i64) -> Result<(), Refusal> {
        match &proof.nonce {
            Some(n) if self.accepts(n, now) => Ok(()),
            _ => Err(Refusal::UseNonce),
        }
    }
}

/// Checks a proof for a request and records its `jti`: [`verify`], then the nonce when the
/// app requires one, then the replay table. A refusal leaves nothing recorded.
pub async fn accept(
    state: &crate::startup::AppState,
    proof: &str,
    expect: &Expect<'_>,
    nonce_required: bool,
) -> Result<Result<Proof, Refusal>, sqlx::Error> {
    let proof = match verify(proof, expect) {
        Ok(p) => p,
        Err(r) => return Ok(Err(r)),
    };
    if nonce_required && let Err(r) = state.dpop_nonces.check(&proof, expect.now) {
        return Ok(Err(r));
    }
    // Remembered as long as a proof with this iat could be accepted.
    let expires_at = proof.iat.max(expect.now) + expect.window;
    if !crate::store::dpop::record_jti(&state.db, &proof.replay_key(), expires_at).await? {
        return Ok(Err(invalid(
            "this DPoP proof was already used (jti replay): make a new proof for each request",
        )));
    }
    Ok(Ok(proof))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::rand::SystemRandom;
    use ring::signature::{self, EcdsaKeyPair, Ed25519KeyPair, KeyPair};

    fn b64(v: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(v)
    }

    fn ec_key() -> EcdsaKeyPair {
        let rng = SystemRandom::new();
        let pkcs8 = EcdsaKeyPair::generate_pkcs8(&signature::ECDSA_P256_SHA256_FIXED_SIGNING, &rng)
            .unwrap();
        EcdsaKeyPair::from_pkcs8(
            &signature::ECDSA_P256_SHA256_FIXED_SIGNING,
            pkcs8.as_ref(),
            &rng,
        )
        .unwrap()
    }

    fn ec_jwk(key: &EcdsaKeyPair) -> Value {
        let p = key.public_key().as_ref();
        serde_json::json!({"kty": "EC", "crv": "P-256", "x": b64(&p[1..33]), "y": b64(&p[33..65])})
    }

    fn sign_es256(key: &EcdsaKeyPair, header: &Value, claims: &Value) -> String {
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims.to_string().as_bytes())
        );
        let sig = key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
        format!("{input}.{}", b64(sig.as_ref()))
    }

    const URL: &str = "https://id.example/token";

    fn expect(now: i64) -> Expect<'static> {
        Expect {
            method: "POST",
            url: URL,
            now,
            window: 60,
            access_token: None,
        }
    }

    fn claims(now: i64) -> Value {
        serde_json::json!({"htm": "POST", "htu": URL, "iat": now, "jti": "j-1"})
    }

    #[test]
    fn htu_is_compared_normalised_without_query_or_fragment() {
        assert_eq!(
            normalise_htu("HTTPS://ID.Example:443/token?x=1#f").as_deref(),
            Some("https://id.example/token")
        );
        assert_eq!(
            normalise_htu("http://127.0.0.1:80").as_deref(),
            Some("http://127.0.0.1/")
        );
        assert_eq!(
            normalise_htu("https://id.example:8443/token").as_deref(),
            Some("https://id.example:8443/token")
        );
        assert_ne!(
            normalise_htu("https://id.example/token"),
            normalise_htu("https://id.example/Token")
        );
        assert_eq!(normalise_htu("ftp://id.example/token"), None);
        assert_eq!(normalise_htu("/token"), None);
    }

    #[test]
    fn the_thumbprint_is_the_rfc_7638_one() {
        // RFC 7638 §3.1.
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": "0vx7agoebGcQSuuPiLJXZptN9nndrQmbXEps2aiAFbWhM78LhWx4cbbfAAtVT86zwu1RK7aPFFxuhDR1L6tSoc_BJECPebWKRXjBZCiFV4n3oknjhMstn64tZ_2W-5JsGY4Hc5n9yBXArwl93lqt7_RN5w6Cf0h4QyQ5v-65YGjQR0_FDW2QvzqY368QQMicAtaSqzs8KJZgnYb9c7d0zgdAZHzu6qMQvRL5hajrn1n91CbOpbISD08qNLyrdkt-bFTWhAI4vMQFh6WeZu0fM4lFd2NcRwr3XPksINHaQ-G_xBniIqbw0Ls1jF44-csFCur-kEgU8awapJzKnqDKgw",
            "e": "AQAB",
            "alg": "RS256",
            "kid": "2011-04-29"
        });
        let jkt = Jkt::of(jwk.as_object().unwrap()).unwrap();
        assert_eq!(jkt.as_str(), "NzbLsXh8uDCcd-6MNwXF4W_7noWXFZAfHkxZsRGC9Xs");
        assert!(Jkt::parse(jkt.as_str()).is_ok());
        assert!(Jkt::parse("too-short").is_err());
        assert!(Jkt::parse(&"!".repeat(43)).is_err());
        assert!(
            Jkt::of(
                serde_json::json!({"kty": "oct", "k": "x"})
                    .as_object()
                    .unwrap()
            )
            .is_none()
        );
    }

    #[test]
    fn a_proper_proof_is_accepted_and_names_its_key() {
        let key = ec_key();
        let jwk = ec_jwk(&key);
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
        let proof = verify(&sign_es256(&key, &header, &claims(1000)), &expect(1030)).unwrap();
        assert_eq!(proof.jkt, Jkt::of(jwk.as_object().unwrap()).unwrap());
        assert_eq!(proof.jti, "j-1");
        assert_eq!(proof.iat, 1000);
    }

    #[test]
    fn a_tampered_proof_or_a_broken_key_is_refused() {
        let key = ec_key();
        let jwk = ec_jwk(&key);
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": jwk});
        let good = sign_es256(&key, &header, &claims(1000));
        // The claims of another proof under this one's signature.
        let other = sign_es256(&key, &header, &claims(1001));
        let mut parts: Vec<&str> = good.split('.').collect();
        parts[1] = other.split('.').nth(1).unwrap();
        let swapped = parts.join(".");
        assert!(matches!(verify(&swapped, &expect(1000)),
            Err(Refusal::Invalid(why)) if why.contains("does not verify")));
        // A signature by another key.
        let stranger = sign_es256(&ec_key(), &header, &claims(1000));
        assert!(matches!(verify(&stranger, &expect(1000)),
            Err(Refusal::Invalid(why)) if why.contains("does not verify")));
        // A point that is not on the curve, and a coordinate of the wrong size.
        for (x, why) in [
            (b64(&[7u8; 32]), "does not verify"),
            (b64(&[7u8; 31]), "not usable"),
        ] {
            let mut bad = jwk.clone();
            bad["x"] = Value::String(x);
            let header = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": bad});
            let proof = sign_es256(&key, &header, &claims(1000));
            assert!(
                matches!(verify(&proof, &expect(1000)),
                Err(Refusal::Invalid(w)) if w.contains(why)),
                "{why}"
            );
        }
    }

    #[test]
    fn an_eddsa_proof_is_accepted() {
        let rng = SystemRandom::new();
        let pkcs8 = Ed25519KeyPair::generate_pkcs8(&rng).unwrap();
        let key = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA",
            "jwk": {"kty": "OKP", "crv": "Ed25519", "x": b64(key.public_key().as_ref())}});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims(1000).to_string().as_bytes())
        );
        let jwt = format!("{input}.{}", b64(key.sign(input.as_bytes()).as_ref()));
        assert!(verify(&jwt, &expect(1000)).is_ok());
    }

    #[test]
    fn a_ps256_proof_is_accepted() {
        use rsa::pkcs8::EncodePrivateKey;
        use rsa::traits::PublicKeyParts;
        let private = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, 2048).unwrap();
        let der = private.to_pkcs8_der().unwrap();
        let key = signature::RsaKeyPair::from_pkcs8(der.as_bytes()).unwrap();
        let jwk = serde_json::json!({
            "kty": "RSA",
            "n": b64(&private.n().to_bytes_be()),
            "e": b64(&private.e().to_bytes_be()),
        });
        let header = serde_json::json!({"typ": "dpop+jwt", "alg": "PS256", "jwk": jwk});
        let input = format!(
            "{}.{}",
            b64(header.to_string().as_bytes()),
            b64(claims(1000).to_string().as_bytes())
        );
        let mut sig = vec![0; key.public().modulus_len()];
        key.sign(
            &signature::RSA_PSS_SHA256,
            &SystemRandom::new(),
            input.as_bytes(),
            &mut sig,
        )
        .unwrap();
        let proof = verify(&format!("{input}.{}", b64(&sig)), &expect(1000)).unwrap();
        assert_eq!(proof.jkt, Jkt::of(jwk.as_object().unwrap()).unwrap());
    }

    fn refusal(header: Value, claims: Value, key: &EcdsaKeyPair) -> String {
        match verify(&sign_es256(key, &header, &claims), &expect(1000)) {
            Err(Refusal::Invalid(why)) => why,
            other => panic!("expected a refusal, got {other:?}"),
        }
    }

    #[test]
    fn header_faults_are_each_named() {
        let key = ec_key();
        let jwk = ec_jwk(&key);
        let c = claims(1000);
        let why = refusal(
            serde_json::json!({"typ": "JWT", "alg": "ES256", "jwk": jwk}),
            c.clone(),
            &key,
        );
        assert!(why.contains("typ"), "{why}");
        let why = refusal(
            serde_json::json!({"typ": "dpop+jwt", "alg": "HS256", "jwk": jwk}),
            c.clone(),
            &key,
        );
        assert!(why.contains("alg"), "{why}");
        let why = refusal(
            serde_json::json!({"typ": "dpop+jwt", "alg": "none", "jwk": jwk}),
            c.clone(),
            &key,
        );
        assert!(why.contains("alg"), "{why}");
        let why = refusal(
            serde_json::json!({"typ": "dpop+jwt", "alg": "ES256"}),
            c.clone(),
            &key,
        );
        assert!(why.contains("jwk"), "{why}");
        let mut private = jwk.clone();
        private["d"] = "AAAA".into();
        let why = refusal(
            serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": private}),
            c.clone(),
            &key,
        );
        assert!(why.contains("private"), "{why}");
        let why = refusal(
            serde_json::json!({"typ": "dpop+jwt", "alg": "EdDSA", "jwk": jwk}),
            c.clone(),
            &key,
        );
        assert!(why.contains("does not fit"), "{why}");
        // Signed by another key than the one in the header.
        let why = refusal(
            serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": ec_jwk(&ec_key())}),
            c,
            &key,
        );
        assert!(why.contains("signature"), "{why}");
    }

    #[test]
    fn claim_faults_are_each_named() {
        let key = ec_key();
        let h = serde_json::json!({"typ": "dpop+jwt", "alg": "ES256", "jwk": ec_jwk(&key)});
        let with = |k: &str, v: Value| {
            let mut c = claims(1000);
            c[k] = v;
            c
        };
        assert!(refusal(h.clone(), with("htm", "GET".into()), &key).contains("htm"));
        assert!(
            refusal(
                h.clone(),
                with("htu", "https://other.example/token".into()),
                &key
            )
            .contains("htu")
        );
        assert!(refusal(h.clone(), with("iat", 900.into()), &key).contains("iat"));
        assert!(refusal(h.clone(), with("iat", 1061.into()), &key).contains("iat"));
        assert!(refusal(h.clone(), with("jti", "".into()), &key).contains("jti"));
        // The query of the request is not part of htu.
        assert!(
            verify(
                &sign_es256(
                    &key,
                    &h,
                    &with("htu", "https://ID.example:443/token?a=b".into())
                ),
                &expect(1000)
            )
            .is_ok()
        );
        let at = Expect {
            access_token: Some("tok"),
            ..expect(1000)
        };
        assert!(
            matches!(verify(&sign_es256(&key, &h, &claims(1000)), &at), Err(Refusal::Invalid(w)) if w.contains("ath"))
        );
        let ath = b64(&sha256(b"tok"));
        assert!(verify(&sign_es256(&key, &h, &with("ath", ath.into())), &at).is_ok());
        assert!(matches!(
            verify("a.b", &expect(1000)),
            Err(Refusal::Invalid(_))
        ));
    }

    #[test]
    fn two_dpop_headers_are_refused() {
        let mut h = HeaderMap::new();
        assert_eq!(header(&h), Ok(None));
        h.append(HEADER, "a.b.c".parse().unwrap());
        assert_eq!(header(&h), Ok(Some("a.b.c")));
        h.append(HEADER, "d.e.f".parse().unwrap());
        assert!(header(&h).is_err());
        let mut list = HeaderMap::new();
        list.insert(HEADER, "a.b.c, d.e.f".parse().unwrap());
        assert!(header(&list).is_err());
    }

    #[test]
    fn a_nonce_holds_for_its_slot_and_the_next() {
        let n = Nonces::from_key(&[7; 32]);
        let now = 10 * NONCE_SLOT + 5;
        let nonce = n.current(now);
        assert!(n.accepts(&nonce, now));
        assert!(n.accepts(&nonce, now + NONCE_SLOT));
        assert!(!n.accepts(&nonce, now + 2 * NONCE_SLOT));
        assert!(!n.accepts(&nonce, now - NONCE_SLOT));
        assert!(!Nonces::from_key(&[8; 32]).accepts(&nonce, now));
    }
}
