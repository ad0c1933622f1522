//! The response body of every HTTP answer: a whole buffer, or a stream of batches fed by a
//! task through a bounded channel (files, HTTP-FLV).
//!
//! A batch is a list of shared `Bytes` ([`Chunks`]): hyper writes it with one vectored write
//! (as one HTTP chunk when chunked), so a live viewer's batch of tags costs one `writev` and no
//! payload copies (DESIGN.md §2, merged writes).

use bytes::{Buf, Bytes};
use hyper::body::{Frame, SizeHint};
use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::sync::mpsc;

/// A batch of byte strings read as one buffer.
#[derive(Debug, Default)]
pub struct Chunks {
    parts: VecDeque<Bytes>,
    remaining: usize,
}

impl Chunks {
    pub fn one(b: Bytes) -> Chunks {
        let mut c = Chunks::default();
        c.push(b);
        c
    }

    /// Appends a part (empty parts are skipped: `chunk()` must not be empty while bytes remain).
    pub fn push(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.remaining += b.len();
            self.parts.push_back(b);
        }
    }

    /// Puts a part before the others (a chunk-size line).
    pub fn push_front(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.remaining += b.len();
            self.parts.push_front(b);
        }
    }

    pub fn len(&self) -> usize {
        self.remaining
    }

    pub fn is_empty(&self) -> bool {
        self.remaining == 0
    }
}

impl Buf for Chunks {
    fn remaining(&self) -> usize {
        self.remaining
    }

    fn chunk(&self) -> &[u8] {
        self.parts.front().map_or(&[], |b| &b[..])
    }

    fn advance(&mut self, mut cnt: usize) {
        while cnt > 0 {
            let Some(front) = self.parts.front_mut() else {
                return;
            };
            if cnt < front.len() {
                front.advance(cnt);
                self.remaining -= cnt;
                return;
            }
            cnt -= front.len();
            self.remaining -= front.len();
            self.parts.pop_front();
        }
    }

    fn chunks_vectored<'a>(&'a self, dst: &mut [IoSlice<'a>]) -> usize {
        let mut n = 0;
        for (slot, part) in dst.iter_mut().zip(self.parts.iter()) {
            *slot = IoSlice::new(part);
            n += 1;
        }
        n
    }
}

/// What a streaming task sends: a batch, or an error that makes hyper abort the connection
/// (a kicked viewer, a file that shrank under us).
pub type StreamItem = io::Result<Chunks>;

pub enum Body {
    Full(Option<Bytes>),
    Stream(mpsc::Receiver<StreamItem>),
}

impl Body {
    pub fn empty() -> Body {
        Body::Full(None)
    }

    pub fn full(b: impl Into<Bytes>) -> Body {
        let b = b.into();
        Body::Full((!b.is_empty()).then_some(b))
    }

    /// A streaming body and the sender its task feeds; `depth` batches may wait in between.
    pub fn channel(depth: usize) -> (mpsc::Sender<StreamItem>, Body) {
        let (tx, rx) = mpsc::channel(depth.max(1));
        (tx, Body::Stream(rx))
    }
}

impl hyper::body::Body for Body {
    type Data = Chunks;
    type Error = io::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Chunks>, io::Error>>> {
        match self.get_mut() {
            Body::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(Chunks::one(b))))),
            Body::Stream(rx) => rx.poll_recv(cx).map(|o| o.map(|r| r.map(Frame::data))),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Body::Full(None))
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Body::Full(Some(b)) => SizeHint::with_exact(b.len() as u64),
            Body::Full(None) => SizeHint::with_exact(0),
            Body::Stream(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_read_as_one_buffer() {
        let mut c = Chunks::one(Bytes::from_static(b"abc"));
        c.push(Bytes::new());
        c.push(Bytes::from_static(b"de"));
        assert_eq!(c.remaining(), 5);
        let mut io = [IoSlice::new(&[]); 4];
        assert_eq!(c.chunks_vectored(&mut io), 2);
        c.advance(4);
        assert_eq!(c.chunk(), b"e");
        c.advance(1);
        assert_eq!(c.remaining(), 0);
        assert!(c.chunk().is_empty());
    }
}
