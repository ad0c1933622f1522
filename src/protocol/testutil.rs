//! Deterministic fuzzing for unit tests: a seeded PRNG and byte mutations.
//!
//! No fuzzing crate: a failure must reproduce from the test output alone, on every board
//! (the unit tests also run under qemu-user), so cases come from xorshift64* with fixed seeds
//! and every failure names its target, seed and case index. [`fuzz`] runs each case with its
//! own generator, seeded from (seed, case), so one case replays without the ones before it.
//!
//! Iteration counts are small by default (debug builds, qemu is 10-20x slower);
//! `SRSD_FUZZ_ITERS=N` multiplies them by N for a longer local run.

use std::panic::{self, AssertUnwindSafe};

/// xorshift64* (Vigna, "An experimental exploration of Marsaglia's xorshift generators").
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // Spread small seeds (0, 1, 2, ...) apart; the state must never be 0.
        let s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
        Rng(if s == 0 { 1 } else { s })
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn u32(&mut self) -> u32 {
        (self.next_u64() >> 32) as u32
    }

    pub fn u8(&mut self) -> u8 {
        (self.next_u64() >> 56) as u8
    }

    /// Uniform-ish in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// True `num` times in `den`.
    pub fn chance(&mut self, num: u32, den: u32) -> bool {
        self.below(den as usize) < num as usize
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    pub fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let n = self.below(max_len + 1);
        (0..n).map(|_| self.u8()).collect()
    }

    /// A value that is often a boundary: 0, 1, max, max-1, or random.
    pub fn edgy_u32(&mut self, max: u32) -> u32 {
        match self.below(6) {
            0 => 0,
            1 => 1.min(max),
            2 => max,
            3 => max.saturating_sub(1),
            _ => self.u32() % max.saturating_add(1).max(1),
        }
    }
}

/// Applies one to four random mutations to a copy of `valid`: bit flips, truncation, byte
/// insertion and deletion, a 1-4 byte big-endian field set to 0 or all ones (length fields),
/// a duplicated range, or a random byte.
pub fn mutate(rng: &mut Rng, valid: &[u8]) -> Vec<u8> {
    let mut v = valid.to_vec();
    for _ in 0..1 + rng.below(4) {
        match rng.below(8) {
            0 | 1 => {
                if !v.is_empty() {
                    let i = rng.below(v.len());
                    v[i] ^= 1 << rng.below(8);
                }
            }
            2 => {
                let n = rng.below(v.len() + 1);
                v.truncate(n);
            }
            3 => {
                let i = rng.below(v.len() + 1);
                for _ in 0..1 + rng.below(4) {
                    v.insert(i, rng.u8());
                }
            }
            4 => {
                if !v.is_empty() {
                    let i = rng.below(v.len());
                    let n = (1 + rng.below(4)).min(v.len() - i);
                    v.drain(i..i + n);
                }
            }
            5 => {
                if !v.is_empty() {
                    let i = rng.below(v.len());
                    let n = (1 + rng.below(4)).min(v.len() - i);
                    let fill = if rng.chance(1, 2) { 0x00 } else { 0xFF };
                    v[i..i + n].fill(fill);
                    if fill == 0xFF && rng.chance(1, 2) {
                        // 0x7F.. for signed or 31-bit fields.
                        v[i] = 0x7F;
                    }
                }
            }
            6 => {
                if !v.is_empty() && v.len() < 64 * 1024 {
                    let i = rng.below(v.len());
                    let n = 1 + rng.below((v.len() - i).min(64));
                    let chunk = v[i..i + n].to_vec();
                    let at = rng.below(v.len() + 1);
                    v.splice(at..at, chunk);
                }
            }
            _ => {
                if !v.is_empty() {
                    let i = rng.below(v.len());
                    v[i] = rng.u8();
                }
            }
        }
    }
    v
}

/// Text made of up to `max_pieces` pieces drawn from `pieces` (tokens, separators, odd
/// characters), for parsers of names, paths and templates.
pub fn text(rng: &mut Rng, pieces: &[&str], max_pieces: usize) -> String {
    (0..rng.below(max_pieces + 1))
        .map(|_| *rng.pick(pieces))
        .collect()
}

/// `default` times the `SRSD_FUZZ_ITERS` multiplier (1 when unset).
pub fn iters(default: usize) -> usize {
    let factor = std::env::var("SRSD_FUZZ_ITERS")
        .ok()
        .and_then(|v| v.parse::<usize>().ok())
        .unwrap_or(1)
        .max(1);
    default.saturating_mul(factor)
}

/// Runs `cases` (scaled by [`iters`]) cases of `body`, each with a generator seeded from
/// `(seed, case)`. A panic inside a case is reported with the target, seed and case index
/// before it is passed on, so the exact case can be replayed with [`replay`].
pub fn fuzz(target: &str, seed: u64, cases: usize, mut body: impl FnMut(&mut Rng)) {
    for case in 0..iters(cases) {
        let mut rng = case_rng(seed, case);
        let r = panic::catch_unwind(AssertUnwindSafe(|| body(&mut rng)));
        if let Err(e) = r {
            eprintln!("fuzz target {target}: seed {seed:#x} case {case} panicked");
            panic::resume_unwind(e);
        }
    }
}

/// The generator [`fuzz`] gives case `case` of `seed`: run one failing case alone.
pub fn case_rng(seed: u64, case: usize) -> Rng {
    Rng::new(seed ^ (case as u64).wrapping_mul(0xA076_1D64_78BD_642F))
}

/// Feeds `input` to `sink` in random-sized pieces (1 byte up to `max_piece`), appending each
/// piece to `buf` first, as a socket read would. Stops at the first `false` from `sink`.
pub fn feed_in_pieces(
    rng: &mut Rng,
    input: &[u8],
    max_piece: usize,
    buf: &mut bytes::BytesMut,
    mut sink: impl FnMut(&mut bytes::BytesMut) -> bool,
) {
    let mut rest = input;
    while !rest.is_empty() {
        let n = (1 + rng.below(max_piece.max(1))).min(rest.len());
        buf.extend_from_slice(&rest[..n]);
        rest = &rest[n..];
        if !sink(buf) {
            return;
        }
    }
}

/// The unit-test binary's allocator: the system one, plus a per-thread record of the largest
/// single request, so fuzz tests can check that no declared length is trusted for allocation
/// ([`largest_allocation`]). Test builds only; the server uses the plain system allocator.
struct Recording;

thread_local! {
    static LARGEST: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

fn note(size: usize) {
    // `try_with`: the thread-local may be gone while a thread shuts down.
    let _ = LARGEST.try_with(|l| {
        if size > l.get() {
            l.set(size);
        }
    });
}

// The only unsafe code is this forwarding to `System`, with the caller's own arguments.
#[allow(unsafe_code)]
unsafe impl std::alloc::GlobalAlloc for Recording {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        note(layout.size());
        std::alloc::System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: std::alloc::Layout) -> *mut u8 {
        note(layout.size());
        std::alloc::System.alloc_zeroed(layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new: usize) -> *mut u8 {
        note(new);
        std::alloc::System.realloc(ptr, layout, new)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        std::alloc::System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static ALLOCATOR: Recording = Recording;

/// Runs `f` and returns its result with the largest single allocation (bytes) it made on
/// this thread.
pub fn largest_allocation<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let outer = LARGEST.with(|l| l.replace(0));
    let r = f();
    let largest = LARGEST.with(|l| l.replace(outer.max(l.get())));
    (r, largest)
}

/// Tokens that URLs, paths, templates, queries and hook answers are made of, for [`text`]:
/// separators, traversal, escapes, control and wide characters, the template variables.
pub const TEXT_PIECES: &[&str] = &[
    "rtmp://",
    "http://",
    "h",
    "v.com",
    ":",
    ":1935",
    ":99999",
    ":-1",
    "/",
    "//",
    "?",
    "&",
    "=",
    "vhost",
    "...",
    "..",
    ".",
    "live",
    "s",
    "%",
    "%2f",
    "%00",
    "%zz",
    "\\",
    "\u{0}",
    " ",
    "\t",
    "\u{e9}",
    "\u{1F600}",
    "[",
    "]",
    "[app]",
    "[stream]",
    "[vhost]",
    "[seq]",
    ".flv",
    ".ts",
    ".m3u8",
    "#",
    "@",
    "{",
    "}",
    "\"",
    "code",
    "0",
    "-",
    ",",
    "bytes=",
];

/// An FLV video body holding an AVC sequence header: an AVCDecoderConfigurationRecord with
/// one tiny SPS (Baseline, level 3.0) and one PPS; enough for the muxers, which copy them
/// out as Annex B.
pub fn avc_sequence_header() -> Vec<u8> {
    let sps = [0x67, 0x42, 0xC0, 0x1E, 0xDA, 0x02, 0x80, 0xF6, 0x40];
    let pps = [0x68, 0xCE, 0x3C, 0x80];
    let mut v = vec![0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1];
    v.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    v.extend_from_slice(&sps);
    v.push(1);
    v.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    v.extend_from_slice(&pps);
    v
}

/// HEVC parameter sets from libx265 (ffmpeg 9, `-preset ultrafast`, 320x180 yuv420p: Main
/// profile, level 2, a 320x184 picture cropped by a 4-line conformance window).
pub const HEVC_VPS: &[u8] = &[
    0x40, 0x01, 0x0c, 0x01, 0xff, 0xff, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03,
    0x00, 0x00, 0x03, 0x00, 0x3c, 0x95, 0x94, 0x09,
];
pub const HEVC_SPS: &[u8] = &[
    0x42, 0x01, 0x01, 0x01, 0x60, 0x00, 0x00, 0x03, 0x00, 0x90, 0x00, 0x00, 0x03, 0x00, 0x00, 0x03,
    0x00, 0x3c, 0xa0, 0x0a, 0x08, 0x0c, 0x1f, 0x3e, 0x59, 0x59, 0x52, 0x93, 0x0b, 0xc0, 0x5a, 0x02,
    0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x00, 0x03, 0x00, 0x14, 0x10,
];
pub const HEVC_PPS: &[u8] = &[0x44, 0x01, 0xc0, 0x73, 0xc1, 0x89];

/// An hvcC (ISO/IEC 14496-15 §8.3.3.1) holding [`HEVC_VPS`], [`HEVC_SPS`], [`HEVC_PPS`], with
/// 4-byte NALU lengths.
pub fn hvcc() -> Vec<u8> {
    let mut v = vec![
        1, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 60, 0xF0, 0, 0xFC, 0xFD, 0xF8, 0xF8, 0, 0,
        0x0F, 3,
    ];
    for (t, n) in [(32u8, HEVC_VPS), (33, HEVC_SPS), (34, HEVC_PPS)] {
        v.push(0x80 | t);
        v.extend_from_slice(&1u16.to_be_bytes());
        v.extend_from_slice(&(n.len() as u16).to_be_bytes());
        v.extend_from_slice(n);
    }
    v
}

/// An Enhanced RTMP `hvc1` SequenceStart tag body around [`hvcc`].
pub fn hevc_sequence_header() -> Vec<u8> {
    let mut v = b"\x90hvc1".to_vec();
    v.extend_from_slice(&hvcc());
    v
}

/// An av1C (AV1-ISOBMFF §2.3.3) from libsvtav1 (ffmpeg 9, 320x180): Main profile, level 2.0
/// (seq_level_idx 0), 8-bit 4:2:0, with its sequence header OBU.
pub fn av1c() -> Vec<u8> {
    vec![
        0x81, 0x00, 0x0C, 0x00, 0x0a, 0x0b, 0x02, 0x00, 0x00, 0x05, 0x21, 0xe7, 0xf6, 0x62, 0x57,
        0xc8, 0x02,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_cases_and_allocations_are_recorded() {
        let a: Vec<u64> = (0..4).map(|_| case_rng(7, 3).next_u64()).collect();
        assert!(a.iter().all(|&x| x == a[0]));
        assert_ne!(case_rng(7, 3).next_u64(), case_rng(7, 4).next_u64());
        let (v, largest) = largest_allocation(|| vec![0u8; 100_000]);
        assert_eq!(v.len(), 100_000);
        assert!(largest >= 100_000, "{largest}");
        let (_, small) = largest_allocation(|| 1 + 1);
        assert_eq!(small, 0);
    }
}
