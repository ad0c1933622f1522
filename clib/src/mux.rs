//! Raw elementary streams to FLV tag bodies: H.264 and HEVC Annex B access units, AAC ADTS
//! frames. Pure functions and small state machines, no I/O.
//!
//! H.264 follows FLV's AVC packets (spec E.4.3): SPS and PPS become an
//! AVCDecoderConfigurationRecord (sent again whenever they change), the other NAL units of one
//! access unit one AVCPacketType 1 body with 4-byte lengths. HEVC is sent as Enhanced RTMP
//! (`hvc1`, SequenceStart / CodedFrames with a composition time) with an
//! HEVCDecoderConfigurationRecord built from VPS/SPS/PPS. Access unit delimiters are dropped,
//! as SRS's librtmp does.

use bytes::{BufMut, Bytes, BytesMut};

/// Why raw media could not be packed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MuxError {
    /// No NAL unit in the buffer (no start code).
    NoNalUnits,
    /// A frame before its parameter sets (SPS/PPS, or VPS/SPS/PPS) were seen.
    NoParameterSets,
    /// Not an ADTS frame (bad sync word or length).
    BadAdts,
    /// A parameter set too long for its 16-bit length field, or too short to read.
    BadParameterSet,
}

impl std::fmt::Display for MuxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MuxError::NoNalUnits => "no Annex B start code in the frame",
            MuxError::NoParameterSets => "a frame before its parameter sets",
            MuxError::BadAdts => "not an ADTS frame",
            MuxError::BadParameterSet => "a parameter set of bad length",
        })
    }
}

/// The NAL units of an Annex B buffer, the server's own splitter.
pub use srsd::protocol::avc::split_annexb;

/// One packed FLV video/audio body, and whether it is a sequence header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Packed {
    pub body: Bytes,
    pub config: bool,
}

fn put_units(out: &mut BytesMut, units: &[&[u8]]) {
    for u in units {
        out.put_u32(u.len() as u32);
        out.put_slice(u);
    }
}

fn cts_bytes(cts: i32) -> [u8; 3] {
    let b = cts.to_be_bytes();
    [b[1], b[2], b[3]]
}

/// H.264 Annex B to FLV AVC packets; remembers the parameter sets.
#[derive(Debug, Default)]
pub struct H264 {
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    sent_config: bool,
}

impl H264 {
    /// Packs one access unit (`dts`, `pts` in ms): a new sequence header first when SPS/PPS
    /// changed, then the frame (if it has any picture NAL units).
    pub fn pack(&mut self, annexb: &[u8], dts: u32, pts: u32) -> Result<Vec<Packed>, MuxError> {
        let units = split_annexb(annexb);
        if units.is_empty() {
            return Err(MuxError::NoNalUnits);
        }
        let mut frame = Vec::new();
        let mut key = false;
        for u in units {
            match u[0] & 0x1f {
                7 => {
                    if self.sps.as_deref() != Some(u) {
                        self.sps = Some(u.to_vec());
                        self.sent_config = false;
                    }
                }
                8 => {
                    if self.pps.as_deref() != Some(u) {
                        self.pps = Some(u.to_vec());
                        self.sent_config = false;
                    }
                }
                9 => {}
                5 => {
                    key = true;
                    frame.push(u);
                }
                _ => frame.push(u),
            }
        }
        let mut out = Vec::new();
        if !self.sent_config {
            if let (Some(sps), Some(pps)) = (&self.sps, &self.pps) {
                if sps.len() < 4 || sps.len() > 0xffff || pps.len() > 0xffff {
                    return Err(MuxError::BadParameterSet);
                }
                let mut b = BytesMut::with_capacity(16 + sps.len() + pps.len());
                b.put_slice(&[0x17, 0, 0, 0, 0]);
                b.put_slice(&[1, sps[1], sps[2], sps[3], 0xff, 0xe1]);
                b.put_u16(sps.len() as u16);
                b.put_slice(sps);
                b.put_u8(1);
                b.put_u16(pps.len() as u16);
                b.put_slice(pps);
                out.push(Packed {
                    body: b.freeze(),
                    config: true,
                });
                self.sent_config = true;
            }
        }
        if !frame.is_empty() {
            if !self.sent_config {
                return Err(MuxError::NoParameterSets);
            }
            let cts = pts.wrapping_sub(dts) as i32;
            let mut b =
                BytesMut::with_capacity(5 + frame.iter().map(|u| 4 + u.len()).sum::<usize>());
            b.put_u8(if key { 0x17 } else { 0x27 });
            b.put_u8(1);
            b.put_slice(&cts_bytes(cts));
            put_units(&mut b, &frame);
            out.push(Packed {
                body: b.freeze(),
                config: false,
            });
        }
        Ok(out)
    }
}

/// HEVC Annex B to Enhanced RTMP `hvc1` packets; remembers the parameter sets.
#[derive(Debug, Default)]
pub struct Hevc {
    vps: Option<Vec<u8>>,
    sps: Option<Vec<u8>>,
    pps: Option<Vec<u8>>,
    sent_config: bool,
}

impl Hevc {
    /// Packs one access unit (`dts`, `pts` in ms), like [`H264::pack`].
    pub fn pack(&mut self, annexb: &[u8], dts: u32, pts: u32) -> Result<Vec<Packed>, MuxError> {
        let units = split_annexb(annexb);
        if units.is_empty() {
            return Err(MuxError::NoNalUnits);
        }
        let mut frame = Vec::new();
        let mut key = false;
        for u in units {
            let slot = match (u[0] >> 1) & 0x3f {
                32 => Some(&mut self.vps),
                33 => Some(&mut self.sps),
                34 => Some(&mut self.pps),
                35 => None, // access unit delimiter
                t => {
                    // IRAP pictures (BLA, IDR, CRA: 16..=21) start a GOP.
                    key |= (16..=21).contains(&t);
                    frame.push(u);
                    continue;
                }
            };
            if let Some(slot) = slot {
                if slot.as_deref() != Some(u) {
                    *slot = Some(u.to_vec());
                    self.sent_config = false;
                }
            }
        }
        let mut out = Vec::new();
        if !self.sent_config {
            if let (Some(vps), Some(sps), Some(pps)) = (&self.vps, &self.sps, &self.pps) {
                let mut b = BytesMut::new();
                // IsExHeader | keyframe, PacketType 0 (SequenceStart), FourCC.
                b.put_u8(0x90);
                b.put_slice(b"hvc1");
                b.put_slice(&hvcc(vps, sps, pps)?);
                out.push(Packed {
                    body: b.freeze(),
                    config: true,
                });
                self.sent_config = true;
            }
        }
        if !frame.is_empty() {
            if !self.sent_config {
                return Err(MuxError::NoParameterSets);
            }
            let cts = pts.wrapping_sub(dts) as i32;
            let mut b = BytesMut::new();
            // PacketType 1 (CodedFrames): a 24-bit composition time follows the FourCC.
            b.put_u8(if key { 0x91 } else { 0xa1 });
            b.put_slice(b"hvc1");
            b.put_slice(&cts_bytes(cts));
            put_units(&mut b, &frame);
            out.push(Packed {
                body: b.freeze(),
                config: false,
            });
        }
        Ok(out)
    }
}

/// An HEVCDecoderConfigurationRecord (ISO/IEC 14496-15 8.3.3.1) with one VPS, SPS and PPS;
/// the general profile/tier/level fields are copied from the SPS's profile_tier_level.
fn hvcc(vps: &[u8], sps: &[u8], pps: &[u8]) -> Result<Vec<u8>, MuxError> {
    // NAL header (2) + sps_video_parameter_set_id..temporal_id_nesting (1) + PTL (12).
    let mut r = srsd::protocol::avc::unescape_rbsp(sps);
    r.truncate(15);
    if r.len() < 15
        || [vps.len(), sps.len(), pps.len()]
            .iter()
            .any(|&l| l > 0xffff)
    {
        return Err(MuxError::BadParameterSet);
    }
    let max_sub_layers_minus1 = (r[2] >> 1) & 0x07;
    let temporal_nesting = r[2] & 0x01;
    let ptl = &r[3..15];
    let mut b = Vec::with_capacity(23 + 15 + vps.len() + sps.len() + pps.len());
    b.push(1); // configurationVersion
    b.push(ptl[0]); // profile_space, tier_flag, profile_idc
    b.extend_from_slice(&ptl[1..5]); // profile_compatibility_flags
    b.extend_from_slice(&ptl[5..11]); // constraint_indicator_flags
    b.push(ptl[11]); // level_idc
    b.extend_from_slice(&[0xf0, 0x00]); // reserved + min_spatial_segmentation_idc 0
    b.push(0xfc); // reserved + parallelismType 0
    b.push(0xfd); // reserved + chroma_format_idc 1 (4:2:0)
    b.push(0xf8); // reserved + bit_depth_luma_minus8 0
    b.push(0xf8); // reserved + bit_depth_chroma_minus8 0
    b.extend_from_slice(&[0, 0]); // avgFrameRate
                                  // constantFrameRate 0, numTemporalLayers, temporalIdNested, lengthSizeMinusOne 3.
    b.push(((max_sub_layers_minus1 + 1) << 3) | (temporal_nesting << 2) | 0x03);
    b.push(3); // numOfArrays
    for (t, nal) in [(32u8, vps), (33, sps), (34, pps)] {
        b.push(0x80 | t); // array_completeness 1
        b.extend_from_slice(&1u16.to_be_bytes());
        b.extend_from_slice(&(nal.len() as u16).to_be_bytes());
        b.extend_from_slice(nal);
    }
    Ok(b)
}

/// AAC ADTS frames to FLV AAC packets; remembers the AudioSpecificConfig.
#[derive(Debug, Default)]
pub struct Aac {
    asc: Option<[u8; 2]>,
}

/// FLV's sound flags for AAC: format 10, 44 kHz, 16-bit, stereo (the spec says AAC always
/// signals these; the real values are in the AudioSpecificConfig).
const AAC_FLAGS: u8 = 0xaf;

impl Aac {
    /// Packs every ADTS frame of `adts`; the n-th frame is stamped `timestamp` plus n frames
    /// (1024 samples each) at its sample rate. A sequence header goes first when the
    /// configuration changed.
    pub fn pack(&mut self, adts: &[u8], timestamp: u32) -> Result<Vec<(u32, Packed)>, MuxError> {
        const RATES: [u32; 13] = [
            96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350,
        ];
        let mut out = Vec::new();
        let mut rest = adts;
        let mut n: u64 = 0;
        if rest.is_empty() {
            return Err(MuxError::BadAdts);
        }
        while !rest.is_empty() {
            if rest.len() < 7 || rest[0] != 0xff || rest[1] & 0xf0 != 0xf0 {
                return Err(MuxError::BadAdts);
            }
            let protection_absent = rest[1] & 0x01 == 1;
            let header_len = if protection_absent { 7 } else { 9 };
            let profile = (rest[2] >> 6) + 1; // audio object type
            let sr_index = (rest[2] >> 2) & 0x0f;
            let channels = ((rest[2] & 0x01) << 2) | (rest[3] >> 6);
            let frame_len = (((rest[3] & 0x03) as usize) << 11)
                | ((rest[4] as usize) << 3)
                | ((rest[5] as usize) >> 5);
            if frame_len < header_len || frame_len > rest.len() || sr_index as usize >= RATES.len()
            {
                return Err(MuxError::BadAdts);
            }
            let asc = [
                (profile << 3) | (sr_index >> 1),
                ((sr_index & 1) << 7) | (channels << 3),
            ];
            let ts = timestamp
                .wrapping_add((n * 1024 * 1000 / u64::from(RATES[sr_index as usize])) as u32);
            if self.asc != Some(asc) {
                self.asc = Some(asc);
                out.push((
                    ts,
                    Packed {
                        body: Bytes::copy_from_slice(&[AAC_FLAGS, 0, asc[0], asc[1]]),
                        config: true,
                    },
                ));
            }
            let mut b = BytesMut::with_capacity(2 + frame_len - header_len);
            b.put_slice(&[AAC_FLAGS, 1]);
            b.put_slice(&rest[header_len..frame_len]);
            out.push((
                ts,
                Packed {
                    body: b.freeze(),
                    config: false,
                },
            ));
            rest = &rest[frame_len..];
            n += 1;
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_annexb_with_both_start_codes() {
        let d = [
            0, 0, 0, 1, 0x67, 1, 2, 0, 0, 1, 0x68, 3, 0, 0, 0, 1, 0x65, 4, 0,
        ];
        assert_eq!(
            split_annexb(&d),
            vec![&[0x67, 1, 2][..], &[0x68, 3][..], &[0x65, 4][..]]
        );
        assert!(split_annexb(&[1, 2, 3]).is_empty());
    }

    #[test]
    fn h264_sends_the_configuration_then_frames_with_their_composition_time() {
        let mut m = H264::default();
        assert_eq!(
            m.pack(&[0, 0, 1, 0x41, 9], 0, 0),
            Err(MuxError::NoParameterSets)
        );
        let au = [
            0, 0, 0, 1, 0x09, 0xf0, 0, 0, 0, 1, 0x67, 0x42, 0xc0, 0x1e, 0xda, 0, 0, 0, 1, 0x68,
            0xce, 0, 0, 0, 1, 0x65, 0x88,
        ];
        let p = m.pack(&au, 40, 80).unwrap();
        assert_eq!(p.len(), 2);
        assert!(p[0].config);
        assert_eq!(
            &p[0].body[..],
            &[
                0x17, 0, 0, 0, 0, 1, 0x42, 0xc0, 0x1e, 0xff, 0xe1, 0, 5, 0x67, 0x42, 0xc0, 0x1e,
                0xda, 1, 0, 2, 0x68, 0xce
            ]
        );
        assert_eq!(&p[1].body[..], &[0x17, 1, 0, 0, 40, 0, 0, 0, 2, 0x65, 0x88]);
        // Same parameter sets again: no new sequence header.
        let p = m.pack(&au, 80, 80).unwrap();
        assert_eq!(p.len(), 1);
        let p = m.pack(&[0, 0, 1, 0x41, 7], 120, 100).unwrap();
        // A negative composition time is a signed 24-bit value.
        assert_eq!(&p[0].body[..5], &[0x27, 1, 0xff, 0xff, 0xec]);
    }

    #[test]
    fn hevc_builds_an_hvcc_from_the_parameter_sets() {
        let vps = [0x40, 0x01, 0x0c, 0x01];
        // SPS: NAL header, vps id/max_sub_layers 0/nesting 1, PTL: Main profile, level 93.
        let sps = [
            0x42, 0x01, 0x01, 0x01, 0x60, 0, 0, 0, 0x90, 0, 0, 0, 0, 0, 93, 0xa0,
        ];
        let pps = [0x44, 0x01, 0xc1];
        let mut au = Vec::new();
        for n in [&vps[..], &sps, &pps, &[0x26, 0x01, 0xaf]] {
            au.extend_from_slice(&[0, 0, 0, 1]);
            au.extend_from_slice(n);
        }
        let mut m = Hevc::default();
        let p = m.pack(&au, 0, 0).unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(&p[0].body[..5], b"\x90hvc1");
        let rec = &p[0].body[5..];
        assert_eq!(rec[0], 1);
        assert_eq!(rec[1], 0x01, "Main profile");
        assert_eq!(rec[12], 93, "level");
        assert_eq!(rec[21] & 0x03, 3, "4-byte lengths");
        assert_eq!(rec[22], 3, "three arrays");
        assert_eq!(&p[1].body[..8], b"\x91hvc1\0\0\0");
        assert_eq!(&p[1].body[8..], &[0, 0, 0, 3, 0x26, 0x01, 0xaf]);
    }

    #[test]
    fn aac_unwraps_adts_and_announces_its_configuration() {
        // AAC LC, 44.1 kHz (index 4), stereo, protection absent, 2 payload bytes.
        let frame = |b: u8| [0xff, 0xf1, 0x50, 0x80, 0x01, 0x3f, 0xfc, b, b];
        let mut two = frame(1).to_vec();
        two.extend_from_slice(&frame(2));
        let mut m = Aac::default();
        let p = m.pack(&two, 1000).unwrap();
        assert_eq!(p.len(), 3);
        assert_eq!(&p[0].1.body[..], &[0xaf, 0, 0x12, 0x10]);
        assert_eq!((p[1].0, &p[1].1.body[..]), (1000, &[0xaf, 1, 1, 1][..]));
        assert_eq!((p[2].0, &p[2].1.body[..]), (1023, &[0xaf, 1, 2, 2][..]));
        assert_eq!(m.pack(&frame(3), 2000).unwrap().len(), 1);
        assert_eq!(m.pack(&[0xff, 0xf1, 0x50], 0), Err(MuxError::BadAdts));
        assert_eq!(m.pack(&frame(3)[..8], 0), Err(MuxError::BadAdts));
    }
}
