//! Transactions: AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn.

use std::sync::Arc;

use kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnTopic;
use kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResult, AddPartitionsToTxnTopicResult,
};
use kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequestPartition;
use kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;
use strata_txn::state::PendingOffset;

use super::text;
use crate::Broker;

/// The code a client at `version` gets for `code`: PRODUCER_FENCED (KIP-588)
/// only reaches request versions from `knows_fenced` on; older ones get
/// INVALID_PRODUCER_EPOCH, which is what they know it as (Kafka does the same).
pub fn fenced_for(version: i16, knows_fenced: i16, code: i16) -> i16 {
    if code == ResponseError::ProducerFenced.code() && version < knows_fenced {
        ResponseError::InvalidProducerEpoch.code()
    } else {
        code
    }
}

/// The first version of AddPartitionsToTxn, AddOffsetsToTxn and EndTxn
/// that knows PRODUCER_FENCED.
const FENCED_FROM: i16 = 2;

fn wanted(topics: &[AddPartitionsToTxnTopic]) -> Vec<(String, i32)> {
    topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| (t.name.to_string(), *p)))
        .collect()
}

fn topic_results(
    version: i16,
    results: Vec<((String, i32), i16)>,
) -> Vec<AddPartitionsToTxnTopicResult> {
    let mut by_topic: Vec<AddPartitionsToTxnTopicResult> = Vec::new();
    for ((topic, partition), code) in results {
        let result = AddPartitionsToTxnPartitionResult::default()
            .with_partition_index(partition)
            .with_partition_error_code(fenced_for(version, FENCED_FROM, code));
        match by_topic.iter_mut().find(|t| t.name.as_str() == topic) {
            Some(t) => t.results_by_partition.push(result),
            None => by_topic.push(
                AddPartitionsToTxnTopicResult::default()
                    .with_name(TopicName(text(topic)))
                    .with_results_by_partition(vec![result]),
            ),
        }
    }
    by_topic
}

pub async fn add_partitions(
    broker: &Arc<Broker>,
    version: i16,
    request: AddPartitionsToTxnRequest,
) -> AddPartitionsToTxnResponse {
    if version <= 3 {
        let results = broker
            .txns
            .add_partitions(
                &request.v3_and_below_transactional_id,
                request.v3_and_below_producer_id.0,
                request.v3_and_below_producer_epoch,
                wanted(&request.v3_and_below_topics),
            )
            .await;
        return AddPartitionsToTxnResponse::default()
            .with_results_by_topic_v3_and_below(topic_results(version, results));
    }
    let mut results = Vec::with_capacity(request.transactions.len());
    for txn in request.transactions {
        let outcome = broker
            .txns
            .add_partitions(
                &txn.transactional_id,
                txn.producer_id.0,
                txn.producer_epoch,
                wanted(&txn.topics),
            )
            .await;
        results.push(
            AddPartitionsToTxnResult::default()
                .with_transactional_id(txn.transactional_id)
                .with_topic_results(topic_results(version, outcome)),
        );
    }
    AddPartitionsToTxnResponse::default().with_results_by_transaction(results)
}

pub async fn add_offsets(
    broker: &Arc<Broker>,
    version: i16,
    request: AddOffsetsToTxnRequest,
) -> AddOffsetsToTxnResponse {
    let outcome = broker
        .txns
        .add_offsets(
            &request.transactional_id,
            request.producer_id.0,
            request.producer_epoch,
            &request.group_id,
        )
        .await;
    let code = outcome.err().map_or(0, |e| e.code());
    AddOffsetsToTxnResponse::default().with_error_code(fenced_for(version, FENCED_FROM, code))
}

pub async fn offset_commit(
    broker: &Arc<Broker>,
    request: TxnOffsetCommitRequest,
) -> TxnOffsetCommitResponse {
    // As Kafka: a partition whose metadata is over the limit is refused
    // alone; the others are committed.
    let too_large = |p: &TxnOffsetCommitRequestPartition| {
        p.committed_metadata
            .as_ref()
            .is_some_and(|m| m.len() > strata_groups::MAX_METADATA_BYTES)
    };
    let offsets = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .filter(|p| !too_large(p))
                .map(|p| PendingOffset {
                    group: request.group_id.to_string(),
                    topic: t.name.to_string(),
                    partition: p.partition_index,
                    offset: p.committed_offset,
                    leader_epoch: p.committed_leader_epoch,
                    metadata: p.committed_metadata.as_ref().map(ToString::to_string),
                })
        })
        .collect();
    let code = broker
        .txns
        .commit_offsets(
            &request.transactional_id,
            request.producer_id.0,
            request.producer_epoch,
            offsets,
        )
        .await
        .err()
        .map_or(0, |e| e.code());
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            TxnOffsetCommitResponseTopic::default()
                .with_name(t.name)
                .with_partitions(
                    t.partitions
                        .into_iter()
                        .map(|p| {
                            let code = if too_large(&p) {
                                ResponseError::OffsetMetadataTooLarge.code()
                            } else {
                                code
                            };
                            TxnOffsetCommitResponsePartition::default()
                                .with_partition_index(p.partition_index)
                                .with_error_code(code)
                        })
                        .collect(),
                )
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}

pub async fn end(broker: &Arc<Broker>, version: i16, request: EndTxnRequest) -> EndTxnResponse {
    let outcome = broker
        .txns
        .end_txn(
            &request.transactional_id,
            request.producer_id.0,
            request.producer_epoch,
            request.committed,
        )
        .await;
    let code = outcome.err().map_or(0, |e| e.code());
    EndTxnResponse::default()
        .with_error_code(fenced_for(version, FENCED_FROM, code))
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1)
}
