//! The records of `__transaction_state`: key the transactional id, value
//! its state. Written in Kafka's layout (TransactionLogKey/Value,
//! `strata_protocol::coordinator_records::txn`), with the open
//! transaction's groups and pending offsets in Strata's tagged fields;
//! read in that layout or in Strata's first one (key the id's UTF-8 bytes,
//! value the state as JSON), which data dirs written before still hold
//! until the coordinator rewrites them at startup.
//!
//! A Kafka value starts with its version's high byte, 0, and a JSON value
//! with `{`, so a value tells the layouts apart; a tombstone's key is
//! Kafka's if it reads as a TransactionLogKey, else the id's bytes.

use std::collections::BTreeSet;

use strata_protocol::coordinator_records::txn::{
    decode_key, encode_key, PendingOffsetRecord, TopicPartitions, TransactionLogValue,
};

use crate::state::{PendingOffset, Status, TxnState};

/// Which layout a record was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Kafka,
    /// Strata's first layout, before Kafka's (read only).
    Strata,
}

/// A record read back: the transactional id, its state (`None`: a
/// tombstone), and the layout.
pub type Decoded = (String, Option<TxnState>, Layout);

/// Kafka's status ids.
fn status_id(status: Status) -> i8 {
    match status {
        Status::Empty => 0,
        Status::Ongoing => 1,
        Status::PrepareCommit => 2,
        Status::PrepareAbort => 3,
        Status::CompleteCommit => 4,
        Status::CompleteAbort => 5,
    }
}

/// Kafka's Dead (6) and PrepareEpochFence (7) are states Strata never
/// writes: `None`.
fn status_of(id: i8) -> Option<Status> {
    Some(match id {
        0 => Status::Empty,
        1 => Status::Ongoing,
        2 => Status::PrepareCommit,
        3 => Status::PrepareAbort,
        4 => Status::CompleteCommit,
        5 => Status::CompleteAbort,
        _ => return None,
    })
}

/// A state's key and value in Kafka's layout; `None` when a string is too
/// long for its Kafka type.
pub fn encode(id: &str, state: &TxnState) -> Option<(Vec<u8>, Vec<u8>)> {
    let mut value = TransactionLogValue::new(
        state.producer_id,
        state.epoch,
        state.timeout_ms,
        status_id(state.status),
    );
    if state.status != Status::Empty || !state.partitions.is_empty() {
        let mut topics: Vec<TopicPartitions> = Vec::new();
        for (topic, partition) in &state.partitions {
            match topics.last_mut() {
                Some(last) if last.topic == *topic => last.partitions.push(*partition),
                _ => topics.push(TopicPartitions {
                    topic: topic.clone(),
                    partitions: vec![*partition],
                }),
            }
        }
        value.partitions = Some(topics);
    }
    value.last_update_ms = state.updated_ms;
    value.start_ms = state.started_ms;
    value.groups = state.groups.iter().cloned().collect();
    value.pending_offsets = state
        .pending_offsets
        .iter()
        .map(|o| PendingOffsetRecord {
            group: o.group.clone(),
            topic: o.topic.clone(),
            partition: o.partition,
            offset: o.offset,
            leader_epoch: o.leader_epoch,
            metadata: o.metadata.clone(),
        })
        .collect();
    Some((encode_key(id)?, value.encode()?))
}

/// Reads a record in either layout; `None` for one neither describes.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<Decoded> {
    let text = || String::from_utf8(key.to_vec()).ok();
    match value {
        Some(json) if json.first() == Some(&b'{') => {
            let state = serde_json::from_slice(json).ok()?;
            Some((text()?, Some(state), Layout::Strata))
        }
        Some(bytes) => {
            let state = from_kafka(TransactionLogValue::decode(bytes)?)?;
            Some((decode_key(key)?, Some(state), Layout::Kafka))
        }
        None => match decode_key(key) {
            Some(id) => Some((id, None, Layout::Kafka)),
            None => Some((text()?, None, Layout::Strata)),
        },
    }
}

fn from_kafka(value: TransactionLogValue) -> Option<TxnState> {
    Some(TxnState {
        producer_id: value.producer_id,
        epoch: value.producer_epoch,
        timeout_ms: value.timeout_ms,
        status: status_of(value.status)?,
        partitions: value
            .partitions
            .unwrap_or_default()
            .into_iter()
            .flat_map(|t| {
                let topic = t.topic;
                t.partitions.into_iter().map(move |p| (topic.clone(), p))
            })
            .collect::<BTreeSet<_>>(),
        groups: value.groups.into_iter().collect(),
        pending_offsets: value
            .pending_offsets
            .into_iter()
            .map(|o| PendingOffset {
                group: o.group,
                topic: o.topic,
                partition: o.partition,
                offset: o.offset,
                leader_epoch: o.leader_epoch,
                metadata: o.metadata,
            })
            .collect(),
        updated_ms: value.last_update_ms,
        started_ms: value.start_ms,
    })
}

#[cfg(test)]
mod tests;
