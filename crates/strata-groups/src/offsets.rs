//! Committed offsets: the in-memory map, and their records in the internal
//! topic `__consumer_offsets`, through which they are made durable (the same
//! WAL, group commit and recovery as every other topic).
//!
//! ```text
//! commit  key    1u8 | group len u16 | group | topic len u16 | topic | partition i32
//!         value  offset i64 | leader epoch i32 | commit time ms i64 | metadata len i32 (-1: null) | metadata
//!                a null value removes the offset
//! group   key    2u8 | group len u16 | group,  null value: the group and its offsets are deleted
//! ```
//! All integers big-endian.

use std::collections::BTreeMap;

/// One committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommittedOffset {
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
    pub commit_ms: i64,
}

/// A change recorded in the internal topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OffsetChange {
    Commit {
        group: String,
        topic: String,
        partition: i32,
        value: Option<CommittedOffset>,
    },
    DeleteGroup {
        group: String,
    },
}

const KIND_COMMIT: u8 = 1;
const KIND_GROUP: u8 = 2;

fn put_str(out: &mut Vec<u8>, s: &str) {
    let len = u16::try_from(s.len()).unwrap_or(u16::MAX);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(&s.as_bytes()[..usize::from(len)]);
}

impl OffsetChange {
    /// The record's key and value.
    pub fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        match self {
            OffsetChange::Commit {
                group,
                topic,
                partition,
                value,
            } => {
                let mut key = vec![KIND_COMMIT];
                put_str(&mut key, group);
                put_str(&mut key, topic);
                key.extend_from_slice(&partition.to_be_bytes());
                let value = value.as_ref().map(|v| {
                    let mut out = Vec::with_capacity(28);
                    out.extend_from_slice(&v.offset.to_be_bytes());
                    out.extend_from_slice(&v.leader_epoch.to_be_bytes());
                    out.extend_from_slice(&v.commit_ms.to_be_bytes());
                    match &v.metadata {
                        Some(m) => {
                            out.extend_from_slice(
                                &i32::try_from(m.len()).unwrap_or(i32::MAX).to_be_bytes(),
                            );
                            out.extend_from_slice(m.as_bytes());
                        }
                        None => out.extend_from_slice(&(-1i32).to_be_bytes()),
                    }
                    out
                });
                (key, value)
            }
            OffsetChange::DeleteGroup { group } => {
                let mut key = vec![KIND_GROUP];
                put_str(&mut key, group);
                (key, None)
            }
        }
    }

    /// Reads a record back; `None` for a record this version does not know.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<Self> {
        let mut k = Reader(key);
        match k.u8()? {
            KIND_COMMIT => {
                let group = k.string()?;
                let topic = k.string()?;
                let partition = i32::from_be_bytes(k.array()?);
                let value = match value {
                    None => None,
                    Some(v) => {
                        let mut v = Reader(v);
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
                };
                Some(OffsetChange::Commit {
                    group,
                    topic,
                    partition,
                    value,
                })
            }
            KIND_GROUP => Some(OffsetChange::DeleteGroup { group: k.string()? }),
            _ => None,
        }
    }
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

/// Every group's committed offsets, each tagged with the internal-topic
/// offset that wrote it, so concurrent commits apply in log order.
#[derive(Debug, Default)]
pub struct OffsetMap {
    groups: BTreeMap<String, GroupOffsets>,
}

/// One group's offsets by (topic, partition), with the log offset that wrote each.
type GroupOffsets = BTreeMap<(String, i32), (i64, CommittedOffset)>;

impl OffsetMap {
    /// Applies a change written at `log_offset`.
    pub fn apply(&mut self, change: OffsetChange, log_offset: i64) {
        match change {
            OffsetChange::Commit {
                group,
                topic,
                partition,
                value,
            } => {
                let offsets = self.groups.entry(group.clone()).or_default();
                let key = (topic, partition);
                if offsets.get(&key).is_some_and(|(at, _)| *at > log_offset) {
                    return;
                }
                match value {
                    Some(v) => {
                        offsets.insert(key, (log_offset, v));
                    }
                    None => {
                        offsets.remove(&key);
                    }
                }
                if offsets.is_empty() {
                    self.groups.remove(&group);
                }
            }
            OffsetChange::DeleteGroup { group } => {
                self.groups.remove(&group);
            }
        }
    }

    pub fn get(&self, group: &str, topic: &str, partition: i32) -> Option<&CommittedOffset> {
        self.groups
            .get(group)?
            .get(&(topic.to_string(), partition))
            .map(|(_, v)| v)
    }

    /// Every committed offset of a group, by topic and partition.
    pub fn group(&self, group: &str) -> Vec<(String, i32, CommittedOffset)> {
        self.groups
            .get(group)
            .map(|offsets| {
                offsets
                    .iter()
                    .map(|((topic, partition), (_, v))| (topic.clone(), *partition, v.clone()))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every live committed offset, as the change that would write it.
    pub fn commits(&self) -> Vec<OffsetChange> {
        self.groups
            .iter()
            .flat_map(|(group, offsets)| {
                offsets
                    .iter()
                    .map(move |((topic, partition), (_, v))| OffsetChange::Commit {
                        group: group.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                        value: Some(v.clone()),
                    })
            })
            .collect()
    }

    pub fn groups(&self) -> impl Iterator<Item = &String> {
        self.groups.keys()
    }

    /// Offsets of `group` committed before `cutoff_ms`.
    pub fn older_than(&self, group: &str, cutoff_ms: i64) -> Vec<(String, i32)> {
        self.groups
            .get(group)
            .map(|offsets| {
                offsets
                    .iter()
                    .filter(|(_, (_, v))| v.commit_ms < cutoff_ms)
                    .map(|((topic, partition), _)| (topic.clone(), *partition))
                    .collect()
            })
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip() {
        let commit = OffsetChange::Commit {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
            value: Some(CommittedOffset {
                offset: 42,
                leader_epoch: 0,
                metadata: Some("meta data ✓".into()),
                commit_ms: 1000,
            }),
        };
        let (k, v) = commit.encode();
        assert_eq!(OffsetChange::decode(&k, v.as_deref()), Some(commit));
        let delete = OffsetChange::DeleteGroup { group: "g".into() };
        let (k, v) = delete.encode();
        assert_eq!(OffsetChange::decode(&k, v.as_deref()), Some(delete));
        assert_eq!(OffsetChange::decode(&[9, 9], None), None);
        assert_eq!(OffsetChange::decode(&k[..2], None), None);
    }

    #[test]
    fn later_log_offsets_win() {
        let mut map = OffsetMap::default();
        let at = |offset| OffsetChange::Commit {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            value: Some(CommittedOffset {
                offset,
                leader_epoch: -1,
                metadata: None,
                commit_ms: 0,
            }),
        };
        map.apply(at(10), 5);
        map.apply(at(7), 4);
        assert_eq!(map.get("g", "t", 0).map(|c| c.offset), Some(10));
        map.apply(OffsetChange::DeleteGroup { group: "g".into() }, 6);
        assert_eq!(map.get("g", "t", 0), None);
    }
}
