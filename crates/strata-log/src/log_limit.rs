//! Summarised logging for a fault that lasts: the first occurrence is
//! logged at once, later ones at most once an interval, with how many were
//! left out in between. A full disk refuses every group commit; without
//! this, each refusal would be a log line.
//!
//! ```
//! use std::time::Duration;
//! use strata_log::log_limit::LogLimit;
//!
//! static DISK_FULL: LogLimit = LogLimit::new(Duration::from_secs(10));
//! if let Some(suppressed) = DISK_FULL.admit() {
//!     tracing::error!(suppressed, "WAL write failed");
//! }
//! ```

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often one kind of repeated log line may be written.
#[derive(Debug)]
pub struct LogLimit {
    interval: Duration,
    state: Mutex<LimitState>,
}

#[derive(Debug)]
struct LimitState {
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl LogLimit {
    pub const fn new(interval: Duration) -> Self {
        LogLimit {
            interval,
            state: Mutex::new(LimitState {
                last_logged: None,
                suppressed: 0,
            }),
        }
    }

    /// Whether this occurrence is logged: `Some(n)` with the `n`
    /// occurrences left out since the last logged one, or `None` to stay
    /// quiet.
    pub fn admit(&self) -> Option<u64> {
        self.admit_at(Instant::now())
    }

    fn admit_at(&self, now: Instant) -> Option<u64> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let due = st
            .last_logged
            .is_none_or(|last| now.saturating_duration_since(last) >= self.interval);
        if due {
            st.last_logged = Some(now);
            Some(std::mem::take(&mut st.suppressed))
        } else {
            st.suppressed += 1;
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_occurrence_then_one_summary_per_interval() {
        let limit = LogLimit::new(Duration::from_secs(10));
        let t0 = Instant::now();
        assert_eq!(limit.admit_at(t0), Some(0));
        for i in 1..=500 {
            assert_eq!(limit.admit_at(t0 + Duration::from_millis(i)), None);
        }
        assert_eq!(limit.admit_at(t0 + Duration::from_secs(10)), Some(500));
        assert_eq!(limit.admit_at(t0 + Duration::from_secs(11)), None);
        assert_eq!(limit.admit_at(t0 + Duration::from_secs(25)), Some(1));
    }
}
