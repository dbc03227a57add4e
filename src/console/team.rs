//! A partner's team, for its owners: members (`/partner/team/{partner_id}/members`: add by
//! email, set the role, remove; never the last owner) and API keys
//! (`/partner/team/{partner_id}/keys`: create, shown once; revoke). A developer of the partner
//! gets the "no access" page; anyone else the "not found" page. Each action calls the partner
//! program's service function, which writes its audit entry with the person as the actor.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Router, routing::MethodRouter};

use super::form::{Banner, FieldErrors, Form, refused_status};
use super::pager::{Pager, page_param, paginate};
use super::{Nav, Person, Section, date_time, member, no_access, own_partner, refusal};
use crate::error::AppError;
use crate::partner::partners::{self as service, Role};
use crate::startup::AppState;
use crate::store::partners::{self, KeyInfo, Member};
use crate::web::see_other;

pub fn router() -> Router<AppState> {
    let members: MethodRouter<AppState> = get(members_get).post(member_add);
    Router::new()
        .route("/partner/team/{partner_id}/members", members)
        .route(
            "/partner/team/{partner_id}/members/{user_id}/role",
            post(member_role),
        )
        .route(
            "/partner/team/{partner_id}/members/{user_id}/remove",
            post(member_remove),
        )
        .route(
            "/partner/team/{partner_id}/keys",
            get(keys_get).post(key_create),
        )
        .route(
            "/partner/team/{partner_id}/keys/{key_id}/revoke",
            post(key_revoke),
        )
}

/// A member as the members page lists them.
pub struct MemberRow {
    pub user_id: String,
    pub email: String,
    pub role: &'static str,
    pub since: String,
    pub is_you: bool,
}

#[derive(Template)]
#[template(path = "console/team_members.html")]
pub struct MembersPage {
    pub nav: Nav,
    pub partner_id: String,
    pub partner_name: String,
    pub members: Vec<MemberRow>,
    pub pager: Pager,
    pub banner: Banner,
    pub errors: FieldErrors,
    /// What was typed in the add form.
    pub email: String,
    pub role: String,
}

/// A key as the keys page lists it.
pub struct KeyRow {
    pub id: String,
    pub name: String,
    pub created: String,
    pub last_used: String,
    pub revoked: Option<String>,
}

#[derive(Template)]
#[template(path = "console/team_keys.html")]
pub struct KeysPage {
    pub nav: Nav,
    pub partner_id: String,
    pub partner_name: String,
    pub keys: Vec<KeyRow>,
    pub pager: Pager,
    pub banner: Banner,
    pub errors: FieldErrors,
    pub name: String,
    /// A key just created: its name and text, shown this once.
    pub created: Option<(String, String)>,
}

/// The owner of `partner_id` signed in, with the partner's name; else the page that refuses.
async fn owner(
    state: &AppState,
    headers: &HeaderMap,
    partner_id: &str,
    page: &str,
) -> Result<(Person, String), Response> {
    let person = member(state, headers, page).await?;
    let (membership, role) = own_partner(&person, partner_id)?;
    let name = membership.partner_name.clone();
    if role != Role::Owner {
        return Err(no_access(
            &person,
            "Only an owner of this partner manages its members and API keys. Ask an owner if you need a change.",
        ));
    }
    Ok((person, name))
}

fn query_member(query: &Option<String>, name: &str) -> Option<String> {
    query.as_deref().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    })
}

/// The banner a redirect after an action asks for (`?done=…`): fixed sentences only, so that
/// nothing typed in an address is shown as if onyx-id had said it.
fn done_banner(query: &Option<String>) -> Banner {
    match query_member(query, "done").as_deref() {
        Some("added") => {
            Banner::done("The member was added. They can sign in to the partner console now.")
        }
        Some("role") => Banner::done("The member's role was changed."),
        Some("removed") => {
            Banner::done("The member was removed. Their access to this partner ended at once.")
        }
        Some("revoked") => {
            Banner::done("The key was revoked. Requests with it are refused from now on.")
        }
        _ => Banner::default(),
    }
}

fn role_words(role: &str) -> &'static str {
    match role {
        "owner" => "Owner",
        _ => "Developer",
    }
}

struct MembersForm {
    banner: Banner,
    errors: FieldErrors,
    email: String,
    role: String,
    page: Option<usize>,
}

async fn members_page(
    state: &AppState,
    person: &Person,
    partner_id: &str,
    partner_name: String,
    status: StatusCode,
    f: MembersForm,
) -> Response {
    let all: Vec<Member> = match partners::members(&state.db, partner_id).await {
        Ok(m) => m,
        Err(e) => return AppError::internal(e).into_response(),
    };
    let rows = all
        .into_iter()
        .map(|m| MemberRow {
            is_you: m.user_id == person.user.id,
            role: role_words(&m.role),
            since: date_time(m.created_at),
            user_id: m.user_id,
            email: m.email,
        })
        .collect();
    let base = format!("/partner/team/{partner_id}/members");
    let (members, pager) = paginate(rows, f.page, &base);
    person.render(
        status,
        &MembersPage {
            nav: person.nav(Section::Team),
            partner_id: partner_id.to_string(),
            partner_name,
            members,
            pager,
            banner: f.banner,
            errors: f.errors,
            email: f.email,
            role: f.role,
        },
    )
}

async fn members_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(partner_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let page = format!("/partner/team/{partner_id}/members");
    let (person, name) = or_page!(owner(&state, &headers, &partner_id, &page).await);
    let f = MembersForm {
        banner: done_banner(&query),
        errors: FieldErrors::new(),
        email: String::new(),
        role: "developer".into(),
        page: page_param(query_member(&query, "page").as_deref()),
    };
    members_page(&state, &person, &partner_id, name, StatusCode::OK, f).await
}

/// Reads the role field; its error goes next to the field.
fn role_of(form: &Form, errors: &mut FieldErrors) -> Option<Role> {
    match form.text("role").map(Role::parse) {
        Some(Ok(role)) => Some(role),
        _ => {
            errors.add("role", "Choose Owner or Developer.");
            None
        }
    }
}

async fn member_add(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(partner_id): Path<String>,
    body: Bytes,
) -> Response {
    let page = format!("/partner/team/{partner_id}/members");
    let (person, name) = or_page!(owner(&state, &headers, &partner_id, &page).await);
    let form = or_page!(Form::checked(&state, &headers, &body));
    let mut errors = FieldErrors::new();
    let email = form.text("email").unwrap_or_default().to_string();
    if email.is_empty() {
        errors.add("email", "Enter the email address of their Onyx account.");
    }
    let role = role_of(&form, &mut errors);
    let mut status = StatusCode::BAD_REQUEST;
    if let (Some(role), true) = (role, errors.is_empty()) {
        let actor = person.partner_actor(&partner_id);
        match service::add_member(&state.db, state.now(), &actor, &partner_id, &email, role).await {
            Ok(_) => return see_other(&format!("{page}?done=added")),
            Err(e) => {
                let (s, message, _) = refusal(&e);
                status = refused_status(s);
                errors.add("email", message);
            }
        }
    }
    let f = MembersForm {
        banner: Banner::default(),
        errors,
        email,
        role: form.raw("role").to_string(),
        page: None,
    };
    members_page(&state, &person, &partner_id, name, status, f).await
}

/// Answers an action on one member: back to the list with `done`, or the list with the refusal.
async fn after_member_action(
    state: &AppState,
    person: &Person,
    partner_id: &str,
    name: String,
    outcome: Result<&'static str, crate::partner::program::ProgramError>,
) -> Response {
    match outcome {
        Ok(done) => see_other(&format!("/partner/team/{partner_id}/members?done={done}")),
        Err(e) => {
            let (s, message, _) = refusal(&e);
            let f = MembersForm {
                banner: Banner::refused(message),
                errors: FieldErrors::new(),
                email: String::new(),
                role: "developer".into(),
                page: None,
            };
            members_page(state, person, partner_id, name, refused_status(s), f).await
        }
    }
}

async fn member_role(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((partner_id, user_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let page = format!("/partner/team/{partner_id}/members");
    let (person, name) = or_page!(owner(&state, &headers, &partner_id, &page).await);
    let form = or_page!(Form::checked(&state, &headers, &body));
    let Ok(role) = Role::parse(form.raw("role")) else {
        let outcome = Err(crate::partner::program::ProgramError::invalid(
            "invalid_request",
            "choose Owner or Developer",
        ));
        return after_member_action(&state, &person, &partner_id, name, outcome).await;
    };
    // The member is named by their account here; the service takes the email it shows.
    let members = match partners::members(&state.db, &partner_id).await {
        Ok(m) => m,
        Err(e) => return AppError::internal(e).into_response(),
    };
    let outcome = match members.iter().find(|m| m.user_id == user_id) {
        None => Err(crate::partner::program::ProgramError::NotFound("member")),
        Some(m) => {
            let actor = person.partner_actor(&partner_id);
            service::add_member(&state.db, state.now(), &actor, &partner_id, &m.email, role)
                .await
                .map(|_| "role")
        }
    };
    after_member_action(&state, &person, &partner_id, name, outcome).await
}

async fn member_remove(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((partner_id, user_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let page = format!("/partner/team/{partner_id}/members");
    let (person, name) = or_page!(owner(&state, &headers, &partner_id, &page).await);
    or_page!(Form::checked(&state, &headers, &body));
    let actor = person.partner_actor(&partner_id);
    let outcome = service::remove_member(&state.db, state.now(), &actor, &partner_id, &user_id)
        .await
        .map(|_| "removed");
    after_member_action(&state, &person, &partner_id, name, outcome).await
}

struct KeysForm {
    banner: Banner,
    errors: FieldErrors,
    name: String,
    created: Option<(String, String)>,
    page: Option<usize>,
}

async fn keys_page(
    state: &AppState,
    person: &Person,
    partner_id: &str,
    partner_name: String,
    status: StatusCode,
    f: KeysForm,
) -> Response {
    let all: Vec<KeyInfo> = match partners::keys_of_partner(&state.db, partner_id).await {
        Ok(k) => k,
        Err(e) => return AppError::internal(e).into_response(),
    };
    // Live keys first, each group newest first.
    let mut all = all;
    all.sort_by_key(|k| (k.revoked_at.is_some(), std::cmp::Reverse(k.created_at)));
    let rows = all
        .into_iter()
        .map(|k| KeyRow {
            created: date_time(k.created_at),
            last_used: k.last_used_at.map_or("Never".into(), date_time),
            revoked: k.revoked_at.map(date_time),
            id: k.id,
            name: k.name,
        })
        .collect();
    let base = format!("/partner/team/{partner_id}/keys");
    let (keys, pager) = paginate(rows, f.page, &base);
    person.render(
        status,
        &KeysPage {
            nav: person.nav(Section::Team),
            partner_id: partner_id.to_string(),
            partner_name,
            keys,
            pager,
            banner: f.banner,
            errors: f.errors,
            name: f.name,
            created: f.created,
        },
    )
}

async fn keys_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(partner_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let page = format!("/partner/team/{partner_id}/keys");
    let (person, name) = or_page!(owner(&state, &headers, &partner_id, &page).await);
    let f = KeysForm {
        banner: done_banner(&query),
        errors: FieldErrors::new(),
        name: String::new(),
        created: None,
        page: page_param(query_member(&query, "page").as_deref()),
    };
    keys_page(&state, &person, &partner_id, name, StatusCode::OK, f).await
}

/// Creates a key and shows its text once, on this answer (never in an address).
async fn key_create(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(partner_id): Path<String>,
    body: Bytes,
) -> Response {
    let page = format!("/partner/team/{partner_id}/keys");
    let (person, name) = or_page!(owner(&state, &headers, &partner_id, &page).await);
    let form = or_page!(Form::checked(&state, &headers, &body));
    let key_name = form.raw("name").to_string();
    let mut errors = FieldErrors::new();
    let actor = person.partner_actor(&partner_id);
    let (status, created, typed) = if key_name.trim().is_empty() {
        errors.add(
            "name",
            "Give the key a name that says where it is used, such as \"billing server\".",
        );
        (StatusCode::BAD_REQUEST, None, key_name)
    } else {
        match service::create_partner_key(&state.db, state.now(), &actor, &partner_id, &key_name)
            .await
        {
            Ok(k) => (StatusCode::OK, Some((k.name, k.api_key)), String::new()),
            Err(e) => {
                let (s, message, _) = refusal(&e);
                errors.add("name", message);
                (refused_status(s), None, key_name)
            }
        }
    };
    let banner = if created.is_some() {
        Banner::done("The key was created. Copy it now: it is shown only this once.")
    } else {
        Banner::default()
    };
    let f = KeysForm {
        banner,
        errors,
        name: typed,
        created,
        page: None,
    };
    let mut res = keys_page(&state, &person, &partner_id, name, status, f).await;
    // The key's text must not stay in any cache or history (the page headers already say
    // no-store).
    res.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    res
}

async fn key_revoke(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((partner_id, key_id)): Path<(String, String)>,
    body: Bytes,
) -> Response {
    let page = format!("/partner/team/{partner_id}/keys");
    let (person, name) = or_page!(owner(&state, &headers, &partner_id, &page).await);
    or_page!(Form::checked(&state, &headers, &body));
    let actor = person.partner_actor(&partner_id);
    match service::revoke_partner_key(&state.db, state.now(), &actor, &partner_id, &key_id).await {
        Ok(_) => see_other(&format!("{page}?done=revoked")),
        Err(e) => {
            let (s, message, _) = refusal(&e);
            let f = KeysForm {
                banner: Banner::refused(message),
                errors: FieldErrors::new(),
                name: String::new(),
                created: None,
                page: None,
            };
            keys_page(&state, &person, &partner_id, name, refused_status(s), f).await
        }
    }
}
