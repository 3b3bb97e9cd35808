//! A segment file written whole, off the append path: WAL compaction
//! writes the live batches of a run of sealed segments into one, which then
//! takes the place of the run's last segment.
//!
//! Crash safety: the file is written under `<id>.wal.tmp` (startup removes
//! leftover `.tmp` files), made durable, then renamed over `<id>.wal` and
//! the directory synced. The rename is the moment the replacement happens;
//! its header names the first segment of the run, so a startup that finds
//! older segments of the run still there removes them (see
//! [`crate::format`]).

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::format::{encode_file_header, FILE_HEADER_LEN};
use crate::segment::{segment_path, sync_dir, SegmentId};
use crate::storage::{SequentialWriter, Storage};
use crate::WalError;

/// Written bytes made durable at a time while a replacement is written, so
/// its data reaches the disk in small steps beside the WAL's own syncs
/// instead of in one burst at the end.
const SYNC_EVERY: u64 = 4 * 1024 * 1024;

/// A replacement segment being written.
#[derive(Debug)]
pub struct Replacement {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    id: SegmentId,
    tmp: PathBuf,
    out: BufWriter<SequentialWriter>,
    len: u64,
    unsynced: u64,
}

impl Replacement {
    /// Starts the file that will replace segment `id` and hold the batches
    /// of segments `first..=id`.
    pub fn create(
        storage: Arc<dyn Storage>,
        dir: &Path,
        id: SegmentId,
        first: SegmentId,
    ) -> Result<Self, WalError> {
        let tmp = dir.join(format!("{id:020}.wal.tmp"));
        let io = |source| WalError::Io {
            path: tmp.clone(),
            source,
        };
        let file = storage.create(&tmp, false).map_err(io)?;
        let mut out = BufWriter::with_capacity(1 << 20, SequentialWriter::new(file));
        out.write_all(&encode_file_header(first)).map_err(io)?;
        Ok(Replacement {
            storage,
            dir: dir.to_path_buf(),
            id,
            tmp,
            out,
            len: FILE_HEADER_LEN as u64,
            unsynced: 0,
        })
    }

    /// Appends framed entries; returns the file position they start at.
    pub fn append(&mut self, framed: &[u8]) -> Result<u64, WalError> {
        let start = self.len;
        self.out.write_all(framed).map_err(|source| WalError::Io {
            path: self.tmp.clone(),
            source,
        })?;
        self.len += framed.len() as u64;
        self.unsynced += framed.len() as u64;
        if self.unsynced >= SYNC_EVERY {
            self.unsynced = 0;
            let io = |source| WalError::Io {
                path: self.tmp.clone(),
                source,
            };
            self.out.flush().map_err(io)?;
            self.out.get_ref().file().sync_data().map_err(io)?;
        }
        Ok(start)
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len <= FILE_HEADER_LEN as u64
    }

    /// Makes the file durable under its temp name; returns its path.
    pub fn sync(&mut self) -> Result<&Path, WalError> {
        let io = |source| WalError::Io {
            path: self.tmp.clone(),
            source,
        };
        self.out.flush().map_err(io)?;
        self.out.get_ref().file().sync_all().map_err(io)?;
        Ok(&self.tmp)
    }

    /// Renames the (synced) file over segment `id` and syncs the directory:
    /// from here on the replacement is what a restart finds.
    pub fn install(self) -> Result<PathBuf, WalError> {
        let dest = segment_path(&self.dir, self.id);
        self.storage
            .rename(&self.tmp, &dest)
            .map_err(|source| WalError::Io {
                path: dest.clone(),
                source,
            })?;
        sync_dir(self.storage.as_ref(), &self.dir)?;
        Ok(dest)
    }

    /// Removes the unfinished file (the compaction was given up).
    pub fn discard(self) {
        let _ = self.storage.remove_file(&self.tmp);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{encode_entry, read_header, scan_segment, SegmentWriter};

    #[test]
    fn a_replacement_takes_the_place_of_its_segment() {
        let dir = tempfile::tempdir().unwrap();
        let mut old = SegmentWriter::create(&crate::RealStorage, dir.path(), 5, false).unwrap();
        let mut buf = Vec::new();
        encode_entry(&mut buf, &[b"dead"]).unwrap();
        encode_entry(&mut buf, &[b"live"]).unwrap();
        old.append(&buf).unwrap();
        old.sync().unwrap();

        let mut new = Replacement::create(Arc::new(crate::RealStorage), dir.path(), 5, 3).unwrap();
        let mut framed = Vec::new();
        encode_entry(&mut framed, &[b"live"]).unwrap();
        assert_eq!(new.append(&framed).unwrap(), FILE_HEADER_LEN as u64);
        new.sync().unwrap();
        // Until the rename, the old segment is what is there.
        let path = segment_path(dir.path(), 5);
        assert_eq!(
            scan_segment(&std::fs::read(&path).unwrap()).entries.len(),
            2
        );
        assert_eq!(new.install().unwrap(), path);
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(scan_segment(&bytes).entries.len(), 1);
        assert_eq!(read_header(&path).unwrap().unwrap().first_segment, Some(3));
        assert_eq!(crate::list_by_id(dir.path(), "tmp").unwrap().len(), 0);
    }
}
