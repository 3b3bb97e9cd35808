//! WAL compaction: space reclamation in the shared log, driven by the
//! sealing thread, never on the append path.
//!
//! A run of adjacent sealed segments ([`plan`]) is replaced by one file
//! holding their live batches, grouped by partition (so a consumer reading
//! old data reads each partition's batches back to back), which takes the
//! place of the run's last segment in WAL order:
//!
//! 1. the live batches are read from the old files, each checked against
//!    its CRC-32C; a damaged one is reported (log + metric) and dropped
//!    from its partition, never copied;
//! 2. they are written to `<last>.wal.tmp` (header: the run's first
//!    segment id), fsynced, and read back and checked whole;
//! 3. the last segment's index is removed, the file renamed over
//!    `<last>.wal`, the directory fsynced — from here a restart finds the
//!    replacement and removes the run's other segments itself;
//! 4. partitions are pointed at the copies (a batch dropped meanwhile by
//!    retention just leaves a dead copy), the replacement is sealed, and
//!    the run's other segments are removed. Readers still holding an old
//!    file keep reading it: the file's bytes live until they let go.
//!
//! Steps 1 and 2 run on compaction's own low-priority thread ([`thread`]),
//! with direct I/O where the WAL uses it ([`batch_reader`], and
//! [`strata_wal::Replacement`] through the storage seam); the others, which
//! take partitions' locks, on the sealing thread. The reads and writes are
//! paced by an I/O budget ([`budget`]), and give way at the next batch to
//! shutdown or a pause. [`regroup`] rewrites all-live segments whose
//! partitions' batches are interleaved.

mod batch_reader;
pub(crate) mod budget;
pub mod plan;
mod regroup;
mod rewrite;
pub mod thread;

use std::time::{Duration, Instant, SystemTime};

use strata_wal::SegmentId;
use tracing::{error, info, warn};

use crate::log_limit::LogLimit;
use crate::metrics;
use crate::seal::Sealer;
use crate::LogError;
pub use plan::{CompactionOptions, CompactionPolicy, CompactionTotals, SegmentStats};
pub(crate) use rewrite::{Transform, Transforms};

static COMPACTION_FAILED: LogLimit = LogLimit::new(Duration::from_secs(10));

/// What a run did.
#[derive(Debug, Default)]
pub(crate) struct RunOutcome {
    pub copied_bytes: u64,
    pub reclaimed_bytes: u64,
    pub batches: usize,
    pub damaged: usize,
}

impl Sealer {
    /// Compacts the next due run, if any: `None` when nothing is due.
    pub(crate) fn compact_next(&mut self) -> Option<Result<RunOutcome, ()>> {
        let segments = match self.segment_stats() {
            Ok(segments) => segments,
            Err(e) => {
                if let Some(suppressed) = COMPACTION_FAILED.admit() {
                    warn!(error = %e, suppressed, "cannot list WAL segments for compaction");
                }
                return None;
            }
        };
        let total: u64 = segments.iter().map(|s| s.file_bytes).sum();
        let live: u64 = segments.iter().map(|s| s.live_bytes).sum();
        metrics::set_wal_live_ratio(live, total);
        let run = plan::next_run(&segments, &self.compaction.policy)?;
        let started = Instant::now();
        match self.rewrite_run(&run, &Transforms::new()) {
            Ok(outcome) => {
                metrics::record_wal_compaction(
                    started.elapsed(),
                    outcome.copied_bytes,
                    outcome.reclaimed_bytes,
                );
                info!(
                    segments = ?run,
                    batches = outcome.batches,
                    damaged = outcome.damaged,
                    copied = outcome.copied_bytes,
                    reclaimed = outcome.reclaimed_bytes,
                    millis = started.elapsed().as_millis() as u64,
                    "compacted WAL segments"
                );
                Some(Ok(outcome))
            }
            Err(e @ (LogError::ShuttingDown | LogError::CompactionPaused)) => {
                info!(segments = ?run, reason = %e, "WAL compaction run given up; its segments stay as they were");
                Some(Err(()))
            }
            Err(e) => {
                metrics::count(metrics::WAL_COMPACTION_FAILURES);
                if let Some(suppressed) = COMPACTION_FAILED.admit() {
                    error!(segments = ?run, error = %e, suppressed, "WAL compaction failed; the segments stay as they were");
                }
                Some(Err(()))
            }
        }
    }

    /// Every segment on disk, oldest first, with its live bytes.
    fn segment_stats(&self) -> Result<Vec<SegmentStats>, LogError> {
        let now = SystemTime::now();
        let mut out = Vec::new();
        for (id, path) in strata_wal::list_segments(&self.wal_dir)? {
            let Ok(meta) = std::fs::metadata(&path) else {
                continue;
            };
            let age = meta
                .modified()
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .unwrap_or_default();
            out.push(SegmentStats {
                id,
                file_bytes: meta.len(),
                live_bytes: self.ledger.usage(id).live_bytes,
                age_ms: u64::try_from(age.as_millis()).unwrap_or(u64::MAX),
                sealed: self.sealed.contains(&id),
            });
        }
        Ok(out)
    }

    /// Seals `id`, or leaves it for the sealing retries.
    fn reseal(&mut self, id: SegmentId) {
        if let Err(e) = self.seal(id) {
            metrics::count(metrics::WAL_SEAL_FAILURES);
            warn!(segment = id, error = %e, "cannot seal a compacted WAL segment; retried later");
            self.failed.push(id);
        }
    }
}
