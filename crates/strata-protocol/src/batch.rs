//! The Kafka V2 record batch header.
//!
//! ```text
//! offset  size  field
//!      0     8  base offset            broker-owned: stamped on append
//!      8     4  batch length           bytes after this field
//!     12     4  partition leader epoch broker-owned
//!     16     1  magic (2)
//!     17     4  CRC-32C                over bytes 21..end
//!     21     2  attributes             bits 0-2 codec, 3 timestamp type,
//!                                      4 transactional, 5 control,
//!                                      6 delete horizon (KIP-534)
//!     23     4  last offset delta
//!     27     8  base timestamp         the delete horizon when bit 6 is set
//!     35     8  max timestamp          broker-owned under LogAppendTime
//!     43     8  producer id
//!     51     2  producer epoch
//!     53     4  base sequence
//!     57     4  record count
//!     61        records (compressed as a whole when the codec is not 0)
//! ```
//!
//! Base offset and leader epoch sit outside the CRC, so stamping them keeps
//! the producer's checksum valid. Switching a batch to LogAppendTime changes
//! covered bytes, so [`stamp_log_append_time`] recomputes the CRC, as Kafka does.

use crate::error::BatchError;

/// Size of the batch header; the first record starts here.
pub const HEADER_LEN: usize = 61;
/// Bytes before the batch length field ends: base offset and length.
pub const LOG_OVERHEAD: usize = 12;
pub(crate) const CRC_START: usize = 21;
const ATTR_TIMESTAMP_TYPE: i16 = 0x08;
const ATTR_TRANSACTIONAL: i16 = 0x10;
const ATTR_CONTROL: i16 = 0x20;
pub(crate) const ATTR_DELETE_HORIZON: i16 = 0x40;

/// The compression codec named in a batch's attributes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    None,
    Gzip,
    Snappy,
    Lz4,
    Zstd,
}

impl Codec {
    fn from_attributes(attributes: i16) -> Result<Self, BatchError> {
        match attributes & 0x07 {
            0 => Ok(Codec::None),
            1 => Ok(Codec::Gzip),
            2 => Ok(Codec::Snappy),
            3 => Ok(Codec::Lz4),
            4 => Ok(Codec::Zstd),
            // The mask keeps the value in 5..=7, which fits a byte.
            other => Err(BatchError::UnknownCodec(other.to_be_bytes()[1])),
        }
    }

    /// The codec's name as Kafka configs spell it.
    pub fn name(self) -> &'static str {
        match self {
            Codec::None => "none",
            Codec::Gzip => "gzip",
            Codec::Snappy => "snappy",
            Codec::Lz4 => "lz4",
            Codec::Zstd => "zstd",
        }
    }
}

/// The decoded header of one V2 record batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    pub base_offset: i64,
    /// Total bytes of the batch, header included.
    pub total_len: usize,
    pub crc: u32,
    pub attributes: i16,
    pub last_offset_delta: i32,
    pub base_timestamp: i64,
    pub max_timestamp: i64,
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub record_count: i32,
    pub codec: Codec,
}

impl BatchHeader {
    /// Parses the header at the start of `bytes`, which must hold the whole
    /// batch (and may hold more batches after it).
    pub fn parse(bytes: &[u8]) -> Result<Self, BatchError> {
        let header = Self::parse_prefix(bytes)?;
        if header.total_len > bytes.len() {
            return Err(BatchError::LengthMismatch {
                declared: header.total_len as i64 - LOG_OVERHEAD as i64,
                actual: bytes.len(),
            });
        }
        Ok(header)
    }

    /// Parses a batch header from its first [`HEADER_LEN`] bytes, without
    /// requiring the rest of the batch to be present.
    pub fn parse_prefix(bytes: &[u8]) -> Result<Self, BatchError> {
        let header = bytes
            .get(..HEADER_LEN)
            .ok_or(BatchError::Truncated(bytes.len()))?;
        let magic = i8::from_be_bytes([header[16]]);
        if magic != 2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        let batch_length = i64::from(be_i32(header, 8));
        let total_len = usize::try_from(batch_length + LOG_OVERHEAD as i64)
            .ok()
            .filter(|t| *t >= HEADER_LEN)
            .ok_or(BatchError::LengthMismatch {
                declared: batch_length,
                actual: bytes.len(),
            })?;
        let attributes = be_i16(header, 21);
        let last_offset_delta = be_i32(header, 23);
        let record_count = be_i32(header, 57);
        let control = attributes & ATTR_CONTROL != 0;
        if record_count < 0 || (!control && record_count == 0) || last_offset_delta < 0 {
            return Err(BatchError::BadRecordCount(record_count));
        }
        Ok(BatchHeader {
            base_offset: be_i64(header, 0),
            total_len,
            crc: u32::from_be_bytes([header[17], header[18], header[19], header[20]]),
            attributes,
            last_offset_delta,
            base_timestamp: be_i64(header, 27),
            max_timestamp: be_i64(header, 35),
            producer_id: be_i64(header, 43),
            producer_epoch: be_i16(header, 51),
            base_sequence: be_i32(header, 53),
            record_count,
            codec: Codec::from_attributes(attributes)?,
        })
    }

    /// How many offsets the batch occupies.
    pub fn offset_count(&self) -> i64 {
        i64::from(self.last_offset_delta) + 1
    }

    /// The offset of the batch's last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset + i64::from(self.last_offset_delta)
    }

    pub fn is_log_append_time(&self) -> bool {
        self.attributes & ATTR_TIMESTAMP_TYPE != 0
    }

    pub fn is_transactional(&self) -> bool {
        self.attributes & ATTR_TRANSACTIONAL != 0
    }

    pub fn is_control(&self) -> bool {
        self.attributes & ATTR_CONTROL != 0
    }

    /// The KIP-534 delete horizon, when the log cleaner has set one: after
    /// it, the batch's tombstones and transaction markers may be dropped.
    /// The base timestamp holds it, and record timestamps stay relative to it.
    pub fn delete_horizon(&self) -> Option<i64> {
        (self.attributes & ATTR_DELETE_HORIZON != 0).then_some(self.base_timestamp)
    }
}

/// Checks the producer's CRC-32C over the batch's covered bytes.
pub fn validate_crc(batch: &[u8], header: &BatchHeader) -> Result<(), BatchError> {
    let covered = batch
        .get(CRC_START..header.total_len)
        .ok_or(BatchError::Truncated(batch.len()))?;
    let actual = crc32c::crc32c(covered);
    if actual == header.crc {
        Ok(())
    } else {
        Err(BatchError::CrcMismatch {
            expected: header.crc,
            actual,
        })
    }
}

/// Writes the broker-assigned base offset and partition leader epoch into a batch.
pub fn stamp_base_offset(batch: &mut [u8], base_offset: i64, leader_epoch: i32) {
    if let Some(field) = batch.get_mut(..8) {
        field.copy_from_slice(&base_offset.to_be_bytes());
    }
    if let Some(field) = batch.get_mut(12..16) {
        field.copy_from_slice(&leader_epoch.to_be_bytes());
    }
}

/// Marks a batch as LogAppendTime with `now_ms` as its max timestamp and
/// recomputes the CRC-32C, as a Kafka broker does for such topics.
pub fn stamp_log_append_time(batch: &mut [u8], now_ms: i64) {
    if batch.len() < HEADER_LEN {
        return;
    }
    let attributes = be_i16(batch, 21) | ATTR_TIMESTAMP_TYPE;
    batch[21..23].copy_from_slice(&attributes.to_be_bytes());
    batch[35..43].copy_from_slice(&now_ms.to_be_bytes());
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Splits a buffer of concatenated batches, validating each header.
pub fn split_batches(
    mut bytes: &[u8],
) -> Result<Vec<(BatchHeader, std::ops::Range<usize>)>, BatchError> {
    let mut out = Vec::new();
    let mut start = 0;
    while !bytes.is_empty() {
        let header = BatchHeader::parse(bytes)?;
        out.push((header, start..start + header.total_len));
        start += header.total_len;
        bytes = &bytes[header.total_len..];
    }
    Ok(out)
}

fn be_i16(b: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([b[at], b[at + 1]])
}

fn be_i32(b: &[u8], at: usize) -> i32 {
    i32::from_be_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

fn be_i64(b: &[u8], at: usize) -> i64 {
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&b[at..at + 8]);
    i64::from_be_bytes(raw)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An uncompressed batch with the given keys, timestamps 10 ms apart.
    pub(crate) fn batch_with_keys(keys: &[Option<&[u8]>], base_timestamp: i64) -> Vec<u8> {
        let specs: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, key)| crate::builder::RecordSpec {
                key: *key,
                value: Some(b"v"),
                timestamp: base_timestamp + i as i64 * 10,
            })
            .collect();
        crate::builder::build_batch(&specs)
    }

    #[test]
    fn parses_and_validates_a_batch() {
        let b = batch_with_keys(&[Some(b"k1"), Some(b"k2")], 1000);
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(h.record_count, 2);
        assert_eq!(h.offset_count(), 2);
        assert_eq!(h.total_len, b.len());
        assert_eq!(h.codec, Codec::None);
        validate_crc(&b, &h).unwrap();
    }

    #[test]
    fn flipped_byte_fails_the_crc() {
        let mut b = batch_with_keys(&[Some(b"k1")], 1000);
        let last = b.len() - 1;
        b[last] ^= 0xff;
        let h = BatchHeader::parse(&b).unwrap();
        assert!(matches!(
            validate_crc(&b, &h),
            Err(BatchError::CrcMismatch { .. })
        ));
    }

    #[test]
    fn stamping_keeps_the_batch_valid() {
        let mut b = batch_with_keys(&[Some(b"k1")], 1000);
        stamp_base_offset(&mut b, 42, 0);
        let h = BatchHeader::parse(&b).unwrap();
        assert_eq!(h.base_offset, 42);
        validate_crc(&b, &h).unwrap();
        stamp_log_append_time(&mut b, 77);
        let h = BatchHeader::parse(&b).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 77);
        validate_crc(&b, &h).unwrap();
    }

    #[test]
    fn short_and_lying_batches_are_refused() {
        let b = batch_with_keys(&[Some(b"k1")], 1000);
        for end in 0..b.len() {
            assert!(BatchHeader::parse(&b[..end]).is_err());
        }
        let mut lying = b.clone();
        lying[8..12].copy_from_slice(&i32::MAX.to_be_bytes());
        assert!(BatchHeader::parse(&lying).is_err());
        lying[8..12].copy_from_slice(&(-5i32).to_be_bytes());
        assert!(BatchHeader::parse(&lying).is_err());
    }

    #[test]
    fn splits_concatenated_batches() {
        let mut b = batch_with_keys(&[Some(b"a")], 1);
        b.extend(batch_with_keys(&[Some(b"b"), None], 2));
        let parts = split_batches(&b).unwrap();
        assert_eq!(parts.len(), 2);
        assert_eq!(parts[1].0.record_count, 2);
    }
}
