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
    /// Ms since the stream's previous frame of the same kind (audio or video), on the
    /// source's timeline: what a type-1 header shared by every player in step carries
    /// ([`Frame::shared_wire`]). `None` for data, and for the first frame of a kind.
    delta: Option<u32>,
    wire: OnceLock<Wire>,
}

/// A frame's RTMP wire form for one chunk size, made once and shared by every player:
/// `bytes[..head]` is the type-1 header of [`Frame::shared_wire`] (empty when the frame
/// has none), `bytes[head..]` the payload with its continuation headers.
#[derive(Debug)]
struct Wire {
    chunk_size: u32,
    head: usize,
    bytes: Bytes,
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
            delta: None,
            wire: OnceLock::new(),
        }
    }

    /// The frame with its delta from the stream's previous frame of its kind (see
    /// [`Frame::shared_wire`]); set by the source that orders the stream.
    pub fn with_delta(mut self, delta: Option<u32>) -> Frame {
        self.delta = delta.filter(|_| self.kind != MediaKind::Data);
        self
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
        if self.payload.len() <= chunk_size as usize {
            return self.payload.clone();
        }
        let w = self.wire(chunk_size);
        if w.chunk_size == chunk_size {
            w.bytes.slice(w.head..)
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
        let w = self.wire(chunk_size);
        (w.chunk_size == chunk_size).then(|| &w.bytes[w.head..])
    }

    /// The whole message for a player in step with the stream: a type-1 header (spec
    /// §5.3.1.2.2: the delta, length and type id; the stream id and the absolute time are
    /// those of the player's previous message on this chunk stream) and the chunked payload,
    /// one buffer made once and written to every such player as it is. As nginx-rtmp does,
    /// it saves each player a header of its own per frame and halves the slices of a write.
    ///
    /// Returns the delta and the bytes. The caller must send it only to a player whose
    /// previous message on this frame's chunk stream had its stream id and the timestamp
    /// this one's minus the delta, sent with a header of 24-bit time (no extended
    /// timestamp). `None` for data, for the first frame of a kind, for a delta or length
    /// that needs more than 24 bits, and when the frame was chunked for another size.
    #[inline]
    pub fn shared_wire(&self, chunk_size: u32) -> Option<(u32, &[u8])> {
        let delta = self.delta?;
        let w = self.wire(chunk_size);
        (w.chunk_size == chunk_size && w.head > 0).then(|| (delta, &w.bytes[..]))
    }

    /// The payload as an FLV tag's body: at most `flv::MAX_TAG_DATA_SIZE` bytes, what the
    /// tag's 24-bit DataSize can say (FLV spec E.4.1). RTMP and FLV lengths have 24 bits too,
    /// so the cap keeps the header true rather than cutting real media.
    pub fn flv_tag_body(&self) -> &[u8] {
        let len = self
            .payload
            .len()
            .min(crate::protocol::flv::MAX_TAG_DATA_SIZE);
        self.payload.get(..len).unwrap_or_default()
    }

    /// `part` as a shared slice of the frame's payload or of its RTMP wire form, when it lies
    /// in one of them (a slice a plan borrowed, held past the batch: `writev::send`).
    pub fn share(&self, part: &[u8]) -> Option<Bytes> {
        if let Some(r) = range_in(&self.payload, part) {
            return Some(self.payload.slice(r));
        }
        let w = self.wire.get()?;
        range_in(&w.bytes, part).map(|r| w.bytes.slice(r))
    }

    /// The frame's RTMP wire form, made by the first caller (for its chunk size).
    #[inline(always)]
    fn wire(&self, chunk_size: u32) -> &Wire {
        match self.wire.get() {
            Some(w) => w,
            None => self.make_wire(chunk_size),
        }
    }

    #[cold]
    fn make_wire(&self, chunk_size: u32) -> &Wire {
        self.wire.get_or_init(|| {
            let csid = self.kind.csid();
            let header = self.delta.and_then(|d| {
                chunk::delta_header(csid, d, self.payload.len() as u32, self.kind.type_id())
            });
            let head = header.map_or(0, |h| h.len());
            let mut out = BytesMut::with_capacity(
                head + chunk::continuation_len(csid, self.payload.len(), chunk_size, false),
            );
            if let Some(h) = header {
                out.extend_from_slice(&h);
            }
            chunk::encode_continuation(&mut out, csid, &self.payload, chunk_size, None);
            Wire {
                chunk_size,
                head,
                bytes: out.freeze(),
            }
        })
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

/// Where `part` lies in `buf` (by address), when it is a range of it.
pub(crate) fn range_in(buf: &[u8], part: &[u8]) -> Option<std::ops::Range<usize>> {
    let start = (part.as_ptr() as usize).checked_sub(buf.as_ptr() as usize)?;
    let end = start.checked_add(part.len())?;
    (end <= buf.len()).then_some(start..end)
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
    fn a_shared_message_decodes_after_the_players_previous_one() {
        use crate::protocol::rtmp::chunk::{encode_first_header, ChunkDecoder};
        let payload = Bytes::from((0..=255u8).cycle().take(300).collect::<Vec<u8>>());
        let f = Frame::new(MediaKind::Video, 5040, 5040, payload.clone()).with_delta(Some(40));
        let (delta, wire) = f.shared_wire(128).expect("a video frame with a delta");
        assert_eq!(delta, 40);
        assert_eq!(wire[0], 0x40 | chunk::csid::VIDEO as u8, "a type-1 header");
        assert_eq!(&wire[8..], &f.chunks(128)[..], "then the chunked payload");
        // The player's previous video message: type 0 at 1000 on stream 1.
        let mut input = BytesMut::new();
        encode_first_header(&mut input, chunk::csid::VIDEO, 1000, 2, 9, 1);
        input.extend_from_slice(&[0x27, 1]);
        input.extend_from_slice(wire);
        let mut dec = ChunkDecoder::new();
        dec.set_chunk_size(128).unwrap();
        let first = dec.decode(&mut input).unwrap().unwrap();
        assert_eq!(first.timestamp, 1000);
        let m = dec.decode(&mut input).unwrap().unwrap();
        assert_eq!((m.timestamp, m.stream_id, m.type_id), (1040, 1, 9));
        assert_eq!(m.payload, payload);
        // What has no shared form: data, a kind's first frame, another chunk size.
        let data = Frame::new(MediaKind::Data, 0, 0, Bytes::from_static(b"x")).with_delta(Some(1));
        assert!(data.shared_wire(128).is_none());
        assert!(
            Frame::new(MediaKind::Audio, 0, 0, Bytes::from_static(&[0xAF, 1]))
                .shared_wire(128)
                .is_none()
        );
        assert!(f.shared_wire(4096).is_none(), "encoded for 128");
        assert_eq!(f.chunks(4096).len(), 300, "other sizes still work");
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
