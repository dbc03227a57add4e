//! Redirect URIs and origins: registration rules, matching, and building the redirect back.

/// Whether `requested` matches one of `registered`: the same string, byte for byte (RFC 9700
/// §4.1.3, no normalisation), except that a loopback IP redirect may use any port
/// (RFC 8252 §7.3). Returns the registered string it matched.
pub fn match_registered<'a, R: AsRef<str>>(
    registered: &'a [R],
    requested: &str,
) -> Option<&'a str> {
    if let Some(exact) = registered.iter().find(|r| r.as_ref() == requested) {
        return Some(exact.as_ref());
    }
    let requested = strip_loopback_port(requested)?;
    registered
        .iter()
        .find(|r| strip_loopback_port(r.as_ref()).as_deref() == Some(requested.as_str()))
        .map(AsRef::as_ref)
}

/// For an `http` redirect on a loopback IP literal, the URI without its port.
fn strip_loopback_port(uri: &str) -> Option<String> {
    for host in ["http://127.0.0.1", "http://[::1]"] {
        if let Some(rest) = uri.strip_prefix(host) {
            let rest = match rest.strip_prefix(':') {
                Some(after) => after.trim_start_matches(|c: char| c.is_ascii_digit()),
                None => rest,
            };
            if rest.is_empty() || rest.starts_with('/') || rest.starts_with('?') {
                return Some(format!("{host}{rest}"));
            }
        }
    }
    None
}

/// Checks a redirect URI before it is registered: absolute, no fragment, no wildcard; https, or
/// http on a loopback host, or a private-use scheme with a dot for native apps (RFC 8252 §7.1).
pub fn validate_for_registration(uri: &str) -> Result<(), String> {
    let url = url::Url::parse(uri)
        .map_err(|e| format!("redirect URI {uri:?} is not an absolute URL: {e}"))?;
    if url.fragment().is_some() || uri.contains('#') {
        return Err(format!("redirect URI {uri:?} must not contain a fragment"));
    }
    if uri.contains('*') {
        return Err(format!("redirect URI {uri:?} must not contain a wildcard"));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::config::is_loopback_host(&url) => Ok(()),
        "http" => Err(format!(
            "redirect URI {uri:?} must use https (http only on a loopback host)"
        )),
        scheme if scheme.contains('.') => Ok(()),
        scheme => Err(format!(
            "redirect URI {uri:?} has scheme {scheme:?}: use https, loopback http, or a reverse-domain private-use scheme"
        )),
    }
}

/// Checks an allowed CORS origin: exactly `scheme://host[:port]`, nothing more.
pub fn validate_origin(origin: &str) -> Result<(), String> {
    let url =
        url::Url::parse(origin).map_err(|e| format!("origin {origin:?} is not a URL: {e}"))?;
    let serialised = url.origin().ascii_serialization();
    if serialised != origin {
        return Err(format!(
            "origin {origin:?} must be an exact origin like {serialised:?} (no path, no trailing slash)"
        ));
    }
    match url.scheme() {
        "https" => Ok(()),
        "http" if crate::config::is_loopback_host(&url) => Ok(()),
        _ => Err(format!(
            "origin {origin:?} must use https (http only on a loopback host)"
        )),
    }
}

/// `base` with `pairs` added to its query (the registered URI may already have one).
pub fn with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut ser = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in pairs {
        ser.append_pair(k, v);
    }
    let sep = if base.contains('?') { '&' } else { '?' };
    format!("{base}{sep}{}", ser.finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirect_uris_match_as_registered_strings() {
        let reg = vec!["https://app.example/cb".to_string()];
        assert_eq!(
            match_registered(&reg, "https://app.example/cb"),
            Some("https://app.example/cb")
        );
        assert_eq!(match_registered(&reg, "https://app.example/cb/"), None);
        assert_eq!(match_registered(&reg, "https://APP.example/cb"), None);
        assert_eq!(match_registered(&reg, "https://app.example/cb?x=1"), None);
        assert_eq!(match_registered(&reg, "https://app.example:443/cb"), None);
    }

    #[test]
    fn loopback_redirects_may_use_any_port() {
        let reg = vec![
            "http://127.0.0.1/callback".to_string(),
            "http://[::1]:9000/cb".to_string(),
        ];
        assert!(match_registered(&reg, "http://127.0.0.1:53122/callback").is_some());
        assert!(match_registered(&reg, "http://[::1]:1234/cb").is_some());
        assert!(match_registered(&reg, "http://127.0.0.1:53122/other").is_none());
        assert!(match_registered(&reg, "http://127.0.0.1.evil.example/callback").is_none());
        assert!(match_registered(&reg, "http://127.0.0.1:80@evil.example/callback").is_none());
    }

    #[test]
    fn registration_refuses_unsafe_redirects_and_origins() {
        assert!(validate_for_registration("https://app.example/cb").is_ok());
        assert!(validate_for_registration("http://127.0.0.1/cb").is_ok());
        assert!(validate_for_registration("com.example.app:/cb").is_ok());
        assert!(validate_for_registration("http://app.example/cb").is_err());
        assert!(validate_for_registration("https://app.example/cb#x").is_err());
        assert!(validate_for_registration("https://*.example/cb").is_err());
        assert!(validate_for_registration("/cb").is_err());
        assert!(validate_origin("https://app.example").is_ok());
        assert!(validate_origin("https://app.example/").is_err());
        assert!(validate_origin("https://app.example/path").is_err());
    }

    #[test]
    fn the_response_is_added_to_an_existing_query() {
        assert_eq!(
            with_query("https://a.example/cb", &[("code", "x y")]),
            "https://a.example/cb?code=x+y"
        );
        assert_eq!(
            with_query("https://a.example/cb?t=1", &[("state", "s")]),
            "https://a.example/cb?t=1&state=s"
        );
    }
}
