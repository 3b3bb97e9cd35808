//! The index of a sealed WAL segment, `<id, 20 digits>.idx` beside
//! `<id>.wal`: where each partition's batches sit in the segment, so that
//! startup loads a sealed segment without reading its data.
//!
//! ```text
//! offset size field
//!      0    8 magic          "STRATAIX"
//!      8    4 version        1, big-endian
//!     12    4 entry count    big-endian u32
//!     16 n*56 entries        sorted by (topic id, partition, base offset)
//!    end    8 crc            CRC64-NVME over everything before it, big-endian
//!
//! entry:  0 16 topic id
//!        16  4 partition      big-endian i32
//!        20  8 base offset    big-endian i64
//!        28  8 last offset
//!        36  8 max timestamp
//!        44  8 position       of the batch bytes in the WAL segment
//!        52  4 length         of the batch
//! ```
//!
//! An index is written once, atomically, after every batch it lists is
//! durable in its segment; a missing or damaged index only means the
//! segment is scanned again at startup and the index rewritten.

use std::path::{Path, PathBuf};

use strata_wal::SegmentId;

use crate::topic::TopicId;
use crate::LogError;

const MAGIC: &[u8; 8] = b"STRATAIX";
const VERSION: u32 = 1;
const HEADER_LEN: usize = 16;
const ENTRY_LEN: usize = 56;
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

/// The bytes of an index listing `batches` (sorted here).
pub fn encode(batches: &mut [IndexedBatch]) -> Vec<u8> {
    batches.sort_unstable();
    let mut out = Vec::with_capacity(HEADER_LEN + batches.len() * ENTRY_LEN + CRC_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_be_bytes());
    let count = u32::try_from(batches.len()).unwrap_or(u32::MAX);
    out.extend_from_slice(&count.to_be_bytes());
    for b in batches.iter().take(count as usize) {
        out.extend_from_slice(&b.topic.0);
        out.extend_from_slice(&b.partition.to_be_bytes());
        out.extend_from_slice(&b.base_offset.to_be_bytes());
        out.extend_from_slice(&b.last_offset.to_be_bytes());
        out.extend_from_slice(&b.max_timestamp.to_be_bytes());
        out.extend_from_slice(&b.position.to_be_bytes());
        out.extend_from_slice(&b.len.to_be_bytes());
    }
    let crc = strata_wal::checksum(&out);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

/// The batches an index lists, if its bytes are intact.
pub fn decode(bytes: &[u8]) -> Result<Vec<IndexedBatch>, IndexDefect> {
    let header = bytes.get(..HEADER_LEN).ok_or(IndexDefect::NotAnIndex)?;
    if &header[..8] != MAGIC || be_u32(&header[8..12]) != VERSION {
        return Err(IndexDefect::NotAnIndex);
    }
    let count = be_u32(&header[12..16]) as usize;
    let body_len = count
        .checked_mul(ENTRY_LEN)
        .and_then(|n| n.checked_add(HEADER_LEN))
        .ok_or(IndexDefect::WrongLength)?;
    if bytes.len() != body_len + CRC_LEN {
        return Err(IndexDefect::WrongLength);
    }
    let (body, crc) = bytes.split_at(body_len);
    if strata_wal::checksum(body) != be_u64(crc) {
        return Err(IndexDefect::Checksum);
    }
    Ok(body[HEADER_LEN..]
        .chunks_exact(ENTRY_LEN)
        .map(|e| {
            let mut topic = [0u8; 16];
            topic.copy_from_slice(&e[..16]);
            IndexedBatch {
                topic: TopicId(topic),
                partition: be_u32(&e[16..20]) as i32,
                base_offset: be_u64(&e[20..28]) as i64,
                last_offset: be_u64(&e[28..36]) as i64,
                max_timestamp: be_u64(&e[36..44]) as i64,
                position: be_u64(&e[44..52]),
                len: be_u32(&e[52..56]),
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

/// Reads an index file: `Ok(Err(defect))` when it is there but unusable.
pub fn read(path: &Path) -> Result<Result<Vec<IndexedBatch>, IndexDefect>, LogError> {
    let bytes = std::fs::read(path).map_err(|source| LogError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(decode(&bytes))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn batch(partition: i32, base_offset: i64) -> IndexedBatch {
        IndexedBatch {
            topic: TopicId([7; 16]),
            partition,
            base_offset,
            last_offset: base_offset + 9,
            max_timestamp: 1_700_000_000_000 + base_offset,
            position: 8 + base_offset as u64 * 100,
            len: 100,
        }
    }

    #[test]
    fn round_trips_sorted_by_partition_then_offset() {
        let mut batches = vec![batch(1, 20), batch(0, 10), batch(1, 0), batch(0, 0)];
        let bytes = encode(&mut batches);
        assert_eq!(bytes.len(), HEADER_LEN + 4 * ENTRY_LEN + CRC_LEN);
        let decoded = decode(&bytes).unwrap();
        assert_eq!(
            decoded,
            vec![batch(0, 0), batch(0, 10), batch(1, 0), batch(1, 20)]
        );
        assert_eq!(decode(&encode(&mut [])).unwrap(), vec![]);
    }

    #[test]
    fn every_flipped_byte_and_every_cut_is_detected() {
        let bytes = encode(&mut [batch(0, 0), batch(3, 5)]);
        for i in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[i] ^= 0x10;
            assert!(decode(&damaged).is_err(), "flip at {i} not detected");
        }
        for len in 0..bytes.len() {
            assert!(decode(&bytes[..len]).is_err(), "cut at {len} not detected");
        }
    }
}
