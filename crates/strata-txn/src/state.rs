//! One transactional id's state, as stored in `__transaction_state`
//! ([`crate::records`]). It also reads from JSON: Strata's first layout of
//! that topic held it so.

use std::collections::BTreeSet;

use serde::Deserialize;

/// Where a transaction is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Status {
    Empty,
    Ongoing,
    PrepareCommit,
    PrepareAbort,
    CompleteCommit,
    CompleteAbort,
}

/// A consumer offset committed inside a transaction, applied on commit.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct PendingOffset {
    pub group: String,
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub leader_epoch: i32,
    pub metadata: Option<String>,
}

/// A transactional id's producer and its current transaction.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TxnState {
    pub producer_id: i64,
    pub epoch: i16,
    pub timeout_ms: i32,
    pub status: Status,
    pub partitions: BTreeSet<(String, i32)>,
    pub groups: BTreeSet<String>,
    pub pending_offsets: Vec<PendingOffset>,
    /// When the transaction last changed (ms since the epoch), for its timeout.
    pub updated_ms: i64,
    /// When the current (or last) transaction began (ms since the epoch);
    /// -1 before the first one.
    #[serde(default = "no_start")]
    pub started_ms: i64,
}

fn no_start() -> i64 {
    -1
}

impl TxnState {
    pub fn new(producer_id: i64, timeout_ms: i32, now_ms: i64) -> Self {
        TxnState {
            producer_id,
            epoch: 0,
            timeout_ms,
            status: Status::Empty,
            partitions: BTreeSet::new(),
            groups: BTreeSet::new(),
            pending_offsets: Vec::new(),
            updated_ms: now_ms,
            started_ms: -1,
        }
    }

    /// Marks the transaction as ongoing, noting when it began if it is new.
    pub fn begin(&mut self, now_ms: i64) {
        if self.status != Status::Ongoing {
            self.started_ms = now_ms;
        }
        self.status = Status::Ongoing;
    }

    /// The state's name as Kafka's admin APIs report it.
    pub fn status_name(&self) -> &'static str {
        match self.status {
            Status::Empty => "Empty",
            Status::Ongoing => "Ongoing",
            Status::PrepareCommit => "PrepareCommit",
            Status::PrepareAbort => "PrepareAbort",
            Status::CompleteCommit => "CompleteCommit",
            Status::CompleteAbort => "CompleteAbort",
        }
    }

    /// Whether a transaction is open or being completed.
    pub fn in_flight(&self) -> bool {
        matches!(
            self.status,
            Status::Ongoing | Status::PrepareCommit | Status::PrepareAbort
        )
    }

    /// Whether the open transaction outlived its timeout.
    pub fn expired(&self, now_ms: i64) -> bool {
        self.status == Status::Ongoing && now_ms - self.updated_ms > i64::from(self.timeout_ms)
    }
}
