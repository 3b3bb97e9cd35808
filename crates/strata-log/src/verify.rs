//! Offline checks and repairs of a stopped broker's data files: every
//! checksum of every WAL segment (CRC64-NVME per entry) and every sealed
//! segment (the producer's CRC-32C per batch, offsets ascending).
//!
//! A repair rewrites a damaged file keeping every intact entry or batch:
//! write `<file>.tmp`, fsync, rename over the file, fsync the directory.

use std::path::{Path, PathBuf};

use strata_protocol::batch::{validate_crc, BatchHeader};

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
        let (Some(prefix), Ok(header)) = (
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

/// The intact batches of a sealed segment as byte ranges, and the damage.
fn scan_sealed(bytes: &[u8]) -> (Vec<std::ops::Range<usize>>, Vec<DamagedRegion>) {
    let mut intact = Vec::new();
    let mut damaged = Vec::new();
    let mut position = 0usize;
    let mut next_offset = i64::MIN;
    while position < bytes.len() {
        let rest = bytes.get(position..).unwrap_or_default();
        let good = BatchHeader::parse(rest)
            .ok()
            .filter(|h| h.base_offset >= next_offset)
            .filter(|h| validate_crc(rest, h).is_ok());
        match good {
            Some(header) => {
                intact.push(position..position + header.total_len);
                next_offset = header.last_offset() + 1;
                position += header.total_len;
            }
            None => {
                // The header's length may be the damaged part: when it still
                // frames a batch, skip just that batch, else the rest.
                let skip = BatchHeader::parse(rest)
                    .map(|h| h.total_len)
                    .unwrap_or(rest.len())
                    .max(1);
                damaged.push(DamagedRegion {
                    position: position as u64,
                    length: skip as u64,
                });
                position += skip;
            }
        }
    }
    (intact, damaged)
}

/// Checks a sealed segment.
pub fn check_sealed(path: &Path) -> Result<FileCheck, LogError> {
    let bytes = read(path)?;
    let (intact, damaged) = scan_sealed(&bytes);
    Ok(FileCheck {
        path: path.to_path_buf(),
        intact: intact.len(),
        damaged,
    })
}

/// Every WAL and sealed segment file under a data dir.
pub fn data_files(data_dir: &Path) -> Result<(Vec<PathBuf>, Vec<PathBuf>), LogError> {
    let wal = strata_wal::list_segments(&data_dir.join("wal"))?
        .into_iter()
        .map(|(_, p)| p)
        .collect();
    let mut sealed = Vec::new();
    let partitions = data_dir.join("partitions");
    if let Ok(dirs) = std::fs::read_dir(&partitions) {
        for dir in dirs.flatten() {
            if dir.path().is_dir() {
                sealed.extend(
                    crate::sealed::list_segments(&dir.path())?
                        .into_iter()
                        .map(|(_, p)| p),
                );
            }
        }
    }
    sealed.sort();
    Ok((wal, sealed))
}

/// Rewrites a damaged WAL segment with its intact entries only.
pub fn repair_wal(path: &Path) -> Result<FileCheck, LogError> {
    let check = check_wal(path)?;
    if !check.is_damaged() {
        return Ok(check);
    }
    let bytes = read(path)?;
    let scan = strata_wal::scan_segment(&bytes);
    let mut out = strata_wal::FILE_HEADER.to_vec();
    for span in &scan.entries {
        let start = usize::try_from(span.position).unwrap_or(usize::MAX);
        let end = usize::try_from(span.payload_position + u64::from(span.payload_len))
            .unwrap_or(usize::MAX);
        out.extend_from_slice(bytes.get(start..end).unwrap_or_default());
    }
    replace(path, &out)?;
    Ok(check)
}

/// Rewrites a damaged sealed segment with its intact batches only.
pub fn repair_sealed(path: &Path) -> Result<FileCheck, LogError> {
    let bytes = read(path)?;
    let (intact, damaged) = scan_sealed(&bytes);
    let check = FileCheck {
        path: path.to_path_buf(),
        intact: intact.len(),
        damaged,
    };
    if !check.is_damaged() {
        return Ok(check);
    }
    let mut out = Vec::with_capacity(bytes.len());
    for range in intact {
        out.extend_from_slice(bytes.get(range).unwrap_or_default());
    }
    replace(path, &out)?;
    Ok(check)
}

fn replace(path: &Path, bytes: &[u8]) -> Result<(), LogError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or_else(|| LogError::Corrupt(format!("bad file name {}", path.display())))?;
    crate::topic::write_atomically(dir, name, bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use strata_protocol::builder::{build_batch, RecordSpec};

    fn batch(offset: i64) -> Vec<u8> {
        let mut b = build_batch(&[RecordSpec {
            key: Some(b"k"),
            value: Some(b"v"),
            timestamp: 1,
        }]);
        strata_protocol::batch::stamp_base_offset(&mut b, offset, 0);
        b
    }

    #[test]
    fn sealed_segment_damage_is_found_and_repaired() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("00000000000000000000.log");
        let mut bytes = Vec::new();
        for offset in 0..3 {
            bytes.extend(batch(offset));
        }
        let one = batch(0).len();
        bytes[one + 65] ^= 0xff; // inside the second batch's records
        std::fs::write(&path, &bytes).unwrap();
        let check = check_sealed(&path).unwrap();
        assert_eq!(check.intact, 2);
        assert_eq!(
            check.damaged,
            vec![DamagedRegion {
                position: one as u64,
                length: one as u64
            }]
        );
        repair_sealed(&path).unwrap();
        let after = check_sealed(&path).unwrap();
        assert!(!after.is_damaged());
        assert_eq!(after.intact, 2);
    }
}
