//! Polling until something holds, with a deadline and a message that says
//! what was awaited.

use std::future::Future;
use std::time::{Duration, Instant};

/// Polls `f` (every 50 ms, backing off to 500 ms) until it returns true;
/// panics with "timed out after … waiting for {what}" once `deadline` passed.
pub async fn wait_for<F, Fut>(deadline: Duration, what: &str, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let start = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        if f().await {
            return;
        }
        if start.elapsed() >= deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(500));
    }
}
