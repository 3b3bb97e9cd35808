//! Reads of a partition: whole batches from an offset, and the offset for a
//! timestamp.
//!
//! A read is planned under the partition's lock (which batches, where) and
//! done without it: batches still in the [`TailCache`] are taken from
//! memory; the others are read from their segment — with direct I/O where
//! the WAL is written that way, one read for each run of nearby batches,
//! into reused aligned memory, so a cold read costs the page cache
//! nothing; otherwise with one `pread` per batch. Every batch read from
//! disk is checked against its CRC-32C: a batch damaged on disk after it
//! was written is left out and reported, so consumers never receive
//! damaged bytes; they see an offset gap instead.
//!
//! A read that starts where the partition's previous read ended (a
//! consumer going through the log in order) also plans the batches after
//! it, up to 4 MiB, and has the [`crate::read_ahead`] thread read
//! them while this answer travels; the next read takes them from memory.
//! Those batches are checked the same way before they are served.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use strata_protocol::batch::{BatchHeader, HEADER_LEN};
use strata_wal::SegmentId;

use crate::partition::{Isolation, PartitionLog, PartitionState, ReadResult, DECOMPRESS_LIMIT};
use crate::read_ahead::Taken;
use crate::read_plan::{is_intact, run_len, PlannedBatch};
use crate::segment_index::cache::{Indexes, NeedIndex};
use crate::walk::Held;

use crate::tail_cache::TailCache;
use crate::LogError;
use strata_wal::direct::BLOCK;
use strata_wal::SegmentFile;

/// Batches examined per lock taken by a timestamp lookup.
const LOOKUP_CHUNK: usize = 64;

impl PartitionLog {
    /// Reads whole batches from `offset`, up to `max_bytes` of them (at least
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
        self.read_limited(offset, max_bytes, isolation, FirstBatch::Always)
    }

    /// [`Self::read_isolated`], where `first` says whether a first batch
    /// larger than `max_bytes` is still served (Kafka's KIP-74: only the
    /// first partition of a fetch answer may exceed the limit).
    pub fn read_limited(
        &self,
        offset: i64,
        max_bytes: usize,
        isolation: Isolation,
        first: FirstBatch,
    ) -> Result<ReadResult, LogError> {
        let mut result = {
            let st = self.state();
            if offset < st.log_start || offset > st.high_watermark {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start: st.log_start,
                    high_watermark: st.high_watermark,
                });
            }
            let last_stable_offset = st.producers.last_stable_offset(st.high_watermark);
            ReadResult {
                records: Bytes::new(),
                high_watermark: st.high_watermark,
                log_start: st.log_start,
                last_stable_offset,
                aborted: match isolation {
                    Isolation::ReadUncommitted => Vec::new(),
                    Isolation::ReadCommitted => {
                        st.producers.aborted_between(offset, last_stable_offset)
                    }
                },
            }
        };
        let limit = match isolation {
            Isolation::ReadUncommitted => result.high_watermark,
            Isolation::ReadCommitted => result.last_stable_offset,
        };
        let mut from = offset;
        let mut held = Held::new();
        loop {
            let plan = self.with_batches(&mut held, |st, idx| {
                plan_read(st, idx, from, limit, max_bytes, first)
            })?;
            let ahead = {
                let st = self.state();
                let idx = Indexes {
                    cache: &self.indexes,
                    held: &held,
                };
                self.plan_ahead(&st, &idx, from, &plan)
            };
            let Some(last) = plan.last().map(|b| b.last_offset) else {
                return Ok(result);
            };
            self.read_ahead(ahead);
            let served = read_planned(&plan, &self.cache)?;
            if !served.is_empty() {
                result.records = served;
                return Ok(result);
            }
            // Every planned batch was damaged: step over them.
            from = last + 1;
        }
    }

    /// The first offset whose record timestamp is at or after `timestamp`,
    /// with that record's timestamp.
    ///
    /// Candidate batches are chosen under the lock a few at a time; the
    /// files are read without it, so a lookup never holds up appends.
    pub fn offset_for_timestamp(&self, timestamp: i64) -> Result<Option<(i64, i64)>, LogError> {
        let mut from = i64::MIN;
        let mut held = Held::new();
        loop {
            let (candidates, log_start, next) = self.with_batches(&mut held, |st, idx| {
                let mut candidates: Vec<(Arc<SegmentFile>, u64)> = Vec::new();
                let mut next = from;
                let Some(first) = st
                    .batches()
                    .run_facts()
                    .find(|r| r.last_offset >= from && r.max_timestamp >= timestamp)
                else {
                    return Ok((candidates, st.log_start, next));
                };
                st.visit_from(from.max(first.first_offset), idx, |b| {
                    if b.base_offset >= st.high_watermark || candidates.len() >= LOOKUP_CHUNK {
                        return false;
                    }
                    if b.max_timestamp >= timestamp {
                        candidates.push((Arc::clone(b.file), b.position));
                        next = b.last_offset + 1;
                    }
                    true
                })?;
                Ok((candidates, st.log_start, next))
            })?;
            from = next;
            if candidates.is_empty() {
                return Ok(None);
            }
            for (file, position) in candidates {
                if let Some(found) = find_in_batch(file.buffered(), position, timestamp, log_start)?
                {
                    return Ok(Some(found));
                }
            }
        }
    }
}

/// Whether a read serves its first batch when that batch alone is larger
/// than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FirstBatch {
    /// Always, so a consumer progresses whatever its limits.
    Always,
    /// Only when it fits.
    IfItFits,
}

impl PartitionLog {
    /// The offset and timestamp of the first record with the partition's
    /// largest timestamp (ListOffsets' max-timestamp query): the record
    /// itself, not the last offset of its batch.
    pub fn offset_of_max_timestamp(&self) -> Result<Option<(i64, i64)>, LogError> {
        let mut held = Held::new();
        let found = self.with_batches(&mut held, |st, idx| {
            if st.max_timestamp < 0 || st.max_timestamp_offset < st.log_start {
                return Ok(None);
            }
            let mut found = None;
            st.visit_from(st.max_timestamp_offset, idx, |b| {
                found = Some((Arc::clone(b.file), b.position));
                false
            })?;
            Ok(found.map(|(file, position)| (file, position, st.max_timestamp, st.log_start)))
        })?;
        let Some((file, position, timestamp, log_start)) = found else {
            return Ok(None);
        };
        find_in_batch(file.buffered(), position, timestamp, log_start)
    }
}

/// The batches from `from` below `limit`, at most `max_bytes` of them (but
/// at least one under [`FirstBatch::Always`]).
fn plan_read(
    st: &PartitionState,
    idx: &Indexes<'_>,
    from: i64,
    limit: i64,
    max_bytes: usize,
    first: FirstBatch,
) -> Result<Vec<PlannedBatch>, NeedIndex> {
    let mut planned = 0usize;
    let mut out = Vec::new();
    st.visit_from(from, idx, |b| {
        let len = b.len as usize;
        let may_exceed = out.is_empty() && first == FirstBatch::Always;
        if b.base_offset >= limit || (!may_exceed && planned + len > max_bytes) {
            return false;
        }
        planned += len;
        out.push(PlannedBatch::of(&b));
        true
    })?;
    Ok(out)
}

/// The planned batches as one buffer, leaving out damaged ones. Batches
/// still in the tail cache come from memory; the others are read from
/// their segment, with direct I/O where it is on, a run of nearby batches
/// at a time, unless the read-ahead has them. A read of one batch is served
/// without a copy.
fn read_planned(plan: &[PlannedBatch], cache: &TailCache) -> Result<Bytes, LogError> {
    if let [batch] = plan {
        if let Some(bytes) = cache.get(batch.segment, batch.position, batch.len) {
            crate::metrics::count(crate::metrics::WAL_CACHE_HITS);
            return Ok(bytes);
        }
        crate::metrics::count(crate::metrics::WAL_CACHE_MISSES);
        match cache.ahead.take(batch) {
            Some(Taken::Intact(bytes)) => return Ok(bytes),
            Some(Taken::Damaged) => {
                report_damage(batch);
                return Ok(Bytes::new());
            }
            None => {}
        }
        if let Some(read) = read_run(plan, cache)? {
            return Ok(read.into_iter().next().unwrap_or_default());
        }
    }
    let total = plan.iter().map(|b| b.len).sum();
    let mut out = BytesMut::with_capacity(total);
    let mut i = 0;
    let mut hits = 0;
    while let Some(batch) = plan.get(i) {
        if let Some(bytes) = cache.get(batch.segment, batch.position, batch.len) {
            out.extend_from_slice(&bytes);
            hits += 1;
            i += 1;
            continue;
        }
        match cache.ahead.take(batch) {
            Some(Taken::Intact(bytes)) => {
                out.extend_from_slice(&bytes);
                i += 1;
                continue;
            }
            Some(Taken::Damaged) => {
                report_damage(batch);
                i += 1;
                continue;
            }
            None => {}
        }
        // Up to the next batch the read-ahead has.
        let len = run_len(plan, i);
        let len = plan
            .get(i + 1..i + len)
            .and_then(|rest| cache.ahead.first_held(rest))
            .map_or(len, |k| k + 1);
        let run = &plan[i..i + len];
        i += len;
        if let Some(read) = read_run(run, cache)? {
            for bytes in read {
                out.extend_from_slice(&bytes);
            }
            continue;
        }
        for batch in run {
            let at = out.len();
            out.resize(at + batch.len, 0);
            let slot = &mut out[at..];
            batch
                .file
                .buffered()
                .read_exact_at(slot, batch.position)
                .map_err(|source| io_error(batch, source))?;
            if !is_intact(slot, batch) {
                out.truncate(at);
                report_damage(batch);
            }
        }
    }
    if plan.len() > 1 {
        crate::metrics::count_by(crate::metrics::WAL_CACHE_HITS, hits);
        crate::metrics::count_by(crate::metrics::WAL_CACHE_MISSES, plan.len() as u64 - hits);
    }
    Ok(out.freeze())
}

/// Reads a run of batches of one segment with one direct read of the
/// blocks holding them; the intact batches as views of that read. `None`
/// when the segment has no direct I/O.
fn read_run(run: &[PlannedBatch], cache: &TailCache) -> Result<Option<Vec<Bytes>>, LogError> {
    let (Some(first), Some(last)) = (run.first(), run.last()) else {
        return Ok(Some(Vec::new()));
    };
    let block = BLOCK as u64;
    let from = first.position - first.position % block;
    let end = last.position + last.len as u64;
    let to = end.div_ceil(block) * block;
    let mut buf = cache.read_buffer((to - from) as usize);
    let got = match first.file.read_direct(&mut buf, from) {
        None => return Ok(None),
        // Refused by the file system: read through the page cache instead.
        Some(Err(e)) if e.raw_os_error() == Some(libc::EINVAL) => return Ok(None),
        Some(read) => read.map_err(|source| io_error(first, source))?,
    };
    if (got as u64) < end - from {
        let short = std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "segment ends before the batches it should hold",
        );
        return Err(io_error(last, short));
    }
    let read = buf.freeze();
    let mut out = Vec::with_capacity(run.len());
    for batch in run {
        let at = (batch.position - from) as usize;
        let bytes = read.slice(at..at + batch.len);
        if is_intact(&bytes, batch) {
            out.push(bytes);
        } else {
            report_damage(batch);
        }
    }
    Ok(Some(out))
}

fn io_error(batch: &PlannedBatch, source: std::io::Error) -> LogError {
    LogError::Io {
        path: segment_name(batch.segment).into(),
        source,
    }
}

fn report_damage(batch: &PlannedBatch) {
    crate::metrics::count(crate::metrics::STORED_BATCHES_DAMAGED);
    tracing::warn!(
        file = %segment_name(batch.segment),
        position = batch.position,
        length = batch.len,
        base_offset = batch.base_offset,
        "stored batch failed its checksum; not served"
    );
}

fn segment_name(segment: SegmentId) -> String {
    format!("{segment:020}.wal")
}

fn find_in_batch(
    file: &File,
    position: u64,
    timestamp: i64,
    log_start: i64,
) -> Result<Option<(i64, i64)>, LogError> {
    let io = |source| LogError::Io {
        path: "<WAL segment>".into(),
        source,
    };
    let mut head = [0u8; HEADER_LEN];
    file.read_exact_at(&mut head, position).map_err(io)?;
    let header = BatchHeader::parse_prefix(&head)
        .map_err(|e| LogError::Corrupt(format!("bad batch header at {position}: {e}")))?;
    if header.is_control() || header.max_timestamp < timestamp {
        return Ok(None);
    }
    if header.is_log_append_time() {
        let offset = header.base_offset.max(log_start);
        return Ok((offset <= header.last_offset()).then_some((offset, header.max_timestamp)));
    }
    let mut bytes = vec![0u8; header.total_len];
    file.read_exact_at(&mut bytes, position).map_err(io)?;
    let records = strata_protocol::records::record_infos(&bytes, &header, DECOMPRESS_LIMIT)
        .map_err(|e| LogError::Corrupt(e.to_string()))?;
    Ok(records
        .iter()
        .find(|r| r.timestamp >= timestamp && r.offset >= log_start)
        .map(|r| (r.offset, r.timestamp)))
}
