//! Metadata: the one broker, and the topics asked for (auto-created when
//! both the client and the broker allow it).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::{BrokerId, MetadataRequest, MetadataResponse, TopicName};
use kafka_protocol::ResponseError;
use strata_log::{LogError, Topic, TopicId};
use uuid::Uuid;

use super::text;
use crate::{errors, Broker};

/// "Authorized operations were not asked for."
pub const OPERATIONS_OMITTED: i32 = i32::MIN;

/// The coordinators' own topics, which clients may read but not remove.
pub fn is_internal(name: &str) -> bool {
    name == strata_groups::OFFSETS_TOPIC || name == strata_txn::STATE_TOPIC
}

pub fn handle(broker: &Arc<Broker>, version: i16, request: MetadataRequest) -> MetadataResponse {
    let options = &broker.options;
    let all = match &request.topics {
        None => true,
        Some(list) => list.is_empty() && version == 0,
    };
    let topics = if all {
        broker
            .store
            .registry()
            .topics()
            .iter()
            .map(|t| describe(t, options.node_id))
            .collect()
    } else {
        request
            .topics
            .unwrap_or_default()
            .into_iter()
            .map(|wanted| match wanted.name {
                Some(name) => by_name(
                    broker,
                    name,
                    request.allow_auto_topic_creation || version < 4,
                ),
                None => by_id(broker, wanted.topic_id),
            })
            .collect()
    };
    MetadataResponse::default()
        .with_brokers(vec![MetadataResponseBroker::default()
            .with_node_id(BrokerId(options.node_id))
            .with_host(text(options.advertised_host.clone()))
            .with_port(options.advertised_port)])
        .with_cluster_id(Some(text(options.cluster_id.clone())))
        .with_controller_id(BrokerId(options.node_id))
        .with_topics(topics)
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}

fn by_name(
    broker: &Broker,
    name: TopicName,
    client_allows_creation: bool,
) -> MetadataResponseTopic {
    if let Some(topic) = broker.store.topic(&name) {
        return describe(&topic, broker.options.node_id);
    }
    let failed = |error: ResponseError| {
        MetadataResponseTopic::default()
            .with_name(Some(name.clone()))
            .with_error_code(error.code())
            .with_topic_authorized_operations(OPERATIONS_OMITTED)
    };
    if !(client_allows_creation && broker.options.auto_create_topics) {
        return failed(ResponseError::UnknownTopicOrPartition);
    }
    match broker.store.create_topic(
        &name,
        broker.options.default_partitions,
        BTreeMap::new(),
        false,
    ) {
        Ok(topic) => describe(&topic, broker.options.node_id),
        // Another connection created it a moment ago.
        Err(LogError::TopicExists(_)) => broker.store.topic(&name).map_or_else(
            || failed(ResponseError::UnknownTopicOrPartition),
            |t| describe(&t, broker.options.node_id),
        ),
        Err(e) => failed(errors::code_for(&e)),
    }
}

fn by_id(broker: &Broker, id: Uuid) -> MetadataResponseTopic {
    match broker.store.registry().topic_by_id(TopicId(*id.as_bytes())) {
        Some(topic) => describe(&topic, broker.options.node_id),
        None => MetadataResponseTopic::default()
            .with_topic_id(id)
            .with_error_code(ResponseError::UnknownTopicId.code())
            .with_topic_authorized_operations(OPERATIONS_OMITTED),
    }
}

/// A topic as Metadata reports it: every partition led by this broker.
pub fn describe(topic: &Topic, node_id: i32) -> MetadataResponseTopic {
    let partitions = (0..topic.partition_count())
        .map(|index| {
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(BrokerId(node_id))
                .with_leader_epoch(strata_log::append::LEADER_EPOCH)
                .with_replica_nodes(vec![BrokerId(node_id)])
                .with_isr_nodes(vec![BrokerId(node_id)])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(text(topic.name.clone()))))
        .with_topic_id(Uuid::from_bytes(topic.id.0))
        .with_is_internal(is_internal(&topic.name))
        .with_partitions(partitions)
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}
