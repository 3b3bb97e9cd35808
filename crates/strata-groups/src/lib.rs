//! Strata's consumer group coordinator (Kafka's classic group protocol).
//!
//! - [`group`]: one group's membership and rebalance state machine, pure
//!   logic, and the record Kafka keeps of it.
//! - [`offsets`]: what the internal topic says, in memory: committed
//!   offsets and each group's latest record.
//! - [`records`]: the records of `__consumer_offsets`, in Kafka's layout
//!   (and Strata's first one, read only).
//! - [`coordinator`]: all groups, durable commits through the internal
//!   `__consumer_offsets` topic, and the session clock.
//!
//! Invariants: a commit is acknowledged only once its record is durable in
//! the WAL; OffsetFetch returns exactly what OffsetCommit stored; a
//! generation's assignment is handed out only after its leader's SyncGroup;
//! a member is fenced by a newer incarnation of its static instance id;
//! every record written is in Kafka's layout, and once the coordinator
//! serves, the topic holds no record of another layout.

pub mod coordinator;
pub mod group;
pub mod offsets;
pub mod records;

pub use coordinator::{CoordinatorOptions, GroupCoordinator, OFFSETS_TOPIC};
pub use records::CommittedOffset;

/// Kafka's `offset.metadata.max.bytes` default: a commit's metadata may be
/// at most this long (longer: OFFSET_METADATA_TOO_LARGE).
pub const MAX_METADATA_BYTES: usize = 4096;

/// Errors of the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error(transparent)]
    Log(#[from] strata_log::LogError),
    #[error("a record of group {group} has a string too long for Kafka's record layout")]
    RecordTooLarge { group: String },
}
