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

fn iov<'a>(parts: &[&'a [u8]]) -> Vec<IoSlice<'a>> {
    parts.iter().map(|p| IoSlice::new(p)).collect()
}

fn joined(iov: &[IoSlice<'_>]) -> Vec<u8> {
    iov.iter().flat_map(|b| b.iter().copied()).collect()
}

#[tokio::test]
async fn partial_writes_resume_in_order() {
    let mut w = Trickle {
        got: Vec::new(),
        step: 3,
        calls: 0,
    };
    let mut parts = iov(&[b"", b"ab", b"", b"cdefg", b"h", b""]);
    write_all_vectored(&mut w, &mut parts).await.unwrap();
    assert_eq!(w.got, b"abcdefgh");
    assert_eq!(w.calls, 3, "3 + 3 + 2 bytes");

    let mut whole = Trickle {
        got: Vec::new(),
        step: 1 << 20,
        calls: 0,
    };
    let mut parts = iov(&[b"ab", b"cd"]);
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
    let mut parts = iov(&[b"x"]);
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

fn all(c: Chunks) -> Vec<u8> {
    let mut c = c;
    let mut got = Vec::new();
    while c.has_remaining() {
        let n = c.chunk().len();
        got.extend_from_slice(c.chunk());
        c.advance(n);
    }
    got
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
    plan.frame(tiny);
    plan.put(|h| h.extend_from_slice(b"H2"));
    plan.put(|h| h.extend_from_slice(b"H3"));
    plan.frame(&big[1..]);
    plan.put(|h| h.extend_from_slice(b"T"));
    plan.frame(&tiny[2..2]);
    assert_eq!(
        plan.parts.len(),
        5,
        "adjacent buffer writes are one slice; empty is none"
    );
    assert_eq!(
        plan.fills
            .iter()
            .map(|f| (f.part, f.src))
            .collect::<Vec<_>>(),
        [
            (0, Own::Head(0, 2)),
            (2, Own::Head(2, 6)),
            (4, Own::Head(6, 7))
        ]
    );
    let mut want = b"H1tinyH2H3".to_vec();
    want.extend_from_slice(&big[1..]);
    want.push(b'T');
    assert_eq!(plan.len(), want.len());

    let parts = plan.take_parts();
    let slices = plan.filled(parts, b"pre", b"post");
    assert_eq!(joined(&slices), [&b"pre"[..], &want, b"post"].concat());
    assert!(
        slices[2].as_ptr() == tiny.as_ptr() && slices[4].as_ptr() == big[1..].as_ptr(),
        "payloads, small ones too, are borrowed, not copied"
    );
    // What is left after a partial write, held past the batch: the frames' bytes shared,
    // the plan's own bytes frozen, the rest copied.
    let mut rest = &mut slices.clone()[..];
    advance(&mut rest, 6);
    let sources = plan.sources(rest, &items);
    // "pre" and "H1" went out, and one byte of "tiny".
    assert!(
        matches!(sources.0[0], Source::Shared(ref b) if &b[..] == b"iny" && b.as_ptr() == tiny[1..].as_ptr())
    );
    assert!(matches!(sources.0[1], Source::Head(2, 6)));
    assert!(matches!(sources.0[2], Source::Shared(ref b) if b.as_ptr() == big[1..].as_ptr()));
    assert!(matches!(sources.0[3], Source::Head(6, 7)));
    assert!(matches!(sources.0[4], Source::Shared(ref b) if &b[..] == b"post"));
    drop(slices);
    assert_eq!(
        all(plan.into_shared(sources)),
        [&want[3..], b"post"].concat()
    );
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
    plan.frame(chunked);
    assert_eq!(plan.parts.len(), 2, "an empty buffer is no part");
    assert_eq!(plan.len(), 6 + 302);
    let parts = plan.take_parts();
    let slices = plan.filled(parts, b"", b"");
    assert_eq!(
        slices.iter().map(|b| &b[..]).collect::<Vec<_>>(),
        [&b"status"[..], chunked]
    );
    let sources = plan.sources(&slices, &items);
    assert!(
        matches!(sources.0[1], Source::Shared(ref b) if b.as_ptr() == chunked.as_ptr()),
        "the chunked form is shared from the frame's wire cache"
    );
    drop(slices);
    assert_eq!(View::Payload.of(f), big);
    assert_eq!(
        all(plan.into_shared(sources)),
        [&b"status"[..], chunked].concat()
    );
}

#[tokio::test]
async fn a_full_socket_gets_the_rest_from_shared_buffers() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    // 16 MiB: more than any socket buffer takes at once.
    let big = Bytes::from(vec![5u8; 1 << 20]);
    let items = Batch::from_vec(
        (0..16)
            .map(|_| {
                let f = Frame::new(MediaKind::Video, 0, 0, big.clone());
                Item::Frame(std::sync::Arc::new(f))
            })
            .collect(),
    );
    let mut plan = Plan::for_batch(&items, View::Payload);
    for (i, item) in items.iter().enumerate() {
        if let Item::Frame(f) = item {
            plan.put(|h| h.extend_from_slice(format!("<{i}>").as_bytes()));
            plan.frame(&f.payload);
        }
    }
    let want = plan.len() + 5;
    let rest = send(
        &mut server,
        b"pre",
        plan,
        b"po",
        &items,
        Duration::from_secs(20),
    )
    .unwrap()
    .expect("a socket nobody reads takes 16 MiB only in part");
    let reader = tokio::spawn(async move {
        let mut got = Vec::new();
        tokio::io::AsyncReadExt::read_to_end(&mut client, &mut got)
            .await
            .unwrap();
        got
    });
    rest.await.unwrap();
    drop(server);
    let got = reader.await.unwrap();
    assert_eq!(got.len(), want);
    assert!(got.starts_with(b"pre<0>\x05") && got.ends_with(b"\x05po"));
    assert_eq!(got.windows(4).filter(|w| w == b"<15>").count(), 1);
}

#[tokio::test]
async fn a_full_socket_that_stays_full_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let _client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    let (mut server, _) = listener.accept().await.unwrap();
    let items = batch(&[&[1u8; 1 << 16]]);
    let mut plan = Plan::for_batch(&items, View::Payload);
    for _ in 0..256 {
        plan.frame(View::Payload.of(match items.get(0) {
            Some(Item::Frame(f)) => f,
            _ => unreachable!(),
        }));
    }
    let rest = send(
        &mut server,
        b"",
        plan,
        b"",
        &items,
        Duration::from_millis(200),
    )
    .unwrap()
    .expect("16 MiB do not fit");
    assert_eq!(rest.await.unwrap_err().kind(), io::ErrorKind::TimedOut);
}

/// A socket that is never ready at once and then takes `step` bytes every `every` (a
/// player on a slow link).
struct Slow {
    got: Vec<u8>,
    step: usize,
    every: Duration,
    next: Pin<Box<tokio::time::Sleep>>,
}

impl AsyncWrite for Slow {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored(cx, &[IoSlice::new(buf)])
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        std::task::ready!(self.next.as_mut().poll(cx));
        let every = self.every;
        self.next
            .as_mut()
            .reset(tokio::time::Instant::now() + every);
        let mut left = self.step;
        for b in bufs {
            let n = b.len().min(left);
            self.got.extend_from_slice(&b[..n]);
            left -= n;
        }
        Poll::Ready(Ok(self.step - left))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

impl Socket for Slow {
    fn try_write_vectored(&self, _: &[IoSlice<'_>]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }

    fn waiting(&mut self) -> &mut (dyn AsyncWrite + Unpin + Send) {
        self
    }
}

#[tokio::test(start_paused = true)]
async fn a_slow_socket_that_keeps_taking_bytes_is_not_timed_out() {
    let items = batch(&[b"0123456789", b"abcdefghij"]);
    let write = |every_ms: u64| {
        let mut w = Slow {
            got: Vec::new(),
            step: 2,
            every: Duration::from_millis(every_ms),
            next: Box::pin(tokio::time::sleep(Duration::from_millis(every_ms))),
        };
        let items = &items;
        async move {
            let mut plan = Plan::for_batch(items, View::Payload);
            for item in items.iter() {
                if let Item::Frame(f) = item {
                    plan.frame(&f.payload);
                }
            }
            let started = tokio::time::Instant::now();
            let rest = send(&mut w, b"", plan, b"", items, Duration::from_millis(100))
                .unwrap()
                .expect("the socket takes nothing at once");
            let r = rest.await;
            (r, w.got, started.elapsed())
        }
    };
    // 10 writes of 2 bytes, 60 ms apart: 600 ms in all, six times the limit, and never
    // 100 ms without progress.
    let (r, got, took) = write(60).await;
    assert!(r.is_ok(), "{r:?}");
    assert_eq!(got, b"0123456789abcdefghij");
    assert!(took >= Duration::from_millis(600), "{took:?}");
    // 150 ms between writes: the first wait is past the limit.
    let (r, got, _) = write(150).await;
    assert_eq!(r.unwrap_err().kind(), io::ErrorKind::TimedOut);
    assert!(got.is_empty(), "{got:?}");
}

#[test]
fn an_empty_plan_writes_nothing() {
    let mut plan = Plan::for_batch(&Batch::default(), View::Payload);
    plan.put(|_| ());
    assert!(plan.is_empty() && plan.parts.is_empty());
}
