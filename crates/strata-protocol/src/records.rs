//! Record-level reading of a V2 batch: decompression and iteration.
//!
//! Used only where the broker must look inside a batch (keyless records on a
//! compacted topic, ListOffsets by timestamp); the produce and fetch paths
//! never decompress. Decompressed output is capped, so a small compressed
//! batch cannot expand into unbounded memory.

use std::io::Read;

use crate::batch::{BatchHeader, Codec, HEADER_LEN};
use crate::error::BatchError;

/// One record's position and identity inside its batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordInfo {
    pub offset: i64,
    pub timestamp: i64,
    pub has_key: bool,
}

/// Decompresses the records section of `batch`, reading at most `limit` bytes.
pub fn decompressed_records(
    batch: &[u8],
    header: &BatchHeader,
    limit: usize,
) -> Result<Vec<u8>, BatchError> {
    let payload = batch
        .get(HEADER_LEN..header.total_len)
        .ok_or(BatchError::Truncated(batch.len()))?;
    let io_err = |e: std::io::Error| BatchError::Decompress(e.to_string());
    match header.codec {
        Codec::None => Ok(payload.to_vec()),
        Codec::Gzip => read_capped(flate2::read::GzDecoder::new(payload), limit),
        Codec::Snappy => snappy(payload, limit),
        Codec::Lz4 => read_capped(lz4::Decoder::new(payload).map_err(io_err)?, limit),
        Codec::Zstd => read_capped(zstd::Decoder::new(payload).map_err(io_err)?, limit),
    }
}

fn read_capped(reader: impl Read, limit: usize) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    reader
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| BatchError::Decompress(e.to_string()))?;
    if out.len() > limit {
        return Err(BatchError::DecompressedTooLarge(limit));
    }
    Ok(out)
}

/// The first bytes of snappy in the xerial framing.
pub(crate) const XERIAL_MAGIC: &[u8] = b"\x82SNAPPY\x00";

/// Snappy as Kafka clients send it: raw snappy, or the xerial framing that
/// the Java client writes (a 16-byte header, then length-prefixed blocks).
fn snappy(payload: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    if !payload.starts_with(XERIAL_MAGIC) {
        return snappy_block(payload, limit);
    }
    let mut out = Vec::new();
    let mut rest = payload
        .get(16..)
        .ok_or(BatchError::Truncated(payload.len()))?;
    while !rest.is_empty() {
        let (len_bytes, tail) = rest
            .split_at_checked(4)
            .ok_or(BatchError::Truncated(rest.len()))?;
        let len = u32::from_be_bytes([len_bytes[0], len_bytes[1], len_bytes[2], len_bytes[3]]);
        let len = usize::try_from(len).map_err(|_| BatchError::Truncated(tail.len()))?;
        let (block, tail) = tail
            .split_at_checked(len)
            .ok_or(BatchError::Truncated(tail.len()))?;
        out.extend(snappy_block(block, limit.saturating_sub(out.len()))?);
        rest = tail;
    }
    Ok(out)
}

fn snappy_block(block: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    let len =
        snap::raw::decompress_len(block).map_err(|e| BatchError::Decompress(e.to_string()))?;
    if len > limit {
        return Err(BatchError::DecompressedTooLarge(limit));
    }
    snap::raw::Decoder::new()
        .decompress_vec(block)
        .map_err(|e| BatchError::Decompress(e.to_string()))
}

/// A record inside a decompressed batch, borrowed from it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordView<'a> {
    pub offset: i64,
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
}

impl RecordView<'_> {
    /// A record with a null value: on a compacted topic, a key's deletion.
    pub fn is_tombstone(&self) -> bool {
        self.value.is_none()
    }
}

/// Decodes every record of a batch (headers are skipped).
pub fn for_each_record(
    batch: &[u8],
    header: &BatchHeader,
    limit: usize,
    mut visit: impl FnMut(RecordView<'_>),
) -> Result<(), BatchError> {
    let data = decompressed_records(batch, header, limit)?;
    let mut cursor = data.as_slice();
    for index in 0..header.record_count {
        let bad = || BatchError::MalformedRecord { index };
        let length = usize::try_from(varint(&mut cursor).ok_or_else(bad)?).map_err(|_| bad())?;
        let (mut record, rest) = cursor.split_at_checked(length).ok_or_else(bad)?;
        cursor = rest;
        record = record.get(1..).ok_or_else(bad)?; // attributes
        let timestamp_delta = varint(&mut record).ok_or_else(bad)?;
        let offset_delta = varint(&mut record).ok_or_else(bad)?;
        let key = bytes_field(&mut record).ok_or_else(bad)?;
        let value = bytes_field(&mut record).ok_or_else(bad)?;
        visit(RecordView {
            offset: header.base_offset.saturating_add(offset_delta),
            timestamp: header.base_timestamp.saturating_add(timestamp_delta),
            key,
            value,
        });
    }
    Ok(())
}

/// Reads a varint-length-prefixed byte field; `Some(None)` for a null field.
pub(crate) fn bytes_field<'a>(cursor: &mut &'a [u8]) -> Option<Option<&'a [u8]>> {
    let length = varint(cursor)?;
    if length < 0 {
        return Some(None);
    }
    let (field, rest) = cursor.split_at_checked(usize::try_from(length).ok()?)?;
    *cursor = rest;
    Some(Some(field))
}

/// Reads every record's offset, timestamp and key presence.
pub fn record_infos(
    batch: &[u8],
    header: &BatchHeader,
    limit: usize,
) -> Result<Vec<RecordInfo>, BatchError> {
    let mut out = Vec::new();
    for_each_record(batch, header, limit, |r| {
        out.push(RecordInfo {
            offset: r.offset,
            timestamp: r.timestamp,
            has_key: r.key.is_some(),
        });
    })?;
    Ok(out)
}

/// Checks that every record has a key, as compacted topics require; the
/// error names every keyless record (Kafka reports each one).
pub fn require_keys(batch: &[u8], header: &BatchHeader, limit: usize) -> Result<(), BatchError> {
    let indexes: Vec<i32> = record_infos(batch, header, limit)?
        .iter()
        .enumerate()
        .filter(|(_, record)| !record.has_key)
        .map(|(index, _)| i32::try_from(index).unwrap_or(i32::MAX))
        .collect();
    if indexes.is_empty() {
        Ok(())
    } else {
        Err(BatchError::MissingKeys { indexes })
    }
}

/// Reads a zig-zag varint (Kafka's record encoding), advancing the cursor.
pub(crate) fn varint(cursor: &mut &[u8]) -> Option<i64> {
    let mut value: u64 = 0;
    for shift in (0..70).step_by(7) {
        let (&byte, rest) = cursor.split_first()?;
        *cursor = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            let signed = (value >> 1) as i64 ^ -((value & 1) as i64);
            return Some(signed);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::tests::batch_with_keys;

    #[test]
    fn reads_offsets_timestamps_and_keys() {
        let b = batch_with_keys(&[Some(b"a"), None, Some(b"c")], 5000);
        let h = BatchHeader::parse(&b).unwrap();
        let infos = record_infos(&b, &h, 1 << 20).unwrap();
        assert_eq!(infos.len(), 3);
        assert_eq!(infos[2].offset, 2);
        assert_eq!(infos[2].timestamp, 5020);
        assert!(!infos[1].has_key);
        assert_eq!(
            require_keys(&b, &h, 1 << 20),
            Err(BatchError::MissingKeys { indexes: vec![1] })
        );
    }

    #[test]
    fn record_views_carry_keys_and_values() {
        let b = crate::builder::build_batch(&[
            crate::builder::RecordSpec {
                key: Some(b"key"),
                value: Some(b"value"),
                timestamp: 7,
            },
            crate::builder::RecordSpec {
                key: None,
                value: None,
                timestamp: 8,
            },
        ]);
        let h = BatchHeader::parse(&b).unwrap();
        let mut seen = Vec::new();
        for_each_record(&b, &h, 1 << 20, |r| {
            seen.push((
                r.offset,
                r.key.map(<[u8]>::to_vec),
                r.value.map(<[u8]>::to_vec),
            ))
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (0, Some(b"key".to_vec()), Some(b"value".to_vec())),
                (1, None, None)
            ]
        );
    }

    #[test]
    fn lying_record_count_is_malformed() {
        let mut b = batch_with_keys(&[Some(b"a")], 0);
        b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
        let h = BatchHeader::parse(&b).unwrap();
        assert!(record_infos(&b, &h, 1 << 20).is_err());
    }
}
