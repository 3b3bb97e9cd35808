//! The append path: one thread owns the active WAL segment and commits
//! produced batches in groups.
//!
//! Each group — everything queued while the previous fsync ran, up to a size
//! limit — is stamped with offsets, framed, written with one `write` and made
//! durable with one `fdatasync`. Only then do the batches become visible to
//! readers (the high watermark moves) and their producers get their answer.
//! A failed write or sync is undone (the segment is cut back and the
//! assigned offsets are released), so the WAL never holds a batch that was
//! refused. If the cut-back itself fails, every group is refused until a
//! retried cut-back succeeds; the WAL is reported unwritable
//! ([`WalHealth`]) from the first failure until a group is durable again.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use strata_protocol::batch::{self, BatchHeader};
use strata_wal::{begin_entry, finish_entry, SegmentWriter};
use tokio::sync::{mpsc, oneshot, watch};
use tracing::{error, warn};

use crate::entry;
use crate::log_limit::LogLimit;
use crate::metrics;
use crate::partition::PartitionLog;
use crate::producer::Decision;
use crate::segment_index::BatchEntry;
use crate::wal_health::WalHealth;
use crate::LogError;

/// The leader epoch of every partition: one broker, never a new leader.
pub const LEADER_EPOCH: i32 = 0;

/// Largest group written with one fsync.
const GROUP_MAX_BYTES: usize = 8 * 1024 * 1024;

/// Log lines of a lasting WAL fault, each summarised this often.
const FAULT_LOG_INTERVAL: std::time::Duration = std::time::Duration::from_secs(10);
static WRITE_FAILED: LogLimit = LogLimit::new(FAULT_LOG_INTERVAL);
static CUT_BACK_FAILED: LogLimit = LogLimit::new(FAULT_LOG_INTERVAL);
static ROLL_FAILED: LogLimit = LogLimit::new(FAULT_LOG_INTERVAL);

/// A validated batch waiting for its offsets.
#[derive(Debug)]
pub struct PendingBatch {
    pub partition: Arc<PartitionLog>,
    pub batch: Bytes,
    pub log_append_time: bool,
}

/// Where an appended batch landed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub base_offset: i64,
    /// The broker time stamped on the batch, or -1 under CreateTime.
    pub log_append_time_ms: i64,
    pub log_start: i64,
}

pub(crate) struct AppendRequest {
    pub batches: Vec<PendingBatch>,
    pub reply: oneshot::Sender<Vec<Result<Appended, LogError>>>,
    pub queued: Instant,
}

impl AppendRequest {
    fn bytes(&self) -> usize {
        self.batches.iter().map(|b| b.batch.len()).sum()
    }
}

/// A batch placed in the group buffer.
struct Placed {
    request: usize,
    slot: usize,
    partition: Arc<PartitionLog>,
    header: BatchHeader,
    /// Where the batch bytes start in the group buffer.
    at: usize,
    log_append_time_ms: i64,
    /// For a transaction marker: whether it commits. The transaction ends
    /// for readers only once the marker is durable.
    marker: Option<bool>,
}

pub(crate) struct Appender {
    pub rx: mpsc::Receiver<AppendRequest>,
    pub wal: SegmentWriter,
    pub wal_reader: Arc<strata_wal::SegmentFile>,
    pub wal_dir: std::path::PathBuf,
    pub storage: Arc<dyn strata_wal::Storage>,
    pub roll_bytes: u64,
    pub sealer: std::sync::mpsc::SyncSender<crate::housekeeping::SealTask>,
    pub seal_overflow: Arc<crate::housekeeping::SealOverflow>,
    pub appended: watch::Sender<u64>,
    /// After a failed write that could not be cut back: the length to cut
    /// the segment back to before anything else is written.
    pub cut_back_to: Option<u64>,
    pub health: Arc<WalHealth>,
    pub direct_io: bool,
    pub cache: Arc<crate::tail_cache::TailCache>,
    pub staging: crate::tail_cache::Staging,
}

impl Appender {
    /// Runs until every sender is gone and the queue is drained.
    pub fn run(mut self) {
        let mut buf = Vec::with_capacity(GROUP_MAX_BYTES + 1024);
        while let Some(first) = self.rx.blocking_recv() {
            let mut size = first.bytes();
            let mut group = vec![first];
            while size < GROUP_MAX_BYTES {
                match self.rx.try_recv() {
                    Ok(next) => {
                        size += next.bytes();
                        group.push(next);
                    }
                    Err(_) => break,
                }
            }
            self.commit(group, &mut buf);
        }
    }

    fn commit(&mut self, group: Vec<AppendRequest>, buf: &mut Vec<u8>) {
        let mut results: Vec<Vec<Result<Appended, LogError>>> = group
            .iter()
            .map(|r| {
                r.batches
                    .iter()
                    .map(|_| Err(LogError::StorageUnavailable))
                    .collect()
            })
            .collect();
        buf.clear();
        let now = crate::clock::now_ms();
        let mut placed = Vec::new();
        let mut replies = Vec::with_capacity(group.len());
        let refused = !self.repaired();
        if refused {
            metrics::count(metrics::WAL_WRITE_FAILURES);
        }
        for (request, req) in group.into_iter().enumerate() {
            for (slot, pending) in req.batches.into_iter().enumerate() {
                if refused {
                    continue;
                }
                match place(buf, pending, now) {
                    Ok(Placement::Placed(p)) => placed.push(Placed { request, slot, ..p }),
                    Ok(Placement::Duplicate(appended)) => results[request][slot] = Ok(appended),
                    Err(e) => results[request][slot] = Err(e),
                }
            }
            replies.push((req.reply, req.queued));
        }
        if !placed.is_empty() {
            let start = self.wal.len();
            let carry = self.wal.carry().len();
            let window = self.staging.build(self.wal.carry(), buf);
            let written = self.wal.append_window(window, buf.len()).and_then(|_| {
                let fsync_started = Instant::now();
                self.wal.sync().map(|()| fsync_started.elapsed())
            });
            match written {
                Ok(fsync) => {
                    self.health.recovered();
                    metrics::record_group_commit(placed.len(), buf.len(), fsync);
                    let window = self.staging.written();
                    let data = carry..carry + buf.len();
                    self.cache.insert(self.wal.id(), start, &window, data);
                    self.publish(&placed, start, buf, &mut results);
                }
                Err(e) => {
                    self.staging.discard();
                    metrics::count(metrics::WAL_WRITE_FAILURES);
                    self.undo(&placed, start, &e);
                }
            }
        }
        for ((reply, queued), result) in replies.into_iter().zip(results) {
            metrics::record_append_latency(queued.elapsed());
            // A producer that went away (acks=0, closed connection) needs no answer.
            let _ = reply.send(result);
        }
        if !placed.is_empty() {
            self.appended.send_modify(|generation| *generation += 1);
        }
        if self.wal.len() >= self.roll_bytes {
            self.roll();
        }
    }

    fn publish(
        &self,
        placed: &[Placed],
        start: u64,
        buf: &[u8],
        results: &mut [Vec<Result<Appended, LogError>>],
    ) {
        for p in placed {
            let mut st = p.partition.state_mut();
            st.push_batch(
                self.wal.id(),
                &self.wal_reader,
                BatchEntry::of(&p.header, start + p.at as u64),
            );
            st.high_watermark = p.header.last_offset() + 1;
            if let Some(commit) = p.marker {
                st.producers
                    .end_transaction(p.header.producer_id, commit, p.header.base_offset);
            }
            st.note_timestamp(&p.header);
            results[p.request][p.slot] = Ok(Appended {
                base_offset: p.header.base_offset,
                log_append_time_ms: p.log_append_time_ms,
                log_start: st.log_start,
            });
        }
        debug_assert!(buf.len() >= placed.last().map_or(0, |p| p.at));
    }

    fn undo(&mut self, placed: &[Placed], start: u64, cause: &strata_wal::WalError) {
        if let Some(suppressed) = WRITE_FAILED.admit() {
            error!(%cause, suppressed, "WAL write failed; the group is refused (repeats are summarised every 10 s)");
        }
        self.health.failed(format!("WAL write failed: {cause}"));
        for p in placed {
            let mut st = p.partition.state_mut();
            st.next_offset = st.high_watermark;
            let undone_from = st.high_watermark;
            st.producers.forget_from(undone_from);
        }
        self.cut_back_to = Some(start);
        self.repaired();
    }

    /// Whether the segment may take a group: nothing to cut back, or the
    /// cut-back after an earlier failure succeeded now. Until it does,
    /// every group is refused, so a batch the WAL may still hold the bytes
    /// of (refused, never acknowledged) can never be followed by new ones.
    fn repaired(&mut self) -> bool {
        let Some(len) = self.cut_back_to else {
            return true;
        };
        match self.wal.truncate_to(len) {
            Ok(()) => {
                self.cut_back_to = None;
                true
            }
            Err(e) => {
                if let Some(suppressed) = CUT_BACK_FAILED.admit() {
                    error!(error = %e, suppressed, "WAL cannot be cut back after a failed write; refusing writes until it can (retried with each produce request)");
                }
                self.health
                    .failed(format!("WAL cannot be cut back after a failed write: {e}"));
                false
            }
        }
    }

    fn roll(&mut self) {
        let next = self.wal.id() + 1;
        let created =
            SegmentWriter::create(self.storage.as_ref(), &self.wal_dir, next, self.direct_io)
                .and_then(|w| w.reader().map(|r| (w, r)));
        match created {
            Ok((writer, reader)) => {
                let mut old = std::mem::replace(&mut self.wal, writer);
                if let Err(e) = old.finish() {
                    warn!(segment = old.id(), error = %e, "cannot cut the padding off a finished WAL segment; recovery will");
                }
                self.wal_reader = Arc::new(reader);
                // Never waits for the sealing thread: a full queue (a long
                // compaction step) leaves the segment in the overflow list.
                use std::sync::mpsc::TrySendError;
                match self
                    .sealer
                    .try_send(crate::housekeeping::SealTask::Seal(old.id()))
                {
                    Ok(()) => {}
                    Err(TrySendError::Full(_)) => self.seal_overflow.push(old.id()),
                    Err(TrySendError::Disconnected(_)) => {
                        warn!("sealer is gone; WAL segment {} stays unsealed", old.id());
                    }
                }
            }
            Err(e) => {
                if let Some(suppressed) = ROLL_FAILED.admit() {
                    warn!(error = %e, suppressed, "cannot roll the WAL; appending to the current segment");
                }
            }
        }
    }
}

/// What placing a batch did.
enum Placement {
    Placed(Placed),
    /// An idempotent producer's retry of a batch already written.
    Duplicate(Appended),
}

/// Checks an idempotent producer's sequence, assigns offsets to a batch
/// and frames it into the group buffer.
fn place(buf: &mut Vec<u8>, pending: PendingBatch, now: i64) -> Result<Placement, LogError> {
    let partition = pending.partition;
    let mut header =
        BatchHeader::parse(&pending.batch).map_err(|e| LogError::Corrupt(e.to_string()))?;
    let (base, marker) = {
        let mut st = partition.state_mut();
        if st.deleted {
            return Err(LogError::UnknownTopicOrPartition);
        }
        match st.producers.decide(&header) {
            Decision::Append => {}
            Decision::Duplicate(base_offset) => {
                return Ok(Placement::Duplicate(Appended {
                    base_offset,
                    log_append_time_ms: -1,
                    log_start: st.log_start,
                }));
            }
            Decision::OutOfOrder => {
                return Err(LogError::OutOfOrderSequence {
                    producer_id: header.producer_id,
                    sequence: header.base_sequence,
                });
            }
            Decision::Fenced => {
                return Err(LogError::ProducerFenced {
                    producer_id: header.producer_id,
                    epoch: header.producer_epoch,
                })
            }
        }
        let base = st.next_offset;
        st.next_offset += header.offset_count();
        let marker = st.producers.apply_placed(&header, &pending.batch, base);
        (base, marker)
    };
    let open = begin_entry(buf);
    entry::write_prefix(buf, partition.topic, partition.index);
    let at = buf.len();
    buf.extend_from_slice(&pending.batch);
    let stamped = &mut buf[at..];
    batch::stamp_base_offset(stamped, base, LEADER_EPOCH);
    let log_append_time_ms = if pending.log_append_time {
        batch::stamp_log_append_time(stamped, now);
        now
    } else {
        -1
    };
    header.base_offset = base;
    if pending.log_append_time {
        header.max_timestamp = now;
    }
    if finish_entry(buf, open).is_none() {
        let mut st = partition.state_mut();
        st.next_offset -= header.offset_count();
        st.producers.forget_from(base);
        return Err(LogError::Corrupt(
            "batch exceeds the WAL entry limit".to_string(),
        ));
    }
    Ok(Placement::Placed(Placed {
        request: 0,
        slot: 0,
        partition,
        header,
        at,
        log_append_time_ms,
        marker,
    }))
}
