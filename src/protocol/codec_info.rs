//! What a stream's sequence headers say about it, for the API, `/metrics` and `srsd probe`:
//! codec, profile, level, picture size; audio codec, rate, channels.
//!
//! One reader per configuration record: AVCDecoderConfigurationRecord ([`super::avc`]), hvcC
//! ([`super::hevc`]), av1C with its sequence header OBU (AV1-ISOBMFF §2.3; AV1 spec §5.5),
//! vpcC (VP-Codec-ISOBMFF §2.2: profile, level, bit depth), AAC AudioSpecificConfig
//! ([`super::aac`]) and OpusHead (RFC 7845 §5.1). A malformed record is an [`InfoError`],
//! never a panic. VP9 keeps the picture size in its frames, not in vpcC:
//! [`frame_picture_size`] reads it from a keyframe's uncompressed header (VP9 Bitstream spec
//! §6.2), and [`VideoInfo::picture_size`] takes it when the record has none.

use super::media::{Codec, Packet, TagHeader};
use super::{aac, avc, hevc};
use std::fmt;

/// The `video` object of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VideoInfo {
    pub codec: Codec,
    /// The codec's profile name (`High`, `Main`, `Main10`, `Profile0` ...).
    pub profile: String,
    /// The level as the codec numbers it (`3.1`, `5.1`; AV1 `2.0`).
    pub level: String,
    /// Picture size in pixels; 0 when the record does not carry it (VP9: see
    /// [`VideoInfo::picture_size`]).
    pub width: u32,
    pub height: u32,
}

impl VideoInfo {
    /// The picture size (width, height in pixels): the record's, or `frame_size` (what
    /// [`frame_picture_size`] read from a keyframe) when the record carries none (VP9).
    pub fn picture_size(&self, frame_size: Option<(u32, u32)>) -> (u32, u32) {
        match frame_size {
            Some(size) if self.width == 0 => size,
            _ => (self.width, self.height),
        }
    }
}

/// The `audio` object of the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AudioInfo {
    pub codec: Codec,
    pub sample_rate: u32,
    pub channels: u8,
    /// `LC`, `HE` ... for AAC; empty for Opus.
    pub profile: String,
}

/// Why a sequence header said nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InfoError {
    /// The frame is not a sequence header of a codec srsd reads.
    NotAConfig { codec: Codec },
    /// The record is malformed: which record, and why.
    Malformed { record: &'static str, why: String },
}

impl fmt::Display for InfoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            InfoError::NotAConfig { codec } => {
                write!(f, "no configuration record read for {codec:?}")
            }
            InfoError::Malformed { record, why } => write!(f, "malformed {record}: {why}"),
        }
    }
}

impl std::error::Error for InfoError {}

fn malformed(record: &'static str) -> impl Fn(String) -> InfoError {
    move |why| InfoError::Malformed { record, why }
}

/// Reads a video sequence header: `tag` is its header, `record` the bytes after it.
pub fn video_info(tag: &TagHeader, record: &[u8]) -> Result<VideoInfo, InfoError> {
    // A Multitrack header's per-track fields (not read) come before its record.
    if tag.packet != Packet::Config || tag.multitrack.is_some() {
        return Err(InfoError::NotAConfig { codec: tag.codec });
    }
    match tag.codec {
        Codec::H264 => {
            let c = avc::parse_avc_config(record)
                .map_err(|e| malformed("AVC record")(e.to_string()))?;
            Ok(VideoInfo {
                codec: Codec::H264,
                profile: avc::profile_name(c.profile).into(),
                level: avc::level_name(c.level),
                width: c.width,
                height: c.height,
            })
        }
        Codec::Hevc => {
            let c = hevc::parse_hvcc(record).map_err(|e| malformed("hvcC")(e.to_string()))?;
            Ok(VideoInfo {
                codec: Codec::Hevc,
                profile: hevc::profile_name(c.profile).into(),
                level: hevc::level_name(c.level),
                width: c.width,
                height: c.height,
            })
        }
        Codec::Av1 => av1_info(record).map_err(malformed("av1C")),
        Codec::Vp9 => vp9_info(record).map_err(malformed("vpcC")),
        codec => Err(InfoError::NotAConfig { codec }),
    }
}

/// The picture size (width, height in pixels) a coded video frame states, for a codec whose
/// configuration record does not carry it: the uncompressed header of a VP9 keyframe.
/// `tag` is the frame's header, `frame` the bytes after it. `None` for other codecs, for
/// sequence headers and inter frames, and for bytes that are no VP9 keyframe header.
pub fn frame_picture_size(tag: &TagHeader, frame: &[u8]) -> Option<(u32, u32)> {
    if tag.codec != Codec::Vp9 || !tag.is_keyframe() || tag.multitrack.is_some() {
        return None;
    }
    vp9_keyframe_size(frame).ok()
}

/// `frame_width`, `frame_height` of a VP9 keyframe: its uncompressed header up to
/// `frame_size()` (VP9 Bitstream spec §6.2: frame marker, profile, show_existing_frame,
/// frame_type, show_frame, error_resilient_mode, sync code, color_config §6.2.2, the sizes
/// minus 1 in 16 bits each). A superframe (Annex B) starts with its first frame, the one read.
/// Reads at most the first 10 bytes (the header is 69 to 73 bits). Errors: too short, or what
/// makes it no keyframe header.
pub fn vp9_keyframe_size(frame: &[u8]) -> Result<(u32, u32), &'static str> {
    const SYNC_CODE: u32 = 0x49_83_42;
    const CS_RGB: u32 = 7;
    const TRUNCATED: &str = "uncompressed header truncated";
    // The first 10 bytes, MSB first, zero-padded: each field is cut from this word (fewer
    // branches and calls than a bit reader: this runs in every board's binary).
    let head = frame.get(..9).ok_or(TRUNCATED)?;
    let mut word = [0u8; 16];
    word[..9].copy_from_slice(head);
    word[9] = frame.get(9).copied().unwrap_or_default();
    let word = u128::from_be_bytes(word);
    let mut at = 0;
    // `n` is 1..=24: never a shift by 128.
    let mut bits = |n: u32| {
        at += n;
        (word << (at - n) >> (128 - n)) as u32
    };
    if bits(2) != 2 {
        return Err("frame_marker is not 2");
    }
    let profile_low = bits(1);
    let profile = bits(1) << 1 | profile_low;
    if profile == 3 && bits(1) != 0 {
        return Err("reserved_zero bit set");
    }
    if bits(1) != 0 {
        return Err("show_existing_frame: no frame header");
    }
    if bits(1) != 0 {
        return Err("frame_type is not KEY_FRAME");
    }
    bits(2); // show_frame, error_resilient_mode
    if bits(24) != SYNC_CODE {
        return Err("no frame sync code");
    }
    // color_config(): ten_or_twelve_bit in profiles 2 and 3, color_space, then color_range and
    // (profiles 1 and 3) subsampling_x, subsampling_y, reserved_zero; RGB has no color_range.
    if profile >= 2 {
        bits(1);
    }
    let skip = match (bits(3) == CS_RGB, profile & 1 == 1) {
        (false, true) => 4,
        (false, false) | (true, true) => 1,
        (true, false) => return Err("RGB in profile 0 or 2"),
    };
    bits(skip);
    let (width, height) = (bits(16) + 1, bits(16) + 1);
    if at as usize > 8 * frame.len().min(10) {
        return Err(TRUNCATED);
    }
    Ok((width, height))
}

/// Reads an audio sequence header: `tag` is its header, `record` the bytes after it.
pub fn audio_info(tag: &TagHeader, record: &[u8]) -> Result<AudioInfo, InfoError> {
    if tag.packet != Packet::Config || tag.multitrack.is_some() {
        return Err(InfoError::NotAConfig { codec: tag.codec });
    }
    match tag.codec {
        Codec::Aac => {
            let c = aac::parse_audio_specific_config(record)
                .map_err(|e| malformed("AudioSpecificConfig")(e.to_string()))?;
            Ok(AudioInfo {
                codec: Codec::Aac,
                sample_rate: c.sample_rate,
                channels: c.channels,
                profile: aac::profile_name(c.object_type).into(),
            })
        }
        Codec::Opus => {
            // OpusHead: magic, version, channel count, pre-skip, input sample rate, ...
            if record.len() < 19 || &record[..8] != b"OpusHead" {
                return Err(malformed("OpusHead")(
                    "no OpusHead magic or too short".into(),
                ));
            }
            let channels = record[9];
            if channels == 0 {
                return Err(malformed("OpusHead")("0 channels".into()));
            }
            // Opus always decodes at 48 kHz (RFC 7845 §5.1: the input rate is informative).
            Ok(AudioInfo {
                codec: Codec::Opus,
                sample_rate: 48_000,
                channels,
                profile: String::new(),
            })
        }
        codec => Err(InfoError::NotAConfig { codec }),
    }
}

/// av1C: marker/version, seq_profile + seq_level_idx_0, tier and colour bits, then
/// configOBUs whose sequence header OBU has the maximum frame size.
fn av1_info(record: &[u8]) -> Result<VideoInfo, String> {
    let fixed = record.get(..4).ok_or("shorter than 4 bytes")?;
    if fixed[0] != 0x81 {
        return Err(format!("marker/version byte {:#04x} is not 0x81", fixed[0]));
    }
    let profile = fixed[1] >> 5;
    let level_idx = fixed[1] & 0x1F;
    let (width, height) = av1_sequence_header_size(&record[4..])?;
    Ok(VideoInfo {
        codec: Codec::Av1,
        profile: match profile {
            0 => "Main",
            1 => "High",
            2 => "Professional",
            _ => "Other",
        }
        .into(),
        // seq_level_idx: level X.Y with X = 2 + idx / 4, Y = idx % 4 (AV1 spec Annex A.3).
        level: format!("{}.{}", 2 + level_idx / 4, level_idx % 4),
        width,
        height,
    })
}

/// The max frame size of the first sequence header OBU in `obus` (AV1 spec §5.3, §5.5).
fn av1_sequence_header_size(mut obus: &[u8]) -> Result<(u32, u32), String> {
    const OBU_SEQUENCE_HEADER: u8 = 1;
    while let Some(&header) = obus.first() {
        let obu_type = (header >> 3) & 0x0F;
        let mut at = 1 + usize::from(header & 0x04 != 0); // extension byte
        let size = if header & 0x02 != 0 {
            // leb128 obu_size, at most 8 bytes.
            let mut v: u64 = 0;
            let mut i = 0;
            loop {
                let b = *obus.get(at).ok_or("OBU size past the end")?;
                v |= u64::from(b & 0x7F) << (7 * i);
                at += 1;
                i += 1;
                if b & 0x80 == 0 {
                    break;
                }
                if i == 8 {
                    return Err("OBU size longer than 8 bytes".into());
                }
            }
            usize::try_from(v).map_err(|_| "OBU size too large")?
        } else {
            obus.len().saturating_sub(at)
        };
        let body = at
            .checked_add(size)
            .and_then(|end| obus.get(at..end))
            .ok_or("OBU past the end")?;
        if obu_type == OBU_SEQUENCE_HEADER {
            return av1_frame_size(body).map_err(|e| format!("sequence header: {e}"));
        }
        obus = &obus[at + size..];
    }
    Err("no sequence header OBU".into())
}

fn av1_frame_size(seq: &[u8]) -> Result<(u32, u32), avc::AvcError> {
    let mut r = avc::BitReader::new(seq);
    r.bits(3)?; // seq_profile
    r.bits(1)?; // still_picture
    if r.flag()? {
        // reduced_still_picture_header
        r.bits(5)?; // seq_level_idx[0]
    } else {
        let mut decoder_model_info = false;
        let mut buffer_delay_length = 0;
        if r.flag()? {
            // timing_info()
            r.bits(32)?;
            r.bits(32)?;
            if r.flag()? {
                // num_ticks_per_picture_minus_1: uvlc()
                let mut zeros = 0;
                while !r.flag()? {
                    zeros += 1;
                    if zeros >= 32 {
                        return Err(avc::AvcError::Truncated { what: "AV1 uvlc" });
                    }
                }
                r.bits(zeros)?;
            }
            decoder_model_info = r.flag()?;
            if decoder_model_info {
                buffer_delay_length = r.bits(5)? as u32 + 1;
                r.bits(32)?; // num_units_in_decoding_tick
                r.bits(10)?; // buffer_removal_time_length_minus_1, frame_presentation_..._1
            }
        }
        let initial_display_delay = r.flag()?;
        let operating_points = r.bits(5)? + 1;
        for _ in 0..operating_points {
            r.bits(12)?; // operating_point_idc
            if r.bits(5)? > 7 {
                r.bits(1)?; // seq_tier
            }
            if decoder_model_info && r.flag()? {
                r.bits(buffer_delay_length)?;
                r.bits(buffer_delay_length)?;
                r.bits(1)?;
            }
            if initial_display_delay && r.flag()? {
                r.bits(4)?;
            }
        }
    }
    let width_bits = r.bits(4)? as u32 + 1;
    let height_bits = r.bits(4)? as u32 + 1;
    let width = r.bits(width_bits)? + 1;
    let height = r.bits(height_bits)? + 1;
    Ok((width as u32, height as u32))
}

/// vpcC (a FullBox: version and flags first): profile, level, bit depth.
fn vp9_info(record: &[u8]) -> Result<VideoInfo, String> {
    let b = record.get(..7).ok_or("shorter than 7 bytes")?;
    let (profile, level) = (b[4], b[5]);
    Ok(VideoInfo {
        codec: Codec::Vp9,
        profile: format!("Profile{profile}"),
        // level_idc is 10 x the level: 31 = level 3.1.
        level: format!("{}.{}", level / 10, level % 10),
        width: 0,
        height: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::media::MediaKind;
    use crate::protocol::testutil::{av1c, fuzz, hvcc, mutate};

    fn config(kind: MediaKind, codec: Codec) -> TagHeader {
        TagHeader {
            codec,
            enhanced: true,
            frame_type: 1,
            packet: Packet::Config,
            ..TagHeader::unknown(kind)
        }
    }

    #[test]
    fn reads_every_codec_record() {
        let v = video_info(&config(MediaKind::Video, Codec::Hevc), &hvcc()).unwrap();
        assert_eq!(
            (v.profile.as_str(), v.level.as_str(), v.width, v.height),
            ("Main", "2", 320, 180)
        );
        let v = video_info(&config(MediaKind::Video, Codec::Av1), &av1c()).unwrap();
        assert_eq!(
            (v.profile.as_str(), v.level.as_str(), v.width, v.height),
            ("Main", "2.0", 320, 180)
        );
        let vpcc = [1, 0, 0, 0, 0, 31, 0x82, 1, 1, 1, 0, 0];
        let v = video_info(&config(MediaKind::Video, Codec::Vp9), &vpcc).unwrap();
        assert_eq!(
            (v.profile.as_str(), v.level.as_str(), v.width),
            ("Profile0", "3.1", 0)
        );
        let head = b"OpusHead\x01\x02\x38\x01\x80\xbb\x00\x00\x00\x00\x00";
        let a = audio_info(&config(MediaKind::Audio, Codec::Opus), head).unwrap();
        assert_eq!(
            (a.codec.name(), a.sample_rate, a.channels),
            (Some("Opus"), 48_000, 2)
        );
    }

    /// The first 12 bytes of VP9 frames written by ffmpeg 9.0.2 with libvpx-vp9 (`-f lavfi -i
    /// testsrc=size=WxH -c:v libvpx-vp9 -pix_fmt FMT -f ivf`, the bytes of each IVF frame):
    /// (bytes, profile, width, height).
    const VP9_KEYFRAMES: [([u8; 12], u8, u32, u32); 5] = [
        // yuv420p: profile 0.
        (
            [
                0x82, 0x49, 0x83, 0x42, 0x00, 0x13, 0xF0, 0x0B, 0x36, 0x06, 0x38, 0x24,
            ],
            0,
            320,
            180,
        ),
        // yuv444p: profile 1, subsampling bits.
        (
            [
                0xA2, 0x49, 0x83, 0x42, 0x00, 0x00, 0x7E, 0x00, 0x5E, 0xC0, 0xC7, 0x04,
            ],
            1,
            64,
            48,
        ),
        // yuv420p10le: profile 2, ten_or_twelve_bit.
        (
            [
                0x92, 0x49, 0x83, 0x42, 0x00, 0x05, 0x78, 0x04, 0x7B, 0x03, 0x1C, 0x12,
            ],
            2,
            176,
            144,
        ),
        // yuv444p10le: profile 3, its reserved bit shifts the rest by one.
        (
            [
                0xB1, 0x24, 0xC1, 0xA1, 0x00, 0x00, 0x2F, 0x80, 0x1F, 0xB0, 0x31, 0xC1,
            ],
            3,
            96,
            64,
        ),
        // gbrp: profile 1 in the RGB color space (no color_range).
        (
            [
                0xA2, 0x49, 0x83, 0x42, 0xE0, 0x02, 0xF0, 0x01, 0xF6, 0x06, 0x38, 0x24,
            ],
            1,
            48,
            32,
        ),
    ];
    /// The second frame of the yuv420p 320x180 stream: an inter frame.
    const VP9_INTER: [u8; 12] = [
        0x86, 0x00, 0x40, 0x92, 0x9C, 0x48, 0x50, 0x00, 0x00, 0x12, 0x76, 0x86,
    ];

    #[test]
    fn vp9_keyframes_give_their_picture_size() {
        for (bytes, profile, w, h) in VP9_KEYFRAMES {
            assert_eq!(vp9_keyframe_size(&bytes), Ok((w, h)), "profile {profile}");
            // The header fits in its first 10 bytes (69 to 73 bits); 8 are too few.
            assert_eq!(vp9_keyframe_size(&bytes[..10]), Ok((w, h)));
            assert!(vp9_keyframe_size(&bytes[..8]).is_err());
        }
        assert_eq!(
            vp9_keyframe_size(&VP9_INTER),
            Err("frame_type is not KEY_FRAME")
        );
        // show_existing_frame (marker 2, profile 0, flag set) and a bad marker.
        assert!(vp9_keyframe_size(&[0x88, 0, 0]).is_err());
        assert!(vp9_keyframe_size(&[0x02, 0x49, 0x83, 0x42, 0, 0, 0, 0, 0, 0]).is_err());
        // RGB is not allowed in profile 0: the gbrp frame with its profile bits cleared.
        let mut rgb0 = VP9_KEYFRAMES[4].0;
        rgb0[0] &= !0x20;
        assert_eq!(vp9_keyframe_size(&rgb0), Err("RGB in profile 0 or 2"));
    }

    #[test]
    fn vp9_size_comes_from_the_first_keyframe_of_an_flv_tag() {
        // The FLV tag body ffmpeg 9 writes for a VP9 keyframe: Enhanced header (key frame,
        // CodedFrames) with the `vp09` FourCC, then the frame.
        let mut body = vec![0x91, b'v', b'p', b'0', b'9'];
        body.extend_from_slice(&VP9_KEYFRAMES[0].0);
        let tag = TagHeader::decode(MediaKind::Video, &body).unwrap();
        let size = frame_picture_size(&tag, &body[tag.len()..]);
        assert_eq!(size, Some((320, 180)));
        let inter = TagHeader {
            frame_type: 2,
            ..tag
        };
        assert_eq!(frame_picture_size(&inter, &VP9_INTER), None);
        let seq = config(MediaKind::Video, Codec::Vp9);
        assert_eq!(frame_picture_size(&seq, &VP9_KEYFRAMES[0].0), None);
        let av1 = TagHeader {
            codec: Codec::Av1,
            ..tag
        };
        assert_eq!(frame_picture_size(&av1, &VP9_KEYFRAMES[0].0), None);
        // A vpcC (version 1: profile 0, level 1.0, 8-bit 4:2:0) gives no size; the frame's does.
        let vpcc = [1, 0, 0, 0, 0, 10, 0x82, 2, 2, 2, 0, 0];
        let v = video_info(&seq, &vpcc).unwrap();
        assert_eq!((v.width, v.level.as_str()), (0, "1.0"));
        assert_eq!(v.picture_size(size), (320, 180));
        assert_eq!(v.picture_size(None), (0, 0));
        // A record with a size keeps its own.
        let hevc = config(MediaKind::Video, Codec::Hevc);
        let v = video_info(&hevc, &hvcc()).unwrap();
        assert_eq!(v.picture_size(Some((1, 1))), (320, 180));
    }

    #[test]
    fn malformed_records_are_errors() {
        let hevc = config(MediaKind::Video, Codec::Hevc);
        assert!(matches!(
            video_info(&hevc, &[1, 2, 3]),
            Err(InfoError::Malformed { record: "hvcC", .. })
        ));
        let av1 = config(MediaKind::Video, Codec::Av1);
        assert!(video_info(&av1, &av1c()[..8]).is_err());
        assert!(
            video_info(&av1, &[0x81, 0, 0, 0]).is_err(),
            "no sequence header"
        );
        let frame = TagHeader {
            packet: Packet::Frame,
            ..hevc
        };
        assert!(matches!(
            video_info(&frame, &hvcc()),
            Err(InfoError::NotAConfig { .. })
        ));
        assert!(audio_info(&config(MediaKind::Audio, Codec::Opus), b"OpusHea").is_err());
    }

    #[test]
    fn record_readers_never_panic_on_mutated_input() {
        let records = [
            (Codec::Hevc, hvcc()),
            (Codec::Av1, av1c()),
            (Codec::Vp9, vec![1, 0, 0, 0, 0, 31, 0x82, 1, 1, 1, 0, 0]),
            (
                Codec::H264,
                crate::protocol::testutil::avc_sequence_header()[5..].to_vec(),
            ),
        ];
        fuzz("codec records", 0xC0DE, 10_000, |rng| {
            let (codec, rec) = rng.pick(&records);
            let m = mutate(rng, rec);
            if let Ok(v) = video_info(&config(MediaKind::Video, *codec), &m) {
                assert_eq!(v.codec, *codec);
            }
            let _ = audio_info(&config(MediaKind::Audio, Codec::Opus), &m);
        });
        fuzz("VP9 keyframe headers", 0x0F9, 10_000, |rng| {
            let (frame, ..) = rng.pick(&VP9_KEYFRAMES);
            if let Ok((w, h)) = vp9_keyframe_size(&mutate(rng, frame)) {
                assert!((1..=65_536).contains(&w) && (1..=65_536).contains(&h));
            }
        });
    }
}
