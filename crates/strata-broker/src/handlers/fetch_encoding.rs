//! Encoding a fetch answer without copying its record bytes.
//!
//! The answer is encoded by the codec with a short marker in place of each
//! partition's records; the encoded bytes are then cut at the markers and
//! the real records (and their real length prefixes) are sent between the
//! cuts, straight from the buffers they were read into. The result is byte
//! for byte what encoding the whole answer gives (tested at every version).
//!
//! Why a marker is never mistaken for other bytes: each marker starts with
//! `0xFF` and holds no other `0xFF`, so no marker overlaps itself or
//! another; and the answer is first encoded with empty records and checked
//! not to contain the marker prefix at all — if it does (a topic id may be
//! any bytes), the answer is encoded the ordinary way.

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, FetchResponse, ResponseKind};

use super::encode_response;
use crate::outgoing::Outgoing;

/// Answers up to this version encode records as NULLABLE_BYTES (an i32
/// length); later ones as COMPACT_NULLABLE_BYTES (an unsigned varint of
/// length + 1).
const LAST_NON_FLEXIBLE: i16 = 11;
const MARKER_PREFIX: [u8; 4] = [0xFF, b'S', b'R', b'C'];
const MARKER_LEN: usize = MARKER_PREFIX.len() + 4;

fn marker(index: u32) -> [u8; MARKER_LEN] {
    // The index bytes must not be 0xFF: use 7 bits of it per byte.
    let mut m = [0u8; MARKER_LEN];
    m[..4].copy_from_slice(&MARKER_PREFIX);
    for (i, slot) in m[4..].iter_mut().enumerate() {
        *slot = ((index >> (7 * i)) & 0x7F) as u8;
    }
    m
}

/// Encodes a fetch answer, records as separate pieces where possible.
pub fn encode(version: i16, correlation_id: i32, mut body: FetchResponse) -> Option<Outgoing> {
    let mut records = Vec::new();
    for partition in body.responses.iter_mut().flat_map(|t| &mut t.partitions) {
        match &partition.records {
            Some(r) if !r.is_empty() => {
                // More than 2^28 records fall back below, restored whole.
                let index = records.len() as u32;
                records.push(
                    partition
                        .records
                        .replace(Bytes::copy_from_slice(&marker(index))),
                );
            }
            _ => {}
        }
    }
    if records.is_empty() {
        return whole(version, correlation_id, body);
    }
    if records.len() >= 1 << 28 || !markers_are_unambiguous(version, correlation_id, &body) {
        restore(&mut body, records);
        return whole(version, correlation_id, body);
    }
    let fallback = body.clone();
    let framed = encode_response(
        ApiKey::Fetch,
        version,
        correlation_id,
        &ResponseKind::Fetch(body),
    )?
    .freeze();
    match splice(version, &framed, &records) {
        Some(pieces) => Some(Outgoing::from_pieces(pieces)),
        None => {
            tracing::warn!(
                version,
                "fetch answer could not be cut at its markers; encoded whole"
            );
            let mut body = fallback;
            restore(&mut body, records);
            whole(version, correlation_id, body)
        }
    }
}

/// Cuts the encoded answer at each record marker and puts the records (with
/// their real length prefixes) between the cuts; the frame length first.
fn splice(version: i16, framed: &Bytes, records: &[Option<Bytes>]) -> Option<Vec<Bytes>> {
    let prefix_len = if version <= LAST_NON_FLEXIBLE { 4 } else { 1 };
    let mut pieces = Vec::with_capacity(records.len() * 3 + 2);
    pieces.push(Bytes::new()); // the frame length, once the total is known
    let mut at = 4; // past the encoded frame length
    let mut total = 0usize;
    for (index, record) in records.iter().enumerate() {
        let m = marker(u32::try_from(index).ok()?);
        let found = at + find(framed.get(at..)?, &m)?;
        let start = found.checked_sub(prefix_len).filter(|s| *s >= at)?;
        let record = record.clone().unwrap_or_default();
        let mut length = BytesMut::with_capacity(5);
        if version <= LAST_NON_FLEXIBLE {
            length.put_i32(i32::try_from(record.len()).ok()?);
        } else {
            put_unsigned_varint(&mut length, u32::try_from(record.len() + 1).ok()?);
        }
        let head = framed.slice(at..start);
        total += head.len() + length.len() + record.len();
        pieces.push(head);
        pieces.push(length.freeze());
        pieces.push(record);
        at = found + MARKER_LEN;
    }
    let tail = framed.get(at..).map(|_| framed.slice(at..))?;
    total += tail.len();
    pieces.push(tail);
    let mut frame_length = BytesMut::with_capacity(4);
    frame_length.put_i32(i32::try_from(total).ok()?);
    pieces[0] = frame_length.freeze();
    Some(pieces)
}

fn whole(version: i16, correlation_id: i32, body: FetchResponse) -> Option<Outgoing> {
    encode_response(
        ApiKey::Fetch,
        version,
        correlation_id,
        &ResponseKind::Fetch(body),
    )
    .map(Outgoing::from)
}

/// True when the answer, with every replaced record empty, holds no byte
/// sequence that starts a marker.
fn markers_are_unambiguous(version: i16, correlation_id: i32, body: &FetchResponse) -> bool {
    let mut probe = body.clone();
    for partition in probe.responses.iter_mut().flat_map(|t| &mut t.partitions) {
        if partition
            .records
            .as_ref()
            .is_some_and(|r| r.starts_with(&MARKER_PREFIX))
        {
            partition.records = Some(Bytes::new());
        }
    }
    encode_response(
        ApiKey::Fetch,
        version,
        correlation_id,
        &ResponseKind::Fetch(probe),
    )
    .is_some_and(|bytes| find(&bytes, &MARKER_PREFIX).is_none())
}

fn restore(body: &mut FetchResponse, records: Vec<Option<Bytes>>) {
    let mut records = records.into_iter();
    for partition in body.responses.iter_mut().flat_map(|t| &mut t.partitions) {
        if partition
            .records
            .as_ref()
            .is_some_and(|r| r.len() == MARKER_LEN && r.starts_with(&MARKER_PREFIX))
        {
            partition.records = records.next().flatten();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn put_unsigned_varint(buf: &mut BytesMut, mut value: u32) {
    while value >= 0x80 {
        buf.put_u8((value as u8 & 0x7F) | 0x80);
        value >>= 7;
    }
    buf.put_u8(value as u8);
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kafka_protocol::messages::fetch_response::{
        AbortedTransaction, FetchableTopicResponse, PartitionData,
    };
    use kafka_protocol::messages::{ProducerId, TopicName};
    use kafka_protocol::protocol::StrBytes;

    fn answer(records: &[Option<Bytes>]) -> FetchResponse {
        let partitions = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                PartitionData::default()
                    .with_partition_index(i as i32)
                    .with_high_watermark(1000 + i as i64)
                    .with_last_stable_offset(1000)
                    .with_log_start_offset(3)
                    .with_aborted_transactions(Some(vec![AbortedTransaction::default()
                        .with_producer_id(ProducerId(7))
                        .with_first_offset(9)]))
                    .with_records(r.clone())
            })
            .collect();
        FetchResponse::default().with_responses(vec![
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str("orders")))
                .with_topic_id(uuid::Uuid::from_bytes([0xFF; 16]))
                .with_partitions(partitions),
            FetchableTopicResponse::default()
                .with_topic(TopicName(StrBytes::from_static_str("t2")))
                .with_partitions(vec![
                    PartitionData::default().with_records(Some(Bytes::from(vec![5u8; 300])))
                ]),
        ])
    }

    #[test]
    fn pieces_equal_the_whole_encoding_at_every_version() {
        let records = [
            Some(Bytes::from(vec![1u8; 200])),
            None,
            Some(Bytes::new()),
            Some(Bytes::from(vec![0xFFu8; 70_000])),
        ];
        for version in 4..=18 {
            let body = answer(&records);
            let expected = encode_response(
                ApiKey::Fetch,
                version,
                42,
                &ResponseKind::Fetch(body.clone()),
            )
            .unwrap();
            let pieces = encode(version, 42, body).unwrap();
            assert_eq!(pieces.to_vec(), expected.to_vec(), "version {version}");
        }
    }

    #[test]
    fn a_marker_like_topic_id_falls_back_to_the_whole_encoding() {
        let mut body = answer(&[Some(Bytes::from(vec![1u8; 10]))]);
        let mut id = [0u8; 16];
        id[..4].copy_from_slice(&MARKER_PREFIX);
        body.responses[0].topic_id = uuid::Uuid::from_bytes(id);
        for version in [12, 13, 18] {
            let expected = encode_response(
                ApiKey::Fetch,
                version,
                1,
                &ResponseKind::Fetch(body.clone()),
            )
            .unwrap();
            let pieces = encode(version, 1, body.clone()).unwrap();
            assert_eq!(pieces.to_vec(), expected.to_vec(), "version {version}");
        }
    }
}
