//! A simulated disk for crash tests: a [`Storage`] that keeps what was
//! written apart from what was made durable, and can lose power.
//!
//! It works on a real directory (its *root*), so everything the storage
//! layer reads keeps working on real files, and it models beside it:
//! - per file (an inode: a name may be renamed or removed while the file
//!   lives on), its current bytes and its durable bytes — those of its last
//!   successful sync;
//! - per directory, its current names and its durable names — those of its
//!   last successful sync. A subdirectory is a name like any other.
//!
//! [`SimStorage::power_cut`] rewrites the root to the durable image: every
//! name not yet made durable undone (creates, renames, removes), every file
//! back to its synced bytes; with `tear`, a random prefix of a file's last
//! unsynced write is kept, as a write the power cut interrupted leaves it.
//! From the cut on, every operation fails with EIO, so threads still
//! running cannot change the image. [`SimStorage::cut_at_sync`] cuts the
//! power at the n-th sync (that sync does not happen).
//! [`SimStorage::fail_write`] and [`SimStorage::fail_sync`] make one write
//! or sync fail with EIO (nothing of it done) while power stays on.
//!
//! Syncs are counted, not done: nothing is fsynced on the real disk.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::{Component, Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::storage::{Storage, StorageFile};

/// A simulated disk on the directory `root`. Clones share the disk.
#[derive(Debug, Clone)]
pub struct SimStorage {
    root: PathBuf,
    state: Arc<Mutex<State>>,
}

#[derive(Debug, Clone, Copy)]
enum Entry {
    File(usize),
    Dir(usize),
}

#[derive(Debug, Default)]
struct SimFile {
    current: Vec<u8>,
    durable: Vec<u8>,
    /// The last write since the last sync, if nothing else came after it.
    last_write: Option<(u64, Vec<u8>)>,
}

#[derive(Debug, Default)]
struct SimDir {
    current: BTreeMap<OsString, Entry>,
    durable: BTreeMap<OsString, Entry>,
}

#[derive(Debug)]
struct State {
    files: Vec<SimFile>,
    /// Directory 0 is the root, durable by definition.
    dirs: Vec<SimDir>,
    writes: u64,
    syncs: u64,
    cut_at_sync: Option<u64>,
    fail_write: Option<u64>,
    fail_sync: Option<u64>,
    failed: u64,
    powered: bool,
    imaged: bool,
    rng: u64,
}

fn eio() -> io::Error {
    io::Error::from_raw_os_error(libc::EIO)
}

fn not_found() -> io::Error {
    io::Error::from(io::ErrorKind::NotFound)
}

impl State {
    fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
        state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn powered(&self) -> io::Result<()> {
        if self.powered {
            Ok(())
        } else {
            Err(eio())
        }
    }

    /// Counts a sync; an error if it is the one to fail or to cut at.
    fn sync_point(&mut self) -> io::Result<()> {
        self.powered()?;
        self.syncs += 1;
        if self.cut_at_sync == Some(self.syncs) {
            self.powered = false;
            return Err(eio());
        }
        if self.fail_sync == Some(self.syncs) {
            self.failed += 1;
            return Err(eio());
        }
        Ok(())
    }

    fn next_random(&mut self) -> u64 {
        // splitmix64
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn new_dir(&mut self) -> usize {
        self.dirs.push(SimDir::default());
        self.dirs.len() - 1
    }

    /// Records the tree under `dir` on the real disk as durable.
    fn import(&mut self, dir: usize, path: &Path) -> io::Result<()> {
        for entry in std::fs::read_dir(path)? {
            let entry = entry?;
            let node = if entry.file_type()?.is_dir() {
                let sub = self.new_dir();
                self.import(sub, &entry.path())?;
                Entry::Dir(sub)
            } else {
                let bytes = std::fs::read(entry.path())?;
                self.files.push(SimFile {
                    current: bytes.clone(),
                    durable: bytes,
                    last_write: None,
                });
                Entry::File(self.files.len() - 1)
            };
            let names = &mut self.dirs[dir];
            names.current.insert(entry.file_name(), node);
            names.durable.insert(entry.file_name(), node);
        }
        Ok(())
    }

    /// Writes the durable image of `dir` to `path` (an empty directory).
    fn write_image(&mut self, dir: usize, path: &Path, tear: bool) -> io::Result<()> {
        let names: Vec<(OsString, Entry)> = self.dirs[dir]
            .durable
            .iter()
            .map(|(n, e)| (n.clone(), *e))
            .collect();
        for (name, entry) in names {
            let at = path.join(&name);
            match entry {
                Entry::Dir(sub) => {
                    std::fs::create_dir(&at)?;
                    self.write_image(sub, &at, tear)?;
                }
                Entry::File(id) => {
                    let mut bytes = self.files[id].durable.clone();
                    let torn = self.files[id].last_write.clone();
                    if let Some((offset, written)) = torn.filter(|_| tear) {
                        let offset = usize::try_from(offset).unwrap_or(usize::MAX);
                        if offset <= bytes.len() && !written.is_empty() {
                            let keep = (self.next_random() % written.len() as u64) as usize;
                            let end = offset + keep;
                            if bytes.len() < end {
                                bytes.resize(end, 0);
                            }
                            bytes[offset..end].copy_from_slice(&written[..keep]);
                        }
                    }
                    std::fs::write(&at, bytes)?;
                }
            }
        }
        Ok(())
    }
}

impl SimStorage {
    /// A simulated disk on `root` (created if missing); what is in it now
    /// counts as durable. `seed` drives where writes tear.
    pub fn new(root: &Path, seed: u64) -> io::Result<Self> {
        std::fs::create_dir_all(root)?;
        let mut state = State {
            files: Vec::new(),
            dirs: vec![SimDir::default()],
            writes: 0,
            syncs: 0,
            cut_at_sync: None,
            fail_write: None,
            fail_sync: None,
            failed: 0,
            powered: true,
            imaged: false,
            rng: seed,
        };
        state.import(0, root)?;
        Ok(SimStorage {
            root: root.to_path_buf(),
            state: Arc::new(Mutex::new(state)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        State::lock(&self.state)
    }

    /// Syncs (of files and directories) so far, the cut one included.
    pub fn syncs(&self) -> u64 {
        self.lock().syncs
    }

    /// File writes so far.
    pub fn writes(&self) -> u64 {
        self.lock().writes
    }

    /// Operations failed by [`Self::fail_write`] and [`Self::fail_sync`].
    pub fn injected_failures(&self) -> u64 {
        self.lock().failed
    }

    /// Whether the power is still on.
    pub fn powered(&self) -> bool {
        self.lock().powered
    }

    /// Cuts the power at sync number `n` (counted from 1 since the disk
    /// was made): that sync and everything after it fail with EIO.
    pub fn cut_at_sync(&self, n: u64) {
        self.lock().cut_at_sync = Some(n);
    }

    /// Fails write number `n` (counted from 1 since the disk was made)
    /// with EIO; nothing of it is written.
    pub fn fail_write(&self, n: u64) {
        self.lock().fail_write = Some(n);
    }

    /// Fails sync number `n` with EIO; nothing becomes durable by it.
    pub fn fail_sync(&self, n: u64) {
        self.lock().fail_sync = Some(n);
    }

    /// Cuts the power (if it is still on) and rewrites the root to the
    /// durable image; with `tear`, each file keeps a random prefix of its
    /// last unsynced write. Only the first call rewrites.
    pub fn power_cut(&self, tear: bool) -> io::Result<()> {
        let mut state = self.lock();
        state.powered = false;
        if state.imaged {
            return Ok(());
        }
        state.imaged = true;
        for entry in std::fs::read_dir(&self.root)? {
            let entry = entry?;
            if entry.file_type()?.is_dir() {
                std::fs::remove_dir_all(entry.path())?;
            } else {
                std::fs::remove_file(entry.path())?;
            }
        }
        state.write_image(0, &self.root, tear)
    }

    /// The directory `path` names, following current names.
    fn dir_of(state: &State, root: &Path, path: &Path) -> io::Result<usize> {
        let rel = path
            .strip_prefix(root)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "outside the sim root"))?;
        let mut dir = 0;
        for component in rel.components() {
            let Component::Normal(name) = component else {
                return Err(io::Error::from(io::ErrorKind::InvalidInput));
            };
            match state.dirs[dir].current.get(name) {
                Some(Entry::Dir(sub)) => dir = *sub,
                Some(Entry::File(_)) => return Err(io::Error::from(io::ErrorKind::NotADirectory)),
                None => return Err(not_found()),
            }
        }
        Ok(dir)
    }

    /// The directory holding `path`, and `path`'s name in it.
    fn parent_of(&self, state: &State, path: &Path) -> io::Result<(usize, OsString)> {
        let (Some(parent), Some(name)) = (path.parent(), path.file_name()) else {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        };
        Ok((
            Self::dir_of(state, &self.root, parent)?,
            name.to_os_string(),
        ))
    }

    fn handle(&self, id: usize, real: File, unbuffered: bool) -> Box<dyn StorageFile> {
        Box::new(SimFileHandle {
            state: Arc::clone(&self.state),
            id,
            real,
            unbuffered,
        })
    }

    fn create_file(
        &self,
        path: &Path,
        new: bool,
        unbuffered: bool,
    ) -> io::Result<Box<dyn StorageFile>> {
        let mut state = self.lock();
        state.powered()?;
        let (dir, name) = self.parent_of(&state, path)?;
        if new && state.dirs[dir].current.contains_key(&name) {
            return Err(io::Error::from(io::ErrorKind::AlreadyExists));
        }
        let real = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)?;
        // Truncating a file is modelled as a new file under its name: the
        // old bytes come back unless the directory is synced after it.
        state.files.push(SimFile::default());
        let id = state.files.len() - 1;
        state.dirs[dir].current.insert(name, Entry::File(id));
        Ok(self.handle(id, real, unbuffered))
    }
}

impl Storage for SimStorage {
    fn create(&self, path: &Path, new: bool) -> io::Result<Box<dyn StorageFile>> {
        self.create_file(path, new, false)
    }

    /// A file whose writes must follow direct I/O's rules (EINVAL
    /// otherwise), so tests catch a misaligned write the real disk would
    /// refuse.
    fn create_unbuffered(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        self.create_file(path, false, true)
    }

    fn open_write(&self, path: &Path) -> io::Result<Box<dyn StorageFile>> {
        let state = self.lock();
        state.powered()?;
        let (dir, name) = self.parent_of(&state, path)?;
        let Some(Entry::File(id)) = state.dirs[dir].current.get(&name).copied() else {
            return Err(not_found());
        };
        let real = OpenOptions::new().write(true).open(path)?;
        Ok(self.handle(id, real, false))
    }

    fn rename(&self, from: &Path, to: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.powered()?;
        let (from_dir, from_name) = self.parent_of(&state, from)?;
        let (to_dir, to_name) = self.parent_of(&state, to)?;
        std::fs::rename(from, to)?;
        let entry = state.dirs[from_dir]
            .current
            .remove(&from_name)
            .ok_or_else(not_found)?;
        state.dirs[to_dir].current.insert(to_name, entry);
        Ok(())
    }

    fn remove_file(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.powered()?;
        let (dir, name) = self.parent_of(&state, path)?;
        std::fs::remove_file(path)?;
        state.dirs[dir].current.remove(&name);
        Ok(())
    }

    fn create_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.powered()?;
        std::fs::create_dir_all(path)?;
        let rel = path
            .strip_prefix(&self.root)
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "outside the sim root"))?;
        let mut dir = 0;
        for component in rel.components() {
            let Component::Normal(name) = component else {
                return Err(io::Error::from(io::ErrorKind::InvalidInput));
            };
            dir = match state.dirs[dir].current.get(name).copied() {
                Some(Entry::Dir(sub)) => sub,
                Some(Entry::File(_)) => return Err(io::Error::from(io::ErrorKind::NotADirectory)),
                None => {
                    let sub = state.new_dir();
                    state.dirs[dir]
                        .current
                        .insert(name.to_os_string(), Entry::Dir(sub));
                    sub
                }
            };
        }
        Ok(())
    }

    fn remove_dir_all(&self, path: &Path) -> io::Result<()> {
        let mut state = self.lock();
        state.powered()?;
        let (dir, name) = self.parent_of(&state, path)?;
        std::fs::remove_dir_all(path)?;
        state.dirs[dir].current.remove(&name);
        Ok(())
    }

    fn sync_dir(&self, dir: &Path) -> io::Result<()> {
        let mut state = self.lock();
        let id = Self::dir_of(&state, &self.root, dir)?;
        state.sync_point()?;
        let names = &mut state.dirs[id];
        names.durable = names.current.clone();
        Ok(())
    }
}

/// A file of a [`SimStorage`], open for writing.
#[derive(Debug)]
struct SimFileHandle {
    state: Arc<Mutex<State>>,
    id: usize,
    real: File,
    /// Writes must be whole aligned blocks from aligned memory.
    unbuffered: bool,
}

impl SimFileHandle {
    fn sync(&self) -> io::Result<()> {
        let mut state = State::lock(&self.state);
        state.sync_point()?;
        let file = &mut state.files[self.id];
        file.durable = file.current.clone();
        file.last_write = None;
        Ok(())
    }
}

impl StorageFile for SimFileHandle {
    fn write_all_at(&self, buf: &[u8], offset: u64) -> io::Result<()> {
        let block = crate::direct::BLOCK;
        if self.unbuffered
            && (!offset.is_multiple_of(block as u64)
                || !buf.len().is_multiple_of(block)
                || !(buf.as_ptr() as usize).is_multiple_of(block))
        {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let mut state = State::lock(&self.state);
        state.powered()?;
        state.writes += 1;
        if state.fail_write == Some(state.writes) {
            state.failed += 1;
            return Err(eio());
        }
        self.real.write_all_at(buf, offset)?;
        let file = &mut state.files[self.id];
        let start = usize::try_from(offset).map_err(|_| eio())?;
        let end = start + buf.len();
        if file.current.len() < end {
            file.current.resize(end, 0);
        }
        file.current[start..end].copy_from_slice(buf);
        file.last_write = Some((offset, buf.to_vec()));
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = State::lock(&self.state);
        state.powered()?;
        self.real.set_len(len)?;
        let file = &mut state.files[self.id];
        file.current
            .resize(usize::try_from(len).map_err(|_| eio())?, 0);
        file.last_write = None;
        Ok(())
    }

    fn sync_all(&self) -> io::Result<()> {
        self.sync()
    }

    fn sync_data(&self) -> io::Result<()> {
        self.sync()
    }
}
