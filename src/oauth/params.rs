//! Request parameters of the protocol endpoints, parsed from a query string or a form body with
//! the rules of RFC 6749 §3.1/§3.2: a parameter sent twice is an error, one sent empty counts as
//! omitted, and values must be UTF-8 of a sane length.

use std::borrow::Cow;

use super::error::OAuthError;

/// Longest value accepted for one parameter; larger ones are refused before any lookup.
pub const MAX_VALUE_LEN: usize = 4096;
const MAX_PARAMS: usize = 64;

#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Self, OAuthError> {
        let mut out: Vec<(String, String)> = Vec::new();
        let mut start = 0;
        for end in memchr::memchr_iter(b'&', raw).chain(std::iter::once(raw.len())) {
            let pair = &raw[start..end];
            start = end + 1;
            if pair.is_empty() {
                continue;
            }
            let (k, v) = match memchr::memchr(b'=', pair) {
                Some(i) => (&pair[..i], &pair[i + 1..]),
                None => (pair, &b""[..]),
            };
            let (Some(k), Some(v)) = (decode_component(k), decode_component(v)) else {
                return Err(OAuthError::invalid_request("parameters must be UTF-8"));
            };
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

/// One name or value of `application/x-www-form-urlencoded` (the WHATWG URL Standard's
/// parser: `+` is a space, `%XX` a byte, a `%` not followed by two hex digits stays as it is),
/// as UTF-8; `None` when the bytes are not. Borrowed when there is nothing to decode (a token
/// or a client id usually), which is found with one `memchr` pass instead of a byte-by-byte one.
pub fn decode_component(raw: &[u8]) -> Option<Cow<'_, str>> {
    if memchr::memchr2(b'%', b'+', raw).is_none() {
        return std::str::from_utf8(raw).ok().map(Cow::Borrowed);
    }
    let spaced: Cow<'_, [u8]> = if raw.contains(&b'+') {
        Cow::Owned(
            raw.iter()
                .map(|b| if *b == b'+' { b' ' } else { *b })
                .collect(),
        )
    } else {
        Cow::Borrowed(raw)
    };
    let bytes: Vec<u8> = percent_encoding::percent_decode(&spaced).collect();
    String::from_utf8(bytes).ok().map(Cow::Owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn components_decode_as_the_url_standard_says() {
        for (raw, want) in [
            ("plain.Token-_~", Some("plain.Token-_~")),
            ("a+b", Some("a b")),
            ("a%20b%2Bc", Some("a b+c")),
            ("%E2%9C%93", Some("\u{2713}")),
            ("100%", Some("100%")),
            ("%zz", Some("%zz")),
            ("%FF", None),
        ] {
            assert_eq!(decode_component(raw.as_bytes()).as_deref(), want, "{raw}");
        }
        assert_eq!(
            decode_component(b"\xff"),
            None,
            "raw bytes that are not UTF-8"
        );
        // The same answers as the url crate's parser wherever the bytes are UTF-8.
        for raw in ["x=a+b%20c", "x=%41%42", "x=%", "x=%4", "x=%%41"] {
            let ours = decode_component(&raw.as_bytes()[2..]).unwrap();
            let theirs = url::form_urlencoded::parse(raw.as_bytes())
                .next()
                .unwrap()
                .1;
            assert_eq!(ours, theirs, "{raw}");
        }
    }

    #[test]
    fn pairs_split_as_the_url_standard_says() {
        let p = Params::parse(b"&a=1&&b&c==2&d=x=y").unwrap();
        assert_eq!(p.get("a"), Some("1"));
        assert_eq!(p.get("b"), None, "no value: omitted");
        assert_eq!(p.get("c"), Some("=2"));
        assert_eq!(p.get("d"), Some("x=y"));
        assert!(Params::parse(b"a%FF=1").is_err());
    }

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
