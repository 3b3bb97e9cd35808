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

use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::direct::BLOCK;
use crate::format::{encode_file_header, FILE_HEADER_LEN};
use crate::segment::{segment_path, sync_dir, SegmentId};
use crate::storage::{Storage, StorageFile};
use crate::WalError;

/// Bytes staged in memory and written at a time: whole blocks, so that
/// the same writes work with direct I/O.
const STAGE: usize = 1024 * 1024;

/// Through the page cache, written bytes are made durable this many at a
/// time, so they reach the disk in small steps beside the WAL's own syncs
/// instead of in one burst at the end. (With direct I/O each write goes to
/// the disk as it is made.)
const SYNC_EVERY: u64 = 4 * 1024 * 1024;

/// A replacement segment being written.
#[derive(Debug)]
pub struct Replacement {
    storage: Arc<dyn Storage>,
    dir: PathBuf,
    id: SegmentId,
    tmp: PathBuf,
    file: Box<dyn StorageFile>,
    /// Whether the file was opened to bypass the page cache.
    direct: bool,
    /// Block-aligned staging memory: `[origin, origin + STAGE)` of it.
    memory: Vec<u8>,
    origin: usize,
    /// Bytes staged, not yet written; they go at `written`.
    staged: usize,
    written: u64,
    len: u64,
    unsynced: u64,
}

impl Replacement {
    /// Starts the file that will replace segment `id` and hold the batches
    /// of segments `first..=id`; with `direct_io`, written around the page
    /// cache where the file system allows it.
    pub fn create(
        storage: Arc<dyn Storage>,
        dir: &Path,
        id: SegmentId,
        first: SegmentId,
        direct_io: bool,
    ) -> Result<Self, WalError> {
        let tmp = dir.join(format!("{id:020}.wal.tmp"));
        let file = if direct_io {
            storage.create_unbuffered(&tmp)
        } else {
            storage.create(&tmp, false)
        }
        .map_err(|source| WalError::Io {
            path: tmp.clone(),
            source,
        })?;
        let memory = vec![0u8; STAGE + BLOCK];
        let origin = (BLOCK - memory.as_ptr() as usize % BLOCK) % BLOCK;
        let mut replacement = Replacement {
            storage,
            dir: dir.to_path_buf(),
            id,
            tmp,
            file,
            direct: direct_io,
            memory,
            origin,
            staged: 0,
            written: 0,
            len: 0,
            unsynced: 0,
        };
        replacement.append(&encode_file_header(first))?;
        Ok(replacement)
    }

    fn io(&self) -> impl FnOnce(std::io::Error) -> WalError + '_ {
        |source| WalError::Io {
            path: self.tmp.clone(),
            source,
        }
    }

    /// Appends framed entries; returns the file position they start at.
    pub fn append(&mut self, framed: &[u8]) -> Result<u64, WalError> {
        let start = self.len;
        let mut rest = framed;
        while !rest.is_empty() {
            let take = rest.len().min(STAGE - self.staged);
            let at = self.origin + self.staged;
            self.memory[at..at + take].copy_from_slice(&rest[..take]);
            self.staged += take;
            rest = &rest[take..];
            if self.staged == STAGE {
                self.write_staged(STAGE)?;
                self.written += STAGE as u64;
                self.staged = 0;
            }
        }
        self.len += framed.len() as u64;
        if !self.direct && self.unsynced >= SYNC_EVERY {
            self.unsynced = 0;
            self.file.sync_data().map_err(self.io())?;
        }
        Ok(start)
    }

    /// Writes the first `len` bytes of the staging memory (whole blocks)
    /// at `written`.
    fn write_staged(&mut self, len: usize) -> Result<(), WalError> {
        let blocks = &self.memory[self.origin..self.origin + len];
        self.file
            .write_all_at(blocks, self.written)
            .map_err(|source| WalError::Io {
                path: self.tmp.clone(),
                source,
            })?;
        self.unsynced += len as u64;
        Ok(())
    }

    /// Bytes written so far.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len <= FILE_HEADER_LEN as u64
    }

    /// Makes the file durable under its temp name; returns its path. The
    /// last block goes out padded with zeros, which are then cut off.
    pub fn sync(&mut self) -> Result<&Path, WalError> {
        if self.staged > 0 {
            let padded = self.staged.div_ceil(BLOCK) * BLOCK;
            let at = self.origin + self.staged;
            self.memory[at..self.origin + padded].fill(0);
            self.write_staged(padded)?;
            self.file.set_len(self.len).map_err(self.io())?;
            // The unfinished last block stays staged: an append after the
            // sync writes it again, with more in it.
            let whole = self.staged / BLOCK * BLOCK;
            let from = self.origin + whole;
            self.memory
                .copy_within(from..self.origin + self.staged, self.origin);
            self.written += whole as u64;
            self.staged -= whole;
        }
        self.file.sync_all().map_err(self.io())?;
        self.unsynced = 0;
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
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::{encode_entry, read_header, scan_segment, SegmentWriter};

    #[test]
    fn a_replacement_takes_the_place_of_its_segment() {
        for direct in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let mut old = SegmentWriter::create(&crate::RealStorage, dir.path(), 5, false).unwrap();
            let mut buf = Vec::new();
            encode_entry(&mut buf, &[b"dead"]).unwrap();
            encode_entry(&mut buf, &[b"live"]).unwrap();
            old.append(&buf).unwrap();
            old.sync().unwrap();

            let storage = Arc::new(crate::RealStorage);
            let mut new = Replacement::create(storage, dir.path(), 5, 3, direct).unwrap();
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
            assert_eq!(
                bytes.len(),
                FILE_HEADER_LEN + framed.len(),
                "no padding left"
            );
            assert_eq!(scan_segment(&bytes).entries.len(), 1);
            assert_eq!(read_header(&path).unwrap().unwrap().first_segment, Some(3));
            assert_eq!(crate::list_by_id(dir.path(), "tmp").unwrap().len(), 0);
        }
    }

    /// Entries across several staging buffers, and an append after a sync,
    /// read back byte for byte — on a disk that refuses what direct I/O
    /// refuses, and on the real one.
    #[test]
    fn large_replacements_are_written_in_whole_aligned_blocks() {
        let root = tempfile::tempdir().unwrap();
        let sim: Arc<dyn Storage> = Arc::new(crate::SimStorage::new(root.path(), 1).unwrap());
        let real: Arc<dyn Storage> = Arc::new(crate::RealStorage);
        for (name, storage) in [("sim", sim), ("real", real)] {
            let dir = root.path().join(name);
            storage.create_dir_all(&dir).unwrap();
            let mut new = Replacement::create(storage, &dir, 9, 9, true).unwrap();
            let mut expected = encode_file_header(9).to_vec();
            let mut framed = Vec::new();
            for i in 0..40u8 {
                framed.clear();
                let payload = vec![i; 1 + usize::from(i) * 7919];
                encode_entry(&mut framed, &[&payload]).unwrap();
                assert_eq!(new.append(&framed).unwrap(), expected.len() as u64);
                expected.extend_from_slice(&framed);
                if i == 20 {
                    new.sync().unwrap();
                }
            }
            assert!(expected.len() > 2 * STAGE);
            let path = new.sync().unwrap().to_path_buf();
            assert_eq!(std::fs::read(&path).unwrap(), expected);
            new.discard();
            assert!(!path.exists());
        }
    }
}
