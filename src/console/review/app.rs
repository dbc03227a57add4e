//! One app's review (`GET /review/apps/{client_id}`): the summary (partner, stage, access with
//! its causes, trust level, draft version), then every step of the latest review with the
//! fields it covers and their draft values, the diff against the step's last approval, its
//! pre-check findings and the decision form; then the forms for the app's capabilities,
//! access and trust level. Any app can be opened, not only partner apps.
//!
//! A refused action shows this page again with the refusal at the form it came from and what
//! was typed kept ([`Typed`]).

use askama::Template;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::super::form::{Banner, FieldErrors, Form};
use super::super::partner::AppHeader;
use super::super::{Nav, Person, Section, date_time, operator};
use super::{done_banner, field_label, step_short, step_state_words, value_lines};
use crate::error::AppError;
use crate::partner::access::{AccessReason, AccessState, CapabilityState, CauseSource};
use crate::partner::access_change::access_view;
use crate::partner::program::ProgramError;
use crate::partner::review::{last_approvals, step_diff, step_values};
use crate::partner::{AppDraft, Step, StepState, apps as service};
use crate::scopes::{TrustLevel, catalogue};
use crate::startup::AppState;
use crate::store::apps::App;
use crate::store::{draft_versions, partners, reviews};

/// Which form of the page a refused action came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Which {
    Step(Step),
    Capability(String),
    Access,
    Trust,
}

/// A refused form: which one, what was typed, and the errors by field.
pub struct Typed {
    pub which: Which,
    pub form: Form,
    pub errors: FieldErrors,
}

/// A draft field with its value as lines.
pub struct FieldValue {
    pub id: String,
    pub label: String,
    pub lines: Vec<String>,
}

/// One changed field: as approved, and now.
pub struct DiffRow {
    pub label: String,
    pub before: Vec<String>,
    pub after: Vec<String>,
}

pub struct FindingLine {
    pub field: String,
    pub message: String,
}

/// A radio or select option: value, words, chosen.
pub struct Choice {
    pub value: &'static str,
    pub label: String,
    pub chosen: bool,
}

pub struct StepSection {
    pub key: &'static str,
    pub title: &'static str,
    pub state: &'static str,
    pub state_class: &'static str,
    pub reviewer: Option<String>,
    pub note: Option<String>,
    pub decided: Option<String>,
    pub fields: Vec<FieldValue>,
    /// "Approved by … on … (draft version N)", when the step was ever approved.
    pub approval: Option<String>,
    pub diff: Vec<DiffRow>,
    pub findings: Vec<FindingLine>,
    pub choices: Vec<Choice>,
    pub note_typed: String,
    pub state_key: String,
    pub note_key: String,
}

pub struct CapabilityRow {
    pub name: &'static str,
    pub words: String,
    pub state: &'static str,
    pub state_class: &'static str,
    pub sentence: String,
    pub reason: String,
    pub note: Option<String>,
    pub scopes: Vec<String>,
    pub choices: Vec<Choice>,
    pub reason_typed: String,
    pub note_typed: String,
    pub key: String,
}

pub struct CauseRow {
    pub source: &'static str,
    pub state: &'static str,
    pub reason: &'static str,
    pub note: Option<String>,
    pub withdrawn: Vec<String>,
    pub actor: String,
    pub since: String,
}

pub struct ScopeChoice {
    pub name: String,
    pub label: String,
    pub chosen: bool,
}

pub struct AccessSection {
    pub reason: Option<&'static str>,
    pub note: Option<String>,
    pub withdrawn: Vec<String>,
    pub causes: Vec<CauseRow>,
    pub states: Vec<Choice>,
    pub reasons: Vec<Choice>,
    pub cause_choices: Vec<Choice>,
    pub scopes: Vec<ScopeChoice>,
    pub note_typed: String,
}

pub struct Summary {
    pub partner: String,
    pub client_type: &'static str,
    pub trust_level: &'static str,
    pub draft_version: Option<i64>,
    pub review: Option<String>,
    pub domain: String,
}

#[derive(Template)]
#[template(path = "console/review/app.html")]
pub struct AppPage {
    pub nav: Nav,
    pub header: AppHeader,
    pub banner: Banner,
    pub errors: FieldErrors,
    pub summary: Summary,
    pub steps: Vec<StepSection>,
    /// The draft version the decisions are made on (the one shown).
    pub draft_version: i64,
    pub capabilities: Vec<CapabilityRow>,
    pub access: AccessSection,
    pub trust: Vec<Choice>,
}

fn internal(e: impl Into<anyhow::Error>) -> Response {
    AppError::internal(e.into()).into_response()
}

/// The operator and the app `client_id` (any app), or the page that refuses: no access, or
/// not found.
pub(super) async fn operator_and_app(
    state: &AppState,
    headers: &HeaderMap,
    client_id: &str,
) -> Result<(Person, App), Response> {
    let person = operator(state, headers, &format!("/review/apps/{client_id}")).await?;
    match service::any_app(&state.db, client_id).await {
        Ok(app) => Ok((person, app)),
        Err(ProgramError::NotFound(_)) => Err(not_found_app(&person)),
        Err(e) => Err(internal(anyhow::anyhow!(e.line()))),
    }
}

fn not_found_app(person: &Person) -> Response {
    person.render(
        StatusCode::NOT_FOUND,
        &super::super::MessagePage {
            nav: person.nav(Section::Review),
            title: "Not found",
            message: "There is no app with this client id.",
            back: Some(("/review", "Go to the review queue")),
        },
    )
}

pub(super) async fn app_get(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(client_id): Path<String>,
    RawQuery(query): RawQuery,
) -> Response {
    let (person, app) = or_page!(operator_and_app(&state, &headers, &client_id).await);
    app_page(
        &state,
        &person,
        &app,
        done_banner(&query),
        None,
        StatusCode::OK,
    )
    .await
}

/// Where a finding's field is, in words: `redirect_uris[1]` is "Redirect URIs, line 2".
fn finding_field(field: &str) -> String {
    match field.split_once('[') {
        Some((name, rest)) => match rest.trim_end_matches(']').parse::<usize>() {
            Ok(i) => format!("{}, line {}", field_label(name), i + 1),
            Err(_) => field_label(name).to_string(),
        },
        None => match field.split_once('.') {
            Some((name, key)) => format!("{}: {key}", field_label(name)),
            None => field_label(field).to_string(),
        },
    }
}

fn decision_words(state: StepState) -> &'static str {
    match state {
        StepState::Approved => "Approve",
        StepState::ChangesRequested => "Request changes (say what in the note)",
        StepState::Rejected => "Reject (say why in the note)",
        StepState::NotApplicable => "Not applicable to this app",
        StepState::Pending => "Pending",
    }
}

fn capability_state_words(state: CapabilityState) -> (&'static str, &'static str) {
    match state {
        CapabilityState::Unavailable => ("Unavailable", "quiet"),
        CapabilityState::Requested => ("Requested", "wait"),
        CapabilityState::Gated => ("Gated", "wait"),
        CapabilityState::Enabled => ("Enabled", "good"),
    }
}

fn capability_choice_words(state: CapabilityState) -> &'static str {
    match state {
        CapabilityState::Unavailable => "Unavailable: refused, or not asked for",
        CapabilityState::Requested => "Requested: waiting for Onyx's decision",
        CapabilityState::Gated => "Gated: held back for now (say why in the note)",
        CapabilityState::Enabled => "Enabled",
    }
}

fn access_words(state: AccessState) -> &'static str {
    match state {
        AccessState::Active => {
            "Active: restore the app (clears the causes an operator set, or the one chosen below)"
        }
        AccessState::Limited => "Limited: withdraw the scopes ticked below; the rest keep working",
        AccessState::Suspended => "Suspended: nothing works, from the next request",
    }
}

fn trust_words(level: TrustLevel) -> String {
    let name = match level {
        TrustLevel::Basic => "Basic",
        TrustLevel::Verified => "Verified",
        TrustLevel::Trusted => "Trusted",
    };
    let unlocks: Vec<&str> = catalogue()
        .all()
        .iter()
        .filter(|s| s.min_trust == level)
        .map(|s| s.name.as_str())
        .collect();
    if unlocks.is_empty() || level == TrustLevel::Basic {
        format!("{name}: the scopes every app may ask for")
    } else {
        format!("{name}: also {}", unlocks.join(", "))
    }
}

/// Renders the app's review page; `typed` is a refused form, shown with what was typed and
/// its errors.
pub(super) async fn app_page(
    state: &AppState,
    person: &Person,
    app: &App,
    banner: Banner,
    typed: Option<Typed>,
    status: StatusCode,
) -> Response {
    let db = &state.db;
    let (draft, version) = match draft_versions::current(db, &app.client_id).await {
        Ok(Some((d, v))) => (d, v),
        Ok(None) => (None, 1),
        Err(e) => return internal(e),
    };
    let review = match reviews::latest(db, &app.client_id).await {
        Ok(r) => r,
        Err(e) => return internal(e),
    };
    let approvals = match last_approvals(db, &app.client_id, review.as_ref()).await {
        Ok(a) => a,
        Err(e) => return internal(anyhow::anyhow!(e.line())),
    };
    let access = match access_view(db, app).await {
        Ok(a) => a,
        Err(e) => return internal(anyhow::anyhow!(e.line())),
    };
    let named: Vec<&str> = access.causes.iter().map(|c| c.actor.as_str()).collect();
    let actors = match crate::console::actors::in_words(db, &named).await {
        Ok(w) => w,
        Err(e) => return internal(e),
    };
    let partner = match &app.partner_id {
        None => "None: registered by an operator".to_string(),
        Some(pid) => match partners::by_id(db, pid).await {
            Ok(Some(p)) => format!("{} ({pid})", p.name),
            Ok(None) => pid.clone(),
            Err(e) => return internal(e),
        },
    };
    let empty = Form::default();
    let (which, form, errors) = match typed {
        Some(t) => (Some(t.which), t.form, t.errors),
        None => (None, empty, FieldErrors::new()),
    };
    let typed_for = |w: &Which| (which.as_ref() == Some(w)).then_some(&form);
    let draft_value = draft.clone().unwrap_or_else(AppDraft::default);

    let mut reviewers: Vec<&str> = approvals
        .values()
        .filter_map(|a| a.reviewer.as_deref())
        .collect();
    if let Some(r) = &review {
        reviewers.extend(r.steps.iter().filter_map(|s| s.reviewer.as_deref()));
    }
    let reviewers = match crate::console::actors::in_words(db, &reviewers).await {
        Ok(w) => w,
        Err(e) => return internal(e),
    };
    let reviewer = |r: &Option<String>| {
        r.as_ref()
            .map(|r| reviewers.get(r).cloned().unwrap_or_else(|| r.clone()))
    };
    let mut steps = Vec::new();
    if let Some(r) = &review {
        for rec in &r.steps {
            let step = rec.step;
            let key = step.as_str();
            let (state_words, state_class) = step_state_words(rec.state);
            let typed = typed_for(&Which::Step(step));
            let chosen = typed.map(|f| f.raw("state").to_string());
            let approval = approvals.get(&step);
            let diff = approval
                .map(|a| step_diff(step, &a.snapshot, &draft_value))
                .unwrap_or_default()
                .into_iter()
                .map(|c| DiffRow {
                    label: field_label(c.field).to_string(),
                    before: value_lines(&c.before),
                    after: value_lines(&c.after),
                })
                .collect();
            steps.push(StepSection {
                key,
                title: step.title(),
                state: state_words,
                state_class,
                reviewer: reviewer(&rec.reviewer),
                note: rec.note.clone(),
                decided: (rec.state != StepState::Pending).then(|| date_time(rec.updated_at)),
                fields: step_values(step, &draft_value)
                    .into_iter()
                    .map(|(f, v)| FieldValue {
                        id: format!("{key}-{f}"),
                        label: field_label(f).to_string(),
                        lines: value_lines(&v),
                    })
                    .collect(),
                approval: approval.map(|a| {
                    let mut s = String::from("Last approved");
                    if let Some(by) = reviewer(&a.reviewer) {
                        s.push_str(&format!(" by {by}"));
                    }
                    if let Some(at) = a.at {
                        s.push_str(&format!(" on {}", date_time(at)));
                    }
                    if let Some(v) = a.draft_version {
                        s.push_str(&format!(", on draft version {v}"));
                    }
                    s.push('.');
                    s
                }),
                diff,
                findings: r
                    .findings
                    .iter()
                    .filter(|f| f.step == step)
                    .map(|f| FindingLine {
                        field: finding_field(&f.field),
                        message: super::super::sentence(&f.message),
                    })
                    .collect(),
                choices: StepState::all()
                    .filter(|s| *s != StepState::Pending)
                    .map(|s| Choice {
                        value: s.as_str(),
                        label: decision_words(s).to_string(),
                        chosen: chosen.as_deref() == Some(s.as_str()),
                    })
                    .collect(),
                note_typed: typed.map(|f| f.raw("note").to_string()).unwrap_or_default(),
                state_key: format!("{key}-state"),
                note_key: format!("{key}-note"),
            });
        }
    }

    let capabilities = app
        .capabilities
        .all()
        .into_iter()
        .map(|(name, c)| {
            let (state_words, state_class) = capability_state_words(c.state);
            let typed = typed_for(&Which::Capability(name.to_string()));
            let chosen = typed.map_or(c.state.as_str(), |f| f.raw("state"));
            CapabilityRow {
                name,
                words: name.replace('_', " "),
                state: state_words,
                state_class,
                sentence: c.sentence(name),
                reason: c.reason.clone(),
                note: c.note.clone(),
                scopes: catalogue()
                    .all()
                    .iter()
                    .filter(|s| s.capability.as_deref() == Some(name))
                    .map(|s| s.name.clone())
                    .collect(),
                choices: CapabilityState::all()
                    .map(|s| Choice {
                        value: s.as_str(),
                        label: capability_choice_words(s).to_string(),
                        chosen: chosen == s.as_str(),
                    })
                    .collect(),
                reason_typed: typed
                    .map(|f| f.raw("reason").to_string())
                    .unwrap_or_default(),
                note_typed: typed.map(|f| f.raw("note").to_string()).unwrap_or_default(),
                key: format!("cap-{name}"),
            }
        })
        .collect();

    let typed_access = typed_for(&Which::Access);
    let access_state = typed_access.map(|f| f.raw("state").to_string());
    let access_reason = typed_access.map(|f| f.raw("reason").to_string());
    let access_cause = typed_access.map(|f| f.raw("cause").to_string());
    let ticked: Vec<String> = typed_access
        .map(|f| f.all("withdrawn").into_iter().map(String::from).collect())
        .unwrap_or_else(|| access.withdrawn_scopes.clone());
    let access_section = AccessSection {
        reason: access.reason_text,
        note: access.note.clone(),
        withdrawn: access.withdrawn_scopes.clone(),
        causes: access
            .causes
            .iter()
            .map(|c| CauseRow {
                source: match c.source {
                    CauseSource::Operator => "An operator",
                    CauseSource::Automatic => "Onyx ID itself",
                },
                state: match c.state {
                    AccessState::Suspended => "Suspends",
                    _ => "Limits",
                },
                reason: c.reason_text,
                note: c.note.clone(),
                withdrawn: c.withdrawn_scopes.clone(),
                actor: actors
                    .get(&c.actor)
                    .cloned()
                    .unwrap_or_else(|| c.actor.clone()),
                since: date_time(c.since),
            })
            .collect(),
        states: AccessState::all()
            .map(|s| Choice {
                value: s.as_str(),
                label: access_words(s).to_string(),
                chosen: access_state.as_deref() == Some(s.as_str()),
            })
            .collect(),
        reasons: AccessReason::all()
            .map(|r| Choice {
                value: r.as_str(),
                label: r.sentence().to_string(),
                chosen: access_reason.as_deref() == Some(r.as_str()),
            })
            .collect(),
        cause_choices: access
            .causes
            .iter()
            .map(|c| Choice {
                value: c.reason.as_str(),
                label: format!("Only this cause: {}", c.reason_text),
                chosen: access_cause.as_deref() == Some(c.reason.as_str()),
            })
            .collect(),
        scopes: app
            .scopes
            .iter()
            .map(|s| ScopeChoice {
                name: s.to_string(),
                label: catalogue()
                    .get(s.as_str())
                    .map_or_else(|| s.to_string(), |i| i.label.clone()),
                chosen: ticked.iter().any(|t| t == s.as_str()),
            })
            .collect(),
        note_typed: typed_access
            .map(|f| f.raw("note").to_string())
            .unwrap_or_default(),
    };

    let trust_chosen = typed_for(&Which::Trust)
        .map(|f| f.raw("trust_level").to_string())
        .unwrap_or_else(|| app.consent.trust_level.as_str().to_string());
    let trust = TrustLevel::all()
        .map(|l| Choice {
            value: l.as_str(),
            label: trust_words(l),
            chosen: trust_chosen == l.as_str(),
        })
        .collect();

    let summary = Summary {
        partner,
        client_type: match app.client_type.as_str() {
            "public" => "Public (no secret)",
            _ => "Confidential (has a secret)",
        },
        trust_level: match app.consent.trust_level {
            TrustLevel::Basic => "Basic",
            TrustLevel::Verified => "Verified",
            TrustLevel::Trusted => "Trusted",
        },
        draft_version: draft.is_some().then_some(version),
        review: review.as_ref().map(|r| {
            let state = match r.state.as_str() {
                "open" => "open",
                "approved" => "approved: every step is done",
                "rejected" => "rejected",
                other => other,
            };
            format!(
                "Review {}, {state}; submitted {}",
                r.number,
                date_time(r.submitted_at)
            )
        }),
        domain: match (&draft_value.domain, &app.domain_verified) {
            (Some(d), Some(v)) if d == v => format!("{d} (verified)"),
            (Some(d), _) => format!("{d} (not verified)"),
            (None, Some(v)) => format!("{v} (verified)"),
            (None, None) => "Not set".into(),
        },
    };
    let draft_name = draft.as_ref().map(|d| d.name.as_str());
    person.render(
        status,
        &AppPage {
            nav: person.nav(Section::Review),
            header: AppHeader::of(app, draft_name, "review"),
            banner,
            errors,
            summary,
            steps,
            draft_version: version,
            capabilities,
            access: access_section,
            trust,
        },
    )
}

/// The short name of a step, for a banner.
pub(super) fn step_name(step: Step) -> &'static str {
    step_short(step)
}
