//! The musl builds' heap: dlmalloc behind one lock (musl's own malloc has one lock too), on
//! memory regions of its own ([`Regions`]) so that a trim can unmap what the players left.
//!
//! dlmalloc (the `dlmalloc` crate, 0.2) takes memory from the system in regions of at least
//! its granularity (64 KiB) and gives a region back only when no chunk in it is in use, or
//! the free end of the region that holds its top chunk. With the crate's own system
//! allocator every new region lay just below the previous one and dlmalloc merged the two
//! into one segment, so the heap was one segment: after 1000 players left, nothing but its
//! top could go back (measured: 8.4 MiB 20 s after, the same as at the peak; idle 2.4).
//! [`Regions`] tags each region as a segment of its own, which dlmalloc never merges
//! (`Allocator::alloc`'s flags differ), so a region whose chunks are all free is unmapped
//! at the next [`trim`].

use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
use std::sync::{Mutex, MutexGuard};

/// The system memory under dlmalloc: anonymous private mappings (as the crate's own system
/// allocator makes them), each tagged with flags unlike every other's, so that dlmalloc keeps
/// each as a segment of its own.
struct Regions {
    /// Bytes mapped now.
    mapped: AtomicUsize,
}

impl Regions {
    const fn new() -> Regions {
        Regions {
            mapped: AtomicUsize::new(0),
        }
    }
}

/// The next region's tag. dlmalloc stores a region's flags and compares them, shifted right
/// by one (bit 0 is its "not ours" bit), with a new region's flags before merging the two: a
/// new region's flags have bit 31 set and a stored one's shifted never has, so they never
/// match. The count only makes the tags differ from each other too (it may wrap).
static NEXT_TAG: AtomicU32 = AtomicU32::new(0);

// SAFETY: alloc returns a fresh read-write mapping of `size` bytes or null; the other calls
// act only on ranges dlmalloc got from alloc.
#[allow(unsafe_code)]
unsafe impl dlmalloc::Allocator for Regions {
    fn alloc(&self, size: usize) -> (*mut u8, usize, u32) {
        // SAFETY: a new anonymous mapping; no existing memory is touched.
        let addr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_ANONYMOUS | libc::MAP_PRIVATE,
                -1,
                0,
            )
        };
        if addr == libc::MAP_FAILED {
            return (std::ptr::null_mut(), 0, 0);
        }
        self.mapped.fetch_add(size, Ordering::Relaxed);
        let tag = (NEXT_TAG.fetch_add(1, Ordering::Relaxed) << 1) | (1 << 31);
        (addr.cast(), size, tag)
    }

    fn remap(&self, ptr: *mut u8, old: usize, new: usize, can_move: bool) -> *mut u8 {
        let flags = if can_move { libc::MREMAP_MAYMOVE } else { 0 };
        // SAFETY: `ptr..ptr + old` is a mapping dlmalloc got from alloc.
        let addr = unsafe { libc::mremap(ptr.cast(), old, new, flags) };
        if addr == libc::MAP_FAILED {
            return std::ptr::null_mut();
        }
        self.mapped.fetch_add(new, Ordering::Relaxed);
        self.mapped.fetch_sub(old, Ordering::Relaxed);
        addr.cast()
    }

    fn free_part(&self, ptr: *mut u8, old: usize, new: usize) -> bool {
        // SAFETY: shrinks (or unmaps the tail of) a mapping dlmalloc got from alloc; dlmalloc
        // no longer uses `ptr + new..ptr + old`.
        let done = unsafe {
            libc::mremap(ptr.cast(), old, new, 0) != libc::MAP_FAILED
                || libc::munmap(ptr.add(new).cast(), old - new) == 0
        };
        if done {
            self.mapped.fetch_sub(old - new, Ordering::Relaxed);
        }
        done
    }

    fn free(&self, ptr: *mut u8, size: usize) -> bool {
        // SAFETY: unmaps a whole mapping dlmalloc got from alloc and no longer uses.
        let done = unsafe { libc::munmap(ptr.cast(), size) == 0 };
        if done {
            self.mapped.fetch_sub(size, Ordering::Relaxed);
        }
        done
    }

    fn can_release_part(&self, _flags: u32) -> bool {
        true
    }

    fn allocates_zeros(&self) -> bool {
        true
    }

    fn page_size(&self) -> usize {
        4096
    }
}

#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
struct Locked(dlmalloc::Dlmalloc<Regions>);

// SAFETY: the allocator's raw pointers are only used under the mutex.
#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
#[allow(unsafe_code)]
unsafe impl Send for Locked {}

#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
static HEAP: Mutex<Locked> = Mutex::new(Locked(dlmalloc::Dlmalloc::new_with_allocator(
    Regions::new(),
)));

#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
fn heap() -> MutexGuard<'static, Locked> {
    HEAP.lock().unwrap_or_else(|p| p.into_inner())
}

/// The musl builds' global allocator (`main.rs`): dlmalloc on [`Regions`], behind one lock.
#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
pub struct Heap;

// SAFETY: every call goes to dlmalloc under the lock, with the layout it was given.
#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for Heap {
    unsafe fn alloc(&self, l: std::alloc::Layout) -> *mut u8 {
        heap().0.malloc(l.size(), l.align())
    }
    unsafe fn alloc_zeroed(&self, l: std::alloc::Layout) -> *mut u8 {
        heap().0.calloc(l.size(), l.align())
    }
    unsafe fn dealloc(&self, p: *mut u8, l: std::alloc::Layout) {
        heap().0.free(p, l.size(), l.align())
    }
    unsafe fn realloc(&self, p: *mut u8, l: std::alloc::Layout, new: usize) -> *mut u8 {
        heap().0.realloc(p, l.size(), l.align(), new)
    }
}

/// Gives back the free end of the top region and every region with no chunk in use.
#[cfg(all(target_env = "musl", feature = "dlmalloc"))]
#[allow(unsafe_code)]
pub fn trim() {
    // SAFETY: trim only works on the allocator's own state, under its lock.
    unsafe {
        heap().0.trim(0);
    }
}

#[cfg(test)]
#[allow(unsafe_code)]
mod tests {
    use super::*;

    #[test]
    fn a_region_whose_chunks_are_all_free_is_unmapped() {
        let mut d = dlmalloc::Dlmalloc::new_with_allocator(Regions::new());
        const SIZE: usize = 2048;
        // SAFETY: every pointer freed was allocated by `d` with the same size and alignment.
        unsafe {
            // 4 MiB in chunks the size of a player's larger buffers: many regions.
            let chunks: Vec<*mut u8> = (0..2048).map(|_| d.malloc(SIZE, 8)).collect();
            assert!(chunks.iter().all(|p| !p.is_null()));
            // Taken last, so above the others: it keeps its own region, and with merged
            // regions it would keep the whole heap below it.
            let last = d.malloc(64, 8);
            let peak = d.allocator().mapped.load(Ordering::Relaxed);
            assert!(peak >= 2048 * SIZE, "{peak}");
            for p in chunks {
                d.free(p, SIZE, 8);
            }
            d.trim(0);
            let after = d.allocator().mapped.load(Ordering::Relaxed);
            assert!(after <= 256 * 1024, "{after} of {peak} bytes still mapped");
            d.free(last, 64, 8);
            d.trim(0);
            assert!(d.allocator().mapped.load(Ordering::Relaxed) <= after);
            d.destroy();
        }
    }
}
