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

/// A fresh directory under the system temp dir for one test.
pub fn temp_dir(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("srsd-test-{}-{}", name, std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).expect("create temp dir");
    d
}

/// Starts a server with `extra` TOML appended to a minimal test config. The HTTP server
/// (serving `dir`) and the API bind 127.0.0.1:0 unless `extra` has its own `[http_server]` /
/// `[http_api]` table.
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

/// Whether a program is there. When it is missing the test is skipped loudly, or fails when
/// SRSD_REQUIRE_INTEROP=1 (CI).
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
        if std::env::var("SRSD_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
            panic!("{program} is required (SRSD_REQUIRE_INTEROP=1) but not installed");
        }
        eprintln!("\n*** SKIPPED: {program} is not installed; interop test not run ***\n");
    }
    found
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
    let deadline = Instant::now() + limit;
    loop {
        if let Ok(Some(s)) = p.0.try_wait() {
            return s.success();
        }
        if Instant::now() > deadline {
            let _ = p.0.kill();
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// ffmpeg arguments for `secs` seconds of generated H.264 + AAC (320x240 25 fps, GOP 1 s)
/// as FLV; the output comes after them.
fn ffmpeg_source(realtime: bool, secs: u32) -> Command {
    let mut c = Command::new("ffmpeg");
    c.args(["-hide_banner", "-loglevel", "error", "-y"]);
    if realtime {
        c.arg("-re");
    }
    c.args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
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
        .args(["-g", "25", "-pix_fmt", "yuv420p"])
        .args(["-c:a", "aac", "-b:a", "64k", "-f", "flv"]);
    c
}

/// Makes an H.264 + AAC FLV file with ffmpeg: `secs` seconds of 320x240 25 fps, GOP 1 s.
pub fn make_flv(dir: &Path, secs: u32) -> PathBuf {
    let out = dir.join("source.flv");
    let status = ffmpeg_source(false, secs)
        .arg(&out)
        .status()
        .expect("run ffmpeg");
    assert!(status.success(), "ffmpeg made the source FLV");
    out
}

/// ffmpeg publishing a generated live source for `secs` seconds, in real time.
pub fn ffmpeg_publish(url: &str, secs: u32) -> Proc {
    Proc(
        ffmpeg_source(true, secs)
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
