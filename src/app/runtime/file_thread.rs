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

/// What a writer thread receives: frames with the timestamp the consumer computed for them
/// (DVR's rebased timeline; HLS reads the frame's own dts). The stream ends when the
/// channel closes. One type for every writer: one copy of the channel code.
pub type Batch = Vec<(std::sync::Arc<crate::hub::Frame>, u32)>;

/// Stack of a writer thread: the muxers keep their buffers on the heap.
const STACK: usize = 256 * 1024;

/// Runs `work` on a new thread named `name`, logging under context id `cid`; the receiver
/// resolves when it is done (also when it panicked). Errors when the system has no thread
/// to give (EAGAIN). `work` is boxed: one copy of the thread machinery serves every caller.
pub fn spawn(
    name: &str,
    cid: u64,
    work: Box<dyn FnOnce() + Send>,
) -> io::Result<oneshot::Receiver<()>> {
    let (tx, rx) = oneshot::channel();
    std::thread::Builder::new()
        .name(name.chars().take(15).collect())
        .stack_size(STACK)
        .spawn(move || {
            super::log::CID.sync_scope(cid, work);
            let _ = tx.send(());
        })?;
    Ok(rx)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    #[tokio::test]
    async fn work_runs_on_another_thread_and_returns_its_result() {
        let here = std::thread::current().id();
        let elsewhere = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let e2 = elsewhere.clone();
        let work = move || {
            let other = std::thread::current().id() != here;
            e2.store(
                other && super::super::log::current_cid() == 7,
                Ordering::Relaxed,
            );
        };
        super::spawn("t", 7, Box::new(work)).unwrap().await.unwrap();
        assert!(
            elsewhere.load(Ordering::Relaxed),
            "on another thread, under its cid"
        );
    }
}
