//! One partition's log: offsets, the batches it holds and where each sits
//! in the WAL, and its producers' state.
//!
//! Invariants, under the state lock:
//! - `batches` are in offset order without overlap, and in WAL order,
//!   as runs per segment file ([`BatchList`]);
//! - every batch below `high_watermark` is durable, and only such batches are
//!   read;
//! - `next_offset >= high_watermark`; offsets between them are assigned to
//!   batches whose WAL write is in flight;
//! - the [`Ledger`] counts exactly these batches for this partition: every
//!   change to `batches` goes through a method here that also updates it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};

use bytes::Bytes;
use strata_protocol::batch::{split_batches, BatchHeader};
use strata_protocol::records::{for_each_record, RecordView};
use strata_wal::{SegmentFile, SegmentId};

use crate::batch_list::{BatchList, BatchRef, Removed, RunSummary};
use crate::ledger::{Holder, Ledger};
use crate::segment_index::cache::{IndexCache, Indexes, NeedIndex};
use crate::segment_index::BatchEntry;
use crate::tail_cache::TailCache;
use crate::topic::TopicId;
use crate::LogError;

/// Bytes a batch's WAL entry takes beyond the batch: the entry header and
/// the payload prefix. The ledger counts whole entries.
const ENTRY_FRAMING: u32 = (strata_wal::ENTRY_HEADER_LEN + crate::entry::PREFIX_LEN) as u32;

fn entry_len(batch_len: u32) -> u32 {
    batch_len.saturating_add(ENTRY_FRAMING)
}

/// Bytes `batches` batches of `bytes` take as WAL entries.
fn framed(bytes: u64, batches: u64) -> u64 {
    bytes + batches * u64::from(ENTRY_FRAMING)
}

/// Where a batch's bytes sit.
#[derive(Debug, Clone)]
pub struct BatchLocation {
    pub segment: SegmentId,
    pub file: Arc<SegmentFile>,
    pub position: u64,
}

/// The mutable state of a partition.
#[derive(Debug, Default)]
pub struct PartitionState {
    pub next_offset: i64,
    pub high_watermark: i64,
    pub log_start: i64,
    batches: BatchList,
    pub max_timestamp: i64,
    pub max_timestamp_offset: i64,
    pub deleted: bool,
    /// Idempotent producers' recent batches.
    pub producers: crate::producer::ProducerStates,
    /// Batches below this offset are already reflected in `producers`
    /// (from the snapshot loaded at startup).
    pub producer_snapshot_offset: i64,
    /// This partition, in the ledger.
    pub(crate) holder: Holder,
    pub(crate) ledger: Arc<Ledger>,
    /// Key compaction's progress (compacted topics).
    pub(crate) cleaner: crate::key_compaction::plan::CleanerState,
}

impl PartitionState {
    /// Adds a durable batch, at `batch.position` in `segment`'s `file`,
    /// after the last one.
    pub fn push_batch(&mut self, segment: SegmentId, file: &Arc<SegmentFile>, batch: BatchEntry) {
        self.ledger.add(segment, self.holder, entry_len(batch.len));
        self.batches.push(segment, file, batch);
    }

    /// Adds the batches `file`'s index lists for this partition, summed up
    /// in `summary`, after the last one.
    pub(crate) fn push_summary(
        &mut self,
        segment: SegmentId,
        file: &Arc<SegmentFile>,
        summary: RunSummary,
    ) {
        self.ledger.add_run(
            segment,
            self.holder,
            framed(summary.bytes, summary.batches),
            summary.batches,
        );
        self.batches.push_summary(segment, file, summary);
    }

    /// The batches.
    pub fn batches(&self) -> &BatchList {
        &self.batches
    }

    /// Bytes of the batches held.
    pub fn bytes(&self) -> u64 {
        self.batches.bytes()
    }

    /// Calls `visit` with the batches from the one holding `from` on.
    pub(crate) fn visit_from(
        &self,
        from: i64,
        idx: &Indexes<'_>,
        visit: impl FnMut(BatchRef<'_>) -> bool,
    ) -> Result<(), NeedIndex> {
        self.batches.visit_from(self.holder, from, idx, visit)
    }

    /// Calls `visit` with the batches held in segments `first..=last`.
    pub(crate) fn visit_segments(
        &self,
        segments: (SegmentId, SegmentId),
        idx: &Indexes<'_>,
        visit: impl FnMut(BatchRef<'_>),
    ) -> Result<(), NeedIndex> {
        self.batches
            .visit_segments(self.holder, segments, idx, visit)
    }

    /// Forgets every batch wholly below the log start (a batch straddling
    /// it stays: its later records are live). Returns the batches and
    /// bytes forgotten.
    pub(crate) fn drop_below_log_start(
        &mut self,
        idx: &Indexes<'_>,
    ) -> Result<(u64, u64), NeedIndex> {
        let removed = self.batches.drop_below(self.holder, self.log_start, idx)?;
        Ok(self.unledger(&removed))
    }

    fn unledger(&self, removed: &[Removed]) -> (u64, u64) {
        let (mut batches, mut bytes) = (0, 0);
        for r in removed {
            self.ledger.remove_run(
                r.segment,
                self.holder,
                framed(r.bytes, r.batches),
                r.batches,
            );
            batches += r.batches;
            bytes += r.bytes;
        }
        (batches, bytes)
    }

    /// Forgets every batch (the partition's topic is deleted).
    pub fn clear_batches(&mut self) {
        let removed = self.batches.clear();
        self.unledger(&removed);
    }

    /// Lists no more the batches of `segment`'s file `file`: its index
    /// lists them.
    pub(crate) fn summarize(&mut self, segment: SegmentId, file: u64) {
        self.batches.summarize(segment, file);
    }

    /// Lists again the batches held in segments `first..=last`.
    pub(crate) fn expand_segments(
        &mut self,
        segments: (SegmentId, SegmentId),
        idx: &Indexes<'_>,
    ) -> Result<(), NeedIndex> {
        self.batches.expand_segments(self.holder, segments, idx)
    }

    /// Points the batch at `base_offset` to its copy at `to`, `len` bytes
    /// (smaller than before when key compaction rebuilt it, with the
    /// rebuilt batch's `max_timestamp`), if it is still where `from` says
    /// (`(segment, position)`). False when the batch is gone or was moved
    /// meanwhile: the copy is then dead.
    pub(crate) fn relocate(
        &mut self,
        base_offset: i64,
        from: (SegmentId, u64),
        to: BatchLocation,
        len: u32,
        max_timestamp: Option<i64>,
        idx: &Indexes<'_>,
    ) -> Result<bool, NeedIndex> {
        let Some((old, at)) = self.batches.remove(self.holder, base_offset, from, idx)? else {
            return Ok(false);
        };
        self.ledger.remove(from.0, self.holder, entry_len(old.len));
        self.ledger.add(to.segment, self.holder, entry_len(len));
        let moved = BatchEntry {
            base_offset,
            last_offset: old.last_offset,
            max_timestamp: max_timestamp.unwrap_or(old.max_timestamp),
            position: to.position,
            len,
        };
        self.batches.insert(at, to.segment, &to.file, moved);
        Ok(true)
    }

    /// Forgets the batch at `base_offset` if it is still where `from` says
    /// (a damaged batch that will not be copied forward); its offsets
    /// become a gap, as in a compacted Kafka log.
    pub(crate) fn forget_batch(
        &mut self,
        base_offset: i64,
        from: (SegmentId, u64),
        idx: &Indexes<'_>,
    ) -> Result<bool, NeedIndex> {
        let Some((old, _)) = self.batches.remove(self.holder, base_offset, from, idx)? else {
            return Ok(false);
        };
        self.ledger.remove(from.0, self.holder, entry_len(old.len));
        Ok(true)
    }

    /// Notes a durable batch's timestamp for ListOffsets' max-timestamp query.
    pub fn note_timestamp(&mut self, header: &BatchHeader) {
        if header.max_timestamp > self.max_timestamp {
            self.max_timestamp = header.max_timestamp;
            self.max_timestamp_offset = header.last_offset();
        }
    }
}

/// What the partitions of a store share.
#[derive(Debug, Clone)]
pub struct SharedParts {
    /// The WAL's recent bytes.
    pub cache: Arc<TailCache>,
    /// Entries of sealed runs.
    pub indexes: Arc<IndexCache>,
    /// What partitions hold in each segment.
    pub ledger: Arc<Ledger>,
}

/// A partition of a topic.
#[derive(Debug)]
pub struct PartitionLog {
    pub topic: TopicId,
    pub index: i32,
    /// Holds the partition's producer-state snapshot.
    pub dir: PathBuf,
    state: RwLock<PartitionState>,
    /// The WAL's recent bytes, shared by all partitions.
    pub(crate) cache: Arc<TailCache>,
    /// Entries of sealed runs, shared by all partitions.
    pub(crate) indexes: Arc<IndexCache>,
    /// Where reads left off, for read-ahead.
    pub(crate) read_cursor: Mutex<crate::read_ahead::ReadCursor>,
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

impl PartitionLog {
    pub fn new(
        topic: TopicId,
        index: i32,
        dir: PathBuf,
        state: PartitionState,
        cache: Arc<TailCache>,
        indexes: Arc<IndexCache>,
    ) -> Self {
        PartitionLog {
            topic,
            index,
            dir,
            state: RwLock::new(state),
            cache,
            indexes,
            read_cursor: Mutex::new(crate::read_ahead::ReadCursor::default()),
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

    /// Bytes of record batches the partition holds.
    pub fn size_bytes(&self) -> u64 {
        self.state().bytes()
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
}

/// Limit on the records of one batch decompressed for a replay or a
/// timestamp lookup.
pub(crate) const DECOMPRESS_LIMIT: usize = 64 * 1024 * 1024;
