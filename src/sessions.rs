//! Ending browser sessions: the one place a session ends, whatever ends it (signing out on
//! onyx-id's pages or through an app, "end session" on the sessions page, a password change).
//! Each way calls [`end`] or [`end_others`], or [`end_in`] inside its own transaction, so what
//! follows from an ending is written with it.

use crate::clock::Timestamp;
use crate::startup::AppState;
use crate::store::{Tx, sessions};
use crate::wire::wire_enum;

wire_enum! {
    /// What ended a session.
    pub enum Ending as "snake_case" {
        /// The person signed out on onyx-id's pages.
        SignedOut,
        /// An app sent the person to the end-session endpoint (RP-Initiated Logout).
        RpInitiated,
        /// The person ended it from the sessions page (this one or another of theirs).
        EndedByUser,
        /// The person changed their password: their other sessions end.
        PasswordChanged,
    }
}

/// Ends the sessions `sids` in the caller's transaction; how many were live.
pub async fn end_in(
    tx: &mut Tx<'_>,
    sids: &[String],
    ending: Ending,
    _now: Timestamp,
) -> Result<usize, sqlx::Error> {
    let mut ended = 0;
    for sid in sids {
        if sessions::remove_in(tx, sid).await? {
            ended += 1;
        }
    }
    if ended > 0 {
        tracing::info!(ended, ending = ending.as_str(), "sessions ended");
    }
    Ok(ended)
}

/// Ends the sessions `sids` in one transaction; how many were live.
#[tracing::instrument(level = "debug", skip(state))]
pub async fn end(state: &AppState, sids: &[String], ending: Ending) -> Result<usize, sqlx::Error> {
    let mut tx = state.db.begin().await?;
    let ended = end_in(&mut tx, sids, ending, state.now()).await?;
    tx.commit().await?;
    Ok(ended)
}

/// Ends every live session of `user_id` but `keep` (all of them when `None`) in the caller's
/// transaction; how many ended.
pub async fn end_others_in(
    tx: &mut Tx<'_>,
    user_id: &str,
    keep: Option<&str>,
    ending: Ending,
    now: Timestamp,
) -> Result<usize, sqlx::Error> {
    let sids = sessions::sids_of_user_in(tx, user_id, keep, now).await?;
    end_in(tx, &sids, ending, now).await
}

/// [`end_others_in`] in a transaction of its own.
#[tracing::instrument(level = "debug", skip(state))]
pub async fn end_others(
    state: &AppState,
    user_id: &str,
    keep: Option<&str>,
    ending: Ending,
) -> Result<usize, sqlx::Error> {
    let mut tx = state.db.begin().await?;
    let ended = end_others_in(&mut tx, user_id, keep, ending, state.now()).await?;
    tx.commit().await?;
    Ok(ended)
}
