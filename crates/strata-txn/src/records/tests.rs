use super::*;

fn ongoing() -> TxnState {
    let mut state = TxnState::new(42, 60_000, 1_000);
    state.epoch = 3;
    state.begin(1_500);
    state.partitions = [
        ("a".to_string(), 0),
        ("a".to_string(), 2),
        ("b".to_string(), 1),
    ]
    .into_iter()
    .collect();
    state.updated_ms = 2_000;
    state
}

#[test]
fn states_round_trip_in_kafkas_layout() {
    let mut with_offsets = ongoing();
    with_offsets.groups.insert("g".into());
    with_offsets.pending_offsets.push(PendingOffset {
        group: "g".into(),
        topic: "a".into(),
        partition: 0,
        offset: 99,
        leader_epoch: 4,
        metadata: None,
    });
    let mut complete = ongoing();
    complete.status = Status::CompleteCommit;
    complete.partitions.clear();
    for state in [
        TxnState::new(7, 1_000, 5),
        ongoing(),
        with_offsets,
        complete,
    ] {
        let (key, value) = encode("tx ✓", &state).unwrap();
        assert_eq!(&key[..2], &[0, 0]);
        assert_eq!(
            decode(&key, Some(&value)),
            Some(("tx ✓".to_string(), Some(state), Layout::Kafka))
        );
    }
}

#[test]
fn kafkas_value_groups_partitions_by_topic_and_nulls_them_when_empty() {
    let (_, value) = encode("t", &ongoing()).unwrap();
    let decoded = TransactionLogValue::decode(&value).unwrap();
    assert_eq!(decoded.status, 1);
    assert_eq!(
        decoded.partitions,
        Some(vec![
            TopicPartitions {
                topic: "a".into(),
                partitions: vec![0, 2]
            },
            TopicPartitions {
                topic: "b".into(),
                partitions: vec![1]
            },
        ])
    );
    assert_eq!(&value[..2], &[0, 0], "no tagged field needed: version 0");
    let (_, empty) = encode("t", &TxnState::new(7, 1_000, 5)).unwrap();
    assert_eq!(
        TransactionLogValue::decode(&empty).unwrap().partitions,
        None
    );
}

#[test]
fn stratas_first_layout_is_read() {
    // As the first layout wrote it.
    let json = br#"{"producer_id":2,"epoch":0,"timeout_ms":900000,"status":"Ongoing","partitions":[["orders",1]],"groups":["g"],"pending_offsets":[{"group":"g","topic":"orders","partition":1,"offset":99,"leader_epoch":-1,"metadata":null}],"updated_ms":1796034594763,"started_ms":1796034594756}"#;
    let mut state = TxnState::new(2, 900_000, 1_796_034_594_763);
    state.begin(1_796_034_594_756);
    state.partitions.insert(("orders".into(), 1));
    state.groups.insert("g".into());
    state.pending_offsets.push(PendingOffset {
        group: "g".into(),
        topic: "orders".into(),
        partition: 1,
        offset: 99,
        leader_epoch: -1,
        metadata: None,
    });
    assert_eq!(
        decode(b"tx-1", Some(json)),
        Some(("tx-1".to_string(), Some(state), Layout::Strata))
    );
    assert_eq!(
        decode(b"tx-1", None),
        Some(("tx-1".to_string(), None, Layout::Strata))
    );
    let (key, _) = encode("tx-1", &ongoing()).unwrap();
    assert_eq!(
        decode(&key, None),
        Some(("tx-1".to_string(), None, Layout::Kafka))
    );
}

#[test]
fn unreadable_records_are_none() {
    assert_eq!(decode(b"tx", Some(b"{not json")), None);
    assert_eq!(decode(b"tx", Some(&[0, 0, 1])), None);
    assert_eq!(decode(&[0xff], None), None);
    // Kafka's Dead state is not one Strata keeps.
    let mut value = TransactionLogValue::new(1, 0, 1_000, 6);
    value.partitions = Some(Vec::new());
    let key = encode_key("tx").unwrap();
    assert_eq!(decode(&key, Some(&value.encode().unwrap())), None);
}
