//! Connected apps (`/account/apps`): every app the signed-in user has answered, with each
//! permission's state, reason and expiry, when the app last used it, the permission history, and
//! Remove buttons for the whole app or one permission. A removal takes effect at once. Each
//! connected app also has "Sign out of this app" (`POST /account/apps/sign-out`), apart from
//! Remove.
//!
//! Also what every account page shares: the signed-in [`Account`], the way to sign-in, dates.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::views::{AccountAppsPage, AccountNav, ConnectedAppView, HistoryView, PermissionView};
use super::{csrf, render, see_other, with_cookies};
use crate::consent::{self, Reason, State as PermissionState};
use crate::error::AppError;
use crate::oauth::params::Params;
use crate::scopes::catalogue;
use crate::startup::AppState;
use crate::store::grants::{self, Actor, Grant};
use crate::store::sessions::Session;
use crate::store::users::User;
use crate::store::{apps, users};

const PAGE: &str = "/account/apps";

/// "23 November 2026, 14:05 UTC".
pub(crate) fn date_time(ts: i64) -> String {
    match time::OffsetDateTime::from_unix_timestamp(ts) {
        Ok(t) => format!(
            "{} {} {}, {:02}:{:02} UTC",
            t.day(),
            t.month(),
            t.year(),
            t.hour(),
            t.minute()
        ),
        Err(_) => ts.to_string(),
    }
}

fn label(scope: &str) -> String {
    catalogue()
        .get(scope)
        .map(|s| s.label.clone())
        .unwrap_or_else(|| scope.to_string())
}

fn actor_words(actor: &str) -> &'static str {
    match actor {
        "user" => "you",
        "app" => "the app",
        "partner" => "the app's company",
        _ => "Onyx",
    }
}

fn state_label(raw: &str) -> &'static str {
    PermissionState::parse(raw).map_or("Unknown", PermissionState::label)
}

/// The person signed in to the account pages, and their session.
pub(super) struct Account {
    pub session: Session,
    pub user: User,
}

/// The signed-in person, if any.
pub(super) async fn signed_in(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Account>, AppError> {
    let Some(session) = super::session::current(state, headers).await? else {
        return Ok(None);
    };
    Ok(users::by_id(&state.db, &session.user_id)
        .await?
        .map(|user| Account { session, user }))
}

/// Sign in, then come back to `page`.
pub(super) fn to_login(page: &str) -> Response {
    see_other(&format!("/login?next={page}"))
}

async fn app_view(
    state: &AppState,
    user: &User,
    grant: &Grant,
    now: i64,
) -> Result<Option<ConnectedAppView>, AppError> {
    let Some(app) = apps::by_client_id(&state.db, &grant.client_id).await? else {
        return Ok(None);
    };
    let views = grants::views(&state.db, &grant.id, &app.facts(), &user.facts(), now).await?;
    let connected = grant.is_active();
    let summary = consent::GrantState::of(connected, &views).label();
    let history = grants::history(&state.db, &user.id, Some(&grant.client_id))
        .await?
        .into_iter()
        .rev()
        .map(|h| HistoryView {
            when: date_time(h.at),
            label: label(&h.scope),
            change: match &h.old_state {
                // A question that changed nothing (the app asked again).
                Some(old)
                    if *old == h.new_state && h.reason.as_deref() == Some("awaiting_decision") =>
                {
                    format!("Asked again; still {}", state_label(old).to_lowercase())
                }
                Some(old) => format!("{} → {}", state_label(old), state_label(&h.new_state)),
                None => state_label(&h.new_state).to_string(),
            },
            reason: h
                .reason
                .as_deref()
                .and_then(Reason::parse)
                .map(Reason::sentence),
            actor: actor_words(&h.actor),
        })
        .collect();
    Ok(Some(ConnectedAppView {
        client_id: app.client_id.clone(),
        name: app.name.clone(),
        domain: app.consent.domain.clone(),
        purpose: app.consent.purpose.clone(),
        summary,
        connected,
        since: date_time(grant.created_at),
        last_used: grant.last_used_at.map(date_time),
        permissions: views
            .iter()
            .map(|v| PermissionView {
                scope: v.scope.clone(),
                label: label(&v.scope),
                state: v.state.as_str(),
                state_label: v.state.label(),
                reason: v.description,
                expiry: v.expires_at.map(date_time),
                // Sign-in itself goes with the whole app ("Remove all access").
                revocable: connected
                    && v.scope != "openid"
                    && matches!(
                        v.state,
                        PermissionState::Granted
                            | PermissionState::Limited
                            | PermissionState::Requested
                    ),
            })
            .collect(),
        history,
    }))
}

/// The count `name` in a page's query (`?ended=2`), which the account pages' POSTs send back
/// with their 303 so the page can say what happened.
pub fn count_in_query(query: Option<&str>, name: &str) -> Option<u32> {
    url::form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(k, _)| k == name)
        .and_then(|(_, v)| v.parse::<u32>().ok())
}

pub async fn apps_get(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Some(Account { user, .. }) = signed_in(&state, &headers).await? else {
        return Ok(to_login(PAGE));
    };
    let now = state.now();
    // One entry per app: its current grant, or its latest ended one.
    let mut seen: Vec<String> = Vec::new();
    let (mut connected, mut ended) = (Vec::new(), Vec::new());
    let mut all = grants::of_user(&state.db, &user.id).await?;
    all.sort_by_key(|g| (!g.is_active(), -g.created_at));
    for grant in &all {
        if seen.contains(&grant.client_id) {
            continue;
        }
        seen.push(grant.client_id.clone());
        if let Some(view) = app_view(&state, &user, grant, now).await? {
            if view.connected {
                connected.push(view);
            } else {
                ended.push(view);
            }
        }
    }
    let (token, set) = csrf::token(&state, &headers);
    let page = AccountAppsPage {
        nav: AccountNav {
            current: "apps",
            csrf: &token,
            email: &user.email,
        },
        csrf: &token,
        connected,
        ended,
    };
    Ok(with_cookies(render(StatusCode::OK, &page), set))
}

/// `POST /account/apps/revoke`: `client_id`, and `scope` to remove one permission (else all).
pub async fn revoke_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, AppError> {
    let form = Params::parse(&body)
        .map_err(|e| AppError::bad_request("Cannot remove access", e.description))?;
    csrf::require(&state, &headers, form.get("csrf_token"))?;
    let Some(Account { user, .. }) = signed_in(&state, &headers).await? else {
        return Ok(to_login(PAGE));
    };
    let client_id = form.get("client_id").unwrap_or_default();
    // Only the signed-in user's own grants can be found here.
    let Some(grant) = grants::current(&state.db, &user.id, client_id).await? else {
        return Err(AppError::not_found(
            "No such connected app",
            "This app is not connected to your account (any more).",
        ));
    };
    let scopes: Vec<String> = form
        .get("scope")
        .map(|s| vec![s.to_string()])
        .unwrap_or_default();
    if let Some(s) = scopes.first() {
        let perms = grants::permissions(&state.db, &grant.id).await?;
        if !perms.iter().any(|p| &p.scope == s) {
            return Err(AppError::bad_request(
                "Cannot remove access",
                "This app has no such permission on your account.",
            ));
        }
    }
    let ended = grants::revoke(
        &state.db,
        &grant.id,
        &scopes,
        Reason::RevokedByUser,
        Actor::User,
        state.now(),
    )
    .await?;
    tracing::info!(user_id = %user.id, client_id = %client_id, scope = ?scopes, ended, "access removed by the user");
    Ok(see_other(PAGE))
}
