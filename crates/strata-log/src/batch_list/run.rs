//! One run: a partition's batches in one segment file, listed or
//! summarized (see the [parent module](super)).

use std::collections::VecDeque;
use std::sync::Arc;

use strata_wal::{SegmentFile, SegmentId};

use super::{BatchRef, RunFacts};
use crate::ledger::Holder;
use crate::segment_index::cache::{EntriesKey, Indexes, NeedIndex};
use crate::segment_index::BatchEntry;

/// A partition's batches in one segment file.
#[derive(Debug)]
pub(super) struct Run {
    pub segment: SegmentId,
    pub file: Arc<SegmentFile>,
    pub first_offset: i64,
    pub last_base: i64,
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub bytes: u64,
    pub batches: u64,
    /// The batches; `None` while they are in the segment's index.
    pub listed: Option<VecDeque<BatchEntry>>,
}

impl Run {
    pub(super) fn listed(
        segment: SegmentId,
        file: Arc<SegmentFile>,
        entries: VecDeque<BatchEntry>,
    ) -> Self {
        let mut run = Run {
            segment,
            file,
            first_offset: 0,
            last_base: 0,
            last_offset: 0,
            max_timestamp: -1,
            bytes: 0,
            batches: 0,
            listed: None,
        };
        for e in &entries {
            run.max_timestamp = run.max_timestamp.max(e.max_timestamp);
            run.bytes += u64::from(e.len);
        }
        run.batches = entries.len() as u64;
        run.listed = Some(entries);
        run.fix_ends();
        run
    }

    /// Sets the offsets from the first and last listed batch.
    pub(super) fn fix_ends(&mut self) {
        if let Some(list) = &self.listed {
            if let (Some(first), Some(last)) = (list.front(), list.back()) {
                self.first_offset = first.base_offset;
                self.last_base = last.base_offset;
                self.last_offset = last.last_offset;
            }
        }
    }

    /// Adds a listed batch at the back (after the last) or the front
    /// (before the first); false if the run is a summary.
    pub(super) fn add(&mut self, e: BatchEntry, back: bool) -> bool {
        let Some(list) = &mut self.listed else {
            return false;
        };
        if back {
            list.push_back(e);
        } else {
            list.push_front(e);
        }
        self.bytes += u64::from(e.len);
        self.batches += 1;
        self.max_timestamp = self.max_timestamp.max(e.max_timestamp);
        self.fix_ends();
        true
    }

    pub(super) fn key(&self, holder: Holder) -> EntriesKey {
        EntriesKey {
            segment: self.segment,
            file: self.file.uid(),
            topic: holder.0,
            partition: holder.1,
        }
    }

    pub(super) fn is(&self, segment: SegmentId, file: u64) -> bool {
        self.segment == segment && self.file.uid() == file
    }

    pub(super) fn at<'a>(&'a self, e: &BatchEntry) -> BatchRef<'a> {
        BatchRef {
            segment: self.segment,
            file: &self.file,
            base_offset: e.base_offset,
            last_offset: e.last_offset,
            max_timestamp: e.max_timestamp,
            position: e.position,
            len: e.len,
        }
    }

    pub(super) fn facts(&self) -> RunFacts {
        RunFacts {
            segment: self.segment,
            first_offset: self.first_offset,
            last_offset: self.last_offset,
            max_timestamp: self.max_timestamp,
            bytes: self.bytes,
            batches: self.batches,
        }
    }

    /// Calls `visit` with the run's batches from the one holding `from`
    /// until it returns false; false if it did.
    pub(super) fn visit(
        &self,
        holder: Holder,
        from: i64,
        idx: &Indexes<'_>,
        visit: &mut impl FnMut(BatchRef<'_>) -> bool,
    ) -> Result<bool, NeedIndex> {
        if let Some(list) = &self.listed {
            let at = list.partition_point(|e| e.last_offset < from);
            return Ok(list.range(at..).all(|e| visit(self.at(e))));
        }
        let entries = idx.entries(self.key(holder))?;
        let slice = self.own(&entries);
        let at = slice.partition_point(|e| e.last_offset < from);
        Ok(slice[at..].iter().all(|e| visit(self.at(e))))
    }

    /// This run's part of its index entries.
    pub(super) fn own<'e>(&self, entries: &'e [BatchEntry]) -> &'e [BatchEntry] {
        let lo = entries.partition_point(|e| e.base_offset < self.first_offset);
        let hi = entries.partition_point(|e| e.last_offset <= self.last_offset);
        entries.get(lo..hi.max(lo)).unwrap_or_default()
    }

    /// Lists the batches of a summarized run.
    pub(super) fn expand(&mut self, holder: Holder, idx: &Indexes<'_>) -> Result<(), NeedIndex> {
        if self.listed.is_none() {
            let entries = idx.entries(self.key(holder))?;
            self.listed = Some(self.own(&entries).iter().copied().collect());
        }
        Ok(())
    }
}
