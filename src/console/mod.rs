//! The consoles: the partner console (`/partner`) and the review console (`/review`), pages of
//! onyx-id with the same sign-in and session as the account pages. Every page and every action
//! checks who is signed in and their role on the server, at each request, and calls the same
//! service functions of the partner program as the APIs (`crate::partner`): there is no second
//! implementation of any rule.
//!
//! - **Partner members** (`partner_members`): an owner manages members and API keys, and the
//!   apps; a developer manages the apps. Another partner's app is a 404, never a 403.
//! - **Operators** (`users.operator`, read at every request): the review console.
//! - A signed-in person with neither gets the "no access" page (403).
//!
//! What the pages share lives here: [`Person`] (who is signed in, their memberships and
//! whether they are an operator), the forms ([`form`]: CSRF-checked, with errors at the
//! field), pagination ([`pager`]) and the page wrapper with the console's navigation.

// A page's refusal is the page itself (`Err(Response)`), returned once per request: boxing it
// would only add an allocation.
#![allow(clippy::result_large_err)]

/// The value, or the page that refuses (an `Err(Response)`), returned from the handler.
macro_rules! or_page {
    ($e:expr) => {
        match $e {
            Ok(v) => v,
            Err(page) => return page,
        }
    };
}

pub mod actors;
pub mod form;
pub mod pager;
pub mod partner;
pub mod review;
pub mod team;

use askama::Template;
use axum::Router;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::error::AppError;
use crate::partner::partners::Role;
use crate::partner::program::ProgramError;
use crate::startup::AppState;
use crate::store::apps::App;
use crate::store::partners::{self, Membership};
use crate::store::sessions::Session;
use crate::store::users::{self, User};
use crate::web::{self, csrf, see_other, with_cookies};

/// The partner console, the review console and the partner's team pages.
pub fn router() -> Router<AppState> {
    Router::new()
        .merge(partner::router())
        .merge(review::router())
        .merge(team::router())
}

/// The signed-in person on a console page: their session, account, the partners they belong to
/// (with their role at each) and whether they are an operator, all read for this request.
pub struct Person {
    pub session: Session,
    pub user: User,
    pub memberships: Vec<Membership>,
    pub operator: bool,
    /// The browser's CSRF token, for the page's forms.
    pub csrf: String,
    /// A new CSRF cookie to set, when the browser had none.
    csrf_cookie: Option<String>,
}

impl Person {
    /// The person's role at `partner_id`, if they are a member.
    pub fn role_at(&self, partner_id: &str) -> Option<Role> {
        self.memberships
            .iter()
            .find(|m| m.partner_id == partner_id)
            .and_then(|m| Role::parse(&m.role).ok())
    }

    /// How the audit log names this person acting for `partner_id` in the console.
    pub fn partner_actor(&self, partner_id: &str) -> String {
        format!("partner:{partner_id}/user:{}", self.user.id)
    }

    /// How the audit log names this operator acting in the review console.
    pub fn operator_actor(&self) -> String {
        format!("operator:{}/console", self.user.id)
    }

    /// The navigation every console page shows, with `current` marked.
    pub fn nav(&self, current: Section) -> Nav {
        Nav {
            email: self.user.email.clone(),
            csrf: self.csrf.clone(),
            current,
            partner: !self.memberships.is_empty(),
            operator: self.operator,
        }
    }

    /// Renders `view` with `status` (and the CSRF cookie when it is new).
    pub fn render<T: Template>(&self, status: StatusCode, view: &T) -> Response {
        with_cookies(web::render(status, view), self.csrf_cookie.clone())
    }
}

/// The part of the consoles a page belongs to, for the navigation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Section {
    Apps,
    Team,
    Review,
    Audit,
    None,
}

/// What the console's header shows.
pub struct Nav {
    pub email: String,
    pub csrf: String,
    pub current: Section,
    /// Links to the partner console (the person is a member of a partner).
    pub partner: bool,
    /// Links to the review console (the person is an operator).
    pub operator: bool,
}

impl Nav {
    pub fn is(&self, section: &str) -> bool {
        matches!(
            (section, self.current),
            ("apps", Section::Apps)
                | ("team", Section::Team)
                | ("review", Section::Review)
                | ("audit", Section::Audit)
        )
    }
}

/// The console's message page: "no access", "not found", a refusal with a way back.
#[derive(Template)]
#[template(path = "console/message.html")]
pub struct MessagePage<'a> {
    pub nav: Nav,
    pub title: &'a str,
    pub message: &'a str,
    /// Where to go from here.
    pub back: Option<(&'a str, &'a str)>,
}

/// The signed-in person, or the response that sends the browser to sign in first and come back
/// to `page` (a path of the consoles).
pub async fn person(state: &AppState, headers: &HeaderMap, page: &str) -> Result<Person, Response> {
    let fail = |e: sqlx::Error| AppError::internal(e).into_response();
    let Some(session) = web::session::current(state, headers).await.map_err(fail)? else {
        return Err(see_other(&format!("/login?next={}", login_next(page))));
    };
    let Some(user) = users::by_id(&state.db, &session.user_id)
        .await
        .map_err(fail)?
    else {
        return Err(see_other(&format!("/login?next={}", login_next(page))));
    };
    let memberships = partners::memberships(&state.db, &user.id)
        .await
        .map_err(fail)?;
    let operator = partners::is_operator(&state.db, &user.id)
        .await
        .map_err(fail)?;
    let (csrf, csrf_cookie) = csrf::token(state, headers);
    Ok(Person {
        session,
        user,
        memberships,
        operator,
        csrf,
        csrf_cookie,
    })
}

/// `page` as the sign-in page accepts it in `next` (a console path; anything else is `/partner`).
fn login_next(page: &str) -> &str {
    let path = page.split('?').next().unwrap_or(page);
    match crate::web::login::safe_next(path) {
        Some(p) => p,
        None if path.starts_with("/review") => "/review",
        None => "/partner",
    }
}

/// The "no access" page (403): signed in, but without the role this page needs.
pub fn no_access(person: &Person, why: &str) -> Response {
    person.render(
        StatusCode::FORBIDDEN,
        &MessagePage {
            nav: person.nav(Section::None),
            title: "No access",
            message: why,
            back: Some(("/account/apps", "Go to your account")),
        },
    )
}

/// The "not found" page (404): also what a member of another partner sees for this partner's
/// things, so that nothing says whether they exist.
pub fn not_found(person: &Person) -> Response {
    person.render(
        StatusCode::NOT_FOUND,
        &MessagePage {
            nav: person.nav(Section::None),
            title: "Not found",
            message: "There is nothing here, or it is not one of your partner's.",
            back: Some(("/partner", "Go to your apps")),
        },
    )
}

/// A partner member, or the "no access" page for a person who belongs to no partner.
pub async fn member(state: &AppState, headers: &HeaderMap, page: &str) -> Result<Person, Response> {
    let p = person(state, headers, page).await?;
    if p.memberships.is_empty() {
        return Err(no_access(
            &p,
            "The partner console is for members of an Onyx partner. Your account is not a member of one; a partner's owner can add you.",
        ));
    }
    Ok(p)
}

/// An operator, or the "no access" page.
pub async fn operator(
    state: &AppState,
    headers: &HeaderMap,
    page: &str,
) -> Result<Person, Response> {
    let p = person(state, headers, page).await?;
    if !p.operator {
        return Err(no_access(
            &p,
            "The review console is for Onyx operators. Your account is not an operator.",
        ));
    }
    Ok(p)
}

/// An app of one of the person's partners, with their role there; any other app (another
/// partner's, an operator's, or none) is the "not found" page.
pub async fn own_app(
    state: &AppState,
    person: &Person,
    client_id: &str,
) -> Result<(App, Role), Response> {
    let app = match crate::store::apps::by_client_id(&state.db, client_id).await {
        Ok(Some(app)) => app,
        Ok(None) => return Err(not_found(person)),
        Err(e) => return Err(AppError::internal(e).into_response()),
    };
    match app.partner_id.as_deref().and_then(|p| person.role_at(p)) {
        Some(role) => Ok((app, role)),
        None => Err(not_found(person)),
    }
}

/// A partner the person belongs to, with their role there, or the "not found" page.
pub fn own_partner<'a>(
    person: &'a Person,
    partner_id: &str,
) -> Result<(&'a Membership, Role), Response> {
    person
        .memberships
        .iter()
        .find(|m| m.partner_id == partner_id)
        .and_then(|m| Role::parse(&m.role).ok().map(|r| (m, r)))
        .ok_or_else(|| not_found(person))
}

/// A refusal of the partner program in words for a page: the message as a sentence, and the
/// form field it concerns, if it names one.
pub fn refusal(e: &ProgramError) -> (StatusCode, String, Option<String>) {
    match e {
        ProgramError::Invalid { message, extra, .. } => (
            StatusCode::BAD_REQUEST,
            sentence(message),
            extra
                .get("field")
                .and_then(|f| f.as_str())
                .map(String::from),
        ),
        ProgramError::Conflict { message, extra, .. } => (
            StatusCode::CONFLICT,
            sentence(message),
            extra
                .get("field")
                .and_then(|f| f.as_str())
                .map(String::from),
        ),
        ProgramError::NotFound(what) => (
            StatusCode::NOT_FOUND,
            format!("There is no such {what}."),
            None,
        ),
        ProgramError::Internal(e) => {
            tracing::error!(error = ?e, "a console action failed");
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                "Something went wrong on our side. Nothing was changed; try again.".into(),
                None,
            )
        }
    }
}

/// `message` as a sentence: a capital first letter and a full stop.
pub fn sentence(message: &str) -> String {
    let mut chars = message.trim().chars();
    let mut s = match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect::<String>(),
        None => return String::new(),
    };
    if !s.ends_with(['.', '!', '?']) {
        s.push('.');
    }
    s
}

/// "23 November 2026, 14:05 UTC".
pub fn date_time(ts: i64) -> String {
    crate::web::account::date_time(ts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_message_of_the_program_reads_as_a_sentence() {
        assert_eq!(
            sentence("the domain is not verified"),
            "The domain is not verified."
        );
        assert_eq!(sentence("Done."), "Done.");
        assert_eq!(sentence("  "), "");
    }
}
