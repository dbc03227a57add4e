//! Cookies: the session cookie and the CSRF cookie. Both HttpOnly and SameSite=Lax; Secure and
//! `__Host-`-prefixed when the issuer is https (so a sibling subdomain cannot plant them).

use axum::http::HeaderMap;
use axum::http::header;

#[derive(Debug, Clone, Copy)]
pub struct CookieNames {
    pub secure: bool,
}

impl CookieNames {
    pub fn session(&self) -> &'static str {
        if self.secure {
            "__Host-onyx_session"
        } else {
            "onyx_session"
        }
    }

    pub fn csrf(&self) -> &'static str {
        if self.secure {
            "__Host-onyx_csrf"
        } else {
            "onyx_csrf"
        }
    }

    /// A `Set-Cookie` value. `max_age` `None` makes a browser-session cookie; `Some(0)` deletes.
    pub fn set(&self, name: &str, value: &str, max_age: Option<i64>) -> String {
        let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite=Lax");
        if self.secure {
            c.push_str("; Secure");
        }
        if let Some(age) = max_age {
            c.push_str(&format!("; Max-Age={age}"));
        }
        c
    }
}

/// The value of cookie `name` in the request, if present.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_are_found_by_exact_name() {
        let mut h = HeaderMap::new();
        h.insert(
            header::COOKIE,
            "a=1; onyx_session=xyz; onyx_session_old=2".parse().unwrap(),
        );
        assert_eq!(get(&h, "onyx_session"), Some("xyz"));
        assert_eq!(get(&h, "onyx"), None);
    }

    #[test]
    fn secure_cookies_use_the_host_prefix() {
        let n = CookieNames { secure: true };
        assert_eq!(n.session(), "__Host-onyx_session");
        assert!(n.set("x", "y", None).contains("; Secure"));
        assert!(
            !CookieNames { secure: false }
                .set("x", "y", Some(0))
                .contains("Secure")
        );
    }
}
