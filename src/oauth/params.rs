//! Request parameters of the protocol endpoints, parsed from a query string or a form body with
//! the rules of RFC 6749 §3.1/§3.2: a parameter sent twice is an error, one sent empty counts as
//! omitted, and values must be UTF-8 of a sane length.

use super::error::OAuthError;

/// Longest value accepted for one parameter; larger ones are refused before any lookup.
pub const MAX_VALUE_LEN: usize = 4096;
const MAX_PARAMS: usize = 64;

#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Self, OAuthError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(raw) {
            if k.contains('\u{FFFD}') || v.contains('\u{FFFD}') {
                return Err(OAuthError::invalid_request("parameters must be UTF-8"));
            }
            if v.len() > MAX_VALUE_LEN || k.len() > 128 {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {:?} is too long",
                    k.chars().take(40).collect::<String>()
                )));
            }
            if v.is_empty() {
                continue;
            }
            if out.iter().any(|(name, _)| *name == k) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {k:?} is included more than once"
                )));
            }
            if out.len() >= MAX_PARAMS {
                return Err(OAuthError::invalid_request("too many parameters"));
            }
            out.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self(out))
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every parameter, in the order received.
    pub fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// Adds a parameter the request did not carry (the caller checked it is absent).
    pub fn push(&mut self, name: &str, value: &str) {
        self.0.push((name.to_string(), value.to_string()));
    }

    /// A parameter that must be present.
    pub fn required(&self, name: &str) -> Result<&str, OAuthError> {
        self.get(name)
            .ok_or_else(|| OAuthError::invalid_request(format!("{name} is required")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicated_parameters_are_refused_and_empty_ones_ignored() {
        assert!(Params::parse(b"a=1&a=2").is_err());
        let p = Params::parse(b"a=&a=2&b=x%20y").unwrap();
        assert_eq!(p.get("a"), Some("2"));
        assert_eq!(p.get("b"), Some("x y"));
    }

    #[test]
    fn invalid_utf8_and_huge_values_are_refused() {
        assert!(Params::parse(b"a=%FF%FE").is_err());
        let huge = format!("a={}", "x".repeat(MAX_VALUE_LEN + 1));
        assert!(Params::parse(huge.as_bytes()).is_err());
    }
}
