//! Sealing: moving the batches of a rolled WAL segment into their
//! partitions' sealed segments, off the write path.
//!
//! Order of durability: batches are appended to sealed segments (and become
//! readable there, replacing their hot entries), every touched sealed
//! segment is fsync'd, and only then is the WAL segment deleted. A crash at
//! any point leaves the WAL segment in place; recovery skips the batches that
//! already reached a sealed segment.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;

use strata_protocol::batch::BatchHeader;
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
        let bytes = std::fs::read(&path).map_err(|source| LogError::Io {
            path: path.clone(),
            source,
        })?;
        let scan = strata_wal::scan_segment(&bytes);
        let mut touched: HashMap<(crate::TopicId, i32), Arc<PartitionLog>> = HashMap::new();
        for span in &scan.entries {
            let start = usize::try_from(span.payload_position).unwrap_or(usize::MAX);
            let end = start.saturating_add(span.payload_len as usize);
            let Some(payload) = bytes.get(start..end) else {
                continue;
            };
            let Some(prefix) = entry::read_prefix(payload) else {
                continue;
            };
            let Some(partition) = self.registry.partition(prefix.topic, prefix.partition) else {
                continue;
            };
            let batch = payload.get(entry::PREFIX_LEN..).unwrap_or_default();
            if seal_batch(&partition, &self.registry, batch)? {
                touched.insert((prefix.topic, prefix.partition), partition);
            }
        }
        for partition in touched.values() {
            let snapshot = {
                let st = partition.state();
                if let Some(active) = st.sealed.last() {
                    active.sync()?;
                }
                crate::producer_snapshot::capture(&st)
            };
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
            partitions = touched.len(),
            "sealed WAL segment"
        );
        Ok(())
    }
}

/// Appends one batch to its partition's active sealed segment, unless it is
/// already sealed. Returns whether anything was written.
fn seal_batch(
    partition: &PartitionLog,
    registry: &Registry,
    batch: &[u8],
) -> Result<bool, LogError> {
    let header = match BatchHeader::parse(batch) {
        Ok(h) => h,
        Err(e) => {
            warn!(error = %e, "WAL entry holds no valid batch; not sealed");
            return Ok(false);
        }
    };
    let segment_bytes = registry.segment_bytes(partition.topic);
    let mut st = partition.state_mut();
    if st.deleted {
        return Ok(false);
    }
    if header.last_offset() < st.sealed_end() {
        // Already sealed, or wholly below the log start: nothing to keep.
        let floor = st.sealed_end();
        while st.hot.front().is_some_and(|h| h.last_offset < floor) {
            st.hot.pop_front();
        }
        return Ok(false);
    }
    let roll = st.sealed.last().is_none_or(|s| s.size >= segment_bytes);
    if roll {
        if let Some(previous) = st.sealed.last() {
            previous.sync()?;
        }
        st.sealed
            .push(SealedSegment::create(&partition.dir, header.base_offset)?);
    }
    if let Some(active) = st.sealed.last_mut() {
        let before = active.size;
        if let Err(e) = active.append(batch) {
            let _ = active.file.set_len(before);
            return Err(e);
        }
    }
    let sealed_end = st.sealed_end();
    while st.hot.front().is_some_and(|h| h.last_offset < sealed_end) {
        st.hot.pop_front();
    }
    Ok(true)
}
