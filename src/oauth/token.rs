//! The token endpoint (RFC 6749 §3.2): client authentication, then the grant —
//! `authorization_code` (with PKCE), `refresh_token` (rotating), `client_credentials`.

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::client_auth::{authenticate, presented};
use super::error::{ErrorCode, OAuthError};
use super::issue::{self, AccessGrant, IdTokenInput, RefreshSeed};
use super::params::Params;
use super::{cors, dpop, is_form, pkce};
use crate::consent;
use crate::crypto::secret_hash;
use crate::scopes::{Scope, ScopeError, catalogue, parse_scope_list};
use crate::startup::AppState;
use crate::store::apps::{App, AuthMethod, GrantType};
use crate::store::codes::{self, Redemption};
use crate::store::refresh_tokens::{self, Redemption as RefreshRedemption};
use crate::store::{grants, logout, resource_servers, tokens};

pub async fn token(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    app_request(&state, &headers, &body, async |params, app| {
        // An app that requires nonces gets a fresh one with every answer (RFC 9449 §8.2).
        let nonce = app
            .dpop_nonce_required
            .then(|| state.dpop_nonces.current(state.now()));
        let answer = match proof_key(&state, &headers, &app).await {
            Ok(jkt) => handle(&state, params, app, jkt.as_ref()).await,
            Err(e) => Err(e),
        };
        match (answer, nonce) {
            (Ok(v), None) => Ok(Json(v).into_response()),
            (Ok(v), Some(n)) => Ok(([(dpop::NONCE_HEADER, n)], Json(v)).into_response()),
            (Err(e), None) => Err(e),
            (Err(e), Some(n)) => Err(e.with_dpop_nonce(n)),
        }
    })
    .await
}

/// The key of the request's DPoP proof (RFC 9449 §5), checked and its `jti` recorded; `None`
/// without a proof, unless the app requires DPoP-bound tokens.
async fn proof_key(
    state: &AppState,
    headers: &HeaderMap,
    app: &App,
) -> Result<Option<dpop::Jkt>, OAuthError> {
    if dpop::header(headers).ok().flatten().is_none() {
        if app.fapi2() {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                format!(
                    "{} DPoP-bound tokens: send a DPoP proof",
                    super::profile::FAPI2_RULE
                ),
            ));
        }
        if app.dpop_bound {
            return Err(OAuthError::new(
                ErrorCode::InvalidDpopProof,
                "this app requires DPoP-bound tokens: send a DPoP proof",
            ));
        }
    }
    proof_at(state, headers, app, "/token").await
}

/// The key of the DPoP proof sent to the endpoint at `path` (its `htu`), checked and its `jti`
/// recorded; `None` without a proof.
pub(super) async fn proof_at(
    state: &AppState,
    headers: &HeaderMap,
    app: &App,
    path: &str,
) -> Result<Option<dpop::Jkt>, OAuthError> {
    let refused = |r: dpop::Refusal| match r {
        dpop::Refusal::Invalid(why) => OAuthError::new(ErrorCode::InvalidDpopProof, why),
        dpop::Refusal::UseNonce => OAuthError::new(
            ErrorCode::UseDpopNonce,
            "this app's DPoP proofs must carry the server's nonce: make a new proof with the nonce of the DPoP-Nonce header",
        ),
    };
    let Some(proof) = dpop::header(headers).map_err(refused)? else {
        return Ok(None);
    };
    let url = state.settings.issuer.endpoint(path);
    let expect = dpop::Expect {
        method: "POST",
        url: &url,
        now: state.now(),
        window: state.settings.dpop_iat_window,
        access_token: None,
    };
    let proof = dpop::accept(state, proof, &expect, app.dpop_nonce_required)
        .await?
        .map_err(refused)?;
    Ok(Some(proof.jkt))
}

/// Whether the key of the request's proof is `bound`, the key a code or refresh token is
/// bound to; else `invalid_dpop_proof` naming `what`.
fn same_key(bound: &str, proof: Option<&dpop::Jkt>, what: &str) -> Result<(), OAuthError> {
    match proof {
        Some(k) if k.matches(bound) => Ok(()),
        Some(_) => Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            format!("{what} is bound to another DPoP key than the proof's"),
        )),
        None => Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            format!("{what} is bound to a DPoP key: send a proof signed with it"),
        )),
    }
}

/// An app's request with its credentials (the token and revocation endpoints): a form body, the
/// app authenticated and its origin allowed, then `handle`. The answer is `no-store`, and once
/// the app is known it carries the app's CORS headers, an error too.
pub(super) async fn app_request<T: IntoResponse>(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
    handle: impl AsyncFnOnce(Params, App) -> Result<T, OAuthError>,
) -> Response {
    let (params, app) = match authenticated(state, headers, body).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let mut res = match handle(params, app.clone()).await {
        Ok(answer) => no_store(answer.into_response()),
        Err(e) => e.into_response(),
    };
    cors::allow_for_app(&mut res, headers, &app);
    res
}

async fn authenticated(
    state: &AppState,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(Params, App), OAuthError> {
    if !is_form(headers) {
        return Err(OAuthError::invalid_request(
            "the request body must be application/x-www-form-urlencoded",
        ));
    }
    let params = Params::parse(body)?;
    let app = authenticate(state, &presented(headers, &params)?).await?;
    cors::check_origin(headers, &app)?;
    Ok((params, app))
}

pub fn no_store(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
    res
}

async fn handle(
    state: &AppState,
    params: Params,
    app: App,
    jkt: Option<&dpop::Jkt>,
) -> Result<serde_json::Value, OAuthError> {
    app.gate().map_err(unauthorized_client)?;
    let (grant_type, answer) = match params.required("grant_type")? {
        "authorization_code" => (
            GrantType::AuthorizationCode,
            code_grant(state, &app, &params, jkt).await,
        ),
        "refresh_token" => (
            GrantType::RefreshToken,
            refresh_token(state, &app, &params, jkt).await,
        ),
        "client_credentials" => (
            GrantType::ClientCredentials,
            client_credentials(state, &app, &params, jkt).await,
        ),
        other => {
            return Err(OAuthError::new(
                ErrorCode::UnsupportedGrantType,
                format!(
                    "grant_type {:?} is not supported",
                    other.chars().take(64).collect::<String>()
                ),
            ));
        }
    };
    if answer.is_ok() {
        state.metrics.token_issued(grant_type);
    }
    answer
}

/// The authorization code grant, and the launch evidence of a first sign-in in preview.
async fn code_grant(
    state: &AppState,
    app: &App,
    params: &Params,
    jkt: Option<&dpop::Jkt>,
) -> Result<serde_json::Value, OAuthError> {
    let answer = authorization_code(state, app, params, jkt).await?;
    // Launch evidence: a sign-in completed in preview.
    if app.stage == crate::partner::access::Stage::Preview && app.preview_sign_in_at.is_none() {
        crate::store::apps::record_preview(
            &state.db,
            &app.client_id,
            crate::store::apps::PreviewEvidence::SignIn,
            state.now(),
        )
        .await?;
    }
    Ok(answer)
}

fn require_grant(app: &App, grant_type: GrantType) -> Result<(), OAuthError> {
    if app.allows_grant(grant_type) {
        Ok(())
    } else {
        Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            format!("this app may not use the {grant_type} grant"),
        ))
    }
}

/// RFC 8707: the audience the token is for. `resource` must name a registered resource
/// server; without it, `default`.
pub async fn audience_for(
    state: &AppState,
    resource: Option<&str>,
    default: &str,
) -> Result<String, OAuthError> {
    match resource {
        None => Ok(default.to_string()),
        Some(r) if r == default => Ok(r.to_string()),
        Some(r) => {
            if resource_servers::audience_exists(&state.db, r).await? {
                Ok(r.to_string())
            } else {
                Err(OAuthError::new(
                    ErrorCode::InvalidTarget,
                    format!("resource {r:?} is not a registered resource server"),
                ))
            }
        }
    }
}

fn token_response(access: &issue::Minted, now: i64) -> serde_json::Value {
    serde_json::json!({
        "access_token": access.token,
        // RFC 9449 §5: a token bound to a key is a DPoP token.
        "token_type": if access.bound { "DPoP" } else { "Bearer" },
        "expires_in": access.record.expires_at - now,
        "scope": access.record.scope,
    })
}

/// RFC 6749 §4.1.3 with PKCE (RFC 7636 §4.6).
async fn authorization_code(
    state: &AppState,
    app: &App,
    params: &Params,
    jkt: Option<&dpop::Jkt>,
) -> Result<serde_json::Value, OAuthError> {
    require_grant(app, GrantType::AuthorizationCode)?;
    let code = params.required("code")?;
    let redirect_uri = params.required("redirect_uri")?;
    let verifier = params
        .get("code_verifier")
        .ok_or_else(|| OAuthError::invalid_request("code_verifier is required (PKCE)"))?;
    let now = state.now();
    let code = match codes::redeem(&state.db, code, now).await? {
        Redemption::Fresh(c) => c,
        Redemption::Replayed { family_id } => {
            let revoked = tokens::revoke_family(&state.db, &family_id, now).await?;
            tracing::warn!(client_id = %app.client_id, revoked, "authorization code replayed: its tokens are revoked");
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used; the tokens issued from it are revoked",
            ));
        }
        Redemption::Unknown => {
            return Err(OAuthError::invalid_grant(
                "the authorization code is invalid",
            ));
        }
    };
    if code.client_id != app.client_id {
        return Err(OAuthError::invalid_grant(
            "the authorization code was issued to another client",
        ));
    }
    if code.expires_at <= now {
        return Err(OAuthError::invalid_grant(
            "the authorization code has expired",
        ));
    }
    if code.redirect_uri != redirect_uri {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the one of the authorization request",
        ));
    }
    pkce::verify(verifier, &code.code_challenge).map_err(OAuthError::invalid_grant)?;
    // RFC 9449 §10: a code bound by `dpop_jkt` is redeemed with a proof of that key only.
    if let Some(bound) = &code.dpop_jkt {
        same_key(bound, jkt, "the authorization code")?;
    }
    // Consent revoked or expired since the code was issued narrows it, or ends it.
    let standing = grants::standing(&state.db, &code.grant_id, &code.user_id).await?;
    let usable = usable_scopes(app, standing, now);
    let scope: String = code
        .scope
        .split(' ')
        .filter(|s| usable.iter().any(|u| u == s))
        .collect::<Vec<_>>()
        .join(" ");
    if scope.is_empty() {
        return Err(OAuthError::invalid_grant(
            "the user's consent for this app no longer stands",
        ));
    }
    let audience = code
        .resource
        .clone()
        .unwrap_or_else(|| state.settings.default_audience.clone());
    if let Some(r) = params.get("resource")
        && r != audience
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource differs from the one of the authorization request",
        ));
    }

    let access = issue::mint_access_token(
        state,
        app,
        AccessGrant {
            user_id: Some(&code.user_id),
            grant_id: Some(&code.grant_id),
            family_id: Some(&code.family_id),
            scope: &scope,
            audience: &audience,
            auth_time: Some(code.auth_time),
            jkt,
        },
    )
    .await?;
    let offline = scope.split(' ').any(|s| s == "offline_access");
    let wants_refresh = offline && app.allows_grant(GrantType::RefreshToken);
    let wants_id_token = scope.split(' ').any(|s| s == "openid");
    let mut tx = state.db.begin().await?;
    issue::store_access_token(&mut tx, &access).await?;
    grants::touch(&mut tx, &code.grant_id, now).await?;
    // The family belongs to the session it was issued in: ending the session ends it (unless
    // it is offline_access) and tells the app (when it got an ID token).
    if let Some(sid) = &code.sid {
        logout::link_family(
            &mut tx,
            &logout::SessionFamily {
                sid,
                family_id: &code.family_id,
                client_id: &app.client_id,
                user_id: &code.user_id,
                offline,
                id_token: wants_id_token,
            },
            now,
        )
        .await?;
    }
    let refresh = if wants_refresh {
        Some(
            issue::refresh_token(
                &mut tx,
                state,
                app,
                RefreshSeed {
                    family_id: &code.family_id,
                    user_id: &code.user_id,
                    grant_id: &code.grant_id,
                    scope: &scope,
                    audience: &audience,
                    auth_time: code.auth_time,
                    family_expires_at: None,
                    // RFC 9449 §5: a public app's refresh tokens are bound to its key; a
                    // confidential app's are bound to its credentials already.
                    dpop_jkt: jkt
                        .filter(|_| app.auth_method == AuthMethod::None)
                        .map(dpop::Jkt::as_str),
                },
            )
            .await?,
        )
    } else {
        None
    };
    tx.commit().await?;

    let mut response = token_response(&access, now);
    if let Some(r) = refresh {
        response["refresh_token"] = r.into();
    }
    if wants_id_token {
        response["id_token"] = issue::id_token(
            state,
            app,
            IdTokenInput {
                user_id: &code.user_id,
                nonce: code.nonce.as_deref(),
                auth_time: code.auth_time,
                access_token: &access.token,
                sid: code.sid.as_deref(),
            },
        )
        .await?
        .into();
    }
    tracing::info!(client_id = %app.client_id, user_id = %code.user_id, "tokens issued for an authorization code");
    Ok(response)
}

/// RFC 6749 §6, rotating (RFC 9700 §4.14.2): the presented token is spent and a new one issued
/// in the same transaction; a spent token presented again revokes its whole family.
async fn refresh_token(
    state: &AppState,
    app: &App,
    params: &Params,
    jkt: Option<&dpop::Jkt>,
) -> Result<serde_json::Value, OAuthError> {
    require_grant(app, GrantType::RefreshToken)?;
    let presented = params.required("refresh_token")?;
    let now = state.now();
    let mut tx = state.db.begin().await?;
    let presented_hash = secret_hash(presented);
    // The FAPI 2.0 profile's refresh tokens do not rotate (FAPI 2.0 Security Profile
    // §5.3.2.1): the token is kept, not spent, and its idle expiry moves on.
    let redemption = if app.fapi2() {
        refresh_tokens::present(&mut tx, &presented_hash).await?
    } else {
        refresh_tokens::redeem(&mut tx, &presented_hash, now).await?
    };
    let rt = match redemption {
        RefreshRedemption::Fresh(rt) => rt,
        RefreshRedemption::Reused(rt) => {
            let revoked = tokens::revoke_family_in(&mut tx, &rt.family_id, now).await?;
            tx.commit().await?;
            tracing::warn!(client_id = %rt.client_id, family = %rt.family_id, revoked, "refresh token reused: its family is revoked");
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used; every token of its grant is revoked",
            ));
        }
        RefreshRedemption::Invalid => {
            return Err(OAuthError::invalid_grant(
                "the refresh token is invalid or revoked",
            ));
        }
    };
    // Any refusal below leaves the presented token unspent (the transaction rolls back).
    if rt.client_id != app.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    if rt.expires_at <= now || rt.family_expires_at <= now {
        return Err(OAuthError::invalid_grant("the refresh token has expired"));
    }
    if let Some(bound) = &rt.dpop_jkt {
        same_key(bound, jkt, "the refresh token")?;
    }
    // What the user's consent covers now: revoked, expired or limited scopes drop out. Without
    // offline_access the app may not stay connected: the family's refresh tokens stop here.
    let standing = grants::standing_in(&mut tx, &rt.grant_id, &rt.user_id).await?;
    let usable = usable_scopes(app, standing, now);
    let Some(granted) = refreshable(&rt.scope, &usable) else {
        let revoked = refresh_tokens::revoke_family(&mut tx, &rt.family_id, now).await?;
        tx.commit().await?;
        tracing::info!(client_id = %rt.client_id, family = %rt.family_id, revoked, "refresh refused: offline_access is no longer usable");
        return Err(OAuthError::invalid_grant(
            "the user's consent for this app no longer lets it stay connected (offline_access); its refresh tokens are revoked",
        ));
    };
    let scope = match params.get("scope") {
        None => granted.join(" "),
        Some(raw) => {
            let asked = parse_scope_list(raw)
                .map_err(|e| OAuthError::new(ErrorCode::InvalidScope, e.to_string()))?;
            if let Some(s) = asked.iter().find(|s| !granted.contains(&s.as_str())) {
                return Err(OAuthError::new(
                    ErrorCode::InvalidScope,
                    format!(
                        "scope {:?} was not granted; a refresh may only narrow the scopes",
                        s.as_str()
                    ),
                ));
            }
            crate::scopes::join(&asked)
        }
    };
    if let Some(r) = params.get("resource")
        && r != rt.audience
    {
        return Err(OAuthError::new(
            ErrorCode::InvalidTarget,
            "resource differs from the one of the grant",
        ));
    }
    let access = issue::mint_access_token(
        state,
        app,
        AccessGrant {
            user_id: Some(&rt.user_id),
            grant_id: Some(&rt.grant_id),
            family_id: Some(&rt.family_id),
            scope: &scope,
            audience: &rt.audience,
            auth_time: Some(rt.auth_time),
            jkt,
        },
    )
    .await?;
    issue::store_access_token(&mut tx, &access).await?;
    grants::touch(&mut tx, &rt.grant_id, now).await?;
    if app.fapi2() {
        let expires_at = issue::refresh_idle_expiry(state, app, rt.family_expires_at);
        refresh_tokens::extend(&mut tx, &presented_hash, expires_at).await?;
        tx.commit().await?;
        let mut response = token_response(&access, now);
        response["refresh_token"] = presented.into();
        return Ok(response);
    }
    // The successor carries what is still usable of the original scope (RFC 6749 §6): narrowing
    // by `scope` applies to this access token only, and a scope no longer usable is gone.
    let successor_scope = granted.join(" ");
    let next = issue::refresh_token(
        &mut tx,
        state,
        app,
        RefreshSeed {
            family_id: &rt.family_id,
            user_id: &rt.user_id,
            grant_id: &rt.grant_id,
            scope: &successor_scope,
            audience: &rt.audience,
            auth_time: rt.auth_time,
            family_expires_at: Some(rt.family_expires_at),
            // The successor keeps the binding of the token it replaces.
            dpop_jkt: rt.dpop_jkt.as_deref(),
        },
    )
    .await?;
    tx.commit().await?;
    let mut response = token_response(&access, now);
    response["refresh_token"] = next.into();
    Ok(response)
}

/// The scopes of a refresh token's `scope` that a refresh may carry now, given the grant's
/// `usable` scopes; `None` when no refresh may be made (offline_access is no longer usable).
/// The token endpoint and introspection both answer from it, so they agree.
pub fn refreshable<'a>(scope: &'a str, usable: &[String]) -> Option<Vec<&'a str>> {
    let granted: Vec<&str> = scope
        .split(' ')
        .filter(|s| !s.is_empty() && usable.iter().any(|u| u == s))
        .collect();
    granted.contains(&"offline_access").then_some(granted)
}

/// The scopes of the grant the app may use now (see `crate::consent`); none when the grant has
/// ended.
pub fn usable_scopes(app: &App, standing: Option<grants::Standing>, now: i64) -> Vec<String> {
    let Some(grants::Standing { user, permissions }) = standing else {
        return vec![];
    };
    let (facts, user_facts) = (app.facts(), user.facts());
    permissions
        .into_iter()
        .filter(|p| {
            consent::effective(
                &p.stored,
                catalogue().get(&p.scope),
                &facts,
                &user_facts,
                now,
            )
            .usable()
        })
        .map(|p| p.scope)
        .collect()
}

/// RFC 6749 §4.4: a confidential app's own access, with app-level scopes only.
async fn client_credentials(
    state: &AppState,
    app: &App,
    params: &Params,
    jkt: Option<&dpop::Jkt>,
) -> Result<serde_json::Value, OAuthError> {
    if app.auth_method == AuthMethod::None {
        return Err(OAuthError::new(
            ErrorCode::UnauthorizedClient,
            "public apps cannot use the client_credentials grant",
        ));
    }
    require_grant(app, GrantType::ClientCredentials)?;
    let scopes: Vec<Scope> = match params.get("scope").map(parse_scope_list) {
        Some(Ok(s)) => s,
        // By default every app-level scope the app may hold now.
        Some(Err(ScopeError::Empty)) | None => app
            .scopes
            .iter()
            .filter_map(|s| Scope::parse(s).ok())
            .filter(|s| {
                s.is_app_scope()
                    && consent::app_unavailable_because(s.info(), &app.facts()).is_none()
            })
            .collect(),
        Some(Err(e)) => return Err(OAuthError::new(ErrorCode::InvalidScope, e.to_string())),
    };
    if scopes.is_empty() {
        return Err(OAuthError::new(
            ErrorCode::InvalidScope,
            "this app is approved for no app-level scope",
        ));
    }
    for s in &scopes {
        if !s.is_app_scope() {
            return Err(OAuthError::new(
                ErrorCode::InvalidScope,
                format!(
                    "scope {:?} is about a user and cannot be granted with client_credentials",
                    s.as_str()
                ),
            ));
        }
        if let Some(r) = consent::app_unavailable_because(s.info(), &app.facts()) {
            let mut err = OAuthError::new(
                ErrorCode::InvalidScope,
                format!(
                    "scope {:?} is unavailable to this app ({}): {}",
                    s.as_str(),
                    r.as_str(),
                    r.sentence()
                ),
            )
            .with("scope", s.as_str())
            .with("state", "unavailable")
            .with("reason", r.as_str());
            // A gated scope names its capability and the capability's state.
            if r == consent::Reason::ScopeGated
                && let Some(cap) = &s.info().capability
            {
                let c = app.capabilities.get(cap);
                err = err
                    .with("capability", cap.as_str())
                    .with("capability_state", c.state.as_str())
                    .with("capability_reason", c.reason.as_str());
            }
            return Err(err);
        }
    }
    let audience = audience_for(
        state,
        params.get("resource"),
        &state.settings.default_audience,
    )
    .await?;
    let scope = crate::scopes::join(&scopes);
    let access = issue::access_token(
        state,
        app,
        AccessGrant {
            user_id: None,
            grant_id: None,
            family_id: None,
            scope: &scope,
            audience: &audience,
            auth_time: None,
            jkt,
        },
    )
    .await?;
    Ok(token_response(&access, state.now()))
}

/// An app the partner program does not let use the token endpoint now: `unauthorized_client`,
/// with its access state and reason as members of the answer.
pub(super) fn unauthorized_client(refusal: crate::partner::access::Refusal) -> OAuthError {
    OAuthError::new(ErrorCode::UnauthorizedClient, refusal.description)
        .with("access_state", refusal.state)
        .with("reason", refusal.reason)
}
