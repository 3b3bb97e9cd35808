//! OffsetForLeaderEpoch: where a leader epoch ends. Consumers ask it to
//! check a committed or fetched position after a leader change (KIP-320).
//!
//! Strata has one leader epoch, 0, for every partition, from the log start
//! on; the answers are the ones a Kafka leader gives with that epoch cache.

use std::sync::Arc;

use kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderTopicResult,
};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use kafka_protocol::ResponseError;
use strata_log::append::LEADER_EPOCH;

use crate::Broker;

/// "No epoch" in requests and answers.
const UNDEFINED_EPOCH: i32 = -1;
const UNDEFINED_OFFSET: i64 = -1;

pub fn handle(
    broker: &Arc<Broker>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.store.topic(&t.topic);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let answer = EpochEndOffset::default().with_partition(p.partition);
                    let Some(log) = topic
                        .as_ref()
                        .and_then(|topic| topic.partition(p.partition))
                    else {
                        return answer
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code());
                    };
                    if let Some(error) = check_current_epoch(p.current_leader_epoch) {
                        return answer.with_error_code(error.code());
                    }
                    let (log_start, high_watermark) = log.bounds();
                    let (epoch, offset) = end_of_epoch(p.leader_epoch, log_start, high_watermark);
                    answer.with_leader_epoch(epoch).with_end_offset(offset)
                })
                .collect();
            OffsetForLeaderTopicResult::default()
                .with_topic(t.topic)
                .with_partitions(partitions)
        })
        .collect();
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// The client's idea of the current epoch against the broker's (-1: not checked).
fn check_current_epoch(current: i32) -> Option<ResponseError> {
    if current == UNDEFINED_EPOCH || current == LEADER_EPOCH {
        None
    } else if current > LEADER_EPOCH {
        Some(ResponseError::UnknownLeaderEpoch)
    } else {
        Some(ResponseError::FencedLeaderEpoch)
    }
}

/// `(epoch, end offset)` for a requested epoch when epoch 0 started at the
/// log start and is still being written.
fn end_of_epoch(requested: i32, log_start: i64, high_watermark: i64) -> (i32, i64) {
    if requested == UNDEFINED_EPOCH || requested > LEADER_EPOCH {
        // Unknown epoch: Kafka answers "undefined", without an error.
        (UNDEFINED_EPOCH, UNDEFINED_OFFSET)
    } else if requested == LEADER_EPOCH {
        (LEADER_EPOCH, high_watermark)
    } else {
        // Older than any epoch: the start of the first one.
        (requested, log_start)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn epochs_as_a_kafka_leader_at_epoch_zero_answers() {
        assert_eq!(end_of_epoch(0, 3, 10), (0, 10));
        assert_eq!(end_of_epoch(-1, 3, 10), (-1, -1));
        assert_eq!(end_of_epoch(5, 3, 10), (-1, -1));
        assert_eq!(end_of_epoch(-2, 3, 10), (-2, 3));
        assert_eq!(check_current_epoch(-1), None);
        assert_eq!(check_current_epoch(0), None);
        assert_eq!(
            check_current_epoch(1),
            Some(ResponseError::UnknownLeaderEpoch)
        );
        assert_eq!(
            check_current_epoch(-3),
            Some(ResponseError::FencedLeaderEpoch)
        );
    }
}
