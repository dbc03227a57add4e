//! Issued access tokens. The JWT is also a row keyed by the hash of its text, so a lookup
//! proves it genuine and shows revocation at once, without verifying a signature.

use sqlx::{AnyConnection, FromRow};

use rusqlite::OptionalExtension;

use super::{Db, Pool};
use crate::clock::Timestamp;

#[derive(Debug, Clone, FromRow)]
pub struct AccessToken {
    pub jti: String,
    pub client_id: String,
    pub user_id: Option<String>,
    pub grant_id: Option<String>,
    pub family_id: Option<String>,
    pub scope: String,
    pub audience: String,
    pub auth_time: Option<Timestamp>,
    pub issued_at: Timestamp,
    pub expires_at: Timestamp,
    pub revoked_at: Option<Timestamp>,
}

impl AccessToken {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split(' ').filter(|s| !s.is_empty())
    }
}

const COLUMNS: &str = "token_hash, jti, client_id, user_id, grant_id, family_id, scope, audience, auth_time, issued_at, expires_at, revoked_at";

/// Rows per INSERT statement at most. Statements stay few and their text repeats (so each size
/// is prepared once per connection), and none has hundreds of parameters: SQLite looks a
/// parameter's name up by a linear scan, which made one 128-row statement quadratic.
const ROWS_PER_STATEMENT: usize = 8;

/// Inserts several tokens, a few rows per statement (the caller's transaction makes it one
/// commit).
pub async fn insert_many(
    conn: &mut AnyConnection,
    rows: &[(String, AccessToken)],
) -> Result<(), sqlx::Error> {
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        insert_chunk(&mut *conn, chunk).await?;
    }
    Ok(())
}

async fn insert_chunk(
    conn: &mut AnyConnection,
    rows: &[(String, AccessToken)],
) -> Result<(), sqlx::Error> {
    // `$N` placeholders, which both backends accept (the Any query builder writes `?`, which
    // PostgreSQL does not).
    let per_row = COLUMNS.split(',').count();
    let values: Vec<String> = (0..rows.len())
        .map(|r| {
            let cells: Vec<String> = (1..=per_row)
                .map(|c| format!("${}", r * per_row + c))
                .collect();
            format!("({})", cells.join(", "))
        })
        .collect();
    let sql = format!(
        "INSERT INTO access_tokens ({COLUMNS}) VALUES {}",
        values.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for (hash, t) in rows {
        q = q
            .bind(hash.clone())
            .bind(t.jti.clone())
            .bind(t.client_id.clone())
            .bind(t.user_id.clone())
            .bind(t.grant_id.clone())
            .bind(t.family_id.clone())
            .bind(t.scope.clone())
            .bind(t.audience.clone())
            .bind(t.auth_time)
            .bind(t.issued_at)
            .bind(t.expires_at)
            .bind(t.revoked_at);
    }
    q.execute(conn).await?;
    Ok(())
}

/// A token with what decides whether it is still good: its app's access state and its grant's.
#[derive(Debug, Clone, FromRow)]
pub struct TokenStatus {
    #[sqlx(flatten)]
    pub token: AccessToken,
    pub app_state: String,
    pub grant_status: Option<String>,
}

const STATUS_BY_HASH: &str = "SELECT t.jti, t.client_id, t.user_id, t.grant_id, t.family_id,
        t.scope, t.audience, t.auth_time, t.issued_at, t.expires_at, t.revoked_at,
        a.access_state AS app_state, g.status AS grant_status
 FROM access_tokens t
 JOIN apps a ON a.client_id = t.client_id
 LEFT JOIN grants g ON g.id = t.grant_id
 WHERE t.token_hash = $1";

impl TokenStatus {
    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            token: AccessToken {
                jti: r.get("jti")?,
                client_id: r.get("client_id")?,
                user_id: r.get("user_id")?,
                grant_id: r.get("grant_id")?,
                family_id: r.get("family_id")?,
                scope: r.get("scope")?,
                audience: r.get("audience")?,
                auth_time: r.get("auth_time")?,
                issued_at: r.get("issued_at")?,
                expires_at: r.get("expires_at")?,
                revoked_at: r.get("revoked_at")?,
            },
            app_state: r.get("app_state")?,
            grant_status: r.get("grant_status")?,
        })
    }
}

/// Looks a token up by the hash of its text, with its app's and grant's state, in one query.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn status_by_hash(db: &Db, token_hash: &str) -> Result<Option<TokenStatus>, sqlx::Error> {
    match &db.direct {
        Some(direct) => direct.read(|c| {
            c.prepare_cached(STATUS_BY_HASH)?
                .query_row(
                    rusqlite::named_params! { "$1": token_hash },
                    TokenStatus::from_sqlite,
                )
                .optional()
        }),
        None => {
            sqlx::query_as::<_, TokenStatus>(STATUS_BY_HASH)
                .bind(token_hash)
                .fetch_optional(&db.pool)
                .await
        }
    }
}

/// Revokes every access and refresh token of a family (all descended from one authorization
/// code). Returns how many tokens it revoked.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn revoke_family(
    conn: &mut AnyConnection,
    family_id: &str,
    now: Timestamp,
) -> Result<u64, sqlx::Error> {
    let access = sqlx::query(
        "UPDATE access_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family_id)
    .execute(&mut *conn)
    .await?;
    let refresh = sqlx::query(
        "UPDATE refresh_tokens SET revoked_at = $1 WHERE family_id = $2 AND revoked_at IS NULL",
    )
    .bind(now)
    .bind(family_id)
    .execute(&mut *conn)
    .await?;
    Ok(access.rows_affected() + refresh.rows_affected())
}

/// Revokes one access token of `client_id`. Returns `Some(owner)` if the token exists.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn revoke_access_token(
    pool: &Pool,
    token_hash: &str,
    client_id: &str,
    now: Timestamp,
) -> Result<Option<String>, sqlx::Error> {
    let owner: Option<String> =
        sqlx::query_scalar("SELECT client_id FROM access_tokens WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(pool)
            .await?;
    if owner.as_deref() == Some(client_id) {
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1 WHERE token_hash = $2 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(token_hash)
        .execute(pool)
        .await?;
    }
    Ok(owner)
}

#[derive(Debug, FromRow)]
struct CallerAndTokenRow {
    rs_client_id: String,
    rs_name: String,
    rs_audience: String,
    rs_secret_hash: String,
    jti: Option<String>,
    client_id: Option<String>,
    user_id: Option<String>,
    grant_id: Option<String>,
    family_id: Option<String>,
    scope: Option<String>,
    audience: Option<String>,
    auth_time: Option<Timestamp>,
    issued_at: Option<Timestamp>,
    expires_at: Option<Timestamp>,
    revoked_at: Option<Timestamp>,
    app_state: Option<String>,
    grant_status: Option<String>,
}

const CALLER_AND_TOKEN: &str = "SELECT rs.client_id AS rs_client_id, rs.name AS rs_name,
        rs.audience AS rs_audience, rs.secret_hash AS rs_secret_hash,
        t.jti, t.client_id, t.user_id, t.grant_id, t.family_id, t.scope, t.audience, t.auth_time,
        t.issued_at, t.expires_at, t.revoked_at, a.access_state AS app_state, g.status AS grant_status
 FROM resource_servers rs
 LEFT JOIN access_tokens t ON t.token_hash = $2
 LEFT JOIN apps a ON a.client_id = t.client_id
 LEFT JOIN grants g ON g.id = t.grant_id
 WHERE rs.client_id = $1";

impl CallerAndTokenRow {
    fn from_sqlite(r: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            rs_client_id: r.get("rs_client_id")?,
            rs_name: r.get("rs_name")?,
            rs_audience: r.get("rs_audience")?,
            rs_secret_hash: r.get("rs_secret_hash")?,
            jti: r.get("jti")?,
            client_id: r.get("client_id")?,
            user_id: r.get("user_id")?,
            grant_id: r.get("grant_id")?,
            family_id: r.get("family_id")?,
            scope: r.get("scope")?,
            audience: r.get("audience")?,
            auth_time: r.get("auth_time")?,
            issued_at: r.get("issued_at")?,
            expires_at: r.get("expires_at")?,
            revoked_at: r.get("revoked_at")?,
            app_state: r.get("app_state")?,
            grant_status: r.get("grant_status")?,
        })
    }
}

/// The hot path of introspection by a resource server: the caller's row and the token's
/// status in one round trip. `None` if there is no such resource server.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn resource_server_and_status(
    db: &Db,
    rs_client_id: &str,
    token_hash: &str,
) -> Result<Option<(super::resource_servers::ResourceServer, Option<TokenStatus>)>, sqlx::Error> {
    let row = match &db.direct {
        Some(direct) => direct.read(|c| {
            c.prepare_cached(CALLER_AND_TOKEN)?
                .query_row(
                    rusqlite::named_params! { "$1": rs_client_id, "$2": token_hash },
                    CallerAndTokenRow::from_sqlite,
                )
                .optional()
        })?,
        None => {
            sqlx::query_as::<_, CallerAndTokenRow>(CALLER_AND_TOKEN)
                .bind(rs_client_id)
                .bind(token_hash)
                .fetch_optional(&db.pool)
                .await?
        }
    };
    Ok(row.map(|r| {
        let rs = super::resource_servers::ResourceServer {
            client_id: r.rs_client_id,
            name: r.rs_name,
            audience: r.rs_audience,
            secret_hash: r.rs_secret_hash,
        };
        let status = match (
            r.jti,
            r.client_id,
            r.scope,
            r.audience,
            r.issued_at,
            r.expires_at,
            r.app_state,
        ) {
            (
                Some(jti),
                Some(client_id),
                Some(scope),
                Some(audience),
                Some(issued_at),
                Some(expires_at),
                Some(app_state),
            ) => Some(TokenStatus {
                token: AccessToken {
                    jti,
                    client_id,
                    user_id: r.user_id,
                    grant_id: r.grant_id,
                    family_id: r.family_id,
                    scope,
                    audience,
                    auth_time: r.auth_time,
                    issued_at,
                    expires_at,
                    revoked_at: r.revoked_at,
                },
                app_state,
                grant_status: r.grant_status,
            }),
            _ => None,
        };
        (rs, status)
    }))
}
