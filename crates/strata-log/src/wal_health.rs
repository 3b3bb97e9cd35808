//! Whether the WAL can take writes, as the appender last found it: shown on
//! `/ready` (503 with the reason while it cannot) and as the `wal_writable`
//! gauge.
//!
//! The appender marks the WAL unwritable when a group's write or fsync
//! fails, and writable again when a later group is durable. A WAL that
//! could not be cut back after a failure refuses every group until a
//! retried cut-back succeeds (see `append.rs`), and stays unwritable until
//! then.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};

use crate::metrics;

#[derive(Debug)]
pub struct WalHealth {
    writable: AtomicBool,
    reason: Mutex<String>,
}

impl Default for WalHealth {
    fn default() -> Self {
        metrics::set_wal_writable(true);
        WalHealth {
            writable: AtomicBool::new(true),
            reason: Mutex::new(String::new()),
        }
    }
}

impl WalHealth {
    /// Whether the last group was made durable (and nothing is pending repair).
    pub fn is_writable(&self) -> bool {
        self.writable.load(Ordering::Acquire)
    }

    /// Why the WAL cannot take writes; `None` while it can.
    pub fn problem(&self) -> Option<String> {
        if self.is_writable() {
            return None;
        }
        Some(
            self.reason
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .clone(),
        )
    }

    pub(crate) fn failed(&self, reason: String) {
        *self.reason.lock().unwrap_or_else(PoisonError::into_inner) = reason;
        if self.writable.swap(false, Ordering::AcqRel) {
            metrics::set_wal_writable(false);
        }
    }

    pub(crate) fn recovered(&self) {
        if !self.writable.swap(true, Ordering::AcqRel) {
            metrics::set_wal_writable(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_is_reported_until_a_write_succeeds() {
        let health = WalHealth::default();
        assert!(health.is_writable());
        assert_eq!(health.problem(), None);
        health.failed("WAL write failed: No space left on device".into());
        assert!(!health.is_writable());
        assert_eq!(
            health.problem().as_deref(),
            Some("WAL write failed: No space left on device")
        );
        health.recovered();
        assert!(health.is_writable());
        assert_eq!(health.problem(), None);
    }
}
