//! FLV frames (RTMP message bodies) to MPEG-TS packets: the part the HLS segmenter and the
//! HTTP-TS live mount share.
//!
//! [`TsRemuxer`] reads the codec headers (AVC decoder configuration, hvcC, AAC
//! AudioSpecificConfig), turns AVCC/HVCC video into Annex B (AUD, parameter sets before every
//! IDR/IRAP) and raw AAC into ADTS, and muxes them with a [`TsMuxer`]. Where outputs begin is
//! the caller's business (a segment cut, a viewer's first keyframe), so each frame goes
//! through two steps:
//!
//! 1. [`TsRemuxer::inspect`] absorbs sequence headers and tells what the frame is
//!    ([`Sample`]); the caller may then [`start`](TsRemuxer::start) a new output (a fresh
//!    muxer and PAT/PMT) or repeat the tables ([`write_pat_pmt`](TsRemuxer::write_pat_pmt));
//! 2. [`TsRemuxer::write`] appends the frame's TS packets.
//!
//! Both take the frame's [`TagHeader`] (read once, when the frame entered the hub) and the
//! codec data after it. Video other than H.264/H.265 and audio other than AAC/MP3 are skipped,
//! not guessed at ([`TsRemuxer::skipped`] names them, [`no_ts_mapping`] says why). H.264 that
//! arrives as Annex B inside RTMP is accepted, even without a sequence header.

use super::aac::{self, AacConfig, AacError};
use super::avc::{self, AvcConfig, AvcError};
use super::hevc::{self, HevcConfig};
use super::media::{Codec, MediaKind, Packet, TagHeader};
use super::ts::{AudioCodec, TsMuxer, VideoCodec};
use bytes::BytesMut;
use std::fmt;

/// What a frame is once its codec headers are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// Nothing to mux: a sequence header (absorbed), metadata, an unsupported codec, a
    /// disabled track, or a frame that cannot be decoded without a missing sequence header.
    Skip,
    /// An H.264 or H.265 access unit: DTS and composition time offset in ms.
    Video { dts: i64, cts: i64, keyframe: bool },
    /// An AAC (`adts`: raw AAC that gets an ADTS header) or MP3 frame, PTS in ms.
    Audio { dts: i64, adts: bool },
}

/// A frame the remuxer could not use; the caller logs it and goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemuxError {
    BadAvcConfig(AvcError),
    BadHevcConfig(AvcError),
    BadAacConfig(AacError),
    BadVideo(AvcError),
}

impl fmt::Display for RemuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemuxError::BadAvcConfig(e) => write!(f, "bad AVC sequence header: {e}"),
            RemuxError::BadHevcConfig(e) => write!(f, "bad HEVC sequence header (hvcC): {e}"),
            RemuxError::BadAacConfig(e) => write!(f, "bad AAC sequence header: {e}"),
            RemuxError::BadVideo(e) => write!(f, "bad video frame: {e}"),
        }
    }
}

impl std::error::Error for RemuxError {}

/// Why a codec has no place in srsd's MPEG-TS (HLS, HTTP-TS), or `None` when it has one.
/// AV1 in MPEG-TS (AOM's 2021 draft) and Opus in MPEG-TS (ETSI TS 102 366 style private
/// data) exist on paper, but HLS players (hls.js, Safari, ffmpeg's HLS demuxer for AV1)
/// do not read them: a segment with such a track would play as a broken file.
pub fn no_ts_mapping(codec: Codec) -> Option<&'static str> {
    match codec {
        Codec::H264 | Codec::Hevc | Codec::Aac | Codec::Mp3 | Codec::None => None,
        Codec::Av1 => Some("AV1 has no MPEG-TS mapping HLS players read"),
        Codec::Vp9 => Some("VP9 has no MPEG-TS mapping"),
        Codec::Opus => Some("Opus has no MPEG-TS mapping HLS players read"),
        _ => Some("the codec has no MPEG-TS mapping srsd writes"),
    }
}

/// The video decoder configuration seen last.
#[derive(Debug)]
enum VideoConfig {
    Avc(AvcConfig),
    Hevc(HevcConfig),
}

/// FLV frames in, TS packets out, for one output series (a segment series or one viewer).
#[derive(Debug)]
pub struct TsRemuxer {
    video_enabled: bool,
    audio_enabled: bool,
    video: Option<VideoConfig>,
    /// H.264 seen as Annex B without a sequence header.
    annexb_avc: bool,
    aac: Option<AacConfig>,
    mp3: bool,
    /// Codecs seen but not muxed (no MPEG-TS mapping), by track.
    skipped: (Option<Codec>, Option<Codec>),
    muxer: Option<TsMuxer>,
    /// The (video, audio) tracks the current muxer's PMT lists.
    started_with: (Option<VideoCodec>, bool),
    es: BytesMut,
}

impl TsRemuxer {
    /// A remuxer; a disabled track (`vcodec = "vn"`, `acodec = "an"`) is left out entirely.
    pub fn new(video_enabled: bool, audio_enabled: bool) -> Self {
        TsRemuxer {
            video_enabled,
            audio_enabled,
            video: None,
            annexb_avc: false,
            aac: None,
            mp3: false,
            skipped: (None, None),
            muxer: None,
            started_with: (None, false),
            // Grows to the largest frame seen; an HTTP-TS viewer per remuxer, so not
            // reserved up front.
            es: BytesMut::new(),
        }
    }

    fn video_codec(&self) -> Option<VideoCodec> {
        if !self.video_enabled {
            return None;
        }
        match &self.video {
            Some(VideoConfig::Avc(_)) => Some(VideoCodec::H264),
            Some(VideoConfig::Hevc(_)) => Some(VideoCodec::Hevc),
            None if self.annexb_avc => Some(VideoCodec::H264),
            None => None,
        }
    }

    /// Whether a video track was seen (and is enabled).
    pub fn has_video(&self) -> bool {
        self.video_codec().is_some()
    }

    /// Whether an audio track was seen (and is enabled).
    pub fn has_audio(&self) -> bool {
        self.audio_enabled && (self.aac.is_some() || self.mp3)
    }

    /// The (video, audio) codecs seen and skipped for want of an MPEG-TS mapping
    /// ([`no_ts_mapping`]); the caller logs a change once.
    pub fn skipped(&self) -> (Option<Codec>, Option<Codec>) {
        self.skipped
    }

    /// Whether an output was started.
    pub fn is_started(&self) -> bool {
        self.muxer.is_some()
    }

    /// Whether the tracks seen differ from those the current output's PMT announced (a track
    /// appeared after the output started, or the video codec changed): the caller should
    /// [`start`](Self::start) again.
    pub fn tracks_changed(&self) -> bool {
        self.muxer.is_some() && self.started_with != (self.video_codec(), self.has_audio())
    }

    /// Reads one frame: `tag` is its header, `data` the codec data after it. Sequence
    /// headers update the codec state and give [`Sample::Skip`].
    pub fn inspect(
        &mut self,
        tag: &TagHeader,
        dts: i64,
        data: &[u8],
    ) -> Result<Sample, RemuxError> {
        if tag.multitrack.is_some() {
            // Enhanced RTMP v2 Multitrack (several renditions in one message): relayed by the
            // hub, never muxed; which track would a segment carry?
            return Ok(Sample::Skip);
        }
        match tag.kind {
            MediaKind::Video if self.video_enabled => self.inspect_video(tag, dts, data),
            MediaKind::Audio if self.audio_enabled => self.inspect_audio(tag, dts, data),
            _ => Ok(Sample::Skip),
        }
    }

    fn inspect_video(
        &mut self,
        tag: &TagHeader,
        dts: i64,
        data: &[u8],
    ) -> Result<Sample, RemuxError> {
        let frame = matches!(tag.packet, Packet::Frame | Packet::FrameX);
        match (tag.codec, tag.packet) {
            (Codec::H264, Packet::Config) => {
                let c = avc::parse_avc_config(data).map_err(RemuxError::BadAvcConfig)?;
                self.video = Some(VideoConfig::Avc(c));
                return Ok(Sample::Skip);
            }
            (Codec::Hevc, Packet::Config) => {
                let c = hevc::parse_hvcc(data).map_err(RemuxError::BadHevcConfig)?;
                self.video = Some(VideoConfig::Hevc(c));
                return Ok(Sample::Skip);
            }
            (Codec::H264, _) if frame => {
                // AnnexB inside RTMP (some encoders do it) carries its own parameter sets.
                if !matches!(self.video, Some(VideoConfig::Avc(_))) {
                    if !avc::is_annexb(data) {
                        return Ok(Sample::Skip);
                    }
                    self.video = None;
                    self.annexb_avc = true;
                }
            }
            (Codec::Hevc, _) if frame => {
                if !matches!(self.video, Some(VideoConfig::Hevc(_))) {
                    return Ok(Sample::Skip);
                }
            }
            (codec, _) if frame => {
                if no_ts_mapping(codec).is_some() {
                    self.skipped.0 = Some(codec);
                }
                return Ok(Sample::Skip);
            }
            _ => return Ok(Sample::Skip),
        }
        Ok(Sample::Video {
            dts,
            cts: i64::from(tag.cts),
            keyframe: tag.is_keyframe(),
        })
    }

    fn inspect_audio(
        &mut self,
        tag: &TagHeader,
        dts: i64,
        data: &[u8],
    ) -> Result<Sample, RemuxError> {
        match (tag.codec, tag.packet) {
            (Codec::Aac, Packet::Config) => {
                let c = aac::parse_audio_specific_config(data).map_err(RemuxError::BadAacConfig)?;
                self.aac = Some(c);
                Ok(Sample::Skip)
            }
            (Codec::Aac, Packet::Frame) => {
                if self.aac.is_none() || data.is_empty() || data.len() > aac::MAX_ADTS_PAYLOAD {
                    return Ok(Sample::Skip);
                }
                Ok(Sample::Audio { dts, adts: true })
            }
            (Codec::Mp3, Packet::Frame) => {
                self.mp3 = true;
                Ok(Sample::Audio { dts, adts: false })
            }
            (codec, _) => {
                if no_ts_mapping(codec).is_some() {
                    self.skipped.1 = Some(codec);
                }
                Ok(Sample::Skip)
            }
        }
    }

    /// Starts an output (a segment): a muxer for the tracks seen so far, and its PAT/PMT.
    /// The continuity counters of each PID go on from the previous output of this remuxer
    /// (0 for the first), so consecutive segments read back to back are one continuous
    /// stream (see [`TsMuxer::continue_counters`]); a new remuxer starts them at 0.
    pub fn start(&mut self, out: &mut BytesMut) {
        let tracks = (self.video_codec(), self.has_audio());
        let codec = if self.mp3 {
            AudioCodec::Mp3
        } else {
            AudioCodec::Aac
        };
        let mut muxer = TsMuxer::new(tracks.0.is_some(), tracks.1, codec);
        muxer.set_video_codec(tracks.0.unwrap_or(VideoCodec::H264));
        if let Some(prev) = &self.muxer {
            muxer.continue_counters(prev);
        }
        muxer.write_pat_pmt(out);
        self.muxer = Some(muxer);
        self.started_with = tracks;
    }

    /// Repeats PAT/PMT in the current output (counters continue), e.g. at each keyframe of an
    /// endless HTTP-TS stream so a player can join anywhere. No-op before [`start`](Self::start).
    pub fn write_pat_pmt(&mut self, out: &mut BytesMut) {
        if let Some(m) = self.muxer.as_mut() {
            m.write_pat_pmt(out);
        }
    }

    /// Appends the TS packets of a frame [`inspect`](Self::inspect) returned `sample` for;
    /// `data` is the codec data after its tag header. Nothing is appended before
    /// [`start`](Self::start), for [`Sample::Skip`], or on error.
    pub fn write(
        &mut self,
        sample: Sample,
        data: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), RemuxError> {
        let Some(muxer) = self.muxer.as_mut() else {
            return Ok(());
        };
        self.es.clear();
        match sample {
            Sample::Skip => {}
            Sample::Video { dts, cts, keyframe } => {
                match &self.video {
                    Some(VideoConfig::Hevc(c)) => {
                        hevc::to_annexb(data, Some(c), keyframe, &mut self.es)
                    }
                    Some(VideoConfig::Avc(c)) => {
                        avc::to_annexb(data, c.nalu_length_size, Some(c), keyframe, &mut self.es)
                    }
                    None => avc::to_annexb(data, 4, None, keyframe, &mut self.es),
                }
                .map_err(RemuxError::BadVideo)?;
                // Wrapping like the 33-bit PTS it becomes: a DTS at the edge of i64 must not
                // panic (overflow checks are on in debug and test builds).
                muxer.write_video(dts.wrapping_add(cts), dts, &self.es, keyframe, out);
            }
            Sample::Audio { dts, adts } => {
                if adts {
                    if let Some(c) = &self.aac {
                        aac::adts_header(c, data.len(), &mut self.es);
                    }
                }
                self.es.extend_from_slice(data);
                muxer.write_audio(dts, &self.es, out);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::ts::{pid, PACKET_SIZE, SYNC_BYTE};

    use crate::protocol::testutil::avc_sequence_header as avc_seq_header;

    fn tag(kind: MediaKind, body: &[u8]) -> TagHeader {
        TagHeader::decode(kind, body).unwrap_or_else(|_| TagHeader::unknown(kind))
    }

    /// The codec data of a tag body, after its header.
    fn dat(kind: MediaKind, body: &[u8]) -> &[u8] {
        body.get(tag(kind, body).len()..).unwrap_or_default()
    }

    fn insp(
        r: &mut TsRemuxer,
        kind: MediaKind,
        dts: i64,
        body: &[u8],
    ) -> Result<Sample, RemuxError> {
        r.inspect(&tag(kind, body), dts, dat(kind, body))
    }

    fn idr(cts: i32) -> Vec<u8> {
        let c = cts.to_be_bytes();
        let nalu = [0x65, 0x88, 0x84, 0x00, 0x33];
        let mut v = vec![0x17, 1, c[1], c[2], c[3]];
        v.extend_from_slice(&(nalu.len() as u32).to_be_bytes());
        v.extend_from_slice(&nalu);
        v
    }

    fn pids(ts: &[u8]) -> Vec<u16> {
        assert_eq!(ts.len() % PACKET_SIZE, 0);
        ts.chunks(PACKET_SIZE)
            .map(|p| {
                assert_eq!(p[0], SYNC_BYTE);
                u16::from(p[1] & 0x1F) << 8 | u16::from(p[2])
            })
            .collect()
    }

    #[test]
    fn headers_are_absorbed_then_frames_mux_after_start() {
        let mut r = TsRemuxer::new(true, true);
        let mut out = BytesMut::new();
        let s = insp(&mut r, MediaKind::Video, 0, &avc_seq_header());
        assert_eq!(s, Ok(Sample::Skip));
        // AAC LC 44.1 kHz stereo.
        let s = insp(&mut r, MediaKind::Audio, 0, &[0xAF, 0, 0x12, 0x10]);
        assert_eq!(s, Ok(Sample::Skip));
        assert!(r.has_video() && r.has_audio() && !r.is_started());

        let frame = idr(40);
        let s = insp(&mut r, MediaKind::Video, 100, &frame).unwrap();
        assert_eq!(
            s,
            Sample::Video {
                dts: 100,
                cts: 40,
                keyframe: true
            }
        );
        r.write(s, dat(MediaKind::Video, &frame), &mut out).unwrap();
        assert!(out.is_empty(), "nothing before start");
        r.start(&mut out);
        r.write(s, dat(MediaKind::Video, &frame), &mut out).unwrap();
        let audio = [0xAF, 1, 0x21, 0x10, 0x04];
        let a = insp(&mut r, MediaKind::Audio, 120, &audio).unwrap();
        assert_eq!(
            a,
            Sample::Audio {
                dts: 120,
                adts: true
            }
        );
        r.write(a, dat(MediaKind::Audio, &audio), &mut out).unwrap();
        assert_eq!(pids(&out), vec![pid::PAT, pid::PMT, pid::VIDEO, pid::AUDIO]);
        // The video PES holds AUD, SPS, PPS and the IDR in Annex B.
        let v = &out[2 * PACKET_SIZE..3 * PACKET_SIZE];
        let annexb_sps = [0, 0, 0, 1, 0x67];
        assert!(v.windows(5).any(|w| w == annexb_sps), "SPS before the IDR");
        // The audio PES carries an ADTS header.
        let a = &out[3 * PACKET_SIZE..];
        assert!(a.windows(2).any(|w| w == [0xFF, 0xF1]), "ADTS sync word");
        assert!(!r.tracks_changed());
    }

    #[test]
    fn disabled_and_unknown_tracks_are_skipped() {
        let mut r = TsRemuxer::new(false, true);
        let s = insp(&mut r, MediaKind::Video, 0, &avc_seq_header());
        assert_eq!(s, Ok(Sample::Skip));
        assert!(!r.has_video());
        // Speex audio, an HEVC frame (CDN codec id 12) before its hvcC, metadata.
        assert_eq!(
            insp(&mut r, MediaKind::Audio, 0, &[0xB2, 1]),
            Ok(Sample::Skip)
        );
        let mut r = TsRemuxer::new(true, true);
        assert_eq!(
            insp(&mut r, MediaKind::Video, 0, &[0x1C, 1, 0, 0, 0, 1]),
            Ok(Sample::Skip)
        );
        assert_eq!(insp(&mut r, MediaKind::Data, 0, &[2, 0]), Ok(Sample::Skip));
        // AVC frames before any sequence header (not Annex B) cannot be decoded.
        assert_eq!(insp(&mut r, MediaKind::Video, 0, &idr(0)), Ok(Sample::Skip));
        // AAC raw before its config either.
        assert_eq!(
            insp(&mut r, MediaKind::Audio, 0, &[0xAF, 1, 0x21]),
            Ok(Sample::Skip)
        );
    }

    /// An access unit of length-prefixed NALUs (4-byte lengths) after `header`.
    fn au(header: &[u8], nalus: &[&[u8]]) -> Vec<u8> {
        let mut v = header.to_vec();
        for n in nalus {
            v.extend_from_slice(&(n.len() as u32).to_be_bytes());
            v.extend_from_slice(n);
        }
        v
    }

    #[test]
    fn enhanced_hevc_muxes_as_stream_type_0x24_with_parameter_sets_before_each_irap() {
        use crate::protocol::testutil::{hevc_sequence_header, HEVC_PPS, HEVC_SPS, HEVC_VPS};
        for legacy in [false, true] {
            let mut r = TsRemuxer::new(true, true);
            let mut sh = hevc_sequence_header();
            let (key, inter) = if legacy {
                // The CDN form: codec id 12 with AVC's packet layout.
                sh.splice(..5, [0x1C, 0, 0, 0, 0]);
                (vec![0x1C, 1, 0, 0, 40], vec![0x2C, 1, 0, 0, 0])
            } else {
                (b"\x91hvc1\x00\x00\x28".to_vec(), b"\xA3hvc1".to_vec())
            };
            assert_eq!(insp(&mut r, MediaKind::Video, 0, &sh), Ok(Sample::Skip));
            assert!(r.has_video());
            let idr = au(&key, &[&[0x26, 0x01, 0xAF, 0x10]]);
            let s = insp(&mut r, MediaKind::Video, 100, &idr).unwrap();
            assert_eq!(
                s,
                Sample::Video {
                    dts: 100,
                    cts: 40,
                    keyframe: true
                }
            );
            let mut out = BytesMut::new();
            r.start(&mut out);
            r.write(s, dat(MediaKind::Video, &idr), &mut out).unwrap();
            assert_eq!(pids(&out), vec![pid::PAT, pid::PMT, pid::VIDEO]);
            // PMT: one stream, H.265 (0x24) on the video PID.
            let pmt = &out[PACKET_SIZE..2 * PACKET_SIZE];
            assert_eq!(&pmt[5..8], &[0x02, 0xB0, 0x12], "table id, section length");
            assert_eq!(
                &pmt[17..22],
                &[0x24, 0xE1, 0x00, 0xF0, 0x00],
                "stream type, PID"
            );
            // PES: PTS 140 ms and DTS 100 ms, then AUD, VPS, SPS, PPS, IDR in Annex B.
            let v = &out[2 * PACKET_SIZE..];
            let es_at = v.windows(7).position(|w| w == hevc::AUD_NALU).expect("AUD");
            let mut want = hevc::AUD_NALU.to_vec();
            for n in [HEVC_VPS, HEVC_SPS, HEVC_PPS, &[0x26, 0x01, 0xAF, 0x10]] {
                want.extend_from_slice(&[0, 0, 0, 1]);
                want.extend_from_slice(n);
            }
            assert_eq!(&v[es_at..es_at + want.len()], &want[..]);
            let pes = &v[v.windows(4).position(|w| w == [0, 0, 1, 0xE0]).unwrap()..];
            assert_eq!(pes[7] >> 6, 0b11, "PTS and DTS");
            let ts = |b: &[u8]| {
                (u64::from(b[0] >> 1 & 7) << 30)
                    | (u64::from(b[1]) << 22)
                    | (u64::from(b[2] >> 1) << 15)
                    | (u64::from(b[3]) << 7)
                    | u64::from(b[4] >> 1)
            };
            assert_eq!((ts(&pes[9..14]), ts(&pes[14..19])), (140 * 90, 100 * 90));
            // An inter frame: AUD and the slice, no parameter sets.
            let p = au(&inter, &[&[0x02, 0x01, 0xD0]]);
            let s = insp(&mut r, MediaKind::Video, 140, &p).unwrap();
            assert_eq!(
                s,
                Sample::Video {
                    dts: 140,
                    cts: 0,
                    keyframe: false
                }
            );
            out.clear();
            r.write(s, dat(MediaKind::Video, &p), &mut out).unwrap();
            assert!(!out.windows(5).any(|w| w == [0, 0, 0, 1, 0x42]), "no SPS");
        }
    }

    #[test]
    fn av1_and_opus_tracks_are_skipped_and_named() {
        let mut r = TsRemuxer::new(true, true);
        let mut av1 = b"\x90av01".to_vec();
        av1.extend_from_slice(&crate::protocol::testutil::av1c());
        assert_eq!(insp(&mut r, MediaKind::Video, 0, &av1), Ok(Sample::Skip));
        assert_eq!(
            insp(&mut r, MediaKind::Video, 0, b"\x91av01\x12\x00"),
            Ok(Sample::Skip)
        );
        assert_eq!(
            insp(&mut r, MediaKind::Audio, 0, b"\x91Opus\xFC"),
            Ok(Sample::Skip)
        );
        assert_eq!(r.skipped(), (Some(Codec::Av1), Some(Codec::Opus)));
        assert!(!r.has_video() && !r.has_audio());
        assert!(no_ts_mapping(Codec::Av1).is_some() && no_ts_mapping(Codec::Hevc).is_none());
    }

    #[test]
    fn a_track_that_appears_later_asks_for_a_restart() {
        let mut r = TsRemuxer::new(true, true);
        let mut out = BytesMut::new();
        let mp3 = [0x2F, 0xFF, 0xFB, 0x90, 0x00];
        let s = insp(&mut r, MediaKind::Audio, 0, &mp3).unwrap();
        r.start(&mut out);
        r.write(s, dat(MediaKind::Audio, &mp3), &mut out).unwrap();
        assert_eq!(pids(&out), vec![pid::PAT, pid::PMT, pid::AUDIO]);
        assert!(!r.tracks_changed());
        insp(&mut r, MediaKind::Video, 0, &avc_seq_header()).unwrap();
        assert!(r.tracks_changed());
        out.clear();
        r.write_pat_pmt(&mut out);
        assert_eq!(pids(&out), vec![pid::PAT, pid::PMT]);
    }

    /// The continuity counter of every packet, by PID.
    fn counters(ts: &[u8]) -> Vec<(u16, u8)> {
        ts.chunks(PACKET_SIZE)
            .map(|p| (u16::from(p[1] & 0x1F) << 8 | u16::from(p[2]), p[3] & 0x0F))
            .collect()
    }

    #[test]
    fn counters_run_on_across_outputs_of_one_remuxer() {
        let mut r = TsRemuxer::new(true, false);
        insp(&mut r, MediaKind::Video, 0, &avc_seq_header()).unwrap();
        let frame = idr(0);
        let mut all = BytesMut::new();
        // Three segments of one PAT, one PMT and one video packet each, and 20 more frames
        // so the 4-bit video counter wraps.
        for seg in 0..3 {
            let mut out = BytesMut::new();
            r.start(&mut out);
            for i in 0..if seg == 2 { 20 } else { 1 } {
                let s = insp(&mut r, MediaKind::Video, 40 * i, &frame).unwrap();
                r.write(s, dat(MediaKind::Video, &frame), &mut out).unwrap();
            }
            all.extend_from_slice(&out);
        }
        let mut next: std::collections::HashMap<u16, u8> = Default::default();
        for (pid, cc) in counters(&all) {
            let want = next.get(&pid).copied().unwrap_or(0);
            assert_eq!(cc, want, "pid {pid:#x}");
            next.insert(pid, (cc + 1) & 0x0F);
        }
        assert_eq!(next.get(&pid::PAT), Some(&3));
        assert_eq!(next.get(&pid::VIDEO), Some(&(22 & 0x0F)));
        // A new remuxer (a new publish) starts again at 0.
        let mut r2 = TsRemuxer::new(true, false);
        let mut out = BytesMut::new();
        r2.start(&mut out);
        assert!(counters(&out).iter().all(|&(_, cc)| cc == 0));
    }

    #[test]
    fn bad_sequence_headers_are_errors() {
        let mut r = TsRemuxer::new(true, true);
        assert!(matches!(
            insp(&mut r, MediaKind::Video, 0, &[0x17, 0, 0, 0, 0, 9]),
            Err(RemuxError::BadAvcConfig(_))
        ));
        assert!(matches!(
            insp(&mut r, MediaKind::Audio, 0, &[0xAF, 0]),
            Err(RemuxError::BadAacConfig(_))
        ));
    }

    use crate::protocol::testutil::{fuzz, mutate};

    /// Frames of every kind, valid or mutated or random, flagged keyframe or sequence header
    /// at random, with timestamps up to the i64 extremes: inspect and write fail or mux, and
    /// the output is whole TS packets of a size proportional to the input.
    #[test]
    fn random_frames_and_flags_never_panic() {
        let aac_seq: &[u8] = &[0xAF, 0x00, 0x12, 0x10];
        let aac_raw: &[u8] = &[0xAF, 0x01, 0x21, 0x00, 0x49];
        let mp3: &[u8] = &[0x2F, 0xFF, 0xFB, 0x90, 0x00];
        let seq = avc_seq_header();
        fuzz("ts remux", 0x7500, 1_000, |rng| {
            let mut r = TsRemuxer::new(rng.chance(7, 8), rng.chance(7, 8));
            let mut out = BytesMut::new();
            for _ in 0..1 + rng.below(8) {
                let valid: Vec<u8> = match rng.below(5) {
                    0 => seq.clone(),
                    1 => idr(rng.edgy_u32(0x7F_FFFF) as i32),
                    2 => aac_seq.to_vec(),
                    3 => aac_raw.to_vec(),
                    _ => mp3.to_vec(),
                };
                let payload = match rng.below(3) {
                    0 => valid.clone(),
                    1 => mutate(rng, &valid),
                    _ => rng.bytes(64),
                };
                let kind = if rng.chance(1, 2) {
                    MediaKind::Video
                } else {
                    MediaKind::Audio
                };
                let dts = match rng.below(4) {
                    0 => i64::MAX - rng.below(3) as i64,
                    1 => i64::MIN + rng.below(3) as i64,
                    _ => rng.next_u64() as i64 >> rng.below(64),
                };
                let Ok(sample) = insp(&mut r, kind, dts, &payload) else {
                    continue;
                };
                if !r.is_started() || r.tracks_changed() {
                    r.start(&mut out);
                }
                let before = out.len();
                let _ = r.write(sample, dat(kind, &payload), &mut out);
                assert_eq!(out.len() % PACKET_SIZE, 0);
                assert!(out.len() - before <= 2 * (payload.len() + 200) + 4 * PACKET_SIZE);
            }
            assert!(out.chunks(PACKET_SIZE).all(|p| p[0] == SYNC_BYTE));
        });
    }

    /// Regression (fuzz seed 0x7500 case 268): DTS + CTS overflowed i64 and panicked.
    #[test]
    fn video_at_the_edge_of_i64_does_not_overflow() {
        let mut r = TsRemuxer::new(true, false);
        let seq = avc_seq_header();
        assert_eq!(insp(&mut r, MediaKind::Video, 0, &seq), Ok(Sample::Skip));
        let frame = idr(40);
        let sample = insp(&mut r, MediaKind::Video, i64::MAX, &frame).unwrap();
        let mut out = BytesMut::new();
        r.start(&mut out);
        r.write(sample, dat(MediaKind::Video, &frame), &mut out)
            .unwrap();
        assert_eq!(out.len() % PACKET_SIZE, 0);
    }
}
