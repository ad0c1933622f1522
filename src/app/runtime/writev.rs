//! A player's write of one batch: the batch's bytes planned as slices of its frames and of
//! one buffer of the player's own ([`Plan`]), written with as few `writev` calls as the kernel
//! allows — the fan-out's one write per player per batch (DESIGN.md §2, merged writes).

use super::body::Chunks;
use crate::hub::frame::range_in;
use crate::hub::{Batch, Frame, Item};
use bytes::{Buf, Bytes, BytesMut};
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tokio::io::AsyncWrite;

/// Writes every slice of `bufs` in order with vectored writes, resuming after partial
/// writes. Errors: the writer's, or `WriteZero` when it takes nothing. Not cancel-safe (what
/// was written is not reported); callers bound it with their write timeout. More slices
/// than the kernel takes per call (IOV_MAX, 1024 on Linux) go in several: the standard
/// library's `writev` passes at most that many.
///
/// `w` is a trait object: one copy of this loop serves every kind of socket (the binary's
/// size counts on routers); the call through it costs nothing next to the `writev`.
pub async fn write_all_vectored(
    w: &mut (dyn AsyncWrite + Unpin + Send),
    mut bufs: &mut [IoSlice<'_>],
) -> io::Result<()> {
    // Empty slices at the front are skipped (a writer given only those would take nothing).
    advance(&mut bufs, 0);
    while !bufs.is_empty() {
        let n = std::future::poll_fn(|cx| Pin::new(&mut *w).poll_write_vectored(cx, bufs)).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        advance(&mut bufs, n);
    }
    Ok(())
}

/// Skips `n` written bytes of `bufs` (at most all of them: a writer that reports more
/// than it was given ends the write rather than the process).
fn advance(bufs: &mut &mut [IoSlice<'_>], n: usize) {
    let total: usize = bufs.iter().map(|b| b.len()).sum();
    IoSlice::advance_slices(bufs, n.min(total));
}

/// A socket a batch is written to: the write that does not wait (tokio's `try_write_vectored`,
/// one `writev` when the socket is writable) and the one that does.
pub trait Socket: AsyncWrite + Unpin + Send {
    /// One `writev` if the socket is ready for it; `WouldBlock` when it is not.
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize>;

    /// The socket as the writer that waits (what trait upcasting gives from Rust 1.86 on;
    /// the crate builds with 1.81).
    fn waiting(&mut self) -> &mut (dyn AsyncWrite + Unpin + Send);
}

impl Socket for tokio::net::TcpStream {
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        tokio::net::TcpStream::try_write_vectored(self, bufs)
    }

    fn waiting(&mut self) -> &mut (dyn AsyncWrite + Unpin + Send) {
        self
    }
}

impl Socket for tokio::net::tcp::OwnedWriteHalf {
    fn try_write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        tokio::net::tcp::OwnedWriteHalf::try_write_vectored(self, bufs)
    }

    fn waiting(&mut self) -> &mut (dyn AsyncWrite + Unpin + Send) {
        self
    }
}

/// The rest of a write the socket did not take at once (see [`send`]).
pub type Rest<'a> = Pin<Box<dyn Future<Output = io::Result<()>> + Send + 'a>>;

/// Writes a batch: `pre`, the plan's slices, then `post`. What the socket takes at once is
/// written here, from the plan's own iovec array, with no future, timer or allocation: a
/// player that keeps up takes a whole batch in one `writev`. When the socket is full, the
/// rest becomes shared buffers (the frames' `Bytes`, the plan's own bytes frozen; `items`
/// holds the frames) and is returned as a future that owns them and writes them, failing
/// with `TimedOut` ("write timed out") when the socket takes nothing for `limit`: a slow
/// player that keeps taking bytes is not cut off however long the batch takes (SRS's send
/// timeout and nginx-rtmp's `timeout` are re-armed on every partial write too). Boxed, so its
/// state exists only while a write waits, not in every player's task. Errors: the socket's,
/// or `WriteZero`.
pub fn send<'a>(
    w: &'a mut dyn Socket,
    pre: &[u8],
    mut plan: Plan<'_>,
    post: &'static [u8],
    items: &Batch,
    limit: Duration,
) -> io::Result<Option<Rest<'a>>> {
    let total = pre.len() + plan.len() + post.len();
    let parts = plan.take_parts();
    let mut iov = plan.filled(parts, pre, post);
    let mut bufs = &mut iov[..];
    let mut written = 0;
    while !bufs.is_empty() {
        match w.try_write_vectored(bufs) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                written += n;
                if written >= total {
                    return Ok(None);
                }
                advance(&mut bufs, n);
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) => return Err(e),
        }
    }
    if bufs.is_empty() {
        return Ok(None);
    }
    let sources = plan.sources(bufs, items);
    drop(iov);
    let mut rest = plan.into_shared(sources);
    Ok(Some(Box::pin(async move {
        let w = w.waiting();
        let stall = tokio::time::sleep(limit);
        tokio::pin!(stall);
        while rest.has_remaining() {
            let mut slices = [IoSlice::new(&[]); SLICES_PER_WAIT];
            let n = rest.chunks_vectored(&mut slices);
            let wrote = std::future::poll_fn(|cx| {
                if let Poll::Ready(r) = Pin::new(&mut *w).poll_write_vectored(cx, &slices[..n]) {
                    return Poll::Ready(r);
                }
                stall
                    .as_mut()
                    .poll(cx)
                    .map(|()| Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")))
            })
            .await?;
            if wrote == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            rest.advance(wrote.min(rest.remaining()));
            stall.as_mut().reset(tokio::time::Instant::now() + limit);
        }
        Ok(())
    })))
}

/// Slices per `writev` of a write that waited (see [`send`]).
const SLICES_PER_WAIT: usize = 64;

/// Which bytes of a frame a [`Plan`] writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum View {
    /// The payload (FLV, TS, AAC, MP3 viewers).
    #[default]
    Payload,
    /// The payload with the RTMP continuation headers for this chunk size (see
    /// `Frame::chunks_ref`: empty when the size is not the frame's cached one, and such a
    /// frame is written as an owned buffer instead).
    Chunked(u32),
}

impl View {
    /// The bytes of `f` in this view.
    pub fn of(self, f: &Frame) -> &[u8] {
        match self {
            View::Payload => &f.payload,
            View::Chunked(size) => f.chunks_ref(size).unwrap_or_default(),
        }
    }
}

/// One batch's bytes, in order, as the iovec array its `writev` takes: the batch's frames'
/// shared bytes, borrowed from the batch as they are planned (no reference count is touched
/// per frame and player), and bytes of the player's own (headers, muxed packets, status
/// messages). Made for one batch and dropped after its write, so nothing is kept per player
/// between writes.
///
/// A player in step with the stream writes only shared bytes: its plan is one vector of
/// slices, written as it is. Its own bytes go in a buffer that may still move while the plan
/// is made; their slices are placeholders until [`Plan::filled`].
#[derive(Debug, Default)]
pub struct Plan<'a> {
    head: BytesMut,
    /// The slices in order; a slice of `head` or of `owned` is empty until filled.
    parts: Vec<IoSlice<'a>>,
    /// Where the placeholders' bytes are, in order of their parts.
    fills: Vec<Fill>,
    owned: Vec<Bytes>,
    /// Bytes in all parts.
    len: usize,
}

/// A placeholder of [`Plan::parts`] and the plan's own bytes it stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Fill {
    part: usize,
    src: Own,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Own {
    /// `head[.0...1]`.
    Head(usize, usize),
    /// `owned[.0]`.
    Owned(usize),
}

/// Where a slice of a written plan lies, to hold it past the batch (see [`Plan::sources`]).
#[derive(Debug)]
pub struct Sources(Vec<Source>);

#[derive(Debug)]
enum Source {
    Head(usize, usize),
    Owned(usize, usize, usize),
    Shared(Bytes),
}

impl<'a> Plan<'a> {
    /// An empty plan with room for `items`: one allocation for the slices (two per item,
    /// and a chunk-size line and CRLF) and, for a payload view, one for the buffer (16 bytes
    /// of headers per item) and one for the placeholders (one per item). A chunked view's
    /// buffer and placeholders are made by the first header put in it: a player in step with
    /// the stream writes only shared messages (`Frame::shared_wire`) and needs none.
    pub fn for_batch(items: &Batch, view: View) -> Plan<'a> {
        let (head, fills) = match view {
            View::Payload => (
                BytesMut::with_capacity(items.len() * 16),
                Vec::with_capacity(items.len() + 2),
            ),
            View::Chunked(_) => (BytesMut::new(), Vec::new()),
        };
        Plan {
            head,
            parts: Vec::with_capacity(items.len() * 2 + 3),
            fills,
            ..Plan::default()
        }
    }

    /// Bytes in the plan.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends what `f` writes to the batch's buffer: one slice with the part before when
    /// that is the buffer's too.
    pub fn put<R>(&mut self, f: impl FnOnce(&mut BytesMut) -> R) -> R {
        if self.head.capacity() == 0 {
            // A chunked view's buffer, at its first header: 16 bytes per item.
            self.head.reserve(self.parts.capacity() * 8);
        }
        let at = self.head.len();
        let r = f(&mut self.head);
        let end = self.head.len();
        if end > at {
            self.len += end - at;
            let last = self.parts.len().checked_sub(1);
            match self.fills.last_mut() {
                Some(Fill {
                    part,
                    src: Own::Head(_, b),
                }) if Some(*part) == last && *b == at => *b = end,
                _ => self.placeholder(Own::Head(at, end)),
            }
        }
        r
    }

    /// Appends shared bytes of a frame of the batch (its payload or part of it, or its RTMP
    /// chunks or whole shared message), borrowed whatever their size (nothing when empty).
    ///
    /// Never copied, not even a 200-byte AAC frame: every player then reads the same bytes,
    /// which stay in the CPU's cache, where a copy beside each player's header (saving an
    /// iovec) made a kilobyte or two of distinct memory per player and batch, for the copy
    /// and again for the kernel's. Measured at 1000 HTTP-FLV viewers (`srsd bench flv`, three
    /// alternating runs of 15 s): 97-111 ticks of CPU with copies of payloads up to 256
    /// bytes, 90-98 without, the bare writer's 74-84.
    #[inline(always)]
    pub fn frame(&mut self, bytes: &'a [u8]) {
        if !bytes.is_empty() {
            self.len += bytes.len();
            self.parts.push(IoSlice::new(bytes));
        }
    }

    /// Appends a buffer of the connection's own (a status message, a frame encoded for this
    /// player only).
    pub fn owned(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.len += b.len();
            self.owned.push(b);
            self.placeholder(Own::Owned(self.owned.len() - 1));
        }
    }

    fn placeholder(&mut self, src: Own) {
        if self.fills.capacity() == 0 {
            self.fills.reserve(self.parts.capacity() / 2);
        }
        self.fills.push(Fill {
            part: self.parts.len(),
            src,
        });
        self.parts.push(IoSlice::new(&[]));
    }

    /// The plan's slices, taken out to be filled ([`Plan::filled`]).
    pub fn take_parts(&mut self) -> Vec<IoSlice<'a>> {
        std::mem::take(&mut self.parts)
    }

    /// `parts` (from [`Plan::take_parts`]) with the plan's own bytes in place, between
    /// `pre` and `post` (each left out when empty): the iovec array of the write. No
    /// allocation when the vector has the room it was made with.
    pub fn filled<'s>(
        &'s self,
        parts: Vec<IoSlice<'a>>,
        pre: &'s [u8],
        post: &'s [u8],
    ) -> Vec<IoSlice<'s>>
    where
        'a: 's,
    {
        let mut out: Vec<IoSlice<'s>> = parts;
        for f in &self.fills {
            if let Some(slot) = out.get_mut(f.part) {
                *slot = IoSlice::new(match f.src {
                    Own::Head(a, b) => self.head.get(a..b).unwrap_or_default(),
                    Own::Owned(i) => self.owned.get(i).map_or(&[][..], |b| &b[..]),
                });
            }
        }
        if !pre.is_empty() {
            out.insert(0, IoSlice::new(pre));
        }
        if !post.is_empty() {
            out.push(IoSlice::new(post));
        }
        out
    }

    /// Where each of `slices` (of this plan's filled iovec array, what is left of it after a
    /// partial write) lies: in the plan's own bytes, or in a frame of `items` (as a `Bytes`
    /// slice of its payload or wire form). Bytes found in neither (a chunk-size line) are
    /// copied.
    pub fn sources(&self, slices: &[IoSlice<'_>], items: &Batch) -> Sources {
        let mut out = Vec::with_capacity(slices.len());
        let mut frames = items
            .as_slices()
            .into_iter()
            .flatten()
            .filter_map(|i| match i {
                Item::Frame(f) => Some(f),
                _ => None,
            });
        let mut at = frames.next();
        for s in slices {
            let src = if let Some(r) = range_in(&self.head, s) {
                Source::Head(r.start, r.end)
            } else if let Some((i, r)) = self
                .owned
                .iter()
                .enumerate()
                .find_map(|(i, b)| Some((i, range_in(b, s)?)))
            {
                Source::Owned(i, r.start, r.end)
            } else {
                // Parts are in the batch's order: the frame is this one or a later one.
                loop {
                    match at {
                        Some(f) => match f.share(s) {
                            Some(b) => break Source::Shared(b),
                            None => at = frames.next(),
                        },
                        None => break Source::Shared(Bytes::copy_from_slice(s)),
                    }
                }
            };
            out.push(src);
        }
        Sources(out)
    }

    /// The bytes `sources` name, as shared buffers that outlive the batch.
    pub fn into_shared(self, sources: Sources) -> Chunks {
        let head = self.head.freeze();
        let mut chunks = Chunks::default();
        for src in sources.0 {
            chunks.push(match src {
                Source::Head(a, b) => head.slice(a..b),
                Source::Owned(i, a, b) => match self.owned.get(i) {
                    Some(o) => o.slice(a..b),
                    None => continue,
                },
                Source::Shared(b) => b,
            });
        }
        chunks
    }

    /// The plan as shared `Bytes` (for hyper's body channel, which outlives the batch).
    pub fn into_chunks(mut self, items: &Batch) -> Chunks {
        let parts = self.take_parts();
        let iov = self.filled(parts, b"", b"");
        let sources = self.sources(&iov, items);
        drop(iov);
        self.into_shared(sources)
    }
}

/// Runs `write` within `limit`. The timer is made only when the write does not finish on
/// its first poll: a socket that takes the whole batch at once (the usual case for a player
/// keeping up) costs no timer-wheel entry, clock read or scheduler-handle clone. Errors:
/// the write's, or `TimedOut` ("write timed out").
///
/// `write` is a trait object, so one copy serves every write (the binary's size counts on
/// routers).
pub async fn within(
    limit: Duration,
    mut write: Pin<&mut (dyn Future<Output = io::Result<()>> + Send)>,
) -> io::Result<()> {
    if let Poll::Ready(r) = std::future::poll_fn(|cx| Poll::Ready(write.as_mut().poll(cx))).await {
        return r;
    }
    tokio::time::timeout(limit, write)
        .await
        .unwrap_or_else(|_| Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")))
}

#[cfg(test)]
mod tests;
