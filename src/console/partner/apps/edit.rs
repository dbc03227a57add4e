//! Editing an app's draft (`/partner/apps/{client_id}/edit`): the form with every draft field,
//! the pre-checks' findings next to their fields, and per group of fields the review step it
//! belongs to. `action=preview` says which review steps saving would reopen (the rule of
//! `partner::apps::update_draft`, through `preview_draft_change`); `action=save` saves on the
//! draft version the form was made from, so an edit made meanwhile is never overwritten unseen.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use super::draft_form::{DraftForm, add_error, draft_of, finding_errors, patch_between};
use super::{AppHeader, draft_of_app, failed, latest_review, member_app, query_member, titles};
use crate::console::form::{Banner, FieldErrors, Form, refused_status};
use crate::console::{Nav, Person, Section, refusal};
use crate::partner::Step;
use crate::partner::apps;
use crate::startup::AppState;
use crate::store::apps::App;
use crate::store::draft_versions;
use crate::web::see_other;

#[derive(Template)]
#[template(path = "console/partner/app_edit.html")]
pub struct EditPage {
    pub nav: Nav,
    pub header: AppHeader,
    pub form: DraftForm,
    pub errors: FieldErrors,
    pub banner: Banner,
    pub draft_version: i64,
    /// After a preview: the titles of the steps saving would reopen.
    pub reopens: Option<Vec<&'static str>>,
    /// Whether the app was ever submitted (a preview then says there is nothing to reopen).
    pub submitted: bool,
    /// How many problems the pre-checks find in the draft shown.
    pub findings: usize,
}

/// The banner after a save (`?done=saved&reopened=…`): fixed sentences and step titles only.
fn done_banner(query: &Option<String>) -> Banner {
    match query_member(query, "done").as_deref() {
        Some("saved") => {
            let reopened: Vec<&str> = query_member(query, "reopened")
                .unwrap_or_default()
                .split(',')
                .filter_map(Step::parse)
                .map(Step::title)
                .collect();
            if reopened.is_empty() {
                Banner::done("The draft was saved. It reopened no review step.")
            } else {
                Banner::done(format!(
                    "The draft was saved. It reopened these review steps: {}.",
                    reopened.join("; ")
                ))
            }
        }
        Some("unchanged") => {
            Banner::done("Nothing was saved: the form held what the draft already says.")
        }
        _ => Banner::default(),
    }
}

pub(super) async fn edit_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let path = format!("/partner/apps/{client_id}/edit");
    let (person, app, _) = or_page!(member_app(&state, &headers, &client_id, &path).await);
    let (draft, version) = or_page!(draft_of_app(&state, &app).await);
    let review = or_page!(latest_review(&state, &app).await);
    let findings = match apps::run_prechecks(&state.db, &app.client_id, &draft).await {
        Ok(f) => f,
        Err(e) => return failed(e),
    };
    let page = EditPage {
        nav: person.nav(Section::Apps),
        header: AppHeader::of(&app, Some(&draft.name), "edit"),
        form: DraftForm::of(&draft, review.as_ref()),
        errors: finding_errors(&findings, &draft),
        banner: done_banner(&query),
        draft_version: version,
        reopens: None,
        submitted: review.is_some(),
        findings: findings.len(),
    };
    person.render(StatusCode::OK, &page)
}

/// The page again with what was typed.
struct Shown {
    status: StatusCode,
    errors: FieldErrors,
    banner: Banner,
    draft_version: i64,
    reopens: Option<Vec<&'static str>>,
    findings: usize,
}

async fn again(
    state: &AppState,
    person: &Person,
    app: &App,
    form: &Form,
    shown: Shown,
) -> Response {
    let review = or_page!(latest_review(state, app).await);
    let page = EditPage {
        nav: person.nav(Section::Apps),
        header: AppHeader::of(app, Some(form.raw("name")), "edit"),
        form: DraftForm::typed(form, review.as_ref()),
        errors: shown.errors,
        banner: shown.banner,
        draft_version: shown.draft_version,
        reopens: shown.reopens,
        submitted: review.is_some(),
        findings: shown.findings,
    };
    person.render(shown.status, &page)
}

pub(super) async fn edit_post(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    body: Bytes,
) -> Response {
    let path = format!("/partner/apps/{client_id}/edit");
    let (person, app, _) = or_page!(member_app(&state, &headers, &client_id, &path).await);
    let form = or_page!(Form::checked(&state, &headers, &body));
    let (before, version) = or_page!(draft_of_app(&state, &app).await);
    let seen = form
        .text("draft_version")
        .and_then(|v| v.parse::<i64>().ok());
    let after = draft_of(&form, &before);
    let patch = patch_between(&before, after.clone());
    let mut shown = Shown {
        status: StatusCode::BAD_REQUEST,
        errors: FieldErrors::new(),
        banner: Banner::default(),
        draft_version: seen.unwrap_or(version),
        reopens: None,
        findings: 0,
    };
    let Some(seen) = seen else {
        shown.draft_version = version;
        shown.banner = Banner::refused(
            "This form does not say which version of the draft it was made from. Nothing was saved; check the form and save again.",
        );
        return again(&state, &person, &app, &form, shown).await;
    };
    match form.get("action") {
        Some("preview") => {
            match apps::preview_draft_change(&state.db, &app, patch).await {
                Ok(p) => {
                    shown.status = StatusCode::OK;
                    shown.errors = finding_errors(&p.findings, &p.draft);
                    shown.findings = p.findings.len();
                    shown.reopens = Some(titles(&p.reopened));
                    if seen != p.draft_version {
                        shown.banner = Banner::refused(stale_words(seen, p.draft_version));
                    }
                }
                Err(e) => {
                    let (s, message, field) = refusal(&e);
                    shown.status = refused_status(s);
                    place(&mut shown, field, &after, message);
                }
            }
            again(&state, &person, &app, &form, shown).await
        }
        Some("save") => {
            if patch.fields().is_empty() && seen == version {
                return see_other(&format!("{path}?done=unchanged"));
            }
            let actor = person.partner_actor(app.partner_id.as_deref().unwrap_or_default());
            match apps::update_draft_at(&state.db, state.now(), &actor, &app, seen, patch).await {
                Ok(done) => {
                    let reopened: Vec<&str> = done.reopened.iter().map(|s| s.as_str()).collect();
                    see_other(&format!(
                        "{path}?done=saved&reopened={}",
                        reopened.join(",")
                    ))
                }
                Err(e) => {
                    let (s, message, field) = refusal(&e);
                    shown.status = refused_status(s);
                    if field.as_deref() == Some("draft_version") {
                        // Made on an older version: show what changed since, keep what was
                        // typed, and let a second save go to the version it is at now.
                        let changed = changed_since(&state, &app, seen).await;
                        shown.banner = Banner::refused(format!(
                            "{} Someone saved the draft after you opened this form{}. What you typed is kept below: check it against those changes, then save again.",
                            message,
                            if changed.is_empty() {
                                String::new()
                            } else {
                                format!(" (changed: {})", changed.join(", "))
                            }
                        ));
                        shown.draft_version = version;
                    } else {
                        place(&mut shown, field, &after, message);
                    }
                    again(&state, &person, &app, &form, shown).await
                }
            }
        }
        _ => {
            shown.banner = Banner::refused("Choose “Preview changes” or “Save draft”.");
            again(&state, &person, &app, &form, shown).await
        }
    }
}

/// A refusal at its field, or in the banner when it names none.
fn place(
    shown: &mut Shown,
    field: Option<String>,
    draft: &crate::partner::AppDraft,
    message: String,
) {
    match field {
        Some(f) => add_error(&mut shown.errors, &f, draft, message),
        None => shown.banner = Banner::refused(message),
    }
}

fn stale_words(seen: i64, current: i64) -> String {
    format!(
        "The draft changed since you opened this form (you opened version {seen}; it is at version {current} now). Saving will be refused: open the draft again to see the changes."
    )
}

/// The fields changed by the edits after version `seen`.
async fn changed_since(state: &AppState, app: &App, seen: i64) -> Vec<String> {
    let versions = draft_versions::since(&state.db, &app.client_id, seen)
        .await
        .unwrap_or_default();
    let mut fields: Vec<String> = versions
        .iter()
        .filter(|v| v.version > seen)
        .flat_map(|v| v.fields())
        .collect();
    fields.sort();
    fields.dedup();
    fields
}
