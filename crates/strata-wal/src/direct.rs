//! Appending to a segment with direct I/O (`O_DIRECT`): the bytes go from
//! the writer's buffer to the device without passing through the page
//! cache, which on a machine where fresh page-cache pages are expensive is
//! most of what a buffered write costs (see docs/benchmarks.md).
//!
//! Direct I/O writes whole aligned blocks from aligned memory. Each append
//! writes a *window*: from a block-aligned file position, the unfinished
//! last block of the segment (the *carry*, kept in memory), the new bytes,
//! and zeros up to the next block boundary. The next append writes that
//! block again with more bytes in it. A torn rewrite of that block leaves
//! each sector either as it was or as it was meant to be, and both hold the
//! earlier bytes unchanged. The zeros after the last entry are padding,
//! which a scan recognises.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;

/// Alignment of direct I/O positions, lengths and buffers.
pub const BLOCK: usize = 4096;

/// The length of a window holding `carry` bytes and `len` new ones.
pub fn window_len(carry: usize, len: usize) -> usize {
    (carry + len).div_ceil(BLOCK) * BLOCK
}

/// The direct-I/O side of a segment writer.
#[derive(Debug)]
pub(crate) struct DirectAppender {
    file: File,
    /// The bytes of the last, unfinished block: `[block_start, len)`.
    carry: Vec<u8>,
    /// Staging memory for [`Self::append`], one block larger than needed
    /// so an aligned window can be cut out of it.
    stage: Vec<u8>,
}

impl DirectAppender {
    /// Opens `path` for direct writes; `None` where the file system does
    /// not support direct I/O (the caller then writes through the cache).
    pub fn open(path: &Path, len: u64) -> Option<Self> {
        let file = OpenOptions::new()
            .write(true)
            .custom_flags(libc::O_DIRECT)
            .open(path)
            .ok()?;
        let mut appender = DirectAppender {
            file,
            carry: Vec::new(),
            stage: Vec::new(),
        };
        appender.reset(path, len).ok()?;
        Some(appender)
    }

    pub fn carry(&self) -> &[u8] {
        &self.carry
    }

    /// Writes a window (block-aligned memory: the carry, `len` new bytes,
    /// zero padding) at the segment's current length `at`.
    pub fn write_window(&mut self, at: u64, window: &[u8], len: usize) -> std::io::Result<()> {
        let carry = self.carry.len();
        if window.len() != window_len(carry, len)
            || !(window.as_ptr() as usize).is_multiple_of(BLOCK)
            || window.get(..carry) != Some(&self.carry[..])
        {
            return Err(std::io::Error::from_raw_os_error(libc::EINVAL));
        }
        let block_start = at - carry as u64;
        self.file.write_all_at(window, block_start)?;
        let end = carry + len;
        let from = end - end % BLOCK;
        self.carry.clear();
        self.carry.extend_from_slice(&window[from..end]);
        Ok(())
    }

    /// Appends `bytes` at `at` (the segment's current length), staging
    /// them in memory of its own.
    pub fn append(&mut self, at: u64, bytes: &[u8]) -> std::io::Result<()> {
        let carry = self.carry.len();
        let padded = window_len(carry, bytes.len());
        let mut stage = std::mem::take(&mut self.stage);
        if stage.len() < padded + BLOCK {
            stage.resize(padded + BLOCK, 0);
        }
        let offset = (BLOCK - stage.as_ptr() as usize % BLOCK) % BLOCK;
        let window = &mut stage[offset..offset + padded];
        window[..carry].copy_from_slice(&self.carry);
        window[carry..carry + bytes.len()].copy_from_slice(bytes);
        window[carry + bytes.len()..].fill(0);
        let written = self.write_window(at, window, bytes.len());
        self.stage = stage;
        written
    }

    /// Reads the carry back for a segment of `len` bytes (after a cut).
    pub fn reset(&mut self, path: &Path, len: u64) -> std::io::Result<()> {
        let block_start = len - len % BLOCK as u64;
        self.carry.resize((len - block_start) as usize, 0);
        File::open(path)?.read_exact_at(&mut self.carry, block_start)
    }
}
