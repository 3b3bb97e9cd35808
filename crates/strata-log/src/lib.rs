//! Strata's partition logs: the produce path from validated batch to durable
//! offset, sealed WAL segments, reads, topic metadata and recovery.
//!
//! Record batches are written once, into the shared WAL, and stay there: a
//! partition is the list of where its batches sit in the WAL segments —
//! one summary per sealed segment, whose batches its index lists.
//!
//! - [`append`]: the group-committing WAL writer thread (offsets assigned here).
//! - `housekeeping`: the sealing thread's loop: seal, remove, compact.
//! - [`seal`]: seals rolled WAL segments (writes their index) and removes
//!   the ones no partition holds any more.
//! - [`key_compaction`]: `cleanup.policy=compact` — the newest record per
//!   key survives — on the sealing thread, through WAL compaction's rewrite.
//! - [`wal_compaction`]: replaces runs of mostly dead sealed segments with
//!   one file of their live batches, on the sealing thread.
//! - [`segment_index`]: the index file of a sealed WAL segment, and the
//!   bounded cache of its entries brought back for reads.
//! - [`partition`]: one partition's state: its batches and where they sit
//!   ([`batch_list`]: as runs per segment; `walk`: walking them under the
//!   lock, with index entries loaded outside it).
//! - [`ledger`]: live bytes, batches and holding partitions per WAL segment.
//! - [`read`]: reads of whole batches, and offsets for timestamps
//!   (`read_ahead`: batches read ahead for consumers reading old data in
//!   order).
//! - [`retention`]: where `retention.ms`/`retention.bytes` move a log start.
//! - [`tail_cache`]: the most recent WAL bytes in memory, for reads.
//! - [`producer`]: idempotent producer state (sequence checks, snapshots).
//! - [`recovery`]: startup: loads sealed segments' indexes, scans the rest.
//! - [`store`]: the data dir, the threads, and topic administration
//!   (`data_dir`: startup housekeeping of the data dir).
//! - [`metrics`]: the storage metrics' names and what records them.
//! - [`wal_health`]: whether the WAL takes writes (for `/ready`).
//! - [`log_limit`]: summarised logging for faults that last.
//! - [`verify`]: offline checks and repairs of data files (`strata wal`).
//! - [`registry`], [`topic`], [`config`], [`entry`]: topics, their ids and
//!   configs, and the WAL payload layout.
//!
//! Invariants: offsets are dense per partition and assigned once, in WAL
//! order; a batch is readable only once durable; the bytes read are the
//! bytes the producer sent, with only the broker-owned header fields stamped;
//! a WAL segment is removed only once no partition holds a batch in it.

pub mod append;
pub mod batch_list;
mod clock;
pub mod config;
mod data_dir;
pub mod entry;
mod housekeeping;
pub mod key_compaction;
pub mod ledger;
pub mod log_limit;
pub mod metrics;
pub mod partition;
pub mod producer;
mod producer_ids;
pub mod producer_snapshot;
pub mod read;
mod read_ahead;
mod read_plan;
pub mod recovery;
pub mod registry;
pub mod retention;
pub mod seal;
pub mod segment_index;
pub mod store;
pub mod tail_cache;
pub mod topic;
pub mod verify;
pub mod wal_compaction;
pub mod wal_health;
mod walk;

pub use append::{Appended, PendingBatch};
pub use config::TopicConfig;
pub use partition::{PartitionLog, ReadResult};
pub use recovery::RecoveryReport;
pub use registry::Topic;
pub use store::{AppendTicket, LogStore, StoreOptions};
pub use topic::TopicId;

use std::path::PathBuf;

/// Errors of the log layer.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error("I/O on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Wal(#[from] strata_wal::WalError),
    #[error("metadata file {path} is unreadable: {reason}")]
    Metadata { path: PathBuf, reason: String },
    #[error("{path} is in a format this build does not read: {reason}")]
    UnsupportedFormat { path: PathBuf, reason: String },
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    #[error("{0}")]
    InvalidConfig(String),
    #[error("{0}")]
    InvalidTopic(String),
    #[error("topic {0} already exists")]
    TopicExists(String),
    #[error("unknown topic or partition")]
    UnknownTopicOrPartition,
    #[error("{0}")]
    InvalidPartitions(String),
    #[error("offset {offset} is outside the log [{log_start}, {high_watermark}]")]
    OffsetOutOfRange {
        offset: i64,
        log_start: i64,
        high_watermark: i64,
    },
    #[error("storage is unavailable after a write failure")]
    StorageUnavailable,
    #[error("the broker is shutting down")]
    ShuttingDown,
    /// Background compaction was paused: the run in progress is given up.
    #[error("background compaction is paused")]
    CompactionPaused,
    #[error("batch sequence {sequence} of producer {producer_id} does not follow its last batch")]
    OutOfOrderSequence { producer_id: i64, sequence: i32 },
    #[error("producer {producer_id} epoch {epoch} is older than its current epoch")]
    ProducerFenced { producer_id: i64, epoch: i16 },
}
