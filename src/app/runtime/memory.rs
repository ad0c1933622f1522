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
//! musl (the board builds) has no `malloc_trim`. Measured on the x86_64 board build, 1000
//! RTMP players, 20 s after they left (docs/bench-musl.md):
//! - musl's malloc (mallocng): 8.7 KiB per player, 10.7 MiB after (idle 2.4): it unmaps a
//!   group of slots only when every slot is free, and the stream's frames keep a few in each;
//! - dlmalloc (the `dlmalloc` feature, `Heap`; the default but for mips and mipsel):
//!   5.6 KiB per player, 7.9 MiB after (idle 2.4); it returns its top and wholly free
//!   segments ([`trim`]) but no holes inside them;
//! - mimalloc: 6.8 KiB per player but 12.4 MiB idle, +110 KB of binary: not taken.
//!
//! None gives back the pages of the holes the players left as glibc's trim does; that is
//! still open on musl.

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

/// musl: the heap is dlmalloc's ([`Heap`]); trims its top and unused segments.
#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
#[allow(unsafe_code)]
pub fn trim() {
    // SAFETY: trim only works on the allocator's own state, under its lock.
    unsafe {
        heap().trim(0);
    }
}

/// Others give freed memory back by themselves.
#[cfg(not(any(
    all(target_os = "linux", target_env = "gnu"),
    all(target_env = "musl", feature = "dlmalloc")
)))]
pub fn trim() {}

#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
struct Locked(dlmalloc::Dlmalloc);

// SAFETY: the allocator's raw pointers are only used under the mutex.
#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
#[allow(unsafe_code)]
unsafe impl Send for Locked {}

#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
static HEAP: std::sync::Mutex<Locked> = std::sync::Mutex::new(Locked(dlmalloc::Dlmalloc::new()));

#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
fn heap() -> std::sync::MutexGuard<'static, Locked> {
    HEAP.lock().unwrap_or_else(|p| p.into_inner())
}

#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
impl std::ops::Deref for Locked {
    type Target = dlmalloc::Dlmalloc;
    fn deref(&self) -> &dlmalloc::Dlmalloc {
        &self.0
    }
}

#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
impl std::ops::DerefMut for Locked {
    fn deref_mut(&mut self) -> &mut dlmalloc::Dlmalloc {
        &mut self.0
    }
}

/// The musl builds' global allocator: dlmalloc behind one lock (musl's own malloc has one
/// lock too).
#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
pub struct Heap;

// SAFETY: every call goes to dlmalloc under the lock, with the layout it was given.
#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for Heap {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        heap().malloc(l.size(), l.align())
    }
    unsafe fn alloc_zeroed(&self, l: std::alloc::Layout) -> *mut u8 {
        heap().calloc(l.size(), l.align())
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        heap().free(p, l.size(), l.align())
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, new: usize) -> *mut u8 {
        heap().realloc(p, l.size(), l.align(), new)
    }
}

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
