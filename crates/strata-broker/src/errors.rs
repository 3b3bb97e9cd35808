//! Kafka error codes for log errors, in one place.

use kafka_protocol::ResponseError;
use strata_log::LogError;

/// The Kafka error a client gets for a log error.
pub fn code_for(error: &LogError) -> ResponseError {
    match error {
        LogError::InvalidConfig(_) => ResponseError::InvalidConfig,
        LogError::InvalidTopic(_) => ResponseError::InvalidTopicException,
        LogError::TopicExists(_) => ResponseError::TopicAlreadyExists,
        LogError::UnknownTopicOrPartition => ResponseError::UnknownTopicOrPartition,
        LogError::InvalidPartitions(_) => ResponseError::InvalidPartitions,
        LogError::OffsetOutOfRange { .. } => ResponseError::OffsetOutOfRange,
        LogError::Corrupt(_) => ResponseError::CorruptMessage,
        LogError::ShuttingDown => ResponseError::NotLeaderOrFollower,
        // Only compaction sees it; no client request does.
        LogError::CompactionPaused => ResponseError::UnknownServerError,
        LogError::OutOfOrderSequence { .. } => ResponseError::OutOfOrderSequenceNumber,
        LogError::ProducerFenced { .. } => ResponseError::InvalidProducerEpoch,
        LogError::Io { .. }
        | LogError::Wal(_)
        | LogError::Metadata { .. }
        | LogError::UnsupportedFormat { .. }
        | LogError::StorageUnavailable => ResponseError::KafkaStorageError,
    }
}

/// The numeric code for a log error.
pub fn code(error: &LogError) -> i16 {
    code_for(error).code()
}

/// An error message for the response, where the API carries one.
pub fn message(error: &LogError) -> Option<kafka_protocol::protocol::StrBytes> {
    Some(kafka_protocol::protocol::StrBytes::from_string(
        error.to_string(),
    ))
}
