//! Walking a partition's batches under its lock, with the index entries
//! of sealed runs brought in as the walk needs them.
//!
//! A walk is a closure run under the partition's lock. When it meets a
//! summarized run whose entries are not at hand it answers [`NeedIndex`]
//! without having changed anything; the lock is dropped, the entries are
//! read from the segment's index (never under the lock, so appends are
//! not held up by index reads), kept for this walk, and the walk runs
//! again. Each retry either holds one more run's entries or found that a
//! compaction replaced the file meanwhile (the walk then sees the new
//! runs), so the loop ends.

use std::time::Duration;

use crate::partition::{PartitionLog, PartitionState};
use crate::segment_index::cache::{Entries, EntriesKey, Indexes, NeedIndex};
use crate::LogError;

/// Entries a walk brought in, kept while it runs (and, for a compaction,
/// until its batches are relocated).
pub(crate) type Held = Vec<(EntriesKey, Entries)>;

/// Times a walk may find its file replaced before giving up.
const STALE_RETRIES: u32 = 100;

impl PartitionLog {
    /// Runs `walk` under the read lock until it needs no entries it lacks.
    pub(crate) fn with_batches<T>(
        &self,
        held: &mut Held,
        mut walk: impl FnMut(&PartitionState, &Indexes<'_>) -> Result<T, NeedIndex>,
    ) -> Result<T, LogError> {
        let mut stale = 0;
        loop {
            let need = {
                let st = self.state();
                let idx = Indexes {
                    cache: &self.indexes,
                    held,
                };
                match walk(&st, &idx) {
                    Ok(done) => return Ok(done),
                    Err(NeedIndex(key)) => key,
                }
            };
            self.bring(held, need, &mut stale)?;
        }
    }

    /// [`Self::with_batches`] under the write lock.
    pub(crate) fn with_batches_mut<T>(
        &self,
        held: &mut Held,
        mut change: impl FnMut(&mut PartitionState, &Indexes<'_>) -> Result<T, NeedIndex>,
    ) -> Result<T, LogError> {
        let mut stale = 0;
        loop {
            let need = {
                let mut st = self.state_mut();
                let idx = Indexes {
                    cache: &self.indexes,
                    held,
                };
                match change(&mut st, &idx) {
                    Ok(done) => return Ok(done),
                    Err(NeedIndex(key)) => key,
                }
            };
            self.bring(held, need, &mut stale)?;
        }
    }

    fn bring(&self, held: &mut Held, key: EntriesKey, stale: &mut u32) -> Result<(), LogError> {
        if let Some(entries) = self.indexes.load(&key)? {
            held.push((key, entries));
            return Ok(());
        }
        // Its index was replaced (a compaction is relocating the batches):
        // look again once the relocation is through.
        *stale += 1;
        if *stale > STALE_RETRIES {
            return Err(LogError::Corrupt(format!(
                "the index of WAL segment {} does not describe the file the partition reads",
                key.segment
            )));
        }
        std::thread::sleep(Duration::from_millis(1));
        Ok(())
    }
}
