//! DescribeLogDirs: the one data directory and the partitions in it.
//!
//! Records live in the shared WAL, so a partition's size is the bytes of
//! the record batches it holds there. The volume's total and usable bytes
//! are not measured: they are reported as unknown (-1), as Kafka does when
//! it cannot read them.

use std::sync::Arc;

use kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use kafka_protocol::messages::{DescribeLogDirsRequest, DescribeLogDirsResponse, TopicName};
use strata_log::Topic;

use super::text;
use crate::Broker;

/// Kafka's value for volume sizes it does not know.
const UNKNOWN_BYTES: i64 = -1;

pub fn describe(broker: &Arc<Broker>, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    let registry = broker.store.registry();
    let topics = match request.topics {
        // Every partition on this broker.
        None => registry
            .topics()
            .iter()
            .map(|topic| describe_topic(topic, None))
            .collect(),
        // Only the partitions asked for that exist here; Kafka leaves the
        // others out instead of answering an error.
        Some(wanted) => wanted
            .iter()
            .filter_map(|w| {
                let topic = registry.topic(&w.topic)?;
                let described = describe_topic(&topic, Some(&w.partitions));
                (!described.partitions.is_empty()).then_some(described)
            })
            .collect(),
    };
    let result = DescribeLogDirsResult::default()
        .with_log_dir(text(broker.store.data_dir().display().to_string()))
        .with_topics(topics)
        .with_total_bytes(UNKNOWN_BYTES)
        .with_usable_bytes(UNKNOWN_BYTES);
    DescribeLogDirsResponse::default().with_results(vec![result])
}

fn describe_topic(topic: &Topic, wanted: Option<&[i32]>) -> DescribeLogDirsTopic {
    let partitions = topic
        .partitions()
        .iter()
        .filter(|p| wanted.is_none_or(|w| w.contains(&p.index)))
        .map(|p| {
            DescribeLogDirsPartition::default()
                .with_partition_index(p.index)
                .with_partition_size(i64::try_from(p.size_bytes()).unwrap_or(i64::MAX))
                .with_offset_lag(0)
                .with_is_future_key(false)
        })
        .collect();
    DescribeLogDirsTopic::default()
        .with_name(TopicName(text(topic.name.clone())))
        .with_partitions(partitions)
}
