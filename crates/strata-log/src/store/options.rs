//! How the store is laid out, sized and run: the options `LogStore::open`
//! takes, with the broker's defaults.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use strata_wal::{RealStorage, Storage};

use crate::wal_compaction::{CompactionOptions, CompactionPolicy};

/// How the store is laid out and sized.
#[derive(Debug, Clone)]
pub struct StoreOptions {
    pub data_dir: PathBuf,
    /// A WAL segment is rolled (and sealed) once it holds this many bytes.
    pub wal_segment_bytes: u64,
    /// Produce requests queued for the appender before producers wait.
    pub append_queue: usize,
    /// Append to the WAL with direct I/O (bypassing the page cache) where
    /// the file system supports it.
    pub wal_direct_io: bool,
    /// Bytes of recent WAL writes kept in memory for reads.
    pub wal_cache_bytes: usize,
    /// Memory for batches read ahead for sequential readers of older data.
    pub wal_read_ahead_bytes: usize,
    /// Memory for sealed segments' index entries brought back for reads.
    pub wal_index_cache_bytes: usize,
    /// The broker's defaults for topic configs (`retention.ms` and the
    /// like), by topic config name; validated like topic overrides.
    pub topic_defaults: BTreeMap<String, String>,
    /// How often retention is enforced (Kafka's
    /// `log.retention.check.interval.ms`).
    pub retention_check_interval: Duration,
    pub wal_compaction: CompactionOptions,
    /// Run first on each thread compaction reads and writes on
    /// ([`crate::wal_compaction::thread`]): the broker lowers that
    /// thread's CPU and I/O priority there. `None`: it keeps the
    /// process's.
    pub compaction_thread_start: Option<fn()>,
    /// Where every file-system change goes: the real file system, or a
    /// simulated disk in crash tests (which refuses direct-I/O appends, so
    /// the WAL's appends go through it whatever `wal_direct_io` says).
    pub storage: Arc<dyn Storage>,
}

impl StoreOptions {
    pub fn new(data_dir: PathBuf) -> Self {
        StoreOptions {
            data_dir,
            wal_segment_bytes: 64 * 1024 * 1024,
            append_queue: 1024,
            wal_direct_io: true,
            wal_cache_bytes: 64 * 1024 * 1024,
            wal_read_ahead_bytes: crate::read_ahead::DEFAULT_BYTES,
            wal_index_cache_bytes: crate::segment_index::cache::DEFAULT_BYTES,
            topic_defaults: BTreeMap::new(),
            retention_check_interval: Duration::from_secs(300),
            wal_compaction: CompactionOptions {
                policy: CompactionPolicy {
                    live_ratio: 0.5,
                    dead_bytes: 100 * 1024 * 1024,
                    max_age_ms: 2 * 3600 * 1000,
                    max_output_bytes: 64 * 1024 * 1024,
                },
                bytes_per_sec: 32 * 1024 * 1024,
                check_interval: Duration::from_secs(30),
            },
            compaction_thread_start: None,
            storage: Arc::new(RealStorage),
        }
    }
}
