//! Idempotent producers: per partition, each producer id's epoch and its
//! last few batches, so a retried batch is recognised instead of written
//! twice, and a gap or an old epoch is refused.
//!
//! The decisions are pure ([`ProducerStates::check`]); the appender applies
//! them in WAL order. The state is snapshotted when a WAL segment is sealed
//! and rebuilt at startup from that snapshot plus the WAL.

use std::collections::{BTreeMap, HashMap, VecDeque};

use serde::{Deserialize, Serialize};
use strata_protocol::batch::BatchHeader;

/// How many recent batches per producer are remembered for duplicates (Kafka keeps 5,
/// matching `max.in.flight.requests.per.connection`).
pub const REMEMBERED_BATCHES: usize = 5;
/// Producers remembered per partition; the least recently active is forgotten first.
pub const MAX_PRODUCERS: usize = 10_000;

/// A batch a producer wrote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenBatch {
    pub first_seq: i32,
    pub last_seq: i32,
    pub base_offset: i64,
}

/// One producer's state in one partition.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerEntry {
    pub epoch: i16,
    pub batches: VecDeque<WrittenBatch>,
    /// Offset of its last batch, for forgetting the least recently active.
    pub last_offset: i64,
}

/// What to do with an incoming batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Append,
    /// Already written at this base offset: answer success, write nothing.
    Duplicate(i64),
    OutOfOrder,
    /// The epoch is older than the producer's current one.
    Fenced,
}

/// A transaction that was aborted, for read_committed fetches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct AbortedTxn {
    pub producer_id: i64,
    pub first_offset: i64,
    /// Offset of the abort marker.
    pub last_offset: i64,
}

/// Aborted transactions remembered per partition (oldest forgotten first).
pub const MAX_ABORTED: usize = 100_000;

/// The producers of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerStates {
    pub producers: HashMap<i64, ProducerEntry>,
    /// Open transactions: producer id → offset of its first batch.
    #[serde(default)]
    pub open: BTreeMap<i64, i64>,
    #[serde(default)]
    pub aborted: VecDeque<AbortedTxn>,
}

fn next_seq(seq: i32) -> i32 {
    if seq == i32::MAX {
        0
    } else {
        seq + 1
    }
}

/// The last sequence of a batch of `count` records starting at `first`, with wrap-around.
pub fn last_seq(first: i32, count: i32) -> i32 {
    let last = i64::from(first) + i64::from(count) - 1;
    i32::try_from(last % (i64::from(i32::MAX) + 1)).unwrap_or(0)
}

impl ProducerStates {
    /// Decides about a batch of producer `id` (`id < 0`: not idempotent).
    pub fn check(&self, id: i64, epoch: i16, first_seq: i32, count: i32) -> Decision {
        if id < 0 {
            return Decision::Append;
        }
        let Some(entry) = self.producers.get(&id) else {
            return if first_seq == 0 {
                Decision::Append
            } else {
                Decision::OutOfOrder
            };
        };
        if epoch < entry.epoch {
            return Decision::Fenced;
        }
        if epoch > entry.epoch {
            return if first_seq == 0 {
                Decision::Append
            } else {
                Decision::OutOfOrder
            };
        }
        let last = last_seq(first_seq, count);
        if let Some(done) = entry
            .batches
            .iter()
            .find(|b| b.first_seq == first_seq && b.last_seq == last)
        {
            return Decision::Duplicate(done.base_offset);
        }
        match entry.batches.back() {
            Some(previous) if next_seq(previous.last_seq) == first_seq => Decision::Append,
            None if first_seq == 0 => Decision::Append,
            _ => Decision::OutOfOrder,
        }
    }

    /// Records a batch that was appended.
    pub fn record(
        &mut self,
        id: i64,
        epoch: i16,
        first_seq: i32,
        count: i32,
        base_offset: i64,
        last_offset: i64,
    ) {
        if id < 0 {
            return;
        }
        if !self.producers.contains_key(&id) && self.producers.len() >= MAX_PRODUCERS {
            let oldest = self
                .producers
                .iter()
                .min_by_key(|(_, e)| e.last_offset)
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                self.producers.remove(&oldest);
            }
        }
        let entry = self.producers.entry(id).or_insert_with(|| ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            last_offset,
        });
        if epoch != entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.batches.push_back(WrittenBatch {
            first_seq,
            last_seq: last_seq(first_seq, count),
            base_offset,
        });
        while entry.batches.len() > REMEMBERED_BATCHES {
            entry.batches.pop_front();
        }
        entry.last_offset = last_offset;
    }

    /// Forgets batches at or after `offset` (a write that was undone).
    pub fn forget_from(&mut self, offset: i64) {
        for entry in self.producers.values_mut() {
            entry.batches.retain(|b| b.base_offset < offset);
        }
        self.producers.retain(|_, e| !e.batches.is_empty());
        self.open.retain(|_, first| *first < offset);
        self.aborted.retain(|a| a.last_offset < offset);
    }

    /// Checks a transaction marker: its epoch may not be older than the producer's.
    pub fn check_marker(&self, id: i64, epoch: i16) -> Decision {
        match self.producers.get(&id) {
            Some(entry) if epoch < entry.epoch => Decision::Fenced,
            _ => Decision::Append,
        }
    }

    /// Notes a transactional data batch at `base_offset`.
    pub fn note_transactional(&mut self, id: i64, base_offset: i64) {
        self.open.entry(id).or_insert(base_offset);
    }

    /// Records a transaction marker at `offset`: the transaction closes, an
    /// abort is remembered, and a newer epoch resets the producer's sequences.
    pub fn record_marker(&mut self, id: i64, epoch: i16, commit: bool, offset: i64) {
        self.note_marker_epoch(id, epoch, offset);
        self.end_transaction(id, commit, offset);
    }

    /// A marker's effect on the producer itself: a newer epoch resets its
    /// sequences. Applied when the marker is placed, so later batches in the
    /// same group are judged against it.
    pub fn note_marker_epoch(&mut self, id: i64, epoch: i16, offset: i64) {
        let entry = self.producers.entry(id).or_insert_with(|| ProducerEntry {
            epoch,
            batches: VecDeque::new(),
            last_offset: offset,
        });
        if epoch > entry.epoch {
            entry.epoch = epoch;
            entry.batches.clear();
        }
        entry.last_offset = offset;
    }

    /// A marker's effect on readers: the producer's open transaction (begun
    /// before `offset`) ends, and an abort is remembered. Applied only once
    /// the marker is durable, so the last stable offset never passes a
    /// transaction whose end could still be refused.
    pub fn end_transaction(&mut self, id: i64, commit: bool, offset: i64) {
        let Some(&first_offset) = self.open.get(&id) else {
            return;
        };
        if first_offset >= offset {
            return;
        }
        self.open.remove(&id);
        if !commit {
            self.aborted.push_back(AbortedTxn {
                producer_id: id,
                first_offset,
                last_offset: offset,
            });
            while self.aborted.len() > MAX_ABORTED {
                self.aborted.pop_front();
            }
        }
    }

    /// Decides about a batch from its header (markers only check the epoch).
    pub fn decide(&self, header: &BatchHeader) -> Decision {
        if header.is_control() {
            self.check_marker(header.producer_id, header.producer_epoch)
        } else {
            self.check(
                header.producer_id,
                header.producer_epoch,
                header.base_sequence,
                header.record_count,
            )
        }
    }

    /// Applies a durable batch written at `base_offset` (`batch`: its bytes,
    /// for a marker's type): recovery's replay.
    pub fn apply(&mut self, header: &BatchHeader, batch: &[u8], base_offset: i64) {
        if let Some(commit) = self.apply_placed(header, batch, base_offset) {
            self.end_transaction(header.producer_id, commit, base_offset);
        }
    }

    /// Applies a batch that has its offsets but is not durable yet. For a
    /// marker, returns whether it commits: the transaction's end is applied
    /// by [`Self::end_transaction`] once the marker is durable.
    pub fn apply_placed(
        &mut self,
        header: &BatchHeader,
        batch: &[u8],
        base_offset: i64,
    ) -> Option<bool> {
        let (id, epoch) = (header.producer_id, header.producer_epoch);
        if header.is_control() {
            let commit = strata_protocol::builder::control_marker(batch).unwrap_or(false);
            self.note_marker_epoch(id, epoch, base_offset);
            return Some(commit);
        }
        let last = base_offset + i64::from(header.last_offset_delta);
        self.record(
            id,
            epoch,
            header.base_sequence,
            header.record_count,
            base_offset,
            last,
        );
        if header.is_transactional() && id >= 0 {
            self.note_transactional(id, base_offset);
        }
        None
    }

    /// The last stable offset: the first offset of the oldest open transaction, at most `high_watermark`.
    pub fn last_stable_offset(&self, high_watermark: i64) -> i64 {
        self.open
            .values()
            .copied()
            .min()
            .map_or(high_watermark, |first| first.min(high_watermark))
    }

    /// Aborted transactions that overlap `[from, to]`, for a read_committed fetch.
    pub fn aborted_between(&self, from: i64, to: i64) -> Vec<AbortedTxn> {
        self.aborted
            .iter()
            .filter(|a| a.first_offset <= to && a.last_offset >= from)
            .copied()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_order_duplicate_gap_and_fencing() {
        let mut s = ProducerStates::default();
        assert_eq!(s.check(7, 0, 0, 5), Decision::Append);
        s.record(7, 0, 0, 5, 100, 104);
        assert_eq!(s.check(7, 0, 5, 5), Decision::Append);
        s.record(7, 0, 5, 5, 105, 109);
        assert_eq!(s.check(7, 0, 0, 5), Decision::Duplicate(100));
        assert_eq!(s.check(7, 0, 5, 5), Decision::Duplicate(105));
        assert_eq!(s.check(7, 0, 20, 5), Decision::OutOfOrder);
        assert_eq!(s.check(8, 0, 3, 1), Decision::OutOfOrder);
        assert_eq!(
            s.check(7, 1, 0, 1),
            Decision::Append,
            "a new epoch starts at 0"
        );
        s.record(7, 1, 0, 1, 110, 110);
        assert_eq!(s.check(7, 0, 10, 1), Decision::Fenced);
        assert_eq!(s.check(-1, -1, -1, 3), Decision::Append);
    }

    #[test]
    fn transactions_open_close_and_abort() {
        let mut s = ProducerStates::default();
        s.record(5, 0, 0, 2, 10, 11);
        s.note_transactional(5, 10);
        s.note_transactional(5, 12);
        assert_eq!(s.last_stable_offset(20), 10);
        s.record_marker(5, 0, false, 14);
        assert_eq!(s.last_stable_offset(20), 20);
        assert_eq!(
            s.aborted_between(0, 100),
            vec![AbortedTxn {
                producer_id: 5,
                first_offset: 10,
                last_offset: 14
            }]
        );
        assert!(s.aborted_between(15, 100).is_empty());
        // A marker with a newer epoch fences the old one.
        s.record_marker(5, 1, true, 15);
        assert_eq!(s.check(5, 0, 2, 1), Decision::Fenced);
        assert_eq!(s.check_marker(5, 0), Decision::Fenced);
        assert_eq!(s.check(5, 1, 0, 1), Decision::Append);
    }

    #[test]
    fn a_marker_ends_its_transaction_only_once_durable() {
        let mut s = ProducerStates::default();
        s.note_transactional(5, 0);
        assert_eq!(s.last_stable_offset(1), 0);
        // The abort marker at offset 1 has its offset but is not durable yet.
        s.note_marker_epoch(5, 0, 1);
        assert_eq!(
            s.last_stable_offset(1),
            0,
            "LSO stays below the open transaction"
        );
        assert!(s.aborted_between(0, 1).is_empty());
        // Its write failed: undone, the transaction is still open.
        s.forget_from(1);
        assert_eq!(s.last_stable_offset(1), 0);
        // Written again and durable: the transaction ends.
        s.note_marker_epoch(5, 0, 1);
        s.end_transaction(5, false, 1);
        assert_eq!(s.last_stable_offset(2), 2);
        assert_eq!(s.aborted_between(0, 2).len(), 1);
    }

    #[test]
    fn a_marker_does_not_end_a_transaction_begun_after_it() {
        let mut s = ProducerStates::default();
        s.note_transactional(5, 10);
        s.end_transaction(5, true, 9);
        assert_eq!(s.last_stable_offset(20), 10);
    }

    #[test]
    fn sequences_wrap_and_undone_writes_are_forgotten() {
        let mut s = ProducerStates::default();
        s.record(1, 0, i32::MAX - 1, 2, 0, 1);
        assert_eq!(last_seq(i32::MAX - 1, 2), i32::MAX);
        assert_eq!(s.check(1, 0, 0, 3), Decision::Append);
        s.record(1, 0, 0, 3, 2, 4);
        s.forget_from(2);
        assert_eq!(s.check(1, 0, 0, 3), Decision::Append);
        s.forget_from(0);
        assert!(s.producers.is_empty());
    }
}
