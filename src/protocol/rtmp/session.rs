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

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaKind {
    Audio,
    Video,
    /// AMF0 data: onMetaData (with `@setDataFrame` removed) and other script data.
    Data,
}

impl MediaKind {
    pub fn type_id(self) -> u8 {
        match self {
            MediaKind::Audio => message::type_id::AUDIO,
            MediaKind::Video => message::type_id::VIDEO,
            MediaKind::Data => message::type_id::AMF0_DATA,
        }
    }
    pub fn csid(self) -> u32 {
        match self {
            MediaKind::Audio => chunk::csid::AUDIO,
            MediaKind::Video => chunk::csid::VIDEO,
            MediaKind::Data => chunk::csid::OVER_STREAM,
        }
    }
    fn from_type_id(t: u8) -> Option<MediaKind> {
        match t {
            message::type_id::AUDIO => Some(MediaKind::Audio),
            message::type_id::VIDEO => Some(MediaKind::Video),
            message::type_id::AMF0_DATA => Some(MediaKind::Data),
            _ => None,
        }
    }
}

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
            out: BytesMut::with_capacity(4096),
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

/// Media and data decoded from a peer's stream (aggregates already split).
fn push_media(events: &mut VecDeque<MediaOut>, m: Message) {
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
}

struct MediaOut {
    kind: MediaKind,
    timestamp: u32,
    payload: Bytes,
}

/// What a server session raises for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum ServerEvent {
    Connect {
        id: u32,
        request: ConnectRequest,
    },
    Publish {
        id: u32,
        stream_id: u32,
        request: PublishRequest,
    },
    Play {
        id: u32,
        stream_id: u32,
        request: PlayRequest,
    },
    /// Media from the publisher, only after its publish was accepted.
    Media {
        kind: MediaKind,
        timestamp: u32,
        payload: Bytes,
    },
    Pause {
        paused: bool,
        position_ms: f64,
    },
    /// The publisher ended its stream (FCUnpublish, closeStream, deleteStream).
    Unpublish,
    /// The player closed its stream (closeStream, deleteStream).
    PlayStop,
}

#[derive(Debug, Clone)]
enum Pending {
    Connect {
        transaction_id: f64,
        object_encoding: f64,
    },
    Publish {
        stream_id: u32,
    },
    Play {
        stream_id: u32,
        reset: bool,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    /// Waiting for connect, or for the app's answer to it.
    Connecting,
    Connected,
    Publishing {
        stream_id: u32,
    },
    Playing {
        stream_id: u32,
    },
}

/// Server side of an RTMP connection. See the module doc for the contract.
pub struct ServerSession {
    t: Transport,
    events: VecDeque<ServerEvent>,
    media: VecDeque<MediaOut>,
    role: Role,
    pending: Option<(u32, Pending)>,
    next_id: u32,
    next_stream_id: u32,
    /// The client used FMLE's FCPublish: it expects onFCPublish before onStatus.
    fmle: bool,
    desired_chunk_size: u32,
    server_name: String,
}

impl ServerSession {
    /// `chunk_size` is the out chunk size announced after connect (SRS's default is 60000).
    pub fn new(chunk_size: u32, server_name: &str) -> Self {
        ServerSession {
            t: Transport::new(),
            events: VecDeque::new(),
            media: VecDeque::new(),
            role: Role::Connecting,
            pending: None,
            next_id: 1,
            next_stream_id: 1,
            fmle: false,
            desired_chunk_size: chunk_size.clamp(128, chunk::MAX_CHUNK_SIZE),
            server_name: server_name.to_string(),
        }
    }

    pub fn out_chunk_size(&self) -> u32 {
        self.t.out_chunk_size
    }

    /// Sets the chunk size announced when the connect is accepted (the vhost's, known only
    /// once connect named it).
    pub fn set_chunk_size(&mut self, chunk_size: u32) {
        self.desired_chunk_size = chunk_size.clamp(128, chunk::MAX_CHUNK_SIZE);
    }

    /// Bytes consumed from the peer so far.
    pub fn bytes_received(&self) -> u64 {
        self.t.received
    }

    pub fn take_output(&mut self) -> Option<Bytes> {
        (!self.t.out.is_empty()).then(|| self.t.out.split().freeze())
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        self.media.pop_front().map(|m| ServerEvent::Media {
            kind: m.kind,
            timestamp: m.timestamp,
            payload: m.payload,
        })
    }

    pub fn handle_input(&mut self, input: &mut BytesMut) -> Result<(), SessionError> {
        while let Some((m, _)) = self.t.read(input)? {
            if self.events.len() >= MAX_EVENTS {
                return Err(SessionError::TooManyEvents);
            }
            match m {
                Message::Command(c) => self.handle_command(c)?,
                m @ (Message::Audio { .. }
                | Message::Video { .. }
                | Message::Data { .. }
                | Message::Aggregate { .. }) => {
                    // Media before the publish was accepted is dropped: clients wait for
                    // NetStream.Publish.Start, so only a broken one sends it.
                    if matches!(self.role, Role::Publishing { .. }) {
                        push_media(&mut self.media, m);
                        // Media stays in order relative to later commands: hand it out now.
                        while let Some(x) = self.media.pop_front() {
                            self.events.push_back(ServerEvent::Media {
                                kind: x.kind,
                                timestamp: x.timestamp,
                                payload: x.payload,
                            });
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn new_id(&mut self) -> u32 {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1);
        id
    }

    fn handle_command(&mut self, c: CommandMessage) -> Result<(), SessionError> {
        match ClientCommand::parse(c) {
            ClientCommand::Connect {
                transaction_id,
                request,
            } => {
                if self.role != Role::Connecting || self.pending.is_some() {
                    return Err(SessionError::OutOfOrder("connect"));
                }
                let id = self.new_id();
                self.pending = Some((
                    id,
                    Pending::Connect {
                        transaction_id,
                        object_encoding: request.object_encoding,
                    },
                ));
                self.events.push_back(ServerEvent::Connect { id, request });
            }
            _ if self.role == Role::Connecting => {
                return Err(SessionError::OutOfOrder("a command before connect"))
            }
            ClientCommand::CreateStream { transaction_id } => {
                let sid = self.next_stream_id;
                // Stream ids stay small; a client creating thousands of streams is broken.
                self.next_stream_id = (self.next_stream_id + 1).min(1024);
                self.result(
                    0,
                    transaction_id,
                    vec![Amf0Value::Null, Amf0Value::Number(sid as f64)],
                );
            }
            ClientCommand::ReleaseStream { transaction_id, .. } => {
                self.result(
                    0,
                    transaction_id,
                    vec![Amf0Value::Null, Amf0Value::Undefined],
                );
            }
            ClientCommand::FcPublish { transaction_id, .. } => {
                self.fmle = true;
                self.result(
                    0,
                    transaction_id,
                    vec![Amf0Value::Null, Amf0Value::Undefined],
                );
            }
            ClientCommand::FcUnpublish { transaction_id, .. } => {
                self.t.send_command(command::command(
                    0,
                    "onFCUnpublish",
                    0.0,
                    vec![
                        Amf0Value::Null,
                        Amf0Value::object(vec![
                            ("code", Amf0Value::string(status::UNPUBLISH_SUCCESS)),
                            ("description", Amf0Value::string("Stop publishing stream.")),
                        ]),
                    ],
                ));
                self.result(
                    0,
                    transaction_id,
                    vec![Amf0Value::Null, Amf0Value::Undefined],
                );
                if let Role::Publishing { stream_id } = self.role {
                    self.t.send_command(command::on_status(
                        stream_id,
                        "status",
                        status::UNPUBLISH_SUCCESS,
                        "Stream is now unpublished",
                    ));
                    self.role = Role::Connected;
                    self.events.push_back(ServerEvent::Unpublish);
                }
            }
            ClientCommand::Publish {
                stream_id, request, ..
            } => {
                if self.pending.is_some() || self.role != Role::Connected {
                    return Err(SessionError::OutOfOrder("publish"));
                }
                let id = self.new_id();
                self.pending = Some((id, Pending::Publish { stream_id }));
                self.events.push_back(ServerEvent::Publish {
                    id,
                    stream_id,
                    request,
                });
            }
            ClientCommand::Play {
                stream_id, request, ..
            } => {
                if self.pending.is_some() || self.role != Role::Connected {
                    return Err(SessionError::OutOfOrder("play"));
                }
                let id = self.new_id();
                let reset = request.reset;
                self.pending = Some((id, Pending::Play { stream_id, reset }));
                self.events.push_back(ServerEvent::Play {
                    id,
                    stream_id,
                    request,
                });
            }
            ClientCommand::Pause {
                paused,
                position_ms,
                ..
            } => {
                if let Role::Playing { stream_id } = self.role {
                    if paused {
                        self.t.send_command(command::on_status(
                            stream_id,
                            "status",
                            status::PAUSE_NOTIFY,
                            "Paused stream.",
                        ));
                        self.t
                            .send(&Message::UserControl(UserControl::StreamEof(stream_id)));
                    } else {
                        self.t.send_command(command::on_status(
                            stream_id,
                            "status",
                            status::UNPAUSE_NOTIFY,
                            "Unpaused stream.",
                        ));
                        self.t
                            .send(&Message::UserControl(UserControl::StreamBegin(stream_id)));
                    }
                    self.events.push_back(ServerEvent::Pause {
                        paused,
                        position_ms,
                    });
                }
            }
            ClientCommand::CloseStream { .. } | ClientCommand::DeleteStream { .. } => {
                match self.role {
                    Role::Publishing { .. } => {
                        self.role = Role::Connected;
                        self.events.push_back(ServerEvent::Unpublish);
                    }
                    Role::Playing { .. } => {
                        self.role = Role::Connected;
                        self.events.push_back(ServerEvent::PlayStop);
                    }
                    _ => {}
                }
            }
            ClientCommand::GetStreamLength { transaction_id, .. } => {
                // Live streams have no length; Flash players ask anyway.
                self.result(
                    0,
                    transaction_id,
                    vec![Amf0Value::Null, Amf0Value::Number(0.0)],
                );
            }
            ClientCommand::Other(c) => {
                // Calls we do not implement (checkbw, FCSubscribe, ...) get an empty _result
                // when the client waits for one (transaction id > 0), as SRS does.
                if c.transaction_id > 0.0 && c.name != "@setDataFrame" {
                    self.result(c.stream_id, c.transaction_id, vec![Amf0Value::Null]);
                }
            }
            ClientCommand::Result { .. } | ClientCommand::Error { .. } => {}
        }
        Ok(())
    }

    fn result(&mut self, stream_id: u32, transaction_id: f64, args: Vec<Amf0Value>) {
        self.t
            .send_command(command::command(stream_id, "_result", transaction_id, args));
    }

    fn take_pending(&mut self, id: u32) -> Option<Pending> {
        match &self.pending {
            Some((pid, _)) if *pid == id => self.pending.take().map(|(_, p)| p),
            _ => None,
        }
    }

    /// Accepts a connect: window/bandwidth/chunk size, then `_result` with
    /// NetConnection.Connect.Success and `onBWDone` (which some Flash players wait for).
    pub fn accept_connect(&mut self, id: u32) {
        let Some(Pending::Connect {
            transaction_id,
            object_encoding,
        }) = self.take_pending(id)
        else {
            return;
        };
        self.t.send(&Message::WindowAckSize(WINDOW_ACK_SIZE));
        self.t.send(&Message::SetPeerBandwidth {
            size: WINDOW_ACK_SIZE,
            limit: 2,
        });
        self.t.send(&Message::SetChunkSize(self.desired_chunk_size));
        let props = Amf0Value::object(vec![
            ("fmsVer", Amf0Value::string("FMS/3,5,3,888")),
            ("capabilities", Amf0Value::Number(127.0)),
            ("mode", Amf0Value::Number(1.0)),
        ]);
        let info = Amf0Value::object(vec![
            ("level", Amf0Value::string("status")),
            ("code", Amf0Value::string(status::CONNECT_SUCCESS)),
            ("description", Amf0Value::string("Connection succeeded")),
            ("objectEncoding", Amf0Value::Number(object_encoding)),
            (
                "data",
                Amf0Value::EcmaArray(vec![
                    ("version".into(), Amf0Value::string("3,5,3,888")),
                    (
                        "srs_server".into(),
                        Amf0Value::string(self.server_name.clone()),
                    ),
                ]),
            ),
        ]);
        self.result(0, transaction_id, vec![props, info]);
        self.t
            .send_command(command::command(0, "onBWDone", 0.0, vec![Amf0Value::Null]));
        self.role = Role::Connected;
    }

    /// Rejects a connect with NetConnection.Connect.Rejected; the app closes after writing.
    pub fn reject_connect(&mut self, id: u32, description: &str) {
        let Some(Pending::Connect { transaction_id, .. }) = self.take_pending(id) else {
            return;
        };
        let info = Amf0Value::object(vec![
            ("level", Amf0Value::string("error")),
            ("code", Amf0Value::string(status::CONNECT_REJECTED)),
            ("description", Amf0Value::string(description)),
        ]);
        self.t.send_command(command::command(
            0,
            "_error",
            transaction_id,
            vec![Amf0Value::Null, info],
        ));
    }

    /// Accepts a publish: onFCPublish (for FMLE-style clients) and NetStream.Publish.Start.
    /// Media is raised as [`ServerEvent::Media`] from now on.
    pub fn accept_publish(&mut self, id: u32) {
        let Some(Pending::Publish { stream_id, .. }) = self.take_pending(id) else {
            return;
        };
        if self.fmle {
            self.t.send_command(command::command(
                0,
                "onFCPublish",
                0.0,
                vec![
                    Amf0Value::Null,
                    Amf0Value::object(vec![
                        ("code", Amf0Value::string(status::PUBLISH_START)),
                        (
                            "description",
                            Amf0Value::string("Started publishing stream."),
                        ),
                    ]),
                ],
            ));
        }
        self.t.send_command(command::on_status(
            stream_id,
            "status",
            status::PUBLISH_START,
            "Started publishing stream.",
        ));
        self.role = Role::Publishing { stream_id };
    }

    /// Rejects a publish (e.g. NetStream.Publish.BadName for a stream already published).
    pub fn reject_publish(&mut self, id: u32, code: &str, description: &str) {
        let Some(Pending::Publish { stream_id, .. }) = self.take_pending(id) else {
            return;
        };
        self.t
            .send_command(command::on_status(stream_id, "error", code, description));
    }

    /// Accepts a play: Stream Begin, Play.Reset, Play.Start, |RtmpSampleAccess, Data.Start.
    pub fn accept_play(&mut self, id: u32) {
        let Some(Pending::Play {
            stream_id, reset, ..
        }) = self.take_pending(id)
        else {
            return;
        };
        self.t
            .send(&Message::UserControl(UserControl::StreamBegin(stream_id)));
        if reset {
            self.t.send_command(command::on_status(
                stream_id,
                "status",
                status::PLAY_RESET,
                "Playing and resetting stream.",
            ));
        }
        self.t.send_command(command::on_status(
            stream_id,
            "status",
            status::PLAY_START,
            "Started playing stream.",
        ));
        let mut b = BytesMut::new();
        amf0::encode_all(
            &[
                Amf0Value::string("|RtmpSampleAccess"),
                Amf0Value::Boolean(true),
                Amf0Value::Boolean(true),
            ],
            &mut b,
        );
        self.t.send(&Message::Data {
            timestamp: 0,
            stream_id,
            payload: b.freeze(),
        });
        let mut b = BytesMut::new();
        amf0::encode_all(
            &[
                Amf0Value::string("onStatus"),
                Amf0Value::object(vec![("code", Amf0Value::string(status::DATA_START))]),
            ],
            &mut b,
        );
        self.t.send(&Message::Data {
            timestamp: 0,
            stream_id,
            payload: b.freeze(),
        });
        self.role = Role::Playing { stream_id };
    }

    pub fn reject_play(&mut self, id: u32, code: &str, description: &str) {
        let Some(Pending::Play { stream_id, .. }) = self.take_pending(id) else {
            return;
        };
        self.t
            .send_command(command::on_status(stream_id, "error", code, description));
    }

    /// Sends an onStatus on the stream being played or published (e.g. UnpublishNotify).
    pub fn send_status(&mut self, level: &str, code: &str, description: &str) {
        let sid = match self.role {
            Role::Playing { stream_id } | Role::Publishing { stream_id } => stream_id,
            _ => 0,
        };
        self.t
            .send_command(command::on_status(sid, level, code, description));
    }

    /// Sends any message (the app uses this for rare per-player encodings).
    pub fn send_message(&mut self, m: &Message) {
        self.t.send(m);
    }
}

/// What a client session raises for the app.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientEvent {
    Connected,
    /// connect was refused (`_error`), with the status code and description.
    ConnectRejected {
        code: String,
        description: String,
    },
    PublishStarted,
    PlayStarted,
    /// Any onStatus, including errors such as NetStream.Publish.BadName.
    Status {
        level: String,
        code: String,
        description: String,
    },
    Media {
        kind: MediaKind,
        timestamp: u32,
        payload: Bytes,
    },
}

#[derive(Debug, Clone, PartialEq)]
enum ClientCall {
    Connect,
    CreateStream { then: StreamIntent },
}

#[derive(Debug, Clone, PartialEq)]
enum StreamIntent {
    Publish(String),
    Play(String),
}

/// Client side of an RTMP connection. See the module doc for the contract.
pub struct ClientSession {
    t: Transport,
    events: VecDeque<ClientEvent>,
    media: VecDeque<MediaOut>,
    next_txn: f64,
    calls: Vec<(f64, ClientCall)>,
    stream_id: u32,
    publishing: bool,
    chunk_size: u32,
}

impl Default for ClientSession {
    fn default() -> Self {
        Self::new()
    }
}

impl ClientSession {
    pub fn new() -> Self {
        ClientSession {
            t: Transport::new(),
            events: VecDeque::new(),
            media: VecDeque::new(),
            next_txn: 1.0,
            calls: Vec::new(),
            stream_id: 0,
            publishing: false,
            // ffmpeg's choice: large enough to keep overhead low, small enough for every server.
            chunk_size: 4096,
        }
    }

    pub fn take_output(&mut self) -> Option<Bytes> {
        (!self.t.out.is_empty()).then(|| self.t.out.split().freeze())
    }

    pub fn poll_event(&mut self) -> Option<ClientEvent> {
        if let Some(e) = self.events.pop_front() {
            return Some(e);
        }
        self.media.pop_front().map(|m| ClientEvent::Media {
            kind: m.kind,
            timestamp: m.timestamp,
            payload: m.payload,
        })
    }

    pub fn stream_id(&self) -> u32 {
        self.stream_id
    }

    /// Sends connect. `command_object` holds app, tcUrl and the rest (flashVer, pageUrl,
    /// ...); `extra_args` follow it (token traversal passes a client's own through).
    pub fn connect(
        &mut self,
        command_object: Vec<(String, Amf0Value)>,
        extra_args: Vec<Amf0Value>,
    ) {
        self.t.send(&Message::SetChunkSize(self.chunk_size));
        let txn = self.txn(ClientCall::Connect);
        let mut args = vec![Amf0Value::Object(command_object)];
        args.extend(extra_args);
        self.t
            .send_command(command::command(0, "connect", txn, args));
    }

    /// The usual connect object for `app` at `tc_url`.
    pub fn connect_object(app: &str, tc_url: &str) -> Vec<(String, Amf0Value)> {
        vec![
            ("app".into(), Amf0Value::string(app)),
            (
                "flashVer".into(),
                Amf0Value::string(format!("FMLE/3.0 (compatible; srsd/{})", crate::VERSION)),
            ),
            ("tcUrl".into(), Amf0Value::string(tc_url)),
            ("fpad".into(), Amf0Value::Boolean(false)),
            ("capabilities".into(), Amf0Value::Number(15.0)),
            ("audioCodecs".into(), Amf0Value::Number(4071.0)),
            ("videoCodecs".into(), Amf0Value::Number(252.0)),
            ("videoFunction".into(), Amf0Value::Number(1.0)),
        ]
    }

    /// FMLE publish sequence: releaseStream, FCPublish, createStream, then publish.
    pub fn publish(&mut self, stream_name: &str) {
        let t = self.txn_plain();
        self.t.send_command(command::command(
            0,
            "releaseStream",
            t,
            vec![Amf0Value::Null, Amf0Value::string(stream_name)],
        ));
        let t = self.txn_plain();
        self.t.send_command(command::command(
            0,
            "FCPublish",
            t,
            vec![Amf0Value::Null, Amf0Value::string(stream_name)],
        ));
        let t = self.txn(ClientCall::CreateStream {
            then: StreamIntent::Publish(stream_name.into()),
        });
        self.t.send_command(command::command(
            0,
            "createStream",
            t,
            vec![Amf0Value::Null],
        ));
    }

    /// createStream, then play (live, from the start of what the server has).
    pub fn play(&mut self, stream_name: &str) {
        let t = self.txn(ClientCall::CreateStream {
            then: StreamIntent::Play(stream_name.into()),
        });
        self.t.send_command(command::command(
            0,
            "createStream",
            t,
            vec![Amf0Value::Null],
        ));
    }

    /// Sends one media message on the publishing stream. Data is sent as
    /// `@setDataFrame(...)` when it is onMetaData, as ffmpeg does, so servers store it.
    pub fn send_media(&mut self, kind: MediaKind, timestamp: u32, payload: Bytes) {
        let payload =
            if kind == MediaKind::Data && !payload.starts_with(b"\x02\x00\x0d@setDataFrame") {
                let mut b = BytesMut::with_capacity(payload.len() + 16);
                amf0::encode(&Amf0Value::string("@setDataFrame"), &mut b);
                b.extend_from_slice(&payload);
                b.freeze()
            } else {
                payload
            };
        let raw = RawMessage {
            csid: kind.csid(),
            timestamp,
            type_id: kind.type_id(),
            stream_id: self.stream_id,
            payload,
        };
        chunk::encode_message(&mut self.t.out, &raw, self.t.out_chunk_size);
    }

    /// Ends a publish politely: FCUnpublish and deleteStream.
    pub fn unpublish(&mut self, stream_name: &str) {
        let t = self.txn_plain();
        self.t.send_command(command::command(
            0,
            "FCUnpublish",
            t,
            vec![Amf0Value::Null, Amf0Value::string(stream_name)],
        ));
        let t = self.txn_plain();
        self.t.send_command(command::command(
            0,
            "deleteStream",
            t,
            vec![Amf0Value::Null, Amf0Value::Number(self.stream_id as f64)],
        ));
        self.publishing = false;
    }

    /// Bytes of output waiting to be written (to pace publishing).
    pub fn pending_output(&self) -> usize {
        self.t.out.len()
    }

    fn txn_plain(&mut self) -> f64 {
        let t = self.next_txn;
        self.next_txn += 1.0;
        t
    }

    fn txn(&mut self, call: ClientCall) -> f64 {
        let t = self.txn_plain();
        // Answers to calls the server never makes are not kept forever.
        if self.calls.len() > 64 {
            self.calls.remove(0);
        }
        self.calls.push((t, call));
        t
    }

    fn take_call(&mut self, txn: f64) -> Option<ClientCall> {
        let i = self.calls.iter().position(|(t, _)| *t == txn)?;
        Some(self.calls.remove(i).1)
    }

    pub fn handle_input(&mut self, input: &mut BytesMut) -> Result<(), SessionError> {
        while let Some((m, _)) = self.t.read(input)? {
            if self.events.len() >= MAX_EVENTS {
                return Err(SessionError::TooManyEvents);
            }
            match m {
                Message::Command(c) => self.handle_command(c),
                m @ (Message::Audio { .. }
                | Message::Video { .. }
                | Message::Data { .. }
                | Message::Aggregate { .. }) => {
                    push_media(&mut self.media, m);
                    while let Some(x) = self.media.pop_front() {
                        // The server's own data messages are not media.
                        if x.kind == MediaKind::Data && is_server_data(&x.payload) {
                            continue;
                        }
                        self.events.push_back(ClientEvent::Media {
                            kind: x.kind,
                            timestamp: x.timestamp,
                            payload: x.payload,
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(())
    }

    fn handle_command(&mut self, c: CommandMessage) {
        match c.name.as_str() {
            "_result" => match self.take_call(c.transaction_id) {
                Some(ClientCall::Connect) => self.events.push_back(ClientEvent::Connected),
                Some(ClientCall::CreateStream { then }) => {
                    self.stream_id =
                        c.args.get(1).and_then(Amf0Value::as_f64).unwrap_or(1.0) as u32;
                    let t = self.txn_plain();
                    let sid = self.stream_id;
                    match then {
                        StreamIntent::Publish(name) => self.t.send_command(command::command(
                            sid,
                            "publish",
                            t,
                            vec![
                                Amf0Value::Null,
                                Amf0Value::string(name),
                                Amf0Value::string("live"),
                            ],
                        )),
                        StreamIntent::Play(name) => {
                            self.t.send_command(command::command(
                                sid,
                                "play",
                                t,
                                vec![
                                    Amf0Value::Null,
                                    Amf0Value::string(name),
                                    Amf0Value::Number(-1000.0),
                                ],
                            ));
                            self.t
                                .send(&Message::UserControl(UserControl::SetBufferLength {
                                    stream_id: sid,
                                    ms: 3000,
                                }));
                        }
                    }
                }
                None => {}
            },
            "_error" => {
                if let Some(ClientCall::Connect) = self.take_call(c.transaction_id) {
                    let info = c.args.get(1).cloned().unwrap_or(Amf0Value::Null);
                    self.events.push_back(ClientEvent::ConnectRejected {
                        code: info
                            .get("code")
                            .and_then(Amf0Value::as_str)
                            .unwrap_or_default()
                            .into(),
                        description: info
                            .get("description")
                            .and_then(Amf0Value::as_str)
                            .unwrap_or_default()
                            .into(),
                    });
                }
            }
            "onStatus" => {
                let info = c
                    .args
                    .iter()
                    .find(|a| a.get("code").is_some())
                    .cloned()
                    .unwrap_or(Amf0Value::Null);
                let field = |k: &str| {
                    info.get(k)
                        .and_then(Amf0Value::as_str)
                        .unwrap_or_default()
                        .to_string()
                };
                let code = field("code");
                if code == status::PUBLISH_START {
                    self.publishing = true;
                    self.events.push_back(ClientEvent::PublishStarted);
                } else if code == status::PLAY_START {
                    self.events.push_back(ClientEvent::PlayStarted);
                }
                self.events.push_back(ClientEvent::Status {
                    level: field("level"),
                    code,
                    description: field("description"),
                });
            }
            _ => {}
        }
    }
}

fn is_server_data(payload: &Bytes) -> bool {
    let mut rest: &[u8] = payload;
    matches!(amf0::decode(&mut rest), Ok(Amf0Value::String(s)) if s == "|RtmpSampleAccess" || s == "onStatus")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moves bytes between the two sessions until neither has anything to say.
    fn pump(
        server: &mut ServerSession,
        client: &mut ClientSession,
    ) -> (Vec<ServerEvent>, Vec<ClientEvent>) {
        let (mut se, mut ce) = (Vec::new(), Vec::new());
        for _ in 0..100 {
            let mut moved = false;
            if let Some(b) = client.take_output() {
                server.handle_input(&mut BytesMut::from(&b[..])).unwrap();
                moved = true;
            }
            if let Some(b) = server.take_output() {
                client.handle_input(&mut BytesMut::from(&b[..])).unwrap();
                moved = true;
            }
            while let Some(e) = server.poll_event() {
                se.push(e);
            }
            while let Some(e) = client.poll_event() {
                ce.push(e);
            }
            if !moved {
                break;
            }
        }
        (se, ce)
    }

    fn connected() -> (ServerSession, ClientSession) {
        let mut s = ServerSession::new(60000, "srsd/test");
        let mut c = ClientSession::new();
        c.connect(
            ClientSession::connect_object("live", "rtmp://127.0.0.1/live"),
            vec![],
        );
        let (se, _) = pump(&mut s, &mut c);
        let Some(ServerEvent::Connect { id, request }) = se.into_iter().next() else {
            panic!("no connect")
        };
        assert_eq!(request.app, "live");
        s.accept_connect(id);
        let (_, ce) = pump(&mut s, &mut c);
        assert!(ce.contains(&ClientEvent::Connected), "{ce:?}");
        assert_eq!(s.out_chunk_size(), 60000);
        (s, c)
    }

    #[test]
    fn publish_and_media_flow_back_to_back() {
        let (mut s, mut c) = connected();
        c.publish("stream?token=1");
        let (se, _) = pump(&mut s, &mut c);
        let Some(ServerEvent::Publish {
            id,
            request,
            stream_id,
        }) = se.into_iter().last()
        else {
            panic!()
        };
        assert_eq!(request.stream_name, "stream?token=1");
        assert_eq!(stream_id, 1);
        s.accept_publish(id);
        let (_, ce) = pump(&mut s, &mut c);
        assert!(ce.contains(&ClientEvent::PublishStarted));

        let mut meta = BytesMut::new();
        amf0::encode_all(
            &[
                Amf0Value::string("onMetaData"),
                Amf0Value::object(vec![("width", Amf0Value::Number(640.0))]),
            ],
            &mut meta,
        );
        c.send_media(MediaKind::Data, 0, meta.clone().freeze());
        c.send_media(MediaKind::Video, 40, Bytes::from(vec![0x17; 10000]));
        c.send_media(
            MediaKind::Audio,
            0x0100_0000,
            Bytes::from_static(&[0xAF, 1]),
        );
        let (se, _) = pump(&mut s, &mut c);
        assert_eq!(
            se,
            vec![
                ServerEvent::Media {
                    kind: MediaKind::Data,
                    timestamp: 0,
                    payload: meta.freeze()
                },
                ServerEvent::Media {
                    kind: MediaKind::Video,
                    timestamp: 40,
                    payload: Bytes::from(vec![0x17; 10000])
                },
                ServerEvent::Media {
                    kind: MediaKind::Audio,
                    timestamp: 0x0100_0000,
                    payload: Bytes::from_static(&[0xAF, 1])
                },
            ]
        );
        c.unpublish("stream");
        let (se, _) = pump(&mut s, &mut c);
        assert!(se.contains(&ServerEvent::Unpublish));
    }

    #[test]
    fn second_publisher_gets_bad_name_when_app_rejects() {
        let (mut s, mut c) = connected();
        c.publish("busy");
        let (se, _) = pump(&mut s, &mut c);
        let Some(ServerEvent::Publish { id, .. }) = se.into_iter().last() else {
            panic!()
        };
        s.reject_publish(id, status::PUBLISH_BAD_NAME, "stream busy");
        let (_, ce) = pump(&mut s, &mut c);
        assert!(ce.iter().any(|e| matches!(e, ClientEvent::Status { code, level, .. } if code == status::PUBLISH_BAD_NAME && level == "error")));
        assert!(!ce.contains(&ClientEvent::PublishStarted));
    }

    #[test]
    fn play_accept_sends_reset_and_start() {
        let (mut s, mut c) = connected();
        c.play("stream");
        let (se, _) = pump(&mut s, &mut c);
        let Some(ServerEvent::Play { id, stream_id, .. }) = se.into_iter().last() else {
            panic!()
        };
        s.accept_play(id);
        let (_, ce) = pump(&mut s, &mut c);
        let codes: Vec<&str> = ce
            .iter()
            .filter_map(|e| match e {
                ClientEvent::Status { code, .. } => Some(code.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(codes, vec![status::PLAY_RESET, status::PLAY_START]);
        assert!(ce.contains(&ClientEvent::PlayStarted));
        // Media the app writes itself decodes on the client.
        let mut out = BytesMut::new();
        let raw = RawMessage {
            csid: 6,
            timestamp: 0,
            type_id: 9,
            stream_id,
            payload: Bytes::from(vec![0x17; 70000]),
        };
        chunk::encode_message(&mut out, &raw, s.out_chunk_size());
        c.handle_input(&mut out).unwrap();
        assert!(
            matches!(c.poll_event(), Some(ClientEvent::Media { kind: MediaKind::Video, payload, .. }) if payload.len() == 70000)
        );
    }

    #[test]
    fn rejected_connect_reaches_the_client() {
        let mut s = ServerSession::new(60000, "srsd/test");
        let mut c = ClientSession::new();
        c.connect(
            ClientSession::connect_object("live", "rtmp://h/live"),
            vec![],
        );
        let (se, _) = pump(&mut s, &mut c);
        let Some(ServerEvent::Connect { id, .. }) = se.into_iter().next() else {
            panic!()
        };
        s.reject_connect(id, "denied by hook");
        let (_, ce) = pump(&mut s, &mut c);
        assert_eq!(
            ce,
            vec![ClientEvent::ConnectRejected {
                code: status::CONNECT_REJECTED.into(),
                description: "denied by hook".into()
            }]
        );
    }

    #[test]
    fn publish_before_connect_is_an_error() {
        let mut s = ServerSession::new(60000, "x");
        let mut out = BytesMut::new();
        let m = Message::Command(command::command(
            1,
            "publish",
            2.0,
            vec![Amf0Value::Null, Amf0Value::string("s")],
        ))
        .encode();
        chunk::encode_message(&mut out, &m, 128);
        assert!(s.handle_input(&mut out).is_err());
    }

    #[test]
    fn acknowledges_per_peer_window_and_answers_ping() {
        let (mut s, mut c) = connected();
        let mut input = BytesMut::new();
        chunk::encode_message(&mut input, &Message::WindowAckSize(1000).encode(), 128);
        chunk::encode_message(
            &mut input,
            &Message::UserControl(UserControl::PingRequest(9)).encode(),
            128,
        );
        for _ in 0..20 {
            chunk::encode_message(
                &mut input,
                &Message::Audio {
                    timestamp: 0,
                    stream_id: 1,
                    payload: Bytes::from(vec![0xAF; 100]),
                }
                .encode(),
                128,
            );
        }
        s.handle_input(&mut input).unwrap();
        let out = s.take_output().unwrap();
        let mut dec = ChunkDecoder::new();
        let mut buf = BytesMut::from(&out[..]);
        let mut msgs = Vec::new();
        while let Some(r) = dec.decode(&mut buf).unwrap() {
            msgs.push(Message::decode(r).unwrap());
        }
        assert!(msgs.contains(&Message::UserControl(UserControl::PingResponse(9))));
        assert!(
            msgs.iter()
                .filter(|m| matches!(m, Message::Acknowledgement(_)))
                .count()
                >= 2
        );
        let _ = &mut c;
    }

    #[test]
    fn strips_set_data_frame() {
        let mut b = BytesMut::new();
        amf0::encode_all(
            &[
                Amf0Value::string("@setDataFrame"),
                Amf0Value::string("onMetaData"),
                Amf0Value::Null,
            ],
            &mut b,
        );
        let mut want = BytesMut::new();
        amf0::encode_all(
            &[Amf0Value::string("onMetaData"), Amf0Value::Null],
            &mut want,
        );
        assert_eq!(strip_set_data_frame(&b.freeze()), want.freeze());
    }
}
