//! Every served API answers at every served version with a response the
//! codec can encode: fields a version lacks must stay at their defaults, and
//! this walks all of them against a store with real data.
#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;

use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use strata_broker::handlers::{self, encode_response};
use strata_broker::Broker;
use strata_protocol::apis;

use common::name;

async fn broker_with_data(dir: &std::path::Path) -> Arc<Broker> {
    common::broker_with(dir, &[b"v"]).await
}

async fn responses(broker: &Arc<Broker>, api: ApiKey, version: i16) -> Vec<ResponseKind> {
    match api {
        ApiKey::ApiVersions => vec![ResponseKind::ApiVersions(handlers::api_versions::handle())],
        ApiKey::Metadata => {
            let wanted =
                metadata_request::MetadataRequestTopic::default().with_name(Some(name("t")));
            let missing =
                metadata_request::MetadataRequestTopic::default().with_name(Some(name("bad name")));
            let request = MetadataRequest::default().with_topics(Some(vec![wanted, missing]));
            vec![ResponseKind::Metadata(handlers::metadata::handle(
                broker, version, request,
            ))]
        }
        ApiKey::ListOffsets => {
            let partitions = [-1, -2, -3, 500, 5000]
                .into_iter()
                .map(|ts| list_offsets_request::ListOffsetsPartition::default().with_timestamp(ts))
                .collect();
            let topic = list_offsets_request::ListOffsetsTopic::default()
                .with_name(name("t"))
                .with_partitions(partitions);
            let request = ListOffsetsRequest::default().with_topics(vec![topic]);
            vec![ResponseKind::ListOffsets(handlers::list_offsets::handle(
                broker, version, request,
            ))]
        }
        ApiKey::CreateTopics => {
            let ok = create_topics_request::CreatableTopic::default()
                .with_name(name(&format!("created-{version}")))
                .with_num_partitions(1)
                .with_replication_factor(1);
            let bad = create_topics_request::CreatableTopic::default()
                .with_name(name("bad name"))
                .with_num_partitions(1)
                .with_replication_factor(1);
            let request = CreateTopicsRequest::default().with_topics(vec![ok, bad]);
            vec![ResponseKind::CreateTopics(handlers::admin::create_topics(
                broker, request,
            ))]
        }
        ApiKey::DescribeConfigs => {
            let resource = describe_configs_request::DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("t"));
            let request = DescribeConfigsRequest::default()
                .with_resources(vec![resource])
                .with_include_synonyms(true);
            vec![ResponseKind::DescribeConfigs(handlers::configs::describe(
                broker, version, request,
            ))]
        }
        ApiKey::DescribeCluster => vec![ResponseKind::DescribeCluster(
            handlers::admin::describe_cluster(broker, DescribeClusterRequest::default()),
        )],
        ApiKey::DeleteRecords => {
            let topic = delete_records_request::DeleteRecordsTopic::default()
                .with_name(name("t"))
                .with_partitions(vec![
                    delete_records_request::DeleteRecordsPartition::default().with_offset(0),
                ]);
            let request = DeleteRecordsRequest::default().with_topics(vec![topic]);
            vec![ResponseKind::DeleteRecords(
                handlers::admin::delete_records(broker, request),
            )]
        }
        ApiKey::CreatePartitions => {
            let topic = create_partitions_request::CreatePartitionsTopic::default()
                .with_name(name("t"))
                .with_count(1);
            let request = CreatePartitionsRequest::default().with_topics(vec![topic]);
            vec![ResponseKind::CreatePartitions(
                handlers::admin::create_partitions(broker, request),
            )]
        }
        ApiKey::FindCoordinator => {
            let request = FindCoordinatorRequest::default()
                .with_key(StrBytes::from_static_str("g"))
                .with_coordinator_keys(if version >= 4 {
                    vec![StrBytes::from_static_str("g")]
                } else {
                    vec![]
                });
            vec![ResponseKind::FindCoordinator(
                handlers::groups::find_coordinator(broker, version, request),
            )]
        }
        ApiKey::OffsetFetch => {
            let request = OffsetFetchRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("g")))
                .with_topics(Some(vec![
                    offset_fetch_request::OffsetFetchRequestTopic::default()
                        .with_name(name("t"))
                        .with_partition_indexes(vec![0, 1]),
                ]))
                .with_groups(vec![
                    offset_fetch_request::OffsetFetchRequestGroup::default()
                        .with_group_id(GroupId(StrBytes::from_static_str("g"))),
                ]);
            vec![ResponseKind::OffsetFetch(handlers::offsets::fetch(
                broker, version, request,
            ))]
        }
        ApiKey::Heartbeat => vec![ResponseKind::Heartbeat(handlers::groups::heartbeat(
            broker,
            HeartbeatRequest::default().with_group_id(GroupId(StrBytes::from_static_str("g"))),
        ))],
        ApiKey::LeaveGroup => {
            let request = LeaveGroupRequest::default()
                .with_group_id(GroupId(StrBytes::from_static_str("g")))
                .with_members(if version >= 3 {
                    vec![leave_group_request::MemberIdentity::default()
                        .with_member_id(StrBytes::from_static_str("m"))]
                } else {
                    vec![]
                });
            vec![ResponseKind::LeaveGroup(handlers::groups::leave_group(
                broker, version, request,
            ))]
        }
        ApiKey::ListGroups => vec![ResponseKind::ListGroups(handlers::groups::list_groups(
            broker,
            ListGroupsRequest::default(),
        ))],
        ApiKey::DescribeGroups => vec![ResponseKind::DescribeGroups(
            handlers::groups::describe_groups(
                broker,
                DescribeGroupsRequest::default()
                    .with_groups(vec![GroupId(StrBytes::from_static_str("g"))]),
            ),
        )],
        ApiKey::InitProducerId => vec![ResponseKind::InitProducerId(
            handlers::producer_id::handle(broker, version, InitProducerIdRequest::default()).await,
        )],
        ApiKey::EndTxn => vec![ResponseKind::EndTxn(
            handlers::txn::end(
                broker,
                version,
                EndTxnRequest::default()
                    .with_transactional_id(TransactionalId(StrBytes::from_static_str("x"))),
            )
            .await,
        )],
        ApiKey::AddPartitionsToTxn => {
            let topic = add_partitions_to_txn_request::AddPartitionsToTxnTopic::default()
                .with_name(name("t"))
                .with_partitions(vec![0]);
            let request = if version <= 3 {
                AddPartitionsToTxnRequest::default().with_v3_and_below_topics(vec![topic])
            } else {
                AddPartitionsToTxnRequest::default().with_transactions(vec![
                    add_partitions_to_txn_request::AddPartitionsToTxnTransaction::default()
                        .with_topics(vec![topic]),
                ])
            };
            vec![ResponseKind::AddPartitionsToTxn(
                handlers::txn::add_partitions(broker, version, request).await,
            )]
        }
        ApiKey::AddOffsetsToTxn => vec![ResponseKind::AddOffsetsToTxn(
            handlers::txn::add_offsets(broker, version, AddOffsetsToTxnRequest::default()).await,
        )],
        ApiKey::DescribeLogDirs => {
            let wanted = describe_log_dirs_request::DescribableLogDirTopic::default()
                .with_topic(name("t"))
                .with_partitions(vec![0, 1]);
            [None, Some(vec![wanted])]
                .into_iter()
                .map(|topics| {
                    ResponseKind::DescribeLogDirs(handlers::log_dirs::describe(
                        broker,
                        DescribeLogDirsRequest::default().with_topics(topics),
                    ))
                })
                .collect()
        }
        ApiKey::DescribeTopicPartitions => {
            let topics = ["t", "missing", "bad name"]
                .into_iter()
                .map(|n| {
                    describe_topic_partitions_request::TopicRequest::default().with_name(name(n))
                })
                .collect();
            let request = DescribeTopicPartitionsRequest::default()
                .with_topics(topics)
                .with_response_partition_limit(1);
            vec![ResponseKind::DescribeTopicPartitions(
                handlers::topic_partitions::describe(broker, request),
            )]
        }
        ApiKey::ListConfigResources => vec![ResponseKind::ListConfigResources(
            handlers::config_resources::list(
                broker,
                version,
                ListConfigResourcesRequest::default(),
            ),
        )],
        ApiKey::OffsetForLeaderEpoch => {
            let partitions = [(0, 0), (0, 3), (7, 0)]
                .into_iter()
                .map(|(p, epoch)| {
                    offset_for_leader_epoch_request::OffsetForLeaderPartition::default()
                        .with_partition(p)
                        .with_leader_epoch(epoch)
                })
                .collect();
            let request = OffsetForLeaderEpochRequest::default().with_topics(vec![
                offset_for_leader_epoch_request::OffsetForLeaderTopic::default()
                    .with_topic(name("t"))
                    .with_partitions(partitions),
            ]);
            vec![ResponseKind::OffsetForLeaderEpoch(
                handlers::leader_epoch::handle(broker, request),
            )]
        }
        ApiKey::DescribeProducers => {
            let request = DescribeProducersRequest::default().with_topics(vec![
                describe_producers_request::TopicRequest::default()
                    .with_name(name("t"))
                    .with_partition_indexes(vec![0, 9]),
            ]);
            vec![ResponseKind::DescribeProducers(
                handlers::txn_admin::describe_producers(broker, request),
            )]
        }
        ApiKey::DescribeTransactions => {
            let request = DescribeTransactionsRequest::default().with_transactional_ids(vec![
                TransactionalId(StrBytes::from_static_str("x")),
                TransactionalId(StrBytes::from_static_str("")),
            ]);
            vec![ResponseKind::DescribeTransactions(
                handlers::txn_admin::describe_transactions(broker, request).await,
            )]
        }
        ApiKey::ListTransactions => vec![ResponseKind::ListTransactions(
            handlers::txn_admin::list_transactions(broker, ListTransactionsRequest::default())
                .await,
        )],
        _ => Vec::new(),
    }
}

#[tokio::test]
async fn every_answer_encodes_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_data(dir.path()).await;
    let mut checked = 0;
    for api in apis::SERVED {
        let range = apis::supported_versions(*api).unwrap();
        for version in range.min..=range.max {
            for response in responses(&broker, *api, version).await {
                assert!(
                    encode_response(*api, version, 7, &response).is_some(),
                    "{api:?} v{version} cannot be encoded"
                );
                checked += 1;
            }
        }
    }
    assert!(checked > 80, "only {checked} answers checked");
}

#[tokio::test]
async fn fetch_answers_encode_at_every_version() {
    let dir = tempfile::tempdir().unwrap();
    let broker = broker_with_data(dir.path()).await;
    let topic_id = uuid::Uuid::from_bytes(broker.store.topic("t").unwrap().id.0);
    let range = apis::supported_versions(ApiKey::Fetch).unwrap();
    for version in range.min..=range.max {
        let partitions = vec![
            fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_partition_max_bytes(1 << 20),
            fetch_request::FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(99)
                .with_partition_max_bytes(1 << 20),
        ];
        let topic = fetch_request::FetchTopic::default()
            .with_topic(name("t"))
            .with_topic_id(topic_id)
            .with_partitions(partitions);
        let request = FetchRequest::default()
            .with_max_bytes(1 << 20)
            .with_topics(vec![topic]);
        let (response, _held) = handlers::fetch::handle(&broker, version, request).await;
        assert!(
            encode_response(ApiKey::Fetch, version, 7, &ResponseKind::Fetch(response)).is_some(),
            "Fetch v{version} cannot be encoded"
        );
    }
}
