//! Read-ahead for consumers reading a partition's old data in order.
//!
//! When a partition is read from where its previous read ended (a consumer
//! going through its log), [`cursor`] plans the batches that consumer will
//! ask for next — up to [`AHEAD_BYTES`] past what it just read, stopping at
//! batches still in the tail cache — and hands them here. They are grouped
//! into runs of nearby batches of one segment, as reads are; each run
//! becomes a *window*, and one of [`READERS`] background threads reads it
//! with direct I/O into a block-aligned buffer and checks each batch's
//! header against the plan and its CRC-32C. The partition's next read takes
//! its batches from these windows (views, no copy) instead of waiting for
//! the disk, so the disk works while the previous answer is on its way to
//! the consumer; a read that finds its batch's window still being read
//! waits for it rather than reading the same bytes again.
//!
//! Invariants:
//! - memory: windows are read into buffers of a [`pool::Pool`] of at most
//!   `limit` bytes, reused without being zeroed again; when it has no room
//!   (its buffers all hold windows or answers not yet sent) the window is
//!   not read, and its batches are read by the fetch as without read-ahead.
//!   Idle buffers are freed once no window is left for [`EXPIRY`]. Windows
//!   waiting to be read are at most [`QUEUE`];
//! - a window belongs to the segment *file* it was read from (the `Arc` the
//!   plan holds), not just to its segment id: WAL compaction replaces
//!   segments by a file with the id of the last one, and a window of an old
//!   file never serves a batch planned in the new one. [`ReadAhead::forget`]
//!   drops windows of replaced segments so their memory and files go at once;
//! - a batch is served from a window only if it passed the checks a direct
//!   read makes (header as planned, CRC-32C); a damaged one is reported by
//!   the read that would have served it, as without read-ahead;
//! - a window goes once its last batch is served, or unused for [`EXPIRY`].

use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use strata_wal::direct::BLOCK;
use strata_wal::{SegmentFile, SegmentId};

mod cursor;
mod pool;

pub(crate) use cursor::ReadCursor;

use crate::read_plan::{is_intact, run_len, PlannedBatch};
use pool::Pool;

/// Memory for read-ahead unless configured (`wal_read_ahead_bytes`).
pub const DEFAULT_BYTES: usize = 32 * 1024 * 1024;
/// How far past its last read a sequential reader's batches are read ahead.
pub(crate) const AHEAD_BYTES: usize = 4 * 1024 * 1024;
/// A window unused this long is dropped (its reader went away).
const EXPIRY: Duration = Duration::from_secs(1);
/// How long a read waits for a window being read before reading itself.
const WAIT: Duration = Duration::from_secs(1);
/// Windows queued for the reading threads at most.
const QUEUE: usize = 64;
/// Reading threads: several reads in flight keep this kind of disk (a
/// virtio or NVMe queue) busier than one: 1.2–1.4 GB/s against 0.7–1.0
/// GB/s for 1 MiB direct reads on the development machine. With two, reads
/// still waited for the read-ahead 24–178 times per 1 GB consumed; with
/// four, 0–55 times.
const READERS: usize = 4;

/// What a read finds for a batch in the read-ahead.
#[derive(Debug)]
pub(crate) enum Taken {
    /// The batch's bytes, checked.
    Intact(Bytes),
    /// The batch failed its checks: to be reported and left out.
    Damaged,
}

/// Read-ahead windows and the threads that fill them.
pub(crate) struct ReadAhead {
    shared: Arc<Shared>,
    /// The reading thread's queue, started with the first window.
    jobs: OnceLock<Option<SyncSender<Job>>>,
}

impl std::fmt::Debug for ReadAhead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadAhead")
            .field("limit", &self.shared.limit)
            .finish_non_exhaustive()
    }
}

struct Shared {
    limit: usize,
    windows: Mutex<Windows>,
    /// Signalled when a window is read (or dropped).
    changed: Condvar,
    /// Taken after `windows` when both are held, never before.
    buffers: Mutex<Pool>,
}

#[derive(Default)]
struct Windows {
    list: Vec<Window>,
    next_id: u64,
}

struct Window {
    id: u64,
    file: Arc<SegmentFile>,
    segment: SegmentId,
    /// Where the window starts in the file (block-aligned).
    from: u64,
    /// The batches it holds, in position order.
    batches: Vec<PlannedBatch>,
    state: State,
    /// When it was filled or last served from.
    used: Instant,
    served: usize,
}

enum State {
    Reading,
    Ready { data: Bytes, intact: Vec<bool> },
    Failed,
}

/// A window for the reading thread to fill.
struct Job {
    id: u64,
    file: Arc<SegmentFile>,
    from: u64,
    /// Bytes to read (whole blocks).
    len: usize,
    batches: Vec<PlannedBatch>,
}

impl Window {
    /// Where `batch` is among this window's batches.
    fn find(&self, batch: &PlannedBatch) -> Option<usize> {
        if !Arc::ptr_eq(&self.file, &batch.file) {
            return None;
        }
        let at = self
            .batches
            .binary_search_by_key(&batch.position, |b| b.position)
            .ok()?;
        let held = self.batches.get(at)?;
        (held.base_offset == batch.base_offset && held.len == batch.len).then_some(at)
    }

    fn unserved_bytes(&self) -> u64 {
        self.batches
            .iter()
            .skip(self.served)
            .map(|b| b.len as u64)
            .sum()
    }
}

impl ReadAhead {
    /// Read-ahead in at most `limit` bytes of memory (0: none).
    pub(crate) fn new(limit: usize) -> Self {
        ReadAhead {
            shared: Arc::new(Shared {
                limit,
                windows: Mutex::new(Windows::default()),
                changed: Condvar::new(),
                buffers: Mutex::new(Pool::new(limit)),
            }),
            jobs: OnceLock::new(),
        }
    }

    pub(crate) fn enabled(&self) -> bool {
        self.shared.limit > 0
    }

    /// Has `batches` (a partition's next ones, in order, direct I/O) read
    /// ahead, as far as memory allows; returns how many of them (from the
    /// front) will be.
    pub(crate) fn request(&self, batches: &[PlannedBatch]) -> usize {
        let Some(jobs) = self.jobs() else {
            return 0;
        };
        let mut done = 0;
        while let Some(next) = batches.get(done) {
            if self.holds(next) {
                // Already read ahead (a read asked again for its batches).
                done += 1;
                continue;
            }
            let run = &batches[done..done + run_len(batches, done)];
            let (Some(first), Some(last)) = (run.first(), run.last()) else {
                break;
            };
            let from = first.position - first.position % BLOCK as u64;
            let end = last.position + last.len as u64;
            let len = (end.div_ceil(BLOCK as u64) * BLOCK as u64 - from) as usize;
            if len > self.shared.limit / 2 {
                // One batch too large for the read-ahead's memory.
                break;
            }
            let id = {
                let mut w = self.shared.lock();
                let id = w.next_id;
                w.next_id += 1;
                w.list.push(Window {
                    id,
                    file: Arc::clone(&first.file),
                    segment: first.segment,
                    from,
                    batches: run.to_vec(),
                    state: State::Reading,
                    used: Instant::now(),
                    served: 0,
                });
                id
            };
            let job = Job {
                id,
                file: Arc::clone(&first.file),
                from,
                len,
                batches: run.to_vec(),
            };
            match jobs.try_send(job) {
                Ok(()) => done += run.len(),
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.shared.lock().list.retain(|w| w.id != id);
                    break;
                }
            }
        }
        done
    }

    /// The batch, if a window holds it; waits while its window is being
    /// read.
    pub(crate) fn take(&self, batch: &PlannedBatch) -> Option<Taken> {
        let deadline = Instant::now() + WAIT;
        let mut waited = false;
        let mut w = self.shared.lock();
        loop {
            let at = w.list.iter().position(|x| x.find(batch).is_some())?;
            let window = w.list.get_mut(at)?;
            let index = window.find(batch)?;
            match &window.state {
                State::Reading => {
                    if !waited {
                        waited = true;
                        crate::metrics::count(crate::metrics::WAL_READ_AHEAD_WAITS);
                    }
                    let left = deadline.checked_duration_since(Instant::now())?;
                    w = self
                        .shared
                        .changed
                        .wait_timeout(w, left)
                        .unwrap_or_else(PoisonError::into_inner)
                        .0;
                }
                State::Failed => {
                    w.list.swap_remove(at);
                    return None;
                }
                State::Ready { data, intact } => {
                    let start = (batch.position - window.from) as usize;
                    let bytes = data.slice(start..start + batch.len);
                    let taken = if intact.get(index).copied().unwrap_or(false) {
                        Taken::Intact(bytes)
                    } else {
                        Taken::Damaged
                    };
                    window.used = Instant::now();
                    window.served = window.served.max(index + 1);
                    if index + 1 == window.batches.len() {
                        let done = w.list.swap_remove(at);
                        self.shared.recycle(done.state);
                    }
                    crate::metrics::count(crate::metrics::WAL_READ_AHEAD_HITS);
                    return Some(taken);
                }
            }
        }
    }

    /// The first of `batches` (in position order, one file) a window holds
    /// or is reading, under one lock.
    pub(crate) fn first_held(&self, batches: &[PlannedBatch]) -> Option<usize> {
        let first = batches.first()?;
        let w = self.shared.lock();
        w.list
            .iter()
            .filter(|w| Arc::ptr_eq(&w.file, &first.file))
            .filter_map(|w| {
                let start = w.batches.first()?.position;
                let at = batches.partition_point(|b| b.position < start);
                (at..batches.len())
                    .take(w.batches.len())
                    .find(|&k| batches.get(k).is_some_and(|b| w.find(b).is_some()))
            })
            .min()
    }

    /// Whether a window holds (or is reading) the batch.
    pub(crate) fn holds(&self, batch: &PlannedBatch) -> bool {
        self.shared
            .lock()
            .list
            .iter()
            .any(|w| w.find(batch).is_some())
    }

    /// Drops every window of `segments`.
    pub(crate) fn forget(&self, segments: &[SegmentId]) {
        self.shared.drop_windows(|w| segments.contains(&w.segment));
    }

    /// Bytes of batches the windows hold or are reading.
    #[cfg(test)]
    pub(crate) fn held_bytes(&self) -> u64 {
        self.shared
            .lock()
            .list
            .iter()
            .flat_map(|w| &w.batches)
            .map(|b| b.len as u64)
            .sum()
    }

    fn jobs(&self) -> Option<&SyncSender<Job>> {
        if !self.enabled() {
            return None;
        }
        self.jobs
            .get_or_init(|| {
                let (tx, rx) = sync_channel(QUEUE);
                let rx = Arc::new(Mutex::new(rx));
                let mut started = 0;
                for _ in 0..READERS {
                    let shared = Arc::clone(&self.shared);
                    let rx = Arc::clone(&rx);
                    match std::thread::Builder::new()
                        .name("strata-read-ahead".into())
                        .spawn(move || fill_windows(&shared, &rx))
                    {
                        Ok(_) => started += 1,
                        Err(e) => {
                            tracing::warn!(error = %e, "cannot start a read-ahead thread");
                        }
                    }
                }
                (started > 0).then_some(tx)
            })
            .as_ref()
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Windows> {
        self.windows.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn buffers(&self) -> MutexGuard<'_, Pool> {
        self.buffers.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Gives a gone window's buffer back to the pool.
    fn recycle(&self, state: State) {
        if let State::Ready { data, .. } = state {
            self.buffers().give_back(data);
        }
    }

    /// Drops the windows `gone` picks (their unserved bytes were read for
    /// nothing) and wakes readers waiting for them.
    fn drop_windows(&self, gone: impl Fn(&Window) -> bool) {
        let dropped: Vec<Window> = {
            let mut w = self.lock();
            let (out, kept) = std::mem::take(&mut w.list).into_iter().partition(&gone);
            w.list = kept;
            out
        };
        let unused = dropped.iter().map(Window::unserved_bytes).sum();
        crate::metrics::count_by(crate::metrics::WAL_READ_AHEAD_UNUSED_BYTES, unused);
        for window in dropped {
            self.recycle(window.state);
        }
        self.changed.notify_all();
    }

    /// Drops read windows unused for [`EXPIRY`].
    fn expire(&self) {
        let now = Instant::now();
        self.drop_windows(|w| {
            !matches!(w.state, State::Reading) && now.duration_since(w.used) >= EXPIRY
        });
    }

    /// A buffer for a window: from the pool, else after dropping windows
    /// nobody used lately, else none.
    fn buffer(&self, len: usize) -> Option<BytesMut> {
        if let Some(buf) = self.buffers().take(len) {
            return Some(buf);
        }
        self.expire();
        self.buffers().take(len)
    }

    /// Reads one window and makes it available.
    fn fill(&self, job: Job) {
        let Job {
            id,
            file,
            from,
            len,
            batches,
        } = job;
        let end = batches.last().map_or(from, |b| b.position + b.len as u64);
        let Some(mut buf) = self.buffer(len) else {
            crate::metrics::count(crate::metrics::WAL_READ_AHEAD_REFUSED);
            self.settle(id, State::Failed);
            return;
        };
        let read = buf
            .get_mut(..len)
            .and_then(|into| file.read_direct(into, from));
        let data = buf.freeze();
        let state = match read {
            Some(Ok(got)) if got as u64 >= end - from => {
                let intact = batches
                    .iter()
                    .map(|b| {
                        let at = (b.position - from) as usize;
                        data.get(at..at + b.len)
                            .is_some_and(|bytes| is_intact(bytes, b))
                    })
                    .collect();
                crate::metrics::count_by(crate::metrics::WAL_READ_AHEAD_BYTES, end - from);
                State::Ready { data, intact }
            }
            // Short, failed or refused: the reader reads itself and reports.
            _ => {
                self.buffers().give_back(data);
                State::Failed
            }
        };
        self.settle(id, state);
    }

    /// Window `id` is read (or cannot be): readers may take from it.
    fn settle(&self, id: u64, state: State) {
        let mut w = self.lock();
        match w.list.iter_mut().find(|w| w.id == id) {
            Some(window) => {
                window.state = state;
                window.used = Instant::now();
            }
            // Forgotten while it was read.
            None => self.recycle(state),
        }
        drop(w);
        self.changed.notify_all();
    }
}

/// A reading thread: fills windows in the order they were asked for (with
/// the other threads), drops expired ones, and frees idle buffers once no
/// window is left.
fn fill_windows(shared: &Shared, jobs: &Mutex<Receiver<Job>>) {
    loop {
        let next = jobs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .recv_timeout(EXPIRY);
        match next {
            Ok(job) => shared.fill(job),
            Err(RecvTimeoutError::Timeout) => {
                shared.expire();
                let idle = shared.lock().list.is_empty();
                if idle {
                    shared.buffers().release_unused();
                }
            }
            Err(RecvTimeoutError::Disconnected) => return,
        }
    }
}

#[cfg(test)]
mod tests;
