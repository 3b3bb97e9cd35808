//! Offline checks and repairs of a stopped broker's data files: every
//! checksum of every WAL segment (CRC64-NVME per entry) and every sealed
//! segment's index (its CRC64-NVME, and that it points inside its segment).
//!
//! A repair rewrites a damaged segment keeping every intact entry (write
//! `<file>.tmp`, fsync, rename over the file, fsync the directory) and
//! removes its index, whose positions no longer hold; a damaged index is
//! removed. Startup scans a segment without an index and writes it anew.

use std::path::{Path, PathBuf};

use strata_protocol::batch::BatchHeader;

use crate::entry;
use crate::LogError;

/// A damaged region of a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DamagedRegion {
    pub position: u64,
    pub length: u64,
}

/// What a check of one file found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileCheck {
    pub path: PathBuf,
    pub intact: usize,
    pub damaged: Vec<DamagedRegion>,
}

impl FileCheck {
    pub fn is_damaged(&self) -> bool {
        !self.damaged.is_empty()
    }
}

/// One WAL entry, described for `wal inspect`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryDescription {
    pub position: u64,
    pub length: u32,
    pub topic_id: String,
    pub partition: i32,
    pub base_offset: i64,
    pub record_count: i32,
    pub first_timestamp: i64,
    pub max_timestamp: i64,
    pub codec: &'static str,
}

fn read(path: &Path) -> Result<Vec<u8>, LogError> {
    std::fs::read(path).map_err(|source| LogError::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Checks a WAL segment; a torn tail counts as damage too.
pub fn check_wal(path: &Path) -> Result<FileCheck, LogError> {
    let bytes = read(path)?;
    let scan = strata_wal::scan_segment(&bytes);
    let mut damaged: Vec<DamagedRegion> = scan
        .damaged
        .iter()
        .map(|d| DamagedRegion {
            position: d.position,
            length: d.length,
        })
        .collect();
    if scan.torn_bytes > 0 {
        damaged.push(DamagedRegion {
            position: scan.valid_end,
            length: scan.torn_bytes,
        });
    }
    Ok(FileCheck {
        path: path.to_path_buf(),
        intact: scan.entries.len(),
        damaged,
    })
}

/// Describes every intact entry of a WAL segment.
pub fn describe_wal(path: &Path) -> Result<Vec<EntryDescription>, LogError> {
    let bytes = read(path)?;
    let scan = strata_wal::scan_segment(&bytes);
    let mut out = Vec::with_capacity(scan.entries.len());
    for span in scan.entries {
        let start = usize::try_from(span.payload_position).unwrap_or(usize::MAX);
        let Some(payload) = bytes.get(start..start.saturating_add(span.payload_len as usize))
        else {
            continue;
        };
        let (Ok(prefix), Ok(header)) = (
            entry::read_prefix(payload),
            BatchHeader::parse(payload.get(entry::PREFIX_LEN..).unwrap_or_default()),
        ) else {
            continue;
        };
        out.push(EntryDescription {
            position: span.position,
            length: span.payload_len,
            topic_id: prefix.topic.to_hex(),
            partition: prefix.partition,
            base_offset: header.base_offset,
            record_count: header.record_count,
            first_timestamp: header.base_timestamp,
            max_timestamp: header.max_timestamp,
            codec: header.codec.name(),
        });
    }
    Ok(out)
}

/// Checks a sealed segment's index: its checksum, and that every batch it
/// lists lies inside its segment.
pub fn check_index(path: &Path) -> Result<FileCheck, LogError> {
    let whole = |len: u64| {
        vec![DamagedRegion {
            position: 0,
            length: len,
        }]
    };
    let len = std::fs::metadata(path)
        .map_err(|source| LogError::Io {
            path: path.to_path_buf(),
            source,
        })?
        .len();
    let batches = match crate::segment_index::read(path)? {
        Ok(batches) => batches,
        Err(_) => {
            return Ok(FileCheck {
                path: path.to_path_buf(),
                intact: 0,
                damaged: whole(len),
            })
        }
    };
    let segment = path.with_extension("wal");
    let segment_len = std::fs::metadata(&segment).map_or(0, |m| m.len());
    let inside = batches.iter().all(|b| b.lies_within(segment_len));
    Ok(FileCheck {
        path: path.to_path_buf(),
        intact: if inside { batches.len() } else { 0 },
        damaged: if inside { Vec::new() } else { whole(len) },
    })
}

/// Every WAL segment and segment index under a data dir.
pub fn data_files(data_dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), LogError> {
    let wal_dir = data_dir.join("wal");
    let wal = strata_wal::list_segments(&wal_dir)?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let indexes = crate::segment_index::list_indexes(&wal_dir)?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    Ok((wal, indexes))
}

/// Rewrites a damaged WAL segment with its intact entries only.
pub fn repair_wal(path: &Path) -> Result<FileCheck, LogError> {
    let check = check_wal(path)?;
    if !check.is_damaged() {
        return Ok(check);
    }
    let bytes = read(path)?;
    let scan = strata_wal::scan_segment(&bytes);
    let id = path
        .file_stem()
        .and_then(|s| s.to_str())
        .and_then(|s| s.parse::<u64>().ok())
        .unwrap_or(0);
    let first = strata_wal::read_file_header(&bytes)
        .ok()
        .and_then(|h| h.first_segment)
        .unwrap_or(id);
    let mut out = strata_wal::encode_file_header(first).to_vec();
    for span in &scan.entries {
        let start = usize::try_from(span.position).unwrap_or(usize::MAX);
        let end = usize::try_from(span.payload_position + u64::from(span.payload_len))
            .unwrap_or(usize::MAX);
        out.extend_from_slice(bytes.get(start..end).unwrap_or_default());
    }
    replace(path, &out)?;
    // The entries moved: the index (if sealed) no longer matches. Startup
    // scans the segment and writes it anew.
    remove(&path.with_extension("idx"))?;
    Ok(check)
}

/// Removes a damaged index: startup scans its segment and writes it anew.
pub fn repair_index(path: &Path) -> Result<FileCheck, LogError> {
    let check = check_index(path)?;
    if check.is_damaged() {
        remove(path)?;
    }
    Ok(check)
}

fn remove(path: &Path) -> Result<(), LogError> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(LogError::Io {
            path: path.to_path_buf(),
            source: e,
        }),
        _ => Ok(()),
    }
}

fn replace(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| LogError::Corrupt(format!("bad file name {}", path.display())))?;
    crate::topic::write_atomically(&strata_wal::RealStorage, dir, name, bytes)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::segment_index::{self, IndexedBatch};

    #[test]
    fn damaged_index_is_found_and_repair_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let segment = strata_wal::segment_path(dir.path(), 3);
        std::fs::write(&segment, vec![0u8; 1000]).unwrap();
        let batch = |position| IndexedBatch {
            topic: crate::TopicId([1; 16]),
            partition: 0,
            base_offset: 0,
            last_offset: 0,
            max_timestamp: 0,
            position,
            len: 100,
        };
        segment_index::write(&strata_wal::RealStorage, dir.path(), 3, &mut [batch(8)]).unwrap();
        let index = segment_index::index_path(dir.path(), 3);
        let check = check_index(&index).unwrap();
        assert!(!check.is_damaged());
        assert_eq!(check.intact, 1);

        // A batch past the segment's end is damage too.
        segment_index::write(&strata_wal::RealStorage, dir.path(), 3, &mut [batch(950)]).unwrap();
        assert!(check_index(&index).unwrap().is_damaged());

        segment_index::write(&strata_wal::RealStorage, dir.path(), 3, &mut [batch(8)]).unwrap();
        let mut raw = std::fs::read(&index).unwrap();
        raw[20] ^= 1;
        std::fs::write(&index, raw).unwrap();
        assert!(check_index(&index).unwrap().is_damaged());
        assert!(repair_index(&index).unwrap().is_damaged());
        assert!(!index.exists());
    }
}
