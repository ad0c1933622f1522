//! [`Quiet`]: a future polled again only when its own waker fired; [`PollGate`]: the same for
//! what a loop polls through a closure (a socket's read side, a timer).
//!
//! A player's loop waits on its queue, its socket and the rare signals (server shutdown, a
//! kick from the HTTP API) at once, and is woken a few times a second per player for the
//! queue alone. Polling a pending `watch::Receiver::changed()` or `Notify::notified()` again
//! takes the lock of its waiter list, and the shutdown channel's list is one for every
//! connection of the server: a lock whose cache line crosses between the worker threads on
//! every player's every batch. Behind a `Quiet`, such a future is polled once to register,
//! then again only after it woke the task (or the task's waker changed): between those, a
//! poll is one atomic swap. The socket's read side and the connection's timer cost a lock
//! or a timer-wheel check per poll as well, and sit behind a `PollGate`.

use pin_project_lite::pin_project;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Wake, Waker};

pin_project! {
    /// Wraps `F` (see the module doc). Its output is `F`'s; it must not be polled after it.
    pub struct Quiet<F> {
        #[pin]
        fut: F,
        gate: PollGate,
    }
}

/// What a [`PollGate`]'s waker wakes: it notes that it fired, then wakes the task.
#[derive(Default)]
struct Signal {
    fired: AtomicBool,
    task: Mutex<Option<Waker>>,
}

impl Wake for Signal {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.fired.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = task.as_ref() {
            w.wake_by_ref();
        }
    }
}

impl<F> Quiet<F> {
    pub fn new(fut: F) -> Quiet<F> {
        Quiet {
            fut,
            gate: PollGate::default(),
        }
    }
}

impl<F: Future> Future for Quiet<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = self.project();
        let fut = this.fut;
        this.gate.poll(cx, |cx| fut.poll(cx))
    }
}

/// [`Quiet`] for what is polled through a closure rather than owned: the socket's read side
/// and the connection's timer, polled on every wake-up of a player's loop. Between the
/// wake-ups they caused, a poll is one atomic swap and the closure is not called.
///
/// The closure is polled with the gate's own waker: when the task's waker changed, at the
/// first poll, after its waker fired, after it was ready (what it polls may be ready again
/// at once: a socket with more to read), and after [`PollGate::open`].
#[derive(Default)]
pub struct PollGate {
    signal: Arc<Signal>,
    // The waker the closure is polled with, made once from `signal`.
    waker: Option<Waker>,
    // The task's waker last handed to `signal` (compared without the lock).
    task: Option<Waker>,
}

impl PollGate {
    /// Polls `f` if it may have something (see the type's doc), else `Pending`.
    pub fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        f: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        let same_task = self.task.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if same_task {
            // Cleared before the poll: a wake-up during or after it is not lost.
            if !self.signal.fired.swap(false, Ordering::AcqRel) {
                return Poll::Pending;
            }
        } else {
            *self.signal.task.lock().unwrap_or_else(|p| p.into_inner()) = Some(cx.waker().clone());
            self.task = Some(cx.waker().clone());
            self.signal.fired.store(false, Ordering::Release);
        }
        let signal = &self.signal;
        let waker = self
            .waker
            .get_or_insert_with(|| Waker::from(signal.clone()));
        let r = f(&mut Context::from_waker(waker));
        if r.is_ready() {
            self.open();
        }
        r
    }

    /// The next poll calls the closure whatever fired (what it polls changed: a timer's
    /// new deadline).
    pub fn open(&self) {
        self.signal.fired.store(true, Ordering::Release);
    }
}

/// Why a connection's loop must end, besides its own peer and stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// The server shuts down (its shutdown channel changed or closed).
    Shutdown,
    /// The HTTP API kicked the client (`DELETE /api/v1/clients/ID`).
    Kicked,
}

/// Ends when the server shuts down or `kick` is notified; meant to sit behind a [`Quiet`].
pub async fn stop_signals(
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
    kick: &tokio::sync::Notify,
) -> Stop {
    tokio::select! {
        biased;
        _ = shutdown.changed() => Stop::Shutdown,
        _ = kick.notified() => Stop::Kicked,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A future that counts its polls and is ready once `open` is set; it keeps the last
    /// waker it was given, as a `Notify` does.
    struct Door {
        polls: Arc<AtomicUsize>,
        open: Arc<AtomicBool>,
        waker: Arc<Mutex<Option<Waker>>>,
    }

    impl Future for Door {
        type Output = &'static str;
        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<&'static str> {
            self.polls.fetch_add(1, Ordering::Relaxed);
            if self.open.load(Ordering::Acquire) {
                return Poll::Ready("open");
            }
            *self.waker.lock().unwrap() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[derive(Default)]
    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    #[test]
    fn polls_the_inner_future_only_after_it_woke_the_task() {
        let polls = Arc::new(AtomicUsize::new(0));
        let open = Arc::new(AtomicBool::new(false));
        let inner_waker = Arc::new(Mutex::new(None::<Waker>));
        let mut q = Box::pin(Quiet::new(Door {
            polls: polls.clone(),
            open: open.clone(),
            waker: inner_waker.clone(),
        }));
        let task = Arc::new(Count::default());
        let waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        // The first poll registers; the next ones, with nothing fired, do not reach it.
        for _ in 0..5 {
            assert!(q.as_mut().poll(&mut cx).is_pending());
        }
        assert_eq!(polls.load(Ordering::Relaxed), 1);
        // It fires: the task is woken, and the next poll reaches it.
        open.store(true, Ordering::Release);
        let w = inner_waker.lock().unwrap().take().expect("registered");
        w.wake();
        assert_eq!(task.0.load(Ordering::Relaxed), 1);
        assert_eq!(q.as_mut().poll(&mut cx), Poll::Ready("open"));
        assert_eq!(polls.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_new_task_waker_is_registered_and_woken() {
        let polls = Arc::new(AtomicUsize::new(0));
        let inner_waker = Arc::new(Mutex::new(None::<Waker>));
        let mut q = Box::pin(Quiet::new(Door {
            polls: polls.clone(),
            open: Arc::default(),
            waker: inner_waker.clone(),
        }));
        let first = Arc::new(Count::default());
        let second = Arc::new(Count::default());
        let w1 = Waker::from(first.clone());
        let w2 = Waker::from(second.clone());
        assert!(q.as_mut().poll(&mut Context::from_waker(&w1)).is_pending());
        // Moved to another task: polled again to hand over the new waker.
        assert!(q.as_mut().poll(&mut Context::from_waker(&w2)).is_pending());
        assert_eq!(polls.load(Ordering::Relaxed), 2);
        inner_waker
            .lock()
            .unwrap()
            .take()
            .expect("registered")
            .wake();
        assert_eq!(first.0.load(Ordering::Relaxed), 0);
        assert_eq!(second.0.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_gate_calls_its_closure_after_a_wake_a_ready_or_an_open() {
        let task = Arc::new(Count::default());
        let waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        let mut gate = PollGate::default();
        let mut calls = 0;
        let mut kept: Option<Waker> = None;
        let mut poll =
            |gate: &mut PollGate, ready: bool, calls: &mut usize, kept: &mut Option<Waker>| {
                gate.poll(&mut cx, |cx| {
                    *calls += 1;
                    *kept = Some(cx.waker().clone());
                    if ready {
                        Poll::Ready(())
                    } else {
                        Poll::Pending
                    }
                })
            };
        // First poll: called, and registers.
        assert!(poll(&mut gate, false, &mut calls, &mut kept).is_pending());
        assert!(poll(&mut gate, false, &mut calls, &mut kept).is_pending());
        assert_eq!(calls, 1, "nothing fired: not called");
        // Its waker fires: the task is woken, and the closure called once.
        kept.take().expect("registered").wake();
        assert_eq!(task.0.load(Ordering::Relaxed), 1);
        assert!(poll(&mut gate, true, &mut calls, &mut kept).is_ready());
        assert_eq!(calls, 2);
        // Ready: called again next time (a socket may have more to read at once).
        assert!(poll(&mut gate, false, &mut calls, &mut kept).is_pending());
        assert_eq!(calls, 3);
        assert!(poll(&mut gate, false, &mut calls, &mut kept).is_pending());
        assert_eq!(calls, 3);
        // Opened (a timer's new deadline): called again.
        gate.open();
        assert!(poll(&mut gate, false, &mut calls, &mut kept).is_pending());
        assert_eq!(calls, 4);
    }

    #[tokio::test]
    async fn a_notify_behind_it_still_ends_the_wait() {
        let notify = Arc::new(tokio::sync::Notify::new());
        let n = notify.clone();
        let waiter = tokio::spawn(async move {
            let q = Quiet::new(n.notified());
            tokio::pin!(q);
            // Woken by other work many times before the signal.
            let mut spins = 0;
            loop {
                tokio::select! {
                    biased;
                    _ = &mut q => return spins,
                    _ = tokio::task::yield_now() => spins += 1,
                }
            }
        });
        // The waiter registers, then is woken by its own yields while nothing fired.
        for _ in 0..5 {
            tokio::task::yield_now().await;
        }
        notify.notify_waiters();
        let spins = tokio::time::timeout(std::time::Duration::from_secs(5), waiter)
            .await
            .expect("ended")
            .expect("joined");
        assert!(spins >= 2, "{spins}");
    }
}
