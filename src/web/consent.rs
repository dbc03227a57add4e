//! The consent page (`/consent`): what the app asks for, in the catalogue's plain words, with
//! Allow and Decline.
//!
//! Showing the page changes nothing the person granted: a scope asked for the first time is
//! recorded as `requested`, a scope already granted stays granted (the question is noted in the
//! history), and only the answer changes permissions. The answer grants exactly what the page
//! showed: a digest of it is bound into the form, and when anything changed in between, the page
//! is shown again instead.

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use serde::Deserialize;

use super::views::{ConsentPage, ScopeGroup, ScopeView, UnavailableView};
use super::{csrf, render, see_other, with_cookies};
use crate::consent::{self, Classified, Reason};
use crate::error::AppError;
use crate::oauth::authorize::{
    AuthorizationRequest, error_redirect, finish_with_code, load_request, session_satisfies,
    unavailable_changes,
};
use crate::oauth::error::ErrorCode;
use crate::oauth::params::Params;
use crate::oauth::redirect::with_query;
use crate::ops::metrics::ConsentDecision;
use crate::scopes::{Scope, ScopeInfo, catalogue};
use crate::startup::AppState;
use crate::store::apps::App;
use crate::store::grants::Permission;
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::store::{grants, users};

#[derive(Deserialize)]
pub struct ConsentQuery {
    request_id: Option<String>,
}

fn missing_request() -> AppError {
    AppError::bad_request(
        "Start from the app",
        "There is no access request to answer here. Start from the app you want to use.",
    )
}

/// "23 December 2026" (UTC), for expiry lines.
pub fn date(ts: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ts) {
        Ok(t) => format!("{} {} {}", t.day(), t.month(), t.year()),
        Err(_) => ts.to_string(),
    }
}

/// A scope asked for the first time and not granted: requested while the question is open, or
/// denied once the person declined it. Neither expires.
fn undecided(scope: &str, state: consent::State, reason: Reason) -> grants::Change {
    grants::Change {
        scope: scope.to_string(),
        state,
        reason: Some(reason),
        expires_at: None,
    }
}

fn view(scope: &ScopeInfo, app: &App, expiry: Option<i64>) -> ScopeView {
    ScopeView {
        name: scope.name.clone(),
        label: scope.label.clone(),
        description: scope.description.clone(),
        optional: app.is_optional(&scope.name),
        expiry: expiry.map(date),
    }
}

/// Scopes grouped by category, in request order.
pub(crate) fn groups(scopes: Vec<ScopeView>) -> Vec<ScopeGroup> {
    let mut out: Vec<ScopeGroup> = Vec::new();
    for view in scopes {
        let key = catalogue()
            .get(&view.name)
            .map(|s| s.category.clone())
            .unwrap_or_default();
        let category = catalogue().category_label(&key).to_string();
        match out.iter_mut().find(|g| g.category == category) {
            Some(g) => g.scopes.push(view),
            None => out.push(ScopeGroup {
                category,
                scopes: vec![view],
            }),
        }
    }
    out
}

/// Where the request's scopes stand for this user now (see `consent::classify`).
struct Situation {
    user: User,
    sorted: Classified,
    copy_changed: bool,
    /// The user's current grant to the app, as stored.
    perms: Vec<Permission>,
}

impl Situation {
    /// Whether the scope is stored as granted: a question or an unavailability found now does
    /// not overwrite that (its effective state already says what the app may do).
    fn stored_granted(&self, scope: &str) -> bool {
        self.perms
            .iter()
            .any(|p| p.scope == scope && p.stored.state == consent::State::Granted)
    }

    /// What is recorded about the unavailable scopes, leaving granted ones as they are.
    fn unavailable_changes(&self) -> Vec<grants::Change> {
        unavailable_changes(&self.sorted)
            .into_iter()
            .filter(|c| !self.stored_granted(&c.scope))
            .collect()
    }
}

async fn situation(
    state: &AppState,
    app: &App,
    req: &AuthorizationRequest,
    user_id: &str,
) -> Result<Option<Situation>, AppError> {
    let Some(user) = users::by_id(&state.db, user_id).await? else {
        return Ok(None);
    };
    let grant = grants::current(&state.db, &user.id, &app.client_id).await?;
    let perms = match &grant {
        Some(g) => grants::permissions(&state.db, &g.id).await?,
        None => Vec::new(),
    };
    let copy_changed = grant
        .as_ref()
        .is_some_and(|g| g.copy_version != app.copy_version());
    let sorted = consent::classify(
        req.scopes.iter().map(|s| s.info()),
        |name| perms.iter().find(|p| p.scope == name).map(|p| &p.stored),
        req.prompt.consent || copy_changed,
        &app.facts(),
        &user.facts(),
        state.now(),
    );
    Ok(Some(Situation {
        user,
        sorted,
        copy_changed,
        perms,
    }))
}

/// A digest of everything the page shows that the answer depends on: the app's name, verified
/// domain and consent copy version, and each scope as asked (required or optional), already
/// granted or unavailable (with why). It is bound to the request and the browser's CSRF token.
fn shown_digest(request_id: &str, csrf: &str, app: &App, sorted: &Classified) -> String {
    let mut text = format!(
        "{request_id}\0{csrf}\0{}\0{}\0{}\0asked",
        app.name,
        app.consent.domain.as_deref().unwrap_or(""),
        app.copy_version()
    );
    for s in &sorted.asked {
        let kind = if app.is_optional(&s.name) {
            "optional"
        } else {
            "required"
        };
        text.push_str(&format!("\0{}={kind}", s.name));
    }
    text.push_str("\0granted");
    for s in &sorted.granted {
        text.push_str(&format!("\0{}", s.name));
    }
    text.push_str("\0unavailable");
    for (s, r) in &sorted.unavailable {
        text.push_str(&format!("\0{}={}", s.name, r.as_str()));
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(crate::crypto::sha256(text.as_bytes()))
}

const CHANGED_NOTICE: &str = "Something about this request changed since the page was shown. Nothing was allowed yet: check it again, then answer.";

/// The consent page for `situation`, with its digest in the form.
fn page(
    state: &AppState,
    headers: &HeaderMap,
    req: &AuthorizationRequest,
    app: &App,
    request_id: &str,
    situation: &Situation,
    notice: Option<&str>,
) -> Response {
    let now = state.now();
    let Situation {
        user,
        sorted,
        copy_changed,
        ..
    } = situation;
    let (facts, user_facts) = (app.facts(), user.facts());
    let asked: Vec<ScopeView> = sorted
        .asked
        .iter()
        .map(|s| view(s, app, consent::expires_at(s, &facts, &user_facts, now)))
        .collect();
    let app_host = url::Url::parse(&req.redirect_uri)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_else(|| req.redirect_uri.clone());
    let (token, set) = csrf::token(state, headers);
    let shown = shown_digest(request_id, &token, app, sorted);
    let page = ConsentPage {
        app_name: &app.name,
        app_host: &app_host,
        app_domain: app.consent.domain.as_deref(),
        purpose: &app.consent.purpose,
        consent_copy: &app.consent.consent_copy,
        copy_changed: *copy_changed,
        notice,
        user_email: &user.email,
        request_id,
        csrf: &token,
        shown: &shown,
        common_expiry: match asked.first().map(|v| &v.expiry) {
            Some(Some(first)) if asked.iter().all(|v| v.expiry.as_ref() == Some(first)) => {
                Some(first.clone())
            }
            _ => None,
        },
        groups: groups(asked),
        unavailable: sorted
            .unavailable
            .iter()
            .map(|(s, r)| UnavailableView {
                label: s.label.clone(),
                reason: r.sentence(),
            })
            .collect(),
        already_granted: sorted.granted.iter().map(|s| view(s, app, None)).collect(),
        preview: None,
    };
    with_cookies(render(StatusCode::OK, &page), set)
}

/// A stored request open on this page, with the session that may answer it.
struct Open {
    req: AuthorizationRequest,
    app: App,
    session: Session,
    situation: Situation,
}

/// Loads the request `request_id` and the browser's session; `Err` is where to send the person
/// first: to sign in when there is no session or it does not satisfy the request, for
/// `prompt=login` and `max_age` hold on this page as at `/authorize`.
async fn open(
    state: &AppState,
    headers: &HeaderMap,
    request_id: &str,
) -> Result<Result<Open, Response>, AppError> {
    let (req, created_at, app) = load_request(state, request_id).await?;
    let to_login = || see_other(&with_query("/login", &[("request_id", request_id)]));
    let session = super::session::current(state, headers)
        .await?
        .filter(|s| session_satisfies(&req, created_at, s.auth_time, state.now()));
    let Some(session) = session else {
        return Ok(Err(to_login()));
    };
    let Some(situation) = situation(state, &app, &req, &session.user_id).await? else {
        return Ok(Err(to_login()));
    };
    Ok(Ok(Open {
        req,
        app,
        session,
        situation,
    }))
}

pub async fn consent_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<ConsentQuery>,
) -> Result<Response, AppError> {
    let request_id = q.request_id.ok_or_else(missing_request)?;
    let Open {
        req,
        app,
        situation,
        ..
    } = match open(&state, &headers, &request_id).await? {
        Ok(open) => open,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let now = state.now();
    // The open question: a scope not granted yet becomes `requested`, what cannot be granted is
    // recorded as unavailable (with why), and a scope granted before stays granted.
    let mut changes = situation.unavailable_changes();
    let mut reasked = Vec::new();
    for s in &situation.sorted.asked {
        if situation.stored_granted(&s.name) {
            reasked.push(s.name.clone());
        } else {
            changes.push(undecided(
                &s.name,
                consent::State::Requested,
                Reason::AwaitingDecision,
            ));
        }
    }
    if !situation.sorted.asked.is_empty() {
        grants::record_question(
            &state.db,
            &situation.user.id,
            &app.client_id,
            &changes,
            &reasked,
            now,
        )
        .await?;
    }
    Ok(page(
        &state,
        &headers,
        &req,
        &app,
        &request_id,
        &situation,
        None,
    ))
}

pub async fn consent_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let form = Params::parse(&body)
        .map_err(|e| AppError::bad_request("Cannot record your answer", e.description))?;
    let request_id = form
        .get("request_id")
        .ok_or_else(missing_request)?
        .to_string();
    csrf::require(&state, &headers, form.get("csrf_token"))?;
    let Open {
        req,
        app,
        session,
        situation,
    } = match open(&state, &headers, &request_id).await? {
        Ok(open) => open,
        Err(elsewhere) => return Ok(elsewhere),
    };
    let user = &situation.user;
    if let Some(why) = crate::oauth::authorize::preview_refusal(&state, &app, &user.email).await? {
        crate::store::auth_requests::take(&state.db, &request_id).await?;
        return Ok(error_redirect(
            &state,
            &req.redirect_uri,
            req.state.as_deref(),
            ErrorCode::AccessDenied,
            &why,
        ));
    }
    // The answer is to the page that was shown: if what it would show now differs, show it again.
    let csrf_token = form.get("csrf_token").unwrap_or_default();
    let expected = shown_digest(&request_id, csrf_token, &app, &situation.sorted);
    let shown_matches = form
        .get("shown")
        .is_some_and(|s| crate::crypto::ct_eq(s.as_bytes(), expected.as_bytes()));
    if !shown_matches {
        tracing::info!(client_id = %app.client_id, "consent request changed since it was shown: shown again");
        return Ok(page(
            &state,
            &headers,
            &req,
            &app,
            &request_id,
            &situation,
            Some(CHANGED_NOTICE),
        ));
    }
    let now = state.now();
    let version = app.copy_version();
    let sorted = &situation.sorted;
    match form.get("decision") {
        Some("approve") => {
            // Required scopes are granted with the approval; optional ones only when ticked.
            let (facts, user_facts) = (app.facts(), user.facts());
            let mut changes = situation.unavailable_changes();
            let mut granted: Vec<&str> = sorted.granted.iter().map(|s| s.name.as_str()).collect();
            for s in &sorted.asked {
                let ticked = form.get(&format!("scope:{}", s.name)).is_some();
                if !app.is_optional(&s.name) || ticked {
                    granted.push(&s.name);
                    changes.push(grants::Change {
                        scope: s.name.clone(),
                        state: consent::State::Granted,
                        reason: None,
                        expires_at: consent::expires_at(s, &facts, &user_facts, now),
                    });
                } else {
                    changes.push(undecided(
                        &s.name,
                        consent::State::Denied,
                        Reason::UserDeclined,
                    ));
                }
            }
            let grant_id = grants::record(
                &state.db,
                &user.id,
                &app.client_id,
                &changes,
                grants::Actor::User,
                Some(&version),
                now,
            )
            .await?;
            // Request order, granted ones only.
            let scope = req
                .scopes
                .iter()
                .map(Scope::as_str)
                .filter(|s| granted.contains(s))
                .collect::<Vec<_>>()
                .join(" ");
            tracing::info!(user_id = %user.id, client_id = %app.client_id, %scope, "consent approved");
            let left_out = sorted
                .asked
                .iter()
                .any(|s| !granted.contains(&s.name.as_str()));
            state.metrics.consent_decision(if scope.is_empty() {
                ConsentDecision::Declined
            } else if left_out {
                ConsentDecision::Partial
            } else {
                ConsentDecision::Approved
            });
            if scope.is_empty() {
                crate::store::auth_requests::take(&state.db, &request_id).await?;
                return Ok(error_redirect(
                    &state,
                    &req.redirect_uri,
                    req.state.as_deref(),
                    ErrorCode::AccessDenied,
                    "the user allowed none of the requested scopes",
                ));
            }
            Ok(finish_with_code(
                &state,
                &req,
                Some(&request_id),
                &user.id,
                &grant_id,
                (session.auth_time, &session.sid),
                &scope,
            )
            .await)
        }
        Some("deny") => {
            if !crate::store::auth_requests::take(&state.db, &request_id).await? {
                return Err(AppError::bad_request(
                    "Already answered",
                    "This request was already answered. Go back to the app and start again.",
                ));
            }
            // Declining answers this request: what was asked for the first time is denied, and
            // what the person granted before stays as it was (removing it is done on Connected
            // apps). The copy version is then recorded only when nothing granted remains under
            // the old one, so a changed copy is asked again next time.
            let mut changes = situation.unavailable_changes();
            changes.extend(
                sorted
                    .asked
                    .iter()
                    .filter(|s| !situation.stored_granted(&s.name))
                    .map(|s| undecided(&s.name, consent::State::Denied, Reason::UserDeclined)),
            );
            let keeps_grants = situation
                .perms
                .iter()
                .any(|p| p.stored.state == consent::State::Granted);
            grants::record(
                &state.db,
                &user.id,
                &app.client_id,
                &changes,
                grants::Actor::User,
                (!keeps_grants).then_some(version.as_str()),
                now,
            )
            .await?;
            tracing::info!(user_id = %user.id, client_id = %app.client_id, "consent declined");
            state.metrics.consent_decision(ConsentDecision::Declined);
            Ok(error_redirect(
                &state,
                &req.redirect_uri,
                req.state.as_deref(),
                ErrorCode::AccessDenied,
                "the user declined the request",
            ))
        }
        _ => Err(AppError::bad_request(
            "Cannot record your answer",
            "Choose Allow or Decline.",
        )),
    }
}
