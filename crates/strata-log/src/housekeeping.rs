//! The sealing thread: seals rolled WAL segments as they come, removes the
//! ones no partition holds, and between tasks compacts — key compaction
//! first (one partition a step), then WAL compaction (one run a step) — so
//! a seal or removal never waits long behind compaction, and nothing here
//! ever holds up the append path.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

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
    /// Regroup every sealed segment whose partitions' batches are
    /// interleaved, now; answer with what was done.
    RegroupNow(std::sync::mpsc::Sender<CompactionTotals>),
    /// Background compaction was paused and may go on now.
    CompactionResumed,
}

/// The sealing thread's loop around a [`Sealer`].
pub(crate) struct Housekeeper {
    pub sealer: Sealer,
    pub rx: std::sync::mpsc::Receiver<SealTask>,
    /// Set with a [`SealTask::Remove`] that found the queue full.
    pub removal_wanted: Arc<AtomicBool>,
    /// Rolled segments the appender could not queue (the queue was full
    /// while a compaction step ran): it never waits for this thread.
    pub overflow: Arc<SealOverflow>,
}

/// Rolled segments waiting for sealing beyond the task queue.
#[derive(Debug, Default)]
pub(crate) struct SealOverflow(Mutex<Vec<SegmentId>>);

impl SealOverflow {
    pub fn push(&self, id: SegmentId) {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(id);
    }

    fn take(&self) -> Vec<SegmentId> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

impl Housekeeper {
    /// Seals each rolled segment as it arrives, removes unheld ones, and
    /// compacts between tasks, until every sender is gone or the store
    /// stops.
    pub fn run(mut self) {
        use std::sync::mpsc::{RecvTimeoutError, TryRecvError};
        // Compaction also runs right after recovery.
        let mut compact_at = Instant::now();
        loop {
            let wait = compact_at.saturating_duration_since(Instant::now());
            let mut tasks = Vec::new();
            let mut disconnected = false;
            match self.rx.recv_timeout(wait) {
                Ok(task) => tasks.push(task),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => disconnected = true,
            }
            // Every task already queued is taken now: a seal never waits
            // behind more than one compaction step.
            while !disconnected {
                match self.rx.try_recv() {
                    Ok(task) => tasks.push(task),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => disconnected = true,
                }
            }
            let mut remove = self.removal_wanted.swap(false, Ordering::AcqRel);
            let mut compact_now = Vec::new();
            let mut regroup_now = Vec::new();
            let mut resumed = false;
            self.sealer.failed.extend(self.overflow.take());
            for task in tasks {
                match task {
                    SealTask::Seal(id) => self.sealer.failed.push(id),
                    SealTask::Remove => remove = true,
                    SealTask::CompactNow(policy, reply) => compact_now.push((policy, reply)),
                    SealTask::RegroupNow(reply) => regroup_now.push(reply),
                    SealTask::CompactionResumed => resumed = true,
                }
            }
            self.sealer.retry_seals();
            if remove || !compact_now.is_empty() {
                self.sealer.remove_unheld();
            }
            for (policy, reply) in compact_now {
                let _ = reply.send(self.compact_all(policy));
            }
            for reply in regroup_now {
                let _ = reply.send(self.sealer.regroup_all());
            }
            if disconnected {
                break;
            }
            if resumed {
                compact_at = Instant::now();
            }
            if self.sealer.stopping() || self.sealer.paused() {
                // Shutting down: seals go on until the appender is done,
                // compaction does not start again. Paused: seals and
                // removals go on, compaction waits.
                compact_at = Instant::now() + self.sealer.compaction.check_interval;
            } else if Instant::now() >= compact_at {
                compact_at = if self.compact_step() {
                    Instant::now()
                } else {
                    Instant::now() + self.sealer.compaction.check_interval
                };
            }
        }
    }

    /// One step: a partition's key compaction if one is due, else one WAL
    /// compaction run. True if it got somewhere (another step may follow
    /// at once).
    fn compact_step(&mut self) -> bool {
        self.sealer.background = true;
        // A failed key compaction does not hold WAL compaction up.
        let progressed = match self.sealer.compact_keys_next(crate::clock::now_ms()) {
            Some(Ok(_)) => true,
            Some(Err(())) | None if self.sealer.paused() => false,
            Some(Err(())) | None => {
                matches!(self.sealer.compact_next(), Some(Ok(run)) if run.reclaimed_bytes > 0)
            }
        };
        self.sealer.background = false;
        if progressed {
            self.sealer.remove_unheld();
        }
        progressed
    }

    /// Cleans every compacted partition that is due, then compacts every
    /// run `policy` finds due, one after another.
    fn compact_all(&mut self, policy: CompactionPolicy) -> CompactionTotals {
        let configured = self.sealer.compaction.policy;
        self.sealer.compaction.policy = policy;
        let mut totals = CompactionTotals::default();
        while let Some(cleaned) = self.sealer.compact_keys_next(crate::clock::now_ms()) {
            if self.sealer.stopping() {
                break;
            }
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
