use super::*;
use crate::protocol::testutil::{fuzz, mutate};

fn h(
    kind: MediaKind,
    codec: Codec,
    enhanced: bool,
    frame_type: u8,
    packet: Packet,
    cts: i32,
) -> TagHeader {
    TagHeader {
        kind,
        codec,
        enhanced,
        frame_type,
        packet,
        cts,
        multitrack: Option::None,
    }
}

fn mt(multitrack: u8, header: TagHeader) -> TagHeader {
    TagHeader {
        multitrack: Some(multitrack),
        ..header
    }
}

use Codec::*;
use MediaKind::{Audio, Video};
use Packet::*;

/// One row per form: the header bytes and what they mean. Decoding the bytes gives the header,
/// encoding the header gives the bytes.
fn table() -> Vec<(&'static str, Vec<u8>, TagHeader)> {
    vec![
        (
            "legacy AVC sequence header",
            vec![0x17, 0, 0, 0, 0],
            h(Video, H264, false, 1, Config, 0),
        ),
        (
            "legacy AVC keyframe, cts 66",
            vec![0x17, 1, 0, 0, 66],
            h(Video, H264, false, 1, Frame, 66),
        ),
        (
            "legacy AVC inter frame, cts -33",
            vec![0x27, 1, 0xFF, 0xFF, 0xDF],
            h(Video, H264, false, 2, Frame, -33),
        ),
        (
            "legacy AVC end of sequence",
            vec![0x17, 2, 0, 0, 0],
            h(Video, H264, false, 1, EndOfSequence, 0),
        ),
        (
            "legacy AVC reserved packet type",
            vec![0x27, 7],
            h(Video, H264, false, 2, Other(7), 0),
        ),
        (
            "CDN HEVC (id 12) sequence header",
            vec![0x1C, 0, 0, 0, 0],
            h(Video, Hevc, false, 1, Config, 0),
        ),
        (
            "CDN HEVC (id 12) keyframe",
            vec![0x1C, 1, 0, 0, 40],
            h(Video, Hevc, false, 1, Frame, 40),
        ),
        (
            "Sorenson H.263 frame",
            vec![0x22],
            h(Video, OtherVideo(2), false, 2, Frame, 0),
        ),
        (
            "VP6 keyframe",
            vec![0x14],
            h(Video, OtherVideo(4), false, 1, Frame, 0),
        ),
        (
            "Enhanced hvc1 SequenceStart",
            b"\x90hvc1".to_vec(),
            h(Video, Hevc, true, 1, Config, 0),
        ),
        (
            "Enhanced hvc1 CodedFrames keyframe, cts 80",
            b"\x91hvc1\x00\x00\x50".to_vec(),
            h(Video, Hevc, true, 1, Frame, 80),
        ),
        (
            "Enhanced hvc1 CodedFrames inter, cts -40",
            b"\xA1hvc1\xFF\xFF\xD8".to_vec(),
            h(Video, Hevc, true, 2, Frame, -40),
        ),
        (
            "Enhanced hvc1 CodedFramesX keyframe",
            b"\x93hvc1".to_vec(),
            h(Video, Hevc, true, 1, FrameX, 0),
        ),
        (
            "Enhanced hvc1 SequenceEnd",
            b"\x92hvc1".to_vec(),
            h(Video, Hevc, true, 1, EndOfSequence, 0),
        ),
        (
            "Enhanced avc1 CodedFrames",
            b"\xA1avc1\x00\x00\x00".to_vec(),
            h(Video, H264, true, 2, Frame, 0),
        ),
        (
            "Enhanced av01 SequenceStart",
            b"\x90av01".to_vec(),
            h(Video, Av1, true, 1, Config, 0),
        ),
        (
            "Enhanced av01 CodedFrames (no cts)",
            b"\x91av01".to_vec(),
            h(Video, Av1, true, 1, Frame, 0),
        ),
        (
            "Enhanced av01 MPEG2TSSequenceStart",
            b"\x95av01".to_vec(),
            h(Video, Av1, true, 1, Mpeg2TsSequenceStart, 0),
        ),
        (
            "Enhanced vp09 CodedFramesX inter",
            b"\xA3vp09".to_vec(),
            h(Video, Vp9, true, 2, FrameX, 0),
        ),
        (
            "Enhanced vp09 Metadata",
            b"\x94vp09".to_vec(),
            h(Video, Vp9, true, 1, Metadata, 0),
        ),
        (
            "Enhanced command frame",
            b"\xD1hvc1\x00\x00\x00".to_vec(),
            h(Video, Hevc, true, 5, Frame, 0),
        ),
        (
            "Enhanced unknown FourCC",
            b"\x93vvc1".to_vec(),
            h(Video, FourCc(*b"vvc1"), true, 1, FrameX, 0),
        ),
        (
            "Enhanced Multitrack, passed through",
            vec![0x96],
            h(Video, None, true, 1, Other(6), 0),
        ),
        (
            "Enhanced Multitrack one-track hvc1 keyframe",
            b"\x96\x01hvc1".to_vec(),
            mt(0, h(Video, Hevc, true, 1, Frame, 0)),
        ),
        (
            "Enhanced Multitrack many-tracks av01 SequenceStart",
            b"\x96\x10av01".to_vec(),
            mt(1, h(Video, Av1, true, 1, Config, 0)),
        ),
        (
            "Enhanced Multitrack many-codecs CodedFramesX",
            b"\xA6\x23".to_vec(),
            mt(2, h(Video, None, true, 2, FrameX, 0)),
        ),
        (
            "Enhanced audio Multitrack one-track Opus",
            b"\x95\x01Opus".to_vec(),
            mt(0, h(Audio, Opus, true, 0, Frame, 0)),
        ),
        (
            "legacy AAC sequence header",
            vec![0xAF, 0],
            h(Audio, Aac, false, 0x0F, Config, 0),
        ),
        (
            "legacy AAC raw",
            vec![0xAF, 1],
            h(Audio, Aac, false, 0x0F, Frame, 0),
        ),
        (
            "legacy MP3",
            vec![0x2F],
            h(Audio, Mp3, false, 0x0F, Frame, 0),
        ),
        (
            "legacy Speex",
            vec![0xB6],
            h(Audio, OtherAudio(11), false, 6, Frame, 0),
        ),
        (
            "Enhanced Opus SequenceStart",
            b"\x90Opus".to_vec(),
            h(Audio, Opus, true, 0, Config, 0),
        ),
        (
            "Enhanced Opus CodedFrames",
            b"\x91Opus".to_vec(),
            h(Audio, Opus, true, 0, Frame, 0),
        ),
        (
            "Enhanced mp4a SequenceStart",
            b"\x90mp4a".to_vec(),
            h(Audio, Aac, true, 0, Config, 0),
        ),
        (
            "Enhanced .mp3 CodedFrames",
            b"\x91.mp3".to_vec(),
            h(Audio, Mp3, true, 0, Frame, 0),
        ),
        (
            "Enhanced fLaC MultichannelConfig",
            b"\x94fLaC".to_vec(),
            h(Audio, FourCc(*b"fLaC"), true, 0, MultichannelConfig, 0),
        ),
        (
            "Enhanced audio Multitrack",
            vec![0x95],
            h(Audio, None, true, 0, Other(5), 0),
        ),
    ]
}

#[test]
fn every_form_decodes_and_encodes_by_one_table() {
    for (name, bytes, header) in table() {
        let mut body = bytes.clone();
        body.extend_from_slice(&[0xAB, 0xCD]);
        assert_eq!(
            TagHeader::decode(header.kind, &body),
            Ok(header),
            "decode: {name}"
        );
        assert_eq!(header.len(), bytes.len(), "len: {name}");
        let mut out = Vec::new();
        header.encode(&mut out);
        assert_eq!(out, bytes, "encode: {name}");
    }
}

#[test]
fn keyframes_and_configs_are_told_apart() {
    let key = |b: &[u8], k| TagHeader::decode(k, b).unwrap();
    assert!(key(&[0x17, 1, 0, 0, 0], Video).is_keyframe());
    assert!(
        !key(&[0x17, 0, 0, 0, 0], Video).is_keyframe(),
        "a sequence header is no keyframe"
    );
    assert!(key(&[0x17, 0, 0, 0, 0], Video).is_config());
    assert!(key(b"\x93hvc1", Video).is_keyframe());
    assert!(key(b"\x91av01", Video).is_keyframe());
    assert!(!key(b"\xA1hvc1\0\0\0", Video).is_keyframe());
    assert!(
        !key(b"\xD1hvc1\0\0\0", Video).is_keyframe(),
        "a command frame is no keyframe"
    );
    assert!(key(b"\x90Opus", Audio).is_config());
    assert!(
        !key(&[0x2F, 0], Audio).is_config(),
        "MP3 has no sequence header"
    );
    assert_eq!(
        TagHeader::decode(MediaKind::Data, &[2, 0, 10]).map(|h| h.packet),
        Ok(Script)
    );
}

#[test]
fn short_bodies_are_errors_not_guesses() {
    for (kind, body) in [
        (Video, &[][..]),
        (Audio, &[][..]),
        (Video, &[0x17][..]),
        (Video, &[0x17, 1, 0, 0][..]),
        (Video, b"\x90hvc"),
        (Video, b"\x91hvc1\0\0"),
        (Audio, b"\x90Opu"),
        (Audio, &[0xAF][..]),
    ] {
        let e = TagHeader::decode(kind, body).unwrap_err();
        assert_eq!(e.have, body.len());
        assert!(e.need > body.len(), "{e}");
    }
}

#[test]
fn decoding_any_body_never_panics_and_reencodes_to_its_prefix() {
    let valid: Vec<Vec<u8>> = table().into_iter().map(|(_, b, _)| b).collect();
    fuzz("flv tag header", 0x7A6, 20_000, |rng| {
        let kind = *rng.pick(&[Video, Audio, MediaKind::Data]);
        let body = if rng.chance(1, 2) {
            let v = rng.pick(&valid).clone();
            mutate(rng, &v)
        } else {
            rng.bytes(10)
        };
        if let Ok(h) = TagHeader::decode(kind, &body) {
            assert!(h.len() <= body.len());
            let mut out = Vec::new();
            h.encode(&mut out);
            assert_eq!(out, body[..h.len()], "{h:?}");
        }
    });
}
