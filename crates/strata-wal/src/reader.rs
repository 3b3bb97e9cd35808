//! Reading a segment's entries in order through a bounded buffer, for
//! sealing: memory stays at the buffer plus the largest entry, whatever the
//! segment's size.
//!
//! The reader only follows intact entries. At anything else — a damaged
//! entry or a torn tail — it stops and says so; such a segment is read
//! whole with [`crate::scan_segment`], which knows how to step over damage.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

use crate::format::{entry_checksum, EntryHeader, ENTRY_HEADER_LEN, ENTRY_MAGIC, FILE_HEADER};
use crate::WalError;

/// Read-ahead of the reader.
const BUFFER: usize = 1024 * 1024;

/// What [`EntryReader::next`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextEntry {
    /// An intact entry; its payload is in the caller's buffer.
    Entry,
    /// The clean end of the segment.
    End,
    /// Bytes that are not an intact entry (damage or a torn tail).
    Irregular,
}

/// Sequential reader of one segment's entries.
pub struct EntryReader {
    reader: BufReader<File>,
    path: PathBuf,
}

impl EntryReader {
    /// Opens a segment; `Ok(None)` if its file header is not Strata's.
    pub fn open(path: &Path) -> Result<Option<Self>, WalError> {
        let io = |source| WalError::Io {
            path: path.to_path_buf(),
            source,
        };
        let mut reader = BufReader::with_capacity(BUFFER, File::open(path).map_err(io)?);
        let mut header = [0u8; FILE_HEADER.len()];
        match reader.read_exact(&mut header) {
            Ok(()) if &header == FILE_HEADER => {}
            Ok(()) => return Ok(None),
            Err(e) if e.kind() == ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(io(e)),
        }
        Ok(Some(EntryReader {
            reader,
            path: path.to_path_buf(),
        }))
    }

    /// Reads the next entry's payload into `payload` (replacing its contents).
    pub fn next(&mut self, payload: &mut Vec<u8>) -> Result<NextEntry, WalError> {
        let io = |source| WalError::Io {
            path: self.path.clone(),
            source,
        };
        let mut header = [0u8; ENTRY_HEADER_LEN];
        let mut got = 0;
        while got < header.len() {
            match self.reader.read(&mut header[got..]) {
                Ok(0) if got == 0 => return Ok(NextEntry::End),
                Ok(0) => return Ok(NextEntry::Irregular),
                Ok(n) => got += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io(e)),
            }
        }
        let Some(header) = EntryHeader::read(&header) else {
            return Ok(NextEntry::Irregular);
        };
        if header.magic != ENTRY_MAGIC || header.length as usize > crate::MAX_PAYLOAD {
            return Ok(NextEntry::Irregular);
        }
        payload.clear();
        let wanted = u64::from(header.length);
        // Reserve what a sane entry needs; a damaged length only gets the
        // bytes actually present.
        payload.reserve(usize::try_from(wanted).unwrap_or(0).min(BUFFER * 8));
        let read = (&mut self.reader)
            .take(wanted)
            .read_to_end(payload)
            .map_err(io)?;
        if read as u64 != wanted || entry_checksum(header.length, &[payload]) != header.crc {
            return Ok(NextEntry::Irregular);
        }
        Ok(NextEntry::Entry)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::SegmentWriter;

    fn segment(dir: &Path, payloads: &[&[u8]]) -> PathBuf {
        let mut writer = SegmentWriter::create(dir, 0).unwrap();
        let mut framed = Vec::new();
        for p in payloads {
            crate::encode_entry(&mut framed, &[p]).unwrap();
        }
        writer.append(&framed).unwrap();
        writer.path().to_path_buf()
    }

    #[test]
    fn reads_intact_entries_then_the_end() {
        let dir = tempfile::tempdir().unwrap();
        let big = vec![9u8; 3 * BUFFER];
        let path = segment(dir.path(), &[b"one", &big, b""]);
        let mut reader = EntryReader::open(&path).unwrap().unwrap();
        let mut payload = Vec::new();
        assert_eq!(reader.next(&mut payload).unwrap(), NextEntry::Entry);
        assert_eq!(payload, b"one");
        assert_eq!(reader.next(&mut payload).unwrap(), NextEntry::Entry);
        assert_eq!(payload, big);
        assert_eq!(reader.next(&mut payload).unwrap(), NextEntry::Entry);
        assert!(payload.is_empty());
        assert_eq!(reader.next(&mut payload).unwrap(), NextEntry::End);
    }

    #[test]
    fn stops_at_damage_and_at_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment(dir.path(), &[b"first", b"second"]);
        let mut bytes = std::fs::read(&path).unwrap();
        let second_payload = bytes.len() - 3;
        bytes[second_payload] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let mut reader = EntryReader::open(&path).unwrap().unwrap();
        let mut payload = Vec::new();
        assert_eq!(reader.next(&mut payload).unwrap(), NextEntry::Entry);
        assert_eq!(reader.next(&mut payload).unwrap(), NextEntry::Irregular);

        bytes[second_payload] ^= 1;
        bytes.truncate(bytes.len() - 2);
        std::fs::write(&path, &bytes).unwrap();
        let mut reader = EntryReader::open(&path).unwrap().unwrap();
        assert_eq!(reader.next(&mut payload).unwrap(), NextEntry::Entry);
        assert_eq!(reader.next(&mut payload).unwrap(), NextEntry::Irregular);
    }
}
