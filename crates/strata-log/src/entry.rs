//! What a WAL entry's payload means to the log.
//!
//! ```text
//! offset size field
//!      0    1 kind       1 = record batch
//!      1   16 topic id
//!     17    4 partition  big-endian i32
//!     21    n the Kafka record batch, as stamped (base offset assigned)
//! ```

use crate::topic::TopicId;

/// Kind byte of an entry holding one record batch.
pub const KIND_BATCH: u8 = 1;
/// Bytes before the batch.
pub const PREFIX_LEN: usize = 21;

/// Writes the payload prefix for a batch of `partition` of `topic`.
pub fn write_prefix(out: &mut Vec<u8>, topic: TopicId, partition: i32) {
    out.push(KIND_BATCH);
    out.extend_from_slice(&topic.0);
    out.extend_from_slice(&partition.to_be_bytes());
}

/// A decoded payload prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryPrefix {
    pub topic: TopicId,
    pub partition: i32,
}

/// Reads the prefix of a batch entry; `None` for unknown kinds or short payloads.
pub fn read_prefix(payload: &[u8]) -> Option<EntryPrefix> {
    let prefix = payload.get(..PREFIX_LEN)?;
    if prefix[0] != KIND_BATCH {
        return None;
    }
    let mut id = [0u8; 16];
    id.copy_from_slice(&prefix[1..17]);
    Some(EntryPrefix {
        topic: TopicId(id),
        partition: i32::from_be_bytes([prefix[17], prefix[18], prefix[19], prefix[20]]),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefix_round_trips() {
        let id = TopicId::random();
        let mut out = Vec::new();
        write_prefix(&mut out, id, 7);
        assert_eq!(out.len(), PREFIX_LEN);
        assert_eq!(
            read_prefix(&out),
            Some(EntryPrefix {
                topic: id,
                partition: 7
            })
        );
        assert_eq!(read_prefix(&out[..10]), None);
    }
}
