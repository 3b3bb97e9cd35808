//! Enforcing retention: moving log starts forward as `retention.ms` and
//! `retention.bytes` say, on a thread of its own, every check interval.

use std::sync::{Arc, PoisonError, Weak};
use std::time::Duration;

use tracing::{debug, warn};

use super::LogStore;
use crate::batch_list::RunFacts;
use crate::log_limit::LogLimit;
use crate::metrics;
use crate::partition::{PartitionLog, PartitionState};
use crate::retention::{new_log_start, BatchFacts, Retention};
use crate::segment_index::cache::{Indexes, NeedIndex};
use crate::walk::Held;
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
                let moves = partition.with_batches_mut(&mut Held::new(), |st, idx| {
                    let start = retained_start(st, idx, now_ms, retention)?;
                    Ok(start.map(|start| std::mem::replace(&mut st.log_start, start)))
                })?;
                if let Some(previous) = moves {
                    moved.push((Arc::clone(&partition), previous));
                }
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
            let (b, n) = partition
                .with_batches_mut(&mut Held::new(), |st, idx| st.drop_below_log_start(idx))?;
            batches += b;
            bytes += n;
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

/// The log start retention wants for a partition, if it moves. Whole
/// runs are judged by their summaries first; the run the new log start
/// falls in is then judged batch by batch (so the log start moves at
/// batch granularity while only that run's entries are needed).
fn retained_start(
    st: &PartitionState,
    idx: &Indexes<'_>,
    now_ms: i64,
    retention: Retention,
) -> Result<Option<i64>, NeedIndex> {
    let list = st.batches();
    let as_batch = |r: RunFacts| BatchFacts {
        last_offset: r.last_offset,
        max_timestamp: r.max_timestamp,
        len: r.bytes,
    };
    let by_runs = new_log_start(
        list.run_facts().map(as_batch),
        list.bytes(),
        st.log_start,
        now_ms,
        retention,
    );
    let reached = by_runs.unwrap_or(st.log_start);
    let frontier = list
        .run_facts()
        .take_while(|r| r.last_offset < reached)
        .count();
    let mut inside = Vec::new();
    list.visit_run(st.holder, frontier, idx, |b| {
        inside.push(BatchFacts {
            last_offset: b.last_offset,
            max_timestamp: b.max_timestamp,
            len: u64::from(b.len),
        });
    })?;
    let facts = list
        .run_facts()
        .take(frontier)
        .map(as_batch)
        .chain(inside)
        .chain(list.run_facts().skip(frontier + 1).map(as_batch));
    Ok(new_log_start(
        facts,
        list.bytes(),
        st.log_start,
        now_ms,
        retention,
    ))
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
