//! The server session: what a server says to one client.

use super::*;

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
    /// A bandcheck call from the client (`onSrsBandCheck*`, `finalClientPacket`), after
    /// connect. Other calls the session does not implement (`checkbw`, `FCSubscribe`, ...)
    /// raise nothing, so they cost a normal connection no event.
    Call {
        name: String,
        args: Vec<Amf0Value>,
    },
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

    /// The bytes to write, the whole output buffer with them: a player's session writes
    /// only the odd command answer and acknowledgement, so it keeps no buffer in between.
    pub fn take_output(&mut self) -> Option<Bytes> {
        (!self.t.out.is_empty()).then(|| std::mem::take(&mut self.t.out).freeze())
    }

    pub fn poll_event(&mut self) -> Option<ServerEvent> {
        if let Some(e) = self.events.pop_front() {
            if self.events.is_empty() {
                // Commands are rare; their queue (events are large) is not kept.
                self.events = VecDeque::new();
            }
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
                        push_media(
                            &mut self.media,
                            m,
                            MAX_EVENTS.saturating_sub(self.events.len()),
                        )?;
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
                if c.name.starts_with("onSrsBandCheck") || c.name == "finalClientPacket" {
                    self.events.push_back(ServerEvent::Call {
                        name: c.name,
                        args: c.args,
                    });
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

    /// Accepts a play: Stream Begin, Play.Reset, Play.Start, |RtmpSampleAccess (as SRS 6).
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
        // No onStatus(NetStream.Data.Start) data message: ffmpeg's FLV reader lists it as an
        // extra "Data: none" stream, and SRS 6 stopped sending it for that reason.
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
