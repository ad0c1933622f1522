//! File work (create, write, fsync, rename, delete) off the runtime threads.
//!
//! With `workers = 1` (single-core routers) the whole server runs on one thread: a write to a
//! slow SD card there would stall every socket, the publisher's included. So each recording
//! (an HLS segmenter, a DVR recorder) runs on a thread of its own, fed by its hub consumer
//! through a bounded channel of [`BATCHES`] batches: when the disk stalls, the channel fills,
//! the consumer's queue fills behind it and drops to the next keyframe (counted, as for a
//! slow player), and only that recording loses media.

use std::io;
use tokio::sync::oneshot;

/// Batches (each up to ~1 MB of frames, as one `Consumer::recv` returns) queued for a
/// writer thread before its feeder waits (and the hub queue behind it starts to drop).
pub const BATCHES: usize = 4;

/// Stack of a writer thread: the muxers keep their buffers on the heap.
const STACK: usize = 256 * 1024;

/// Runs `work` on a new thread named `name`; the receiver gets its result (an error when
/// it panicked). Errors when the system has no thread to give (EAGAIN).
pub fn spawn<T: Send + 'static>(
    name: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> io::Result<oneshot::Receiver<T>> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.chars().take(15).collect())
        .stack_size(STACK)
        .spawn(move || {
            let _ = tx.send(work());
        })?;
    Ok(rx)
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn work_runs_on_another_thread_and_returns_its_result() {
        let here = std::thread::current().id();
        let rx = super::spawn("t", move || std::thread::current().id() != here).unwrap();
        assert!(rx.await.unwrap());
    }
}
