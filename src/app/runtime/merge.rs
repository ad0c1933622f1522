//! Merged writes on one clock. With `mw_latency` (SRS's `mw_sleep`) a player sends what its
//! queue gathered once per period; if each player's period started when it joined, 1000
//! players would wake at 1000 different instants per period, and the runtime's threads would
//! sleep and wake (a context switch each) as often. Instead every player's next merged write
//! falls on one process-wide grid of `mw_latency` periods, and the stream's first frame at or
//! after that time wakes every player waiting for it (`hub::wake`: no timer per player): the
//! threads do one burst of writes a period and sleep between.
//! Measured at 1000 RTMP players, 350 ms: context switches were the largest single cost
//! (`finish_task_switch`, 18 % of the server's samples) before the grid.
//!
//! RTMP players also wait, from their time, for more than `play.mw_msgs` queued messages, as
//! SRS 6 does (8 by default, 0 with `min_latency`): at `mw_latency = 0` a player writes
//! every ninth message instead of every one (one syscall and one wake-up per player for
//! several frames), at most [`MW_MSGS_WAIT`] late.

use crate::hub::WriteTime;
use std::sync::OnceLock;
use std::time::Duration;
use tokio::time::Instant;

/// The next instant on the `mw` grid strictly after `now`: at most `mw` away, and the same for
/// every caller within one period. `mw` zero: `now`.
pub fn next_merge(now: Instant, mw: Duration) -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let period = mw.as_nanos();
    if period == 0 {
        return now;
    }
    let epoch = *EPOCH.get_or_init(|| now);
    let since = now.saturating_duration_since(epoch).as_nanos();
    let periods = since / period + 1;
    // Past ~584 years of uptime the nanoseconds would not fit: then one period from now.
    match u64::try_from(periods * period) {
        Ok(ns) => epoch + Duration::from_nanos(ns),
        Err(_) => now + mw,
    }
}

/// When a merging player (or viewer) reads next: on the grid ([`next_merge`]), or at once
/// when its last read stopped at a batch bound with `more` to read (it is behind: the rest
/// of a GOP burst, a stall, a stream of more than one batch per period), so that a backlog
/// goes out in back-to-back writes and no bitrate is held to one batch per `mw`. `None`
/// also for `mw` zero.
pub fn next_write(now: Instant, mw: Duration, more: bool) -> Option<Instant> {
    (!mw.is_zero() && !more).then(|| next_merge(now, mw))
}

/// How long past its time a merged write waits for more than `mw_msgs` messages (SRS waits
/// without a limit; a camera sending a frame a second would be eight seconds late).
pub const MW_MSGS_WAIT: Duration = Duration::from_millis(350);

/// When a merging RTMP player reads next: [`next_write`]'s time, then more than `mw_msgs`
/// messages or [`MW_MSGS_WAIT`] past it. `None` (at once) after a read that left more, and
/// for `mw` and `mw_msgs` both zero (SRS's `min_latency` with `mw_latency = 0`).
pub fn next_player_write(
    now: Instant,
    mw: Duration,
    mw_msgs: u32,
    more: bool,
) -> Option<WriteTime> {
    if more || (mw.is_zero() && mw_msgs == 0) {
        return None;
    }
    let at = next_merge(now, mw);
    Some(WriteTime {
        at: at.into_std(),
        more_than: mw_msgs,
        until: (at + MW_MSGS_WAIT).into_std(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn players_of_one_period_share_their_next_write() {
        let mw = Duration::from_millis(350);
        let t0 = Instant::now();
        let first = next_merge(t0, mw);
        assert!(first > t0 && first - t0 <= mw);
        // Anyone asking within the same period gets the same instant.
        for ms in [1, 50, 200] {
            let now = first - mw + Duration::from_millis(ms);
            if now >= t0 {
                assert_eq!(next_merge(now, mw), first, "{ms} ms into the period");
            }
        }
        // Asked at the grid point itself (a write just done there): the next one.
        assert_eq!(next_merge(first, mw), first + mw);
        assert_eq!(next_merge(first + Duration::from_millis(1), mw), first + mw);
        assert_eq!(next_merge(t0, Duration::ZERO), t0);
        // Another period length keeps the bound.
        let other = Duration::from_millis(100);
        let n = next_merge(first, other);
        assert!(n > first && n - first <= other);
    }

    #[tokio::test(start_paused = true)]
    async fn a_batch_that_left_more_is_followed_at_once() {
        let mw = Duration::from_millis(350);
        let now = Instant::now();
        // (more left to read, mw, expected)
        let cases = [
            (false, mw, Some(next_merge(now, mw))),
            (true, mw, None),
            (false, Duration::ZERO, None),
        ];
        for (more, mw, want) in cases {
            assert_eq!(next_write(now, mw, more), want, "{more} {mw:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn players_wait_for_mw_msgs_from_their_time_and_not_long_past_it() {
        let mw = Duration::from_millis(350);
        let now = Instant::now();
        let zero = Duration::ZERO;
        // (mw, mw_msgs, more left, expected (at, more_than, until))
        let at = next_merge(now, mw);
        let cases = [
            (mw, 8, false, Some((at, 8, at + MW_MSGS_WAIT))),
            (mw, 0, false, Some((at, 0, at + MW_MSGS_WAIT))),
            (zero, 8, false, Some((now, 8, now + MW_MSGS_WAIT))),
            (zero, 0, false, None),
            (mw, 8, true, None),
            (zero, 8, true, None),
        ];
        for (mw, msgs, more, want) in cases {
            let want = want.map(
                |(at, more_than, until): (Instant, u32, Instant)| WriteTime {
                    at: at.into_std(),
                    more_than,
                    until: until.into_std(),
                },
            );
            assert_eq!(
                next_player_write(now, mw, msgs, more),
                want,
                "{mw:?} {msgs} {more}"
            );
        }
    }
}
