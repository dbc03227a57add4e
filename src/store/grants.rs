//! Grants: one user's consent decision for one app, with one row per scope.

use super::Pool;
use crate::clock::Timestamp;

/// The user's active grant to the app: its id and the scopes in state `granted`.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn active(
    pool: &Pool,
    user_id: &str,
    client_id: &str,
) -> Result<Option<(String, Vec<String>)>, sqlx::Error> {
    let rows: Vec<(String, Option<String>)> = sqlx::query_as(
        "SELECT g.id, gs.scope FROM grants g
         LEFT JOIN grant_scopes gs ON gs.grant_id = g.id AND gs.state = 'granted'
         WHERE g.user_id = $1 AND g.client_id = $2 AND g.status = 'active'
         ORDER BY gs.scope",
    )
    .bind(user_id)
    .bind(client_id)
    .fetch_all(pool)
    .await?;
    let Some((grant_id, _)) = rows.first() else {
        return Ok(None);
    };
    let grant_id = grant_id.clone();
    Ok(Some((
        grant_id,
        rows.into_iter().filter_map(|(_, s)| s).collect(),
    )))
}

/// Records that the user approved `scopes` for the app: adds them to the active grant (made if
/// there is none). Returns the grant id.
#[tracing::instrument(level = "debug", skip(pool))]
pub async fn record_approval(
    pool: &Pool,
    user_id: &str,
    client_id: &str,
    scopes: &[String],
    now: Timestamp,
) -> Result<String, sqlx::Error> {
    let mut tx = pool.begin().await?;
    // Write first: in SQLite a transaction that reads before it writes can fail to upgrade its
    // lock under contention; the update takes the write lock at once.
    let touched = sqlx::query(
        "UPDATE grants SET updated_at = $1 WHERE user_id = $2 AND client_id = $3 AND status = 'active'",
    )
    .bind(now)
    .bind(user_id)
    .bind(client_id)
    .execute(&mut *tx)
    .await?;
    let grant_id = if touched.rows_affected() == 0 {
        let id = crate::crypto::random_id();
        sqlx::query(
            "INSERT INTO grants (id, user_id, client_id, status, created_at, updated_at)
             VALUES ($1, $2, $3, 'active', $4, $4)",
        )
        .bind(&id)
        .bind(user_id)
        .bind(client_id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        id
    } else {
        sqlx::query_scalar(
            "SELECT id FROM grants WHERE user_id = $1 AND client_id = $2 AND status = 'active'",
        )
        .bind(user_id)
        .bind(client_id)
        .fetch_one(&mut *tx)
        .await?
    };
    for scope in scopes {
        sqlx::query(
            "INSERT INTO grant_scopes (grant_id, scope, state, granted_at) VALUES ($1, $2, 'granted', $3)
             ON CONFLICT (grant_id, scope) DO UPDATE SET state = 'granted', granted_at = excluded.granted_at",
        )
        .bind(&grant_id)
        .bind(scope)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    }
    tx.commit().await?;
    Ok(grant_id)
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
