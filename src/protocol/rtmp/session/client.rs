//! The client session: the project's RTMP client's side of the conversation.

use super::*;

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
    /// A call from the server that is not a reply or a status (SRS's bandcheck
    /// `onSrsBandCheck*`, `onBWDone`, ...): its name and arguments (the command object, often
    /// null, first).
    Call {
        name: String,
        args: Vec<Amf0Value>,
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

    /// The usual connect object for `app` at `tc_url`, with Enhanced RTMP's `fourCcList`.
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
            (
                "fourCcList".into(),
                Amf0Value::StrictArray(
                    crate::protocol::media::FOURCC_LIST
                        .iter()
                        .map(|&f| Amf0Value::string(f))
                        .collect(),
                ),
            ),
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
                    push_media(
                        &mut self.media,
                        m,
                        MAX_EVENTS.saturating_sub(self.events.len()),
                    )?;
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
            "onBWDone" | "onFCPublish" | "onFCUnpublish" | "close" => {}
            _ => self.events.push_back(ClientEvent::Call {
                name: c.name,
                args: c.args,
            }),
        }
    }

    /// Sends a call the server answers with no `_result` (transaction id 0) on the
    /// connection's stream 0: a null command object, then `args`.
    pub fn call(&mut self, name: &str, args: Vec<Amf0Value>) {
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(Amf0Value::Null);
        all.extend(args);
        self.t.send_command(command::command(0, name, 0.0, all));
    }
}

fn is_server_data(payload: &Bytes) -> bool {
    let mut rest: &[u8] = payload;
    matches!(amf0::decode(&mut rest), Ok(Amf0Value::String(s)) if s == "|RtmpSampleAccess" || s == "onStatus")
}
