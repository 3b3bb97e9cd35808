//! DescribeConfigs, AlterConfigs and IncrementalAlterConfigs for topics
//! (and a read-only view of the broker's own settings).

use std::collections::BTreeMap;
use std::sync::Arc;

use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse as IncrementalResult;
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, DescribeConfigsRequest, DescribeConfigsResponse,
    IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use kafka_protocol::ResponseError;
use strata_log::config::{self, split_list, ConfigType};
use strata_log::LogError;

use super::text;
use crate::{errors, Broker};

pub mod synonyms;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;

const OP_SET: i8 = 0;
const OP_DELETE: i8 = 1;
const OP_APPEND: i8 = 2;
const OP_SUBTRACT: i8 = 3;

pub fn describe(
    broker: &Arc<Broker>,
    _version: i16,
    request: DescribeConfigsRequest,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let wanted = |name: &str| {
                resource
                    .configuration_keys
                    .as_ref()
                    // No keys, or an empty list: every config, as Kafka.
                    .is_none_or(|keys| keys.is_empty() || keys.iter().any(|k| k.as_str() == name))
            };
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match resource.resource_type {
                RESOURCE_TOPIC => match broker.store.topic(&resource.resource_name) {
                    Some(topic) => {
                        let config = topic.config();
                        let entries = config::TOPIC_CONFIGS
                            .iter()
                            .filter(|key| wanted(key.name))
                            .map(|key| {
                                let (value, overridden) = config.value(key);
                                let synonyms = synonyms::for_topic(
                                    key,
                                    &value,
                                    overridden,
                                    config.broker_default(key.name),
                                );
                                entry(
                                    key.name,
                                    value,
                                    key.kind,
                                    false,
                                    synonyms,
                                    request.include_synonyms,
                                )
                            })
                            .collect();
                        result.with_configs(entries)
                    }
                    None => result
                        .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                        .with_error_message(Some(text(format!(
                            "topic {} does not exist",
                            resource.resource_name
                        )))),
                },
                RESOURCE_BROKER => {
                    let entries = broker_configs(broker)
                        .into_iter()
                        .filter(|(name, _, _, _)| wanted(name))
                        .map(|(name, value, kind, kafka_default)| {
                            let synonyms = synonyms::for_broker(name, &value, kafka_default);
                            entry(name, value, kind, true, synonyms, request.include_synonyms)
                        })
                        .collect();
                    result.with_configs(entries)
                }
                _ => result
                    .with_error_code(ResponseError::InvalidRequest.code())
                    .with_error_message(Some(text(
                        "only topic and broker configs can be described",
                    ))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

/// One config entry; its source is its first synonym's (DEFAULT_CONFIG
/// when it has none), and the synonyms are sent only when asked for.
fn entry(
    name: &str,
    value: String,
    kind: ConfigType,
    read_only: bool,
    synonyms: Vec<DescribeConfigsSynonym>,
    include_synonyms: bool,
) -> DescribeConfigsResourceResult {
    let source = synonyms
        .first()
        .map_or(synonyms::SOURCE_DEFAULT, |s| s.source);
    DescribeConfigsResourceResult::default()
        .with_name(text(name))
        .with_value(Some(text(value)))
        .with_read_only(read_only)
        .with_config_source(source)
        .with_config_type(kind as i8)
        .with_synonyms(if include_synonyms {
            synonyms
        } else {
            Vec::new()
        })
}

/// The broker settings reported: name, value, type and Kafka's default.
type BrokerConfig = (&'static str, String, ConfigType, Option<&'static str>);

fn broker_configs(broker: &Broker) -> Vec<BrokerConfig> {
    let o = &broker.options;
    let groups = broker.groups.options();
    let ms = |d: std::time::Duration| d.as_millis().to_string();
    vec![
        (
            "broker.id",
            o.node_id.to_string(),
            ConfigType::Int,
            Some("-1"),
        ),
        ("node.id", o.node_id.to_string(), ConfigType::Int, None),
        (
            "advertised.listeners",
            format!("PLAINTEXT://{}:{}", o.advertised_host, o.advertised_port),
            ConfigType::List,
            None,
        ),
        (
            "num.partitions",
            o.default_partitions.to_string(),
            ConfigType::Int,
            Some("1"),
        ),
        (
            "auto.create.topics.enable",
            o.auto_create_topics.to_string(),
            ConfigType::Boolean,
            Some("true"),
        ),
        (
            "socket.request.max.bytes",
            o.max_request_bytes.to_string(),
            ConfigType::Int,
            Some("104857600"),
        ),
        (
            "default.replication.factor",
            "1".to_string(),
            ConfigType::Int,
            Some("1"),
        ),
        (
            "message.max.bytes",
            "1048588".to_string(),
            ConfigType::Int,
            Some("1048588"),
        ),
        (
            "min.insync.replicas",
            "1".to_string(),
            ConfigType::Int,
            Some("1"),
        ),
        (
            "group.initial.rebalance.delay.ms",
            ms(groups.initial_rebalance_delay),
            ConfigType::Int,
            Some("3000"),
        ),
        (
            "group.min.session.timeout.ms",
            ms(groups.min_session_timeout),
            ConfigType::Int,
            Some("6000"),
        ),
        (
            "group.max.session.timeout.ms",
            ms(groups.max_session_timeout),
            ConfigType::Int,
            Some("1800000"),
        ),
        (
            "offsets.retention.minutes",
            (groups.offsets_retention.as_secs() / 60).to_string(),
            ConfigType::Int,
            Some("10080"),
        ),
        (
            "group.coordinator.rebalance.protocols",
            "classic".to_string(),
            ConfigType::List,
            Some("classic,consumer"),
        ),
    ]
}

pub fn alter(broker: &Arc<Broker>, request: AlterConfigsRequest) -> AlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let outcome = if resource.resource_type == RESOURCE_TOPIC {
                let overrides = resource
                    .configs
                    .iter()
                    .filter_map(|c| Some((c.name.to_string(), c.value.as_ref()?.to_string())))
                    .collect();
                broker.store.set_topic_config(
                    &resource.resource_name,
                    overrides,
                    request.validate_only,
                )
            } else {
                Err(LogError::InvalidConfig(
                    "only topic configs can be altered".to_string(),
                ))
            };
            let (code, message) = outcome_fields(&outcome);
            AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    AlterConfigsResponse::default().with_responses(responses)
}

pub fn incremental_alter(
    broker: &Arc<Broker>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let responses = request
        .resources
        .into_iter()
        .map(|resource| {
            let outcome = if resource.resource_type == RESOURCE_TOPIC {
                let ops: Vec<(String, i8, Option<String>)> = resource
                    .configs
                    .iter()
                    .map(|c| {
                        (
                            c.name.to_string(),
                            c.config_operation,
                            c.value.as_ref().map(ToString::to_string),
                        )
                    })
                    .collect();
                apply_incremental(broker, &resource.resource_name, &ops, request.validate_only)
            } else {
                Err(LogError::InvalidConfig(
                    "only topic configs can be altered".to_string(),
                ))
            };
            let (code, message) = outcome_fields(&outcome);
            IncrementalResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name)
                .with_error_code(code)
                .with_error_message(message)
        })
        .collect();
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

fn outcome_fields(outcome: &Result<(), LogError>) -> (i16, Option<StrBytes>) {
    match outcome {
        Ok(()) => (0, None),
        Err(e) => (errors::code(e), errors::message(e)),
    }
}

/// Applies SET, DELETE, APPEND and SUBTRACT to a topic's overrides.
fn apply_incremental(
    broker: &Broker,
    topic: &str,
    ops: &[(String, i8, Option<String>)],
    validate_only: bool,
) -> Result<(), LogError> {
    let current = broker
        .store
        .topic(topic)
        .ok_or(LogError::UnknownTopicOrPartition)?
        .config();
    let mut overrides: BTreeMap<String, String> = current.overrides.clone();
    for (name, op, value) in ops {
        let key = config::lookup(name)
            .ok_or_else(|| LogError::InvalidConfig(format!("unknown topic config {name:?}")))?;
        let value = value.clone().unwrap_or_default();
        match *op {
            OP_SET => {
                overrides.insert(name.clone(), value);
            }
            OP_DELETE => {
                overrides.remove(name);
            }
            OP_APPEND | OP_SUBTRACT if key.kind == ConfigType::List => {
                let (existing, _) = current.value(key);
                let mut items: Vec<String> = split_list(overrides.get(name).unwrap_or(&existing))
                    .into_iter()
                    .map(str::to_string)
                    .collect();
                for item in split_list(&value) {
                    if *op == OP_APPEND {
                        if !items.iter().any(|i| i == item) {
                            items.push(item.to_string());
                        }
                    } else {
                        items.retain(|i| i != item);
                    }
                }
                overrides.insert(name.clone(), items.join(","));
            }
            OP_APPEND | OP_SUBTRACT => {
                return Err(LogError::InvalidConfig(format!(
                    "{name} is not a list; APPEND and SUBTRACT apply only to lists"
                )))
            }
            other => {
                return Err(LogError::InvalidConfig(format!(
                    "unknown config operation {other}"
                )))
            }
        }
    }
    broker
        .store
        .set_topic_config(topic, overrides, validate_only)
}
