//! Writing a batch of borrowed byte slices to a socket with as few `writev` calls as the
//! kernel allows: the fan-out's one write per player per batch (DESIGN.md §2, merged writes).

use std::future::Future;
use std::io::{self, IoSlice};
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
pub async fn write_all_vectored<W: AsyncWrite + Unpin>(
    w: &mut W,
    parts: &mut [&[u8]],
) -> io::Result<()> {
    let mut idx = 0;
    while idx < parts.len() {
        if parts[idx].is_empty() {
            idx += 1;
            continue;
        }
        let mut n = std::future::poll_fn(|cx| {
            let mut slices = [IoSlice::new(&[]); MAX_IOV];
            let mut used = 0;
            for (slot, b) in slices
                .iter_mut()
                .zip(parts[idx..].iter().filter(|b| !b.is_empty()))
            {
                *slot = IoSlice::new(b);
                used += 1;
            }
            std::pin::Pin::new(&mut *w).poll_write_vectored(cx, &slices[..used])
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

/// Runs `write` within `limit`. The timer is made only when the write does not finish on
/// its first poll: a socket that takes the whole batch at once (the usual case for a player
/// keeping up) costs no timer-wheel entry, clock read or scheduler-handle clone. Errors:
/// the write's, or `TimedOut` ("write timed out").
pub async fn within<F: Future<Output = io::Result<()>>>(
    limit: Duration,
    write: F,
) -> io::Result<()> {
    let mut write = std::pin::pin!(write);
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
        let quick = within(Duration::from_millis(10), async { Ok(()) }).await;
        assert!(quick.is_ok());
        let stuck = within(Duration::from_secs(30), std::future::pending()).await;
        assert_eq!(stuck.unwrap_err().kind(), io::ErrorKind::TimedOut);
        let slow = within(Duration::from_secs(30), async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            Ok(())
        })
        .await;
        assert!(slow.is_ok());
    }
}
