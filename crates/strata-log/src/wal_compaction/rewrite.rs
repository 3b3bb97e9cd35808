//! Rewriting a run of sealed segments into one replacement file (the steps
//! and their crash safety are in the [module doc](super)). Each live batch
//! is copied as it is, or — for key compaction — dropped or replaced by a
//! rebuilt batch covering the same offsets ([`Transform`]).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use strata_protocol::batch::{validate_crc, BatchHeader};
use strata_wal::{Replacement, SegmentFile, SegmentId, ENTRY_HEADER_LEN};
use tracing::warn;

use super::batch_reader::BatchReader;
use super::budget::IoBudget;
use super::RunOutcome;
use crate::entry;
use crate::ledger::Holder;
use crate::log_limit::LogLimit;
use crate::metrics;
use crate::partition::BatchLocation;
use crate::seal::Sealer;
use crate::walk::Held;
use crate::LogError;

static DAMAGED: LogLimit = LogLimit::new(Duration::from_secs(10));

/// Bytes the read-back of a replacement reads at a time.
const VERIFY_READ: usize = 1024 * 1024;

/// What a rewrite does with a batch instead of copying it as it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Transform {
    /// Left out: its offsets become a gap.
    Drop,
    /// Replaced by this batch (same base offset and offset range).
    Replace(Vec<u8>),
}

/// Transforms by partition and base offset.
pub(crate) type Transforms = HashMap<(Holder, i64), Transform>;

/// One live batch of the run.
struct Moving {
    holder: Holder,
    base_offset: i64,
    from: (SegmentId, u64),
    len: u32,
    file: Arc<SegmentFile>,
}

/// Where a batch went.
enum Copied {
    /// Written at `position`, `len` bytes; `max_timestamp` when rebuilt.
    At {
        position: u64,
        len: u32,
        max_timestamp: Option<i64>,
    },
    /// Left out by a transform.
    Dropped,
    /// Failed its checksum: reported, left out.
    Damaged,
}

impl Sealer {
    /// Replaces `run` (adjacent sealed segments, oldest first) with one
    /// file of its live batches, transformed as `transforms` says.
    pub(crate) fn rewrite_run(
        &mut self,
        run: &[SegmentId],
        transforms: &Transforms,
    ) -> Result<RunOutcome, LogError> {
        let (Some(&first), Some(&target)) = (run.first(), run.last()) else {
            return Ok(RunOutcome::default());
        };
        let mut old_bytes = 0;
        let mut covers = first;
        for id in run {
            let path = strata_wal::segment_path(&self.wal_dir, *id);
            old_bytes += std::fs::metadata(&path).map_or(0, |m| m.len());
            if let Ok(Ok(header)) = strata_wal::read_header(&path) {
                covers = covers.min(header.first_segment.unwrap_or(*id));
            }
        }
        let moving = self.live_batches(run)?;
        let created = Replacement::create(
            Arc::clone(&self.storage),
            &self.wal_dir,
            target,
            covers,
            self.direct_io,
        );
        let mut replacement = match created {
            Ok(replacement) => replacement,
            Err(e) => {
                self.summarize_again(run);
                return Err(e.into());
            }
        };
        // Reading, checking and writing on compaction's own thread; every
        // step that takes a partition's lock stays on this one.
        let work = self.on_compaction_thread(|| {
            let mut budget = IoBudget::new(self.compaction.bytes_per_sec);
            let copied = self.copy_batches(&moving, transforms, &mut replacement, &mut budget)?;
            let written = copied
                .iter()
                .filter(|c| matches!(c, Copied::At { .. }))
                .count();
            self.verify_replacement(&mut replacement, written, &mut budget)?;
            Ok((copied, written))
        });
        let (copied, written) = match work {
            Ok(done) => done,
            Err(e) => {
                replacement.discard();
                self.summarize_again(run);
                return Err(e);
            }
        };
        let new_bytes = replacement.len();
        // The replacement's moment: the old index goes first, so a crash
        // after the rename never finds an index of the old file beside it.
        // The partitions list these batches meanwhile (`live_batches`).
        let index = crate::segment_index::index_path(&self.wal_dir, target);
        self.indexes.removing(target);
        remove_if_there(self.storage.as_ref(), &index)?;
        self.sealed.remove(&target);
        strata_wal::sync_dir(self.storage.as_ref(), &self.wal_dir)?;
        let installed = match replacement.install() {
            Ok(path) => path,
            Err(e) => {
                self.reseal(target);
                return Err(e.into());
            }
        };
        // On failure from here, partitions keep reading the old files they
        // hold open; the replacement stays unsealed, and a restart scans it.
        let file = Arc::new(SegmentFile::open(&installed, self.direct_io)?);
        self.cache.forget(run);
        let damaged = self.relocate(&moving, &copied, target, &file);
        self.reseal(target);
        for id in run.iter().filter(|id| **id != target) {
            self.indexes.removing(*id);
            remove_if_there(
                self.storage.as_ref(),
                &strata_wal::segment_path(&self.wal_dir, *id),
            )?;
            remove_if_there(
                self.storage.as_ref(),
                &crate::segment_index::index_path(&self.wal_dir, *id),
            )?;
            self.sealed.remove(id);
        }
        strata_wal::sync_dir(self.storage.as_ref(), &self.wal_dir)?;
        Ok(RunOutcome {
            copied_bytes: new_bytes,
            reclaimed_bytes: old_bytes.saturating_sub(new_bytes),
            batches: written,
            damaged,
        })
    }

    /// The live batches of `run`, grouped by partition, in offset order.
    /// Their partitions list them from here on (their indexes are about
    /// to be replaced), until the replacement is sealed or
    /// [`Self::summarize_again`].
    fn live_batches(&self, run: &[SegmentId]) -> Result<Vec<Moving>, LogError> {
        let (Some(&first), Some(&last)) = (run.first(), run.last()) else {
            return Ok(Vec::new());
        };
        let mut holders = std::collections::BTreeSet::new();
        for id in run {
            holders.extend(self.ledger.usage(*id).holders.into_keys());
        }
        let mut out = Vec::new();
        for holder in holders {
            let Some(partition) = self.registry.partition(holder.0, holder.1) else {
                continue;
            };
            let listed = partition.with_batches_mut(&mut Held::new(), |st, idx| {
                st.expand_segments((first, last), idx)?;
                let mut listed = Vec::new();
                st.visit_segments((first, last), idx, |b| {
                    listed.push(Moving {
                        holder,
                        base_offset: b.base_offset,
                        from: (b.segment, b.position),
                        len: b.len,
                        file: Arc::clone(b.file),
                    });
                })?;
                Ok(listed)
            });
            match listed {
                Ok(listed) => out.extend(listed),
                Err(e) => {
                    self.summarize_again(run);
                    return Err(e);
                }
            }
        }
        Ok(out)
    }

    /// Summarizes again the batches partitions hold in `run` where the
    /// segment's index is still there (a rewrite that did not happen).
    fn summarize_again(&self, run: &[SegmentId]) {
        for id in run {
            let Some(file) = self.indexes.current(*id) else {
                continue;
            };
            for holder in self.ledger.usage(*id).holders.into_keys() {
                if let Some(partition) = self.registry.partition(holder.0, holder.1) {
                    partition.state_mut().summarize(*id, file);
                }
            }
        }
    }

    /// Copies each batch into the replacement, checked, or transformed.
    fn copy_batches(
        &self,
        moving: &[Moving],
        transforms: &Transforms,
        replacement: &mut Replacement,
        budget: &mut IoBudget,
    ) -> Result<Vec<Copied>, LogError> {
        let mut reader = BatchReader::default();
        let mut framed = Vec::new();
        let mut prefix = Vec::with_capacity(entry::PREFIX_LEN);
        let mut out = Vec::with_capacity(moving.len());
        for m in moving {
            self.give_way()?;
            let (bytes, moved) =
                reader
                    .read(&m.file, m.from.1, m.len as usize)
                    .map_err(|source| LogError::Io {
                        path: strata_wal::segment_path(&self.wal_dir, m.from.0),
                        source,
                    })?;
            budget.spend(moved);
            if !is_intact(bytes, m.base_offset, Some(m.len)) {
                report_damage(m);
                out.push(Copied::Damaged);
                continue;
            }
            let (batch, max_timestamp) = match transforms.get(&(m.holder, m.base_offset)) {
                None => (bytes, None),
                Some(Transform::Drop) => {
                    out.push(Copied::Dropped);
                    continue;
                }
                Some(Transform::Replace(rebuilt)) => {
                    let header = BatchHeader::parse(rebuilt)
                        .ok()
                        .filter(|_| is_intact(rebuilt, m.base_offset, None))
                        .ok_or_else(|| {
                            LogError::Corrupt(format!(
                                "a rebuilt batch at offset {} does not check",
                                m.base_offset
                            ))
                        })?;
                    (rebuilt.as_slice(), Some(header.max_timestamp))
                }
            };
            prefix.clear();
            entry::write_prefix(&mut prefix, m.holder.0, m.holder.1);
            framed.clear();
            strata_wal::encode_entry(&mut framed, &[&prefix, batch])
                .ok_or(strata_wal::WalError::PayloadTooLarge(batch.len()))?;
            let at = replacement.append(&framed)?;
            out.push(Copied::At {
                position: at + (ENTRY_HEADER_LEN + entry::PREFIX_LEN) as u64,
                len: u32::try_from(batch.len())
                    .map_err(|_| strata_wal::WalError::PayloadTooLarge(batch.len()))?,
                max_timestamp,
            });
            budget.spend(framed.len() as u64);
        }
        Ok(out)
    }

    /// Reads the synced replacement back (with direct I/O where the WAL
    /// uses it, a block-aligned MiB at a time, within the I/O budget):
    /// every entry intact, as many as were written, nothing else in it.
    fn verify_replacement(
        &self,
        replacement: &mut Replacement,
        written: usize,
        budget: &mut IoBudget,
    ) -> Result<(), LogError> {
        use strata_wal::NextEntry;
        let path = replacement.sync()?.to_path_buf();
        let mut entries = 0;
        let intact =
            match strata_wal::EntryReader::open_reading(&path, self.direct_io, VERIFY_READ)? {
                None => false,
                Some(mut reader) => loop {
                    self.give_way()?;
                    let len = match reader.next_entry()? {
                        NextEntry::Entry(payload, _) => payload.len() + ENTRY_HEADER_LEN,
                        NextEntry::End(_) => break true,
                        NextEntry::Irregular => break false,
                    };
                    entries += 1;
                    budget.spend(len as u64);
                },
            };
        if !intact || entries != written {
            return Err(LogError::Corrupt(format!(
                "compacted segment {} reads back {entries} of {written} entries",
                path.display()
            )));
        }
        Ok(())
    }

    /// Points partitions at the copies (one lock per partition); forgets
    /// dropped and damaged batches. Returns how many were damaged.
    fn relocate(
        &self,
        moving: &[Moving],
        copied: &[Copied],
        target: SegmentId,
        file: &Arc<SegmentFile>,
    ) -> usize {
        let mut damaged = 0;
        let mut at = 0;
        while let Some(m) = moving.get(at) {
            let end = at + moving[at..].partition_point(|n| n.holder == m.holder);
            let Some(partition) = self.registry.partition(m.holder.0, m.holder.1) else {
                at = end;
                continue;
            };
            let moves = moving[at..end].iter().zip(&copied[at..end]);
            // Listed since `live_batches`: no index is needed.
            let relocated = partition.with_batches_mut(&mut Held::new(), |st, idx| {
                for (m, copy) in moves.clone() {
                    match copy {
                        Copied::At {
                            position,
                            len,
                            max_timestamp,
                        } => {
                            let to = BatchLocation {
                                segment: target,
                                file: Arc::clone(file),
                                position: *position,
                            };
                            st.relocate(m.base_offset, m.from, to, *len, *max_timestamp, idx)?;
                        }
                        Copied::Dropped | Copied::Damaged => {
                            st.forget_batch(m.base_offset, m.from, idx)?;
                        }
                    }
                }
                Ok(())
            });
            if let Err(e) = relocated {
                warn!(topic = %m.holder.0.to_hex(), partition = m.holder.1, error = %e, "cannot point a partition at its compacted batches; it reads the old file until a restart");
            }
            damaged += copied[at..end]
                .iter()
                .filter(|c| matches!(c, Copied::Damaged))
                .count();
            at = end;
        }
        damaged
    }
}

/// Whether `bytes` are an intact batch at `base_offset` (of `len` bytes,
/// when given).
fn is_intact(bytes: &[u8], base_offset: i64, len: Option<u32>) -> bool {
    BatchHeader::parse(bytes).is_ok_and(|h| {
        h.base_offset == base_offset
            && len.is_none_or(|len| u32::try_from(h.total_len).is_ok_and(|l| l == len))
            && h.total_len == bytes.len()
            && validate_crc(bytes, &h).is_ok()
    })
}

fn report_damage(m: &Moving) {
    metrics::count(metrics::STORED_BATCHES_DAMAGED);
    if let Some(suppressed) = DAMAGED.admit() {
        warn!(
            segment = m.from.0,
            position = m.from.1,
            base_offset = m.base_offset,
            suppressed,
            "stored batch failed its checksum during WAL compaction; dropped, not copied"
        );
    }
}

fn remove_if_there(storage: &dyn strata_wal::Storage, path: &Path) -> Result<(), LogError> {
    match storage.remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}
