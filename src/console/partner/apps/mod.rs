//! The apps part of the partner console: the list of the person's partners' apps (`/partner`),
//! a new app (`/partner/apps/new`, `POST /partner/apps`, its client secret shown once), an app's
//! overview (`/partner/apps/{client_id}`), editing its draft ([`edit`]), submitting it and
//! following its review ([`review`]) and the consent screen's preview ([`preview`]).
//!
//! Owners and developers both manage apps; another partner's app is the "not found" page
//! (`console::own_app`). Every action calls the partner program's service function with the
//! person as the actor (`Person::partner_actor`), which writes its audit entry.

pub mod draft_form;
mod edit;
mod preview;
mod review;

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};

use self::draft_form::{DraftForm, add_error, draft_of, step_state_words};
use super::AppHeader;
use crate::console::form::{Banner, FieldErrors, Form, refused_status};
use crate::console::pager::{Pager, page_param, paginate};
use crate::console::{Nav, Person, Section, member, own_app, own_partner, refusal};
use crate::error::AppError;
use crate::partner::access::{AccessState, Stage};
use crate::partner::apps::{self, NewPartnerApp};
use crate::partner::partners::Role;
use crate::partner::{AppDraft, Step};
use crate::startup::AppState;
use crate::store::apps::{App, ClientType};
use crate::store::reviews::{self, Review};
use crate::store::{apps as app_store, draft_versions};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/partner", get(list))
        .route("/partner/apps/new", get(new_get))
        .route("/partner/apps", post(create))
        .route("/partner/apps/{client_id}", get(overview))
        .route(
            "/partner/apps/{client_id}/edit",
            get(edit::edit_get).post(edit::edit_post),
        )
        .route("/partner/apps/{client_id}/submit", post(review::submit))
        .route("/partner/apps/{client_id}/review", get(review::review_get))
        .route(
            "/partner/apps/{client_id}/consent-preview",
            get(preview::consent_preview),
        )
}

/// A member of `query` (`?done=…`, `?page=…`), decoded.
pub(super) fn query_member(query: &Option<String>, name: &str) -> Option<String> {
    query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    })
}

/// The signed-in member and one of their partners' apps; else the page that refuses (sign in,
/// no access, not found).
pub(super) async fn member_app(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
    page: &str,
) -> Result<(Person, App, Role), Response> {
    let person = member(state, headers, page).await?;
    let (app, role) = own_app(state, &person, client_id).await?;
    Ok((person, app, role))
}

/// The app's draft and its version (an app registered by an operator has none: an empty one).
pub(super) async fn draft_of_app(state: &AppState, app: &App) -> Result<(AppDraft, i64), Response> {
    match draft_versions::current(&state.db, &app.client_id).await {
        Ok(Some((draft, version))) => Ok((draft.unwrap_or_default(), version)),
        Ok(None) => Err(AppError::internal(anyhow::anyhow!("the app vanished")).into_response()),
        Err(e) => Err(AppError::internal(e).into_response()),
    }
}

pub(super) async fn latest_review(state: &AppState, app: &App) -> Result<Option<Review>, Response> {
    reviews::latest(&state.db, &app.client_id)
        .await
        .map_err(|e| AppError::internal(e).into_response())
}

/// The page for a failure of the partner program that is not the person's doing.
pub(super) fn failed(e: crate::partner::program::ProgramError) -> Response {
    match e {
        crate::partner::program::ProgramError::Internal(cause) => {
            AppError::internal(cause).into_response()
        }
        other => {
            let (_, message, _) = refusal(&other);
            AppError::bad_request("This cannot be done", message).into_response()
        }
    }
}

/// "4 of 11 steps done", or that the app was never submitted.
pub(super) fn progress(review: Option<&Review>) -> String {
    match review {
        None => "Not submitted for review yet".into(),
        Some(r) => {
            let done = r.steps.iter().filter(|s| s.state.is_done()).count();
            let total = r.steps.len();
            let state = match r.state.as_str() {
                "approved" => " (review approved)",
                "rejected" => " (review rejected)",
                _ => "",
            };
            format!("{done} of {total} steps done{state}")
        }
    }
}

/// The stage in a sentence.
pub(super) fn stage_sentence(stage: Stage) -> &'static str {
    match stage {
        Stage::Draft => "Onyx has not approved the app yet, so it signs nobody in.",
        Stage::Preview => "The app signs in only the test accounts you list.",
        Stage::Production => "The app is live: anyone can sign in to it.",
    }
}

/// The access state in a sentence (the reason and Onyx's note follow it).
pub(super) fn access_sentence(access: AccessState) -> &'static str {
    match access {
        AccessState::Active => "Onyx does not limit this app.",
        AccessState::Limited => {
            "Some scopes are withdrawn from the app for now; the rest keep working."
        }
        AccessState::Suspended => {
            "Nothing works for the app now: no sign-in, no token, and its tokens are refused."
        }
    }
}

// ---- The list of apps -------------------------------------------------------------------

pub struct AppRow {
    pub client_id: String,
    pub name: String,
    pub stage: &'static str,
    pub stage_class: &'static str,
    pub access: &'static str,
    pub access_class: &'static str,
    pub access_reason: Option<&'static str>,
    pub progress: String,
}

pub struct PartnerApps {
    pub partner_id: String,
    pub name: String,
    pub owner: bool,
    /// Its apps on this page of the list.
    pub apps: Vec<AppRow>,
    /// All its apps.
    pub total: usize,
}

#[derive(Template)]
#[template(path = "console/partner/apps_list.html")]
pub struct ListPage {
    pub nav: Nav,
    pub partners: Vec<PartnerApps>,
    pub pager: Pager,
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let person = or_page!(member(&state, &headers, "/partner").await);
    let fail = |e: sqlx::Error| AppError::internal(e).into_response();
    // One list over every partner, so that a page holds at most 50 apps; each partner keeps
    // its heading and its links on every page.
    let mut all: Vec<(usize, App)> = Vec::new();
    let mut partners = Vec::new();
    for (i, m) in person.memberships.iter().enumerate() {
        let apps = match app_store::of_partner(&state.db, &m.partner_id).await {
            Ok(a) => a,
            Err(e) => return fail(e),
        };
        partners.push(PartnerApps {
            partner_id: m.partner_id.clone(),
            name: m.partner_name.clone(),
            owner: Role::parse(&m.role).ok() == Some(Role::Owner),
            apps: Vec::new(),
            total: apps.len(),
        });
        all.extend(apps.into_iter().map(|a| (i, a)));
    }
    let page = page_param(query_member(&query, "page").as_deref());
    let (shown, pager) = paginate(all, page, "/partner");
    for (i, app) in shown {
        let draft_name = match draft_versions::current(&state.db, &app.client_id).await {
            Ok(d) => d.and_then(|(d, _)| d).map(|d| d.name),
            Err(e) => return fail(e),
        };
        let review = match reviews::latest(&state.db, &app.client_id).await {
            Ok(r) => r,
            Err(e) => return fail(e),
        };
        let h = AppHeader::of(&app, draft_name.as_deref(), "overview");
        partners[i].apps.push(AppRow {
            client_id: h.client_id,
            name: h.name,
            stage: h.stage,
            stage_class: h.stage_class,
            access: h.access,
            access_class: h.access_class,
            access_reason: h.access_reason,
            progress: progress(review.as_ref()),
        });
    }
    person.render(
        StatusCode::OK,
        &ListPage {
            nav: person.nav(Section::Apps),
            partners,
            pager,
        },
    )
}

// ---- A new app --------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "console/partner/app_new.html")]
pub struct NewPage {
    pub nav: Nav,
    pub partner_id: String,
    pub partner_name: String,
    pub client_type: String,
    pub form: DraftForm,
    pub errors: FieldErrors,
    pub banner: Banner,
}

#[derive(Template)]
#[template(path = "console/partner/app_created.html")]
pub struct CreatedPage {
    pub nav: Nav,
    pub partner_name: String,
    pub client_id: String,
    pub name: String,
    pub public: bool,
    /// The client secret, shown this once.
    pub secret: Option<String>,
    /// How many problems the pre-checks found in the draft.
    pub findings: usize,
}

async fn new_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
) -> Response {
    let partner_id = query_member(&query, "partner").unwrap_or_default();
    let path = format!(
        "/partner/apps/new?partner={}",
        url::form_urlencoded::byte_serialize(partner_id.as_bytes()).collect::<String>()
    );
    let person = or_page!(member(&state, &headers, &path).await);
    // Without a partner named, the person's only partner (with several, the list links each).
    let partner_id = if partner_id.is_empty() && person.memberships.len() == 1 {
        person.memberships[0].partner_id.clone()
    } else {
        partner_id
    };
    let partner_name = match own_partner(&person, &partner_id) {
        Ok((m, _)) => m.partner_name.clone(),
        Err(r) => return r,
    };
    let page = NewPage {
        nav: person.nav(Section::Apps),
        partner_id,
        partner_name,
        client_type: "confidential".into(),
        form: DraftForm::of(&AppDraft::default(), None),
        errors: FieldErrors::new(),
        banner: Banner::default(),
    };
    person.render(StatusCode::OK, &page)
}

async fn create(State(state): State<AppState>, headers: HeaderMap, body: Bytes) -> Response {
    let person = or_page!(member(&state, &headers, "/partner").await);
    let form = or_page!(Form::checked(&state, &headers, &body));
    let partner_id = form.raw("partner_id").to_string();
    let partner_name = match own_partner(&person, &partner_id) {
        Ok((m, _)) => m.partner_name.clone(),
        Err(r) => return r,
    };
    let mut errors = FieldErrors::new();
    let client_type = match form.raw("client_type") {
        "confidential" => Some(ClientType::Confidential),
        "public" => Some(ClientType::Public),
        _ => {
            errors.add(
                "client_type",
                "Choose the kind of app: a server-side app that keeps a secret, or a public app.",
            );
            None
        }
    };
    let draft = draft_of(&form, &AppDraft::default());
    let mut status = StatusCode::BAD_REQUEST;
    let mut banner = Banner::default();
    if let Some(client_type) = client_type {
        let actor = person.partner_actor(&partner_id);
        let new = NewPartnerApp {
            client_type,
            draft: draft.clone(),
        };
        match apps::create_app(&state.db, state.now(), &actor, &partner_id, new).await {
            Ok(created) => {
                let findings = apps::run_prechecks(&state.db, &created.client_id, &created.draft)
                    .await
                    .map(|f| f.len())
                    .unwrap_or(0);
                let page = CreatedPage {
                    nav: person.nav(Section::Apps),
                    partner_name,
                    name: created.draft.name.clone(),
                    public: created.client_secret.is_none(),
                    client_id: created.client_id,
                    secret: created.client_secret,
                    findings,
                };
                let mut res = person.render(StatusCode::OK, &page);
                // The secret must stay in no cache or history.
                res.headers_mut()
                    .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                return res;
            }
            Err(e) => {
                let (s, message, field) = refusal(&e);
                status = refused_status(s);
                match field {
                    Some(f) => add_error(&mut errors, &f, &draft, message),
                    None => banner = Banner::refused(message),
                }
            }
        }
    }
    let page = NewPage {
        nav: person.nav(Section::Apps),
        partner_id,
        partner_name,
        client_type: form.raw("client_type").to_string(),
        form: DraftForm::typed(&form, None),
        errors,
        banner,
    };
    person.render(status, &page)
}

// ---- An app's overview ------------------------------------------------------------------

/// One line of "live and draft side by side".
pub struct Compared {
    pub field: &'static str,
    pub live: String,
    pub draft: String,
    pub changed: bool,
}

pub struct StepLine {
    pub title: &'static str,
    pub state: &'static str,
    pub class: &'static str,
}

#[derive(Template)]
#[template(path = "console/partner/app_overview.html")]
pub struct OverviewPage {
    pub nav: Nav,
    pub header: AppHeader,
    pub client_type: &'static str,
    pub stage_sentence: &'static str,
    pub access_sentence: &'static str,
    pub withdrawn: Vec<String>,
    pub progress: String,
    pub steps: Vec<StepLine>,
    pub draft_version: i64,
    pub compared: Vec<Compared>,
    pub live_yet: bool,
}

fn listed(list: &[String]) -> String {
    if list.is_empty() {
        "None".into()
    } else {
        list.join(", ")
    }
}

fn or_none(v: &str) -> String {
    if v.trim().is_empty() {
        "None".into()
    } else {
        v.to_string()
    }
}

/// The live configuration and the draft, field by field.
fn compare(app: &App, draft: &AppDraft) -> Vec<Compared> {
    let uris: Vec<String> = app.redirect_uris.iter().map(|u| u.to_string()).collect();
    let scopes: Vec<String> = app.scopes.iter().map(|s| s.to_string()).collect();
    let use_case = |key: &str| {
        crate::scopes::catalogue()
            .use_cases
            .get(key)
            .map_or_else(|| or_none(key), |u| u.label.clone())
    };
    let rows = [
        ("Name", or_none(&app.name), or_none(&draft.name)),
        (
            "Description",
            or_none(&app.description),
            or_none(&draft.description),
        ),
        (
            "Use case",
            use_case(app.use_case.as_deref().unwrap_or("")),
            use_case(&draft.use_case),
        ),
        (
            "Intended use",
            or_none(&app.consent.purpose),
            or_none(&draft.purpose),
        ),
        (
            "Consent copy",
            or_none(&app.consent.consent_copy),
            or_none(&draft.consent_copy),
        ),
        (
            "Domain",
            or_none(app.live_domain.as_deref().unwrap_or("")),
            or_none(draft.domain.as_deref().unwrap_or("")),
        ),
        ("Redirect URIs", listed(&uris), listed(&draft.redirect_uris)),
        (
            "Allowed origins",
            listed(&app.origins),
            listed(&draft.origins),
        ),
        ("Scopes", listed(&scopes), listed(&draft.scopes)),
        (
            "Webhook endpoints",
            listed(&app.webhooks),
            listed(&draft.webhooks),
        ),
        (
            "Support URL",
            or_none(app.support_url.as_deref().unwrap_or("")),
            or_none(draft.support_url.as_deref().unwrap_or("")),
        ),
    ];
    rows.into_iter()
        .map(|(field, live, draft)| Compared {
            field,
            changed: live != draft,
            live,
            draft,
        })
        .collect()
}

async fn overview(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let path = format!("/partner/apps/{client_id}");
    let (person, app, _) = or_page!(member_app(&state, &headers, &client_id, &path).await);
    let (draft, version) = or_page!(draft_of_app(&state, &app).await);
    let review = or_page!(latest_review(&state, &app).await);
    let steps = review
        .as_ref()
        .map(|r| {
            r.steps
                .iter()
                .map(|s| StepLine {
                    title: s.step.title(),
                    state: step_state_words(s.state),
                    class: draft_form::step_state_class(s.state),
                })
                .collect()
        })
        .unwrap_or_default();
    let page = OverviewPage {
        nav: person.nav(Section::Apps),
        header: AppHeader::of(&app, Some(&draft.name), "overview"),
        client_type: match app.client_type {
            ClientType::Confidential => "Confidential: a server-side app with a client secret",
            ClientType::Public => "Public: an app that cannot keep a secret (PKCE, no secret)",
        },
        stage_sentence: stage_sentence(app.stage),
        access_sentence: access_sentence(app.access),
        withdrawn: app.withdrawn.clone(),
        progress: progress(review.as_ref()),
        steps,
        draft_version: version,
        compared: compare(&app, &draft),
        live_yet: app.stage != Stage::Draft,
    };
    person.render(StatusCode::OK, &page)
}

/// The titles of `steps`, for "Saving this reopens: …".
pub(super) fn titles(steps: &[Step]) -> Vec<&'static str> {
    steps.iter().map(|s| s.title()).collect()
}
