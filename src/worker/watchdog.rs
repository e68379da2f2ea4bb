//! The loop's watchdog: the loop says which step it is in ([`step`]) and
//! that it is alive ([`alive`], e.g. at every 100 ms tick while objects are
//! counted); a thread announces `stalled` when one step has made no progress
//! for [`STALL_AFTER`], and again every [`STALL_AFTER`] it goes on. Every
//! blocking call of the loop has a bound of its own; this is how an operator
//! (and a failing test's log) learns which one did not keep it.
//!
//! One loop per process: the step is process-wide, so the transaction and
//! the group code mark their steps without being handed a watchdog.

use crate::events::Event;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// No progress in one step for this long is announced.
pub const STALL_AFTER: Duration = Duration::from_secs(60);

/// The current step and when it last made progress.
static STEP: Mutex<Option<(&'static str, Instant)>> = Mutex::new(None);

/// The loop enters `name` now.
pub fn step(name: &'static str) {
    if let Ok(mut s) = STEP.lock() {
        *s = Some((name, Instant::now()));
    }
}

/// The current step made progress.
pub fn alive() {
    if let Ok(mut s) = STEP.lock() {
        if let Some((_, since)) = s.as_mut() {
            *since = Instant::now();
        }
    }
}

/// The step that has made no progress for at least `after`, and for how long.
fn stalled(after: Duration) -> Option<(&'static str, Duration)> {
    let s = STEP.lock().ok()?;
    let (name, since) = (*s)?;
    let idle = since.elapsed();
    (idle >= after).then_some((name, idle))
}

/// The watchdog's thread; stops when dropped.
pub struct Watchdog {
    stop: Arc<AtomicBool>,
}

impl Watchdog {
    /// Starts watching (a check per second).
    pub fn start() -> Watchdog {
        let stop = Arc::new(AtomicBool::new(false));
        let watching = Arc::clone(&stop);
        let _ = std::thread::Builder::new()
            .name("watchdog".into())
            .spawn(move || {
                let mut announced = Duration::ZERO;
                while !watching.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_secs(1));
                    match stalled(STALL_AFTER) {
                        Some((step, idle)) if idle >= announced + STALL_AFTER => {
                            announced = idle;
                            Event::Stalled {
                                step: step.to_string(),
                                seconds: idle.as_secs(),
                            }
                            .emit();
                        }
                        Some(_) => {}
                        None => announced = Duration::ZERO,
                    }
                }
            });
        Watchdog { stop }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_without_progress_is_stalled_and_alive_resets_it() {
        step("test.step");
        assert_eq!(stalled(Duration::from_secs(3600)), None);
        std::thread::sleep(Duration::from_millis(30));
        let (name, idle) = stalled(Duration::from_millis(20)).expect("stalled");
        assert_eq!(name, "test.step");
        assert!(idle >= Duration::from_millis(20));
        alive();
        assert_eq!(stalled(Duration::from_millis(20)), None);
    }
}
