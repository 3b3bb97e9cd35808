use super::*;

fn s(text: &str) -> Vec<u8> {
    let mut out = (text.len() as i16).to_be_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out
}

fn ongoing() -> TransactionLogValue {
    let mut value = TransactionLogValue::new(42, 3, 60_000, 1);
    value.partitions = Some(vec![
        TopicPartitions {
            topic: "a".into(),
            partitions: vec![0, 2],
        },
        TopicPartitions {
            topic: "b".into(),
            partitions: vec![1],
        },
    ]);
    value.last_update_ms = 2_000;
    value.start_ms = 1_000;
    value
}

#[test]
fn key_is_version_zero_with_the_id() {
    let bytes = encode_key("tx-1").unwrap();
    assert_eq!(bytes, [&[0, 0][..], &s("tx-1")].concat());
    assert_eq!(decode_key(&bytes).as_deref(), Some("tx-1"));
    assert_eq!(decode_key(b"tx-1"), None);
    assert_eq!(decode_key(&[0, 1, 0, 0]), None);
    assert_eq!(decode_key(&[&bytes[..], &[0]].concat()), None);
}

#[test]
fn a_value_without_tagged_fields_is_kafkas_version_zero() {
    let value = ongoing();
    let bytes = value.encode().unwrap();
    let expected = [
        &[0, 0][..],
        &42i64.to_be_bytes(),
        &3i16.to_be_bytes(),
        &60_000i32.to_be_bytes(),
        &[1],
        &2i32.to_be_bytes(),
        &s("a"),
        &2i32.to_be_bytes(),
        &0i32.to_be_bytes(),
        &2i32.to_be_bytes(),
        &s("b"),
        &1i32.to_be_bytes(),
        &1i32.to_be_bytes(),
        &2_000i64.to_be_bytes(),
        &1_000i64.to_be_bytes(),
    ]
    .concat();
    assert_eq!(bytes, expected);
    assert_eq!(TransactionLogValue::decode(&bytes), Some(value));
    let empty = TransactionLogValue::new(7, 0, 1_000, 0);
    let bytes = empty.encode().unwrap();
    assert_eq!(&bytes[17..21], &[0xff; 4], "null partitions");
    assert_eq!(TransactionLogValue::decode(&bytes), Some(empty));
}

#[test]
fn stratas_tagged_fields_make_a_version_one_value() {
    let mut value = ongoing();
    value.groups = vec!["g1".into(), "g2".into()];
    value.pending_offsets = vec![PendingOffsetRecord {
        group: "g1".into(),
        topic: "a".into(),
        partition: 0,
        offset: 99,
        leader_epoch: -1,
        metadata: None,
    }];
    let bytes = value.encode().unwrap();
    assert_eq!(&bytes[..2], &[0, 1]);
    // Compact partitions: 2 topics (3), "a" (2, 'a'), 2 ids (3), 0, 2, no tags.
    assert_eq!(&bytes[17..21], &[3, 2, b'a', 3]);
    let decoded = TransactionLogValue::decode(&bytes).unwrap();
    assert_eq!(decoded, value);
}

#[test]
fn kafkas_tagged_fields_are_read_and_unknown_ones_skipped() {
    let mut value = ongoing();
    value.previous_producer_id = 41;
    value.next_producer_id = 43;
    value.client_transaction_version = 2;
    let bytes = value.encode().unwrap();
    let tail = [
        &[3u8, 0, 8][..],
        &41i64.to_be_bytes(),
        &[1, 8],
        &43i64.to_be_bytes(),
        &[2, 2, 0, 2],
    ]
    .concat();
    assert!(bytes.ends_with(&tail));
    assert_eq!(TransactionLogValue::decode(&bytes), Some(value.clone()));
    // An extra field with a tag Strata does not know.
    let mut extra = bytes[..bytes.len() - tail.len()].to_vec();
    extra.extend_from_slice(&[4, 0, 8]);
    extra.extend_from_slice(&41i64.to_be_bytes());
    extra.extend_from_slice(&[1, 8]);
    extra.extend_from_slice(&43i64.to_be_bytes());
    extra.extend_from_slice(&[2, 2, 0, 2, 9, 1, 0xee]);
    assert_eq!(TransactionLogValue::decode(&extra), Some(value));
}

#[test]
fn a_known_tag_of_the_wrong_size_is_refused() {
    let mut value = ongoing();
    value.previous_producer_id = 41;
    let mut bytes = value.encode().unwrap();
    let len = bytes.len();
    // The field's size says 8; make it 9 with one more byte.
    bytes[len - 9] = 9;
    bytes.push(0);
    assert_eq!(TransactionLogValue::decode(&bytes), None);
}

#[test]
fn every_truncation_is_refused() {
    let mut value = ongoing();
    value.groups = vec!["g".into()];
    for bytes in [ongoing().encode().unwrap(), value.encode().unwrap()] {
        for end in 0..bytes.len() {
            assert_eq!(TransactionLogValue::decode(&bytes[..end]), None, "{end}");
        }
    }
}
