//! The admin and transaction APIs as a client sees them: requests are
//! encoded and answers decoded with the client side of the codec, through
//! the same entry point a connection uses.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::ResponseError;
use strata_broker::handlers;
use strata_broker::{Broker, BrokerOptions};
use strata_log::{LogStore, PendingBatch, StoreOptions};
use strata_protocol::apis;
use strata_protocol::builder::{build_batch, RecordSpec};

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

fn name(v: &str) -> TopicName {
    TopicName(s(v))
}

async fn broker(dir: &std::path::Path) -> Arc<Broker> {
    let (store, _) = LogStore::open(&StoreOptions::new(dir.to_path_buf())).unwrap();
    let topic = store.create_topic("t", 2, BTreeMap::new(), false).unwrap();
    let batch = Bytes::from(build_batch(&[
        RecordSpec {
            key: Some(b"k"),
            value: Some(b"v"),
            timestamp: 1000,
        },
        RecordSpec {
            key: Some(b"k"),
            value: Some(b"w"),
            timestamp: 1001,
        },
    ]));
    let pending = PendingBatch {
        partition: topic.partition(0).unwrap(),
        batch,
        log_append_time: false,
    };
    assert!(store.append(vec![pending]).await[0].is_ok());
    let groups =
        strata_groups::GroupCoordinator::open(Arc::clone(&store), Default::default()).unwrap();
    let txns =
        strata_txn::TransactionCoordinator::open(Arc::clone(&store), Arc::clone(&groups)).unwrap();
    Broker::new(BrokerOptions::default(), store, groups, txns)
}

/// Sends one request through the broker's request entry point; `None` if
/// the broker closes the connection instead of answering.
async fn try_call(
    broker: &Arc<Broker>,
    api: ApiKey,
    version: i16,
    body: RequestKind,
) -> Option<ResponseKind> {
    let mut frame = BytesMut::new();
    RequestHeader::default()
        .with_request_api_key(api as i16)
        .with_request_api_version(version)
        .with_correlation_id(7)
        .with_client_id(Some(s("test")))
        .encode(&mut frame, api.request_header_version(version))
        .unwrap();
    body.encode(&mut frame, version).unwrap();
    let pending = handlers::start(broker, frame.freeze()).await?;
    let answer = pending.await?;
    let mut bytes = Bytes::from(answer.to_vec());
    let _length = bytes.split_to(4);
    let header = ResponseHeader::decode(&mut bytes, api.response_header_version(version)).unwrap();
    assert_eq!(header.correlation_id, 7);
    Some(ResponseKind::decode(api, &mut bytes, version).unwrap())
}

async fn call(broker: &Arc<Broker>, api: ApiKey, version: i16, body: RequestKind) -> ResponseKind {
    try_call(broker, api, version, body)
        .await
        .unwrap_or_else(|| panic!("{api:?} v{version} closed the connection"))
}

fn max_version(api: ApiKey) -> i16 {
    apis::supported_versions(api).unwrap().max
}

#[tokio::test]
async fn every_advertised_api_is_answered_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path()).await;
    for api in apis::SERVED {
        let range = apis::supported_versions(*api).unwrap();
        for version in range.min..=range.max {
            // An all-defaults request: the smallest one a client can send.
            let body = default_request(*api);
            assert!(
                try_call(&broker, *api, version, body).await.is_some(),
                "{api:?} v{version} is advertised but gets no answer"
            );
        }
    }
}

fn default_request(api: ApiKey) -> RequestKind {
    macro_rules! kinds {
        ($($kind:ident),* $(,)?) => {
            match api {
                // acks=0 gets no answer, from Kafka too.
                ApiKey::Produce => RequestKind::Produce(ProduceRequest::default().with_acks(-1)),
                $(ApiKey::$kind => RequestKind::$kind(Default::default()),)*
                other => panic!("{other:?} is served but this test does not know it"),
            }
        };
    }
    kinds!(
        Fetch,
        ListOffsets,
        Metadata,
        ApiVersions,
        CreateTopics,
        DeleteTopics,
        DeleteRecords,
        DescribeConfigs,
        AlterConfigs,
        CreatePartitions,
        IncrementalAlterConfigs,
        DescribeCluster,
        FindCoordinator,
        JoinGroup,
        SyncGroup,
        Heartbeat,
        LeaveGroup,
        OffsetCommit,
        OffsetFetch,
        ListGroups,
        DescribeGroups,
        DeleteGroups,
        OffsetDelete,
        InitProducerId,
        AddPartitionsToTxn,
        AddOffsetsToTxn,
        TxnOffsetCommit,
        EndTxn,
        DescribeLogDirs,
        DescribeTopicPartitions,
        ListConfigResources,
        OffsetForLeaderEpoch,
        DescribeProducers,
        DescribeTransactions,
        ListTransactions,
    )
}

// ---- nullable error messages -------------------------------------------

#[tokio::test]
async fn successful_answers_have_null_error_messages() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path()).await;

    let create = CreateTopicsRequest::default().with_topics(vec![
        create_topics_request::CreatableTopic::default()
            .with_name(name("fresh"))
            .with_num_partitions(1)
            .with_replication_factor(1),
    ]);
    let v = max_version(ApiKey::CreateTopics);
    let ResponseKind::CreateTopics(r) = call(
        &broker,
        ApiKey::CreateTopics,
        v,
        RequestKind::CreateTopics(create),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.topics[0].error_code, 0);
    assert_eq!(r.topics[0].error_message, None, "CreateTopics v{v}");

    let describe = DescribeConfigsRequest::default().with_resources(vec![
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(s("t")),
        describe_configs_request::DescribeConfigsResource::default()
            .with_resource_type(4)
            .with_resource_name(s("0")),
    ]);
    for v in 1..=max_version(ApiKey::DescribeConfigs) {
        let ResponseKind::DescribeConfigs(r) = call(
            &broker,
            ApiKey::DescribeConfigs,
            v,
            RequestKind::DescribeConfigs(describe.clone()),
        )
        .await
        else {
            panic!()
        };
        for result in &r.results {
            assert_eq!(result.error_code, 0);
            assert_eq!(result.error_message, None, "DescribeConfigs v{v}");
        }
    }

    for v in 1..=max_version(ApiKey::FindCoordinator) {
        let request = if v >= 4 {
            FindCoordinatorRequest::default().with_coordinator_keys(vec![s("g")])
        } else {
            FindCoordinatorRequest::default().with_key(s("g"))
        };
        let ResponseKind::FindCoordinator(r) = call(
            &broker,
            ApiKey::FindCoordinator,
            v,
            RequestKind::FindCoordinator(request),
        )
        .await
        else {
            panic!()
        };
        if v >= 4 {
            assert_eq!(r.coordinators[0].error_code, 0);
            assert_eq!(
                r.coordinators[0].error_message, None,
                "FindCoordinator v{v}"
            );
        } else {
            assert_eq!(r.error_code, 0);
            assert_eq!(r.error_message, None, "FindCoordinator v{v}");
        }
    }
}

// ---- transactions --------------------------------------------------------

async fn init_txn(broker: &Arc<Broker>, id: &str) -> (i64, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(s(id))))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let ResponseKind::InitProducerId(r) = call(
        broker,
        ApiKey::InitProducerId,
        4,
        RequestKind::InitProducerId(request),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    (r.producer_id.0, r.producer_epoch)
}

async fn add_partition(broker: &Arc<Broker>, version: i16, id: &str, pid: i64, epoch: i16) -> i16 {
    let topic = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
        .with_name(name("t"))
        .with_partitions(vec![0]);
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(s(id)))
        .with_v3_and_below_producer_id(ProducerId(pid))
        .with_v3_and_below_producer_epoch(epoch)
        .with_v3_and_below_topics(vec![topic]);
    let ResponseKind::AddPartitionsToTxn(r) = call(
        broker,
        ApiKey::AddPartitionsToTxn,
        version,
        RequestKind::AddPartitionsToTxn(request),
    )
    .await
    else {
        panic!()
    };
    r.results_by_topic_v3_and_below[0].results_by_partition[0].partition_error_code
}

async fn end_txn(broker: &Arc<Broker>, version: i16, id: &str, pid: i64, epoch: i16) -> i16 {
    let request = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(s(id)))
        .with_producer_id(ProducerId(pid))
        .with_producer_epoch(epoch)
        .with_committed(true);
    let ResponseKind::EndTxn(r) = call(
        broker,
        ApiKey::EndTxn,
        version,
        RequestKind::EndTxn(request),
    )
    .await
    else {
        panic!()
    };
    r.error_code
}

const FENCED: i16 = 90;
const INVALID_PRODUCER_EPOCH: i16 = 47;

#[tokio::test]
async fn producer_fenced_reaches_only_versions_that_know_it() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path()).await;
    let (pid, old) = init_txn(&broker, "x").await;
    let (_, current) = init_txn(&broker, "x").await;
    assert_eq!(current, old + 1);

    for (v, want) in [
        (0, INVALID_PRODUCER_EPOCH),
        (1, INVALID_PRODUCER_EPOCH),
        (2, FENCED),
        (3, FENCED),
    ] {
        assert_eq!(
            add_partition(&broker, v, "x", pid, old).await,
            want,
            "AddPartitionsToTxn v{v}"
        );
    }
    for v in 0..=max_version(ApiKey::EndTxn) {
        let want = if v < 2 {
            INVALID_PRODUCER_EPOCH
        } else {
            FENCED
        };
        assert_eq!(
            end_txn(&broker, v, "x", pid, old).await,
            want,
            "EndTxn v{v}"
        );
    }
    for v in 0..=max_version(ApiKey::AddOffsetsToTxn) {
        let request = AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(s("x")))
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(old)
            .with_group_id(GroupId(s("g")));
        let ResponseKind::AddOffsetsToTxn(r) = call(
            &broker,
            ApiKey::AddOffsetsToTxn,
            v,
            RequestKind::AddOffsetsToTxn(request),
        )
        .await
        else {
            panic!()
        };
        let want = if v < 2 {
            INVALID_PRODUCER_EPOCH
        } else {
            FENCED
        };
        assert_eq!(r.error_code, want, "AddOffsetsToTxn v{v}");
    }
    // InitProducerId from v3 carries the caller's id and epoch; a stale pair
    // is fenced.
    for v in 3..=max_version(ApiKey::InitProducerId) {
        let request = InitProducerIdRequest::default()
            .with_transactional_id(Some(TransactionalId(s("x"))))
            .with_transaction_timeout_ms(60_000)
            .with_producer_id(ProducerId(pid))
            .with_producer_epoch(old);
        let ResponseKind::InitProducerId(r) = call(
            &broker,
            ApiKey::InitProducerId,
            v,
            RequestKind::InitProducerId(request),
        )
        .await
        else {
            panic!()
        };
        let want = if v < 4 {
            INVALID_PRODUCER_EPOCH
        } else {
            FENCED
        };
        assert_eq!(r.error_code, want, "InitProducerId v{v}");
    }
}

#[tokio::test]
async fn end_txn_without_an_ongoing_transaction_is_an_invalid_state() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path()).await;
    let (pid, epoch) = init_txn(&broker, "y").await;
    let invalid = ResponseError::InvalidTxnState.code();
    assert_eq!(end_txn(&broker, 3, "y", pid, epoch).await, invalid);
    // A transaction that ran ends; a retry of the same outcome succeeds.
    assert_eq!(add_partition(&broker, 3, "y", pid, epoch).await, 0);
    assert_eq!(end_txn(&broker, 3, "y", pid, epoch).await, 0);
    assert_eq!(end_txn(&broker, 3, "y", pid, epoch).await, 0);
}
