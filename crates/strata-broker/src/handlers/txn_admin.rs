//! Read-only transaction administration: DescribeProducers (per-partition
//! producer state), DescribeTransactions and ListTransactions (the
//! transaction coordinator's transactional ids).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use kafka_protocol::messages::describe_producers_response::{
    PartitionResponse, ProducerState, TopicResponse,
};
use kafka_protocol::messages::describe_transactions_response::{
    TopicData, TransactionState as DescribedState,
};
use kafka_protocol::messages::list_transactions_response::TransactionState as ListedState;
use kafka_protocol::messages::{
    DescribeProducersRequest, DescribeProducersResponse, DescribeTransactionsRequest,
    DescribeTransactionsResponse, ListTransactionsRequest, ListTransactionsResponse, ProducerId,
    TopicName, TransactionalId,
};
use kafka_protocol::ResponseError;
use strata_log::PartitionLog;
use strata_txn::state::TxnState;

use super::text;
use crate::Broker;

/// Kafka's "not known" for a producer's last timestamp, coordinator epoch and
/// open transaction.
const UNKNOWN: i64 = -1;

/// The state names ListTransactions filters on (Kafka's, including the ones
/// Strata never reports).
const STATE_NAMES: &[&str] = &[
    "Empty",
    "Ongoing",
    "PrepareCommit",
    "PrepareAbort",
    "CompleteCommit",
    "CompleteAbort",
    "Dead",
    "PrepareEpochFence",
];

pub fn describe_producers(
    broker: &Arc<Broker>,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.store.topic(&t.name);
            let partitions = t
                .partition_indexes
                .into_iter()
                .map(|index| {
                    let answer = PartitionResponse::default().with_partition_index(index);
                    match topic.as_ref().and_then(|topic| topic.partition(index)) {
                        Some(log) => answer.with_active_producers(producers(&log)),
                        None => answer
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_error_message(None),
                    }
                })
                .collect();
            TopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    DescribeProducersResponse::default().with_topics(topics)
}

/// The producers a partition remembers, lowest id first.
fn producers(log: &PartitionLog) -> Vec<ProducerState> {
    let state = log.state();
    let mut ids: Vec<&i64> = state.producers.producers.keys().collect();
    ids.sort();
    ids.into_iter()
        .filter_map(|id| {
            let entry = state.producers.producers.get(id)?;
            Some(
                ProducerState::default()
                    .with_producer_id(ProducerId(*id))
                    .with_producer_epoch(i32::from(entry.epoch))
                    .with_last_sequence(entry.batches.back().map_or(-1, |b| b.last_seq))
                    .with_last_timestamp(UNKNOWN)
                    .with_coordinator_epoch(-1)
                    .with_current_txn_start_offset(
                        state.producers.open.get(id).copied().unwrap_or(UNKNOWN),
                    ),
            )
        })
        .collect()
}

pub async fn describe_transactions(
    broker: &Arc<Broker>,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let states: BTreeMap<String, TxnState> = broker.txns.states().await.into_iter().collect();
    let described = request
        .transactional_ids
        .into_iter()
        .map(|id| {
            let answer = DescribedState::default().with_transactional_id(id.clone());
            if id.is_empty() {
                return answer.with_error_code(ResponseError::InvalidRequest.code());
            }
            let Some(state) = states.get(id.as_str()) else {
                return answer.with_error_code(ResponseError::TransactionalIdNotFound.code());
            };
            let mut topics: Vec<TopicData> = Vec::new();
            for (topic, partition) in &state.partitions {
                match topics.iter_mut().find(|t| t.topic.as_str() == topic) {
                    Some(t) => t.partitions.push(*partition),
                    None => topics.push(
                        TopicData::default()
                            .with_topic(TopicName(text(topic.clone())))
                            .with_partitions(vec![*partition]),
                    ),
                }
            }
            answer
                .with_transaction_state(text(state.status_name()))
                .with_transaction_timeout_ms(state.timeout_ms)
                .with_transaction_start_time_ms(state.started_ms)
                .with_producer_id(ProducerId(state.producer_id))
                .with_producer_epoch(state.epoch)
                .with_topics(topics)
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(described)
}

pub async fn list_transactions(
    broker: &Arc<Broker>,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let mut response = ListTransactionsResponse::default();
    let pattern = match request.transactional_id_pattern.as_deref() {
        None | Some("") => None,
        Some(p) => match regex::Regex::new(&format!("^(?:{p})$")) {
            Ok(r) => Some(r),
            Err(_) => {
                return response.with_error_code(ResponseError::InvalidRegularExpression.code())
            }
        },
    };
    let mut states: HashSet<&str> = HashSet::new();
    for name in &request.state_filters {
        match STATE_NAMES.iter().find(|s| **s == name.as_str()) {
            Some(s) => {
                states.insert(s);
            }
            None => response.unknown_state_filters.push(name.clone()),
        }
    }
    let producer_ids: HashSet<i64> = request.producer_id_filters.iter().map(|p| p.0).collect();
    let now = now_ms();
    response.transaction_states = broker
        .txns
        .states()
        .await
        .into_iter()
        .filter(|(id, state)| {
            (producer_ids.is_empty() || producer_ids.contains(&state.producer_id))
                && (request.state_filters.is_empty() || states.contains(state.status_name()))
                && (request.duration_filter < 0 || now - state.started_ms > request.duration_filter)
                && pattern.as_ref().is_none_or(|p| p.is_match(id))
        })
        .map(|(id, state)| {
            ListedState::default()
                .with_transactional_id(TransactionalId(text(id)))
                .with_producer_id(ProducerId(state.producer_id))
                .with_transaction_state(text(state.status_name()))
        })
        .collect();
    response
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}
