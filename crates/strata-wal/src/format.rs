//! The bytes of a WAL segment.
//!
//! ```text
//! file:   a file header, then entries back to back
//!
//! file header, version 2 (32 bytes):
//!         offset size field
//!              0    8 magic   "STRATAWL"
//!              8    4 tag     "HEAD": tells a versioned header from version 1
//!             12    4 version 2, little-endian u32
//!             16    8 first   the oldest segment id whose batches the file
//!                             holds, little-endian u64: its own id, or the
//!                             first id of the run a WAL compaction merged
//!                             into it (segments in [first, id) are superseded)
//!             24    8 crc     CRC64-NVME over bytes 0..24, little-endian
//! file header, version 1 (8 bytes): "STRATAWL" alone, entries right after
//!
//! entry:  offset size field
//!              0    4 magic   0x53574c45 little-endian ("ELWS" on disk)
//!              4    4 length  payload bytes, little-endian u32
//!              8    8 crc     CRC64-NVME over the 4 length bytes and the payload
//!             16    n payload
//! ```
//!
//! The checksum covers the length, so a flipped length bit is caught instead
//! of sending the reader to a wrong place; the magic lets a reader find the
//! next entry after a damaged one.

use crc64fast_nvme::Digest;

/// The first bytes of every WAL segment file.
pub const FILE_MAGIC: &[u8; 8] = b"STRATAWL";
/// Follows the magic in a versioned file header.
const HEADER_TAG: &[u8; 4] = b"HEAD";
/// The file format this build writes.
pub const FORMAT_VERSION: u32 = 2;
/// Bytes of the file header this build writes.
pub const FILE_HEADER_LEN: usize = 32;
/// Bytes of a version 1 file header (the magic alone).
const LEGACY_HEADER_LEN: usize = 8;
/// Marks the start of every entry.
pub const ENTRY_MAGIC: u32 = 0x5357_4c45;
/// Bytes of the entry header (magic, length, crc).
pub const ENTRY_HEADER_LEN: usize = 16;
/// Largest payload a single entry may carry.
pub const MAX_PAYLOAD: usize = 256 * 1024 * 1024;

/// A segment's file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileHeader {
    pub version: u32,
    /// Bytes of the header: where the first entry starts.
    pub len: usize,
    /// The oldest segment id whose batches the file holds (version 2);
    /// `None` for version 1, or when the header fails its checksum.
    pub first_segment: Option<u64>,
}

/// Why a file header cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    #[error("not a WAL segment (no STRATAWL magic)")]
    NotASegment,
    #[error("WAL format version {0} is newer than this build reads ({FORMAT_VERSION})")]
    UnknownVersion(u32),
}

/// The file header of a segment that starts `first_segment`'s run.
pub fn encode_file_header(first_segment: u64) -> [u8; FILE_HEADER_LEN] {
    let mut out = [0u8; FILE_HEADER_LEN];
    out[..8].copy_from_slice(FILE_MAGIC);
    out[8..12].copy_from_slice(HEADER_TAG);
    out[12..16].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[16..24].copy_from_slice(&first_segment.to_le_bytes());
    let crc = checksum(&out[..24]);
    out[24..].copy_from_slice(&crc.to_le_bytes());
    out
}

/// Reads the file header at the start of `bytes` (the file's first
/// [`FILE_HEADER_LEN`] bytes, or all of a shorter file).
///
/// A version 2 header whose checksum fails still gives its length (the
/// entries after it are checked on their own); only its `first_segment`
/// is not trusted.
pub fn read_file_header(bytes: &[u8]) -> Result<FileHeader, HeaderError> {
    if bytes.get(..8) != Some(FILE_MAGIC.as_slice()) {
        return Err(HeaderError::NotASegment);
    }
    if bytes.get(8..12) != Some(HEADER_TAG.as_slice()) {
        return Ok(FileHeader {
            version: 1,
            len: LEGACY_HEADER_LEN,
            first_segment: None,
        });
    }
    let Some(header) = bytes.get(..FILE_HEADER_LEN) else {
        // Torn while the file was created: no entry was ever written.
        return Ok(FileHeader {
            version: FORMAT_VERSION,
            len: FILE_HEADER_LEN,
            first_segment: None,
        });
    };
    let le_u64 = |b: &[u8]| {
        let mut a = [0u8; 8];
        a.copy_from_slice(b);
        u64::from_le_bytes(a)
    };
    let intact = checksum(&header[..24]) == le_u64(&header[24..32]);
    let mut version = [0u8; 4];
    version.copy_from_slice(&header[12..16]);
    let version = u32::from_le_bytes(version);
    if intact && version != FORMAT_VERSION {
        return Err(HeaderError::UnknownVersion(version));
    }
    Ok(FileHeader {
        version: FORMAT_VERSION,
        len: FILE_HEADER_LEN,
        first_segment: intact.then(|| le_u64(&header[16..24])),
    })
}

/// The checksum of an entry: CRC64-NVME over its length field and payload parts.
pub fn entry_checksum(length: u32, parts: &[&[u8]]) -> u64 {
    let mut digest = Digest::new();
    digest.write(&length.to_le_bytes());
    for part in parts {
        digest.write(part);
    }
    digest.sum64()
}

/// CRC64-NVME over `bytes`: the checksum of the files that sit beside WAL
/// segments (their indexes).
pub fn checksum(bytes: &[u8]) -> u64 {
    let mut digest = Digest::new();
    digest.write(bytes);
    digest.sum64()
}

/// Appends one framed entry whose payload is the concatenation of `parts`.
///
/// Returns the payload length, or `None` if it exceeds [`MAX_PAYLOAD`].
pub fn encode_entry(out: &mut Vec<u8>, parts: &[&[u8]]) -> Option<u32> {
    let total: usize = parts.iter().map(|p| p.len()).sum();
    if total > MAX_PAYLOAD {
        return None;
    }
    let length = u32::try_from(total).ok()?;
    out.reserve(ENTRY_HEADER_LEN + total);
    out.extend_from_slice(&ENTRY_MAGIC.to_le_bytes());
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&entry_checksum(length, parts).to_le_bytes());
    for part in parts {
        out.extend_from_slice(part);
    }
    Some(length)
}

/// An entry being built in place: the caller appends the payload after
/// [`begin_entry`] (and may rewrite it), then [`finish_entry`] seals the frame.
/// This frames a payload with a single copy.
#[derive(Debug, Clone, Copy)]
pub struct OpenEntry {
    start: usize,
}

/// Reserves an entry header at the end of `out`.
pub fn begin_entry(out: &mut Vec<u8>) -> OpenEntry {
    let start = out.len();
    out.extend_from_slice(&[0u8; ENTRY_HEADER_LEN]);
    OpenEntry { start }
}

/// Fills in the header of an entry whose payload is everything after it in `out`.
///
/// Returns `None` (and removes the entry) if the payload is over [`MAX_PAYLOAD`].
pub fn finish_entry(out: &mut Vec<u8>, entry: OpenEntry) -> Option<u32> {
    let payload_start = entry.start + ENTRY_HEADER_LEN;
    let length = out
        .len()
        .checked_sub(payload_start)
        .filter(|len| *len <= MAX_PAYLOAD)
        .and_then(|len| u32::try_from(len).ok());
    let Some(length) = length else {
        out.truncate(entry.start);
        return None;
    };
    let crc = entry_checksum(length, &[&out[payload_start..]]);
    let header = &mut out[entry.start..payload_start];
    header[..4].copy_from_slice(&ENTRY_MAGIC.to_le_bytes());
    header[4..8].copy_from_slice(&length.to_le_bytes());
    header[8..].copy_from_slice(&crc.to_le_bytes());
    Some(length)
}

/// An entry header read from disk, before its checksum is checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryHeader {
    pub magic: u32,
    pub length: u32,
    pub crc: u64,
}

impl EntryHeader {
    /// Reads the header at the start of `bytes`, if 16 bytes are there.
    pub fn read(bytes: &[u8]) -> Option<Self> {
        let h = bytes.get(..ENTRY_HEADER_LEN)?;
        Some(EntryHeader {
            magic: u32::from_le_bytes([h[0], h[1], h[2], h[3]]),
            length: u32::from_le_bytes([h[4], h[5], h[6], h[7]]),
            crc: u64::from_le_bytes([h[8], h[9], h[10], h[11], h[12], h[13], h[14], h[15]]),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entry_round_trips() {
        let mut out = Vec::new();
        let len = encode_entry(&mut out, &[b"abc", b"de"]).unwrap();
        assert_eq!(len, 5);
        let h = EntryHeader::read(&out).unwrap();
        assert_eq!(h.magic, ENTRY_MAGIC);
        assert_eq!(h.length, 5);
        assert_eq!(h.crc, entry_checksum(5, &[b"abcde"]));
        assert_eq!(&out[ENTRY_HEADER_LEN..], b"abcde");
    }

    #[test]
    fn file_headers_of_both_versions_are_read() {
        let v2 = encode_file_header(41);
        let h = read_file_header(&v2).unwrap();
        assert_eq!((h.version, h.len, h.first_segment), (2, 32, Some(41)));
        // Version 1: the magic, then an entry or nothing (or padding).
        let mut v1 = FILE_MAGIC.to_vec();
        assert_eq!(read_file_header(&v1).unwrap().len, 8);
        encode_entry(&mut v1, &[b"x"]).unwrap();
        let h = read_file_header(&v1).unwrap();
        assert_eq!((h.version, h.len, h.first_segment), (1, 8, None));
        assert_eq!(read_file_header(b"NOTAWAL!"), Err(HeaderError::NotASegment));
        // A damaged header keeps its length, not its first segment.
        let mut damaged = v2;
        damaged[17] ^= 1;
        let h = read_file_header(&damaged).unwrap();
        assert_eq!((h.len, h.first_segment), (32, None));
        // A version this build does not know is refused.
        let mut newer = v2;
        newer[12] = 3;
        let crc = checksum(&newer[..24]);
        newer[24..].copy_from_slice(&crc.to_le_bytes());
        assert_eq!(
            read_file_header(&newer),
            Err(HeaderError::UnknownVersion(3))
        );
    }

    #[test]
    fn in_place_entry_matches_encoded_entry() {
        let mut a = Vec::new();
        encode_entry(&mut a, &[b"payload"]).unwrap();
        let mut b = Vec::new();
        let open = begin_entry(&mut b);
        b.extend_from_slice(b"PAYLOAD");
        b[ENTRY_HEADER_LEN..].make_ascii_lowercase();
        finish_entry(&mut b, open).unwrap();
        assert_eq!(a, b);
    }
}
