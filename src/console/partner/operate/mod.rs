//! The operating part of the partner console, one page per section of an app: its domain
//! verification ([`domain`]), preview test accounts with the launch checklist and production
//! approval ([`launch`]), its gated capabilities ([`capabilities`]), its client secret
//! ([`secret`]) and its webhook endpoints with their deliveries ([`webhooks`]).
//!
//! Owners and developers of the app's partner both manage it; anyone else finds nothing
//! (`console::own_app`). Every action is one call of the partner program's service function,
//! with the person as the actor (`partner:{id}/user:{id}`), which writes the audit entry.

pub mod capabilities;
pub mod domain;
pub mod launch;
pub mod secret;
pub mod webhooks;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::AppHeader;
use crate::console::{Person, member, own_app};
use crate::error::AppError;
use crate::partner::AppDraft;
use crate::startup::AppState;
use crate::store::apps::{self, App};

pub fn router() -> Router<AppState> {
    Router::new()
        .merge(domain::router())
        .merge(launch::router())
        .merge(capabilities::router())
        .merge(secret::router())
        .merge(webhooks::router())
}

/// A page of one app: the signed-in member of its partner, the app and its draft.
pub struct AppPage {
    pub person: Person,
    pub app: App,
    pub draft: AppDraft,
}

impl AppPage {
    /// The signed-in member and their partner's app `client_id` (read for this request), or the
    /// page that refuses: sign in, "no access" for a person of no partner, "not found" for any
    /// other app. `path` is where sign-in comes back to.
    pub async fn open(
        state: &AppState,
        headers: &HeaderMap,
        client_id: &str,
        path: &str,
    ) -> Result<Self, Response> {
        let person = member(state, headers, path).await?;
        let (app, _role) = own_app(state, &person, client_id).await?;
        let draft = match apps::draft(&state.db, &app.client_id).await {
            Ok(d) => d.unwrap_or_default(),
            Err(e) => return Err(AppError::internal(e).into_response()),
        };
        Ok(Self { person, app, draft })
    }

    /// The header of the app's pages with `section` open.
    pub fn header(&self, section: &'static str) -> AppHeader {
        AppHeader::of(&self.app, Some(&self.draft.name), section)
    }

    /// How the audit log names the person acting on this app.
    pub fn actor(&self) -> String {
        self.person
            .partner_actor(self.app.partner_id.as_deref().unwrap_or_default())
    }
}

/// A member of the query string (`?done=…`, `?page=…`).
pub fn query_member(query: &Option<String>, name: &str) -> Option<String> {
    query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    })
}

/// How long from `now` until `until`, in words: "23 hours", "10 minutes", "3 days".
pub fn time_left(now: i64, until: i64) -> String {
    let secs = (until - now).max(0);
    let (n, unit) = if secs >= 2 * 86_400 {
        (secs / 86_400, "day")
    } else if secs >= 3600 {
        (secs / 3600, "hour")
    } else if secs >= 120 {
        (secs / 60, "minute")
    } else {
        (secs, "second")
    };
    if n == 1 {
        format!("1 {unit}")
    } else {
        format!("{n} {unit}s")
    }
}

/// `text` as a sentence (`console::sentence`), except that one starting with a domain, a URL
/// or an address keeps the case it has ("app.example served…", "https://…").
pub fn words_as_sentence(text: &str) -> String {
    let first = text.split_whitespace().next().unwrap_or_default();
    if first.contains(['.', '/', ':', '@']) {
        let mut s = text.trim().to_string();
        if !s.ends_with(['.', '!', '?']) {
            s.push('.');
        }
        s
    } else {
        crate::console::sentence(text)
    }
}

/// Marks an answer that shows a secret as not to be kept in any cache or history.
pub fn no_store(mut res: Response) -> Response {
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    res
}

#[cfg(test)]
mod tests {
    use super::{time_left, words_as_sentence};

    #[test]
    fn a_sentence_that_starts_with_a_domain_keeps_its_case() {
        assert_eq!(
            words_as_sentence("app.example served it"),
            "app.example served it."
        );
        assert_eq!(words_as_sentence("no sign-in yet"), "No sign-in yet.");
    }

    #[test]
    fn time_left_reads_in_the_largest_whole_unit() {
        assert_eq!(time_left(0, 86_400), "24 hours");
        assert_eq!(time_left(0, 3 * 86_400 + 5), "3 days");
        assert_eq!(time_left(0, 600), "10 minutes");
        assert_eq!(time_left(0, 3600), "1 hour");
        assert_eq!(time_left(0, 60), "60 seconds");
        assert_eq!(time_left(10, 0), "0 seconds");
    }
}
