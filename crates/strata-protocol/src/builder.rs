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

/// Encodes `records` as one uncompressed batch at base offset 0, with a
/// valid CRC-32C. Returns an empty vector for an empty slice.
pub fn build_batch(records: &[RecordSpec<'_>]) -> Vec<u8> {
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
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&(count - 1).to_be_bytes());
    b.extend_from_slice(&base_timestamp.to_be_bytes());
    b.extend_from_slice(&max_timestamp.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
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

fn put_varint(out: &mut Vec<u8>, v: i64) {
    let mut z = ((v << 1) ^ (v >> 63)) as u64;
    while z >= 0x80 {
        out.push((z as u8) | 0x80);
        z >>= 7;
    }
    out.push(z as u8);
}
