//! A group's state as Kafka records it in `__consumer_offsets`
//! (GroupMetadataValue): written when a generation's assignment is out
//! (Stable) and when the group empties, for tools that read the topic;
//! the coordinator reads back only the generation.

use std::time::Duration;

use strata_protocol::coordinator_records::group::{GroupMetadataValue, MemberMetadata};

use super::{Group, GroupState};

fn millis(d: Duration) -> i32 {
    i32::try_from(d.as_millis()).unwrap_or(i32::MAX)
}

impl Group {
    /// Whether the group is where Kafka writes its record: Stable, or
    /// Empty after a generation (a group that never formed has none).
    pub fn is_recordable(&self) -> bool {
        matches!(self.state, GroupState::Stable | GroupState::Empty) && self.generation > 0
    }

    /// The group's record, its state timestamp `now_ms`.
    pub fn record(&self, now_ms: i64) -> GroupMetadataValue {
        let protocol = self.protocol.as_deref();
        GroupMetadataValue {
            protocol_type: self.protocol_type.clone().unwrap_or_default(),
            generation: self.generation,
            protocol: self.protocol.clone(),
            leader: self.leader.clone(),
            current_state_timestamp: now_ms,
            members: self
                .members
                .values()
                .map(|m| MemberMetadata {
                    member_id: m.id.clone(),
                    group_instance_id: m.instance_id.clone(),
                    client_id: m.client_id.clone(),
                    client_host: m.client_host.clone(),
                    rebalance_timeout: millis(m.rebalance_timeout),
                    session_timeout: millis(m.session_timeout),
                    subscription: m
                        .protocols
                        .iter()
                        .find(|(name, _)| Some(name.as_str()) == protocol)
                        .map(|(_, meta)| meta.to_vec())
                        .unwrap_or_default(),
                    assignment: m.assignment.to_vec(),
                })
                .collect(),
        }
    }
}
