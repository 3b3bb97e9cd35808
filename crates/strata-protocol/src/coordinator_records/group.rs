//! `__consumer_offsets` records in Kafka's layout.
//!
//! ```text
//! key    version i16 0|1: OffsetCommitKey   group string | topic string | partition i32
//!        version i16 2:   GroupMetadataKey  group string
//! value  OffsetCommitValue (written at v3)
//!          v0, v2  offset i64 | metadata string | commit timestamp i64
//!          v1      offset i64 | metadata string | commit timestamp i64 | expire timestamp i64
//!          v3      offset i64 | leader epoch i32 | metadata string | commit timestamp i64
//!          v4      as v3, metadata a compact string, then tagged fields
//!        GroupMetadataValue (written at v3)
//!          protocol type string | generation i32 | protocol nullable string |
//!          leader nullable string | [v2+] current state timestamp i64 |
//!          members array of: member id string | [v3+] group instance id nullable string |
//!            client id string | client host string | [v1+] rebalance timeout i32 |
//!            session timeout i32 | subscription bytes | assignment bytes
//!          (v4: compact forms and a tagged-field section after each member
//!          and after the value)
//!        a null value (tombstone) deletes the offset or the group
//! ```
//! Key versions 3 and above belong to Kafka's newer group types (KIP-848,
//! share groups), which Strata does not write; they decode as `None`.

use super::{Reader, Writer};

/// The key version Kafka writes for offset commits.
pub const OFFSET_COMMIT_KEY_VERSION: i16 = 1;
/// The value version Kafka 3.x/4.x write for offset commits (no expire
/// timestamp, a leader epoch).
pub const OFFSET_COMMIT_VALUE_VERSION: i16 = 3;
/// The only key version of group metadata.
pub const GROUP_METADATA_KEY_VERSION: i16 = 2;
/// The value version Kafka 3.x/4.x write for classic groups.
pub const GROUP_METADATA_VALUE_VERSION: i16 = 3;

/// The key of a `__consumer_offsets` record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GroupRecordKey {
    OffsetCommit {
        group: String,
        topic: String,
        partition: i32,
    },
    GroupMetadata {
        group: String,
    },
}

impl GroupRecordKey {
    /// The key bytes, or `None` if a name is too long for a Kafka string.
    pub fn encode(&self) -> Option<Vec<u8>> {
        match self {
            GroupRecordKey::OffsetCommit {
                group,
                topic,
                partition,
            } => {
                let mut w = Writer::new(OFFSET_COMMIT_KEY_VERSION);
                w.string(group);
                w.string(topic);
                w.i32(*partition);
                w.finish()
            }
            GroupRecordKey::GroupMetadata { group } => {
                let mut w = Writer::new(GROUP_METADATA_KEY_VERSION);
                w.string(group);
                w.finish()
            }
        }
    }

    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes);
        let key = match r.i16()? {
            0 | 1 => GroupRecordKey::OffsetCommit {
                group: r.string()?,
                topic: r.string()?,
                partition: r.i32()?,
            },
            2 => GroupRecordKey::GroupMetadata { group: r.string()? },
            _ => return None,
        };
        r.end()?;
        Some(key)
    }
}

/// A committed offset (OffsetCommitValue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetCommitValue {
    pub offset: i64,
    /// -1 when unknown (and in versions before 3).
    pub leader_epoch: i32,
    pub metadata: String,
    pub commit_timestamp: i64,
}

impl OffsetCommitValue {
    /// The value at [`OFFSET_COMMIT_VALUE_VERSION`], or `None` if the
    /// metadata is too long for a Kafka string.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let mut w = Writer::new(OFFSET_COMMIT_VALUE_VERSION);
        w.i64(self.offset);
        w.i32(self.leader_epoch);
        w.string(&self.metadata);
        w.i64(self.commit_timestamp);
        w.finish()
    }

    /// Reads any version (an expire timestamp, v1, is read and dropped).
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes);
        let version = r.i16()?;
        let offset = r.i64()?;
        let value = match version {
            0..=2 => {
                let metadata = r.string()?;
                let commit_timestamp = r.i64()?;
                if version == 1 {
                    r.i64()?;
                }
                OffsetCommitValue {
                    offset,
                    leader_epoch: -1,
                    metadata,
                    commit_timestamp,
                }
            }
            3 => OffsetCommitValue {
                offset,
                leader_epoch: r.i32()?,
                metadata: r.string()?,
                commit_timestamp: r.i64()?,
            },
            4 => {
                let value = OffsetCommitValue {
                    offset,
                    leader_epoch: r.i32()?,
                    metadata: r.compact_string()?,
                    commit_timestamp: r.i64()?,
                };
                r.tagged_fields(|_, _| Some(()))?;
                value
            }
            _ => return None,
        };
        r.end()?;
        Some(value)
    }
}

/// A classic group's state (GroupMetadataValue).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMetadataValue {
    pub protocol_type: String,
    pub generation: i32,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    /// -1 when unknown (and before version 2).
    pub current_state_timestamp: i64,
    pub members: Vec<MemberMetadata>,
}

/// One member of a group (GroupMetadataValue's MemberMetadata).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberMetadata {
    pub member_id: String,
    pub group_instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    /// -1 before version 1.
    pub rebalance_timeout: i32,
    pub session_timeout: i32,
    /// The member's metadata for the group's protocol.
    pub subscription: Vec<u8>,
    pub assignment: Vec<u8>,
}

impl GroupMetadataValue {
    /// The value at [`GROUP_METADATA_VALUE_VERSION`], or `None` if a string
    /// is too long for its Kafka type.
    pub fn encode(&self) -> Option<Vec<u8>> {
        let mut w = Writer::new(GROUP_METADATA_VALUE_VERSION);
        w.string(&self.protocol_type);
        w.i32(self.generation);
        w.nullable_string(self.protocol.as_deref());
        w.nullable_string(self.leader.as_deref());
        w.i64(self.current_state_timestamp);
        w.array_len(self.members.len());
        for m in &self.members {
            w.string(&m.member_id);
            w.nullable_string(m.group_instance_id.as_deref());
            w.string(&m.client_id);
            w.string(&m.client_host);
            w.i32(m.rebalance_timeout);
            w.i32(m.session_timeout);
            w.bytes(&m.subscription);
            w.bytes(&m.assignment);
        }
        w.finish()
    }

    /// Reads any version, 0 to 4.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        let mut r = Reader::new(bytes);
        let version = r.i16()?;
        if !(0..=4).contains(&version) {
            return None;
        }
        let flexible = version >= 4;
        let string = |r: &mut Reader<'_>| {
            if flexible {
                r.compact_string()
            } else {
                r.string()
            }
        };
        let nullable_string = |r: &mut Reader<'_>| {
            if flexible {
                r.compact_nullable_string()
            } else {
                r.nullable_string()
            }
        };
        let protocol_type = string(&mut r)?;
        let generation = r.i32()?;
        let protocol = nullable_string(&mut r)?;
        let leader = nullable_string(&mut r)?;
        let current_state_timestamp = if version >= 2 { r.i64()? } else { -1 };
        let count = if flexible {
            r.compact_array_len()?
        } else {
            r.array_len()?
        };
        let mut members = Vec::new();
        for _ in 0..count {
            let member_id = string(&mut r)?;
            let group_instance_id = if version >= 3 {
                nullable_string(&mut r)?
            } else {
                None
            };
            let client_id = string(&mut r)?;
            let client_host = string(&mut r)?;
            let rebalance_timeout = if version >= 1 { r.i32()? } else { -1 };
            let session_timeout = r.i32()?;
            let (subscription, assignment) = if flexible {
                (r.compact_bytes()?, r.compact_bytes()?)
            } else {
                (r.bytes()?, r.bytes()?)
            };
            if flexible {
                r.tagged_fields(|_, _| Some(()))?;
            }
            members.push(MemberMetadata {
                member_id,
                group_instance_id,
                client_id,
                client_host,
                rebalance_timeout,
                session_timeout,
                subscription,
                assignment,
            });
        }
        if flexible {
            r.tagged_fields(|_, _| Some(()))?;
        }
        r.end()?;
        Some(GroupMetadataValue {
            protocol_type,
            generation,
            protocol,
            leader,
            current_state_timestamp,
            members,
        })
    }
}

#[cfg(test)]
mod tests;
