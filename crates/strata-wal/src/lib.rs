//! Strata's write-ahead log: one sequential log shared by every partition.
//!
//! The WAL stores opaque payloads; what they mean belongs to `strata-log`.
//! All partitions append to the same file, so a single `fdatasync` makes a
//! whole group of producers durable at once.
//!
//! - [`format`]: the file header and the entry frame (magic, length, CRC64-NVME).
//! - [`scan`]: reading a segment's bytes back — intact entries, damaged
//!   entries (checksum failures, skipped and reported), torn tails.
//! - [`segment`]: segment files on disk — naming, the appending writer, reads.
//! - [`direct`]: appends that bypass the page cache (`O_DIRECT`).
//! - [`reader`]: a segment's intact entries in order, through one buffer.
//! - [`replacement`]: a segment written whole by WAL compaction, installed
//!   over the segment it replaces with a rename.
//! - [`storage`]: the seam every file-system mutation goes through
//!   ([`Storage`]), and the real file system behind it.
//! - `sim_storage` (feature `sim`): a simulated disk for tests: written and synced bytes
//!   kept apart, power cuts, torn writes, injected EIO.
//!
//! Invariants:
//! - an entry is either read back exactly as written or reported as damaged;
//!   damaged bytes are never returned as a payload;
//! - segments are named by a sequence number that only grows, so their
//!   lexical order is their write order; a replacement keeps its segment's
//!   place in that order;
//! - every file carries its format version; a version this build does not
//!   know is refused, never guessed at.

pub mod direct;
pub mod format;
pub mod reader;
pub mod replacement;
pub mod scan;
pub mod segment;
#[cfg(any(test, feature = "sim"))]
pub mod sim_storage;
pub mod storage;

pub use format::{
    begin_entry, checksum, encode_entry, encode_file_header, finish_entry, read_file_header,
    FileHeader, HeaderError, OpenEntry, ENTRY_HEADER_LEN, FILE_HEADER_LEN, FORMAT_VERSION,
    MAX_PAYLOAD,
};
pub use reader::{EntryReader, NextEntry};
pub use replacement::Replacement;
pub use scan::{scan_segment, Damage, ScanResult};
pub use segment::{
    list_by_id, list_segments, read_at, read_header, segment_path, sync_dir, truncate, SegmentFile,
    SegmentId, SegmentWriter,
};
#[cfg(any(test, feature = "sim"))]
pub use sim_storage::SimStorage;
pub use storage::{create_dir_all_durably, RealStorage, Storage, StorageFile};

/// Errors of the WAL.
#[derive(Debug, thiserror::Error)]
pub enum WalError {
    #[error("WAL I/O on {path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("WAL payload of {0} bytes exceeds the entry limit")]
    PayloadTooLarge(usize),
}
