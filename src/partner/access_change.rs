//! Changes to an app's access: an operator's limit, suspension or restore, and onyx-id's own
//! automatic causes (`review_reopened`, `verification_lapsed`). Causes stack; the app's state
//! is recomputed from all of them in the transaction that changes one.

use serde::Serialize;
use serde_json::{Value, json};

use super::access::{AccessCause, AccessReason, AccessState, CauseSource, Stage};
use super::apps::any_app;
use super::program::{ProgramError, Result, app_event, check_len};
use crate::clock::Timestamp;
use crate::scopes::catalogue;
use crate::store::apps::App;
use crate::store::{Db, Tx, access_causes};

/// One cause of an app's access state, as operators and partners read it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CauseView {
    pub source: CauseSource,
    pub reason: AccessReason,
    pub reason_text: &'static str,
    pub state: AccessState,
    pub note: Option<String>,
    pub withdrawn_scopes: Vec<String>,
    pub actor: String,
    #[schema(value_type = i64)]
    pub since: Timestamp,
}

/// The app's effective access state and every cause it adds up from.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct AccessView {
    pub state: AccessState,
    pub reason: Option<AccessReason>,
    pub reason_text: Option<&'static str>,
    pub note: Option<String>,
    pub withdrawn_scopes: Vec<String>,
    #[schema(value_type = Option<i64>)]
    pub changed_at: Option<Timestamp>,
    pub causes: Vec<CauseView>,
}

pub async fn access_view(db: &Db, app: &App) -> Result<AccessView> {
    let causes = access_causes::of_app(db, &app.client_id).await?;
    Ok(AccessView {
        state: app.access,
        reason: app.access_reason,
        reason_text: app.access_reason.map(AccessReason::sentence),
        note: app.access_note.clone(),
        withdrawn_scopes: app.withdrawn.clone(),
        changed_at: app.access_changed_at,
        causes: causes
            .into_iter()
            .map(|c| CauseView {
                source: c.source,
                reason: c.reason,
                reason_text: c.reason.sentence(),
                state: c.state,
                note: c.note,
                withdrawn_scopes: c.withdrawn_scopes,
                actor: c.actor,
                since: c.at,
            })
            .collect(),
    })
}

fn reason_names() -> String {
    AccessReason::all()
        .map(AccessReason::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

/// An operator's access decision.
#[derive(Debug, Clone)]
pub struct AccessChange {
    pub state: AccessState,
    /// `restored` for `active`, and only for it.
    pub reason: AccessReason,
    pub note: Option<String>,
    /// The scopes a limit withdraws.
    pub withdrawn: Vec<String>,
    /// For `active`: the one cause to clear (its reason; it may be an automatic one, which
    /// the operator then overrides). Without it, `active` clears every operator cause and
    /// leaves the automatic ones, whose condition onyx-id still sees.
    pub cause: Option<AccessReason>,
}

impl AccessChange {
    /// Reads a decision as the API and the CLI name it (`reason` defaults to `restored` for
    /// `active`).
    pub fn parse(
        state: &str,
        reason: Option<&str>,
        note: Option<String>,
        withdrawn: Vec<String>,
        cause: Option<&str>,
    ) -> Result<Self> {
        let Some(state) = AccessState::parse(state) else {
            return Err(ProgramError::invalid(
                "invalid_request",
                "state must be active, limited or suspended",
            ));
        };
        let reason = match (state, reason) {
            (AccessState::Active, None) => AccessReason::Restored,
            (_, Some(r)) => AccessReason::parse(r).ok_or_else(|| {
                ProgramError::invalid(
                    "invalid_request",
                    format!("reason {r:?} is not one of {}", reason_names()),
                )
            })?,
            (_, None) => {
                return Err(ProgramError::invalid(
                    "invalid_request",
                    format!("a reason is required: one of {}", reason_names()),
                ));
            }
        };
        if (state == AccessState::Active) != (reason == AccessReason::Restored) {
            return Err(ProgramError::invalid(
                "invalid_request",
                "restored is the reason for active, and only for active",
            ));
        }
        if let Some(n) = &note {
            check_len("note", n, 2000)?;
        }
        let cause = match cause {
            None => None,
            Some(_) if state != AccessState::Active => {
                return Err(ProgramError::invalid(
                    "invalid_request",
                    "cause names what a restore (state active) clears",
                )
                .with("field", "cause"));
            }
            Some(c) => Some(
                AccessReason::parse(c)
                    .filter(|r| *r != AccessReason::Restored)
                    .ok_or_else(|| {
                        ProgramError::invalid(
                            "invalid_request",
                            format!("cause {c:?} is not the reason of one of the app's causes"),
                        )
                        .with("field", "cause")
                    })?,
            ),
        };
        Ok(Self {
            state,
            reason,
            note,
            withdrawn,
            cause,
        })
    }
}

/// The app's access after an operator's decision.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AccessSet {
    pub client_id: String,
    pub access: AccessView,
}

/// An operator limits, suspends or restores an app. A limit or suspension adds a cause (or
/// replaces the operator's cause of the same reason); causes stack, and the app is active
/// only when none remains. Takes effect on the next request.
pub async fn set_access(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    change: AccessChange,
) -> Result<AccessSet> {
    let AccessChange {
        state,
        reason,
        note,
        mut withdrawn,
        cause,
    } = change;
    if let Some(n) = &note {
        check_len("note", n, 2000)?;
    }
    withdrawn.sort();
    withdrawn.dedup();
    match state {
        AccessState::Limited => {
            if withdrawn.is_empty() {
                return Err(ProgramError::invalid(
                    "invalid_request",
                    "a limit withdraws at least one scope (withdrawn_scopes)",
                ));
            }
            if let Some(s) = withdrawn.iter().find(|s| !app.approved_for(s)) {
                return Err(ProgramError::invalid(
                    "invalid_request",
                    format!("{s} is not one of the app's approved scopes"),
                ));
            }
        }
        _ if !withdrawn.is_empty() => {
            return Err(ProgramError::invalid(
                "invalid_request",
                "withdrawn_scopes applies only to a limit",
            ));
        }
        _ => {}
    }
    let mut tx = db.begin().await?;
    let mut cleared = 0;
    if state == AccessState::Active {
        cleared = match cause {
            Some(r) => access_causes::clear(&mut tx, &app.client_id, None, Some(r)).await?,
            None => {
                access_causes::clear(&mut tx, &app.client_id, Some(CauseSource::Operator), None)
                    .await?
            }
        };
        if cause.is_some() && cleared == 0 {
            return Err(ProgramError::conflict(
                "no_such_cause",
                format!(
                    "the app is not limited or suspended for {}",
                    cause.map_or("", AccessReason::as_str)
                ),
            )
            .with("access_state", app.access.as_str()));
        }
    } else {
        access_causes::put(
            &mut tx,
            &app.client_id,
            &AccessCause {
                source: CauseSource::Operator,
                reason,
                state,
                note: note.clone(),
                withdrawn_scopes: withdrawn.clone(),
                actor: actor.to_string(),
                at: now,
            },
        )
        .await?;
    }
    let after = access_causes::recompute(&mut tx, &app.client_id, now).await?;
    let action = match (state, after.state) {
        (AccessState::Active, AccessState::Active) => "access.restored",
        (AccessState::Active, _) => "access.cause_cleared",
        (AccessState::Limited, _) => "access.limited",
        (AccessState::Suspended, _) => "access.suspended",
    };
    app_event(
        &mut tx,
        now,
        actor,
        app,
        action,
        json!({
            "from": app.access,
            "to": after.state,
            "reason": reason,
            "note": note,
            "withdrawn_scopes": withdrawn,
            "cleared_cause": cause,
            "causes_cleared": cleared,
        }),
    )
    .await?;
    tx.commit().await?;
    let app = any_app(db, &app.client_id).await?;
    Ok(AccessSet {
        access: access_view(db, &app).await?,
        client_id: app.client_id,
    })
}

/// Scopes withdrawn while part of a live app's review is reopened: those that need review.
fn review_scopes(app: &App) -> Vec<String> {
    app.scopes
        .iter()
        .filter(|s| catalogue().get(s).is_some_and(|i| i.review))
        .map(|s| s.to_string())
        .collect()
}

/// onyx-id limits a live app on its own (`review_reopened`, `verification_lapsed`): the scopes
/// that need review are withdrawn until the cause is fixed. The cause stacks with any other
/// (an operator's limit, the other automatic one). True if it added the cause.
pub(crate) async fn auto_limit(
    tx: &mut Tx<'_>,
    now: Timestamp,
    app: &App,
    reason: AccessReason,
    note: Option<&str>,
    mut detail: Value,
) -> std::result::Result<bool, sqlx::Error> {
    let withdrawn = review_scopes(app);
    if app.stage == Stage::Draft || withdrawn.is_empty() {
        return Ok(false);
    }
    access_causes::put(
        tx,
        &app.client_id,
        &AccessCause {
            source: CauseSource::Automatic,
            reason,
            state: AccessState::Limited,
            note: note.map(str::to_string),
            withdrawn_scopes: withdrawn.clone(),
            actor: "onyx-id".into(),
            at: now,
        },
    )
    .await?;
    let after = access_causes::recompute(tx, &app.client_id, now).await?;
    detail["reason"] = json!(reason);
    detail["withdrawn_scopes"] = json!(withdrawn);
    detail["access_state"] = json!(after.state);
    app_event(tx, now, "onyx-id", app, "access.limited", detail).await?;
    Ok(true)
}

/// onyx-id clears the automatic cause `reason` once it is fixed, and nothing else: the app is
/// active again only if no other cause remains. Returns the state after, if it cleared one.
pub(crate) async fn auto_restore(
    tx: &mut Tx<'_>,
    now: Timestamp,
    app: &App,
    reason: AccessReason,
    mut detail: Value,
) -> std::result::Result<Option<AccessState>, sqlx::Error> {
    let cleared = access_causes::clear(
        tx,
        &app.client_id,
        Some(CauseSource::Automatic),
        Some(reason),
    )
    .await?;
    if cleared == 0 {
        return Ok(None);
    }
    let after = access_causes::recompute(tx, &app.client_id, now).await?;
    detail["cause"] = json!(reason);
    detail["access_state"] = json!(after.state);
    let action = if after.state == AccessState::Active {
        "access.restored"
    } else {
        "access.cause_cleared"
    };
    app_event(tx, now, "onyx-id", app, action, detail).await?;
    Ok(Some(after.state))
}
