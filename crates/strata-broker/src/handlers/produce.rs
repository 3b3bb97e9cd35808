//! Produce: validate each partition's batch, queue it for the WAL in
//! arrival order, answer once it is durable (or at once for acks=0).

use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::produce_request::PartitionProduceData;
use kafka_protocol::messages::produce_response::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
};
use kafka_protocol::messages::{ProduceRequest, ProduceResponse, ResponseKind};
use kafka_protocol::ResponseError;
use strata_log::{PendingBatch, Topic};
use strata_protocol::batch::{split_batches, validate_crc};
use strata_protocol::records::require_keys;
use strata_protocol::BatchError;

use super::{text, PendingBody};
use crate::{errors, Broker};

/// Limit on decompressed records when a batch must be opened (compacted topics).
const DECOMPRESS_LIMIT: usize = 64 * 1024 * 1024;

/// Where each partition's answer comes from.
enum Slot {
    /// Refused before the log saw it.
    Refused(PartitionProduceResponse),
    /// Queued; its result is the next one from the ticket.
    Queued {
        index: i32,
        bytes: usize,
        records: u64,
    },
}

/// Validates and queues the request; the returned future is its answer
/// (none for acks=0).
pub async fn start(broker: &Arc<Broker>, request: ProduceRequest) -> PendingBody {
    let mut pending = Vec::new();
    let mut topics = Vec::with_capacity(request.topic_data.len());
    for topic_data in request.topic_data {
        let topic = if topic_data.name.is_empty() {
            broker
                .store
                .registry()
                .topic_by_id(strata_log::TopicId(*topic_data.topic_id.as_bytes()))
        } else {
            broker.store.topic(&topic_data.name)
        };
        let slots: Vec<Slot> = topic_data
            .partition_data
            .into_iter()
            .map(|data| match validate(topic.as_deref(), data) {
                Ok((index, records, batch)) => {
                    let bytes = batch.batch.len();
                    pending.push(batch);
                    Slot::Queued {
                        index,
                        bytes,
                        records,
                    }
                }
                Err(refused) => Slot::Refused(*refused),
            })
            .collect();
        let label = topic.as_ref().map(|t| t.name.clone()).unwrap_or_default();
        topics.push((topic_data.name, topic_data.topic_id, label, slots));
    }
    let ticket = broker.store.submit(pending).await;
    let acks = request.acks;
    let broker = Arc::clone(broker);
    Box::pin(async move {
        let mut results = ticket.wait().await.into_iter();
        let responses: Vec<TopicProduceResponse> = topics
            .into_iter()
            .map(|(name, topic_id, label, slots)| {
                let partition_responses = slots
                    .into_iter()
                    .map(|slot| match slot {
                        Slot::Refused(response) => response,
                        Slot::Queued {
                            index,
                            bytes,
                            records,
                        } => {
                            let result = results.next();
                            if matches!(result, Some(Ok(_))) {
                                broker.topic_labels.record_in(&label, bytes, records);
                            }
                            answer(index, result)
                        }
                    })
                    .collect();
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_topic_id(topic_id)
                    .with_partition_responses(partition_responses)
            })
            .collect();
        if acks == 0 {
            return None;
        }
        Some(ResponseKind::Produce(
            ProduceResponse::default().with_responses(responses),
        ))
    })
}

fn answer(
    index: i32,
    result: Option<Result<strata_log::Appended, strata_log::LogError>>,
) -> PartitionProduceResponse {
    let response = PartitionProduceResponse::default().with_index(index);
    match result {
        Some(Ok(appended)) => response
            .with_base_offset(appended.base_offset)
            .with_log_append_time_ms(appended.log_append_time_ms)
            .with_log_start_offset(appended.log_start),
        Some(Err(e)) => response
            .with_error_code(errors::code(&e))
            .with_error_message(errors::message(&e))
            .with_base_offset(-1),
        None => response
            .with_error_code(ResponseError::KafkaStorageError.code())
            .with_base_offset(-1),
    }
}

fn refused(index: i32, error: ResponseError, message: String) -> Box<PartitionProduceResponse> {
    Box::new(
        PartitionProduceResponse::default()
            .with_index(index)
            .with_error_code(error.code())
            .with_error_message(Some(text(message)))
            .with_base_offset(-1),
    )
}

/// Checks one partition's records and makes them a pending batch.
fn validate(
    topic: Option<&Topic>,
    data: PartitionProduceData,
) -> Result<(i32, u64, PendingBatch), Box<PartitionProduceResponse>> {
    let index = data.index;
    let unknown = || {
        refused(
            index,
            ResponseError::UnknownTopicOrPartition,
            "unknown topic or partition".to_string(),
        )
    };
    let topic = topic.ok_or_else(unknown)?;
    let partition = topic.partition(index).ok_or_else(unknown)?;
    let config = topic.config();
    let records: Bytes = data.records.unwrap_or_default();
    let batch_error = |e: BatchError| refused(index, e.response_error(), e.to_string());
    let batches = split_batches(&records).map_err(batch_error)?;
    if batches.len() != 1 {
        return Err(refused(
            index,
            ResponseError::InvalidRecord,
            format!(
                "a produce request must carry exactly one record batch per partition, got {}",
                batches.len()
            ),
        ));
    }
    for (header, range) in &batches {
        let bytes = records.get(range.clone()).ok_or_else(unknown)?;
        validate_crc(bytes, header).map_err(batch_error)?;
        if header.total_len > config.max_message_bytes {
            return Err(batch_error(BatchError::TooLarge {
                size: header.total_len,
                limit: config.max_message_bytes,
            }));
        }
        if config.compact {
            if let Err(e) = require_keys(bytes, header, DECOMPRESS_LIMIT) {
                let mut response = refused(
                    index,
                    e.response_error(),
                    "compacted topic requires keys".to_string(),
                );
                if let BatchError::MissingKeys { indexes } = e {
                    response.record_errors = indexes
                        .into_iter()
                        .map(|record| {
                            BatchIndexAndErrorMessage::default()
                                .with_batch_index(record)
                                .with_batch_index_error_message(Some(text("record has no key")))
                        })
                        .collect();
                }
                return Err(response);
            }
        }
    }
    let record_count = batches
        .iter()
        .map(|(header, _)| u64::try_from(header.record_count).unwrap_or(0))
        .sum();
    Ok((
        index,
        record_count,
        PendingBatch {
            partition,
            batch: records,
            log_append_time: config.log_append_time,
        },
    ))
}
