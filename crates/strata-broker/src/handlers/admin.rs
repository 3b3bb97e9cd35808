//! Topic administration: CreateTopics, DeleteTopics, CreatePartitions,
//! DeleteRecords, DescribeCluster.

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::create_partitions_request::CreatePartitionsTopic;
use kafka_protocol::messages::create_partitions_response::CreatePartitionsTopicResult;
use kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult,
};
use kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsTopicResult,
};
use kafka_protocol::messages::delete_topics_response::DeletableTopicResult;
use kafka_protocol::messages::describe_cluster_response::DescribeClusterBroker;
use kafka_protocol::messages::{
    BrokerId, CreatePartitionsRequest, CreatePartitionsResponse, CreateTopicsRequest,
    CreateTopicsResponse, DeleteRecordsRequest, DeleteRecordsResponse, DeleteTopicsRequest,
    DeleteTopicsResponse, DescribeClusterRequest, DescribeClusterResponse, TopicName,
};
use kafka_protocol::ResponseError;
use strata_log::{config, TopicId};
use uuid::Uuid;

use super::configs::synonyms;
use super::metadata::{is_internal, OPERATIONS_OMITTED};
use super::text;
use crate::{errors, Broker};

pub fn create_topics(broker: &Arc<Broker>, request: CreateTopicsRequest) -> CreateTopicsResponse {
    let mut seen = std::collections::HashSet::new();
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let result = CreatableTopicResult::default().with_name(t.name.clone());
            if !seen.insert(t.name.clone()) {
                return result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(text("topic appears more than once in the request")));
            }
            if t.replication_factor > 1 {
                return result
                    .with_error_code(ResponseError::InvalidReplicationFactor.code())
                    .with_error_message(Some(text(format!(
                        "replication factor {} is larger than the 1 available broker",
                        t.replication_factor
                    ))));
            }
            let partitions = if t.num_partitions == -1 {
                if t.assignments.is_empty() {
                    broker.options.default_partitions
                } else {
                    i32::try_from(t.assignments.len()).unwrap_or(i32::MAX)
                }
            } else {
                t.num_partitions
            };
            let configs: BTreeMap<String, String> = t
                .configs
                .iter()
                .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                .collect();
            match broker
                .store
                .create_topic(&t.name, partitions, configs, request.validate_only)
            {
                Ok(topic) => result
                    .with_topic_id(Uuid::from_bytes(topic.id.0))
                    .with_num_partitions(partitions)
                    .with_replication_factor(1)
                    .with_configs(Some(topic_configs(&topic.config()))),
                Err(e) => result
                    .with_error_code(errors::code(&e))
                    .with_error_message(errors::message(&e)),
            }
        })
        .collect();
    CreateTopicsResponse::default().with_topics(topics)
}

fn topic_configs(config: &strata_log::TopicConfig) -> Vec<CreatableTopicConfigs> {
    config::TOPIC_CONFIGS
        .iter()
        .map(|key| {
            let (value, overridden) = config.value(key);
            // The source DescribeConfigs reports: its first synonym's.
            let source =
                synonyms::for_topic(key, &value, overridden, config.broker_default(key.name))
                    .first()
                    .map_or(synonyms::SOURCE_DEFAULT, |s| s.source);
            CreatableTopicConfigs::default()
                .with_name(text(key.name))
                .with_value(Some(text(value)))
                .with_config_source(source)
        })
        .collect()
}

pub fn delete_topics(broker: &Arc<Broker>, request: DeleteTopicsRequest) -> DeleteTopicsResponse {
    let mut wanted: Vec<(Option<TopicName>, Uuid)> = request
        .topic_names
        .into_iter()
        .map(|n| (Some(n), Uuid::nil()))
        .collect();
    wanted.extend(request.topics.into_iter().map(|t| (t.name, t.topic_id)));
    let responses = wanted
        .into_iter()
        .map(|(name, id)| {
            let name = name.filter(|n| !n.is_empty()).or_else(|| {
                let topic = broker
                    .store
                    .registry()
                    .topic_by_id(TopicId(*id.as_bytes()))?;
                Some(TopicName(text(topic.name.clone())))
            });
            let result = DeletableTopicResult::default()
                .with_name(name.clone())
                .with_topic_id(id);
            let Some(name) = name else {
                return result.with_error_code(ResponseError::UnknownTopicId.code());
            };
            if is_internal(&name) {
                return result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(text("internal topics cannot be deleted")));
            }
            match broker.store.delete_topic(&name) {
                Ok(deleted) => result.with_topic_id(Uuid::from_bytes(deleted.0)),
                Err(e) => result
                    .with_error_code(errors::code(&e))
                    .with_error_message(errors::message(&e)),
            }
        })
        .collect();
    DeleteTopicsResponse::default().with_responses(responses)
}

pub fn create_partitions(
    broker: &Arc<Broker>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let results = request
        .topics
        .into_iter()
        .map(|t| {
            let result = CreatePartitionsTopicResult::default().with_name(t.name.clone());
            if let Some(reason) = assignments_error(broker, &t) {
                return result
                    .with_error_code(ResponseError::InvalidReplicaAssignment.code())
                    .with_error_message(Some(text(reason)));
            }
            match broker
                .store
                .create_partitions(&t.name, t.count, request.validate_only)
            {
                Ok(()) => result,
                Err(e) => result
                    .with_error_code(errors::code(&e))
                    .with_error_message(errors::message(&e)),
            }
        })
        .collect();
    CreatePartitionsResponse::default().with_results(results)
}

/// What is wrong with a CreatePartitions request's explicit replica
/// assignments, checked as Kafka's controller checks them: one assignment
/// per new partition, each naming registered brokers, each once, as many as
/// the topic's replication factor (1 here). Unknown topics and counts that do
/// not grow the topic are left to the store's own errors, which come first.
fn assignments_error(broker: &Broker, topic: &CreatePartitionsTopic) -> Option<String> {
    let assignments = topic.assignments.as_ref()?;
    let current = broker.store.topic(&topic.name)?.partition_count();
    if topic.count <= current {
        return None;
    }
    let additional = topic.count - current;
    if usize::try_from(additional).ok() != Some(assignments.len()) {
        return Some(format!(
            "attempted to add {additional} additional partition(s), but {} assignment(s) were specified",
            assignments.len()
        ));
    }
    for assignment in assignments {
        let mut ids: Vec<i32> = assignment.broker_ids.iter().map(|b| b.0).collect();
        if ids.is_empty() {
            return Some("the manual partition assignment includes an empty replica list".into());
        }
        ids.sort_unstable();
        let mut previous = None;
        for id in &ids {
            if *id != broker.options.node_id {
                return Some(format!(
                    "the manual partition assignment includes broker {id}, but no such broker is registered"
                ));
            }
            if previous == Some(*id) {
                return Some(format!(
                    "the manual partition assignment includes the broker {id} more than once"
                ));
            }
            previous = Some(*id);
        }
        if ids.len() != 1 {
            return Some(format!(
                "the manual partition assignment includes a partition with {} replica(s), but previous partitions have 1 replica(s)",
                ids.len()
            ));
        }
    }
    None
}

pub fn delete_records(
    broker: &Arc<Broker>,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.store.topic(&t.name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let result = DeleteRecordsPartitionResult::default()
                        .with_partition_index(p.partition_index);
                    let Some(partition) = topic
                        .as_ref()
                        .and_then(|topic| topic.partition(p.partition_index))
                    else {
                        return result
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_low_watermark(-1);
                    };
                    match broker.store.delete_records(&partition, p.offset) {
                        Ok(low) => result.with_low_watermark(low),
                        Err(e) => result
                            .with_error_code(errors::code(&e))
                            .with_low_watermark(-1),
                    }
                })
                .collect();
            DeleteRecordsTopicResult::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DeleteRecordsResponse::default().with_topics(topics)
}

pub fn describe_cluster(
    broker: &Arc<Broker>,
    _request: DescribeClusterRequest,
) -> DescribeClusterResponse {
    let options = &broker.options;
    DescribeClusterResponse::default()
        .with_cluster_id(text(options.cluster_id.clone()))
        .with_controller_id(BrokerId(options.node_id))
        .with_brokers(vec![DescribeClusterBroker::default()
            .with_broker_id(BrokerId(options.node_id))
            .with_host(text(options.advertised_host.clone()))
            .with_port(options.advertised_port)])
        .with_cluster_authorized_operations(OPERATIONS_OMITTED)
}
