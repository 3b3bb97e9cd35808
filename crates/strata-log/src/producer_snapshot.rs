//! The producer-state snapshot of a partition, `producers.json` in its
//! directory, written (atomically) when a WAL segment is sealed, before that
//! WAL segment is deleted.
//!
//! It holds every durable batch's producer state below `offset` (the high
//! watermark when it was taken); recovery loads it and replays the WAL's
//! batches at or above `offset` on top.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::partition::PartitionState;
use crate::producer::ProducerStates;
use crate::LogError;

const FILE: &str = "producers.json";

/// The format version this build writes; version 1 had no `version` key.
const VERSION: u32 = 2;

fn version_one() -> u32 {
    1
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProducerSnapshot {
    #[serde(default = "version_one")]
    pub version: u32,
    pub offset: i64,
    pub producers: ProducerStates,
}

/// The durable part of a partition's producer state.
pub fn capture(state: &PartitionState) -> ProducerSnapshot {
    let mut producers = state.producers.clone();
    // Batches at or above the high watermark are not durable yet.
    producers.forget_from(state.high_watermark);
    ProducerSnapshot {
        version: VERSION,
        offset: state.high_watermark,
        producers,
    }
}

pub fn save(
    storage: &dyn strata_wal::Storage,
    dir: &Path,
    snapshot: &ProducerSnapshot,
) -> Result<(), LogError> {
    let bytes = serde_json::to_vec(snapshot).map_err(|e| LogError::Metadata {
        path: dir.join(FILE),
        reason: e.to_string(),
    })?;
    crate::topic::write_atomically(storage, dir, FILE, &bytes)
}

/// The snapshot in `dir`; an unreadable one is ignored (and logged): the
/// producers then restart their sequences, which they do on OUT_OF_ORDER.
pub fn load(dir: &Path) -> Option<ProducerSnapshot> {
    let path = dir.join(FILE);
    let bytes = std::fs::read(&path).ok()?;
    match serde_json::from_slice::<ProducerSnapshot>(&bytes) {
        Ok(snapshot) if snapshot.version > VERSION => {
            tracing::warn!(file = %path.display(), version = snapshot.version, "producer snapshot of a newer format; ignored");
            None
        }
        Ok(snapshot) => Some(snapshot),
        Err(e) => {
            tracing::warn!(file = %path.display(), error = %e, "unreadable producer snapshot; ignored");
            None
        }
    }
}
