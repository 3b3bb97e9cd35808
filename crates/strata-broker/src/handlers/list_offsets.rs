//! ListOffsets: earliest, latest, max timestamp, and the first offset whose
//! timestamp is at or after a given time.

use std::sync::Arc;

use kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsTopicResponse,
};
use kafka_protocol::messages::{ListOffsetsRequest, ListOffsetsResponse};
use kafka_protocol::ResponseError;
use strata_log::PartitionLog;

use crate::{errors, Broker};

const LATEST: i64 = -1;
const EARLIEST: i64 = -2;
const MAX_TIMESTAMP: i64 = -3;
const EARLIEST_LOCAL: i64 = -4;
const LATEST_TIERED: i64 = -5;

pub fn handle(
    broker: &Arc<Broker>,
    version: i16,
    request: ListOffsetsRequest,
) -> ListOffsetsResponse {
    // read_committed consumers see "latest" as the last stable offset.
    let committed = request.isolation_level == 1;
    let topics = request
        .topics
        .into_iter()
        .map(|t| {
            let topic = broker.store.topic(&t.name);
            let partitions = t
                .partitions
                .into_iter()
                .map(|p| {
                    let response = ListOffsetsPartitionResponse::default()
                        .with_partition_index(p.partition_index);
                    match topic
                        .as_ref()
                        .and_then(|topic| topic.partition(p.partition_index))
                    {
                        Some(partition) => {
                            lookup(&partition, version, committed, p.timestamp, response)
                        }
                        None => response
                            .with_error_code(ResponseError::UnknownTopicOrPartition.code())
                            .with_offset(-1)
                            .with_timestamp(-1),
                    }
                })
                .collect();
            ListOffsetsTopicResponse::default()
                .with_name(t.name)
                .with_partitions(partitions)
        })
        .collect();
    ListOffsetsResponse::default().with_topics(topics)
}

fn lookup(
    partition: &PartitionLog,
    version: i16,
    committed: bool,
    timestamp: i64,
    response: ListOffsetsPartitionResponse,
) -> ListOffsetsPartitionResponse {
    let (log_start, high_watermark, stable) = partition.stable_bounds();
    let high_watermark = if committed { stable } else { high_watermark };
    let found = match timestamp {
        LATEST => Ok(Some((high_watermark, -1))),
        EARLIEST | EARLIEST_LOCAL => Ok(Some((log_start, -1))),
        LATEST_TIERED => Ok(Some((-1, -1))),
        MAX_TIMESTAMP => partition.offset_of_max_timestamp(),
        t => partition.offset_for_timestamp(t),
    };
    match found {
        Ok(Some((offset, timestamp))) => {
            let response = response.with_offset(offset).with_timestamp(timestamp);
            // The field exists from v4 on; older versions must leave it unset.
            if version >= 4 {
                response.with_leader_epoch(strata_log::append::LEADER_EPOCH)
            } else {
                response
            }
        }
        Ok(None) => response.with_offset(-1).with_timestamp(-1),
        Err(e) => response
            .with_error_code(errors::code(&e))
            .with_offset(-1)
            .with_timestamp(-1),
    }
}
