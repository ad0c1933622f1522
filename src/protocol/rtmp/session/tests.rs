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
    // Enhanced RTMP: the client announces the FourCCs it carries.
    let list = request
        .command_object
        .iter()
        .find(|(k, _)| k == "fourCcList");
    let Some((_, Amf0Value::StrictArray(list))) = list else {
        panic!("no fourCcList in {:?}", request.command_object)
    };
    assert!(list.contains(&Amf0Value::string("hvc1")) && list.contains(&Amf0Value::string("av01")));
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

mod hostile {
    use super::*;
    use crate::protocol::rtmp::chunk::encode_message;
    use crate::protocol::testutil::{feed_in_pieces, fuzz, mutate, Rng};
    use bytes::BufMut;

    /// An aggregate body of `n` FLV tags of `size` bytes each.
    fn aggregate(n: usize, size: usize) -> Bytes {
        let mut b = BytesMut::new();
        for i in 0..n {
            b.put_u8(9);
            b.put_slice(&(size as u32).to_be_bytes()[1..]);
            b.put_slice(&(i as u32).to_be_bytes()[1..]);
            b.put_slice(&[0, 0, 0, 0]);
            b.put_slice(&vec![0x27; size]);
            b.put_u32(11 + size as u32);
        }
        b.freeze()
    }

    /// A message a client (or a server, for the client session) could send, valid or not in
    /// the current state: every command the sessions know, control messages and media.
    fn random_message(rng: &mut Rng) -> Message {
        let name = |rng: &mut Rng| {
            rng.pick(&["live", "", "a?b=c", "x/y", "\u{e9}\u{0}", "..", "stream"])
                .to_string()
        };
        let cmd = |rng: &mut Rng, n: &str, args: Vec<Amf0Value>| {
            Message::Command(CommandMessage {
                stream_id: rng.edgy_u32(2),
                name: n.to_string(),
                transaction_id: *rng.pick(&[0.0, 1.0, 2.0, -1.0, f64::NAN, 1e300]),
                args,
            })
        };
        let ts = rng.edgy_u32(u32::MAX);
        let paused = rng.chance(1, 2);
        match rng.below(16) {
            0 => cmd(
                rng,
                "connect",
                vec![Amf0Value::Object(ClientSession::connect_object(
                    "live",
                    "rtmp://h/live",
                ))],
            ),
            1 => cmd(rng, "createStream", vec![Amf0Value::Null]),
            2 => {
                let n = name(rng);
                cmd(
                    rng,
                    "publish",
                    vec![Amf0Value::Null, Amf0Value::string(n), Amf0Value::Null],
                )
            }
            3 => {
                let n = name(rng);
                cmd(
                    rng,
                    "play",
                    vec![
                        Amf0Value::Null,
                        Amf0Value::string(n),
                        Amf0Value::Number(-2.0),
                    ],
                )
            }
            4 => {
                let c = *rng.pick(&[
                    "FCPublish",
                    "FCUnpublish",
                    "releaseStream",
                    "deleteStream",
                    "closeStream",
                    "getStreamLength",
                    "checkbw",
                    "_result",
                    "_error",
                    "onStatus",
                ]);
                cmd(
                    rng,
                    c,
                    vec![
                        Amf0Value::Null,
                        Amf0Value::object(vec![("code", Amf0Value::string(status::PLAY_START))]),
                    ],
                )
            }
            5 => cmd(
                rng,
                "pause",
                vec![
                    Amf0Value::Null,
                    Amf0Value::Boolean(paused),
                    Amf0Value::Number(1.0),
                ],
            ),
            6 => Message::SetChunkSize(1 + rng.edgy_u32(70_000)),
            7 => Message::WindowAckSize(rng.edgy_u32(5000)),
            8 => Message::UserControl(UserControl::PingRequest(ts)),
            9 => Message::Abort(rng.edgy_u32(8)),
            10 => Message::Aggregate {
                timestamp: ts,
                stream_id: 1,
                payload: aggregate(rng.below(20), rng.below(40)),
            },
            11 => Message::Data {
                timestamp: ts,
                stream_id: 1,
                payload: Bytes::from_static(b"\x02\x00\x0d@setDataFrame\x02\x00\x0aonMetaData"),
            },
            12 => Message::Ignored { type_id: rng.u8() },
            _ => Message::Video {
                timestamp: ts,
                stream_id: 1,
                payload: Bytes::from(rng.bytes(300)),
            },
        }
    }

    /// Wire bytes for a run of random messages, chunked as each `SetChunkSize` among them says.
    fn random_wire(rng: &mut Rng, chunk_size: &mut u32) -> Vec<u8> {
        let mut wire = BytesMut::new();
        for _ in 0..1 + rng.below(10) {
            let m = random_message(rng);
            encode_message(&mut wire, &m.encode(), *chunk_size);
            if let Message::SetChunkSize(n) = m {
                *chunk_size = n;
            }
        }
        wire.to_vec()
    }

    /// Events a single `handle_input` may leave: the cap, plus what the message that reaches
    /// it adds.
    const EVENT_BOUND: usize = MAX_EVENTS + 1;

    #[test]
    fn server_survives_mutated_messages_after_connect() {
        fuzz("server session", 0x5E55, 1_000, |rng| {
            let (mut s, _) = connected();
            // connected() left the server reading 4096-byte chunks (the client's choice).
            let mut chunk_size = 4096;
            let mut wire = Vec::new();
            for _ in 0..1 + rng.below(3) {
                let w = random_wire(rng, &mut chunk_size);
                wire.extend(if rng.chance(2, 3) { mutate(rng, &w) } else { w });
            }
            let mut input = BytesMut::new();
            let mut split = Rng::new(rng.next_u64());
            feed_in_pieces(&mut split, &wire, 200, &mut input, |input| {
                let before = input.len();
                let r = s.handle_input(input);
                let out = s.take_output().map_or(0, |b| b.len());
                assert!(out <= 64 * before + 8192, "{out} bytes out for {before} in");
                let mut n = 0;
                while let Some(e) = s.poll_event() {
                    n += 1;
                    match e {
                        ServerEvent::Publish { id, .. } if rng.chance(1, 2) => s.accept_publish(id),
                        ServerEvent::Play { id, .. } if rng.chance(1, 2) => s.accept_play(id),
                        ServerEvent::Publish { id, .. } => {
                            s.reject_publish(id, status::PUBLISH_DENIED, "no")
                        }
                        ServerEvent::Play { id, .. } => {
                            s.reject_play(id, status::PLAY_STREAM_NOT_FOUND, "no")
                        }
                        _ => {}
                    }
                }
                assert!(n <= EVENT_BOUND, "{n} events from one input");
                r.is_ok()
            });
        });
    }

    #[test]
    fn client_survives_mutated_messages_after_connect() {
        fuzz("client session", 0xC11E, 1_000, |rng| {
            let (_, mut c) = connected();
            if rng.chance(1, 2) {
                c.play("stream");
            } else {
                c.publish("stream");
            }
            // The server session announced 60000-byte chunks on accept.
            let mut chunk_size = 60000;
            let w = random_wire(rng, &mut chunk_size);
            let wire = if rng.chance(2, 3) { mutate(rng, &w) } else { w };
            let mut input = BytesMut::new();
            let mut split = Rng::new(rng.next_u64());
            feed_in_pieces(&mut split, &wire, 200, &mut input, |input| {
                let before = input.len();
                let r = c.handle_input(input);
                let out = c.take_output().map_or(0, |b| b.len());
                assert!(out <= 64 * before + 8192, "{out} bytes out for {before} in");
                let mut n = 0;
                while c.poll_event().is_some() {
                    n += 1;
                }
                assert!(n <= EVENT_BOUND, "{n} events from one input");
                r.is_ok()
            });
        });
    }

    #[test]
    fn random_bytes_after_connect_never_panic() {
        fuzz("sessions random bytes", 0xB17E, 1_000, |rng| {
            let (mut s, mut c) = connected();
            let wire = rng.bytes(400);
            let mut input = BytesMut::from(&wire[..]);
            let _ = s.handle_input(&mut input);
            while s.poll_event().is_some() {}
            let mut input = BytesMut::from(&wire[..]);
            let _ = c.handle_input(&mut input);
            while c.poll_event().is_some() {}
        });
    }

    /// Regression: one aggregate of 15-byte empty tags used to become one event per tag in a
    /// single `handle_input`, past the event cap (a 16 MiB aggregate: a million events).
    #[test]
    fn aggregate_of_tiny_tags_stays_within_the_event_cap() {
        let (mut s, mut c) = connected();
        c.publish("stream");
        let (se, _) = pump(&mut s, &mut c);
        let Some(ServerEvent::Publish { id, .. }) = se.into_iter().last() else {
            panic!("no publish")
        };
        s.accept_publish(id);
        pump(&mut s, &mut c);
        let m = Message::Aggregate {
            timestamp: 0,
            stream_id: 1,
            payload: aggregate(3 * MAX_EVENTS, 0),
        };
        let mut wire = BytesMut::new();
        encode_message(&mut wire, &m.encode(), 4096);
        let r = s.handle_input(&mut wire);
        let mut n = 0;
        while s.poll_event().is_some() {
            n += 1;
        }
        assert!(n <= EVENT_BOUND, "{n} events, {r:?}");
        assert!(matches!(r, Err(SessionError::TooManyEvents)), "{r:?}");
    }
}

#[test]
fn calls_the_sessions_do_not_implement_reach_the_app_both_ways() {
    let (mut s, mut c) = connected();
    c.call(
        "onSrsBandCheckStartingPlayBytes",
        vec![Amf0Value::Number(1.0)],
    );
    let (se, _) = pump(&mut s, &mut c);
    assert!(
        matches!(&se[..], [ServerEvent::Call { name, args }]
            if name == "onSrsBandCheckStartingPlayBytes"
                && args == &[Amf0Value::Null, Amf0Value::Number(1.0)]),
        "{se:?}"
    );
    let call = command::command(
        0,
        "onSrsBandCheckStopPlayBytes",
        0.0,
        vec![
            Amf0Value::Null,
            Amf0Value::object(vec![("bytes_delta", Amf0Value::Number(9.0))]),
        ],
    );
    s.send_message(&Message::Command(call));
    let (_, ce) = pump(&mut s, &mut c);
    let Some(ClientEvent::Call { name, args }) = ce.last() else {
        panic!("{ce:?}")
    };
    assert_eq!(name, "onSrsBandCheckStopPlayBytes");
    assert_eq!(
        args[1].get("bytes_delta").and_then(Amf0Value::as_f64),
        Some(9.0)
    );
}
