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

/// Removes emulation-prevention bytes (`00 00 03` -> `00 00`, H.264 §7.4.1 and H.265
/// §7.4.2), giving the RBSP.
pub fn unescape_rbsp(ebsp: &[u8]) -> Vec<u8> {
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
pub(crate) fn split_avcc(data: &[u8], length_size: usize) -> Result<Vec<&[u8]>, AvcError> {
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

/// Splits an Annex B byte stream (H.264 or H.265) at its start codes (`00 00 01`, `00 00 00
/// 01`): the NAL units without their start codes. Zero bytes before a start code are
/// `trailing_zero_8bits` (or the first byte of a 4-byte start code) and belong to no NALU.
pub fn split_annexb(data: &[u8]) -> Vec<&[u8]> {
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

pub(crate) fn put_nalu(out: &mut BytesMut, nalu: &[u8]) {
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
pub(crate) struct BitReader<'a> {
    data: &'a [u8],
    /// Position in bits from the start of `data`.
    pos: usize,
}

impl<'a> BitReader<'a> {
    pub(crate) fn new(data: &'a [u8]) -> Self {
        BitReader { data, pos: 0 }
    }

    pub(crate) fn bit(&mut self) -> Result<u64, AvcError> {
        let byte = self
            .data
            .get(self.pos / 8)
            .ok_or(AvcError::Truncated { what: "SPS" })?;
        let bit = (byte >> (7 - self.pos % 8)) & 1;
        self.pos += 1;
        Ok(u64::from(bit))
    }

    /// Reads `n` (at most 64) bits as an unsigned number.
    pub(crate) fn bits(&mut self, n: u32) -> Result<u64, AvcError> {
        let mut v = 0u64;
        for _ in 0..n.min(64) {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }

    pub(crate) fn flag(&mut self) -> Result<bool, AvcError> {
        Ok(self.bit()? == 1)
    }

    /// `ue(v)`: unsigned Exp-Golomb. Values need at most 32 leading zeros (2^32 - 1); more is
    /// not a valid code in H.264 and is refused rather than overflowing.
    pub(crate) fn ue(&mut self) -> Result<u64, AvcError> {
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
    pub(crate) fn se(&mut self) -> Result<i64, AvcError> {
        let k = self.ue()? as i64;
        Ok(if k % 2 == 1 { (k + 1) / 2 } else { -(k / 2) })
    }
}

#[cfg(test)]
mod tests;
