//! An encoded response on its way to the socket: one buffer, or several
//! pieces written with one vectored write — a fetch answer's record bytes
//! are sent from the buffers they were read into, not copied again.

use std::future::Future;
use std::io::IoSlice;
use std::pin::Pin;

use bytes::{Buf, Bytes, BytesMut};

use crate::fetch_memory::MemoryHold;

/// A response being produced; `None` when the request gets no answer.
pub type PendingResponse = Pin<Box<dyn Future<Output = Option<Outgoing>> + Send>>;

/// Response bytes in order.
#[derive(Debug, Default)]
pub struct Outgoing {
    pieces: Vec<Bytes>,
    /// Index of the first piece not yet fully written.
    at: usize,
    remaining: usize,
    /// The share of the fetch memory budget these bytes hold until sent.
    held: Option<MemoryHold>,
}

impl Outgoing {
    pub fn from_pieces(pieces: Vec<Bytes>) -> Self {
        let remaining = pieces.iter().map(Bytes::len).sum();
        Outgoing {
            pieces,
            at: 0,
            remaining,
            held: None,
        }
    }

    /// These bytes hold `held` until they are sent (dropped).
    #[must_use]
    pub fn holding(mut self, held: MemoryHold) -> Self {
        self.held = Some(held);
        self
    }

    /// The whole response as one buffer (for tests and comparisons).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.remaining);
        for piece in &self.pieces[self.at..] {
            out.extend_from_slice(piece);
        }
        out
    }
}

impl From<BytesMut> for Outgoing {
    fn from(buf: BytesMut) -> Self {
        Outgoing::from_pieces(vec![buf.freeze()])
    }
}

impl Buf for Outgoing {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.pieces[self.at..]
            .iter()
            .find(|p| !p.is_empty())
            .map_or(&[], |p| &p[..])
    }

    fn advance(&mut self, mut count: usize) {
        count = count.min(self.remaining);
        self.remaining -= count;
        while count > 0 {
            let Some(piece) = self.pieces.get_mut(self.at) else {
                return;
            };
            if count >= piece.len() {
                count -= piece.len();
                self.at += 1;
            } else {
                piece.advance(count);
                count = 0;
            }
        }
        while self.pieces.get(self.at).is_some_and(Bytes::is_empty) {
            self.at += 1;
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut filled = 0;
        for piece in self.pieces[self.at..].iter().filter(|p| !p.is_empty()) {
            let Some(slot) = dst.get_mut(filled) else {
                break;
            };
            *slot = IoSlice::new(piece);
            filled += 1;
        }
        filled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pieces_are_consumed_in_order_across_boundaries() {
        let mut out = Outgoing::from_pieces(vec![
            Bytes::from_static(b"ab"),
            Bytes::new(),
            Bytes::from_static(b"cde"),
            Bytes::from_static(b"f"),
        ]);
        assert_eq!(out.remaining(), 6);
        let mut slices = [IoSlice::new(&[]); 8];
        assert_eq!(out.chunks_vectored(&mut slices), 3);
        out.advance(3);
        assert_eq!(out.chunk(), b"de");
        assert_eq!(out.remaining(), 3);
        assert_eq!(out.to_vec(), b"def");
        out.advance(3);
        assert_eq!(out.remaining(), 0);
        assert!(out.chunk().is_empty());
    }
}
