//! WAL segment files: `<dir>/<sequence, 20 digits>.wal`.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use crate::direct::DirectAppender;
use crate::format::{
    encode_file_header, read_file_header, FileHeader, HeaderError, FILE_HEADER_LEN,
};
use crate::storage::{Storage, StorageFile};
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
    list_by_id(dir, EXTENSION)
}

/// Every file in `dir` named `<segment id>.<extension>` (a segment, or a
/// file that sits beside one), oldest first.
pub fn list_by_id(dir: &Path, extension: &str) -> Result<Vec<(SegmentId, PathBuf)>, WalError> {
    let io = |source| WalError::Io {
        path: dir.to_path_buf(),
        source,
    };
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(io)? {
        let path = entry.map_err(io)?.path();
        if path.extension().and_then(|e| e.to_str()) != Some(extension) {
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
pub fn sync_dir(storage: &dyn Storage, dir: &Path) -> Result<(), WalError> {
    storage.sync_dir(dir).map_err(|source| WalError::Io {
        path: dir.to_path_buf(),
        source,
    })
}

/// The segment being appended to.
#[derive(Debug)]
pub struct SegmentWriter {
    id: SegmentId,
    path: PathBuf,
    file: Box<dyn StorageFile>,
    len: u64,
    /// Set when appends bypass the page cache.
    direct: Option<DirectAppender>,
}

impl SegmentWriter {
    /// Creates segment `id` with its file header (holding only its own
    /// batches), durable before it returns.
    /// With `direct_io`, appends bypass the page cache where the storage
    /// and the file system allow it.
    pub fn create(
        storage: &dyn Storage,
        dir: &Path,
        id: SegmentId,
        direct_io: bool,
    ) -> Result<Self, WalError> {
        let path = segment_path(dir, id);
        let io = |source| WalError::Io {
            path: path.clone(),
            source,
        };
        let file = storage.create(&path, true).map_err(io)?;
        file.write_all_at(&encode_file_header(id), 0).map_err(io)?;
        file.sync_all().map_err(io)?;
        sync_dir(storage, dir)?;
        let len = FILE_HEADER_LEN as u64;
        let direct = if direct_io && storage.allows_direct_io() {
            DirectAppender::open(&path, len)
        } else {
            None
        };
        Ok(SegmentWriter {
            id,
            path,
            file,
            len,
            direct,
        })
    }

    /// Whether appends bypass the page cache.
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
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
        self.len <= FILE_HEADER_LEN as u64
    }

    /// The file opened for readers (with direct I/O when appends use it).
    pub fn reader(&self) -> Result<SegmentFile, WalError> {
        SegmentFile::open(&self.path, self.direct.is_some())
    }

    /// Appends framed entries; returns the file position they start at.
    ///
    /// On error the file may hold a partial write: the caller must stop
    /// using this segment (recovery truncates the torn tail).
    pub fn append(&mut self, framed: &[u8]) -> Result<u64, WalError> {
        let start = self.len;
        let mut written = match &mut self.direct {
            Some(direct) => direct.append(start, framed),
            None => self.file.write_all_at(framed, start),
        };
        if written
            .as_ref()
            .is_err_and(|e| e.raw_os_error() == Some(libc::EINVAL))
            && self.direct.take().is_some()
        {
            // The file system opened the file for direct I/O but refuses
            // the writes: write through the page cache from here on, from
            // the end of the data (not of the padding).
            tracing::warn!(file = %self.path.display(), "direct I/O refused; the WAL writes through the page cache");
            written = self
                .file
                .set_len(start)
                .and_then(|()| self.file.write_all_at(framed, start));
        }
        written.map_err(|source| WalError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.len += framed.len() as u64;
        Ok(start)
    }

    /// The bytes a window for [`Self::append_window`] starts with: the
    /// unfinished last block under direct I/O, nothing otherwise.
    pub fn carry(&self) -> &[u8] {
        self.direct.as_ref().map_or(&[], DirectAppender::carry)
    }

    /// Appends `len` framed bytes given in a window: [`Self::carry`], the
    /// bytes, then zeros to [`crate::direct::window_len`], in memory
    /// aligned to [`crate::direct::BLOCK`] (a buffered writer writes just
    /// the bytes). This spares [`Self::append`]'s copy into staging memory.
    /// Returns the file position the bytes start at.
    pub fn append_window(&mut self, window: &[u8], len: usize) -> Result<u64, WalError> {
        let start = self.len;
        let carry = self.carry().len();
        let framed = window.get(carry..carry + len).ok_or_else(|| WalError::Io {
            path: self.path.clone(),
            source: std::io::Error::from_raw_os_error(libc::EINVAL),
        })?;
        match &mut self.direct {
            Some(direct) => {
                let written = direct.write_window(start, window, len);
                match written {
                    Ok(()) => {
                        self.len += len as u64;
                        Ok(start)
                    }
                    // The fallback to buffered writes takes the bytes alone.
                    Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                        let framed = framed.to_vec();
                        self.append(&framed)
                    }
                    Err(source) => Err(WalError::Io {
                        path: self.path.clone(),
                        source,
                    }),
                }
            }
            None => self.append(framed),
        }
    }

    /// Cuts the segment back to `len` bytes, undoing a failed append.
    pub fn truncate_to(&mut self, len: u64) -> Result<(), WalError> {
        self.file
            .set_len(len)
            .and_then(|()| self.file.sync_all())
            .and_then(|()| match &mut self.direct {
                Some(direct) => direct.reset(&self.path, len),
                None => Ok(()),
            })
            .map_err(|source| WalError::Io {
                path: self.path.clone(),
                source,
            })?;
        self.len = len;
        Ok(())
    }

    /// Cuts the padding of direct appends off the end of the file (the
    /// segment is complete). A segment left padded by a crash is read
    /// correctly too: a scan recognises the zeros.
    pub fn finish(&mut self) -> Result<(), WalError> {
        if self.direct.is_none() {
            return Ok(());
        }
        self.file
            .set_len(self.len)
            .and_then(|()| self.file.sync_data())
            .map_err(|source| WalError::Io {
                path: self.path.clone(),
                source,
            })
    }

    /// Makes everything appended so far durable.
    pub fn sync(&mut self) -> Result<(), WalError> {
        self.file.sync_data().map_err(|source| WalError::Io {
            path: self.path.clone(),
            source,
        })
    }
}

/// A segment opened for reading: through the page cache, and with direct
/// I/O where asked for and the file system allows it.
#[derive(Debug)]
pub struct SegmentFile {
    buffered: File,
    direct: Option<File>,
    uid: u64,
}

/// The uid of the next [`SegmentFile`] opened.
static NEXT_UID: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

impl SegmentFile {
    pub fn open(path: &Path, direct_io: bool) -> Result<Self, WalError> {
        let buffered = File::open(path).map_err(|source| WalError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        let direct = if direct_io {
            OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_DIRECT)
                .open(path)
                .ok()
        } else {
            None
        };
        let uid = NEXT_UID.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(SegmentFile {
            buffered,
            direct,
            uid,
        })
    }

    /// A number no other `SegmentFile` of this process has: tells the file
    /// apart from a later one with the same segment id (a compaction's
    /// replacement).
    pub fn uid(&self) -> u64 {
        self.uid
    }

    /// Whether reads can bypass the page cache ([`Self::read_direct`]).
    pub fn is_direct(&self) -> bool {
        self.direct.is_some()
    }

    /// The file through the page cache.
    pub fn buffered(&self) -> &File {
        &self.buffered
    }

    /// Fills `buf` (block-aligned memory, a whole number of blocks) from
    /// block-aligned `position` with direct I/O; returns the bytes read,
    /// fewer at the end of the file. `None` without direct I/O.
    pub fn read_direct(&self, buf: &mut [u8], position: u64) -> Option<std::io::Result<usize>> {
        let file = self.direct.as_ref()?;
        let mut done = 0;
        while done < buf.len() {
            match file.read_at(&mut buf[done..], position + done as u64) {
                Ok(0) => break,
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Some(Err(e)),
            }
        }
        Some(Ok(done))
    }
}

/// Reads the file header of the segment at `path`: `Ok(Err(_))` when the
/// file is there but its header is not one this build reads.
pub fn read_header(path: &Path) -> Result<Result<FileHeader, HeaderError>, WalError> {
    use std::io::Read;
    let io = |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut head = Vec::with_capacity(FILE_HEADER_LEN);
    File::open(path)
        .map_err(io)?
        .take(FILE_HEADER_LEN as u64)
        .read_to_end(&mut head)
        .map_err(io)?;
    Ok(read_file_header(&head))
}

/// Reads `len` bytes at `position` of an open segment or sealed file.
pub fn read_at(file: &File, position: u64, len: usize) -> std::io::Result<Vec<u8>> {
    use std::os::unix::fs::FileExt;
    let mut buf = vec![0u8; len];
    file.read_exact_at(&mut buf, position)?;
    Ok(buf)
}

/// Cuts a file back to `len` bytes and makes that durable.
pub fn truncate(storage: &dyn Storage, path: &Path, len: u64) -> Result<(), WalError> {
    let io = |source| WalError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = storage.open_write(path).map_err(io)?;
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
        let mut w = SegmentWriter::create(&crate::RealStorage, dir.path(), 3, false).unwrap();
        let mut buf = Vec::new();
        encode_entry(&mut buf, &[b"hello"]).unwrap();
        encode_entry(&mut buf, &[b"world"]).unwrap();
        let at = w.append(&buf).unwrap();
        w.sync().unwrap();
        assert_eq!(at, FILE_HEADER_LEN as u64);
        let header = read_header(w.path()).unwrap().unwrap();
        assert_eq!(header.first_segment, Some(3));
        let bytes = std::fs::read(w.path()).unwrap();
        let r = scan_segment(&bytes);
        assert_eq!(r.entries.len(), 2);
        let listed = list_segments(dir.path()).unwrap();
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].0, 3);
        let got = read_at(
            w.reader().unwrap().buffered(),
            r.entries[1].payload_position,
            5,
        )
        .unwrap();
        assert_eq!(got, b"world");
    }

    #[test]
    fn direct_appends_read_back_byte_for_byte_and_undo_and_finish_cleanly() {
        let dir = tempfile::tempdir().unwrap();
        let mut w = SegmentWriter::create(&crate::RealStorage, dir.path(), 1, true).unwrap();
        if !w.is_direct() {
            // This file system has no direct I/O: nothing to test here.
            return;
        }
        let mut expected = encode_file_header(1).to_vec();
        let mut positions = Vec::new();
        // Entries of many sizes, crossing block boundaries every way.
        for (i, len) in [1usize, 100, 4000, 4096, 5000, 10, 70_000, 3]
            .iter()
            .enumerate()
        {
            let mut buf = Vec::new();
            encode_entry(&mut buf, &[&vec![i as u8 + 1; *len]]).unwrap();
            positions.push(w.append(&buf).unwrap());
            w.sync().unwrap();
            expected.extend_from_slice(&buf);
            assert_eq!(w.len(), expected.len() as u64);
            let on_disk = std::fs::read(w.path()).unwrap();
            assert_eq!(on_disk.len() % crate::direct::BLOCK, 0, "padded to a block");
            assert_eq!(&on_disk[..expected.len()], &expected[..]);
            assert!(on_disk[expected.len()..].iter().all(|&b| b == 0));
        }
        let scan = scan_segment(&std::fs::read(w.path()).unwrap());
        assert_eq!(scan.entries.len(), 8);
        assert_eq!(scan.torn_bytes, 0);
        // A failed append is undone by cutting back; appends go on from there.
        let before = w.len();
        let mut buf = Vec::new();
        encode_entry(&mut buf, &[b"undone"]).unwrap();
        w.append(&buf).unwrap();
        w.truncate_to(before).unwrap();
        let mut buf = Vec::new();
        encode_entry(&mut buf, &[b"kept"]).unwrap();
        w.append(&buf).unwrap();
        expected.extend_from_slice(&buf);
        w.finish().unwrap();
        assert_eq!(
            std::fs::read(w.path()).unwrap(),
            expected,
            "no padding left"
        );
        let reader = w.reader().unwrap();
        let got = read_at(reader.buffered(), positions[6] + 16, 5).unwrap();
        assert_eq!(got, vec![7u8; 5]);
        // Direct reads of whole blocks, short at the end of the file.
        let mut stage = vec![0u8; 3 * crate::direct::BLOCK];
        let offset = (crate::direct::BLOCK - stage.as_ptr() as usize % crate::direct::BLOCK)
            % crate::direct::BLOCK;
        let window = &mut stage[offset..offset + 2 * crate::direct::BLOCK];
        let block = (expected.len() as u64 - 10) / crate::direct::BLOCK as u64;
        let at = block * crate::direct::BLOCK as u64;
        let n = reader.read_direct(window, at).unwrap().unwrap();
        assert_eq!(n as u64, expected.len() as u64 - at);
        assert_eq!(&window[..n], &expected[at as usize..]);
    }
}
