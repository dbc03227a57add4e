//! The partner endpoints (`/api/v1/partner…`, `/api/v1/apps…`), called with a partner API key.

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use super::responses::{PartnerBodyErrors, PartnerErrors};
use super::{PartnerCaller, body_as, body_object, created, ok, parse_named, partner, verifier};
use crate::error::AppError;
use crate::partner::apps::{self, DraftPatch, NewPartnerApp};
use crate::partner::program::ProgramError;
use crate::partner::{AppDraft, capabilities, partners, review, secrets, verification};
use crate::startup::AppState;
use crate::store::apps::{App, ClientType};

#[utoipa::path(
    get,
    path = "/api/v1/partner",
    tag = "partner",
    operation_id = "partner_get",
    security(("partnerKey" = [])),
    responses((status = 200, description = "the caller's partner, its members and API keys", body = crate::partner::partners::PartnerView), PartnerErrors)
)]
pub(super) async fn partner_get(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = or_respond!(partner(&state, &headers).await);
    ok(partners::partner_view(&state.db, &p.partner_id).await)
}

/// A new API key: its name, not blank, with no control characters but newlines.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct KeyBody {
    #[schema(
        pattern = r"^(?=[\s\S]*\S)[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$",
        min_length = 1,
        max_length = 100
    )]
    name: String,
}

#[utoipa::path(
    post,
    path = "/api/v1/partner/keys",
    tag = "partner",
    operation_id = "key_create",
    security(("partnerKey" = [])),
    request_body(content = KeyBody, content_type = "application/json"),
    responses((status = 201, description = "the new key (its secret is shown once)", body = crate::partner::partners::KeyCreated), PartnerBodyErrors)
)]
pub(super) async fn key_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = or_respond!(partner(&state, &headers).await);
    let b: KeyBody = or_respond!(body_as(&headers, &body));
    created(
        partners::create_partner_key(&state.db, state.now(), &p.actor, &p.partner_id, &b.name)
            .await,
    )
}

#[utoipa::path(
    delete,
    path = "/api/v1/partner/keys/{key_id}",
    tag = "partner",
    operation_id = "key_revoke",
    security(("partnerKey" = [])),
    params(("key_id" = String, Path, description = "the key's id")),
    responses((status = 200, description = "the key is revoked", body = crate::partner::partners::KeyRevoked), PartnerErrors)
)]
pub(super) async fn key_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(key_id): Path<String>,
) -> Response {
    let p = or_respond!(partner(&state, &headers).await);
    ok(
        partners::revoke_partner_key(&state.db, state.now(), &p.actor, &p.partner_id, &key_id)
            .await,
    )
}

#[utoipa::path(
    get,
    path = "/api/v1/apps",
    tag = "partner",
    operation_id = "apps_list",
    security(("partnerKey" = [])),
    responses((status = 200, description = "the partner's apps", body = crate::partner::apps::AppList), PartnerErrors)
)]
pub(super) async fn apps_list(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let p = or_respond!(partner(&state, &headers).await);
    ok(apps::partner_apps(&state.db, &p.partner_id).await)
}

/// `POST /api/v1/apps`: the draft's fields, and `client_type` (`confidential` by default).
fn new_app(headers: &HeaderMap, body: &Bytes) -> Result<NewPartnerApp, AppError> {
    let mut body = body_object(headers, body)?;
    let client_type = match body.remove("client_type") {
        None => ClientType::Confidential,
        Some(Value::String(s)) if s == "confidential" => ClientType::Confidential,
        Some(Value::String(s)) if s == "public" => ClientType::Public,
        Some(_) => {
            return Err(ProgramError::invalid(
                "invalid_request",
                "client_type must be confidential or public",
            )
            .with("field", "client_type")
            .into());
        }
    };
    let draft: AppDraft = parse_named(body)?;
    Ok(NewPartnerApp { client_type, draft })
}

/// `POST /api/v1/apps`, as documented: the draft's fields and `client_type`. `new_app` reads
/// it member by member to name the field that does not fit.
#[derive(Deserialize, utoipa::ToSchema)]
#[allow(dead_code)]
struct AppCreateRequest {
    #[serde(flatten)]
    draft: AppDraft,
    /// `confidential` (the default) or `public`.
    #[schema(value_type = Option<String>, pattern = "^(confidential|public)$")]
    client_type: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/apps",
    tag = "partner",
    operation_id = "app_create",
    security(("partnerKey" = [])),
    request_body(content = AppCreateRequest, content_type = "application/json"),
    responses((status = 201, description = "the app is created in the sandbox, with its client secret shown once", body = crate::partner::apps::AppCreated), PartnerBodyErrors)
)]
pub(super) async fn app_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let p = or_respond!(partner(&state, &headers).await);
    let new = or_respond!(new_app(&headers, &body));
    created(apps::create_app(&state.db, state.now(), &p.actor, &p.partner_id, new).await)
}

/// The caller's app, or the response that refuses.
pub(super) async fn own_app(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
) -> Result<(PartnerCaller, App), AppError> {
    let p = partner(state, headers).await.map_err(AppError::from)?;
    let app = apps::partner_app(&state.db, &p.partner_id, client_id)
        .await
        .map_err(AppError::from)?;
    Ok((p, app))
}

#[utoipa::path(
    get,
    path = "/api/v1/apps/{client_id}",
    tag = "partner",
    operation_id = "app_get",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    responses((status = 200, description = "the app: its draft, stage, review, access and capabilities", body = crate::partner::apps::AppView), PartnerErrors)
)]
pub(super) async fn app_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (_, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(apps::app_view(&state.db, &app).await)
}

/// A field that is present (even as `null`) is `Some`; an absent one, through `default`, is
/// `None`. A `null` where the draft holds no `Option` is refused, as in the draft itself.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(d: D) -> Result<Option<T>, D::Error> {
    T::deserialize(d).map(Some)
}

/// `PATCH /api/v1/apps/{client_id}`: the draft fields to replace. Its fields are the draft's,
/// in the draft's order, so a refusal names them as a whole draft would.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct DraftPatchBody {
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 200)]
    name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 2000)]
    description: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 50)]
    use_case: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 2000)]
    purpose: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 2000)]
    consent_copy: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 253)]
    domain: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_items = 50)]
    redirect_uris: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_items = 50)]
    origins: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_items = 50)]
    post_logout_redirect_uris: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 500)]
    backchannel_logout_uri: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    backchannel_logout_session_required: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    require_pushed_authorization_requests: Option<bool>,
    #[serde(default, deserialize_with = "present")]
    profile: Option<Option<crate::store::apps::Profile>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<Object>)]
    jwks: Option<Option<serde_json::Value>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 500)]
    jwks_uri: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_items = 50)]
    webhooks: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 500)]
    support_url: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_items = 50)]
    scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_items = 50)]
    optional_scopes: Option<Vec<String>>,
    #[serde(default, deserialize_with = "present")]
    justifications: Option<BTreeMap<String, String>>,
    #[serde(default, deserialize_with = "present")]
    #[schema(max_items = 50)]
    capabilities: Option<Vec<String>>,
}

impl From<DraftPatchBody> for DraftPatch {
    fn from(b: DraftPatchBody) -> Self {
        Self {
            name: b.name,
            description: b.description,
            use_case: b.use_case,
            purpose: b.purpose,
            consent_copy: b.consent_copy,
            domain: b.domain,
            redirect_uris: b.redirect_uris,
            origins: b.origins,
            post_logout_redirect_uris: b.post_logout_redirect_uris,
            backchannel_logout_uri: b.backchannel_logout_uri,
            backchannel_logout_session_required: b.backchannel_logout_session_required,
            require_pushed_authorization_requests: b.require_pushed_authorization_requests,
            profile: b.profile,
            jwks: b.jwks,
            jwks_uri: b.jwks_uri,
            webhooks: b.webhooks,
            support_url: b.support_url,
            scopes: b.scopes,
            optional_scopes: b.optional_scopes,
            justifications: b.justifications,
            capabilities: b.capabilities,
        }
    }
}

#[utoipa::path(
    patch,
    path = "/api/v1/apps/{client_id}",
    tag = "partner",
    operation_id = "app_patch",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    request_body(content = DraftPatchBody, content_type = "application/json"),
    responses((status = 200, description = "the app with its changed draft", body = crate::partner::apps::AppView), PartnerBodyErrors)
)]
pub(super) async fn app_patch(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let (p, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    let patch: DraftPatchBody = or_respond!(body_object(&headers, &body).and_then(parse_named));
    ok(apps::update_draft(&state.db, state.now(), &p.actor, &app, patch.into()).await)
}

#[utoipa::path(
    post,
    path = "/api/v1/apps/{client_id}/submit",
    tag = "partner",
    operation_id = "app_submit",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    responses((status = 200, description = "the review the draft was submitted to", body = crate::partner::review::ReviewView), PartnerErrors)
)]
pub(super) async fn app_submit(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (p, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(review::submit(&state.db, state.now(), &p.actor, &app).await)
}

#[utoipa::path(
    get,
    path = "/api/v1/apps/{client_id}/review",
    tag = "partner",
    operation_id = "app_review",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    responses((status = 200, description = "the app's review, step by step", body = crate::partner::review::ReviewView), PartnerErrors)
)]
pub(super) async fn app_review(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (_, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(review::review_view(&state.db, &app).await)
}

#[utoipa::path(
    get,
    path = "/api/v1/apps/{client_id}/launch-checklist",
    tag = "partner",
    operation_id = "app_launch",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    responses((status = 200, description = "what the app still needs to go live", body = crate::partner::launch::LaunchView), PartnerErrors)
)]
pub(super) async fn app_launch(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (_, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(crate::partner::launch::launch_view(&state.db, &app).await)
}

#[utoipa::path(
    get,
    path = "/api/v1/apps/{client_id}/capabilities",
    tag = "partner",
    operation_id = "app_capabilities",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    responses((status = 200, description = "the app's gated capabilities and their states", body = crate::partner::capabilities::CapabilitiesView), PartnerErrors)
)]
pub(super) async fn app_capabilities(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (_, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(Ok(capabilities::capabilities_view(&app)))
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct CapabilityRequest {
    /// Why the app needs it: no control characters but newlines.
    #[serde(default)]
    #[schema(
        pattern = r"^[^\u0000-\u0009\u000B-\u001F\u007F-\u009F]*$",
        max_length = 2000
    )]
    justification: Option<String>,
}

#[utoipa::path(
    post,
    path = "/api/v1/apps/{client_id}/capabilities/{name}",
    tag = "partner",
    operation_id = "app_capability_request",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id"), ("name" = super::docs::CapabilityName, Path, description = "the capability")),
    request_body(content = CapabilityRequest, content_type = "application/json"),
    responses((status = 200, description = "the capability as requested", body = crate::partner::capabilities::CapabilityView), PartnerBodyErrors)
)]
pub(super) async fn app_capability_request(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((client_id, name)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let (p, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    let b: CapabilityRequest = or_respond!(body_as(&headers, &body));
    ok(capabilities::request_capability(
        &state.db,
        state.now(),
        &p.actor,
        &app,
        &name,
        b.justification.as_deref(),
    )
    .await)
}

#[derive(Deserialize, Default, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct RotateBody {
    /// How long the old secret keeps working, in seconds (a day when not given; at most
    /// `secrets::MAX_SECRET_OVERLAP`, 30 days).
    #[serde(default)]
    #[schema(minimum = 0, maximum = 2592000)]
    overlap_seconds: Option<i64>,
}

#[utoipa::path(
    post,
    path = "/api/v1/apps/{client_id}/secret",
    tag = "partner",
    operation_id = "app_secret_rotate",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    request_body(content = RotateBody, content_type = "application/json"),
    responses((status = 200, description = "the new client secret (shown once) and when the old one stops working", body = crate::partner::secrets::SecretRotated), PartnerBodyErrors)
)]
pub(super) async fn app_secret_rotate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let (p, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    let b: RotateBody = or_respond!(body_as(&headers, &body));
    ok(secrets::rotate_secret(&state.db, state.now(), &p.actor, &app, b.overlap_seconds).await)
}

#[utoipa::path(
    get,
    path = "/api/v1/apps/{client_id}/test-accounts",
    tag = "partner",
    operation_id = "app_test_accounts",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    responses((status = 200, description = "the accounts that may sign in to the app before launch", body = crate::partner::apps::TestAccounts), PartnerErrors)
)]
pub(super) async fn app_test_accounts(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (_, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(apps::test_accounts_view(&state.db, &app).await)
}

#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
struct TestAccountsBody {
    /// The accounts' email addresses.
    #[schema(max_items = 100)]
    emails: Vec<String>,
}

#[utoipa::path(
    put,
    path = "/api/v1/apps/{client_id}/test-accounts",
    tag = "partner",
    operation_id = "app_test_accounts_set",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    request_body(content = TestAccountsBody, content_type = "application/json"),
    responses((status = 200, description = "the new list of test accounts", body = crate::partner::apps::TestAccounts), PartnerBodyErrors)
)]
pub(super) async fn app_test_accounts_set(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let (p, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    let b: TestAccountsBody = or_respond!(body_as(&headers, &body));
    ok(apps::set_test_accounts(&state.db, state.now(), &p.actor, &app, &b.emails).await)
}

#[utoipa::path(
    get,
    path = "/api/v1/apps/{client_id}/domain-verification",
    tag = "partner",
    operation_id = "app_domain_get",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    responses((status = 200, description = "the domain's challenge: where to publish which token", body = crate::partner::verification::DomainChallenge), PartnerErrors)
)]
pub(super) async fn app_domain_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (_, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(verification::domain_challenge(&state.db, &verifier(&state), &app).await)
}

#[utoipa::path(
    post,
    path = "/api/v1/apps/{client_id}/domain-verification",
    tag = "partner",
    operation_id = "app_domain_verify",
    security(("partnerKey" = [])),
    params(("client_id" = String, Path, description = "the app's client_id")),
    responses((status = 200, description = "the outcome of fetching the challenge", body = crate::partner::verification::DomainCheck), PartnerErrors)
)]
pub(super) async fn app_domain_verify(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let (p, app) = or_respond!(own_app(&state, &headers, &client_id).await);
    ok(
        verification::verify_domain(&state.db, &verifier(&state), state.now(), &p.actor, &app)
            .await,
    )
}
