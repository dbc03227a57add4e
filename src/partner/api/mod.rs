//! The partner program's HTTP API (JSON). Partners call it with a partner API key, operators
//! with an operator API key, both as `Authorization: Bearer <key>`. Its OpenAPI 3.1 document
//! (with the grants API's) is generated from the routes: each handler carries its
//! `#[utoipa::path]`, each body and outcome type derives `ToSchema`, and `routes` adds a route
//! only through `routes!`, so none exists undocumented. It is served at `/api/v1/openapi.json`.
//!
//! Every refusal is an `AppError` in JSON form, `{"error": code, "error_description": sentence,
//! ...}`, naming the state and reason where one applies; another partner's app is "not found",
//! never "forbidden". A body must be `application/json` (415) with no member twice (400).
//!
//! The handlers extract (caller, path, body), call one service function of the partner
//! program, and map its typed outcome to JSON. The request bodies are the serde structs of
//! `partner` and `operator`; nothing below this module reads JSON from a client.

use std::sync::LazyLock;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value, json};
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::domain::Verifier;
use super::program::ProgramError;
use crate::error::AppError;
use crate::startup::AppState;
use crate::store::partners::{self, KeyOwner};

pub fn router() -> Router<AppState> {
    routes().split_for_parts().0
}

/// The partner and operator routes with their documentation: a route is added here with
/// `routes!`, which takes it from its `#[utoipa::path]`, so none can exist undocumented.
fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(docs::ApiDoc::openapi())
        .routes(routes!(openapi))
        .routes(routes!(partner_get))
        .routes(routes!(key_create))
        .routes(routes!(key_revoke))
        .routes(routes!(apps_list, app_create))
        .routes(routes!(app_get, app_patch))
        .routes(routes!(app_submit))
        .routes(routes!(app_review))
        .routes(routes!(app_launch))
        .routes(routes!(app_capabilities))
        .routes(routes!(app_capability_request))
        .routes(routes!(app_secret_rotate))
        .routes(routes!(app_test_accounts, app_test_accounts_set))
        .routes(routes!(app_domain_get, app_domain_verify))
        .routes(routes!(webhooks::app_webhooks, webhooks::app_webhook_add))
        .routes(routes!(
            webhooks::app_webhook_get,
            webhooks::app_webhook_update
        ))
        .routes(routes!(webhooks::app_webhook_secret_rotate))
        .routes(routes!(webhooks::app_webhook_enable))
        .routes(routes!(webhooks::app_webhook_test))
        .routes(routes!(webhooks::app_webhook_deliveries))
        .routes(routes!(webhooks::app_webhook_retry))
        .routes(routes!(backchannel::app_backchannel_deliveries))
        .routes(routes!(op_queue))
        .routes(routes!(op_partner_create))
        .routes(routes!(op_member_add))
        .routes(routes!(op_app_get))
        .routes(routes!(op_step_decide))
        .routes(routes!(op_capability_set))
        .routes(routes!(op_access_set))
        .routes(routes!(op_trust_set))
        .routes(routes!(op_audit))
}

/// The OpenAPI 3.1 document of the partner, operator and grants APIs, generated from their
/// routers (served at `/api/v1/openapi.json`).
pub fn document() -> utoipa::openapi::OpenApi {
    let mut doc = routes().merge(crate::api::routes()).split_for_parts().1;
    docs::access_pairs(&mut doc);
    doc
}

/// A JSON answer that is never cached.
fn reply(status: StatusCode, body: Value) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    let h = res.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// The partner program's refusals in the APIs' one error model.
impl From<ProgramError> for AppError {
    fn from(e: ProgramError) -> Self {
        match e {
            ProgramError::Invalid {
                code,
                message,
                extra,
            } => AppError::new(StatusCode::BAD_REQUEST, code, "Refused", message).with_extra(extra),
            ProgramError::Conflict {
                code,
                message,
                extra,
            } => AppError::new(StatusCode::CONFLICT, code, "Refused", message).with_extra(extra),
            ProgramError::NotFound(what) => {
                AppError::not_found("Not found", format!("no such {what} for this caller"))
            }
            ProgramError::Internal(e) => AppError::internal(e),
        }
        .json()
    }
}

/// Answers with the refusal `e`, in the APIs' JSON error body.
fn refuse(e: impl Into<AppError>) -> Response {
    e.into().json().into_response()
}

/// Why a caller was refused before anything else.
enum AuthError {
    Missing,
    Invalid,
    WrongKind(&'static str),
    Db(sqlx::Error),
}

impl From<AuthError> for AppError {
    fn from(e: AuthError) -> Self {
        let (status, code, d) = match e {
            AuthError::Missing => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "send an API key as Authorization: Bearer <key>",
            ),
            AuthError::Invalid => (
                StatusCode::UNAUTHORIZED,
                "invalid_token",
                "the API key is unknown or revoked",
            ),
            AuthError::WrongKind(need) => (
                StatusCode::FORBIDDEN,
                "insufficient_scope",
                if need == "partner" {
                    "this endpoint needs a partner API key"
                } else {
                    "this endpoint needs an operator API key"
                },
            ),
            AuthError::Db(e) => return ProgramError::from(e).into(),
        };
        let refusal = AppError::new(status, code, "Refused", d).json();
        if status == StatusCode::UNAUTHORIZED {
            refusal.with_challenge("Bearer realm=\"onyx-id partner API\"")
        } else {
            refusal
        }
    }
}

async fn owner(state: &AppState, headers: &HeaderMap) -> Result<KeyOwner, AuthError> {
    let raw = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(AuthError::Missing)?;
    // The scheme name is case-insensitive (RFC 7235 §2.1).
    let key = match raw.split_once(' ') {
        Some((scheme, key)) if scheme.eq_ignore_ascii_case("bearer") => key.trim(),
        _ => return Err(AuthError::Missing),
    };
    partners::key_owner(&state.db, key, state.now())
        .await
        .map_err(AuthError::Db)?
        .ok_or(AuthError::Invalid)
}

/// A partner caller: its partner id and how the audit log names it.
struct PartnerCaller {
    partner_id: String,
    actor: String,
}

async fn partner(state: &AppState, headers: &HeaderMap) -> Result<PartnerCaller, AuthError> {
    match owner(state, headers).await? {
        o @ KeyOwner::Partner { .. } => {
            let actor = o.actor();
            let KeyOwner::Partner { partner_id, .. } = o else {
                return Err(AuthError::Invalid);
            };
            Ok(PartnerCaller { partner_id, actor })
        }
        KeyOwner::Operator { .. } => Err(AuthError::WrongKind("partner")),
    }
}

async fn operator(state: &AppState, headers: &HeaderMap) -> Result<String, AuthError> {
    match owner(state, headers).await? {
        o @ KeyOwner::Operator { .. } => Ok(o.actor()),
        KeyOwner::Partner { .. } => Err(AuthError::WrongKind("operator")),
    }
}

/// Parses a JSON body (an empty body is `{}`). A body must be sent as `application/json`
/// (415 otherwise) and be JSON with no member twice in one object (400 `invalid_request`).
fn body_json(headers: &HeaderMap, body: &Bytes) -> Result<Value, AppError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    let media_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    if media_type.as_deref() != Some("application/json") {
        return Err(AppError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "Cannot read this request",
            "send the body as Content-Type: application/json",
        )
        .json());
    }
    let not_json = |e: serde_json::Error| {
        AppError::from(ProgramError::invalid(
            "invalid_request",
            format!("the body is not valid JSON: {e}"),
        ))
    };
    serde_json::from_slice::<unique::Unique>(body).map_err(not_json)?;
    serde_json::from_slice(body).map_err(not_json)
}

fn body_as<T: DeserializeOwned>(headers: &HeaderMap, body: &Bytes) -> Result<T, AppError> {
    serde_json::from_value(body_json(headers, body)?).map_err(|e| {
        ProgramError::invalid("invalid_request", format!("the body does not fit: {e}")).into()
    })
}

/// A JSON object body, or `invalid_request`.
fn body_object(headers: &HeaderMap, body: &Bytes) -> Result<Map<String, Value>, AppError> {
    match body_json(headers, body)? {
        Value::Object(m) => Ok(m),
        _ => Err(ProgramError::invalid("invalid_request", "the body must be a JSON object").into()),
    }
}

/// Reads an app description (or a change to one) from a JSON object, naming the field that
/// does not fit: each member is tried on its own to find it.
fn parse_named<T: DeserializeOwned>(object: Map<String, Value>) -> Result<T, AppError> {
    let whole = Value::Object(object);
    serde_json::from_value(whole.clone()).map_err(|e| {
        let field = whole.as_object().and_then(|m| {
            m.iter()
                .find(|(k, v)| {
                    let one: Map<String, Value> =
                        std::iter::once(((*k).clone(), (*v).clone())).collect();
                    serde_json::from_value::<T>(Value::Object(one)).is_err()
                })
                .map(|(k, _)| k.clone())
        });
        match field {
            Some(f) => ProgramError::invalid("invalid_request", format!("{f} is not valid: {e}"))
                .with("field", f),
            None => ProgramError::invalid(
                "invalid_request",
                format!("the app description is not valid: {e}"),
            ),
        }
        .into()
    })
}

/// The outcome as JSON with `status`, or the refusal.
fn answer<T: Serialize>(status: StatusCode, v: Result<T, ProgramError>) -> Response {
    match v.and_then(|v| serde_json::to_value(v).map_err(|e| ProgramError::Internal(e.into()))) {
        Ok(v) => reply(status, v),
        Err(e) => refuse(e),
    }
}

fn ok<T: Serialize>(v: Result<T, ProgramError>) -> Response {
    answer(StatusCode::OK, v)
}

fn created<T: Serialize>(v: Result<T, ProgramError>) -> Response {
    answer(StatusCode::CREATED, v)
}

/// The value, or the refusal as the APIs answer it (any error that becomes an `AppError`).
macro_rules! or_respond {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(e) => return $crate::partner::api::refuse(e),
        }
    };
}

// The handlers, after the macro they use.
mod backchannel;
pub(crate) mod docs;
mod operator;
mod partner;
pub(crate) mod responses;
mod unique;
mod webhooks;

use operator::*;
use partner::*;

fn verifier(state: &AppState) -> Verifier {
    Verifier::new(state.settings.domain_verification.clone())
}

#[utoipa::path(
    get,
    path = "/api/v1/openapi.json",
    tag = "meta",
    operation_id = "openapi",
    responses((status = 200, description = "this document", content_type = "application/json", body = Object))
)]
async fn openapi() -> Response {
    static DOCUMENT: LazyLock<Result<String, String>> =
        LazyLock::new(|| document().to_pretty_json().map_err(|e| e.to_string()));
    let json = match &*DOCUMENT {
        Ok(json) => json.as_str(),
        Err(e) => {
            return AppError::internal(anyhow::anyhow!("the OpenAPI document: {e}"))
                .json()
                .into_response();
        }
    };
    let mut res = (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        json,
    )
        .into_response();
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=300"),
    );
    res
}

#[cfg(test)]
mod tests {
    use axum::body::to_bytes;

    use super::*;

    async fn body(res: Response) -> Value {
        let bytes = to_bytes(res.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[tokio::test]
    async fn a_conflict_keeps_its_status_code_and_extra_members_in_the_one_error_body() {
        let e = ProgramError::conflict("capability_gated", "the market is not launched")
            .with("capability", "expanded_messaging")
            .with("reason", "market_not_launched");
        let res = refuse(e);
        assert_eq!(res.status(), StatusCode::CONFLICT);
        assert_eq!(res.headers()[header::CACHE_CONTROL], "no-store");
        assert_eq!(
            body(res).await,
            json!({
                "error": "capability_gated",
                "error_description": "the market is not launched",
                "capability": "expanded_messaging",
                "reason": "market_not_launched",
            })
        );
        let res = refuse(ProgramError::NotFound("app"));
        assert_eq!(res.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            body(res).await["error_description"],
            "no such app for this caller"
        );
    }

    #[tokio::test]
    async fn a_missing_key_is_a_401_with_its_bearer_challenge_and_a_wrong_kind_a_403() {
        let res = refuse(AuthError::Missing);
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            res.headers()[header::WWW_AUTHENTICATE],
            "Bearer realm=\"onyx-id partner API\""
        );
        assert_eq!(body(res).await["error"], "invalid_token");
        let res = refuse(AuthError::WrongKind("operator"));
        assert_eq!(res.status(), StatusCode::FORBIDDEN);
        assert!(res.headers().get(header::WWW_AUTHENTICATE).is_none());
        assert_eq!(body(res).await["error"], "insufficient_scope");
    }
}
