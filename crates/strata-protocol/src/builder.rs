//! Building uncompressed V2 record batches, for tools and tests that act as
//! a producer.

use crate::batch::{HEADER_LEN, LOG_OVERHEAD};

/// One record to put in a batch.
#[derive(Debug, Clone, Copy)]
pub struct RecordSpec<'a> {
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub timestamp: i64,
}

/// Producer fields and attributes of a batch.
#[derive(Debug, Clone, Copy)]
pub struct BatchOptions {
    pub producer_id: i64,
    pub producer_epoch: i16,
    pub base_sequence: i32,
    pub attributes: i16,
}

impl Default for BatchOptions {
    fn default() -> Self {
        BatchOptions {
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            attributes: 0,
        }
    }
}

/// Attribute bits of a transactional control batch.
const TRANSACTIONAL_CONTROL: i16 = 0x10 | 0x20;

/// A transaction marker (control batch) ending producer `producer_id`'s
/// transaction: commit or abort, as a transaction coordinator writes it.
pub fn build_control_batch(
    producer_id: i64,
    producer_epoch: i16,
    commit: bool,
    timestamp: i64,
) -> Vec<u8> {
    let key: [u8; 4] = [0, 0, 0, u8::from(commit)];
    let value: [u8; 6] = [0; 6];
    let options = BatchOptions {
        producer_id,
        producer_epoch,
        base_sequence: -1,
        attributes: TRANSACTIONAL_CONTROL,
    };
    build_batch_with(
        &[RecordSpec {
            key: Some(&key),
            value: Some(&value),
            timestamp,
        }],
        options,
    )
}

/// Reads a control batch's marker: `Some(true)` commit, `Some(false)` abort.
pub fn control_marker(records: &[u8]) -> Option<bool> {
    // The control record's key: version (i16), then type (i16): 0 abort, 1 commit.
    let mut found = None;
    let header = crate::batch::BatchHeader::parse(records).ok()?;
    crate::records::for_each_record(records, &header, 1024, |r| {
        if let Some(key) = r.key {
            found = key.get(2..4).map(|t| t == [0, 1]);
        }
    })
    .ok()?;
    found
}

/// Encodes `records` as one uncompressed batch at base offset 0, with a
/// valid CRC-32C. Returns an empty vector for an empty slice.
pub fn build_batch(records: &[RecordSpec<'_>]) -> Vec<u8> {
    build_batch_with(records, BatchOptions::default())
}

/// [`build_batch`] with producer fields and attributes.
pub fn build_batch_with(records: &[RecordSpec<'_>], options: BatchOptions) -> Vec<u8> {
    let Some(first) = records.first() else {
        return Vec::new();
    };
    let base_timestamp = first.timestamp;
    let max_timestamp = records
        .iter()
        .map(|r| r.timestamp)
        .max()
        .unwrap_or(base_timestamp);
    let mut body = Vec::new();
    let mut record = Vec::new();
    for (delta, spec) in records.iter().enumerate() {
        record.clear();
        record.push(0);
        put_varint(&mut record, spec.timestamp - base_timestamp);
        put_varint(&mut record, delta as i64);
        put_bytes(&mut record, spec.key);
        put_bytes(&mut record, spec.value);
        put_varint(&mut record, 0);
        put_varint(&mut body, record.len() as i64);
        body.extend_from_slice(&record);
    }
    let count = i32::try_from(records.len()).unwrap_or(i32::MAX);
    let batch_length = i32::try_from(HEADER_LEN - LOG_OVERHEAD + body.len()).unwrap_or(i32::MAX);
    let mut b = Vec::with_capacity(HEADER_LEN + body.len());
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&batch_length.to_be_bytes());
    b.extend_from_slice(&0i32.to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&options.attributes.to_be_bytes());
    b.extend_from_slice(&(count - 1).to_be_bytes());
    b.extend_from_slice(&base_timestamp.to_be_bytes());
    b.extend_from_slice(&max_timestamp.to_be_bytes());
    b.extend_from_slice(&options.producer_id.to_be_bytes());
    b.extend_from_slice(&options.producer_epoch.to_be_bytes());
    b.extend_from_slice(&options.base_sequence.to_be_bytes());
    b.extend_from_slice(&count.to_be_bytes());
    b.extend_from_slice(&body);
    let crc = crc32c::crc32c(&b[21..]);
    b[17..21].copy_from_slice(&crc.to_be_bytes());
    b
}

fn put_bytes(out: &mut Vec<u8>, bytes: Option<&[u8]>) {
    match bytes {
        Some(b) => {
            put_varint(out, b.len() as i64);
            out.extend_from_slice(b);
        }
        None => put_varint(out, -1),
    }
}

pub(crate) fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::batch::{validate_crc, BatchHeader};

    #[test]
    fn control_batches_carry_their_marker() {
        for commit in [true, false] {
            let b = build_control_batch(9, 3, commit, 1000);
            let h = BatchHeader::parse(&b).unwrap();
            validate_crc(&b, &h).unwrap();
            assert!(h.is_control() && h.is_transactional());
            assert_eq!((h.producer_id, h.producer_epoch), (9, 3));
            assert_eq!(control_marker(&b), Some(commit));
        }
        assert_eq!(
            control_marker(&build_batch(&[RecordSpec {
                key: None,
                value: None,
                timestamp: 0
            }])),
            None
        );
    }
}
