//! End-to-end: the real server on 127.0.0.1:0 with the project's own client.

mod common;

use bytes::Bytes;
use common::*;
use srsd::client::{ClientError, MediaKind, RtmpClient, RtmpUrl};
use srsd::protocol::amf0::{self, Amf0Value};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const T: Duration = Duration::from_secs(5);

fn metadata() -> Bytes {
    let mut b = bytes::BytesMut::new();
    amf0::encode_all(
        &[
            Amf0Value::string("onMetaData"),
            Amf0Value::EcmaArray(vec![("width".into(), Amf0Value::Number(320.0))]),
        ],
        &mut b,
    );
    b.freeze()
}

fn video_sh() -> Bytes {
    Bytes::from_static(&[
        0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E,
    ])
}
fn audio_sh() -> Bytes {
    Bytes::from_static(&[0xAF, 0, 0x12, 0x10])
}
fn video(key: bool, n: u32, size: usize) -> Bytes {
    let mut v = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    v.extend_from_slice(&n.to_be_bytes());
    v.resize(size.max(9), 0xAB);
    Bytes::from(v)
}
fn audio(n: u32) -> Bytes {
    let mut v = vec![0xAF, 1];
    v.extend_from_slice(&n.to_be_bytes());
    v.resize(64, 0xCD);
    Bytes::from(v)
}

async fn publisher(server: &TestServer, path: &str) -> RtmpClient {
    let url = RtmpUrl::parse(&server.url(path)).expect("url");
    let mut c = RtmpClient::connect(&url, T).await.expect("connect");
    c.publish(&url.stream, T).await.expect("publish");
    c
}

async fn player(server: &TestServer, path: &str) -> RtmpClient {
    let url = RtmpUrl::parse(&server.url(path)).expect("url");
    let mut c = RtmpClient::connect(&url, T).await.expect("connect");
    c.play(&url.stream, T).await.expect("play");
    c
}

/// Sends headers then `gops` GOPs of 25 video frames (40 ms) with audio between, starting at
/// `start`. Returns the number of video frames sent.
async fn send_stream(p: &mut RtmpClient, start: u32, gops: u32, frame_size: usize) -> u32 {
    p.send(MediaKind::Data, start, metadata()).await.unwrap();
    p.send(MediaKind::Video, start, video_sh()).await.unwrap();
    p.send(MediaKind::Audio, start, audio_sh()).await.unwrap();
    let mut n = 0;
    for g in 0..gops {
        for i in 0..25 {
            let ts = start.wrapping_add((g * 25 + i) * 40);
            p.send(MediaKind::Video, ts, video(i == 0, n, frame_size))
                .await
                .unwrap();
            p.send(MediaKind::Audio, ts.wrapping_add(20), audio(n))
                .await
                .unwrap();
            n += 1;
        }
    }
    n
}

fn frame_no(p: &Bytes) -> Option<u32> {
    (p.len() >= 9 && p[1] == 1).then(|| u32::from_be_bytes([p[5], p[6], p[7], p[8]]))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_players_receive_every_frame() {
    let server = start_server("fifty", "").await;
    let mut players = Vec::new();
    for _ in 0..50 {
        players.push(player(&server, "live/fifty").await);
    }
    let mut p = publisher(&server, "live/fifty").await;
    let sent = send_stream(&mut p, 0, 4, 2000).await;
    let mut tasks = Vec::new();
    for mut c in players {
        tasks.push(tokio::spawn(async move {
            let v = recv_video(&mut c, sent as usize + 1, Duration::from_secs(15)).await;
            // The sequence header first, then every frame in order.
            let numbers: Vec<u32> = v.iter().filter_map(|(_, p)| frame_no(p)).collect();
            (v.first().map(|(_, p)| p[1] == 0), numbers)
        }));
    }
    for t in tasks {
        let (first_is_header, numbers) = t.await.unwrap();
        assert_eq!(first_is_header, Some(true));
        assert_eq!(numbers, (0..sent).collect::<Vec<u32>>());
    }
}

/// At the default mw_latency (350 ms) a player keeps up with a stream of any bitrate: a
/// read that stops at the batch bounds (64 frames, 512 KiB) is followed at once, not one
/// batch per period (which held every player to about 12 Mbit/s and, past queue_length,
/// dropped frames).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_high_bitrate_stream_reaches_a_merging_player_whole() {
    let server = start_server("bitrate", "").await;
    let mut c = player(&server, "live/hi").await;
    let mut p = publisher(&server, "live/hi").await;
    // 8 s of media, 120 KB frames at 25 fps (24 Mbit/s), sent at twice real time (96 Mbit/s
    // for 4 s), while the player reads.
    let frames = 8 * 25u32;
    let reader = tokio::spawn(async move {
        recv_video(&mut c, frames as usize + 1, Duration::from_secs(40)).await
    });
    p.send(MediaKind::Video, 0, video_sh()).await.unwrap();
    let started = tokio::time::Instant::now();
    for n in 0..frames {
        let ts = n * 40;
        tokio::time::sleep_until(started + Duration::from_millis(u64::from(ts / 2))).await;
        p.send(MediaKind::Video, ts, video(n % 25 == 0, n, 120_000))
            .await
            .unwrap();
    }
    let sent = started.elapsed();
    let v = reader.await.unwrap();
    let lag = started.elapsed() - sent;
    let numbers: Vec<u32> = v.iter().filter_map(|(_, p)| frame_no(p)).collect();
    assert_eq!(
        numbers,
        (0..frames).collect::<Vec<u32>>(),
        "every frame, in order"
    );
    // One batch per period would deliver 1.5 MB/s: 24 MB in 16 s, 12 s after the send.
    assert!(
        lag < Duration::from_secs(4),
        "the last frame {lag:?} after the send ({sent:?})"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_player_starts_with_headers_then_a_keyframe() {
    let server = start_server("late", "").await;
    let mut p = publisher(&server, "live/late").await;
    send_stream(&mut p, 0, 2, 500).await;
    // Part of a third GOP: the cache holds the last keyframe and what followed.
    for i in 0..5u32 {
        p.send(MediaKind::Video, 2000 + i * 40, video(i == 0, 100 + i, 500))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let mut c = player(&server, "live/late").await;
    let mut kinds = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        while kinds.len() < 5 {
            if let Ok((k, ts, p)) = c.recv().await {
                kinds.push((k, ts, p));
            }
        }
    })
    .await;
    assert!(kinds.len() >= 4, "{} messages", kinds.len());
    assert_eq!(kinds[0].0, MediaKind::Data, "metadata first");
    assert_eq!(
        (kinds[1].0, kinds[1].2[1]),
        (MediaKind::Video, 0),
        "video sequence header"
    );
    assert_eq!(
        (kinds[2].0, kinds[2].2[1]),
        (MediaKind::Audio, 0),
        "audio sequence header"
    );
    let first_frame = &kinds[3];
    assert_eq!(first_frame.0, MediaKind::Video);
    assert_eq!(first_frame.2[0], 0x17, "first video frame is a keyframe");
    assert_eq!(frame_no(&first_frame.2), Some(100), "from the last GOP");
    assert_eq!(first_frame.1, 0, "time_jitter full starts the player at 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_publisher_gets_bad_name() {
    let server = start_server("busy", "").await;
    let _p = publisher(&server, "live/busy").await;
    let url = RtmpUrl::parse(&server.url("live/busy")).unwrap();
    let mut c = RtmpClient::connect(&url, T).await.unwrap();
    match c.publish(&url.stream, T).await {
        Err(ClientError::Rejected { code, .. }) => assert_eq!(code, "NetStream.Publish.BadName"),
        other => panic!("expected BadName, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_vhost_is_rejected_when_no_default_vhost() {
    let server = start_server(
        "vhost",
        "[vhost.\"__defaultVhost__\"]\nenabled = false\n[vhost.\"v.example\"]\n",
    )
    .await;
    // As SRS 6: connect is answered, the vhost is resolved when the stream (and a
    // `?vhost=` in its query) is known, and the publish is refused.
    let url = RtmpUrl::parse(&server.url("live/s")).unwrap();
    let mut c = RtmpClient::connect(&url, T)
        .await
        .expect("connect answered");
    assert!(
        matches!(
            c.publish(&url.stream, T).await,
            Err(ClientError::Rejected { .. })
        ),
        "127.0.0.1 resolves to a disabled default vhost"
    );
    let url = RtmpUrl::parse(&server.url("live?vhost=v.example/s")).unwrap();
    let mut c = RtmpClient::connect(&url, T)
        .await
        .expect("named vhost accepted");
    c.publish(&url.stream, T)
        .await
        .expect("publish on the named vhost");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_player_does_not_slow_others_and_memory_stays_bounded() {
    let server = start_server(
        "slow",
        "[vhost.\"__defaultVhost__\".play]\nqueue_length = 10\nmw_latency = 0\nmw_msgs = 0\n",
    )
    .await;
    // The publisher sends 40 s of media as fast as it can; the fast player may lag behind that
    // burst by up to `queue_length` of media (10 s, 12.5 MB here) before it would drop, so on
    // a loaded machine (CI, 2 cores) "every frame" is about correctness, not CPU speed. The
    // slow player's queue has the same bounds.
    // A player that plays and then never reads.
    let slow = player(&server, "live/slow").await;
    let mut fast = player(&server, "live/slow").await;
    let mut p = publisher(&server, "live/slow").await;
    let fast_task = tokio::spawn(async move {
        let v = recv_video(&mut fast, 25 * 40 + 1, Duration::from_secs(30)).await;
        (v, fast)
    });
    // 40 GOPs of 50 KB frames: 50 MB, far more than the socket buffers of the slow player.
    let started = std::time::Instant::now();
    let sent = send_stream(&mut p, 0, 40, 50_000).await;
    let publish_time = started.elapsed();
    let (got, _fast) = fast_task.await.unwrap();
    let numbers: Vec<u32> = got.iter().filter_map(|(_, p)| frame_no(p)).collect();
    assert_eq!(numbers.len(), sent as usize, "fast player got every frame");
    assert!(
        publish_time < Duration::from_secs(20),
        "publishing was not held back: {publish_time:?}"
    );
    let key = srsd::hub::StreamKey::new("__defaultVhost__", "live", "slow");
    let src = server.ctx.hub.find(&key).expect("source");
    assert_eq!(src.consumer_count(), 2);
    // The stream holds at most a queue's worth for its players: 10 s of 50 KB frames at
    // 25 fps (12.5 MB), far below the 50 MB sent. The player that never reads is past its
    // queue_length, so nothing is kept for it (it skips ahead when it reads again).
    let retained = src.retained_bytes();
    assert!(
        retained <= 11 * 25 * 50_000,
        "the stream's log is bounded by queue_length: {retained}"
    );
    drop(slow);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn timestamps_past_extended_and_through_the_2_pow_32_wrap_play_smoothly() {
    // `off` passes the publisher's timestamps through, so the player sees the wire wrap.
    let server = start_server(
        "wrap",
        "[vhost.\"__defaultVhost__\".play]\ntime_jitter = \"off\"\n",
    )
    .await;
    let mut c = player(&server, "live/wrap").await;
    let mut p = publisher(&server, "live/wrap").await;
    let start = u32::MAX - 2000; // wraps 2 s in
    let sent = send_stream(&mut p, start, 4, 70_000).await; // frames larger than one chunk
    let got = recv_video(&mut c, sent as usize + 1, Duration::from_secs(15)).await;
    let frames: Vec<(u32, u32)> = got
        .iter()
        .filter_map(|(ts, p)| frame_no(p).map(|n| (*ts, n)))
        .collect();
    assert_eq!(frames.len(), sent as usize, "every frame arrived");
    for w in frames.windows(2) {
        assert_eq!(
            w[1].0.wrapping_sub(w[0].0),
            40,
            "40 ms steps through the wrap: {w:?}"
        );
        assert_eq!(w[1].1, w[0].1 + 1);
    }
    assert!(frames.iter().any(|(ts, _)| *ts < 1000), "crossed the wrap");
    // And the payloads survived the extended-timestamp continuation chunks.
    assert!(got.iter().all(|(_, p)| p.len() == 70_000 || p[1] == 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_closes_only_that_connection() {
    let server = start_server("bad", "").await;
    let mut p = publisher(&server, "live/bad").await;
    let mut good = player(&server, "live/bad").await;
    send_stream(&mut p, 0, 1, 300).await;
    assert!(!recv_video(&mut good, 5, T).await.is_empty());
    // The publisher keeps publishing (40 ms frames) while bad clients come and go.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let pub_task = tokio::spawn(async move {
        let mut n = 1000u32;
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) {
            p.send(
                MediaKind::Video,
                1000 + (n - 1000) * 40,
                video(n % 25 == 0, n, 300),
            )
            .await
            .expect("publisher alive");
            n += 1;
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
        n
    });

    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("garbage handshake", vec![0x06; 1537]),
        ("truncated handshake", vec![0x03; 100]),
        ("random chunks after handshake", {
            let mut v = vec![0x03];
            v.extend_from_slice(&[0u8; 3072]);
            v.extend((0..5000u32).map(|i| (i.wrapping_mul(2654435761) >> 13) as u8));
            v
        }),
        ("compressed header on a new chunk stream", {
            let mut v = vec![0x03];
            v.extend_from_slice(&[0u8; 1536]);
            v.extend_from_slice(&[0u8; 1536]);
            v.extend_from_slice(&[0x44, 0, 0, 0, 0, 0, 1, 9, 1]);
            v
        }),
    ];
    let mut bad = Vec::new();
    for (what, bytes) in cases {
        let addr = server.addr;
        bad.push(tokio::spawn(async move {
            let mut s = TcpStream::connect(addr).await.unwrap();
            let _ = s.write_all(&bytes).await;
            // The server answers what it can and closes: reading ends within the bound.
            let mut buf = vec![0u8; 8192];
            let closed = tokio::time::timeout(Duration::from_secs(15), async {
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return true,
                        Ok(_) => {}
                    }
                }
            })
            .await;
            (what, closed)
        }));
    }
    for t in bad {
        let (what, closed) = t.await.unwrap();
        assert_eq!(closed, Ok(true), "{what}: server closed the connection");
    }
    // The good player kept playing all along.
    let v = recv_video(&mut good, 10_000, Duration::from_secs(1)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let last_sent = pub_task.await.unwrap();
    let last_got = v.iter().filter_map(|(_, p)| frame_no(p)).max().unwrap_or(0);
    assert!(
        last_got + 10 >= last_sent,
        "good player is current: got {last_got}, sent {last_sent}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_past_max_connections_are_closed_and_counted() {
    let server = start_server("maxconn", "max_connections = 2\n").await;
    let url = RtmpUrl::parse(&server.url("live/m")).unwrap();
    let _a = RtmpClient::connect(&url, T).await.unwrap();
    let _b = RtmpClient::connect(&url, T).await.unwrap();
    let mut s = TcpStream::connect(server.addr).await.unwrap();
    let mut buf = [0u8; 16];
    let r = tokio::time::timeout(Duration::from_secs(3), s.read(&mut buf)).await;
    assert!(
        matches!(r, Ok(Ok(0)) | Ok(Err(_))),
        "third connection closed at once: {r:?}"
    );
    assert_eq!(
        server
            .ctx
            .refused
            .load(std::sync::atomic::Ordering::Relaxed),
        1
    );
}

/// `atc` sends the publisher's own timestamps; `atc_auto` does when the metadata says
/// `bravo_atc`; otherwise `time_jitter = "full"` starts players at 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn atc_and_atc_auto_keep_the_publishers_timestamps() {
    let start = 100_000u32;
    let cases = [
        ("", false, false),
        ("atc = true\n", false, true),
        ("atc_auto = true\n", true, true),
        ("atc_auto = true\n", false, false),
    ];
    for (play, bravo, absolute) in cases {
        let server =
            start_server("atc", &format!("[vhost.\"__defaultVhost__\".play]\n{play}")).await;
        let mut p = publisher(&server, "live/atc").await;
        let mut props = vec![("width".to_string(), Amf0Value::Number(320.0))];
        if bravo {
            props.push(("bravo_atc".into(), Amf0Value::string("true")));
        }
        let mut meta = bytes::BytesMut::new();
        amf0::encode_all(
            &[Amf0Value::string("onMetaData"), Amf0Value::EcmaArray(props)],
            &mut meta,
        );
        p.send(MediaKind::Data, start, meta.freeze()).await.unwrap();
        p.send(MediaKind::Video, start, video_sh()).await.unwrap();
        for n in 0..10u32 {
            p.send(MediaKind::Video, start + n * 40, video(n == 0, n, 100))
                .await
                .unwrap();
        }
        // Joins after the server has read the metadata (atc_auto looks at it as the player
        // starts) and the GOP: the cache starts it on the keyframe at `start`.
        let key = srsd::hub::StreamKey::new("__defaultVhost__", "live", "atc");
        let read = || {
            server
                .ctx
                .hub
                .find(&key)
                .is_some_and(|s| s.metadata().is_some() && s.stats().video_frames >= 11)
        };
        assert!(wait_for(T, read).await, "the server read the stream");
        let mut c = player(&server, "live/atc").await;
        let got = recv_video(&mut c, 3, T).await;
        let first = got
            .iter()
            .find(|(_, pl)| frame_no(pl) == Some(0))
            .map(|(ts, _)| *ts);
        let want = if absolute { start } else { 0 };
        assert_eq!(first, Some(want), "{play:?} bravo_atc={bravo}: {got:?}");
    }
}

/// A late player's first media message arrives at once (within 50 ms over loopback) with
/// the default `mw_latency` of 350 ms: the GOP burst is never held back by the merge timer;
/// merging applies to the live frames after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn late_player_gets_first_media_within_50ms_at_mw_latency_350() {
    let server = start_server(
        "first-media",
        "[vhost.\"__defaultVhost__\".play]\nmw_latency = 350\n",
    )
    .await;
    let mut p = publisher(&server, "live/fm").await;
    // Headers and one GOP cached; the publisher then goes quiet, so only the cache can
    // answer the player.
    send_stream(&mut p, 0, 1, 2000).await;
    assert!(wait_publishing(&server, "live/fm", T).await);
    // Let the server take in what was sent (the cache is filled by then).
    tokio::time::sleep(Duration::from_millis(300)).await;
    for _ in 0..3 {
        let mut c = player(&server, "live/fm").await;
        let asked = std::time::Instant::now();
        let first = tokio::time::timeout(T, async {
            loop {
                match c.recv().await {
                    Ok((MediaKind::Video | MediaKind::Audio, _, _)) => break true,
                    Ok(_) => {}
                    Err(_) => break false,
                }
            }
        })
        .await;
        let took = asked.elapsed();
        assert_eq!(first, Ok(true), "media arrived");
        assert!(
            took < Duration::from_millis(50),
            "first media after {took:?} (mw_latency 350)"
        );
    }
}

/// Each way an RTMP connection ends is counted under its own reason (`ConnError`): a peer
/// that hangs up, a kick by the API, bytes that break the protocol, a clean close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_ends_are_counted_by_who_is_to_blame() {
    let server = start_server("closes", "").await;
    let count = |reason: &str| {
        server
            .ctx
            .closes
            .snapshot()
            .into_iter()
            .find(|(r, _)| *r == reason)
            .map_or(0, |(_, n)| n)
    };
    let wait_count = |reason: &'static str, want: u64| {
        let server = &server;
        async move {
            wait_for(Duration::from_secs(5), || {
                server
                    .ctx
                    .closes
                    .snapshot()
                    .into_iter()
                    .any(|(r, n)| r == reason && n == want)
            })
            .await
        }
    };
    // A player that hangs up: the peer's doing.
    let c = player(&server, "live/closes").await;
    drop(c);
    assert!(
        wait_count("peer", 1).await,
        "peer: {:?}",
        server.ctx.closes.snapshot()
    );
    // Kicked by the API.
    let _c = player(&server, "live/closes").await;
    let id = server
        .ctx
        .stats
        .clients()
        .iter()
        .map(|c| c.id)
        .max()
        .expect("a client");
    let api = server.api.expect("api");
    let mut s = TcpStream::connect(api).await.expect("api");
    s.write_all(
        format!("DELETE /api/v1/clients/{id} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await
    .expect("kick");
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer).await;
    assert!(
        wait_count("kicked", 1).await,
        "kicked: {:?}",
        server.ctx.closes.snapshot()
    );
    // A handshake answered with garbage chunks: the protocol's.
    let mut raw = TcpStream::connect(server.addr).await.expect("connect");
    let mut c0c1 = vec![3u8];
    c0c1.extend(std::iter::repeat_n(0u8, 1536));
    raw.write_all(&c0c1).await.expect("c0c1");
    let mut s0s1s2 = vec![0u8; 1 + 1536 * 2];
    raw.read_exact(&mut s0s1s2).await.expect("s0s1s2");
    raw.write_all(&s0s1s2[1..1537]).await.expect("c2");
    // A type-3 chunk on a chunk stream that never had a header.
    raw.write_all(&[0xC5; 16]).await.expect("garbage");
    assert!(
        wait_count("protocol", 1).await,
        "protocol: {:?}",
        server.ctx.closes.snapshot()
    );
    assert_eq!(count("io"), 0);
    let metrics = {
        let mut s = TcpStream::connect(api).await.expect("api");
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .expect("get");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        out
    };
    assert!(
        metrics.contains("srsd_connection_closes_total{reason=\"kicked\"} 1"),
        "{metrics}"
    );
}
