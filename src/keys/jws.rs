//! JWS Compact Serialization (RFC 7515 §7.1) of a JSON payload, signed by `ring`.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::{Algorithm, KeyMaterial};

pub fn encode_jws(
    kid: &str,
    alg: Algorithm,
    typ: &str,
    claims: &serde_json::Value,
    key: &KeyMaterial,
) -> anyhow::Result<String> {
    let header = serde_json::json!({ "alg": alg.as_str(), "typ": typ, "kid": kid });
    let mut out = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&header)?);
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims)?));
    let signature = key.sign(out.as_bytes())?;
    out.push('.');
    out.push_str(&URL_SAFE_NO_PAD.encode(signature));
    Ok(out)
}
