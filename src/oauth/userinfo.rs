//! The UserInfo endpoint (OIDC Core §5.3): the claims of the scopes the token carries, for a
//! bearer token (RFC 6750) that is genuine, unexpired and unrevoked, or a DPoP-bound token
//! sent with the DPoP scheme and a proof of its key (RFC 9449 §7).

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::{cors, dpop, is_form};
use crate::startup::AppState;
use crate::store::tokens::AccessToken;
use crate::store::{apps, tokens, users};

/// No bearer token was sent (RFC 6750 §3.1: the challenge names no error).
fn no_token() -> OAuthError {
    OAuthError::bearer(
        StatusCode::UNAUTHORIZED,
        None,
        "a Bearer access token is required",
    )
}

/// An access token as the request sent it.
enum Sent {
    /// `Authorization: Bearer`, or the form body (RFC 6750 §2.1, §2.2).
    Bearer(String),
    /// `Authorization: DPoP`, with a proof in the `DPoP` header (RFC 9449 §7.1).
    DPoP(String),
}

impl Sent {
    fn token(&self) -> &str {
        match self {
            Self::Bearer(t) | Self::DPoP(t) => t,
        }
    }
}

fn header_token(headers: &HeaderMap) -> Result<Option<Sent>, OAuthError> {
    let Some(v) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let v = v
        .to_str()
        .map_err(|_| OAuthError::invalid_token("the authorization header is malformed"))?;
    match v.split_once(' ') {
        Some((scheme, token)) if !token.trim().is_empty() => {
            let token = token.trim().to_string();
            if scheme.eq_ignore_ascii_case("bearer") {
                Ok(Some(Sent::Bearer(token)))
            } else if scheme.eq_ignore_ascii_case("dpop") {
                Ok(Some(Sent::DPoP(token)))
            } else {
                Err(no_token())
            }
        }
        _ => Err(no_token()),
    }
}

pub async fn userinfo_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let token = match header_token(&headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    respond(&state, &headers, "GET", token).await
}

pub async fn userinfo_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let from_header = match header_token(&headers) {
        Ok(t) => t,
        Err(e) => return e.into_response(),
    };
    // RFC 6750 §2.2: a form body may carry the token instead of the header, never both.
    let from_body = if is_form(&headers) {
        match Params::parse(&body) {
            Ok(p) => p.get("access_token").map(|t| Sent::Bearer(t.to_string())),
            Err(_) => {
                return OAuthError::bearer(
                    StatusCode::BAD_REQUEST,
                    Some(ErrorCode::InvalidRequest),
                    "the request body is not a valid form",
                )
                .into_response();
            }
        }
    } else {
        None
    };
    let token = match (from_header, from_body) {
        (Some(_), Some(_)) => {
            return OAuthError::bearer(
                StatusCode::BAD_REQUEST,
                Some(ErrorCode::InvalidRequest),
                "send the access token in one place only",
            )
            .into_response();
        }
        (h, b) => h.or(b),
    };
    respond(&state, &headers, "POST", token).await
}

async fn respond(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    token: Option<Sent>,
) -> Response {
    let Some(sent) = token else {
        return no_token().into_response();
    };
    let dpop_scheme = matches!(sent, Sent::DPoP(_));
    match claims(state, headers, method, &sent).await {
        Ok((claims, record)) => {
            let mut res = Json(claims).into_response();
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            if let Ok(Some(app)) = apps::by_client_id(&state.db, &record.client_id).await {
                cors::allow_for_app(&mut res, headers, &app);
                if dpop_scheme
                    && app.dpop_nonce_required
                    && let Ok(v) = HeaderValue::from_str(&state.dpop_nonces.current(state.now()))
                {
                    res.headers_mut().insert(dpop::NONCE_HEADER, v);
                }
            }
            res
        }
        Err(e) if dpop_scheme => e.for_dpop().into_response(),
        Err(e) => e.into_response(),
    }
}

/// RFC 9449 §7: a DPoP-bound token comes with the DPoP scheme and a proof signed by its key,
/// for this request and this token (`ath`); a bearer token with the Bearer scheme.
async fn check_binding(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    sent: &Sent,
    (bound, client_id): (Option<&str>, &str),
) -> Result<(), OAuthError> {
    let jkt = match (sent, bound) {
        (Sent::Bearer(_), None) => return Ok(()),
        (Sent::Bearer(_), Some(_)) => {
            return Err(OAuthError::dpop(
                ErrorCode::InvalidToken,
                "this access token is DPoP-bound: send it with the DPoP scheme and a DPoP proof",
            ));
        }
        (Sent::DPoP(_), None) => {
            return Err(OAuthError::dpop(
                ErrorCode::InvalidToken,
                "this access token is not DPoP-bound: send it with the Bearer scheme",
            ));
        }
        (Sent::DPoP(_), Some(jkt)) => jkt,
    };
    let refused = |why: String| OAuthError::dpop(ErrorCode::InvalidDpopProof, &why);
    let proof = match dpop::header(headers) {
        Ok(Some(p)) => p,
        Ok(None) => {
            return Err(refused(
                "a DPoP proof is required with the DPoP scheme".into(),
            ));
        }
        Err(dpop::Refusal::Invalid(why)) => return Err(refused(why)),
        Err(dpop::Refusal::UseNonce) => return Err(refused("a DPoP nonce is required".into())),
    };
    let server = |e: sqlx::Error| {
        tracing::error!(error = %e, "userinfo: database error");
        OAuthError::bearer(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "the server could not complete the request",
        )
    };
    // An app that requires nonces needs one here too (RFC 9449 §9).
    let nonce_required = apps::by_client_id(&state.db, client_id)
        .await
        .map_err(server)?
        .is_some_and(|a| a.dpop_nonce_required);
    let url = state.settings.issuer.endpoint("/userinfo");
    let now = state.now();
    let expect = dpop::Expect {
        method,
        url: &url,
        now,
        window: state.settings.dpop_iat_window,
        access_token: Some(sent.token()),
    };
    let proof = match dpop::accept(state, proof, &expect, nonce_required).await {
        Ok(Ok(p)) => p,
        Ok(Err(dpop::Refusal::Invalid(why))) => return Err(refused(why)),
        Ok(Err(dpop::Refusal::UseNonce)) => {
            return Err(OAuthError::dpop(
                ErrorCode::UseDpopNonce,
                "this app's DPoP proofs must carry the server's nonce: make a new proof with the nonce of the DPoP-Nonce header",
            )
            .with_dpop_nonce(state.dpop_nonces.current(now)));
        }
        Err(e) => return Err(server(e)),
    };
    if !proof.jkt.matches(jkt) {
        return Err(refused(
            "the DPoP proof is not signed by the key the access token is bound to".into(),
        ));
    }
    Ok(())
}

async fn claims(
    state: &AppState,
    headers: &HeaderMap,
    method: &str,
    sent: &Sent,
) -> Result<(serde_json::Value, AccessToken), OAuthError> {
    let token = sent.token();
    // The bare challenge and `invalid_request` in the body, as userinfo has always answered.
    let server = |e: sqlx::Error| {
        tracing::error!(error = %e, "userinfo: database error");
        OAuthError::bearer(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            "the server could not complete the request",
        )
    };
    let lookup = tokens::Lookup::of(token);
    let status = tokens::status(&state.db, &lookup)
        .await
        .map_err(server)?
        .ok_or(OAuthError::invalid_token("the access token is not valid"))?;
    let client_id = &status.token.client_id;
    check_binding(
        state,
        headers,
        method,
        sent,
        (lookup.bound_jkt(), client_id),
    )
    .await?;
    let usable: Vec<String> = status
        .usable_scopes(state.now())
        .into_iter()
        .map(str::to_string)
        .collect();
    let record = status.token;
    if record.revoked_at.is_some() {
        return Err(OAuthError::invalid_token(
            "the access token has been revoked",
        ));
    }
    if record.expires_at <= state.now() {
        return Err(OAuthError::invalid_token("the access token has expired"));
    }
    // A token minted for a resource server (RFC 8707 `resource`) is not for userinfo.
    if record.audience != state.settings.issuer.as_str() {
        return Err(OAuthError::invalid_token(
            "the access token's audience is not this server: it was issued for a resource server",
        ));
    }
    if record.grant_id.is_some() && status.grant_status.as_deref() != Some("active") {
        return Err(OAuthError::invalid_token(
            "the user's consent for this app no longer stands",
        ));
    }
    if !usable.iter().any(|s| s == "openid") {
        if record.scopes().any(|s| s == "openid") {
            return Err(OAuthError::invalid_token(
                "the user's consent to sign in to this app has been revoked or has expired",
            ));
        }
        return Err(OAuthError::bearer(
            StatusCode::FORBIDDEN,
            Some(ErrorCode::InsufficientScope),
            "the access token does not carry the openid scope",
        ));
    }
    if !crate::partner::access::usable_state(&status.app_state) {
        return Err(OAuthError::invalid_token(
            "the app of this access token cannot use Onyx ID at the moment",
        ));
    }
    let user_id = record
        .user_id
        .as_deref()
        .ok_or(OAuthError::invalid_token("the access token has no user"))?;
    let user = users::by_id(&state.db, user_id)
        .await
        .map_err(server)?
        .ok_or(OAuthError::invalid_token(
            "the account of this access token no longer exists",
        ))?;
    let mut claims = serde_json::json!({ "sub": user.id });
    // Claims of the scopes the user still allows, only.
    for scope in &usable {
        match scope.as_str() {
            "profile" => claims["name"] = user.name.clone().into(),
            "email" => {
                claims["email"] = user.email.clone().into();
                claims["email_verified"] = user.email_verified.into();
            }
            _ => {}
        }
    }
    Ok((claims, record))
}
