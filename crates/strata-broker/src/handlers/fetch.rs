//! Fetch: read each partition from its offset, and when there is less than
//! `min_bytes`, wait — woken by new durable data, not by polling — until
//! there is enough or `max_wait_ms` has passed. An answer's record bytes
//! hold part of the broker-wide [`crate::fetch_memory::FetchMemory`] budget until they are sent:
//! a read takes at most what is free, and waits while nothing is.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use kafka_protocol::messages::fetch_request::FetchTopic;
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchableTopicResponse, PartitionData,
};
use kafka_protocol::messages::{FetchRequest, FetchResponse, ProducerId};
use kafka_protocol::ResponseError;
use strata_log::partition::Isolation;
use strata_log::read::FirstBatch;
use strata_log::{LogError, Topic, TopicId};
use tokio::time::Instant;

use crate::fetch_memory::MemoryHold;
use crate::{errors, Broker};

/// Upper bound on a long poll, whatever the client asks.
const MAX_WAIT_CAP: Duration = Duration::from_secs(30);
/// Upper bound on one response's record bytes (Kafka's broker `fetch.max.bytes`).
const MAX_BYTES_CAP: usize = 55 * 1024 * 1024;

/// Answers a fetch, with the share of the fetch memory budget its records hold.
pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    request: FetchRequest,
) -> (FetchResponse, MemoryHold) {
    let wait =
        Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT_CAP);
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let mut appended = broker.store.subscribe();
    loop {
        appended.borrow_and_update();
        let room = broker.fetch_memory.wait_for_room().await;
        let (response, bytes, errored) = read_all(broker, version, &request, room);
        if bytes >= min_bytes.max(1) || errored || Instant::now() >= deadline {
            return hold(broker, version, &request, response, bytes).await;
        }
        tokio::select! {
            changed = appended.changed() => if changed.is_err() {
                return hold(broker, version, &request, response, bytes).await;
            },
            () = tokio::time::sleep_until(deadline) => {}
        }
    }
}

/// Holds the budget for an answer's `bytes`. If another fetch took the
/// room first (or the first batch alone was larger than the room), the
/// answer is dropped, the room is waited for holding nothing, and the
/// partitions are read again within it.
async fn hold(
    broker: &Broker,
    version: i16,
    request: &FetchRequest,
    response: FetchResponse,
    bytes: usize,
) -> (FetchResponse, MemoryHold) {
    if let Some(held) = broker.fetch_memory.try_hold(bytes) {
        return (response, held);
    }
    drop(response);
    let (held, room) = broker.fetch_memory.hold(bytes).await;
    let (response, _, _) = read_all(broker, version, request, room);
    (response, held)
}

/// One pass over every requested partition, reading at most `room` record
/// bytes (beyond the request's own limits): the response, the record bytes
/// in it, and whether any partition had an error (which answers at once).
fn read_all(
    broker: &Broker,
    version: i16,
    request: &FetchRequest,
    room: usize,
) -> (FetchResponse, usize, bool) {
    let mut budget = usize::try_from(request.max_bytes)
        .unwrap_or(0)
        .min(MAX_BYTES_CAP)
        .min(room);
    let mut total = 0;
    let mut errored = false;
    let mut responses = Vec::with_capacity(request.topics.len());
    let isolation = if request.isolation_level == 1 {
        Isolation::ReadCommitted
    } else {
        Isolation::ReadUncommitted
    };
    for fetch_topic in &request.topics {
        let topic = find_topic(broker, version, fetch_topic);
        let partitions = fetch_topic
            .partitions
            .iter()
            .map(|p| {
                let data = PartitionData::default()
                    .with_partition_index(p.partition)
                    .with_aborted_transactions(Some(Vec::new()));
                let Some(partition) = topic.as_ref().and_then(|t| t.partition(p.partition)) else {
                    errored = true;
                    let code = if version >= 13 {
                        ResponseError::UnknownTopicId
                    } else {
                        ResponseError::UnknownTopicOrPartition
                    };
                    return data
                        .with_error_code(code.code())
                        .with_high_watermark(-1)
                        .with_last_stable_offset(-1);
                };
                let limit = usize::try_from(p.partition_max_bytes)
                    .unwrap_or(0)
                    .min(budget);
                // KIP-74: until a partition has answered with data, the first
                // batch is served even if it exceeds the limits; after that,
                // only batches that fit.
                let first = if total == 0 {
                    FirstBatch::Always
                } else {
                    FirstBatch::IfItFits
                };
                match partition.read_limited(p.fetch_offset, limit, isolation, first) {
                    Ok(read) => {
                        total += read.records.len();
                        budget = budget.saturating_sub(read.records.len());
                        let aborted = read
                            .aborted
                            .iter()
                            .map(|a| {
                                AbortedTransaction::default()
                                    .with_producer_id(ProducerId(a.producer_id))
                                    .with_first_offset(a.first_offset)
                            })
                            .collect();
                        data.with_high_watermark(read.high_watermark)
                            .with_last_stable_offset(read.last_stable_offset)
                            .with_aborted_transactions(Some(aborted))
                            .with_log_start_offset(read.log_start)
                            .with_records(Some(read.records))
                    }
                    Err(e) => {
                        errored = true;
                        let (log_start, high_watermark, stable) = partition.stable_bounds();
                        if !matches!(e, LogError::OffsetOutOfRange { .. }) {
                            tracing::warn!(error = %e, "fetch read failed");
                        }
                        data.with_error_code(errors::code(&e))
                            .with_high_watermark(high_watermark)
                            .with_last_stable_offset(stable)
                            .with_log_start_offset(log_start)
                    }
                }
            })
            .collect();
        responses.push(
            FetchableTopicResponse::default()
                .with_topic(fetch_topic.topic.clone())
                .with_topic_id(fetch_topic.topic_id)
                .with_partitions(partitions),
        );
    }
    (
        FetchResponse::default().with_responses(responses),
        total,
        errored,
    )
}

fn find_topic(broker: &Broker, version: i16, fetch_topic: &FetchTopic) -> Option<Arc<Topic>> {
    if version >= 13 {
        broker
            .store
            .registry()
            .topic_by_id(TopicId(*fetch_topic.topic_id.as_bytes()))
    } else {
        broker.store.topic(&fetch_topic.topic)
    }
}

/// Counts the record bytes a fetch answer sends, per topic.
pub fn record_traffic(broker: &Broker, response: &FetchResponse) {
    for topic in &response.responses {
        let bytes: usize = topic
            .partitions
            .iter()
            .map(|p| p.records.as_ref().map_or(0, Bytes::len))
            .sum();
        if bytes == 0 {
            continue;
        }
        if topic.topic.is_empty() {
            let id = TopicId(*topic.topic_id.as_bytes());
            if let Some(known) = broker.store.registry().topic_by_id(id) {
                broker.topic_labels.record_out(&known.name, bytes);
            }
        } else {
            broker.topic_labels.record_out(&topic.topic, bytes);
        }
    }
}
