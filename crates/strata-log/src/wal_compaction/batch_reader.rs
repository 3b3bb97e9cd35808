//! Reading the batches a run copies: with direct I/O where the segment
//! was opened for it (the blocks holding the batch, into reused aligned
//! memory), so that compaction neither fills the page cache with segments
//! about to be removed nor pays for fresh page-cache pages; through the
//! page cache otherwise.

use std::os::unix::fs::FileExt;

use strata_wal::direct::BLOCK;
use strata_wal::SegmentFile;

/// Reused memory for reading batches.
#[derive(Debug, Default)]
pub(crate) struct BatchReader {
    memory: Vec<u8>,
}

impl BatchReader {
    /// The `len` bytes at `position` of `file`, and the bytes read from the
    /// disk for them (whole blocks with direct I/O).
    pub fn read(
        &mut self,
        file: &SegmentFile,
        position: u64,
        len: usize,
    ) -> std::io::Result<(&[u8], u64)> {
        if file.is_direct() {
            let block = BLOCK as u64;
            let from = position - position % block;
            let to = (position + len as u64).div_ceil(block) * block;
            let span = usize::try_from(to - from).map_err(|_| too_large())?;
            self.reserve(span + BLOCK);
            let origin = (BLOCK - self.memory.as_ptr() as usize % BLOCK) % BLOCK;
            match file.read_direct(&mut self.memory[origin..origin + span], from) {
                Some(Ok(got)) if got as u64 >= position + len as u64 - from => {
                    let at = origin + (position - from) as usize;
                    return Ok((&self.memory[at..at + len], to - from));
                }
                Some(Ok(_)) => {
                    return Err(std::io::Error::new(
                        std::io::ErrorKind::UnexpectedEof,
                        "segment ends before the batch it should hold",
                    ))
                }
                // Refused by the file system: through the page cache then.
                Some(Err(e)) if e.raw_os_error() == Some(libc::EINVAL) => {}
                Some(Err(e)) => return Err(e),
                None => {}
            }
        }
        self.reserve(len);
        file.buffered()
            .read_exact_at(&mut self.memory[..len], position)?;
        Ok((&self.memory[..len], len as u64))
    }

    /// Makes the memory at least `len` bytes.
    fn reserve(&mut self, len: usize) {
        if self.memory.len() < len {
            self.memory.resize(len, 0);
        }
    }
}

fn too_large() -> std::io::Error {
    std::io::Error::from_raw_os_error(libc::EINVAL)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_any_range_with_and_without_direct_io() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let bytes: Vec<u8> = (0..3 * BLOCK + 100).map(|i| (i % 251) as u8).collect();
        std::fs::write(&path, &bytes).unwrap();
        let mut reader = BatchReader::default();
        for direct in [false, true] {
            let file = SegmentFile::open(&path, direct).unwrap();
            for (position, len) in [
                (0, 10),
                (4000, 200),
                (5, 3 * BLOCK),
                (3 * BLOCK as u64, 100),
            ] {
                let (got, moved) = reader.read(&file, position, len).unwrap();
                let at = position as usize;
                assert_eq!(got, &bytes[at..at + len], "direct {direct} at {position}");
                assert!(moved >= len as u64);
            }
            assert!(reader.read(&file, 3 * BLOCK as u64, 200).is_err());
        }
    }
}
