//! RTMP sessions: the server and client state machines above the chunk stream.
//!
//! Both are sans-IO. The handshake comes first and is a separate machine
//! ([`super::handshake`]); a session starts on the first chunk.
//!
//! Contract of [`ServerSession`]:
//! - Input: [`ServerSession::handle_input`] with the bytes read from the socket (it consumes
//!   what it decodes and leaves a partial chunk in the buffer).
//! - Output: [`ServerSession::poll_event`] hands out requests and media, in order;
//!   [`ServerSession::take_output`] hands out the bytes to write. Call both after every input
//!   and after every `accept_*`/`reject_*`.
//! - Requests (connect, publish, play) carry an id; the app answers with `accept_*(id)` or
//!   `reject_*(id, ..)`. The session never decides policy (auth, busy streams, edge pulls):
//!   a second publisher is refused by the app, which calls [`ServerSession::reject_publish`].
//! - Media of a playing stream is not written through the session: the app writes the shared
//!   pre-encoded chunks itself (DESIGN.md §2), using [`ServerSession::out_chunk_size`] and the
//!   stream id from [`ServerEvent::Play`]. The session's own output must be written before
//!   media queued after it, and every message the session writes is whole (type-0 first
//!   header), so the two interleave safely on one socket.
//!
//! [`ClientSession`] mirrors it for the project's client: `connect`, `publish`, `play`,
//! `send_media` produce output; events report the server's answers and the played media.

use super::chunk::{self, ChunkDecoder, ChunkError, RawMessage};
use super::command::{self, status, ClientCommand, ConnectRequest, PlayRequest, PublishRequest};
use super::message::{self, CommandMessage, Message, MessageError, UserControl};
use crate::protocol::amf0::{self, Amf0Value};
use bytes::{Bytes, BytesMut};
use std::collections::VecDeque;
use std::fmt;

/// Window acknowledgement size we ask peers to use (as SRS and FMS do).
pub const WINDOW_ACK_SIZE: u32 = 2_500_000;
/// Events held before the app drains them; a peer that floods commands faster than the app
/// reads is cut off rather than buffered without bound.
const MAX_EVENTS: usize = 4096;

/// The track of a media message; the media model lives in [`crate::protocol::media`].
pub use crate::protocol::media::MediaKind;

#[derive(Debug)]
pub enum SessionError {
    Chunk(ChunkError),
    Message(MessageError),
    /// The peer sent something out of order (e.g. publish before connect).
    OutOfOrder(&'static str),
    /// The app did not drain events and the peer kept sending commands.
    TooManyEvents,
}

impl fmt::Display for SessionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SessionError::Chunk(e) => write!(f, "chunk stream: {e}"),
            SessionError::Message(e) => write!(f, "message: {e}"),
            SessionError::OutOfOrder(what) => write!(f, "peer sent {what} out of order"),
            SessionError::TooManyEvents => write!(f, "peer flooded the session with requests"),
        }
    }
}

impl std::error::Error for SessionError {}

impl From<ChunkError> for SessionError {
    fn from(e: ChunkError) -> Self {
        SessionError::Chunk(e)
    }
}
impl From<MessageError> for SessionError {
    fn from(e: MessageError) -> Self {
        SessionError::Message(e)
    }
}

/// What both sessions share: the chunk decoder, the output buffer and acknowledgements.
#[derive(Debug)]
struct Transport {
    decoder: ChunkDecoder,
    out: BytesMut,
    out_chunk_size: u32,
    /// Bytes consumed from the peer, and at which count we last acknowledged.
    received: u64,
    acked: u64,
    /// The peer's Window Acknowledgement Size: acknowledge every this many bytes (0 = never).
    peer_window: u32,
}

impl Transport {
    fn new() -> Self {
        Transport {
            decoder: ChunkDecoder::new(),
            // Grows to what a command's answer needs; a player's session keeps it small.
            out: BytesMut::new(),
            out_chunk_size: chunk::DEFAULT_CHUNK_SIZE,
            received: 0,
            acked: 0,
            peer_window: 0,
        }
    }

    fn send(&mut self, m: &Message) {
        let raw = m.encode();
        chunk::encode_message(&mut self.out, &raw, self.out_chunk_size);
        if let Message::SetChunkSize(size) = m {
            self.out_chunk_size = (*size).clamp(1, chunk::MAX_CHUNK_SIZE);
        }
    }

    fn send_command(&mut self, c: CommandMessage) {
        self.send(&Message::Command(c));
    }

    /// Decodes the next message, handling the protocol-control ones itself. Returns the others.
    fn read(&mut self, input: &mut BytesMut) -> Result<Option<(Message, RawMeta)>, SessionError> {
        loop {
            let before = input.len();
            let raw = self.decoder.decode(input)?;
            self.received += (before - input.len()) as u64;
            if self.peer_window > 0 && self.received - self.acked >= self.peer_window as u64 {
                self.acked = self.received;
                // The sequence number is the byte count modulo 2^32 (spec §5.4.3).
                self.send(&Message::Acknowledgement(self.received as u32));
            }
            let Some(raw) = raw else { return Ok(None) };
            let meta = RawMeta {
                timestamp: raw.timestamp,
                type_id: raw.type_id,
            };
            match Message::decode(raw)? {
                Message::SetChunkSize(size) => self.decoder.set_chunk_size(size)?,
                Message::Abort(csid) => self.decoder.abort(csid),
                Message::WindowAckSize(size) => self.peer_window = size,
                Message::Acknowledgement(_) | Message::SetPeerBandwidth { .. } => {}
                Message::UserControl(UserControl::PingRequest(t)) => {
                    self.send(&Message::UserControl(UserControl::PingResponse(t)))
                }
                Message::Ignored { .. } => {}
                other => return Ok(Some((other, meta))),
            }
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct RawMeta {
    #[allow(dead_code)]
    timestamp: u32,
    #[allow(dead_code)]
    type_id: u8,
}

/// Removes a leading `@setDataFrame` from a data message, as FMLE, OBS and ffmpeg send
/// metadata as `@setDataFrame("onMetaData", {...})` and players expect `onMetaData({...})`.
pub fn strip_set_data_frame(payload: &Bytes) -> Bytes {
    let mut rest: &[u8] = payload;
    if let Ok(Amf0Value::String(name)) = amf0::decode(&mut rest) {
        if name == "@setDataFrame" {
            return payload.slice(payload.len() - rest.len()..);
        }
    }
    payload.clone()
}

/// Media and data decoded from a peer's stream (aggregates already split). `room` is how many
/// more the caller may queue: an aggregate with more parts than that is a flood (its parts
/// are 15 bytes at least, so 16 MiB could hold a million events) and ends the connection.
fn push_media(
    events: &mut VecDeque<MediaOut>,
    m: Message,
    room: usize,
) -> Result<(), SessionError> {
    match m {
        Message::Audio {
            timestamp, payload, ..
        } => events.push_back(MediaOut {
            kind: MediaKind::Audio,
            timestamp,
            payload,
        }),
        Message::Video {
            timestamp, payload, ..
        } => events.push_back(MediaOut {
            kind: MediaKind::Video,
            timestamp,
            payload,
        }),
        Message::Data {
            timestamp, payload, ..
        } => events.push_back(MediaOut {
            kind: MediaKind::Data,
            timestamp,
            payload: strip_set_data_frame(&payload),
        }),
        Message::Aggregate {
            timestamp, payload, ..
        } => {
            for part in message::split_aggregate(timestamp, &payload) {
                if events.len() >= room {
                    return Err(SessionError::TooManyEvents);
                }
                if let Some(kind) = MediaKind::from_type_id(part.type_id) {
                    let payload = if kind == MediaKind::Data {
                        strip_set_data_frame(&part.payload)
                    } else {
                        part.payload
                    };
                    events.push_back(MediaOut {
                        kind,
                        timestamp: part.timestamp,
                        payload,
                    });
                }
            }
        }
        _ => {}
    }
    Ok(())
}

struct MediaOut {
    kind: MediaKind,
    timestamp: u32,
    payload: Bytes,
}

mod client;
mod server;

pub use client::*;
pub use server::*;

#[cfg(test)]
mod tests;
