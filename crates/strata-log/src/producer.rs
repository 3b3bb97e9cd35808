//! Idempotent producers: per partition, each producer id's epoch and its
//! last few batches, so a retried batch is recognised instead of written
//! twice, and a gap or an old epoch is refused.
//!
//! The decisions are pure ([`ProducerStates::check`]); the appender applies
//! them in WAL order. The state is snapshotted when a WAL segment is sealed
//! and rebuilt at startup from that snapshot plus the WAL.

use std::collections::{HashMap, VecDeque};

use serde::{Deserialize, Serialize};

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

/// The producers of one partition.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProducerStates {
    pub producers: HashMap<i64, ProducerEntry>,
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
