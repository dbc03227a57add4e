//! Browser sessions. The cookie carries a random secret; only its hash is stored, as the key.
//! Each session also has a public id, `sid` (in ID tokens and logout tokens, and in the
//! sessions page's forms), which cannot be turned back into the secret.

use sqlx::FromRow;

use super::{Db, Tx};
use crate::clock::Timestamp;
use crate::crypto::secret_hash;

/// `last_used_at` is written at most this often per session (seconds), so a page view is not a
/// write each time.
pub const TOUCH_EVERY: i64 = 60;

/// A live session, as a request finds it.
#[derive(Debug, Clone, FromRow)]
pub struct Session {
    /// The public session id.
    pub sid: String,
    pub user_id: String,
    pub auth_time: Timestamp,
    pub expires_at: Timestamp,
}

/// A session as the sessions page lists it.
#[derive(Debug, Clone, FromRow)]
pub struct SessionRecord {
    pub sid: String,
    pub user_id: String,
    /// The `User-Agent` the browser sent at sign-in.
    pub user_agent: Option<String>,
    /// The client address at sign-in (trusted-proxy aware).
    pub ip: Option<String>,
    pub created_at: Timestamp,
    pub last_used_at: Timestamp,
    pub auth_time: Timestamp,
    pub expires_at: Timestamp,
}

/// What a sign-in knows of the browser.
#[derive(Debug, Clone, Copy, Default)]
pub struct Browser<'a> {
    pub user_agent: Option<&'a str>,
    pub ip: Option<&'a str>,
}

/// A new session: the secret for the cookie (never stored) and the session itself.
#[derive(Debug)]
pub struct Created {
    pub secret: String,
    pub session: Session,
}

/// At most this many bytes of the user agent are kept.
const MAX_USER_AGENT: usize = 512;

/// Creates a session and returns the secret to put in the cookie.
#[tracing::instrument(level = "debug", skip(db, browser))]
pub async fn create(
    db: &Db,
    user_id: &str,
    browser: Browser<'_>,
    now: Timestamp,
    lifetime: i64,
) -> Result<Created, sqlx::Error> {
    let secret = crate::crypto::random_secret();
    let sid = crate::crypto::random_id();
    let user_agent = browser.user_agent.map(|ua| truncate(ua, MAX_USER_AGENT));
    sqlx::query(
        "INSERT INTO sessions (id_hash, sid, user_id, auth_time, created_at, last_used_at,
             expires_at, user_agent, ip)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
    )
    .bind(secret_hash(&secret))
    .bind(&sid)
    .bind(user_id)
    .bind(now)
    .bind(now)
    .bind(now)
    .bind(now + lifetime)
    .bind(user_agent)
    .bind(browser.ip)
    .execute(&db.writer)
    .await?;
    Ok(Created {
        secret,
        session: Session {
            sid,
            user_id: user_id.to_string(),
            auth_time: now,
            expires_at: now + lifetime,
        },
    })
}

/// A sign-in by the same person in a browser whose session is `old_secret`: the session goes on
/// under a new secret (no fixation) with a fresh `auth_time` and expiry, and keeps its `sid`, so
/// the apps signed in with it keep a session that is still the same one. `None` when there is no
/// such live session of `user_id` (then the caller ends the old one and creates a new one).
#[tracing::instrument(level = "debug", skip(db, old_secret, browser))]
pub async fn renew(
    db: &Db,
    old_secret: &str,
    user_id: &str,
    browser: Browser<'_>,
    now: Timestamp,
    lifetime: i64,
) -> Result<Option<Created>, sqlx::Error> {
    let secret = crate::crypto::random_secret();
    let user_agent = browser.user_agent.map(|ua| truncate(ua, MAX_USER_AGENT));
    let sid: Option<String> = sqlx::query_scalar(
        "UPDATE sessions SET id_hash = $1, auth_time = $2, last_used_at = $2, expires_at = $3,
             user_agent = $4, ip = $5
         WHERE id_hash = $6 AND user_id = $7 AND expires_at > $2
         RETURNING sid",
    )
    .bind(secret_hash(&secret))
    .bind(now)
    .bind(now + lifetime)
    .bind(user_agent)
    .bind(browser.ip)
    .bind(secret_hash(old_secret))
    .bind(user_id)
    .fetch_optional(&db.writer)
    .await?;
    Ok(sid.map(|sid| Created {
        secret,
        session: Session {
            sid,
            user_id: user_id.to_string(),
            auth_time: now,
            expires_at: now + lifetime,
        },
    }))
}

fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The live session whose cookie secret is `secret`; notes its use (at most once a
/// [`TOUCH_EVERY`]).
#[tracing::instrument(level = "debug", skip_all)]
pub async fn find(db: &Db, secret: &str, now: Timestamp) -> Result<Option<Session>, sqlx::Error> {
    let hash = secret_hash(secret);
    let row: Option<(String, String, Timestamp, Timestamp, Option<Timestamp>)> = sqlx::query_as(
        "SELECT sid, user_id, auth_time, expires_at, last_used_at FROM sessions
         WHERE id_hash = $1 AND expires_at > $2",
    )
    .bind(&hash)
    .bind(now)
    .fetch_optional(&db.pool)
    .await?;
    let Some((sid, user_id, auth_time, expires_at, last_used_at)) = row else {
        return Ok(None);
    };
    if last_used_at.is_none_or(|at| now - at >= TOUCH_EVERY) {
        sqlx::query("UPDATE sessions SET last_used_at = $1 WHERE id_hash = $2")
            .bind(now)
            .bind(&hash)
            .execute(&db.writer)
            .await?;
    }
    Ok(Some(Session {
        sid,
        user_id,
        auth_time,
        expires_at,
    }))
}

const RECORD: &str = "sid, user_id, user_agent, ip, created_at, COALESCE(last_used_at, created_at) AS last_used_at, auth_time, expires_at";

/// The person's live sessions, the most recently used first.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn of_user(
    db: &Db,
    user_id: &str,
    now: Timestamp,
) -> Result<Vec<SessionRecord>, sqlx::Error> {
    sqlx::query_as::<_, SessionRecord>(sqlx::AssertSqlSafe(format!(
        "SELECT {RECORD} FROM sessions WHERE user_id = $1 AND expires_at > $2
         ORDER BY COALESCE(last_used_at, created_at) DESC, created_at DESC, sid"
    )))
    .bind(user_id)
    .bind(now)
    .fetch_all(&db.pool)
    .await
}

/// The live session `sid`, whoever's it is.
#[tracing::instrument(level = "debug", skip(db))]
pub async fn by_sid(
    db: &Db,
    sid: &str,
    now: Timestamp,
) -> Result<Option<SessionRecord>, sqlx::Error> {
    sqlx::query_as::<_, SessionRecord>(sqlx::AssertSqlSafe(format!(
        "SELECT {RECORD} FROM sessions WHERE sid = $1 AND expires_at > $2"
    )))
    .bind(sid)
    .bind(now)
    .fetch_optional(&db.pool)
    .await
}

/// Removes session `sid` in the caller's transaction; whether it was there.
pub async fn remove_in(tx: &mut Tx<'_>, sid: &str) -> Result<bool, sqlx::Error> {
    let done = sqlx::query("DELETE FROM sessions WHERE sid = $1")
        .bind(sid)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The sids of the person's live sessions other than `except` (all of them when `None`).
pub async fn sids_of_user_in(
    tx: &mut Tx<'_>,
    user_id: &str,
    except: Option<&str>,
    now: Timestamp,
) -> Result<Vec<String>, sqlx::Error> {
    let sids: Vec<String> = sqlx::query_scalar(
        "SELECT sid FROM sessions WHERE user_id = $1 AND expires_at > $2 ORDER BY created_at, sid",
    )
    .bind(user_id)
    .bind(now)
    .fetch_all(&mut **tx)
    .await?;
    Ok(sids
        .into_iter()
        .filter(|s| Some(s.as_str()) != except)
        .collect())
}

/// The sid of the session whose cookie secret is `secret`, live or not.
#[tracing::instrument(level = "debug", skip_all)]
pub async fn sid_of_secret(db: &Db, secret: &str) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT sid FROM sessions WHERE id_hash = $1")
        .bind(secret_hash(secret))
        .fetch_optional(&db.pool)
        .await
}

#[cfg(test)]
mod tests {
    use super::truncate;

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("abc", 5), "abc");
        assert_eq!(truncate("abcdef", 3), "abc");
        assert_eq!(truncate("aé", 2), "a");
    }
}
