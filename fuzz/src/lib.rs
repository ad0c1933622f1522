//! Shared helpers for the fuzz targets in `fuzz_targets/`.
//!
//! Network decoders must give the same answer whatever the read sizes were, so most targets
//! take their first byte as the seed of a split: the rest of the input is fed to the decoder
//! in pieces of 1..=256 bytes chosen by a small xorshift from that seed.

use bytes::BytesMut;

/// Splits `data` into (split seed, payload): the seed is the first byte (0 when empty).
pub fn split_seed(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((s, rest)) => (*s, rest),
        None => (0, data),
    }
}

/// Feeds `input` to `step` in pieces sized by `seed`, appending each piece to `buf` first.
/// Stops early when `step` returns false (the decoder failed: the connection would close).
/// Seed 0 feeds everything at once.
pub fn feed_in_pieces(
    seed: u8,
    input: &[u8],
    buf: &mut BytesMut,
    mut step: impl FnMut(&mut BytesMut) -> bool,
) {
    let mut state = u32::from(seed) | 0x9E37_7900;
    let mut rest = input;
    while !rest.is_empty() {
        let n = if seed == 0 {
            rest.len()
        } else {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            1 + (state % 256) as usize
        };
        let (piece, tail) = rest.split_at(n.min(rest.len()));
        rest = tail;
        buf.extend_from_slice(piece);
        if !step(buf) {
            return;
        }
    }
    // Whatever is left must be a prefix the decoder waits on: one more call on no new input.
    step(buf);
}
