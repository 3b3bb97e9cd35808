//! The bytes of a WAL segment.
//!
//! ```text
//! file:   FILE_HEADER (8 bytes: "STRATAWL") then entries, back to back
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
pub const FILE_HEADER: &[u8; 8] = b"STRATAWL";
/// Marks the start of every entry.
pub const ENTRY_MAGIC: u32 = 0x5357_4c45;
/// Bytes of the entry header (magic, length, crc).
pub const ENTRY_HEADER_LEN: usize = 16;
/// Largest payload a single entry may carry.
pub const MAX_PAYLOAD: usize = 256 * 1024 * 1024;

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
