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

/// When a merged write reads next (SRS's `mw_sleep` and `mw_msgs`): nothing before `at`; from
/// `at`, the first append that leaves more than `more_than` log entries unread, or `until`,
/// whichever comes first. `more_than` 0: the first append at or after `at`.
///
/// SRS 6 (`SrsLiveConsumer::wait`) sends an RTMP player's queue once it holds more than
/// `mw_msgs` messages (8 by default, 0 with `min_latency`) spanning more than `mw_latency`,
/// with no time limit; `until` bounds the wait so that a stream of a frame a second is not
/// held for eight seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteTime {
    pub at: Instant,
    pub more_than: u32,
    pub until: Instant,
}

impl WriteTime {
    /// Nothing before `at`, then the first append.
    pub fn at(at: Instant) -> WriteTime {
        WriteTime {
            at,
            more_than: 0,
            until: at,
        }
    }
}

/// Where a consumer's waker is registered (kept by the consumer, under its own lock).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Registered {
    #[default]
    No,
    /// In `waiting`, in the given round of it.
    Waiting(usize),
    /// In `deferred` for this time, in the given round of it.
    Deferred(usize, Instant),
    /// In `counted` for this entry number and time, in the given round of it.
    Counted(usize, u64, Instant),
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
    /// Woken by the append of their entry number, or at their time at the latest.
    counted: Vec<(u64, Instant, Waker)>,
    /// The lowest entry number and the earliest time in `counted`.
    counted_min: Option<(u64, Instant)>,
    /// Counts the times `waiting` was emptied, so that a consumer polled again before it
    /// was woken registers once.
    waiting_round: usize,
    /// The same for `deferred`.
    deferred_round: usize,
    /// The same for `counted`.
    counted_round: usize,
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

    /// Registers a consumer that waits until the log's head reaches `seq` (the entry
    /// numbered `seq - 1` was appended), or until `until` at the latest.
    pub fn wait_count(&mut self, reg: &mut Registered, seq: u64, until: Instant, waker: &Waker) {
        if *reg != Registered::Counted(self.counted_round, seq, until) {
            *reg = Registered::Counted(self.counted_round, seq, until);
            self.counted.push((seq, until, waker.clone()));
            self.counted_min = Some(match self.counted_min {
                Some((s, t)) => (s.min(seq), t.min(until)),
                None => (seq, until),
            });
        }
    }

    /// The earliest time anyone waits for.
    fn earliest(&self) -> Option<Instant> {
        match (self.deferred_min, self.counted_min.map(|(_, t)| t)) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Whether an append that made the log's head `head` has anyone to wake (`now` is read
    /// only if someone waits for a time).
    pub fn has_due(&self, head: u64, now: impl FnOnce() -> Instant) -> bool {
        !self.waiting.is_empty()
            || self.counted_min.is_some_and(|(s, _)| head >= s)
            || self.earliest().is_some_and(|m| now() >= m)
    }

    /// Takes the wakers an append at `now` that made the log's head `head` wakes: every
    /// waiting one, the deferred ones whose time came and the counted ones whose entry came.
    pub fn take_due(&mut self, head: u64, now: Instant) -> Vec<Waker> {
        let mut due = std::mem::take(&mut self.waiting);
        if !due.is_empty() {
            self.waiting_round = self.waiting_round.wrapping_add(1);
        }
        self.take_expired(Some(head), now, &mut due);
        due
    }

    /// Moves the wakers whose time came into `due` (also when no append came: the stream's
    /// publisher paused with frames still to send).
    pub fn take_deferred(&mut self, now: Instant, due: &mut Vec<Waker>) {
        self.take_expired(None, now, due);
    }

    fn take_expired(&mut self, head: Option<u64>, now: Instant, due: &mut Vec<Waker>) {
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
        let reached = |seq: u64| head.is_some_and(|h| h >= seq);
        if self
            .counted_min
            .is_some_and(|(s, t)| reached(s) || now >= t)
        {
            let mut min: Option<(u64, Instant)> = None;
            let all = std::mem::take(&mut self.counted);
            for (seq, until, w) in all {
                if reached(seq) || now >= until {
                    due.push(w);
                } else {
                    min = Some(min.map_or((seq, until), |(s, t)| (s.min(seq), t.min(until))));
                    self.counted.push((seq, until, w));
                }
            }
            self.counted_min = min;
            self.counted_round = self.counted_round.wrapping_add(1);
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
        all.extend(
            std::mem::take(&mut self.counted)
                .into_iter()
                .map(|(_, _, w)| w),
        );
        self.deferred_min = None;
        self.counted_min = None;
        self.waiting_round = self.waiting_round.wrapping_add(1);
        self.deferred_round = self.deferred_round.wrapping_add(1);
        self.counted_round = self.counted_round.wrapping_add(1);
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
        let due = w.take_due(0, Instant::now());
        assert_eq!(due.len(), 1);
        due.into_iter().for_each(Waker::wake);
        assert_eq!(count.0.load(Ordering::Relaxed), 1);
        // The next round registers again.
        w.wait(&mut reg, &waker);
        assert_eq!(w.take_due(0, Instant::now()).len(), 1);
        assert!(w.take_due(0, Instant::now()).is_empty());
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
            assert_eq!(w.has_due(0, || now), want > 0, "{:?}", now - t0);
            assert_eq!(w.take_due(0, now).len(), want, "{:?}", now - t0);
        }
        assert!(!w.has_due(0, || later + Duration::from_secs(9)));

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
            w.take_due(0, at).len(),
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
        assert!(!w.has_due(u64::MAX, Instant::now));
        // Registered again after the wake-up.
        w.wait(&mut r1, &a);
        assert_eq!(w.take_all().len(), 1);
    }

    #[test]
    fn counted_consumers_wake_at_their_entry_or_their_time() {
        let mut w = Wakers::default();
        let t0 = Instant::now();
        let until = t0 + Duration::from_millis(350);
        let (_, a) = waker();
        let mut regs = [Registered::No; 3];
        w.wait_count(&mut regs[0], 10, until, &a);
        w.wait_count(&mut regs[0], 10, until, &a); // polled again: once
        w.wait_count(&mut regs[1], 12, until, &a);
        w.wait_count(&mut regs[2], 50, until + Duration::from_secs(5), &a);
        // (head after the append, time, woken)
        let cases = [(9, t0, 0), (10, t0, 1), (11, t0, 0), (13, t0, 1)];
        for (head, now, want) in cases {
            assert_eq!(w.has_due(head, || now), want > 0, "head {head}");
            assert_eq!(w.take_due(head, now).len(), want, "head {head}");
        }
        // The last one: its time, with no append (the periodic check).
        let mut due = Vec::new();
        w.take_deferred(until, &mut due);
        assert!(due.is_empty());
        w.take_deferred(until + Duration::from_secs(5), &mut due);
        assert_eq!(due.len(), 1);
        assert!(!w.has_due(u64::MAX - 1, || until + Duration::from_secs(9)));
        // Registered again after the wake-up; publish and unpublish take it too.
        w.wait_count(&mut regs[0], 70, until, &a);
        assert_eq!(w.take_all().len(), 1);
    }
}
