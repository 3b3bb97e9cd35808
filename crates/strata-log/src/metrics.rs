//! The storage layer's metrics: their names, and what records them.
//!
//! Names are part of the operator interface (dashboards and alerts use
//! them); `docs/metrics.md` lists each one, and a name never changes
//! silently. Labels are bounded: none of these carries any label.

use std::time::Duration;

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, histogram, Unit};

/// Time from a produce batch entering the append queue to it being durable.
pub const WAL_APPEND_DURATION: &str = "wal_append_duration_seconds";
/// Time one `fdatasync` of the WAL takes.
pub const WAL_FSYNC_DURATION: &str = "wal_fsync_duration_seconds";
/// Entries written by one group commit (one write + one fsync).
pub const WAL_GROUP_COMMIT_ENTRIES: &str = "wal_group_commit_entries";
/// Bytes written by one group commit.
pub const WAL_GROUP_COMMIT_BYTES: &str = "wal_group_commit_bytes";
pub const WAL_APPENDED_ENTRIES: &str = "wal_appended_entries_total";
pub const WAL_APPENDED_BYTES: &str = "wal_appended_bytes_total";
/// Group commits refused because the write or the fsync failed.
pub const WAL_WRITE_FAILURES: &str = "wal_write_failures_total";
/// WAL segments sealed (indexed), and attempts that failed.
pub const WAL_SEGMENTS_SEALED: &str = "wal_segments_sealed_total";
pub const WAL_SEAL_FAILURES: &str = "wal_seal_failures_total";
/// 1 while the WAL takes writes, 0 after a failed write until one succeeds.
pub const WAL_WRITABLE: &str = "wal_writable";
/// Sealed WAL segments removed because no partition held a batch in them,
/// and their bytes.
pub const WAL_SEGMENTS_REMOVED: &str = "wal_segments_removed_total";
pub const WAL_REMOVED_BYTES: &str = "wal_removed_bytes_total";
/// WAL segment files on disk, and their bytes (sampled when scraped).
pub const WAL_SEGMENTS: &str = "wal_segments";
pub const WAL_BYTES: &str = "wal_bytes";
/// Recovery at the last start.
pub const WAL_RECOVERY_SUCCESSES: &str = "wal_recovery_successes_total";
pub const WAL_RECOVERY_FAILURES: &str = "wal_recovery_failures_total";
pub const WAL_RECOVERY_DURATION: &str = "wal_recovery_duration_seconds";
pub const WAL_RECOVERY_TORN_TAILS: &str = "wal_recovery_torn_tail_truncations_total";
pub const WAL_RECOVERY_TORN_BYTES: &str = "wal_recovery_torn_tail_bytes_total";
/// WAL compaction: runs, bytes given back, bytes written (its write
/// amplification), failed runs, and how long a run takes.
pub const WAL_COMPACTION_RUNS: &str = "wal_compaction_runs_total";
pub const WAL_COMPACTION_BYTES_RECLAIMED: &str = "wal_compaction_bytes_reclaimed_total";
pub const WAL_COMPACTION_BYTES_COPIED: &str = "wal_compaction_bytes_copied_total";
pub const WAL_COMPACTION_FAILURES: &str = "wal_compaction_failures_total";
pub const WAL_COMPACTION_DURATION: &str = "wal_compaction_duration_seconds";
/// Bytes compaction (key and WAL) read and wrote: what its I/O budget
/// paces, counted as it goes (runs given up included).
pub const COMPACTION_IO_BYTES: &str = "compaction_io_bytes_total";
/// 1 while an operator holds background compaction back.
pub const COMPACTION_PAUSED: &str = "compaction_paused";
/// Live bytes of the WAL over its bytes on disk (set by each compaction check).
pub const WAL_LIVE_RATIO: &str = "wal_live_ratio";
/// Key compaction passes, batches they changed, failed passes, duration.
pub const KEY_COMPACTION_RUNS: &str = "key_compaction_runs_total";
pub const KEY_COMPACTION_BATCHES_CHANGED: &str = "key_compaction_batches_changed_total";
pub const KEY_COMPACTION_FAILURES: &str = "key_compaction_failures_total";
pub const KEY_COMPACTION_DURATION: &str = "key_compaction_duration_seconds";
/// Batches and bytes retention removed from partitions (`retention.ms`,
/// `retention.bytes`).
/// Runs of batches read back from sealed segments' indexes (their
/// entries were not in the index cache).
pub const INDEX_ENTRIES_LOADED: &str = "wal_index_entries_loaded_total";
/// Sealed segments' indexes found damaged when their entries were needed
/// (the segment is scanned for them instead).
pub const INDEX_DAMAGED: &str = "wal_index_damaged_total";
pub const RETENTION_DELETED_BATCHES: &str = "retention_deleted_batches_total";
pub const RETENTION_DELETED_BYTES: &str = "retention_deleted_bytes_total";
/// Batches reads took from the tail cache, and from disk.
pub const WAL_CACHE_HITS: &str = "wal_cache_hits_total";
pub const WAL_CACHE_MISSES: &str = "wal_cache_misses_total";
/// Read-ahead for consumers reading old data in order: batches reads took
/// from it, bytes it read, and bytes it read that no read took.
pub const WAL_READ_AHEAD_HITS: &str = "wal_read_ahead_hits_total";
pub const WAL_READ_AHEAD_BYTES: &str = "wal_read_ahead_bytes_total";
pub const WAL_READ_AHEAD_UNUSED_BYTES: &str = "wal_read_ahead_unused_bytes_total";
/// Reads that waited for a window still being read, and windows not read
/// for want of memory.
pub const WAL_READ_AHEAD_WAITS: &str = "wal_read_ahead_waits_total";
pub const WAL_READ_AHEAD_REFUSED: &str = "wal_read_ahead_refused_total";
/// Stored batches that failed their CRC-32C when read and were not served.
pub const STORED_BATCHES_DAMAGED: &str = "stored_batches_damaged_total";

/// Registers every storage metric with its help text, and puts each
/// counter at zero so it is present from the first scrape.
pub fn describe() {
    describe_histogram!(
        WAL_APPEND_DURATION,
        Unit::Seconds,
        "Time from a produced batch entering the append queue to it being durable"
    );
    describe_histogram!(
        WAL_FSYNC_DURATION,
        Unit::Seconds,
        "Duration of one WAL fdatasync"
    );
    describe_histogram!(
        WAL_GROUP_COMMIT_ENTRIES,
        Unit::Count,
        "WAL entries made durable by one group commit (one write, one fsync)"
    );
    describe_histogram!(
        WAL_GROUP_COMMIT_BYTES,
        Unit::Bytes,
        "Bytes made durable by one group commit"
    );
    let counters = [
        (
            WAL_APPENDED_ENTRIES,
            "WAL entries (record batches) made durable",
        ),
        (
            WAL_APPENDED_BYTES,
            "Bytes of WAL entries made durable, framing included",
        ),
        (
            WAL_WRITE_FAILURES,
            "Group commits refused because the WAL write or fsync failed, or because the WAL could not be cut back after such a failure",
        ),
        (
            WAL_SEGMENTS_SEALED,
            "WAL segments sealed: rolled and indexed",
        ),
        (
            WAL_SEGMENTS_REMOVED,
            "Sealed WAL segments removed because no partition held a batch in them",
        ),
        (
            WAL_REMOVED_BYTES,
            "Bytes of the WAL segments removed because no partition held a batch in them",
        ),
        (
            WAL_SEAL_FAILURES,
            "Attempts to seal a WAL segment that failed (retried later)",
        ),
        (
            WAL_RECOVERY_SUCCESSES,
            "Intact WAL entries replayed by recovery at the last start",
        ),
        (
            WAL_RECOVERY_FAILURES,
            "WAL entries that failed their checksum at the last start and were skipped",
        ),
        (
            WAL_RECOVERY_TORN_TAILS,
            "Torn WAL segment tails cut off at the last start",
        ),
        (
            WAL_RECOVERY_TORN_BYTES,
            "Bytes cut off in torn tails at the last start",
        ),
        (
            WAL_COMPACTION_RUNS,
            "WAL compaction runs: a run of sealed segments replaced by one file of their live batches",
        ),
        (
            WAL_COMPACTION_BYTES_RECLAIMED,
            "Bytes of disk WAL compaction gave back",
        ),
        (
            WAL_COMPACTION_BYTES_COPIED,
            "Bytes WAL compaction wrote: live batches copied forward (its write amplification)",
        ),
        (
            WAL_COMPACTION_FAILURES,
            "WAL compaction runs that failed; their segments stay as they were",
        ),
        (
            COMPACTION_IO_BYTES,
            "Bytes compaction (key and WAL) read and wrote, as paced by its I/O budget",
        ),
        (
            KEY_COMPACTION_RUNS,
            "Key compaction passes over a compacted partition (cleanup.policy=compact)",
        ),
        (
            KEY_COMPACTION_BATCHES_CHANGED,
            "Record batches key compaction rebuilt with fewer records or dropped",
        ),
        (
            KEY_COMPACTION_FAILURES,
            "Key compaction passes that failed; the partition is tried again later",
        ),
        (
            INDEX_ENTRIES_LOADED,
            "A partition's batch list in a sealed WAL segment read back from the segment's index (not in the index cache)",
        ),
        (
            INDEX_DAMAGED,
            "Sealed WAL segment indexes found damaged when a partition's batches were read back from them; the segment was scanned for them instead",
        ),
        (
            RETENTION_DELETED_BATCHES,
            "Record batches removed from partitions by retention.ms or retention.bytes",
        ),
        (
            RETENTION_DELETED_BYTES,
            "Bytes of the record batches removed by retention.ms or retention.bytes",
        ),
        (
            WAL_CACHE_HITS,
            "Batches reads took from the tail cache of recent WAL writes",
        ),
        (
            WAL_CACHE_MISSES,
            "Batches reads took from disk (older than the tail cache)",
        ),
        (
            WAL_READ_AHEAD_HITS,
            "Batches reads took from the read-ahead (read while the previous answer travelled)",
        ),
        (
            WAL_READ_AHEAD_BYTES,
            "Bytes read ahead from disk for consumers reading old data in order",
        ),
        (
            WAL_READ_AHEAD_UNUSED_BYTES,
            "Bytes of batches read ahead that no read took (the reader went away or jumped)",
        ),
        (
            WAL_READ_AHEAD_WAITS,
            "Reads that waited for read-ahead still reading their batches",
        ),
        (
            WAL_READ_AHEAD_REFUSED,
            "Read-ahead windows not read because every read-ahead slab was in use",
        ),
        (
            STORED_BATCHES_DAMAGED,
            "Stored batches that failed their CRC-32C when read; left out of the response",
        ),
    ];
    for (name, help) in counters {
        describe_counter!(name, Unit::Count, help);
        counter!(name).absolute(0);
    }
    describe_gauge!(
        WAL_RECOVERY_DURATION,
        Unit::Seconds,
        "Duration of recovery at the last start"
    );
    describe_gauge!(
        WAL_SEGMENTS,
        Unit::Count,
        "WAL segment files on disk (they hold all stored records)"
    );
    describe_gauge!(WAL_BYTES, Unit::Bytes, "Bytes of WAL segment files on disk");
    describe_histogram!(
        WAL_COMPACTION_DURATION,
        Unit::Seconds,
        "Duration of one WAL compaction run"
    );
    describe_histogram!(
        KEY_COMPACTION_DURATION,
        Unit::Seconds,
        "Duration of one key compaction pass over a partition"
    );
    describe_gauge!(
        WAL_LIVE_RATIO,
        Unit::Count,
        "Live bytes of the WAL over its bytes on disk, at the last compaction check"
    );
    describe_gauge!(
        COMPACTION_PAUSED,
        Unit::Count,
        "1 while background compaction is paused (POST /compaction/pause)"
    );
    set_compaction_paused(false);
    describe_gauge!(
        WAL_WRITABLE,
        Unit::Count,
        "1 while the WAL takes writes; 0 from a failed write until a group is durable again"
    );
}

pub(crate) fn set_compaction_paused(paused: bool) {
    metrics::gauge!(COMPACTION_PAUSED).set(if paused { 1.0 } else { 0.0 });
}

pub(crate) fn set_wal_writable(writable: bool) {
    metrics::gauge!(WAL_WRITABLE).set(if writable { 1.0 } else { 0.0 });
}

/// Records what recovery found at startup: entries replayed, damaged,
/// torn tails and their bytes, and how long it took.
pub(crate) fn record_recovery(
    replayed: u64,
    damaged: u64,
    (torn_tails, torn_bytes): (u64, u64),
    duration: Duration,
) {
    counter!(WAL_RECOVERY_SUCCESSES).increment(replayed);
    counter!(WAL_RECOVERY_FAILURES).increment(damaged);
    counter!(WAL_RECOVERY_TORN_TAILS).increment(torn_tails);
    counter!(WAL_RECOVERY_TORN_BYTES).increment(torn_bytes);
    metrics::gauge!(WAL_RECOVERY_DURATION).set(duration.as_secs_f64());
}

pub(crate) fn record_group_commit(entries: usize, bytes: usize, fsync: Duration) {
    histogram!(WAL_FSYNC_DURATION).record(fsync.as_secs_f64());
    histogram!(WAL_GROUP_COMMIT_ENTRIES).record(entries as f64);
    histogram!(WAL_GROUP_COMMIT_BYTES).record(bytes as f64);
    counter!(WAL_APPENDED_ENTRIES).increment(entries as u64);
    counter!(WAL_APPENDED_BYTES).increment(bytes as u64);
}

pub(crate) fn record_append_latency(latency: Duration) {
    histogram!(WAL_APPEND_DURATION).record(latency.as_secs_f64());
}

pub(crate) fn record_wal_compaction(duration: Duration, copied: u64, reclaimed: u64) {
    histogram!(WAL_COMPACTION_DURATION).record(duration.as_secs_f64());
    counter!(WAL_COMPACTION_RUNS).increment(1);
    counter!(WAL_COMPACTION_BYTES_COPIED).increment(copied);
    counter!(WAL_COMPACTION_BYTES_RECLAIMED).increment(reclaimed);
}

pub(crate) fn record_key_compaction(duration: Duration, batches_changed: usize) {
    histogram!(KEY_COMPACTION_DURATION).record(duration.as_secs_f64());
    counter!(KEY_COMPACTION_RUNS).increment(1);
    counter!(KEY_COMPACTION_BATCHES_CHANGED).increment(batches_changed as u64);
}

pub(crate) fn set_wal_live_ratio(live: u64, total: u64) {
    #[allow(clippy::cast_precision_loss)]
    let ratio = if total == 0 {
        1.0
    } else {
        live as f64 / total as f64
    };
    metrics::gauge!(WAL_LIVE_RATIO).set(ratio);
}

pub(crate) fn count(name: &'static str) {
    counter!(name).increment(1);
}

pub(crate) fn count_by(name: &'static str, amount: u64) {
    counter!(name).increment(amount);
}

/// `(segment files, bytes)` of the WAL directory.
pub fn wal_disk_usage(data_dir: &std::path::Path) -> (u64, u64) {
    let mut files = 0;
    let mut bytes = 0;
    if let Ok(entries) = std::fs::read_dir(data_dir.join("wal")) {
        for entry in entries.flatten() {
            if entry.path().extension().and_then(|e| e.to_str()) == Some("wal") {
                files += 1;
                bytes += entry.metadata().map_or(0, |m| m.len());
            }
        }
    }
    (files, bytes)
}
