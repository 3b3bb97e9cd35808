//! The read-ahead's memory: block-aligned buffers for windows, reused
//! without being zeroed again.
//!
//! A buffer is allocated (and zeroed, as safe Rust must) once, in whole
//! MiB, and keeps its length for life: a window reads into its first bytes
//! and is served as views of it; when the window goes, the buffer comes
//! back here, and is taken again once no view into it is left (the answers
//! holding them are sent). Zeroing every window's buffer was a fifth of the
//! broker's CPU when consumers read old data.
//!
//! Invariant: the buffers in existence — in windows, being read into, or
//! free here — hold at most `limit` bytes (each counted with the block of
//! slack its alignment may take). When a buffer is needed and none fits,
//! free buffers nobody views are freed to make room; failing that, there
//! is no buffer, and the window is not read.

use bytes::{BufMut, Bytes, BytesMut};
use strata_wal::direct::BLOCK;

/// Buffers are allocated in multiples of this.
const GRAIN: usize = 1024 * 1024;

#[derive(Debug)]
pub(super) struct Pool {
    limit: usize,
    /// Bytes of the buffers in existence.
    allocated: usize,
    /// Buffers given back, some perhaps still viewed.
    free: Vec<Bytes>,
}

impl Pool {
    pub(super) fn new(limit: usize) -> Self {
        Pool {
            limit,
            allocated: 0,
            free: Vec::new(),
        }
    }

    /// A block-aligned buffer of at least `len` bytes, all of them
    /// initialized; `None` when the limit leaves no room for one.
    pub(super) fn take(&mut self, len: usize) -> Option<BytesMut> {
        let reusable = self
            .free
            .iter()
            .enumerate()
            .filter(|(_, b)| b.len() >= len && b.is_unique())
            .min_by_key(|(_, b)| b.len())
            .map(|(at, _)| at);
        if let Some(at) = reusable {
            return self.free.swap_remove(at).try_into_mut().ok();
        }
        let size = len.div_ceil(GRAIN).max(1) * GRAIN;
        while self.allocated + size + BLOCK > self.limit {
            let at = self.free.iter().position(Bytes::is_unique)?;
            let unused = self.free.swap_remove(at);
            self.allocated -= unused.len() + BLOCK;
        }
        self.allocated += size + BLOCK;
        let mut raw = BytesMut::with_capacity(size + BLOCK);
        let skew = (BLOCK - raw.as_ptr() as usize % BLOCK) % BLOCK;
        raw.put_bytes(0, skew + size);
        Some(raw.split_off(skew))
    }

    /// A buffer [`Self::take`] gave, back (its views may still be out).
    pub(super) fn give_back(&mut self, buf: Bytes) {
        self.free.push(buf);
    }

    /// Frees the free buffers nobody views (the read-ahead gone idle).
    pub(super) fn release_unused(&mut self) {
        let mut released = 0;
        self.free.retain(|b| {
            let unused = b.is_unique();
            if unused {
                released += b.len() + BLOCK;
            }
            !unused
        });
        self.allocated -= released;
    }

    /// Bytes of the buffers in existence.
    #[cfg(test)]
    pub(super) fn allocated(&self) -> usize {
        self.allocated
    }
}
