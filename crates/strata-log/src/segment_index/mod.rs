//! The index of a sealed WAL segment, `<id, 20 digits>.idx` beside
//! `<id>.wal`: where each partition's batches sit in the segment, so that
//! startup loads a sealed segment without reading its data, and a
//! partition keeps only one summary per segment in memory ([`cache`]
//! brings a run's batches back when a read needs them).
//!
//! Version 2 (written; byte by byte in docs/formats.md):
//!
//! ```text
//! offset size field
//!      0    8 magic          "STRATAIX"
//!      8    4 version        2, big-endian
//!     12    4 run count R    big-endian u32
//!     16    4 entry count N  big-endian u32
//!     20 R*92 runs           one per partition, sorted by (topic id, partition)
//!      …    8 head crc       CRC64-NVME over every byte before it
//!      … N*36 entries        run by run, each run's in offset order
//!
//! run:    0 16 topic id
//!        16  4 partition            big-endian i32
//!        20  4 first entry          index of the run's first entry
//!        24  4 entry count
//!        28  8 first offset         base offset of the run's first batch
//!        36  8 last offset          last offset of its last batch
//!        44  8 last base            base offset of its last batch
//!        52  8 max timestamp
//!        60  8 max timestamp offset last offset of the batch holding it
//!        68  8 bytes                sum of the batch lengths
//!        76  8 end                  largest position + length
//!        84  8 entries crc          CRC64-NVME over the run's entries
//!
//! entry:  0  8 base offset
//!         8  8 last offset
//!        16  8 max timestamp
//!        24  8 position             of the batch bytes in the WAL segment
//!        32  4 length               of the batch
//! ```
//!
//! Version 1 (read; startup rewrites it as version 2): the magic, version
//! 1, the entry count, then 56-byte entries (topic id, partition, and the
//! five entry fields) sorted by (topic id, partition, base offset), and a
//! CRC64-NVME over everything before it.
//!
//! An index is written once, atomically, after every batch it lists is
//! durable in its segment; a missing or damaged index only means the
//! segment is scanned again at startup and the index rewritten.

pub mod cache;

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use strata_wal::SegmentId;

use crate::topic::TopicId;
use crate::LogError;

const MAGIC: &[u8; 8] = b"STRATAIX";
const VERSION_1: u32 = 1;
const VERSION: u32 = 2;
const V1_HEADER_LEN: usize = 16;
const V1_ENTRY_LEN: usize = 56;
const HEADER_LEN: usize = 20;
const RUN_LEN: usize = 92;
const ENTRY_LEN: usize = 36;
const CRC_LEN: usize = 8;
const EXTENSION: &str = "idx";

/// One batch of a sealed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct IndexedBatch {
    pub topic: TopicId,
    pub partition: i32,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub position: u64,
    pub len: u32,
}

impl IndexedBatch {
    /// Whether the batch lies inside a segment of `segment_len` bytes.
    pub fn lies_within(&self, segment_len: u64) -> bool {
        self.position
            .checked_add(u64::from(self.len))
            .is_some_and(|end| end <= segment_len)
    }

    fn entry(&self) -> BatchEntry {
        BatchEntry {
            base_offset: self.base_offset,
            last_offset: self.last_offset,
            max_timestamp: self.max_timestamp,
            position: self.position,
            len: self.len,
        }
    }
}

/// One batch of a partition in a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchEntry {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub position: u64,
    pub len: u32,
}

impl BatchEntry {
    /// The batch `header` describes, at `position`.
    pub fn of(header: &strata_protocol::batch::BatchHeader, position: u64) -> Self {
        BatchEntry {
            base_offset: header.base_offset,
            last_offset: header.last_offset(),
            max_timestamp: header.max_timestamp,
            position,
            len: u32::try_from(header.total_len).unwrap_or(u32::MAX),
        }
    }
}

/// A partition's batches in a sealed segment, summed up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexedRun {
    pub topic: TopicId,
    pub partition: i32,
    pub entries: u32,
    pub first_offset: i64,
    pub last_offset: i64,
    pub last_base: i64,
    pub max_timestamp: i64,
    pub max_timestamp_offset: i64,
    pub bytes: u64,
    pub end: u64,
    /// Where the run's entries start in the index file.
    pub entries_at: u64,
    pub entries_crc: u64,
}

/// Why an index file cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IndexDefect {
    #[error("not a segment index (bad magic or version)")]
    NotAnIndex,
    #[error("length does not match its entry count")]
    WrongLength,
    #[error("checksum mismatch")]
    Checksum,
}

/// The index path of segment `id` in the WAL dir.
pub fn index_path(wal_dir: &Path, id: SegmentId) -> PathBuf {
    wal_dir.join(format!("{id:020}.{EXTENSION}"))
}

/// Every index file in the WAL dir, by segment id.
pub fn list_indexes(wal_dir: &Path) -> Result<Vec<(SegmentId, PathBuf)>, LogError> {
    Ok(strata_wal::list_by_id(wal_dir, EXTENSION)?)
}

/// The bytes of a version 2 index listing `batches` (sorted here).
pub fn encode(batches: &mut [IndexedBatch]) -> Vec<u8> {
    batches.sort_unstable();
    let runs: Vec<&[IndexedBatch]> = batches
        .chunk_by(|a, b| (a.topic, a.partition) == (b.topic, b.partition))
        .collect();
    let mut head = Vec::with_capacity(HEADER_LEN + runs.len() * RUN_LEN + CRC_LEN);
    let mut body = Vec::with_capacity(batches.len() * ENTRY_LEN);
    head.extend_from_slice(MAGIC);
    head.extend_from_slice(&VERSION.to_be_bytes());
    head.extend_from_slice(&u32_len(runs.len()).to_be_bytes());
    head.extend_from_slice(&u32_len(batches.len()).to_be_bytes());
    for run in &runs {
        let (Some(first), Some(last)) = (run.first(), run.last()) else {
            continue;
        };
        let first_entry = u32_len(body.len() / ENTRY_LEN);
        let at = body.len();
        for b in *run {
            put_entry(&mut body, &b.entry());
        }
        let top = run.iter().fold(first, |top, b| {
            if b.max_timestamp > top.max_timestamp {
                b
            } else {
                top
            }
        });
        head.extend_from_slice(&first.topic.0);
        head.extend_from_slice(&first.partition.to_be_bytes());
        head.extend_from_slice(&first_entry.to_be_bytes());
        head.extend_from_slice(&u32_len(run.len()).to_be_bytes());
        for v in [
            first.base_offset,
            last.last_offset,
            last.base_offset,
            top.max_timestamp,
            top.last_offset,
        ] {
            head.extend_from_slice(&v.to_be_bytes());
        }
        let bytes: u64 = run.iter().map(|b| u64::from(b.len)).sum();
        let end = run
            .iter()
            .map(|b| b.position.saturating_add(u64::from(b.len)))
            .max()
            .unwrap_or(0);
        head.extend_from_slice(&bytes.to_be_bytes());
        head.extend_from_slice(&end.to_be_bytes());
        head.extend_from_slice(&strata_wal::checksum(&body[at..]).to_be_bytes());
    }
    let crc = strata_wal::checksum(&head);
    head.extend_from_slice(&crc.to_be_bytes());
    head.extend_from_slice(&body);
    head
}

fn u32_len(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn put_entry(out: &mut Vec<u8>, e: &BatchEntry) {
    out.extend_from_slice(&e.base_offset.to_be_bytes());
    out.extend_from_slice(&e.last_offset.to_be_bytes());
    out.extend_from_slice(&e.max_timestamp.to_be_bytes());
    out.extend_from_slice(&e.position.to_be_bytes());
    out.extend_from_slice(&e.len.to_be_bytes());
}

fn get_entry(e: &[u8]) -> BatchEntry {
    BatchEntry {
        base_offset: be_i64(&e[..8]),
        last_offset: be_i64(&e[8..16]),
        max_timestamp: be_i64(&e[16..24]),
        position: be_u64(&e[24..32]),
        len: be_u32(&e[32..36]),
    }
}

/// A version 2 index's runs, from its first bytes (at least
/// [`head_len`] of them); `file_len` is the whole file's length.
fn decode_head(bytes: &[u8], file_len: u64) -> Result<Vec<IndexedRun>, IndexDefect> {
    let header = bytes.get(..HEADER_LEN).ok_or(IndexDefect::NotAnIndex)?;
    if &header[..8] != MAGIC || be_u32(&header[8..12]) != VERSION {
        return Err(IndexDefect::NotAnIndex);
    }
    let runs = be_u32(&header[12..16]) as usize;
    let entries = be_u32(&header[16..20]) as u64;
    let head_len = HEADER_LEN + runs * RUN_LEN;
    let expected = (head_len + CRC_LEN) as u64 + entries * ENTRY_LEN as u64;
    if file_len != expected {
        return Err(IndexDefect::WrongLength);
    }
    let head = bytes.get(..head_len).ok_or(IndexDefect::WrongLength)?;
    let crc = bytes
        .get(head_len..head_len + CRC_LEN)
        .ok_or(IndexDefect::WrongLength)?;
    if strata_wal::checksum(head) != be_u64(crc) {
        return Err(IndexDefect::Checksum);
    }
    let body_at = (head_len + CRC_LEN) as u64;
    head[HEADER_LEN..]
        .chunks_exact(RUN_LEN)
        .map(|r| {
            let mut topic = [0u8; 16];
            topic.copy_from_slice(&r[..16]);
            let first_entry = u64::from(be_u32(&r[20..24]));
            let count = be_u32(&r[24..28]);
            if first_entry + u64::from(count) > entries {
                return Err(IndexDefect::WrongLength);
            }
            Ok(IndexedRun {
                topic: TopicId(topic),
                partition: be_u32(&r[16..20]) as i32,
                entries: count,
                first_offset: be_i64(&r[28..36]),
                last_offset: be_i64(&r[36..44]),
                last_base: be_i64(&r[44..52]),
                max_timestamp: be_i64(&r[52..60]),
                max_timestamp_offset: be_i64(&r[60..68]),
                bytes: be_u64(&r[68..76]),
                end: be_u64(&r[76..84]),
                entries_at: body_at + first_entry * ENTRY_LEN as u64,
                entries_crc: be_u64(&r[84..92]),
            })
        })
        .collect()
}

/// A run's entries from their bytes, if they check.
fn decode_entries(run: &IndexedRun, bytes: &[u8]) -> Result<Vec<BatchEntry>, IndexDefect> {
    if bytes.len() != run.entries as usize * ENTRY_LEN {
        return Err(IndexDefect::WrongLength);
    }
    if strata_wal::checksum(bytes) != run.entries_crc {
        return Err(IndexDefect::Checksum);
    }
    Ok(bytes.chunks_exact(ENTRY_LEN).map(get_entry).collect())
}

/// The batches an index (version 1 or 2) lists, if its bytes are intact.
pub fn decode(bytes: &[u8]) -> Result<Vec<IndexedBatch>, IndexDefect> {
    if bytes.get(8..12).map(be_u32) == Some(VERSION_1) {
        return decode_v1(bytes);
    }
    let mut out = Vec::new();
    for run in decode_head(bytes, bytes.len() as u64)? {
        let at = run.entries_at as usize;
        let body = bytes
            .get(at..at + run.entries as usize * ENTRY_LEN)
            .ok_or(IndexDefect::WrongLength)?;
        out.extend(
            decode_entries(&run, body)?
                .into_iter()
                .map(|e| IndexedBatch {
                    topic: run.topic,
                    partition: run.partition,
                    base_offset: e.base_offset,
                    last_offset: e.last_offset,
                    max_timestamp: e.max_timestamp,
                    position: e.position,
                    len: e.len,
                }),
        );
    }
    Ok(out)
}

fn decode_v1(bytes: &[u8]) -> Result<Vec<IndexedBatch>, IndexDefect> {
    let header = bytes.get(..V1_HEADER_LEN).ok_or(IndexDefect::NotAnIndex)?;
    if &header[..8] != MAGIC || be_u32(&header[8..12]) != VERSION_1 {
        return Err(IndexDefect::NotAnIndex);
    }
    let count = be_u32(&header[12..16]) as usize;
    let body_len = count
        .checked_mul(V1_ENTRY_LEN)
        .and_then(|n| n.checked_add(V1_HEADER_LEN))
        .ok_or(IndexDefect::WrongLength)?;
    if bytes.len() != body_len + CRC_LEN {
        return Err(IndexDefect::WrongLength);
    }
    let (body, crc) = bytes.split_at(body_len);
    if strata_wal::checksum(body) != be_u64(crc) {
        return Err(IndexDefect::Checksum);
    }
    Ok(body[V1_HEADER_LEN..]
        .chunks_exact(V1_ENTRY_LEN)
        .map(|e| {
            let mut topic = [0u8; 16];
            topic.copy_from_slice(&e[..16]);
            let entry = get_entry(&e[20..56]);
            IndexedBatch {
                topic: TopicId(topic),
                partition: be_u32(&e[16..20]) as i32,
                base_offset: entry.base_offset,
                last_offset: entry.last_offset,
                max_timestamp: entry.max_timestamp,
                position: entry.position,
                len: entry.len,
            }
        })
        .collect())
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    a.copy_from_slice(&b[..4]);
    u32::from_be_bytes(a)
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_be_bytes(a)
}

fn be_i64(b: &[u8]) -> i64 {
    be_u64(b) as i64
}

/// Writes segment `id`'s index crash-safely (temp file, fsync, rename).
pub fn write(
    storage: &dyn strata_wal::Storage,
    wal_dir: &Path,
    id: SegmentId,
    batches: &mut [IndexedBatch],
) -> Result<(), LogError> {
    let bytes = encode(batches);
    let name = format!("{id:020}.{EXTENSION}");
    crate::topic::write_atomically(storage, wal_dir, &name, &bytes)
}

/// Reads a whole index file: `Ok(Err(defect))` when it is there but
/// unusable.
pub fn read(path: &Path) -> Result<Result<Vec<IndexedBatch>, IndexDefect>, LogError> {
    let bytes = std::fs::read(path).map_err(io(path))?;
    Ok(decode(&bytes))
}

/// What the start of an index file says.
#[derive(Debug)]
pub enum IndexHead {
    /// A version 2 index: its runs (their entries are read on demand).
    Runs(Vec<IndexedRun>),
    /// A version 1 index, read whole.
    Version1(Vec<IndexedBatch>),
}

/// Reads an index's runs without its entries: `Ok(Err(defect))` when it
/// is there but unusable.
pub fn read_head(path: &Path) -> Result<Result<IndexHead, IndexDefect>, LogError> {
    let file = File::open(path).map_err(io(path))?;
    let len = file.metadata().map_err(io(path))?.len();
    let mut header = [0u8; HEADER_LEN];
    if file.read_exact_at(&mut header, 0).is_err() {
        return Ok(Err(IndexDefect::NotAnIndex));
    }
    if be_u32(&header[8..12]) == VERSION_1 {
        return Ok(read(path)?.map(IndexHead::Version1));
    }
    let runs = be_u32(&header[12..16]) as u64;
    let head_len = (HEADER_LEN + CRC_LEN) as u64 + runs * RUN_LEN as u64;
    if head_len > len {
        return Ok(Err(IndexDefect::WrongLength));
    }
    let mut head = vec![0u8; head_len as usize];
    file.read_exact_at(&mut head, 0).map_err(io(path))?;
    Ok(decode_head(&head, len).map(IndexHead::Runs))
}

/// Reads one run's entries from an open index file.
pub fn read_entries(
    file: &File,
    path: &Path,
    run: &IndexedRun,
) -> Result<Result<Vec<BatchEntry>, IndexDefect>, LogError> {
    let mut bytes = vec![0u8; run.entries as usize * ENTRY_LEN];
    file.read_exact_at(&mut bytes, run.entries_at)
        .map_err(io(path))?;
    Ok(decode_entries(run, &bytes))
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError {
    let path = path.to_path_buf();
    move |source| LogError::Io { path, source }
}

#[cfg(test)]
mod tests;
