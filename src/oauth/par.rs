//! Pushed authorization requests (RFC 9126): an app posts its authorization request to `/par`,
//! authenticated as at the token endpoint, and gets a `request_uri` that stands for it; the
//! browser then goes to `/authorize` with only `client_id` and that `request_uri`.
//!
//! The push is validated by the same `authorize::validate` as a request at `/authorize`, but
//! its refusals are JSON (RFC 9126 §2.3), never redirects. What is stored is the request's
//! parameters without the client's credentials; `/authorize` takes them once (a single
//! statement, so also across instances) and validates them again, so an app suspended or
//! changed in between is refused at once.

use std::net::IpAddr;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::authorize::{AuthorizationRequest, Invalid};
use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::redirect::match_registered;
use super::token::{app_request, unauthorized_client};
use crate::startup::AppState;
use crate::store::apps::{self, App};
use crate::store::auth_requests::NewRequest;
use crate::store::pushed_requests;
use crate::web::client_ip::{ClientIp, network_key};

/// The prefix of every `request_uri` this server issues (RFC 9126 §2.2).
pub const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// How long a pushed request can be used, seconds (RFC 9126 §2.2: short; 60 s is usual).
pub const LIFETIME: i64 = 60;

/// Parameters that authenticate the client: checked at the push, never stored with it.
/// (`client_id` is stored as the authenticated app's.)
const CREDENTIALS: [&str; 4] = [
    "client_id",
    "client_secret",
    "client_assertion",
    "client_assertion_type",
];

/// `POST /par` (RFC 9126 §2.1): a form body and the client's authentication, as at the token
/// endpoint; 201 with the `request_uri`, or an RFC 6749 §5.2 JSON error.
pub async fn push(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    app_request(&state, &headers, &body, async |params, app| {
        // An app that requires nonces gets a fresh one with every answer, as at /token.
        let nonce = app
            .dpop_nonce_required
            .then(|| state.dpop_nonces.current(state.now()));
        let answer = match bind_to_proof(&state, &headers, &params, &app).await {
            Ok(params) => push_request(&state, &params, &app, client).await,
            Err(e) => Err(e),
        };
        match (answer, nonce) {
            (Ok(r), None) => Ok(r),
            (Ok(mut r), Some(n)) => {
                if let Ok(v) = HeaderValue::from_str(&n) {
                    r.headers_mut().insert(super::dpop::NONCE_HEADER, v);
                }
                Ok(r)
            }
            (Err(e), None) => Err(e),
            (Err(e), Some(n)) => Err(e.with_dpop_nonce(n)),
        }
    })
    .await
}

/// RFC 9449 §10.1: a DPoP proof sent with the push binds the code to its key, as `dpop_jkt`
/// does; both together must name the same key.
async fn bind_to_proof(
    state: &AppState,
    headers: &HeaderMap,
    params: &Params,
    app: &App,
) -> Result<Params, OAuthError> {
    let Some(jkt) = super::token::proof_at(state, headers, app, "/par").await? else {
        return Ok(params.clone());
    };
    match params.get("dpop_jkt") {
        Some(sent) if !jkt.matches(sent) => Err(OAuthError::new(
            ErrorCode::InvalidDpopProof,
            "dpop_jkt names another key than the DPoP proof's",
        )),
        Some(_) => Ok(params.clone()),
        None => {
            let mut bound = params.clone();
            bound.push("dpop_jkt", jkt.as_str());
            Ok(bound)
        }
    }
}

async fn push_request(
    state: &AppState,
    params: &Params,
    app: &App,
    client: Option<IpAddr>,
) -> Result<Response, OAuthError> {
    if params.get("request_uri").is_some() {
        return Err(OAuthError::invalid_request(
            "request_uri cannot be pushed: send the authorization request's own parameters",
        ));
    }
    if params.get("request").is_some() {
        return Err(OAuthError::new(
            ErrorCode::RequestNotSupported,
            "request objects are not supported: send the parameters in the form body",
        ));
    }
    app.gate().map_err(unauthorized_client)?;
    // The checks `validate` would answer with a page, in words for the app's developers.
    match params.get("redirect_uri") {
        None => return Err(OAuthError::invalid_request("redirect_uri is required")),
        Some(uri) if match_registered(&app.redirect_uris, uri).is_none() => {
            return Err(OAuthError::invalid_request(
                "redirect_uri is not one this app registered (compared exactly, as a string)",
            ));
        }
        Some(_) => {}
    }
    let stored = stored_params(params, &app.client_id);
    let request = Params::parse(stored.as_bytes())?;
    super::authorize::validate(state, &request)
        .await
        .map_err(push_error)?;
    let address = client.map(network_key);
    let created = pushed_requests::create(
        &state.db,
        NewRequest {
            client_id: &app.client_id,
            params: &stored,
            client_address: address.as_deref(),
        },
        state.now(),
        LIFETIME,
        state.settings.pending_requests,
    )
    .await?;
    let Some(reference) = created else {
        tracing::warn!(address = ?client, client_id = %app.client_id, "pushed request refused: too many pending");
        let mut res = OAuthError::invalid_request(
            "too many pushed requests of this app, or from this address, are waiting to be used; try again in a minute",
        )
        .into_response();
        *res.status_mut() = StatusCode::TOO_MANY_REQUESTS;
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(LIFETIME));
        return Ok(res);
    };
    let answer = serde_json::json!({
        "request_uri": format!("{REQUEST_URI_PREFIX}{reference}"),
        "expires_in": LIFETIME,
    });
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

/// The pushed request as stored: its parameters form-encoded, without the client's
/// credentials, and with the authenticated app's `client_id` (a Basic-authenticated push need
/// not repeat it in the body).
fn stored_params(params: &Params, client_id: &str) -> String {
    url::form_urlencoded::Serializer::new(String::new())
        .append_pair("client_id", client_id)
        .extend_pairs(params.pairs().filter(|(k, _)| !CREDENTIALS.contains(k)))
        .finish()
}

/// A refusal of `validate`, as the push answers it: JSON with the RFC code, never a redirect.
fn push_error(invalid: Invalid) -> OAuthError {
    match invalid {
        Invalid::Redirect { error, .. } => error,
        // The app is authenticated and its redirect URI checked: what is left is a failure
        // on our side, or the app vanishing meanwhile.
        Invalid::Page {
            title: "Something went wrong",
            message,
        } => OAuthError::server_error(message),
        Invalid::Page { message, .. } => OAuthError::invalid_request(message),
    }
}

/// The parameters `/authorize` works on, and whether they were pushed. With a `request_uri`
/// (RFC 9126 §4), they are the pushed request's, taken now (once), and every other parameter
/// but `client_id` is ignored; a `client_id` other than the one the request was pushed by, or
/// a request that is unknown, used or expired, is a page: nothing here is trusted enough to
/// redirect to.
pub async fn resolve(state: &AppState, params: Params) -> Result<(Params, bool), Invalid> {
    let Some(request_uri) = params.get("request_uri") else {
        return Ok((params, false));
    };
    let page = |title: &'static str, message: &str| Invalid::Page {
        title,
        message: message.to_string(),
    };
    let client_id = params.get("client_id").ok_or_else(|| {
        page(
            "Cannot start signing in",
            "The app did not say who it is (client_id is missing).",
        )
    })?;
    let not_valid = || {
        page(
            "This sign-in link is not valid",
            &format!(
                "The app's sign-in request is unknown, was already used, has expired (it lasts {LIFETIME} seconds) or belongs to another app. Go back to the app and start again."
            ),
        )
    };
    let reference = request_uri
        .strip_prefix(REQUEST_URI_PREFIX)
        .ok_or_else(not_valid)?;
    let stored = pushed_requests::take(&state.db, reference, client_id, state.now())
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "taking a pushed request failed");
            page(
                "Something went wrong",
                "Something went wrong on our side. Please try again in a moment.",
            )
        })?
        .ok_or_else(not_valid)?;
    let pushed = Params::parse(stored.as_bytes()).map_err(|e| {
        tracing::error!(error = %e.description, "a stored pushed request does not parse");
        page(
            "Something went wrong",
            "Something went wrong on our side. Please try again in a moment.",
        )
    })?;
    Ok((pushed, true))
}

/// Whether `app` must push its authorization requests: the server says so for every app, or
/// the app's registration does.
pub fn required(state: &AppState, app: &App) -> bool {
    state.settings.require_pushed_authorization_requests || app.require_par || app.fapi2()
}

fn par_required_error(state: &AppState, fapi2: bool) -> OAuthError {
    let url = state.settings.issuer.endpoint("/par");
    OAuthError::invalid_request(if fapi2 {
        format!(
            "{} pushed authorization requests (PAR): push the request to {url} first",
            super::profile::FAPI2_RULE
        )
    } else {
        format!(
            "this app must use pushed authorization requests (PAR): push the request to {url} first"
        )
    })
}

/// `validate`'s outcome for a request that was not pushed, refused when the app must push its
/// requests. The refusal goes back to the app when its client id and redirect URI are valid
/// and registered (a request otherwise valid, or refused by a redirect of its own); else the
/// page `validate` chose stands.
pub async fn enforce(
    state: &AppState,
    pushed: bool,
    params: &Params,
    validated: Result<(AuthorizationRequest, App), Invalid>,
) -> Result<(AuthorizationRequest, App), Invalid> {
    if pushed {
        return validated;
    }
    match validated {
        Ok((req, app)) if required(state, &app) => Err(Invalid::Redirect {
            redirect_uri: req.redirect_uri,
            state: req.state,
            error: par_required_error(state, app.fapi2()),
        }),
        Err(Invalid::Redirect {
            redirect_uri,
            state: client_state,
            error,
        }) => {
            let app = match params.get("client_id") {
                Some(id) => match apps::by_client_id(&state.db, id).await {
                    Ok(app) => app,
                    Err(e) => {
                        // The request is refused either way; only the reason given differs.
                        tracing::error!(error = %e, "loading an app failed");
                        None
                    }
                },
                None => None,
            };
            let fapi2 = app.as_ref().is_some_and(App::fapi2);
            let app_requires = state.settings.require_pushed_authorization_requests
                || fapi2
                || app.is_some_and(|app| app.require_par);
            let error = if app_requires {
                par_required_error(state, fapi2)
            } else {
                error
            };
            Err(Invalid::Redirect {
                redirect_uri,
                state: client_state,
                error,
            })
        }
        other => other,
    }
}
