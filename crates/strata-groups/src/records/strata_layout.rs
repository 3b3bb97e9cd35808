//! Strata's first layout of `__consumer_offsets` records, read so data
//! dirs written before Kafka's layout open; never written.
//!
//! ```text
//! commit  key    1u8 | group len u16 | group | topic len u16 | topic | partition i32
//!         value  offset i64 | leader epoch i32 | commit time ms i64 | metadata len i32 (-1: null) | metadata
//!                a null value removes the offset
//! group   key    2u8 | group len u16 | group,  null value: the group and its offsets are deleted
//! ```
//! All integers big-endian. Kafka's keys start with a version below 256,
//! a zero byte, so the two layouts never share a key.

use crate::records::CommittedOffset;
use crate::records::OffsetChange;

const KIND_COMMIT: u8 = 1;
const KIND_GROUP: u8 = 2;

/// Reads a record of this layout; `None` for anything else.
pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<OffsetChange> {
    let mut k = Reader(key);
    let change = match k.u8()? {
        KIND_COMMIT => {
            let group = k.string()?;
            let topic = k.string()?;
            let partition = i32::from_be_bytes(k.array()?);
            let value = match value {
                None => None,
                Some(v) => Some(decode_value(v)?),
            };
            OffsetChange::Commit {
                group,
                topic,
                partition,
                value,
            }
        }
        KIND_GROUP => OffsetChange::Group {
            group: k.string()?,
            value: None,
        },
        _ => return None,
    };
    k.0.is_empty().then_some(change)
}

fn decode_value(bytes: &[u8]) -> Option<CommittedOffset> {
    let mut v = Reader(bytes);
    let offset = i64::from_be_bytes(v.array()?);
    let leader_epoch = i32::from_be_bytes(v.array()?);
    let commit_ms = i64::from_be_bytes(v.array()?);
    let len = i32::from_be_bytes(v.array()?);
    let metadata = match usize::try_from(len) {
        Ok(len) => Some(String::from_utf8(v.take(len)?.to_vec()).ok()?),
        Err(_) => None,
    };
    Some(CommittedOffset {
        offset,
        leader_epoch,
        metadata,
        commit_ms,
    })
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1)?.first().copied()
    }
    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }
    fn string(&mut self) -> Option<String> {
        let len = u16::from_be_bytes(self.array()?);
        String::from_utf8(self.take(usize::from(len))?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A commit as the first layout wrote it.
    fn commit_bytes(metadata: Option<&str>) -> (Vec<u8>, Vec<u8>) {
        let mut key = vec![KIND_COMMIT, 0, 1, b'g', 0, 1, b't'];
        key.extend_from_slice(&3i32.to_be_bytes());
        let mut value = Vec::new();
        value.extend_from_slice(&42i64.to_be_bytes());
        value.extend_from_slice(&5i32.to_be_bytes());
        value.extend_from_slice(&1000i64.to_be_bytes());
        match metadata {
            Some(m) => {
                value.extend_from_slice(&(m.len() as i32).to_be_bytes());
                value.extend_from_slice(m.as_bytes());
            }
            None => value.extend_from_slice(&(-1i32).to_be_bytes()),
        }
        (key, value)
    }

    #[test]
    fn commits_and_group_tombstones_are_read() {
        for metadata in [Some("m ✓"), None] {
            let (key, value) = commit_bytes(metadata);
            assert_eq!(
                decode(&key, Some(&value)),
                Some(OffsetChange::Commit {
                    group: "g".into(),
                    topic: "t".into(),
                    partition: 3,
                    value: Some(CommittedOffset {
                        offset: 42,
                        leader_epoch: 5,
                        metadata: metadata.map(str::to_string),
                        commit_ms: 1000,
                    }),
                })
            );
        }
        let (key, _) = commit_bytes(None);
        assert!(matches!(
            decode(&key, None),
            Some(OffsetChange::Commit { value: None, .. })
        ));
        assert_eq!(
            decode(&[KIND_GROUP, 0, 1, b'g'], None),
            Some(OffsetChange::Group {
                group: "g".into(),
                value: None
            })
        );
    }

    #[test]
    fn anything_else_is_none() {
        let (key, value) = commit_bytes(Some("m"));
        assert_eq!(decode(&key[..key.len() - 1], Some(&value)), None);
        assert_eq!(decode(&key, Some(&value[..value.len() - 1])), None);
        assert_eq!(decode(&[KIND_GROUP, 0, 1, b'g', 0], None), None);
        assert_eq!(decode(&[0, 1, 0, 1, b'g'], None), None);
        assert_eq!(decode(&[], None), None);
    }
}
