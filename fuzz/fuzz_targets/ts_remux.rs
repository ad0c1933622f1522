//! The FLV-to-MPEG-TS remuxer of HLS and HTTP-TS (src/protocol/ts_remux.rs): frames of any
//! kind, flags, timestamps and payloads are refused or muxed into whole 188-byte TS packets,
//! never more than proportional to the input.
//!
//! Input: one flags byte (video/audio enabled), then frames of
//! `[kind bit, shift bits] [dts: 4 bytes BE, scaled by the shift] [len: 2 bytes BE]` and `len`
//! bytes of FLV tag body (truncated at the end of the input), read by the one tag-header
//! parser (`protocol::media::TagHeader::classify`) as the hub reads a frame.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use srsd::protocol::media::{MediaKind, TagHeader};
use srsd::protocol::ts_remux::TsRemuxer;

fuzz_target!(|data: &[u8]| {
    let (flags, mut rest) = srsd_fuzz::split_seed(data);
    let mut r = TsRemuxer::new(flags & 1 == 0, flags & 2 == 0);
    let mut out = BytesMut::new();
    while rest.len() >= 7 {
        let h = rest[0];
        let raw = i32::from_be_bytes([rest[1], rest[2], rest[3], rest[4]]);
        let dts = i64::from(raw) << (u32::from(h >> 3) & 31);
        let len = usize::from(u16::from_be_bytes([rest[5], rest[6]]));
        rest = &rest[7..];
        let payload = &rest[..len.min(rest.len())];
        rest = &rest[payload.len()..];
        let kind = if h & 1 == 0 {
            MediaKind::Video
        } else {
            MediaKind::Audio
        };
        let tag = TagHeader::classify(kind, payload);
        let data = payload.get(tag.len()..).unwrap_or(&[]);
        let Ok(sample) = r.inspect(&tag, dts, data) else {
            continue;
        };
        if !r.is_started() || r.tracks_changed() {
            r.start(&mut out);
        }
        let before = out.len();
        let _ = r.write(sample, data, &mut out);
        assert_eq!(out.len() % 188, 0);
        assert!(out.len() - before <= 2 * (payload.len() + 200) + 4 * 188);
    }
    assert!(out.chunks(188).all(|p| p[0] == 0x47));
});
