//! Shared test harness: a real server on 127.0.0.1:0, programs no one here wrote, bounded
//! waits.
#![allow(dead_code)]

use srsd::app::Server;
use srsd::config::Config;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

pub mod packages;
pub mod playlist;

/// A server running on the test's runtime; stops when dropped.
pub struct TestServer {
    pub addr: SocketAddr,
    /// The HTTP server (static files under `dir`, HTTP-FLV), on 127.0.0.1:0.
    pub http: Option<SocketAddr>,
    /// The HTTP API, on its own 127.0.0.1:0.
    pub api: Option<SocketAddr>,
    pub ctx: Arc<srsd::app::Context>,
    stop: Option<oneshot::Sender<()>>,
    pub dir: PathBuf,
}

impl TestServer {
    pub fn url(&self, path: &str) -> String {
        format!("rtmp://127.0.0.1:{}/{}", self.addr.port(), path)
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// The directory every test of this process works under: `$TMPDIR/srsd-test-PID`, removed
/// when the test binary exits (set `SRSD_KEEP_TEMP=1` to keep it for a post-mortem).
fn temp_root() -> PathBuf {
    static ROOT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    ROOT.get_or_init(|| {
        extern "C" fn remove_root() {
            if !std::env::var("SRSD_KEEP_TEMP").is_ok_and(|v| v == "1") {
                let root = std::env::temp_dir().join(format!("srsd-test-{}", std::process::id()));
                let _ = std::fs::remove_dir_all(root);
            }
        }
        // libtest has no end-of-run hook; the C library's exit handlers run when the test
        // binary returns from main or calls exit, whatever the tests' outcome.
        #[allow(unsafe_code)]
        // SAFETY: registers a plain extern "C" fn with no captured state.
        unsafe {
            nix::libc::atexit(remove_root);
        }
        std::env::temp_dir().join(format!("srsd-test-{}", std::process::id()))
    })
    .clone()
}

/// The path of test `name`'s directory (what [`temp_dir`] and [`start_server`] use).
pub fn temp_path(name: &str) -> PathBuf {
    temp_root().join(name)
}

/// Where a program a test runs writes its stderr: `PROGRAM.log` in this process's temp root
/// (kept with `SRSD_KEEP_TEMP=1`), so the `cargo test` output carries no ffmpeg chatter.
pub fn child_log(program: &str) -> Stdio {
    let root = temp_root();
    let _ = std::fs::create_dir_all(&root);
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(root.join(format!("{program}.log")))
        .map_or_else(|_| Stdio::null(), Stdio::from)
}

/// A fresh directory for one test, under this process's temp root.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = temp_path(name);
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// Starts a server with `extra` TOML appended to a minimal test config. The HTTP server
/// (serving `dir`) and the API bind 127.0.0.1:0 unless `extra` has its own `[http_server]` /
/// `[http_api]` table; the default vhost's HLS is off unless `extra` has its table.
pub async fn start_server(name: &str, extra: &str) -> TestServer {
    let dir = temp_dir(name);
    let mut http = String::new();
    if !extra.contains("[http_server]") {
        http += &format!(
            "[http_server]\nlisten = \"127.0.0.1:0\"\ndir = \"{}\"\n",
            dir.display()
        );
    }
    if !extra.contains("[http_api]") {
        http += "[http_api]\nlisten = \"127.0.0.1:0\"\n";
    }
    // HLS is on by default (as SRS 6's srs.conf); a test that does not configure the default
    // vhost's HLS runs without it, so its consumer counts and files are only its own.
    if !extra.contains("\"__defaultVhost__\".hls]") {
        http += "[vhost.\"__defaultVhost__\".hls]\nenabled = false\n";
    }
    let text = format!(
        "listen = [\"127.0.0.1:0\"]\npid = \"{}/srsd.pid\"\n{extra}\n{http}[log]\nlevel = \"warn\"\n",
        dir.display()
    );
    let config = Config::parse(&text, "test.toml").expect("test config parses");
    let server = Server::bind(config).await.expect("bind");
    let addr = server.rtmp_addrs()[0];
    let (http, api) = (server.http_addr(), server.api_addr());
    let ctx = server.context().clone();
    let (tx, rx) = oneshot::channel();
    tokio::spawn(server.run(async move {
        let _ = rx.await;
    }));
    TestServer {
        addr,
        http,
        api,
        ctx,
        stop: Some(tx),
        dir,
    }
}

/// Whether a program is there; the test fails when it is not. Tests that need a program carry
/// `#[cfg_attr(srsd_missing = "PROGRAM", ignore = "...")]`: build.rs found it missing when the
/// tests were compiled, so plain `cargo test` lists them as ignored with the reason (under
/// SRSD_REQUIRE_INTEROP=1, CI, nothing is ignored and a missing program fails here).
pub fn have(program: &str) -> bool {
    let found = Command::new(program)
        .arg(if program == "rtmpdump" {
            "--help"
        } else {
            "-version"
        })
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        not_installed(program);
    }
    found
}

/// Fails the test for a program it needs: build.rs saw the program when the tests were
/// compiled, or CI requires it.
fn not_installed(what: &str) -> ! {
    if std::env::var("SRSD_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
        panic!("{what} is required (SRSD_REQUIRE_INTEROP=1) but not installed");
    }
    panic!("{what} is not installed, but was when the tests were compiled: `touch build.rs`");
}

/// A child process killed when dropped.
pub struct Proc(pub Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Waits for a child to exit, at most `limit`; kills it past that. Returns its success.
pub async fn wait_exit(p: &mut Proc, limit: Duration) -> bool {
    wait_status(p, limit).await.is_some_and(|s| s.success())
}

/// How `p` exited, if it did within `limit`; killed and `None` when it did not.
pub async fn wait_status(p: &mut Proc, limit: Duration) -> Option<std::process::ExitStatus> {
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(s)) = p.0.try_wait() {
            return Some(s);
        }
        if Instant::now() > deadline {
            let _ = p.0.kill();
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// ffmpeg arguments for `secs` seconds of generated H.264 + AAC (320x240 at `fps`, a
/// keyframe exactly every `gop` frames) as FLV; the output comes after them.
fn ffmpeg_source(realtime: bool, secs: u32, fps: u32, gop: u32) -> Command {
    let mut c = Command::new("ffmpeg");
    c.stderr(child_log("ffmpeg"));
    c.args(["-hide_banner", "-loglevel", "error", "-y"]);
    if realtime {
        c.arg("-re");
    }
    c.args([
        "-f",
        "lavfi",
        "-i",
        &format!("testsrc=size=320x240:rate={fps}"),
    ])
    .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
    .args(["-t", &secs.to_string()])
    .args([
        "-c:v",
        "libx264",
        "-preset",
        "ultrafast",
        "-tune",
        "zerolatency",
    ])
    .args(["-g", &gop.to_string(), "-keyint_min", &gop.to_string()])
    .args(["-sc_threshold", "0", "-pix_fmt", "yuv420p"])
    .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv"]);
    c
}

/// Makes an H.264 + AAC FLV file with ffmpeg: `secs` seconds of 320x240 25 fps, GOP 1 s.
pub fn make_flv(dir: &Path, secs: u32) -> PathBuf {
    make_flv_gop(dir, "source.flv", secs, 25, 25)
}

/// Makes an H.264 + AAC FLV file `name` in `dir` with ffmpeg: `secs` seconds of 320x240 at
/// `fps`, a keyframe every `gop` frames (OBS's default is 250 at 30 fps: 8.3 s).
pub fn make_flv_gop(dir: &Path, name: &str, secs: u32, fps: u32, gop: u32) -> PathBuf {
    let out = dir.join(name);
    let status = ffmpeg_source(false, secs, fps, gop)
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg made the source FLV");
    out
}

/// The tags of an FLV file, in order.
pub fn flv_tags(path: &Path) -> Vec<srsd::protocol::flv::Tag> {
    let mut buf = bytes::BytesMut::from(&std::fs::read(path).expect("read FLV")[..]);
    let mut dec = srsd::protocol::flv::FlvDecoder::new();
    let mut tags = Vec::new();
    while let Ok(Some(t)) = dec.decode(&mut buf) {
        tags.push(t);
    }
    tags
}

/// Whether an FLV video tag body is a keyframe (not a sequence header).
pub fn is_video_keyframe(tag: &srsd::protocol::flv::Tag) -> bool {
    tag.kind == srsd::client::MediaKind::Video
        && tag.payload.len() > 1
        && tag.payload[0] >> 4 == 1
        && tag.payload[1] == 1
}

/// Publishes `tags` on `client`, `speed` times faster than real time (bounded: a tag is never
/// sent later than its time allows, and the whole run is bounded by the tags' span / speed).
pub async fn send_tags(
    client: &mut srsd::client::RtmpClient,
    tags: &[srsd::protocol::flv::Tag],
    speed: u32,
) {
    let start = tokio::time::Instant::now();
    let first = tags.first().map_or(0, |t| t.timestamp);
    for t in tags {
        let at = u64::from(t.timestamp.saturating_sub(first)) / u64::from(speed.max(1));
        tokio::time::sleep_until(start + Duration::from_millis(at)).await;
        client
            .send(t.kind, t.timestamp, t.payload.clone())
            .await
            .expect("send a tag");
    }
}

/// ffmpeg publishing a generated live source for `secs` seconds, in real time.
pub fn ffmpeg_publish(url: &str, secs: u32) -> Proc {
    Proc(
        ffmpeg_source(true, secs, 25, 25)
            .arg(url)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn ffmpeg"),
    )
}

/// ffprobe facts about a media file or URL.
#[derive(Debug, Default)]
pub struct Probe {
    pub video_codec: String,
    pub audio_codec: String,
    pub width: u32,
    pub height: u32,
    pub video_frames: u64,
}

pub fn ffprobe(target: &str) -> Probe {
    // coreutils' timeout bounds the probe: a live playlist would make ffprobe wait forever.
    let out = Command::new("timeout")
        .args([
            "60",
            "ffprobe",
            "-v",
            "error",
            "-count_frames",
            "-show_entries",
        ])
        .arg("stream=codec_type,codec_name,width,height,nb_read_frames")
        .args(["-of", "default=noprint_wrappers=1", target])
        .output()
        .expect("run ffprobe");
    let text = String::from_utf8_lossy(&out.stdout);
    let mut p = Probe::default();
    let mut codec = String::new();
    let mut kind = String::new();
    for line in text.lines() {
        let Some((k, v)) = line.split_once('=') else {
            continue;
        };
        match k {
            "codec_name" => codec = v.to_string(),
            "codec_type" => {
                kind = v.to_string();
                if v == "video" {
                    p.video_codec = codec.clone();
                } else if v == "audio" {
                    p.audio_codec = codec.clone();
                }
            }
            "width" if kind == "video" => p.width = v.parse().unwrap_or(p.width),
            "height" if kind == "video" => p.height = v.parse().unwrap_or(p.height),
            "nb_read_frames" if kind == "video" => p.video_frames = v.parse().unwrap_or(0),
            _ => {}
        }
    }
    p
}

/// What ffprobe lists for a (live) stream without reading it to the end: (codec_type,
/// codec_name) pairs in its order, then `extra` arguments go before the input; bounded by
/// 40 s. `width`/`height` of the video, when asked for, come as a third and fourth field.
pub fn probe_streams(target: &str, extra: &[&str]) -> Vec<(String, String)> {
    probe_stream_fields(target, extra, "codec_type,codec_name")
        .into_iter()
        .map(|mut f| {
            f.resize(2, String::new());
            (f[1].clone(), f[0].clone())
        })
        .collect()
}

/// ffprobe's `-show_entries stream=FIELDS` for each stream, as ffprobe orders the fields
/// (its own order, not the one asked for); bounded by 40 s.
pub fn probe_stream_fields(target: &str, extra: &[&str], fields: &str) -> Vec<Vec<String>> {
    let out = Command::new("timeout")
        .args(["40", "ffprobe", "-v", "error"])
        .args(extra)
        .args(["-show_entries", &format!("stream={fields}")])
        .args(["-of", "csv=p=0", target])
        .stdin(Stdio::null())
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect()
}

/// Receives until `want` video messages arrived or `limit` passed; returns them as
/// (timestamp, payload), sequence headers included.
pub async fn recv_video(
    c: &mut srsd::client::RtmpClient,
    want: usize,
    limit: Duration,
) -> Vec<(u32, bytes::Bytes)> {
    recv_video_where(c, want, limit, |_| true).await
}

/// Like [`recv_video`], counting only the video messages `keep` accepts.
pub async fn recv_video_where(
    c: &mut srsd::client::RtmpClient,
    want: usize,
    limit: Duration,
    keep: impl Fn(&bytes::Bytes) -> bool,
) -> Vec<(u32, bytes::Bytes)> {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(limit, async {
        while got.len() < want {
            match c.recv().await {
                Ok((srsd::client::MediaKind::Video, ts, p)) if keep(&p) => got.push((ts, p)),
                Ok(_) => {}
                Err(_) => break,
            }
        }
    })
    .await;
    got
}

/// Reads one HTTP/1.1 request (head, then a Content-Length body) from a test peer's socket:
/// (head, body), or `None` when the peer closed first.
pub async fn read_http_request(s: &mut tokio::net::TcpStream) -> Option<(String, String)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = s.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf).to_string();
        if let Some(i) = text.find("\r\n\r\n") {
            let head = text[..i].to_string();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if text.len() >= i + 4 + len {
                return Some((head, text[i + 4..i + 4 + len].to_string()));
            }
        }
    }
}

/// Polls `cond` every 50 ms for at most `limit`.
pub async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if cond() {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cond()
}

/// Waits (at most `limit`) until `app/stream` of the default vhost is published on `server`.
pub async fn wait_publishing(server: &TestServer, path: &str, limit: Duration) -> bool {
    let (app, stream) = path.rsplit_once('/').unwrap_or(("live", path));
    let key = srsd::hub::StreamKey::new("__defaultVhost__", app, stream);
    wait_for(limit, || {
        server.ctx.hub.find(&key).is_some_and(|s| s.is_publishing())
    })
    .await
}

/// A synthetic H.264 + AAC stream as FLV tags, no encoder needed: the AVC and AAC sequence
/// headers, then `fps` video frames a second with a keyframe every `gop_ms`, and an AAC frame
/// every 23 ms, from 0 up to `end_ms` (exclusive). The frames are tiny and not decodable
/// pictures; the server's muxers only need them well-formed.
pub fn synthetic_tags(end_ms: u32, gop_ms: u32, fps: u32) -> Vec<srsd::protocol::flv::Tag> {
    use bytes::Bytes;
    use srsd::client::MediaKind;
    use srsd::protocol::flv::Tag;
    let sps = [0x67, 0x42, 0xC0, 0x1E, 0xDA, 0x02, 0x80, 0xF6, 0x40];
    let pps = [0x68, 0xCE, 0x3C, 0x80];
    let mut avc = vec![0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1];
    avc.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    avc.extend_from_slice(&sps);
    avc.push(1);
    avc.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    avc.extend_from_slice(&pps);
    let mut tags = vec![
        Tag {
            kind: MediaKind::Video,
            timestamp: 0,
            payload: Bytes::from(avc),
        },
        Tag {
            kind: MediaKind::Audio,
            timestamp: 0,
            payload: Bytes::from_static(&[0xAF, 0, 0x12, 0x10]),
        },
    ];
    let frame_ms = 1000 / fps.max(1);
    let (mut v, mut a) = (0u32, 0u32);
    while v < end_ms || a < end_ms {
        if v <= a && v < end_ms {
            let key = v % gop_ms.max(1) < frame_ms;
            let nalu: &[u8] = if key {
                &[0x65, 0x88, 0x84, 0x00, 0x33]
            } else {
                &[0x41, 0x9A, 0x02, 0x10]
            };
            let mut p = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0];
            p.extend_from_slice(&(nalu.len() as u32).to_be_bytes());
            p.extend_from_slice(nalu);
            tags.push(Tag {
                kind: MediaKind::Video,
                timestamp: v,
                payload: Bytes::from(p),
            });
            v += frame_ms;
        } else {
            tags.push(Tag {
                kind: MediaKind::Audio,
                timestamp: a,
                payload: Bytes::from_static(&[0xAF, 1, 0x21, 0x10, 0x04, 0x60, 0x8C]),
            });
            a += 23;
        }
    }
    tags
}

/// A publisher of `path` (`app/stream[?param]`) on `server` with the project's own client.
pub async fn rtmp_publisher(server: &TestServer, path: &str) -> srsd::client::RtmpClient {
    let url = srsd::client::RtmpUrl::parse(&server.url(path)).expect("URL");
    let mut c = srsd::client::RtmpClient::connect(&url, Duration::from_secs(5))
        .await
        .expect("connect");
    c.publish(&url.stream, Duration::from_secs(5))
        .await
        .expect("publish");
    c
}

/// A free TCP port on 127.0.0.1 (bound, then released).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub const NGINX_MODULE: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

/// nginx with the rtmp module there; fails as [`have`] when not.
pub fn have_nginx_rtmp() -> bool {
    let found = Command::new("nginx")
        .arg("-v")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
        && std::path::Path::new(NGINX_MODULE).exists();
    if !found {
        not_installed("nginx with libnginx-mod-rtmp");
    }
    found
}

/// nginx-rtmp on a free port, `live` application; killed when dropped.
pub async fn start_nginx(name: &str) -> (Proc, SocketAddr) {
    let dir = temp_dir(name);
    let port = free_port();
    let conf = dir.join("nginx.conf");
    std::fs::write(
        &conf,
        format!(
            "daemon off;\nmaster_process off;\npid {d}/nginx.pid;\nerror_log {d}/error.log info;\n\
             load_module {NGINX_MODULE};\nevents {{ worker_connections 256; }}\n\
             rtmp {{ server {{ listen 127.0.0.1:{port}; application live {{ live on; }} }} }}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    let p = Proc(
        Command::new("nginx")
            .arg("-c")
            .arg(&conf)
            .arg("-p")
            .arg(&dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn nginx"),
    );
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while tokio::net::TcpStream::connect(addr).await.is_err() {
        assert!(Instant::now() < deadline, "nginx listens on {addr}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    (p, addr)
}

/// GET an API path (a connection of its own, bounded by 5 s) and parse its JSON body; panics
/// with the whole answer when it is not JSON.
pub async fn api_json(api: SocketAddr, path: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(api).await.expect("connect");
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.expect("write");
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).to_string();
    let body = text.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {text}"))
}
