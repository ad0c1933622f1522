//! H.265/HEVC as it travels in RTMP/FLV: the HEVCDecoderConfigurationRecord (`hvcC`, ISO/IEC
//! 14496-15 §8.3.3.1) of the sequence header, the SPS inside it (ITU-T H.265 §7.3.2.2, for
//! width and height), and the length-prefixed NALUs of coded frames, which MPEG-TS wants as
//! Annex B with VPS/SPS/PPS before each IRAP picture and an access unit delimiter first.
//!
//! A publisher controls every byte: parsers return [`AvcError`] (shared with H.264, whose bit
//! reader and NALU splitter this module reuses) and never panic.

use super::avc::{self, AvcError, BitReader};
use bytes::{BufMut, Bytes, BytesMut};

/// NAL unit types this module cares about (H.265 Table 7-1).
pub mod nal_type {
    /// First and last IRAP types (BLA, IDR, CRA and reserved IRAP): decoding may start here.
    pub const IRAP_FIRST: u8 = 16;
    pub const IRAP_LAST: u8 = 23;
    pub const VPS: u8 = 32;
    pub const SPS: u8 = 33;
    pub const PPS: u8 = 34;
    pub const AUD: u8 = 35;
}

/// An HEVC access unit delimiter with its start code: NAL header type 35 (layer 0, temporal
/// id 1), `pic_type` 2 (I, P and B slices) and the RBSP stop bit: the bytes ffmpeg's MPEG-TS
/// muxer writes (H.265 §7.3.2.5; ISO/IEC 13818-1 §2.17 wants one per access unit).
pub const AUD_NALU: [u8; 7] = [0, 0, 0, 1, nal_type::AUD << 1, 0x01, 0x50];

/// What the hvcC tells about the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HevcConfig {
    /// `general_profile_idc` (1 Main, 2 Main 10, 3 Main Still Picture, 4 range extensions).
    pub profile: u8,
    /// `general_tier_flag`: false Main tier, true High tier.
    pub high_tier: bool,
    /// `general_level_idc`: 30 x the level number (93 = level 3.1).
    pub level: u8,
    /// `lengthSizeMinusOne + 1`.
    pub nalu_length_size: u8,
    /// The VPS, SPS and PPS NALUs of the record, in record order, without start codes.
    pub parameter_sets: Vec<Bytes>,
    /// Picture size from the first SPS, cropped by its conformance window; 0 when the SPS is
    /// absent or unreadable (the record is still usable for muxing).
    pub width: u32,
    pub height: u32,
}

/// The fixed part of an hvcC before its NALU arrays.
const HVCC_FIXED_LEN: usize = 23;

/// Reads an hvcC (the body of an HEVC sequence header after its tag header).
pub fn parse_hvcc(record: &[u8]) -> Result<HevcConfig, AvcError> {
    let fixed = record
        .get(..HVCC_FIXED_LEN)
        .ok_or(AvcError::Truncated { what: "hvcC" })?;
    if fixed[0] != 1 {
        return Err(AvcError::UnsupportedConfigVersion(fixed[0]));
    }
    let mut c = HevcConfig {
        profile: fixed[1] & 0x1F,
        high_tier: fixed[1] & 0x20 != 0,
        level: fixed[12],
        nalu_length_size: (fixed[21] & 0x03) + 1,
        parameter_sets: Vec::new(),
        width: 0,
        height: 0,
    };
    let arrays = fixed[22];
    let mut rest = &record[HVCC_FIXED_LEN..];
    let mut take = |n: usize| -> Result<&[u8], AvcError> {
        if n > rest.len() {
            return Err(AvcError::Truncated {
                what: "hvcC arrays",
            });
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    for _ in 0..arrays {
        let nal_type = take(1)?[0] & 0x3F;
        let n = take(2)?;
        let count = u16::from_be_bytes([n[0], n[1]]);
        for _ in 0..count {
            let l = take(2)?;
            let nalu = take(usize::from(u16::from_be_bytes([l[0], l[1]])))?;
            if matches!(nal_type, nal_type::VPS | nal_type::SPS | nal_type::PPS) && !nalu.is_empty()
            {
                if nal_type == nal_type::SPS && c.width == 0 {
                    if let Ok((w, h)) = parse_sps(nalu) {
                        (c.width, c.height) = (w, h);
                    }
                }
                c.parameter_sets.push(Bytes::copy_from_slice(nalu));
            }
        }
    }
    Ok(c)
}

/// The cropped picture size (width, height) of an SPS NALU (with its 2-byte NAL header).
pub fn parse_sps(nalu: &[u8]) -> Result<(u32, u32), AvcError> {
    let found = nal_type_of(nalu);
    if found != nal_type::SPS {
        return Err(AvcError::UnexpectedNalType {
            expected: nal_type::SPS,
            found,
        });
    }
    let rbsp = avc::unescape_rbsp(nalu.get(2..).unwrap_or_default());
    let mut r = BitReader::new(&rbsp);
    r.bits(4)?; // sps_video_parameter_set_id
    let max_sub_layers_minus1 = r.bits(3)? as usize;
    r.bits(1)?; // sps_temporal_id_nesting_flag
                // profile_tier_level(1, max_sub_layers_minus1), §7.3.3: 96 bits of general fields, then
                // per sub-layer presence flags, padding to 8 entries, and the present sub-layer fields.
    r.bits(64)?;
    r.bits(32)?;
    let mut present = [(false, false); 8];
    for p in present.iter_mut().take(max_sub_layers_minus1) {
        *p = (r.flag()?, r.flag()?);
    }
    if max_sub_layers_minus1 > 0 {
        for _ in max_sub_layers_minus1..8 {
            r.bits(2)?;
        }
    }
    for &(profile, level) in present.iter().take(max_sub_layers_minus1) {
        if profile {
            r.bits(64)?;
            r.bits(24)?;
        }
        if level {
            r.bits(8)?;
        }
    }
    r.ue()?; // sps_seq_parameter_set_id
    let chroma_format_idc = r.ue()?;
    if chroma_format_idc > 3 {
        return Err(AvcError::SpsValueOutOfRange {
            field: "chroma_format_idc",
            value: chroma_format_idc,
        });
    }
    if chroma_format_idc == 3 {
        r.flag()?; // separate_colour_plane_flag
    }
    let width = r.ue()?;
    let height = r.ue()?;
    let (sub_w, sub_h) = match chroma_format_idc {
        1 => (2, 2),
        2 => (2, 1),
        _ => (1, 1),
    };
    let (mut crop_w, mut crop_h) = (0, 0);
    if r.flag()? {
        let (left, right, top, bottom) = (r.ue()?, r.ue()?, r.ue()?, r.ue()?);
        crop_w = sub_w * (left + right);
        crop_h = sub_h * (top + bottom);
    }
    // The level limits (§A.4.1) keep a real picture under 16888 luma samples a side.
    let (w, h) = (width.saturating_sub(crop_w), height.saturating_sub(crop_h));
    if w == 0 || h == 0 || w > 65535 || h > 65535 {
        return Err(AvcError::SpsValueOutOfRange {
            field: "pic_width/height_in_luma_samples",
            value: w.max(h),
        });
    }
    Ok((w as u32, h as u32))
}

/// The NAL unit type of an HEVC NALU (the 6 bits after `forbidden_zero_bit`).
pub fn nal_type_of(nalu: &[u8]) -> u8 {
    nalu.first().map_or(0xFF, |h| (h >> 1) & 0x3F)
}

/// Appends one HEVC access unit to `out` as Annex B, ready for a TS PES.
///
/// `data` holds `config`'s length-prefixed NALUs (or, if that reading fails and it starts
/// with a start code, Annex B). The output starts with an access unit delimiter (unless the
/// access unit has one), then VPS/SPS/PPS from `config` when the access unit holds an IRAP
/// picture (or `keyframe` says so) and lacks its own, then every NALU behind a 4-byte start
/// code. On error nothing is appended.
pub fn to_annexb(
    data: &[u8],
    config: Option<&HevcConfig>,
    keyframe: bool,
    out: &mut BytesMut,
) -> Result<(), AvcError> {
    let length_size = config.map_or(4, |c| c.nalu_length_size);
    let nalus = match avc::split_avcc(data, usize::from(length_size)) {
        Ok(nalus) => nalus,
        Err(_) if avc::is_annexb(data) => avc::split_annexb(data),
        Err(e) => return Err(e),
    };
    let has = |t: u8| nalus.iter().any(|n| nal_type_of(n) == t);
    let irap = nalus
        .iter()
        .any(|n| (nal_type::IRAP_FIRST..=nal_type::IRAP_LAST).contains(&nal_type_of(n)));
    let insert: &[Bytes] = match config {
        Some(c) if (keyframe || irap) && !has(nal_type::SPS) => &c.parameter_sets,
        _ => &[],
    };
    let size: usize = nalus
        .iter()
        .copied()
        .chain(insert.iter().map(|b| &b[..]))
        .map(|n| n.len() + avc::START_CODE.len())
        .sum();
    out.reserve(AUD_NALU.len() + size);
    let mut rest = nalus.as_slice();
    match rest.split_first() {
        Some((first, tail)) if nal_type_of(first) == nal_type::AUD => {
            avc::put_nalu(out, first);
            rest = tail;
        }
        _ if !has(nal_type::AUD) => out.put_slice(&AUD_NALU),
        _ => {}
    }
    for ps in insert {
        avc::put_nalu(out, ps);
    }
    for nalu in rest {
        avc::put_nalu(out, nalu);
    }
    Ok(())
}

/// SRS's and ffprobe's profile names.
pub fn profile_name(profile: u8) -> &'static str {
    match profile {
        1 => "Main",
        2 => "Main10",
        3 => "Main Still Picture",
        4 => "RExt",
        _ => "Other",
    }
}

/// `general_level_idc` as a level number: 93 -> "3.1".
pub fn level_name(level: u8) -> String {
    let (major, minor) = (level / 30, (level % 30) / 3);
    if minor == 0 {
        major.to_string()
    } else {
        format!("{major}.{minor}")
    }
}

#[cfg(test)]
mod tests;
