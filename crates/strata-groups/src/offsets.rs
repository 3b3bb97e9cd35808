//! What `__consumer_offsets` says, in memory: every group's committed
//! offsets and the latest state recorded for each group, each tagged with
//! the internal-topic offset that wrote it, so concurrent commits apply in
//! log order. Records and their layouts are in [`crate::records`].

use std::collections::BTreeMap;

use strata_protocol::coordinator_records::group::GroupMetadataValue;

use crate::records::{CommittedOffset, OffsetChange};

/// Every group's committed offsets and recorded state.
#[derive(Debug, Default)]
pub struct OffsetMap {
    groups: BTreeMap<String, GroupOffsets>,
    /// The latest group record of each group that has one.
    records: BTreeMap<String, GroupMetadataValue>,
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
            OffsetChange::Group {
                group,
                value: Some(value),
            } => {
                self.records.insert(group, value);
            }
            OffsetChange::Group { group, value: None } => {
                self.groups.remove(&group);
                self.records.remove(&group);
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

    /// Whether a group has committed offsets.
    pub fn has_offsets(&self, group: &str) -> bool {
        self.groups.contains_key(group)
    }

    /// The latest recorded state of a group.
    pub fn record(&self, group: &str) -> Option<&GroupMetadataValue> {
        self.records.get(group)
    }

    /// Every live offset and group record, as the changes that would write
    /// them (what a rewrite of the topic must hold).
    pub fn snapshot(&self) -> Vec<OffsetChange> {
        let commits = self.groups.iter().flat_map(|(group, offsets)| {
            offsets
                .iter()
                .map(move |((topic, partition), (_, v))| OffsetChange::Commit {
                    group: group.clone(),
                    topic: topic.clone(),
                    partition: *partition,
                    value: Some(v.clone()),
                })
        });
        let records = self.records.iter().map(|(group, v)| OffsetChange::Group {
            group: group.clone(),
            value: Some(v.clone()),
        });
        commits.chain(records).collect()
    }

    /// Every group known by its offsets or its record, in order.
    pub fn groups(&self) -> Vec<&String> {
        let mut all: Vec<&String> = self.groups.keys().chain(self.records.keys()).collect();
        all.sort();
        all.dedup();
        all
    }

    /// Whether a group is known by its offsets or its record.
    pub fn knows(&self, group: &str) -> bool {
        self.groups.contains_key(group) || self.records.contains_key(group)
    }

    /// Groups with a record but no offsets left.
    pub fn records_without_offsets(&self) -> Vec<String> {
        self.records
            .keys()
            .filter(|g| !self.groups.contains_key(*g))
            .cloned()
            .collect()
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

    fn at(offset: i64) -> OffsetChange {
        OffsetChange::Commit {
            group: "g".into(),
            topic: "t".into(),
            partition: 0,
            value: Some(CommittedOffset {
                offset,
                leader_epoch: -1,
                metadata: None,
                commit_ms: 0,
            }),
        }
    }

    fn record(generation: i32) -> OffsetChange {
        OffsetChange::Group {
            group: "g".into(),
            value: Some(GroupMetadataValue {
                protocol_type: "consumer".into(),
                generation,
                protocol: None,
                leader: None,
                current_state_timestamp: -1,
                members: Vec::new(),
            }),
        }
    }

    #[test]
    fn later_log_offsets_win() {
        let mut map = OffsetMap::default();
        map.apply(at(10), 5);
        map.apply(at(7), 4);
        assert_eq!(map.get("g", "t", 0).map(|c| c.offset), Some(10));
        map.apply(
            OffsetChange::Group {
                group: "g".into(),
                value: None,
            },
            6,
        );
        assert_eq!(map.get("g", "t", 0), None);
    }

    #[test]
    fn a_group_is_known_by_its_offsets_or_its_record_until_its_tombstone() {
        let mut map = OffsetMap::default();
        map.apply(record(3), 1);
        assert!(map.knows("g") && !map.has_offsets("g"));
        assert_eq!(map.records_without_offsets(), vec!["g".to_string()]);
        map.apply(at(1), 2);
        assert_eq!(map.groups(), vec!["g"]);
        assert!(map.records_without_offsets().is_empty());
        assert_eq!(map.snapshot(), vec![at(1), record(3)]);
        map.apply(
            OffsetChange::Group {
                group: "g".into(),
                value: None,
            },
            3,
        );
        assert!(!map.knows("g"));
        assert!(map.snapshot().is_empty());
    }
}
