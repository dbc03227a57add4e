//! What a partner or operator reads about an app: its live configuration, its draft with the
//! review, launch, capability and access views, and the partner's list of apps.

use super::*;

/// The configuration Onyx approved, which the OAuth endpoints use.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct LiveConfig {
    pub name: String,
    pub description: String,
    pub use_case: Option<String>,
    pub purpose: String,
    pub consent_copy: String,
    pub domain: Option<String>,
    pub redirect_uris: Vec<String>,
    pub origins: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub backchannel_logout_uri: Option<String>,
    pub backchannel_logout_session_required: bool,
    /// RFC 9449 §5.2: the app's access tokens are always DPoP-bound.
    pub dpop_bound_access_tokens: bool,
    /// The app's DPoP proofs must carry a server nonce (RFC 9449 §8).
    pub dpop_nonce_required: bool,
    /// The app must push its authorization requests (RFC 9126).
    pub require_pushed_authorization_requests: bool,
    /// The security profile the app is held to (`fapi2`), if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub profile: Option<crate::store::apps::Profile>,
    pub webhooks: Vec<String>,
    pub support_url: Option<String>,
    pub scopes: Vec<String>,
    pub optional_scopes: Vec<String>,
    pub pending_scopes: Vec<String>,
    pub grant_types: Vec<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DomainVerification {
    pub verified_domain: Option<String>,
    #[schema(value_type = Option<i64>)]
    pub verified_at: Option<Timestamp>,
}

/// Everything about an app a partner or operator reads.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppView {
    pub client_id: String,
    pub partner_id: Option<String>,
    pub client_type: &'static str,
    pub stage: Stage,
    pub trust_level: &'static str,
    pub access: AccessView,
    pub live: LiveConfig,
    pub draft: Option<AppDraft>,
    pub draft_version: Option<i64>,
    pub domain_verification: DomainVerification,
    pub capabilities: Vec<CapabilityView>,
    pub review: Option<ReviewView>,
    /// Operators only: the launch checklist, once the app was submitted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub launch_checklist: Option<LaunchView>,
}

pub async fn app_view(db: &Db, app: &App) -> Result<AppView> {
    let (draft, version) = draft_versions::current(db, &app.client_id)
        .await?
        .unwrap_or((None, 1));
    let review = reviews::latest(db, &app.client_id).await?;
    let access = access_view(db, app).await?;
    let logout = crate::store::logout::metadata(db, &app.client_id)
        .await?
        .unwrap_or_default();
    Ok(AppView {
        client_id: app.client_id.clone(),
        partner_id: app.partner_id.clone(),
        client_type: app.client_type.as_str(),
        stage: app.stage,
        trust_level: app.consent.trust_level.as_str(),
        access,
        live: LiveConfig {
            name: app.name.clone(),
            description: app.description.clone(),
            use_case: app.use_case.clone(),
            purpose: app.consent.purpose.clone(),
            consent_copy: app.consent.consent_copy.clone(),
            domain: app.live_domain.clone(),
            redirect_uris: app.redirect_uris.iter().map(|u| u.to_string()).collect(),
            origins: app.origins.clone(),
            post_logout_redirect_uris: logout.post_logout_redirect_uris,
            backchannel_logout_uri: logout.backchannel_logout_uri,
            backchannel_logout_session_required: logout.backchannel_logout_session_required,
            dpop_bound_access_tokens: app.dpop_bound,
            dpop_nonce_required: app.dpop_nonce_required,
            require_pushed_authorization_requests: app.require_par,
            profile: app.profile,
            webhooks: app.webhooks.clone(),
            support_url: app.support_url.clone(),
            scopes: app.scopes.iter().map(|s| s.to_string()).collect(),
            optional_scopes: app.consent.optional_scopes.clone(),
            pending_scopes: app.consent.pending_scopes.clone(),
            grant_types: app.grant_types.iter().map(|g| g.to_string()).collect(),
        },
        draft_version: draft.is_some().then_some(version),
        draft,
        domain_verification: DomainVerification {
            verified_domain: app.domain_verified.clone(),
            verified_at: app.domain_verified_at,
        },
        capabilities: capability_views(app),
        review: review.as_ref().map(|r| review_view_of(r, Some(version))),
        launch_checklist: None,
    })
}

/// One line of a partner's list of apps.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppSummary {
    pub client_id: String,
    pub name: String,
    pub stage: Stage,
    pub access_state: crate::partner::access::AccessState,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AppList {
    pub apps: Vec<AppSummary>,
}

pub async fn partner_apps(db: &Db, partner_id: &str) -> Result<AppList> {
    let list = apps::of_partner(db, partner_id).await?;
    Ok(AppList {
        apps: list
            .into_iter()
            .map(|a| AppSummary {
                client_id: a.client_id,
                name: a.name,
                stage: a.stage,
                access_state: a.access,
            })
            .collect(),
    })
}
