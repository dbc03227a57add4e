//! Issued access tokens. The JWT is also a row keyed by the hash of its text, so a lookup
//! proves it genuine and shows revocation at once, without verifying a signature.

use sqlx::{AnyConnection, FromRow};

use super::fast::{self, HotRow};
use super::grants::Permission;
use super::rows::{Columns, RowSource};
use super::{Db, Pool};
use crate::clock::Timestamp;
use crate::consent::{AppFacts, Reason, State, Stored, UserFacts};
use crate::scopes::{ScopeName, TrustLevel};

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

/// How a presented access token is found: by the `jti` in its payload (time-ordered, so the
/// key's index grows at its end), and proven genuine by the hash of its whole text, which must
/// match the stored one. Reading the `jti` trusts nothing in the token: a forged or altered
/// token has another hash and matches no row.
#[derive(Debug, Clone)]
pub struct Lookup {
    /// Empty when the text is not a JWT with a `jti`: such a token matches no row.
    jti: String,
    hash: String,
    /// `cnf.jkt` of the token's claims (RFC 9449 §6.1), read in the same pass as the `jti`.
    jkt: Option<String>,
}

/// Longer presented tokens are not parsed (onyx-id's own are under 1 KiB).
const MAX_TOKEN_LEN: usize = 8192;

impl Lookup {
    pub fn of(token: &str) -> Self {
        let (jti, jkt) = claims_of(token).unwrap_or_default();
        Self {
            jti,
            hash: crate::crypto::secret_hash(token),
            jkt,
        }
    }

    /// The hash of the presented text (refresh tokens are looked up by it).
    pub fn hash(&self) -> &str {
        &self.hash
    }

    /// The thumbprint of the DPoP key the token is bound to (`cnf.jkt`). Meaningful only once
    /// the token was found by its hash: then its claims are the ones this server signed.
    pub fn bound_jkt(&self) -> Option<&str> {
        self.jkt.as_deref()
    }
}

fn claims_of(token: &str) -> Option<(String, Option<String>)> {
    use base64::Engine;
    #[derive(serde::Deserialize)]
    struct Cnf {
        jkt: Option<String>,
    }
    #[derive(serde::Deserialize)]
    struct Claims {
        jti: String,
        cnf: Option<Cnf>,
    }
    if token.len() > MAX_TOKEN_LEN {
        return None;
    }
    let mut parts = token.split('.');
    let (_header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() {
        return None;
    }
    let json = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: Claims = serde_json::from_slice(&json).ok()?;
    (!claims.jti.is_empty()).then_some((claims.jti, claims.cnf.and_then(|c| c.jkt)))
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

/// One token's INSERT with numbered placeholders, in the order of `COLUMNS` (the SQLite
/// inline writer prepares it once).
pub fn insert_one_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        let marks: Vec<String> = (1..=COLUMNS.split(',').count())
            .map(|i| format!("?{i}"))
            .collect();
        format!(
            "INSERT INTO access_tokens ({COLUMNS}) VALUES ({})",
            marks.join(", ")
        )
    })
}

/// PostgreSQL: inserts a batch of tokens in one statement, whatever its size (the rows travel
/// as one JSON array), so a batch costs one round trip and one commit.
pub async fn insert_batch_postgres(
    pool: &Pool,
    rows: &[(String, AccessToken)],
) -> Result<(), sqlx::Error> {
    let json: Vec<serde_json::Value> = rows
        .iter()
        .map(|(hash, t)| {
            serde_json::json!({
                "token_hash": hash, "jti": t.jti, "client_id": t.client_id,
                "user_id": t.user_id, "grant_id": t.grant_id, "family_id": t.family_id,
                "scope": t.scope, "audience": t.audience, "auth_time": t.auth_time,
                "issued_at": t.issued_at, "expires_at": t.expires_at,
                "revoked_at": t.revoked_at,
            })
        })
        .collect();
    let json = serde_json::to_string(&json).map_err(|e| sqlx::Error::Encode(Box::new(e)))?;
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let sql = SQL.get_or_init(|| {
        format!(
            "INSERT INTO access_tokens ({COLUMNS}) SELECT {COLUMNS}
             FROM json_to_recordset($1::text::json) AS r(token_hash TEXT, jti TEXT,
                 client_id TEXT, user_id TEXT, grant_id TEXT, family_id TEXT, scope TEXT,
                 audience TEXT, auth_time BIGINT, issued_at BIGINT, expires_at BIGINT,
                 revoked_at BIGINT)"
        )
    });
    sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(json)
        .execute(pool)
        .await?;
    Ok(())
}

/// What Onyx currently allows the app (for working out effective permissions).
#[derive(Debug, Clone, Default)]
pub struct AppConditions {
    pub approved: Vec<ScopeName>,
    pub pending: Vec<String>,
    pub capabilities: Vec<String>,
    pub withdrawn: Vec<String>,
    pub trust: TrustLevel,
    pub consent_ttl: Option<i64>,
}

impl AppConditions {
    pub fn facts(&self) -> AppFacts<'_> {
        AppFacts {
            approved: &self.approved,
            pending: &self.pending,
            trust: self.trust,
            capabilities: &self.capabilities,
            withdrawn: &self.withdrawn,
            consent_ttl: self.consent_ttl,
        }
    }
}

/// The account facts that decide eligibility.
#[derive(Debug, Clone)]
pub struct UserConditions {
    pub email_verified: bool,
    pub region: Option<String>,
    pub elevated_risk: bool,
}

impl UserConditions {
    pub fn facts(&self) -> UserFacts<'_> {
        UserFacts {
            email_verified: self.email_verified,
            region: self.region.as_deref(),
            elevated_risk: self.elevated_risk,
        }
    }
}

/// A token with everything that decides whether it is still good and for which scopes: its
/// app's access state and conditions, its grant's state, the account's facts and the grant's
/// permissions. Read in one query.
#[derive(Debug, Clone)]
pub struct TokenStatus {
    pub token: AccessToken,
    pub app_state: String,
    pub grant_status: Option<String>,
    pub app: AppConditions,
    /// For tokens issued to a user.
    pub user: Option<UserConditions>,
    pub permissions: Vec<Permission>,
}

/// The columns shared by both token lookups: one row per permission of the token's grant (one
/// row when it has none).
const STATUS_COLUMNS: &str = "t.jti, t.client_id, t.user_id, t.grant_id, t.family_id,
        t.scope, t.audience, t.auth_time, t.issued_at, t.expires_at, t.revoked_at,
        CASE WHEN a.stage = 'draft' THEN 'draft' ELSE a.access_state END AS app_state,
        a.scopes AS app_scopes, a.pending_scopes AS app_pending,
        a.capability_states AS app_capabilities, a.withdrawn_scopes AS app_withdrawn,
        a.trust_level AS app_trust,
        a.consent_ttl AS app_consent_ttl, g.status AS grant_status,
        u.email_verified AS user_verified, u.region AS user_region, u.risk_level AS user_risk,
        gs.scope AS p_scope, gs.state AS p_state, gs.reason AS p_reason,
        gs.granted_at AS p_updated, gs.expires_at AS p_expires";

const STATUS_JOINS: &str = "LEFT JOIN apps a ON a.client_id = t.client_id
 LEFT JOIN grants g ON g.id = t.grant_id
 LEFT JOIN users u ON u.id = t.user_id
 LEFT JOIN grant_scopes gs ON gs.grant_id = t.grant_id";

#[derive(Debug)]
struct StatusRow {
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
    app_scopes: Option<String>,
    app_pending: Option<String>,
    app_capabilities: Option<String>,
    app_withdrawn: Option<String>,
    app_trust: Option<String>,
    app_consent_ttl: Option<i64>,
    grant_status: Option<String>,
    user_verified: Option<i64>,
    user_region: Option<String>,
    user_risk: Option<String>,
    p_scope: Option<String>,
    p_state: Option<String>,
    p_reason: Option<String>,
    p_updated: Option<Timestamp>,
    p_expires: Option<Timestamp>,
}

/// The one decoder of a status row, on every path (the pool's rows, rusqlite's,
/// tokio-postgres's).
impl HotRow for StatusRow {
    fn read_at<R: RowSource>(r: &R, offset: usize) -> Result<Self, R::Error> {
        let mut c = Columns::at(r, offset);
        Ok(Self {
            jti: c.get("jti")?,
            client_id: c.get("client_id")?,
            user_id: c.get("user_id")?,
            grant_id: c.get("grant_id")?,
            family_id: c.get("family_id")?,
            scope: c.get("scope")?,
            audience: c.get("audience")?,
            auth_time: c.get("auth_time")?,
            issued_at: c.get("issued_at")?,
            expires_at: c.get("expires_at")?,
            revoked_at: c.get("revoked_at")?,
            app_state: c.get("app_state")?,
            app_scopes: c.get("app_scopes")?,
            app_pending: c.get("app_pending")?,
            app_capabilities: c.get("app_capabilities")?,
            app_withdrawn: c.get("app_withdrawn")?,
            app_trust: c.get("app_trust")?,
            app_consent_ttl: c.get("app_consent_ttl")?,
            grant_status: c.get("grant_status")?,
            user_verified: c.get("user_verified")?,
            user_region: c.get("user_region")?,
            user_risk: c.get("user_risk")?,
            p_scope: c.get("p_scope")?,
            p_state: c.get("p_state")?,
            p_reason: c.get("p_reason")?,
            p_updated: c.get("p_updated")?,
            p_expires: c.get("p_expires")?,
        })
    }
}

fn list(json: Option<&str>) -> Vec<String> {
    json.and_then(|j| serde_json::from_str(j).ok())
        .unwrap_or_default()
}

/// Folds a lookup's rows into the token's status; `None` if there is no such token (or its app
/// is gone).
fn fold(rows: Vec<StatusRow>) -> Option<TokenStatus> {
    let mut rows = rows.into_iter();
    let first = rows.next()?;
    let permission = |r: &StatusRow| -> Option<Permission> {
        Some(Permission {
            scope: r.p_scope.clone()?,
            stored: Stored {
                state: r
                    .p_state
                    .as_deref()
                    .and_then(State::parse)
                    .unwrap_or(State::Revoked),
                reason: r.p_reason.as_deref().and_then(Reason::parse),
                expires_at: r.p_expires,
            },
            updated_at: r.p_updated.unwrap_or_default(),
        })
    };
    let mut permissions: Vec<Permission> = permission(&first).into_iter().collect();
    permissions.extend(rows.filter_map(|r| permission(&r)));
    let user = first.user_verified.map(|v| UserConditions {
        email_verified: v != 0,
        region: first.user_region.clone(),
        elevated_risk: first.user_risk.as_deref() == Some("elevated"),
    });
    let app = AppConditions {
        approved: list(first.app_scopes.as_deref())
            .into_iter()
            .map(ScopeName::stored)
            .collect(),
        pending: list(first.app_pending.as_deref()),
        capabilities: crate::partner::access::Capabilities::parse(
            first.app_capabilities.as_deref().unwrap_or("{}"),
        )
        .enabled(),
        withdrawn: list(first.app_withdrawn.as_deref()),
        trust: first
            .app_trust
            .as_deref()
            .and_then(TrustLevel::parse)
            .unwrap_or_default(),
        consent_ttl: first.app_consent_ttl,
    };
    Some(TokenStatus {
        token: AccessToken {
            jti: first.jti?,
            client_id: first.client_id?,
            user_id: first.user_id,
            grant_id: first.grant_id,
            family_id: first.family_id,
            scope: first.scope?,
            audience: first.audience?,
            auth_time: first.auth_time,
            issued_at: first.issued_at?,
            expires_at: first.expires_at?,
            revoked_at: first.revoked_at,
        },
        app_state: first.app_state?,
        grant_status: first.grant_status,
        app,
        user,
        permissions,
    })
}

impl TokenStatus {
    /// The grant's permissions as the app sees them now (empty for tokens without a grant).
    pub fn permission_views(&self, now: Timestamp) -> Vec<crate::consent::View> {
        let Some(user) = &self.user else {
            return vec![];
        };
        crate::consent::views(
            self.permissions
                .iter()
                .map(|p| (p.scope.as_str(), &p.stored, p.updated_at)),
            &self.app.facts(),
            &user.facts(),
            now,
        )
    }

    /// The token's scopes the app may still use: for a user's token, those whose permission is
    /// effectively granted now; for an app's own token, those Onyx still lets it hold.
    pub fn usable_scopes(&self, now: Timestamp) -> Vec<&str> {
        let facts = self.app.facts();
        match (&self.token.grant_id, &self.user) {
            (Some(_), Some(user)) => {
                let user_facts = user.facts();
                self.token
                    .scopes()
                    .filter(|s| {
                        self.permissions.iter().any(|p| {
                            p.scope == *s
                                && crate::consent::effective(
                                    &p.stored,
                                    crate::scopes::catalogue().get(s),
                                    &facts,
                                    &user_facts,
                                    now,
                                )
                                .usable()
                        })
                    })
                    .collect()
            }
            (Some(_), None) => vec![],
            (None, _) => self
                .token
                .scopes()
                .filter(|s| {
                    crate::scopes::catalogue().get(s).is_some_and(|info| {
                        crate::consent::app_unavailable_because(info, &facts).is_none()
                    })
                })
                .collect(),
        }
    }
}

fn status_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT {STATUS_COLUMNS} FROM access_tokens t {STATUS_JOINS}
             WHERE t.jti = $1 AND t.token_hash = $2"
        )
    })
}

/// Looks a presented token up, with everything that decides its state, in one query.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn status(db: &Db, token: &Lookup) -> Result<Option<TokenStatus>, sqlx::Error> {
    if token.jti.is_empty() {
        return Ok(None);
    }
    fast::rows_then(db, status_sql(), None, &[&token.jti, &token.hash], fold).await
}

/// Revokes every access and refresh token of a family (all descended from one authorization
/// code). Returns how many tokens it revoked.
pub async fn revoke_family(db: &Db, family_id: &str, now: Timestamp) -> Result<u64, sqlx::Error> {
    let mut conn = db.writer.acquire().await?;
    revoke_family_in(&mut conn, family_id, now).await
}

/// [`revoke_family`], in the caller's transaction.
#[tracing::instrument(level = "debug", skip(conn))]
pub async fn revoke_family_in(
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
    db: &Db,
    token: &Lookup,
    client_id: &str,
    now: Timestamp,
) -> Result<Option<String>, sqlx::Error> {
    let pool = &db.writer;
    if token.jti.is_empty() {
        return Ok(None);
    }
    let owner: Option<String> = sqlx::query_scalar(
        "SELECT client_id FROM access_tokens WHERE jti = $1 AND token_hash = $2",
    )
    .bind(&token.jti)
    .bind(&token.hash)
    .fetch_optional(pool)
    .await?;
    if owner.as_deref() == Some(client_id) {
        sqlx::query(
            "UPDATE access_tokens SET revoked_at = $1
             WHERE jti = $2 AND token_hash = $3 AND revoked_at IS NULL",
        )
        .bind(now)
        .bind(&token.jti)
        .bind(&token.hash)
        .execute(pool)
        .await?;
    }
    Ok(owner)
}

#[derive(Debug)]
struct CallerRow {
    rs_client_id: String,
    rs_name: String,
    rs_audience: String,
    rs_secret_hash: String,
    status: StatusRow,
}

impl HotRow for CallerRow {
    fn read_at<R: RowSource>(r: &R, offset: usize) -> Result<Self, R::Error> {
        let mut c = Columns::at(r, offset);
        Ok(Self {
            rs_client_id: c.get("rs_client_id")?,
            rs_name: c.get("rs_name")?,
            rs_audience: c.get("rs_audience")?,
            rs_secret_hash: c.get("rs_secret_hash")?,
            status: StatusRow::read_at(r, offset + 4)?,
        })
    }
}

fn caller_and_token_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT rs.client_id AS rs_client_id, rs.name AS rs_name, rs.audience AS rs_audience,
                    rs.secret_hash AS rs_secret_hash, {STATUS_COLUMNS}
             FROM resource_servers rs
             LEFT JOIN access_tokens t ON t.jti = $2 AND t.token_hash = $3
             {STATUS_JOINS}
             WHERE rs.client_id = $1"
        )
    })
}

/// [`caller_and_token_sql`] for many lookups at once (`Pipeline::batched_rows`): `$1`, `$2` and
/// `$3` are arrays of resource server ids, `jti`s and hashes, and `n` says which lookup a row
/// answers.
fn caller_and_token_batch_sql() -> &'static str {
    static SQL: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    SQL.get_or_init(|| {
        format!(
            "SELECT k.n, rs.client_id AS rs_client_id, rs.name AS rs_name,
                    rs.audience AS rs_audience, rs.secret_hash AS rs_secret_hash, {STATUS_COLUMNS}
             FROM unnest($1::text[], $2::text[], $3::text[]) WITH ORDINALITY
                  AS k(rs_id, jti, hash, n)
             JOIN resource_servers rs ON rs.client_id = k.rs_id
             LEFT JOIN access_tokens t ON t.jti = k.jti AND t.token_hash = k.hash
             {STATUS_JOINS}"
        )
    })
}

/// The hot path of introspection by a resource server: the caller's row and the token's
/// status in one round trip. `None` if there is no such resource server.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn resource_server_and_status(
    db: &Db,
    rs_client_id: &str,
    token: &Lookup,
) -> Result<Option<(super::resource_servers::ResourceServer, Option<TokenStatus>)>, sqlx::Error> {
    // (A token that is not a JWT binds an empty `jti`, which no row has.)
    fast::rows_then(
        db,
        caller_and_token_sql(),
        Some(caller_and_token_batch_sql()),
        &[rs_client_id, &token.jti, &token.hash],
        caller_and_status,
    )
    .await
}

/// The resource server and the token's status, from the rows of `caller_and_token_sql`.
fn caller_and_status(
    rows: Vec<CallerRow>,
) -> Option<(super::resource_servers::ResourceServer, Option<TokenStatus>)> {
    let first = rows.first()?;
    let rs = super::resource_servers::ResourceServer {
        client_id: first.rs_client_id.clone(),
        name: first.rs_name.clone(),
        audience: first.rs_audience.clone(),
        secret_hash: super::apps::SecretHash::stored(first.rs_secret_hash.clone()),
    };
    Some((rs, fold(rows.into_iter().map(|r| r.status).collect())))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;

    fn jwt(payload: &str) -> String {
        format!(
            "eyJhbGciOiJFUzI1NiJ9.{}.c2lnbmF0dXJl",
            URL_SAFE_NO_PAD.encode(payload)
        )
    }

    #[test]
    fn a_lookup_reads_the_jti_and_hashes_the_whole_text() {
        let token = jwt(r#"{"iss":"https://id.example","jti":"0192abc","scope":"a b"}"#);
        let l = Lookup::of(&token);
        assert_eq!(l.jti, "0192abc");
        assert_eq!(l.hash, crate::crypto::secret_hash(&token));
        // Same claims, another signature: same jti, another hash, so no stored row matches.
        let forged = token.replace("c2lnbmF0dXJl", "Zm9yZ2Vk");
        assert_eq!(Lookup::of(&forged).jti, l.jti);
        assert_ne!(Lookup::of(&forged).hash, l.hash);
    }

    #[test]
    fn text_that_is_not_a_jwt_with_a_jti_matches_nothing() {
        for bad in [
            String::new(),
            "opaque-refresh-token".into(),
            "a.b".into(),
            "a.b.c.d".into(),
            "x.!!!.y".into(),
            jwt("not json"),
            jwt(r#"{"sub":"no jti"}"#),
            jwt(r#"{"jti":""}"#),
            jwt(r#"{"jti":42}"#),
            jwt(&format!(r#"{{"jti":"{}"}}"#, "j".repeat(MAX_TOKEN_LEN))),
        ] {
            assert_eq!(Lookup::of(&bad).jti, "", "{bad:.60}");
        }
    }
}
