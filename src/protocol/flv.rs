//! FLV file format (Adobe FLV spec v10.1, annex E): the 9-byte header and tags.
//!
//! Sans-IO like the rest of `protocol`: the encoders append to a `BytesMut`, and
//! [`FlvDecoder::decode`] takes the bytes read so far and hands out one tag per call.
//!
//! Layout on the wire:
//!
//! ```text
//! header   "FLV" version(1) flags(audio 0x04, video 0x01) data_offset(u32 BE, 9)
//! u32      PreviousTagSize0 = 0
//! tag      type(u8) data_size(u24) timestamp(u24) timestamp_extended(u8) stream_id(u24 = 0)
//!          data[data_size]
//! u32      PreviousTagSize = 11 + data_size
//! ...
//! ```

use crate::protocol::media::MediaKind;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::fmt;

/// Length of the FLV file header, without PreviousTagSize0.
pub const FLV_HEADER_LEN: usize = 9;
/// Length of a tag header (type, size, timestamp, stream id).
pub const TAG_HEADER_LEN: usize = 11;
/// Length of the PreviousTagSize field that follows the header and every tag.
pub const PREVIOUS_TAG_SIZE_LEN: usize = 4;
/// Largest tag body the decoder accepts by default. The 24-bit size field cannot say more,
/// so this only matters for decoders built with a smaller cap.
pub const MAX_TAG_SIZE: usize = 16 * 1024 * 1024;
/// Largest body a tag header can describe (24 bits).
pub const MAX_TAG_DATA_SIZE: usize = 0xFF_FFFF;

/// FLV tag types (spec E.4.1).
pub mod tag_type {
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const SCRIPT_DATA: u8 = 18;
}

/// One audio, video or script-data tag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    pub kind: MediaKind,
    /// Milliseconds; the 24-bit field plus the extension byte as the high 8 bits.
    pub timestamp: u32,
    pub payload: Bytes,
}

/// Why an FLV stream could not be read. All of these are the file's (or peer's) fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FlvError {
    /// The first three bytes are not "FLV".
    BadSignature([u8; 3]),
    /// Only version 1 exists.
    UnsupportedVersion(u8),
    /// The header says the body starts inside the header.
    BadDataOffset(u32),
    /// A tag is larger than the decoder's cap.
    TagTooLarge { size: usize, max: usize },
}

impl fmt::Display for FlvError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FlvError::BadSignature(s) => write!(f, "not an FLV stream (signature {s:02x?})"),
            FlvError::UnsupportedVersion(v) => write!(f, "FLV version {v} is not 1"),
            FlvError::BadDataOffset(o) => {
                write!(
                    f,
                    "FLV data offset {o} is inside the {FLV_HEADER_LEN}-byte header"
                )
            }
            FlvError::TagTooLarge { size, max } => {
                write!(f, "FLV tag of {size} bytes exceeds the {max}-byte cap")
            }
        }
    }
}

impl std::error::Error for FlvError {}

fn kind_to_type(kind: MediaKind) -> u8 {
    match kind {
        MediaKind::Audio => tag_type::AUDIO,
        MediaKind::Video => tag_type::VIDEO,
        MediaKind::Data => tag_type::SCRIPT_DATA,
    }
}

fn type_to_kind(t: u8) -> Option<MediaKind> {
    match t {
        tag_type::AUDIO => Some(MediaKind::Audio),
        tag_type::VIDEO => Some(MediaKind::Video),
        tag_type::SCRIPT_DATA => Some(MediaKind::Data),
        _ => None,
    }
}

/// Writes the 9-byte file header and PreviousTagSize0.
pub fn encode_header(has_audio: bool, has_video: bool, out: &mut BytesMut) {
    let flags = if has_audio { 0x04 } else { 0 } | if has_video { 0x01 } else { 0 };
    out.reserve(FLV_HEADER_LEN + PREVIOUS_TAG_SIZE_LEN);
    out.put_slice(b"FLV");
    out.put_u8(1);
    out.put_u8(flags);
    out.put_u32(FLV_HEADER_LEN as u32);
    out.put_u32(0);
}

/// The 11-byte tag header for a body of `len` bytes (FLV spec E.4.1: TagType, DataSize,
/// Timestamp, TimestampExtended, StreamID 0).
///
/// `len` must fit in 24 bits ([`MAX_TAG_DATA_SIZE`]); RTMP messages and decoded tags always
/// do. A larger value is a caller bug and is truncated to 24 bits.
pub fn tag_header(kind: MediaKind, timestamp: u32, len: usize) -> [u8; TAG_HEADER_LEN] {
    debug_assert!(len <= MAX_TAG_DATA_SIZE, "FLV tag body of {len} bytes");
    let len = ((len & MAX_TAG_DATA_SIZE) as u32).to_be_bytes();
    let ts = timestamp.to_be_bytes();
    [
        kind_to_type(kind),
        len[1],
        len[2],
        len[3],
        ts[1],
        ts[2],
        ts[3],
        ts[0],
        0,
        0,
        0,
    ]
}

/// Writes [`tag_header`] to `out`.
pub fn encode_tag_header(kind: MediaKind, timestamp: u32, len: usize, out: &mut BytesMut) {
    out.extend_from_slice(&tag_header(kind, timestamp, len));
}

/// Writes a whole tag: header, body and the PreviousTagSize that follows it.
pub fn encode_tag(tag: &Tag, out: &mut BytesMut) {
    let len = tag.payload.len().min(MAX_TAG_DATA_SIZE);
    out.reserve(TAG_HEADER_LEN + len + PREVIOUS_TAG_SIZE_LEN);
    encode_tag_header(tag.kind, tag.timestamp, len, out);
    out.put_slice(&tag.payload[..len]);
    out.put_u32((TAG_HEADER_LEN + len) as u32);
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for the 9-byte header.
    Header,
    /// Skipping the rest of the header area (data offset beyond 9) and PreviousTagSize0.
    /// Skipped as bytes arrive, so a huge data offset never makes us buffer.
    Skip {
        remaining: u64,
    },
    Tags,
}

/// Reads an FLV stream: the header first, then one tag per [`FlvDecoder::decode`] call.
///
/// Contract: feed every byte read, in order, into the same buffer and call `decode` until it
/// returns `Ok(None)` (need more bytes). Tags of unknown types (and encrypted ones) are
/// skipped. PreviousTagSize values are not checked: many writers get them wrong, and the
/// tag header alone says where the next tag starts.
#[derive(Debug, Clone)]
pub struct FlvDecoder {
    state: State,
    max_tag_size: usize,
    has_audio: bool,
    has_video: bool,
}

impl Default for FlvDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl FlvDecoder {
    pub fn new() -> Self {
        Self::with_max_tag_size(MAX_TAG_SIZE)
    }

    /// A decoder that refuses tags with bodies over `max_tag_size` bytes.
    pub fn with_max_tag_size(max_tag_size: usize) -> Self {
        FlvDecoder {
            state: State::Header,
            max_tag_size,
            has_audio: false,
            has_video: false,
        }
    }

    /// The header's (advisory) audio and video flags, once the header is read.
    pub fn flags(&self) -> Option<(bool, bool)> {
        (self.state != State::Header).then_some((self.has_audio, self.has_video))
    }

    /// Decodes the next tag. `Ok(None)`: more bytes are needed; what was consumed so far is
    /// remembered, the rest stays in `buf`.
    pub fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Tag>, FlvError> {
        loop {
            match self.state {
                State::Header => {
                    if buf.len() < FLV_HEADER_LEN {
                        // Fail early on garbage rather than wait for 9 bytes.
                        if let Some(i) = buf.iter().zip(b"FLV").position(|(a, b)| a != b) {
                            let mut s = [0u8; 3];
                            s[..=i].copy_from_slice(&buf[..=i]);
                            return Err(FlvError::BadSignature(s));
                        }
                        return Ok(None);
                    }
                    if &buf[..3] != b"FLV" {
                        return Err(FlvError::BadSignature([buf[0], buf[1], buf[2]]));
                    }
                    if buf[3] != 1 {
                        return Err(FlvError::UnsupportedVersion(buf[3]));
                    }
                    let flags = buf[4];
                    let offset = u32::from_be_bytes([buf[5], buf[6], buf[7], buf[8]]);
                    if (offset as usize) < FLV_HEADER_LEN {
                        return Err(FlvError::BadDataOffset(offset));
                    }
                    buf.advance(FLV_HEADER_LEN);
                    self.has_audio = flags & 0x04 != 0;
                    self.has_video = flags & 0x01 != 0;
                    let remaining =
                        u64::from(offset) - FLV_HEADER_LEN as u64 + PREVIOUS_TAG_SIZE_LEN as u64;
                    self.state = State::Skip { remaining };
                }
                State::Skip { remaining } => {
                    let n = remaining.min(buf.len() as u64);
                    buf.advance(n as usize);
                    let remaining = remaining - n;
                    if remaining > 0 {
                        self.state = State::Skip { remaining };
                        return Ok(None);
                    }
                    self.state = State::Tags;
                }
                State::Tags => {
                    if buf.len() < TAG_HEADER_LEN {
                        return Ok(None);
                    }
                    let h = &buf[..TAG_HEADER_LEN];
                    // Bit 5 is the encryption filter flag; the upper two bits are reserved.
                    let encrypted = h[0] & 0x20 != 0;
                    let kind = type_to_kind(h[0] & 0x1F);
                    let size = u32::from_be_bytes([0, h[1], h[2], h[3]]) as usize;
                    let timestamp = u32::from_be_bytes([h[7], h[4], h[5], h[6]]);
                    if size > self.max_tag_size {
                        return Err(FlvError::TagTooLarge {
                            size,
                            max: self.max_tag_size,
                        });
                    }
                    let total = TAG_HEADER_LEN + size + PREVIOUS_TAG_SIZE_LEN;
                    if buf.len() < total {
                        // Nothing reserved ahead: the buffer grows only as bytes arrive.
                        return Ok(None);
                    }
                    buf.advance(TAG_HEADER_LEN);
                    let payload = buf.split_to(size).freeze();
                    buf.advance(PREVIOUS_TAG_SIZE_LEN);
                    match kind {
                        Some(kind) if !encrypted => {
                            return Ok(Some(Tag {
                                kind,
                                timestamp,
                                payload,
                            }))
                        }
                        _ => continue,
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER_AV: &[u8] = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00";

    /// One table, used to encode and to decode.
    fn cases() -> Vec<(&'static str, Tag, Vec<u8>)> {
        vec![
            (
                "audio at 0",
                Tag {
                    kind: MediaKind::Audio,
                    timestamp: 0,
                    payload: Bytes::from_static(&[0xAF, 0x00, 0x12, 0x10]),
                },
                vec![
                    8, 0, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0xAF, 0x00, 0x12, 0x10, 0, 0, 0, 15,
                ],
            ),
            (
                "video with 24-bit timestamp",
                Tag {
                    kind: MediaKind::Video,
                    timestamp: 0x12_3456,
                    payload: Bytes::from_static(&[0x17, 0x01]),
                },
                vec![
                    9, 0, 0, 2, 0x12, 0x34, 0x56, 0, 0, 0, 0, 0x17, 0x01, 0, 0, 0, 13,
                ],
            ),
            (
                "video with extended timestamp",
                Tag {
                    kind: MediaKind::Video,
                    timestamp: 0x8912_3456,
                    payload: Bytes::from_static(&[0x27]),
                },
                vec![
                    9, 0, 0, 1, 0x12, 0x34, 0x56, 0x89, 0, 0, 0, 0x27, 0, 0, 0, 12,
                ],
            ),
            (
                "empty script data",
                Tag {
                    kind: MediaKind::Data,
                    timestamp: 40,
                    payload: Bytes::new(),
                },
                vec![18, 0, 0, 0, 0, 0, 40, 0, 0, 0, 0, 0, 0, 0, 11],
            ),
        ]
    }

    fn file(tags: &[&[u8]]) -> Vec<u8> {
        let mut v = HEADER_AV.to_vec();
        for t in tags {
            v.extend_from_slice(t);
        }
        v
    }

    fn decode_all(bytes: &[u8]) -> Result<Vec<Tag>, FlvError> {
        let mut d = FlvDecoder::new();
        let mut buf = BytesMut::from(bytes);
        let mut tags = Vec::new();
        while let Some(t) = d.decode(&mut buf)? {
            tags.push(t);
        }
        Ok(tags)
    }

    #[test]
    fn encodes_header_with_previous_tag_size0() {
        let mut out = BytesMut::new();
        encode_header(true, true, &mut out);
        assert_eq!(&out[..], HEADER_AV);
        let mut out = BytesMut::new();
        encode_header(false, true, &mut out);
        assert_eq!(&out[..], b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00");
        let mut out = BytesMut::new();
        encode_header(true, false, &mut out);
        assert_eq!(out[4], 0x04);
    }

    #[test]
    fn encodes_tags_from_the_table() {
        for (name, tag, bytes) in cases() {
            let mut out = BytesMut::new();
            encode_tag(&tag, &mut out);
            assert_eq!(&out[..], &bytes[..], "{name}");
            let mut h = BytesMut::new();
            encode_tag_header(tag.kind, tag.timestamp, tag.payload.len(), &mut h);
            assert_eq!(&h[..], &bytes[..TAG_HEADER_LEN], "{name}");
        }
    }

    #[test]
    fn decodes_tags_from_the_table() {
        for (name, tag, bytes) in cases() {
            let tags = decode_all(&file(&[&bytes])).unwrap();
            assert_eq!(tags, vec![tag], "{name}");
        }
    }

    #[test]
    fn decodes_a_whole_file_in_order() {
        let cases = cases();
        let all: Vec<&[u8]> = cases.iter().map(|c| &c.2[..]).collect();
        let tags = decode_all(&file(&all)).unwrap();
        let want: Vec<Tag> = cases.into_iter().map(|c| c.1).collect();
        assert_eq!(tags, want);
        let mut d = FlvDecoder::new();
        let mut buf = BytesMut::from(&file(&[])[..]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert_eq!(d.flags(), Some((true, true)));
    }

    #[test]
    fn decodes_byte_by_byte_and_never_panics_on_truncation() {
        let cases = cases();
        let all: Vec<&[u8]> = cases.iter().map(|c| &c.2[..]).collect();
        let bytes = file(&all);
        let want: Vec<Tag> = cases.into_iter().map(|c| c.1).collect();

        // Fed one byte at a time.
        let mut d = FlvDecoder::new();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        for b in &bytes {
            buf.extend_from_slice(&[*b]);
            while let Some(t) = d.decode(&mut buf).unwrap() {
                got.push(t);
            }
        }
        assert_eq!(got, want);
        assert!(buf.is_empty());

        // Cut at every offset: a prefix of the tags, never an error or a panic.
        for cut in 0..bytes.len() {
            let tags = decode_all(&bytes[..cut]).unwrap();
            assert!(tags.len() <= want.len());
            assert_eq!(&tags[..], &want[..tags.len()], "cut at {cut}");
        }
    }

    #[test]
    fn skips_unknown_and_encrypted_tags() {
        let unknown = [15u8, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 13];
        let encrypted = [0x28u8, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 12];
        let c = cases();
        let tags = decode_all(&file(&[&unknown, &encrypted, &c[0].2])).unwrap();
        assert_eq!(tags, vec![c[0].1.clone()]);
    }

    #[test]
    fn honours_a_larger_data_offset() {
        // Data offset 12: three extra header bytes, then PreviousTagSize0.
        let mut bytes = b"FLV\x01\x05\x00\x00\x00\x0c\xAA\xBB\xCC\x00\x00\x00\x00".to_vec();
        let c = cases();
        bytes.extend_from_slice(&c[1].2);
        assert_eq!(decode_all(&bytes).unwrap(), vec![c[1].1.clone()]);
    }

    #[test]
    fn skips_a_huge_data_offset_without_buffering() {
        let mut d = FlvDecoder::new();
        let mut buf = BytesMut::from(&b"FLV\x01\x05\xff\xff\xff\xff"[..]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&[0u8; 1000]);
        assert_eq!(d.decode(&mut buf), Ok(None));
        assert!(buf.is_empty());
    }

    #[test]
    fn rejects_bad_headers() {
        let table: &[(&[u8], FlvError)] = &[
            (b"XLV", FlvError::BadSignature([b'X', 0, 0])),
            (b"FLX\x01", FlvError::BadSignature([b'F', b'L', b'X'])),
            (
                b"FLV\x02\x05\x00\x00\x00\x09",
                FlvError::UnsupportedVersion(2),
            ),
            (b"FLV\x01\x05\x00\x00\x00\x08", FlvError::BadDataOffset(8)),
        ];
        for (bytes, err) in table {
            assert_eq!(decode_all(bytes), Err(err.clone()));
            assert!(!err.to_string().is_empty());
        }
    }

    #[test]
    fn rejects_tags_over_the_cap() {
        let mut d = FlvDecoder::with_max_tag_size(3);
        let c = cases();
        let mut buf = BytesMut::from(&file(&[&c[0].2])[..]);
        assert_eq!(
            d.decode(&mut buf),
            Err(FlvError::TagTooLarge { size: 4, max: 3 })
        );
    }

    #[test]
    fn decode_then_encode_round_trips() {
        let cases = cases();
        let all: Vec<&[u8]> = cases.iter().map(|c| &c.2[..]).collect();
        let bytes = file(&all);
        let mut out = BytesMut::new();
        encode_header(true, true, &mut out);
        for t in decode_all(&bytes).unwrap() {
            encode_tag(&t, &mut out);
        }
        assert_eq!(&out[..], &bytes[..]);
    }

    use crate::protocol::testutil::{feed_in_pieces, fuzz, largest_allocation, mutate, Rng};

    fn random_flv(rng: &mut Rng) -> (Vec<u8>, Vec<Tag>) {
        let mut out = BytesMut::new();
        encode_header(rng.chance(1, 2), rng.chance(1, 2), &mut out);
        let tags: Vec<Tag> = (0..rng.below(6))
            .map(|_| Tag {
                kind: *rng.pick(&[MediaKind::Audio, MediaKind::Video, MediaKind::Data]),
                timestamp: rng.edgy_u32(u32::MAX),
                payload: Bytes::from(rng.bytes(200)),
            })
            .collect();
        for t in &tags {
            encode_tag(t, &mut out);
        }
        (out.to_vec(), tags)
    }

    /// Decodes `input` fed in random pieces; every tag consumes input, memory stays within
    /// what was fed.
    fn decode_pieces(rng: &mut Rng, input: &[u8], max_tag_size: usize) -> Vec<Tag> {
        let mut dec = FlvDecoder::with_max_tag_size(max_tag_size);
        let mut tags = Vec::new();
        let mut buf = BytesMut::new();
        let mut split = Rng::new(rng.next_u64());
        let (_, largest) = largest_allocation(|| {
            feed_in_pieces(&mut split, input, 300, &mut buf, |buf| loop {
                let before = buf.len();
                match dec.decode(buf) {
                    Ok(Some(t)) => {
                        assert!(buf.len() < before, "a tag consumed nothing");
                        tags.push(t);
                    }
                    Ok(None) => return true,
                    Err(_) => return false,
                }
            })
        });
        assert!(
            largest <= 2 * input.len() + 4096,
            "{largest} for {}",
            input.len()
        );
        tags
    }

    #[test]
    fn valid_files_in_random_pieces_decode_to_their_tags() {
        fuzz("flv valid", 0xF1F0, 1_000, |rng| {
            let (bytes, tags) = random_flv(rng);
            assert_eq!(decode_pieces(rng, &bytes, MAX_TAG_SIZE), tags);
        });
    }

    #[test]
    fn mutated_and_random_files_never_panic() {
        fuzz("flv mutated", 0xF1F1, 2_000, |rng| {
            let (bytes, _) = random_flv(rng);
            let bad = if rng.chance(1, 4) {
                let mut b = rng.bytes(200);
                b.splice(0..0, b"FLV\x01".iter().copied());
                b
            } else {
                mutate(rng, &bytes)
            };
            let max = *rng.pick(&[0, 1, 100, MAX_TAG_SIZE]);
            decode_pieces(rng, &bad, max);
        });
    }
}
