//! Which batches to read ahead: a partition's reads are followed, and a
//! read that starts where the previous one ended (a consumer going through
//! the log in order) hands the batches after it to the [`super::ReadAhead`].
//!
//! Invariants: the planning work under the partition's lock is bounded
//! ([`AHEAD_BATCHES`] batches looked at); each batch is handed over once
//! while the reader stays in order (`ahead_from`), and handed again only
//! if the read-ahead could not take it; nothing is read ahead for a reader
//! at the tail (its batches are in the tail cache) or where the segment
//! has no direct I/O. Two readers of one partition at different places
//! break each other's pattern, and read without read-ahead.

use crate::partition::{PartitionLog, PartitionState};
use crate::read_plan::PlannedBatch;
use crate::segment_index::cache::Indexes;

use super::AHEAD_BYTES;

/// Where a partition's reads left off, for read-ahead.
#[derive(Debug, Default)]
pub(crate) struct ReadCursor {
    /// The offset after the last read's last batch.
    next: Option<i64>,
    /// Batches below this offset were handed to the read-ahead already.
    ahead_from: i64,
}

/// Batches looked at past a read for read-ahead at most (bounds the
/// planning work, under the partition's lock, for small batches).
const AHEAD_BATCHES: usize = 1024;

impl PartitionLog {
    /// The batches after `plan` to read ahead: none unless this read starts
    /// where the partition's last one ended; else those not handed to the
    /// read-ahead yet, up to [`AHEAD_BYTES`] past `plan`, below the high
    /// watermark.
    pub(crate) fn plan_ahead(
        &self,
        st: &PartitionState,
        idx: &Indexes<'_>,
        from: i64,
        plan: &[PlannedBatch],
    ) -> Vec<PlannedBatch> {
        let Some(after) = plan.last().map(|b| b.last_offset + 1) else {
            return Vec::new();
        };
        if !self.cache.ahead.enabled() {
            return Vec::new();
        }
        let mut cursor = self
            .read_cursor
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let sequential = cursor.next == Some(from);
        cursor.next = Some(after);
        if !sequential || cursor.ahead_from < after {
            cursor.ahead_from = after;
        }
        if !sequential {
            return Vec::new();
        }
        let mut bytes = 0;
        let mut seen = 0;
        let mut out = Vec::new();
        // Batches whose index entries are not at hand are not read ahead:
        // the next read brings them in.
        let _ = st.visit_from(after, idx, |b| {
            // A reader at the tail reads from memory: nothing to read ahead.
            if seen == 0 && self.cache.holds(b.segment, b.position, b.len as usize) {
                return false;
            }
            seen += 1;
            bytes += b.len as usize;
            if seen > AHEAD_BATCHES || b.base_offset >= st.high_watermark || bytes > AHEAD_BYTES {
                return false;
            }
            if b.last_offset >= cursor.ahead_from {
                out.push(PlannedBatch::of(&b));
            }
            true
        });
        if let Some(b) = out.last() {
            cursor.ahead_from = b.last_offset + 1;
        }
        out
    }

    /// Hands `ahead` to the read-ahead, up to the first batch that is in
    /// the tail cache or has no direct I/O.
    pub(crate) fn read_ahead(&self, ahead: Vec<PlannedBatch>) {
        if ahead.is_empty() {
            return;
        }
        let cold = ahead
            .iter()
            .position(|b| !b.file.is_direct() || self.cache.holds(b.segment, b.position, b.len))
            .unwrap_or(ahead.len());
        if cold == 0 {
            return;
        }
        let taken = self.cache.ahead.request(&ahead[..cold]);
        if let Some(next) = ahead.get(taken) {
            // Not all were taken: the next read asks again from there.
            let mut cursor = self
                .read_cursor
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            cursor.ahead_from = cursor.ahead_from.min(next.base_offset);
        }
    }
}
