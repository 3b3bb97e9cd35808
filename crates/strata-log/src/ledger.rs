//! The segment ledger: for every WAL segment, the bytes and batches that
//! partitions still hold in it, and which partitions those are.
//!
//! Partitions keep it current as batches come (appends, recovery, WAL
//! compaction moving them) and go (retention, DeleteRecords, deleted
//! topics), so every reclamation decision — which segment to remove, which
//! to compact — is read from here instead of scanning every batch.
//!
//! Invariant: for each segment, `live_bytes` and `live_batches` are the sums
//! over the batches partitions hold in it (a batch counted with its WAL
//! entry's framing, so a segment of nothing but live batches has only its
//! file header dead); a segment with no live batch has no entry.

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};

use strata_wal::SegmentId;

use crate::topic::TopicId;

/// A partition, as a holder of batches.
pub type Holder = (TopicId, i32);

/// What partitions hold in one segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentUsage {
    pub live_bytes: u64,
    pub live_batches: u64,
    /// Batches held per partition.
    pub holders: BTreeMap<Holder, u64>,
}

/// Live bytes and holders of every WAL segment.
#[derive(Debug, Default)]
pub struct Ledger {
    segments: Mutex<BTreeMap<SegmentId, SegmentUsage>>,
}

impl Ledger {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<SegmentId, SegmentUsage>> {
        self.segments.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// `holder` now holds a batch of `len` bytes in `segment`.
    pub fn add(&self, segment: SegmentId, holder: Holder, len: u32) {
        self.add_run(segment, holder, u64::from(len), 1);
    }

    /// `holder` now holds `batches` more batches, of `bytes` in all, in
    /// `segment`.
    pub fn add_run(&self, segment: SegmentId, holder: Holder, bytes: u64, batches: u64) {
        if batches == 0 {
            return;
        }
        let mut segments = self.lock();
        let usage = segments.entry(segment).or_default();
        usage.live_bytes += bytes;
        usage.live_batches += batches;
        *usage.holders.entry(holder).or_default() += batches;
    }

    /// `holder` no longer holds a batch of `len` bytes in `segment`.
    pub fn remove(&self, segment: SegmentId, holder: Holder, len: u32) {
        self.remove_run(segment, holder, u64::from(len), 1);
    }

    /// `holder` no longer holds `batches` batches, of `bytes` in all, in
    /// `segment`.
    pub fn remove_run(&self, segment: SegmentId, holder: Holder, bytes: u64, batches: u64) {
        let mut segments = self.lock();
        let Some(usage) = segments.get_mut(&segment) else {
            return;
        };
        usage.live_bytes = usage.live_bytes.saturating_sub(bytes);
        usage.live_batches = usage.live_batches.saturating_sub(batches);
        if let Some(count) = usage.holders.get_mut(&holder) {
            *count = count.saturating_sub(batches);
            if *count == 0 {
                usage.holders.remove(&holder);
            }
        }
        if usage.live_batches == 0 {
            segments.remove(&segment);
        }
    }

    /// What partitions hold in `segment`.
    pub fn usage(&self, segment: SegmentId) -> SegmentUsage {
        self.lock().get(&segment).cloned().unwrap_or_default()
    }

    /// Live bytes per segment, oldest first.
    pub fn live_bytes(&self) -> Vec<(SegmentId, u64)> {
        self.lock()
            .iter()
            .map(|(id, usage)| (*id, usage.live_bytes))
            .collect()
    }

    /// Whether any partition holds a batch in `segment`.
    pub fn is_held(&self, segment: SegmentId) -> bool {
        self.lock().contains_key(&segment)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_follow_batches_coming_and_going() {
        let ledger = Ledger::default();
        let a = (TopicId([1; 16]), 0);
        let b = (TopicId([2; 16]), 3);
        ledger.add(7, a, 100);
        ledger.add(7, a, 50);
        ledger.add(7, b, 10);
        ledger.add(8, b, 1);
        let usage = ledger.usage(7);
        assert_eq!((usage.live_bytes, usage.live_batches), (160, 3));
        assert_eq!(usage.holders, BTreeMap::from([(a, 2), (b, 1)]));
        ledger.remove(7, a, 100);
        ledger.remove(7, a, 50);
        assert_eq!(ledger.usage(7).holders, BTreeMap::from([(b, 1)]));
        ledger.remove(7, b, 10);
        assert!(!ledger.is_held(7));
        assert!(ledger.is_held(8));
        assert_eq!(ledger.live_bytes(), vec![(8, 1)]);
        // A removal the ledger does not know of changes nothing.
        ledger.remove(9, a, 5);
        assert_eq!(ledger.live_bytes(), vec![(8, 1)]);
    }
}
