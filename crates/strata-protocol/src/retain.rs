//! Dropping records from one V2 batch, as key compaction
//! (`cleanup.policy=compact`) does.
//!
//! [`retain_records`] shows every record of a batch to the caller, who says
//! which stay: which record is a key's latest, and whether a tombstone is past
//! its delete horizon, is the caller's policy. What stays is written back the
//! way Kafka's log cleaner writes it:
//!
//! - the batch keeps its base offset, partition leader epoch, producer id,
//!   epoch and base sequence, attributes (codec, timestamp type,
//!   transactional, control, delete horizon), base timestamp and last offset
//!   delta, so it still spans its offset range: the producer's sequence
//!   bookkeeping and the offsets of the batches after it stay right;
//! - each kept record is byte for byte what it was, its offset and timestamp
//!   deltas still relative to the unchanged base offset and base timestamp;
//! - the record count, batch length and CRC-32C are written anew, and so is
//!   the max timestamp under CreateTime (the kept records' maximum); under
//!   LogAppendTime it stays, as it is every record's timestamp.
//!
//! A compressed batch is decompressed (at most `limit` bytes, as in
//! [`crate::records`]), filtered, and compressed again with its codec: snappy
//! in the framing it came in (raw, or xerial as the Java client writes it),
//! lz4 as a frame of independent 64 KiB blocks without checksums (what the
//! Java client writes and reads), gzip and zstd at their default levels.
//!
//! [`set_delete_horizon`] stamps the KIP-534 delete horizon, which
//! [`crate::batch::BatchHeader::delete_horizon`] reads back.

use std::borrow::Cow;
use std::io::Write;

use crate::batch::{BatchHeader, Codec, ATTR_DELETE_HORIZON, CRC_START, HEADER_LEN, LOG_OVERHEAD};
use crate::builder::put_varint;
use crate::error::BatchError;
use crate::records::{bytes_field, decompressed_records, varint, RecordView, XERIAL_MAGIC};

/// What is left of a batch after [`retain_records`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Retained {
    /// Every record stays: the original bytes are kept untouched.
    All,
    /// No record stays.
    None,
    /// Some records stay, in this rebuilt batch.
    Some(Vec<u8>),
}

/// Filters the records of `batch`, whose parsed header is `header`, keeping
/// those for which `keep` returns true.
///
/// `keep` sees each record once, in stored order, and only after the whole
/// batch has been decoded: a malformed batch is an error before any record is
/// shown. The whole records section must decode: records that end early, run
/// past the batch, or leave bytes after the last declared record are errors.
/// The timestamp `keep` sees is the base timestamp plus the record's delta,
/// as [`crate::records::for_each_record`] reads it, under LogAppendTime too.
pub fn retain_records(
    batch: &[u8],
    header: &BatchHeader,
    limit: usize,
    mut keep: impl FnMut(&RecordView<'_>) -> bool,
) -> Result<Retained, BatchError> {
    let data = records_section(batch, header, limit)?;
    let records = parse_records(&data, header)?;
    let kept: Vec<&Record<'_>> = records.iter().filter(|r| keep(&r.view)).collect();
    if kept.len() == records.len() {
        return Ok(Retained::All);
    }
    if kept.is_empty() {
        return Ok(Retained::None);
    }
    let max_timestamp = if header.is_log_append_time() {
        header.max_timestamp
    } else {
        kept.iter()
            .map(|r| r.view.timestamp)
            .max()
            .unwrap_or(header.max_timestamp)
    };
    let mut body = Vec::with_capacity(kept.iter().map(|r| r.bytes.len()).sum());
    for record in &kept {
        body.extend_from_slice(record.bytes);
    }
    let rebuilt = assemble(
        batch,
        header,
        &body,
        kept.len(),
        Stamp {
            attributes: header.attributes,
            base_timestamp: header.base_timestamp,
            max_timestamp,
        },
    )?;
    Ok(Retained::Some(rebuilt))
}

/// Rewrites `batch` with the KIP-534 delete horizon `horizon_ms`: the
/// attribute's delete-horizon bit is set and the base timestamp becomes the
/// horizon, so every record's timestamp delta is encoded again relative to it
/// (each record's timestamp is unchanged). Everything else stays, as in
/// [`retain_records`]; a compressed batch is compressed again.
///
/// Kafka's cleaner sets the horizon (cleaning time plus `delete.retention.ms`)
/// the first time it cleans a batch holding tombstones or a transaction
/// marker, and drops those once a later cleaning runs past it.
pub fn set_delete_horizon(
    batch: &[u8],
    header: &BatchHeader,
    horizon_ms: i64,
    limit: usize,
) -> Result<Vec<u8>, BatchError> {
    let data = records_section(batch, header, limit)?;
    let records = parse_records(&data, header)?;
    let mut body = Vec::with_capacity(data.len());
    let mut encoded = Vec::new();
    for (index, record) in records.iter().enumerate() {
        let delta = header
            .base_timestamp
            .checked_add(record.timestamp_delta)
            .and_then(|timestamp| timestamp.checked_sub(horizon_ms))
            .ok_or(BatchError::MalformedRecord {
                index: i32::try_from(index).unwrap_or(i32::MAX),
            })?;
        encoded.clear();
        encoded.push(record.attributes);
        put_varint(&mut encoded, delta);
        encoded.extend_from_slice(record.after_timestamp);
        put_varint(&mut body, encoded.len() as i64);
        body.extend_from_slice(&encoded);
    }
    assemble(
        batch,
        header,
        &body,
        records.len(),
        Stamp {
            attributes: header.attributes | ATTR_DELETE_HORIZON,
            base_timestamp: horizon_ms,
            max_timestamp: header.max_timestamp,
        },
    )
}

/// One record of a records section, borrowed from it.
struct Record<'a> {
    /// The record as stored, its length prefix included.
    bytes: &'a [u8],
    attributes: u8,
    timestamp_delta: i64,
    /// The record after its timestamp delta: offset delta, key, value, headers.
    after_timestamp: &'a [u8],
    view: RecordView<'a>,
}

/// The uncompressed records section of a batch: borrowed when the batch is
/// not compressed.
fn records_section<'a>(
    batch: &'a [u8],
    header: &BatchHeader,
    limit: usize,
) -> Result<Cow<'a, [u8]>, BatchError> {
    match header.codec {
        Codec::None => batch
            .get(HEADER_LEN..header.total_len)
            .map(Cow::Borrowed)
            .ok_or(BatchError::Truncated(batch.len())),
        _ => decompressed_records(batch, header, limit).map(Cow::Owned),
    }
}

/// Decodes every record of a records section, checking that each one is
/// whole (headers included) and that nothing follows the last one.
fn parse_records<'a>(data: &'a [u8], header: &BatchHeader) -> Result<Vec<Record<'a>>, BatchError> {
    let declared = usize::try_from(header.record_count).unwrap_or(0);
    // A record takes at least 7 bytes; a lying count must not size the vector.
    let mut records = Vec::with_capacity(declared.min(data.len() / 7));
    let mut cursor = data;
    for index in 0..header.record_count {
        let bad = || BatchError::MalformedRecord { index };
        let start = cursor;
        let length = usize::try_from(varint(&mut cursor).ok_or_else(bad)?).map_err(|_| bad())?;
        let prefix = start.len() - cursor.len();
        let (body, rest) = cursor.split_at_checked(length).ok_or_else(bad)?;
        let bytes = start.get(..prefix + length).ok_or_else(bad)?;
        cursor = rest;
        let (&attributes, mut fields) = body.split_first().ok_or_else(bad)?;
        let timestamp_delta = varint(&mut fields).ok_or_else(bad)?;
        let after_timestamp = fields;
        let offset_delta = varint(&mut fields).ok_or_else(bad)?;
        let key = bytes_field(&mut fields).ok_or_else(bad)?;
        let value = bytes_field(&mut fields).ok_or_else(bad)?;
        skip_headers(&mut fields).ok_or_else(bad)?;
        if !fields.is_empty() {
            return Err(bad());
        }
        records.push(Record {
            bytes,
            attributes,
            timestamp_delta,
            after_timestamp,
            view: RecordView {
                offset: header.base_offset.saturating_add(offset_delta),
                timestamp: header.base_timestamp.saturating_add(timestamp_delta),
                key,
                value,
            },
        });
    }
    if !cursor.is_empty() {
        return Err(BatchError::TrailingBytes(cursor.len()));
    }
    Ok(records)
}

/// Skips a record's headers: a count, then each header's key (never null)
/// and value (nullable).
fn skip_headers(cursor: &mut &[u8]) -> Option<()> {
    let count = varint(cursor)?;
    if count < 0 {
        return None;
    }
    for _ in 0..count {
        bytes_field(cursor)??;
        bytes_field(cursor)?;
    }
    Some(())
}

/// The header fields a rebuilt batch sets anew, besides count and length.
struct Stamp {
    attributes: i16,
    base_timestamp: i64,
    max_timestamp: i64,
}

/// A batch with the original's header, the fields of `stamp`, and `body` (an
/// uncompressed records section of `count` records) compressed with the
/// original's codec, its length and CRC-32C computed.
fn assemble(
    batch: &[u8],
    header: &BatchHeader,
    body: &[u8],
    count: usize,
    stamp: Stamp,
) -> Result<Vec<u8>, BatchError> {
    let original = batch
        .get(..HEADER_LEN)
        .ok_or(BatchError::Truncated(batch.len()))?;
    let payload = compress(header.codec, original_payload(batch, header), body)?;
    let size = HEADER_LEN + payload.len();
    let batch_length = i32::try_from(size - LOG_OVERHEAD).map_err(|_| BatchError::TooLarge {
        size,
        limit: i32::MAX as usize,
    })?;
    let count = i32::try_from(count).map_err(|_| BatchError::BadRecordCount(i32::MAX))?;
    let mut head = [0u8; HEADER_LEN];
    head.copy_from_slice(original);
    head[8..12].copy_from_slice(&batch_length.to_be_bytes());
    head[21..23].copy_from_slice(&stamp.attributes.to_be_bytes());
    head[27..35].copy_from_slice(&stamp.base_timestamp.to_be_bytes());
    head[35..43].copy_from_slice(&stamp.max_timestamp.to_be_bytes());
    head[57..61].copy_from_slice(&count.to_be_bytes());
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(&head);
    out.extend_from_slice(&payload);
    let crc = crc32c::crc32c(out.get(CRC_START..).unwrap_or_default());
    out[17..21].copy_from_slice(&crc.to_be_bytes());
    Ok(out)
}

fn original_payload<'a>(batch: &'a [u8], header: &BatchHeader) -> &'a [u8] {
    batch.get(HEADER_LEN..header.total_len).unwrap_or_default()
}

/// Block size of the xerial snappy framing, as the Java client writes it.
const XERIAL_BLOCK: usize = 32 * 1024;
/// Kafka's default zstd level.
const ZSTD_LEVEL: i32 = 3;

/// Compresses a records section with `codec`; `original` is the batch's
/// payload as it came, which tells the snappy framing to keep.
fn compress(codec: Codec, original: &[u8], body: &[u8]) -> Result<Vec<u8>, BatchError> {
    let io_err = |e: std::io::Error| BatchError::Compress(e.to_string());
    match codec {
        Codec::None => Ok(body.to_vec()),
        Codec::Gzip => {
            let mut encoder =
                flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            encoder.write_all(body).map_err(io_err)?;
            encoder.finish().map_err(io_err)
        }
        Codec::Snappy if original.starts_with(XERIAL_MAGIC) => snappy_xerial(body),
        Codec::Snappy => snap::raw::Encoder::new()
            .compress_vec(body)
            .map_err(|e| BatchError::Compress(e.to_string())),
        Codec::Lz4 => {
            let mut encoder = lz4::EncoderBuilder::new()
                .block_size(lz4::BlockSize::Max64KB)
                .block_mode(lz4::BlockMode::Independent)
                .block_checksum(lz4::liblz4::BlockChecksum::NoBlockChecksum)
                .checksum(lz4::ContentChecksum::NoChecksum)
                .build(Vec::new())
                .map_err(io_err)?;
            encoder.write_all(body).map_err(io_err)?;
            let (out, result) = encoder.finish();
            result.map_err(io_err)?;
            Ok(out)
        }
        Codec::Zstd => zstd::bulk::compress(body, ZSTD_LEVEL).map_err(io_err),
    }
}

/// Snappy in the xerial framing: magic, version 1, compatible version 1, then
/// each block's compressed length and bytes.
fn snappy_xerial(body: &[u8]) -> Result<Vec<u8>, BatchError> {
    let err = |e: snap::Error| BatchError::Compress(e.to_string());
    let mut out = Vec::with_capacity(16 + body.len() / 2);
    out.extend_from_slice(XERIAL_MAGIC);
    out.extend_from_slice(&1i32.to_be_bytes());
    out.extend_from_slice(&1i32.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for chunk in body.chunks(XERIAL_BLOCK) {
        let block = encoder.compress_vec(chunk).map_err(err)?;
        let len = u32::try_from(block.len())
            .map_err(|_| BatchError::Compress("snappy block over 4 GiB".into()))?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&block);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{stamp_base_offset, stamp_log_append_time, validate_crc};
    use crate::builder::{build_batch, build_batch_with, BatchOptions, RecordSpec};
    use crate::records::for_each_record;

    const LIMIT: usize = 1 << 24;

    /// Every way a batch is stored: each codec, snappy in both framings.
    #[derive(Debug, Clone, Copy)]
    enum Encoding {
        None,
        Gzip,
        SnappyRaw,
        SnappyXerial,
        Lz4,
        Zstd,
    }

    const ENCODINGS: [Encoding; 6] = [
        Encoding::None,
        Encoding::Gzip,
        Encoding::SnappyRaw,
        Encoding::SnappyXerial,
        Encoding::Lz4,
        Encoding::Zstd,
    ];

    /// A small deterministic generator (xorshift), for property-style tests
    /// without a dependency.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }

        fn bytes(&mut self, max_len: u64) -> Vec<u8> {
            let len = self.below(max_len + 1);
            // A few distinct bytes, so the codecs have something to compress.
            (0..len)
                .map(|_| b"abcdxyz0"[self.below(8) as usize])
                .collect()
        }
    }

    /// Owned record contents, to compare what goes in with what comes out.
    #[derive(Debug, Clone, PartialEq, Eq)]
    struct Owned {
        offset: i64,
        timestamp: i64,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
    }

    impl From<&RecordView<'_>> for Owned {
        fn from(r: &RecordView<'_>) -> Self {
            Owned {
                offset: r.offset,
                timestamp: r.timestamp,
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
            }
        }
    }

    /// Records as the independent reader of [`crate::records`] decodes them.
    fn decoded(batch: &[u8]) -> Vec<Owned> {
        let header = BatchHeader::parse(batch).unwrap();
        let mut out = Vec::new();
        for_each_record(batch, &header, LIMIT, |r| out.push(Owned::from(&r))).unwrap();
        out
    }

    /// `batch` with `payload` as its records section and `attributes`, its
    /// length and CRC-32C set to match.
    fn with_payload(batch: &[u8], payload: &[u8], attributes: i16) -> Vec<u8> {
        let mut out = batch[..HEADER_LEN].to_vec();
        out.extend_from_slice(payload);
        let length = i32::try_from(out.len() - LOG_OVERHEAD).unwrap();
        out[8..12].copy_from_slice(&length.to_be_bytes());
        out[21..23].copy_from_slice(&attributes.to_be_bytes());
        let crc = crc32c::crc32c(&out[CRC_START..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        out
    }

    /// An uncompressed batch stored with `encoding`. Compression goes through
    /// the writer under test, but reading back goes through the decoders of
    /// [`crate::records`].
    fn encode(batch: &[u8], encoding: Encoding) -> Vec<u8> {
        let body = &batch[HEADER_LEN..];
        let attributes = i16::from_be_bytes([batch[21], batch[22]]) & !0x07;
        let (codec, payload) = match encoding {
            Encoding::None => return batch.to_vec(),
            Encoding::Gzip => (1, compress(Codec::Gzip, &[], body).unwrap()),
            Encoding::SnappyRaw => (2, compress(Codec::Snappy, &[], body).unwrap()),
            Encoding::SnappyXerial => (2, compress(Codec::Snappy, XERIAL_MAGIC, body).unwrap()),
            Encoding::Lz4 => (3, compress(Codec::Lz4, &[], body).unwrap()),
            Encoding::Zstd => (4, compress(Codec::Zstd, &[], body).unwrap()),
        };
        with_payload(batch, &payload, attributes | codec)
    }

    /// Each record's stored bytes, in order, from the uncompressed records
    /// section; checks that they tile the section exactly.
    fn record_spans(batch: &[u8]) -> Vec<Vec<u8>> {
        let header = BatchHeader::parse(batch).unwrap();
        let data = records_section(batch, &header, LIMIT).unwrap();
        let spans: Vec<Vec<u8>> = parse_records(&data, &header)
            .unwrap()
            .iter()
            .map(|r| r.bytes.to_vec())
            .collect();
        assert_eq!(spans.concat(), data.as_ref());
        spans
    }

    /// A record's key, value and timestamp.
    type Spec = (Option<Vec<u8>>, Option<Vec<u8>>, i64);

    fn random_specs(rng: &mut Rng, n: usize, max_value: u64) -> Vec<Spec> {
        (0..n)
            .map(|_| {
                let key = (rng.below(5) != 0).then(|| rng.bytes(8));
                let value = (rng.below(4) != 0).then(|| rng.bytes(max_value));
                // Timestamps around the first, some before it.
                let timestamp = 1_700_000_000_000 + rng.below(20_000) as i64 - 10_000;
                (key, value, timestamp)
            })
            .collect()
    }

    fn build(specs: &[Spec], options: BatchOptions) -> Vec<u8> {
        let specs: Vec<RecordSpec<'_>> = specs
            .iter()
            .map(|(key, value, timestamp)| RecordSpec {
                key: key.as_deref(),
                value: value.as_deref(),
                timestamp: *timestamp,
            })
            .collect();
        build_batch_with(&specs, options)
    }

    /// Filters `batch` by `mask` (bit i keeps record i) and checks everything
    /// the module promises about the result.
    fn check_subset(batch: &[u8], mask: &[bool]) {
        let header = BatchHeader::parse(batch).unwrap();
        let before = decoded(batch);
        let mut seen = Vec::new();
        let result = retain_records(batch, &header, LIMIT, |r| {
            seen.push(Owned::from(r));
            mask[seen.len() - 1]
        })
        .unwrap();
        assert_eq!(seen, before, "keep sees every record, in order");
        let expected: Vec<Owned> = before
            .iter()
            .zip(mask)
            .filter(|(_, keep)| **keep)
            .map(|(r, _)| r.clone())
            .collect();
        let out = match result {
            Retained::All => {
                assert!(mask.iter().all(|k| *k));
                return;
            }
            Retained::None => {
                assert!(mask.iter().all(|k| !*k));
                return;
            }
            Retained::Some(out) => out,
        };
        assert!(mask.iter().any(|k| *k) && mask.iter().any(|k| !*k));
        let h = BatchHeader::parse(&out).unwrap();
        validate_crc(&out, &h).unwrap();
        assert_eq!(h.total_len, out.len());
        assert_eq!(h.record_count, expected.len() as i32);
        assert_eq!(out[..8], batch[..8], "base offset");
        assert_eq!(out[12..17], batch[12..17], "leader epoch and magic");
        assert_eq!(
            out[21..35],
            batch[21..35],
            "attributes, last offset delta, base timestamp"
        );
        assert_eq!(
            out[43..57],
            batch[43..57],
            "producer id, epoch, base sequence"
        );
        let max = if header.is_log_append_time() {
            header.max_timestamp
        } else {
            expected.iter().map(|r| r.timestamp).max().unwrap()
        };
        assert_eq!(h.max_timestamp, max);
        assert_eq!(decoded(&out), expected);
        // Kept records are the original bytes, in order.
        let kept_spans: Vec<Vec<u8>> = record_spans(batch)
            .into_iter()
            .zip(mask)
            .filter(|(_, keep)| **keep)
            .map(|(span, _)| span)
            .collect();
        assert_eq!(record_spans(&out), kept_spans);
        if header.codec == Codec::None {
            assert_eq!(out[HEADER_LEN..], kept_spans.concat());
        }
    }

    fn mask_of(bits: u64, n: usize) -> Vec<bool> {
        (0..n).map(|i| bits >> i & 1 == 1).collect()
    }

    #[test]
    fn every_subset_of_small_batches_rebuilds_a_valid_batch() {
        let mut rng = Rng(0x5eed);
        for n in 1..=6 {
            let specs = random_specs(&mut rng, n, 40);
            let mut plain = build(&specs, BatchOptions::default());
            stamp_base_offset(&mut plain, 1000 + n as i64, 7);
            for encoding in ENCODINGS {
                let batch = encode(&plain, encoding);
                for bits in 0..1u64 << n {
                    check_subset(&batch, &mask_of(bits, n));
                }
            }
        }
    }

    #[test]
    fn random_batches_rebuild_across_compression_blocks() {
        let mut rng = Rng(0xc0ffee);
        for round in 0..12 {
            let n = 1 + rng.below(60) as usize;
            // Values up to 8 KiB: the larger batches span several snappy
            // (32 KiB) and lz4 (64 KiB) blocks.
            let specs = random_specs(&mut rng, n, 8 * 1024);
            let options = BatchOptions {
                producer_id: 4000 + round,
                producer_epoch: 3,
                base_sequence: 17,
                attributes: 0,
            };
            let mut plain = build(&specs, options);
            stamp_base_offset(&mut plain, rng.below(1 << 40) as i64, 2);
            for encoding in ENCODINGS {
                let batch = encode(&plain, encoding);
                for _ in 0..4 {
                    let mask: Vec<bool> = (0..n).map(|_| rng.below(3) != 0).collect();
                    check_subset(&batch, &mask);
                }
            }
        }
    }

    #[test]
    fn keeping_every_record_is_all_and_keeping_none_is_none() {
        let mut rng = Rng(7);
        let specs = random_specs(&mut rng, 5, 100);
        let plain = build(&specs, BatchOptions::default());
        for encoding in ENCODINGS {
            let batch = encode(&plain, encoding);
            let header = BatchHeader::parse(&batch).unwrap();
            assert_eq!(
                retain_records(&batch, &header, LIMIT, |_| true),
                Ok(Retained::All)
            );
            assert_eq!(
                retain_records(&batch, &header, LIMIT, |_| false),
                Ok(Retained::None)
            );
        }
    }

    #[test]
    fn last_offset_delta_survives_dropping_the_last_records() {
        let batch = crate::batch::tests::batch_with_keys(
            &[Some(b"a"), Some(b"b"), Some(b"a"), Some(b"b")],
            100,
        );
        let header = BatchHeader::parse(&batch).unwrap();
        let Ok(Retained::Some(out)) = retain_records(&batch, &header, LIMIT, |r| r.offset == 0)
        else {
            panic!("expected a rebuilt batch");
        };
        let h = BatchHeader::parse(&out).unwrap();
        assert_eq!((h.record_count, h.last_offset_delta), (1, 3));
        assert_eq!(h.last_offset(), header.last_offset());
        assert_eq!(h.max_timestamp, 100);
    }

    #[test]
    fn max_timestamp_is_the_kept_maximum_unless_log_append_time() {
        let batch = crate::batch::tests::batch_with_keys(&[Some(b"a"), Some(b"b")], 100);
        let header = BatchHeader::parse(&batch).unwrap();
        assert_eq!(header.max_timestamp, 110);
        let drop_last = |r: &RecordView<'_>| r.offset == 0;
        let Ok(Retained::Some(out)) = retain_records(&batch, &header, LIMIT, drop_last) else {
            panic!("expected a rebuilt batch");
        };
        assert_eq!(BatchHeader::parse(&out).unwrap().max_timestamp, 100);

        let mut appended = batch.clone();
        stamp_log_append_time(&mut appended, 5000);
        let header = BatchHeader::parse(&appended).unwrap();
        let Ok(Retained::Some(out)) = retain_records(&appended, &header, LIMIT, drop_last) else {
            panic!("expected a rebuilt batch");
        };
        let h = BatchHeader::parse(&out).unwrap();
        assert!(h.is_log_append_time());
        assert_eq!(h.max_timestamp, 5000);
        check_subset(&appended, &[false, true]);
    }

    #[test]
    fn transactional_and_control_batches_keep_their_attributes() {
        let mut rng = Rng(99);
        let specs = random_specs(&mut rng, 4, 20);
        for attributes in [0x10, 0x10 | 0x20, 0x08 | 0x10] {
            let options = BatchOptions {
                producer_id: 77,
                producer_epoch: 5,
                base_sequence: 1234,
                attributes,
            };
            let plain = build(&specs, options);
            for encoding in ENCODINGS {
                let batch = encode(&plain, encoding);
                for bits in 0..16 {
                    check_subset(&batch, &mask_of(bits, 4));
                }
                let header = BatchHeader::parse(&batch).unwrap();
                let Ok(Retained::Some(out)) =
                    retain_records(&batch, &header, LIMIT, |r| r.offset % 2 == 1)
                else {
                    panic!("expected a rebuilt batch");
                };
                let h = BatchHeader::parse(&out).unwrap();
                assert_eq!(h.attributes, header.attributes);
                assert_eq!(h.is_transactional(), attributes & 0x10 != 0);
                assert_eq!(h.is_control(), attributes & 0x20 != 0);
                assert_eq!(
                    (h.producer_id, h.producer_epoch, h.base_sequence),
                    (77, 5, 1234)
                );
            }
        }
        let marker = crate::builder::build_control_batch(9, 3, true, 1000);
        let header = BatchHeader::parse(&marker).unwrap();
        assert_eq!(
            retain_records(&marker, &header, LIMIT, |_| true),
            Ok(Retained::All)
        );
        assert_eq!(
            retain_records(&marker, &header, LIMIT, |_| false),
            Ok(Retained::None)
        );
    }

    #[test]
    fn keep_sees_offsets_keys_tombstones_and_timestamps() {
        let mut batch = build_batch(&[
            RecordSpec {
                key: Some(b"k"),
                value: Some(b"v"),
                timestamp: 50,
            },
            RecordSpec {
                key: Some(b"k"),
                value: None,
                timestamp: 40,
            },
        ]);
        stamp_base_offset(&mut batch, 10, 0);
        let header = BatchHeader::parse(&batch).unwrap();
        let mut seen = Vec::new();
        retain_records(&batch, &header, LIMIT, |r| {
            seen.push((
                r.offset,
                r.key.map(<[u8]>::to_vec),
                r.is_tombstone(),
                r.timestamp,
            ));
            true
        })
        .unwrap();
        assert_eq!(
            seen,
            vec![
                (10, Some(b"k".to_vec()), false, 50),
                (11, Some(b"k".to_vec()), true, 40)
            ]
        );
    }

    /// A record with headers, encoded by hand (the builder writes none).
    fn record_with_headers(
        offset_delta: i64,
        key: &[u8],
        headers: &[(&[u8], Option<&[u8]>)],
    ) -> Vec<u8> {
        let mut record = vec![0];
        put_varint(&mut record, offset_delta * 3);
        put_varint(&mut record, offset_delta);
        put_varint(&mut record, key.len() as i64);
        record.extend_from_slice(key);
        put_varint(&mut record, 1);
        record.push(b'v');
        put_varint(&mut record, headers.len() as i64);
        for (name, value) in headers {
            put_varint(&mut record, name.len() as i64);
            record.extend_from_slice(name);
            match value {
                Some(v) => {
                    put_varint(&mut record, v.len() as i64);
                    record.extend_from_slice(v);
                }
                None => put_varint(&mut record, -1),
            }
        }
        let mut out = Vec::new();
        put_varint(&mut out, record.len() as i64);
        out.extend_from_slice(&record);
        out
    }

    #[test]
    fn records_with_headers_are_kept_whole() {
        let records = [
            record_with_headers(0, b"a", &[(b"trace", Some(b"1")), (b"empty", None)]),
            record_with_headers(1, b"b", &[]),
            record_with_headers(2, b"c", &[(b"h", Some(b""))]),
        ];
        let shell = crate::batch::tests::batch_with_keys(&[Some(b"a"), Some(b"b"), Some(b"c")], 0);
        let plain = with_payload(&shell, &records.concat(), 0);
        for encoding in ENCODINGS {
            let batch = encode(&plain, encoding);
            for bits in 0..8 {
                check_subset(&batch, &mask_of(bits, 3));
            }
        }
        let header = BatchHeader::parse(&plain).unwrap();
        let Ok(Retained::Some(out)) = retain_records(&plain, &header, LIMIT, |r| r.offset != 1)
        else {
            panic!("expected a rebuilt batch");
        };
        assert_eq!(
            out[HEADER_LEN..],
            [&records[0][..], &records[2][..]].concat()
        );
    }

    #[test]
    fn snappy_keeps_the_framing_it_came_in() {
        let mut rng = Rng(3);
        let plain = build(&random_specs(&mut rng, 3, 50), BatchOptions::default());
        for (encoding, xerial) in [(Encoding::SnappyRaw, false), (Encoding::SnappyXerial, true)] {
            let batch = encode(&plain, encoding);
            let header = BatchHeader::parse(&batch).unwrap();
            let Ok(Retained::Some(out)) = retain_records(&batch, &header, LIMIT, |r| r.offset != 1)
            else {
                panic!("expected a rebuilt batch");
            };
            assert_eq!(out[HEADER_LEN..].starts_with(XERIAL_MAGIC), xerial);
        }
    }

    #[test]
    fn lz4_from_any_writer_is_rewritten_as_kafka_reads_it() {
        let mut rng = Rng(11);
        let plain = build(&random_specs(&mut rng, 40, 4000), BatchOptions::default());
        // The lz4 crate's defaults: linked blocks, block and content checksums.
        let mut encoder = lz4::EncoderBuilder::new().build(Vec::new()).unwrap();
        encoder.write_all(&plain[HEADER_LEN..]).unwrap();
        let (linked, result) = encoder.finish();
        result.unwrap();
        let batch = with_payload(&plain, &linked, 3);
        for bits in [0b1, 0b1010, u64::MAX >> 1] {
            check_subset(&batch, &mask_of(bits, 40));
        }
        let header = BatchHeader::parse(&batch).unwrap();
        let Ok(Retained::Some(out)) = retain_records(&batch, &header, LIMIT, |r| r.offset != 0)
        else {
            panic!("expected a rebuilt batch");
        };
        // Frame descriptor: version 01, independent blocks, no block or
        // content checksum, no content size; then 64 KiB maximum blocks.
        assert_eq!(out[HEADER_LEN..HEADER_LEN + 4], [0x04, 0x22, 0x4d, 0x18]);
        assert_eq!(out[HEADER_LEN + 4], 0b0110_0000);
        assert_eq!(out[HEADER_LEN + 5], 0x40);
    }

    #[test]
    fn delete_horizon_is_stamped_and_read_back() {
        let mut rng = Rng(21);
        let specs = random_specs(&mut rng, 6, 30);
        let mut plain = build(&specs, BatchOptions::default());
        stamp_base_offset(&mut plain, 500, 1);
        let horizon = 1_800_000_000_000;
        for encoding in ENCODINGS {
            let batch = encode(&plain, encoding);
            let header = BatchHeader::parse(&batch).unwrap();
            assert_eq!(header.delete_horizon(), None);
            let out = set_delete_horizon(&batch, &header, horizon, LIMIT).unwrap();
            let h = BatchHeader::parse(&out).unwrap();
            validate_crc(&out, &h).unwrap();
            assert_eq!(h.delete_horizon(), Some(horizon));
            assert_eq!(h.codec, header.codec);
            assert_eq!(h.attributes, header.attributes | 0x40);
            assert_eq!(h.max_timestamp, header.max_timestamp);
            assert_eq!(
                (h.base_offset, h.last_offset_delta, h.record_count),
                (
                    header.base_offset,
                    header.last_offset_delta,
                    header.record_count
                )
            );
            assert_eq!(
                decoded(&out),
                decoded(&batch),
                "record timestamps unchanged"
            );
            // Filtering keeps the horizon, with the records' new deltas.
            for bits in [0b1, 0b10_1010, 0b11_1110] {
                check_subset(&out, &mask_of(bits, 6));
            }
        }
        let header = BatchHeader::parse(&plain).unwrap();
        assert!(matches!(
            set_delete_horizon(&plain, &header, i64::MIN, LIMIT),
            Err(BatchError::MalformedRecord { index: 0 })
        ));
    }

    #[test]
    fn truncated_batches_are_errors() {
        let mut rng = Rng(5);
        let plain = build(&random_specs(&mut rng, 3, 30), BatchOptions::default());
        for encoding in ENCODINGS {
            let batch = encode(&plain, encoding);
            let header = BatchHeader::parse(&batch).unwrap();
            for end in 0..batch.len() {
                assert!(retain_records(&batch[..end], &header, LIMIT, |_| true).is_err());
                assert!(set_delete_horizon(&batch[..end], &header, 0, LIMIT).is_err());
            }
        }
    }

    #[test]
    fn lying_record_counts_are_errors() {
        let mut rng = Rng(6);
        let plain = build(&random_specs(&mut rng, 3, 30), BatchOptions::default());
        for encoding in ENCODINGS {
            for (count, short) in [(4, false), (i32::MAX, false), (2, true), (1, true)] {
                let mut batch = encode(&plain, encoding);
                batch[57..61].copy_from_slice(&count.to_be_bytes());
                let header = BatchHeader::parse(&batch).unwrap();
                let result = retain_records(&batch, &header, LIMIT, |_| false);
                if short {
                    assert!(matches!(result, Err(BatchError::TrailingBytes(_))));
                } else {
                    assert!(matches!(
                        result,
                        Err(BatchError::MalformedRecord { index: 3 })
                    ));
                }
            }
        }
    }

    #[test]
    fn record_lengths_past_the_end_are_errors() {
        let plain = crate::batch::tests::batch_with_keys(&[Some(b"a"), Some(b"b")], 0);
        let spans = record_spans(&plain);
        for encoding in ENCODINGS {
            for (at, length) in [
                (0, 60i64),
                (0, -3),
                (spans[0].len(), 63),
                (spans[0].len(), 1),
            ] {
                let mut payload = plain[HEADER_LEN..].to_vec();
                // Record lengths here fit one varint byte.
                payload[at] = ((length << 1) ^ (length >> 63)) as u8;
                let batch = encode(&with_payload(&plain, &payload, 0), encoding);
                let header = BatchHeader::parse(&batch).unwrap();
                assert!(
                    retain_records(&batch, &header, LIMIT, |_| true).is_err(),
                    "{encoding:?} length {length} at {at}"
                );
            }
        }
    }

    #[test]
    fn decompression_is_bounded() {
        let mut rng = Rng(8);
        let plain = build(&random_specs(&mut rng, 20, 2000), BatchOptions::default());
        for encoding in ENCODINGS.into_iter().skip(1) {
            let batch = encode(&plain, encoding);
            let header = BatchHeader::parse(&batch).unwrap();
            assert_eq!(
                retain_records(&batch, &header, 100, |_| true),
                Err(BatchError::DecompressedTooLarge(100)),
                "{encoding:?}"
            );
        }
    }

    #[test]
    fn mangled_batches_never_panic() {
        let mut rng = Rng(0xbad);
        let plain = build(&random_specs(&mut rng, 5, 60), BatchOptions::default());
        for encoding in ENCODINGS {
            let good = encode(&plain, encoding);
            for _ in 0..400 {
                let mut batch = good.clone();
                for _ in 0..1 + rng.below(4) {
                    let at = HEADER_LEN + rng.below((batch.len() - HEADER_LEN) as u64) as usize;
                    batch[at] = rng.next() as u8;
                }
                let Ok(header) = BatchHeader::parse(&batch) else {
                    continue;
                };
                let bits = rng.next();
                let mut index = 0;
                let result = retain_records(&batch, &header, LIMIT, |_| {
                    index += 1;
                    bits >> (index % 64) & 1 == 1
                });
                if let Ok(Retained::Some(out)) = result {
                    let h = BatchHeader::parse(&out).unwrap();
                    validate_crc(&out, &h).unwrap();
                }
                let _ = set_delete_horizon(&batch, &header, 1, LIMIT);
            }
        }
    }
}
