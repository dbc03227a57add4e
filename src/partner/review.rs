//! An app's review: the partner submits its draft, the pre-checks run, and operators decide
//! each step on the draft version they read.

use serde::Serialize;
use serde_json::{Value, json};

use super::access::{AccessReason, AccessState, Stage};
use super::access_change::{AccessView, access_view, auto_limit, auto_restore};
use super::apps::{any_app, applies, recorded_value, run_prechecks, same_snapshot, snapshot};
use super::launch::{Requirement, launch_checklist};
use super::program::{ProgramError, Result, app_event, check_len, not_submitted};
use super::{Finding, Step, StepState};
use crate::clock::Timestamp;
use crate::store::Db;
use crate::store::apps::{self, App};
use crate::store::draft_versions;
use crate::store::reviews::{self, NewStep, Review};

/// One step of a review, as partners and operators read it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct StepView {
    pub step: Step,
    pub title: &'static str,
    pub state: StepState,
    pub reviewer: Option<String>,
    pub note: Option<String>,
    #[schema(value_type = i64)]
    pub updated_at: Timestamp,
    pub decided_on_draft_version: Option<i64>,
    pub blocking_findings: usize,
}

/// A review with its steps and findings. `draft_version` is the draft's current version: the
/// one a decision must name.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ReviewView {
    pub review: i64,
    pub state: String,
    #[schema(value_type = i64)]
    pub submitted_at: Timestamp,
    #[schema(value_type = Option<i64>)]
    pub closed_at: Option<Timestamp>,
    pub draft_version: Option<i64>,
    pub steps: Vec<StepView>,
    pub findings: Vec<Finding>,
}

pub(super) fn review_view_of(review: &Review, draft_version: Option<i64>) -> ReviewView {
    let steps = review
        .steps
        .iter()
        .map(|s| StepView {
            step: s.step,
            title: s.step.title(),
            state: s.state,
            reviewer: s.reviewer.clone(),
            note: s.note.clone(),
            updated_at: s.updated_at,
            decided_on_draft_version: s.draft_version,
            blocking_findings: review.findings.iter().filter(|f| f.step == s.step).count(),
        })
        .collect();
    ReviewView {
        review: review.number,
        state: review.state.clone(),
        submitted_at: review.submitted_at,
        closed_at: review.closed_at,
        draft_version,
        steps,
        findings: review.findings.clone(),
    }
}

/// Submits the draft for review: runs the pre-checks and opens a review (or, when one is open,
/// records the new findings). Steps approved in the previous review whose fields did not change
/// stay approved.
pub async fn submit(db: &Db, now: Timestamp, actor: &str, app: &App) -> Result<ReviewView> {
    let Some((Some(draft), version)) = draft_versions::current(db, &app.client_id).await? else {
        return Err(ProgramError::conflict(
            "not_a_partner_app",
            "this app was registered by an operator and has no draft to review",
        ));
    };
    let findings = run_prechecks(db, &app.client_id, &draft).await?;
    let previous = reviews::latest(db, &app.client_id).await?;
    let mut tx = db.begin().await?;
    match &previous {
        Some(open) if open.is_open() => {
            reviews::set_findings(&mut tx, &open.id, &findings).await?;
            app_event(
                &mut tx,
                now,
                actor,
                app,
                "review.resubmitted",
                json!({ "review": open.number, "findings": findings.len() }),
            )
            .await?;
        }
        _ => {
            let number = previous.as_ref().map_or(1, |r| r.number + 1);
            let steps: Vec<NewStep> = Step::all()
                .map(|step| {
                    let snap = snapshot(step, &draft);
                    let carried = previous.as_ref().and_then(|r| r.step(step)).filter(|rec| {
                        rec.state == StepState::Approved
                            && same_snapshot(step, rec.snapshot.as_ref(), snap.as_ref())
                            && (step != Step::Production || app.stage == Stage::Production)
                    });
                    if !applies(step, &draft) {
                        NewStep {
                            step,
                            state: StepState::NotApplicable,
                            reviewer: Some("onyx-id".into()),
                            note: Some("nothing to review for this app".into()),
                            snapshot: snap,
                            draft_version: Some(version),
                        }
                    } else if let Some(rec) = carried {
                        NewStep {
                            step,
                            state: StepState::Approved,
                            reviewer: rec.reviewer.clone(),
                            note: Some(format!(
                                "approved in review {}; unchanged",
                                previous.as_ref().map_or(0, |r| r.number)
                            )),
                            snapshot: snap,
                            draft_version: rec.draft_version,
                        }
                    } else {
                        NewStep {
                            step,
                            state: StepState::Pending,
                            reviewer: None,
                            note: None,
                            snapshot: None,
                            draft_version: None,
                        }
                    }
                })
                .collect();
            reviews::open(&mut tx, &app.client_id, number, &findings, &steps, now).await?;
            app_event(
                &mut tx,
                now,
                actor,
                app,
                "review.submitted",
                json!({ "review": number, "findings": findings.len() }),
            )
            .await?;
        }
    }
    tx.commit().await?;
    review_view(db, app).await
}

/// The latest review with its findings, or 409 when the app was never submitted.
pub async fn review_view(db: &Db, app: &App) -> Result<ReviewView> {
    let Some(review) = reviews::latest(db, &app.client_id).await? else {
        return Err(not_submitted());
    };
    let version = draft_versions::current(db, &app.client_id)
        .await?
        .map(|(_, v)| v);
    Ok(review_view_of(&review, version))
}

/// A review in the operators' queue.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct QueuedReview {
    #[serde(flatten)]
    pub review: ReviewView,
    pub client_id: String,
    pub app: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReviewQueue {
    pub reviews: Vec<QueuedReview>,
}

/// The operators' queue: open reviews, oldest first.
pub async fn queue(db: &Db) -> Result<ReviewQueue> {
    let open = reviews::open_queue(db).await?;
    let mut out = Vec::new();
    for r in open {
        let name = apps::by_client_id(db, &r.client_id).await?.map(|a| a.name);
        let version = draft_versions::current(db, &r.client_id)
            .await?
            .map(|(_, v)| v);
        out.push(QueuedReview {
            review: review_view_of(&r, version),
            client_id: r.client_id.clone(),
            app: name,
        });
    }
    Ok(ReviewQueue { reviews: out })
}

/// The 409 for a decision made on draft version `seen` when the draft is at `current`: what
/// changed since, field by field (before: at `seen`, after: now), and the edits in between.
async fn draft_changed(db: &Db, client_id: &str, seen: i64, current: i64) -> Result<ProgramError> {
    let versions = draft_versions::since(db, client_id, seen.clamp(1, current)).await?;
    let before = versions
        .iter()
        .find(|v| v.version == seen)
        .map(|v| serde_json::to_value(v.draft()).unwrap_or_default());
    let after = versions
        .iter()
        .find(|v| v.version == current)
        .map(|v| serde_json::to_value(v.draft()).unwrap_or_default());
    let mut changes = Vec::new();
    if let (Some(Value::Object(before)), Some(Value::Object(after))) = (&before, &after) {
        for (field, now_value) in after {
            let then = before.get(field).cloned().unwrap_or(Value::Null);
            if &then != now_value {
                changes.push(json!({ "field": field, "before": then, "after": now_value }));
            }
        }
    }
    let edits: Vec<Value> = versions
        .iter()
        .filter(|v| v.version > seen)
        .map(|v| json!({ "draft_version": v.version, "fields": v.fields(), "actor": v.actor, "at": v.at }))
        .collect();
    let fields: Vec<&str> = changes.iter().filter_map(|c| c["field"].as_str()).collect();
    let message = if seen > current || seen < 1 {
        format!("draft version {seen} does not exist; the draft is at version {current}")
    } else {
        format!(
            "the draft changed since version {seen} (now {current}{}); read the review again and decide on version {current}",
            if fields.is_empty() {
                String::new()
            } else {
                format!(": {}", fields.join(", "))
            }
        )
    };
    Ok(ProgramError::conflict("draft_changed", message)
        .with("draft_version", current)
        .with("decided_on_draft_version", seen)
        .with("changed_fields", json!(fields))
        .with("changes", json!(changes))
        .with("edits", json!(edits)))
}

/// An operator's decision on one step.
#[derive(Debug, Clone)]
pub struct StepDecision {
    pub step: Step,
    pub state: StepState,
    pub note: Option<String>,
    /// The draft version the decision was made on (required: a decision without it is
    /// refused, naming the current one).
    pub draft_version: Option<i64>,
}

/// The review after a decision, with the app's stage and access and what the decision did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DecisionOutcome {
    #[serde(flatten)]
    pub review: ReviewView,
    pub stage: Stage,
    pub access: AccessView,
    pub effects: Vec<&'static str>,
}

/// An operator decides one step of the app's latest review, on the draft version they read
/// (`draft_version`): a decision on an older version is refused with what changed since, so an
/// approval never makes live a value the reviewer did not see.
pub async fn decide(
    db: &Db,
    now: Timestamp,
    actor: &str,
    app: &App,
    decision: StepDecision,
) -> Result<DecisionOutcome> {
    let StepDecision {
        step,
        state: decision,
        note,
        draft_version,
    } = decision;
    let Some(review) = reviews::latest(db, &app.client_id).await? else {
        return Err(not_submitted());
    };
    let Some((Some(draft), current_version)) = draft_versions::current(db, &app.client_id).await?
    else {
        return Err(ProgramError::conflict(
            "not_a_partner_app",
            "this app has no draft to review",
        ));
    };
    let note = note.as_deref().map(str::trim).filter(|n| !n.is_empty());
    if let Some(n) = note {
        check_len("note", n, 2000)?;
    }
    match decision {
        StepState::Pending => {
            return Err(ProgramError::invalid(
                "invalid_request",
                "a decision is approved, changes_requested, rejected or not_applicable",
            ));
        }
        StepState::ChangesRequested | StepState::Rejected if note.is_none() => {
            return Err(ProgramError::invalid(
                "invalid_request",
                "say what must change: a note is required",
            ));
        }
        StepState::NotApplicable if applies(step, &draft) => {
            return Err(ProgramError::conflict(
                "step_applies",
                format!("the {step} step applies to this app"),
            ));
        }
        _ => {}
    }
    let Some(seen) = draft_version else {
        return Err(ProgramError::invalid(
            "invalid_request",
            format!(
                "draft_version is required: the version of the draft the decision was made on (the review shows it; it is {current_version} now)"
            ),
        )
        .with("field", "draft_version")
        .with("draft_version", current_version));
    };
    if seen != current_version {
        return Err(draft_changed(db, &app.client_id, seen, current_version).await?);
    }
    let current = review.step_state(step);
    let reopening_live = decision == StepState::ChangesRequested
        && current == StepState::Approved
        && app.stage != Stage::Draft;
    if !review.is_open() && !reopening_live {
        return Err(ProgramError::conflict(
            "review_closed",
            format!(
                "review {} is {}; the partner must submit again",
                review.number, review.state
            ),
        )
        .with("review_state", review.state.clone()));
    }
    let mut checklist: Option<Vec<Requirement>> = None;
    if decision == StepState::Approved {
        let findings = run_prechecks(db, &app.client_id, &draft).await?;
        let blocking: Vec<&Finding> = findings.iter().filter(|f| f.step == step).collect();
        if !blocking.is_empty() {
            return Err(ProgramError::conflict(
                "step_blocked",
                format!(
                    "the pre-checks found {} problem(s) in the {step} step; the partner must fix them first",
                    blocking.len(),
                ),
            )
            .with("findings", serde_json::to_value(&blocking).unwrap_or_default()));
        }
        if step == Step::Domain && (draft.domain.is_none() || app.domain_verified != draft.domain) {
            return Err(ProgramError::conflict(
                "domain_not_verified",
                "the domain under review has not been verified yet",
            ));
        }
        if step == Step::Production {
            let unfinished: Vec<&str> = review
                .steps
                .iter()
                .filter(|s| s.step != Step::Production && !s.state.is_done())
                .map(|s| s.step.as_str())
                .collect();
            if !unfinished.is_empty() {
                return Err(ProgramError::conflict(
                    "review_unfinished",
                    format!(
                        "every other step must be approved first: {}",
                        unfinished.join(", ")
                    ),
                )
                .with("steps", unfinished));
            }
            let endpoints = crate::store::webhooks::endpoints_of_app(db, &app.client_id).await?;
            let list = launch_checklist(app, &review, &draft, &endpoints);
            if list.iter().any(super::launch::Requirement::blocks_launch) {
                return Err(ProgramError::conflict(
                    "launch_requirements_unmet",
                    "the launch checklist is not met yet",
                )
                .with(
                    "launch_checklist",
                    serde_json::to_value(&list).unwrap_or_default(),
                ));
            }
            checklist = Some(list);
        }
    }
    let reviewer = Some(actor.to_string());
    let snap = (decision == StepState::Approved)
        .then(|| snapshot(step, &draft))
        .flatten();
    let mut tx = db.begin().await?;
    // The version is checked again under the app row's lock: an edit that landed after the
    // read above refuses the decision instead of being made live unseen.
    if let Err(current) = draft_versions::lock_version(&mut tx, &app.client_id, seen).await? {
        drop(tx);
        return Err(draft_changed(db, &app.client_id, seen, current).await?);
    }
    reviews::set_step(
        &mut tx,
        &review.id,
        &NewStep {
            step,
            state: decision,
            reviewer,
            note: note.map(str::to_string),
            snapshot: snap,
            draft_version: Some(seen),
        },
        now,
    )
    .await?;
    let mut effects = Vec::new();
    if decision == StepState::Approved {
        apps::apply_step(&mut tx, &app.client_id, step, &draft).await?;
        if step == Step::Webhooks {
            let (id, urls) = (&app.client_id, &draft.webhooks);
            if crate::webhooks::endpoints::withdraw_unapproved(&mut tx, id, urls, now).await? > 0 {
                effects.push("webhooks: endpoints no longer approved disabled");
            }
        }
        if step == Step::Scopes {
            // The draft's requests are now the live approval.
            apps::set_draft(&mut tx, &app.client_id, &draft, &[]).await?;
        }
        if step == Step::Production && app.stage != Stage::Production {
            apps::set_stage(&mut tx, &app.client_id, Stage::Production).await?;
            effects.push("stage: production");
        }
    }
    // The steps' states after this decision.
    let mut states: Vec<(Step, StepState)> =
        review.steps.iter().map(|s| (s.step, s.state)).collect();
    if let Some(s) = states.iter_mut().find(|(s, _)| *s == step) {
        s.1 = decision;
    }
    let done = |s: Step| states.iter().any(|(x, st)| *x == s && st.is_done());
    if app.stage == Stage::Draft
        && [Step::AppIdentity, Step::Scopes, Step::RedirectUris]
            .into_iter()
            .all(done)
    {
        apps::set_stage(&mut tx, &app.client_id, Stage::Preview).await?;
        effects.push("stage: preview");
    }
    let review_state = if decision == StepState::Rejected {
        "rejected"
    } else if states.iter().all(|(_, s)| s.is_done()) {
        "approved"
    } else {
        "open"
    };
    if review_state != review.state {
        reviews::set_state(&mut tx, &review.id, review_state, now).await?;
    }
    // A live app whose approved step is reopened loses the scopes that need review until the
    // step is approved again; approving every reopened step gives them back.
    if reopening_live
        && auto_limit(
            &mut tx,
            now,
            app,
            AccessReason::ReviewReopened,
            note,
            json!({ "step": step.as_str() }),
        )
        .await?
    {
        effects.push("access: limited (review_reopened)");
    }
    let nothing_reopened = states
        .iter()
        .all(|(s, st)| *s == Step::Production || *st != StepState::ChangesRequested);
    if decision == StepState::Approved && nothing_reopened {
        match auto_restore(
            &mut tx,
            now,
            app,
            AccessReason::ReviewReopened,
            json!({ "step": step.as_str() }),
        )
        .await?
        {
            Some(AccessState::Active) => effects.push("access: active (restored)"),
            Some(_) => effects.push("access: review_reopened cleared; other causes remain"),
            None => {}
        }
    }
    app_event(
        &mut tx,
        now,
        actor,
        app,
        "review.step_decided",
        json!({
            "review": review.number,
            "step": step.as_str(),
            "state": decision,
            "note": note,
            "effects": effects,
            "launch_checklist": checklist,
            "draft_version": seen,
        }),
    )
    .await?;
    tx.commit().await?;
    let app = any_app(db, &app.client_id).await?;
    Ok(DecisionOutcome {
        review: review_view(db, &app).await?,
        stage: app.stage,
        access: access_view(db, &app).await?,
        effects,
    })
}

/// One field of a step whose draft value differs from the value last approved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldChange {
    pub field: &'static str,
    /// As approved (`null` when the approval did not record the field).
    pub before: Value,
    /// In the draft now.
    pub after: Value,
}

/// What changed in `step`'s fields between the snapshot of its last approval (`approved`, as
/// `apps::snapshot` wrote it) and `draft`, in the order of `Step::fields`. A step that covers
/// no field has no change.
pub fn step_diff(step: Step, approved: &Value, draft: &super::AppDraft) -> Vec<FieldChange> {
    let Some(now) = snapshot(step, draft) else {
        return Vec::new();
    };
    step.fields()
        .iter()
        .filter_map(|field| {
            let before = approved.get(*field).cloned().unwrap_or(Value::Null);
            let after = now.get(*field).cloned().unwrap_or(Value::Null);
            // A field added after the approval, still at its default, is no change.
            let unchanged = before == after
                || (approved.get(*field).is_none() && after == recorded_value(approved, field));
            (!unchanged).then_some(FieldChange {
                field,
                before,
                after,
            })
        })
        .collect()
}

/// The step's fields as they stand in `draft` (field, value), in the order of `Step::fields`.
pub fn step_values(step: Step, draft: &super::AppDraft) -> Vec<(&'static str, Value)> {
    let now = snapshot(step, draft).unwrap_or(Value::Null);
    step.fields()
        .iter()
        .map(|f| (*f, now.get(*f).cloned().unwrap_or(Value::Null)))
        .collect()
}

/// The last approval of one step: the step's fields as they were approved, on which draft
/// version, by whom and when.
#[derive(Debug, Clone)]
pub struct Approval {
    pub snapshot: Value,
    pub draft_version: Option<i64>,
    pub reviewer: Option<String>,
    pub at: Option<Timestamp>,
}

/// The last approval of each step of the app, across all its reviews: read from the audit
/// log's decisions (each names the draft version it was made on, which the kept draft versions
/// give back), else from a step row that is approved now (its snapshot is what was approved).
pub async fn last_approvals(
    db: &Db,
    client_id: &str,
    review: Option<&Review>,
) -> Result<std::collections::BTreeMap<Step, Approval>> {
    let mut found: std::collections::BTreeMap<Step, (i64, String, Timestamp)> =
        std::collections::BTreeMap::new();
    for e in crate::store::audit::of_app_action(db, client_id, "review.step_decided").await? {
        let step = e
            .detail
            .get("step")
            .and_then(Value::as_str)
            .and_then(Step::parse);
        let approved = e.detail.get("state").and_then(Value::as_str) == Some("approved");
        let version = e.detail.get("draft_version").and_then(Value::as_i64);
        if let (Some(step), true, Some(v)) = (step, approved, version) {
            // Newest first: the first approval seen is the last one made.
            found.entry(step).or_insert((v, e.actor, e.at));
        }
    }
    let mut out = std::collections::BTreeMap::new();
    if let Some(oldest) = found.values().map(|(v, _, _)| *v).min() {
        let versions = draft_versions::since(db, client_id, oldest).await?;
        for (step, (v, actor, at)) in found {
            let snap = versions
                .iter()
                .find(|x| x.version == v)
                .and_then(|x| snapshot(step, &x.draft()));
            if let Some(snapshot) = snap {
                out.insert(
                    step,
                    Approval {
                        snapshot,
                        draft_version: Some(v),
                        reviewer: Some(actor),
                        at: Some(at),
                    },
                );
            }
        }
    }
    for rec in review.map(|r| r.steps.as_slice()).unwrap_or_default() {
        if let (StepState::Approved, Some(snap), false) =
            (rec.state, &rec.snapshot, out.contains_key(&rec.step))
        {
            out.insert(
                rec.step,
                Approval {
                    snapshot: snap.clone(),
                    draft_version: rec.draft_version,
                    reviewer: rec.reviewer.clone(),
                    at: Some(rec.updated_at),
                },
            );
        }
    }
    Ok(out)
}

#[cfg(test)]
mod diff_tests {
    use super::*;
    use crate::partner::AppDraft;

    fn draft() -> AppDraft {
        AppDraft {
            name: "Travel Buddy".into(),
            description: "Plan trips.".into(),
            consent_copy: "We never share.".into(),
            redirect_uris: vec!["https://app.example/cb".into()],
            ..AppDraft::default()
        }
    }

    #[test]
    fn an_unchanged_draft_has_no_change_against_its_own_approval() {
        let d = draft();
        let approved = snapshot(Step::AppIdentity, &d).unwrap();
        assert!(step_diff(Step::AppIdentity, &approved, &d).is_empty());
    }

    #[test]
    fn a_changed_field_shows_before_and_after_and_only_the_steps_fields_count() {
        let before = draft();
        let approved = snapshot(Step::AppIdentity, &before).unwrap();
        let mut after = before.clone();
        after.name = "Trip Buddy".into();
        after.redirect_uris.push("https://app.example/other".into());
        let changes = step_diff(Step::AppIdentity, &approved, &after);
        assert_eq!(
            changes,
            [FieldChange {
                field: "name",
                before: json!("Travel Buddy"),
                after: json!("Trip Buddy"),
            }]
        );
        let approved = snapshot(Step::RedirectUris, &before).unwrap();
        let changes = step_diff(Step::RedirectUris, &approved, &after);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "redirect_uris");
        assert_eq!(changes[0].before, json!(["https://app.example/cb"]));
    }

    #[test]
    fn a_field_the_approval_did_not_record_counts_as_changed_from_nothing() {
        let d = draft();
        let changes = step_diff(Step::AppIdentity, &json!({ "name": "Travel Buddy" }), &d);
        let fields: Vec<&str> = changes.iter().map(|c| c.field).collect();
        assert_eq!(fields, ["description", "consent_copy"]);
        assert_eq!(changes[0].before, Value::Null);
    }

    #[test]
    fn a_field_added_after_the_approval_is_no_change_while_it_keeps_its_default() {
        let mut d = draft();
        let mut approved = snapshot(Step::RedirectUris, &d).unwrap();
        approved
            .as_object_mut()
            .unwrap()
            .remove("require_pushed_authorization_requests");
        assert!(step_diff(Step::RedirectUris, &approved, &d).is_empty());
        d.require_pushed_authorization_requests = true;
        let changes = step_diff(Step::RedirectUris, &approved, &d);
        assert_eq!(changes.len(), 1);
        assert_eq!(changes[0].field, "require_pushed_authorization_requests");
        assert_eq!(
            (changes[0].before.clone(), changes[0].after.clone()),
            (Value::Null, json!(true))
        );
    }

    #[test]
    fn a_step_without_fields_has_no_diff_and_no_values() {
        assert!(step_diff(Step::Company, &json!({}), &draft()).is_empty());
        assert!(step_values(Step::Company, &draft()).is_empty());
        let values = step_values(Step::Support, &draft());
        assert_eq!(values, [("support_url", Value::Null)]);
    }
}
