//! WAL segment files: `<dir>/<sequence, 20 digits>.wal`.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::format::FILE_HEADER;
use crate::WalError;

/// A segment's sequence number; names sort in write order.
pub type SegmentId = u64;

const EXTENSION: &str = "wal";

/// The path of segment `id` in `dir`.
pub fn segment_path(dir: &Path, id: SegmentId) -> PathBuf {
    dir.join(format!("{id:020}.{EXTENSION}"))
}

/// Every segment in `dir`, oldest first.
pub fn list_segments(dir: &Path) -> Result<Vec<(SegmentId, PathBuf)>, WalError> {
    let io = |source| WalError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(EXTENSION) {
            continue;
        }
        let id = path
            .file_stem()
            .and_then(|s| s.to_str())
            .and_then(|s| s.parse::<SegmentId>().ok());
        if let Some(id) = id {
            out.push((id, path));
        }
    }
    out.sort_unstable_by_key(|(id, _)| *id);
    Ok(out)
}

/// Fsyncs a directory so that a created, renamed or removed name in it is durable.
pub fn sync_dir(dir: &Path) -> Result<(), WalError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|source| WalError::Io {
            path: dir.to_path_buf(),
            source,
        })
}

/// The segment being appended to.
#[derive(Debug)]
pub struct SegmentWriter {
    id: SegmentId,
    path: PathBuf,
    file: File,
    len: u64,
}

impl SegmentWriter {
    /// Creates segment `id` with its file header, durable before it returns.
    pub fn create(dir: &Path, id: SegmentId) -> Result<Self, WalError> {
        let path = segment_path(dir, id);
        let io = |source| WalError::Io {
            path: path.clone(),
            source,
        };
        let mut file = OpenOptions::new()
            .create_new(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        file.write_all(FILE_HEADER).map_err(io)?;
        file.sync_all().map_err(io)?;
        sync_dir(dir)?;
        Ok(SegmentWriter {
            id,
            path,
            file,
            len: FILE_HEADER.len() as u64,
        })
    }

    pub fn id(&self) -> SegmentId {
        self.id
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes in the file so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len <= FILE_HEADER.len() as u64
    }

    /// A second handle on the file, for readers.
    pub fn reader(&self) -> Result<File, WalError> {
        self.file.try_clone().map_err(|source| WalError::Io {
            path: self.path.clone(),
            source,
        })
    }

    /// Appends framed entries; returns the file position they start at.
    ///
    /// On error the file may hold a partial write: the caller must stop
    /// using this segment (recovery truncates the torn tail).
    pub fn append(&mut self, framed: &[u8]) -> Result<u64, WalError> {
        let start = self.len;
        self.file.write_all(framed).map_err(|source| WalError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.len += framed.len() as u64;
        Ok(start)
    }

    /// Cuts the segment back to `len` bytes, undoing a failed append.
    pub fn truncate_to(&mut self, len: u64) -> Result<(), WalError> {
        self.file
            .set_len(len)
            .and_then(|()| self.file.sync_all())
            .map_err(|source| WalError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.len = len;
        Ok(())
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.file.sync_data().map_err(|source| WalError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// Reads `len` bytes at `position` of an open segment or sealed file.
pub fn read_at(file: &File, position: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, position)?;
    Ok(buf)
}

/// Cuts a file back to `len` bytes and makes that durable.
pub fn truncate(path: &Path, len: u64) -> Result<(), WalError> {
    let io = |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new().write(true).open(path).map_err(io)?;
    file.set_len(len).map_err(io)?;
    file.sync_all().map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode_entry, scan_segment};

    #[test]
    fn appended_entries_scan_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(dir.path(), 3).unwrap();
        let mut buf = Vec::new();
        encode_entry(&mut buf, &[b"hello"]).unwrap();
        encode_entry(&mut buf, &[b"world"]).unwrap();
        let at = w.append(&buf).unwrap();
        w.sync().unwrap();
        assert_eq!(at, FILE_HEADER.len() as u64);
        let bytes = std::fs::read(w.path()).unwrap();
        let r = scan_segment(&bytes);
        assert_eq!(r.entries.len(), 2);
        let listed = list_segments(dir.path()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, 3);
        let got = read_at(&w.reader().unwrap(), r.entries[1].payload_position, 5).unwrap();
        assert_eq!(got, b"world");
    }
}
