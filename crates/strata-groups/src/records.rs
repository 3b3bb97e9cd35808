//! The records of `__consumer_offsets`: written in Kafka's layout
//! (`strata_protocol::coordinator_records::group`) so tools that read the
//! topic decode them, and read in that layout or in Strata's first one
//! ([`strata_layout`]), which data dirs written before still hold until
//! the coordinator rewrites them at startup.

pub mod strata_layout;

use strata_protocol::coordinator_records::group::{
    GroupMetadataValue, GroupRecordKey, OffsetCommitValue,
};

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
    /// A committed offset; `None` (a tombstone) removes it.
    Commit {
        group: String,
        topic: String,
        partition: i32,
        value: Option<CommittedOffset>,
    },
    /// A group's state; `None` (a tombstone) deletes the group, and with
    /// it any offsets still recorded for it.
    Group {
        group: String,
        value: Option<GroupMetadataValue>,
    },
}

/// Which layout a record was read in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    Kafka,
    /// Strata's first layout, before Kafka's (read only).
    Strata,
}

impl OffsetChange {
    /// The record's key and value in Kafka's layout; `None` when a string
    /// is too long for its Kafka type.
    pub fn encode(&self) -> Option<(Vec<u8>, Option<Vec<u8>>)> {
        match self {
            OffsetChange::Commit {
                group,
                topic,
                partition,
                value,
            } => {
                let key = GroupRecordKey::OffsetCommit {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                }
                .encode()?;
                let value = match value {
                    Some(v) => Some(
                        OffsetCommitValue {
                            offset: v.offset,
                            leader_epoch: v.leader_epoch,
                            metadata: v.metadata.clone().unwrap_or_default(),
                            commit_timestamp: v.commit_ms,
                        }
                        .encode()?,
                    ),
                    None => None,
                };
                Some((key, value))
            }
            OffsetChange::Group { group, value } => {
                let key = GroupRecordKey::GroupMetadata {
                    group: group.clone(),
                }
                .encode()?;
                let value = match value {
                    Some(v) => Some(v.encode()?),
                    None => None,
                };
                Some((key, value))
            }
        }
    }

    /// Reads a record in either layout; `None` for one neither describes.
    pub fn decode(key: &[u8], value: Option<&[u8]>) -> Option<(Self, Layout)> {
        match GroupRecordKey::decode(key) {
            Some(key) => Some((decode_kafka(key, value)?, Layout::Kafka)),
            None => Some((strata_layout::decode(key, value)?, Layout::Strata)),
        }
    }
}

fn decode_kafka(key: GroupRecordKey, value: Option<&[u8]>) -> Option<OffsetChange> {
    Some(match key {
        GroupRecordKey::OffsetCommit {
            group,
            topic,
            partition,
        } => OffsetChange::Commit {
            group,
            topic,
            partition,
            value: match value {
                Some(bytes) => {
                    let v = OffsetCommitValue::decode(bytes)?;
                    Some(CommittedOffset {
                        offset: v.offset,
                        leader_epoch: v.leader_epoch,
                        metadata: Some(v.metadata),
                        commit_ms: v.commit_timestamp,
                    })
                }
                None => None,
            },
        },
        GroupRecordKey::GroupMetadata { group } => OffsetChange::Group {
            group,
            value: match value {
                Some(bytes) => Some(GroupMetadataValue::decode(bytes)?),
                None => None,
            },
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn commit(value: Option<CommittedOffset>) -> OffsetChange {
        OffsetChange::Commit {
            group: "g".into(),
            topic: "t".into(),
            partition: 3,
            value,
        }
    }

    #[test]
    fn changes_round_trip_in_kafkas_layout() {
        let changes = [
            commit(Some(CommittedOffset {
                offset: 42,
                leader_epoch: 0,
                metadata: Some("meta data ✓".into()),
                commit_ms: 1000,
            })),
            commit(None),
            OffsetChange::Group {
                group: "g".into(),
                value: Some(GroupMetadataValue {
                    protocol_type: "consumer".into(),
                    generation: 2,
                    protocol: Some("range".into()),
                    leader: None,
                    current_state_timestamp: 5,
                    members: Vec::new(),
                }),
            },
            OffsetChange::Group {
                group: "g".into(),
                value: None,
            },
        ];
        for change in changes {
            let (k, v) = change.encode().unwrap();
            assert_eq!(k[0], 0, "Kafka's keys start with a version below 256");
            assert_eq!(
                OffsetChange::decode(&k, v.as_deref()),
                Some((change, Layout::Kafka))
            );
        }
    }

    #[test]
    fn null_metadata_is_written_as_the_empty_string() {
        let (k, v) = commit(Some(CommittedOffset {
            offset: 1,
            leader_epoch: -1,
            metadata: None,
            commit_ms: 0,
        }))
        .encode()
        .unwrap();
        let Some((OffsetChange::Commit { value: Some(v), .. }, _)) =
            OffsetChange::decode(&k, v.as_deref())
        else {
            panic!("not read back");
        };
        assert_eq!(v.metadata.as_deref(), Some(""));
    }

    #[test]
    fn unreadable_records_are_none() {
        assert_eq!(OffsetChange::decode(&[9, 9], None), None);
        assert_eq!(OffsetChange::decode(&[0, 7, 0, 0], None), None);
        let (k, _) = commit(None).encode().unwrap();
        assert_eq!(OffsetChange::decode(&k, Some(&[0, 9])), None);
    }
}
