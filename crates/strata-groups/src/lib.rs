//! Strata's consumer group coordinator (Kafka's classic group protocol).
//!
//! - [`group`]: one group's membership and rebalance state machine, pure logic.
//! - [`offsets`]: committed offsets, their map and their record format.
//! - [`coordinator`]: all groups, durable commits through the internal
//!   `__consumer_offsets` topic, and the session clock.
//!
//! Invariants: a commit is acknowledged only once its record is durable in
//! the WAL; OffsetFetch returns exactly what OffsetCommit stored; a
//! generation's assignment is handed out only after its leader's SyncGroup;
//! a member is fenced by a newer incarnation of its static instance id.

pub mod coordinator;
pub mod group;
pub mod offsets;

pub use coordinator::{CoordinatorOptions, GroupCoordinator, OFFSETS_TOPIC};
pub use offsets::CommittedOffset;

/// Errors of the coordinator.
#[derive(Debug, thiserror::Error)]
pub enum GroupError {
    #[error(transparent)]
    Log(#[from] strata_log::LogError),
}
