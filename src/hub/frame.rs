//! A frame: one audio, video or data message of a live stream, shared by every consumer.

use crate::protocol::amf0::{self, Amf0Value};
pub use crate::protocol::media::{Codec, MediaKind, Packet, TagHeader};
use crate::protocol::rtmp::chunk;
use bytes::{Bytes, BytesMut};
use std::sync::OnceLock;

/// What the hub's policies (GOP cache, drops, late joiners) need of a frame, read once from its
/// [`TagHeader`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FrameFlags {
    /// A video keyframe (FLV frame type 1, legacy or Enhanced RTMP), sequence headers excluded.
    pub keyframe: bool,
    /// A decoder configuration: AVC/HEVC/AV1/VP9 record, AAC AudioSpecificConfig, OpusHead.
    pub seq_header: bool,
    /// onMetaData.
    pub metadata: bool,
}

/// One message of a live stream. The payload is never copied per consumer, and its RTMP wire
/// form is computed once, for the first chunk size asked for (DESIGN.md §2).
#[derive(Debug)]
pub struct Frame {
    pub kind: MediaKind,
    /// Decode timestamp in ms on the source's repaired 64-bit timeline.
    pub dts: i64,
    /// The timestamp as the publisher sent it (used by `time_jitter = "off"`/`"zero"`).
    pub raw_ts: u32,
    pub flags: FrameFlags,
    /// Codec, packet kind, frame type and composition time, read once from the payload by
    /// the one FLV tag-header parser ([`TagHeader::classify`]). A body too short for its
    /// header keeps what its first bytes say; [`Frame::data`] is then empty.
    pub tag: TagHeader,
    /// The RTMP message body (= FLV tag body).
    pub payload: Bytes,
    chunks: OnceLock<(u32, Bytes)>,
}

impl Frame {
    pub fn new(kind: MediaKind, dts: i64, raw_ts: u32, payload: Bytes) -> Frame {
        let tag = TagHeader::classify(kind, &payload);
        let flags = FrameFlags {
            keyframe: tag.is_keyframe(),
            seq_header: tag.is_config(),
            metadata: kind == MediaKind::Data && is_metadata(&payload),
        };
        Frame {
            kind,
            dts,
            raw_ts,
            flags,
            tag,
            payload,
            chunks: OnceLock::new(),
        }
    }

    pub fn is_video(&self) -> bool {
        self.kind == MediaKind::Video
    }

    pub fn is_audio(&self) -> bool {
        self.kind == MediaKind::Audio
    }

    /// The frame's codec.
    pub fn codec(&self) -> Codec {
        self.tag.codec
    }

    /// Composition time offset (PTS - DTS) in ms.
    pub fn cts(&self) -> i64 {
        i64::from(self.tag.cts)
    }

    /// The codec data after the tag header: a configuration record, length-prefixed NALUs,
    /// OBUs, raw AAC/Opus, MP3 frames; the whole body for data messages.
    pub fn data(&self) -> &[u8] {
        self.payload.get(self.tag.len()..).unwrap_or_default()
    }

    /// The payload with type-3 continuation headers interleaved for `chunk_size`: everything of
    /// the message but its first header. Computed once for the first chunk size requested;
    /// another size is computed on the fly (vhosts rarely differ).
    pub fn chunks(&self, chunk_size: u32) -> Bytes {
        let (size, bytes) = self
            .chunks
            .get_or_init(|| (chunk_size, self.encode_chunks(chunk_size, None)));
        if *size == chunk_size {
            bytes.clone()
        } else {
            self.encode_chunks(chunk_size, None)
        }
    }

    /// [`Frame::chunks`] borrowed, without touching a reference count (every player of a
    /// frame reads it: a shared count would bounce between cores). `None` when this frame
    /// was chunked for another size (the caller takes [`Frame::chunks`]).
    pub fn chunks_ref(&self, chunk_size: u32) -> Option<&[u8]> {
        if self.payload.len() <= chunk_size as usize {
            return Some(&self.payload);
        }
        let (size, bytes) = self
            .chunks
            .get_or_init(|| (chunk_size, self.encode_chunks(chunk_size, None)));
        (*size == chunk_size).then_some(&bytes[..])
    }

    /// The continuation part for a player whose timestamp needs the extended form: type-3
    /// headers then carry the timestamp, so it cannot be shared.
    pub fn chunks_extended(&self, chunk_size: u32, timestamp: u32) -> Bytes {
        if self.payload.len() <= chunk_size as usize {
            return self.payload.clone();
        }
        self.encode_chunks(chunk_size, Some(timestamp))
    }

    fn encode_chunks(&self, chunk_size: u32, extended: Option<u32>) -> Bytes {
        if self.payload.len() <= chunk_size as usize {
            return self.payload.clone();
        }
        let csid = self.kind.csid();
        let mut out = BytesMut::with_capacity(chunk::continuation_len(
            csid,
            self.payload.len(),
            chunk_size,
            extended.is_some(),
        ));
        chunk::encode_continuation(&mut out, csid, &self.payload, chunk_size, extended);
        out.freeze()
    }
}

/// Whether an onMetaData body announces a video track: `videocodecid`, which ffmpeg and OBS
/// write only when they send video.
pub fn metadata_announces_video(p: &[u8]) -> bool {
    amf0::decode_all(p).is_ok_and(|values| values.iter().any(|v| v.get("videocodecid").is_some()))
}

fn is_metadata(p: &[u8]) -> bool {
    let mut rest = p;
    matches!(amf0::decode(&mut rest), Ok(Amf0Value::String(s)) if s == "onMetaData")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_flv_bodies() {
        let v = |b: &'static [u8]| Frame::new(MediaKind::Video, 0, 0, Bytes::from_static(b)).flags;
        assert_eq!(
            v(&[0x17, 0]),
            FrameFlags {
                seq_header: true,
                ..Default::default()
            }
        );
        assert_eq!(
            v(&[0x17, 1]),
            FrameFlags {
                keyframe: true,
                ..Default::default()
            }
        );
        assert_eq!(v(&[0x27, 1]), FrameFlags::default());
        assert_eq!(v(&[]), FrameFlags::default());
        let a = |b: &'static [u8]| Frame::new(MediaKind::Audio, 0, 0, Bytes::from_static(b)).flags;
        assert!(a(&[0xAF, 0]).seq_header);
        assert!(!a(&[0xAF, 1]).seq_header);
        assert!(!a(&[0x2F, 0]).seq_header, "mp3 has no sequence header");
        let mut b = BytesMut::new();
        amf0::encode_all(&[Amf0Value::string("onMetaData"), Amf0Value::Null], &mut b);
        assert!(Frame::new(MediaKind::Data, 0, 0, b.freeze()).flags.metadata);
    }

    #[test]
    fn chunks_are_encoded_once_and_shared() {
        let f = Frame::new(MediaKind::Video, 0, 0, Bytes::from(vec![0x27; 300]));
        let a = f.chunks(128);
        let b = f.chunks(128);
        assert_eq!(
            a.as_ptr(),
            b.as_ptr(),
            "second call shares the first encoding"
        );
        assert_eq!(a.len(), 300 + 2);
        assert_eq!(a[128], 0xC6);
        assert_eq!(f.chunks(100).len(), 302, "other sizes still work");
        assert_eq!(f.chunks_extended(128, 1 << 24).len(), 300 + 2 * 5);
    }
}
