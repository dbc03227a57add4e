//! What every operation of the partner program shares: its refusal (`ProgramError`), the audit
//! entry about an app, the length and URL checks, and the operators' read of the audit log.
//!
//! The operations themselves live by aggregate: `partners` (partners, members, keys,
//! operators), `apps` (apps and drafts), `review`, `launch`, `capabilities`, `access_change`,
//! `secrets` and `verification`. Each one takes typed input, checks it, changes the database in
//! one transaction with its audit entry, and returns a typed outcome that serializes to the
//! API's JSON.

use serde::Serialize;
use serde_json::{Map, Value};

use crate::clock::Timestamp;
use crate::store::Db;
use crate::store::apps::App;
use crate::store::audit;

/// A refusal that names what is wrong, as the partner and operator APIs answer it:
/// `{"error": code, "error_description": message, ...extra}`.
#[derive(Debug)]
pub enum ProgramError {
    /// 400: the request is malformed or a value is not acceptable.
    Invalid {
        code: &'static str,
        message: String,
        extra: Map<String, Value>,
    },
    /// 404: no such thing (or not this caller's).
    NotFound(&'static str),
    /// 409: the request is well-formed but the current state does not allow it.
    Conflict {
        code: &'static str,
        message: String,
        extra: Map<String, Value>,
    },
    Internal(anyhow::Error),
}

impl ProgramError {
    pub fn invalid(code: &'static str, message: impl Into<String>) -> Self {
        Self::Invalid {
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }

    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        Self::Conflict {
            code,
            message: message.into(),
            extra: Map::new(),
        }
    }

    /// Adds a member to the answer.
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Self::Invalid { extra, .. } | Self::Conflict { extra, .. } = &mut self {
            extra.insert(key.into(), value.into());
        }
        self
    }

    /// One line for the CLI.
    pub fn line(&self) -> String {
        match self {
            Self::Invalid { message, .. } | Self::Conflict { message, .. } => message.clone(),
            Self::NotFound(what) => format!("{what} not found"),
            Self::Internal(e) => format!("internal error: {e}"),
        }
    }
}

impl From<sqlx::Error> for ProgramError {
    fn from(e: sqlx::Error) -> Self {
        Self::Internal(e.into())
    }
}

pub type Result<T> = std::result::Result<T, ProgramError>;

/// The 409 for reading or deciding the review of an app that was never submitted.
pub(super) fn not_submitted() -> ProgramError {
    ProgramError::conflict(
        "not_submitted",
        "this app has not been submitted for review yet",
    )
}

/// Appends an event about `app` (and its partner) to the audit log.
pub(super) async fn app_event(
    tx: &mut crate::store::Tx<'_>,
    now: Timestamp,
    actor: &str,
    app: &App,
    action: &str,
    detail: Value,
) -> std::result::Result<(), sqlx::Error> {
    super::partners::partner_event(
        tx,
        now,
        actor,
        app.partner_id.as_deref(),
        Some(&app.client_id),
        action,
        detail,
    )
    .await
}

pub(super) fn check_len(field: &str, value: &str, max: usize) -> Result<()> {
    if value.chars().count() > max {
        return Err(ProgramError::invalid(
            "invalid_request",
            format!("{field} must be at most {max} characters"),
        )
        .with("field", field));
    }
    if value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ProgramError::invalid(
            "invalid_request",
            format!("{field} must not contain control characters"),
        )
        .with("field", field));
    }
    Ok(())
}

pub(super) fn check_https_url(field: &str, value: &str) -> Result<()> {
    check_len(field, value, 500)?;
    let ok = url::Url::parse(value)
        .ok()
        .is_some_and(|u| u.scheme() == "https" && u.host_str().is_some());
    if ok {
        Ok(())
    } else {
        Err(
            ProgramError::invalid("invalid_request", format!("{field} must be an https URL"))
                .with("field", field),
        )
    }
}

/// The audit log, newest first.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditLog {
    #[schema(value_type = Vec<crate::partner::api::docs::AuditEntryDoc>)]
    pub entries: Vec<audit::Entry>,
}

pub async fn audit_view(db: &Db, filter: &audit::Filter) -> Result<AuditLog> {
    let entries = audit::read(db, filter).await?;
    Ok(AuditLog { entries })
}

/// One page of the audit log, newest first, and how many entries the filter selects in all.
#[derive(Debug, Serialize)]
pub struct AuditPage {
    pub entries: Vec<audit::Entry>,
    pub total: i64,
}

/// The entries of `filter` from position `offset` (0-based, newest first), at most
/// `filter.limit` of them, with the total: the console's paginated audit log.
pub async fn audit_page(db: &Db, filter: &audit::Filter, offset: i64) -> Result<AuditPage> {
    let total = audit::count(db, filter).await?;
    let entries = audit::read_from(db, filter, offset).await?;
    Ok(AuditPage { entries, total })
}
