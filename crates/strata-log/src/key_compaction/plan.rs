//! Key compaction's decisions, as pure logic: when a compacted partition is
//! due, up to which offset it may be cleaned, and when compaction first
//! reached an offset (which is how long a tombstone has been kept).
//!
//! As in Kafka, a partition is due when its dirty part (records after the
//! last cleaning) is at least `min.cleanable.dirty.ratio` of its cleanable
//! part, or its oldest dirty record has waited `max.compaction.lag.ms`, or
//! a kept tombstone's `delete.retention.ms` has run out. What may be cleaned
//! ends at the first batch that is still in the segment being written, not
//! yet stable (an open transaction, or above the high watermark), or
//! younger than `min.compaction.lag.ms`.

use std::collections::VecDeque;

/// What the plan knows of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchFacts {
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub len: u64,
    /// In a sealed WAL segment (not the one being written).
    pub sealed: bool,
}

/// A topic's key compaction settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompactSettings {
    pub min_dirty_permille: u32,
    pub min_lag_ms: i64,
    pub max_lag_ms: i64,
}

/// Most passes remembered for tombstone ages; older ones merge, keeping
/// the later time (tombstones then live a little longer, never shorter).
const MAX_PASSES: usize = 64;

/// Key compaction's progress through one partition (in memory: after a
/// restart everything is dirty again, and tombstones are kept another
/// `delete.retention.ms`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CleanerState {
    /// Offsets below this were cleaned.
    pub cleaned_to: i64,
    /// `(end, at)`: offsets below `end` (and not below an earlier entry's)
    /// were first reached by the pass at `at` ms.
    passes: VecDeque<(i64, i64)>,
    /// When the next kept tombstone may go.
    pub next_tombstone_expiry: Option<i64>,
}

impl CleanerState {
    /// When a cleaning first reached `offset`, if one has.
    pub fn reached_at(&self, offset: i64) -> Option<i64> {
        self.passes
            .iter()
            .find(|(end, _)| offset < *end)
            .map(|(_, at)| *at)
    }

    /// Notes a pass over everything below `end` at `now_ms`.
    pub fn record_pass(&mut self, end: i64, now_ms: i64, next_tombstone_expiry: Option<i64>) {
        if end > self.cleaned_to {
            self.passes.push_back((end, now_ms));
            self.cleaned_to = end;
        }
        // Passes are in time order: dropping the oldest hands its offsets
        // to the next pass, a later time.
        while self.passes.len() > MAX_PASSES {
            self.passes.pop_front();
        }
        self.next_tombstone_expiry = next_tombstone_expiry;
    }
}

/// The end (exclusive) of what may be cleaned now, if the partition is due.
/// `batches` are the partition's, in offset order; `stable_end` is the
/// last stable offset (at most the high watermark).
pub fn cleanable_end(
    batches: &[BatchFacts],
    stable_end: i64,
    state: &CleanerState,
    settings: CompactSettings,
    now_ms: i64,
) -> Option<i64> {
    let young_after = now_ms.saturating_sub(settings.min_lag_ms);
    let end = batches
        .iter()
        .find(|b| !b.sealed || b.last_offset >= stable_end || b.max_timestamp > young_after)
        .map_or(stable_end, |b| b.base_offset.min(stable_end));
    let cleanable = || batches.iter().take_while(|b| b.last_offset < end);
    let total: u64 = cleanable().map(|b| b.len).sum();
    let dirty: Vec<&BatchFacts> = cleanable()
        .filter(|b| b.base_offset >= state.cleaned_to)
        .collect();
    let dirty_bytes: u64 = dirty.iter().map(|b| b.len).sum();
    let ratio_due = dirty_bytes > 0
        && dirty_bytes.saturating_mul(1000)
            >= u64::from(settings.min_dirty_permille).saturating_mul(total);
    let lag_due = dirty
        .iter()
        .any(|b| b.max_timestamp <= now_ms.saturating_sub(settings.max_lag_ms));
    let tombstones_due = state
        .next_tombstone_expiry
        .is_some_and(|expiry| expiry <= now_ms);
    (total > 0 && (ratio_due || lag_due || tombstones_due)).then_some(end)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SETTINGS: CompactSettings = CompactSettings {
        min_dirty_permille: 500,
        min_lag_ms: 0,
        max_lag_ms: i64::MAX,
    };

    /// Ten sealed batches of 100 bytes, offsets 10 apart, timestamps 1000 apart.
    fn batches() -> Vec<BatchFacts> {
        (0..10)
            .map(|i| BatchFacts {
                base_offset: i * 10,
                last_offset: i * 10 + 9,
                max_timestamp: i * 1000,
                len: 100,
                sealed: true,
            })
            .collect()
    }

    #[test]
    fn due_when_half_is_dirty_and_never_past_the_unsealed_or_unstable_part() {
        let mut list = batches();
        list[8].sealed = false;
        let mut state = CleanerState::default();
        assert_eq!(
            cleanable_end(&list, 100, &state, SETTINGS, 50_000),
            Some(80)
        );
        // Stable only up to 45: a transaction is open there.
        assert_eq!(cleanable_end(&list, 45, &state, SETTINGS, 50_000), Some(40));
        state.record_pass(80, 1_000, None);
        // Nothing new is dirty: not due.
        assert_eq!(cleanable_end(&list, 100, &state, SETTINGS, 50_000), None);
        // Once sealed, 80..=99 are dirty: 200 of 1000 bytes, under half.
        list[8].sealed = true;
        assert_eq!(cleanable_end(&list, 100, &state, SETTINGS, 50_000), None);
        let eager = CompactSettings {
            min_dirty_permille: 200,
            ..SETTINGS
        };
        assert_eq!(cleanable_end(&list, 100, &state, eager, 50_000), Some(100));
    }

    #[test]
    fn min_lag_holds_young_records_back_and_max_lag_forces_a_pass() {
        let list = batches();
        let lagged = CompactSettings {
            min_lag_ms: 4_500,
            ..SETTINGS
        };
        // At 10_000, batches stamped after 5_500 are too young.
        assert_eq!(
            cleanable_end(&list, 100, &CleanerState::default(), lagged, 10_000),
            Some(60)
        );
        let mut state = CleanerState::default();
        state.record_pass(90, 0, None);
        assert_eq!(cleanable_end(&list, 100, &state, SETTINGS, 10_000), None);
        let forced = CompactSettings {
            max_lag_ms: 500,
            ..SETTINGS
        };
        assert_eq!(cleanable_end(&list, 100, &state, forced, 10_000), Some(100));
    }

    #[test]
    fn tombstone_ages_come_from_the_pass_that_first_reached_them() {
        let list = batches();
        let mut state = CleanerState::default();
        state.record_pass(40, 1_000, Some(5_000));
        state.record_pass(90, 2_000, Some(5_000));
        assert_eq!(state.reached_at(39), Some(1_000));
        assert_eq!(state.reached_at(40), Some(2_000));
        assert_eq!(state.reached_at(95), None);
        // Nothing dirty enough, but a tombstone's time is up (batches
        // stamped after "now" count as too young to clean).
        assert_eq!(cleanable_end(&list, 100, &state, SETTINGS, 4_999), None);
        assert_eq!(cleanable_end(&list, 100, &state, SETTINGS, 5_000), Some(60));
    }

    #[test]
    fn merged_passes_keep_tombstones_longer_never_shorter() {
        let mut state = CleanerState::default();
        for i in 0..100 {
            state.record_pass(i * 10 + 10, i * 100, None);
        }
        for offset in [0, 5, 355, 999] {
            let truth = (offset / 10) * 100;
            assert!(
                state.reached_at(offset).unwrap() >= truth,
                "offset {offset}"
            );
        }
    }
}
