//! DescribeTopicPartitions (KIP-966): topics and their partitions, paged by
//! a cursor; newer admin clients describe topics with it.

use std::sync::Arc;

use kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponsePartition, DescribeTopicPartitionsResponseTopic,
};
use kafka_protocol::messages::{
    BrokerId, DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse, TopicName,
};
use kafka_protocol::ResponseError;
use strata_log::Topic;
use uuid::Uuid;

use super::metadata::OPERATIONS_OMITTED;
use super::text;
use crate::Broker;

/// Kafka's `max.request.partition.size.limit` default: partitions per answer.
const MAX_PARTITIONS: i32 = 2000;

pub fn describe(
    broker: &Arc<Broker>,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let all = request.topics.is_empty();
    let cursor = request.cursor.as_ref();
    let cursor_topic = cursor.map_or("", |c| c.topic_name.as_str());
    let mut names: Vec<String> = if all {
        broker
            .store
            .registry()
            .topics()
            .iter()
            .map(|t| t.name.clone())
            .collect()
    } else {
        request.topics.iter().map(|t| t.name.to_string()).collect()
    };
    names.retain(|n| n.as_str() >= cursor_topic);
    names.sort();
    names.dedup();
    if let Some(c) = cursor {
        // As Kafka: the cursor's topic must be one of the topics asked for,
        // and its partition a real index.
        if (!all && !names.iter().any(|n| n.as_str() == c.topic_name.as_str()))
            || c.partition_index < 0
        {
            return invalid(request);
        }
    }
    let mut remaining = request.response_partition_limit.clamp(1, MAX_PARTITIONS);
    let mut response = DescribeTopicPartitionsResponse::default();
    for name in names {
        if remaining == 0 {
            response.next_cursor = Some(Cursor::default().with_topic_name(topic_name(&name)));
            break;
        }
        let Some(topic) = broker.store.topic(&name) else {
            if !all {
                response.topics.push(missing(&name));
            }
            continue;
        };
        let start = if name == cursor_topic {
            cursor.map_or(0, |c| c.partition_index)
        } else {
            0
        };
        let count = topic.partition_count();
        let end = count.min(start.saturating_add(remaining));
        response
            .topics
            .push(describe_topic(&topic, start..end, broker.options.node_id));
        if end < count {
            response.next_cursor = Some(
                Cursor::default()
                    .with_topic_name(topic_name(&name))
                    .with_partition_index(end),
            );
            break;
        }
        remaining -= (end - start).max(0);
    }
    response
}

fn topic_name(name: &str) -> TopicName {
    TopicName(text(name))
}

fn describe_topic(
    topic: &Topic,
    range: std::ops::Range<i32>,
    node_id: i32,
) -> DescribeTopicPartitionsResponseTopic {
    let partitions = range
        .map(|index| {
            DescribeTopicPartitionsResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(BrokerId(node_id))
                .with_leader_epoch(strata_log::append::LEADER_EPOCH)
                .with_replica_nodes(vec![BrokerId(node_id)])
                .with_isr_nodes(vec![BrokerId(node_id)])
                .with_eligible_leader_replicas(Some(Vec::new()))
                .with_last_known_elr(Some(Vec::new()))
        })
        .collect();
    DescribeTopicPartitionsResponseTopic::default()
        .with_name(Some(topic_name(&topic.name)))
        .with_topic_id(Uuid::from_bytes(topic.id.0))
        .with_is_internal(super::metadata::is_internal(&topic.name))
        .with_partitions(partitions)
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}

fn missing(name: &str) -> DescribeTopicPartitionsResponseTopic {
    let error = if strata_log::topic::validate_topic_name(name).is_ok() {
        ResponseError::UnknownTopicOrPartition
    } else {
        ResponseError::InvalidTopicException
    };
    DescribeTopicPartitionsResponseTopic::default()
        .with_error_code(error.code())
        .with_name(Some(topic_name(name)))
        .with_is_internal(super::metadata::is_internal(name))
        .with_topic_authorized_operations(OPERATIONS_OMITTED)
}

/// Kafka's answer to a request it refuses as invalid: every topic asked for
/// with INVALID_REQUEST.
fn invalid(request: DescribeTopicPartitionsRequest) -> DescribeTopicPartitionsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            DescribeTopicPartitionsResponseTopic::default()
                .with_error_code(ResponseError::InvalidRequest.code())
                .with_name(Some(t.name))
                .with_topic_authorized_operations(OPERATIONS_OMITTED)
        })
        .collect();
    DescribeTopicPartitionsResponse::default().with_topics(topics)
}
