//! Giving memory back after load (issue 12; DESIGN.md §7: within 2 MiB of fresh idle).
//!
//! Per-player buffers shrink after a burst (`hub::queue::shrunk_capacity`), but glibc's
//! malloc keeps freed heap pages (in every arena) until asked: after 1000 players left, a
//! process idle at 4 MiB stayed at 50 MiB. So, on glibc, `malloc_trim(0)` runs a few seconds
//! after the number of connections fell well below the highest it reached since the last
//! trim; it hands free pages of every arena back (MADV_DONTNEED) and costs well under a
//! millisecond per trim at that size. The following checks trim again ([`FOLLOW_UPS`]).
//! Measured with `srsd bench --pid --after` (docs/bench.md): 6.6 MiB 20 s after 1000
//! players left (idle 4.4 MiB; 6.9 MiB with one trim; 48 MiB before any trim). What stays
//! is in the worker threads' arenas: the stream's new frames, allocated into the holes the
//! players left, keep those pages in use.
//!
//! musl (the board builds) has no `malloc_trim`, and its malloc was measured keeping what
//! the players used (x86_64 board build: idle 2.4 MiB, 10.7 MiB 20 s after 1000 players
//! left): the task does nothing there. Giving it back on musl needs another allocator or
//! fewer, longer-lived allocations per player; not done yet (docs/bench-musl.md).

use crate::app::shared::Context;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

/// How often the connection count is looked at.
const CHECK: Duration = Duration::from_secs(5);
/// Connections that must have gone since the high mark before a trim.
const DROP_MIN: usize = 32;

/// Whether to trim, given the highest connection count since the last trim and the count
/// now: when at least [`DROP_MIN`] and at least a quarter of them have gone, or all of them.
pub fn should_trim(high: usize, now: usize) -> bool {
    let gone = high.saturating_sub(now);
    (gone >= DROP_MIN && gone * 4 >= high) || (now == 0 && gone > 0)
}

/// Checks after a trim that trim again. The streams go on allocating frames after the
/// players left, into the free chunks that the players' buffers left all over the heap: the
/// first trim finds pages still in use that the next ones find free.
const FOLLOW_UPS: u32 = 4;

/// Watches the connection count and trims the heap after load (see the module doc).
pub async fn run(ctx: Arc<Context>) {
    let mut tick = tokio::time::interval(CHECK);
    let mut high = 0;
    let mut follow_ups = 0;
    loop {
        tick.tick().await;
        let now = ctx.connections.load(Ordering::Relaxed);
        high = high.max(now);
        if should_trim(high, now) {
            trim();
            high = now;
            follow_ups = FOLLOW_UPS;
        } else if follow_ups > 0 {
            trim();
            follow_ups -= 1;
        }
    }
}

/// Returns free heap pages to the system (glibc).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim() {
    extern "C" {
        // glibc, <malloc.h>: int malloc_trim(size_t pad). Always safe to call.
        fn malloc_trim(pad: usize) -> std::ffi::c_int;
    }
    // SAFETY: malloc_trim takes no pointers and only works on malloc's own state, under
    // malloc's own locks.
    unsafe {
        malloc_trim(0);
    }
}

/// musl and others give freed memory back by themselves.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
pub fn trim() {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trims_after_a_large_drop_only() {
        // (high since the last trim, now, trim?)
        let cases = [
            (0, 0, false),
            (1, 0, true),
            (10, 5, false),
            (1000, 990, false),
            (1000, 968, false),
            (1000, 750, true),
            (100, 70, false),
            (100, 68, true),
            (40, 8, true),
            (2000, 1600, false),
            (2000, 1500, true),
        ];
        for (high, now, want) in cases {
            assert_eq!(should_trim(high, now), want, "{high} -> {now}");
        }
        trim();
    }
}
