//! The sealing thread: seals rolled WAL segments as they come, removes the
//! ones no partition holds, and between tasks compacts — key compaction
//! first (one partition a step), then WAL compaction (one run a step) — so
//! a seal or removal never waits long behind compaction, and nothing here
//! ever holds up the append path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use strata_wal::SegmentId;

use crate::seal::Sealer;
use crate::wal_compaction::{CompactionPolicy, CompactionTotals};

/// Work for the sealing thread.
#[derive(Debug)]
pub(crate) enum SealTask {
    /// A rolled segment, all of whose batches are durable and published.
    Seal(SegmentId),
    /// Records or topics were deleted: remove the segments nobody holds.
    Remove,
    /// Compact every run `policy` finds due, now; answer with what was done.
    CompactNow(CompactionPolicy, std::sync::mpsc::Sender<CompactionTotals>),
}

/// The sealing thread's loop around a [`Sealer`].
pub(crate) struct Housekeeper {
    pub sealer: Sealer,
    pub rx: std::sync::mpsc::Receiver<SealTask>,
    /// Set with a [`SealTask::Remove`] that found the queue full.
    pub removal_wanted: Arc<AtomicBool>,
}

impl Housekeeper {
    /// Seals each rolled segment as it arrives, removes unheld ones, and
    /// compacts the WAL between tasks, until every sender is gone.
    pub fn run(mut self) {
        use std::sync::mpsc::RecvTimeoutError;
        // Compaction also runs right after recovery.
        let mut compact_at = std::time::Instant::now();
        loop {
            let wait = compact_at.saturating_duration_since(std::time::Instant::now());
            let task = match self.rx.recv_timeout(wait) {
                Ok(task) => Some(task),
                Err(RecvTimeoutError::Timeout) => None,
                Err(RecvTimeoutError::Disconnected) => break,
            };
            let mut remove = self.removal_wanted.swap(false, Ordering::AcqRel);
            match task {
                Some(SealTask::Seal(id)) => self.sealer.failed.push(id),
                Some(SealTask::Remove) => remove = true,
                Some(SealTask::CompactNow(policy, reply)) => {
                    self.sealer.retry_seals();
                    self.sealer.remove_unheld();
                    let _ = reply.send(self.compact_all(policy));
                    continue;
                }
                None => {}
            }
            self.sealer.retry_seals();
            if remove {
                self.sealer.remove_unheld();
            }
            if std::time::Instant::now() >= compact_at {
                // One step at a time, so seals and removals never wait
                // long; another follows at once if this one did something.
                // Key compaction first (one partition a step), then the WAL.
                let now_ms = crate::clock::now_ms();
                let progressed = match self.sealer.compact_keys_next(now_ms) {
                    Some(done) => done.is_ok(),
                    None => {
                        matches!(self.sealer.compact_next(), Some(Ok(run)) if run.reclaimed_bytes > 0)
                    }
                };
                compact_at = if progressed {
                    self.sealer.remove_unheld();
                    std::time::Instant::now()
                } else {
                    std::time::Instant::now() + self.sealer.compaction.check_interval
                };
            }
        }
    }

    /// Cleans every compacted partition that is due, then compacts every
    /// run `policy` finds due, one after another.
    fn compact_all(&mut self, policy: CompactionPolicy) -> CompactionTotals {
        let configured = self.sealer.compaction.policy;
        self.sealer.compaction.policy = policy;
        let mut totals = CompactionTotals::default();
        while let Some(cleaned) = self.sealer.compact_keys_next(crate::clock::now_ms()) {
            match cleaned {
                Ok(outcome) => {
                    totals.key_passes += 1;
                    totals.copied_bytes += outcome.copied_bytes;
                    totals.reclaimed_bytes += outcome.reclaimed_bytes;
                }
                Err(()) => {
                    totals.failed_runs += 1;
                    break;
                }
            }
        }
        loop {
            match self.sealer.compact_next() {
                Some(Ok(outcome)) => {
                    totals.runs += 1;
                    totals.copied_bytes += outcome.copied_bytes;
                    totals.reclaimed_bytes += outcome.reclaimed_bytes;
                    self.sealer.remove_unheld();
                    if outcome.reclaimed_bytes == 0 {
                        // Nothing came back: the plan would choose it again.
                        break;
                    }
                }
                Some(Err(())) => {
                    totals.failed_runs += 1;
                    break;
                }
                None => break,
            }
        }
        self.sealer.compaction.policy = configured;
        totals
    }
}
