//! The client secret (`/partner/apps/{client_id}/secret`): whether the app has one and whether
//! a previous one is still accepted (until when), and rotation (`secrets::rotate_secret`): the
//! new secret is shown once, on the answer to the rotation, with the window in which the old
//! one still works.

use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;

use super::{AppPage, no_store, time_left};
use crate::console::form::{Banner, FieldErrors, Form, refused_status};
use crate::console::partner::AppHeader;
use crate::console::{Nav, Section, date_time, refusal};
use crate::partner::secrets::{self, MAX_SECRET_OVERLAP};
use crate::startup::AppState;
use crate::store::apps::AuthMethod;

pub fn router() -> Router<AppState> {
    Router::new().route(
        "/partner/apps/{client_id}/secret",
        get(secret_get).post(secret_rotate),
    )
}

/// The overlaps the form offers, in seconds, with their words; a day is the default.
pub const OVERLAPS: [(i64, &str); 5] = [
    (0, "No overlap: the old secret stops working at once"),
    (3600, "1 hour"),
    (24 * 3600, "1 day"),
    (7 * 24 * 3600, "7 days"),
    (MAX_SECRET_OVERLAP, "30 days (the longest)"),
];

/// A secret just made: shown this once.
pub struct NewSecret {
    pub secret: String,
    /// Until when the old secret still works: in words, and as a date.
    pub old_works_for: String,
    pub old_until: String,
    pub overlap: bool,
}

#[derive(Template)]
#[template(path = "console/partner/secret.html")]
pub struct SecretPage {
    pub nav: Nav,
    pub header: AppHeader,
    pub banner: Banner,
    pub errors: FieldErrors,
    /// How the app authenticates: `secret`, `key` or `public`.
    pub kind: &'static str,
    /// A previous secret still accepted: for how long, and until when.
    pub previous: Option<(String, String)>,
    pub created: Option<NewSecret>,
    pub overlaps: Vec<(i64, &'static str)>,
    pub overlap: i64,
}

fn path_of(client_id: &str) -> String {
    format!("/partner/apps/{client_id}/secret")
}

fn render(
    state: &AppState,
    p: &AppPage,
    status: StatusCode,
    banner: Banner,
    errors: FieldErrors,
    created: Option<NewSecret>,
    overlap: i64,
) -> Response {
    let now = state.now();
    let kind = match p.app.auth_method {
        AuthMethod::ClientSecret => "secret",
        AuthMethod::PrivateKeyJwt => "key",
        AuthMethod::None => "public",
    };
    let previous = match (created.is_some(), p.app.previous_secret_expires_at) {
        (false, Some(until)) if until > now && p.app.previous_secret_hash.is_some() => {
            Some((time_left(now, until), date_time(until)))
        }
        _ => None,
    };
    p.person.render(
        status,
        &SecretPage {
            nav: p.person.nav(Section::Apps),
            header: p.header("secret"),
            banner,
            errors,
            kind,
            previous,
            created,
            overlaps: OVERLAPS.to_vec(),
            overlap,
        },
    )
}

async fn secret_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
) -> Response {
    let p = or_page!(AppPage::open(&state, &headers, &client_id, &path_of(&client_id)).await);
    let default = OVERLAPS[2].0;
    render(
        &state,
        &p,
        StatusCode::OK,
        Banner::default(),
        FieldErrors::new(),
        None,
        default,
    )
}

async fn secret_rotate(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let p = or_page!(AppPage::open(&state, &headers, &client_id, &path_of(&client_id)).await);
    let form = or_page!(Form::checked(&state, &headers, &body));
    let default = OVERLAPS[2].0;
    let overlap = match form.text("overlap_seconds") {
        None => default,
        Some(raw) => match raw.parse::<i64>() {
            Ok(s) if OVERLAPS.iter().any(|(o, _)| *o == s) => s,
            _ => {
                let mut errors = FieldErrors::new();
                errors.add(
                    "overlap_seconds",
                    "Choose how long the old secret keeps working from the list.",
                );
                let status = StatusCode::BAD_REQUEST;
                return render(&state, &p, status, Banner::default(), errors, None, default);
            }
        },
    };
    let now = state.now();
    let actor = p.actor();
    match secrets::rotate_secret(&state.db, now, &actor, &p.app, Some(overlap)).await {
        Ok(rotated) => {
            let until = rotated.previous_secret_valid_until;
            let created = NewSecret {
                secret: rotated.client_secret,
                old_works_for: time_left(now, until),
                old_until: date_time(until),
                overlap: until > now,
            };
            let banner = Banner::done(
                "The app has a new client secret. Copy it now: it is shown only this once.",
            );
            let res = render(
                &state,
                &p,
                StatusCode::OK,
                banner,
                FieldErrors::new(),
                Some(created),
                overlap,
            );
            no_store(res)
        }
        Err(e) => {
            let (s, message, _) = refusal(&e);
            let errors = FieldErrors::new();
            let banner = Banner::refused(message);
            render(&state, &p, refused_status(s), banner, errors, None, overlap)
        }
    }
}
