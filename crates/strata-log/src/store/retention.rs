//! Enforcing retention: moving log starts forward as `retention.ms` and
//! `retention.bytes` say, on a thread of its own, every check interval.

use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use tracing::{debug, warn};

use super::LogStore;
use crate::log_limit::LogLimit;
use crate::metrics;
use crate::partition::PartitionLog;
use crate::retention::{new_log_start, BatchFacts, Retention};
use crate::LogError;

static RETENTION_FAILED: LogLimit = LogLimit::new(Duration::from_secs(10));

impl LogStore {
    /// Removes the batches retention no longer keeps, in every partition
    /// of every topic whose `cleanup.policy` includes `delete`. Returns the
    /// batches removed.
    pub fn enforce_retention(&self, now_ms: i64) -> Result<u64, LogError> {
        let _admin = self.admin.lock().unwrap_or_else(PoisonError::into_inner);
        let mut moved: Vec<(Arc<PartitionLog>, i64)> = Vec::new();
        for topic in self.registry.topics() {
            let config = topic.config();
            if !config.delete {
                continue;
            }
            let retention = Retention {
                ms: config.retention_ms,
                bytes: config.retention_bytes,
            };
            for partition in topic.partitions() {
                let mut st = partition.state_mut();
                let facts = st.batches().iter().map(|b| BatchFacts {
                    last_offset: b.last_offset,
                    max_timestamp: b.max_timestamp,
                    len: u64::from(b.len),
                });
                let Some(start) = new_log_start(facts, st.bytes(), st.log_start, now_ms, retention)
                else {
                    continue;
                };
                moved.push((Arc::clone(&partition), st.log_start));
                st.log_start = start;
            }
        }
        if moved.is_empty() {
            return Ok(0);
        }
        if let Err(e) = self.save_meta() {
            for (partition, previous) in moved {
                partition.state_mut().log_start = previous;
            }
            return Err(e);
        }
        let (mut batches, mut bytes) = (0, 0);
        for (partition, _) in &moved {
            let mut st = partition.state_mut();
            let before = (st.batches().len(), st.bytes());
            st.drop_below_log_start();
            batches += (before.0 - st.batches().len()) as u64;
            bytes += before.1 - st.bytes();
        }
        metrics::count_by(metrics::RETENTION_DELETED_BATCHES, batches);
        metrics::count_by(metrics::RETENTION_DELETED_BYTES, bytes);
        debug!(
            partitions = moved.len(),
            batches, bytes, "retention moved log start offsets"
        );
        self.request_removal();
        Ok(batches)
    }
}

/// Runs retention every `interval` until `stop` is dropped or the store is.
pub(super) fn run(
    store: &Weak<LogStore>,
    stop: &std::sync::mpsc::Receiver<()>,
    interval: Duration,
) {
    while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(interval) {
        let Some(store) = store.upgrade() else {
            return;
        };
        if let Err(e) = store.enforce_retention(crate::clock::now_ms()) {
            if let Some(suppressed) = RETENTION_FAILED.admit() {
                warn!(error = %e, suppressed, "retention could not move log start offsets; retried next interval");
            }
        }
    }
}
