//! Sealing: moving the batches of a rolled WAL segment into their
//! partitions' sealed segments, off the write path.
//!
//! Order of durability: batches are appended to sealed segments (and become
//! readable there, replacing their hot entries), every touched sealed
//! segment is fsync'd, and only then is the WAL segment deleted. A crash at
//! any point leaves the WAL segment in place; recovery skips the batches that
//! already reached a sealed segment.
//!
//! A segment is read entry by entry through a bounded buffer (a segment with
//! damage is read whole, stepping over it), and sealed data is synced every
//! few MiB outside the partition locks, so sealing neither holds a segment
//! in memory nor stalls producers behind one large flush.

use std::collections::HashMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_protocol::batch::BatchHeader;
use strata_wal::{EntryReader, NextEntry};
use tracing::{debug, error, warn};

use crate::entry;
use crate::partition::PartitionLog;
use crate::registry::Registry;
use crate::sealed::SealedSegment;
use crate::LogError;

pub(crate) struct Sealer {
    pub wal_dir: PathBuf,
    pub registry: Arc<Registry>,
    pub rx: std::sync::mpsc::Receiver<u64>,
}

impl Sealer {
    /// Seals each rolled segment as it arrives, until the appender is gone.
    pub fn run(self) {
        let mut failed: Vec<u64> = Vec::new();
        while let Ok(id) = self.rx.recv() {
            failed.push(id);
            failed.retain(|id| match self.seal(*id) {
                Ok(()) => {
                    crate::metrics::count(crate::metrics::WAL_SEGMENTS_SEALED);
                    false
                }
                Err(e) => {
                    crate::metrics::count(crate::metrics::WAL_SEAL_FAILURES);
                    error!(segment = id, error = %e, "sealing failed; the WAL segment is kept and retried on the next roll");
                    true
                }
            });
        }
    }

    fn seal(&self, id: u64) -> Result<(), LogError> {
        let path = strata_wal::segment_path(&self.wal_dir, id);
        let mut sealing = Sealing::default();
        if !self.seal_streaming(&path, &mut sealing)? {
            // Damage or a torn tail (recovery reported it): read the segment
            // whole and step over the damage. Batches sealed by the
            // streaming pass are recognised and skipped.
            let bytes = std::fs::read(&path).map_err(|source| LogError::Io {
                path: path.clone(),
                source,
            })?;
            let scan = strata_wal::scan_segment(&bytes);
            for span in &scan.entries {
                let start = usize::try_from(span.payload_position).unwrap_or(usize::MAX);
                let end = start.saturating_add(span.payload_len as usize);
                if let Some(payload) = bytes.get(start..end) {
                    self.seal_entry(payload, &mut sealing)?;
                }
            }
        }
        sealing.sync_pending()?;
        for partition in sealing.touched.values() {
            let snapshot = crate::producer_snapshot::capture(&partition.state());
            if !snapshot.producers.producers.is_empty() {
                crate::producer_snapshot::save(&partition.dir, &snapshot)?;
            }
        }
        std::fs::remove_file(&path).map_err(|source| LogError::Io {
            path: path.clone(),
            source,
        })?;
        strata_wal::sync_dir(&self.wal_dir)?;
        debug!(
            segment = id,
            partitions = sealing.touched.len(),
            "sealed WAL segment"
        );
        Ok(())
    }

    /// Seals a segment entry by entry through a bounded buffer. `false`
    /// when it met bytes that are not an intact entry.
    fn seal_streaming(&self, path: &Path, sealing: &mut Sealing) -> Result<bool, LogError> {
        let Some(mut reader) = EntryReader::open(path)? else {
            return Ok(false);
        };
        let mut payload = Vec::new();
        loop {
            match reader.next(&mut payload)? {
                NextEntry::Entry => self.seal_entry(&payload, sealing)?,
                NextEntry::End => return Ok(true),
                NextEntry::Irregular => return Ok(false),
            }
        }
    }

    fn seal_entry(&self, payload: &[u8], sealing: &mut Sealing) -> Result<(), LogError> {
        let Some(prefix) = entry::read_prefix(payload) else {
            return Ok(());
        };
        let Some(partition) = self.registry.partition(prefix.topic, prefix.partition) else {
            return Ok(());
        };
        let batch = payload.get(entry::PREFIX_LEN..).unwrap_or_default();
        if let Some(written) = seal_batch(&partition, &self.registry, batch)? {
            sealing
                .touched
                .insert((prefix.topic, prefix.partition), partition);
            sealing.note(written)?;
        }
        Ok(())
    }
}

/// Sealed data written between syncs: at least this much...
const SYNC_EVERY: u64 = 4 * 1024 * 1024;
/// ...and at least this much per file waiting, so that data spread over
/// many partitions is not paid for with one fsync per file every few MiB.
const SYNC_EVERY_PER_FILE: u64 = 256 * 1024;

/// What one sealing pass has written and not yet made durable. Files are
/// synced every [`SYNC_EVERY`] bytes (more when many files wait), outside
/// any partition lock, so the
/// disk sees a steady trickle instead of one large flush that stalls the
/// WAL's fsyncs (and the producers waiting on them).
#[derive(Default)]
struct Sealing {
    touched: HashMap<(crate::TopicId, i32), Arc<PartitionLog>>,
    pending: HashMap<PathBuf, Arc<File>>,
    unsynced: u64,
}

impl Sealing {
    fn note(&mut self, written: SealedWrite) -> Result<(), LogError> {
        if let Some((path, file)) = written.rolled {
            sync(&path, &file)?;
            self.pending.remove(&path);
        }
        self.pending.insert(written.path, written.file);
        self.unsynced += written.bytes;
        let threshold = SYNC_EVERY.max(self.pending.len() as u64 * SYNC_EVERY_PER_FILE);
        if self.unsynced >= threshold {
            self.sync_pending()?;
        }
        Ok(())
    }

    fn sync_pending(&mut self) -> Result<(), LogError> {
        for (path, file) in self.pending.drain() {
            sync(&path, &file)?;
        }
        self.unsynced = 0;
        Ok(())
    }
}

fn sync(path: &Path, file: &File) -> Result<(), LogError> {
    file.sync_data().map_err(|source| LogError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// A batch appended to a sealed segment, to be synced by the caller.
struct SealedWrite {
    path: PathBuf,
    file: Arc<File>,
    bytes: u64,
    /// The segment that was active before this batch rolled a new one.
    rolled: Option<(PathBuf, Arc<File>)>,
}

/// Appends one batch to its partition's active sealed segment, unless it is
/// already sealed. Returns what was written, for syncing outside the lock.
fn seal_batch(
    partition: &PartitionLog,
    registry: &Registry,
    batch: &[u8],
) -> Result<Option<SealedWrite>, LogError> {
    let header = match BatchHeader::parse(batch) {
        Ok(h) => h,
        Err(e) => {
            warn!(error = %e, "WAL entry holds no valid batch; not sealed");
            return Ok(None);
        }
    };
    let segment_bytes = registry.segment_bytes(partition.topic);
    let mut st = partition.state_mut();
    if st.deleted {
        return Ok(None);
    }
    if header.last_offset() < st.sealed_end() {
        // Already sealed, or wholly below the log start: nothing to keep.
        let floor = st.sealed_end();
        while st.hot.front().is_some_and(|h| h.last_offset < floor) {
            st.hot.pop_front();
        }
        return Ok(None);
    }
    let mut rolled = None;
    if st.sealed.last().is_none_or(|s| s.size >= segment_bytes) {
        rolled = st
            .sealed
            .last()
            .map(|previous| (previous.path.clone(), Arc::clone(&previous.file)));
        st.sealed
            .push(SealedSegment::create(&partition.dir, header.base_offset)?);
    }
    let Some(active) = st.sealed.last_mut() else {
        return Ok(None);
    };
    let before = active.size;
    if let Err(e) = active.append(batch) {
        let _ = active.file.set_len(before);
        return Err(e);
    }
    let written = SealedWrite {
        path: active.path.clone(),
        file: Arc::clone(&active.file),
        bytes: active.size - before,
        rolled,
    };
    let sealed_end = st.sealed_end();
    while st.hot.front().is_some_and(|h| h.last_offset < sealed_end) {
        st.hot.pop_front();
    }
    Ok(Some(written))
}
