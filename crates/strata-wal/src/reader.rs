//! Reading a segment's entries in order through one reused buffer, for
//! recovery: memory stays at the buffer plus the largest entry whatever
//! the segment's size, and with direct I/O the segment's bytes never enter
//! the page cache (on some machines the cost of that is most of reading).
//!
//! The reader only follows intact entries, and the zero padding that a
//! direct-I/O writer leaves at the end. At anything else — a damaged entry
//! or a torn tail — it stops and says so; such a segment is read whole with
//! [`crate::scan_segment`], which knows how to step over damage.

use std::path::Path;

use crate::direct::BLOCK;
use crate::format::{
    entry_checksum, read_file_header, EntryHeader, ENTRY_HEADER_LEN, ENTRY_MAGIC, FILE_HEADER_LEN,
};
use crate::{SegmentFile, WalError, MAX_PAYLOAD};

/// Bytes read from the file at a time.
const CHUNK: usize = 8 * 1024 * 1024;

/// What [`EntryReader::next_entry`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextEntry<'a> {
    /// An intact entry: its payload, and the payload's position in the file.
    Entry(&'a [u8], u64),
    /// The end of the segment; zero padding after the last entry, if any,
    /// starts at the position given.
    End(Option<u64>),
    /// Bytes that are not an intact entry (damage or a torn tail).
    Irregular,
}

/// Sequential reader of one segment's entries.
pub struct EntryReader {
    file: SegmentFile,
    path: std::path::PathBuf,
    file_len: u64,
    /// Backing memory; `[origin, origin + capacity)` is block-aligned.
    memory: Vec<u8>,
    origin: usize,
    capacity: usize,
    /// File position of `memory[origin]`.
    window_start: u64,
    /// Bytes of the file held from `origin`.
    filled: usize,
    /// File position of the next entry.
    position: u64,
    /// Bytes read from the file at a time (at least).
    read_size: usize,
}

impl EntryReader {
    /// Opens a segment; `Ok(None)` if its file header is not Strata's.
    pub fn open(path: &Path, direct_io: bool) -> Result<Option<Self>, WalError> {
        Self::open_reading(path, direct_io, CHUNK)
    }

    /// [`Self::open`], reading `read_size` bytes at a time (whole blocks)
    /// instead of 8 MiB: smaller reads for a reader that must not hold the
    /// disk for long at once.
    pub fn open_reading(
        path: &Path,
        direct_io: bool,
        read_size: usize,
    ) -> Result<Option<Self>, WalError> {
        let read_size = read_size.div_ceil(BLOCK).max(1) * BLOCK;
        let file = SegmentFile::open(path, direct_io)?;
        let file_len = file
            .buffered()
            .metadata()
            .map_err(|source| WalError::Io {
                path: path.to_path_buf(),
                source,
            })?
            .len();
        let mut reader = EntryReader {
            file,
            path: path.to_path_buf(),
            file_len,
            memory: Vec::new(),
            origin: 0,
            capacity: 0,
            window_start: 0,
            filled: 0,
            position: 0,
            read_size,
        };
        reader.grow(read_size);
        let head = usize::try_from(file_len).map_or(FILE_HEADER_LEN, |l| l.min(FILE_HEADER_LEN));
        if !reader.fill_to(head)? {
            return Ok(None);
        }
        match read_file_header(reader.held(0, head)) {
            Ok(header) if header.len <= head => {
                reader.position = header.len as u64;
                Ok(Some(reader))
            }
            _ => Ok(None),
        }
    }

    /// The next entry.
    pub fn next_entry(&mut self) -> Result<NextEntry<'_>, WalError> {
        if self.position >= self.file_len {
            return Ok(NextEntry::End(None));
        }
        // Filling may move the window: positions in it are taken after.
        if !self.fill(ENTRY_HEADER_LEN)? {
            return Ok(self.end_or_irregular());
        }
        let at = self.at();
        let Some(header) = EntryHeader::read(self.held(at, ENTRY_HEADER_LEN)) else {
            return Ok(NextEntry::Irregular);
        };
        if header.magic != ENTRY_MAGIC || header.length as usize > MAX_PAYLOAD {
            return Ok(self.end_or_irregular());
        }
        let len = header.length as usize;
        // A damaged length must not make the reader allocate for it.
        if self.position + (ENTRY_HEADER_LEN + len) as u64 > self.file_len
            || !self.fill(ENTRY_HEADER_LEN + len)?
        {
            return Ok(NextEntry::Irregular);
        }
        let at = self.at();
        let payload_position = self.position + ENTRY_HEADER_LEN as u64;
        if entry_checksum(header.length, &[self.held(at + ENTRY_HEADER_LEN, len)]) != header.crc {
            return Ok(NextEntry::Irregular);
        }
        self.position = payload_position + len as u64;
        Ok(NextEntry::Entry(
            self.held(at + ENTRY_HEADER_LEN, len),
            payload_position,
        ))
    }

    /// At bytes that are not an entry: the end if they are all zeros to the
    /// end of the file (less than a block of padding), else damage.
    fn end_or_irregular(&mut self) -> NextEntry<'static> {
        let rest = self.file_len - self.position;
        if rest < BLOCK as u64 {
            let rest = rest as usize;
            if let Ok(true) = self.fill(rest) {
                let at = self.at();
                if self.held(at, rest).iter().all(|&b| b == 0) {
                    return NextEntry::End(Some(self.position));
                }
            }
        }
        NextEntry::Irregular
    }

    /// Where the current entry starts in the window.
    fn at(&self) -> usize {
        (self.position - self.window_start) as usize
    }

    /// Makes the window hold `len` bytes from the current entry on.
    fn fill(&mut self, len: usize) -> Result<bool, WalError> {
        self.fill_to(self.at() + len)
    }

    fn held(&self, at: usize, len: usize) -> &[u8] {
        let from = self.origin + at;
        self.memory.get(from..from + len).unwrap_or_default()
    }

    /// Allocates aligned memory of at least `capacity` bytes, keeping what
    /// is held.
    fn grow(&mut self, capacity: usize) {
        let capacity = capacity.div_ceil(BLOCK) * BLOCK;
        let mut memory = vec![0u8; capacity + 2 * BLOCK];
        let origin = (BLOCK - memory.as_ptr() as usize % BLOCK) % BLOCK;
        let held = self.filled;
        if held > 0 {
            memory[origin..origin + held]
                .copy_from_slice(&self.memory[self.origin..self.origin + held]);
        }
        self.memory = memory;
        self.origin = origin;
        self.capacity = capacity;
    }

    /// Makes the window hold bytes `[0, end)` relative to its start (after
    /// moving it forward to the block of the current entry if needed).
    /// `false` if the file ends first.
    fn fill_to(&mut self, end: usize) -> Result<bool, WalError> {
        if end <= self.filled {
            return Ok(true);
        }
        // Drop whole blocks before the current entry.
        let keep_from = (self.position - self.window_start) as usize / BLOCK * BLOCK;
        if keep_from > 0 {
            let from = self.origin + keep_from;
            let to = self.origin + self.filled;
            self.memory.copy_within(from..to, self.origin);
            self.filled -= keep_from;
            self.window_start += keep_from as u64;
        }
        let end = end - keep_from;
        if end > self.capacity {
            self.grow(end.max(self.read_size));
        }
        while self.filled < end {
            let file_at = self.window_start + self.filled as u64;
            if file_at >= self.file_len {
                return Ok(false);
            }
            // Whole blocks from a block boundary: `filled` stays a multiple
            // of the block size until the end of the file.
            let want = (end - self.filled).max(self.read_size).div_ceil(BLOCK) * BLOCK;
            let want = want.min(self.capacity - self.filled);
            let from = self.origin + self.filled;
            let buf = &mut self.memory[from..from + want];
            let read = match self.file.read_direct(buf, file_at) {
                // A file system that opened the file for direct I/O may
                // still refuse a read: read through the page cache then.
                Some(Err(e)) if e.raw_os_error() == Some(libc::EINVAL) => {
                    read_buffered(&self.file, buf, file_at)
                }
                Some(read) => read,
                None => read_buffered(&self.file, buf, file_at),
            };
            let n = read.map_err(|source| WalError::Io {
                path: self.path.clone(),
                source,
            })?;
            if n == 0 {
                return Ok(false);
            }
            self.filled += n;
        }
        Ok(true)
    }
}

fn read_buffered(file: &SegmentFile, buf: &mut [u8], position: u64) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match file
            .buffered()
            .read_at(&mut buf[done..], position + done as u64)
        {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::SegmentWriter;

    fn segment(dir: &Path, payloads: &[&[u8]], direct: bool) -> std::path::PathBuf {
        let mut writer = SegmentWriter::create(&crate::RealStorage, dir, 0, direct).unwrap();
        for p in payloads {
            let mut framed = Vec::new();
            crate::encode_entry(&mut framed, &[p]).unwrap();
            writer.append(&framed).unwrap();
        }
        writer.path().to_path_buf()
    }

    fn all(path: &Path, direct: bool) -> (Vec<(Vec<u8>, u64)>, NextEntry<'static>) {
        all_reading(path, direct, CHUNK)
    }

    fn all_reading(
        path: &Path,
        direct: bool,
        read_size: usize,
    ) -> (Vec<(Vec<u8>, u64)>, NextEntry<'static>) {
        let mut reader = EntryReader::open_reading(path, direct, read_size)
            .unwrap()
            .unwrap();
        let mut out = Vec::new();
        loop {
            match reader.next_entry().unwrap() {
                NextEntry::Entry(payload, at) => out.push((payload.to_vec(), at)),
                NextEntry::End(padding) => return (out, NextEntry::End(padding)),
                NextEntry::Irregular => return (out, NextEntry::Irregular),
            }
        }
    }

    #[test]
    fn reads_entries_of_every_size_then_the_end_or_the_padding() {
        for direct in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let big = vec![9u8; 2 * CHUNK + 123];
            let payloads: Vec<&[u8]> = vec![b"one", &big, b"", b"last"];
            let path = segment(dir.path(), &payloads, direct);
            let (got, end) = all(&path, direct);
            assert_eq!(all_reading(&path, direct, 5000), (got.clone(), end));
            let bytes = std::fs::read(&path).unwrap();
            let scan = crate::scan_segment(&bytes);
            assert_eq!(got.len(), 4);
            for ((payload, at), (want, span)) in got.iter().zip(payloads.iter().zip(&scan.entries))
            {
                assert_eq!(payload.as_slice(), *want);
                assert_eq!(*at, span.payload_position);
            }
            let padded = bytes.len() as u64 > scan.valid_end;
            let expected = NextEntry::End(padded.then_some(scan.valid_end));
            assert_eq!(end, expected, "direct: {direct}");
        }
    }

    #[test]
    fn stops_at_damage_and_at_a_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment(dir.path(), &[b"first", b"second"], false);
        let mut bytes = std::fs::read(&path).unwrap();
        let second_payload = bytes.len() - 3;
        bytes[second_payload] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        let (got, end) = all(&path, false);
        assert_eq!((got.len(), end), (1, NextEntry::Irregular));

        bytes[second_payload] ^= 1;
        bytes.truncate(bytes.len() - 2);
        std::fs::write(&path, &bytes).unwrap();
        let (got, end) = all(&path, false);
        assert_eq!((got.len(), end), (1, NextEntry::Irregular));
    }
}
