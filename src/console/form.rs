//! The consoles' forms: a submitted form is read only after its CSRF token checks out, keeps
//! every value as typed (so a refused form is shown again with what was typed), and its errors
//! are kept by field, to be shown next to the field they concern.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::partner::Finding;
use crate::startup::AppState;
use crate::web::csrf;

/// At most this many fields in a form, and bytes in one value.
const MAX_FIELDS: usize = 400;
const MAX_VALUE: usize = 16 * 1024;

/// A submitted form: its fields in order, a name possibly repeated (checkboxes).
#[derive(Debug, Default, Clone)]
pub struct Form(Vec<(String, String)>);

impl Form {
    /// Reads an `application/x-www-form-urlencoded` body; a body that is not UTF-8, or too
    /// large, is refused with a readable page.
    pub fn parse(raw: &[u8]) -> Result<Self, Response> {
        let refuse = |why: &'static str| {
            AppError::bad_request("This form cannot be read", why).into_response()
        };
        let mut out = Vec::new();
        for (k, v) in url::form_urlencoded::parse(raw) {
            if k.contains('\u{FFFD}') || v.contains('\u{FFFD}') {
                return Err(refuse("The form was not sent as UTF-8 text."));
            }
            if v.len() > MAX_VALUE || k.len() > 200 {
                return Err(refuse("A value in the form is too long."));
            }
            if out.len() >= MAX_FIELDS {
                return Err(refuse("The form has too many fields."));
            }
            out.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self(out))
    }

    /// Reads the form after checking its `csrf_token` against the browser's cookie; a form
    /// without the right token is refused ("This form has expired").
    pub fn checked(state: &AppState, headers: &HeaderMap, raw: &[u8]) -> Result<Self, Response> {
        let form = Self::parse(raw)?;
        csrf::require(state, headers, form.get("csrf_token"))
            .map_err(IntoResponse::into_response)?;
        Ok(form)
    }

    /// The first value of `name`, as typed (`None` when absent).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The first value of `name`, trimmed, or `None` when absent or blank.
    pub fn text(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// The first value of `name` as typed, or "".
    pub fn raw(&self, name: &str) -> &str {
        self.get(name).unwrap_or("")
    }

    /// Every value of `name`, in order (ticked checkboxes).
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The non-blank lines of `name` (a textarea of one value per line), trimmed.
    pub fn lines(&self, name: &str) -> Vec<String> {
        lines(self.raw(name))
    }

    /// Whether a checkbox `name` was ticked.
    pub fn ticked(&self, name: &str) -> bool {
        self.get(name).is_some()
    }

    /// The fields whose name starts with `prefix`, by the rest of their name (`justification.`
    /// gives `{"profile": "…"}`), blank values left out.
    pub fn keyed(&self, prefix: &str) -> BTreeMap<String, String> {
        self.0
            .iter()
            .filter_map(|(k, v)| {
                let key = k.strip_prefix(prefix)?;
                let v = v.trim();
                (!key.is_empty() && !v.is_empty()).then(|| (key.to_string(), v.to_string()))
            })
            .collect()
    }
}

/// The non-blank lines of `text`, trimmed.
pub fn lines(text: &str) -> Vec<String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect()
}

/// Errors of a form, by field name. A list field's error names its line (`redirect_uris[1]`
/// becomes "Line 2: …" under `redirect_uris`).
#[derive(Debug, Default, Clone)]
pub struct FieldErrors(BTreeMap<String, Vec<String>>);

impl FieldErrors {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `message` to `field` (`field` may carry a list index: `origins[0]`).
    pub fn add(&mut self, field: &str, message: impl Into<String>) {
        let message = message.into();
        let (name, message) = match field.split_once('[') {
            Some((name, rest)) => match rest.trim_end_matches(']').parse::<usize>() {
                Ok(i) => (name.to_string(), format!("Line {}: {message}", i + 1)),
                Err(_) => (name.to_string(), message),
            },
            None => (field.to_string(), message),
        };
        let list = self.0.entry(name).or_default();
        if !list.contains(&message) {
            list.push(message);
        }
    }

    /// The pre-check findings, each at its field, in words.
    pub fn from_findings(findings: &[Finding]) -> Self {
        let mut e = Self::new();
        for f in findings {
            e.add(&f.field, crate::console::sentence(&f.message));
        }
        e
    }

    /// The errors of `field` (none: an empty list).
    pub fn at(&self, field: &str) -> &[String] {
        self.0.get(field).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Whether `field` has an error (for `aria-invalid`).
    pub fn has(&self, field: &str) -> bool {
        !self.at(field).is_empty()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every field with errors, and its errors, in field-name order.
    pub fn all(&self) -> impl Iterator<Item = (&str, &[String])> {
        self.0.iter().map(|(k, v)| (k.as_str(), v.as_slice()))
    }
}

/// A page's banner after an action: what was done, or why it was refused.
#[derive(Debug, Default, Clone)]
pub struct Banner {
    pub notice: Option<String>,
    pub error: Option<String>,
}

impl Banner {
    pub fn done(notice: impl Into<String>) -> Self {
        Self {
            notice: Some(notice.into()),
            error: None,
        }
    }

    pub fn refused(error: impl Into<String>) -> Self {
        Self {
            notice: None,
            error: Some(error.into()),
        }
    }
}

/// The status a page shows a refused form with: 400 for what was typed, 409 for a state that
/// does not allow it (as the APIs answer).
pub fn refused_status(status: StatusCode) -> StatusCode {
    if status.is_server_error() {
        status
    } else if status == StatusCode::CONFLICT {
        StatusCode::CONFLICT
    } else {
        StatusCode::BAD_REQUEST
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_list_fields_error_names_its_line_under_the_field() {
        let mut e = FieldErrors::new();
        e.add("redirect_uris[1]", "must be https");
        e.add("name", "is required");
        e.add("name", "is required");
        assert_eq!(e.at("redirect_uris"), ["Line 2: must be https"]);
        assert_eq!(e.at("name"), ["is required"]);
        assert!(e.has("name") && !e.has("origins"));
    }

    #[test]
    fn a_form_keeps_what_was_typed_and_reads_lists_and_keyed_fields() {
        let f = Form::parse(
            b"name=+My+app+&scope=openid&scope=profile&redirect_uris=https%3A%2F%2Fa%2Fcb%0D%0A%0D%0A+https%3A%2F%2Fb%2Fcb+&justification.profile=because&justification.email=",
        )
        .unwrap();
        assert_eq!(f.raw("name"), " My app ");
        assert_eq!(f.text("name"), Some("My app"));
        assert_eq!(f.all("scope"), ["openid", "profile"]);
        assert_eq!(f.lines("redirect_uris"), ["https://a/cb", "https://b/cb"]);
        assert_eq!(
            f.keyed("justification.").into_iter().collect::<Vec<_>>(),
            [("profile".to_string(), "because".to_string())]
        );
        assert!(Form::parse(b"x=%FF").is_err());
    }
}
