//! The storage seam: every operation of the storage layer that changes
//! files or directories goes through a [`Storage`], so that a test can put
//! a simulated disk (`SimStorage`, feature `sim`) in place of the
//! real one and cut its power at any point.
//!
//! Only mutations and their durability go through the seam: creating,
//! writing, cutting back and syncing files; renaming and removing names;
//! creating and syncing directories. Reads (segment reads, scans, index
//! and metadata loads, directory listings) use `std::fs` on the same paths,
//! so a simulated storage keeps the files it models on a real directory.
//!
//! Direct I/O appends ([`crate::direct`]) write around the seam; only a
//! storage that says so ([`Storage::allows_direct_io`]) gets them.
//!
//! Invariants: a [`StorageFile`]'s writes are durable once its
//! `sync_data`/`sync_all` has returned `Ok`; a created, renamed or removed
//! name is durable once its directory's [`Storage::sync_dir`] has returned
//! `Ok` after it.

use std::fmt::Debug;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::Path;

/// Where the storage layer's files live, as far as changing them goes.
pub trait Storage: Send + Sync + Debug {
    /// Creates `path` empty and opens it for writing: with `new`, failing
    /// if it exists; otherwise truncating a file that does.
    fn create(&self, path: &Path, new: bool) -> io::Result<Box<dyn StorageFile>>;
    /// Creates `path` (truncating a file that exists) for writes that
    /// bypass the page cache (`O_DIRECT`) where the file system allows it.
    /// Every write must then be whole blocks of [`crate::direct::BLOCK`]
    /// bytes, at a block-aligned offset, from block-aligned memory; the
    /// padding of the last block is cut with `set_len`. Where direct I/O is
    /// refused the file is an ordinary one, and the same writes work.
    fn create_unbuffered(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        self.create(path, false)
    }
    /// Opens an existing file for writing (to cut it back).
    fn open_write(&self, path: &Path) -> io::Result<Box<dyn StorageFile>>;
    /// Renames `from` to `to`, replacing `to` if it exists.
    fn rename(&self, from: &Path, to: &Path) -> io::Result<()>;
    fn remove_file(&self, path: &Path) -> io::Result<()>;
    fn create_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Removes a directory and everything in it.
    fn remove_dir_all(&self, path: &Path) -> io::Result<()>;
    /// Makes the names created, renamed or removed in `dir` durable.
    fn sync_dir(&self, dir: &Path) -> io::Result<()>;
    /// Whether writers may append with direct I/O, around this storage.
    fn allows_direct_io(&self) -> bool {
        false
    }
}

/// A file opened for writing through a [`Storage`].
pub trait StorageFile: Send + Sync + Debug {
    /// Writes all of `buf` at `offset`.
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()>;
    fn set_len(&self, len: u64) -> io::Result<()>;
    /// Makes the file's data and metadata durable (`fsync`).
    fn sync_all(&self) -> io::Result<()>;
    /// Makes the file's data durable (`fdatasync`).
    fn sync_data(&self) -> io::Result<()>;
}

/// The real file system, through `std::fs`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RealStorage;

#[derive(Debug)]
struct RealFile(File);

impl StorageFile for RealFile {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        self.0.write_all_at(buf, offset)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.0.set_len(len)
    }

    fn sync_all(&self) -> io::Result<()> {
        self.0.sync_all()
    }

    fn sync_data(&self) -> io::Result<()> {
        self.0.sync_data()
    }
}

impl Storage for RealStorage {
    fn create(&self, path: &Path, new: bool) -> io::Result<Box<dyn StorageFile>> {
        let mut options = OpenOptions::new();
        options.read(true).write(true);
        if new {
            options.create_new(true);
        } else {
            options.create(true).truncate(true);
        }
        Ok(Box::new(RealFile(options.open(path)?)))
    }

    fn create_unbuffered(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        use std::os::unix::fs::OpenOptionsExt;
        let direct = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(libc::O_DIRECT)
            .open(path);
        match direct {
            Ok(file) => Ok(Box::new(RealFile(file))),
            // The file system refuses direct I/O (tmpfs).
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => self.create(path, false),
            Err(e) => Err(e),
        }
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let file = OpenOptions::new().write(true).open(path)?;
        Ok(Box::new(RealFile(file)))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        std::fs::rename(from, to)
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_file(path)
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::create_dir_all(path)
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        std::fs::remove_dir_all(path)
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        File::open(dir)?.sync_all()
    }

    fn allows_direct_io(&self) -> bool {
        true
    }
}

/// A file written through a [`StorageFile`] from its start, sequentially
/// (for a `BufWriter`).
#[derive(Debug)]
pub struct SequentialWriter {
    file: Box<dyn StorageFile>,
    position: u64,
}

impl SequentialWriter {
    pub fn new(file: Box<dyn StorageFile>) -> Self {
        SequentialWriter { file, position: 0 }
    }

    pub fn file(&self) -> &dyn StorageFile {
        self.file.as_ref()
    }
}

impl io::Write for SequentialWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.file.write_all_at(buf, self.position)?;
        self.position += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Creates `path` and its missing parents, and syncs the directory of each
/// one created: a new directory's name is durable only once its parent is
/// synced, and a file synced in a directory whose name is not durable is
/// lost with it at a power cut.
pub fn create_dir_all_durably(storage: &dyn Storage, path: &Path) -> io::Result<()> {
    let mut missing = Vec::new();
    let mut at = path;
    while !at.as_os_str().is_empty() && !at.exists() {
        missing.push(at);
        match at.parent() {
            Some(parent) => at = parent,
            None => break,
        }
    }
    storage.create_dir_all(path)?;
    for dir in missing.iter().rev() {
        match dir.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => storage.sync_dir(parent)?,
            _ => storage.sync_dir(Path::new("."))?,
        }
    }
    Ok(())
}
