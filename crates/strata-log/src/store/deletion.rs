//! Deleting records: DeleteRecords, replacing a partition's records, and
//! asking the sealing thread to remove the WAL segments nobody holds, to
//! compact the WAL now, or to hold its background compaction back.

use std::sync::{Arc, PoisonError};

use bytes::Bytes;
use tracing::{info, warn};

use super::LogStore;
use crate::append::PendingBatch;
use crate::housekeeping::SealTask;
use crate::partition::PartitionLog;
use crate::walk::Held;
use crate::LogError;

impl LogStore {
    /// Raises a partition's log start offset (`-1`: to the high watermark).
    /// Returns the new low watermark.
    pub fn delete_records(&self, partition: &PartitionLog, offset: i64) -> Result<i64, LogError> {
        let _admin = self.admin.lock().unwrap_or_else(PoisonError::into_inner);
        let previous;
        let new_start;
        {
            let mut st = partition.state_mut();
            let target = if offset == -1 {
                st.high_watermark
            } else {
                offset
            };
            if target < 0 || target > st.high_watermark {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start: st.log_start,
                    high_watermark: st.high_watermark,
                });
            }
            previous = st.log_start;
            new_start = target.max(st.log_start);
            st.log_start = new_start;
        }
        if let Err(e) = self.save_meta() {
            partition.state_mut().log_start = previous;
            return Err(e);
        }
        if let Err(e) =
            partition.with_batches_mut(&mut Held::new(), |st, idx| st.drop_below_log_start(idx))
        {
            // The batches stay counted until retention's next pass drops them.
            warn!(error = %e, "cannot drop the batches below a new log start yet");
        }
        self.request_removal();
        Ok(new_start)
    }

    /// Replaces a partition's records with `batches`: they are appended
    /// (durably), then the log start moves to the first of them, so the
    /// partition holds them and whatever was appended after them. How a
    /// coordinator rewrites its internal topic in a new layout, before it
    /// serves; a crash between the two steps leaves old and new records,
    /// and the rewrite is done again.
    pub async fn replace_records(
        &self,
        partition: &Arc<PartitionLog>,
        batches: Vec<Bytes>,
    ) -> Result<(), LogError> {
        let (_, high_watermark) = partition.bounds();
        let count = batches.len();
        let pending = batches
            .into_iter()
            .map(|batch| PendingBatch {
                partition: Arc::clone(partition),
                batch,
                log_append_time: false,
            })
            .collect();
        let results = self.append(pending).await;
        if results.len() != count {
            return Err(LogError::StorageUnavailable);
        }
        let mut start = None;
        for appended in results {
            start.get_or_insert(appended?.base_offset);
        }
        self.delete_records(partition, start.unwrap_or(high_watermark))?;
        Ok(())
    }

    /// Has the sealing thread compact every run of WAL segments `policy`
    /// finds due, now, and waits for it (`strata wal compact`).
    pub fn compact_wal(
        &self,
        policy: crate::wal_compaction::CompactionPolicy,
    ) -> Result<crate::wal_compaction::CompactionTotals, LogError> {
        self.ask_sealer(|reply| SealTask::CompactNow(policy, reply))
    }

    /// Has the sealing thread rewrite every sealed segment whose
    /// partitions' batches are interleaved with its batches grouped by
    /// partition, now, and waits for it (`strata wal compact --regroup`).
    pub fn regroup_wal(&self) -> Result<crate::wal_compaction::CompactionTotals, LogError> {
        self.ask_sealer(SealTask::RegroupNow)
    }

    fn ask_sealer(
        &self,
        task: impl FnOnce(std::sync::mpsc::Sender<crate::wal_compaction::CompactionTotals>) -> SealTask,
    ) -> Result<crate::wal_compaction::CompactionTotals, LogError> {
        let (reply, answer) = std::sync::mpsc::channel();
        let sealer = self
            .removal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let sent = sealer.is_some_and(|tx| tx.send(task(reply)).is_ok());
        if !sent {
            return Err(LogError::ShuttingDown);
        }
        answer.recv().map_err(|_| LogError::ShuttingDown)
    }

    /// Has the sealing thread remove the WAL segments no partition holds.
    pub(super) fn request_removal(&self) {
        self.removal_wanted
            .store(true, std::sync::atomic::Ordering::Release);
        if let Some(tx) = &*self.removal.lock().unwrap_or_else(PoisonError::into_inner) {
            // A full queue has tasks the sealer will get to; the flag
            // makes it remove then.
            let _ = tx.try_send(SealTask::Remove);
        }
    }

    /// Holds background compaction (key and WAL) back, or lets it go on
    /// again. A run under way is given up at its next batch (its temporary
    /// file removed, its segments left as they were) and started over
    /// after the pause. Compaction asked for ([`Self::compact_wal`]) is
    /// not held back. Not kept across restarts.
    pub fn pause_compaction(&self, paused: bool) {
        let was = self
            .compaction_paused
            .swap(paused, std::sync::atomic::Ordering::AcqRel);
        crate::metrics::set_compaction_paused(paused);
        if was == paused {
            return;
        }
        if paused {
            info!("background compaction paused");
        } else {
            info!("background compaction resumed");
            if let Some(tx) = &*self.removal.lock().unwrap_or_else(PoisonError::into_inner) {
                // With the queue full, compaction resumes at its next check.
                let _ = tx.try_send(SealTask::CompactionResumed);
            }
        }
    }

    /// Whether background compaction is paused.
    pub fn compaction_paused(&self) -> bool {
        self.compaction_paused
            .load(std::sync::atomic::Ordering::Acquire)
    }
}
