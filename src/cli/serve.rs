//! `onyx-id serve`: bind, build the state, run the server until it stops.

use std::process::ExitCode;
use std::sync::Arc;

use super::output::fail;
use crate::clock::SystemClock;
use crate::config::Settings;

pub async fn run(settings: Settings) -> ExitCode {
    let listener = match tokio::net::TcpListener::bind(settings.bind).await {
        Ok(l) => l,
        Err(e) => return fail(format!("cannot listen on {}: {e}", settings.bind)),
    };
    let internal = match settings.metrics_bind {
        Some(addr) => match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => Some(l),
            Err(e) => return fail(format!("cannot listen on {addr} (ONYX_METRICS_BIND): {e}")),
        },
        None => None,
    };
    let issuer = settings.issuer.as_str().to_string();
    let state = match crate::startup::build_state(settings, Arc::new(SystemClock)).await {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot start: {e:#}")),
    };
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, %issuer, "onyx-id is listening"),
        Err(_) => tracing::info!(%issuer, "onyx-id is listening"),
    }
    if let Some(addr) = internal.as_ref().and_then(|l| l.local_addr().ok()) {
        tracing::info!(%addr, "metrics are served at http://{addr}/metrics");
    }
    match crate::startup::run(listener, internal, state).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
