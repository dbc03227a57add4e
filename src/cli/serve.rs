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
    let issuer = settings.issuer.as_str().to_string();
    let state = match crate::startup::build_state(settings, Arc::new(SystemClock)).await {
        Ok(s) => s,
        Err(e) => return fail(format!("cannot start: {e:#}")),
    };
    match listener.local_addr() {
        Ok(addr) => tracing::info!(%addr, %issuer, "onyx-id is listening"),
        Err(_) => tracing::info!(%issuer, "onyx-id is listening"),
    }
    match crate::startup::run(listener, state).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => fail(e),
    }
}
