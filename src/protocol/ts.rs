//! MPEG-2 transport stream muxer (ISO/IEC 13818-1) for HLS segments and HTTP-TS.
//!
//! srsd writes its own muxer instead of using the `mpeg2ts` crate that DESIGN.md §5 named: only
//! muxing is needed (one program, one H.264/H.265 and one AAC/MP3 stream), which is a few hundred
//! lines, while the crate brings a demuxer, generic table types and their code size to a binary
//! that must fit 8 MB routers. Re-measured when H.265 landed (the crate has its stream type): the
//! same muxer on mpeg2ts 0.6.1 (PAT/PMT/PES through its `TsPacketWriter`) made the mips release
//! binary 22,880 bytes larger (2,464,612 vs 2,441,732), saved 80 lines here against its 3,023,
//! and writes the PCR's reserved bits as 0 where ISO/IEC 13818-1 wants 1s.
//!
//! # Contract
//!
//! [`TsMuxer`] holds only the continuity counters. The caller drives it:
//!
//! 1. [`TsMuxer::write_pat_pmt`] at the start of every segment (and of an HTTP-TS response);
//! 2. [`TsMuxer::write_video`] with one Annex B access unit (see `avc::to_annexb`, `hevc::to_annexb`) per frame,
//!    and [`TsMuxer::write_audio`] with one or more ADTS (or MP3) frames, in decode order.
//!
//! Each call appends whole 188-byte packets to `out`; nothing is buffered inside. Timestamps are
//! milliseconds (RTMP's unit) and become 90 kHz ticks, wrapped to 33 bits as the wire demands.
//!
//! Layout choices follow SRS and ffmpeg, so players that work with them work with srsd: PMT on
//! PID 0x1001, video on 0x100, audio on 0x101, PCR carried by the video PID (the audio PID when
//! there is no video), PCR = DTS, video PES length 0 (unbounded).

use bytes::{BufMut, BytesMut};

/// Every TS packet is this long.
pub const PACKET_SIZE: usize = 188;
/// Every TS packet starts with this byte.
pub const SYNC_BYTE: u8 = 0x47;
const HEADER_SIZE: usize = 4;
const PAYLOAD_SIZE: usize = PACKET_SIZE - HEADER_SIZE;

/// Packet identifiers srsd uses.
pub mod pid {
    /// Program association table (fixed by the standard).
    pub const PAT: u16 = 0x0000;
    /// Program map table, where SRS puts it.
    pub const PMT: u16 = 0x1001;
    /// H.264 or H.265 elementary stream.
    pub const VIDEO: u16 = 0x0100;
    /// AAC or MP3 elementary stream.
    pub const AUDIO: u16 = 0x0101;
    /// The null PID, used as PCR PID when a program has no streams.
    pub const NULL: u16 = 0x1FFF;
}

/// `stream_type` values of the PMT (ISO/IEC 13818-1 Table 2-34).
pub mod stream_type {
    pub const MPEG1_AUDIO: u8 = 0x03;
    pub const AAC_ADTS: u8 = 0x0F;
    pub const H264: u8 = 0x1B;
    pub const HEVC: u8 = 0x24;
}

/// PES `stream_id`s: the first video and the first audio stream.
const STREAM_ID_VIDEO: u8 = 0xE0;
const STREAM_ID_AUDIO: u8 = 0xC0;

/// The single program's number and the transport stream id, both 1 as in SRS and ffmpeg.
const PROGRAM_NUMBER: u16 = 1;
const TRANSPORT_STREAM_ID: u16 = 1;

/// A 90 kHz MPEG timestamp. It holds its limit: the value is always below 2^33, the width of
/// PTS, DTS and the PCR base on the wire, wrapping like they do (every ~26.5 hours).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Timestamp90k(u64);

impl Timestamp90k {
    /// 2^33: the modulus of every 90 kHz field in a TS.
    pub const MODULUS: u64 = 1 << 33;

    /// `ticks` modulo 2^33.
    pub fn new(ticks: u64) -> Self {
        Timestamp90k(ticks % Self::MODULUS)
    }

    /// Milliseconds (possibly negative, e.g. a PTS before the first DTS) to 90 kHz, wrapped.
    pub fn from_ms(ms: i64) -> Self {
        let ticks = ms.wrapping_mul(90).rem_euclid(Self::MODULUS as i64);
        Timestamp90k(ticks as u64)
    }

    /// The tick count, below 2^33.
    pub fn ticks(self) -> u64 {
        self.0
    }
}

/// The video codec of the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    /// H.264 Annex B (`stream_type` 0x1B).
    H264,
    /// H.265 Annex B (`stream_type` 0x24, ISO/IEC 13818-1 Amd 3).
    Hevc,
}

/// The audio codec of the program.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AudioCodec {
    /// AAC in ADTS frames (`stream_type` 0x0F).
    Aac,
    /// MPEG-1/2 Layer III frames (`stream_type` 0x03).
    Mp3,
}

impl AudioCodec {
    fn stream_type(self) -> u8 {
        match self {
            AudioCodec::Aac => stream_type::AAC_ADTS,
            AudioCodec::Mp3 => stream_type::MPEG1_AUDIO,
        }
    }
}

/// A 4-bit continuity counter, one per PID; it counts packets that carry payload.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct ContinuityCounter(u8);

impl ContinuityCounter {
    /// The value for the next packet, then advance (wrapping 15 -> 0).
    fn next(&mut self) -> u8 {
        let cc = self.0;
        self.0 = (self.0 + 1) & 0x0F;
        cc
    }
}

/// Adaptation-field content of a PES's first packet.
#[derive(Debug, Clone, Copy, Default)]
struct FirstPacketFlags {
    pcr: Option<Timestamp90k>,
    random_access: bool,
}

/// Muxes one program of H.264/H.265 and AAC/MP3 into TS packets. See the module doc for the calling
/// order; the muxer keeps only continuity counters, so one muxer per output (segment series or
/// HTTP-TS viewer) keeps each output's counters continuous.
#[derive(Debug, Clone)]
pub struct TsMuxer {
    has_video: bool,
    has_audio: bool,
    audio: AudioCodec,
    video: VideoCodec,
    cc_pat: ContinuityCounter,
    cc_pmt: ContinuityCounter,
    cc_video: ContinuityCounter,
    cc_audio: ContinuityCounter,
}

impl TsMuxer {
    pub fn new(has_video: bool, has_audio: bool, audio: AudioCodec) -> Self {
        TsMuxer {
            has_video,
            has_audio,
            audio,
            video: VideoCodec::H264,
            cc_pat: ContinuityCounter::default(),
            cc_pmt: ContinuityCounter::default(),
            cc_video: ContinuityCounter::default(),
            cc_audio: ContinuityCounter::default(),
        }
    }

    /// Sets the video codec the PMT announces (H.264 unless set).
    pub fn set_video_codec(&mut self, video: VideoCodec) {
        self.video = video;
    }

    /// Takes over `prev`'s continuity counters, so the next packet of each PID continues
    /// where `prev` stopped. The segments of one HLS stream are one transport stream to a
    /// player that reads them back to back (ffmpeg's HLS demuxer, VLC): counters restarting
    /// at 0 in each segment are a continuity error per segment there. SRS likewise keeps one
    /// TS context, hence one set of counters, for all the segments of a publish.
    pub fn continue_counters(&mut self, prev: &TsMuxer) {
        self.cc_pat = prev.cc_pat;
        self.cc_pmt = prev.cc_pmt;
        self.cc_video = prev.cc_video;
        self.cc_audio = prev.cc_audio;
    }

    /// The PID whose packets carry the PCR.
    pub fn pcr_pid(&self) -> u16 {
        if self.has_video {
            pid::VIDEO
        } else if self.has_audio {
            pid::AUDIO
        } else {
            pid::NULL
        }
    }

    /// Appends one PAT packet and one PMT packet.
    pub fn write_pat_pmt(&mut self, out: &mut BytesMut) {
        // PAT (§2.4.4.3): one program, mapped to the PMT PID.
        let mut pat = Vec::with_capacity(16);
        pat.extend_from_slice(&PROGRAM_NUMBER.to_be_bytes());
        pat.extend_from_slice(&(0xE000 | pid::PMT).to_be_bytes());
        let cc = self.cc_pat.next();
        write_section(0x00, TRANSPORT_STREAM_ID, &pat, pid::PAT, cc, out);

        // PMT (§2.4.4.8): PCR PID, no program descriptors, then one entry per stream.
        let mut pmt = Vec::with_capacity(16);
        pmt.extend_from_slice(&(0xE000 | self.pcr_pid()).to_be_bytes());
        pmt.extend_from_slice(&0xF000u16.to_be_bytes()); // program_info_length 0
        let mut stream = |stream_type: u8, pid: u16| {
            pmt.push(stream_type);
            pmt.extend_from_slice(&(0xE000 | pid).to_be_bytes());
            pmt.extend_from_slice(&0xF000u16.to_be_bytes()); // ES_info_length 0
        };
        if self.has_video {
            let t = match self.video {
                VideoCodec::H264 => stream_type::H264,
                VideoCodec::Hevc => stream_type::HEVC,
            };
            stream(t, pid::VIDEO);
        }
        if self.has_audio {
            stream(self.audio.stream_type(), pid::AUDIO);
        }
        let cc = self.cc_pmt.next();
        write_section(0x02, PROGRAM_NUMBER, &pmt, pid::PMT, cc, out);
    }

    /// Appends one video access unit (Annex B) as a PES on the video PID.
    ///
    /// The first packet carries PCR = DTS and, for a keyframe, `random_access_indicator`.
    /// DTS is written only when it differs from PTS (B-frames). The PES length is 0, which the
    /// standard allows for video of any size.
    pub fn write_video(
        &mut self,
        pts_ms: i64,
        dts_ms: i64,
        annexb: &[u8],
        keyframe: bool,
        out: &mut BytesMut,
    ) {
        let pts = Timestamp90k::from_ms(pts_ms);
        let dts = Timestamp90k::from_ms(dts_ms);
        let header = pes_header(STREAM_ID_VIDEO, pts, (dts != pts).then_some(dts), None);
        let flags = FirstPacketFlags {
            pcr: Some(dts),
            random_access: keyframe,
        };
        let cc = &mut self.cc_video;
        write_pes(pid::VIDEO, cc, flags, &header, annexb, out);
    }

    /// Appends audio (one or more ADTS or MP3 frames) as a PES on the audio PID, PTS only.
    ///
    /// Without video, the first packet carries PCR = PTS, since the audio PID is the PCR PID.
    /// A PES longer than the 16-bit length field can say gets length 0.
    pub fn write_audio(&mut self, pts_ms: i64, data: &[u8], out: &mut BytesMut) {
        let pts = Timestamp90k::from_ms(pts_ms);
        let header = pes_header(STREAM_ID_AUDIO, pts, None, Some(data.len()));
        let flags = FirstPacketFlags {
            pcr: (!self.has_video).then_some(pts),
            random_access: !self.has_video,
        };
        let cc = &mut self.cc_audio;
        write_pes(pid::AUDIO, cc, flags, &header, data, out);
    }
}

/// Writes a PSI section (PAT or PMT) into a single packet, with pointer field, CRC and 0xFF
/// stuffing. `body` is everything after `last_section_number` and before the CRC; srsd's
/// tables are far smaller than one packet.
fn write_section(table_id: u8, id: u16, body: &[u8], pid: u16, cc: u8, out: &mut BytesMut) {
    // section_length counts from after itself to the end of the CRC.
    let section_length = 5 + body.len() + 4;
    let mut section = Vec::with_capacity(3 + section_length);
    section.push(table_id);
    // section_syntax_indicator 1, '0', reserved '11', 12-bit length.
    section.extend_from_slice(&(0xB000 | (section_length as u16 & 0x0FFF)).to_be_bytes());
    section.extend_from_slice(&id.to_be_bytes());
    section.push(0xC1); // reserved '11', version 0, current_next_indicator 1
    section.push(0x00); // section_number
    section.push(0x00); // last_section_number
    section.extend_from_slice(body);
    let crc = crc32_mpeg2(&section);
    section.extend_from_slice(&crc.to_be_bytes());

    let start = out.len();
    put_header(out, pid, true, false, cc);
    out.put_u8(0); // pointer_field: the section starts right here
    let room = PACKET_SIZE - HEADER_SIZE - 1;
    out.put_slice(section.get(..room).unwrap_or(&section));
    out.put_bytes(0xFF, PACKET_SIZE - (out.len() - start));
}

/// The 4-byte packet header: sync, PUSI, PID, adaptation_field_control, continuity counter.
fn put_header(out: &mut BytesMut, pid: u16, unit_start: bool, adaptation: bool, cc: u8) {
    let pusi = if unit_start { 0x40 } else { 0 };
    // adaptation_field_control: '01' payload only, '11' adaptation field then payload.
    let afc = if adaptation { 0x30 } else { 0x10 };
    out.put_slice(&[
        SYNC_BYTE,
        pusi | ((pid >> 8) as u8 & 0x1F),
        pid as u8,
        afc | (cc & 0x0F),
    ]);
}

/// Builds a PES header with PTS and optional DTS (§2.4.3.6). `payload_len` sets
/// `PES_packet_length` when it fits 16 bits; `None` (video) or too long writes 0.
fn pes_header(
    stream_id: u8,
    pts: Timestamp90k,
    dts: Option<Timestamp90k>,
    payload_len: Option<usize>,
) -> Vec<u8> {
    let ts_len = if dts.is_some() { 10 } else { 5 };
    let mut h = Vec::with_capacity(9 + ts_len);
    h.extend_from_slice(&[0x00, 0x00, 0x01, stream_id]);
    let length = payload_len
        .and_then(|n| n.checked_add(3 + ts_len))
        .and_then(|n| u16::try_from(n).ok())
        .unwrap_or(0);
    h.extend_from_slice(&length.to_be_bytes());
    h.push(0x80); // '10', not scrambled, no priority, no alignment, no copyright, copy
    match dts {
        Some(dts) => {
            h.push(0xC0); // PTS_DTS_flags '11'
            h.push(10);
            put_timestamp(&mut h, 0x3, pts);
            put_timestamp(&mut h, 0x1, dts);
        }
        None => {
            h.push(0x80); // PTS_DTS_flags '10'
            h.push(5);
            put_timestamp(&mut h, 0x2, pts);
        }
    }
    h
}

/// A 33-bit timestamp in 5 bytes: 4-bit prefix, then 3, 15 and 15 bits each followed by a
/// marker bit.
fn put_timestamp(h: &mut Vec<u8>, prefix: u8, ts: Timestamp90k) {
    let t = ts.ticks();
    h.extend_from_slice(&[
        (prefix << 4) | (((t >> 30) & 0x07) as u8) << 1 | 1,
        (t >> 22) as u8,
        (((t >> 15) & 0x7F) as u8) << 1 | 1,
        (t >> 7) as u8,
        ((t & 0x7F) as u8) << 1 | 1,
    ]);
}

/// The 6-byte PCR: 33-bit base (90 kHz), 6 reserved bits, 9-bit extension (27 MHz remainder,
/// 0 here since the clock is only known to the millisecond).
fn put_pcr(out: &mut BytesMut, pcr: Timestamp90k) {
    let base = pcr.ticks();
    out.put_slice(&[
        (base >> 25) as u8,
        (base >> 17) as u8,
        (base >> 9) as u8,
        (base >> 1) as u8,
        ((base & 1) as u8) << 7 | 0x7E,
        0x00,
    ]);
}

/// Splits one PES (header + data) into packets. The first packet sets
/// `payload_unit_start_indicator` and carries `flags` in its adaptation field; the last one is
/// padded to 188 bytes with adaptation-field stuffing (PES payload cannot be padded).
fn write_pes(
    pid: u16,
    cc: &mut ContinuityCounter,
    flags: FirstPacketFlags,
    header: &[u8],
    data: &[u8],
    out: &mut BytesMut,
) {
    let total = header.len() + data.len();
    out.reserve(total.div_ceil(PAYLOAD_SIZE - 8).max(1) * PACKET_SIZE);
    let mut written = 0;
    let mut first = true;
    while first || written < total {
        let (pcr, random_access) = if first {
            (flags.pcr, flags.random_access)
        } else {
            (None, false)
        };
        // Adaptation field bytes this packet needs anyway: length + flags (+ PCR).
        let min_af = match (pcr, random_access) {
            (Some(_), _) => 2 + 6,
            (None, true) => 2,
            (None, false) => 0,
        };
        let payload = (total - written).min(PAYLOAD_SIZE - min_af);
        // Whatever the payload does not fill becomes adaptation field (stuffing).
        let af_len = PAYLOAD_SIZE - payload;

        let start = out.len();
        put_header(out, pid, first, af_len > 0, cc.next());
        if af_len > 0 {
            // adaptation_field_length excludes itself; 0 is a one-byte field of pure stuffing.
            out.put_u8((af_len - 1) as u8);
            if af_len > 1 {
                let mut af_flags = 0;
                if random_access {
                    af_flags |= 0x40;
                }
                if pcr.is_some() {
                    af_flags |= 0x10;
                }
                out.put_u8(af_flags);
                if let Some(pcr) = pcr {
                    put_pcr(out, pcr);
                }
                out.put_bytes(0xFF, PACKET_SIZE - (out.len() - start) - payload);
            }
        }
        // Payload: the rest of the PES header, then data.
        let mut left = payload;
        if written < header.len() {
            let part = header.get(written..).unwrap_or_default();
            let part = part.get(..left).unwrap_or(part);
            out.put_slice(part);
            left -= part.len();
            written += part.len();
        }
        let from = written - header.len().min(written);
        let part = data.get(from..from + left).unwrap_or_default();
        out.put_slice(part);
        written += part.len();
        first = false;
    }
}

/// CRC-32/MPEG-2 (poly 0x04C11DB7, init 0xFFFFFFFF, no reflection, no final xor), as PSI
/// sections end with (§2.4.4.3, Annex A).
fn crc32_mpeg2(data: &[u8]) -> u32 {
    const TABLE: [u32; 256] = {
        let mut table = [0u32; 256];
        let mut i = 0;
        while i < 256 {
            let mut c = (i as u32) << 24;
            let mut bit = 0;
            while bit < 8 {
                c = if c & 0x8000_0000 != 0 {
                    (c << 1) ^ 0x04C1_1DB7
                } else {
                    c << 1
                };
                bit += 1;
            }
            table[i] = c;
            i += 1;
        }
        table
    };
    data.iter().fold(0xFFFF_FFFF, |crc, &b| {
        (crc << 8) ^ TABLE[usize::from((crc >> 24) as u8 ^ b)]
    })
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

    fn packets(out: &[u8]) -> Vec<&[u8]> {
        assert_eq!(out.len() % PACKET_SIZE, 0, "whole packets only");
        let p: Vec<&[u8]> = out.chunks(PACKET_SIZE).collect();
        for pkt in &p {
            assert_eq!(pkt[0], SYNC_BYTE);
        }
        p
    }

    fn pid_of(p: &[u8]) -> u16 {
        (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2])
    }

    fn cc_of(p: &[u8]) -> u8 {
        p[3] & 0x0F
    }

    /// The PES bytes a packet carries (after its adaptation field, if any).
    fn payload_of(p: &[u8]) -> &[u8] {
        match p[3] & 0x30 {
            0x10 => &p[4..],
            0x30 => &p[5 + usize::from(p[4])..],
            other => panic!("unexpected adaptation_field_control {other:#x}"),
        }
    }

    fn read_timestamp(b: &[u8]) -> u64 {
        assert_eq!(b[0] & 1, 1, "marker");
        assert_eq!(b[2] & 1, 1, "marker");
        assert_eq!(b[4] & 1, 1, "marker");
        (u64::from(b[0] >> 1 & 0x07) << 30)
            | (u64::from(b[1]) << 22)
            | (u64::from(b[2] >> 1) << 15)
            | (u64::from(b[3]) << 7)
            | u64::from(b[4] >> 1)
    }

    fn read_pcr(b: &[u8]) -> u64 {
        (u64::from(b[0]) << 25)
            | (u64::from(b[1]) << 17)
            | (u64::from(b[2]) << 9)
            | (u64::from(b[3]) << 1)
            | u64::from(b[4] >> 7)
    }

    #[test]
    fn crc32_mpeg2_check_value() {
        assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
        // A section followed by its own CRC checks to 0.
        let mut s = b"srsd".to_vec();
        s.extend_from_slice(&crc32_mpeg2(b"srsd").to_be_bytes());
        assert_eq!(crc32_mpeg2(&s), 0);
    }

    #[test]
    fn crc_matches_ffmpeg_pat() {
        // ffmpeg's default PAT (PMT on 0x1000) ends with the well-known CRC 2A B1 04 B2.
        let section = hex("00 b00d 0001 c1 00 00 0001 f000");
        assert_eq!(crc32_mpeg2(&section), 0x2AB1_04B2);
    }

    #[test]
    fn pat_and_pmt_are_byte_exact() {
        let mut m = TsMuxer::new(true, true, AudioCodec::Aac);
        let mut out = BytesMut::new();
        m.write_pat_pmt(&mut out);
        let p = packets(&out);
        assert_eq!(p.len(), 2);

        let mut pat = hex("47 40 00 10 00  00 b00d 0001 c1 00 00  0001 f001");
        pat.extend_from_slice(&crc32_mpeg2(&pat[5..]).to_be_bytes());
        // SRS's PAT: program 1 -> PMT 0x1001.
        assert_eq!(&pat[17..], &hex("2e 70 19 05")[..]);
        pat.resize(PACKET_SIZE, 0xFF);
        assert_eq!(p[0], &pat[..]);

        let mut pmt =
            hex("47 50 01 10 00  02 b017 0001 c1 00 00  e100 f000  1b e100 f000  0f e101 f000");
        pmt.extend_from_slice(&crc32_mpeg2(&pmt[5..]).to_be_bytes());
        pmt.resize(PACKET_SIZE, 0xFF);
        assert_eq!(p[1], &pmt[..]);
        assert_eq!(crc32_mpeg2(&p[1][5..5 + 3 + 0x17]), 0);
    }

    #[test]
    fn hevc_pmt_is_byte_exact() {
        let mut m = TsMuxer::new(true, true, AudioCodec::Aac);
        m.set_video_codec(VideoCodec::Hevc);
        let mut out = BytesMut::new();
        m.write_pat_pmt(&mut out);
        // As ffmpeg's: stream_type 0x24 (H.265) on the video PID, which carries the PCR.
        let mut pmt =
            hex("47 50 01 10 00  02 b017 0001 c1 00 00  e100 f000  24 e100 f000  0f e101 f000");
        pmt.extend_from_slice(&crc32_mpeg2(&pmt[5..]).to_be_bytes());
        pmt.resize(PACKET_SIZE, 0xFF);
        assert_eq!(packets(&out)[1], &pmt[..]);
    }

    #[test]
    fn pmt_for_audio_only_mp3_puts_pcr_on_audio() {
        let mut m = TsMuxer::new(false, true, AudioCodec::Mp3);
        let mut out = BytesMut::new();
        m.write_pat_pmt(&mut out);
        let pmt = packets(&out)[1];
        assert_eq!(
            &pmt[5..22],
            &hex("02 b012 0001 c1 00 00 e101 f000 03 e101 f000")[..]
        );
        assert_eq!(crc32_mpeg2(&pmt[5..5 + 3 + 0x12]), 0);
        assert_eq!(m.pcr_pid(), pid::AUDIO);
        assert_eq!(
            TsMuxer::new(false, false, AudioCodec::Aac).pcr_pid(),
            pid::NULL
        );
    }

    #[test]
    fn continuity_counters_are_per_pid_and_wrap() {
        let mut m = TsMuxer::new(true, true, AudioCodec::Aac);
        let mut out = BytesMut::new();
        for _ in 0..20 {
            m.write_pat_pmt(&mut out);
            m.write_video(0, 0, &[0; 10], false, &mut out);
            m.write_audio(0, &[0; 10], &mut out);
        }
        let mut expected = std::collections::HashMap::new();
        for p in packets(&out) {
            let next = expected.entry(pid_of(p)).or_insert(0u8);
            assert_eq!(cc_of(p), *next, "pid {:#x}", pid_of(p));
            *next = (*next + 1) % 16;
        }
        assert_eq!(expected.len(), 4);
    }

    #[test]
    fn video_pes_header_carries_pts_and_dts_with_marker_bits() {
        let mut m = TsMuxer::new(true, true, AudioCodec::Aac);
        let mut out = BytesMut::new();
        m.write_video(1040, 1000, &[0xAB; 20], true, &mut out);
        let p = packets(&out);
        assert_eq!(p.len(), 1);
        let pkt = p[0];
        assert_eq!(&pkt[..4], &[0x47, 0x41, 0x00, 0x30], "PUSI, PID 0x100, AF");
        // AF: stuffed to fill the packet; flags: random access + PCR.
        assert_eq!(usize::from(pkt[4]), PACKET_SIZE - 5 - (19 + 20));
        assert_eq!(pkt[5], 0x50);
        assert_eq!(read_pcr(&pkt[6..12]), 90_000);
        assert_eq!(pkt[10] & 0x7E, 0x7E, "reserved bits");
        assert_eq!(pkt[11], 0, "PCR extension");
        assert!(pkt[12..5 + usize::from(pkt[4])].iter().all(|&b| b == 0xFF));
        let pes = payload_of(pkt);
        assert_eq!(&pes[..9], &[0, 0, 1, 0xE0, 0, 0, 0x80, 0xC0, 10]);
        assert_eq!(pes[9] >> 4, 0x3);
        assert_eq!(read_timestamp(&pes[9..14]), 1040 * 90);
        assert_eq!(pes[14] >> 4, 0x1);
        assert_eq!(read_timestamp(&pes[14..19]), 1000 * 90);
        assert_eq!(&pes[19..], &[0xAB; 20]);
    }

    #[test]
    fn pts_only_when_equal_to_dts_and_no_random_access_on_p_frames() {
        let mut m = TsMuxer::new(true, false, AudioCodec::Aac);
        let mut out = BytesMut::new();
        m.write_video(500, 500, &[1, 2, 3], false, &mut out);
        let pkt = packets(&out)[0];
        assert_eq!(pkt[5], 0x10, "PCR only");
        let pes = payload_of(pkt);
        assert_eq!(&pes[..9], &[0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5]);
        assert_eq!(pes[9] >> 4, 0x2);
        assert_eq!(read_timestamp(&pes[9..14]), 45_000);
        assert_eq!(&pes[14..], &[1, 2, 3]);
    }

    #[test]
    fn timestamp_bytes_are_exact() {
        // All-ones 33-bit value: every data bit and marker set.
        let mut h = Vec::new();
        put_timestamp(&mut h, 0x2, Timestamp90k::new((1 << 33) - 1));
        assert_eq!(h, [0x2F, 0xFF, 0xFF, 0xFF, 0xFF]);
        let mut h = Vec::new();
        put_timestamp(&mut h, 0x3, Timestamp90k::new(0));
        assert_eq!(h, [0x31, 0x00, 0x01, 0x00, 0x01]);
        // 0x1_2345_6789 split 3/15/15 bits: 0b100, 0x468A, 0x6789.
        let mut h = Vec::new();
        put_timestamp(&mut h, 0x1, Timestamp90k::new(0x1_2345_6789));
        assert_eq!(read_timestamp(&h), 0x1_2345_6789);
        assert_eq!(h, [0x19, 0x8D, 0x15, 0xCF, 0x13]);
        let mut pcr = BytesMut::new();
        put_pcr(&mut pcr, Timestamp90k::new((1 << 33) - 1));
        assert_eq!(pcr.as_ref(), &[0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0x00]);
        let mut pcr = BytesMut::new();
        put_pcr(&mut pcr, Timestamp90k::new(1));
        assert_eq!(pcr.as_ref(), &[0, 0, 0, 0, 0xFE, 0x00]);
    }

    #[test]
    fn timestamps_wrap_at_33_bits() {
        let wrap_ms = (Timestamp90k::MODULUS / 90) as i64; // 95443717 ms, ~26.5 h
        assert_eq!(
            Timestamp90k::from_ms(wrap_ms).ticks(),
            (wrap_ms as u64 * 90) % (1 << 33)
        );
        assert_eq!(
            Timestamp90k::from_ms(wrap_ms + 1).ticks(),
            wrap_ms as u64 * 90 + 90 - (1 << 33)
        );
        assert_eq!(Timestamp90k::from_ms(-1).ticks(), (1 << 33) - 90);
        assert!(Timestamp90k::from_ms(i64::MIN).ticks() < (1 << 33));
        assert_eq!(Timestamp90k::new(1 << 33), Timestamp90k::new(0));
        assert_eq!(Timestamp90k::from_ms(1000).ticks(), 90_000);

        let mut m = TsMuxer::new(true, false, AudioCodec::Aac);
        let mut out = BytesMut::new();
        m.write_video(wrap_ms + 2, wrap_ms + 1, &[0], false, &mut out);
        let pkt = packets(&out)[0];
        assert_eq!(read_pcr(&pkt[6..12]), (wrap_ms as u64 + 1) * 90 - (1 << 33));
        let pes = payload_of(pkt);
        assert_eq!(
            read_timestamp(&pes[9..14]),
            (wrap_ms as u64 + 2) * 90 - (1 << 33)
        );
    }

    #[test]
    fn ten_kilobyte_frame_splits_into_whole_packets() {
        let frame: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
        let mut m = TsMuxer::new(true, true, AudioCodec::Aac);
        let mut out = BytesMut::new();
        m.write_video(0, 0, &frame, true, &mut out);
        let p = packets(&out);
        // First packet: 184 - 8 (AF with PCR) = 176 bytes of PES; then 184 per packet.
        let pes_len = 14 + frame.len();
        let expected = 1 + (pes_len - 176).div_ceil(184);
        assert_eq!(p.len(), expected);
        let mut pes = Vec::new();
        for (i, pkt) in p.iter().enumerate() {
            assert_eq!(pid_of(pkt), pid::VIDEO);
            assert_eq!(cc_of(pkt), (i % 16) as u8);
            assert_eq!(pkt[1] & 0x40 != 0, i == 0, "PUSI only on the first packet");
            if i > 0 && i < p.len() - 1 {
                assert_eq!(
                    pkt[3] & 0x30,
                    0x10,
                    "middle packets have no adaptation field"
                );
            }
            pes.extend_from_slice(payload_of(pkt));
        }
        let last = p[p.len() - 1];
        let stuffing = 184 - (pes_len - 176) % 184;
        assert_eq!(usize::from(last[4]) + 1, stuffing);
        assert_eq!(last[5], 0, "stuffing-only adaptation field has no flags");
        assert_eq!(pes.len(), pes_len);
        assert_eq!(&pes[14..], &frame[..]);
    }

    #[test]
    fn stuffing_of_one_and_two_bytes() {
        // Sizes that leave 0, 1 and 2 bytes free in the last packet.
        for (free, af) in [
            (0usize, None),
            (1, Some(vec![0x00])),
            (2, Some(vec![0x01, 0x00])),
        ] {
            let mut m = TsMuxer::new(true, false, AudioCodec::Aac);
            let mut out = BytesMut::new();
            // 176 in the first packet, then one more packet with 184 - free bytes.
            let data = vec![0x11; 176 + 184 - free - 14];
            m.write_video(0, 0, &data, false, &mut out);
            let p = packets(&out);
            assert_eq!(p.len(), 2);
            match af {
                None => assert_eq!(p[1][3] & 0x30, 0x10),
                Some(af) => {
                    assert_eq!(p[1][3] & 0x30, 0x30);
                    assert_eq!(&p[1][4..4 + af.len()], &af[..]);
                }
            }
            assert_eq!(payload_of(p[1]).len(), 184 - free);
        }
    }

    #[test]
    fn audio_pes_has_length_and_pcr_only_without_video() {
        let adts = [0xFF, 0xF1, 0x50, 0x80, 0x01, 0xBF, 0xFC, 1, 2, 3, 4, 5, 6];
        let mut with_video = TsMuxer::new(true, true, AudioCodec::Aac);
        let mut out = BytesMut::new();
        with_video.write_audio(2000, &adts, &mut out);
        let pkt = packets(&out)[0];
        assert_eq!(pid_of(pkt), pid::AUDIO);
        assert_eq!(pkt[5], 0x00, "no PCR, no random access: stuffing only");
        let pes = payload_of(pkt);
        let len = 3 + 5 + adts.len();
        assert_eq!(&pes[..9], &[0, 0, 1, 0xC0, 0, len as u8, 0x80, 0x80, 5]);
        assert_eq!(read_timestamp(&pes[9..14]), 180_000);
        assert_eq!(&pes[14..], &adts);

        let mut audio_only = TsMuxer::new(false, true, AudioCodec::Aac);
        let mut out = BytesMut::new();
        audio_only.write_audio(2000, &adts, &mut out);
        let pkt = packets(&out)[0];
        assert_eq!(pkt[5], 0x50, "PCR and random access on audio-only");
        assert_eq!(read_pcr(&pkt[6..12]), 180_000);
    }

    #[test]
    fn huge_audio_pes_gets_length_zero() {
        let mut m = TsMuxer::new(false, true, AudioCodec::Mp3);
        let mut out = BytesMut::new();
        m.write_audio(0, &vec![0; 70_000], &mut out);
        let pes = payload_of(packets(&out)[0]);
        assert_eq!(&pes[4..6], &[0, 0]);
    }

    #[test]
    fn empty_payloads_still_write_one_packet() {
        let mut m = TsMuxer::new(true, true, AudioCodec::Aac);
        let mut out = BytesMut::new();
        m.write_video(0, 0, &[], true, &mut out);
        m.write_audio(0, &[], &mut out);
        assert_eq!(packets(&out).len(), 2);
    }

    #[test]
    fn every_size_round_trips_through_packets() {
        let mut m = TsMuxer::new(true, true, AudioCodec::Aac);
        for size in (0..1200).chain([65_535, 65_536, 100_000]) {
            let data: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
            for video in [true, false] {
                let mut out = BytesMut::new();
                if video {
                    m.write_video(size as i64, 0, &data, size % 2 == 0, &mut out);
                } else {
                    m.write_audio(size as i64, &data, &mut out);
                }
                let pes: Vec<u8> = packets(&out)
                    .iter()
                    .flat_map(|p| payload_of(p).to_vec())
                    .collect();
                let header = usize::from(pes[8]) + 9;
                assert_eq!(&pes[header..], &data[..], "size {size} video {video}");
            }
        }
    }
}
