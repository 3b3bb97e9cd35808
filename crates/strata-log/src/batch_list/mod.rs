//! A partition's stored batches, as runs: the batches it holds in one WAL
//! segment file, in offset order. A run of a segment still being written
//! (or not yet sealed) lists its batches; a run of a sealed segment is a
//! summary — first and last offset, bytes, batch count, largest timestamp
//! — and its batches are the segment index's entries for the partition
//! between those offsets ([`crate::segment_index::cache`] brings them back
//! when a walk needs them). So memory grows with segments held, not with
//! batches: a few dozen bytes per partition per sealed segment.
//!
//! Invariants:
//! - runs are in offset order without overlap, and so are the batches in
//!   each; a run's `first_offset`, `last_base` and `last_offset` are those
//!   of its first and last batch, `bytes` and `batches` their sums, and
//!   `max_timestamp` at least the largest of their timestamps;
//! - a summarized run's segment file has an index listing every batch of
//!   the run at its position (perhaps more, below `first_offset`: batches
//!   retention removed);
//! - a walk or a change that needs entries that are not at hand fails with
//!   [`NeedIndex`] *before* changing anything, so the caller can load them
//!   and try again.

mod run;

use std::collections::VecDeque;
use std::sync::Arc;

use strata_wal::{SegmentFile, SegmentId};

use crate::ledger::Holder;
use crate::segment_index::cache::{Indexes, NeedIndex};
use crate::segment_index::BatchEntry;
use run::Run;

/// A stored batch, as a walk sees it.
#[derive(Debug, Clone, Copy)]
pub struct BatchRef<'a> {
    pub segment: SegmentId,
    pub file: &'a Arc<SegmentFile>,
    pub base_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub position: u64,
    pub len: u32,
}

/// What a run is, without its batches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunFacts {
    pub segment: SegmentId,
    pub first_offset: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub bytes: u64,
    pub batches: u64,
}

/// Batches a change took out of one segment (for the ledger).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Removed {
    pub segment: SegmentId,
    pub batches: u64,
    pub bytes: u64,
}

/// A summarized run, as an index lists it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RunSummary {
    pub first_offset: i64,
    pub last_base: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub bytes: u64,
    pub batches: u64,
}

/// A partition's batches.
#[derive(Debug, Default)]
pub struct BatchList {
    runs: VecDeque<Run>,
    bytes: u64,
    batches: u64,
}

impl BatchList {
    /// Bytes of the batches.
    pub fn bytes(&self) -> u64 {
        self.bytes
    }

    /// How many batches there are.
    pub fn len(&self) -> u64 {
        self.batches
    }

    pub fn is_empty(&self) -> bool {
        self.batches == 0
    }

    /// How many runs there are (what the list costs in memory).
    pub fn runs(&self) -> usize {
        self.runs.len()
    }

    /// The base offset of the newest batch.
    pub fn last_base(&self) -> Option<i64> {
        self.runs.back().map(|r| r.last_base)
    }

    /// The runs, without their batches, in offset order.
    pub fn run_facts(&self) -> impl Iterator<Item = RunFacts> + '_ {
        self.runs.iter().map(Run::facts)
    }

    /// Adds a batch after the last one.
    pub(crate) fn push(&mut self, segment: SegmentId, file: &Arc<SegmentFile>, e: BatchEntry) {
        self.bytes += u64::from(e.len);
        self.batches += 1;
        if let Some(run) = self.runs.back_mut() {
            if run.is(segment, file.uid()) && run.add(e, true) {
                return;
            }
        }
        self.runs
            .push_back(Run::listed(segment, Arc::clone(file), VecDeque::from([e])));
    }

    /// Adds a summarized run after the last batch: `file`'s index lists
    /// its batches.
    pub(crate) fn push_summary(
        &mut self,
        segment: SegmentId,
        file: &Arc<SegmentFile>,
        s: RunSummary,
    ) {
        self.bytes += s.bytes;
        self.batches += s.batches;
        self.runs.push_back(Run {
            segment,
            file: Arc::clone(file),
            first_offset: s.first_offset,
            last_base: s.last_base,
            last_offset: s.last_offset,
            max_timestamp: s.max_timestamp,
            bytes: s.bytes,
            batches: s.batches,
            listed: None,
        });
    }

    /// Forgets the listed batches of `segment`'s file `file`, whose index
    /// now lists them.
    pub(crate) fn summarize(&mut self, segment: SegmentId, file: u64) {
        for run in self.runs.iter_mut().filter(|r| r.is(segment, file)) {
            run.listed = None;
        }
    }

    /// Lists the batches of the runs in segments `first..=last` again
    /// (before their indexes are replaced).
    pub(crate) fn expand_segments(
        &mut self,
        holder: Holder,
        (first, last): (SegmentId, SegmentId),
        idx: &Indexes<'_>,
    ) -> Result<(), NeedIndex> {
        let within = |r: &Run| (first..=last).contains(&r.segment);
        for run in self.runs.iter().filter(|r| within(r)) {
            if run.listed.is_none() {
                idx.entries(run.key(holder))?;
            }
        }
        for run in self.runs.iter_mut().filter(|r| within(r)) {
            run.expand(holder, idx)?;
        }
        Ok(())
    }

    /// Calls `visit` with the batches from the one holding `from` (or the
    /// first after it), in offset order, until it returns false.
    pub(crate) fn visit_from(
        &self,
        holder: Holder,
        from: i64,
        idx: &Indexes<'_>,
        mut visit: impl FnMut(BatchRef<'_>) -> bool,
    ) -> Result<(), NeedIndex> {
        let start = self.runs.partition_point(|r| r.last_offset < from);
        for run in self.runs.range(start..) {
            if !run.visit(holder, from, idx, &mut visit)? {
                break;
            }
        }
        Ok(())
    }

    /// Calls `visit` with the batches held in segments `first..=last`.
    pub(crate) fn visit_segments(
        &self,
        holder: Holder,
        (first, last): (SegmentId, SegmentId),
        idx: &Indexes<'_>,
        mut visit: impl FnMut(BatchRef<'_>),
    ) -> Result<(), NeedIndex> {
        for run in self
            .runs
            .iter()
            .filter(|r| (first..=last).contains(&r.segment))
        {
            run.visit(holder, i64::MIN, idx, &mut |b| {
                visit(b);
                true
            })?;
        }
        Ok(())
    }

    /// Calls `visit` with the batches of the `i`th run.
    pub(crate) fn visit_run(
        &self,
        holder: Holder,
        i: usize,
        idx: &Indexes<'_>,
        mut visit: impl FnMut(BatchRef<'_>),
    ) -> Result<(), NeedIndex> {
        if let Some(run) = self.runs.get(i) {
            run.visit(holder, i64::MIN, idx, &mut |b| {
                visit(b);
                true
            })?;
        }
        Ok(())
    }

    /// Forgets every batch wholly below `log_start`.
    pub(crate) fn drop_below(
        &mut self,
        holder: Holder,
        log_start: i64,
        idx: &Indexes<'_>,
    ) -> Result<Vec<Removed>, NeedIndex> {
        let whole = self.runs.partition_point(|r| r.last_offset < log_start);
        // The run the log start falls in: its dropped part, found first.
        let mut cut = None;
        if let Some(run) = self.runs.get(whole) {
            if run.first_offset < log_start {
                let mut count = 0u64;
                let mut bytes = 0u64;
                let mut next_first = run.first_offset;
                run.visit(holder, i64::MIN, idx, &mut |b| {
                    if b.last_offset < log_start {
                        count += 1;
                        bytes += u64::from(b.len);
                        true
                    } else {
                        next_first = b.base_offset;
                        false
                    }
                })?;
                cut = Some((count, bytes, next_first));
            }
        }
        let mut removed = Vec::new();
        for _ in 0..whole {
            if let Some(run) = self.runs.pop_front() {
                removed.push(self.take(&run, run.batches, run.bytes));
            }
        }
        if let (Some((count, bytes, next_first)), Some(run)) = (cut, self.runs.front_mut()) {
            if count > 0 {
                if let Some(list) = &mut run.listed {
                    list.drain(..count as usize);
                }
                run.first_offset = next_first;
                run.batches -= count;
                run.bytes -= bytes;
                let gone = Removed {
                    segment: run.segment,
                    batches: count,
                    bytes,
                };
                self.batches -= count;
                self.bytes -= bytes;
                removed.push(gone);
            }
        }
        Ok(removed)
    }

    fn take(&mut self, run: &Run, batches: u64, bytes: u64) -> Removed {
        self.batches -= batches;
        self.bytes -= bytes;
        Removed {
            segment: run.segment,
            batches,
            bytes,
        }
    }

    /// Forgets every batch.
    pub(crate) fn clear(&mut self) -> Vec<Removed> {
        let removed = self
            .runs
            .iter()
            .map(|r| Removed {
                segment: r.segment,
                batches: r.batches,
                bytes: r.bytes,
            })
            .collect();
        self.runs.clear();
        self.bytes = 0;
        self.batches = 0;
        removed
    }

    /// Takes out the batch at `base_offset` if it sits where `from` says
    /// (`(segment, position)`): the batch and the run index a batch taking
    /// its place goes to. `None` when it is not there.
    pub(crate) fn remove(
        &mut self,
        holder: Holder,
        base_offset: i64,
        from: (SegmentId, u64),
        idx: &Indexes<'_>,
    ) -> Result<Option<(BatchEntry, usize)>, NeedIndex> {
        let r = self.runs.partition_point(|r| r.last_offset < base_offset);
        let Some(run) = self.runs.get_mut(r) else {
            return Ok(None);
        };
        if run.segment != from.0 || run.first_offset > base_offset {
            return Ok(None);
        }
        run.expand(holder, idx)?;
        let Some(list) = &mut run.listed else {
            return Ok(None);
        };
        let i = list.partition_point(|e| e.base_offset < base_offset);
        let Some(found) = list
            .get(i)
            .copied()
            .filter(|e| e.base_offset == base_offset && e.position == from.1)
        else {
            return Ok(None);
        };
        let tail = list.split_off(i + 1);
        list.pop_back();
        run.batches -= 1;
        run.bytes -= u64::from(found.len);
        self.batches -= 1;
        self.bytes -= u64::from(found.len);
        let (segment, file) = (run.segment, Arc::clone(&run.file));
        let mut at = r + 1;
        if tail.is_empty() {
            run.fix_ends();
        } else {
            // The batches after it become a run of their own.
            let after = Run::listed(segment, file, tail);
            run.batches -= after.batches;
            run.bytes -= after.bytes;
            run.fix_ends();
            self.runs.insert(r + 1, after);
        }
        if self.runs.get(r).is_some_and(|run| run.batches == 0) {
            self.runs.remove(r);
            at = r;
        }
        Ok(Some((found, at)))
    }

    /// Puts `e` (in `segment`'s file `file`) at run index `at`, joining a
    /// neighbouring run of the same file.
    pub(crate) fn insert(
        &mut self,
        at: usize,
        segment: SegmentId,
        file: &Arc<SegmentFile>,
        e: BatchEntry,
    ) {
        self.bytes += u64::from(e.len);
        self.batches += 1;
        if let Some(before) = at.checked_sub(1).and_then(|i| self.runs.get_mut(i)) {
            if before.is(segment, file.uid())
                && before.last_offset < e.base_offset
                && before.add(e, true)
            {
                return;
            }
        }
        if let Some(after) = self.runs.get_mut(at) {
            if after.is(segment, file.uid())
                && after.first_offset > e.last_offset
                && after.add(e, false)
            {
                return;
            }
        }
        self.runs.insert(
            at,
            Run::listed(segment, Arc::clone(file), VecDeque::from([e])),
        );
    }
}

#[cfg(test)]
mod tests;
