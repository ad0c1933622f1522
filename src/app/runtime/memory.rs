//! Giving memory back after load (issue 12; DESIGN.md §7: within 2 MiB of fresh idle).
//!
//! Per-player buffers shrink after a burst (`hub::queue::shrunk_capacity`), but glibc's
//! malloc keeps freed heap pages (in every arena) until asked: after 1000 players left, a
//! process idle at 4 MiB stayed at 50 MiB. So, on glibc, `malloc_trim(0)` runs a few seconds
//! after the number of connections fell well below the highest it reached since the last
//! trim; it hands free pages of every arena back (MADV_DONTNEED) and costs well under a
//! millisecond per trim at that size. The following checks trim again ([`FOLLOW_UPS`]).
//!
//! `malloc_trim` cannot give back a page that holds a chunk in use, and glibc's per-thread
//! cache (tcache: up to 7 freed chunks of each size up to 1032 bytes, per thread) counts as
//! in use. After 1000 players left, the worker threads' caches held chunks from all over the
//! pages the players had used: measured 6.8 MiB 20 s after (idle 4.5 MiB), and 4.8 MiB with
//! the cache turned off (`GLIBC_TUNABLES=glibc.malloc.tcache_count=0`). So each trim also
//! asks every runtime thread to cycle its cache once ([`on_thread_park`],
//! [`flush_thread_cache`]): the chunks it held go back to the arena and the cache is
//! refilled with chunks just taken from it, which lie together. Measured: 5.6 MiB 20 s
//! after with `workers = 0` (two workers here), 4.6 MiB with `workers = 1` (idle 4.1).
//!
//! musl (the board builds) has no `malloc_trim`. Measured on the x86_64 board build, 1000
//! RTMP players, 20 s after they left (docs/bench-musl.md):
//! - musl's malloc (mallocng): 8.7 KiB per player, 10.7 MiB after (idle 2.4): it unmaps a
//!   group of slots only when every slot is free, and the stream's frames keep a few in each;
//! - mimalloc: 6.8 KiB per player but 12.4 MiB idle, +110 KB of binary: not taken;
//! - dlmalloc (the `dlmalloc` feature, a default one: every board): 5.9 KiB per player. On
//!   the crate's own system memory it kept everything (8.4 MiB after): its regions merged
//!   into one segment, of which only the top can go back. On regions of its own
//!   ([`heap`]'s `Regions`), every region the players left is unmapped by the trim: 2.8 MiB
//!   after (idle 2.4).

use crate::app::shared::Context;
use std::cell::Cell;
use std::sync::atomic::{AtomicU32, Ordering};
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

/// Bumped by every [`trim`]: each runtime thread cycles its malloc cache once per bump.
static FLUSH_EPOCH: AtomicU32 = AtomicU32::new(0);

thread_local! {
    /// The [`FLUSH_EPOCH`] this thread last cycled its cache for.
    static FLUSHED: Cell<u32> = const { Cell::new(0) };
}

/// The runtime's `on_thread_park` hook (`tasks::runtime_builder`): when a [`trim`] asked for
/// it since this thread's last park, cycles this thread's malloc cache. Otherwise one atomic
/// load; a thread parks each time it runs out of work.
pub fn on_thread_park() {
    cycle_if_asked(&FLUSH_EPOCH);
}

/// Cycles this thread's malloc cache if `epoch` moved since it last did; whether it did.
fn cycle_if_asked(epoch: &AtomicU32) -> bool {
    let epoch = epoch.load(Ordering::Relaxed);
    let asked = FLUSHED.with(|f| f.replace(epoch)) != epoch;
    if asked {
        flush_thread_cache();
    }
    asked
}

/// Hands the chunks in this thread's glibc cache (tcache) back to the arena, so that
/// `malloc_trim` can return their pages; the cache is left holding chunks just taken from
/// the arena instead.
///
/// glibc frees a chunk into the cache while the cache's bin for its size has room (7 by
/// default, `glibc.malloc.tcache_count`) and into the arena otherwise. So, for each size up
/// to the cache's largest (1032 bytes), this takes 16 chunks (the cached ones first,
/// then the arena's), 16 more from the arena, frees the second set (it refills the
/// cache) and then the first (the cache is full: to the arena). Sizes step by 8 bytes, the
/// smallest chunk alignment (32-bit targets), so every bin is met. About 8,000 allocations:
/// 0.4-0.6 ms measured in a test build.
pub fn flush_thread_cache() {
    /// Chunks taken per size and set: above the default cache depth of 7.
    const DEPTH: usize = 16;
    /// glibc's largest cached request size on 64-bit targets (`tcache_max_bytes`).
    const LARGEST: usize = 1032;
    let mut held: Vec<Vec<u8>> = Vec::with_capacity(2 * DEPTH);
    for size in (8..=LARGEST).step_by(8) {
        // black_box: an allocation nobody reads may be optimised away with its free.
        held.extend((0..2 * DEPTH).map(|_| std::hint::black_box(Vec::with_capacity(size))));
        held.truncate(DEPTH);
        held.clear();
    }
}

/// Returns free heap pages to the system (glibc), after cycling this thread's cache and
/// asking the runtime's other threads to cycle theirs when they next park (the follow-up
/// trims return what they gave back).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
pub fn trim() {
    FLUSH_EPOCH.fetch_add(1, Ordering::Relaxed);
    on_thread_park();
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

/// Others give freed memory back by themselves.
#[cfg(not(any(
    all(target_os = "linux", target_env = "gnu"),
    all(target_env = "musl", feature = "dlmalloc")
)))]
pub fn trim() {}

/// musl: dlmalloc, the board builds' global allocator (`main.rs`), and its trim; its tests
/// run on every Linux build.
#[cfg(any(
    all(target_env = "musl", feature = "dlmalloc"),
    all(test, target_os = "linux")
))]
mod heap;
#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
pub use heap::{trim, Heap};

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

    #[test]
    fn a_thread_cycles_its_cache_once_per_request() {
        // An epoch of the test's own (the server's is bumped by other tests' trims), on a
        // thread of its own (the last epoch seen is per thread).
        static EPOCH: AtomicU32 = AtomicU32::new(0);
        std::thread::spawn(|| {
            assert!(!cycle_if_asked(&EPOCH), "nothing asked yet");
            for _ in 0..3 {
                EPOCH.fetch_add(1, Ordering::Relaxed);
                let t = std::time::Instant::now();
                assert!(cycle_if_asked(&EPOCH));
                eprintln!("one cache cycle took {:?}", t.elapsed());
                assert!(!cycle_if_asked(&EPOCH), "once per request");
            }
        })
        .join()
        .unwrap();
    }
}
