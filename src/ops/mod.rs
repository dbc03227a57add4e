//! Running onyx-id in production: Prometheus metrics, liveness and readiness, the shutdown
//! drain.

pub mod health;
pub mod layer;
pub mod metrics;
