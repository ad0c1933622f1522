//! A task tracker: counts the tasks (or any work) that hold one of its [`Token`]s and wakes
//! whoever waits for the count to reach zero. Shutdown waits on it with a deadline instead of
//! polling counters in sleep loops.
//!
//! Why our own and not `tokio_util::task::TaskTracker`: tokio-util is not a dependency, and
//! the part used here (count + wake on zero) is a counter and a `Notify`, ~60 lines.

use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The runtime for `workers` (the config's `workers`): 0 = one worker thread per core, 1 =
/// tokio's current-thread runtime (the connections share one thread, as SRS's do), N = N
/// worker threads; every driver (I/O, time) enabled. Its threads cycle their malloc cache
/// when a heap trim asks (`memory::on_thread_park`).
pub fn runtime_builder(workers: usize) -> tokio::runtime::Builder {
    let mut b = if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        if workers > 1 {
            b.worker_threads(workers);
        }
        b
    };
    b.enable_all()
        .on_thread_park(crate::app::runtime::memory::on_thread_park);
    b
}

/// Cheap to clone: clones count into the same set.
#[derive(Clone, Default)]
pub struct Tracker(Arc<Inner>);

#[derive(Default)]
struct Inner {
    count: AtomicUsize,
    idle: Notify,
}

/// Counts in its [`Tracker`] while alive. Dropping the last token wakes [`Tracker::wait`].
pub struct Token(Arc<Inner>);

impl Tracker {
    /// A token that counts until dropped (a file writer, a connection).
    pub fn token(&self) -> Token {
        self.0.count.fetch_add(1, Ordering::AcqRel);
        Token(self.0.clone())
    }

    /// Spawns `f` on the current runtime, counted until it ends or is aborted.
    pub fn spawn<F>(&self, f: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        tokio::spawn(Holding::new(f, self.token()))
    }

    /// Tasks and tokens alive now.
    pub fn len(&self) -> usize {
        self.0.count.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Waits until nothing is counted or `deadline` passes; true when nothing is counted.
    pub async fn wait(&self, deadline: Instant) -> bool {
        loop {
            let idle = self.0.idle.notified();
            tokio::pin!(idle);
            // Registered before the check: a last token dropped in between still wakes us.
            idle.as_mut().enable();
            if self.is_empty() {
                return true;
            }
            if tokio::time::timeout_at(deadline, idle).await.is_err() {
                return self.is_empty();
            }
        }
    }
}

/// Held by whoever owns a tracked task (a forwarder's stream, the set of a stream's
/// forwarders): dropping it asks the task to stop, which then ends on its own — closing what
/// it holds politely (an upstream publish gets its FCUnpublish/deleteStream) — instead of
/// being aborted mid-write. See [`stop_pair`].
pub struct StopOnDrop(#[allow(dead_code)] tokio::sync::watch::Sender<()>);

/// The task's side of [`StopOnDrop`].
pub struct StopSignal(tokio::sync::watch::Receiver<()>);

/// A stop request: the owner keeps the first half, the task selects on the second's
/// [`StopSignal::requested`].
pub fn stop_pair() -> (StopOnDrop, StopSignal) {
    let (tx, rx) = tokio::sync::watch::channel(());
    (StopOnDrop(tx), StopSignal(rx))
}

impl StopSignal {
    /// Resolves once the [`StopOnDrop`] is dropped (at once on every later call).
    /// Cancel-safe: for `select!`.
    pub async fn requested(&mut self) {
        // Nothing is ever sent: `changed` only returns, with an error, when the sender is gone.
        while self.0.changed().await.is_ok() {}
    }
}

pin_project_lite::pin_project! {
    /// `fut`, holding `guard` until `fut` completes (or the whole is dropped).
    ///
    /// A struct, not `async move { let out = fut.await; drop(guard); out }`: such a block
    /// keeps the captured future and the future being awaited in separate slots of its state,
    /// so every wrapping layer doubled the task. Measured with dhat: an RTMP player's task was
    /// 9,984 bytes for a 2,600-byte connection future behind two such layers.
    pub struct Holding<F, G> {
        #[pin]
        fut: F,
        guard: Option<G>,
    }
}

impl<F, G> Holding<F, G> {
    pub fn new(fut: F, guard: G) -> Holding<F, G> {
        Holding {
            fut,
            guard: Some(guard),
        }
    }
}

impl<F: Future, G> Future for Holding<F, G> {
    type Output = F::Output;

    fn poll(
        self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<F::Output> {
        let this = self.project();
        let out = std::task::ready!(this.fut.poll(cx));
        this.guard.take();
        std::task::Poll::Ready(out)
    }
}

impl Drop for Token {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// On tokio's paused clock: the sleeps and deadlines below take no real time, and the
    /// elapsed times are exact.
    #[tokio::test(start_paused = true)]
    async fn waits_for_tasks_and_tokens_until_the_deadline() {
        let ms = Duration::from_millis;
        let t = Tracker::default();
        assert!(t.wait(Instant::now()).await, "empty at once");
        let token = t.token();
        t.spawn(tokio::time::sleep(ms(400)));
        assert_eq!(t.len(), 2);
        let start = Instant::now();
        assert!(!t.wait(start + ms(200)).await, "deadline");
        assert_eq!(start.elapsed(), ms(200));
        drop(token);
        assert!(t.wait(start + ms(5000)).await);
        let took = start.elapsed();
        assert_eq!(took, ms(400), "woken when the task ended");
        // An aborted task no longer counts.
        let h = t.spawn(std::future::pending::<()>());
        h.abort();
        assert!(t.wait(Instant::now() + Duration::from_secs(1)).await);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stop_is_requested_when_its_owner_drops_it() {
        let (owner, mut signal) = stop_pair();
        let waiting = tokio::spawn(async move {
            signal.requested().await;
            // Asked again after the stop: still stopped, at once.
            signal.requested().await;
            Instant::now()
        });
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert!(!waiting.is_finished(), "no stop while the owner holds it");
        let dropped = Instant::now();
        drop(owner);
        assert_eq!(waiting.await.unwrap(), dropped);
    }

    #[test]
    fn workers_shape_the_runtime() {
        use tokio::runtime::RuntimeFlavor;
        let one = runtime_builder(1).build().unwrap();
        assert_eq!(one.handle().runtime_flavor(), RuntimeFlavor::CurrentThread);
        let three = runtime_builder(3).build().unwrap();
        assert_eq!(three.handle().runtime_flavor(), RuntimeFlavor::MultiThread);
        assert_eq!(three.metrics().num_workers(), 3);
        let auto = runtime_builder(0).build().unwrap();
        assert_eq!(auto.handle().runtime_flavor(), RuntimeFlavor::MultiThread);
        // Every driver is on: a timer and a socket work on the one-thread runtime.
        one.block_on(async {
            tokio::time::sleep(Duration::from_millis(1)).await;
            tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        });
    }
}
