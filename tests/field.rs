//! Field reports: what OBS, ffmpeg/ffprobe and players that users run receive, as they would
//! use srsd. Each test is one kind of fault that was reported against a streaming server:
//! stream names a client cannot use, track facts that lie, notifies that end players, and
//! size limits that disagree between layers.

mod common;

use bytes::Bytes;
use common::*;
use srsd::client::{ClientError, MediaKind, RtmpClient, RtmpUrl};
use srsd::hub::StreamKey;
use srsd::protocol::amf0::{self, Amf0Value};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(5);
/// HTTP-FLV (and the .ts/.aac/.mp3 mounts beside it) on the default vhost.
const REMUX: &str = "[vhost.\"__defaultVhost__\".http_remux]\nenabled = true\n";

fn metadata(fields: &[(&str, f64)]) -> Bytes {
    let mut b = bytes::BytesMut::new();
    let fields = fields
        .iter()
        .map(|(k, v)| (k.to_string(), Amf0Value::Number(*v)))
        .collect();
    amf0::encode_all(
        &[
            Amf0Value::string("onMetaData"),
            Amf0Value::EcmaArray(fields),
        ],
        &mut b,
    );
    b.freeze()
}

const VIDEO_SH: &[u8] = &[
    0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E,
];
const AAC_SH: &[u8] = &[0xAF, 0, 0x12, 0x10];

fn video(key: bool, n: u32, size: usize) -> Bytes {
    let mut v = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    v.extend_from_slice(&n.to_be_bytes());
    v.resize(size.max(9), 0xAB);
    Bytes::from(v)
}

fn aac(n: u32) -> Bytes {
    let mut v = vec![0xAF, 1];
    v.extend_from_slice(&n.to_be_bytes());
    v.resize(64, 0xCD);
    Bytes::from(v)
}

/// Connects to `app` with the tcUrl a client would build for it, and publishes `name`.
async fn publish_raw(
    server: &TestServer,
    app: &str,
    name: &str,
) -> Result<RtmpClient, ClientError> {
    let url = RtmpUrl {
        host: "127.0.0.1".into(),
        port: server.addr.port(),
        app: app.into(),
        stream: name.into(),
        tc_url: format!("rtmp://127.0.0.1:{}/{app}", server.addr.port()),
    };
    let mut c = RtmpClient::connect(&url, T).await?;
    c.publish(name, T).await?;
    Ok(c)
}

async fn play_raw(server: &TestServer, app: &str, name: &str) -> Result<RtmpClient, ClientError> {
    let url = RtmpUrl {
        host: "127.0.0.1".into(),
        port: server.addr.port(),
        app: app.into(),
        stream: name.into(),
        tc_url: format!("rtmp://127.0.0.1:{}/{app}", server.addr.port()),
    };
    let mut c = RtmpClient::connect(&url, T).await?;
    c.play(name, T).await?;
    Ok(c)
}

/// Headers then `n` frames of 40 ms (a keyframe every 25), with AAC between.
async fn send_av(p: &mut RtmpClient, start: u32, n: u32) {
    let meta = metadata(&[("videocodecid", 7.0), ("audiocodecid", 10.0)]);
    p.send(MediaKind::Data, start, meta).await.unwrap();
    p.send(MediaKind::Video, start, Bytes::from_static(VIDEO_SH))
        .await
        .unwrap();
    p.send(MediaKind::Audio, start, Bytes::from_static(AAC_SH))
        .await
        .unwrap();
    for i in 0..n {
        let ts = start + i * 40;
        p.send(MediaKind::Video, ts, video(i % 25 == 0, i, 200))
            .await
            .unwrap();
        p.send(MediaKind::Audio, ts + 20, aac(i)).await.unwrap();
    }
}

fn key(app: &str, stream: &str) -> StreamKey {
    StreamKey::new("__defaultVhost__", app, stream)
}

/// OBS with the whole URL in "Server" and an empty "Stream key" connects to app
/// `live/livestream` and publishes `""`: that is stream `livestream` of app `live` (SRS 5+),
/// which `/live/livestream` plays. The same for the other URL shapes OBS users type.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obs_whole_url_in_server_with_an_empty_key_publishes_the_last_level() {
    let server = start_server("field-obs", "").await;
    let cases = [
        ("live/livestream", "", "live", "livestream"),
        ("live/a/b/cam1", "", "live/a/b", "cam1"),
        ("live/withtoken?token=abc", "", "live", "withtoken"),
        ("live?secret=x/fmle", "", "live", "fmle"),
    ];
    for (app, name, want_app, want_stream) in cases {
        let mut p = publish_raw(&server, app, name)
            .await
            .unwrap_or_else(|e| panic!("{app} {name:?}: {e}"));
        assert!(
            wait_publishing(&server, &format!("{want_app}/{want_stream}"), T).await,
            "{app:?} + {name:?} publishes {want_app}/{want_stream}"
        );
        let mut c = play_raw(&server, want_app, want_stream).await.unwrap();
        send_av(&mut p, 0, 30).await;
        let got = recv_video(&mut c, 30, T).await;
        assert_eq!(got.len(), 30, "{want_app}/{want_stream} plays");
        // The app is never registered with the stream folded into it.
        assert!(server.ctx.hub.find(&key(app, "")).is_none());
    }
}

/// A name that is still empty or unusable after that is refused (Publish.BadName,
/// Play.StreamNotFound) and leaves nothing behind: no source, no HLS file.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn empty_or_unsafe_names_are_refused_and_leave_nothing_behind() {
    let server = start_server(
        "field-badname",
        "[vhost.\"__defaultVhost__\".hls]\nenabled = true\n",
    )
    .await;
    for (app, name) in [
        ("live", ""),
        ("live", "?token=1"),
        ("live", " / "),
        ("live", ".."),
        ("live", "a/../b"),
        ("live/..", ""),
    ] {
        // An unsafe app is refused at connect already; a bad name at publish or play.
        let connect_refused = |code: &str| code == "NetConnection.Connect.Rejected";
        match publish_raw(&server, app, name).await {
            Err(ClientError::Rejected { code, .. }) => assert!(
                code == "NetStream.Publish.BadName" || connect_refused(&code),
                "publish {app:?} {name:?}: {code}"
            ),
            Err(e) => panic!("publish {app:?} {name:?}: {e}"),
            Ok(_) => panic!("publish {app:?} {name:?} was accepted"),
        }
        match play_raw(&server, app, name).await {
            Err(ClientError::Rejected { code, .. }) => assert!(
                code == "NetStream.Play.StreamNotFound" || connect_refused(&code),
                "play {app:?} {name:?}: {code}"
            ),
            Err(e) => panic!("play {app:?} {name:?}: {e}"),
            Ok(_) => panic!("play {app:?} {name:?} was accepted"),
        }
    }
    assert!(server.ctx.hub.list().is_empty(), "no source was made");
    let files: Vec<_> = walk(&server.dir)
        .into_iter()
        .filter(|p| {
            p.extension()
                .is_some_and(|e| e == "m3u8" || e == "ts" || e == "tmp")
        })
        .collect();
    assert!(files.is_empty(), "no HLS file written: {files:?}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out
}

/// `rtmp://HOST/live/STREAM?vhost=X` (the vhost in the stream's query) publishes and plays on
/// vhost X, as the tcUrl form `rtmp://HOST/live?vhost=X/STREAM` does; both reach one source.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_vhost_in_the_streams_query_is_honoured() {
    let server = start_server("field-vhost", "[vhost.\"v.example\"]\n").await;
    let mut p = publish_raw(&server, "live", "s?vhost=v.example")
        .await
        .expect("publish with the vhost in the stream's query");
    let vkey = StreamKey::new("v.example", "live", "s");
    assert!(
        wait_for(T, || server
            .ctx
            .hub
            .find(&vkey)
            .is_some_and(|s| s.is_publishing()))
        .await,
        "published on v.example"
    );
    assert!(server.ctx.hub.find(&key("live", "s")).is_none());
    let mut by_query = play_raw(&server, "live", "s?vhost=v.example")
        .await
        .unwrap();
    let mut by_tc_url = play_raw(&server, "live?vhost=v.example", "s")
        .await
        .unwrap();
    send_av(&mut p, 0, 30).await;
    assert_eq!(recv_video(&mut by_query, 30, T).await.len(), 30);
    assert_eq!(recv_video(&mut by_tc_url, 30, T).await.len(), 30);
}

/// A publisher that leaves and comes back: players stay connected, get no
/// UnpublishNotify (ffmpeg, ffplay, VLC and rtmpdump end on it), and see one continuous,
/// increasing timeline. `play.publish_notify = true` brings the notifies back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn players_ride_over_a_republish_without_notifies_by_default() {
    for notify in [false, true] {
        let server = start_server(
            "field-republish",
            &format!(
                "[vhost.\"__defaultVhost__\".play]\nmw_latency = 0\nmw_msgs = 0\npublish_notify = {notify}\n"
            ),
        )
        .await;
        let mut c = play_raw(&server, "live", "r").await.unwrap();
        let mut p = publish_raw(&server, "live", "r").await.unwrap();
        send_av(&mut p, 5_000, 25).await;
        let first = recv_video(&mut c, 25, T).await;
        assert_eq!(first.len(), 25);
        p.close().await;
        assert!(
            wait_for(T, || server
                .ctx
                .hub
                .find(&key("live", "r"))
                .is_some_and(|s| !s.is_publishing()))
            .await
        );
        let mut p = publish_raw(&server, "live", "r").await.unwrap();
        // The new encoder starts its clock again, lower than before.
        send_av(&mut p, 0, 25).await;
        let second = recv_video(&mut c, 25, T).await;
        assert_eq!(
            second.len(),
            25,
            "the player is still there (notify={notify})"
        );
        let ts: Vec<u32> = first.iter().chain(&second).map(|(t, _)| *t).collect();
        assert!(
            ts.windows(2).all(|w| w[0] <= w[1]),
            "one increasing timeline: {ts:?}"
        );
        assert_eq!(ts[0], 0, "a waiting player starts at 0");
        let saw_notify = c.last_status() == Some("NetStream.Play.PublishNotify");
        assert_eq!(saw_notify, notify, "notifies only when asked for");
    }
}

/// A raw HTTP GET: the status line's code and up to `want` body bytes (the head removed).
async fn http_get(addr: std::net::SocketAddr, path: &str, want: usize) -> (u16, Vec<u8>) {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    let mut chunk = vec![0u8; 64 * 1024];
    let deadline = Instant::now() + T;
    let mut body_at = None;
    while Instant::now() < deadline {
        let left = deadline - Instant::now();
        match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => break,
        }
        if body_at.is_none() {
            body_at = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
        }
        if body_at.is_some_and(|i| buf.len() - i >= want) {
            break;
        }
    }
    let status = String::from_utf8_lossy(&buf)
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let body = body_at.map(|i| buf[i..].to_vec()).unwrap_or_default();
    (status, dechunk(&body))
}

/// The payload of a chunked body (as far as it goes).
fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let Ok(len) = usize::from_str_radix(String::from_utf8_lossy(&b[..i]).trim(), 16) else {
            break;
        };
        let start = i + 2;
        let end = (start + len).min(b.len());
        out.extend_from_slice(&b[start..end]);
        if end < start + len || len == 0 {
            break;
        }
        b = &b[(end + 2).min(b.len())..];
    }
    out
}

/// The FLV header's flags say which tracks the stream really has (SRS 5): ffprobe probes a
/// video-only stream flagged audio+video for 30 s, waiting for audio that never comes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_flv_header_flags_are_the_streams_tracks() {
    let server = start_server("field-flvflags", REMUX).await;
    let http = server.http.unwrap();
    // (stream, send video, send audio, expected flags)
    for (name, v, a, flags) in [
        ("av", true, true, 0x05u8),
        ("vonly", true, false, 0x01),
        ("aonly", false, true, 0x04),
    ] {
        let mut p = publish_raw(&server, "live", name).await.unwrap();
        let mut fields = Vec::new();
        if v {
            fields.push(("videocodecid", 7.0));
        }
        if a {
            fields.push(("audiocodecid", 10.0));
        }
        p.send(MediaKind::Data, 0, metadata(&fields)).await.unwrap();
        if v {
            p.send(MediaKind::Video, 0, Bytes::from_static(VIDEO_SH))
                .await
                .unwrap();
        }
        if a {
            p.send(MediaKind::Audio, 0, Bytes::from_static(AAC_SH))
                .await
                .unwrap();
        }
        for i in 0..30 {
            if v {
                p.send(MediaKind::Video, i * 40, video(i % 25 == 0, i, 100))
                    .await
                    .unwrap();
            }
            if a {
                p.send(MediaKind::Audio, i * 40, aac(i)).await.unwrap();
            }
        }
        let (status, body) = http_get(http, &format!("/live/{name}.flv"), 13).await;
        assert_eq!(status, 200, "{name}");
        assert!(body.len() >= 13 && &body[..3] == b"FLV", "{name}: {body:?}");
        assert_eq!(body[4], flags, "{name}: FLV header flags");
    }
    // A viewer waiting for the publisher gets the flags of what then comes.
    let waiting = tokio::spawn(http_get(http, "/live/later.flv", 13));
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut p = publish_raw(&server, "live", "later").await.unwrap();
    p.send(MediaKind::Data, 0, metadata(&[("videocodecid", 7.0)]))
        .await
        .unwrap();
    p.send(MediaKind::Video, 0, Bytes::from_static(VIDEO_SH))
        .await
        .unwrap();
    for i in 0..10 {
        p.send(MediaKind::Video, i * 40, video(i == 0, i, 100))
            .await
            .unwrap();
    }
    let (status, body) = waiting.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(body.get(4), Some(&0x01), "video-only, told once it started");
}

/// An audio mount of a stream without that track answers 404 at once, instead of 200 and
/// then never a byte.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audio_mounts_of_a_stream_without_that_audio_are_refused_at_once() {
    let server = start_server("field-audiomount", REMUX).await;
    let http = server.http.unwrap();
    let mut p = publish_raw(&server, "live", "aaconly").await.unwrap();
    p.send(MediaKind::Data, 0, metadata(&[("audiocodecid", 10.0)]))
        .await
        .unwrap();
    p.send(MediaKind::Audio, 0, Bytes::from_static(AAC_SH))
        .await
        .unwrap();
    for i in 0..20 {
        p.send(MediaKind::Audio, i * 23, aac(i)).await.unwrap();
    }
    let mut v = publish_raw(&server, "live", "videoonly").await.unwrap();
    v.send(MediaKind::Data, 0, metadata(&[("videocodecid", 7.0)]))
        .await
        .unwrap();
    v.send(MediaKind::Video, 0, Bytes::from_static(VIDEO_SH))
        .await
        .unwrap();
    v.send(MediaKind::Video, 0, video(true, 0, 100))
        .await
        .unwrap();
    // Sent is not yet seen: wait until the server has read both streams' first frames
    // (before that, unknown tracks get the benefit of the doubt and a mount answers 200).
    let tracks = |stream: &str| {
        server
            .ctx
            .hub
            .find(&StreamKey::new("__defaultVhost__", "live", stream))
            .map(|s| s.tracks())
    };
    assert!(
        wait_for(T, || tracks("aaconly").is_some_and(|t| t.audio.is_some())
            && tracks("videoonly").is_some_and(|t| t.video))
        .await,
        "the server saw both streams' first frames"
    );
    for (path, want) in [
        ("/live/aaconly.mp3", 404),
        ("/live/videoonly.aac", 404),
        ("/live/videoonly.mp3", 404),
    ] {
        let t0 = Instant::now();
        let (status, _) = http_get(http, path, 1).await;
        assert_eq!(status, want, "{path}");
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "{path} answered at once"
        );
    }
    // The mount that matches streams ADTS.
    let (status, body) = http_get(http, "/live/aaconly.aac", 7).await;
    assert_eq!(status, 200);
    assert!(
        body.len() >= 2 && body[0] == 0xFF && body[1] & 0xF0 == 0xF0,
        "ADTS sync"
    );
}

/// A keyframe larger than a player queue's byte cap (a 4K encoder on a scene cut sends
/// 9 MB) is accepted by the RTMP layer, so it reaches every RTMP and HTTP-FLV player whole.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_9_mb_keyframe_reaches_rtmp_and_http_flv_players() {
    const BIG: usize = 9 * 1024 * 1024;
    let server = start_server("field-bigframe", REMUX).await;
    let mut p = publish_raw(&server, "live", "big").await.unwrap();
    let mut c = play_raw(&server, "live", "big").await.unwrap();
    let http = server.http.unwrap();
    let flv = tokio::spawn(http_get(http, "/live/big.flv", BIG + 1024));
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.send(MediaKind::Data, 0, metadata(&[("videocodecid", 7.0)]))
        .await
        .unwrap();
    p.send(MediaKind::Video, 0, Bytes::from_static(VIDEO_SH))
        .await
        .unwrap();
    p.send(MediaKind::Video, 0, video(true, 1, BIG))
        .await
        .unwrap();
    for i in 1..10 {
        p.send(MediaKind::Video, i * 40, video(false, i + 1, 1000))
            .await
            .unwrap();
    }
    let got = recv_video(&mut c, 11, Duration::from_secs(20)).await;
    let sizes: Vec<usize> = got.iter().map(|(_, b)| b.len()).collect();
    assert!(
        sizes.contains(&BIG),
        "the RTMP player got the 9 MB keyframe: {sizes:?}"
    );
    let (status, body) = flv.await.unwrap();
    assert_eq!(status, 200);
    assert!(
        body.len() >= BIG,
        "the HTTP-FLV viewer got it too ({} bytes)",
        body.len()
    );
}

/// ffprobe of an RTMP play lists exactly the publisher's tracks: no "Data: none" stream
/// (the onStatus(NetStream.Data.Start) SRS 6 dropped) and no "Subtitle: text" (metadata
/// stamped other than 0), for a player that waited for the publisher and for a late one;
/// over HTTP-FLV a video-only stream is probed quickly as video only.
#[cfg_attr(
    any(srsd_missing = "ffmpeg", srsd_missing = "ffprobe"),
    ignore = "ffmpeg or ffprobe not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffprobe_lists_exactly_the_published_tracks() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let server = start_server("field-ffprobe", REMUX).await;
    let url = server.url("live/probe");
    // A player that waits for the publisher.
    let early = {
        let url = url.clone();
        std::thread::spawn(move || probe_streams(&url, &["-rw_timeout", "30000000"]))
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let _pub = ffmpeg_publish(&url, 12);
    assert!(wait_publishing(&server, "live/probe", Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let late = probe_streams(&url, &[]);
    let early = early.join().unwrap();
    let want = vec![
        ("video".to_string(), "h264".to_string()),
        ("audio".to_string(), "aac".to_string()),
    ];
    for (who, got) in [("waiting player", early), ("late player", late)] {
        let mut got = got;
        got.sort();
        let mut want = want.clone();
        want.sort();
        assert_eq!(got, want, "{who}: ffprobe streams");
    }

    // Video only (ffmpeg -an) over HTTP-FLV: probed as video only, and quickly.
    let vurl = server.url("live/vonly");
    let _vpub = Proc(
        Command::new("ffmpeg")
            .stderr(child_log("ffmpeg"))
            .args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
            .args(["-t", "15", "-c:v", "libx264", "-preset", "ultrafast"])
            .args(["-g", "25", "-pix_fmt", "yuv420p", "-an", "-f", "flv", &vurl])
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn ffmpeg"),
    );
    assert!(wait_publishing(&server, "live/vonly", Duration::from_secs(10)).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let flv = format!("http://{}/live/vonly.flv", server.http.unwrap());
    let t0 = Instant::now();
    let got = probe_streams(&flv, &[]);
    assert_eq!(got, vec![("video".to_string(), "h264".to_string())]);
    assert!(
        t0.elapsed() < Duration::from_secs(10),
        "probed in {:?}",
        t0.elapsed()
    );
}

/// ffmpeg as an RTMP player keeps reading across a republish (it ends on UnpublishNotify,
/// which srsd no longer sends by default): asked for 5 s of a stream published twice for
/// 3 s, it gets them and exits by itself.
#[cfg_attr(
    any(srsd_missing = "ffmpeg", srsd_missing = "ffprobe"),
    ignore = "ffmpeg or ffprobe not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_keeps_playing_across_a_republish() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let server = start_server("field-ffrepublish", "").await;
    let url = server.url("live/again");
    let out = server.dir.join("played.flv");
    let log = server.dir.join("player.log");
    let mut player = Proc(
        Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "info", "-nostdin"])
            .args(["-rw_timeout", "20000000", "-i", &url])
            .args(["-t", "5", "-c", "copy", "-f", "flv", "-y"])
            .arg(&out)
            .stdin(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("spawn ffmpeg player"),
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    for round in 0..2 {
        let mut p = ffmpeg_publish(&url, 3);
        assert!(
            wait_exit(&mut p, Duration::from_secs(20)).await,
            "publish {round}"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert!(
        wait_exit(&mut player, Duration::from_secs(10)).await,
        "the ffmpeg player recorded 5 s across the republish and ended by itself"
    );
    // The second publisher's metadata does not show up as a new stream.
    let said = std::fs::read_to_string(&log).unwrap_or_default();
    assert!(
        !said.contains("New subtitle stream") && !said.contains("New data stream"),
        "ffmpeg saw a stream that is not there: {said}"
    );
    let probe = ffprobe(out.to_str().unwrap());
    assert_eq!(probe.video_codec, "h264");
    assert!(
        probe.video_frames >= 4 * 25,
        "both publishes recorded: {} video frames",
        probe.video_frames
    );
}
