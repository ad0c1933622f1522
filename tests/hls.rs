//! HLS written by the segmenter, read back by ffprobe and ffmpeg (programs no one here wrote).

mod common;

use common::*;
use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn hls_config(dir: &std::path::Path, window: u32) -> String {
    format!(
        "[vhost.\"__defaultVhost__\".hls]\nenabled = true\nfragment = 2\nwindow = {window}\npath = \"{}\"\n",
        dir.join("html").display()
    )
}

/// A VOD view of a live playlist (same segments, plus ENDLIST) so ffmpeg reads it once and
/// exits instead of waiting for more segments.
fn vod_copy(m3u8: &std::path::Path) -> std::path::PathBuf {
    let text = std::fs::read_to_string(m3u8).unwrap();
    let vod = m3u8.with_file_name("vod-check.m3u8");
    std::fs::write(&vod, format!("{text}#EXT-X-ENDLIST\n")).unwrap();
    vod
}

/// `#EXTINF` durations of a playlist.
fn durations(m3u8: &str) -> Vec<f64> {
    m3u8.lines()
        .filter_map(|l| l.strip_prefix("#EXTINF:"))
        .filter_map(|l| l.trim_end_matches(',').split(',').next()?.parse().ok())
        .collect()
}

#[cfg_attr(
    any(srsd_missing = "ffmpeg", srsd_missing = "ffprobe"),
    ignore = "ffmpeg or ffprobe not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publish_makes_hls_that_ffmpeg_reads_without_errors() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let dir = temp_dir("hls-files");
    let server = start_server("hls", &hls_config(&dir, 60)).await;
    let mut publisher = ffmpeg_publish(&server.url("live/s"), 9);
    assert!(
        wait_exit(&mut publisher, Duration::from_secs(30)).await,
        "ffmpeg published"
    );
    let m3u8 = dir.join("html/live/s.m3u8");
    assert!(
        wait_for(Duration::from_secs(5), || m3u8.exists()).await,
        "playlist written"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let text = std::fs::read_to_string(&m3u8).unwrap();
    assert!(text.starts_with("#EXTM3U"), "{text}");
    assert!(text.contains("#EXT-X-TARGETDURATION:"), "{text}");
    assert!(text.contains("#EXT-X-MEDIA-SEQUENCE:0"), "{text}");
    let d = durations(&text);
    assert!(d.len() >= 4, "about 9 s in 2 s segments: {text}");
    // Every segment but the last is cut on a keyframe (1 s GOP) once 2 s passed.
    for x in &d[..d.len() - 1] {
        assert!((1.9..=3.1).contains(x), "segment of {x} s: {text}");
    }
    // No temporary file is left behind.
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("html/live"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    let vod = vod_copy(&m3u8);
    let m = vod.display().to_string();
    let probe = tokio::task::spawn_blocking(move || ffprobe(&m))
        .await
        .unwrap();
    assert_eq!(
        (probe.video_codec.as_str(), probe.audio_codec.as_str()),
        ("h264", "aac"),
        "{probe:?}"
    );
    assert_eq!((probe.width, probe.height), (320, 240));
    assert!(
        probe.video_frames >= 200,
        "{} frames of 225",
        probe.video_frames
    );

    // ffmpeg decodes the whole playlist without a single error (continuity, timestamps).
    let out = Command::new("timeout")
        .args(["60", "ffmpeg", "-v", "error", "-i"])
        .arg(&vod)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "ffmpeg reported: {errors}"
    );
}

#[cfg_attr(srsd_missing = "ffmpeg", ignore = "ffmpeg not installed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn republish_continues_numbering_with_a_discontinuity_and_window_cleans_up() {
    if !have("ffmpeg") {
        return;
    }
    let dir = temp_dir("hls-republish");
    let server = start_server("hls-re", &hls_config(&dir, 8)).await;
    for _ in 0..2 {
        let mut p = ffmpeg_publish(&server.url("live/r"), 6);
        assert!(wait_exit(&mut p, Duration::from_secs(30)).await);
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let text = std::fs::read_to_string(dir.join("html/live/r.m3u8")).unwrap();
    assert!(text.contains("#EXT-X-DISCONTINUITY"), "{text}");
    let seq: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("#EXT-X-MEDIA-SEQUENCE:"))
        .and_then(|v| v.parse().ok())
        .unwrap();
    assert!(seq >= 1, "the window slid: {text}");
    // Window 8 s, but never less than three target durations (3 x 3 s): at most one
    // segment more than that.
    let sum: f64 = durations(&text).iter().sum();
    assert!(sum <= 9.0 + 3.1, "window of about 9 s: {text}");
    playlist::parse(&text);
    // Segments that left the window are deleted once they expire (their duration plus the
    // playlist's after they left): at most the last few of those are still there.
    let ts_files = std::fs::read_dir(dir.join("html/live"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".ts"))
        .count();
    let listed = durations(&text).len();
    assert!(
        ts_files >= listed && ts_files <= listed + 7,
        "{ts_files} files: {text}"
    );
}

/// One HTTP/1.1 GET (Connection: close); returns the head (lowercased) and the body. A
/// viewer's first playlist request is answered (200, as SRS 6) with a master playlist naming
/// its own URL (`hls_ctx`), which players follow; so do we, once. Redirects are an error.
async fn http_get(addr: SocketAddr, path: &str) -> (String, Vec<u8>) {
    let mut path = path.to_string();
    for _ in 0..2 {
        let mut c = TcpStream::connect(addr).await.unwrap();
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
        c.write_all(req.as_bytes()).await.unwrap();
        let mut buf = Vec::new();
        tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut buf))
            .await
            .expect("response within 10 s")
            .unwrap();
        let end = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a head")
            + 4;
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        assert!(!head.contains("transfer-encoding: chunked"), "{head}");
        assert!(!head.starts_with("http/1.1 3"), "never a redirect: {head}");
        let body = buf[end..].to_vec();
        let text = String::from_utf8_lossy(&body);
        if text.contains("#EXT-X-STREAM-INF") {
            let variant = text
                .lines()
                .skip_while(|l| !l.starts_with("#EXT-X-STREAM-INF"))
                .nth(1)
                .expect("a variant URI");
            let dir = &path[..path.rfind('/').map_or(0, |i| i + 1)];
            path = format!("{dir}{variant}");
            continue;
        }
        return (head, body);
    }
    panic!("a master playlist naming another: {path}");
}

/// ffprobe's view of a URL's container duration, bounded by coreutils' timeout.
fn probe_duration(url: &str) -> f64 {
    let out = Command::new("timeout")
        .args(["30", "ffprobe", "-v", "error", "-rw_timeout", "5000000"])
        .args(["-show_entries", "format=duration", "-of", "csv=p=0", url])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(-1.0)
}

#[cfg_attr(
    any(srsd_missing = "ffmpeg", srsd_missing = "ffprobe"),
    ignore = "ffmpeg or ffprobe not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_is_served_over_http_and_ffmpeg_plays_the_playlist_url() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    // HLS written where the HTTP server serves files from.
    let dir = temp_dir("hls-http-files");
    let extra = format!(
        "[http_server]\nlisten = \"127.0.0.1:0\"\ndir = \"{d}\"\n\
         [vhost.\"__defaultVhost__\".hls]\nenabled = true\nfragment = 2\nwindow = 60\npath = \"{d}\"\n",
        d = dir.display()
    );
    let server = start_server("hls-http", &extra).await;
    let http = server.http.expect("HTTP server");
    let mut publisher = ffmpeg_publish(&server.url("live/s"), 8);
    let m3u8 = dir.join("live/s.m3u8");
    // While live: the playlist and a segment over HTTP, with their types and cache rules.
    assert!(
        wait_for(Duration::from_secs(15), || std::fs::read_to_string(&m3u8)
            .is_ok_and(|t| durations(&t).len() >= 2))
        .await,
        "two segments written while publishing"
    );
    let (head, body) = http_get(http, "/live/s.m3u8").await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(
        head.contains("content-type: application/vnd.apple.mpegurl"),
        "{head}"
    );
    assert!(head.contains("cache-control: no-cache"), "{head}");
    let text = String::from_utf8(body).unwrap();
    assert!(text.starts_with("#EXTM3U"), "{text}");
    let first = text
        .lines()
        .find(|l| !l.is_empty() && !l.starts_with('#'))
        .expect("a segment URI")
        .to_string();
    let (head, seg) = http_get(http, &format!("/live/{first}")).await;
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert!(head.contains("content-type: video/mp2t"), "{head}");
    assert!(!head.contains("no-cache"), "segments are cacheable: {head}");
    assert!(seg.len() > 188 * 10 && seg.len() % 188 == 0 && seg[0] == 0x47);

    // ffprobe reads the live playlist URL (probing only, so it returns without ENDLIST).
    let url = format!("http://127.0.0.1:{}/live/s.m3u8", http.port());
    let u = url.clone();
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .args(["30", "ffprobe", "-v", "error", "-rw_timeout", "5000000"])
            .args(["-show_entries", "stream=codec_name,width,height"])
            .args(["-of", "csv=p=0", &u])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let streams = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "ffprobe: {streams} {:?}", out.stderr);
    assert!(streams.contains("h264,320,240"), "{streams}");
    assert!(streams.contains("aac"), "{streams}");

    assert!(
        wait_exit(&mut publisher, Duration::from_secs(30)).await,
        "ffmpeg published"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (_, body) = http_get(http, "/live/s.m3u8").await;
    let text = String::from_utf8(body).unwrap();
    let d = durations(&text);
    assert!(d.len() >= 3, "about 8 s in 2 s segments: {text}");
    let uris: Vec<&str> = text
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();
    assert_eq!(uris.len(), d.len(), "{text}");
    for (i, (uri, extinf)) in uris.iter().zip(&d).enumerate() {
        // Every segment but the last is cut on a keyframe (1 s GOP) once 2 s passed.
        if i + 1 < d.len() {
            assert!(
                (1.9..=3.1).contains(extinf),
                "segment of {extinf} s: {text}"
            );
        }
        let u = format!("http://127.0.0.1:{}/live/{uri}", http.port());
        let probed = tokio::task::spawn_blocking(move || probe_duration(&u))
            .await
            .unwrap();
        assert!(
            (probed - extinf).abs() <= 0.5,
            "{uri}: ffprobe says {probed} s, the playlist {extinf} s"
        );
    }

    // ffmpeg decodes 4 s of the playlist URL without a single error; -t bounds the live read.
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .args(["30", "ffmpeg", "-v", "error", "-rw_timeout", "5000000"])
            .args([
                "-live_start_index",
                "0",
                "-i",
                &url,
                "-t",
                "4",
                "-f",
                "null",
                "-",
            ])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let errors = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() && errors.trim().is_empty(),
        "ffmpeg reported ({:?}): {errors}",
        out.status
    );
}

#[cfg_attr(srsd_missing = "ffmpeg", ignore = "ffmpeg not installed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_hls_polls_the_playlist_and_fetches_segments() {
    if !have("ffmpeg") {
        return;
    }
    let dir = temp_dir("bench-hls-files");
    let extra = format!(
        "[http_server]\nlisten = \"127.0.0.1:0\"\ndir = \"{d}\"\n\
         [vhost.\"__defaultVhost__\".hls]\nenabled = true\nfragment = 1\nwindow = 30\npath = \"{d}\"\n",
        d = dir.display()
    );
    let server = start_server("bench-hls", &extra).await;
    let http = server.http.expect("HTTP server");
    let _publisher = ffmpeg_publish(&server.url("live/b"), 12);
    let m3u8 = dir.join("live/b.m3u8");
    assert!(
        wait_for(Duration::from_secs(15), || std::fs::read_to_string(&m3u8)
            .is_ok_and(|t| durations(&t).len() >= 2))
        .await,
        "segments written"
    );
    let url = format!("http://127.0.0.1:{}/live/b.m3u8", http.port());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .arg("30")
            .arg(env!("CARGO_BIN_EXE_srsd"))
            .args(["bench", "hls", &url, "-n", "5", "--duration", "3"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("[bench] t=1s connected=5/5"), "{text}");
    assert!(text.contains("played=5/5"), "{text}");
    // Every client fetched segments: the two or three at the live edge, then new ones.
    assert!(text.contains("received_media=5/5"), "{text}");
    let frames: u64 = text
        .split("frames=")
        .nth(1)
        .and_then(|t| t.split(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(frames >= 10, "segments fetched: {text}");
}

#[test]
fn the_playlist_checker_catches_what_it_claims_to() {
    let good = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:4\n\
                #EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-TARGETDURATION:9\n\
                #EXTINF:8.333,\ns-4.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:8.334,\ns-5.ts\n";
    let st = playlist::parse(good);
    assert_eq!((st.media_seq, st.disc_seq, st.target), (4, 1, 9));
    assert_eq!(st.segments.len(), 2);
    assert!(st.segments[1].discontinuity && !st.segments[0].discontinuity);
    let bad = [
        good.replace("TARGETDURATION:9", "TARGETDURATION:7"),
        good.replace("#EXTINF:8.333,", "#EXTINF:0.000,"),
        good.replace("#EXT-X-TARGETDURATION:9\n", ""),
        good.replace("#EXT-X-VERSION:3\n", ""),
        good.replace("#EXTINF:8.333,\n", ""),
        good.replace("#EXTM3U\n", ""),
        good.replace("#EXT-X-DISCONTINUITY-SEQUENCE:1\n", "")
            .replace("s-5.ts\n", "s-5.ts\n#EXT-X-DISCONTINUITY-SEQUENCE:1\n"),
        format!("{good}#EXT-X-STREAM-INF:BANDWIDTH=1\nv.m3u8\n"),
    ];
    for text in &bad {
        let t = text.clone();
        assert!(
            std::panic::catch_unwind(move || playlist::parse(&t)).is_err(),
            "not caught:\n{text}"
        );
    }
    // Transitions: the next state of `good` may drop s-4 (counting nothing: no tag on it),
    // but not change s-5, lower the target, or forget a discontinuity that left.
    let next_ok = "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:5\n\
                   #EXT-X-DISCONTINUITY-SEQUENCE:1\n#EXT-X-TARGETDURATION:9\n\
                   #EXT-X-DISCONTINUITY\n#EXTINF:8.334,\ns-5.ts\n#EXTINF:8.333,\ns-6.ts\n\
                   #EXTINF:8.333,\ns-7.ts\n#EXTINF:8.333,\ns-8.ts\n";
    let mut h = playlist::History::default();
    h.check(good);
    h.check(next_ok);
    let bad_next = [
        next_ok.replace("#EXTINF:8.334,\ns-5.ts", "#EXTINF:8.000,\ns-5.ts"),
        next_ok
            .replace("TARGETDURATION:9", "TARGETDURATION:10")
            .replace("MEDIA-SEQUENCE:5", "MEDIA-SEQUENCE:3"),
        next_ok
            .replace("MEDIA-SEQUENCE:5", "MEDIA-SEQUENCE:6")
            .replace("#EXT-X-DISCONTINUITY\n#EXTINF:8.334,\ns-5.ts\n", ""),
        next_ok.replace("\n#EXTINF:8.333,\ns-8.ts", ""),
    ];
    for text in &bad_next {
        let t = text.clone();
        let r = std::panic::catch_unwind(move || {
            let mut h = playlist::History::default();
            h.check(good);
            h.check(&t);
        });
        assert!(r.is_err(), "not caught:\n{text}");
    }
}

/// Every distinct state a playlist file goes through, read every 10 ms until stopped; a
/// removed file is recorded as `None` (a new life of the playlist begins after it).
struct Watcher {
    states: std::sync::Arc<std::sync::Mutex<Vec<Option<String>>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Watcher {
    fn start(m3u8: std::path::PathBuf) -> Watcher {
        let states = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let s2 = states.clone();
        let task = tokio::spawn(async move {
            let mut last: Option<String> = None;
            // Bounded: the test ends long before.
            let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
            while tokio::time::Instant::now() < deadline {
                let now = std::fs::read_to_string(&m3u8).ok();
                if now != last {
                    s2.lock().unwrap().push(now.clone());
                    last = now;
                }
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        });
        Watcher { states, task }
    }

    /// Checks every state seen since the last call; returns the last state read.
    fn check(&self, history: &mut playlist::History) -> Option<playlist::State> {
        let seen: Vec<Option<String>> = self.states.lock().unwrap().drain(..).collect();
        let mut last = None;
        for s in seen {
            match s {
                Some(text) => last = Some(history.check(&text)),
                None => {
                    history.reset();
                    last = None;
                }
            }
        }
        last
    }
}

impl Drop for Watcher {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The TS packets of files read back to back: each PID's continuity counter must go up by
/// one per packet (all srsd's packets carry payload).
fn assert_continuous(files: &[std::path::PathBuf]) {
    let mut next: std::collections::HashMap<u16, u8> = Default::default();
    for f in files {
        let ts = std::fs::read(f).unwrap();
        assert_eq!(ts.len() % 188, 0, "{f:?}");
        for (i, p) in ts.chunks(188).enumerate() {
            let pid = u16::from(p[1] & 0x1F) << 8 | u16::from(p[2]);
            let cc = p[3] & 0x0F;
            if let Some(want) = next.get(&pid) {
                assert_eq!(cc, *want, "{f:?} packet {i} pid {pid:#x}");
            }
            next.insert(pid, (cc + 1) & 0x0F);
        }
    }
}

/// ffprobe's view of a segment's first video frame: (key_frame, pict_type).
fn first_video_frame(ts: &std::path::Path) -> String {
    let out = Command::new("timeout")
        .args(["30", "ffprobe", "-v", "error", "-select_streams", "v:0"])
        .args([
            "-read_intervals",
            "%+#1",
            "-show_entries",
            "frame=key_frame,pict_type",
        ])
        .args(["-of", "csv=p=0"])
        .arg(ts)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_string()
}

/// ffmpeg decoding `input` alone; returns what it reported at `level` and its success.
fn ffmpeg_decode(input: &std::path::Path, level: &str) -> (bool, String) {
    let out = Command::new("timeout")
        .args([
            "60",
            "ffmpeg",
            "-hide_banner",
            "-nostats",
            "-v",
            level,
            "-i",
        ])
        .arg(input)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[cfg_attr(
    any(srsd_missing = "ffmpeg", srsd_missing = "ffprobe"),
    ignore = "ffmpeg or ffprobe not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn obs_gop_publish_stop_republish_dispose_keeps_every_playlist_state_valid() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let dir = temp_dir("hls-gop-files");
    let src = dir.clone();
    // OBS's default encoder settings: 30 fps, a keyframe every 250 frames (8.33 s).
    let flv = tokio::task::spawn_blocking(move || make_flv_gop(&src, "obs.flv", 60, 30, 250))
        .await
        .unwrap();
    let tags = flv_tags(&flv);
    assert!(tags.len() > 3000, "{} tags", tags.len());
    // Defaults: fragment 2, td_ratio 1.5, window 12; dispose after 3 s.
    let extra = format!(
        "[vhost.\"__defaultVhost__\".hls]\nenabled = true\ndispose = 3\npath = \"{}\"\n",
        dir.join("html").display()
    );
    let server = start_server("hls-gop", &extra).await;
    let m3u8 = dir.join("html/live/g.m3u8");
    let ts_dir = dir.join("html/live");
    let watcher = Watcher::start(m3u8.clone());
    let mut history = playlist::History::default();
    let unpublished = || {
        let key = srsd::hub::StreamKey::new("__defaultVhost__", "live", "g");
        !server.ctx.hub.find(&key).is_some_and(|s| s.is_publishing())
    };

    // 1. Publish ~42 s (10x real time) and stop right after the keyframe at 41.67 s.
    let stop = tags
        .iter()
        .position(|t| is_video_keyframe(t) && t.timestamp >= 40_000)
        .expect("a keyframe after 40 s");
    let mut p = rtmp_publisher(&server, "live/g").await;
    send_tags(&mut p, &tags[..=stop], 10).await;
    p.close().await;
    assert!(wait_for(Duration::from_secs(5), unpublished).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = watcher.check(&mut history).expect("a playlist");
    println!("after the first publish: {} states, {st:?}", history.states);
    // Whole-GOP segments (8.333 s), never a cut mid-GOP; the one-frame segment the stop
    // opened is dropped; the window keeps three target durations (27 s) although window=12.
    assert_eq!(st.target, 9, "{st:?}");
    for d in st.durations() {
        assert!((8.3..=8.4).contains(&d), "{st:?}");
    }
    assert!(st.total() >= 27.0, "{st:?}");
    assert_eq!(st.segments.last().map(|s| s.seq), Some(4), "{st:?}");
    assert!(
        !ts_dir.join("g-5.ts").exists(),
        "the tiny segment's file is gone"
    );
    let files: Vec<_> = st.segments.iter().map(|s| ts_dir.join(&s.uri)).collect();
    // On disk: the listed segments and g-0, which left the playlist but stays available for
    // its duration plus the playlist's (RFC 8216 §6.2.2).
    let mut on_disk: Vec<String> = std::fs::read_dir(&ts_dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ts"))
        .collect();
    on_disk.sort();
    assert_eq!(on_disk, ["g-0.ts", "g-1.ts", "g-2.ts", "g-3.ts", "g-4.ts"]);
    // Each segment starts on a keyframe (an I frame ffprobe decodes first) and decodes on
    // its own without an error (before: "non-existing PPS 0 referenced").
    for f in &files {
        let (ff, first) = (f.clone(), f.clone());
        let frame = tokio::task::spawn_blocking(move || first_video_frame(&first))
            .await
            .unwrap();
        // "1,I", then any side data ffprobe lists (x264's SEI on the first IDR).
        assert!(frame.starts_with("1,I"), "{f:?}: {frame}");
        let (ok, errors) = tokio::task::spawn_blocking(move || ffmpeg_decode(&ff, "error"))
            .await
            .unwrap();
        assert!(ok && errors.trim().is_empty(), "{f:?}: {errors}");
    }
    // Read back to back, the segments are one continuous transport stream: our own count,
    // and ffmpeg's HLS demuxer (one MPEG-TS demuxer across segments) finds no gap.
    assert_continuous(&files);
    let vod = vod_copy(&m3u8);
    let (ok, log) = tokio::task::spawn_blocking(move || ffmpeg_decode(&vod, "debug"))
        .await
        .unwrap();
    assert!(ok, "{}", &log[log.len().saturating_sub(2000)..]);
    let gaps: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("Continuity check failed"))
        .collect();
    assert!(gaps.is_empty(), "{gaps:?}");

    // 2. Republish from timestamp 0 (a new encoder session): a discontinuity, numbering
    // continues; run the whole minute so the republish's first segment slides out.
    let mut p = rtmp_publisher(&server, "live/g").await;
    send_tags(&mut p, &tags, 10).await;
    p.close().await;
    assert!(wait_for(Duration::from_secs(5), unpublished).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = watcher.check(&mut history).expect("a playlist");
    println!("after the republish: {} states, {st:?}", history.states);
    assert_eq!(
        st.disc_seq, 1,
        "the discontinuity left and was counted: {st:?}"
    );
    assert!(st.media_seq > 5, "{st:?}");
    assert_eq!(st.target, 9, "{st:?}");

    // 3. Dispose: 3 s after the unpublish, the playlist and its segments are gone.
    assert!(
        wait_for(Duration::from_secs(8), || !m3u8.exists()).await,
        "disposed"
    );
    assert!(watcher.check(&mut history).is_none());
    let left = std::fs::read_dir(&ts_dir)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".ts"))
        .count();
    assert_eq!(left, 0, "segments disposed");

    // 4. A new life of the playlist: numbering from 0, no discontinuity.
    let mut p = rtmp_publisher(&server, "live/g").await;
    send_tags(&mut p, &tags[..tags.len() / 3], 10).await;
    p.close().await;
    assert!(wait_for(Duration::from_secs(5), unpublished).await);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let st = watcher.check(&mut history).expect("a playlist");
    println!(
        "after dispose and a new publish: {} states, {st:?}",
        history.states
    );
    assert_eq!((st.media_seq, st.disc_seq), (0, 0), "{st:?}");
    assert!(st.segments.iter().all(|s| !s.discontinuity), "{st:?}");
    assert!(history.states >= 15, "{} states checked", history.states);
}

/// `storage = "memory"`: the live window is served over HTTP from RAM and nothing is written
/// under the HLS path; ffprobe reads the live playlist and every segment it lists; memory
/// is bounded by the window and freed when the stream is disposed.
#[cfg_attr(
    any(srsd_missing = "ffmpeg", srsd_missing = "ffprobe"),
    ignore = "ffmpeg or ffprobe not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_from_memory_is_served_and_no_file_is_written() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let dir = temp_dir("hls-memory-files");
    let extra = format!(
        "[http_server]\nlisten = \"127.0.0.1:0\"\ndir = \"{d}\"\n\
         [vhost.\"__defaultVhost__\".hls]\nenabled = true\nfragment = 1\nwindow = 4\n\
         path = \"{d}\"\nstorage = \"memory\"\ndispose = 2\nctx = false\n",
        d = dir.display()
    );
    let server = start_server("hls-memory", &extra).await;
    let http = server.http.expect("HTTP server");
    let url = format!("http://127.0.0.1:{}/live/m.m3u8", http.port());
    let mut publisher = ffmpeg_publish(&server.url("live/m"), 14);
    let mem = server.ctx.hls_memory.clone();
    let mut checker = playlist::History::default();
    let mut peak = 0usize;
    let mut probed = 0;
    let started = std::time::Instant::now();
    while started.elapsed() < Duration::from_secs(13) {
        tokio::time::sleep(Duration::from_millis(700)).await;
        peak = peak.max(mem.bytes());
        let (head, body) = http_get(http, "/live/m.m3u8").await;
        if !head.starts_with("http/1.1 200") {
            continue;
        }
        let text = String::from_utf8(body).unwrap();
        let state = checker.check(&text);
        // Every segment the playlist lists is there, and ffprobe reads it as H.264 + AAC.
        for uri in state.segments.iter().map(|s| s.uri.clone()) {
            let seg = format!("http://127.0.0.1:{}/live/{uri}", http.port());
            if probed < 3 {
                let p = tokio::task::spawn_blocking(move || probe_streams(&seg, &[]))
                    .await
                    .unwrap();
                assert!(
                    p.iter().any(|(k, c)| k == "video" && c == "h264"),
                    "segment {uri}: {p:?}"
                );
                probed += 1;
            } else {
                let (head, seg) = http_get(http, &format!("/live/{uri}")).await;
                assert!(head.starts_with("http/1.1 200"), "{uri}: {head}");
                assert!(seg.len() % 188 == 0 && seg.first() == Some(&0x47), "{uri}");
            }
        }
    }
    assert!(probed >= 3, "segments were listed and probed");
    // ffprobe on the live playlist itself.
    let u = url.clone();
    let streams = tokio::task::spawn_blocking(move || probe_streams(&u, &[]))
        .await
        .unwrap();
    assert!(
        streams.iter().any(|(k, c)| k == "video" && c == "h264"),
        "{streams:?}"
    );
    // Nothing on disk under the HLS path.
    let files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir() || p.extension().is_some_and(|e| e != "pid"))
        .collect();
    assert!(files.is_empty(), "no file or directory written: {files:?}");
    // Bounded by the window: 4 s of a ~300 kbit/s test stream, plus retired segments.
    assert!(peak > 0 && peak < 4 * 1024 * 1024, "peak {peak} bytes");
    let _ = wait_exit(&mut publisher, Duration::from_secs(10)).await;
    assert!(
        wait_for(Duration::from_secs(10), || mem.is_empty()).await,
        "disposed: {} bytes left",
        mem.bytes()
    );
    let (head, _) = http_get(http, "/live/m.m3u8").await;
    assert!(head.starts_with("http/1.1 404"), "{head}");
}
