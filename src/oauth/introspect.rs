//! Token introspection (RFC 7662). Resource servers learn about tokens issued for their
//! audience, apps about their own tokens; anything else is `{"active": false}`. The answer is
//! read from the database at every call (on SQLite through a cache that any commit anywhere
//! empties before the next lookup, `store::fast::direct`), so a revocation, an expiry or an app
//! losing access is seen by the very next introspection, on every instance sharing the database.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde_json::json;

use super::client_auth::{Caller, authenticate_caller, check_resource_server, presented};
use super::error::OAuthError;
use super::is_form;
use super::params::Params;
use super::token::{no_store, refreshable, usable_scopes};
use crate::startup::AppState;
use crate::store::grants;
use crate::store::refresh_tokens::{self, RefreshStatus};
use crate::store::resource_servers;
use crate::store::tokens::{self, TokenStatus};

pub async fn introspect(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    use crate::ops::metrics::Introspection;
    match handle(&state, &headers, &body).await {
        Ok(answer) => {
            let (counted, body) = match answer {
                Answer::Active(body) => (Introspection::Active, body),
                Answer::Inactive => (Introspection::Inactive, INACTIVE.to_vec()),
            };
            state.metrics.introspection(counted);
            let mut res = body.into_response();
            res.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            no_store(res)
        }
        Err(e) => {
            state.metrics.introspection(Introspection::Refused);
            e.into_response()
        }
    }
}

/// An introspection answer: inactive, or the members of an active token, serialized.
enum Answer {
    Inactive,
    Active(Vec<u8>),
}

const INACTIVE: &[u8] = br#"{"active":false}"#;

fn inactive() -> Answer {
    Answer::Inactive
}

/// The answer about an active access token (RFC 7662 §2.2), serialized straight from the row.
#[derive(Serialize)]
struct ActiveAccess<'a> {
    active: bool,
    iss: &'a str,
    scope: String,
    client_id: &'a str,
    sub: &'a str,
    aud: &'a str,
    exp: i64,
    iat: i64,
    token_type: &'static str,
    jti: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    cnf: Option<Confirmation<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    permissions: Option<Vec<crate::consent::View>>,
}

/// RFC 9449 §6.2: the key a DPoP-bound token is bound to.
#[derive(Serialize)]
struct Confirmation<'a> {
    jkt: &'a str,
}

fn serialised(answer: &impl Serialize) -> Answer {
    match serde_json::to_vec(answer) {
        Ok(body) => Answer::Active(body),
        // Serialising these plain members cannot fail; if it did, saying nothing is safe.
        Err(e) => {
            tracing::error!(error = %e, "introspection: the answer could not be serialised");
            Answer::Inactive
        }
    }
}

async fn handle(state: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<Answer, OAuthError> {
    if !is_form(headers) {
        return Err(OAuthError::invalid_request(
            "the request body must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body)?;
    let presented = presented(headers, &params)?;
    let token = params.required("token")?;
    let lookup = tokens::Lookup::of(token);
    let hash = lookup.hash();
    let now = state.now();
    // A resource server: its credentials and the token in one round trip. Refresh tokens are
    // never active for a resource server, so there is nothing else to look up.
    if presented
        .client_id()
        .starts_with(resource_servers::ID_PREFIX)
    {
        let (rs, status) =
            tokens::resource_server_and_status(&state.db, presented.client_id(), &lookup)
                .await?
                .ok_or_else(|| OAuthError::invalid_client("client authentication failed"))?;
        check_resource_server(&presented, &rs)?;
        let caller = Caller::ResourceServer(rs);
        return Ok(status.map_or_else(inactive, |t| {
            access_answer(state, &caller, &t, &lookup, now)
        }));
    }
    let caller = authenticate_caller(state, &presented).await?;
    // The hint only decides which kind is looked up first (RFC 7662 §2.1).
    if params.get("token_type_hint") == Some("refresh_token") {
        if let Some(r) = refresh_tokens::status_by_hash(&state.db, hash).await? {
            return refresh_answer(state, &caller, &r, now).await;
        }
        if let Some(t) = tokens::status(&state.db, &lookup).await? {
            return Ok(access_answer(state, &caller, &t, &lookup, now));
        }
    } else {
        if let Some(t) = tokens::status(&state.db, &lookup).await? {
            return Ok(access_answer(state, &caller, &t, &lookup, now));
        }
        if let Some(r) = refresh_tokens::status_by_hash(&state.db, hash).await? {
            return refresh_answer(state, &caller, &r, now).await;
        }
    }
    Ok(inactive())
}

fn grant_stands(grant_id: Option<&str>, grant_status: Option<&str>) -> bool {
    grant_id.is_none() || grant_status == Some("active")
}

fn access_answer(
    state: &AppState,
    caller: &Caller,
    s: &TokenStatus,
    lookup: &tokens::Lookup,
    now: i64,
) -> Answer {
    let t = &s.token;
    let may_see = match caller {
        Caller::ResourceServer(rs) => rs.audience == t.audience,
        Caller::App(app) => app.client_id == t.client_id,
    };
    let active = may_see
        && t.revoked_at.is_none()
        && t.expires_at > now
        && crate::partner::access::usable_state(&s.app_state)
        && grant_stands(t.grant_id.as_deref(), s.grant_status.as_deref());
    if !active {
        return inactive();
    }
    // Only what the user's consent (and Onyx) still allows: a revoked, expired or limited
    // permission drops out of `scope`; with nothing left the token is inactive.
    let usable = s.usable_scopes(now);
    if usable.is_empty() {
        return inactive();
    }
    // RFC 9449 §6.2: a DPoP-bound token names its key; the resource server checks the proof.
    let cnf = lookup.bound_jkt().map(|jkt| Confirmation { jkt });
    serialised(&ActiveAccess {
        active: true,
        iss: state.settings.issuer.as_str(),
        scope: usable.join(" "),
        client_id: &t.client_id,
        sub: t.user_id.as_deref().unwrap_or(&t.client_id),
        aud: &t.audience,
        exp: t.expires_at,
        iat: t.issued_at,
        token_type: if cnf.is_some() { "DPoP" } else { "Bearer" },
        jti: &t.jti,
        auth_time: t.auth_time,
        cnf,
        permissions: t.grant_id.is_some().then(|| s.permission_views(now)),
    })
}

async fn refresh_answer(
    state: &AppState,
    caller: &Caller,
    s: &RefreshStatus,
    now: i64,
) -> Result<Answer, OAuthError> {
    let r = &s.token;
    // Only the app a refresh token was issued to may learn about it.
    let app = match caller {
        Caller::App(app) if app.client_id == r.client_id => app,
        _ => return Ok(inactive()),
    };
    let active = r.used_at.is_none()
        && r.revoked_at.is_none()
        && r.expires_at > now
        && r.family_expires_at > now
        && crate::partner::access::usable_state(&s.app_state)
        && grant_stands(Some(&r.grant_id), s.grant_status.as_deref());
    if !active {
        return Ok(inactive());
    }
    // Active only while a refresh would be made, with the scopes it would carry.
    let standing = grants::standing(&state.db, &r.grant_id, &r.user_id).await?;
    let usable = usable_scopes(app, standing, now);
    let Some(scope) = refreshable(&r.scope, &usable) else {
        return Ok(inactive());
    };
    Ok(serialised(&json!({
        "active": true,
        "iss": state.settings.issuer.as_str(),
        "scope": scope.join(" "),
        "client_id": r.client_id,
        "sub": r.user_id,
        "aud": r.audience,
        "exp": r.expires_at,
        "iat": r.issued_at,
        "token_type": "refresh_token",
    })))
}
