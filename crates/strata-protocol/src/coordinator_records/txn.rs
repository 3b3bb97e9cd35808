//! `__transaction_state` records in Kafka's layout.
//!
//! ```text
//! key    version i16 0: TransactionLogKey  transactional id string
//! value  TransactionLogValue
//!          v0  producer id i64 | producer epoch i16 | timeout ms i32 | status i8 |
//!              partitions nullable array of (topic string | partition ids array of i32) |
//!              last update ms i64 | start ms i64
//!          v1  the same in compact forms (each partitions entry ends in a tagged
//!              section), then tagged fields: 0 previous producer id i64,
//!              1 next producer id i64, 2 client transaction version i16,
//!              and Strata's own (below)
//! ```
//! Status ids are Kafka's: 0 Empty, 1 Ongoing, 2 PrepareCommit,
//! 3 PrepareAbort, 4 CompleteCommit, 5 CompleteAbort, 6 Dead,
//! 7 PrepareEpochFence. Partitions are null in the Empty state.
//!
//! Strata's coordinator keeps two things Kafka keeps elsewhere: the groups
//! of the open transaction (Kafka adds their `__consumer_offsets`
//! partition instead) and the offsets committed in it (Kafka writes them to
//! `__consumer_offsets` as transactional records). They travel as tagged
//! fields, which Kafka's readers skip:
//!
//! ```text
//! tag 10000  groups           compact array of compact strings
//! tag 10001  pending offsets  compact array of: group compact string |
//!            topic compact string | partition i32 | offset i64 | leader epoch i32 |
//!            metadata compact nullable string | tagged fields
//! ```
//! A value is written at v0, as Kafka writes it before transaction
//! version 1, unless a tagged field is needed; then at v1.

use super::{Reader, Writer};

/// The only key version.
pub const TRANSACTION_LOG_KEY_VERSION: i16 = 0;
/// Tag of the open transaction's groups (Strata's).
pub const GROUPS_TAG: u32 = 10_000;
/// Tag of the offsets committed in the open transaction (Strata's).
pub const PENDING_OFFSETS_TAG: u32 = 10_001;

const PREVIOUS_PRODUCER_ID_TAG: u32 = 0;
const NEXT_PRODUCER_ID_TAG: u32 = 1;
const CLIENT_TRANSACTION_VERSION_TAG: u32 = 2;

/// The key bytes of a transactional id, or `None` if it is too long.
pub fn encode_key(transactional_id: &str) -> Option<Vec<u8>> {
    let mut w = Writer::new(TRANSACTION_LOG_KEY_VERSION);
    w.string(transactional_id);
    w.finish()
}

/// The transactional id of a key.
pub fn decode_key(bytes: &[u8]) -> Option<String> {
    let mut r = Reader::new(bytes);
    if r.i16()? != TRANSACTION_LOG_KEY_VERSION {
        return None;
    }
    let id = r.string()?;
    r.end()?;
    Some(id)
}

/// A transactional id's state (TransactionLogValue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TransactionLogValue {
    pub producer_id: i64,
    pub previous_producer_id: i64,
    pub next_producer_id: i64,
    pub producer_epoch: i16,
    pub timeout_ms: i32,
    pub status: i8,
    /// `None` (null) in the Empty state.
    pub partitions: Option<Vec<TopicPartitions>>,
    pub last_update_ms: i64,
    pub start_ms: i64,
    pub client_transaction_version: i16,
    /// Strata's: the groups whose offsets the open transaction commits.
    pub groups: Vec<String>,
    /// Strata's: the offsets committed in the open transaction.
    pub pending_offsets: Vec<PendingOffsetRecord>,
}

/// A topic's partitions in a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicPartitions {
    pub topic: String,
    pub partitions: Vec<i32>,
}

/// An offset committed inside a transaction (Strata's tagged field).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingOffsetRecord {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

impl TransactionLogValue {
    /// A value with Kafka's defaults for the fields Strata does not use.
    pub fn new(producer_id: i64, producer_epoch: i16, timeout_ms: i32, status: i8) -> Self {
        TransactionLogValue {
            producer_id,
            previous_producer_id: -1,
            next_producer_id: -1,
            producer_epoch,
            timeout_ms,
            status,
            partitions: None,
            last_update_ms: -1,
            start_ms: -1,
            client_transaction_version: 0,
            groups: Vec::new(),
            pending_offsets: Vec::new(),
        }
    }

    /// The tagged fields this value needs, in tag order.
    fn tagged(&self) -> Option<Vec<(u32, Vec<u8>)>> {
        let mut fields = Vec::new();
        if self.previous_producer_id != -1 {
            fields.push((
                PREVIOUS_PRODUCER_ID_TAG,
                self.previous_producer_id.to_be_bytes().to_vec(),
            ));
        }
        if self.next_producer_id != -1 {
            fields.push((
                NEXT_PRODUCER_ID_TAG,
                self.next_producer_id.to_be_bytes().to_vec(),
            ));
        }
        if self.client_transaction_version != 0 {
            fields.push((
                CLIENT_TRANSACTION_VERSION_TAG,
                self.client_transaction_version.to_be_bytes().to_vec(),
            ));
        }
        if !self.groups.is_empty() {
            let mut w = Writer::nested();
            w.compact_array_len(self.groups.len());
            for group in &self.groups {
                w.compact_string(group);
            }
            fields.push((GROUPS_TAG, w.finish()?));
        }
        if !self.pending_offsets.is_empty() {
            let mut w = Writer::nested();
            w.compact_array_len(self.pending_offsets.len());
            for o in &self.pending_offsets {
                w.compact_string(&o.group);
                w.compact_string(&o.topic);
                w.i32(o.partition);
                w.i64(o.offset);
                w.i32(o.leader_epoch);
                w.compact_nullable_string(o.metadata.as_deref());
                w.uvarint(0);
            }
            fields.push((PENDING_OFFSETS_TAG, w.finish()?));
        }
        Some(fields)
    }

    /// The value at v0, or at v1 when it has tagged fields; `None` if a
    /// string is too long for its Kafka type.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let tagged = self.tagged()?;
        let flexible = !tagged.is_empty();
        let mut w = Writer::new(i16::from(flexible));
        w.i64(self.producer_id);
        w.i16(self.producer_epoch);
        w.i32(self.timeout_ms);
        w.i8(self.status);
        match (&self.partitions, flexible) {
            (None, false) => w.i32(-1),
            (None, true) => w.uvarint(0),
            (Some(topics), false) => {
                w.array_len(topics.len());
                for t in topics {
                    w.string(&t.topic);
                    w.array_len(t.partitions.len());
                    t.partitions.iter().for_each(|p| w.i32(*p));
                }
            }
            (Some(topics), true) => {
                w.compact_array_len(topics.len());
                for t in topics {
                    w.compact_string(&t.topic);
                    w.compact_array_len(t.partitions.len());
                    t.partitions.iter().for_each(|p| w.i32(*p));
                    w.uvarint(0);
                }
            }
        }
        w.i64(self.last_update_ms);
        w.i64(self.start_ms);
        if flexible {
            w.tagged_fields(&tagged);
        }
        w.finish()
    }

    /// Reads v0 or v1.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes);
        let flexible = match r.i16()? {
            0 => false,
            1 => true,
            _ => return None,
        };
        let mut value = TransactionLogValue::new(r.i64()?, r.i16()?, r.i32()?, r.i8()?);
        value.partitions = read_partitions(&mut r, flexible)?;
        value.last_update_ms = r.i64()?;
        value.start_ms = r.i64()?;
        if flexible {
            r.tagged_fields(|tag, field| {
                match tag {
                    PREVIOUS_PRODUCER_ID_TAG => value.previous_producer_id = field.i64()?,
                    NEXT_PRODUCER_ID_TAG => value.next_producer_id = field.i64()?,
                    CLIENT_TRANSACTION_VERSION_TAG => {
                        value.client_transaction_version = field.i16()?;
                    }
                    GROUPS_TAG => value.groups = read_groups(field)?,
                    PENDING_OFFSETS_TAG => value.pending_offsets = read_pending_offsets(field)?,
                    _ => return Some(()),
                }
                field.end()
            })?;
        }
        r.end()?;
        Some(value)
    }
}

fn read_partitions(r: &mut Reader<'_>, flexible: bool) -> Option<Option<Vec<TopicPartitions>>> {
    let count = if flexible {
        r.compact_nullable_array_len()?
    } else {
        r.nullable_array_len()?
    };
    let Some(count) = count else {
        return Some(None);
    };
    let mut topics = Vec::new();
    for _ in 0..count {
        let topic = if flexible {
            r.compact_string()?
        } else {
            r.string()?
        };
        let n = if flexible {
            r.compact_array_len()?
        } else {
            r.array_len()?
        };
        let mut partitions = Vec::new();
        for _ in 0..n {
            partitions.push(r.i32()?);
        }
        if flexible {
            r.tagged_fields(|_, _| Some(()))?;
        }
        topics.push(TopicPartitions { topic, partitions });
    }
    Some(Some(topics))
}

fn read_groups(r: &mut Reader<'_>) -> Option<Vec<String>> {
    let count = r.compact_array_len()?;
    let mut groups = Vec::new();
    for _ in 0..count {
        groups.push(r.compact_string()?);
    }
    Some(groups)
}

fn read_pending_offsets(r: &mut Reader<'_>) -> Option<Vec<PendingOffsetRecord>> {
    let count = r.compact_array_len()?;
    let mut offsets = Vec::new();
    for _ in 0..count {
        offsets.push(PendingOffsetRecord {
            group: r.compact_string()?,
            topic: r.compact_string()?,
            partition: r.i32()?,
            offset: r.i64()?,
            leader_epoch: r.i32()?,
            metadata: r.compact_nullable_string()?,
        });
        r.tagged_fields(|_, _| Some(()))?;
    }
    Some(offsets)
}

#[cfg(test)]
mod tests;
