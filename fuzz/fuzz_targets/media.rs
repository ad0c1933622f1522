//! FLV tag headers, legacy and Enhanced RTMP (src/protocol/media.rs), and the codec
//! configuration records and frame headers read from them (src/protocol/codec_info.rs: AVC
//! record, hvcC, av1C, vpcC, AudioSpecificConfig, OpusHead, VP9 keyframe headers). The input
//! is a selector byte (kind = byte % 3: audio, video, data) then one tag body. Checked:
//! `decode` fails exactly when the body is shorter than the header it announces and then
//! agrees with `classify`; a decoded header's `encode` decodes to the same header (for a codec
//! `encode` can name); what the records and frames give is of the header's codec (a record
//! only from a sequence header, a picture size only from a VP9 keyframe), and a keyframe
//! header's size is 1..=65536 on each side.
#![no_main]
use libfuzzer_sys::fuzz_target;
use srsd::protocol::codec_info::{audio_info, frame_picture_size, video_info, vp9_keyframe_size};
use srsd::protocol::media::{Codec, MediaKind, TagHeader};

fuzz_target!(|data: &[u8]| {
    let (selector, body) = srsd_fuzz::split_seed(data);
    let kind = [MediaKind::Audio, MediaKind::Video, MediaKind::Data][usize::from(selector % 3)];
    let h = TagHeader::classify(kind, body);
    match TagHeader::decode(kind, body) {
        Ok(d) => {
            assert_eq!(d, h);
            assert!(h.len() <= body.len());
            let nameable = match h.codec {
                Codec::None => !h.enhanced || h.multitrack == Some(2),
                c => !h.enhanced || c.fourcc().is_some(),
            };
            if nameable {
                let mut out = Vec::new();
                h.encode(&mut out);
                assert_eq!(out.len(), h.len(), "{h:?}");
                assert_eq!(TagHeader::decode(kind, &out), Ok(h), "{out:02x?}");
            }
        }
        Err(e) => assert!(body.len() < e.need && e.have == body.len(), "{e}"),
    }
    let rest = body.get(h.len()..).unwrap_or_default();
    let size_ok = |w: u32, ht: u32| (1..=65_536).contains(&w) && (1..=65_536).contains(&ht);
    if let Ok(v) = video_info(&h, rest) {
        assert_eq!(v.codec, h.codec);
        assert!(h.is_config());
    }
    if let Ok(a) = audio_info(&h, rest) {
        assert_eq!(a.codec, h.codec);
        // AAC's channelConfiguration 0 (a program_config_element says) is valid; Opus has 1+.
        assert!(a.channels > 0 || a.codec == Codec::Aac);
    }
    if let Some((w, ht)) = frame_picture_size(&h, rest) {
        assert!(h.codec == Codec::Vp9 && h.is_keyframe() && size_ok(w, ht));
    }
    if let Ok((w, ht)) = vp9_keyframe_size(body) {
        assert!(size_ok(w, ht));
    }
});
