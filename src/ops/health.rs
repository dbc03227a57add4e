//! Liveness (`GET /healthz`), readiness (`GET /readyz`), the metrics route (`GET /metrics`) and
//! the shutdown drain.
//!
//! - `/healthz` says the process answers. It touches nothing else, so a database outage does
//!   not get every instance restarted.
//! - `/readyz` says this instance should get traffic: this binary's migrations are applied,
//!   the database answers, the signing keys are loaded, and the instance is not draining.
//! - On SIGTERM the instance drains: `/readyz` fails at once while every other route keeps
//!   answering for `--drain-seconds`, so the load balancer takes it out before it stops
//!   accepting connections; then the requests in flight finish and the process exits.

use std::sync::atomic::{AtomicBool, Ordering};

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use super::metrics::Scrape;
use crate::keys::Algorithm;
use crate::startup::AppState;

/// Whether this instance is shutting down.
#[derive(Debug, Default)]
pub struct Drain(AtomicBool);

impl Drain {
    pub fn start(&self) {
        self.0.store(true, Ordering::SeqCst);
    }
    pub fn draining(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

fn no_store(status: StatusCode, body: Value) -> Response {
    let mut res = (status, axum::Json(body)).into_response();
    res.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// Liveness: the process answers HTTP.
pub async fn healthz() -> Response {
    no_store(StatusCode::OK, json!({"status": "ok"}))
}

/// Readiness, each check named; 503 with the first failure's reason when one fails.
pub async fn readyz(State(state): State<AppState>) -> Response {
    let draining = state.drain.draining();
    let (database, migrations) = match state.db.migrations_pending().await {
        Ok(0) => ("ok", "ok"),
        Ok(_) => ("ok", "pending"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness: the database does not answer");
            ("unreachable", "unknown")
        }
    };
    let now = state.now();
    let set = state.keys.current().await;
    let keys = if [Algorithm::ES256, Algorithm::RS256]
        .iter()
        .all(|alg| set.signer(*alg, now).is_some())
    {
        "ok"
    } else {
        "missing"
    };
    let reason = if draining {
        Some("this instance is shutting down")
    } else if database != "ok" {
        Some("the database does not answer")
    } else if migrations != "ok" {
        Some("the database lacks migrations of this version: run the newest version first")
    } else if keys != "ok" {
        Some("no signing key is active")
    } else {
        None
    };
    let checks = json!({
        "database": database,
        "migrations": migrations,
        "keys": keys,
        "draining": draining,
    });
    match reason {
        None => no_store(StatusCode::OK, json!({"status": "ready", "checks": checks})),
        Some(reason) => no_store(
            StatusCode::SERVICE_UNAVAILABLE,
            json!({"status": "not_ready", "reason": reason, "checks": checks}),
        ),
    }
}

/// The Prometheus text exposition (version 0.0.4).
pub async fn metrics(State(state): State<AppState>) -> Response {
    let outbox = match crate::store::webhooks::outbox_stats(&state.db, state.now()).await {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "metrics: the webhook outbox cannot be read");
            None
        }
    };
    let scrape = Scrape {
        outbox,
        pools: state.db.pool_stats(),
        waiting: state.db.waiting(),
    };
    let mut res = state.metrics.render(&scrape).into_response();
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}
