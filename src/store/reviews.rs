//! Reviews of partner apps: one per submission, each with the steps of the partner program and,
//! per step, its state, reviewer, note and the draft fields it approved (`snapshot`), so that a
//! later change to one of those fields reopens exactly that step.

use serde::Serialize;
use serde_json::Value;
use sqlx::FromRow;

use super::{Db, Pool, Tx};
use crate::clock::Timestamp;
use crate::crypto::random_id;
use crate::partner::{Finding, Step, StepState};
use crate::webhooks::events::ReviewUpdatedData;
use crate::webhooks::{Event, EventKind};

#[derive(Debug, Clone, Serialize)]
pub struct StepRecord {
    pub step: Step,
    pub state: StepState,
    pub reviewer: Option<String>,
    pub note: Option<String>,
    #[serde(skip)]
    pub snapshot: Option<Value>,
    pub updated_at: Timestamp,
    /// The draft version the decision was made on (none while pending, or when decided
    /// before versions were kept).
    pub draft_version: Option<i64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct Review {
    pub id: String,
    #[serde(skip)]
    pub client_id: String,
    pub number: i64,
    /// `open`, `approved` (every step approved or not applicable) or `rejected`.
    pub state: String,
    pub submitted_at: Timestamp,
    pub closed_at: Option<Timestamp>,
    pub findings: Vec<Finding>,
    pub steps: Vec<StepRecord>,
}

impl Review {
    pub fn step(&self, step: Step) -> Option<&StepRecord> {
        self.steps.iter().find(|s| s.step == step)
    }

    pub fn step_state(&self, step: Step) -> StepState {
        self.step(step).map_or(StepState::Pending, |s| s.state)
    }

    pub fn is_open(&self) -> bool {
        self.state == "open"
    }
}

#[derive(FromRow)]
struct ReviewRow {
    id: String,
    client_id: String,
    number: i64,
    state: String,
    submitted_at: Timestamp,
    closed_at: Option<Timestamp>,
    findings: String,
}

#[derive(FromRow)]
struct StepRow {
    step: String,
    state: String,
    reviewer: Option<String>,
    note: Option<String>,
    snapshot: Option<String>,
    updated_at: Timestamp,
    draft_version: Option<i64>,
}

async fn steps_of(pool: &Pool, review_id: &str) -> Result<Vec<StepRecord>, sqlx::Error> {
    let rows: Vec<StepRow> = sqlx::query_as(
        "SELECT step, state, reviewer, note, snapshot, updated_at, draft_version FROM review_steps
         WHERE review_id = $1",
    )
    .bind(review_id)
    .fetch_all(pool)
    .await?;
    let mut steps: Vec<StepRecord> = rows
        .into_iter()
        .filter_map(|r| {
            Some(StepRecord {
                step: Step::parse(&r.step)?,
                state: StepState::parse(&r.state)?,
                reviewer: r.reviewer,
                note: r.note,
                snapshot: r.snapshot.and_then(|s| serde_json::from_str(&s).ok()),
                updated_at: r.updated_at,
                draft_version: r.draft_version,
            })
        })
        .collect();
    steps.sort_by_key(|s| s.step);
    Ok(steps)
}

/// The app's latest review, if it was ever submitted.
pub async fn latest(db: &Db, client_id: &str) -> Result<Option<Review>, sqlx::Error> {
    let pool = &db.pool;
    let row: Option<ReviewRow> = sqlx::query_as(
        "SELECT id, client_id, number, state, submitted_at, closed_at, findings FROM reviews
         WHERE client_id = $1 ORDER BY number DESC LIMIT 1",
    )
    .bind(client_id)
    .fetch_optional(pool)
    .await?;
    let Some(r) = row else {
        return Ok(None);
    };
    let steps = steps_of(pool, &r.id).await?;
    Ok(Some(Review {
        findings: serde_json::from_str(&r.findings).unwrap_or_default(),
        id: r.id,
        client_id: r.client_id,
        number: r.number,
        state: r.state,
        submitted_at: r.submitted_at,
        closed_at: r.closed_at,
        steps,
    }))
}

/// Open reviews, oldest submission first: the operators' queue.
pub async fn open_queue(db: &Db) -> Result<Vec<Review>, sqlx::Error> {
    let pool = &db.pool;
    let ids: Vec<(String,)> = sqlx::query_as(
        "SELECT client_id FROM reviews WHERE state = 'open' ORDER BY submitted_at, number",
    )
    .fetch_all(pool)
    .await?;
    let mut out = Vec::new();
    for (client_id,) in ids {
        if let Some(r) = latest(db, &client_id).await? {
            out.push(r);
        }
    }
    Ok(out)
}

/// One step as a new review starts it.
pub struct NewStep {
    pub step: Step,
    pub state: StepState,
    pub reviewer: Option<String>,
    pub note: Option<String>,
    pub snapshot: Option<Value>,
    /// The draft version this state was set on.
    pub draft_version: Option<i64>,
}

/// Opens review number `number` for the app.
pub async fn open(
    tx: &mut Tx<'_>,
    client_id: &str,
    number: i64,
    findings: &[Finding],
    steps: &[NewStep],
    now: Timestamp,
) -> Result<String, sqlx::Error> {
    let id = random_id();
    sqlx::query(
        "INSERT INTO reviews (id, client_id, number, state, submitted_at, findings)
         VALUES ($1, $2, $3, 'open', $4, $5)",
    )
    .bind(&id)
    .bind(client_id)
    .bind(number)
    .bind(now)
    .bind(serde_json::to_string(findings).unwrap_or_else(|_| "[]".into()))
    .execute(&mut **tx)
    .await?;
    for s in steps {
        sqlx::query(
            "INSERT INTO review_steps
                 (review_id, step, state, reviewer, note, snapshot, updated_at, draft_version)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&id)
        .bind(s.step.as_str())
        .bind(s.state.as_str())
        .bind(s.reviewer.as_deref())
        .bind(s.note.as_deref())
        .bind(s.snapshot.as_ref().map(Value::to_string))
        .bind(now)
        .bind(s.draft_version)
        .execute(&mut **tx)
        .await?;
    }
    Ok(id)
}

/// Sets one step.
pub async fn set_step(
    tx: &mut Tx<'_>,
    review_id: &str,
    step: &NewStep,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE review_steps SET state = $1, reviewer = $2, note = $3, snapshot = $4, updated_at = $5,
             draft_version = $6
         WHERE review_id = $7 AND step = $8",
    )
    .bind(step.state.as_str())
    .bind(step.reviewer.as_deref())
    .bind(step.note.as_deref())
    .bind(step.snapshot.as_ref().map(Value::to_string))
    .bind(now)
    .bind(step.draft_version)
    .bind(review_id)
    .bind(step.step.as_str())
    .execute(&mut **tx)
    .await?;
    // Partners hear of the decision in the transaction that makes it.
    let client_id: String = sqlx::query_scalar("SELECT client_id FROM reviews WHERE id = $1")
        .bind(review_id)
        .fetch_one(&mut **tx)
        .await?;
    let data = ReviewUpdatedData {
        client_id: client_id.clone(),
        step: step.step.as_str().to_string(),
        state: step.state.as_str().to_string(),
        note: step.note.clone(),
    };
    let event = Event::new(EventKind::AppReviewUpdated(data), now);
    let _ = crate::webhooks::enqueue(tx, &client_id, &event, now).await?;
    Ok(())
}

/// Sets the review's state (`open`, `approved`, `rejected`); closing ones record when.
pub async fn set_state(
    tx: &mut Tx<'_>,
    review_id: &str,
    state: &str,
    now: Timestamp,
) -> Result<(), sqlx::Error> {
    let closed_at = (state != "open").then_some(now);
    sqlx::query("UPDATE reviews SET state = $1, closed_at = $2 WHERE id = $3")
        .bind(state)
        .bind(closed_at)
        .bind(review_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

pub async fn set_findings(
    tx: &mut Tx<'_>,
    review_id: &str,
    findings: &[Finding],
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE reviews SET findings = $1 WHERE id = $2")
        .bind(serde_json::to_string(findings).unwrap_or_else(|_| "[]".into()))
        .bind(review_id)
        .execute(&mut **tx)
        .await?;
    Ok(())
}
