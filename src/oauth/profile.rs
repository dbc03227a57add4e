//! Security profiles an app may be held to (`apps create --profile`, the partner draft's
//! `profile`). The FAPI 2.0 Security Profile (FAPI 2.0 Security Profile, final, §5.2–§5.4):
//! pushed authorization requests, DPoP-bound tokens, `private_key_jwt` signed with ES256,
//! PS256 or EdDSA, ID tokens signed with one of them, no http redirect URIs but native
//! loopback (RFC 8252 §7.3), and refresh tokens that do not rotate (§5.3.2.1). The endpoints
//! ask the `App` (`App::fapi2`); this module holds the registration rules and the shared
//! wording of refusals.

use url::Url;

use crate::keys::Algorithm;
use crate::store::apps::AuthMethod;

/// The words every refusal under the profile starts with, so it names the rule it applies.
pub const FAPI2_RULE: &str = "the FAPI 2.0 profile of this app requires";

/// The client assertion algorithms the profile allows (FAPI 2.0 Security Profile §5.4.1).
pub const FAPI2_ASSERTION_ALGS: [jsonwebtoken::Algorithm; 3] = [
    jsonwebtoken::Algorithm::ES256,
    jsonwebtoken::Algorithm::PS256,
    jsonwebtoken::Algorithm::EdDSA,
];

/// What the registration rules of the profile look at.
pub struct Fapi2Facts<'a> {
    pub redirect_uris: &'a [String],
    pub auth_method: AuthMethod,
    pub id_token_alg: Algorithm,
}

/// A native app's loopback redirect (RFC 8252 §7.3): http on the IP literal `127.0.0.1` or
/// `[::1]`. `localhost` is not one (RFC 8252 §8.3: it may resolve elsewhere).
pub fn is_native_loopback(uri: &str) -> bool {
    Url::parse(uri).is_ok_and(|u| {
        u.scheme() == "http"
            && match u.host() {
                Some(url::Host::Ipv4(ip)) => ip == std::net::Ipv4Addr::LOCALHOST,
                Some(url::Host::Ipv6(ip)) => ip == std::net::Ipv6Addr::LOCALHOST,
                _ => false,
            }
    })
}

/// The first http redirect URI that is not native loopback, if any.
pub fn non_loopback_http(redirect_uris: &[String]) -> Option<&str> {
    redirect_uris.iter().map(String::as_str).find(|u| {
        u.get(..5).is_some_and(|s| s.eq_ignore_ascii_case("http:")) && !is_native_loopback(u)
    })
}

/// Checks an app's registration against the profile; the refusal says which rule it breaks.
pub fn check_fapi2(facts: &Fapi2Facts<'_>) -> Result<(), String> {
    if facts.auth_method != AuthMethod::PrivateKeyJwt {
        return Err(format!(
            "{FAPI2_RULE} private_key_jwt: register the app's public keys (--jwks-file or --jwks-uri)"
        ));
    }
    if let Some(uri) = non_loopback_http(facts.redirect_uris) {
        return Err(format!(
            "{FAPI2_RULE} https redirect URIs (http only on the native loopback 127.0.0.1 or [::1]): {uri:?}"
        ));
    }
    if facts.id_token_alg != Algorithm::ES256 {
        return Err(format!(
            "{FAPI2_RULE} ID tokens signed with ES256, PS256 or EdDSA (this server signs with ES256): not {}",
            facts.id_token_alg.as_str()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_ip_literal_loopback_is_native_loopback() {
        assert!(is_native_loopback("http://127.0.0.1:8080/cb"));
        assert!(is_native_loopback("http://[::1]:9000/cb"));
        assert!(!is_native_loopback("http://localhost:8080/cb"));
        assert!(!is_native_loopback("http://example.com/cb"));
        assert!(!is_native_loopback("https://127.0.0.1/cb"));
    }

    #[test]
    fn fapi2_refuses_secrets_http_redirects_and_rs256() {
        let ok = [
            "https://app.example/cb".to_string(),
            "http://127.0.0.1:1/cb".into(),
        ];
        let facts = |uris, auth_method, id_token_alg| Fapi2Facts {
            redirect_uris: uris,
            auth_method,
            id_token_alg,
        };
        assert!(check_fapi2(&facts(&ok, AuthMethod::PrivateKeyJwt, Algorithm::ES256)).is_ok());
        let secret = check_fapi2(&facts(&ok, AuthMethod::ClientSecret, Algorithm::ES256));
        assert!(secret.unwrap_err().contains("private_key_jwt"));
        let http = ["http://localhost:3000/cb".to_string()];
        let e = check_fapi2(&facts(&http, AuthMethod::PrivateKeyJwt, Algorithm::ES256));
        assert!(e.unwrap_err().contains("localhost"));
        let rs = check_fapi2(&facts(&ok, AuthMethod::PrivateKeyJwt, Algorithm::RS256));
        assert!(rs.unwrap_err().contains("RS256"));
    }
}
