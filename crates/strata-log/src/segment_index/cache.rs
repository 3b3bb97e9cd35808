//! The entries of sealed runs, brought back from segment indexes when a
//! read or a housekeeping task needs them, in a cache bounded in bytes.
//!
//! A partition keeps one summary per sealed segment
//! ([`crate::batch_list`]); the batches themselves are in the segment's
//! index. Code that walks batches does so under the partition's lock, and
//! never reads a file there: a summary whose entries are not at hand
//! answers [`NeedIndex`], the caller drops the lock, [`IndexCache::load`]s
//! them and tries again.
//!
//! Invariants:
//! - entries are keyed by the segment *file* (its uid), not only the
//!   segment id: a compaction's replacement reuses the id, never the uid,
//!   so cached entries are never stale;
//! - a file's entries are read from disk only while the index on disk is
//!   that file's (`current`, kept by the sealing thread: [`IndexCache::installed`]
//!   after an index is written, [`IndexCache::removing`] before one goes);
//!   loads hold `current`'s lock across the read, so an index cannot be
//!   removed under a load, while lookups of cached entries take only the
//!   entries' lock and never wait for a disk read;
//! - cached bytes stay within the budget, least recently used out first
//!   (a single run larger than the budget is handed out but not kept).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

use strata_wal::SegmentId;

use tracing::warn;

use super::{BatchEntry, IndexDefect, IndexHead, IndexedRun};
use crate::log_limit::LogLimit;
use crate::topic::TopicId;
use crate::LogError;

/// One partition's entries in one segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct EntriesKey {
    pub segment: SegmentId,
    pub file: u64,
    pub topic: TopicId,
    pub partition: i32,
}

/// A walk needs these entries, which are not at hand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct NeedIndex(pub EntriesKey);

/// Entries brought back, shared with whoever walks them.
pub(crate) type Entries = Arc<[BatchEntry]>;

/// The default budget: 32 MiB, the entries of about 800,000 batches.
pub const DEFAULT_BYTES: usize = 32 * 1024 * 1024;

/// Bytes an entry takes in memory.
const ENTRY_BYTES: usize = std::mem::size_of::<BatchEntry>();

#[derive(Debug, Default)]
struct Cached {
    /// Entries, with when they were last used.
    entries: HashMap<EntriesKey, (Entries, u64)>,
    /// Keys by when they were last used.
    by_use: BTreeMap<u64, EntriesKey>,
    bytes: usize,
    clock: u64,
}

impl Cached {
    fn touch(&mut self, key: &EntriesKey) -> Option<Entries> {
        self.clock += 1;
        let now = self.clock;
        let (entries, used) = self.entries.get_mut(key)?;
        self.by_use.remove(used);
        *used = now;
        self.by_use.insert(now, *key);
        Some(Arc::clone(entries))
    }
}

/// Runs' entries, by segment file and partition.
#[derive(Debug)]
pub struct IndexCache {
    wal_dir: PathBuf,
    budget: usize,
    /// Which file each segment's index on disk describes; held by loads.
    current: Mutex<HashMap<SegmentId, u64>>,
    cached: Mutex<Cached>,
}

impl IndexCache {
    /// A cache of at most `budget` bytes of entries for the indexes in
    /// `wal_dir`.
    pub fn new(wal_dir: PathBuf, budget: usize) -> Self {
        IndexCache {
            wal_dir,
            budget,
            current: Mutex::new(HashMap::new()),
            cached: Mutex::new(Cached::default()),
        }
    }

    fn current_lock(&self) -> std::sync::MutexGuard<'_, HashMap<SegmentId, u64>> {
        self.current.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn cached_lock(&self) -> std::sync::MutexGuard<'_, Cached> {
        self.cached.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Segment `segment`'s index on disk now describes file `file`.
    pub(crate) fn installed(&self, segment: SegmentId, file: u64) {
        self.current_lock().insert(segment, file);
    }

    /// Segment `segment`'s index is about to be removed (waits for a load
    /// reading it).
    pub(crate) fn removing(&self, segment: SegmentId) {
        self.current_lock().remove(&segment);
    }

    /// The file whose index segment `segment` has on disk.
    pub(crate) fn current(&self, segment: SegmentId) -> Option<u64> {
        self.current_lock().get(&segment).copied()
    }

    /// The cached entries of `key`.
    pub(crate) fn get(&self, key: &EntriesKey) -> Option<Entries> {
        self.cached_lock().touch(key)
    }

    /// The entries of `key`, read from its index if not cached. `None`
    /// when the index on disk is no longer that file's (a compaction
    /// replaced it: the walk should look again).
    pub(crate) fn load(&self, key: &EntriesKey) -> Result<Option<Entries>, LogError> {
        let current = self.current_lock();
        if let Some(entries) = self.get(key) {
            return Ok(Some(entries));
        }
        if current.get(&key.segment) != Some(&key.file) {
            return Ok(None);
        }
        let path = super::index_path(&self.wal_dir, key.segment);
        let entries: Entries = match read_run(&path, key)? {
            Ok(entries) => Arc::from(entries),
            Err(defect) => {
                crate::metrics::count(crate::metrics::INDEX_DAMAGED);
                if let Some(suppressed) = INDEX_DAMAGED.admit() {
                    warn!(file = %path.display(), %defect, suppressed, "segment index damaged; the partition's batches are found by scanning the segment");
                }
                Arc::from(scan_segment(&self.wal_dir, key)?)
            }
        };
        crate::metrics::count(crate::metrics::INDEX_ENTRIES_LOADED);
        self.keep(*key, &entries);
        drop(current);
        Ok(Some(entries))
    }

    /// Caches `entries`, least recently used out first.
    fn keep(&self, key: EntriesKey, entries: &Entries) {
        let size = entries.len() * ENTRY_BYTES;
        if size > self.budget {
            return;
        }
        let mut cached = self.cached_lock();
        if cached.touch(&key).is_some() {
            return;
        }
        while cached.bytes + size > self.budget {
            let Some((_, oldest)) = cached.by_use.pop_first() else {
                break;
            };
            if let Some((gone, _)) = cached.entries.remove(&oldest) {
                cached.bytes -= gone.len() * ENTRY_BYTES;
            }
        }
        cached.clock += 1;
        let now = cached.clock;
        cached.bytes += size;
        cached.by_use.insert(now, key);
        cached.entries.insert(key, (Arc::clone(entries), now));
    }
}

static INDEX_DAMAGED: LogLimit = LogLimit::new(std::time::Duration::from_secs(10));

/// `key`'s entries from the index at `path`.
fn read_run(
    path: &std::path::Path,
    key: &EntriesKey,
) -> Result<Result<Vec<BatchEntry>, IndexDefect>, LogError> {
    let runs = match super::read_head(path)? {
        Ok(IndexHead::Runs(runs)) => runs,
        Ok(IndexHead::Version1(_)) => return Ok(Err(IndexDefect::NotAnIndex)),
        Err(defect) => return Ok(Err(defect)),
    };
    let Some(run) = find_run(&runs, key.topic, key.partition) else {
        return Ok(Ok(Vec::new()));
    };
    let file = File::open(path).map_err(|source| LogError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    super::read_entries(&file, path, run)
}

fn find_run(runs: &[IndexedRun], topic: TopicId, partition: i32) -> Option<&IndexedRun> {
    runs.iter()
        .find(|r| r.topic == topic && r.partition == partition)
}

/// `key`'s entries found by reading its segment (its index is damaged):
/// every intact entry of the partition, up to anything irregular.
fn scan_segment(wal_dir: &std::path::Path, key: &EntriesKey) -> Result<Vec<BatchEntry>, LogError> {
    use strata_wal::NextEntry;
    let path = strata_wal::segment_path(wal_dir, key.segment);
    let mut out = Vec::new();
    let Some(mut reader) = strata_wal::EntryReader::open(&path, false)? else {
        return Ok(out);
    };
    while let NextEntry::Entry(payload, at) = reader.next_entry()? {
        let Ok(prefix) = crate::entry::read_prefix(payload) else {
            continue;
        };
        if (prefix.topic, prefix.partition) != (key.topic, key.partition) {
            continue;
        }
        let batch = payload.get(crate::entry::PREFIX_LEN..).unwrap_or_default();
        let Ok(header) = strata_protocol::batch::BatchHeader::parse(batch) else {
            continue;
        };
        out.push(BatchEntry::of(
            &header,
            at + crate::entry::PREFIX_LEN as u64,
        ));
    }
    out.sort_by_key(|e| e.base_offset);
    Ok(out)
}

/// The entries a walk may use: cached ones, and those its caller holds.
pub(crate) struct Indexes<'a> {
    pub cache: &'a IndexCache,
    pub held: &'a [(EntriesKey, Entries)],
}

impl Indexes<'_> {
    pub(crate) fn entries(&self, key: EntriesKey) -> Result<Entries, NeedIndex> {
        if let Some((_, entries)) = self.held.iter().find(|(k, _)| *k == key) {
            return Ok(Arc::clone(entries));
        }
        self.cache.get(&key).ok_or(NeedIndex(key))
    }
}
