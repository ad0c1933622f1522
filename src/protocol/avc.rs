//! H.264/AVC as it travels in RTMP/FLV: the AVCDecoderConfigurationRecord (ISO/IEC 14496-15
//! §5.2.4.1) carried by the sequence-header tag, the sequence parameter set inside it (ITU-T H.264
//! §7.3.2.1.1, for width, height, profile and level), and the length-prefixed ("AVCC") NALUs of
//! every other video tag, which MPEG-TS wants as an Annex B byte stream.
//!
//! Everything here reads hostile input: a publisher controls every byte. Parsers return
//! [`AvcError`] instead of panicking (xiu#66 crashed a server on a malformed SPS), and they only
//! allocate in proportion to the input they were given.

use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

/// NAL unit types this module cares about (H.264 Table 7-1).
pub mod nal_type {
    /// Coded slice of a non-IDR picture.
    pub const SLICE: u8 = 1;
    /// Coded slice of an IDR picture: decoding may start here.
    pub const IDR: u8 = 5;
    /// Supplemental enhancement information.
    pub const SEI: u8 = 6;
    /// Sequence parameter set.
    pub const SPS: u8 = 7;
    /// Picture parameter set.
    pub const PPS: u8 = 8;
    /// Access unit delimiter.
    pub const AUD: u8 = 9;
}

/// The Annex B start code this module writes before every NALU.
pub const START_CODE: [u8; 4] = [0, 0, 0, 1];

/// An access unit delimiter NALU with its start code: `primary_pic_type` 7 ("any slice type"),
/// followed by the RBSP stop bit. This is what ffmpeg and SRS write at the start of each
/// access unit in MPEG-TS, where H.264 requires one (ISO/IEC 13818-1 §2.14).
pub const AUD_NALU: [u8; 6] = [0, 0, 0, 1, nal_type::AUD, 0xF0];

/// The SPS nests loops whose counts it declares itself; these are the spec's limits
/// (H.264 §7.4.2.1.1), checked so a hostile count cannot make a parser spin.
const MAX_REF_FRAMES_IN_POC_CYCLE: u64 = 255;

/// Why H.264 data could not be read. Every variant is the publisher's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AvcError {
    /// The configuration record or SPS ends before a field it must contain.
    Truncated { what: &'static str },
    /// `configurationVersion` of the record is not 1.
    UnsupportedConfigVersion(u8),
    /// NALU length fields are 1, 2 or 4 bytes (3 works too); this one is not.
    BadNaluLengthSize(u8),
    /// A length-prefixed NALU claims more bytes than the tag holds.
    NaluPastEnd {
        offset: usize,
        length: usize,
        available: usize,
    },
    /// A NAL unit header has its `forbidden_zero_bit` set.
    ForbiddenBitSet { offset: usize },
    /// The NALU is not of the type the parser expected (e.g. an SPS that is not type 7).
    UnexpectedNalType { expected: u8, found: u8 },
    /// An SPS field holds a value the spec does not allow.
    SpsValueOutOfRange { field: &'static str, value: u64 },
}

impl fmt::Display for AvcError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AvcError::Truncated { what } => write!(f, "H.264 data truncated in {what}"),
            AvcError::UnsupportedConfigVersion(v) => {
                write!(f, "AVCDecoderConfigurationRecord version {v} is not 1")
            }
            AvcError::BadNaluLengthSize(n) => write!(f, "NALU length size {n} is not 1..=4"),
            AvcError::NaluPastEnd {
                offset,
                length,
                available,
            } => write!(
                f,
                "NALU at offset {offset} claims {length} bytes but {available} remain"
            ),
            AvcError::ForbiddenBitSet { offset } => {
                write!(
                    f,
                    "NAL header at offset {offset} has forbidden_zero_bit set"
                )
            }
            AvcError::UnexpectedNalType { expected, found } => {
                write!(f, "expected NAL type {expected}, found {found}")
            }
            AvcError::SpsValueOutOfRange { field, value } => {
                write!(f, "SPS field {field} = {value} is out of range")
            }
        }
    }
}

impl std::error::Error for AvcError {}

/// What the sequence header tells about the stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AvcConfig {
    /// `AVCProfileIndication` (66 Baseline, 77 Main, 100 High, ...).
    pub profile: u8,
    /// `AVCLevelIndication`, ten times the level number (31 = level 3.1).
    pub level: u8,
    /// Bytes in each NALU length prefix of the tags that follow (1, 2 or 4).
    pub nalu_length_size: u8,
    /// Sequence parameter sets, each a whole NALU (header byte included).
    pub sps: Vec<Bytes>,
    /// Picture parameter sets, each a whole NALU.
    pub pps: Vec<Bytes>,
    /// Luma width in pixels after cropping, from the first SPS; 0 if it could not be parsed.
    pub width: u32,
    /// Luma height in pixels after cropping (frames, not fields); 0 if unknown.
    pub height: u32,
}

/// The fields of one SPS that srsd reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpsInfo {
    pub profile: u8,
    pub level: u8,
    pub width: u32,
    pub height: u32,
}

/// Parses an AVCDecoderConfigurationRecord (the body of an AVC sequence-header tag after its
/// 5-byte FLV video header).
///
/// A record whose first SPS cannot be parsed still succeeds, with `width` and `height` 0: the
/// stream is playable even when srsd cannot describe it.
pub fn parse_avc_config(record: &[u8]) -> Result<AvcConfig, AvcError> {
    let mut r = ByteReader::new(record);
    let version = r.u8("configurationVersion")?;
    if version != 1 {
        return Err(AvcError::UnsupportedConfigVersion(version));
    }
    let profile = r.u8("AVCProfileIndication")?;
    let _compatibility = r.u8("profile_compatibility")?;
    let level = r.u8("AVCLevelIndication")?;
    let nalu_length_size = (r.u8("lengthSizeMinusOne")? & 0x03) + 1;
    let num_sps = r.u8("numOfSequenceParameterSets")? & 0x1F;
    let mut sps = Vec::with_capacity(usize::from(num_sps));
    for _ in 0..num_sps {
        let len = usize::from(r.u16("sequenceParameterSetLength")?);
        sps.push(Bytes::copy_from_slice(
            r.take(len, "sequenceParameterSetNALUnit")?,
        ));
    }
    let num_pps = r.u8("numOfPictureParameterSets")?;
    let mut pps = Vec::with_capacity(usize::from(num_pps).min(r.remaining()));
    for _ in 0..num_pps {
        let len = usize::from(r.u16("pictureParameterSetLength")?);
        pps.push(Bytes::copy_from_slice(
            r.take(len, "pictureParameterSetNALUnit")?,
        ));
    }
    // High profiles may append chroma/bit-depth fields and SPS extensions; nothing here needs
    // them, so the rest of the record is ignored.
    let (width, height) = match sps.first().map(|s| parse_sps(s)) {
        Some(Ok(info)) => (info.width, info.height),
        _ => (0, 0),
    };
    Ok(AvcConfig {
        profile,
        level,
        nalu_length_size,
        sps,
        pps,
        width,
        height,
    })
}

/// Profiles whose SPS carries `chroma_format_idc`, bit depths and scaling lists
/// (H.264 §7.3.2.1.1).
fn has_chroma_info(profile_idc: u8) -> bool {
    matches!(
        profile_idc,
        100 | 110 | 122 | 244 | 44 | 83 | 86 | 118 | 128 | 138 | 139 | 134 | 135
    )
}

/// Parses a sequence parameter set NALU (header byte included) far enough to know the picture
/// size: H.264 §7.3.2.1.1 up to `frame_cropping`, skipping what lies between.
pub fn parse_sps(nalu: &[u8]) -> Result<SpsInfo, AvcError> {
    let (&header, _) = nalu.split_first().ok_or(AvcError::Truncated {
        what: "SPS NAL header",
    })?;
    let found = header & 0x1F;
    if found != nal_type::SPS {
        return Err(AvcError::UnexpectedNalType {
            expected: nal_type::SPS,
            found,
        });
    }
    let rbsp = unescape_rbsp(nalu.get(1..).unwrap_or_default());
    let mut r = BitReader::new(&rbsp);
    let profile = r.bits(8)? as u8;
    let _constraint_flags = r.bits(8)?;
    let level = r.bits(8)? as u8;
    let _sps_id = r.ue()?;

    // 4:2:0 unless the profile says otherwise.
    let mut chroma_format_idc = 1;
    let mut separate_colour_plane = false;
    if has_chroma_info(profile) {
        chroma_format_idc = r.ue()?;
        if chroma_format_idc > 3 {
            return Err(AvcError::SpsValueOutOfRange {
                field: "chroma_format_idc",
                value: chroma_format_idc,
            });
        }
        if chroma_format_idc == 3 {
            separate_colour_plane = r.flag()?;
        }
        let _bit_depth_luma_minus8 = r.ue()?;
        let _bit_depth_chroma_minus8 = r.ue()?;
        let _qpprime_y_zero_transform_bypass = r.flag()?;
        if r.flag()? {
            // seq_scaling_matrix_present_flag: 6 4x4 lists, then 2 (or 6 for 4:4:4) 8x8 lists.
            let lists = if chroma_format_idc == 3 { 12 } else { 8 };
            for i in 0..lists {
                if r.flag()? {
                    skip_scaling_list(&mut r, if i < 6 { 16 } else { 64 })?;
                }
            }
        }
    }
    let _log2_max_frame_num_minus4 = r.ue()?;
    match r.ue()? {
        0 => {
            let _log2_max_pic_order_cnt_lsb_minus4 = r.ue()?;
        }
        1 => {
            let _delta_pic_order_always_zero = r.flag()?;
            let _offset_for_non_ref_pic = r.se()?;
            let _offset_for_top_to_bottom_field = r.se()?;
            let cycle = r.ue()?;
            if cycle > MAX_REF_FRAMES_IN_POC_CYCLE {
                return Err(AvcError::SpsValueOutOfRange {
                    field: "num_ref_frames_in_pic_order_cnt_cycle",
                    value: cycle,
                });
            }
            for _ in 0..cycle {
                let _offset_for_ref_frame = r.se()?;
            }
        }
        2 => {}
        other => {
            return Err(AvcError::SpsValueOutOfRange {
                field: "pic_order_cnt_type",
                value: other,
            })
        }
    }
    let _max_num_ref_frames = r.ue()?;
    let _gaps_in_frame_num_allowed = r.flag()?;
    let width_in_mbs = r.ue()? + 1;
    let height_in_map_units = r.ue()? + 1;
    let frame_mbs_only = r.flag()?;
    if !frame_mbs_only {
        let _mb_adaptive_frame_field = r.flag()?;
    }
    let _direct_8x8_inference = r.flag()?;
    let (mut crop_left, mut crop_right, mut crop_top, mut crop_bottom) = (0, 0, 0, 0);
    if r.flag()? {
        crop_left = r.ue()?;
        crop_right = r.ue()?;
        crop_top = r.ue()?;
        crop_bottom = r.ue()?;
    }
    // The VUI that follows holds nothing srsd reports.

    // H.264 §7.4.2.1.1, equations 7-19 .. 7-22: crop units depend on the chroma subsampling
    // (ChromaArrayType) and on whether pictures are coded as fields.
    let field_factor: u64 = if frame_mbs_only { 1 } else { 2 };
    let chroma_array_type = if separate_colour_plane {
        0
    } else {
        chroma_format_idc
    };
    let (crop_unit_x, crop_unit_y) = match chroma_array_type {
        0 => (1, field_factor),
        1 => (2, 2 * field_factor),
        2 => (2, field_factor),
        _ => (1, field_factor),
    };
    // ue() values are below 2^32, so none of these products overflow a u64.
    let coded_width = width_in_mbs * 16;
    let coded_height = height_in_map_units * 16 * field_factor;
    let crop_x = (crop_left + crop_right) * crop_unit_x;
    let crop_y = (crop_top + crop_bottom) * crop_unit_y;
    let width =
        coded_width
            .checked_sub(crop_x)
            .filter(|w| *w > 0)
            .ok_or(AvcError::SpsValueOutOfRange {
                field: "frame_crop_left_offset + frame_crop_right_offset",
                value: crop_left + crop_right,
            })?;
    let height = coded_height.checked_sub(crop_y).filter(|h| *h > 0).ok_or(
        AvcError::SpsValueOutOfRange {
            field: "frame_crop_top_offset + frame_crop_bottom_offset",
            value: crop_top + crop_bottom,
        },
    )?;
    let width = u32::try_from(width).map_err(|_| AvcError::SpsValueOutOfRange {
        field: "pic_width_in_mbs_minus1",
        value: width_in_mbs - 1,
    })?;
    let height = u32::try_from(height).map_err(|_| AvcError::SpsValueOutOfRange {
        field: "pic_height_in_map_units_minus1",
        value: height_in_map_units - 1,
    })?;
    Ok(SpsInfo {
        profile,
        level,
        width,
        height,
    })
}

/// Skips one `scaling_list()` (H.264 §7.3.2.1.1.1). Only the delta values are coded, and the
/// list ends early once a delta makes `nextScale` 0.
fn skip_scaling_list(r: &mut BitReader<'_>, size: usize) -> Result<(), AvcError> {
    let mut last_scale: i64 = 8;
    let mut next_scale: i64 = 8;
    for _ in 0..size {
        if next_scale != 0 {
            let delta = r.se()?;
            next_scale = (last_scale + delta).rem_euclid(256);
        }
        if next_scale != 0 {
            last_scale = next_scale;
        }
    }
    Ok(())
}

/// Removes emulation-prevention bytes (`00 00 03` -> `00 00`, H.264 §7.4.1), giving the RBSP.
fn unescape_rbsp(ebsp: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(ebsp.len());
    let mut zeros = 0;
    for &b in ebsp {
        if zeros >= 2 && b == 3 {
            zeros = 0;
            continue;
        }
        zeros = if b == 0 { zeros + 1 } else { 0 };
        out.push(b);
    }
    out
}

/// `"Baseline"`, `"Main"`, `"High"`, ... for an `AVCProfileIndication`, as SRS's API names them.
pub fn profile_name(profile: u8) -> &'static str {
    match profile {
        66 => "Baseline",
        77 => "Main",
        88 => "Extended",
        100 => "High",
        110 => "High10",
        122 => "High422",
        244 => "High444",
        _ => "Other",
    }
}

/// `"3.1"` for level 31, `"4"` for 40: the level number is `level_idc / 10`.
pub fn level_name(level: u8) -> String {
    match level % 10 {
        0 => format!("{}", level / 10),
        minor => format!("{}.{}", level / 10, minor),
    }
}

/// Whether `data` starts with an Annex B start code (`00 00 01` or `00 00 00 01`).
///
/// A 4-byte AVCC length of 256..=511 also starts with `00 00 01`, so this alone cannot tell the
/// two apart; [`to_annexb`] therefore tries the length-prefixed reading first.
pub fn is_annexb(data: &[u8]) -> bool {
    data.starts_with(&[0, 0, 1]) || data.starts_with(&[0, 0, 0, 1])
}

/// Splits length-prefixed NALUs. Succeeds only if the prefixes tile `data` exactly and every
/// NAL header is well formed; empty NALUs are skipped.
fn split_avcc(data: &[u8], length_size: usize) -> Result<Vec<&[u8]>, AvcError> {
    let mut nalus = Vec::new();
    let mut offset = 0;
    while offset < data.len() {
        let prefix = data
            .get(offset..offset + length_size)
            .ok_or(AvcError::NaluPastEnd {
                offset,
                length: length_size,
                available: data.len() - offset,
            })?;
        let length = prefix
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        let start = offset + length_size;
        let nalu = start
            .checked_add(length)
            .and_then(|end| data.get(start..end))
            .ok_or(AvcError::NaluPastEnd {
                offset,
                length,
                available: data.len() - start,
            })?;
        if let Some(&header) = nalu.first() {
            if header & 0x80 != 0 {
                return Err(AvcError::ForbiddenBitSet { offset: start });
            }
            nalus.push(nalu);
        }
        offset = start + length;
    }
    Ok(nalus)
}

/// Splits an Annex B byte stream at its start codes. Zero bytes before a start code are
/// `trailing_zero_8bits` (or the first byte of a 4-byte start code) and belong to no NALU.
fn split_annexb(data: &[u8]) -> Vec<&[u8]> {
    let mut nalus = Vec::new();
    let mut start: Option<usize> = None;
    let mut i = 0;
    while i + 3 <= data.len() {
        if data.get(i..i + 3) == Some(&[0, 0, 1]) {
            if let Some(s) = start {
                push_trimmed(&mut nalus, data.get(s..i).unwrap_or_default());
            }
            i += 3;
            start = Some(i);
        } else {
            i += 1;
        }
    }
    if let Some(s) = start {
        push_trimmed(&mut nalus, data.get(s..).unwrap_or_default());
    }
    nalus
}

fn push_trimmed<'a>(nalus: &mut Vec<&'a [u8]>, nalu: &'a [u8]) {
    let end = nalu.iter().rposition(|&b| b != 0).map_or(0, |p| p + 1);
    if let Some(n) = nalu.get(..end).filter(|n| !n.is_empty()) {
        nalus.push(n);
    }
}

fn nal_type_of(nalu: &[u8]) -> u8 {
    nalu.first().map_or(0, |h| h & 0x1F)
}

/// Appends one access unit to `out` as Annex B, ready for a TS PES.
///
/// `data` is the body of an AVC NALU tag after its 5-byte FLV video header. It is read as
/// `nalu_length_size`-prefixed NALUs; if that reading fails and `data` starts with a start code
/// (some encoders put Annex B inside RTMP), it is read as Annex B instead. Either way the output:
///
/// * starts with an access unit delimiter, unless the access unit has one;
/// * carries the SPS and PPS from `config` right after the AUD when the access unit holds an
///   IDR slice (or the tag is flagged `keyframe`) and lacks its own, so that every segment
///   and every player joining at a keyframe can start decoding;
/// * has a 4-byte start code before every NALU.
///
/// On error nothing is appended.
pub fn to_annexb(
    data: &[u8],
    nalu_length_size: u8,
    config: Option<&AvcConfig>,
    keyframe: bool,
    out: &mut BytesMut,
) -> Result<(), AvcError> {
    if !(1..=4).contains(&nalu_length_size) {
        return Err(AvcError::BadNaluLengthSize(nalu_length_size));
    }
    let nalus = match split_avcc(data, usize::from(nalu_length_size)) {
        Ok(nalus) => nalus,
        Err(_) if is_annexb(data) => split_annexb(data),
        Err(e) => return Err(e),
    };

    let has = |t: u8| nalus.iter().any(|n| nal_type_of(n) == t);
    let has_aud = has(nal_type::AUD);
    let wants_parameter_sets = keyframe || has(nal_type::IDR);
    let (insert_sps, insert_pps): (&[Bytes], &[Bytes]) = match config {
        Some(c) if wants_parameter_sets => (
            if has(nal_type::SPS) {
                &[]
            } else {
                c.sps.as_slice()
            },
            if has(nal_type::PPS) {
                &[]
            } else {
                c.pps.as_slice()
            },
        ),
        _ => (&[], &[]),
    };

    let payload: usize = nalus.iter().map(|n| n.len() + START_CODE.len()).sum();
    let params: usize = insert_sps
        .iter()
        .chain(insert_pps)
        .map(|n| n.len() + START_CODE.len())
        .sum();
    out.reserve(AUD_NALU.len() + params + payload);

    let mut rest = nalus.as_slice();
    match rest.split_first() {
        Some((first, tail)) if nal_type_of(first) == nal_type::AUD => {
            put_nalu(out, first);
            rest = tail;
        }
        _ if !has_aud => out.put_slice(&AUD_NALU),
        _ => {}
    }
    for ps in insert_sps.iter().chain(insert_pps) {
        put_nalu(out, ps);
    }
    for nalu in rest {
        put_nalu(out, nalu);
    }
    Ok(())
}

fn put_nalu(out: &mut BytesMut, nalu: &[u8]) {
    out.put_slice(&START_CODE);
    out.put_slice(nalu);
}

/// Reads whole bytes of the configuration record.
struct ByteReader<'a> {
    data: &'a [u8],
}

impl<'a> ByteReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        ByteReader { data }
    }

    fn remaining(&self) -> usize {
        self.data.len()
    }

    fn take(&mut self, n: usize, what: &'static str) -> Result<&'a [u8], AvcError> {
        if n > self.data.len() {
            return Err(AvcError::Truncated { what });
        }
        let (head, tail) = self.data.split_at(n);
        self.data = tail;
        Ok(head)
    }

    fn u8(&mut self, what: &'static str) -> Result<u8, AvcError> {
        Ok(self.take(1, what)?.first().copied().unwrap_or_default())
    }

    fn u16(&mut self, what: &'static str) -> Result<u16, AvcError> {
        let b = self.take(2, what)?;
        Ok(b.iter().fold(0u16, |acc, &x| (acc << 8) | u16::from(x)))
    }
}

/// MSB-first bit reader over an RBSP, with H.264's Exp-Golomb codes (§9.1).
struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    fn bit(&mut self) -> Result<u64, AvcError> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or(AvcError::Truncated { what: "SPS" })?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u64::from(bit))
    }

    /// Reads `n` (at most 64) bits as an unsigned number.
    fn bits(&mut self, n: u32) -> Result<u64, AvcError> {
        let mut v = 0u64;
        for _ in 0..n.min(64) {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }

    fn flag(&mut self) -> Result<bool, AvcError> {
        Ok(self.bit()? == 1)
    }

    /// `ue(v)`: unsigned Exp-Golomb. Values need at most 32 leading zeros (2^32 - 1); more is
    /// not a valid code in H.264 and is refused rather than overflowing.
    fn ue(&mut self) -> Result<u64, AvcError> {
        let mut leading_zeros = 0;
        while self.bit()? == 0 {
            leading_zeros += 1;
            if leading_zeros > 32 {
                return Err(AvcError::SpsValueOutOfRange {
                    field: "Exp-Golomb leading zeros",
                    value: leading_zeros,
                });
            }
        }
        Ok((1u64 << leading_zeros) - 1 + self.bits(leading_zeros as u32)?)
    }

    /// `se(v)`: signed Exp-Golomb, mapped 1, -1, 2, -2, ... from ue 1, 2, 3, 4, ...
    fn se(&mut self) -> Result<i64, AvcError> {
        let k = self.ue()? as i64;
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.split_whitespace().collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    // Parameter sets written by x264 (ffmpeg -c:v libx264), sizes confirmed by ffprobe.
    const SPS_320X240_BASELINE: &str = "6742c00dd90141fb011000000300100000030320f142a480";
    const PPS_320X240_BASELINE: &str = "68cb83cb20";
    /// 1920x1080 is coded as 1088 lines with frame_crop_bottom_offset 4 (x2 for 4:2:0).
    const SPS_1920X1080_HIGH: &str = "67640028acd940780227e5c044000003000400000300c83c60c658";
    /// High 4:4:4 Predictive: chroma_format_idc 3 and its separate_colour_plane_flag.
    const SPS_1280X720_HIGH444: &str = "67f4001f919b280a00b76022000003000200000300641e30632c";
    /// Interlaced Main: frame_mbs_only_flag 0, 12 field map units, crop bottom 6 (x4).
    const SPS_640X360_INTERLACED: &str = "674d401eeca05031f9f011000003000100000300321f142996";

    /// Test-only writer, to build SPSs with fields x264 never writes (scaling lists, POC 1).
    struct BitWriter {
        bytes: Vec<u8>,
        bits: usize,
    }

    impl BitWriter {
        fn new() -> Self {
            BitWriter {
                bytes: Vec::new(),
                bits: 0,
            }
        }
        fn put(&mut self, n: u32, v: u64) {
            for i in (0..n).rev() {
                if self.bits % 8 == 0 {
                    self.bytes.push(0);
                }
                let bit = ((v >> i) & 1) as u8;
                *self.bytes.last_mut().unwrap() |= bit << (7 - self.bits % 8);
                self.bits += 1;
            }
        }
        fn ue(&mut self, v: u64) {
            let x = v + 1;
            let len = 64 - x.leading_zeros();
            self.put(len - 1, 0);
            self.put(len, x);
        }
        fn se(&mut self, v: i64) {
            self.ue(if v > 0 {
                (2 * v - 1) as u64
            } else {
                (-2 * v) as u64
            });
        }
        fn finish(mut self) -> Vec<u8> {
            self.put(1, 1); // rbsp_stop_one_bit
            self.bytes
        }
    }

    fn record(sps: &[&[u8]], pps: &[&[u8]]) -> Vec<u8> {
        let mut r = vec![
            1,
            sps[0][1],
            sps[0][2],
            sps[0][3],
            0xFF,
            0xE0 | sps.len() as u8,
        ];
        for s in sps {
            r.extend_from_slice(&(s.len() as u16).to_be_bytes());
            r.extend_from_slice(s);
        }
        r.push(pps.len() as u8);
        for p in pps {
            r.extend_from_slice(&(p.len() as u16).to_be_bytes());
            r.extend_from_slice(p);
        }
        r
    }

    #[test]
    fn parses_x264_sps_vectors() {
        let table = [
            (SPS_320X240_BASELINE, 66, 13, 320, 240),
            (SPS_1920X1080_HIGH, 100, 40, 1920, 1080),
            (SPS_1280X720_HIGH444, 244, 31, 1280, 720),
            (SPS_640X360_INTERLACED, 77, 30, 640, 360),
        ];
        for (sps, profile, level, width, height) in table {
            assert_eq!(
                parse_sps(&hex(sps)),
                Ok(SpsInfo {
                    profile,
                    level,
                    width,
                    height
                }),
                "{sps}"
            );
        }
    }

    #[test]
    fn parses_configuration_record_with_one_sps_and_pps() {
        let sps = hex(SPS_320X240_BASELINE);
        let pps = hex(PPS_320X240_BASELINE);
        let cfg = parse_avc_config(&record(&[&sps], &[&pps])).unwrap();
        assert_eq!(
            cfg,
            AvcConfig {
                profile: 66,
                level: 13,
                nalu_length_size: 4,
                sps: vec![Bytes::from(sps)],
                pps: vec![Bytes::from(pps)],
                width: 320,
                height: 240,
            }
        );
        assert_eq!(profile_name(cfg.profile), "Baseline");
        assert_eq!(level_name(cfg.level), "1.3");
    }

    #[test]
    fn configuration_record_bytes_are_read_field_by_field() {
        // version 1, High 4.0, lengthSizeMinusOne 1, two SPS (garbage second), one PPS.
        let bytes = hex("01 64 00 28 fd e2 0003 670000 0002 6701 01 0002 68ee ffff");
        let cfg = parse_avc_config(&bytes).unwrap();
        assert_eq!((cfg.profile, cfg.level, cfg.nalu_length_size), (100, 40, 2));
        assert_eq!(
            cfg.sps,
            vec![Bytes::from(hex("670000")), Bytes::from(hex("6701"))]
        );
        assert_eq!(cfg.pps, vec![Bytes::from(hex("68ee"))]);
        // The first SPS is too short to hold a size: reported as unknown, not an error.
        assert_eq!((cfg.width, cfg.height), (0, 0));
    }

    #[test]
    fn rejects_bad_configuration_records() {
        assert_eq!(
            parse_avc_config(&[]),
            Err(AvcError::Truncated {
                what: "configurationVersion"
            })
        );
        assert_eq!(
            parse_avc_config(&hex("02 64 00 28 ff e1")),
            Err(AvcError::UnsupportedConfigVersion(2))
        );
        assert_eq!(
            parse_avc_config(&hex("01 64 00 28 ff e1 0010 6764")),
            Err(AvcError::Truncated {
                what: "sequenceParameterSetNALUnit"
            })
        );
        assert_eq!(
            parse_avc_config(&hex("01 64 00 28 ff e0")),
            Err(AvcError::Truncated {
                what: "numOfPictureParameterSets"
            })
        );
    }

    #[test]
    fn malformed_first_sps_keeps_profile_and_level() {
        // An SPS whose pic_order_cnt_type is 7 (xiu#66-style garbage).
        let mut w = BitWriter::new();
        w.put(8, 0x67);
        w.put(8, 77);
        w.put(8, 0);
        w.put(8, 31);
        w.ue(0);
        w.ue(0);
        w.ue(7);
        let sps = w.finish();
        let cfg = parse_avc_config(&record(&[&sps], &[])).unwrap();
        assert_eq!(
            (cfg.profile, cfg.level, cfg.width, cfg.height),
            (77, 31, 0, 0)
        );
        assert_eq!(
            parse_sps(&sps),
            Err(AvcError::SpsValueOutOfRange {
                field: "pic_order_cnt_type",
                value: 7
            })
        );
    }

    /// Builds a High-profile SPS with the given scaling lists (None = list absent) and POC type.
    fn high_sps(lists: &[Option<Vec<i64>>], poc_cycle: &[i64], crop: [u64; 4]) -> Vec<u8> {
        let mut w = BitWriter::new();
        w.put(8, 0x67);
        w.put(8, 100);
        w.put(8, 0);
        w.put(8, 41);
        w.ue(0); // sps id
        w.ue(1); // chroma_format_idc 4:2:0
        w.ue(0);
        w.ue(0);
        w.put(1, 0);
        w.put(1, 1); // seq_scaling_matrix_present_flag
        for l in lists {
            match l {
                None => w.put(1, 0),
                Some(deltas) => {
                    w.put(1, 1);
                    for d in deltas {
                        w.se(*d);
                    }
                }
            }
        }
        w.ue(0); // log2_max_frame_num_minus4
        w.ue(1); // pic_order_cnt_type 1
        w.put(1, 0);
        w.se(-2);
        w.se(3);
        w.ue(poc_cycle.len() as u64);
        for o in poc_cycle {
            w.se(*o);
        }
        w.ue(4); // max_num_ref_frames
        w.put(1, 0);
        w.ue(79); // 1280
        w.ue(44); // 720
        w.put(1, 1); // frame_mbs_only
        w.put(1, 1); // direct_8x8
        w.put(1, 1); // frame_cropping_flag
        for c in crop {
            w.ue(c);
        }
        w.put(1, 0); // no VUI
        w.finish()
    }

    #[test]
    fn skips_scaling_lists_and_poc_type_1() {
        // List 0: 16 explicit deltas. List 1: a delta that makes nextScale 0 ends the list
        // after one value (-8 from lastScale 8). List 6 (8x8): 64 deltas.
        let mut lists: Vec<Option<Vec<i64>>> = vec![None; 8];
        lists[0] = Some((0..16).map(|i| i % 3 - 1).collect());
        lists[1] = Some(vec![-8]);
        lists[6] = Some((0..64).map(|i| if i % 2 == 0 { 5 } else { -5 }).collect());
        let sps = high_sps(&lists, &[1, -1, 7], [2, 6, 0, 4]);
        assert_eq!(
            parse_sps(&sps),
            Ok(SpsInfo {
                profile: 100,
                level: 41,
                width: 1280 - 16,
                height: 720 - 8
            })
        );
    }

    #[test]
    fn crop_larger_than_picture_is_an_error() {
        let sps = high_sps(&vec![None; 8], &[], [0, 0, 400, 0]);
        assert!(matches!(
            parse_sps(&sps),
            Err(AvcError::SpsValueOutOfRange { .. })
        ));
        assert_eq!(
            parse_sps(&hex("68 42")),
            Err(AvcError::UnexpectedNalType {
                expected: 7,
                found: 8
            })
        );
    }

    #[test]
    fn emulation_prevention_bytes_are_removed() {
        assert_eq!(
            unescape_rbsp(&hex("00 00 03 01 00 00 03 00 03")),
            hex("00 00 01 00 00 00 03")
        );
        assert_eq!(unescape_rbsp(&hex("00 03 00 00 03")), hex("00 03 00 00"));
    }

    #[test]
    fn exp_golomb_round_trips() {
        let values: Vec<u64> = (0..300)
            .chain([65535, (1 << 32) - 2, (1 << 32) - 1])
            .collect();
        let mut w = BitWriter::new();
        for v in &values {
            w.ue(*v);
        }
        for v in -300i64..300 {
            w.se(v);
        }
        let bytes = w.finish();
        let mut r = BitReader::new(&bytes);
        for v in &values {
            assert_eq!(r.ue().unwrap(), *v);
        }
        for v in -300i64..300 {
            assert_eq!(r.se().unwrap(), v);
        }
        // 33 leading zeros is no H.264 code.
        let mut r = BitReader::new(&[0, 0, 0, 0, 0x40]);
        assert!(r.ue().is_err());
    }

    #[test]
    fn truncation_at_every_offset_never_panics() {
        for sps in [
            SPS_320X240_BASELINE,
            SPS_1920X1080_HIGH,
            SPS_1280X720_HIGH444,
            SPS_640X360_INTERLACED,
        ] {
            let sps = hex(sps);
            let rec = record(&[&sps], &[&hex(PPS_320X240_BASELINE)]);
            for n in 0..rec.len() {
                let _ = parse_avc_config(&rec[..n]);
            }
            for n in 0..sps.len() {
                let _ = parse_sps(&sps[..n]);
                let mut out = BytesMut::new();
                let _ = to_annexb(&sps[..n], 4, None, true, &mut out);
            }
        }
    }

    /// xorshift64*: deterministic "random" bytes without a dependency.
    fn noise(seed: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed ^= *seed >> 12;
                *seed ^= *seed << 25;
                *seed ^= *seed >> 27;
                (seed.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn random_inputs_never_panic() {
        let mut seed = 0x9E37_79B9_7F4A_7C15;
        let cfg = parse_avc_config(&hex(&format!(
            "01640028ffe1{:04x}{SPS_1920X1080_HIGH}0100026811",
            SPS_1920X1080_HIGH.len() / 2
        )))
        .unwrap();
        assert_eq!((cfg.width, cfg.height), (1920, 1080));
        for i in 0..20_000 {
            let len = i % 64;
            let mut data = noise(&mut seed, len);
            let _ = parse_avc_config(&data);
            if let Some(b) = data.first_mut() {
                *b = 0x67;
            }
            let _ = parse_sps(&data);
            let mut out = BytesMut::new();
            if to_annexb(&data, (i % 5) as u8, Some(&cfg), i % 2 == 0, &mut out).is_err() {
                assert!(out.is_empty(), "nothing is written on error");
            }
        }
    }

    /// Scrambles SPS payload bytes (not the header) to hunt for panics in the bit parser.
    #[test]
    fn mutated_real_sps_never_panics() {
        let mut seed = 42;
        for sps in [
            SPS_1920X1080_HIGH,
            SPS_1280X720_HIGH444,
            SPS_640X360_INTERLACED,
        ] {
            let sps = hex(sps);
            for _ in 0..5_000 {
                let mut m = sps.clone();
                let r = noise(&mut seed, 3);
                let at = 1 + usize::from(r[0]) % (m.len() - 1);
                m[at] ^= r[1] | 1;
                let _ = parse_sps(&m);
            }
        }
    }

    fn annexb(nalus: &[&[u8]]) -> Vec<u8> {
        nalus
            .iter()
            .flat_map(|n| [&START_CODE[..], n].concat())
            .collect()
    }

    fn test_config() -> AvcConfig {
        AvcConfig {
            profile: 66,
            level: 13,
            nalu_length_size: 4,
            sps: vec![Bytes::from_static(&[0x67, 0xAA])],
            pps: vec![Bytes::from_static(&[0x68, 0xBB])],
            width: 0,
            height: 0,
        }
    }

    #[test]
    fn avcc_to_annexb_byte_table() {
        let cfg = test_config();
        let aud: &[u8] = &[0x09, 0xF0];
        let sps: &[u8] = &[0x67, 0xAA];
        let pps: &[u8] = &[0x68, 0xBB];
        let idr: &[u8] = &[0x65, 0x88, 0x84];
        let slice: &[u8] = &[0x41, 0x9A];
        let sei: &[u8] = &[0x06, 0x05, 0x01];
        let own_sps: &[u8] = &[0x67, 0xCC];
        let own_pps: &[u8] = &[0x68, 0xDD];
        // (length size, input, keyframe, expected output)
        let table: Vec<(u8, Vec<u8>, bool, Vec<u8>)> = vec![
            // P frame: AUD added, nothing else.
            (4, hex("00000002 419a"), false, annexb(&[aud, slice])),
            // IDR: AUD, SPS, PPS, then SEI and slice in their order.
            (
                4,
                hex("00000003 060501 00000003 658884"),
                true,
                annexb(&[aud, sps, pps, sei, idr]),
            ),
            // IDR with its own parameter sets: they are kept, not duplicated.
            (
                2,
                hex("0002 67cc 0002 68dd 0003 658884"),
                true,
                annexb(&[aud, own_sps, own_pps, idr]),
            ),
            // Encoder-sent AUD stays first; SPS/PPS go after it.
            (
                1,
                hex("02 09f0 03 658884"),
                false,
                annexb(&[aud, sps, pps, idr]),
            ),
            // Keyframe flag without an IDR NALU (open-GOP I frame) also gets parameter sets.
            (
                4,
                hex("00000002 419a"),
                true,
                annexb(&[aud, sps, pps, slice]),
            ),
            // Empty NALUs are dropped.
            (
                4,
                hex("00000000 00000002 419a"),
                false,
                annexb(&[aud, slice]),
            ),
            // Annex B inside RTMP (3- and 4-byte start codes, trailing zeros): re-framed.
            (
                4,
                hex("000001 060501 00000001 658884 0000"),
                true,
                annexb(&[aud, sps, pps, sei, idr]),
            ),
        ];
        for (size, input, keyframe, expected) in table {
            let mut out = BytesMut::new();
            to_annexb(&input, size, Some(&cfg), keyframe, &mut out).unwrap();
            assert_eq!(out.as_ref(), expected.as_slice(), "input {input:02x?}");
        }
    }

    #[test]
    fn avcc_length_that_looks_like_a_start_code_is_read_as_avcc() {
        // A 300-byte NALU has the 4-byte length 00 00 01 2C.
        let mut nalu = vec![0x41];
        nalu.resize(300, 0x55);
        let mut input = (nalu.len() as u32).to_be_bytes().to_vec();
        input.extend_from_slice(&nalu);
        assert!(is_annexb(&input));
        let mut out = BytesMut::new();
        to_annexb(&input, 4, None, false, &mut out).unwrap();
        assert_eq!(out.as_ref(), annexb(&[&[0x09, 0xF0], &nalu]).as_slice());
    }

    #[test]
    fn annexb_output_reads_back_as_the_same_nalus() {
        let cfg = test_config();
        let nalus: Vec<Vec<u8>> = vec![vec![0x06, 1, 2, 0, 0], vec![0x65, 0, 0, 3, 1, 9]];
        let mut avcc = Vec::new();
        for n in &nalus {
            avcc.extend_from_slice(&(n.len() as u32).to_be_bytes());
            avcc.extend_from_slice(n);
        }
        let mut out = BytesMut::new();
        to_annexb(&avcc, 4, Some(&cfg), true, &mut out).unwrap();
        let back = split_annexb(&out);
        // Trailing zeros of a NALU cannot survive Annex B framing (they are trailing_zero_8bits).
        assert_eq!(
            back,
            vec![
                &[0x09, 0xF0][..],
                &[0x67, 0xAA],
                &[0x68, 0xBB],
                &[0x06, 1, 2],
                &nalus[1]
            ]
        );
    }

    #[test]
    fn nalu_length_past_the_end_is_an_error() {
        let mut out = BytesMut::new();
        assert_eq!(
            to_annexb(&hex("00000005 6588"), 4, None, true, &mut out),
            Err(AvcError::NaluPastEnd {
                offset: 0,
                length: 5,
                available: 2
            })
        );
        assert_eq!(
            to_annexb(&hex("00000002 4188 0000"), 4, None, true, &mut out),
            Err(AvcError::NaluPastEnd {
                offset: 6,
                length: 4,
                available: 2
            })
        );
        assert_eq!(
            to_annexb(&hex("02 e188"), 1, None, true, &mut out),
            Err(AvcError::ForbiddenBitSet { offset: 1 })
        );
        assert_eq!(
            to_annexb(&hex("02 4188"), 0, None, true, &mut out),
            Err(AvcError::BadNaluLengthSize(0))
        );
        assert!(out.is_empty());
    }

    #[test]
    fn names_profiles_and_levels() {
        let table = [
            (66, "Baseline"),
            (77, "Main"),
            (88, "Extended"),
            (100, "High"),
            (110, "High10"),
            (122, "High422"),
            (244, "High444"),
            (0, "Other"),
        ];
        for (p, name) in table {
            assert_eq!(profile_name(p), name);
        }
        assert_eq!(level_name(31), "3.1");
        assert_eq!(level_name(40), "4");
        assert_eq!(level_name(9), "0.9");
        assert_eq!(level_name(52), "5.2");
    }
}
