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

/// Why an intact entry's payload cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EntryError {
    /// Written by a newer build: recovery refuses to guess what it means.
    #[error("unknown WAL entry kind {0}")]
    UnknownKind(u8),
    #[error("WAL entry payload of {0} bytes is too short")]
    Short(usize),
}

/// Reads the prefix of a batch entry.
pub fn read_prefix(payload: &[u8]) -> Result<EntryPrefix, EntryError> {
    let kind = *payload.first().ok_or(EntryError::Short(0))?;
    if kind != KIND_BATCH {
        return Err(EntryError::UnknownKind(kind));
    }
    let prefix = payload
        .get(..PREFIX_LEN)
        .ok_or(EntryError::Short(payload.len()))?;
    let mut id = [0u8; 16];
    id.copy_from_slice(&prefix[1..17]);
    Ok(EntryPrefix {
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
            Ok(EntryPrefix {
                topic: id,
                partition: 7
            })
        );
        assert_eq!(read_prefix(&out[..10]), Err(EntryError::Short(10)));
        out[0] = 9;
        assert_eq!(read_prefix(&out), Err(EntryError::UnknownKind(9)));
    }
}
