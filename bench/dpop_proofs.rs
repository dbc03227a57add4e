//! DPoP proofs for the benchmark's `client_credentials_dpop` case (bench/run.sh with
//! BENCH_DPOP=1): one ES256 key, COUNT proofs for `POST URL`, each with its own `jti` and `iat`
//! now, one per line on stdout. The server accepts each once, within its iat window
//! (`--dpop-iat-window`, 60 s by default), so the pool is made just before its run.
//!
//!   cargo run --release --example dpop_proofs -- URL COUNT > proofs.txt

use std::io::Write;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(url), Some(count)) = (args.next(), args.next().and_then(|c| c.parse::<u64>().ok()))
    else {
        eprintln!("usage: dpop_proofs URL COUNT");
        std::process::exit(2);
    };
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let key =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let p = key.public_key().as_ref();
    let header = serde_json::json!({
        "typ": "dpop+jwt",
        "alg": "ES256",
        "jwk": {
            "kty": "EC",
            "crv": "P-256",
            "x": URL_SAFE_NO_PAD.encode(&p[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&p[33..65]),
        },
    });
    let header = URL_SAFE_NO_PAD.encode(header.to_string());
    let iat = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let run = onyx_id::crypto::random_id();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 0..count {
        let claims =
            serde_json::json!({"htm": "POST", "htu": url, "iat": iat, "jti": format!("{run}-{i}")});
        let input = format!("{header}.{}", URL_SAFE_NO_PAD.encode(claims.to_string()));
        let sig = key.sign(&rng, input.as_bytes()).unwrap();
        writeln!(out, "{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref())).unwrap();
    }
}
