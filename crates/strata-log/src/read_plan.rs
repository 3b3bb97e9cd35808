//! What a read plans: the batches it will copy, where they sit, and how
//! they group into runs read from disk together. Shared by reads and the
//! read-ahead, below both.

use std::sync::Arc;

use strata_protocol::batch::{validate_crc, BatchHeader};
use strata_wal::{SegmentFile, SegmentId};

use crate::batch_list::BatchRef;

/// One batch a read will copy.
#[derive(Debug, Clone)]
pub(crate) struct PlannedBatch {
    pub(crate) file: Arc<SegmentFile>,
    pub(crate) segment: SegmentId,
    pub(crate) base_offset: i64,
    pub(crate) last_offset: i64,
    pub(crate) position: u64,
    pub(crate) len: usize,
}

impl PlannedBatch {
    pub(crate) fn of(b: &BatchRef<'_>) -> Self {
        PlannedBatch {
            file: Arc::clone(b.file),
            segment: b.segment,
            base_offset: b.base_offset,
            last_offset: b.last_offset,
            position: b.position,
            len: b.len as usize,
        }
    }
}

/// Batches read from disk together: at most this far apart...
const MAX_GAP: u64 = 256 * 1024;
/// ...and spanning at most this much.
const MAX_SPAN: u64 = 4 * 1024 * 1024;

/// How many batches from `plan[from]` on sit close together in one
/// segment (at least one, unless `from` is past the end).
pub(crate) fn run_len(plan: &[PlannedBatch], from: usize) -> usize {
    let rest = plan.get(from..).unwrap_or_default();
    let Some(first) = rest.first() else {
        return 0;
    };
    let mut len = 1;
    let mut end = first.position + first.len as u64;
    for next in rest.iter().skip(1) {
        let next_end = next.position + next.len as u64;
        if next.segment != first.segment
            || next.position < end
            || next.position - end > MAX_GAP
            || next_end - first.position > MAX_SPAN
        {
            break;
        }
        end = next_end;
        len += 1;
    }
    len
}

/// Whether `bytes` are the intact batch the plan expects there.
pub(crate) fn is_intact(bytes: &[u8], batch: &PlannedBatch) -> bool {
    BatchHeader::parse(bytes).is_ok_and(|h| {
        h.total_len == batch.len
            && h.base_offset == batch.base_offset
            && validate_crc(bytes, &h).is_ok()
    })
}
