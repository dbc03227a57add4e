//! The authorization endpoint (RFC 6749 §4.1.1, OIDC Core §3.1.2): validates the request, then
//! decides what the user must do next — sign in, consent, or nothing — and finally sends the
//! code back to the registered redirect URI.

use std::net::IpAddr;

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::error::{ErrorCode, OAuthError};
use super::params::Params;
use super::pkce::CodeChallenge;
use super::redirect::{match_registered, with_query};
use crate::consent;
use crate::error::AppError;
use crate::scopes::{Scope, ScopeError, parse_scope_list};
use crate::startup::AppState;
use crate::store::apps::{App, GrantType};
use crate::store::sessions::Session;
use crate::store::{apps, auth_requests, codes, grants, users};
use crate::web::client_ip::ClientIp;
use crate::web::{error_page, see_other};

pub use super::unavailable::{unavailable_changes, unavailable_description};
use super::unavailable::{unavailable_error, unavailable_page};

/// `prompt` (OIDC Core §3.1.2.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prompt {
    pub none: bool,
    pub login: bool,
    pub consent: bool,
}

/// A validated authorization request, as stored while the user signs in and consents.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthorizationRequest {
    pub client_id: String,
    /// The redirect URI as sent; it matched a registered one.
    pub redirect_uri: String,
    pub scopes: Vec<Scope>,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub code_challenge: CodeChallenge,
    pub prompt: Prompt,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
    /// RFC 8707 resource indicator: the audience of the tokens, when not the default.
    #[serde(default)]
    pub resource: Option<String>,
    /// RFC 9449 §10: the thumbprint of the DPoP key the code is bound to.
    #[serde(default)]
    pub dpop_jkt: Option<String>,
}

impl AuthorizationRequest {
    pub fn scope_string(&self) -> String {
        crate::scopes::join(&self.scopes)
    }
}

/// Why a request cannot go on.
pub enum Invalid {
    /// The client or redirect URI cannot be trusted: show a page, never redirect.
    Page {
        title: &'static str,
        message: String,
    },
    /// Tell the client, at its registered redirect URI (RFC 6749 §4.1.2.1).
    Redirect {
        redirect_uri: String,
        state: Option<String>,
        error: OAuthError,
    },
}

/// What the user must do next.
pub enum Outcome {
    Login,
    Consent,
    Permitted {
        user_id: String,
        grant_id: String,
        auth_time: i64,
        /// The session's public id (the ID token's `sid`).
        sid: String,
        /// The requested scopes the user has granted and the app may use now.
        scope: String,
    },
    /// Nothing requested can be granted to this account: each scope with why.
    NothingAvailable(String),
    /// The app is in preview and this account is not one of its test accounts.
    NotATestAccount(String),
}

/// For an app in preview, why this account may not sign in to it (`None`: it may).
pub async fn preview_refusal(
    state: &AppState,
    app: &App,
    email: &str,
) -> Result<Option<String>, sqlx::Error> {
    if app.stage != crate::partner::access::Stage::Preview
        || apps::is_test_account(&state.db, &app.client_id, email).await?
    {
        return Ok(None);
    }
    Ok(Some(
        "this app is in preview: it signs in only the test accounts its partner lists".into(),
    ))
}

pub async fn authorize_get(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    Query(raw): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let encoded = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(raw.iter())
        .finish();
    authorize(state, encoded.as_bytes(), &headers, client).await
}

pub async fn authorize_post(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    if !super::is_form(&headers) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "Cannot start signing in",
            "The request must be sent as application/x-www-form-urlencoded.",
        );
    }
    authorize(state, &body, &headers, client).await
}

async fn authorize(
    state: AppState,
    raw: &[u8],
    headers: &HeaderMap,
    client: Option<IpAddr>,
) -> Response {
    let params = match Params::parse(raw) {
        Ok(p) => p,
        Err(e) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                "Cannot start signing in",
                &e.description,
            );
        }
    };
    // A pushed request (RFC 9126) stands in for the parameters; an app that must push is
    // refused otherwise.
    let (params, pushed) = match super::par::resolve(&state, params).await {
        Ok(p) => p,
        Err(invalid) => return invalid_response(&state, invalid),
    };
    let validated = validate(&state, &params).await;
    let (req, app) = match super::par::enforce(&state, pushed, &params, validated).await {
        Ok(v) => v,
        Err(invalid) => return invalid_response(&state, invalid),
    };
    let session = crate::web::session::current(&state, headers).await;
    match session {
        Ok(session) => {
            proceed(
                &state,
                &app,
                &req,
                None,
                state.now(),
                session.as_ref(),
                client,
            )
            .await
        }
        Err(e) => AppError::from(e).into_response(),
    }
}

pub fn invalid_response(state: &AppState, invalid: Invalid) -> Response {
    match invalid {
        Invalid::Page { title, message } => error_page(StatusCode::BAD_REQUEST, title, &message),
        Invalid::Redirect {
            redirect_uri,
            state: client_state,
            error,
        } => error_redirect(
            state,
            &redirect_uri,
            client_state.as_deref(),
            error.code,
            &error.description,
        ),
    }
}

/// Redirects an error to the client with `state` and `iss` (RFC 9207).
pub fn error_redirect(
    state: &AppState,
    redirect_uri: &str,
    client_state: Option<&str>,
    code: ErrorCode,
    description: &str,
) -> Response {
    let mut pairs = vec![("error", code.as_str()), ("error_description", description)];
    if let Some(s) = client_state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", state.settings.issuer.as_str()));
    see_other(&with_query(redirect_uri, &pairs))
}

/// Longest `state` (RFC 6749 §4.1.1) and `nonce` (OIDC Core §3.1.2.1) accepted, in bytes.
pub const MAX_STATE_LEN: usize = 512;
pub const MAX_NONCE_LEN: usize = 512;

/// Validates the request parameters against the app's registration.
pub async fn validate(
    state: &AppState,
    p: &Params,
) -> Result<(AuthorizationRequest, App), Invalid> {
    let page = |title: &'static str, message: &str| Invalid::Page {
        title,
        message: message.to_string(),
    };
    let client_id = p.get("client_id").ok_or_else(|| {
        page(
            "Cannot start signing in",
            "The app did not say who it is (client_id is missing).",
        )
    })?;
    let app = apps::by_client_id(&state.db, client_id)
        .await
        .map_err(|e| {
            tracing::error!(error = %e, "loading an app failed");
            page(
                "Something went wrong",
                "Something went wrong on our side. Please try again in a moment.",
            )
        })?
        .ok_or_else(|| {
            page(
                "Unknown app",
                "The app that sent you here is not registered with Onyx ID.",
            )
        })?;
    // A draft or suspended app gets the page that says so, whatever else the request holds
    // (no redirect happens from here).
    if let Err(refusal) = app.gate() {
        return Err(unavailable_page(&app, &refusal));
    }
    let requested_redirect = p.get("redirect_uri").ok_or_else(|| {
        page(
            "Cannot start signing in",
            "The app did not say where to return you (redirect_uri is missing).",
        )
    })?;
    if match_registered(&app.redirect_uris, requested_redirect).is_none() {
        return Err(page(
            "Cannot return you to the app",
            "The address the app asked to return you to is not registered for it, so Onyx ID will not send you there.",
        ));
    }
    let client_state = p.get("state").map(str::to_string);
    let fail = |code: ErrorCode, d: &str| Invalid::Redirect {
        redirect_uri: requested_redirect.to_string(),
        state: client_state.clone(),
        error: OAuthError::new(code, d),
    };

    // Both are stored with the request and echoed back: bounded, so a request stays small.
    if client_state
        .as_ref()
        .is_some_and(|s| s.len() > MAX_STATE_LEN)
    {
        return Err(Invalid::Redirect {
            redirect_uri: requested_redirect.to_string(),
            state: None,
            error: OAuthError::new(
                ErrorCode::InvalidRequest,
                format!("state must be at most {MAX_STATE_LEN} bytes"),
            ),
        });
    }
    if p.get("nonce").is_some_and(|n| n.len() > MAX_NONCE_LEN) {
        return Err(fail(
            ErrorCode::InvalidRequest,
            &format!("nonce must be at most {MAX_NONCE_LEN} bytes"),
        ));
    }

    if p.get("request").is_some() {
        return Err(fail(
            ErrorCode::RequestNotSupported,
            "request objects are not supported",
        ));
    }
    if p.get("request_uri").is_some() {
        return Err(fail(
            ErrorCode::RequestUriNotSupported,
            "request_uri is not supported",
        ));
    }
    match p.get("response_type") {
        None => return Err(fail(ErrorCode::InvalidRequest, "response_type is required")),
        Some("code") => {}
        Some(_) => {
            return Err(fail(
                ErrorCode::UnsupportedResponseType,
                "only response_type=code is supported",
            ));
        }
    }
    if let Some(mode) = p.get("response_mode")
        && mode != "query"
    {
        return Err(fail(
            ErrorCode::InvalidRequest,
            "only response_mode=query is supported",
        ));
    }
    if !app.allows_grant(GrantType::AuthorizationCode) {
        return Err(fail(
            ErrorCode::UnauthorizedClient,
            "this app may not use the authorization code grant",
        ));
    }
    let challenge = p.get("code_challenge").ok_or_else(|| {
        fail(
            ErrorCode::InvalidRequest,
            "code_challenge is required (PKCE with S256)",
        )
    })?;
    match p.get("code_challenge_method") {
        Some("S256") => {}
        None | Some("plain") => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256 (plain is not supported)",
            ));
        }
        Some(_) => {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "code_challenge_method must be S256",
            ));
        }
    }
    let code_challenge =
        CodeChallenge::parse(challenge).map_err(|d| fail(ErrorCode::InvalidRequest, d))?;

    let scopes = match p.get("scope").map(parse_scope_list) {
        None | Some(Err(ScopeError::Empty)) => {
            return Err(fail(ErrorCode::InvalidScope, "scope is required"));
        }
        Some(Err(e)) => return Err(fail(ErrorCode::InvalidScope, &e.to_string())),
        Some(Ok(s)) => s,
    };
    if let Some(s) = scopes.iter().find(|s| s.is_app_scope()) {
        return Err(fail(
            ErrorCode::InvalidScope,
            &format!(
                "scope {:?} is the app's own access: request it with client_credentials",
                s.as_str()
            ),
        ));
    }
    // Scopes under review pass here: the consent screen shows them as unavailable.
    if let Some(s) = scopes.iter().find(|s| {
        !app.approved_for(s.as_str()) && !app.consent.pending_scopes.iter().any(|p| p == s.as_str())
    }) {
        return Err(fail(
            ErrorCode::InvalidScope,
            &format!("scope {:?} is not approved for this app", s.as_str()),
        ));
    }
    if scopes.iter().any(|s| s.as_str() == "offline_access")
        && !app.allows_grant(GrantType::RefreshToken)
    {
        return Err(fail(
            ErrorCode::InvalidScope,
            "scope \"offline_access\" needs the refresh_token grant, which this app is not allowed",
        ));
    }
    let resource = match p.get("resource") {
        None => None,
        Some(r) => match crate::oauth::token::audience_for(
            state,
            Some(r),
            &state.settings.default_audience,
        )
        .await
        {
            Ok(a) => Some(a),
            Err(e) if e.code == ErrorCode::ServerError => {
                return Err(page(
                    "Something went wrong",
                    "Something went wrong on our side. Please try again in a moment.",
                ));
            }
            Err(e) => return Err(fail(e.code, &e.description)),
        },
    };

    let mut prompt = Prompt::default();
    if let Some(raw) = p.get("prompt") {
        for v in raw.split(' ').filter(|v| !v.is_empty()) {
            match v {
                "none" => prompt.none = true,
                "login" => prompt.login = true,
                "consent" => prompt.consent = true,
                other => {
                    return Err(fail(
                        ErrorCode::InvalidRequest,
                        &format!("prompt value {other:?} is not supported"),
                    ));
                }
            }
        }
        if prompt.none && (prompt.login || prompt.consent) {
            return Err(fail(
                ErrorCode::InvalidRequest,
                "prompt=none cannot be combined with other values",
            ));
        }
    }
    let max_age = match p.get("max_age") {
        None => None,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if n >= 0 => Some(n),
            _ => {
                return Err(fail(
                    ErrorCode::InvalidRequest,
                    "max_age must be a non-negative integer",
                ));
            }
        },
    };
    let login_hint = p
        .get("login_hint")
        .filter(|h| h.len() <= 254)
        .map(str::to_string);

    let dpop_jkt = match p.get("dpop_jkt") {
        None => None,
        Some(raw) => Some(
            crate::oauth::dpop::Jkt::parse(raw)
                .map_err(|d| fail(ErrorCode::InvalidRequest, d))?
                .as_str()
                .to_string(),
        ),
    };

    let req = AuthorizationRequest {
        client_id: app.client_id.clone(),
        redirect_uri: requested_redirect.to_string(),
        scopes,
        state: client_state.clone(),
        nonce: p.get("nonce").map(str::to_string),
        code_challenge,
        prompt,
        max_age,
        login_hint,
        resource,
        dpop_jkt,
    };
    Ok((req, app))
}

/// Whether a session signed in at `auth_time` may answer `req` (first received at
/// `created_at`) at `now`: `prompt=login` needs a sign-in made for this request, and `max_age`
/// one at most that old, or made for this request. Every step that can issue a code checks it
/// (the authorization endpoint, the login and the consent pages).
pub fn session_satisfies(
    req: &AuthorizationRequest,
    created_at: i64,
    auth_time: i64,
    now: i64,
) -> bool {
    let fresh = auth_time >= created_at;
    if req.prompt.login && !fresh {
        return false;
    }
    if let Some(max_age) = req.max_age
        && !fresh
        && now - auth_time > max_age
    {
        return false;
    }
    true
}

/// Decides the next step for `req`, first received at `created_at`, given the browser's session.
pub async fn decide(
    state: &AppState,
    app: &App,
    req: &AuthorizationRequest,
    created_at: i64,
    session: Option<&Session>,
) -> Result<Outcome, sqlx::Error> {
    let now = state.now();
    let Some(session) = session else {
        return Ok(Outcome::Login);
    };
    if !session_satisfies(req, created_at, session.auth_time, now) {
        return Ok(Outcome::Login);
    }
    let Some(user) = users::by_id(&state.db, &session.user_id).await? else {
        return Ok(Outcome::Login);
    };
    if let Some(why) = preview_refusal(state, app, &user.email).await? {
        return Ok(Outcome::NotATestAccount(why));
    }
    let grant = grants::current(&state.db, &user.id, &app.client_id).await?;
    let perms = match &grant {
        Some(g) => grants::permissions(&state.db, &g.id).await?,
        None => Vec::new(),
    };
    // A changed consent copy (intended use or wording) asks every scope again.
    let ask_all = req.prompt.consent
        || grant
            .as_ref()
            .is_some_and(|g| g.copy_version != app.copy_version());
    let sorted = consent::classify(
        req.scopes.iter().map(|s| s.info()),
        |name| perms.iter().find(|p| p.scope == name).map(|p| &p.stored),
        ask_all,
        &app.facts(),
        &user.facts(),
        now,
    );
    if sorted.granted.is_empty() && sorted.asked.is_empty() {
        return Ok(Outcome::NothingAvailable(unavailable_description(&sorted)));
    }
    match grant {
        Some(g) if sorted.asked.is_empty() => {
            // Nothing to ask: what is unavailable is recorded as such, then the flow goes on
            // with the granted scopes (the token response's `scope` says which).
            // A scope stored as granted stays so: its effective state already says it is
            // limited, and it comes back when the condition does.
            let changes: Vec<grants::Change> = unavailable_changes(&sorted)
                .into_iter()
                .filter(|c| {
                    !perms
                        .iter()
                        .any(|p| p.scope == c.scope && p.stored.state == consent::State::Granted)
                })
                .collect();
            if !changes.is_empty() {
                grants::record(
                    &state.db,
                    &user.id,
                    &app.client_id,
                    &changes,
                    grants::Actor::Onyx,
                    None,
                    now,
                )
                .await?;
            }
            Ok(Outcome::Permitted {
                user_id: user.id,
                grant_id: g.id,
                auth_time: session.auth_time,
                sid: session.sid.clone(),
                scope: sorted
                    .granted
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<Vec<_>>()
                    .join(" "),
            })
        }
        _ => Ok(Outcome::Consent),
    }
}

/// Takes the request one step further: to the login page, the consent page, or back to the
/// client with a code. `request_id` is set once the request has been stored.
pub async fn proceed(
    state: &AppState,
    app: &App,
    req: &AuthorizationRequest,
    request_id: Option<&str>,
    created_at: i64,
    session: Option<&Session>,
    client: Option<IpAddr>,
) -> Response {
    let outcome = match decide(state, app, req, created_at, session).await {
        Ok(o) => o,
        Err(e) => return AppError::from(e).into_response(),
    };
    let interaction = match outcome {
        Outcome::Permitted {
            user_id,
            grant_id,
            auth_time,
            sid,
            scope,
        } => {
            return finish_with_code(
                state,
                req,
                request_id,
                &user_id,
                &grant_id,
                (auth_time, &sid),
                &scope,
            )
            .await;
        }
        Outcome::NothingAvailable(description) => {
            return error_redirect(
                state,
                &req.redirect_uri,
                req.state.as_deref(),
                ErrorCode::InvalidScope,
                &description,
            );
        }
        Outcome::NotATestAccount(description) => {
            return error_redirect(
                state,
                &req.redirect_uri,
                req.state.as_deref(),
                ErrorCode::AccessDenied,
                &description,
            );
        }
        Outcome::Login if req.prompt.none => {
            return error_redirect(
                state,
                &req.redirect_uri,
                req.state.as_deref(),
                ErrorCode::LoginRequired,
                "the user is not signed in",
            );
        }
        Outcome::Consent if req.prompt.none => {
            return error_redirect(
                state,
                &req.redirect_uri,
                req.state.as_deref(),
                ErrorCode::ConsentRequired,
                "the user has not approved this access",
            );
        }
        Outcome::Login => "/login",
        Outcome::Consent => "/consent",
    };
    let id = match request_id {
        Some(id) => id.to_string(),
        None => {
            let params = match serde_json::to_string(req) {
                Ok(p) => p,
                Err(e) => return AppError::internal(e).into_response(),
            };
            let address = client.map(crate::web::client_ip::network_key);
            match auth_requests::create(
                &state.db,
                auth_requests::NewRequest {
                    client_id: &app.client_id,
                    params: &params,
                    client_address: address.as_deref(),
                },
                created_at,
                state.settings.lifetimes.auth_request,
                state.settings.pending_requests,
            )
            .await
            {
                Ok(Some(id)) => id,
                Ok(None) => {
                    tracing::warn!(address = ?client, client_id = %app.client_id, "authorization request refused: too many pending");
                    let mut res = error_page(
                        StatusCode::TOO_MANY_REQUESTS,
                        "Too many sign-ins waiting",
                        "Too many sign-ins to this app are waiting to be finished, from your network or overall. Finish or close the ones you have open, or try again in a few minutes.",
                    );
                    res.headers_mut()
                        .insert(axum::http::header::RETRY_AFTER, 60.into());
                    return res;
                }
                Err(e) => return AppError::from(e).into_response(),
            }
        }
    };
    see_other(&with_query(interaction, &[("request_id", &id)]))
}

/// Issues the code and redirects back to the client; the stored request, if any, is finished.
pub async fn finish_with_code(
    state: &AppState,
    req: &AuthorizationRequest,
    request_id: Option<&str>,
    user_id: &str,
    grant_id: &str,
    (auth_time, sid): (i64, &str),
    scope: &str,
) -> Response {
    let now = state.now();
    if let Some(id) = request_id {
        match auth_requests::take(&state.db, id).await {
            Ok(true) => {}
            Ok(false) => {
                return error_page(
                    StatusCode::BAD_REQUEST,
                    "Already answered",
                    "This request was already answered. Go back to the app and start again.",
                );
            }
            Err(e) => return AppError::from(e).into_response(),
        }
    }
    let code = codes::create(
        &state.db,
        codes::NewCode {
            client_id: &req.client_id,
            user_id,
            grant_id,
            redirect_uri: &req.redirect_uri,
            scope,
            nonce: req.nonce.as_deref(),
            code_challenge: req.code_challenge.as_str(),
            resource: req.resource.as_deref(),
            auth_time,
            sid,
            dpop_jkt: req.dpop_jkt.as_deref(),
        },
        now,
        state.settings.lifetimes.authorization_code,
    )
    .await;
    let code = match code {
        Ok(c) => c,
        Err(e) => return AppError::from(e).into_response(),
    };
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = &req.state {
        pairs.push(("state", s));
    }
    pairs.push(("iss", state.settings.issuer.as_str()));
    see_other(&with_query(&req.redirect_uri, &pairs))
}

/// Loads a stored request and its app, or explains why it cannot go on.
pub async fn load_request(
    state: &AppState,
    request_id: &str,
) -> Result<(AuthorizationRequest, i64, App), AppError> {
    let expired = || {
        AppError::bad_request(
            "This sign-in has expired",
            "This sign-in request is no longer valid. Go back to the app and start again.",
        )
    };
    let (params, created_at) = auth_requests::find(&state.db, request_id, state.now())
        .await?
        .ok_or_else(expired)?;
    let req: AuthorizationRequest = serde_json::from_str(&params).map_err(AppError::internal)?;
    let app = apps::by_client_id(&state.db, &req.client_id)
        .await?
        .ok_or_else(expired)?;
    if let Err(refusal) = app.gate() {
        return Err(unavailable_error(&app, &refusal));
    }
    Ok((req, created_at, app))
}
