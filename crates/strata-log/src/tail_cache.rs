//! The WAL's tail in memory: the bytes of the most recent group commits,
//! so that reads of recent batches (consumers keeping up with producers)
//! come from memory. With direct-I/O appends the page cache does not hold
//! what was just written; without them this only saves the copy out of it.
//!
//! The appender builds each write in a slab of [`SLAB_BYTES`]
//! ([`Staging`]), block-aligned as direct I/O needs it, and the cache
//! keeps a `Bytes` view of the written bytes, so nothing is copied to fill
//! it; the oldest views are dropped once the cache holds more than its
//! limit. A read hands out views too, so a batch served from here is never
//! copied until it reaches the socket. Slabs are reused once no view into
//! them is left (cached, or in flight to a consumer), so steady traffic
//! touches no fresh memory.
//!
//! The cache also owns the [`ReadAhead`] of consumers reading old data in
//! order, so that [`TailCache::forget`] (WAL compaction replacing
//! segments) drops what both hold of those segments.

use std::collections::VecDeque;
use std::ops::Range;
use std::sync::{Mutex, PoisonError};

use bytes::{BufMut, Bytes, BytesMut};
use strata_wal::direct::{window_len, BLOCK};
use strata_wal::SegmentId;

use crate::read_ahead::ReadAhead;

/// Bytes of one write slab: room for the largest ordinary group commit
/// (8 MiB) with its carry and padding, so slabs are all alike and
/// reusable. A larger write (one produce request over 8 MiB) gets a slab
/// of its own size.
const SLAB_BYTES: usize = 8 * 1024 * 1024 + 4 * BLOCK;
/// Bytes of one read slab: a run of nearby batches is at most 4 MiB.
const READ_SLAB_BYTES: usize = 4 * 1024 * 1024 + 4 * BLOCK;

/// One group commit's bytes, where the WAL holds them.
struct Chunk {
    segment: SegmentId,
    start: u64,
    data: Bytes,
    /// Memory the chunk holds: its whole write window (carry and padding
    /// included), which for small writes is several times the data.
    held: usize,
}

#[derive(Default)]
struct Chunks {
    list: VecDeque<Chunk>,
    bytes: usize,
}

/// The most recent WAL bytes, up to a limit, and aligned memory for reads
/// of older ones.
pub struct TailCache {
    limit: usize,
    chunks: Mutex<Chunks>,
    reads: Mutex<Staging>,
    /// Batches read ahead for sequential readers of old data.
    pub(crate) ahead: ReadAhead,
}

impl std::fmt::Debug for TailCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TailCache")
            .field("limit", &self.limit)
            .finish_non_exhaustive()
    }
}

impl TailCache {
    /// A cache of at most `limit` bytes (0 turns it off), with the
    /// default read-ahead.
    pub fn new(limit: usize) -> Self {
        Self::with_read_ahead(limit, crate::read_ahead::DEFAULT_BYTES)
    }

    /// A cache of at most `limit` bytes, and at most `read_ahead_bytes` of
    /// memory for read-ahead (0 turns either off).
    pub fn with_read_ahead(limit: usize, read_ahead_bytes: usize) -> Self {
        TailCache {
            limit,
            chunks: Mutex::new(Chunks::default()),
            reads: Mutex::new(Staging {
                slab_bytes: READ_SLAB_BYTES,
                retired_limit: 2,
                ..Staging::default()
            }),
            ahead: ReadAhead::new(read_ahead_bytes),
        }
    }

    /// Keeps the bytes at `data` of a written `window`, which start at
    /// `start` in `segment`. Writes arrive in WAL order. The limit counts
    /// the whole window, the memory actually held.
    pub fn insert(&self, segment: SegmentId, start: u64, window: &Bytes, data: Range<usize>) {
        if self.limit == 0 || data.is_empty() || data.end > window.len() {
            return;
        }
        let mut chunks = self.chunks.lock().unwrap_or_else(PoisonError::into_inner);
        chunks.bytes += window.len();
        chunks.list.push_back(Chunk {
            segment,
            start,
            data: window.slice(data),
            held: window.len(),
        });
        while chunks.bytes > self.limit {
            match chunks.list.pop_front() {
                Some(old) => chunks.bytes -= old.held,
                None => break,
            }
        }
    }

    /// The `len` bytes at `position` of `segment`, if the cache holds them.
    pub fn get(&self, segment: SegmentId, position: u64, len: usize) -> Option<Bytes> {
        let chunks = self.chunks.lock().unwrap_or_else(PoisonError::into_inner);
        let after = chunks
            .list
            .partition_point(|c| (c.segment, c.start) <= (segment, position));
        let chunk = chunks.list.get(after.checked_sub(1)?)?;
        if chunk.segment != segment {
            return None;
        }
        let from = usize::try_from(position - chunk.start).ok()?;
        let to = from.checked_add(len)?;
        (to <= chunk.data.len()).then(|| chunk.data.slice(from..to))
    }

    /// Whether the cache holds the `len` bytes at `position` of `segment`.
    pub fn holds(&self, segment: SegmentId, position: u64, len: usize) -> bool {
        self.get(segment, position, len).is_some()
    }

    /// Drops every chunk of `segments`, and every read-ahead window of
    /// them (WAL compaction replaced them: the same positions now hold
    /// other bytes).
    pub fn forget(&self, segments: &[SegmentId]) {
        self.ahead.forget(segments);
        let mut chunks = self.chunks.lock().unwrap_or_else(PoisonError::into_inner);
        let mut dropped = 0;
        chunks.list.retain(|c| {
            let gone = segments.contains(&c.segment);
            if gone {
                dropped += c.held;
            }
            !gone
        });
        chunks.bytes -= dropped;
    }

    /// `len` zeroed bytes of block-aligned memory to read into with direct
    /// I/O; freeze them to hand out views.
    pub fn read_buffer(&self, len: usize) -> BytesMut {
        self.reads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take(len)
    }

    /// Bytes of memory held.
    pub fn len(&self) -> usize {
        self.chunks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .bytes
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The appender's memory for building writes: block-aligned windows in
/// slabs that are reused once nothing reads from them any more.
#[derive(Debug, Default)]
pub struct Staging {
    slab: BytesMut,
    /// Full slabs, oldest first, waiting for their views to go.
    retired: VecDeque<BytesMut>,
    /// Full slabs kept at most (the others are freed when unused).
    retired_limit: usize,
    slab_bytes: usize,
}

impl Staging {
    /// Staging for writes whose views a cache of `cache_limit` bytes keeps.
    pub fn new(cache_limit: usize) -> Self {
        Staging {
            slab: BytesMut::new(),
            retired: VecDeque::new(),
            retired_limit: cache_limit / SLAB_BYTES + 2,
            slab_bytes: SLAB_BYTES,
        }
    }

    /// Builds the window for one write: `carry`, `bytes`, zeros up to a
    /// block boundary, starting at a block-aligned address.
    pub fn build(&mut self, carry: &[u8], bytes: &[u8]) -> &[u8] {
        let len = window_len(carry.len(), bytes.len());
        self.make_room(len + BLOCK);
        self.align();
        self.slab.extend_from_slice(carry);
        self.slab.extend_from_slice(bytes);
        self.slab.put_bytes(0, len - carry.len() - bytes.len());
        &self.slab
    }

    /// `len` zeroed bytes at a block-aligned address.
    pub fn take(&mut self, len: usize) -> BytesMut {
        self.make_room(len + BLOCK);
        self.align();
        self.slab.put_bytes(0, len);
        self.slab.split()
    }

    fn align(&mut self) {
        let skew = self.slab.as_ptr() as usize % BLOCK;
        if skew != 0 {
            self.slab.put_bytes(0, BLOCK - skew);
            drop(self.slab.split());
        }
    }

    /// The window built last, now written: a view for the cache.
    pub fn written(&mut self) -> Bytes {
        self.slab.split().freeze()
    }

    /// Forgets the window built last (its write failed).
    pub fn discard(&mut self) {
        self.slab.clear();
    }

    fn make_room(&mut self, need: usize) {
        if self.slab.capacity() >= need {
            return;
        }
        let full = std::mem::take(&mut self.slab);
        if full.capacity() > 0 || !full.is_empty() {
            self.retired.push_back(full);
        }
        if let Some(oldest) = self.retired.front_mut() {
            if oldest.try_reclaim(need) {
                if let Some(reused) = self.retired.pop_front() {
                    self.slab = reused;
                    return;
                }
            }
        }
        while self.retired.len() > self.retired_limit {
            self.retired.pop_front();
        }
        self.slab = BytesMut::with_capacity(self.slab_bytes.max(need));
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn serves_what_it_holds_and_forgets_the_oldest_past_its_limit() {
        let cache = TailCache::new(100);
        let insert = |segment, start, window: Vec<u8>| {
            let len = window.len();
            cache.insert(segment, start, &Bytes::from(window), 0..len);
        };
        insert(1, 8, vec![1; 40]);
        insert(1, 48, vec![2; 40]);
        assert_eq!(cache.get(1, 50, 10).unwrap().as_ref(), &[2; 10]);
        assert_eq!(cache.get(1, 8, 40).unwrap().as_ref(), &[1; 40]);
        assert!(cache.get(1, 40, 10).is_none(), "spans two commits");
        assert!(cache.get(1, 0, 4).is_none(), "before the first commit");
        assert!(cache.get(2, 8, 4).is_none(), "another segment");
        insert(2, 8, vec![3; 40]);
        assert_eq!(cache.len(), 80, "the oldest commit went");
        assert!(cache.get(1, 8, 4).is_none());
        assert_eq!(cache.get(2, 10, 2).unwrap().as_ref(), &[3; 2]);
    }

    #[test]
    fn staging_builds_aligned_windows_and_reuses_slabs_nobody_reads() {
        let mut staging = Staging::new(0);
        let window = staging.build(b"carry", &[7; 100]);
        assert_eq!(window.as_ptr() as usize % BLOCK, 0);
        assert_eq!(window.len(), BLOCK);
        assert_eq!(&window[..5], b"carry");
        assert_eq!(&window[5..105], &[7; 100]);
        assert!(window[105..].iter().all(|&b| b == 0));
        let first = staging.written();
        // A write larger than a slab gets a slab of its own.
        let big = vec![9; SLAB_BYTES + 1];
        let window = staging.build(&[], &big);
        assert_eq!(window.as_ptr() as usize % BLOCK, 0);
        assert_eq!(&window[..big.len()], &big[..]);
        staging.written();
        // Once the views into the first slab are gone, it is used again.
        let first_slab = first.as_ptr() as usize;
        drop(first);
        let mut reused = false;
        for _ in 0..4 {
            let window = staging.build(&[], &vec![1; SLAB_BYTES - BLOCK]);
            reused |= window.as_ptr() as usize == first_slab;
            staging.written();
        }
        assert!(reused, "the first slab was not reused");
    }

    #[test]
    fn small_writes_count_the_memory_of_their_windows() {
        let cache = TailCache::new(3 * BLOCK);
        let window = Bytes::from(vec![5; BLOCK]);
        for i in 0..4u64 {
            cache.insert(1, 8 + i * 100, &window, 10..110);
        }
        assert_eq!(
            cache.len(),
            3 * BLOCK,
            "three windows, not 400 bytes of data"
        );
        assert!(cache.get(1, 8, 100).is_none(), "the first went");
        assert_eq!(cache.get(1, 308, 100).unwrap().as_ref(), &[5; 100]);
    }

    #[test]
    fn turned_off_it_holds_nothing() {
        let cache = TailCache::new(0);
        cache.insert(1, 8, &Bytes::from(vec![1; 40]), 0..40);
        assert!(cache.is_empty());
        assert!(cache.get(1, 8, 1).is_none());
    }
}
