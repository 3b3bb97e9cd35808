//! WAL compaction: space reclamation in the shared log, on the sealing
//! thread, never on the append path.
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
//! The copy is paced by an I/O budget (bytes per second). [`regroup`]
//! rewrites all-live segments whose partitions' batches are interleaved.

pub mod plan;
mod regroup;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use strata_protocol::batch::{validate_crc, BatchHeader};
use strata_wal::{Replacement, SegmentFile, SegmentId, ENTRY_HEADER_LEN};
use tracing::{error, info, warn};

use crate::entry;
use crate::ledger::Holder;
use crate::log_limit::LogLimit;
use crate::metrics;
use crate::partition::BatchLocation;
use crate::seal::Sealer;
use crate::LogError;
pub use plan::{CompactionPolicy, SegmentStats};

static COMPACTION_FAILED: LogLimit = LogLimit::new(Duration::from_secs(10));
static DAMAGED: LogLimit = LogLimit::new(Duration::from_secs(10));

/// WAL compaction's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionOptions {
    pub policy: CompactionPolicy,
    /// Bytes read and written per second at most (0: no limit).
    pub bytes_per_sec: u64,
    /// How often the sealing thread looks for work.
    pub check_interval: Duration,
}

/// What compactions did, in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionTotals {
    pub runs: u64,
    pub failed_runs: u64,
    pub copied_bytes: u64,
    pub reclaimed_bytes: u64,
}

/// One live batch being copied.
struct Moving {
    holder: Holder,
    base_offset: i64,
    from: (SegmentId, u64),
    len: u32,
    file: Arc<SegmentFile>,
}

/// What a run did.
#[derive(Debug, Default)]
pub(crate) struct RunOutcome {
    pub copied_bytes: u64,
    pub reclaimed_bytes: u64,
    pub batches: usize,
    pub damaged: usize,
}

impl Sealer {
    /// Compacts every run `policy` finds due, one after another.
    pub(crate) fn compact_all(&mut self, policy: CompactionPolicy) -> CompactionTotals {
        let configured = self.compaction.policy;
        self.compaction.policy = policy;
        let mut totals = CompactionTotals::default();
        loop {
            match self.compact_next() {
                Some(Ok(outcome)) => {
                    totals.runs += 1;
                    totals.copied_bytes += outcome.copied_bytes;
                    totals.reclaimed_bytes += outcome.reclaimed_bytes;
                    self.remove_unheld();
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
        self.compaction.policy = configured;
        totals
    }

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
        match self.compact_run(&run) {
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

    /// The live batches of `run`, grouped by partition, in offset order.
    fn live_batches(&self, run: &[SegmentId]) -> Vec<Moving> {
        let (Some(&first), Some(&last)) = (run.first(), run.last()) else {
            return Vec::new();
        };
        let mut holders = std::collections::BTreeSet::new();
        for id in run {
            holders.extend(self.ledger.usage(*id).holders.into_keys());
        }
        let mut out = Vec::new();
        for holder in holders {
            let Some(partition) = self.registry.partition(holder.0, holder.1) else {
                continue;
            };
            let st = partition.state();
            let from = st.batches().partition_point(|b| b.segment < first);
            for b in st.batches().range(from..) {
                if b.segment > last {
                    break;
                }
                out.push(Moving {
                    holder,
                    base_offset: b.base_offset,
                    from: (b.segment, b.position),
                    len: b.len,
                    file: Arc::clone(&b.file),
                });
            }
        }
        out
    }

    pub(crate) fn compact_run(&mut self, run: &[SegmentId]) -> Result<RunOutcome, LogError> {
        let (Some(&first), Some(&target)) = (run.first(), run.last()) else {
            return Ok(RunOutcome::default());
        };
        let mut old_bytes = 0;
        let mut covers = first;
        for id in run {
            let path = strata_wal::segment_path(&self.wal_dir, *id);
            old_bytes += std::fs::metadata(&path).map_or(0, |m| m.len());
            if let Ok(Ok(header)) = strata_wal::read_header(&path) {
                covers = covers.min(header.first_segment.unwrap_or(*id));
            }
        }
        let moving = self.live_batches(run);
        let mut replacement = Replacement::create(&self.wal_dir, target, covers)?;
        let copied = match self.copy_batches(&moving, &mut replacement) {
            Ok(copied) => copied,
            Err(e) => {
                replacement.discard();
                return Err(e);
            }
        };
        let written = copied.iter().filter(|c| c.is_some()).count();
        let new_bytes = replacement.len();
        if let Err(e) = verify_replacement(&mut replacement, written) {
            replacement.discard();
            return Err(e);
        }
        // The replacement's moment: the old index goes first, so a crash
        // after the rename never finds an index of the old file beside it.
        let index = crate::segment_index::index_path(&self.wal_dir, target);
        remove_if_there(&index)?;
        self.sealed.remove(&target);
        strata_wal::sync_dir(&self.wal_dir)?;
        let installed = match replacement.install() {
            Ok(path) => path,
            Err(e) => {
                self.reseal(target);
                return Err(e.into());
            }
        };
        // On failure from here, partitions keep reading the old files they
        // hold open; the replacement stays unsealed, and a restart scans it.
        let file = Arc::new(SegmentFile::open(&installed, self.direct_io)?);
        self.cache.forget(run);
        let damaged = self.relocate(&moving, &copied, target, &file);
        self.reseal(target);
        for id in run.iter().filter(|id| **id != target) {
            remove_if_there(&strata_wal::segment_path(&self.wal_dir, *id))?;
            remove_if_there(&crate::segment_index::index_path(&self.wal_dir, *id))?;
            self.sealed.remove(id);
        }
        strata_wal::sync_dir(&self.wal_dir)?;
        Ok(RunOutcome {
            copied_bytes: new_bytes,
            reclaimed_bytes: old_bytes.saturating_sub(new_bytes),
            batches: written,
            damaged,
        })
    }

    /// Copies each batch into the replacement, checked; the position of
    /// each copy, `None` for a damaged batch.
    fn copy_batches(
        &self,
        moving: &[Moving],
        replacement: &mut Replacement,
    ) -> Result<Vec<Option<u64>>, LogError> {
        let started = Instant::now();
        let mut done: u64 = 0;
        let mut framed = Vec::new();
        let mut prefix = Vec::with_capacity(entry::PREFIX_LEN);
        let mut out = Vec::with_capacity(moving.len());
        for m in moving {
            let bytes = strata_wal::read_at(m.file.buffered(), m.from.1, m.len as usize).map_err(
                |source| LogError::Io {
                    path: strata_wal::segment_path(&self.wal_dir, m.from.0),
                    source,
                },
            )?;
            if !is_intact(&bytes, m) {
                report_damage(m);
                out.push(None);
                continue;
            }
            prefix.clear();
            entry::write_prefix(&mut prefix, m.holder.0, m.holder.1);
            framed.clear();
            strata_wal::encode_entry(&mut framed, &[&prefix, &bytes])
                .ok_or(strata_wal::WalError::PayloadTooLarge(bytes.len()))?;
            let at = replacement.append(&framed)?;
            out.push(Some(at + (ENTRY_HEADER_LEN + entry::PREFIX_LEN) as u64));
            done += 2 * bytes.len() as u64;
            self.pace(started, done);
        }
        Ok(out)
    }

    /// Sleeps while more than the I/O budget allows has been moved.
    fn pace(&self, started: Instant, done: u64) {
        let rate = self.compaction.bytes_per_sec;
        if rate == 0 {
            return;
        }
        #[allow(clippy::cast_precision_loss)]
        let due = Duration::from_secs_f64(done as f64 / rate as f64);
        if let Some(wait) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(wait);
        }
    }

    /// Points partitions at the copies (one lock per partition); drops
    /// damaged batches. Returns how many were damaged.
    fn relocate(
        &self,
        moving: &[Moving],
        copied: &[Option<u64>],
        target: SegmentId,
        file: &Arc<SegmentFile>,
    ) -> usize {
        let mut damaged = 0;
        let mut at = 0;
        while let Some(m) = moving.get(at) {
            let end = at + moving[at..].partition_point(|n| n.holder == m.holder);
            let Some(partition) = self.registry.partition(m.holder.0, m.holder.1) else {
                at = end;
                continue;
            };
            let mut st = partition.state_mut();
            for (m, copy) in moving[at..end].iter().zip(&copied[at..end]) {
                match copy {
                    Some(position) => {
                        let to = BatchLocation {
                            segment: target,
                            file: Arc::clone(file),
                            position: *position,
                        };
                        st.relocate(m.base_offset, m.from, to);
                    }
                    None => {
                        damaged += 1;
                        st.forget_batch(m.base_offset, m.from);
                    }
                }
            }
            at = end;
        }
        damaged
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

/// Reads the synced replacement back: every entry intact, as many as
/// were written, nothing else in it.
fn verify_replacement(replacement: &mut Replacement, written: usize) -> Result<(), LogError> {
    let path = replacement.sync()?.to_path_buf();
    let bytes = std::fs::read(&path).map_err(|source| LogError::Io {
        path: path.clone(),
        source,
    })?;
    let scan = strata_wal::scan_segment(&bytes);
    if scan.entries.len() != written || !scan.damaged.is_empty() || scan.torn_bytes > 0 {
        return Err(LogError::Corrupt(format!(
            "compacted segment {} reads back {} of {written} entries",
            path.display(),
            scan.entries.len()
        )));
    }
    Ok(())
}

fn is_intact(bytes: &[u8], m: &Moving) -> bool {
    BatchHeader::parse(bytes).is_ok_and(|h| {
        h.base_offset == m.base_offset
            && u32::try_from(h.total_len).is_ok_and(|len| len == m.len)
            && validate_crc(bytes, &h).is_ok()
    })
}

fn report_damage(m: &Moving) {
    metrics::count(metrics::STORED_BATCHES_DAMAGED);
    if let Some(suppressed) = DAMAGED.admit() {
        warn!(
            segment = m.from.0,
            position = m.from.1,
            base_offset = m.base_offset,
            suppressed,
            "stored batch failed its checksum during WAL compaction; dropped, not copied"
        );
    }
}

fn remove_if_there(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}
