//! The sessions page (`/account/sessions`): this device first, then the person's other live
//! sessions, each with its browser and OS (read from the User-Agent at sign-in), address, start
//! and last use. "End session" ends one of the person's own sessions; "End all other sessions"
//! every one but this (both `Ending::EndedByUser`). Ending this very session signs this browser
//! out.

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::account::{Account, date_time, signed_in, to_login};
use super::views::{AccountNav, AccountSessionsPage, SessionView};
use super::{csrf, render, see_other, with_cookies};
use crate::error::AppError;
use crate::oauth::params::Params;
use crate::sessions::{self, Ending};
use crate::startup::AppState;
use crate::store::sessions::{self as stored, SessionRecord};

const PAGE: &str = "/account/sessions";
const NOT_YOURS: &str =
    "That session is not one of yours, or it has ended already. Nothing was changed.";

/// What a User-Agent says of the browser: "Firefox 131" and "Windows 10".
#[derive(Debug, PartialEq, Eq)]
pub struct Device {
    pub browser: String,
    pub os: String,
}

fn known(v: &str) -> Option<&str> {
    let v = v.trim();
    (!v.is_empty() && v != woothee::woothee::VALUE_UNKNOWN).then_some(v)
}

/// Reads the browser and OS from a User-Agent (woothee's rules; no data is downloaded).
pub fn describe(user_agent: Option<&str>) -> Device {
    let parsed = user_agent.and_then(|ua| woothee::parser::Parser::new().parse(ua));
    let Some(r) = parsed else {
        return Device {
            browser: "An unknown browser".into(),
            os: "an unknown system".into(),
        };
    };
    let browser = match (known(r.name), known(r.version)) {
        (Some(name), Some(version)) => {
            let major = version.split('.').next().unwrap_or(version);
            format!("{name} {major}")
        }
        (Some(name), None) => name.to_string(),
        (None, _) => "An unknown browser".into(),
    };
    let os = match known(r.os) {
        // Every Mac browser reports macOS 10.15: its version says nothing.
        Some("Mac OSX") => "macOS".to_string(),
        Some(os @ ("Android" | "iPhone" | "iPad" | "iOS")) => match known(&r.os_version) {
            Some(v) => format!("{os} {v}"),
            None => os.to_string(),
        },
        Some(os) => os.to_string(),
        None => "an unknown system".into(),
    };
    Device { browser, os }
}

/// "just now", "5 minutes ago", "3 hours ago", "2 days ago", then the date.
pub fn ago(now: i64, then: i64) -> String {
    let plural = |n: i64, unit: &str| {
        if n == 1 {
            format!("1 {unit} ago")
        } else {
            format!("{n} {unit}s ago")
        }
    };
    match (now - then).max(0) {
        0..60 => "Just now".into(),
        d @ 60..3600 => plural(d / 60, "minute"),
        d @ 3600..86400 => plural(d / 3600, "hour"),
        d @ 86400..604800 => plural(d / 86400, "day"),
        _ => date_time(then),
    }
}

fn iso(ts: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(ts)
        .ok()
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_default()
}

fn view(s: &SessionRecord, now: i64) -> SessionView {
    let Device { browser, os } = describe(s.user_agent.as_deref());
    SessionView {
        sid: s.sid.clone(),
        browser,
        os,
        address: s.ip.clone().unwrap_or_else(|| "Unknown".into()),
        started: date_time(s.created_at),
        started_iso: iso(s.created_at),
        last_used: ago(now, s.last_used_at),
        last_used_iso: iso(s.last_used_at),
    }
}

/// The page for `account`, with a notice or an error.
async fn page(
    state: &AppState,
    headers: &HeaderMap,
    account: &Account,
    status: StatusCode,
    notice: Option<String>,
    error: Option<&str>,
) -> Result<Response, AppError> {
    let now = state.now();
    let all = stored::of_user(&state.db, &account.user.id, now).await?;
    let (this, others): (Vec<_>, Vec<_>) = all.iter().partition(|s| s.sid == account.session.sid);
    let Some(this) = this.first() else {
        // Ended between finding it and listing it.
        return Ok(to_login(PAGE));
    };
    let (token, set) = csrf::token(state, headers);
    let view = AccountSessionsPage {
        nav: AccountNav {
            current: "sessions",
            csrf: &token,
            email: &account.user.email,
        },
        this: view(this, now),
        others: others.iter().map(|s| view(s, now)).collect(),
        notice,
        error,
    };
    Ok(with_cookies(render(status, &view), set))
}

/// `GET /account/sessions`; `?ended=N` says how many sessions were just ended.
pub async fn sessions_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Result<Response, AppError> {
    let Some(account) = signed_in(&state, &headers).await? else {
        return Ok(to_login(PAGE));
    };
    let ended = super::account::count_in_query(query.as_deref(), "ended");
    let notice = ended.map(|n| match n {
        0 => "You were not signed in anywhere else.".to_string(),
        1 => "The session has ended: that browser is signed out.".to_string(),
        n => format!("{n} sessions have ended: those browsers are signed out."),
    });
    page(&state, &headers, &account, StatusCode::OK, notice, None).await
}

/// `POST /account/sessions/end` (`csrf_token`, `sid`): ends one of the person's own sessions.
pub async fn end_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let form = Params::parse(&body)
        .map_err(|e| AppError::bad_request("Cannot end the session", e.description))?;
    csrf::require(&state, &headers, form.get("csrf_token"))?;
    let Some(account) = signed_in(&state, &headers).await? else {
        return Ok(to_login(PAGE));
    };
    let sid = form.get("sid").unwrap_or_default();
    if sid == account.session.sid {
        sessions::end(&state, &[account.session.sid], Ending::EndedByUser).await?;
        tracing::info!(user_id = %account.user.id, "this session ended from the sessions page");
        return Ok(super::sign_out::signed_out(&state));
    }
    // Another person's session and one that does not exist get the same answer.
    let mine = match sid.is_empty() {
        true => None,
        false => stored::by_sid(&state.db, sid, state.now())
            .await?
            .filter(|s| s.user_id == account.user.id),
    };
    let Some(session) = mine else {
        let status = StatusCode::NOT_FOUND;
        return page(&state, &headers, &account, status, None, Some(NOT_YOURS)).await;
    };
    let ended = sessions::end(&state, &[session.sid], Ending::EndedByUser).await?;
    tracing::info!(user_id = %account.user.id, ended, "a session ended from the sessions page");
    Ok(see_other(&format!("{PAGE}?ended={ended}")))
}

/// `POST /account/sessions/end-others` (`csrf_token`): every session of the person but this one.
pub async fn end_others_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let form = Params::parse(&body)
        .map_err(|e| AppError::bad_request("Cannot end the sessions", e.description))?;
    csrf::require(&state, &headers, form.get("csrf_token"))?;
    let Some(account) = signed_in(&state, &headers).await? else {
        return Ok(to_login(PAGE));
    };
    let keep = Some(account.session.sid.as_str());
    let ended = sessions::end_others(&state, &account.user.id, keep, Ending::EndedByUser).await?;
    tracing::info!(user_id = %account.user.id, ended, "other sessions ended by the user");
    Ok(see_other(&format!("{PAGE}?ended={ended}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn device(ua: &str) -> (String, String) {
        let d = describe(Some(ua));
        (d.browser, d.os)
    }

    #[test]
    fn common_browsers_and_systems_are_named() {
        let firefox =
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:131.0) Gecko/20100101 Firefox/131.0";
        assert_eq!(device(firefox), ("Firefox 131".into(), "Windows 10".into()));
        let safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1";
        let (browser, os) = device(safari);
        assert_eq!(browser, "Safari 17");
        assert!(os.starts_with("iPhone"), "{os}");
        let chrome = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        assert_eq!(device(chrome), ("Chrome 131".into(), "macOS".into()));
    }

    #[test]
    fn a_missing_or_odd_user_agent_reads_as_unknown() {
        let none = describe(None);
        assert_eq!(none.browser, "An unknown browser");
        assert_eq!(none.os, "an unknown system");
        let odd = describe(Some("curl/8.5.0"));
        assert!(!odd.browser.is_empty() && !odd.os.is_empty(), "{odd:?}");
    }

    #[test]
    fn times_read_as_how_long_ago() {
        let now = 1_800_000_000;
        assert_eq!(ago(now, now - 5), "Just now");
        assert_eq!(ago(now, now - 60), "1 minute ago");
        assert_eq!(ago(now, now - 125), "2 minutes ago");
        assert_eq!(ago(now, now - 3 * 3600), "3 hours ago");
        assert_eq!(ago(now, now - 86400), "1 day ago");
        assert_eq!(ago(now, now - 30 * 86400), date_time(now - 30 * 86400));
    }
}
