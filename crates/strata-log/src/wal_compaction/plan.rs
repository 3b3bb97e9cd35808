//! Which WAL segments to compact next: pure decisions over the ledger's
//! numbers and the files' sizes and ages.
//!
//! A sealed segment whose live bytes are below a fraction of its size is a
//! candidate. Compaction is due once the candidates hold enough dead bytes
//! together, or once one of them is old enough. The run compacted next is
//! seeded by the candidate that gives back the most bytes (the oldest
//! first among equals) and grows over its neighbours — other candidates,
//! small segments (earlier compactions' output) and segments nothing holds
//! — while its live bytes fit one segment. A run is always contiguous among
//! the segments on disk, so its replacement keeps its place in WAL order.

use std::time::Duration;

use strata_wal::SegmentId;

/// When and how much to compact.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionPolicy {
    /// Segments with live bytes below this fraction of their size are
    /// candidates.
    pub live_ratio: f64,
    /// Compaction is due once candidates hold this many dead bytes in all...
    pub dead_bytes: u64,
    /// ...or once a candidate is this old.
    pub max_age_ms: u64,
    /// A run's live bytes fit in this (the WAL's segment size).
    pub max_output_bytes: u64,
}

/// WAL compaction's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompactionOptions {
    pub policy: CompactionPolicy,
    /// Bytes read and written per second at most (0: no limit).
    pub bytes_per_sec: u64,
    /// How often the sealing thread looks for work.
    pub check_interval: Duration,
}

/// What compactions did, in all.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CompactionTotals {
    /// Key compaction passes (one partition each).
    pub key_passes: u64,
    /// WAL compaction runs.
    pub runs: u64,
    pub failed_runs: u64,
    pub copied_bytes: u64,
    pub reclaimed_bytes: u64,
}

/// One segment on disk, as the planner sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentStats {
    pub id: SegmentId,
    pub file_bytes: u64,
    pub live_bytes: u64,
    pub age_ms: u64,
    /// Sealed (indexed): never the segment being appended to.
    pub sealed: bool,
}

impl SegmentStats {
    fn dead_bytes(&self) -> u64 {
        self.file_bytes.saturating_sub(self.live_bytes)
    }

    fn is_candidate(&self, policy: &CompactionPolicy) -> bool {
        #[allow(clippy::cast_precision_loss)]
        let below = (self.live_bytes as f64) < policy.live_ratio * self.file_bytes as f64;
        // A file of nothing but live entries still has its header dead.
        let header = strata_wal::FILE_HEADER_LEN as u64;
        self.sealed && self.live_bytes > 0 && self.dead_bytes() > header && below
    }

    /// Whether the segment may join a run seeded by a candidate.
    fn may_join(&self, policy: &CompactionPolicy) -> bool {
        let small = self.file_bytes.saturating_mul(4) <= policy.max_output_bytes;
        self.sealed && (self.live_bytes == 0 || small || self.is_candidate(policy))
    }
}

/// The next run to compact (segment ids, oldest first), if compaction is
/// due. `segments` is every segment on disk, oldest first.
pub fn next_run(segments: &[SegmentStats], policy: &CompactionPolicy) -> Option<Vec<SegmentId>> {
    let candidates = || segments.iter().filter(|s| s.is_candidate(policy));
    let dead: u64 = candidates().map(SegmentStats::dead_bytes).sum();
    let old = candidates().any(|s| s.age_ms >= policy.max_age_ms);
    if dead < policy.dead_bytes && !old {
        return None;
    }
    let seed = segments
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_candidate(policy) && s.live_bytes <= policy.max_output_bytes)
        .max_by(|(_, a), (_, b)| {
            a.dead_bytes()
                .cmp(&b.dead_bytes())
                .then_with(|| b.id.cmp(&a.id))
        })
        .map(|(at, _)| at)?;
    let (mut first, mut last) = (seed, seed);
    let mut live = segments.get(seed)?.live_bytes;
    loop {
        let fits =
            |s: &SegmentStats| s.may_join(policy) && live + s.live_bytes <= policy.max_output_bytes;
        let before = first
            .checked_sub(1)
            .and_then(|at| segments.get(at))
            .filter(|s| fits(s));
        let after = segments.get(last + 1).filter(|s| fits(s));
        // The neighbour that gives back more bytes joins first.
        match (before, after) {
            (Some(b), Some(a)) if a.dead_bytes() > b.dead_bytes() => {
                live += a.live_bytes;
                last += 1;
            }
            (Some(b), _) => {
                live += b.live_bytes;
                first -= 1;
            }
            (None, Some(a)) => {
                live += a.live_bytes;
                last += 1;
            }
            (None, None) => break,
        }
    }
    Some(segments.get(first..=last)?.iter().map(|s| s.id).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    const MB: u64 = 1024 * 1024;

    fn policy() -> CompactionPolicy {
        CompactionPolicy {
            live_ratio: 0.5,
            dead_bytes: 100 * MB,
            max_age_ms: 2 * 3600 * 1000,
            max_output_bytes: 64 * MB,
        }
    }

    fn seg(id: SegmentId, live_mb: u64, age_ms: u64) -> SegmentStats {
        SegmentStats {
            id,
            file_bytes: 64 * MB,
            live_bytes: live_mb * MB,
            age_ms,
            sealed: true,
        }
    }

    #[test]
    fn nothing_is_due_until_enough_is_dead_or_old() {
        let young = [seg(1, 30, 0), seg(2, 30, 0), seg(3, 64, 0)];
        assert_eq!(next_run(&young, &policy()), None);
        // 34 + 34 + 34 MB dead: over 100 MB.
        let more = [seg(1, 30, 0), seg(2, 30, 0), seg(3, 30, 0)];
        assert!(next_run(&more, &policy()).is_some());
        let old = [seg(1, 30, 3 * 3600 * 1000), seg(2, 64, 0)];
        assert_eq!(next_run(&old, &policy()), Some(vec![1]));
    }

    #[test]
    fn the_seed_gives_back_the_most_and_neighbours_join_while_they_fit() {
        let segments = [
            seg(1, 60, 0),
            seg(2, 20, 0),
            seg(3, 5, 0),
            seg(4, 25, 0),
            seg(5, 30, 0),
        ];
        // Seed 3 (59 MB dead); 4 joins (39 dead > 44? no: 2 has 44 dead),
        // so 2 joins, then 4 (5+20+25 = 50), then 5 no longer fits.
        assert_eq!(next_run(&segments, &policy()), Some(vec![2, 3, 4]));
    }

    #[test]
    fn mostly_live_segments_and_the_active_one_never_join() {
        let mut active = seg(4, 1, 0);
        active.sealed = false;
        let segments = [seg(1, 50, 0), seg(2, 1, 0), seg(3, 1, 0), active];
        let mut p = policy();
        p.dead_bytes = 0;
        assert_eq!(next_run(&segments, &p), Some(vec![2, 3]));
        // Equal dead bytes: the oldest seeds.
        let segments = [seg(1, 60, 0), seg(2, 10, 0), seg(3, 60, 0), seg(4, 10, 0)];
        assert_eq!(next_run(&segments, &p), Some(vec![2]));
    }

    #[test]
    fn small_segments_and_unheld_ones_join_a_run() {
        let mut small = seg(2, 8, 0);
        small.file_bytes = 8 * MB;
        let mut unheld = seg(3, 0, 0);
        unheld.file_bytes = 64 * MB;
        let segments = [seg(1, 64, 0), small, unheld, seg(4, 10, 0)];
        let mut p = policy();
        p.dead_bytes = 0;
        assert_eq!(next_run(&segments, &p), Some(vec![2, 3, 4]));
    }
}
