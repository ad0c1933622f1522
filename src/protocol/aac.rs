//! AAC as it travels in RTMP/FLV, and the ADTS framing MPEG-TS wants.
//!
//! The AAC sequence-header tag carries an AudioSpecificConfig (ISO/IEC 14496-3 §1.6.2.1); every
//! other AAC tag carries one raw access unit. Raw AAC is not self-describing, so each frame
//! written to a TS (or served as `.aac`) gets a 7-byte ADTS header built from the config
//! (ISO/IEC 13818-7 §6.2 / 14496-3 §1.A.2).
//!
//! MP3 needs no config: its frames carry their own headers. [`mp3_sample_rate`] only decodes the
//! FLV rate field for reporting.

use bytes::{BufMut, BytesMut};
use std::fmt;

/// Sample rates by `samplingFrequencyIndex` (ISO/IEC 14496-3 Table 1.18). Indices 13 and 14
/// are reserved; 15 means the rate follows explicitly in 24 bits.
pub const SAMPLE_RATES: [u32; 13] = [
    96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
];

/// The `samplingFrequencyIndex` escape: an explicit 24-bit rate follows.
pub const EXPLICIT_RATE_INDEX: u8 = 0x0F;

/// Length of an ADTS header without CRC.
pub const ADTS_HEADER_LEN: usize = 7;

/// Largest payload one ADTS frame can describe: `frame_length` is 13 bits and counts the header.
pub const MAX_ADTS_PAYLOAD: usize = 0x1FFF - ADTS_HEADER_LEN;

/// Audio object types that change how the config is read or framed.
pub mod object_type {
    pub const AAC_MAIN: u8 = 1;
    pub const AAC_LC: u8 = 2;
    pub const AAC_SSR: u8 = 3;
    pub const AAC_LTP: u8 = 4;
    /// Spectral Band Replication: HE-AAC (v1).
    pub const SBR: u8 = 5;
    /// Parametric Stereo: HE-AAC v2.
    pub const PS: u8 = 29;
    /// The 5-bit `audioObjectType` escape: 6 more bits follow, plus 32.
    pub const ESCAPE: u8 = 31;
}

/// Why an AudioSpecificConfig could not be read. Every variant is the publisher's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AacError {
    /// The config ends before the field named.
    Truncated { what: &'static str },
    /// `samplingFrequencyIndex` 13 or 14, which the spec reserves.
    ReservedSampleRateIndex(u8),
    /// An explicit sample rate of 0 Hz.
    ZeroSampleRate,
}

impl fmt::Display for AacError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AacError::Truncated { what } => write!(f, "AudioSpecificConfig truncated in {what}"),
            AacError::ReservedSampleRateIndex(i) => {
                write!(f, "AAC samplingFrequencyIndex {i} is reserved")
            }
            AacError::ZeroSampleRate => write!(f, "AAC explicit sample rate is 0 Hz"),
        }
    }
}

impl std::error::Error for AacError {}

/// What the AudioSpecificConfig tells about the stream.
///
/// For HE-AAC signalled explicitly (object type 5 or 29), `object_type` keeps 5/29 so the API
/// can say "HE"/"HEv2", while `sample_rate` is the AAC core's rate: ADTS carries the core
/// (profile LC, core rate) and decoders find the SBR/PS extension inside the frames.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AacConfig {
    /// `audioObjectType` (2 = LC, 5 = HE, 29 = HEv2, ...), escapes resolved (up to 95).
    pub object_type: u8,
    /// `samplingFrequencyIndex` as sent: 0..=12, or [`EXPLICIT_RATE_INDEX`] for an explicit
    /// rate (then [`adts_header`] picks the nearest standard index).
    pub sample_rate_index: u8,
    /// Sample rate in Hz.
    pub sample_rate: u32,
    /// `channelConfiguration`: 1..=7 a standard layout, 0 = given in-band by a PCE.
    pub channels: u8,
}

/// Parses an AudioSpecificConfig (the body of an AAC sequence-header tag after its 2-byte FLV
/// audio header). Bytes after the fields srsd needs (GASpecificConfig, extensions) are ignored.
pub fn parse_audio_specific_config(asc: &[u8]) -> Result<AacConfig, AacError> {
    let mut r = BitReader::new(asc);
    let object_type = read_object_type(&mut r)?;
    let (sample_rate_index, sample_rate) = read_sample_rate(&mut r)?;
    let channels = r.bits(4, "channelConfiguration")? as u8;
    // For object types 5 and 29 (explicit hierarchical signalling, §1.6.5.2) the extension's
    // output rate and the core object type follow; the core is LC in every encoder srsd has
    // met, and the core rate is what ADTS needs, so neither is read.
    Ok(AacConfig {
        object_type,
        sample_rate_index,
        sample_rate,
        channels,
    })
}

/// `GetAudioObjectType()`: 5 bits, or 32 + 6 more bits after the escape 31.
fn read_object_type(r: &mut BitReader<'_>) -> Result<u8, AacError> {
    let t = r.bits(5, "audioObjectType")? as u8;
    if t == object_type::ESCAPE {
        Ok(32 + r.bits(6, "audioObjectTypeExt")? as u8)
    } else {
        Ok(t)
    }
}

/// `samplingFrequencyIndex` and, after the escape 0xF, the explicit 24-bit rate.
fn read_sample_rate(r: &mut BitReader<'_>) -> Result<(u8, u32), AacError> {
    let index = r.bits(4, "samplingFrequencyIndex")? as u8;
    if index == EXPLICIT_RATE_INDEX {
        let rate = r.bits(24, "samplingFrequency")?;
        if rate == 0 {
            return Err(AacError::ZeroSampleRate);
        }
        return Ok((index, rate));
    }
    SAMPLE_RATES
        .get(usize::from(index))
        .map(|&rate| (index, rate))
        .ok_or(AacError::ReservedSampleRateIndex(index))
}

/// The standard index whose rate is nearest `rate` (ties go to the higher rate).
pub fn nearest_sample_rate_index(rate: u32) -> u8 {
    let mut best = 0u8;
    let mut best_distance = u32::MAX;
    for (i, &r) in (0u8..).zip(SAMPLE_RATES.iter()) {
        let d = r.abs_diff(rate);
        if d < best_distance {
            best = i;
            best_distance = d;
        }
    }
    best
}

/// Appends a 7-byte ADTS header (MPEG-4, no CRC) for a raw AAC frame of `payload_len` bytes.
///
/// The ADTS `profile` is `object_type - 1` clamped to 0..=3 (Main, LC, SSR, LTP); HE-AAC (5, 29)
/// is framed as its LC core. A payload over [`MAX_ADTS_PAYLOAD`] cannot be described: the
/// length field saturates, and callers should drop such a frame rather than write it.
pub fn adts_header(cfg: &AacConfig, payload_len: usize, out: &mut BytesMut) {
    let profile: u8 = match cfg.object_type {
        object_type::SBR | object_type::PS => object_type::AAC_LC - 1,
        t => t.saturating_sub(1).min(3),
    };
    let index = if usize::from(cfg.sample_rate_index) < SAMPLE_RATES.len() {
        cfg.sample_rate_index
    } else {
        nearest_sample_rate_index(cfg.sample_rate)
    };
    let channels = cfg.channels & 0x07;
    let frame_length = payload_len.saturating_add(ADTS_HEADER_LEN).min(0x1FFF) as u16;
    // Buffer fullness 0x7FF means "variable bit rate", as ffmpeg and SRS write it.
    let fullness: u16 = 0x7FF;
    out.put_slice(&[
        // syncword 0xFFF, ID 0 (MPEG-4), layer 00, protection_absent 1
        0xFF,
        0xF1,
        (profile << 6) | (index << 2) | (channels >> 2),
        ((channels & 0x03) << 6) | ((frame_length >> 11) as u8 & 0x03),
        (frame_length >> 3) as u8,
        ((frame_length & 0x07) as u8) << 5 | (fullness >> 6) as u8,
        ((fullness & 0x3F) as u8) << 2, // number_of_raw_data_blocks_in_frame 0
    ]);
}

/// The name SRS's API gives an audio object type.
pub fn profile_name(object_type: u8) -> &'static str {
    match object_type {
        object_type::AAC_MAIN => "Main",
        object_type::AAC_LC => "LC",
        object_type::AAC_SSR => "SSR",
        object_type::AAC_LTP => "LTP",
        object_type::SBR => "HE",
        object_type::PS => "HEv2",
        _ => "Other",
    }
}

/// The sample rate the FLV `SoundRate` field (2 bits) names: 5.5, 11, 22 or 44 kHz. For MP3
/// this is only a hint; the frames carry the real rate.
pub fn mp3_sample_rate(flv_rate_bits: u8) -> u32 {
    match flv_rate_bits & 0x03 {
        0 => 5512,
        1 => 11025,
        2 => 22050,
        _ => 44100,
    }
}

/// MSB-first bit reader for the AudioSpecificConfig.
struct BitReader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    /// Reads `n` (at most 32) bits.
    fn bits(&mut self, n: u32, what: &'static str) -> Result<u32, AacError> {
        let mut v = 0u32;
        for _ in 0..n.min(32) {
            let byte = self
                .data
                .get(self.pos / 8)
                .ok_or(AacError::Truncated { what })?;
            v = (v << 1) | u32::from((byte >> (7 - self.pos % 8)) & 1);
            self.pos += 1;
        }
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Builds an AudioSpecificConfig from its fields (no escapes).
    fn asc(object_type: u8, index: u8, channels: u8) -> [u8; 2] {
        let v =
            (u16::from(object_type) << 11) | (u16::from(index) << 7) | (u16::from(channels) << 3);
        v.to_be_bytes()
    }

    #[test]
    fn reads_every_standard_sample_rate_index() {
        for (i, &rate) in SAMPLE_RATES.iter().enumerate() {
            let cfg = parse_audio_specific_config(&asc(2, i as u8, 2)).unwrap();
            assert_eq!(
                cfg,
                AacConfig {
                    object_type: 2,
                    sample_rate_index: i as u8,
                    sample_rate: rate,
                    channels: 2
                }
            );
            // The ADTS header carries the same index and channels.
            let mut out = BytesMut::new();
            adts_header(&cfg, 100, &mut out);
            assert_eq!((out[2] >> 2) & 0x0F, i as u8);
            assert_eq!(((out[2] & 1) << 2) | (out[3] >> 6), 2);
        }
        for reserved in [13, 14] {
            assert_eq!(
                parse_audio_specific_config(&asc(2, reserved, 2)),
                Err(AacError::ReservedSampleRateIndex(reserved))
            );
        }
    }

    #[test]
    fn common_configs_byte_table() {
        // (AudioSpecificConfig, object type, index, rate, channels), as ffmpeg writes them.
        let table: [(&[u8], u8, u8, u32, u8); 5] = [
            (&[0x12, 0x10], 2, 4, 44100, 2),
            (&[0x11, 0x90], 2, 3, 48000, 2),
            (&[0x14, 0x08], 2, 8, 16000, 1),
            (&[0x0A, 0x10], 1, 4, 44100, 2),
            // HE-AAC explicit: type 5, core 24 kHz stereo, extension 48 kHz, core LC.
            (&[0x2B, 0x11, 0x88, 0x00], 5, 6, 24000, 2),
        ];
        for (bytes, object_type, index, rate, channels) in table {
            assert_eq!(
                parse_audio_specific_config(bytes),
                Ok(AacConfig {
                    object_type,
                    sample_rate_index: index,
                    sample_rate: rate,
                    channels
                }),
                "{bytes:02x?}"
            );
            if bytes.len() == 2 {
                assert_eq!(asc(object_type, index, channels), bytes);
            }
        }
    }

    #[test]
    fn adts_header_for_44100_stereo_lc() {
        let cfg = parse_audio_specific_config(&[0x12, 0x10]).unwrap();
        let mut out = BytesMut::new();
        adts_header(&cfg, 1024, &mut out);
        // frame_length 1031 = 0x407, buffer fullness 0x7FF.
        assert_eq!(out.as_ref(), &[0xFF, 0xF1, 0x50, 0x80, 0x80, 0xFF, 0xFC]);
    }

    #[test]
    fn adts_header_fields_round_trip() {
        for (object_type, profile) in [
            (1, 0),
            (2, 1),
            (3, 2),
            (4, 3),
            (5, 1),
            (29, 1),
            (0, 0),
            (42, 3),
        ] {
            for channels in 0..8 {
                for len in [0, 1, 255, 1024, MAX_ADTS_PAYLOAD] {
                    let cfg = AacConfig {
                        object_type,
                        sample_rate_index: 3,
                        sample_rate: 48000,
                        channels,
                    };
                    let mut out = BytesMut::new();
                    adts_header(&cfg, len, &mut out);
                    let h = u64::from_be_bytes([
                        0, out[0], out[1], out[2], out[3], out[4], out[5], out[6],
                    ]);
                    assert_eq!(h >> 44, 0xFFF, "syncword");
                    assert_eq!((h >> 40) & 0xF, 0x1, "ID, layer, protection_absent");
                    assert_eq!((h >> 38) & 0x3, profile);
                    assert_eq!((h >> 34) & 0xF, 3);
                    assert_eq!((h >> 30) & 0x7, u64::from(channels));
                    assert_eq!((h >> 13) & 0x1FFF, (len + 7) as u64);
                    assert_eq!((h >> 2) & 0x7FF, 0x7FF);
                    assert_eq!(h & 0x3, 0);
                }
            }
        }
    }

    #[test]
    fn oversized_payload_saturates_the_length() {
        let cfg = parse_audio_specific_config(&[0x12, 0x10]).unwrap();
        let mut out = BytesMut::new();
        adts_header(&cfg, usize::MAX, &mut out);
        assert_eq!(out.len(), ADTS_HEADER_LEN);
        assert_eq!(&out[3..6], &[0x83, 0xFF, 0xFF]);
    }

    #[test]
    fn escaped_object_type_and_explicit_rate() {
        // Object type 31 + 6 bits (10 -> 42), index 0xF + 24-bit 44000 Hz, 1 channel.
        let bits = [
            "11111",
            "001010",
            "1111",
            "000000001010101111100000",
            "0001",
        ]
        .concat();
        let mut bytes = vec![0u8; bits.len().div_ceil(8)];
        for (i, b) in bits.bytes().enumerate() {
            if b == b'1' {
                bytes[i / 8] |= 0x80 >> (i % 8);
            }
        }
        let cfg = parse_audio_specific_config(&bytes).unwrap();
        assert_eq!(
            cfg,
            AacConfig {
                object_type: 42,
                sample_rate_index: EXPLICIT_RATE_INDEX,
                sample_rate: 44000,
                channels: 1
            }
        );
        assert_eq!(profile_name(cfg.object_type), "Other");
        // ADTS has no explicit rate: 44000 is nearest 44100 (index 4).
        let mut out = BytesMut::new();
        adts_header(&cfg, 10, &mut out);
        assert_eq!((out[2] >> 2) & 0x0F, 4);
    }

    #[test]
    fn nearest_index_picks_the_closest_standard_rate() {
        for (i, &rate) in SAMPLE_RATES.iter().enumerate() {
            assert_eq!(nearest_sample_rate_index(rate), i as u8);
        }
        assert_eq!(nearest_sample_rate_index(1), 12);
        assert_eq!(nearest_sample_rate_index(200_000), 0);
        assert_eq!(nearest_sample_rate_index(47_000), 3);
    }

    #[test]
    fn zero_explicit_rate_is_refused() {
        assert_eq!(
            parse_audio_specific_config(&[0x17, 0x80, 0x00, 0x00, 0x00]),
            Err(AacError::ZeroSampleRate)
        );
    }

    #[test]
    fn truncated_configs_name_the_missing_field() {
        assert_eq!(
            parse_audio_specific_config(&[]),
            Err(AacError::Truncated {
                what: "audioObjectType"
            })
        );
        assert_eq!(
            parse_audio_specific_config(&[0x12]),
            Err(AacError::Truncated {
                what: "samplingFrequencyIndex"
            })
        );
        assert_eq!(
            parse_audio_specific_config(&[0xF8, 0x00]),
            Err(AacError::Truncated {
                what: "channelConfiguration"
            })
        );
        assert_eq!(
            parse_audio_specific_config(&[0xF8]),
            Err(AacError::Truncated {
                what: "audioObjectTypeExt"
            })
        );
        assert_eq!(
            parse_audio_specific_config(&[0x17, 0x80, 0x00]),
            Err(AacError::Truncated {
                what: "samplingFrequency"
            })
        );
        // Every prefix of every byte pattern fails cleanly or parses; none panics.
        for a in 0..=255u8 {
            for b in [0x00, 0x10, 0x88, 0xFF] {
                for n in 0..=4 {
                    let _ = parse_audio_specific_config(&[a, b, a, b][..n]);
                }
            }
        }
    }

    #[test]
    fn names_profiles_and_flv_rates() {
        let table = [
            (1, "Main"),
            (2, "LC"),
            (3, "SSR"),
            (4, "LTP"),
            (5, "HE"),
            (29, "HEv2"),
            (0, "Other"),
        ];
        for (t, name) in table {
            assert_eq!(profile_name(t), name);
        }
        assert_eq!(
            [0, 1, 2, 3, 7].map(mp3_sample_rate),
            [5512, 11025, 22050, 44100, 44100]
        );
    }

    use crate::protocol::testutil::{fuzz, mutate};

    #[test]
    fn random_and_mutated_audio_specific_configs_never_panic() {
        let valid: [&[u8]; 4] = [
            &[0x12, 0x10],
            &[0x2B, 0x92, 0x08, 0x00],
            &[0xF8, 0xFF],
            &[0x17, 0x80, 0x00, 0x01, 0x80],
        ];
        fuzz("aac asc", 0xAAC0, 3_000, |rng| {
            let asc = if rng.chance(1, 3) {
                rng.bytes(8)
            } else {
                let v = *rng.pick(&valid);
                mutate(rng, v)
            };
            if let Ok(cfg) = parse_audio_specific_config(&asc) {
                // Whatever was parsed can frame a payload of any length.
                let mut out = BytesMut::new();
                adts_header(&cfg, rng.below(usize::MAX), &mut out);
                assert_eq!(out.len(), ADTS_HEADER_LEN);
                assert_eq!(&out[..2], &[0xFF, 0xF1]);
            }
        });
    }
}
