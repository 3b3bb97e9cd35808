//! Key compaction (`cleanup.policy=compact`), on the sealing thread: the
//! newest record of each key survives, offsets are kept (gaps appear),
//! order is kept.
//!
//! One due partition at a time ([`plan`]): the newest offset of every key
//! in its dirty part is gathered ([`key_map`]); then every batch below the
//! cleanable end is filtered — records superseded by a newer one of their
//! key go, tombstones go once `delete.retention.ms` has passed since a
//! cleaning first reached them, records of aborted transactions go, and a
//! transaction marker goes once no record of its transaction is left and
//! `delete.retention.ms` has passed since a cleaning first reached it (as
//! in Kafka; while any batch of the pass could not be read, every marker
//! stays). A batch left whole is untouched; one left
//! empty is dropped; any other is rebuilt with the kept records' bytes as
//! the producer sent them (`strata_protocol::retain`). Each sealed segment
//! holding a changed batch is rewritten in place by WAL compaction's
//! machinery, so the same crash safety holds.
//!
//! Differences from Kafka: a tombstone's age is kept in memory (after a
//! restart, tombstones stay another `delete.retention.ms`), not stamped
//! into the batch (KIP-534), so untouched records keep their bytes; an
//! idempotent producer's batch left empty is dropped, not kept empty (its
//! state is in the producer snapshots).

pub mod key_map;
pub mod plan;

use crate::walk::Held;
use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use strata_protocol::batch::{validate_crc, BatchHeader};
use strata_protocol::records::for_each_record;
use strata_protocol::retain::{retain_records, Retained};
use strata_wal::{SegmentFile, SegmentId};
use tracing::{debug, error, info, warn};

use crate::config::TopicConfig;
use crate::log_limit::LogLimit;
use crate::metrics;
use crate::partition::{PartitionLog, DECOMPRESS_LIMIT};
use crate::producer::AbortedTxn;
use crate::seal::Sealer;
use crate::wal_compaction::budget::IoBudget;
use crate::wal_compaction::{RunOutcome, Transform, Transforms};
use crate::LogError;
use key_map::KeyMap;
use plan::{BatchFacts, CleanerState, CompactSettings};

/// Memory for the keys of one cleaning.
const KEY_MAP_BYTES: usize = 64 * 1024 * 1024;

static CLEANING_FAILED: LogLimit = LogLimit::new(Duration::from_secs(10));

/// One batch below the cleanable end.
struct Batch {
    base_offset: i64,
    last_offset: i64,
    segment: SegmentId,
    position: u64,
    len: u32,
    file: Arc<SegmentFile>,
}

impl Sealer {
    /// Cleans the first compacted partition that is due, if any.
    pub(crate) fn compact_keys_next(&mut self, now: i64) -> Option<Result<RunOutcome, ()>> {
        for topic in self.registry.topics() {
            let config = topic.config();
            if !config.compact {
                continue;
            }
            for partition in topic.partitions() {
                let Some(end) = self.due(&partition, &config, now) else {
                    continue;
                };
                let started = Instant::now();
                return Some(match self.clean(&partition, &config, end, now) {
                    Ok(outcome) => {
                        metrics::record_key_compaction(started.elapsed(), outcome.batches_changed);
                        debug!(topic = %topic.name, partition = partition.index, end, changed = outcome.batches_changed, "key compaction pass");
                        Ok(outcome.rewrite)
                    }
                    Err(e @ (LogError::ShuttingDown | LogError::CompactionPaused)) => {
                        info!(topic = %topic.name, partition = partition.index, reason = %e, "key compaction pass given up");
                        Err(())
                    }
                    Err(e) => {
                        metrics::count(metrics::KEY_COMPACTION_FAILURES);
                        if let Some(suppressed) = CLEANING_FAILED.admit() {
                            error!(topic = %topic.name, partition = partition.index, error = %e, suppressed, "key compaction failed; retried later");
                        }
                        Err(())
                    }
                });
            }
        }
        None
    }

    fn due(&self, partition: &PartitionLog, config: &TopicConfig, now: i64) -> Option<i64> {
        // The partition's batches, listed for the plan while it decides
        // (a compacted topic's, brought back from the indexes).
        let walked = partition.with_batches(&mut Held::new(), |st, idx| {
            let mut facts = Vec::new();
            st.visit_from(i64::MIN, idx, |b| {
                facts.push(BatchFacts {
                    base_offset: b.base_offset,
                    last_offset: b.last_offset,
                    max_timestamp: b.max_timestamp,
                    len: u64::from(b.len),
                    sealed: self.sealed.contains(&b.segment),
                });
                true
            })?;
            let stable_end = st.producers.last_stable_offset(st.high_watermark);
            Ok((facts, stable_end, st.cleaner.clone()))
        });
        let (facts, stable_end, cleaner) = match walked {
            Ok(walked) => walked,
            Err(e) => {
                if let Some(suppressed) = CLEANING_FAILED.admit() {
                    error!(topic = %partition.topic.to_hex(), partition = partition.index, error = %e, suppressed, "key compaction cannot list a partition's batches; retried later");
                }
                return None;
            }
        };
        let settings = CompactSettings {
            min_dirty_permille: config.min_cleanable_dirty_ratio_permille,
            min_lag_ms: config.min_compaction_lag_ms,
            max_lag_ms: config.max_compaction_lag_ms,
        };
        plan::cleanable_end(&facts, stable_end, &cleaner, settings, now)
    }

    fn clean(
        &mut self,
        partition: &PartitionLog,
        config: &TopicConfig,
        end: i64,
        now: i64,
    ) -> Result<Cleaned, LogError> {
        let (batches, aborted, cleaner, newest) =
            partition.with_batches(&mut Held::new(), |st, idx| {
                let mut batches = Vec::new();
                st.visit_from(i64::MIN, idx, |b| {
                    if b.last_offset >= end {
                        return false;
                    }
                    batches.push(Batch {
                        base_offset: b.base_offset,
                        last_offset: b.last_offset,
                        segment: b.segment,
                        position: b.position,
                        len: b.len,
                        file: Arc::clone(b.file),
                    });
                    true
                })?;
                let aborted = st.producers.aborted_between(st.log_start, end);
                let newest = st.batches().last_base();
                Ok((batches, aborted, st.cleaner.clone(), newest))
            })?;
        let holder = (partition.topic, partition.index);
        // Reading and filtering on compaction's own thread (no lock taken).
        let (by_segment, next_expiry, end) = self.on_compaction_thread(|| {
            let (keys, end) = self.newest_offsets(&batches, &aborted, cleaner.cleaned_to, end)?;
            let mut filter = Filter {
                keys: &keys,
                aborted: &aborted,
                cleaner: &cleaner,
                delete_retention_ms: config.delete_retention_ms,
                now,
                data_left: HashMap::new(),
                unreadable: false,
            };
            let (by_segment, next_expiry) =
                self.filter_batches(&batches, end, &mut filter, holder, newest)?;
            Ok((by_segment, next_expiry, end))
        })?;
        let mut cleaned = Cleaned::default();
        for (segment, transforms) in &by_segment {
            self.give_way()?;
            if !self.sealed.contains(segment) {
                continue;
            }
            let outcome = self.rewrite_run(&[*segment], transforms)?;
            cleaned.batches_changed += transforms.len();
            cleaned.rewrite.copied_bytes += outcome.copied_bytes;
            cleaned.rewrite.reclaimed_bytes += outcome.reclaimed_bytes;
            cleaned.rewrite.batches += outcome.batches;
            cleaned.rewrite.damaged += outcome.damaged;
        }
        partition
            .state_mut()
            .cleaner
            .record_pass(end, now, next_expiry);
        Ok(cleaned)
    }

    /// What the cleaning does to each batch below `end`, by segment, and
    /// when the next tombstone expires.
    fn filter_batches(
        &self,
        batches: &[Batch],
        end: i64,
        filter: &mut Filter<'_>,
        holder: crate::ledger::Holder,
        newest: Option<i64>,
    ) -> Result<(BTreeMap<SegmentId, Transforms>, Option<i64>), LogError> {
        let mut by_segment: BTreeMap<SegmentId, Transforms> = BTreeMap::new();
        let mut next_expiry: Option<i64> = None;
        let mut reads = IoBudget::new(self.compaction.bytes_per_sec);
        for batch in batches.iter().take_while(|b| b.last_offset < end) {
            let Some(bytes) = self.read_paced(batch, &mut reads)? else {
                filter.unreadable = true;
                continue;
            };
            let (mut transform, expiry) = filter.apply(&bytes)?;
            // The partition's newest batch is never dropped: after a
            // restart the next offset follows the last batch stored, and
            // offsets must never be handed out twice.
            if Some(batch.base_offset) == newest && transform == Some(Transform::Drop) {
                transform = None;
            }
            next_expiry = match (next_expiry, expiry) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            if let Some(transform) = transform {
                by_segment
                    .entry(batch.segment)
                    .or_default()
                    .insert((holder, batch.base_offset), transform);
            }
        }
        Ok((by_segment, next_expiry))
    }

    /// The newest offset of each key in the dirty batches (from
    /// `cleaned_to`), and where the cleaning ends: earlier than `end` if
    /// the keys would overflow their memory.
    fn newest_offsets(
        &self,
        batches: &[Batch],
        aborted: &[AbortedTxn],
        cleaned_to: i64,
        end: i64,
    ) -> Result<(KeyMap, i64), LogError> {
        let mut keys = KeyMap::new(KEY_MAP_BYTES);
        let mut reads = IoBudget::new(self.compaction.bytes_per_sec);
        for batch in batches.iter().filter(|b| b.base_offset >= cleaned_to) {
            let Some(bytes) = self.read_paced(batch, &mut reads)? else {
                continue;
            };
            let Ok(header) = BatchHeader::parse(&bytes) else {
                continue;
            };
            if header.is_control() || is_aborted(&header, aborted) {
                continue;
            }
            let records = usize::try_from(header.record_count).unwrap_or(0);
            if !keys.has_room_for(bytes.len(), records) {
                return Ok((keys, batch.base_offset.min(end)));
            }
            let decoded = for_each_record(&bytes, &header, DECOMPRESS_LIMIT, |r| {
                if let Some(key) = r.key {
                    keys.insert(key, r.offset);
                }
            });
            if let Err(e) = decoded {
                // Its keys do not count: older records of them are kept.
                report_unfilterable(batch.base_offset, &e);
            }
        }
        Ok((keys, end))
    }
}

impl Sealer {
    /// A batch's bytes if intact (see [`read_checked`]), after waiting as
    /// the I/O budget says; an error once the store is shutting down.
    fn read_paced(&self, batch: &Batch, reads: &mut IoBudget) -> Result<Option<Vec<u8>>, LogError> {
        let bytes = read_checked(batch);
        reads.spend(u64::from(batch.len));
        self.give_way()?;
        Ok(bytes)
    }
}

/// What one partition's cleaning did.
#[derive(Debug, Default)]
struct Cleaned {
    rewrite: RunOutcome,
    batches_changed: usize,
}

/// The per-batch decision of one cleaning, batch by batch in offset order.
struct Filter<'a> {
    keys: &'a KeyMap,
    aborted: &'a [AbortedTxn],
    cleaner: &'a CleanerState,
    delete_retention_ms: i64,
    now: i64,
    /// By producer id: whether a record of its transaction now open in
    /// the pass is kept.
    data_left: HashMap<i64, bool>,
    /// A batch of the pass could not be read: its transaction is unknown.
    unreadable: bool,
}

impl Filter<'_> {
    /// When something compaction reached at `offset` may go.
    fn goes_at(&self, offset: i64) -> i64 {
        let reached = self.cleaner.reached_at(offset).unwrap_or(self.now);
        reached.saturating_add(self.delete_retention_ms)
    }

    /// What becomes of a batch (`None`: untouched), and when the earliest
    /// tombstone or marker it keeps may go.
    fn apply(&mut self, bytes: &[u8]) -> Result<(Option<Transform>, Option<i64>), LogError> {
        let header = BatchHeader::parse(bytes).map_err(|e| LogError::Corrupt(e.to_string()))?;
        if header.is_control() {
            let data_left = self.data_left.remove(&header.producer_id) != Some(false);
            if data_left || self.unreadable {
                return Ok((None, None));
            }
            let goes_at = self.goes_at(header.base_offset);
            if goes_at <= self.now {
                return Ok((Some(Transform::Drop), None));
            }
            return Ok((None, Some(goes_at)));
        }
        if is_aborted(&header, self.aborted) {
            self.data_left.entry(header.producer_id).or_insert(false);
            return Ok((Some(Transform::Drop), None));
        }
        let mut expiry: Option<i64> = None;
        let retained = retain_records(bytes, &header, DECOMPRESS_LIMIT, |r| {
            let Some(key) = r.key else {
                return true;
            };
            if self
                .keys
                .latest(key)
                .is_some_and(|newest| newest > r.offset)
            {
                return false;
            }
            if !r.is_tombstone() {
                return true;
            }
            let goes_at = self.goes_at(r.offset);
            if goes_at <= self.now {
                return false;
            }
            expiry = Some(expiry.map_or(goes_at, |e| e.min(goes_at)));
            true
        });
        let retained = match retained {
            Ok(retained) => retained,
            Err(e) => {
                // A batch whose records do not decode is kept as it is:
                // compaction keeps too much rather than stopping.
                report_unfilterable(header.base_offset, &e);
                Retained::All
            }
        };
        if header.is_transactional() {
            let left = self.data_left.entry(header.producer_id).or_insert(false);
            *left |= !matches!(retained, Retained::None);
        }
        let transform = match retained {
            Retained::All => None,
            Retained::None => Some(Transform::Drop),
            Retained::Some(rebuilt) => Some(Transform::Replace(rebuilt)),
        };
        Ok((transform, expiry))
    }
}

static UNFILTERABLE: LogLimit = LogLimit::new(Duration::from_secs(10));

fn report_unfilterable(base_offset: i64, error: &strata_protocol::error::BatchError) {
    if let Some(suppressed) = UNFILTERABLE.admit() {
        warn!(base_offset, %error, suppressed, "a batch's records do not decode; key compaction keeps it as it is");
    }
}

/// Whether a transactional batch belongs to an aborted transaction.
fn is_aborted(header: &BatchHeader, aborted: &[AbortedTxn]) -> bool {
    header.is_transactional()
        && aborted.iter().any(|a| {
            a.producer_id == header.producer_id
                && a.first_offset <= header.base_offset
                && header.base_offset < a.last_offset
        })
}

/// The batch's bytes if they are intact (a damaged batch is left for the
/// rewrite, which reports and drops it).
fn read_checked(batch: &Batch) -> Option<Vec<u8>> {
    let bytes =
        strata_wal::read_at(batch.file.buffered(), batch.position, batch.len as usize).ok()?;
    let header = BatchHeader::parse(&bytes).ok()?;
    (header.base_offset == batch.base_offset
        && header.last_offset() == batch.last_offset
        && validate_crc(&bytes, &header).is_ok())
    .then_some(bytes)
}
