//! The media model: what one audio, video or data message of a live stream is, read once from
//! the first bytes of its FLV tag body (= RTMP message body) by [`TagHeader::decode`].
//!
//! Two forms exist on the wire and both are read here, nowhere else:
//!
//! * **Legacy FLV** (Adobe FLV spec v10.1 §E.4.2/§E.4.3): video byte 0 is `FrameType << 4 |
//!   CodecID` (7 = AVC; 12 = HEVC by the CDN convention of SRS, nginx-rtmp forks and Chinese
//!   CDNs), AVC/HEVC add `AVCPacketType` and a 24-bit composition time; audio byte 0 is
//!   `SoundFormat << 4 | rate, size, type` (10 = AAC adds `AACPacketType`).
//! * **Enhanced RTMP** (veovera enhanced-rtmp v1/v2): video byte 0 is `IsExHeader(1) |
//!   FrameType(3) | PacketType(4)` followed by a FourCC (`avc1`, `hvc1`, `av01`, `vp09`);
//!   `CodedFrames` of `avc1`/`hvc1` add a 24-bit composition time, `CodedFramesX` does not.
//!   Audio byte 0 is `SoundFormat 9 (ExHeader) << 4 | AudioPacketType` followed by a FourCC
//!   (`Opus`, `mp4a`, `.mp3`, `fLaC`, ...).
//!
//! Multitrack packets (v2) are read as far as their packet type and shared FourCC
//! ([`TagHeader::multitrack`]), so their keyframes and sequence headers count as such in the
//! hub; ModEx packets are passed through unread ([`Packet::Other`]).
//! `decode` and `encode` are exact inverses on every form (one byte table tests both ways).

use super::rtmp::{chunk, message};
use std::fmt;

/// The track of a message: its RTMP message type (8 audio, 9 video, 18 AMF0 data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
    /// AMF0 data: onMetaData (with `@setDataFrame` removed) and other script data.
    Data,
}

impl MediaKind {
    /// The RTMP message type id.
    pub fn type_id(self) -> u8 {
        match self {
            MediaKind::Audio => message::type_id::AUDIO,
            MediaKind::Video => message::type_id::VIDEO,
            MediaKind::Data => message::type_id::AMF0_DATA,
        }
    }

    /// The chunk stream id srsd sends this track on (as SRS).
    pub fn csid(self) -> u32 {
        match self {
            MediaKind::Audio => chunk::csid::AUDIO,
            MediaKind::Video => chunk::csid::VIDEO,
            MediaKind::Data => chunk::csid::OVER_STREAM,
        }
    }

    /// The kind of an RTMP message type id, `None` for non-media messages.
    pub fn from_type_id(t: u8) -> Option<MediaKind> {
        match t {
            message::type_id::AUDIO => Some(MediaKind::Audio),
            message::type_id::VIDEO => Some(MediaKind::Video),
            message::type_id::AMF0_DATA => Some(MediaKind::Data),
            _ => None,
        }
    }
}

/// A frame's codec. Codecs srsd does nothing with but pass through keep their wire number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Codec {
    /// Script data, or a tag too short to say.
    #[default]
    None,
    H264,
    Hevc,
    Av1,
    Vp9,
    Aac,
    Mp3,
    Opus,
    /// Another legacy FLV video CodecID (2 Sorenson H.263, 4 VP6, ...).
    OtherVideo(u8),
    /// Another legacy FLV SoundFormat (1 ADPCM, 11 Speex, ...).
    OtherAudio(u8),
    /// Another Enhanced RTMP FourCC (`fLaC`, `ac-3`, `ec-3`, ...).
    FourCc([u8; 4]),
}

impl Codec {
    /// The name SRS's API uses (`H264`, `H265`, `AV1`, `VP9`, `AAC`, `MP3`, `Opus`), or
    /// `None` for codecs passed through unnamed.
    pub fn name(self) -> Option<&'static str> {
        Some(match self {
            Codec::H264 => "H264",
            Codec::Hevc => "H265",
            Codec::Av1 => "AV1",
            Codec::Vp9 => "VP9",
            Codec::Aac => "AAC",
            Codec::Mp3 => "MP3",
            Codec::Opus => "Opus",
            _ => return None,
        })
    }

    fn from_video_fourcc(f: [u8; 4]) -> Codec {
        match &f {
            b"avc1" => Codec::H264,
            b"hvc1" => Codec::Hevc,
            b"av01" => Codec::Av1,
            b"vp09" => Codec::Vp9,
            _ => Codec::FourCc(f),
        }
    }

    /// The audio codec of an onMetaData `audiocodecid`, as a 32-bit value: a legacy
    /// SoundFormat (below 16) or an Enhanced RTMP FourCC (ffmpeg writes it as a number).
    pub fn from_audio_codec_id(id: [u8; 4]) -> Codec {
        match u32::from_be_bytes(id) {
            n if n == u32::from(SOUND_AAC) => Codec::Aac,
            n if n == u32::from(SOUND_MP3) => Codec::Mp3,
            n if n < 16 => Codec::OtherAudio(n as u8),
            _ => Codec::from_audio_fourcc(id),
        }
    }

    fn from_audio_fourcc(f: [u8; 4]) -> Codec {
        match &f {
            b"Opus" => Codec::Opus,
            b"mp4a" => Codec::Aac,
            b".mp3" => Codec::Mp3,
            _ => Codec::FourCc(f),
        }
    }

    /// The Enhanced RTMP FourCC, for codecs that have one.
    pub fn fourcc(self) -> Option<[u8; 4]> {
        Some(*match self {
            Codec::H264 => b"avc1",
            Codec::Hevc => b"hvc1",
            Codec::Av1 => b"av01",
            Codec::Vp9 => b"vp09",
            Codec::Opus => b"Opus",
            Codec::Aac => b"mp4a",
            Codec::Mp3 => b".mp3",
            Codec::FourCc(f) => return Some(f),
            _ => return None,
        })
    }
}

/// The FourCCs srsd carries end to end, as its upstream `connect` (edge pull/push, forward,
/// tools) announces them in `fourCcList` (Enhanced RTMP §"Enhancing NetConnection connect
/// Command"): origins that check the list (SRS 6+, cloud ingest) then accept Enhanced
/// streams from srsd. srsd relays every codec's bytes unchanged, so the list is what its
/// outputs understand: these four video and two audio FourCCs.
pub const FOURCC_LIST: [&str; 6] = ["avc1", "hvc1", "av01", "vp09", "Opus", "mp4a"];

/// What a message carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet {
    /// A decoder configuration (sequence header): AVCDecoderConfigurationRecord, hvcC, av1C,
    /// vpcC, AAC AudioSpecificConfig, OpusHead.
    Config,
    /// Coded frames with a composition time field (legacy AVC/HEVC NALUs, Enhanced
    /// `CodedFrames`), or the frame of a codec without packet types (MP3, VP6 ...).
    Frame,
    /// Enhanced `CodedFramesX`: coded frames without the composition time field (cts = 0).
    FrameX,
    /// End of sequence.
    EndOfSequence,
    /// Enhanced video `Metadata` (AMF, e.g. `colorInfo`).
    Metadata,
    /// Enhanced video `MPEG2TSSequenceStart` (an AV1 MPEG-2 TS descriptor).
    Mpeg2TsSequenceStart,
    /// Enhanced audio `MultichannelConfig`.
    MultichannelConfig,
    /// Script data (onMetaData and others).
    Script,
    /// A packet type srsd passes through unread (legacy reserved values, Enhanced Multitrack,
    /// ModEx, reserved), with its number.
    Other(u8),
}

/// The header of one FLV tag body, read once when the frame enters the hub.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagHeader {
    pub kind: MediaKind,
    pub codec: Codec,
    /// Enhanced RTMP form (IsExHeader / SoundFormat 9) rather than legacy FLV.
    pub enhanced: bool,
    /// Video: the FLV VideoFrameType (1 keyframe, 2 inter, 3 disposable, 4 generated
    /// keyframe, 5 command). Legacy audio: the low nibble of byte 0 (rate, size, type).
    pub frame_type: u8,
    pub packet: Packet,
    /// Composition time offset (PTS - DTS) in ms; 0 where the form has none.
    pub cts: i32,
    /// Enhanced RTMP v2 Multitrack: its AvMultitrackType (0 one track, 1 many tracks of
    /// one codec, 2 many tracks of many codecs). `packet` is then the packet type inside,
    /// `codec` the shared FourCC's (none for type 2), and the per-track ids and sizes after
    /// the header are not read: srsd relays such frames and muxes none of them.
    pub multitrack: Option<u8>,
}

/// A tag body too short for the header its first byte announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagError {
    pub kind: MediaKind,
    /// Bytes the header needs, bytes the body has.
    pub need: usize,
    pub have: usize,
}

impl fmt::Display for TagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:?} tag body of {} bytes, its header needs {}",
            self.kind, self.have, self.need
        )
    }
}

impl std::error::Error for TagError {}

const LEGACY_AVC: u8 = 7;
/// Enhanced RTMP v2 Multitrack packet types, and AvMultitrackType ManyTracksManyCodecs.
const MULTITRACK_VIDEO: u8 = 6;
const MULTITRACK_AUDIO: u8 = 5;
const MANY_CODECS: u8 = 2;
const LEGACY_HEVC: u8 = 12;
const SOUND_MP3: u8 = 2;
const SOUND_EX_HEADER: u8 = 9;
const SOUND_AAC: u8 = 10;

impl TagHeader {
    /// What a body of `kind` that cannot be read is: no codec, an unknown packet.
    pub fn unknown(kind: MediaKind) -> TagHeader {
        TagHeader {
            kind,
            codec: Codec::None,
            enhanced: false,
            frame_type: 0,
            packet: if kind == MediaKind::Data {
                Packet::Script
            } else {
                Packet::Other(0)
            },
            cts: 0,
            multitrack: None,
        }
    }

    /// Reads the header of a tag body. Errors when the body is shorter than the header its
    /// first byte announces (an empty audio/video body included).
    pub fn decode(kind: MediaKind, body: &[u8]) -> Result<TagHeader, TagError> {
        let h = TagHeader::classify(kind, body);
        let need = if body.is_empty() && kind != MediaKind::Data {
            1
        } else {
            h.len()
        };
        if body.len() < need {
            return Err(TagError {
                kind,
                need,
                have: body.len(),
            });
        }
        Ok(h)
    }

    /// Reads as much of the header as `body` holds: what a frame of the hub is. A truncated
    /// header keeps what its first bytes say (frame type, packet type, legacy codec id) with
    /// `Codec::None` for a missing FourCC and cts 0 for a missing composition time, so a
    /// short sequence header still counts as one (its record then fails to parse, and is
    /// logged, where it is read). [`TagHeader::len`] may then exceed `body.len()`.
    pub fn classify(kind: MediaKind, body: &[u8]) -> TagHeader {
        let mut h = TagHeader::unknown(kind);
        let Some(&b0) = body.first() else {
            return h;
        };
        let packet_legacy = |n: u8| match n {
            0 => Packet::Config,
            1 => Packet::Frame,
            2 => Packet::EndOfSequence,
            n => Packet::Other(n),
        };
        match kind {
            MediaKind::Data => return h,
            MediaKind::Video if b0 & 0x80 != 0 => {
                h.enhanced = true;
                h.frame_type = (b0 >> 4) & 0x07;
                h.packet = video_packet(b0 & 0x0F);
                if h.packet == Packet::Other(MULTITRACK_VIDEO) {
                    read_multitrack(&mut h, body, video_packet);
                }
                if !matches!(h.packet, Packet::Other(_)) && h.multitrack != Some(MANY_CODECS) {
                    let at = 1 + usize::from(h.multitrack.is_some());
                    h.codec = fourcc(body, at).map_or(Codec::None, Codec::from_video_fourcc);
                }
            }
            MediaKind::Video => {
                h.frame_type = b0 >> 4;
                h.codec = match b0 & 0x0F {
                    LEGACY_AVC => Codec::H264,
                    LEGACY_HEVC => Codec::Hevc,
                    n => Codec::OtherVideo(n),
                };
                h.packet = match (h.codec, body.get(1)) {
                    (Codec::H264 | Codec::Hevc, Some(&n)) => packet_legacy(n),
                    _ => Packet::Frame,
                };
            }
            MediaKind::Audio if b0 >> 4 == SOUND_EX_HEADER => {
                h.enhanced = true;
                h.packet = audio_packet(b0 & 0x0F);
                if h.packet == Packet::Other(MULTITRACK_AUDIO) {
                    read_multitrack(&mut h, body, audio_packet);
                }
                if !matches!(h.packet, Packet::Other(_)) && h.multitrack != Some(MANY_CODECS) {
                    let at = 1 + usize::from(h.multitrack.is_some());
                    h.codec = fourcc(body, at).map_or(Codec::None, Codec::from_audio_fourcc);
                }
            }
            MediaKind::Audio => {
                h.frame_type = b0 & 0x0F;
                h.codec = match b0 >> 4 {
                    SOUND_AAC => Codec::Aac,
                    SOUND_MP3 => Codec::Mp3,
                    n => Codec::OtherAudio(n),
                };
                h.packet = match (h.codec, body.get(1)) {
                    (Codec::Aac, Some(0)) => Packet::Config,
                    (Codec::Aac, Some(1)) => Packet::Frame,
                    (Codec::Aac, Some(&n)) => Packet::Other(n),
                    _ => Packet::Frame,
                };
            }
        }
        if h.has_cts_field() {
            let at = if h.enhanced { 5 } else { 2 };
            if let Some(&[a, b, c]) = body.get(at..at + 3) {
                // SI24, big-endian: into the top of an i32 and back to sign-extend.
                h.cts = (i32::from(a) << 24 | i32::from(b) << 16 | i32::from(c) << 8) >> 8;
            }
        }
        h
    }

    /// Whether the header holds a 24-bit composition time.
    fn has_cts_field(&self) -> bool {
        match (self.kind, self.enhanced) {
            (MediaKind::Video, false) => {
                matches!(self.codec, Codec::H264 | Codec::Hevc)
                    && !matches!(self.packet, Packet::Other(_))
            }
            (MediaKind::Video, true) => {
                self.packet == Packet::Frame
                    && self.multitrack.is_none()
                    && matches!(self.codec, Codec::H264 | Codec::Hevc)
            }
            _ => false,
        }
    }

    /// The header's length in bytes: where the codec data (configuration record, NALUs, OBUs,
    /// raw audio) starts in the tag body.
    pub fn len(&self) -> usize {
        match (self.kind, self.enhanced) {
            (MediaKind::Data, _) => 0,
            (_, true) if matches!(self.packet, Packet::Other(_)) => {
                1 + usize::from(self.multitrack.is_some())
            }
            (_, true) if self.multitrack == Some(MANY_CODECS) => 2,
            (_, true) if self.multitrack.is_some() => 6,
            (MediaKind::Video, true) => 5 + if self.has_cts_field() { 3 } else { 0 },
            (MediaKind::Audio, true) => 5,
            (MediaKind::Video, false) => {
                if matches!(self.codec, Codec::H264 | Codec::Hevc) {
                    if matches!(self.packet, Packet::Other(_)) {
                        2
                    } else {
                        5
                    }
                } else {
                    1
                }
            }
            (MediaKind::Audio, false) => 1 + usize::from(self.codec == Codec::Aac),
        }
    }

    /// Always false: a header has at least its first byte (data tags have none, see
    /// [`TagHeader::len`]).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A video frame a decoder can start at (FrameType 1 with coded data; sequence headers
    /// and command frames excluded).
    pub fn is_keyframe(&self) -> bool {
        self.kind == MediaKind::Video
            && self.frame_type == 1
            && matches!(self.packet, Packet::Frame | Packet::FrameX)
    }

    /// A decoder configuration (sequence header).
    pub fn is_config(&self) -> bool {
        self.packet == Packet::Config
    }

    /// Appends the header bytes [`TagHeader::decode`] reads (the inverse of `decode`).
    pub fn encode(&self, out: &mut Vec<u8>) {
        let packet_number = |p: Packet| match p {
            Packet::Config => 0,
            Packet::Frame => 1,
            Packet::EndOfSequence => 2,
            Packet::FrameX => 3,
            Packet::Metadata => 4,
            Packet::Mpeg2TsSequenceStart => 5,
            Packet::MultichannelConfig => 4,
            Packet::Script => 0,
            Packet::Other(n) => n,
        };
        let cts = self.cts.to_be_bytes();
        match (self.kind, self.enhanced) {
            (MediaKind::Data, _) => {}
            (_, true) if self.multitrack.is_some() => {
                let (first, kind) = match self.kind {
                    MediaKind::Video => (0x80 | (self.frame_type & 0x07) << 4, MULTITRACK_VIDEO),
                    _ => (SOUND_EX_HEADER << 4, MULTITRACK_AUDIO),
                };
                out.push(first | kind);
                let mt = self.multitrack.unwrap_or_default();
                out.push(mt << 4 | packet_number(self.packet) & 0x0F);
                if !matches!(self.packet, Packet::Other(_)) && mt != MANY_CODECS {
                    out.extend_from_slice(&self.codec.fourcc().unwrap_or_default());
                }
            }
            (MediaKind::Video, true) => {
                out.push(0x80 | (self.frame_type & 0x07) << 4 | packet_number(self.packet));
                if !matches!(self.packet, Packet::Other(_)) {
                    out.extend_from_slice(&self.codec.fourcc().unwrap_or_default());
                }
                if self.has_cts_field() {
                    out.extend_from_slice(&cts[1..]);
                }
            }
            (MediaKind::Audio, true) => {
                out.push(SOUND_EX_HEADER << 4 | packet_number(self.packet));
                if !matches!(self.packet, Packet::Other(_)) {
                    out.extend_from_slice(&self.codec.fourcc().unwrap_or_default());
                }
            }
            (MediaKind::Video, false) => {
                let id = match self.codec {
                    Codec::H264 => LEGACY_AVC,
                    Codec::Hevc => LEGACY_HEVC,
                    Codec::OtherVideo(n) => n,
                    _ => 0,
                };
                out.push(self.frame_type << 4 | id & 0x0F);
                if matches!(self.codec, Codec::H264 | Codec::Hevc) {
                    out.push(packet_number(self.packet));
                    if self.has_cts_field() {
                        out.extend_from_slice(&cts[1..]);
                    }
                }
            }
            (MediaKind::Audio, false) => {
                let format = match self.codec {
                    Codec::Aac => SOUND_AAC,
                    Codec::Mp3 => SOUND_MP3,
                    Codec::OtherAudio(n) => n,
                    _ => 0,
                };
                out.push(format << 4 | self.frame_type & 0x0F);
                if self.codec == Codec::Aac {
                    out.push(packet_number(self.packet));
                }
            }
        }
    }
}

fn fourcc(body: &[u8], at: usize) -> Option<[u8; 4]> {
    body.get(at..at + 4)?.try_into().ok()
}

/// Enhanced RTMP VideoPacketType.
fn video_packet(n: u8) -> Packet {
    match n {
        0 => Packet::Config,
        1 => Packet::Frame,
        2 => Packet::EndOfSequence,
        3 => Packet::FrameX,
        4 => Packet::Metadata,
        5 => Packet::Mpeg2TsSequenceStart,
        n => Packet::Other(n),
    }
}

/// Enhanced RTMP AudioPacketType.
fn audio_packet(n: u8) -> Packet {
    match n {
        0 => Packet::Config,
        1 => Packet::Frame,
        2 => Packet::EndOfSequence,
        4 => Packet::MultichannelConfig,
        n => Packet::Other(n),
    }
}

/// Multitrack (v2): byte 1 is AvMultitrackType << 4 | the packet type inside. A nested
/// Multitrack is not allowed and stays [`Packet::Other`].
fn read_multitrack(h: &mut TagHeader, body: &[u8], packet: fn(u8) -> Packet) {
    let Some(&b1) = body.get(1) else { return };
    let inner = packet(b1 & 0x0F);
    if b1 >> 4 <= MANY_CODECS && !matches!(inner, Packet::Other(_)) {
        h.multitrack = Some(b1 >> 4);
        h.packet = inner;
    }
}

#[cfg(test)]
mod tests;
