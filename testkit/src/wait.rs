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
    let mut pause = Duration::from_millis(25);
    let next = move || {
        pause = (pause * 2).min(Duration::from_millis(500));
        pause
    };
    paced(deadline, what, next, || {
        let holds = f();
        async move { holds.await.then_some(()) }
    })
    .await
}

/// Polls `f` every `every` (for measurements: no back-off) until it
/// returns a value; panics like [`wait_for`] once `deadline` passed.
pub async fn poll<T, F, Fut>(every: Duration, deadline: Duration, what: &str, f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    paced(deadline, what, || every, f).await
}

async fn paced<T, F, Fut>(
    deadline: Duration,
    what: &str,
    mut pause: impl FnMut() -> Duration,
    mut f: F,
) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(v) = f().await {
            return v;
        }
        if start.elapsed() >= deadline {
            panic!("timed out after {deadline:?} waiting for {what}");
        }
        tokio::time::sleep(pause()).await;
    }
}
