//! Sealed segments: a partition's durable log, `<base offset, 20 digits>.log`.
//!
//! A sealed segment holds Kafka record batches back to back, exactly as they
//! are served to consumers (Kafka's own log layout), so a fetch is one read of
//! a contiguous range. An in-memory sparse index maps offsets to positions,
//! one entry per [`INDEX_INTERVAL`] bytes, rebuilt from batch headers on open.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use strata_protocol::batch::{BatchHeader, HEADER_LEN};

use crate::LogError;

/// Bytes of log between two sparse index entries.
pub const INDEX_INTERVAL: u64 = 4096;

/// One sparse index entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexEntry {
    /// Base offset of the batch at `position`.
    pub offset: i64,
    pub position: u64,
    /// Largest max-timestamp of all batches before this one in the segment
    /// and this one.
    pub max_timestamp_so_far: i64,
}

/// A sealed segment file and what is known about it.
#[derive(Debug)]
pub struct SealedSegment {
    pub base_offset: i64,
    /// One past the last offset stored.
    pub end_offset: i64,
    pub size: u64,
    pub max_timestamp: i64,
    pub path: PathBuf,
    pub file: Arc<File>,
    index: Vec<IndexEntry>,
    last_indexed_position: Option<u64>,
}

/// The path of the segment starting at `base_offset` in a partition dir.
pub fn segment_path(dir: &Path, base_offset: i64) -> PathBuf {
    dir.join(format!("{base_offset:020}.log"))
}

/// Sealed segment files in a partition dir, by base offset.
pub fn list_segments(dir: &Path) -> Result<Vec<(i64, PathBuf)>, LogError> {
    let io = |source| LogError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().and_then(|e| e.to_str()) != Some("log") {
            continue;
        }
        if let Some(base) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse().ok())
        {
            out.push((base, path));
        }
    }
    out.sort_unstable_by_key(|(base, _)| *base);
    Ok(out)
}

impl SealedSegment {
    /// Creates an empty segment file (durable name) starting at `base_offset`.
    pub fn create(dir: &Path, base_offset: i64) -> Result<Self, LogError> {
        let path = segment_path(dir, base_offset);
        let file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .and_then(|f| f.set_len(0).map(|()| f))
            .map_err(|source| LogError::Io {
                path: path.clone(),
                source,
            })?;
        strata_wal::sync_dir(dir)?;
        Ok(SealedSegment {
            base_offset,
            end_offset: base_offset,
            size: 0,
            max_timestamp: -1,
            path,
            file: Arc::new(file),
            index: Vec::new(),
            last_indexed_position: None,
        })
    }

    /// Opens an existing segment, rebuilding its index from batch headers.
    ///
    /// A batch that runs past the end of the file, or whose header is not a
    /// batch, ends the segment: the bytes from there on are a torn append
    /// and are cut off (their data is still in the WAL, which is only
    /// deleted after sealing is durable).
    pub fn open(path: &Path, base_offset: i64) -> Result<(Self, u64), LogError> {
        let io = |source| LogError::Io {
            path: path.to_path_buf(),
            source,
        };
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .open(path)
            .map_err(io)?;
        let file_len = file.metadata().map_err(io)?.len();
        let mut segment = SealedSegment {
            base_offset,
            end_offset: base_offset,
            size: 0,
            max_timestamp: -1,
            path: path.to_path_buf(),
            file: Arc::new(file),
            index: Vec::new(),
            last_indexed_position: None,
        };
        let mut position = 0u64;
        let mut header_buf = [0u8; HEADER_LEN];
        while position + HEADER_LEN as u64 <= file_len {
            if read_exact_at(&segment.file, &mut header_buf, position).is_err() {
                break;
            }
            let Some(header) = header_only(&header_buf) else {
                break;
            };
            let end = position + header.total_len as u64;
            if end > file_len || header.base_offset < segment.end_offset {
                break;
            }
            segment.note_batch(&header, position);
            position = end;
        }
        let cut = file_len - position;
        if cut > 0 {
            segment.file.set_len(position).map_err(io)?;
            segment.file.sync_all().map_err(io)?;
        }
        Ok((segment, cut))
    }

    /// Records a batch appended at `position` in the index and bounds.
    fn note_batch(&mut self, header: &BatchHeader, position: u64) {
        self.max_timestamp = self.max_timestamp.max(header.max_timestamp);
        let due = self
            .last_indexed_position
            .is_none_or(|last| position >= last + INDEX_INTERVAL);
        if due {
            self.index.push(IndexEntry {
                offset: header.base_offset,
                position,
                max_timestamp_so_far: self.max_timestamp,
            });
            self.last_indexed_position = Some(position);
        }
        self.end_offset = header.last_offset() + 1;
        self.size = position + header.total_len as u64;
    }

    /// Appends one stamped batch (not yet durable: see [`Self::sync`]).
    pub fn append(&mut self, batch: &[u8]) -> Result<(), LogError> {
        let header = BatchHeader::parse(batch).map_err(|e| LogError::Corrupt(e.to_string()))?;
        let position = self.size;
        (&*self.file)
            .write_all(batch)
            .map_err(|source| LogError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.note_batch(&header, position);
        Ok(())
    }

    pub fn sync(&self) -> Result<(), LogError> {
        self.file.sync_data().map_err(|source| LogError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// The position of the batch holding `offset`, found from the sparse
    /// index and then batch headers. `None` if the offset is past the end.
    pub fn position_of(&self, offset: i64) -> Result<Option<u64>, LogError> {
        let slot = self.index.partition_point(|e| e.offset <= offset);
        let mut position = match slot.checked_sub(1).and_then(|i| self.index.get(i)) {
            Some(entry) => entry.position,
            None => 0,
        };
        let mut header_buf = [0u8; HEADER_LEN];
        while position < self.size {
            read_exact_at(&self.file, &mut header_buf, position).map_err(|source| {
                LogError::Io {
                    path: self.path.clone(),
                    source,
                }
            })?;
            let header = header_only(&header_buf).ok_or_else(|| {
                LogError::Corrupt(format!(
                    "bad batch header at {} in {}",
                    position,
                    self.path.display()
                ))
            })?;
            if header.last_offset() >= offset {
                return Ok(Some(position));
            }
            position += header.total_len as u64;
        }
        Ok(None)
    }

    /// The first sparse-index position from which batches may have a
    /// timestamp at or after `timestamp`.
    pub fn scan_start_for_timestamp(&self, timestamp: i64) -> u64 {
        let slot = self
            .index
            .partition_point(|e| e.max_timestamp_so_far < timestamp);
        match slot.checked_sub(1).and_then(|i| self.index.get(i)) {
            Some(entry) => entry.position,
            None => 0,
        }
    }
}

/// Parses a batch header read alone from a file.
pub fn header_only(header: &[u8]) -> Option<BatchHeader> {
    BatchHeader::parse_prefix(header).ok()
}

pub fn read_exact_at(file: &File, buf: &mut [u8], position: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    file.read_exact_at(buf, position)
}
