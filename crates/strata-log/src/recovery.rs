//! Startup: rebuild every partition from the WAL segments, oldest first.
//!
//! Decisions:
//! - a sealed segment (one with an intact index) is loaded from its index
//!   without reading its data; an index that is damaged, or points past its
//!   segment's end, is ignored and the segment scanned like an unsealed one;
//! - an index without its segment is removed;
//! - a batch wholly below its partition's next offset (the log start, after
//!   DeleteRecords) is skipped;
//! - an entry for a topic id that no longer exists is ignored;
//! - a damaged entry is reported (file, position, length) and skipped; the
//!   entries after it are kept, and the partition's offsets continue after
//!   the last intact batch;
//! - a torn tail is cut off the file; zero padding after the last entry
//!   (direct-I/O writes) is cut off without a report.
//!
//! An unsealed segment is read entry by entry through one buffer; only a
//! segment with damage or a torn tail is read whole to step over it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_protocol::batch::BatchHeader;
use tracing::{info, warn};

use crate::entry;
use strata_wal::{EntryReader, NextEntry, SegmentFile, SegmentId, Storage};

use crate::batch_list::RunSummary;
use crate::partition::{PartitionLog, PartitionState, SharedParts};
use crate::registry::Registry;
use crate::segment_index::cache::IndexCache;
use crate::segment_index::{self, BatchEntry, IndexHead};
use crate::topic::TopicId;
use crate::LogError;

/// A damaged WAL region that recovery skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DamagedEntry {
    pub file: PathBuf,
    pub position: u64,
    pub length: u64,
}

/// What startup found.
#[derive(Debug, Clone, Default)]
pub struct RecoveryReport {
    pub wal_segments: usize,
    /// Batches read back from unsealed segments.
    pub entries_recovered: u64,
    /// Batches loaded from sealed segments' indexes.
    pub entries_already_sealed: u64,
    pub damaged: Vec<DamagedEntry>,
    /// Files whose torn tail was cut, with the bytes cut.
    pub torn_tails: Vec<(PathBuf, u64)>,
    pub duration: Duration,
}

impl RecoveryReport {
    /// Records the report in the recovery metrics.
    pub fn record_metrics(&self) {
        crate::metrics::record_recovery(
            self.entries_recovered,
            self.damaged.len() as u64,
            (
                self.torn_tails.len() as u64,
                self.torn_tails.iter().map(|(_, b)| b).sum(),
            ),
            self.duration,
        );
    }
}

/// The WAL segments recovery found sealed and left for sealing, and the
/// next segment id.
pub(crate) struct WalRecovery {
    pub report: RecoveryReport,
    pub sealed: Vec<SegmentId>,
    pub unsealed: Vec<SegmentId>,
    pub next_segment: u64,
}

/// Opens one partition: its log start and producer-state snapshot. Its
/// batches come from the WAL ([`replay_wal`]).
pub(crate) fn open_partition(
    topic: TopicId,
    index: i32,
    dir: PathBuf,
    log_start: i64,
    shared: &SharedParts,
    storage: &dyn Storage,
) -> Result<PartitionLog, LogError> {
    // Durably: the producer-state snapshot is written in it.
    strata_wal::create_dir_all_durably(storage, &dir).map_err(|source| LogError::Io {
        path: dir.clone(),
        source,
    })?;
    let mut state = PartitionState::default();
    state.holder = (topic, index);
    state.ledger = Arc::clone(&shared.ledger);
    state.log_start = log_start;
    state.next_offset = log_start;
    state.high_watermark = log_start;
    state.max_timestamp = -1;
    state.max_timestamp_offset = -1;
    if let Some(snapshot) = crate::producer_snapshot::load(&dir) {
        state.producers = snapshot.producers;
        state.producer_snapshot_offset = snapshot.offset;
    }
    Ok(PartitionLog::new(
        topic,
        index,
        dir,
        state,
        Arc::clone(&shared.cache),
        Arc::clone(&shared.indexes),
    ))
}

/// Loads every WAL segment into the partitions: a sealed segment from its
/// index, any other by scanning it.
pub(crate) fn replay_wal(
    storage: &dyn Storage,
    (wal_dir, indexes): (&Path, &IndexCache),
    registry: &Registry,
    started: Instant,
    direct_io: bool,
) -> Result<WalRecovery, LogError> {
    let mut report = RecoveryReport::default();
    let segments = finish_replacements(storage, wal_dir, strata_wal::list_segments(wal_dir)?)?;
    remove_orphan_indexes(storage, wal_dir, &segments)?;
    let mut unsealed = Vec::new();
    let mut sealed = Vec::new();
    for (id, path) in &segments {
        let sealed_here = SealedSegment {
            id: *id,
            path,
            wal_dir,
            storage,
            indexes,
        };
        if load_sealed(&sealed_here, registry, direct_io, &mut report)? {
            sealed.push(*id);
        } else if scan_unsealed(storage, *id, path, registry, direct_io, &mut report)? {
            unsealed.push(*id);
        }
    }
    report.wal_segments = segments.len();
    report.duration = started.elapsed();
    info!(
        segments = report.wal_segments,
        sealed = sealed.len(),
        recovered = report.entries_recovered,
        damaged = report.damaged.len(),
        torn = report.torn_tails.len(),
        millis = report.duration.as_millis() as u64,
        "WAL recovery finished"
    );
    let next_segment = segments.last().map_or(0, |(id, _)| id + 1);
    Ok(WalRecovery {
        report,
        sealed,
        unsealed,
        next_segment,
    })
}

/// Reads every segment's file header: refuses a format version this build
/// does not know, and finishes a WAL compaction that a crash interrupted —
/// the segments a replacement supersedes (its header names the first of
/// them) are removed. Returns the segments that remain.
fn finish_replacements(
    storage: &dyn Storage,
    wal_dir: &Path,
    segments: Vec<(SegmentId, PathBuf)>,
) -> Result<Vec<(SegmentId, PathBuf)>, LogError> {
    let mut superseded = std::collections::BTreeSet::new();
    for (id, path) in &segments {
        match strata_wal::read_header(path)? {
            Ok(header) => {
                if let Some(first) = header.first_segment.filter(|first| first < id) {
                    superseded.extend(
                        segments
                            .iter()
                            .map(|(s, _)| *s)
                            .filter(|s| (first..*id).contains(s)),
                    );
                }
            }
            Err(e @ strata_wal::HeaderError::UnknownVersion(_)) => {
                return Err(LogError::UnsupportedFormat {
                    path: path.clone(),
                    reason: e.to_string(),
                })
            }
            // Scanned and removed like any file that is not a segment.
            Err(strata_wal::HeaderError::NotASegment) => {}
        }
    }
    if superseded.is_empty() {
        return Ok(segments);
    }
    for id in &superseded {
        warn!(
            segment = id,
            "removing a WAL segment an interrupted compaction had replaced"
        );
        for path in [
            strata_wal::segment_path(wal_dir, *id),
            segment_index::index_path(wal_dir, *id),
        ] {
            match storage.remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                    return Err(LogError::Io { path, source: e })
                }
                _ => {}
            }
        }
    }
    strata_wal::sync_dir(storage, wal_dir)?;
    Ok(segments
        .into_iter()
        .filter(|(id, _)| !superseded.contains(id))
        .collect())
}

/// Removes indexes whose segment is gone (a removal that crashed between
/// the two files).
fn remove_orphan_indexes(
    storage: &dyn Storage,
    wal_dir: &Path,
    segments: &[(SegmentId, PathBuf)],
) -> Result<(), LogError> {
    for (id, path) in segment_index::list_indexes(wal_dir)? {
        if segments.binary_search_by_key(&id, |(s, _)| *s).is_err() {
            let _ = storage.remove_file(&path);
        }
    }
    Ok(())
}

/// A segment recovery loads from its index.
struct SealedSegment<'a> {
    id: SegmentId,
    path: &'a Path,
    wal_dir: &'a Path,
    storage: &'a dyn Storage,
    indexes: &'a IndexCache,
}

/// Loads a sealed segment's batches from its index: one summary per
/// partition, without reading the batches' entries (an index of version 1
/// is first rewritten as version 2). `false` when it has no usable index
/// (it is then scanned, and sealed again).
fn load_sealed(
    segment: &SealedSegment<'_>,
    registry: &Registry,
    direct_io: bool,
    report: &mut RecoveryReport,
) -> Result<bool, LogError> {
    let (id, path) = (segment.id, segment.path);
    let index_path = segment_index::index_path(segment.wal_dir, id);
    if !index_path.exists() {
        return Ok(false);
    }
    let file_len = std::fs::metadata(path).map_err(io(path))?.len();
    let runs = match segment_index::read_head(&index_path)? {
        Ok(IndexHead::Runs(runs)) => runs,
        Ok(IndexHead::Version1(mut batches)) => {
            if batches.iter().any(|b| !b.lies_within(file_len)) {
                warn!(file = %index_path.display(), segment_len = file_len, "segment index points past its segment; the segment is scanned instead");
                return Ok(false);
            }
            info!(file = %index_path.display(), "rewriting a version 1 segment index as version 2");
            segment_index::write(segment.storage, segment.wal_dir, id, &mut batches)?;
            match segment_index::read_head(&index_path)? {
                Ok(IndexHead::Runs(runs)) => runs,
                _ => return Ok(false),
            }
        }
        Err(defect) => {
            warn!(file = %index_path.display(), %defect, "unusable segment index; the segment is scanned instead");
            return Ok(false);
        }
    };
    if let Some(bad) = runs.iter().find(|r| r.end > file_len) {
        warn!(file = %index_path.display(), end = bad.end, segment_len = file_len, "segment index points past its segment; the segment is scanned instead");
        return Ok(false);
    }
    let file = Arc::new(SegmentFile::open(path, direct_io)?);
    segment.indexes.installed(id, file.uid());
    for run in &runs {
        let Some(partition) = registry.partition(run.topic, run.partition) else {
            continue;
        };
        let mut st = partition.state_mut();
        if run.last_offset < st.next_offset {
            continue;
        }
        let summary = if run.first_offset >= st.next_offset {
            RunSummary {
                first_offset: run.first_offset,
                last_base: run.last_base,
                last_offset: run.last_offset,
                max_timestamp: run.max_timestamp,
                bytes: run.bytes,
                batches: u64::from(run.entries),
            }
        } else {
            // Straddles the log start (DeleteRecords): the batches below
            // it are skipped, as a scan would.
            let index = std::fs::File::open(&index_path).map_err(io(&index_path))?;
            let Ok(entries) = segment_index::read_entries(&index, &index_path, run)? else {
                drop(st);
                warn!(file = %index_path.display(), "segment index entries fail their checksum; the segment is scanned instead");
                return Ok(false);
            };
            let kept: Vec<_> = entries
                .iter()
                .filter(|e| e.last_offset >= st.next_offset)
                .collect();
            let Some(first) = kept.first() else {
                continue;
            };
            RunSummary {
                first_offset: first.base_offset,
                last_base: run.last_base,
                last_offset: run.last_offset,
                max_timestamp: run.max_timestamp,
                bytes: kept.iter().map(|e| u64::from(e.len)).sum(),
                batches: kept.len() as u64,
            }
        };
        report.entries_already_sealed += summary.batches;
        st.push_summary(id, &file, summary);
        st.next_offset = run.last_offset + 1;
        st.high_watermark = st.next_offset;
        if run.max_timestamp > st.max_timestamp {
            st.max_timestamp = run.max_timestamp;
            st.max_timestamp_offset = run.max_timestamp_offset;
        }
    }
    Ok(true)
}

/// Scans an unsealed segment: damage is reported and skipped, a torn tail
/// cut off. `false` when the file was not a segment and was removed.
fn scan_unsealed(
    storage: &dyn Storage,
    id: SegmentId,
    path: &Path,
    registry: &Registry,
    direct_io: bool,
    report: &mut RecoveryReport,
) -> Result<bool, LogError> {
    // One file for the whole segment, however it is read: its batches
    // are one run per partition.
    let file = Arc::new(SegmentFile::open(path, direct_io)?);
    if stream_unsealed(storage, (id, &file), path, registry, direct_io, report)? {
        return Ok(true);
    }
    // Damage, a torn tail or a bad header: read the segment whole and step
    // over what is wrong. Entries the stream already replayed are skipped.
    let bytes = std::fs::read(path).map_err(io(path))?;
    let scan = strata_wal::scan_segment(&bytes);
    for damage in &scan.damaged {
        warn!(
            file = %path.display(),
            position = damage.position,
            length = damage.length,
            "WAL entry failed its checksum; skipped"
        );
        report.damaged.push(DamagedEntry {
            file: path.to_path_buf(),
            position: damage.position,
            length: damage.length,
        });
    }
    if scan.torn_bytes > 0 || scan.bad_file_header {
        warn!(file = %path.display(), position = scan.valid_end, bytes = scan.torn_bytes, "cut a torn tail off a WAL segment (checksum or length did not match)");
        report
            .torn_tails
            .push((path.to_path_buf(), scan.torn_bytes));
        if scan.bad_file_header {
            storage.remove_file(path).map_err(io(path))?;
            return Ok(false);
        }
        strata_wal::truncate(storage, path, scan.valid_end)?;
    } else if scan.padding_bytes > 0 {
        // Direct-I/O padding after the last entry: nothing was lost.
        strata_wal::truncate(storage, path, scan.valid_end)?;
    }
    for span in &scan.entries {
        let start = usize::try_from(span.payload_position).unwrap_or(usize::MAX);
        let end = start.saturating_add(span.payload_len as usize);
        let Some(payload) = bytes.get(start..end) else {
            continue;
        };
        if replay_entry(payload, span.payload_position, id, &file, registry, path)? {
            report.entries_recovered += 1;
        }
    }
    Ok(true)
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError {
    let path = path.to_path_buf();
    move |source| LogError::Io { path, source }
}

/// Replays an unsealed segment entry by entry through one buffer (the
/// common case: it ends cleanly, perhaps in padding, which is cut off).
/// `false` at anything irregular.
fn stream_unsealed(
    storage: &dyn Storage,
    (id, file): (SegmentId, &Arc<SegmentFile>),
    path: &Path,
    registry: &Registry,
    direct_io: bool,
    report: &mut RecoveryReport,
) -> Result<bool, LogError> {
    let Some(mut reader) = EntryReader::open(path, direct_io)? else {
        return Ok(false);
    };
    loop {
        match reader.next_entry()? {
            NextEntry::Entry(payload, payload_position) => {
                if replay_entry(payload, payload_position, id, file, registry, path)? {
                    report.entries_recovered += 1;
                }
            }
            NextEntry::End(padding) => {
                if let Some(end) = padding {
                    strata_wal::truncate(storage, path, end)?;
                }
                return Ok(true);
            }
            NextEntry::Irregular => return Ok(false),
        }
    }
}

/// Adds one entry's batch to its partition; false if it was skipped. An
/// intact entry of a kind this build does not know is refused: skipping
/// it could hide records a newer build wrote.
fn replay_entry(
    payload: &[u8],
    payload_position: u64,
    segment: SegmentId,
    file: &Arc<SegmentFile>,
    registry: &Registry,
    path: &Path,
) -> Result<bool, LogError> {
    let prefix = entry::read_prefix(payload).map_err(|e| LogError::UnsupportedFormat {
        path: path.to_path_buf(),
        reason: format!("{e} at position {payload_position}"),
    })?;
    let Some(partition) = registry.partition(prefix.topic, prefix.partition) else {
        return Ok(false);
    };
    let batch = payload.get(entry::PREFIX_LEN..).unwrap_or_default();
    let Ok(header) = BatchHeader::parse(batch) else {
        return Ok(false);
    };
    let mut st = partition.state_mut();
    // Below the log start (DeleteRecords). A batch that straddles the log
    // start is kept: its later records are live.
    if header.last_offset() < st.next_offset {
        return Ok(false);
    }
    let position = payload_position + entry::PREFIX_LEN as u64;
    st.push_batch(segment, file, BatchEntry::of(&header, position));
    st.next_offset = header.last_offset() + 1;
    st.high_watermark = st.next_offset;
    st.note_timestamp(&header);
    if header.base_offset >= st.producer_snapshot_offset {
        st.producers.apply(&header, batch, header.base_offset);
    }
    Ok(true)
}
