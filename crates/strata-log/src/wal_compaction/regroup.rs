//! Regrouping: every sealed segment whose partitions' batches are
//! interleaved is rewritten on its own, its batches grouped by partition,
//! whether or not anything in it is dead (`strata wal compact --regroup`).
//!
//! Compaction only touches segments with dead bytes; segments written
//! while several partitions were produced at once are all live and stay
//! interleaved, so a consumer of one partition reads them a batch at a
//! time. Regrouped, the read-ahead reads each partition's batches in runs
//! of up to 4 MiB. A segment already grouped (each partition's batches
//! one contiguous run) is left alone, so a second pass rewrites nothing.

use std::time::Instant;

use strata_wal::SegmentId;
use tracing::{error, info};

use super::CompactionTotals;
use crate::metrics;
use crate::seal::Sealer;
use crate::walk::Held;

impl Sealer {
    /// Regroups every sealed segment whose batches are interleaved.
    pub(crate) fn regroup_all(&mut self) -> CompactionTotals {
        let mut totals = CompactionTotals::default();
        let ids: Vec<SegmentId> = self.sealed.iter().copied().collect();
        for id in ids {
            if !self.sealed.contains(&id) || !self.is_interleaved(id) {
                continue;
            }
            let started = Instant::now();
            match self.rewrite_run(&[id], &super::Transforms::new()) {
                Ok(outcome) => {
                    metrics::record_wal_compaction(
                        started.elapsed(),
                        outcome.copied_bytes,
                        outcome.reclaimed_bytes,
                    );
                    info!(
                        segment = id,
                        batches = outcome.batches,
                        damaged = outcome.damaged,
                        millis = started.elapsed().as_millis() as u64,
                        "regrouped WAL segment"
                    );
                    totals.runs += 1;
                    totals.copied_bytes += outcome.copied_bytes;
                    totals.reclaimed_bytes += outcome.reclaimed_bytes;
                }
                Err(e) => {
                    metrics::count(metrics::WAL_COMPACTION_FAILURES);
                    error!(segment = id, error = %e, "regrouping a WAL segment failed; it stays as it was");
                    totals.failed_runs += 1;
                }
            }
        }
        self.remove_unheld();
        totals
    }

    /// Whether some partition's batches in `id` are not one contiguous run
    /// (another partition's batches sit between them).
    fn is_interleaved(&self, id: SegmentId) -> bool {
        let holders = self.ledger.usage(id).holders;
        if holders.len() < 2 {
            return false;
        }
        let mut placed = Vec::new();
        for holder in holders.keys() {
            if let Some(partition) = self.registry.partition(holder.0, holder.1) {
                let positions = partition.with_batches(&mut Held::new(), |st, idx| {
                    let mut positions = Vec::new();
                    st.visit_segments((id, id), idx, |b| positions.push(b.position))?;
                    Ok(positions)
                });
                // A segment whose batches cannot be found is left as it is.
                let Ok(positions) = positions else {
                    return false;
                };
                placed.extend(positions.into_iter().map(|p| (p, *holder)));
            }
        }
        placed.sort_unstable_by_key(|(position, _)| *position);
        let runs = 1 + placed.windows(2).filter(|w| w[0].1 != w[1].1).count();
        runs > holders.len()
    }
}
