//! Grants: one user's consent decision for one app, with one permission row per scope
//! (`grant_scopes`) and every change appended to `permission_history`.
//!
//! A grant is `active` until the whole app is revoked (by the user, the partner or Onyx); a new
//! authorization after that makes a new grant: reconnecting is a new decision. The per-scope
//! stored states and how they become what the app sees are in `crate::consent`.

use sqlx::FromRow;

use super::grant_events as events;
use super::outbox::Batch;
use super::{Db, Tx};
use crate::clock::Timestamp;
use crate::consent::{Reason, State, Stored};
use crate::wire::wire_enum;

#[derive(Debug, Clone, FromRow)]
pub struct Grant {
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub status: String,
    pub copy_version: String,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub last_used_at: Option<Timestamp>,
    pub ended_reason: Option<String>,
}

impl Grant {
    pub fn is_active(&self) -> bool {
        self.status == "active"
    }
}

#[derive(Debug, Clone, FromRow)]
struct PermissionRow {
    scope: String,
    state: String,
    reason: Option<String>,
    granted_at: Timestamp,
    expires_at: Option<Timestamp>,
}

/// One stored permission of a grant.
#[derive(Debug, Clone)]
pub struct Permission {
    pub scope: String,
    pub stored: Stored,
    /// When the state was last set.
    pub updated_at: Timestamp,
}

impl From<PermissionRow> for Permission {
    fn from(r: PermissionRow) -> Self {
        Self {
            stored: Stored {
                state: State::parse(&r.state).unwrap_or(State::Revoked),
                reason: r.reason.as_deref().and_then(Reason::parse),
                expires_at: r.expires_at,
            },
            scope: r.scope,
            updated_at: r.granted_at,
        }
    }
}

wire_enum! {
    /// Who made a change. Its stored name is derived once (`as_str`, `Display`, `FromStr`).
    pub enum Actor as "lowercase" {
        /// The app asked (a request shown on the consent screen).
        App,
        User,
        Partner,
        Onyx,
    }
}

/// A new state for one scope.
#[derive(Debug, Clone)]
pub struct Change {
    pub scope: String,
    pub state: State,
    pub reason: Option<Reason>,
    pub expires_at: Option<Timestamp>,
}

const GRANT_COLUMNS: &str = "id, user_id, client_id, status, copy_version, created_at, updated_at, last_used_at, ended_reason";

/// The user's current (not ended) grant to the app, if any.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn current(
    db: &Db,
    user_id: &str,
    client_id: &str,
) -> Result<Option<Grant>, sqlx::Error> {
    let pool = &db.pool;
    sqlx::query_as::<_, Grant>(sqlx::AssertSqlSafe(format!(
        "SELECT {GRANT_COLUMNS} FROM grants WHERE user_id = $1 AND client_id = $2 AND status = 'active'"
    )))
    .bind(user_id)
    .bind(client_id)
    .fetch_optional(pool)
    .await
}

/// Every grant of the user, newest first (ended ones too: their history stays readable).
pub async fn of_user(db: &Db, user_id: &str) -> Result<Vec<Grant>, sqlx::Error> {
    let pool = &db.pool;
    sqlx::query_as::<_, Grant>(sqlx::AssertSqlSafe(format!(
        "SELECT {GRANT_COLUMNS} FROM grants WHERE user_id = $1 ORDER BY created_at DESC, id"
    )))
    .bind(user_id)
    .fetch_all(pool)
    .await
}

pub async fn by_id(db: &Db, grant_id: &str) -> Result<Option<Grant>, sqlx::Error> {
    by_id_on(&db.pool, grant_id).await
}

async fn by_id_on(
    conn: impl sqlx::Executor<'_, Database = sqlx::Any>,
    grant_id: &str,
) -> Result<Option<Grant>, sqlx::Error> {
    sqlx::query_as::<_, Grant>(sqlx::AssertSqlSafe(format!(
        "SELECT {GRANT_COLUMNS} FROM grants WHERE id = $1"
    )))
    .bind(grant_id)
    .fetch_optional(conn)
    .await
}

/// The grant's permissions, by scope name.
pub async fn permissions(db: &Db, grant_id: &str) -> Result<Vec<Permission>, sqlx::Error> {
    permissions_on(&db.pool, grant_id).await
}

/// [`permissions`], read in the caller's transaction.
pub(super) async fn permissions_in(
    tx: &mut Tx<'_>,
    grant_id: &str,
) -> Result<Vec<Permission>, sqlx::Error> {
    permissions_on(&mut **tx, grant_id).await
}

async fn permissions_on(
    conn: impl sqlx::Executor<'_, Database = sqlx::Any>,
    grant_id: &str,
) -> Result<Vec<Permission>, sqlx::Error> {
    let rows = sqlx::query_as::<_, PermissionRow>(
        "SELECT scope, state, reason, granted_at, expires_at FROM grant_scopes
         WHERE grant_id = $1 ORDER BY scope",
    )
    .bind(grant_id)
    .fetch_all(conn)
    .await?;
    Ok(rows.into_iter().map(Permission::from).collect())
}

/// The grant's permissions as the app may use them now (see `consent::views`).
pub async fn views(
    db: &Db,
    grant_id: &str,
    app: &crate::consent::AppFacts<'_>,
    user: &crate::consent::UserFacts<'_>,
    now: Timestamp,
) -> Result<Vec<crate::consent::View>, sqlx::Error> {
    let perms = permissions(db, grant_id).await?;
    Ok(crate::consent::views(
        perms
            .iter()
            .map(|p| (p.scope.as_str(), &p.stored, p.updated_at)),
        app,
        user,
        now,
    ))
}

/// Sets the scopes' states in the user's current grant to the app (made if there is none) and
/// appends each change to the history. `copy_version`, when given, is recorded as the consent
/// copy the user answered. Returns the grant id.
pub async fn record(
    db: &Db,
    user_id: &str,
    client_id: &str,
    changes: &[Change],
    actor: Actor,
    copy_version: Option<&str>,
    now: Timestamp,
) -> Result<String, sqlx::Error> {
    let pool = &db.writer;
    let mut tx = pool.begin().await?;
    let (grant_id, version) =
        current_for_update(&mut tx, user_id, client_id, copy_version, now).await?;
    let had_granted: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM grant_scopes WHERE grant_id = $1 AND state = 'granted'",
    )
    .bind(&grant_id)
    .fetch_one(&mut *tx)
    .await?;
    let mut changed = Vec::new();
    for change in changes {
        if set_state(&mut tx, &grant_id, change, actor, &version, now).await? {
            changed.push(change.scope.clone());
        }
    }
    let kind = events::Kind::Decided {
        had_granted: had_granted > 0,
    };
    let enqueued = events::announce(&mut tx, &grant_id, kind, &changed, actor, now, None).await?;
    tx.commit().await?;
    if enqueued {
        crate::webhooks::wake();
    }
    Ok(grant_id)
}

/// Records the question a consent screen asks, which changes nothing the user granted:
/// `changes` (scopes asked for the first time, now `requested`, and unavailable ones with why)
/// are set as by [`record`], by the app; each scope of `reasked` (granted before, asked again)
/// keeps its state, and the history notes the question once, without rewriting the permission.
pub async fn record_question(
    db: &Db,
    user_id: &str,
    client_id: &str,
    changes: &[Change],
    reasked: &[String],
    now: Timestamp,
) -> Result<String, sqlx::Error> {
    let pool = &db.writer;
    let mut tx = pool.begin().await?;
    let (grant_id, version) = current_for_update(&mut tx, user_id, client_id, None, now).await?;
    for change in changes {
        // A question, or an unavailability found while asking: nothing partners hear of.
        set_state(&mut tx, &grant_id, change, Actor::App, &version, now).await?;
    }
    for scope in reasked {
        let last: Option<Option<String>> = sqlx::query_scalar(
            "SELECT reason FROM permission_history WHERE grant_id = $1 AND scope = $2
             ORDER BY id DESC LIMIT 1",
        )
        .bind(&grant_id)
        .bind(scope)
        .fetch_optional(&mut *tx)
        .await?;
        if last.flatten().as_deref() == Some(Reason::AwaitingDecision.as_str()) {
            continue;
        }
        let current: Option<String> =
            sqlx::query_scalar("SELECT state FROM grant_scopes WHERE grant_id = $1 AND scope = $2")
                .bind(&grant_id)
                .bind(scope)
                .fetch_optional(&mut *tx)
                .await?;
        let Some(state) = current.as_deref().and_then(State::parse) else {
            continue;
        };
        append_history(
            &mut tx,
            &grant_id,
            scope,
            Some(state.as_str()),
            state,
            Some(Reason::AwaitingDecision),
            Actor::App,
            &version,
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(grant_id)
}

/// The user's current grant to the app inside `tx`, made if there is none, with its write lock
/// taken; `copy_version`, when given, becomes the grant's. Returns its id and copy version.
async fn current_for_update(
    tx: &mut Tx<'_>,
    user_id: &str,
    client_id: &str,
    copy_version: Option<&str>,
    now: Timestamp,
) -> Result<(String, String), sqlx::Error> {
    // Write first: the update takes SQLite's write lock at once.
    let touched = sqlx::query(
        "UPDATE grants SET updated_at = $1 WHERE user_id = $2 AND client_id = $3 AND status = 'active'",
    )
    .bind(now)
    .bind(user_id)
    .bind(client_id)
    .execute(&mut **tx)
    .await?;
    let grant_id: String = if touched.rows_affected() == 0 {
        let id = crate::crypto::random_id();
        sqlx::query(
            "INSERT INTO grants (id, user_id, client_id, status, created_at, updated_at, copy_version)
             VALUES ($1, $2, $3, 'active', $4, $4, $5)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(client_id)
        .bind(now)
        .bind(copy_version.unwrap_or(""))
        .execute(&mut **tx)
        .await?;
        id
    } else {
        sqlx::query_scalar(
            "SELECT id FROM grants WHERE user_id = $1 AND client_id = $2 AND status = 'active'",
        )
        .bind(user_id)
        .bind(client_id)
        .fetch_one(&mut **tx)
        .await?
    };
    if let Some(v) = copy_version {
        sqlx::query("UPDATE grants SET copy_version = $1 WHERE id = $2")
            .bind(v)
            .bind(&grant_id)
            .execute(&mut **tx)
            .await?;
    }
    let version: String = sqlx::query_scalar("SELECT copy_version FROM grants WHERE id = $1")
        .bind(&grant_id)
        .fetch_one(&mut **tx)
        .await?;
    Ok((grant_id, version))
}

/// Sets one scope's state and appends the change to the history. A repeated `requested` (the
/// consent page shown again) is not a change. Returns whether this is a change partners hear
/// of: any but a scope becoming `requested` (a question, not a decision).
async fn set_state(
    tx: &mut Tx<'_>,
    grant_id: &str,
    change: &Change,
    actor: Actor,
    copy_version: &str,
    now: Timestamp,
) -> Result<bool, sqlx::Error> {
    let old: Option<(String, String, String)> = sqlx::query_as(
        "SELECT g.user_id, g.client_id, gs.state FROM grants g
         JOIN grant_scopes gs ON gs.grant_id = g.id AND gs.scope = $2
         WHERE g.id = $1",
    )
    .bind(grant_id)
    .bind(&change.scope)
    .fetch_optional(&mut **tx)
    .await?;
    let old_state = old.as_ref().map(|(_, _, s)| s.clone());
    if change.state == State::Requested && old_state.as_deref() == Some("requested") {
        return Ok(false);
    }
    sqlx::query(
        "INSERT INTO grant_scopes (grant_id, scope, state, reason, granted_at, expires_at)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (grant_id, scope) DO UPDATE SET state = excluded.state,
             reason = excluded.reason, granted_at = excluded.granted_at,
             expires_at = excluded.expires_at",
    )
    .bind(grant_id)
    .bind(&change.scope)
    .bind(change.state.as_str())
    .bind(change.reason.map(Reason::as_str))
    .bind(now)
    .bind(change.expires_at)
    .execute(&mut **tx)
    .await?;
    append_history(
        tx,
        grant_id,
        &change.scope,
        old_state.as_deref(),
        change.state,
        change.reason,
        actor,
        copy_version,
        now,
    )
    .await?;
    Ok(change.state != State::Requested)
}

#[allow(clippy::too_many_arguments)]
async fn append_history(
    tx: &mut Tx<'_>,
    grant_id: &str,
    scope: &str,
    old_state: Option<&str>,
    new_state: State,
    reason: Option<Reason>,
    actor: Actor,
    copy_version: &str,
    at: Timestamp,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO permission_history
             (at, user_id, client_id, grant_id, scope, old_state, new_state, reason, actor, copy_version)
         SELECT $1, user_id, client_id, id, $2, $3, $4, $5, $6, $7 FROM grants WHERE id = $8",
    )
    .bind(at)
    .bind(scope)
    .bind(old_state)
    .bind(new_state.as_str())
    .bind(reason.map(Reason::as_str))
    .bind(actor.as_str())
    .bind(copy_version)
    .bind(grant_id)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Revokes the permissions for `scopes` (all of the grant's when empty) that are not already
/// ended. Revoking every granted scope, or all of them, ends the grant: its tokens are revoked
/// and the next authorization is a new decision. Returns whether the grant ended.
pub async fn revoke(
    db: &Db,
    grant_id: &str,
    scopes: &[String],
    reason: Reason,
    actor: Actor,
    now: Timestamp,
) -> Result<bool, sqlx::Error> {
    let pool = &db.writer;
    let mark = crate::webhooks::Mark::now();
    let mut tx = pool.begin().await?;
    let ended = revoke_in(&mut tx, grant_id, scopes, reason, actor, now).await?;
    tx.commit().await?;
    // Only when an event was written: a wake for nothing makes the worker claim for nothing.
    mark.wake_if_enqueued();
    Ok(ended)
}

/// [`revoke`] inside `tx`, for a caller that writes more in the same transaction (an audit
/// entry); it calls `crate::webhooks::wake()` after its commit.
pub async fn revoke_in(
    tx: &mut Tx<'_>,
    grant_id: &str,
    scopes: &[String],
    reason: Reason,
    actor: Actor,
    now: Timestamp,
) -> Result<bool, sqlx::Error> {
    let touched =
        sqlx::query("UPDATE grants SET updated_at = $1 WHERE id = $2 AND status = 'active'")
            .bind(now)
            .bind(grant_id)
            .execute(&mut **tx)
            .await?;
    if touched.rows_affected() == 0 {
        return Ok(false);
    }
    let version: String = sqlx::query_scalar("SELECT copy_version FROM grants WHERE id = $1")
        .bind(grant_id)
        .fetch_one(&mut **tx)
        .await?;
    let perms = permissions_on(&mut **tx, grant_id).await?;
    let mut changed = Vec::new();
    for p in &perms {
        let wanted = scopes.is_empty() || scopes.contains(&p.scope);
        let live = matches!(p.stored.state, State::Granted | State::Requested);
        if wanted && live {
            let change = Change {
                scope: p.scope.clone(),
                state: State::Revoked,
                reason: Some(reason),
                expires_at: p.stored.expires_at,
            };
            if set_state(tx, grant_id, &change, actor, &version, now).await? {
                changed.push(p.scope.clone());
            }
        }
    }
    let still_granted = perms.iter().any(|p| {
        p.stored.state == State::Granted && !scopes.is_empty() && !scopes.contains(&p.scope)
    });
    let ended = scopes.is_empty() || !still_granted;
    // Without "stay connected" the app may not refresh: its refresh tokens stop at once.
    let offline_removed = perms.iter().any(|p| {
        p.scope == "offline_access"
            && p.stored.state == State::Granted
            && scopes.iter().any(|s| s == "offline_access")
    });
    // The permissions as the changes above left them, for the event (not read again).
    let now_perms = perms
        .into_iter()
        .map(|mut p| {
            if changed.contains(&p.scope) {
                p.stored.state = State::Revoked;
                p.stored.reason = Some(reason);
                p.updated_at = now;
            }
            p
        })
        .collect();
    let announcement = events::prepare(
        tx,
        grant_id,
        events::Kind::Revoked,
        &changed,
        actor,
        now,
        Some(now_perms),
    )
    .await?;
    // What is left, in one round trip: the grant ended, its tokens stopped, the events.
    let outgoing = announcement
        .as_ref()
        .map(|a| a.outgoing())
        .unwrap_or_default();
    let mut batch = Batch::new(tx);
    let id = batch.text(grant_id);
    let mut sets = Vec::new();
    if ended {
        let why = batch.text(reason.as_str());
        sets.push(format!("status = 'revoked', ended_reason = {why}"));
    }
    if let Some(a) = &announcement {
        let seq = batch.int(a.sequence);
        sets.push(format!("event_sequence = {seq}"));
    }
    if !sets.is_empty() {
        batch.push(format!(
            "UPDATE grants SET {} WHERE id = {id}",
            sets.join(", ")
        ));
    }
    // Without "stay connected" the app may not refresh: its refresh tokens stop at once.
    let tables: &[&str] = match (ended, offline_removed) {
        (true, _) => &["access_tokens", "refresh_tokens"],
        (false, true) => &["refresh_tokens"],
        (false, false) => &[],
    };
    if !tables.is_empty() {
        let at = batch.int(now);
        for table in tables {
            batch.push(format!(
                "UPDATE {table} SET revoked_at = {at} WHERE grant_id = {id} AND revoked_at IS NULL"
            ));
        }
    }
    batch.outbox(&outgoing, now);
    batch.run(tx).await?;
    if let Some(a) = &announcement {
        a.written();
    }
    Ok(ended)
}

/// Records the expiry of granted permissions whose time has come (their effective state is
/// already `expired`; this writes it down and appends the history entry, dated at the expiry).
pub async fn record_expiries(db: &Db, now: Timestamp) -> Result<u64, sqlx::Error> {
    let pool = &db.writer;
    let due: Vec<(String, String, Timestamp)> = sqlx::query_as(
        "SELECT gs.grant_id, gs.scope, gs.expires_at FROM grant_scopes gs
         JOIN grants g ON g.id = gs.grant_id AND g.status = 'active'
         WHERE gs.state = 'granted' AND gs.expires_at IS NOT NULL AND gs.expires_at <= $1
         LIMIT 500",
    )
    .bind(now)
    .fetch_all(pool)
    .await?;
    let (mut n, mut announced) = (0, false);
    for (grant_id, scope, at) in due {
        let mut tx = pool.begin().await?;
        let done = sqlx::query(
            "UPDATE grant_scopes SET state = 'expired', reason = 'expired_by_policy', granted_at = $1
             WHERE grant_id = $2 AND scope = $3 AND state = 'granted'",
        )
        .bind(at)
        .bind(&grant_id)
        .bind(&scope)
        .execute(&mut *tx)
        .await?;
        if done.rows_affected() == 1 {
            let version: String =
                sqlx::query_scalar("SELECT copy_version FROM grants WHERE id = $1")
                    .bind(&grant_id)
                    .fetch_one(&mut *tx)
                    .await?;
            append_history(
                &mut tx,
                &grant_id,
                &scope,
                Some("granted"),
                State::Expired,
                Some(Reason::ExpiredByPolicy),
                Actor::Onyx,
                &version,
                at,
            )
            .await?;
            let expired = [scope.clone()];
            let kind = events::Kind::Expired;
            announced |=
                events::announce(&mut tx, &grant_id, kind, &expired, Actor::Onyx, at, None).await?;
            n += 1;
        }
        tx.commit().await?;
    }
    if announced {
        crate::webhooks::wake();
    }
    Ok(n)
}

/// Notes that the app used the grant (a token issued or refreshed).
pub async fn touch(tx: &mut Tx<'_>, grant_id: &str, now: Timestamp) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE grants SET last_used_at = $1 WHERE id = $2")
        .bind(now)
        .bind(grant_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// One entry of the permission history.
#[derive(Debug, Clone, FromRow, serde::Serialize)]
pub struct HistoryEntry {
    pub id: i64,
    pub at: Timestamp,
    pub client_id: String,
    pub grant_id: String,
    pub scope: String,
    pub old_state: Option<String>,
    pub new_state: String,
    pub reason: Option<String>,
    pub actor: String,
    pub copy_version: String,
}

/// The user's history with one app (or with every app), oldest first.
pub async fn history(
    db: &Db,
    user_id: &str,
    client_id: Option<&str>,
) -> Result<Vec<HistoryEntry>, sqlx::Error> {
    let pool = &db.pool;
    sqlx::query_as::<_, HistoryEntry>(
        "SELECT id, at, client_id, grant_id, scope, old_state, new_state, reason, actor, copy_version
         FROM permission_history
         WHERE user_id = $1 AND ($2 IS NULL OR client_id = $2)
         ORDER BY id",
    )
    .bind(user_id)
    .bind(client_id)
    .fetch_all(pool)
    .await
}

/// An active grant's account and permissions, read together: what deciding which scopes the
/// app may use now needs (see `consent::effective`).
pub struct Standing {
    pub user: super::users::User,
    pub permissions: Vec<Permission>,
}

/// The grant's [`Standing`]; `None` when the grant is unknown or has ended, or the account is
/// gone.
pub async fn standing(
    db: &Db,
    grant_id: &str,
    user_id: &str,
) -> Result<Option<Standing>, sqlx::Error> {
    let mut conn = db.pool.acquire().await?;
    standing_on(&mut conn, grant_id, user_id).await
}

/// [`standing`], read in the caller's transaction.
pub async fn standing_in(
    tx: &mut Tx<'_>,
    grant_id: &str,
    user_id: &str,
) -> Result<Option<Standing>, sqlx::Error> {
    standing_on(tx, grant_id, user_id).await
}

async fn standing_on(
    conn: &mut sqlx::AnyConnection,
    grant_id: &str,
    user_id: &str,
) -> Result<Option<Standing>, sqlx::Error> {
    let Some(grant) = by_id_on(&mut *conn, grant_id).await? else {
        return Ok(None);
    };
    if !grant.is_active() {
        return Ok(None);
    }
    let Some(user) = super::users::by_id_on(&mut *conn, user_id).await? else {
        return Ok(None);
    };
    let permissions = permissions_on(&mut *conn, grant_id).await?;
    Ok(Some(Standing { user, permissions }))
}

/// Whether the grant still stands (not revoked).
pub async fn is_active(
    conn: &mut sqlx::AnyConnection,
    grant_id: &str,
) -> Result<bool, sqlx::Error> {
    let status: Option<String> = sqlx::query_scalar("SELECT status FROM grants WHERE id = $1")
        .bind(grant_id)
        .fetch_optional(conn)
        .await?;
    Ok(status.as_deref() == Some("active"))
}
