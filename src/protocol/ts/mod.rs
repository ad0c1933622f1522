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
mod tests;
