//! Summarised logging for a fault that lasts: the first occurrence is
//! logged at once, later ones at most once an interval, with how many were
//! left out in between. A full disk refuses every group commit; without
//! this, each refusal would be a log line. [`KeyedLogLimit`] does the same
//! per kind of occurrence, so a frequent kind does not hide a rare one.
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

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

/// How often one kind of repeated log line may be written.
#[derive(Debug)]
pub struct LogLimit {
    interval: Duration,
    state: Mutex<LimitState>,
}

#[derive(Debug, Default)]
struct LimitState {
    last_logged: Option<Instant>,
    suppressed: u64,
}

impl LimitState {
    fn admit_at(&mut self, interval: Duration, now: Instant) -> Option<u64> {
        let due = self
            .last_logged
            .is_none_or(|last| now.saturating_duration_since(last) >= interval);
        if due {
            self.last_logged = Some(now);
            Some(std::mem::take(&mut self.suppressed))
        } else {
            self.suppressed += 1;
            None
        }
    }
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
        self.state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .admit_at(self.interval, now)
    }
}

/// A [`LogLimit`] per key. At most `max_keys` keys are tracked; any
/// further key shares one more limit, so memory stays bounded whatever
/// the keys (which may come from clients).
#[derive(Debug)]
pub struct KeyedLogLimit<K> {
    interval: Duration,
    max_keys: usize,
    state: Mutex<KeyedState<K>>,
}

#[derive(Debug)]
struct KeyedState<K> {
    keys: BTreeMap<K, LimitState>,
    overflow: LimitState,
}

impl<K: Ord> KeyedLogLimit<K> {
    pub const fn new(interval: Duration, max_keys: usize) -> Self {
        KeyedLogLimit {
            interval,
            max_keys,
            state: Mutex::new(KeyedState {
                keys: BTreeMap::new(),
                overflow: LimitState {
                    last_logged: None,
                    suppressed: 0,
                },
            }),
        }
    }

    /// Whether this occurrence of `key` is logged: `Some(n)` with the `n`
    /// occurrences of it left out since its last logged one.
    pub fn admit(&self, key: K) -> Option<u64> {
        self.admit_at(key, Instant::now())
    }

    fn admit_at(&self, key: K, now: Instant) -> Option<u64> {
        let mut st = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let KeyedState { keys, overflow } = &mut *st;
        let room = keys.len() < self.max_keys;
        let limit = match keys.entry(key) {
            std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::btree_map::Entry::Vacant(e) if room => {
                e.insert(LimitState::default())
            }
            std::collections::btree_map::Entry::Vacant(_) => overflow,
        };
        limit.admit_at(self.interval, now)
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

    #[test]
    fn each_key_has_its_own_interval_and_keys_beyond_the_cap_share_one() {
        let limit = KeyedLogLimit::new(Duration::from_secs(10), 2);
        let t0 = Instant::now();
        assert_eq!(limit.admit_at("a", t0), Some(0));
        assert_eq!(limit.admit_at("a", t0), None);
        // A rare key is not hidden by a frequent one.
        assert_eq!(limit.admit_at("b", t0), Some(0));
        // Beyond two keys: one shared limit.
        assert_eq!(limit.admit_at("c", t0), Some(0));
        assert_eq!(limit.admit_at("d", t0), None);
        assert_eq!(limit.admit_at("a", t0 + Duration::from_secs(10)), Some(1));
        assert_eq!(limit.admit_at("e", t0 + Duration::from_secs(10)), Some(1));
    }
}
