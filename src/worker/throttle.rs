//! A recurring warning logged at most once per period, saying how many were
//! left out meanwhile (a broker or S3 outage must not flood the log).

use std::time::{Duration, Instant};

/// Rate limit of one kind of warning.
pub struct Throttle {
    last: Option<Instant>,
    suppressed: u64,
    period: Duration,
}

impl Throttle {
    /// At most one warning per `period`.
    pub fn new(period: Duration) -> Self {
        Throttle {
            last: None,
            suppressed: 0,
            period,
        }
    }

    /// Logs `msg` as a warning, or at debug level when one was logged less
    /// than a period ago.
    pub fn warn(&mut self, msg: impl std::fmt::Display) {
        if self.last.is_some_and(|t| t.elapsed() < self.period) {
            self.suppressed += 1;
            tracing::debug!("{msg}");
            return;
        }
        if self.suppressed > 0 {
            tracing::warn!("{msg} ({} similar messages suppressed)", self.suppressed);
        } else {
            tracing::warn!("{msg}");
        }
        self.last = Some(Instant::now());
        self.suppressed = 0;
    }
}
