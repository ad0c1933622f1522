//! A player's write of one batch: the batch's bytes planned as slices of its frames and of
//! one buffer of the player's own ([`Plan`]), written with as few `writev` calls as the kernel
//! allows — the fan-out's one write per player per batch (DESIGN.md §2, merged writes).

use super::body::Chunks;
use crate::hub::{Batch, Frame, Item};
use bytes::{Bytes, BytesMut};
use std::future::Future;
use std::io::{self, IoSlice};
use std::pin::Pin;
use std::task::Poll;
use std::time::Duration;
use tokio::io::AsyncWrite;

/// Slices per `writev` (Linux IOV_MAX is 1024): a whole batch — two slices per item, at most
/// `hub::queue::MAX_BATCH_ITEMS` items, plus a few of the connection's own (status messages,
/// an HTTP chunk's size line and CRLF) — goes in one call.
pub const MAX_IOV: usize = 2 * crate::hub::queue::MAX_BATCH_ITEMS + 8;

/// Writes every slice of `parts` in order with vectored writes, resuming after partial
/// writes (`parts` is advanced as it goes; empty slices are skipped). The iovec array lives
/// on the stack of one poll (not in the task, not on the heap): at most [`MAX_IOV`] slices per
/// `writev`. Errors: the writer's, or `WriteZero` when it takes nothing. Not cancel-safe (what
/// was written is not reported); callers bound it with their write timeout.
///
/// `w` is a trait object: one copy of this loop serves every kind of socket (the binary's
/// size counts on routers); the call through it costs nothing next to the `writev`.
pub async fn write_all_vectored(
    w: &mut (dyn AsyncWrite + Unpin + Send),
    parts: &mut [&[u8]],
) -> io::Result<()> {
    let mut idx = 0;
    while idx < parts.len() {
        if parts[idx].is_empty() {
            idx += 1;
            continue;
        }
        let mut n = std::future::poll_fn(|cx| {
            // A live batch has a few dozen slices: its iovec array is not the burst's 8 KiB,
            // which would be cleared on every write.
            if parts.len() - idx <= SMALL_IOV {
                poll_writev::<SMALL_IOV>(&mut *w, cx, &parts[idx..])
            } else {
                poll_writev::<MAX_IOV>(&mut *w, cx, &parts[idx..])
            }
        })
        .await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 && idx < parts.len() {
            let len = parts[idx].len();
            if n >= len {
                n -= len;
                idx += 1;
            } else {
                parts[idx] = &parts[idx][n..];
                n = 0;
            }
        }
    }
    Ok(())
}

/// Slices of a live batch's write (see [`write_all_vectored`]); more take the larger array.
const SMALL_IOV: usize = 64;

/// One `writev` of the first `N` non-empty slices of `parts`.
fn poll_writev<const N: usize>(
    w: &mut (dyn AsyncWrite + Unpin + Send),
    cx: &mut std::task::Context<'_>,
    parts: &[&[u8]],
) -> Poll<io::Result<usize>> {
    let mut slices = [IoSlice::new(&[]); N];
    let mut used = 0;
    for (slot, b) in slices
        .iter_mut()
        .zip(parts.iter().filter(|b| !b.is_empty()))
    {
        *slot = IoSlice::new(b);
        used += 1;
    }
    Pin::new(w).poll_write_vectored(cx, &slices[..used])
}

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

/// One batch's bytes, in order: ranges of the batch's own buffer (headers, muxed packets),
/// the batch's frames' shared bytes, borrowed from the batch as they are planned (no reference
/// count is touched per frame and player, and nothing is looked up again to write them), and
/// owned buffers. Made for one batch and dropped after its write, so nothing is kept per
/// player between writes.
#[derive(Debug, Default)]
pub struct Plan<'a> {
    head: BytesMut,
    parts: Vec<Part<'a>>,
    owned: Vec<Bytes>,
    /// Bytes in all parts.
    len: usize,
}

/// One piece of a [`Plan`].
#[derive(Debug, Clone, Copy, PartialEq)]
enum Part<'a> {
    /// `head[.0...1]`.
    Head(usize, usize),
    /// Shared bytes of the batch's `index`th item (a frame): a range of its payload, or of
    /// another of its shared forms (its RTMP chunks or message).
    Frame { index: usize, bytes: &'a [u8] },
    /// `owned[.0]`.
    Owned(usize),
}

impl<'a> Plan<'a> {
    /// An empty plan with room for `items`: one allocation for the parts and, for a payload
    /// view, one for the buffer (16 bytes of headers per item). A chunked view's buffer is
    /// made by the first header put in it: a player in step with the stream writes only
    /// shared messages (`Frame::shared_wire`) and needs none.
    pub fn for_batch(items: &Batch, view: View) -> Plan<'a> {
        let head = match view {
            View::Payload => BytesMut::with_capacity(items.len() * 16),
            View::Chunked(_) => BytesMut::new(),
        };
        Plan {
            head,
            parts: Vec::with_capacity(items.len() * 2 + 1),
            owned: Vec::new(),
            len: 0,
        }
    }

    /// Bytes in the plan.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Slices the plan writes.
    pub fn parts(&self) -> usize {
        self.parts.len()
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
            match self.parts.last_mut() {
                Some(Part::Head(_, b)) if *b == at => *b = end,
                _ => self.parts.push(Part::Head(at, end)),
            }
        }
        r
    }

    /// Appends `bytes[from..to]`, shared bytes of the batch's `index`th item (its payload,
    /// or its RTMP chunks or whole shared message), borrowed whatever their size (nothing
    /// when out of range or empty).
    ///
    /// Never copied, not even a 200-byte AAC frame: every player then reads the same bytes,
    /// which stay in the CPU's cache, where a copy beside each player's header (saving an
    /// iovec) made a kilobyte or two of distinct memory per player and batch, for the copy
    /// and again for the kernel's. Measured at 1000 HTTP-FLV viewers (`srsd bench flv`, three
    /// alternating runs of 15 s): 97-111 ticks of CPU with copies of payloads up to 256
    /// bytes, 90-98 without, the bare writer's 74-84.
    pub fn frame(&mut self, index: usize, bytes: &'a [u8], from: usize, to: usize) {
        if let Some(bytes) = bytes.get(from..to).filter(|b| !b.is_empty()) {
            self.len += bytes.len();
            self.parts.push(Part::Frame { index, bytes });
        }
    }

    /// Appends a buffer of the connection's own (a status message, a frame encoded for this
    /// player only).
    pub fn owned(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.len += b.len();
            self.owned.push(b);
            self.parts.push(Part::Owned(self.owned.len() - 1));
        }
    }

    /// Appends the plan's slices to `out`, borrowed from it and from the batch.
    pub fn slices<'s>(&'s self, out: &mut Vec<&'s [u8]>)
    where
        'a: 's,
    {
        out.extend(self.parts.iter().map(|part| match *part {
            Part::Head(a, b) => &self.head[a..b],
            Part::Frame { bytes, .. } => bytes,
            Part::Owned(i) => &self.owned[i][..],
        }));
    }

    /// The plan as shared `Bytes` (for hyper's body channel, which outlives the batch):
    /// frame parts must be ranges of their frames' payloads (a [`View::Payload`] plan); any
    /// other frame part is left out.
    pub fn into_chunks(self, items: &Batch) -> Chunks {
        let head = self.head.freeze();
        let mut chunks = Chunks::default();
        for part in self.parts {
            chunks.push(match part {
                Part::Head(a, b) => head.slice(a..b),
                Part::Frame { index, bytes } => match items.get(index) {
                    Some(Item::Frame(f)) => match payload_range(&f.payload, bytes) {
                        Some(r) => f.payload.slice(r),
                        None => continue,
                    },
                    _ => continue,
                },
                Part::Owned(i) => self.owned[i].clone(),
            });
        }
        chunks
    }
}

/// Where `part` lies in `payload`, when it is a range of it.
fn payload_range(payload: &[u8], part: &[u8]) -> Option<std::ops::Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(payload.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= payload.len()).then_some(start..end)
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
mod tests {
    use super::*;
    use crate::hub::MediaKind;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    /// Takes at most `step` bytes per call (a socket whose buffer is nearly full).
    struct Trickle {
        got: Vec<u8>,
        step: usize,
        calls: usize,
    }

    impl AsyncWrite for Trickle {
        fn poll_write(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            buf: &[u8],
        ) -> Poll<io::Result<usize>> {
            let n = buf.len().min(self.step);
            self.got.extend_from_slice(&buf[..n]);
            self.calls += 1;
            Poll::Ready(Ok(n))
        }

        fn poll_write_vectored(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
            bufs: &[IoSlice<'_>],
        ) -> Poll<io::Result<usize>> {
            let mut left = self.step;
            for b in bufs {
                let n = b.len().min(left);
                self.got.extend_from_slice(&b[..n]);
                left -= n;
            }
            self.calls += 1;
            Poll::Ready(Ok(self.step - left))
        }

        fn is_write_vectored(&self) -> bool {
            true
        }

        fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn partial_writes_resume_in_order() {
        let mut w = Trickle {
            got: Vec::new(),
            step: 3,
            calls: 0,
        };
        let mut parts: Vec<&[u8]> = vec![b"ab", b"", b"cdefg", b"h"];
        write_all_vectored(&mut w, &mut parts).await.unwrap();
        assert_eq!(w.got, b"abcdefgh");
        assert_eq!(w.calls, 3, "3 + 3 + 2 bytes");

        let mut whole = Trickle {
            got: Vec::new(),
            step: 1 << 20,
            calls: 0,
        };
        let mut parts: Vec<&[u8]> = vec![b"ab", b"cd"];
        write_all_vectored(&mut whole, &mut parts).await.unwrap();
        assert_eq!((whole.got.as_slice(), whole.calls), (&b"abcd"[..], 1));
    }

    #[tokio::test]
    async fn a_writer_that_takes_nothing_is_an_error() {
        let mut w = Trickle {
            got: Vec::new(),
            step: 0,
            calls: 0,
        };
        let mut parts: Vec<&[u8]> = vec![b"x"];
        let e = write_all_vectored(&mut w, &mut parts).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WriteZero);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stuck_write_times_out_and_a_quick_one_needs_no_timer() {
        let quick = within(Duration::from_millis(10), std::pin::pin!(async { Ok(()) })).await;
        assert!(quick.is_ok());
        let stuck = within(
            Duration::from_secs(30),
            std::pin::pin!(std::future::pending()),
        )
        .await;
        assert_eq!(stuck.unwrap_err().kind(), io::ErrorKind::TimedOut);
        let slow = within(
            Duration::from_secs(30),
            std::pin::pin!(async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(())
            }),
        )
        .await;
        assert!(slow.is_ok());
    }

    fn batch(payloads: &[&'static [u8]]) -> Batch {
        Batch::from_vec(
            payloads
                .iter()
                .map(|p| {
                    let f = Frame::new(MediaKind::Video, 0, 0, Bytes::from_static(p));
                    Item::Frame(std::sync::Arc::new(f))
                })
                .collect(),
        )
    }

    #[test]
    fn a_plan_borrows_payloads_and_joins_its_own_bytes() {
        let big: &'static [u8] = &[7u8; 300];
        let items = batch(&[b"tiny", big]);
        let payload = |i: usize| match items.get(i) {
            Some(Item::Frame(f)) => &f.payload[..],
            _ => unreachable!(),
        };
        let (tiny, big) = (payload(0), payload(1));
        let mut plan = Plan::for_batch(&items, View::Payload);
        plan.put(|h| h.extend_from_slice(b"H1"));
        plan.frame(0, tiny, 0, 4);
        plan.put(|h| h.extend_from_slice(b"H2"));
        plan.put(|h| h.extend_from_slice(b"H3"));
        plan.frame(1, big, 1, big.len());
        plan.put(|h| h.extend_from_slice(b"T"));
        // Out of range or empty: nothing.
        plan.frame(0, tiny, 2, 9);
        plan.frame(0, tiny, 2, 2);
        assert_eq!(
            plan.parts,
            [
                Part::Head(0, 2),
                Part::Frame {
                    index: 0,
                    bytes: tiny
                },
                Part::Head(2, 6),
                Part::Frame {
                    index: 1,
                    bytes: &big[1..]
                },
                Part::Head(6, 7)
            ],
            "adjacent buffer writes are one slice; payloads, small ones too, are borrowed"
        );
        let mut want = b"H1tinyH2H3".to_vec();
        want.extend_from_slice(&big[1..]);
        want.push(b'T');
        assert_eq!(plan.len(), want.len());

        let mut slices = Vec::new();
        plan.slices(&mut slices);
        assert_eq!(slices.concat(), want);
        assert!(
            slices[1].as_ptr() == tiny.as_ptr() && slices[3].as_ptr() == big[1..].as_ptr(),
            "borrowed, not copied"
        );
        drop(slices);

        let chunks = plan.into_chunks(&items);
        assert_eq!(chunks.len(), want.len());
        let mut got = Vec::new();
        let mut c = chunks;
        while bytes::Buf::has_remaining(&c) {
            let n = bytes::Buf::chunk(&c).len();
            got.extend_from_slice(bytes::Buf::chunk(&c));
            bytes::Buf::advance(&mut c, n);
        }
        assert_eq!(got, want);
    }

    #[test]
    fn owned_parts_and_a_chunked_view() {
        let big: &'static [u8] = &[3u8; 300];
        let items = batch(&[big]);
        // 300 bytes in chunks of 128: two continuation headers interleaved.
        let view = View::Chunked(128);
        let mut plan = Plan::for_batch(&items, view);
        plan.owned(Bytes::from_static(b"status"));
        plan.owned(Bytes::new());
        let Some(Item::Frame(f)) = items.get(0) else {
            unreachable!()
        };
        let chunked = view.of(f);
        assert_eq!(chunked.len(), 302);
        plan.frame(0, chunked, 0, chunked.len());
        assert_eq!(plan.parts(), 2, "an empty buffer is no part");
        assert_eq!(plan.len(), 6 + 302);
        let mut slices = Vec::new();
        plan.slices(&mut slices);
        assert_eq!(slices, [&b"status"[..], chunked]);
        drop(slices);
        assert_eq!(View::Payload.of(f), big);
        // Shared bytes are the payload's only: a chunked plan's frames are not in them.
        assert_eq!(plan.into_chunks(&items).len(), 6);
    }

    #[test]
    fn an_empty_plan_writes_nothing() {
        let mut plan = Plan::for_batch(&Batch::default(), View::Payload);
        plan.put(|_| ());
        assert!(plan.is_empty() && plan.parts.is_empty());
    }
}
