//! Reading a segment back: the recovery decisions, as pure logic over bytes.
//!
//! - An entry whose header and checksum are good is intact.
//! - An entry that is complete on disk but fails its checksum is damaged: it
//!   is reported and skipped, and scanning resumes at the next entry (found
//!   by its magic and a good checksum), so later entries are kept.
//! - Bytes at the end that do not form a complete intact entry, with no
//!   intact entry after them, are a torn tail: the writer died mid-append.
//! - Zeros from the end of the last entry to the end of the file are the
//!   padding of direct-I/O appends (see [`crate::direct`]), not a torn tail.

use crate::format::{
    entry_checksum, read_file_header, EntryHeader, HeaderError, ENTRY_HEADER_LEN, ENTRY_MAGIC,
    MAX_PAYLOAD,
};

/// Where an intact entry's payload lies in the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntrySpan {
    /// Position of the entry header in the file.
    pub position: u64,
    /// Position of the payload in the file.
    pub payload_position: u64,
    pub payload_len: u32,
}

/// A damaged region that was skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damage {
    pub position: u64,
    pub length: u64,
}

/// What a segment holds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanResult {
    pub entries: Vec<EntrySpan>,
    pub damaged: Vec<Damage>,
    /// Where intact data ends; bytes past it are a torn tail.
    pub valid_end: u64,
    /// Bytes past `valid_end` (a torn final entry), 0 when the file ends cleanly.
    pub torn_bytes: u64,
    /// Zero bytes past `valid_end`: padding, not damage.
    pub padding_bytes: u64,
    /// The file header itself is wrong or missing.
    pub bad_file_header: bool,
}

/// Scans a whole segment held in memory.
///
/// A segment of a format version this build does not know is left alone
/// (no entries, nothing cut): recovery refuses such a data dir before it
/// scans anything.
pub fn scan_segment(bytes: &[u8]) -> ScanResult {
    let mut result = ScanResult::default();
    let header_len = match read_file_header(bytes) {
        Ok(header) => header.len,
        Err(HeaderError::NotASegment) => {
            result.bad_file_header = bytes.len() >= crate::format::FILE_MAGIC.len();
            result.torn_bytes = bytes.len() as u64;
            return result;
        }
        Err(HeaderError::UnknownVersion(_)) => {
            result.valid_end = bytes.len() as u64;
            return result;
        }
    };
    let mut pos = header_len.min(bytes.len());
    result.valid_end = pos as u64;
    while pos < bytes.len() {
        if let Some(span) = intact_entry_at(bytes, pos) {
            pos = end_of(span);
            result.entries.push(span);
            result.valid_end = pos as u64;
            continue;
        }
        match next_intact_entry(bytes, pos + 1) {
            Some(next) => {
                result.damaged.push(Damage {
                    position: pos as u64,
                    length: (next - pos) as u64,
                });
                pos = next;
            }
            None => {
                let rest = (bytes.len() - pos) as u64;
                if bytes[pos..].iter().all(|&b| b == 0) {
                    result.padding_bytes = rest;
                } else {
                    result.torn_bytes = rest;
                }
                break;
            }
        }
    }
    result
}

fn end_of(span: EntrySpan) -> usize {
    (span.payload_position + u64::from(span.payload_len)) as usize
}

/// The intact entry starting exactly at `pos`, if there is one.
fn intact_entry_at(bytes: &[u8], pos: usize) -> Option<EntrySpan> {
    let rest = bytes.get(pos..)?;
    let header = EntryHeader::read(rest)?;
    let length = usize::try_from(header.length).ok()?;
    if header.magic != ENTRY_MAGIC || length > MAX_PAYLOAD {
        return None;
    }
    let payload = rest.get(ENTRY_HEADER_LEN..ENTRY_HEADER_LEN + length)?;
    if entry_checksum(header.length, &[payload]) != header.crc {
        return None;
    }
    Some(EntrySpan {
        position: pos as u64,
        payload_position: (pos + ENTRY_HEADER_LEN) as u64,
        payload_len: header.length,
    })
}

/// The position of the first intact entry at or after `from`.
fn next_intact_entry(bytes: &[u8], from: usize) -> Option<usize> {
    let magic = ENTRY_MAGIC.to_le_bytes();
    let mut pos = from;
    while pos + ENTRY_HEADER_LEN <= bytes.len() {
        let window = bytes.get(pos..)?;
        let found = window.windows(4).position(|w| w == magic)?;
        pos += found;
        if intact_entry_at(bytes, pos).is_some() {
            return Some(pos);
        }
        pos += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::format::encode_entry;

    fn segment(payloads: &[&[u8]]) -> (Vec<u8>, Vec<usize>) {
        let mut out = crate::format::encode_file_header(0).to_vec();
        let mut starts = Vec::new();
        for p in payloads {
            starts.push(out.len());
            encode_entry(&mut out, &[p]).unwrap();
        }
        (out, starts)
    }

    #[test]
    fn clean_segment_reads_every_entry() {
        let (bytes, _) = segment(&[b"one", b"two", b"three"]);
        let r = scan_segment(&bytes);
        assert_eq!(r.entries.len(), 3);
        assert!(r.damaged.is_empty());
        assert_eq!(r.torn_bytes, 0);
        assert_eq!(r.valid_end, bytes.len() as u64);
    }

    #[test]
    fn torn_tail_is_cut_at_every_length() {
        let (bytes, starts) = segment(&[b"one", b"two", b"three-three"]);
        for cut in starts[2] + 1..bytes.len() {
            let r = scan_segment(&bytes[..cut]);
            assert_eq!(r.entries.len(), 2, "cut at {cut}");
            assert_eq!(r.valid_end, starts[2] as u64);
            assert_eq!(r.torn_bytes, (cut - starts[2]) as u64);
        }
    }

    #[test]
    fn damaged_entry_is_skipped_and_later_entries_kept() {
        let (mut bytes, starts) = segment(&[b"first-entry", b"second-entry", b"third-entry"]);
        bytes[starts[1] + ENTRY_HEADER_LEN + 3] ^= 0x40;
        let r = scan_segment(&bytes);
        assert_eq!(r.entries.len(), 2);
        assert_eq!(
            r.damaged,
            vec![Damage {
                position: starts[1] as u64,
                length: (starts[2] - starts[1]) as u64
            }]
        );
        assert_eq!(r.entries[1].position, starts[2] as u64);
    }

    #[test]
    fn damaged_length_field_resyncs() {
        let (mut bytes, starts) = segment(&[b"aaaa", b"bbbb", b"cccc"]);
        bytes[starts[1] + 5] ^= 0x7f;
        let r = scan_segment(&bytes);
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.damaged.len(), 1);
    }

    #[test]
    fn damaged_last_entry_is_a_torn_tail() {
        let (mut bytes, starts) = segment(&[b"aaaa", b"bbbb"]);
        let last = bytes.len() - 1;
        bytes[last] ^= 1;
        let r = scan_segment(&bytes);
        assert_eq!(r.entries.len(), 1);
        assert_eq!(r.valid_end, starts[1] as u64);
    }

    #[test]
    fn garbage_never_panics() {
        let mut seed = 7u64;
        for len in 0..300 {
            let mut bytes = crate::format::encode_file_header(0).to_vec();
            for _ in 0..len {
                seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
                bytes.push((seed >> 33) as u8);
            }
            let _ = scan_segment(&bytes);
        }
    }

    #[test]
    fn version_one_segments_scan_as_before() {
        let mut bytes = crate::format::FILE_MAGIC.to_vec();
        crate::encode_entry(&mut bytes, &[b"one"]).unwrap();
        crate::encode_entry(&mut bytes, &[b"two"]).unwrap();
        let r = scan_segment(&bytes);
        assert_eq!(r.entries.len(), 2);
        assert_eq!(r.entries[0].position, 8);
        assert_eq!(r.valid_end, bytes.len() as u64);
    }

    #[test]
    fn zeros_after_the_last_entry_are_padding_not_a_torn_tail() {
        let mut bytes = crate::format::encode_file_header(0).to_vec();
        crate::encode_entry(&mut bytes, &[b"one"]).unwrap();
        let end = bytes.len() as u64;
        bytes.resize(4096, 0);
        let r = scan_segment(&bytes);
        assert_eq!(r.entries.len(), 1);
        assert_eq!(
            (r.valid_end, r.torn_bytes, r.padding_bytes),
            (end, 0, 4096 - end)
        );
        // A partly written entry in the padding is a torn tail again.
        bytes[end as usize + 20] = 7;
        let r = scan_segment(&bytes);
        assert_eq!((r.torn_bytes, r.padding_bytes), (4096 - end, 0));
    }
}
