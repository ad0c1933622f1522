//! Cluster: srsd edges (pull on play, push on publish, failover, token traverse) and forward,
//! against srsd origins and against nginx-rtmp (Debian's libnginx-mod-rtmp). All on
//! 127.0.0.1, every wait bounded.

mod common;

use bytes::Bytes;
use common::*;
use srsd::app::cluster::edge::{Direction, LinkState, PULL_GRACE};
use srsd::app::Server;
use srsd::client::{MediaKind, RtmpClient, RtmpUrl};
use srsd::config::Config;
use srsd::hub::StreamKey;
use srsd::protocol::amf0::{self, Amf0Value};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

const T: Duration = Duration::from_secs(5);

fn key(stream: &str) -> StreamKey {
    StreamKey::new("__defaultVhost__", "live", stream)
}

fn edge_toml(origins: &[String], extra: &str) -> String {
    let list: Vec<String> = origins.iter().map(|o| format!("\"{o}\"")).collect();
    format!(
        "[vhost.\"__defaultVhost__\".cluster]\nmode = \"remote\"\norigin = [{}]\n{extra}\n",
        list.join(", ")
    )
}

fn origin_of(s: &TestServer) -> String {
    format!("127.0.0.1:{}", s.addr.port())
}

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

fn video(key: bool, n: u32) -> Bytes {
    let mut v = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
    v.extend_from_slice(&n.to_be_bytes());
    v.resize(600, 0xAB);
    Bytes::from(v)
}

/// Aborts the task when dropped.
struct Task(tokio::task::JoinHandle<()>);

impl Drop for Task {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Publishes a synthetic live stream to `url` in real time (25 fps, a keyframe a second,
/// audio between), timestamps starting at `start`, until the connection fails.
fn publish_live(url: String, start: u32) -> Task {
    Task(tokio::spawn(async move {
        let u = RtmpUrl::parse(&url).expect("url");
        let Ok(mut c) = RtmpClient::connect(&u, T).await else {
            return;
        };
        if c.publish(&u.stream, T).await.is_err() {
            return;
        }
        let vsh = Bytes::from_static(&[
            0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E,
        ]);
        let ash = Bytes::from_static(&[0xAF, 0, 0x12, 0x10]);
        for (k, p) in [
            (MediaKind::Data, metadata()),
            (MediaKind::Video, vsh),
            (MediaKind::Audio, ash),
        ] {
            if c.send(k, start, p).await.is_err() {
                return;
            }
        }
        let t0 = tokio::time::Instant::now();
        for n in 0u32.. {
            let ts = start.wrapping_add(n * 40);
            if c.send(MediaKind::Video, ts, video(n % 25 == 0, n))
                .await
                .is_err()
            {
                return;
            }
            let a = Bytes::from(vec![0xAF, 1, 0x21, 0x10, 0x04, 0x60, 0x8C, 0x1C]);
            if c.send(MediaKind::Audio, ts.wrapping_add(20), a)
                .await
                .is_err()
            {
                return;
            }
            tokio::time::sleep_until(t0 + Duration::from_millis(40) * (n + 1)).await;
        }
    }))
}

async fn player(url: &str) -> RtmpClient {
    let u = RtmpUrl::parse(url).expect("url");
    let mut c = RtmpClient::connect(&u, T).await.expect("connect");
    c.play(&u.stream, T).await.expect("play");
    c
}

/// Receives until `want` video frames (sequence headers excluded) arrived or `limit` passed.
/// Coded video frames only (AVC packet type 1), not sequence headers.
async fn recv_video(c: &mut RtmpClient, want: usize, limit: Duration) -> Vec<(u32, Bytes)> {
    recv_video_where(c, want, limit, |p| p.len() > 1 && p[1] == 1).await
}

fn consumers(s: &TestServer, stream: &str) -> usize {
    s.ctx
        .hub
        .find(&key(stream))
        .map_or(0, |src| src.consumer_count())
}

fn publishing(s: &TestServer, stream: &str) -> bool {
    s.ctx
        .hub
        .find(&key(stream))
        .is_some_and(|src| src.is_publishing())
}

#[cfg_attr(srsd_missing = "ffmpeg", ignore = "ffmpeg not installed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_edge_players_share_one_pull_that_stops_after_the_last_leaves() {
    if !have("ffmpeg") {
        return;
    }
    let origin = start_server("cl-pull-origin", "").await;
    let edge = start_server("cl-pull-edge", &edge_toml(&[origin_of(&origin)], "")).await;
    let _ff = ffmpeg_publish(&origin.url("live/s"), 40);
    assert!(
        wait_for(Duration::from_secs(15), || publishing(&origin, "s")).await,
        "ffmpeg publishes to the origin"
    );
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let mut c = player(&edge.url("live/s")).await;
        tasks.push(tokio::spawn(async move {
            let n = recv_video(&mut c, 25, Duration::from_secs(15)).await.len();
            (c, n)
        }));
    }
    let mut players = Vec::new();
    for t in tasks {
        let (c, n) = t.await.unwrap();
        assert_eq!(n, 25, "every edge player gets frames");
        players.push(c);
    }
    assert_eq!(
        consumers(&origin, "s"),
        1,
        "the origin sees exactly one player: the edge"
    );
    let playing = origin
        .ctx
        .stats
        .clients()
        .iter()
        .filter(|c| c.info().kind == Some(srsd::app::runtime::stats::ClientType::RtmpPlay))
        .count();
    assert_eq!(playing, 1, "one rtmp-play client on the origin");
    let info = edge.ctx.edges.get(&key("s")).expect("edge state");
    assert_eq!(info.direction, Direction::Pull);
    assert_eq!(info.state, LinkState::Active);
    assert!(info.upstream.contains(&origin_of(&origin)), "{info:?}");
    // The API shows the same: the stream's upstream and state.
    let api = edge.api.expect("edge API");
    let mut conn = tokio::net::TcpStream::connect(api).await.unwrap();
    tokio::io::AsyncWriteExt::write_all(
        &mut conn,
        b"GET /api/v1/streams HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    let mut body = Vec::new();
    let _ = tokio::time::timeout(
        Duration::from_secs(5),
        tokio::io::AsyncReadExt::read_to_end(&mut conn, &mut body),
    )
    .await;
    let body = String::from_utf8_lossy(&body);
    assert!(
        body.contains("\"edge\":{\"direction\":\"pull\",\"upstream\":\"rtmp://")
            && body.contains("\"state\":\"active\""),
        "{body}"
    );

    let left = Instant::now();
    drop(players);
    assert!(
        wait_for(PULL_GRACE + Duration::from_secs(8), || consumers(
            &origin, "s"
        ) == 0)
        .await,
        "the pull stops after the last player left"
    );
    println!("pull stopped {:?} after the players left", left.elapsed());
    assert!(left.elapsed() >= PULL_GRACE, "not before the grace period");
    assert!(edge.ctx.edges.get(&key("s")).is_none());
}

/// Reads an HTTP-FLV response until `want` video tags arrived (or `limit`); returns the
/// status line and the video tag count.
async fn http_flv_video_tags(
    addr: SocketAddr,
    path: &str,
    want: usize,
    limit: Duration,
) -> (String, usize) {
    let mut conn = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connect http");
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n");
    conn.write_all(req.as_bytes()).await.expect("send request");
    let mut buf = Vec::new();
    let mut videos = 0;
    let _ = tokio::time::timeout(limit, async {
        let mut chunk = [0u8; 16384];
        while let Ok(n) = conn.read(&mut chunk).await {
            if n == 0 {
                break;
            }
            buf.extend_from_slice(&chunk[..n]);
            // Counting "video tag" markers in a chunked body is approximate; a tag type byte
            // 9 followed by the AVC keyframe/inter byte and packet type 1 is distinctive.
            videos = buf
                .windows(13)
                .filter(|w| w[0] == 9 && (w[11] == 0x17 || w[11] == 0x27) && w[12] == 1)
                .count();
            if videos >= want {
                break;
            }
        }
    })
    .await;
    let head = String::from_utf8_lossy(&buf[..buf.len().min(200)]).to_string();
    let status = head.lines().next().unwrap_or("").to_string();
    assert!(
        buf.windows(4).any(|w| w == b"FLV\x01"),
        "an FLV header in the body: {head:?}"
    );
    (status, videos)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_http_flv_viewer_on_the_edge_starts_the_pull() {
    let origin = start_server("cl-flv-origin", "").await;
    let edge = start_server(
        "cl-flv-edge",
        &edge_toml(
            &[origin_of(&origin)],
            "[vhost.\"__defaultVhost__\".http_remux]\nenabled = true\n",
        ),
    )
    .await;
    let _pub = publish_live(origin.url("live/hf"), 0);
    assert!(wait_for(T, || publishing(&origin, "hf")).await);
    let http = edge.http.expect("edge HTTP server");
    let (status, videos) =
        http_flv_video_tags(http, "/live/hf.flv", 30, Duration::from_secs(10)).await;
    assert!(status.contains("200"), "{status}");
    assert!(
        videos >= 30,
        "the HTTP viewer got {videos} video frames through the edge"
    );
    // The pull outlives the viewer by the grace period, then stops.
    assert_eq!(
        consumers(&origin, "hf"),
        1,
        "the edge pulls from the origin"
    );
    let info = edge.ctx.edges.get(&key("hf")).expect("edge state");
    assert_eq!(info.direction, Direction::Pull);
    assert!(
        wait_for(PULL_GRACE + Duration::from_secs(8), || consumers(
            &origin, "hf"
        ) == 0)
        .await,
        "the pull stops after the HTTP viewer left"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn players_survive_an_origin_failover_with_monotonic_timestamps() {
    // No merged writes anywhere on the way (origins to the edge's pull, edge to its players):
    // a 350 ms batch would look like a gap as long as a fast failover (about 200 ms), and
    // the test must find the failover's gap. mw_msgs = 0: a write per message, not per nine
    // (SRS's merged-write message count, 8 by default).
    let no_merge = "[vhost.\"__defaultVhost__\".play]\nmw_latency = 0\nmw_msgs = 0\n";
    let o1 = start_server("cl-fo-1", no_merge).await;
    let o2 = start_server("cl-fo-2", no_merge).await;
    let _p1 = publish_live(o1.url("live/fo"), 0);
    let _p2 = publish_live(o2.url("live/fo"), 3_000_000);
    assert!(wait_for(T, || publishing(&o1, "fo") && publishing(&o2, "fo")).await);
    let edge = start_server(
        "cl-fo-edge",
        &edge_toml(&[origin_of(&o1), origin_of(&o2)], no_merge),
    )
    .await;
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..3 {
        let mut c = player(&edge.url("live/fo")).await;
        tasks.push(tokio::spawn(async move {
            let mut seen: Vec<(Instant, u32, bool)> = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(12), async {
                loop {
                    match c.recv().await {
                        Ok((MediaKind::Video, ts, p)) if p.len() > 1 && p[1] == 1 => {
                            seen.push((Instant::now(), ts, p[0] == 0x17))
                        }
                        Ok(_) => {}
                        Err(_) => break,
                    }
                }
            })
            .await;
            seen
        }));
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(
        consumers(&o1, "fo"),
        1,
        "the edge pulls from the first origin"
    );
    let killed = Instant::now();
    drop(o1);
    for t in tasks {
        let seen = t.await.unwrap();
        assert!(
            seen.first().is_some_and(|(at, _, _)| *at < killed),
            "frames before"
        );
        assert!(
            seen.last()
                .is_some_and(|(at, _, _)| *at > killed + Duration::from_secs(4)),
            "frames after the failover"
        );
        let (gap, resumed) = seen
            .windows(2)
            .filter(|w| w[1].0 > killed)
            .map(|w| (w[1].0 - w[0].0, w))
            .max_by_key(|(gap, _)| *gap)
            .unwrap();
        println!(
            "failover gap {gap:?}: ts {} -> {} (keyframe {}); {} video frames over {:?}",
            resumed[0].1,
            resumed[1].1,
            resumed[1].2,
            seen.len(),
            start.elapsed()
        );
        assert!(resumed[1].2, "players resume on a keyframe");
        assert!(gap < Duration::from_secs(10), "gap {gap:?}");
        for w in seen.windows(2) {
            assert!(
                w[1].1 >= w[0].1,
                "timestamps monotonic: {} then {}",
                w[0].1,
                w[1].1
            );
        }
    }
    assert_eq!(
        consumers(&o2, "fo"),
        1,
        "the edge pulls from the second origin"
    );
    let info = edge.ctx.edges.get(&key("fo")).expect("edge state");
    assert!(info.upstream.contains(&origin_of(&o2)), "{info:?}");
}

fn probe_codecs(url: &str) -> String {
    let out = Command::new("timeout")
        .args(["20", "ffprobe", "-v", "error", "-show_entries"])
        .args([
            "stream=codec_name",
            "-of",
            "default=noprint_wrappers=1",
            url,
        ])
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout).to_string()
}

#[cfg_attr(
    any(srsd_missing = "ffmpeg", srsd_missing = "ffprobe"),
    ignore = "ffmpeg or ffprobe not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ffmpeg_publishes_through_the_edge_to_the_origin() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let origin = start_server("cl-push-origin", "").await;
    let edge = start_server("cl-push-edge", &edge_toml(&[origin_of(&origin)], "")).await;
    let _ff = ffmpeg_publish(&edge.url("live/up"), 30);
    assert!(
        wait_for(Duration::from_secs(15), || publishing(&origin, "up")).await,
        "the edge publishes to the origin"
    );
    let info = edge.ctx.edges.get(&key("up")).expect("edge state");
    assert_eq!(info.direction, Direction::Push);
    assert_eq!(info.state, LinkState::Active);
    let url = origin.url("live/up");
    let codecs = tokio::task::spawn_blocking(move || probe_codecs(&url))
        .await
        .unwrap();
    assert!(codecs.contains("codec_name=h264"), "{codecs}");
    assert!(codecs.contains("codec_name=aac"), "{codecs}");
    // The upstream publish ends with the local one.
    drop(_ff);
    assert!(wait_for(Duration::from_secs(10), || !publishing(&origin, "up")).await);
    assert!(wait_for(T, || edge.ctx.edges.get(&key("up")).is_none()).await);
}

/// The origin's hooks see the edge client's token exactly once, `?token=good`, in the token
/// traverse and in the pull's and the push's own calls, whichever way the client wrote it;
/// a bad token is refused at the edge.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn token_traverse_lets_the_origin_judge_edge_clients() {
    let (hook, seen) = token_param_hook().await;
    let origin = start_server(
        "cl-token-origin",
        &format!(
            "[vhost.\"__defaultVhost__\".http_hooks]\nenabled = true\non_connect = [\"{hook}\"]\n\
             on_play = [\"{hook}\"]\non_publish = [\"{hook}\"]\n"
        ),
    )
    .await;
    let _p = publish_live(origin.url("live/tok?token=good"), 0);
    assert!(wait_for(T, || publishing(&origin, "tok")).await);
    let edge = start_server(
        "cl-token-edge",
        &edge_toml(&[origin_of(&origin)], "token_traverse = true"),
    )
    .await;
    seen.lock().unwrap().clear();

    // A bad token: the edge accepts connect (as SRS does), the origin refuses the play.
    let bad = RtmpUrl::parse(&edge.url("live/tok?token=bad")).unwrap();
    let mut c = RtmpClient::connect(&bad, T).await.expect("connect");
    let r = c.play(&bad.stream, T).await;
    assert!(r.is_err(), "a bad token is refused by the edge");
    assert!(consumers(&edge, "tok") == 0 || edge.ctx.hub.find(&key("tok")).is_none());

    // A good token, on the stream name (ffmpeg, OBS, SRS edges) and on the app.
    for url in ["live/tok?token=good", "live?token=good/tok"] {
        let mut c = player(&edge.url(url)).await;
        let got = recv_video(&mut c, 10, Duration::from_secs(10)).await;
        assert_eq!(got.len(), 10, "{url}: a good token plays through the edge");
    }
    // A publisher on the edge: pushed to the origin with its token.
    let _up = publish_live(edge.url("live/up?token=good"), 0);
    assert!(
        wait_for(Duration::from_secs(10), || publishing(&origin, "up")).await,
        "the edge push is allowed by the origin"
    );

    let bodies = seen.lock().unwrap().clone();
    let calls: Vec<(String, String, String)> = bodies
        .iter()
        .map(|b| {
            let s = |k: &str| b[k].as_str().unwrap_or("<missing>").to_string();
            (s("action"), s("stream"), s("param"))
        })
        .collect();
    let count = |action: &str, stream: &str| {
        calls
            .iter()
            .filter(|(a, s, p)| a == action && s == stream && p == "?token=good")
            .count()
    };
    // Two traverses (one per good player) and at least one pull: each an on_connect and an
    // on_play. The edge publisher: its traverse (on_connect, on_play), then the push
    // (on_connect, on_publish).
    assert!(count("on_connect", "tok") >= 3, "{calls:?}");
    assert!(count("on_play", "tok") >= 3, "{calls:?}");
    assert_eq!(count("on_connect", "up"), 2, "{calls:?}");
    assert_eq!(count("on_play", "up"), 1, "{calls:?}");
    assert_eq!(count("on_publish", "up"), 1, "{calls:?}");
    for (action, stream, param) in &calls {
        assert!(
            param == "?token=good" || param == "?token=bad",
            "{action} {stream}: param {param:?} is the client's query, once: {calls:?}"
        );
    }
    for b in &bodies {
        let tc = b["tcUrl"].as_str().unwrap_or("");
        assert!(!tc.contains('?'), "no query in the upstream tcUrl: {b}");
    }
}

/// A server listening on a given RTMP port; stops when the sender is dropped.
async fn server_on(port: u16) -> (Arc<srsd::app::Context>, oneshot::Sender<()>) {
    let dir = temp_dir(&format!("cl-port-{port}"));
    let text = format!(
        "listen = [\"127.0.0.1:{port}\"]\npid = \"{d}/srsd.pid\"\n[http_server]\nenabled = false\n\
         dir = \"{d}\"\n[http_api]\nenabled = false\n[log]\nlevel = \"warn\"\n",
        d = dir.display()
    );
    let config = Config::parse(&text, "test.toml").expect("config");
    let server = Server::bind(config).await.expect("bind");
    let ctx = server.context().clone();
    let (tx, rx) = oneshot::channel::<()>();
    tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    (ctx, tx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn forward_to_a_dead_destination_never_delays_the_live_one() {
    let alive = start_server("cl-fwd-alive", "").await;
    let dead_port = free_port();
    let source = start_server(
        "cl-fwd-source",
        &format!(
            "[vhost.\"__defaultVhost__\".forward]\nenabled = true\n\
             destination = [\"127.0.0.1:{dead_port}\", \"{}\"]\n",
            origin_of(&alive)
        ),
    )
    .await;
    let published = Instant::now();
    let _p = publish_live(source.url("live/fw"), 0);
    assert!(wait_for(T, || publishing(&alive, "fw")).await);
    println!(
        "live destination publishing {:?} after the publish",
        published.elapsed()
    );
    let mut c = player(&format!("rtmp://{}/live/fw", alive.addr)).await;
    let got = recv_video(&mut c, 25, Duration::from_secs(5)).await;
    assert_eq!(
        got.len(),
        25,
        "the live destination gets the stream at once"
    );
    assert!(
        published.elapsed() < Duration::from_secs(4),
        "no delay from the dead destination"
    );

    // The dead one comes back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (ctx, _stop) = server_on(dead_port).await;
    let back = Instant::now();
    let revived = || ctx.hub.find(&key("fw")).is_some_and(|s| s.is_publishing());
    assert!(
        wait_for(Duration::from_secs(10), revived).await,
        "the revived destination receives the stream"
    );
    println!("revived destination publishing after {:?}", back.elapsed());
    let mut c = player(&format!("rtmp://127.0.0.1:{dead_port}/live/fw")).await;
    let got = recv_video(&mut c, 10, Duration::from_secs(5)).await;
    assert_eq!(got.len(), 10);
    // Both independent: the live one still flows.
    let mut c = player(&format!("rtmp://{}/live/fw", alive.addr)).await;
    assert_eq!(
        recv_video(&mut c, 10, Duration::from_secs(5)).await.len(),
        10
    );
}

#[cfg_attr(
    any(srsd_missing = "nginx", srsd_missing = "nginx-rtmp"),
    ignore = "nginx or libnginx-mod-rtmp not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nginx_rtmp_as_origin_for_pull_and_push_and_as_forward_destination() {
    if !have_nginx_rtmp() {
        return;
    }
    let (_nginx, ng) = start_nginx("cl-nginx").await;
    let edge = start_server("cl-nginx-edge", &edge_toml(&[ng.to_string()], "")).await;

    // Pull: published to nginx, played on the edge.
    let _p = publish_live(format!("rtmp://{ng}/live/pull"), 0);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut c = player(&edge.url("live/pull")).await;
    let got = recv_video(&mut c, 25, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 25, "the edge pulls from nginx-rtmp");

    // Push: published to the edge, played on nginx.
    let _q = publish_live(edge.url("live/push"), 0);
    assert!(
        wait_for(T, || edge
            .ctx
            .edges
            .get(&key("push"))
            .is_some_and(|i| i.state == LinkState::Active))
        .await,
        "the edge publishes to nginx-rtmp"
    );
    let mut c = player(&format!("rtmp://{ng}/live/push")).await;
    let got = recv_video(&mut c, 25, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 25, "nginx-rtmp serves what the edge pushed");

    // Forward: published to a srsd origin, played on nginx.
    let fwd = start_server(
        "cl-nginx-fwd",
        &format!(
            "[vhost.\"__defaultVhost__\".forward]\nenabled = true\ndestination = [\"{ng}\"]\n"
        ),
    )
    .await;
    let _r = publish_live(fwd.url("live/fwd"), 0);
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut c = player(&format!("rtmp://{ng}/live/fwd")).await;
    let got = recv_video(&mut c, 25, Duration::from_secs(10)).await;
    assert_eq!(got.len(), 25, "nginx-rtmp receives the forward");
}

/// The first player of a stream on an edge pulling from nginx-rtmp: nginx sends metadata
/// and audio at once but video only from the next keyframe (OBS's default interval is 250
/// frames, 8.3 s at 30 fps). The player must still find the video track: ffprobe lists
/// h264 640x360 and aac, as for any other player.
#[cfg_attr(
    any(
        srsd_missing = "ffmpeg",
        srsd_missing = "ffprobe",
        srsd_missing = "nginx",
        srsd_missing = "nginx-rtmp"
    ),
    ignore = "ffmpeg, ffprobe, nginx or libnginx-mod-rtmp not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn first_player_on_an_edge_of_nginx_rtmp_finds_the_video_track() {
    if !have_nginx_rtmp() || !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let (_nginx, ng) = start_nginx("cl-nginx-first").await;
    let edge = start_server("cl-nginx-first-edge", &edge_toml(&[ng.to_string()], "")).await;
    let _encoder = Proc(
        Command::new("ffmpeg")
            .stderr(child_log("ffmpeg"))
            .args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc=size=640x360:rate=30"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
            .args(["-t", "40", "-c:v", "libx264", "-preset", "ultrafast"])
            .args([
                "-g", "250", "-pix_fmt", "yuv420p", "-c:a", "aac", "-f", "flv",
            ])
            .arg(format!("rtmp://{ng}/live/obs"))
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn ffmpeg"),
    );
    // Join between keyframes: the first came at 0, the next is due at 8.3 s.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let url = edge.url("live/obs");
    let streams = tokio::task::spawn_blocking(move || {
        probe_stream_fields(&url, &[], "codec_type,codec_name,width,height")
    })
    .await
    .unwrap();
    let video: Vec<_> = streams
        .iter()
        .filter(|f| f.contains(&"video".to_string()))
        .collect();
    assert_eq!(video.len(), 1, "one video track: {streams:?}");
    let v = video[0].join(",");
    assert!(
        v.contains("h264") && v.contains("640") && v.contains("360"),
        "h264 640x360: {v}"
    );
    assert!(
        streams.iter().any(|f| f.contains(&"aac".to_string())),
        "and the audio: {streams:?}"
    );
    assert_eq!(streams.len(), 2, "nothing else: {streams:?}");
}

/// Recorded hook bodies.
type Bodies = Arc<std::sync::Mutex<Vec<serde_json::Value>>>;

/// A hook server that records every JSON body and allows exactly the calls whose `param` is
/// `?token=good` (a token check as users write them for SRS).
async fn token_param_hook() -> (String, Bodies) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/", l.local_addr().unwrap());
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let seen = seen2.clone();
            tokio::spawn(async move {
                let Some((_, body)) = read_http_request(&mut s).await else {
                    return;
                };
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                let allow = v["param"] == "?token=good";
                seen.lock().unwrap().push(v);
                let resp = format!(
                    "HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n{}",
                    if allow { 0 } else { 1 }
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    (base, seen)
}

/// Reload reaches streams that are already live: a forward destination added by a reload
/// starts receiving the stream at once, one removed stops, and `gop_cache` turned off drops
/// a live stream's cache (a new player then waits for the next keyframe).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn reload_adds_and_removes_forwards_and_gop_cache_of_live_streams() {
    let dest = start_server("cl-reload-dest", "").await;
    let source = start_server("cl-reload-src", "").await;
    let _p = publish_live(source.url("live/rl"), 0);
    assert!(wait_for(T, || publishing(&source, "rl")).await);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!publishing(&dest, "rl"), "no forward configured yet");

    let with = |extra: &str| {
        let base = srsd::config::Config::clone(&source.ctx.config());
        let text =
            format!("listen = [\"127.0.0.1:0\"]\n[vhost.\"__defaultVhost__\".forward]\n{extra}\n");
        let mut c = Config::parse(&text, "reload.toml").expect("reload config parses");
        // Keep what the test server bound and wrote.
        c.listen = base.listen.clone();
        c.http_server = base.http_server.clone();
        c.http_api = base.http_api.clone();
        c.pid = base.pid.clone();
        c
    };
    source.ctx.set_config(with(&format!(
        "enabled = true\ndestination = [\"{}\"]",
        origin_of(&dest)
    )));
    assert!(
        wait_for(T, || publishing(&dest, "rl")).await,
        "a forward added by reload reaches the live stream"
    );
    let mut c = player(&format!("rtmp://{}/live/rl", dest.addr)).await;
    assert_eq!(
        recv_video(&mut c, 10, Duration::from_secs(5)).await.len(),
        10
    );

    source.ctx.set_config(with("enabled = false"));
    assert!(
        wait_for(T, || !publishing(&dest, "rl")).await,
        "a forward turned off by reload stops"
    );

    // gop_cache off on the live source: a new player gets no cached GOP.
    let mut off = with("enabled = false");
    off.vhost
        .get_mut("__defaultVhost__")
        .expect("default vhost")
        .play
        .gop_cache = false;
    source.ctx.set_config(off);
    let src = source.ctx.hub.find(&key("rl")).expect("source");
    let mut out = Vec::new();
    src.subscribe(
        srsd::hub::QueueLimits::default(),
        srsd::hub::TimeJitter::Full,
    )
    .try_recv(&mut out, usize::MAX);
    let frames = out
        .iter()
        .filter(
            |i| matches!(i, srsd::hub::Item::Frame(f) if !f.flags.seq_header && !f.flags.metadata),
        )
        .count();
    assert_eq!(frames, 0, "no cached GOP after gop_cache was turned off");
}

/// What one connection to [`recording_destination`] raised, in order: `publish`, `media`
/// (once), `unpublish` (FCUnpublish / deleteStream), `eof`.
type Recorded = Arc<std::sync::Mutex<Vec<Vec<&'static str>>>>;

/// An RTMP destination built on srsd's own sans-IO server session that accepts every connect
/// and publish and records, per connection, what happened.
async fn recording_destination() -> (SocketAddr, Recorded) {
    use srsd::protocol::rtmp::handshake::{HandshakeProgress, ServerHandshake};
    use srsd::protocol::rtmp::session::{ServerEvent, ServerSession};
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let recorded: Recorded = Default::default();
    let rec = recorded.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let rec = rec.clone();
            let n = {
                let mut r = rec.lock().unwrap();
                r.push(Vec::new());
                r.len() - 1
            };
            tokio::spawn(async move {
                let note = |what| rec.lock().unwrap()[n].push(what);
                let mut buf = bytes::BytesMut::new();
                let mut hs = ServerHandshake::new();
                loop {
                    if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return note("eof");
                    }
                    match hs.handle_input(&mut buf, &mut |b| b.fill(7), 0) {
                        Ok(HandshakeProgress::NeedMore { send }) => {
                            let _ = s.write_all(&send).await;
                        }
                        Ok(HandshakeProgress::Done { send }) => {
                            let _ = s.write_all(&send).await;
                            break;
                        }
                        Err(_) => return note("eof"),
                    }
                }
                let mut session = ServerSession::new(4096, "recorder");
                let mut media = false;
                loop {
                    if session.handle_input(&mut buf).is_err() {
                        return note("eof");
                    }
                    while let Some(e) = session.poll_event() {
                        match e {
                            ServerEvent::Connect { id, .. } => session.accept_connect(id),
                            ServerEvent::Publish { id, .. } => {
                                session.accept_publish(id);
                                note("publish");
                            }
                            ServerEvent::Media { .. } if !media => {
                                media = true;
                                note("media");
                            }
                            ServerEvent::Unpublish => note("unpublish"),
                            _ => {}
                        }
                    }
                    while let Some(out) = session.take_output() {
                        let _ = s.write_all(&out).await;
                    }
                    if s.read_buf(&mut buf).await.unwrap_or(0) == 0 {
                        return note("eof");
                    }
                }
            });
        }
    });
    (addr, recorded)
}

/// A forwarder is stopped, never aborted: removed by a reload or ended with its stream, it
/// unpublishes its upstream session (FCUnpublish/deleteStream) before it closes the socket,
/// as SRS's forwarder and nginx-rtmp's push do. Aborting the task mid-stream left the
/// destination with a publisher that vanished without a word.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_forward_stopped_by_reload_or_unpublish_says_goodbye_upstream() {
    let (dest, recorded) = recording_destination().await;
    let source = start_server("cl-fwd-goodbye", "").await;
    let with = |forward: bool| {
        let base = srsd::config::Config::clone(&source.ctx.config());
        let text = format!(
            "listen = [\"127.0.0.1:0\"]\n[vhost.\"__defaultVhost__\".forward]\n\
             enabled = {forward}\ndestination = [\"{dest}\"]\n"
        );
        let mut c = Config::parse(&text, "reload.toml").expect("reload config parses");
        c.listen = base.listen.clone();
        c.http_server = base.http_server.clone();
        c.http_api = base.http_api.clone();
        c.pid = base.pid.clone();
        c
    };
    let conn = |n: usize| recorded.lock().unwrap().get(n).cloned().unwrap_or_default();
    let p = publish_live(source.url("live/bye"), 0);
    assert!(wait_for(T, || publishing(&source, "bye")).await);

    // 1. Added by a reload, then removed by one.
    source.ctx.set_config(with(true));
    assert!(
        wait_for(T, || conn(0).contains(&"media")).await,
        "forwarded: {:?}",
        conn(0)
    );
    source.ctx.set_config(with(false));
    assert!(
        wait_for(T, || conn(0).contains(&"eof")).await,
        "{:?}",
        conn(0)
    );
    assert_eq!(conn(0), ["publish", "media", "unpublish", "eof"]);

    // 2. Forwarding again; the stream's publisher goes away (its socket just drops).
    source.ctx.set_config(with(true));
    assert!(
        wait_for(T, || conn(1).contains(&"media")).await,
        "{:?}",
        conn(1)
    );
    drop(p);
    assert!(
        wait_for(T, || conn(1).contains(&"eof")).await,
        "{:?}",
        conn(1)
    );
    assert_eq!(conn(1), ["publish", "media", "unpublish", "eof"]);
    assert!(
        wait_for(T, || source.ctx.links.is_empty()).await,
        "no cluster link task left: {}",
        source.ctx.links.len()
    );
}
