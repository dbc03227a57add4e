//! Ending browser sessions: the one place a session ends, whatever ends it (signing out on
//! onyx-id's pages or through an app, "end session" on the sessions page, a password change).
//! Each way calls [`end`] or [`end_others`], or [`end_in`] inside its own transaction, so what
//! follows from an ending is written with it:
//!
//! - the token families issued in the session are revoked, but those with `offline_access`,
//!   which exist for when the person is away (they are removed on Connected apps);
//! - every app that received an ID token in the session and registered a
//!   `backchannel_logout_uri` gets a back-channel delivery in the outbox
//!   (`crate::webhooks::backchannel`), which its worker signs and posts after the commit.
//!
//! [`sign_out_of_app`] does the same for one app across all of a person's sessions, which stay.

use crate::clock::Timestamp;
use crate::startup::AppState;
use crate::store::{Tx, logout, sessions, tokens};
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
        /// Someone else signed in in the same browser: the session it had ends.
        Replaced,
    }
}

/// What ending sessions wrote besides removing them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Consequences {
    /// Tokens revoked (access and refresh).
    revoked: u64,
    /// Back-channel deliveries written.
    told: usize,
}

/// Ends the sessions `sids` in the caller's transaction; how many were live. Their non-offline
/// token families are revoked and their apps' back-channel deliveries written in the same
/// transaction; the worker delivers them at its next poll, or at once when the caller calls
/// [`crate::webhooks::backchannel::wake`] after the commit ([`end`] and [`end_others`] do).
pub async fn end_in(
    tx: &mut Tx<'_>,
    sids: &[String],
    ending: Ending,
    now: Timestamp,
) -> Result<usize, sqlx::Error> {
    let mut ended = 0;
    let mut done = Consequences::default();
    for sid in sids {
        if !sessions::remove_in(tx, sid).await? {
            continue;
        }
        ended += 1;
        let c = wind_up(tx, sid, None, ending.as_str(), now).await?;
        done.revoked += c.revoked;
        done.told += c.told;
    }
    if ended > 0 {
        tracing::info!(
            ended,
            ending = ending.as_str(),
            revoked = done.revoked,
            told = done.told,
            "sessions ended"
        );
    }
    Ok(ended)
}

/// What follows from session `sid` ending for every app (`client_id` `None`) or one: its
/// non-offline families revoked, the apps that got an ID token in it told, its links forgotten.
async fn wind_up(
    tx: &mut Tx<'_>,
    sid: &str,
    client_id: Option<&str>,
    ending: &str,
    now: Timestamp,
) -> Result<Consequences, sqlx::Error> {
    let mut done = Consequences::default();
    for family in logout::session_only_families_in(tx, sid, client_id).await? {
        done.revoked += tokens::revoke_family_in(tx, &family, now).await?;
    }
    for to in logout::to_tell_in(tx, sid, client_id).await? {
        logout::enqueue_in(tx, &to, ending, now).await?;
        done.told += 1;
    }
    logout::forget_in(tx, sid, client_id).await?;
    Ok(done)
}

/// The `ending` of a back-channel delivery made by [`sign_out_of_app`].
pub const SIGNED_OUT_OF_APP: &str = "signed_out_of_app";

/// What "Sign out of this app" did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SignedOutOfApp {
    /// The person's sessions the app was told of (back-channel deliveries written).
    pub told: usize,
    /// Tokens revoked (access and refresh; offline_access families stay).
    pub revoked: u64,
}

/// "Sign out of this app" (Connected apps): for each of the person's sessions in which app
/// `client_id` got tokens, the app is told by back-channel logout (if it got an ID token there
/// and registered a `backchannel_logout_uri`), and its non-offline token families are revoked.
/// The sessions and the grant stay. One transaction; the worker is woken after it.
#[tracing::instrument(level = "debug", skip(state))]
pub async fn sign_out_of_app(
    state: &AppState,
    user_id: &str,
    client_id: &str,
) -> Result<SignedOutOfApp, sqlx::Error> {
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let mut out = SignedOutOfApp::default();
    for sid in logout::sids_of_app_in(&mut tx, user_id, client_id).await? {
        let c = wind_up(&mut tx, &sid, Some(client_id), SIGNED_OUT_OF_APP, now).await?;
        out.revoked += c.revoked;
        out.told += c.told;
    }
    tx.commit().await?;
    crate::webhooks::backchannel::wake();
    tracing::info!(
        user_id,
        client_id,
        told = out.told,
        revoked = out.revoked,
        "signed out of an app"
    );
    Ok(out)
}

/// Ends the sessions `sids` in one transaction; how many were live.
#[tracing::instrument(level = "debug", skip(state))]
pub async fn end(state: &AppState, sids: &[String], ending: Ending) -> Result<usize, sqlx::Error> {
    let mut tx = state.db.begin().await?;
    let ended = end_in(&mut tx, sids, ending, state.now()).await?;
    tx.commit().await?;
    crate::webhooks::backchannel::wake();
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
    crate::webhooks::backchannel::wake();
    Ok(ended)
}
