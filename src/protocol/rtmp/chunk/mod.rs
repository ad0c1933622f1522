//! RTMP chunk stream: decoder and encoder (RTMP spec §5.3, "Chunking").
//!
//! Contract:
//! - [`ChunkDecoder::decode`] takes the connection's input buffer and consumes at most one
//!   chunk per call loop iteration internally; it returns `Ok(Some(msg))` when a whole message
//!   was assembled, `Ok(None)` when more bytes are needed (nothing of an incomplete chunk is
//!   consumed), or an error that ends the connection. Call it until it returns `Ok(None)`.
//! - [`ChunkDecoder::set_chunk_size`] applies the peer's Set Chunk Size; [`ChunkDecoder::abort`]
//!   applies an Abort Message.
//! - Encoding always starts a message with a type-0 header (as SRS does) and continues with
//!   type-3 headers. [`encode_message`] does it in one go; [`encode_first_header`] and
//!   [`encode_continuation`] split it so the payload part can be encoded once and shared by
//!   every player (DESIGN.md §2).
//!
//! Memory is bounded by message-length caps, never by trusting the chunk size: a message
//! buffer grows only as its bytes arrive, a message may not exceed [`MAX_MESSAGE_LEN`], the
//! chunk-stream table holds at most [`MAX_CHUNK_STREAMS`] entries, and the bytes held in
//! partially received messages are capped by [`MAX_PENDING_BYTES`].

use bytes::{Buf, BufMut, Bytes, BytesMut};
use std::collections::HashMap;
use std::fmt;

/// The largest message we accept. The wire field is 24 bits (16 MiB); a keyframe of a 4K
/// stream is well under this.
pub const MAX_MESSAGE_LEN: u32 = 0xFF_FFFF;
/// Chunk streams a peer may use at once. Encoders use a handful (2..=8); the bound keeps a
/// hostile peer from growing the table.
pub const MAX_CHUNK_STREAMS: usize = 64;
/// Bytes held in partially received messages across all chunk streams of one connection.
pub const MAX_PENDING_BYTES: usize = 32 * 1024 * 1024;
/// The chunk size both sides start with (RTMP spec §5.4.1).
pub const DEFAULT_CHUNK_SIZE: u32 = 128;
/// The largest chunk size the spec allows (31 bits).
pub const MAX_CHUNK_SIZE: u32 = 0x7FFF_FFFF;
/// Timestamps at or past this value are carried in the 4-byte extended field.
pub const EXTENDED_TIMESTAMP: u32 = 0xFF_FFFF;

/// Well-known chunk stream ids used when sending, as SRS does.
pub mod csid {
    /// Protocol control messages (types 1-6) must use chunk stream 2.
    pub const PROTOCOL_CONTROL: u32 = 2;
    /// Commands on the connection (connect, createStream).
    pub const OVER_CONNECTION: u32 = 3;
    /// Commands and data on a message stream (onStatus, onMetaData).
    pub const OVER_STREAM: u32 = 5;
    pub const VIDEO: u32 = 6;
    pub const AUDIO: u32 = 7;
}

/// A chunk stream id: 2..=65599 (0 and 1 are escape values of the basic header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ChunkStreamId(u32);

impl ChunkStreamId {
    pub const MIN: u32 = 2;
    pub const MAX: u32 = 65599;
    pub fn new(id: u32) -> Option<Self> {
        (Self::MIN..=Self::MAX).contains(&id).then_some(Self(id))
    }
    pub fn get(self) -> u32 {
        self.0
    }
}

/// One whole RTMP message as it came off (or goes onto) the chunk stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawMessage {
    pub csid: u32,
    /// Absolute timestamp in milliseconds, 32-bit wrapping as on the wire.
    pub timestamp: u32,
    pub type_id: u8,
    pub stream_id: u32,
    pub payload: Bytes,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkError {
    /// The peer used a chunk stream that has never seen a type-0 header.
    NoPreviousHeader { csid: u32 },
    /// The peer opened more chunk streams than [`MAX_CHUNK_STREAMS`].
    TooManyChunkStreams,
    /// A message longer than [`MAX_MESSAGE_LEN`] or the bytes pending overall exceed the cap.
    MessageTooLarge { length: u32 },
    /// A continuation header changed the length of a message while it was being received.
    LengthChangedMidMessage { csid: u32 },
    /// Set Chunk Size with a value outside 1..=2^31-1.
    ChunkSizeOutOfRange { size: u32 },
}

impl fmt::Display for ChunkError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ChunkError::NoPreviousHeader { csid } => {
                write!(
                    f,
                    "peer sent a compressed chunk header on new chunk stream {csid}"
                )
            }
            ChunkError::TooManyChunkStreams => {
                write!(f, "peer opened more than {MAX_CHUNK_STREAMS} chunk streams")
            }
            ChunkError::MessageTooLarge { length } => {
                write!(f, "peer sent a message of {length} bytes, over the cap")
            }
            ChunkError::LengthChangedMidMessage { csid } => {
                write!(
                    f,
                    "peer changed message length mid-message on chunk stream {csid}"
                )
            }
            ChunkError::ChunkSizeOutOfRange { size } => {
                write!(f, "peer set chunk size {size}, outside 1..=2147483647")
            }
        }
    }
}

impl std::error::Error for ChunkError {}

#[derive(Debug, Default)]
struct StreamState {
    /// Whether a type-0 header was ever seen on this chunk stream.
    initialized: bool,
    timestamp: u32,
    delta: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
    /// The last header carried an extended timestamp; its raw 4-byte value.
    extended: Option<u32>,
    /// Payload of the message being assembled.
    buf: BytesMut,
    /// A message is being assembled (some chunks arrived).
    in_progress: bool,
}

/// Decodes chunks into whole messages. See the module doc for the contract.
#[derive(Debug)]
pub struct ChunkDecoder {
    chunk_size: u32,
    streams: HashMap<u32, StreamState>,
    pending: usize,
}

impl Default for ChunkDecoder {
    fn default() -> Self {
        Self::new()
    }
}

impl ChunkDecoder {
    pub fn new() -> Self {
        Self {
            chunk_size: DEFAULT_CHUNK_SIZE,
            streams: HashMap::new(),
            pending: 0,
        }
    }

    pub fn chunk_size(&self) -> u32 {
        self.chunk_size
    }

    /// Applies the peer's Set Chunk Size (any size the spec allows).
    pub fn set_chunk_size(&mut self, size: u32) -> Result<(), ChunkError> {
        if size == 0 || size > MAX_CHUNK_SIZE {
            return Err(ChunkError::ChunkSizeOutOfRange { size });
        }
        self.chunk_size = size;
        Ok(())
    }

    /// Applies an Abort Message: the partial message on `csid` is discarded.
    pub fn abort(&mut self, csid: u32) {
        if let Some(s) = self.streams.get_mut(&csid) {
            if s.in_progress {
                self.pending = self.pending.saturating_sub(s.length as usize);
            }
            s.buf = BytesMut::new();
            s.in_progress = false;
        }
    }

    /// Decodes chunks from `input` until one message is complete or more bytes are needed.
    pub fn decode(&mut self, input: &mut BytesMut) -> Result<Option<RawMessage>, ChunkError> {
        loop {
            match self.decode_chunk(input)? {
                ChunkOutcome::NeedMore => return Ok(None),
                ChunkOutcome::Message(m) => return Ok(Some(m)),
                ChunkOutcome::Partial => continue,
            }
        }
    }

    fn decode_chunk(&mut self, input: &mut BytesMut) -> Result<ChunkOutcome, ChunkError> {
        let data: &[u8] = input;
        let Some(&b0) = data.first() else {
            return Ok(ChunkOutcome::NeedMore);
        };
        let fmt = b0 >> 6;
        // Basic header: 1, 2 or 3 bytes (§5.3.1.1).
        let (csid, mut pos) = match b0 & 0x3F {
            0 => match data.get(1) {
                Some(&b1) => (64 + b1 as u32, 2),
                None => return Ok(ChunkOutcome::NeedMore),
            },
            1 => match (data.get(1), data.get(2)) {
                (Some(&b1), Some(&b2)) => (64 + b1 as u32 + ((b2 as u32) << 8), 3),
                _ => return Ok(ChunkOutcome::NeedMore),
            },
            id => (id as u32, 1),
        };
        let header_len = [11usize, 7, 3, 0][fmt as usize];
        let Some(header) = data.get(pos..pos + header_len) else {
            return Ok(ChunkOutcome::NeedMore);
        };
        pos += header_len;

        if !self.streams.contains_key(&csid) {
            if fmt != 0 {
                return Err(ChunkError::NoPreviousHeader { csid });
            }
            if self.streams.len() >= MAX_CHUNK_STREAMS {
                return Err(ChunkError::TooManyChunkStreams);
            }
        }
        let state = self.streams.get(&csid);
        let state_init = state.map(|s| s.initialized).unwrap_or(false);
        if fmt != 0 && !state_init {
            return Err(ChunkError::NoPreviousHeader { csid });
        }
        let in_progress = state.map(|s| s.in_progress).unwrap_or(false);

        // Message header fields, not yet applied: a chunk is applied only once it is whole.
        let ts_field = if fmt <= 2 { be24(&header[0..3]) } else { 0 };
        let mut length = state.map(|s| s.length).unwrap_or(0);
        let mut type_id = state.map(|s| s.type_id).unwrap_or(0);
        let mut stream_id = state.map(|s| s.stream_id).unwrap_or(0);
        if fmt <= 1 {
            length = be24(&header[3..6]);
            type_id = header[6];
        }
        if fmt == 0 {
            stream_id = u32::from_le_bytes([header[7], header[8], header[9], header[10]]);
        }
        if length > MAX_MESSAGE_LEN {
            return Err(ChunkError::MessageTooLarge { length });
        }

        // Extended timestamp (§5.3.1.3). For fmt 3 the spec says it is repeated when the
        // previous header of this chunk stream had one, but encoders disagree (Flash repeats
        // it, some librtmp builds do not), so peek: consume the 4 bytes only when they equal
        // the value we already have. SRS handles it the same way.
        let mut extended = None;
        if fmt <= 2 {
            if ts_field == EXTENDED_TIMESTAMP {
                let Some(ext) = data.get(pos..pos + 4) else {
                    return Ok(ChunkOutcome::NeedMore);
                };
                extended = Some(u32::from_be_bytes([ext[0], ext[1], ext[2], ext[3]]));
                pos += 4;
            }
        } else if let Some(prev) = state.and_then(|s| s.extended) {
            extended = Some(prev);
            let avail = data.get(pos..).unwrap_or(&[]);
            let repeat = prev.to_be_bytes();
            if avail.len() >= 4 {
                if avail[..4] == repeat {
                    pos += 4;
                }
            } else if repeat.starts_with(avail) && !avail.is_empty()
                || avail.is_empty() && length > 0
            {
                // Too few bytes to tell a repeated timestamp from payload yet.
                return Ok(ChunkOutcome::NeedMore);
            }
        }

        if in_progress && fmt <= 1 {
            // A new header with a length on a chunk stream mid-message: peers that do this
            // are broken; a changed length would corrupt the reassembly.
            if state.map(|s| s.length) != Some(length) {
                return Err(ChunkError::LengthChangedMidMessage { csid });
            }
        }
        let received = state.map(|s| s.buf.len()).unwrap_or(0) as u32;
        let received = if in_progress { received } else { 0 };
        let want = (length - received).min(self.chunk_size) as usize;
        if data.len() < pos + want {
            return Ok(ChunkOutcome::NeedMore);
        }
        let multi_chunk = !in_progress && want < length as usize;
        if multi_chunk && self.pending + length as usize > MAX_PENDING_BYTES {
            return Err(ChunkError::MessageTooLarge { length });
        }

        // The whole chunk is here: apply it.
        input.advance(pos);
        let payload = input.split_to(want);
        let s = self.streams.entry(csid).or_default();
        s.initialized = true;
        s.length = length;
        s.type_id = type_id;
        s.stream_id = stream_id;
        if fmt <= 2 {
            s.extended = extended;
        }
        let ts_value = extended.unwrap_or(ts_field);
        if !in_progress {
            // A new message: compute its timestamp.
            match fmt {
                0 => {
                    s.timestamp = ts_value;
                    // SRS and librtmp treat the absolute timestamp of a type-0 header as the
                    // delta for a following type-3 message.
                    s.delta = ts_value;
                }
                1 | 2 => {
                    s.delta = ts_value;
                    s.timestamp = s.timestamp.wrapping_add(ts_value);
                }
                _ => s.timestamp = s.timestamp.wrapping_add(s.delta),
            }
        }
        if !in_progress && want == length as usize {
            // Single-chunk message: hand out the bytes without copying.
            return Ok(ChunkOutcome::Message(RawMessage {
                csid,
                timestamp: s.timestamp,
                type_id,
                stream_id,
                payload: payload.freeze(),
            }));
        }
        if !in_progress {
            s.in_progress = true;
            s.buf = BytesMut::with_capacity((length as usize).min(64 * 1024));
            // Reserve the declared length: a peer may fill every message it opened.
            self.pending += length as usize;
        }
        s.buf.extend_from_slice(&payload);
        if s.buf.len() == length as usize {
            s.in_progress = false;
            self.pending = self.pending.saturating_sub(length as usize);
            let payload = std::mem::take(&mut s.buf).freeze();
            return Ok(ChunkOutcome::Message(RawMessage {
                csid,
                timestamp: s.timestamp,
                type_id,
                stream_id,
                payload,
            }));
        }
        Ok(ChunkOutcome::Partial)
    }
}

enum ChunkOutcome {
    NeedMore,
    Partial,
    Message(RawMessage),
}

fn be24(b: &[u8]) -> u32 {
    ((b[0] as u32) << 16) | ((b[1] as u32) << 8) | b[2] as u32
}

fn put_basic_header(out: &mut impl BufMut, fmt: u8, csid: u32) {
    let mut h = [0u8; 3];
    let n = basic_header(&mut h, fmt, csid);
    out.put_slice(&h[..n]);
}

/// Writes the basic header (spec §5.3.1.1: 1, 2 or 3 bytes by chunk stream id) into the
/// start of `h`; its length.
fn basic_header(h: &mut [u8; 3], fmt: u8, csid: u32) -> usize {
    if csid < 64 {
        h[0] = (fmt << 6) | csid as u8;
        1
    } else if csid < 320 {
        h[0] = fmt << 6;
        h[1] = (csid - 64) as u8;
        2
    } else {
        let v = csid - 64;
        h[0] = (fmt << 6) | 1;
        h[1] = (v & 0xFF) as u8;
        h[2] = (v >> 8) as u8;
        3
    }
}

/// Writes the type-0 header that starts a message: basic header, 11-byte message header and,
/// for timestamps at or past 0xFFFFFF, the extended timestamp.
pub fn encode_first_header(
    out: &mut impl BufMut,
    csid: u32,
    timestamp: u32,
    length: u32,
    type_id: u8,
    stream_id: u32,
) {
    // Made on the stack and appended at once: this runs per frame and player, and each put
    // into a BytesMut checks its capacity.
    let mut h = [0u8; 18];
    let mut basic = [0u8; 3];
    let b = basic_header(&mut basic, 0, csid);
    h[..b].copy_from_slice(&basic[..b]);
    let ts_field = timestamp.min(EXTENDED_TIMESTAMP);
    h[b..b + 3].copy_from_slice(&ts_field.to_be_bytes()[1..]);
    h[b + 3..b + 6].copy_from_slice(&length.to_be_bytes()[1..]);
    h[b + 6] = type_id;
    h[b + 7..b + 11].copy_from_slice(&stream_id.to_le_bytes());
    let mut n = b + 11;
    if timestamp >= EXTENDED_TIMESTAMP {
        h[n..n + 4].copy_from_slice(&timestamp.to_be_bytes());
        n += 4;
    }
    out.put_slice(&h[..n]);
}

/// Bytes of a type-1 header on a chunk stream id below 64: the 1-byte basic header and the
/// 7-byte message header (timestamp delta, length, type id; spec §5.3.1.2.2).
pub const DELTA_HEADER_LEN: usize = 8;

/// The type-1 header that starts a message whose stream id is that of the chunk stream's
/// previous message: `delta` ms after the previous message's timestamp. The form every
/// player in step with the stream can share (the stream id and absolute time are the
/// receiver's, from its previous message on `csid`). `None` when it does not fit the shared
/// form: `csid` of 64 or more, a delta or length that needs more than 24 bits.
pub fn delta_header(
    csid: u32,
    delta: u32,
    length: u32,
    type_id: u8,
) -> Option<[u8; DELTA_HEADER_LEN]> {
    if csid >= 64 || delta >= EXTENDED_TIMESTAMP || length > MAX_MESSAGE_LEN {
        return None;
    }
    let mut h = [0u8; DELTA_HEADER_LEN];
    h[0] = (1 << 6) | csid as u8;
    h[1..4].copy_from_slice(&delta.to_be_bytes()[1..]);
    h[4..7].copy_from_slice(&length.to_be_bytes()[1..]);
    h[7] = type_id;
    Some(h)
}

/// Writes the payload with type-3 continuation headers interleaved every `chunk_size` bytes.
/// `extended` is the message's timestamp when it needs the extended form: type-3 headers then
/// repeat it (spec §5.3.1.3), which is why such messages cannot share this part across players
/// whose timestamps differ.
pub fn encode_continuation(
    out: &mut BytesMut,
    csid: u32,
    payload: &[u8],
    chunk_size: u32,
    extended: Option<u32>,
) {
    let cs = chunk_size.max(1) as usize;
    let mut chunks = payload.chunks(cs);
    if let Some(first) = chunks.next() {
        out.put_slice(first);
    }
    for c in chunks {
        put_basic_header(out, 3, csid);
        if let Some(ts) = extended {
            out.put_u32(ts);
        }
        out.put_slice(c);
    }
}

/// Size of the continuation part for a payload, to reserve buffers exactly.
pub fn continuation_len(csid: u32, payload_len: usize, chunk_size: u32, extended: bool) -> usize {
    let cs = chunk_size.max(1) as usize;
    let extra_chunks = payload_len.saturating_sub(1) / cs;
    let basic = if csid < 64 {
        1
    } else if csid < 320 {
        2
    } else {
        3
    };
    payload_len + extra_chunks * (basic + if extended { 4 } else { 0 })
}

/// Encodes a whole message: type-0 header, then the payload in chunks.
pub fn encode_message(out: &mut BytesMut, msg: &RawMessage, chunk_size: u32) {
    let ext = (msg.timestamp >= EXTENDED_TIMESTAMP).then_some(msg.timestamp);
    out.reserve(16 + continuation_len(msg.csid, msg.payload.len(), chunk_size, ext.is_some()));
    encode_first_header(
        out,
        msg.csid,
        msg.timestamp,
        msg.payload.len() as u32,
        msg.type_id,
        msg.stream_id,
    );
    encode_continuation(out, msg.csid, &msg.payload, chunk_size, ext);
}

#[cfg(test)]
mod tests;
