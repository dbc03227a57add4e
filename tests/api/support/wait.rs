//! Waiting for what happens in the background (webhook deliveries, back-channel logout, the
//! purge): a probe asked again until it answers or a generous deadline passes. The deadline is
//! long because CI runs the whole suite on two loaded cores, where a delivery can take seconds;
//! a probe that succeeds returns at once, so a passing test never waits for it.

use std::future::Future;
use std::time::{Duration, Instant};

/// How long anything in the background may take before a test gives up on it.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Asks `probe` every `every` until it gives `Some`, for up to [`PATIENCE`]; `None` if it never did.
pub async fn until<T, F, Fut>(every: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(v) = probe().await {
            return Some(v);
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(every).await;
    }
}
