//! ListConfigResources (KIP-1142): the resources DescribeConfigs can be
//! asked about.
//!
//! v0 (once ListClientMetricsResources) lists client-metrics resources only.
//! v1 lists the types asked for (all of Kafka's when none are): every topic,
//! and this broker. Strata has no client-metrics subscriptions, group
//! configs or broker loggers, so those types list nothing. A type Kafka does
//! not list gets UNSUPPORTED_VERSION, as from Kafka.

use std::sync::Arc;

use kafka_protocol::messages::list_config_resources_response::ConfigResource;
use kafka_protocol::messages::{ListConfigResourcesRequest, ListConfigResourcesResponse};
use kafka_protocol::ResponseError;

use super::text;
use crate::Broker;

const TOPIC: i8 = 2;
const BROKER: i8 = 4;
const BROKER_LOGGER: i8 = 8;
const CLIENT_METRICS: i8 = 16;
const GROUP: i8 = 32;

/// The types v1 lists, as Kafka 4.1.
const LISTED: &[i8] = &[TOPIC, BROKER, BROKER_LOGGER, CLIENT_METRICS, GROUP];

pub fn list(
    broker: &Arc<Broker>,
    version: i16,
    request: ListConfigResourcesRequest,
) -> ListConfigResourcesResponse {
    let types: Vec<i8> = if version == 0 {
        vec![CLIENT_METRICS]
    } else if request.resource_types.is_empty() {
        LISTED.to_vec()
    } else {
        request.resource_types
    };
    if types.iter().any(|t| !LISTED.contains(t)) {
        return ListConfigResourcesResponse::default()
            .with_error_code(ResponseError::UnsupportedVersion.code());
    }
    let mut resources = Vec::new();
    if types.contains(&TOPIC) {
        let mut names: Vec<String> = broker
            .store
            .registry()
            .topics()
            .iter()
            .map(|t| t.name.clone())
            .collect();
        names.sort();
        resources.extend(names.into_iter().map(|name| {
            ConfigResource::default()
                .with_resource_name(text(name))
                .with_resource_type(TOPIC)
        }));
    }
    if types.contains(&BROKER) {
        resources.push(
            ConfigResource::default()
                .with_resource_name(text(broker.options.node_id.to_string()))
                .with_resource_type(BROKER),
        );
    }
    ListConfigResourcesResponse::default().with_config_resources(resources)
}
