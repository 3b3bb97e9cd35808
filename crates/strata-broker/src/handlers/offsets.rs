//! Committed offsets: OffsetCommit, OffsetFetch, OffsetDelete.

use std::sync::Arc;

use kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponseGroup, OffsetFetchResponsePartition, OffsetFetchResponsePartitions,
    OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;
use strata_groups::CommittedOffset;

use super::text;
use crate::Broker;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

pub async fn commit(broker: &Arc<Broker>, request: OffsetCommitRequest) -> OffsetCommitResponse {
    let instance = request.group_instance_id.as_ref().map(ToString::to_string);
    let mut code = broker.groups.check_commit(
        &request.group_id,
        &request.member_id,
        instance.as_deref(),
        request.generation_id_or_member_epoch,
    );
    if request.group_id.is_empty() {
        code = ResponseError::InvalidGroupId.code();
    }
    let now = now_ms();
    let mut commits = Vec::new();
    let mut shapes = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let known = broker.store.topic(&topic.name);
        let mut partitions = Vec::with_capacity(topic.partitions.len());
        for p in &topic.partitions {
            let exists = known
                .as_ref()
                .is_some_and(|t| t.partition(p.partition_index).is_some());
            let metadata_too_large = p
                .committed_metadata
                .as_ref()
                .is_some_and(|m| m.len() > strata_groups::MAX_METADATA_BYTES);
            let partition_code = if code != 0 {
                code
            } else if !exists {
                ResponseError::UnknownTopicOrPartition.code()
            } else if metadata_too_large {
                ResponseError::OffsetMetadataTooLarge.code()
            } else {
                commits.push((
                    topic.name.to_string(),
                    p.partition_index,
                    CommittedOffset {
                        offset: p.committed_offset,
                        leader_epoch: p.committed_leader_epoch,
                        metadata: p.committed_metadata.as_ref().map(ToString::to_string),
                        commit_ms: now,
                    },
                ));
                0
            };
            partitions.push((p.partition_index, partition_code));
        }
        shapes.push((topic.name.clone(), topic.topic_id, partitions));
    }
    let stored = broker.groups.commit(&request.group_id, commits).await;
    let storage_error = stored
        .is_err()
        .then(|| ResponseError::KafkaStorageError.code());
    let topics = shapes
        .into_iter()
        .map(|(name, topic_id, partitions)| {
            OffsetCommitResponseTopic::default()
                .with_name(name)
                .with_topic_id(topic_id)
                .with_partitions(
                    partitions
                        .into_iter()
                        .map(|(index, code)| {
                            let code = if code == 0 {
                                storage_error.unwrap_or(0)
                            } else {
                                code
                            };
                            OffsetCommitResponsePartition::default()
                                .with_partition_index(index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}

/// One partition's committed offset as OffsetFetch reports it.
struct Found {
    partition: i32,
    offset: i64,
    leader_epoch: i32,
    metadata: String,
}

impl Found {
    fn from(partition: i32, c: Option<CommittedOffset>) -> Self {
        match c {
            Some(c) => Found {
                partition,
                offset: c.offset,
                leader_epoch: c.leader_epoch,
                // Commits stored before null metadata became "" read as "" too.
                metadata: c.metadata.unwrap_or_default(),
            },
            // Kafka's answer for "no committed offset".
            None => Found {
                partition,
                offset: -1,
                leader_epoch: -1,
                metadata: String::new(),
            },
        }
    }
}

/// The committed offsets a group asks for (`None`: all of them), by topic.
fn lookup(
    broker: &Broker,
    group: &str,
    wanted: Option<Vec<(String, Vec<i32>)>>,
) -> Vec<(String, Vec<Found>)> {
    match wanted {
        Some(topics) => topics
            .into_iter()
            .map(|(topic, partitions)| {
                let found = partitions
                    .into_iter()
                    .map(|p| Found::from(p, broker.groups.committed(group, &topic, p)))
                    .collect();
                (topic, found)
            })
            .collect(),
        None => {
            let mut by_topic: std::collections::BTreeMap<String, Vec<Found>> =
                std::collections::BTreeMap::new();
            for (topic, p, c) in broker.groups.committed_all(group) {
                by_topic
                    .entry(topic)
                    .or_default()
                    .push(Found::from(p, Some(c)));
            }
            by_topic.into_iter().collect()
        }
    }
}

pub fn fetch(
    broker: &Arc<Broker>,
    version: i16,
    request: OffsetFetchRequest,
) -> OffsetFetchResponse {
    if version < 8 {
        let wanted = request.topics.map(|ts| {
            ts.into_iter()
                .map(|t| (t.name.to_string(), t.partition_indexes))
                .collect()
        });
        let topics = lookup(broker, &request.group_id, wanted)
            .into_iter()
            .map(|(topic, partitions)| {
                OffsetFetchResponseTopic::default()
                    .with_name(TopicName(text(topic)))
                    .with_partitions(
                        partitions
                            .into_iter()
                            .map(|f| {
                                let epoch = if version >= 5 { f.leader_epoch } else { -1 };
                                OffsetFetchResponsePartition::default()
                                    .with_partition_index(f.partition)
                                    .with_committed_offset(f.offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(Some(text(f.metadata)))
                            })
                            .collect(),
                    )
            })
            .collect();
        return OffsetFetchResponse::default().with_topics(topics);
    }
    let groups = request
        .groups
        .into_iter()
        .map(|g| {
            let wanted = g.topics.map(|ts| {
                ts.into_iter()
                    .map(|t| (t.name.to_string(), t.partition_indexes))
                    .collect()
            });
            let topics = lookup(broker, &g.group_id, wanted)
                .into_iter()
                .map(|(topic, partitions)| {
                    let topic_id = broker
                        .store
                        .topic(&topic)
                        .map(|t| uuid::Uuid::from_bytes(t.id.0))
                        .unwrap_or_default();
                    OffsetFetchResponseTopics::default()
                        .with_name(TopicName(text(topic)))
                        .with_topic_id(topic_id)
                        .with_partitions(
                            partitions
                                .into_iter()
                                .map(|f| {
                                    OffsetFetchResponsePartitions::default()
                                        .with_partition_index(f.partition)
                                        .with_committed_offset(f.offset)
                                        .with_committed_leader_epoch(f.leader_epoch)
                                        .with_metadata(Some(text(f.metadata)))
                                })
                                .collect(),
                        )
                })
                .collect();
            OffsetFetchResponseGroup::default()
                .with_group_id(g.group_id)
                .with_topics(topics)
        })
        .collect();
    OffsetFetchResponse::default().with_groups(groups)
}

pub async fn delete(broker: &Arc<Broker>, request: OffsetDeleteRequest) -> OffsetDeleteResponse {
    let partitions: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.to_string(), p.partition_index))
        })
        .collect();
    let outcome = broker
        .groups
        .delete_offsets(&request.group_id, partitions)
        .await;
    let (top, per_partition) = match outcome {
        Ok(()) => (0, 0),
        Err(code) if code == ResponseError::GroupSubscribedToTopic.code() => (0, code),
        Err(code) => (code, 0),
    };
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            OffsetDeleteResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .into_iter()
                        .map(|p| {
                            OffsetDeleteResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(per_partition)
                        })
                        .collect(),
                )
        })
        .collect();
    OffsetDeleteResponse::default()
        .with_error_code(top)
        .with_topics(topics)
}
