//! Pre-checks of a draft's keys for private_key_jwt (`jwks`, `jwks_uri`) and of its security
//! profile (`profile`: FAPI 2.0), under the step that covers the redirect URIs.

use super::super::url_rules::{has_userinfo, parse_absolute};
use super::{AppDraft, Findings, Step, is_public_host, shown};

/// The app's public keys for private_key_jwt: a JWK Set of public, asymmetric keys, or an
/// https URL on a public host; not both.
pub(super) fn check_keys(draft: &AppDraft, out: &mut Findings) {
    let step = Step::RedirectUris;
    if draft.jwks.is_some() && draft.jwks_uri.is_some() {
        out.add(
            "jwks_and_jwks_uri",
            step,
            "jwks_uri",
            "Give the app's public keys or the URL where it publishes them, not both.".into(),
        );
    }
    if let Some(jwks) = &draft.jwks
        && let Err(reason) = jwks_problem(jwks)
    {
        let message = format!("The public keys are not usable: {reason}.");
        out.add("jwks_invalid", step, "jwks", message);
    }
    let Some(raw) = draft.jwks_uri.as_deref() else {
        return;
    };
    let shown_uri = shown(raw);
    let problem = match parse_absolute(raw) {
        Err(reason) => Some(("jwks_uri_invalid", reason)),
        Ok(url) if url.scheme() != "https" => Some(("jwks_uri_not_https", "use https")),
        Ok(url) if has_userinfo(raw, &url) => {
            Some(("jwks_uri_invalid", "remove the user name and password"))
        }
        Ok(url) if url.fragment().is_some() => {
            Some(("jwks_uri_invalid", "remove the fragment (#)"))
        }
        Ok(url) if !is_public_host(&url) => Some((
            "jwks_uri_invalid",
            "it must be on a public host, not localhost or a private address",
        )),
        Ok(_) => None,
    };
    if let Some((code, reason)) = problem {
        let message = format!("The public keys URL {shown_uri} is not usable: {reason}.");
        out.add(code, step, "jwks_uri", message);
    }
}

/// Why a draft's `jwks` is not a JWK Set of public, asymmetric keys.
fn jwks_problem(jwks: &serde_json::Value) -> Result<(), &'static str> {
    let keys = jwks
        .get("keys")
        .and_then(serde_json::Value::as_array)
        .ok_or("give a JWK Set, a JSON object with a \"keys\" list")?;
    if keys.is_empty() {
        return Err("the set has no key");
    }
    for key in keys {
        if ["d", "p", "q", "dp", "dq", "qi", "k"]
            .iter()
            .any(|p| key.get(p).is_some())
        {
            return Err("give public keys only: a key carries private parameters");
        }
        if key.get("kty").and_then(serde_json::Value::as_str) == Some("oct") {
            return Err("give asymmetric keys (EC, RSA or OKP), not a shared secret");
        }
    }
    serde_json::from_value::<jsonwebtoken::jwk::JwkSet>(jwks.clone())
        .map_err(|_| "a key is not a JWK this server can read")?;
    Ok(())
}

/// What the FAPI 2.0 profile needs of the rest of the draft: keys (private_key_jwt), and no
/// http redirect URI but native loopback (127.0.0.1 or [::1]).
pub(super) fn check_profile(draft: &AppDraft, out: &mut Findings) {
    if draft.profile != Some(crate::store::apps::Profile::Fapi2) {
        return;
    }
    let step = Step::RedirectUris;
    if draft.jwks.is_none() && draft.jwks_uri.is_none() {
        out.add(
            "profile_requires_keys",
            step,
            "profile",
            "The FAPI 2.0 Security Profile needs private_key_jwt: give the app's public keys or the URL where it publishes them.".into(),
        );
    }
    for (i, uri) in draft.redirect_uris.iter().enumerate() {
        if crate::oauth::profile::non_loopback_http(std::slice::from_ref(uri)).is_some() {
            let message = format!(
                "The redirect URI {} is not allowed under the FAPI 2.0 Security Profile: use https (http only on 127.0.0.1 or [::1], never localhost).",
                shown(uri)
            );
            out.add(
                "profile_redirect_uri_not_allowed",
                step,
                format!("redirect_uris[{i}]"),
                message,
            );
        }
    }
}
