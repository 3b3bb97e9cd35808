//! The admin and transaction APIs as a client sees them: requests are
//! encoded and answers decoded with the client side of the codec, through
//! the same entry point a connection uses.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use kafka_protocol::ResponseError;
use strata_broker::handlers;
use strata_broker::peer::Peer;
use strata_broker::Broker;
use strata_protocol::apis;

use common::name;

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_string())
}

async fn broker(dir: &std::path::Path) -> Arc<Broker> {
    common::broker_with(dir, &[b"v", b"w"]).await
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
    let pending = handlers::start(
        broker,
        frame.freeze(),
        &Peer::new(std::net::SocketAddr::from(([127, 0, 0, 1], 9092))),
    )
    .await?;
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

// ---- topic administration ------------------------------------------------

async fn create_partitions(
    broker: &Arc<Broker>,
    count: i32,
    assignments: Vec<Vec<i32>>,
    validate_only: bool,
) -> (i16, Option<StrBytes>) {
    let assignments = assignments
        .into_iter()
        .map(|ids| {
            create_partitions_request::CreatePartitionsAssignment::default()
                .with_broker_ids(ids.into_iter().map(BrokerId).collect())
        })
        .collect();
    let request = CreatePartitionsRequest::default()
        .with_topics(vec![
            create_partitions_request::CreatePartitionsTopic::default()
                .with_name(name("t"))
                .with_count(count)
                .with_assignments(Some(assignments)),
        ])
        .with_validate_only(validate_only);
    let v = max_version(ApiKey::CreatePartitions);
    let ResponseKind::CreatePartitions(r) = call(
        broker,
        ApiKey::CreatePartitions,
        v,
        RequestKind::CreatePartitions(request),
    )
    .await
    else {
        panic!()
    };
    (r.results[0].error_code, r.results[0].error_message.clone())
}

#[tokio::test]
async fn create_partitions_checks_explicit_assignments() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path()).await;
    let invalid = ResponseError::InvalidReplicaAssignment.code();
    for (count, assignments, what) in [
        (3, vec![vec![1]], "unknown broker"),
        (3, vec![vec![0, 0]], "duplicate broker"),
        (3, vec![vec![0, 1]], "too many replicas"),
        (3, vec![vec![]], "no replicas"),
        (4, vec![vec![0]], "one assignment for two new partitions"),
    ] {
        let (code, message) = create_partitions(&broker, count, assignments, false).await;
        assert_eq!(code, invalid, "{what}");
        assert!(message.is_some_and(|m| !m.is_empty()), "{what}");
    }
    assert_eq!(broker.store.topic("t").unwrap().partition_count(), 2);
    // Not growing the topic is still INVALID_PARTITIONS, checked first.
    let (code, _) = create_partitions(&broker, 2, vec![vec![5]], false).await;
    assert_eq!(code, ResponseError::InvalidPartitions.code());
    let (code, message) = create_partitions(&broker, 3, vec![vec![0]], false).await;
    assert_eq!((code, message), (0, None));
    assert_eq!(broker.store.topic("t").unwrap().partition_count(), 3);
}

// ---- configs -------------------------------------------------------------

async fn describe_configs(
    broker: &Arc<Broker>,
    resource_type: i8,
    resource: &str,
) -> Vec<describe_configs_response::DescribeConfigsResourceResult> {
    let request = DescribeConfigsRequest::default()
        .with_resources(vec![
            describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(resource_type)
                .with_resource_name(s(resource)),
        ])
        .with_include_synonyms(true);
    let ResponseKind::DescribeConfigs(r) = call(
        broker,
        ApiKey::DescribeConfigs,
        max_version(ApiKey::DescribeConfigs),
        RequestKind::DescribeConfigs(request),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.results[0].error_code, 0);
    r.results[0].configs.clone()
}

fn config<'a>(
    configs: &'a [describe_configs_response::DescribeConfigsResourceResult],
    name: &str,
) -> &'a describe_configs_response::DescribeConfigsResourceResult {
    configs.iter().find(|c| c.name.as_str() == name).unwrap()
}

fn synonyms(
    c: &describe_configs_response::DescribeConfigsResourceResult,
) -> Vec<(String, String, i8)> {
    c.synonyms
        .iter()
        .map(|s| {
            (
                s.name.to_string(),
                s.value.as_deref().unwrap_or("").to_string(),
                s.source,
            )
        })
        .collect()
}

#[tokio::test]
async fn describe_configs_synonyms_follow_kafka() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path()).await;
    broker
        .store
        .set_topic_config(
            "t",
            BTreeMap::from([("retention.ms".to_string(), "1000".to_string())]),
            false,
        )
        .unwrap();
    let topic = describe_configs(&broker, 2, "t").await;
    let segment = config(&topic, "segment.bytes");
    assert_eq!(segment.config_source, 5);
    assert_eq!(
        synonyms(segment),
        vec![("log.segment.bytes".into(), "1073741824".into(), 5)]
    );
    // log.retention.ms has no default of its own: no synonym.
    let segment_ms = config(&topic, "segment.ms");
    assert_eq!(
        (segment_ms.config_source, synonyms(segment_ms)),
        (5, vec![])
    );
    let retention = config(&topic, "retention.ms");
    assert_eq!(retention.config_source, 1);
    assert_eq!(
        synonyms(retention),
        vec![("retention.ms".into(), "1000".into(), 1)]
    );
    // Topic-only configs have no broker fallback.
    let throttled = config(&topic, "leader.replication.throttled.replicas");
    assert_eq!((throttled.config_source, synonyms(throttled)), (5, vec![]));
    // min.insync.replicas is a cluster-wide dynamic default (Kafka ≥ 4.1).
    let min_isr = config(&topic, "min.insync.replicas");
    assert_eq!(min_isr.config_source, 3);
    assert_eq!(
        synonyms(min_isr),
        vec![
            ("min.insync.replicas".into(), "1".into(), 3),
            ("min.insync.replicas".into(), "1".into(), 5)
        ]
    );

    let brokers = describe_configs(&broker, 4, "0").await;
    let min_isr = config(&brokers, "min.insync.replicas");
    assert_eq!(
        (min_isr.value.as_deref(), min_isr.config_source),
        (Some("1"), 3)
    );
    // A broker setting at Kafka's default is reported as the default...
    let delay = config(&brokers, "group.initial.rebalance.delay.ms");
    assert_eq!(
        (delay.value.as_deref(), delay.config_source),
        (Some("3000"), 5)
    );
    // ...one that differs as a static broker config, over Kafka's default.
    let protocols = config(&brokers, "group.coordinator.rebalance.protocols");
    assert_eq!(
        synonyms(protocols),
        vec![
            (
                "group.coordinator.rebalance.protocols".into(),
                "classic".into(),
                4
            ),
            (
                "group.coordinator.rebalance.protocols".into(),
                "classic,consumer".into(),
                5
            )
        ]
    );
    let min_session = config(&brokers, "group.min.session.timeout.ms");
    assert_eq!(
        (min_session.value.as_deref(), min_session.config_source),
        (Some("6000"), 5)
    );
}

#[tokio::test]
async fn cleanup_policy_may_be_left_empty() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path()).await;
    let alter = |op: i8, value: &str| {
        IncrementalAlterConfigsRequest::default().with_resources(vec![
            incremental_alter_configs_request::AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(s("t"))
                .with_configs(vec![
                    incremental_alter_configs_request::AlterableConfig::default()
                        .with_name(s("cleanup.policy"))
                        .with_config_operation(op)
                        .with_value(Some(s(value))),
                ]),
        ])
    };
    for (op, value) in [(3, "delete"), (0, "")] {
        let ResponseKind::IncrementalAlterConfigs(r) = call(
            &broker,
            ApiKey::IncrementalAlterConfigs,
            1,
            RequestKind::IncrementalAlterConfigs(alter(op, value)),
        )
        .await
        else {
            panic!()
        };
        assert_eq!(r.responses[0].error_code, 0, "op {op} {value:?}");
        assert_eq!(r.responses[0].error_message, None);
        let topic = describe_configs(&broker, 2, "t").await;
        assert_eq!(config(&topic, "cleanup.policy").value.as_deref(), Some(""));
    }
}

// ---- the admin APIs a single node serves ---------------------------------

#[tokio::test]
async fn describe_log_dirs_reports_the_data_dir_and_partition_sizes() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path()).await;
    let v = max_version(ApiKey::DescribeLogDirs);
    let ResponseKind::DescribeLogDirs(r) = call(
        &broker,
        ApiKey::DescribeLogDirs,
        v,
        RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default().with_topics(None)),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    assert_eq!(r.results.len(), 1);
    let logs = &r.results[0];
    assert_eq!(logs.error_code, 0);
    assert_eq!(logs.log_dir.as_str(), dir.path().display().to_string());
    let t = logs.topics.iter().find(|t| t.name.as_str() == "t").unwrap();
    let size = |i: i32| {
        t.partitions
            .iter()
            .find(|p| p.partition_index == i)
            .unwrap()
            .partition_size
    };
    assert!(size(0) > 0);
    assert_eq!(size(1), 0);

    let wanted = DescribeLogDirsRequest::default().with_topics(Some(vec![
        describe_log_dirs_request::DescribableLogDirTopic::default()
            .with_topic(name("t"))
            .with_partitions(vec![1, 7]),
        describe_log_dirs_request::DescribableLogDirTopic::default()
            .with_topic(name("missing"))
            .with_partitions(vec![0]),
    ]));
    let ResponseKind::DescribeLogDirs(r) = call(
        &broker,
        ApiKey::DescribeLogDirs,
        v,
        RequestKind::DescribeLogDirs(wanted),
    )
    .await
    else {
        panic!()
    };
    let topics = &r.results[0].topics;
    assert_eq!(topics.len(), 1);
    let indexes: Vec<i32> = topics[0]
        .partitions
        .iter()
        .map(|p| p.partition_index)
        .collect();
    assert_eq!(indexes, vec![1]);
}

#[tokio::test]
async fn describe_topic_partitions_pages_with_a_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path()).await;
    let topics = vec![
        describe_topic_partitions_request::TopicRequest::default().with_name(name("t")),
        describe_topic_partitions_request::TopicRequest::default().with_name(name("zz-missing")),
    ];
    let first = DescribeTopicPartitionsRequest::default()
        .with_topics(topics.clone())
        .with_response_partition_limit(1);
    let ResponseKind::DescribeTopicPartitions(r) = call(
        &broker,
        ApiKey::DescribeTopicPartitions,
        0,
        RequestKind::DescribeTopicPartitions(first),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.topics.len(), 1);
    let t = &r.topics[0];
    assert_eq!(t.error_code, 0);
    assert_eq!(
        t.topic_id,
        uuid::Uuid::from_bytes(broker.store.topic("t").unwrap().id.0)
    );
    assert_eq!(t.partitions.len(), 1);
    let p = &t.partitions[0];
    assert_eq!(
        (p.partition_index, p.leader_id.0, p.leader_epoch),
        (0, 0, 0)
    );
    assert_eq!(p.isr_nodes, vec![BrokerId(0)]);
    let cursor = r.next_cursor.unwrap();
    assert_eq!(
        (cursor.topic_name.as_str(), cursor.partition_index),
        ("t", 1)
    );

    let next = DescribeTopicPartitionsRequest::default()
        .with_topics(topics)
        .with_response_partition_limit(10)
        .with_cursor(Some(
            describe_topic_partitions_request::Cursor::default()
                .with_topic_name(name("t"))
                .with_partition_index(1),
        ));
    let ResponseKind::DescribeTopicPartitions(r) = call(
        &broker,
        ApiKey::DescribeTopicPartitions,
        0,
        RequestKind::DescribeTopicPartitions(next),
    )
    .await
    else {
        panic!()
    };
    assert!(r.next_cursor.is_none());
    assert_eq!(r.topics.len(), 2);
    assert_eq!(r.topics[0].partitions[0].partition_index, 1);
    assert_eq!(
        r.topics[1].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}

#[tokio::test]
async fn list_config_resources_lists_topics_and_the_broker() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path()).await;
    let list = |types: Vec<i8>| {
        RequestKind::ListConfigResources(
            ListConfigResourcesRequest::default().with_resource_types(types),
        )
    };
    let ResponseKind::ListConfigResources(r) =
        call(&broker, ApiKey::ListConfigResources, 1, list(vec![])).await
    else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    let listed: Vec<(String, i8)> = r
        .config_resources
        .iter()
        .map(|c| (c.resource_name.to_string(), c.resource_type))
        .collect();
    assert!(listed.contains(&("t".to_string(), 2)));
    assert!(listed.contains(&("0".to_string(), 4)));
    let ResponseKind::ListConfigResources(r) =
        call(&broker, ApiKey::ListConfigResources, 1, list(vec![99])).await
    else {
        panic!()
    };
    assert_eq!(r.error_code, ResponseError::UnsupportedVersion.code());
    // v0 is ListClientMetricsResources: none here.
    let ResponseKind::ListConfigResources(r) =
        call(&broker, ApiKey::ListConfigResources, 0, list(vec![])).await
    else {
        panic!()
    };
    assert_eq!((r.error_code, r.config_resources.len()), (0, 0));
}

#[tokio::test]
async fn offset_for_leader_epoch_answers_for_epoch_zero() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path()).await;
    let partition = |index: i32, current: i32, epoch: i32| {
        offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
            .with_partition(index)
            .with_current_leader_epoch(current)
            .with_leader_epoch(epoch)
    };
    let request = OffsetForLeaderEpochRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![
            offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                .with_topic(name("t"))
                .with_partitions(vec![
                    partition(0, 0, 0),
                    partition(0, -1, 0),
                    partition(0, 1, 0),
                    partition(0, 0, 4),
                    partition(9, 0, 0),
                ]),
        ]);
    for v in 2..=max_version(ApiKey::OffsetForLeaderEpoch) {
        let ResponseKind::OffsetForLeaderEpoch(r) = call(
            &broker,
            ApiKey::OffsetForLeaderEpoch,
            v,
            RequestKind::OffsetForLeaderEpoch(request.clone()),
        )
        .await
        else {
            panic!()
        };
        let got: Vec<(i16, i32, i64)> = r.topics[0]
            .partitions
            .iter()
            .map(|p| (p.error_code, p.leader_epoch, p.end_offset))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0, 2),
                (0, 0, 2),
                (ResponseError::UnknownLeaderEpoch.code(), -1, -1),
                (0, -1, -1),
                (ResponseError::UnknownTopicOrPartition.code(), -1, -1),
            ],
            "v{v}"
        );
    }
}

#[tokio::test]
async fn transactions_and_producers_are_described_and_listed() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker(dir.path()).await;
    let (pid, epoch) = init_txn(&broker, "txn-a").await;
    assert_eq!(add_partition(&broker, 3, "txn-a", pid, epoch).await, 0);
    init_txn(&broker, "txn-b").await;

    let request = DescribeTransactionsRequest::default().with_transactional_ids(vec![
        TransactionalId(s("txn-a")),
        TransactionalId(s("nope")),
    ]);
    let ResponseKind::DescribeTransactions(r) = call(
        &broker,
        ApiKey::DescribeTransactions,
        0,
        RequestKind::DescribeTransactions(request),
    )
    .await
    else {
        panic!()
    };
    let a = &r.transaction_states[0];
    assert_eq!(a.error_code, 0);
    assert_eq!(a.transaction_state.as_str(), "Ongoing");
    assert_eq!((a.producer_id.0, a.producer_epoch), (pid, epoch));
    assert_eq!(a.transaction_timeout_ms, 60_000);
    assert!(a.transaction_start_time_ms > 0);
    assert_eq!(a.topics.len(), 1);
    assert_eq!(
        (a.topics[0].topic.as_str(), a.topics[0].partitions.clone()),
        ("t", vec![0])
    );
    assert_eq!(
        r.transaction_states[1].error_code,
        ResponseError::TransactionalIdNotFound.code()
    );

    let list = |request: ListTransactionsRequest| RequestKind::ListTransactions(request);
    let ResponseKind::ListTransactions(r) = call(
        &broker,
        ApiKey::ListTransactions,
        max_version(ApiKey::ListTransactions),
        list(ListTransactionsRequest::default().with_state_filters(vec![s("Ongoing"), s("Bogus")])),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, 0);
    assert_eq!(r.unknown_state_filters, vec![s("Bogus")]);
    let ids: Vec<&str> = r
        .transaction_states
        .iter()
        .map(|t| t.transactional_id.as_str())
        .collect();
    assert_eq!(ids, vec!["txn-a"]);
    let ResponseKind::ListTransactions(r) = call(
        &broker,
        ApiKey::ListTransactions,
        2,
        list(ListTransactionsRequest::default().with_transactional_id_pattern(Some(s("txn-.")))),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.transaction_states.len(), 2);
    let ResponseKind::ListTransactions(r) = call(
        &broker,
        ApiKey::ListTransactions,
        2,
        list(ListTransactionsRequest::default().with_transactional_id_pattern(Some(s("(")))),
    )
    .await
    else {
        panic!()
    };
    assert_eq!(r.error_code, ResponseError::InvalidRegularExpression.code());

    let request = DescribeProducersRequest::default().with_topics(vec![
        describe_producers_request::TopicRequest::default()
            .with_name(name("t"))
            .with_partition_indexes(vec![0, 9]),
    ]);
    let ResponseKind::DescribeProducers(r) = call(
        &broker,
        ApiKey::DescribeProducers,
        0,
        RequestKind::DescribeProducers(request),
    )
    .await
    else {
        panic!()
    };
    let partitions = &r.topics[0].partitions;
    assert_eq!(
        (partitions[0].error_code, &partitions[0].error_message),
        (0, &None)
    );
    assert_eq!(
        partitions[1].error_code,
        ResponseError::UnknownTopicOrPartition.code()
    );
}
