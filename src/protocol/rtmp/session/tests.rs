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
