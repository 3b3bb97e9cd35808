//! Startup: rebuild every partition from its sealed segments and the WAL.
//!
//! Decisions (pure, over what [`strata_wal::scan_segment`] reports):
//! - an intact WAL entry whose batch starts below the partition's next offset
//!   is already sealed and is skipped;
//! - an entry for a topic id that no longer exists is ignored;
//! - a damaged entry is reported (file, position, length) and skipped; the
//!   entries after it are kept, and the partition's offsets continue after
//!   the last intact batch;
//! - a torn tail is cut off the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_protocol::batch::BatchHeader;
use tracing::{info, warn};

use crate::entry;
use crate::partition::{HotBatch, PartitionLog, PartitionState};
use crate::registry::Registry;
use crate::sealed::{self, SealedSegment};
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
    pub entries_recovered: u64,
    pub entries_already_sealed: u64,
    pub damaged: Vec<DamagedEntry>,
    /// Files whose torn tail was cut, with the bytes cut.
    pub torn_tails: Vec<(PathBuf, u64)>,
    pub duration: Duration,
}

/// The WAL segments recovery left for sealing, and the next segment id.
pub(crate) struct WalRecovery {
    pub report: RecoveryReport,
    pub unsealed: Vec<u64>,
    pub next_segment: u64,
}

/// Opens one partition's sealed segments.
pub(crate) fn open_partition(
    topic: TopicId,
    index: i32,
    dir: PathBuf,
    log_start: i64,
    report: &mut RecoveryReport,
) -> Result<PartitionLog, LogError> {
    std::fs::create_dir_all(&dir).map_err(|source| LogError::Io {
        path: dir.clone(),
        source,
    })?;
    let mut state = PartitionState {
        log_start,
        max_timestamp: -1,
        max_timestamp_offset: -1,
        ..PartitionState::default()
    };
    for (base, path) in sealed::list_segments(&dir)? {
        let (segment, cut) = SealedSegment::open(&path, base)?;
        if cut > 0 {
            warn!(file = %path.display(), bytes = cut, "cut a torn tail off a sealed segment");
            report.torn_tails.push((path.clone(), cut));
        }
        if segment.max_timestamp > state.max_timestamp {
            state.max_timestamp = segment.max_timestamp;
            state.max_timestamp_offset = segment.end_offset - 1;
        }
        state.sealed.push(segment);
    }
    let end = state.sealed_end().max(log_start);
    state.next_offset = end;
    state.high_watermark = end;
    if let Some(snapshot) = crate::producer_snapshot::load(&dir) {
        state.producers = snapshot.producers;
        state.producer_snapshot_offset = snapshot.offset;
    }
    Ok(PartitionLog::new(topic, index, dir, state))
}

/// Replays every WAL segment into the partitions' hot batches.
pub(crate) fn replay_wal(
    wal_dir: &Path,
    registry: &Registry,
    started: Instant,
) -> Result<WalRecovery, LogError> {
    let mut report = RecoveryReport::default();
    let segments = strata_wal::list_segments(wal_dir)?;
    let mut unsealed = Vec::new();
    for (id, path) in &segments {
        let bytes = std::fs::read(path).map_err(|source| LogError::Io {
            path: path.clone(),
            source,
        })?;
        let scan = strata_wal::scan_segment(&bytes);
        for damage in &scan.damaged {
            warn!(
                file = %path.display(),
                position = damage.position,
                length = damage.length,
                "WAL entry failed its checksum; skipped"
            );
            report.damaged.push(DamagedEntry {
                file: path.clone(),
                position: damage.position,
                length: damage.length,
            });
        }
        if scan.torn_bytes > 0 || scan.bad_file_header {
            warn!(file = %path.display(), position = scan.valid_end, bytes = scan.torn_bytes, "cut a torn tail off a WAL segment (checksum or length did not match)");
            report.torn_tails.push((path.clone(), scan.torn_bytes));
            if scan.bad_file_header {
                std::fs::remove_file(path).map_err(|source| LogError::Io {
                    path: path.clone(),
                    source,
                })?;
                continue;
            }
            strata_wal::truncate(path, scan.valid_end)?;
        }
        let file = Arc::new(std::fs::File::open(path).map_err(|source| LogError::Io {
            path: path.clone(),
            source,
        })?);
        for span in &scan.entries {
            let start = usize::try_from(span.payload_position).unwrap_or(usize::MAX);
            let end = start.saturating_add(span.payload_len as usize);
            let Some(payload) = bytes.get(start..end) else {
                continue;
            };
            if replay_entry(payload, span.payload_position, *id, &file, registry) {
                report.entries_recovered += 1;
            } else {
                report.entries_already_sealed += 1;
            }
        }
        unsealed.push(*id);
    }
    report.wal_segments = segments.len();
    report.duration = started.elapsed();
    info!(
        segments = report.wal_segments,
        recovered = report.entries_recovered,
        damaged = report.damaged.len(),
        torn = report.torn_tails.len(),
        millis = report.duration.as_millis() as u64,
        "WAL recovery finished"
    );
    let next_segment = segments.last().map_or(0, |(id, _)| id + 1);
    Ok(WalRecovery {
        report,
        unsealed,
        next_segment,
    })
}

/// Adds one entry's batch to its partition; false if it was skipped.
fn replay_entry(
    payload: &[u8],
    payload_position: u64,
    segment: u64,
    file: &Arc<std::fs::File>,
    registry: &Registry,
) -> bool {
    let Some(prefix) = entry::read_prefix(payload) else {
        return false;
    };
    let Some(partition) = registry.partition(prefix.topic, prefix.partition) else {
        return false;
    };
    let batch = payload.get(entry::PREFIX_LEN..).unwrap_or_default();
    let Ok(header) = BatchHeader::parse(batch) else {
        return false;
    };
    let mut st = partition.state_mut();
    // Already sealed, or deleted by DeleteRecords. A batch that straddles
    // the log start is kept: its later records are live.
    if header.last_offset() < st.next_offset {
        return false;
    }
    st.hot.push_back(HotBatch {
        base_offset: header.base_offset,
        last_offset: header.last_offset(),
        max_timestamp: header.max_timestamp,
        wal_segment: segment,
        file: Arc::clone(file),
        position: payload_position + entry::PREFIX_LEN as u64,
        len: u32::try_from(header.total_len).unwrap_or(u32::MAX),
    });
    st.next_offset = header.last_offset() + 1;
    st.high_watermark = st.next_offset;
    st.note_timestamp(&header);
    if header.base_offset >= st.producer_snapshot_offset {
        st.producers.apply(&header, batch, header.base_offset);
    }
    true
}
