//! Strata's transaction coordinator (exactly-once producers).
//!
//! - [`state`]: a transactional id's producer, epoch and open transaction.
//! - [`records`]: the records of `__transaction_state`, in Kafka's layout
//!   (and Strata's first one, read only).
//! - [`coordinator`]: the operations (InitProducerId with a transactional id,
//!   AddPartitionsToTxn, AddOffsetsToTxn, TxnOffsetCommit, EndTxn), markers,
//!   timeouts, and recovery of half-ended transactions.
//!
//! Invariants: a state change is durable in `__transaction_state` before it
//! is acknowledged; a transaction's markers are written under the epoch that
//! ended it, so an older incarnation of the producer is fenced; offsets
//! committed in a transaction become visible only when it commits; every
//! record written is in Kafka's layout, and once the coordinator serves,
//! the topic holds no record of another layout.

pub mod coordinator;
pub mod records;
pub mod state;

pub use coordinator::{TransactionCoordinator, MAX_TIMEOUT_MS, STATE_TOPIC};

/// Errors of the transaction coordinator.
#[derive(Debug, thiserror::Error)]
pub enum TxnError {
    #[error(transparent)]
    Log(#[from] strata_log::LogError),
    #[error(transparent)]
    Groups(#[from] strata_groups::GroupError),
    #[error("the state of transactional id {transactional_id} has a string too long for Kafka's record layout")]
    RecordTooLarge { transactional_id: String },
}
