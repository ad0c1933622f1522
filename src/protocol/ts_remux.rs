//! FLV frames (RTMP message bodies) to MPEG-TS packets: the part the HLS segmenter and the
//! HTTP-TS live mount share.
//!
//! [`TsRemuxer`] reads the codec headers (AVC decoder configuration, AAC AudioSpecificConfig),
//! turns AVCC video into Annex B (AUD, SPS/PPS before every IDR) and raw AAC into ADTS, and
//! muxes them with a [`TsMuxer`]. Where outputs begin is the caller's business (a segment cut,
//! a viewer's first keyframe), so each frame goes through two steps:
//!
//! 1. [`TsRemuxer::inspect`] absorbs sequence headers and tells what the frame is
//!    ([`Sample`]); the caller may then [`start`](TsRemuxer::start) a new output (a fresh
//!    muxer and PAT/PMT) or repeat the tables ([`write_pat_pmt`](TsRemuxer::write_pat_pmt));
//! 2. [`TsRemuxer::write`] appends the frame's TS packets.
//!
//! Video other than H.264 and audio other than AAC/MP3 are skipped, not guessed at. H.264 that
//! arrives as Annex B inside RTMP is accepted, even without a sequence header.

use super::aac::{self, AacConfig, AacError};
use super::avc::{self, AvcConfig, AvcError};
use super::rtmp::session::MediaKind;
use super::ts::{AudioCodec, TsMuxer};
use bytes::BytesMut;
use std::fmt;

/// FLV video codec id of AVC/H.264.
const FLV_CODEC_AVC: u8 = 7;
/// FLV sound formats srsd puts into TS.
const FLV_SOUND_MP3: u8 = 2;
const FLV_SOUND_AAC: u8 = 10;

/// What a frame is once its codec headers are read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sample {
    /// Nothing to mux: a sequence header (absorbed), metadata, an unsupported codec, a
    /// disabled track, or a frame that cannot be decoded without a missing sequence header.
    Skip,
    /// An H.264 access unit: DTS and composition time offset in ms.
    Video { dts: i64, cts: i64, keyframe: bool },
    /// An AAC or MP3 frame, PTS in ms.
    Audio { dts: i64 },
}

/// A frame the remuxer could not use; the caller logs it and goes on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RemuxError {
    BadAvcConfig(AvcError),
    BadAacConfig(AacError),
    BadVideo(AvcError),
}

impl fmt::Display for RemuxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RemuxError::BadAvcConfig(e) => write!(f, "bad AVC sequence header: {e}"),
            RemuxError::BadAacConfig(e) => write!(f, "bad AAC sequence header: {e}"),
            RemuxError::BadVideo(e) => write!(f, "bad video frame: {e}"),
        }
    }
}

impl std::error::Error for RemuxError {}

/// FLV frames in, TS packets out, for one output series (a segment series or one viewer).
#[derive(Debug)]
pub struct TsRemuxer {
    video_enabled: bool,
    audio_enabled: bool,
    avc: Option<AvcConfig>,
    aac: Option<AacConfig>,
    mp3: bool,
    has_video: bool,
    muxer: Option<TsMuxer>,
    /// The (video, audio) tracks the current muxer's PMT lists.
    started_with: (bool, bool),
    es: BytesMut,
}

impl TsRemuxer {
    /// A remuxer; a disabled track (`vcodec = "vn"`, `acodec = "an"`) is left out entirely.
    pub fn new(video_enabled: bool, audio_enabled: bool) -> Self {
        TsRemuxer {
            video_enabled,
            audio_enabled,
            avc: None,
            aac: None,
            mp3: false,
            has_video: false,
            muxer: None,
            started_with: (false, false),
            // Grows to the largest frame seen; an HTTP-TS viewer per remuxer, so not
            // reserved up front.
            es: BytesMut::new(),
        }
    }

    /// Whether a video track was seen (and is enabled).
    pub fn has_video(&self) -> bool {
        self.video_enabled && self.has_video
    }

    /// Whether an audio track was seen (and is enabled).
    pub fn has_audio(&self) -> bool {
        self.audio_enabled && (self.aac.is_some() || self.mp3)
    }

    /// Whether an output was started.
    pub fn is_started(&self) -> bool {
        self.muxer.is_some()
    }

    /// Whether the tracks seen differ from those the current output's PMT announced (a track
    /// appeared after the output started): the caller should [`start`](Self::start) again.
    pub fn tracks_changed(&self) -> bool {
        self.muxer.is_some() && self.started_with != (self.has_video(), self.has_audio())
    }

    /// Reads one frame (`payload` = the FLV tag body). Sequence headers update the codec state
    /// and give [`Sample::Skip`].
    pub fn inspect(
        &mut self,
        kind: MediaKind,
        dts: i64,
        payload: &[u8],
        keyframe: bool,
        seq_header: bool,
    ) -> Result<Sample, RemuxError> {
        match kind {
            MediaKind::Video if self.video_enabled => {
                self.inspect_video(dts, payload, keyframe, seq_header)
            }
            MediaKind::Audio if self.audio_enabled => self.inspect_audio(dts, payload, seq_header),
            _ => Ok(Sample::Skip),
        }
    }

    fn inspect_video(
        &mut self,
        dts: i64,
        p: &[u8],
        keyframe: bool,
        seq_header: bool,
    ) -> Result<Sample, RemuxError> {
        if p.len() < 5 || p[0] & 0x0F != FLV_CODEC_AVC {
            return Ok(Sample::Skip);
        }
        if seq_header {
            let c = avc::parse_avc_config(&p[5..]).map_err(RemuxError::BadAvcConfig)?;
            self.avc = Some(c);
            self.has_video = true;
            return Ok(Sample::Skip);
        }
        if p[1] != 1 {
            return Ok(Sample::Skip);
        }
        // AnnexB inside RTMP (some encoders do it) carries its own parameter sets.
        if self.avc.is_none() && !avc::is_annexb(&p[5..]) {
            return Ok(Sample::Skip);
        }
        self.has_video = true;
        let cts =
            ((i32::from(p[2]) << 24 | i32::from(p[3]) << 16 | i32::from(p[4]) << 8) >> 8) as i64;
        Ok(Sample::Video { dts, cts, keyframe })
    }

    fn inspect_audio(
        &mut self,
        dts: i64,
        p: &[u8],
        seq_header: bool,
    ) -> Result<Sample, RemuxError> {
        let Some(&b0) = p.first() else {
            return Ok(Sample::Skip);
        };
        match b0 >> 4 {
            FLV_SOUND_AAC => {
                if seq_header {
                    let c = aac::parse_audio_specific_config(p.get(2..).unwrap_or(&[]))
                        .map_err(RemuxError::BadAacConfig)?;
                    self.aac = Some(c);
                    return Ok(Sample::Skip);
                }
                if self.aac.is_none() || p.len() < 3 || p.len() - 2 > aac::MAX_ADTS_PAYLOAD {
                    return Ok(Sample::Skip);
                }
            }
            FLV_SOUND_MP3 => self.mp3 = true,
            _ => return Ok(Sample::Skip),
        }
        Ok(Sample::Audio { dts })
    }

    /// Starts an output (a segment): a muxer for the tracks seen so far, and its PAT/PMT.
    /// The continuity counters of each PID go on from the previous output of this remuxer
    /// (0 for the first), so consecutive segments read back to back are one continuous
    /// stream (see [`TsMuxer::continue_counters`]); a new remuxer starts them at 0.
    pub fn start(&mut self, out: &mut BytesMut) {
        let tracks = (self.has_video(), self.has_audio());
        let codec = if self.mp3 {
            AudioCodec::Mp3
        } else {
            AudioCodec::Aac
        };
        let mut muxer = TsMuxer::new(tracks.0, tracks.1, codec);
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

    /// Appends the TS packets of a frame [`inspect`](Self::inspect) returned `sample` for.
    /// Nothing is appended before [`start`](Self::start), for [`Sample::Skip`], or on error.
    pub fn write(
        &mut self,
        sample: Sample,
        payload: &[u8],
        out: &mut BytesMut,
    ) -> Result<(), RemuxError> {
        let Some(muxer) = self.muxer.as_mut() else {
            return Ok(());
        };
        self.es.clear();
        match sample {
            Sample::Skip => {}
            Sample::Video { dts, cts, keyframe } => {
                let nalu_len = self.avc.as_ref().map(|c| c.nalu_length_size).unwrap_or(4);
                let data = payload.get(5..).unwrap_or_default();
                avc::to_annexb(data, nalu_len, self.avc.as_ref(), keyframe, &mut self.es)
                    .map_err(RemuxError::BadVideo)?;
                // Wrapping like the 33-bit PTS it becomes: a DTS at the edge of i64 must not
                // panic (overflow checks are on in debug and test builds).
                muxer.write_video(dts.wrapping_add(cts), dts, &self.es, keyframe, out);
            }
            Sample::Audio { dts } => {
                if payload.first().map(|b| b >> 4) == Some(FLV_SOUND_AAC) {
                    let raw = payload.get(2..).unwrap_or_default();
                    if let Some(c) = &self.aac {
                        aac::adts_header(c, raw.len(), &mut self.es);
                    }
                    self.es.extend_from_slice(raw);
                } else {
                    self.es
                        .extend_from_slice(payload.get(1..).unwrap_or_default());
                }
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
        let s = r.inspect(MediaKind::Video, 0, &avc_seq_header(), false, true);
        assert_eq!(s, Ok(Sample::Skip));
        // AAC LC 44.1 kHz stereo.
        let s = r.inspect(MediaKind::Audio, 0, &[0xAF, 0, 0x12, 0x10], false, true);
        assert_eq!(s, Ok(Sample::Skip));
        assert!(r.has_video() && r.has_audio() && !r.is_started());

        let frame = idr(40);
        let s = r
            .inspect(MediaKind::Video, 100, &frame, true, false)
            .unwrap();
        assert_eq!(
            s,
            Sample::Video {
                dts: 100,
                cts: 40,
                keyframe: true
            }
        );
        r.write(s, &frame, &mut out).unwrap();
        assert!(out.is_empty(), "nothing before start");
        r.start(&mut out);
        r.write(s, &frame, &mut out).unwrap();
        let audio = [0xAF, 1, 0x21, 0x10, 0x04];
        let a = r
            .inspect(MediaKind::Audio, 120, &audio, false, false)
            .unwrap();
        assert_eq!(a, Sample::Audio { dts: 120 });
        r.write(a, &audio, &mut out).unwrap();
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
        let s = r.inspect(MediaKind::Video, 0, &avc_seq_header(), false, true);
        assert_eq!(s, Ok(Sample::Skip));
        assert!(!r.has_video());
        // Speex audio, HEVC-by-codec-id 12 video, metadata.
        assert_eq!(
            r.inspect(MediaKind::Audio, 0, &[0xB2, 1], false, false),
            Ok(Sample::Skip)
        );
        let mut r = TsRemuxer::new(true, true);
        assert_eq!(
            r.inspect(MediaKind::Video, 0, &[0x1C, 1, 0, 0, 0, 1], true, false),
            Ok(Sample::Skip)
        );
        assert_eq!(
            r.inspect(MediaKind::Data, 0, &[2, 0], false, false),
            Ok(Sample::Skip)
        );
        // AVC frames before any sequence header (not Annex B) cannot be decoded.
        assert_eq!(
            r.inspect(MediaKind::Video, 0, &idr(0), true, false),
            Ok(Sample::Skip)
        );
        // AAC raw before its config either.
        assert_eq!(
            r.inspect(MediaKind::Audio, 0, &[0xAF, 1, 0x21], false, false),
            Ok(Sample::Skip)
        );
    }

    #[test]
    fn a_track_that_appears_later_asks_for_a_restart() {
        let mut r = TsRemuxer::new(true, true);
        let mut out = BytesMut::new();
        let mp3 = [0x2F, 0xFF, 0xFB, 0x90, 0x00];
        let s = r.inspect(MediaKind::Audio, 0, &mp3, false, false).unwrap();
        r.start(&mut out);
        r.write(s, &mp3, &mut out).unwrap();
        assert_eq!(pids(&out), vec![pid::PAT, pid::PMT, pid::AUDIO]);
        assert!(!r.tracks_changed());
        r.inspect(MediaKind::Video, 0, &avc_seq_header(), false, true)
            .unwrap();
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
        r.inspect(MediaKind::Video, 0, &avc_seq_header(), false, true)
            .unwrap();
        let frame = idr(0);
        let mut all = BytesMut::new();
        // Three segments of one PAT, one PMT and one video packet each, and 20 more frames
        // so the 4-bit video counter wraps.
        for seg in 0..3 {
            let mut out = BytesMut::new();
            r.start(&mut out);
            for i in 0..if seg == 2 { 20 } else { 1 } {
                let s = r
                    .inspect(MediaKind::Video, 40 * i, &frame, true, false)
                    .unwrap();
                r.write(s, &frame, &mut out).unwrap();
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
            r.inspect(MediaKind::Video, 0, &[0x17, 0, 0, 0, 0, 9], false, true),
            Err(RemuxError::BadAvcConfig(_))
        ));
        assert!(matches!(
            r.inspect(MediaKind::Audio, 0, &[0xAF, 0], false, true),
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
                let (key, seq_header) = (rng.chance(1, 2), rng.chance(1, 3));
                let Ok(sample) = r.inspect(kind, dts, &payload, key, seq_header) else {
                    continue;
                };
                if !r.is_started() || r.tracks_changed() {
                    r.start(&mut out);
                }
                let before = out.len();
                let _ = r.write(sample, &payload, &mut out);
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
        assert_eq!(
            r.inspect(MediaKind::Video, 0, &seq, true, true),
            Ok(Sample::Skip)
        );
        let frame = idr(40);
        let sample = r
            .inspect(MediaKind::Video, i64::MAX, &frame, true, false)
            .unwrap();
        let mut out = BytesMut::new();
        r.start(&mut out);
        r.write(sample, &frame, &mut out).unwrap();
        assert_eq!(out.len() % PACKET_SIZE, 0);
    }
}
