//! One partition's log: offsets, the hot (unsealed, in-WAL) batches and the
//! sealed segments, and reads that join the two.
//!
//! Invariants, under the state lock:
//! - sealed segments, then hot batches, are in offset order without overlap;
//! - every batch below `high_watermark` is durable, and only such batches are
//!   read;
//! - `next_offset >= high_watermark`; offsets between them are assigned to
//!   batches whose WAL write is in flight.

use std::collections::VecDeque;
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use strata_protocol::batch::{split_batches, BatchHeader, HEADER_LEN};
use strata_protocol::records::{for_each_record, RecordView};

use crate::sealed::{header_only, read_exact_at, SealedSegment};
use crate::topic::TopicId;
use crate::LogError;

/// A durable batch that still lives only in the WAL.
#[derive(Debug, Clone)]
pub struct HotBatch {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub wal_segment: u64,
    pub file: Arc<File>,
    /// Position of the batch bytes in the WAL file.
    pub position: u64,
    pub len: u32,
}

/// The mutable state of a partition.
#[derive(Debug, Default)]
pub struct PartitionState {
    pub next_offset: i64,
    pub high_watermark: i64,
    pub log_start: i64,
    pub hot: VecDeque<HotBatch>,
    pub sealed: Vec<SealedSegment>,
    pub max_timestamp: i64,
    pub max_timestamp_offset: i64,
    pub deleted: bool,
    /// Idempotent producers' recent batches.
    pub producers: crate::producer::ProducerStates,
    /// Batches below this offset are already reflected in `producers`
    /// (from the snapshot loaded at startup).
    pub producer_snapshot_offset: i64,
}

impl PartitionState {
    /// Offset below which no batch needs sealing: one past the last sealed
    /// batch, or the log start when records below it were deleted.
    pub fn sealed_end(&self) -> i64 {
        self.sealed
            .last()
            .map_or(self.log_start, |s| s.end_offset.max(self.log_start))
    }

    /// Notes a durable batch's timestamp for ListOffsets' max-timestamp query.
    pub fn note_timestamp(&mut self, header: &BatchHeader) {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.max_timestamp_offset = header.last_offset();
        }
    }
}

/// A partition of a topic.
#[derive(Debug)]
pub struct PartitionLog {
    pub topic: TopicId,
    pub index: i32,
    pub dir: PathBuf,
    state: RwLock<PartitionState>,
}

/// What a read returns.
#[derive(Debug, Clone, Default)]
pub struct ReadResult {
    pub records: Bytes,
    pub high_watermark: i64,
    pub log_start: i64,
    pub last_stable_offset: i64,
    /// For read_committed: aborted transactions overlapping the records.
    pub aborted: Vec<crate::producer::AbortedTxn>,
}

/// Which records a read may return.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Up to the high watermark.
    ReadUncommitted,
    /// Up to the last stable offset (no open transaction's records).
    ReadCommitted,
}

/// One contiguous piece of a read.
struct Piece {
    file: Arc<File>,
    position: u64,
    len: u64,
    /// Sealed pieces may end mid-batch and are trimmed to whole batches.
    trim: bool,
}

impl PartitionLog {
    pub fn new(topic: TopicId, index: i32, dir: PathBuf, state: PartitionState) -> Self {
        PartitionLog {
            topic,
            index,
            dir,
            state: RwLock::new(state),
        }
    }

    pub fn state(&self) -> RwLockReadGuard<'_, PartitionState> {
        self.state
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn state_mut(&self) -> RwLockWriteGuard<'_, PartitionState> {
        self.state
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// `(log start, high watermark)`.
    pub fn bounds(&self) -> (i64, i64) {
        let st = self.state();
        (st.log_start, st.high_watermark)
    }

    /// Bytes of log held: sealed segments plus hot batches.
    pub fn size_bytes(&self) -> u64 {
        let st = self.state();
        let sealed: u64 = st.sealed.iter().map(|s| s.size).sum();
        let hot: u64 = st.hot.iter().map(|b| u64::from(b.len)).sum();
        sealed + hot
    }

    /// `(log start, high watermark, last stable offset)`.
    pub fn stable_bounds(&self) -> (i64, i64, i64) {
        let st = self.state();
        (
            st.log_start,
            st.high_watermark,
            st.producers.last_stable_offset(st.high_watermark),
        )
    }

    /// Reads whole batches from `offset`, about `max_bytes` of them (at least
    /// one batch, even a larger one, so a consumer always progresses).
    pub fn read(&self, offset: i64, max_bytes: usize) -> Result<ReadResult, LogError> {
        self.read_isolated(offset, max_bytes, Isolation::ReadUncommitted)
    }

    /// [`Self::read`], limited to what `isolation` may see.
    pub fn read_isolated(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
    ) -> Result<ReadResult, LogError> {
        let (pieces, high_watermark, log_start, last_stable_offset, limit, aborted) = {
            let st = self.state();
            if offset < st.log_start || offset > st.high_watermark {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start: st.log_start,
                    high_watermark: st.high_watermark,
                });
            }
            let lso = st.producers.last_stable_offset(st.high_watermark);
            let (limit, aborted) = match isolation {
                Isolation::ReadUncommitted => (st.high_watermark, Vec::new()),
                Isolation::ReadCommitted => (lso, st.producers.aborted_between(offset, lso)),
            };
            let pieces = if offset < limit {
                self.plan_read(&st, offset, max_bytes as u64)?
            } else {
                Vec::new()
            };
            (pieces, st.high_watermark, st.log_start, lso, limit, aborted)
        };
        let mut parts: Vec<Vec<u8>> = Vec::with_capacity(pieces.len());
        let mut read = 0u64;
        for piece in pieces {
            let budget = (max_bytes as u64).saturating_sub(read);
            let (data, complete) = read_piece(&piece, budget, parts.is_empty())?;
            read += data.len() as u64;
            parts.push(data);
            // A piece cut short ends the read: what follows would leave a gap.
            if !complete || read >= max_bytes as u64 {
                break;
            }
        }
        // One piece (a sealed range) is served from its read buffer as is;
        // several (hot batches) are joined with one copy.
        let mut out = if parts.len() == 1 {
            parts.pop().unwrap_or_default()
        } else {
            let mut joined = Vec::with_capacity(usize::try_from(read).unwrap_or(0));
            for part in &parts {
                joined.extend_from_slice(part);
            }
            joined
        };
        let keep = batches_below(&out, limit);
        out.truncate(keep);
        Ok(ReadResult {
            records: Bytes::from(out),
            high_watermark,
            log_start,
            last_stable_offset,
            aborted,
        })
    }

    fn plan_read(
        &self,
        st: &PartitionState,
        offset: i64,
        max_bytes: u64,
    ) -> Result<Vec<Piece>, LogError> {
        let mut pieces = Vec::new();
        let mut planned = 0u64;
        let start = st.sealed.partition_point(|s| s.end_offset <= offset);
        for segment in st.sealed.iter().skip(start) {
            if planned >= max_bytes && !pieces.is_empty() {
                return Ok(pieces);
            }
            let Some(position) = segment.position_of(offset.max(segment.base_offset))? else {
                continue;
            };
            let len = segment.size - position;
            planned += len;
            pieces.push(Piece {
                file: Arc::clone(&segment.file),
                position,
                len,
                trim: true,
            });
        }
        for batch in st
            .hot
            .iter()
            .filter(|b| b.last_offset >= offset && b.base_offset < st.high_watermark)
        {
            if planned >= max_bytes && !pieces.is_empty() {
                break;
            }
            planned += u64::from(batch.len);
            pieces.push(Piece {
                file: Arc::clone(&batch.file),
                position: batch.position,
                len: u64::from(batch.len),
                trim: false,
            });
        }
        Ok(pieces)
    }

    /// Calls `visit` with every record from the log start to the high
    /// watermark, in offset order (how coordinators rebuild their state). A
    /// batch whose records cannot be decoded is skipped with a warning.
    pub fn replay_records(&self, mut visit: impl FnMut(RecordView<'_>)) -> Result<(), LogError> {
        let (mut offset, high_watermark) = self.bounds();
        while offset < high_watermark {
            let read = self.read(offset, 1 << 20)?;
            if read.records.is_empty() {
                break;
            }
            for (header, range) in
                split_batches(&read.records).map_err(|e| LogError::Corrupt(e.to_string()))?
            {
                let bytes = read.records.get(range).unwrap_or_default();
                if let Err(e) = for_each_record(bytes, &header, DECOMPRESS_LIMIT, &mut visit) {
                    tracing::warn!(offset = header.base_offset, error = %e, "undecodable batch skipped during replay");
                }
                offset = header.last_offset() + 1;
            }
        }
        Ok(())
    }

    /// The first offset whose record timestamp is at or after `timestamp`,
    /// with that record's timestamp.
    ///
    /// The candidate ranges are chosen under the lock; the scan reads files
    /// without it, so a lookup never holds up appends.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        let (ranges, log_start) = {
            let st = self.state();
            let mut ranges = Vec::new();
            for segment in st.sealed.iter().filter(|s| s.max_timestamp >= timestamp) {
                ranges.push((
                    Arc::clone(&segment.file),
                    segment.scan_start_for_timestamp(timestamp),
                    segment.size,
                ));
            }
            for batch in st
                .hot
                .iter()
                .filter(|b| b.max_timestamp >= timestamp && b.base_offset < st.high_watermark)
            {
                ranges.push((
                    Arc::clone(&batch.file),
                    batch.position,
                    batch.position + u64::from(batch.len),
                ));
            }
            (ranges, st.log_start)
        };
        for (file, start, end) in ranges {
            let mut position = start;
            while position < end {
                let header = read_header(&file, position)?;
                if header.max_timestamp >= timestamp {
                    if let Some(found) =
                        find_in_batch(&file, position, &header, timestamp, log_start)?
                    {
                        return Ok(Some(found));
                    }
                }
                position += header.total_len as u64;
            }
        }
        Ok(None)
    }
}

fn io_error(source: std::io::Error) -> LogError {
    LogError::Io {
        path: PathBuf::from("<open log file>"),
        source,
    }
}

fn read_header(file: &File, position: u64) -> Result<BatchHeader, LogError> {
    let mut buf = [0u8; HEADER_LEN];
    read_exact_at(file, &mut buf, position).map_err(io_error)?;
    header_only(&buf)
        .ok_or_else(|| LogError::Corrupt(format!("bad batch header at position {position}")))
}

/// Limit on the records of one batch decompressed for a timestamp lookup.
const DECOMPRESS_LIMIT: usize = 64 * 1024 * 1024;

fn find_in_batch(
    file: &File,
    position: u64,
    header: &BatchHeader,
    timestamp: i64,
    log_start: i64,
) -> Result<Option<(i64, i64)>, LogError> {
    if header.is_control() {
        return Ok(None);
    }
    if header.is_log_append_time() {
        let offset = header.base_offset.max(log_start);
        return Ok((offset <= header.last_offset()).then_some((offset, header.max_timestamp)));
    }
    let mut bytes = vec![0u8; header.total_len];
    read_exact_at(file, &mut bytes, position).map_err(io_error)?;
    let records = strata_protocol::records::record_infos(&bytes, header, DECOMPRESS_LIMIT)
        .map_err(|e| LogError::Corrupt(e.to_string()))?;
    Ok(records
        .iter()
        .find(|r| r.timestamp >= timestamp && r.offset >= log_start)
        .map(|r| (r.offset, r.timestamp)))
}

/// Reads a piece within `budget` bytes, whole batches only; the first
/// batch of a read is served even when larger than the budget. Returns the
/// bytes and whether the whole piece was read.
fn read_piece(piece: &Piece, budget: u64, first: bool) -> Result<(Vec<u8>, bool), LogError> {
    if !piece.trim {
        if !first && piece.len > budget {
            return Ok((Vec::new(), false));
        }
        return Ok((read_range(&piece.file, piece.position, piece.len)?, true));
    }
    let want = piece.len.min(budget.max(HEADER_LEN as u64));
    let mut buf = read_range(&piece.file, piece.position, want)?;
    let whole = whole_batches_len(&buf);
    if whole > 0 {
        buf.truncate(whole);
        let served = drop_damaged(buf, piece.position);
        if !served.is_empty() || !first {
            return Ok((served, whole as u64 == piece.len));
        }
    } else if !first {
        return Ok((Vec::new(), false));
    }
    // The first batch of the read: served whole even beyond the budget, and
    // a damaged one is stepped over so the consumer moves on.
    let mut position = piece.position;
    let end = piece.position + piece.len;
    while position < end {
        let head = read_range(&piece.file, position, HEADER_LEN as u64)?;
        let header =
            header_only(&head).ok_or_else(|| LogError::Corrupt("bad batch header".to_string()))?;
        let batch = drop_damaged(
            read_range(&piece.file, position, header.total_len as u64)?,
            position,
        );
        position += header.total_len as u64;
        if !batch.is_empty() {
            return Ok((batch, position == end));
        }
    }
    Ok((Vec::new(), true))
}

/// Sealed data is checked as it is served: a batch whose CRC-32C fails
/// (damaged on disk after it was sealed) is left out and reported, so
/// consumers never receive damaged bytes; they see an offset gap instead.
fn drop_damaged(buf: Vec<u8>, file_position: u64) -> Vec<u8> {
    let mut at = 0;
    let mut damaged = false;
    let mut out = Vec::new();
    while let Some(header) = buf.get(at..).and_then(header_only) {
        let Some(batch) = buf.get(at..at + header.total_len) else {
            break;
        };
        if strata_protocol::batch::validate_crc(batch, &header).is_ok() {
            if damaged {
                out.extend_from_slice(batch);
            }
        } else {
            if !damaged {
                out.extend_from_slice(buf.get(..at).unwrap_or_default());
                damaged = true;
            }
            crate::metrics::count(crate::metrics::SEALED_BATCHES_DAMAGED);
            tracing::warn!(
                position = file_position + at as u64,
                length = header.total_len,
                base_offset = header.base_offset,
                "sealed batch failed its checksum; not served"
            );
        }
        at += header.total_len;
    }
    if damaged {
        out
    } else {
        buf
    }
}

fn read_range(file: &File, position: u64, len: u64) -> Result<Vec<u8>, LogError> {
    let mut buf = vec![
        0u8;
        usize::try_from(len)
            .map_err(|_| LogError::Corrupt("read too large".to_string()))?
    ];
    read_exact_at(file, &mut buf, position).map_err(io_error)?;
    Ok(buf)
}

/// Length of the complete batches at the start of `buf` that start below `limit`.
fn batches_below(buf: &[u8], limit: i64) -> usize {
    let mut at = 0;
    while let Some(header) = buf.get(at..).and_then(header_only) {
        if header.base_offset >= limit || at + header.total_len > buf.len() {
            break;
        }
        at += header.total_len;
    }
    at
}

/// Length of the complete batches at the start of `buf`.
fn whole_batches_len(buf: &[u8]) -> usize {
    let mut at = 0;
    while let Some(header) = buf.get(at..).and_then(header_only) {
        if at + header.total_len > buf.len() {
            break;
        }
        at += header.total_len;
    }
    at
}
