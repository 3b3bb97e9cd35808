use super::*;

/// Big-endian bytes of a Kafka `string`.
fn s(text: &str) -> Vec<u8> {
    let mut out = (text.len() as i16).to_be_bytes().to_vec();
    out.extend_from_slice(text.as_bytes());
    out
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn member(id: &str) -> MemberMetadata {
    MemberMetadata {
        member_id: id.to_string(),
        group_instance_id: Some("instance-1".to_string()),
        client_id: "client".to_string(),
        client_host: "/127.0.0.1".to_string(),
        rebalance_timeout: 300_000,
        session_timeout: 45_000,
        subscription: vec![0, 1, 2],
        assignment: vec![],
    }
}

#[test]
fn offset_commit_key_is_kafkas_version_one_layout() {
    let key = GroupRecordKey::OffsetCommit {
        group: "g".into(),
        topic: "t".into(),
        partition: 3,
    };
    let bytes = key.encode().unwrap_or_default();
    assert_eq!(bytes, cat(&[&[0, 1], &s("g"), &s("t"), &[0, 0, 0, 3]]));
    assert_eq!(GroupRecordKey::decode(&bytes), Some(key.clone()));
    // Version 0 has the same fields.
    let v0 = cat(&[&[0, 0], &s("g"), &s("t"), &[0, 0, 0, 3]]);
    assert_eq!(GroupRecordKey::decode(&v0), Some(key));
}

#[test]
fn group_metadata_key_is_version_two() {
    let key = GroupRecordKey::GroupMetadata { group: "g".into() };
    let bytes = key.encode().unwrap_or_default();
    assert_eq!(bytes, cat(&[&[0, 2], &s("g")]));
    assert_eq!(GroupRecordKey::decode(&bytes), Some(key));
}

#[test]
fn keys_of_other_versions_or_with_trailing_bytes_are_not_read() {
    // Strata's own first layout starts with 1 or 2 and a string length:
    // as a version that is 256 and above.
    assert_eq!(GroupRecordKey::decode(&cat(&[&[1, 0, 1], b"g"])), None);
    assert_eq!(GroupRecordKey::decode(&cat(&[&[0, 3], &s("g")])), None);
    assert_eq!(
        GroupRecordKey::decode(&cat(&[&[0, 2], &s("g"), &[0]])),
        None
    );
    assert_eq!(GroupRecordKey::decode(&[0, 1, 0]), None);
}

#[test]
fn offset_commit_value_is_written_at_version_three() {
    let value = OffsetCommitValue {
        offset: 8372,
        leader_epoch: 5,
        metadata: "testdata".into(),
        commit_timestamp: 1637,
    };
    let bytes = value.encode().unwrap_or_default();
    let expected = cat(&[
        &[0, 3],
        &8372i64.to_be_bytes(),
        &5i32.to_be_bytes(),
        &s("testdata"),
        &1637i64.to_be_bytes(),
    ]);
    assert_eq!(bytes, expected);
    assert_eq!(OffsetCommitValue::decode(&bytes), Some(value));
}

#[test]
fn offset_commit_values_of_every_version_are_read() {
    let v0 = cat(&[&[0, 0], &7i64.to_be_bytes(), &s("m"), &9i64.to_be_bytes()]);
    let v1 = cat(&[
        &[0, 1],
        &7i64.to_be_bytes(),
        &s("m"),
        &9i64.to_be_bytes(),
        &(-1i64).to_be_bytes(),
    ]);
    let v2 = cat(&[&[0, 2], &7i64.to_be_bytes(), &s("m"), &9i64.to_be_bytes()]);
    let old = OffsetCommitValue {
        offset: 7,
        leader_epoch: -1,
        metadata: "m".into(),
        commit_timestamp: 9,
    };
    for bytes in [v0, v1, v2] {
        assert_eq!(OffsetCommitValue::decode(&bytes), Some(old.clone()));
    }
    // Flexible: compact string (length + 1), then an empty tagged section.
    let v4 = cat(&[
        &[0, 4],
        &7i64.to_be_bytes(),
        &2i32.to_be_bytes(),
        &[2, b'm'],
        &9i64.to_be_bytes(),
        &[0],
    ]);
    assert_eq!(
        OffsetCommitValue::decode(&v4),
        Some(OffsetCommitValue {
            leader_epoch: 2,
            ..old.clone()
        })
    );
    // One with an unknown tagged field is still read.
    let mut tagged = v4.clone();
    tagged.pop();
    tagged.extend_from_slice(&[1, 7, 2, 0xaa, 0xbb]);
    assert!(OffsetCommitValue::decode(&tagged).is_some());
    assert_eq!(OffsetCommitValue::decode(&v4[..v4.len() - 1]), None);
    let mut v5 = v4;
    v5[1] = 5;
    assert_eq!(OffsetCommitValue::decode(&v5), None);
}

#[test]
fn a_metadata_too_long_for_a_kafka_string_is_not_encoded() {
    let value = OffsetCommitValue {
        offset: 1,
        leader_epoch: -1,
        metadata: "x".repeat(40_000),
        commit_timestamp: 0,
    };
    assert_eq!(value.encode(), None);
}

#[test]
fn group_metadata_value_is_written_at_version_three() {
    let value = GroupMetadataValue {
        protocol_type: "consumer".into(),
        generation: 4,
        protocol: Some("range".into()),
        leader: Some("m-1".into()),
        current_state_timestamp: 1_000,
        members: vec![member("m-1")],
    };
    let bytes = value.encode().unwrap_or_default();
    let expected = cat(&[
        &[0, 3],
        &s("consumer"),
        &4i32.to_be_bytes(),
        &s("range"),
        &s("m-1"),
        &1_000i64.to_be_bytes(),
        &1i32.to_be_bytes(),
        &s("m-1"),
        &s("instance-1"),
        &s("client"),
        &s("/127.0.0.1"),
        &300_000i32.to_be_bytes(),
        &45_000i32.to_be_bytes(),
        &[0, 0, 0, 3, 0, 1, 2],
        &[0, 0, 0, 0],
    ]);
    assert_eq!(bytes, expected);
    assert_eq!(GroupMetadataValue::decode(&bytes), Some(value));
    let empty = GroupMetadataValue {
        protocol_type: String::new(),
        generation: 9,
        protocol: None,
        leader: None,
        current_state_timestamp: -1,
        members: Vec::new(),
    };
    let bytes = empty.encode().unwrap_or_default();
    assert_eq!(
        &bytes[8..12],
        &[0xff, 0xff, 0xff, 0xff],
        "null protocol and leader"
    );
    assert_eq!(GroupMetadataValue::decode(&bytes), Some(empty));
}

#[test]
fn group_metadata_values_of_older_and_flexible_versions_are_read() {
    let v0 = cat(&[
        &[0, 0],
        &s("consumer"),
        &1i32.to_be_bytes(),
        &s("range"),
        &s("m"),
        &1i32.to_be_bytes(),
        &s("m"),
        &s("c"),
        &s("/h"),
        &10_000i32.to_be_bytes(),
        &[0, 0, 0, 1, 7],
        &[0, 0, 0, 1, 8],
    ]);
    let read = GroupMetadataValue::decode(&v0).unwrap_or_else(|| panic!("v0 not read"));
    assert_eq!(read.current_state_timestamp, -1);
    assert_eq!(read.members[0].rebalance_timeout, -1);
    assert_eq!(read.members[0].group_instance_id, None);
    assert_eq!(read.members[0].session_timeout, 10_000);
    assert_eq!(read.members[0].assignment, vec![8]);
    let v4 = cat(&[
        &[0, 4],
        &[9],
        b"consumer",
        &2i32.to_be_bytes(),
        &[0],
        &[0],
        &5i64.to_be_bytes(),
        &[2],
        &[2, b'm'],
        &[0],
        &[2, b'c'],
        &[3, b'/', b'h'],
        &1i32.to_be_bytes(),
        &2i32.to_be_bytes(),
        &[1],
        &[2, 8],
        &[0],
        &[0],
    ]);
    let read = GroupMetadataValue::decode(&v4).unwrap_or_else(|| panic!("v4 not read"));
    assert_eq!(read.protocol, None);
    assert_eq!(read.members.len(), 1);
    assert_eq!(read.members[0].client_host, "/h");
    assert_eq!(read.members[0].assignment, vec![8]);
}

#[test]
fn every_truncation_of_a_value_is_refused() {
    let value = GroupMetadataValue {
        protocol_type: "consumer".into(),
        generation: 4,
        protocol: Some("range".into()),
        leader: Some("m-1".into()),
        current_state_timestamp: 1_000,
        members: vec![member("m-1"), member("m-2")],
    };
    let bytes = value.encode().unwrap_or_default();
    for end in 0..bytes.len() {
        assert_eq!(GroupMetadataValue::decode(&bytes[..end]), None, "{end}");
    }
}
