//! The client against a minimal server built from the sans-IO `ServerSession`, over real TCP
//! on 127.0.0.1:0. The server accepts everything except publishing to "busy" and playing
//! "missing"; a player gets `frames` video messages and then the socket is closed.

use super::*;
use crate::protocol::flv::{self, Tag};
use crate::protocol::rtmp::handshake::ServerHandshake;
use crate::protocol::rtmp::message::Message;
use crate::protocol::rtmp::session::{ServerEvent, ServerSession};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

const T: Duration = Duration::from_secs(5);

async fn serve_one(
    listener: TcpListener,
    media: mpsc::Sender<(MediaKind, u32, Bytes)>,
    frames: u32,
) {
    let Ok((mut sock, _)) = listener.accept().await else {
        return;
    };
    let mut buf = BytesMut::new();
    let mut hs = ServerHandshake::new();
    loop {
        match hs.handle_input(&mut buf, &mut |b: &mut [u8]| b.fill(7), 0) {
            Ok(HandshakeProgress::NeedMore { send }) => {
                if sock.write_all(&send).await.is_err() {
                    return;
                }
            }
            Ok(HandshakeProgress::Done { send }) => {
                if sock.write_all(&send).await.is_err() {
                    return;
                }
                break;
            }
            Err(_) => return,
        }
        if matches!(sock.read_buf(&mut buf).await, Ok(0) | Err(_)) {
            return;
        }
    }
    let mut s = ServerSession::new(60000, "test");
    loop {
        if s.handle_input(&mut buf).is_err() {
            return;
        }
        while let Some(e) = s.poll_event() {
            match e {
                ServerEvent::Connect { id, .. } => s.accept_connect(id),
                ServerEvent::Publish { id, request, .. } if request.stream_name == "busy" => {
                    s.reject_publish(id, "NetStream.Publish.BadName", "stream busy")
                }
                ServerEvent::Publish { id, .. } => s.accept_publish(id),
                ServerEvent::Play { id, request, .. } if request.stream_name == "missing" => {
                    s.reject_play(id, "NetStream.Play.StreamNotFound", "no such stream")
                }
                ServerEvent::Play { id, stream_id, .. } => {
                    s.accept_play(id);
                    for i in 0..frames {
                        s.send_message(&Message::Video {
                            timestamp: i * 40,
                            stream_id,
                            payload: Bytes::from(vec![
                                if i == 0 { 0x17 } else { 0x27 },
                                1,
                                0,
                                0,
                                0,
                                i as u8,
                            ]),
                        });
                    }
                    while let Some(out) = s.take_output() {
                        let _ = sock.write_all(&out).await;
                    }
                    return;
                }
                ServerEvent::Media {
                    kind,
                    timestamp,
                    payload,
                } => {
                    // Bounded like every queue: the tests send far fewer messages than
                    // fit, and a test that stopped reading loses the rest, not memory.
                    let _ = media.try_send((kind, timestamp, payload));
                }
                _ => {}
            }
        }
        while let Some(out) = s.take_output() {
            if sock.write_all(&out).await.is_err() {
                return;
            }
        }
        if matches!(sock.read_buf(&mut buf).await, Ok(0) | Err(_)) {
            return;
        }
    }
}

pub(crate) async fn server(frames: u32) -> (RtmpUrl, mpsc::Receiver<(MediaKind, u32, Bytes)>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = mpsc::channel(4096);
    tokio::spawn(serve_one(listener, tx, frames));
    let url = RtmpUrl::parse(&format!("rtmp://127.0.0.1:{port}/live/s")).unwrap();
    (url, rx)
}

pub(crate) fn flv_file(tags: &[Tag]) -> Bytes {
    let mut out = BytesMut::new();
    flv::encode_header(true, true, &mut out);
    for t in tags {
        flv::encode_tag(t, &mut out);
    }
    out.freeze()
}

#[tokio::test]
async fn publishes_an_flv_file_with_rebased_timestamps() {
    let (url, mut rx) = server(0).await;
    let mut c = RtmpClient::connect(&url, T).await.unwrap();
    c.publish("s", T).await.unwrap();
    let tags: Vec<Tag> = (0..5u32)
        .map(|i| Tag {
            kind: if i % 2 == 0 {
                MediaKind::Video
            } else {
                MediaKind::Audio
            },
            timestamp: 1000 + i * 20,
            payload: Bytes::from(vec![0x17, i as u8]),
        })
        .collect();
    let sent = publish_flv(&mut c, flv_file(&tags), false, false, || false)
        .await
        .unwrap();
    assert_eq!(sent, 5);
    c.close().await;
    for (i, t) in tags.iter().enumerate() {
        let (kind, ts, payload) = tokio::time::timeout(T, rx.recv()).await.unwrap().unwrap();
        assert_eq!((kind, ts, &payload), (t.kind, i as u32 * 20, &t.payload));
    }
}

#[tokio::test]
async fn a_refused_publish_is_rejected_with_the_code() {
    let (url, _rx) = server(0).await;
    let mut c = RtmpClient::connect(&url, T).await.unwrap();
    match c.publish("busy", T).await {
        Err(ClientError::Rejected { code, .. }) => assert_eq!(code, "NetStream.Publish.BadName"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn plays_frames_then_sees_the_close() {
    let (url, _rx) = server(3).await;
    let mut c = RtmpClient::connect(&url, T).await.unwrap();
    c.play("s", T).await.unwrap();
    for i in 0..3u32 {
        let (kind, ts, payload) = c.recv().await.unwrap();
        assert_eq!((kind, ts, payload[5]), (MediaKind::Video, i * 40, i as u8));
    }
    assert!(matches!(c.recv().await, Err(ClientError::Closed)));
    assert_eq!(c.last_status(), Some("NetStream.Play.Start"));
    assert!(c.bytes_received() > 3073);
}

#[tokio::test]
async fn plays_into_an_flv_file() {
    let (url, _rx) = server(4).await;
    let mut c = RtmpClient::connect(&url, T).await.unwrap();
    c.play("s", T).await.unwrap();
    let mut out = Vec::new();
    let n = play_to_flv(&mut c, &mut out, T, Some(3)).await.unwrap();
    assert_eq!(n, 3);
    let mut d = flv::FlvDecoder::new();
    let mut buf = BytesMut::from(&out[..]);
    let mut tags = Vec::new();
    while let Some(t) = d.decode(&mut buf).unwrap() {
        tags.push(t);
    }
    assert_eq!(tags.len(), 3);
    assert!(is_keyframe(tags[0].kind, &tags[0].payload));
    assert_eq!(tags[2].timestamp, 80);
}

#[tokio::test]
async fn a_missing_stream_is_rejected() {
    let (url, _rx) = server(0).await;
    let mut c = RtmpClient::connect(&url, T).await.unwrap();
    assert!(matches!(
        c.play("missing", T).await,
        Err(ClientError::Rejected { .. })
    ));
}

#[tokio::test]
async fn connecting_to_a_closed_port_fails_quickly() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let url = RtmpUrl::parse(&format!("rtmp://127.0.0.1:{port}/live/s")).unwrap();
    assert!(matches!(
        RtmpClient::connect(&url, T).await,
        Err(ClientError::Io(_))
    ));
}
