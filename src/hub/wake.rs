//! The tasks of a source's consumers that wait, and when to wake them.
//!
//! A consumer that found nothing to read waits for the next append. A consumer that merges
//! its writes (`mw_latency`, SRS's `mw_sleep`) waits for its next write time instead, and is
//! woken by the first append at or after it: the publisher's frames are the clock, so a
//! thousand players merging on one stream arm no timer each (the grid of
//! `app::runtime::merge` makes their times equal, and one append wakes them together). When
//! no append comes (a publisher that paused with frames still to send), the hub's periodic
//! [`crate::hub::Hub::wake_due`] wakes them; unpublishing wakes everyone.

use std::task::Waker;
use std::time::Instant;

/// Where a consumer's waker is registered (kept by the consumer, under its own lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Registered {
    #[default]
    No,
    /// In `waiting`, in the given round of it.
    Waiting(usize),
    /// In `deferred` for this time, in the given round of it.
    Deferred(usize, Instant),
}

/// The waiting consumers of one source (under the source's lock).
#[derive(Debug, Default)]
pub struct Wakers {
    /// Woken by the next append.
    waiting: Vec<Waker>,
    /// Woken by the first append at or after their time.
    deferred: Vec<(Instant, Waker)>,
    /// The earliest time in `deferred`.
    deferred_min: Option<Instant>,
    /// Counts the times `waiting` was emptied, so that a consumer polled again before it
    /// was woken registers once.
    waiting_round: usize,
    /// The same for `deferred`.
    deferred_round: usize,
}

impl Wakers {
    /// Registers a consumer that waits for the next append.
    pub fn wait(&mut self, reg: &mut Registered, waker: &Waker) {
        if *reg != Registered::Waiting(self.waiting_round) {
            *reg = Registered::Waiting(self.waiting_round);
            self.waiting.push(waker.clone());
        }
    }

    /// Registers a consumer that waits for the first append at or after `at`.
    pub fn wait_until(&mut self, reg: &mut Registered, at: Instant, waker: &Waker) {
        if *reg != Registered::Deferred(self.deferred_round, at) {
            *reg = Registered::Deferred(self.deferred_round, at);
            self.deferred.push((at, waker.clone()));
            self.deferred_min = Some(self.deferred_min.map_or(at, |m| m.min(at)));
        }
    }

    /// Whether an append now has anyone to wake (`now` is read only if someone waits for
    /// a time).
    pub fn has_due(&self, now: impl FnOnce() -> Instant) -> bool {
        !self.waiting.is_empty() || self.deferred_min.is_some_and(|m| now() >= m)
    }

    /// Takes the wakers an append at `now` wakes: every waiting one, and the deferred ones
    /// whose time came.
    pub fn take_due(&mut self, now: Instant) -> Vec<Waker> {
        let mut due = std::mem::take(&mut self.waiting);
        if !due.is_empty() {
            self.waiting_round = self.waiting_round.wrapping_add(1);
        }
        self.take_deferred(now, &mut due);
        due
    }

    /// Moves the deferred wakers whose time came into `due` (also when no append came: the
    /// stream's publisher paused with frames still to send).
    pub fn take_deferred(&mut self, now: Instant, due: &mut Vec<Waker>) {
        if self.deferred_min.is_some_and(|m| now >= m) {
            let mut min = None;
            let all = std::mem::take(&mut self.deferred);
            for (at, w) in all {
                if at <= now {
                    due.push(w);
                } else {
                    min = Some(min.map_or(at, |m: Instant| m.min(at)));
                    self.deferred.push((at, w));
                }
            }
            self.deferred_min = min;
            self.deferred_round = self.deferred_round.wrapping_add(1);
        }
    }

    /// Takes every waker (publish and unpublish wake everyone).
    pub fn take_all(&mut self) -> Vec<Waker> {
        let mut all = std::mem::take(&mut self.waiting);
        all.extend(
            std::mem::take(&mut self.deferred)
                .into_iter()
                .map(|(_, w)| w),
        );
        self.deferred_min = None;
        self.waiting_round = self.waiting_round.wrapping_add(1);
        self.deferred_round = self.deferred_round.wrapping_add(1);
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::task::Wake;
    use std::time::Duration;

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn waker() -> (Arc<Count>, Waker) {
        let c = Arc::new(Count(AtomicUsize::new(0)));
        (c.clone(), Waker::from(c))
    }

    #[test]
    fn a_consumer_polled_twice_is_registered_once_per_round() {
        let mut w = Wakers::default();
        let (count, waker) = waker();
        let mut reg = Registered::No;
        w.wait(&mut reg, &waker);
        w.wait(&mut reg, &waker);
        let due = w.take_due(Instant::now());
        assert_eq!(due.len(), 1);
        due.into_iter().for_each(Waker::wake);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        // The next round registers again.
        w.wait(&mut reg, &waker);
        assert_eq!(w.take_due(Instant::now()).len(), 1);
        assert!(w.take_due(Instant::now()).is_empty());
    }

    #[test]
    fn deferred_consumers_wake_on_the_first_append_at_or_after_their_time() {
        let mut w = Wakers::default();
        let t0 = Instant::now();
        let at = t0 + Duration::from_millis(350);
        let later = t0 + Duration::from_millis(700);
        let mut regs = [Registered::No; 3];
        let (_, a) = waker();
        w.wait_until(&mut regs[0], at, &a);
        w.wait_until(&mut regs[0], at, &a); // polled again: once
        w.wait_until(&mut regs[1], at, &a);
        w.wait_until(&mut regs[2], later, &a);
        // (append time, woken)
        let cases = [
            (t0 + Duration::from_millis(100), 0),
            (at - Duration::from_millis(1), 0),
            (at, 2),
            (at + Duration::from_millis(10), 0),
            (later + Duration::from_millis(5), 1),
        ];
        for (now, want) in cases {
            assert_eq!(w.has_due(|| now), want > 0, "{:?}", now - t0);
            assert_eq!(w.take_due(now).len(), want, "{:?}", now - t0);
        }
        assert!(!w.has_due(|| later + Duration::from_secs(9)));

        // No append: the periodic check takes only the deferred whose time came.
        let (_, b) = waker();
        let mut r = [Registered::No; 2];
        w.wait(&mut r[0], &b);
        w.wait_until(&mut r[1], at, &b);
        let mut due = Vec::new();
        w.take_deferred(at - Duration::from_millis(1), &mut due);
        assert!(due.is_empty());
        w.take_deferred(at, &mut due);
        assert_eq!(due.len(), 1);
        assert_eq!(
            w.take_due(at).len(),
            1,
            "the one waiting for an append is still there"
        );
    }

    #[test]
    fn publish_and_unpublish_wake_everyone() {
        let mut w = Wakers::default();
        let (_, a) = waker();
        let mut r1 = Registered::No;
        let mut r2 = Registered::No;
        w.wait(&mut r1, &a);
        w.wait_until(&mut r2, Instant::now() + Duration::from_secs(60), &a);
        assert_eq!(w.take_all().len(), 2);
        assert!(!w.has_due(Instant::now));
        // Registered again after the wake-up.
        w.wait(&mut r1, &a);
        assert_eq!(w.take_all().len(), 1);
    }
}
