//! Enhanced RTMP end to end with a real modern ffmpeg (PyPI's imageio-ffmpeg, ffmpeg 9:
//! libx265, libsvtav1, libvpx-vp9, libopus): ffmpeg 9 publishes HEVC + AAC, AV1, VP9, and
//! HEVC + Opus; ffmpeg 9 plays them back over RTMP and HTTP-FLV as a late player whose first frame must be a
//! keyframe (`-vf showinfo` says `iskey:1`); Debian's ffprobe reads the HEVC HLS segments
//! and the HTTP-TS mount; `srsd probe` reports the codecs;
//! ffmpeg 9 reads the DVR file (Debian's ffprobe 5.1 predates Enhanced FLV); the API shows
//! the codecs and picture sizes. Skipped loudly when a program is missing; required in CI
//! (SRSD_REQUIRE_INTEROP=1).
//!
//! Clips are short and small (8 s, 320x180, 10 fps, GOP 1 s, x265 `ultrafast`, SVT-AV1 preset
//! 12, libvpx-vp9 `realtime`) and encoded once per test before publishing with `-c copy`, so
//! the timing-sensitive part costs little CPU.

mod common;

use common::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The modern ffmpeg, or None (the test is then skipped loudly, or fails in CI).
fn modern_ffmpeg() -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())",
        ])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && !path.is_empty() {
        return Some(path);
    }
    if std::env::var("SRSD_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
        panic!("imageio-ffmpeg is required (SRSD_REQUIRE_INTEROP=1): pip install imageio-ffmpeg");
    }
    eprintln!("\n*** SKIPPED: imageio-ffmpeg (a modern ffmpeg) not installed ***\n");
    None
}

/// Encodes an 8 s clip into `dir/NAME.mkv` with the given codec arguments.
fn encode(ff9: &str, dir: &Path, name: &str, audio: bool, codec_args: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}.mkv"));
    let mut c = Command::new(ff9);
    c.args(["-hide_banner", "-loglevel", "error", "-y"]).args([
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x180:rate=10",
    ]);
    if audio {
        c.args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]);
    }
    // Output captured: SVT-AV1 logs to stderr whatever -loglevel says.
    let o = c
        .args(["-t", "8", "-pix_fmt", "yuv420p"])
        .args(codec_args)
        .arg(&out)
        .stdin(Stdio::null())
        .output()
        .expect("run ffmpeg 9");
    assert!(
        o.status.success(),
        "encoding {name}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    out
}

const X265: &[&str] = &[
    "-c:v",
    "libx265",
    "-preset",
    "ultrafast",
    "-x265-params",
    "keyint=10:min-keyint=10:log-level=none",
];
const SVTAV1: &[&str] = &[
    "-c:v",
    "libsvtav1",
    "-preset",
    "12",
    "-g",
    "10",
    "-svtav1-params",
    "lp=1",
];

const VPX_VP9: &[&str] = &[
    "-c:v",
    "libvpx-vp9",
    "-deadline",
    "realtime",
    "-cpu-used",
    "8",
    "-g",
    "10",
    "-b:v",
    "200k",
];

/// ffmpeg 9 publishing `clip` in real time to `url` (FLV muxer: Enhanced RTMP for HEVC, AV1
/// and Opus).
fn publish(ff9: &str, clip: &Path, url: &str) -> Proc {
    Proc(
        Command::new(ff9)
            .args(["-hide_banner", "-loglevel", "error", "-re", "-i"])
            .arg(clip)
            .args(["-c", "copy", "-f", "flv", url])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn ffmpeg 9 publisher"),
    )
}

/// What ffmpeg 9 saw playing `url` for about 1.5 s: its stderr (stream list, showinfo lines).
async fn play(ff9: &str, url: &str) -> String {
    let mut c = tokio::process::Command::new("timeout");
    c.args(["20", ff9, "-hide_banner", "-i", url, "-t", "1.5"])
        .args(["-map", "0:v", "-vf", "showinfo", "-f", "null", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .kill_on_drop(true);
    let out = c.output().await.expect("run ffmpeg 9 player");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The `iskey` of the first frame showinfo printed.
fn first_iskey(log: &str) -> Option<&str> {
    let line = log
        .lines()
        .find(|l| l.contains("Parsed_showinfo") && l.contains(" n:"))?;
    let at = line.find("iskey:")? + 6;
    line.get(at..at + 1)
}

async fn api_streams(api: SocketAddr) -> serde_json::Value {
    let body = api_get(api, "/api/v1/streams").await;
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("API JSON: {e}: {body}"))
}

/// The body of `GET path` on the API.
async fn api_get(api: SocketAddr, path: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(api)
        .await
        .expect("connect API");
    let request = format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    s.write_all(request.as_bytes()).await.expect("send");
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .expect("API answers in time")
        .expect("read");
    let text = String::from_utf8_lossy(&buf);
    text.split_once("\r\n\r\n")
        .map_or("", |(_, b)| b)
        .to_string()
}

fn config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "[vhost.\"__defaultVhost__\".http_remux]\nenabled = true\n\
         [vhost.\"__defaultVhost__\".hls]\nenabled = true\nfragment = 1\nwindow = 30\npath = \"{d}\"\n\
         [vhost.\"__defaultVhost__\".dvr]\nenabled = true\npath = \"{d}/dvr/[app]/[stream].flv\"\n"
    )
}

/// Publishes `clip`, then checks late RTMP and HTTP-FLV players and the API while it runs.
/// Returns the API's stream object.
async fn publish_and_play(
    ff9: &str,
    server: &TestServer,
    clip: &Path,
    stream: &str,
) -> (Proc, serde_json::Value) {
    let url = server.url(&format!("live/{stream}"));
    let publisher = publish(ff9, clip, &url);
    assert!(
        wait_publishing(server, &format!("live/{stream}"), Duration::from_secs(10)).await,
        "ffmpeg 9's publish of {stream} reached the server"
    );
    // Late players: join after more than one GOP went by.
    tokio::time::sleep(Duration::from_millis(1600)).await;
    // The API while the stream is live (before the players: the clip lasts 8 s).
    let j = api_streams(server.api.expect("API")).await;
    let s = j["streams"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == stream))
        .unwrap_or_else(|| panic!("{stream} in the API: {j}"))
        .clone();
    let http = server.http.expect("HTTP server");
    let flv = format!("http://{http}/live/{stream}.flv");
    let ts = format!("http://{http}/live/{stream}.ts");
    // At the same time: `srsd probe` (the project's own RTMP prober) and Debian's ffprobe
    // on the HTTP-TS mount.
    let probe = tokio::process::Command::new(env!("CARGO_BIN_EXE_srsd"))
        .args(["probe", &url, "--duration", "1.5"])
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let ts_probe = tokio::task::spawn_blocking(move || {
        probe_stream_fields(
            &ts,
            &["-rw_timeout", "5000000"],
            "codec_type,codec_name,width,height",
        )
    });
    let (rtmp_log, flv_log, probe) = tokio::join!(play(ff9, &url), play(ff9, &flv), probe);
    let probe = probe.expect("run srsd probe");
    let probe: serde_json::Value = serde_json::from_slice(&probe.stdout).unwrap_or_else(|e| {
        panic!(
            "srsd probe JSON: {e}: {}",
            String::from_utf8_lossy(&probe.stdout)
        )
    });
    assert_eq!(
        probe["video"],
        s["video"].as_object().map_or(serde_json::Value::Null, |v| {
            let mut v = v.clone();
            v.remove("hls_skipped");
            v.into()
        }),
        "{stream}: srsd probe reports what the API does"
    );
    let ts_streams = ts_probe.await.expect("ffprobe task");
    let ts_video = ts_streams.iter().find(|f| f.iter().any(|x| x == "video"));
    if s["video"]["codec"] == "H265" {
        let v = ts_video.unwrap_or_else(|| panic!("{stream}: HTTP-TS video: {ts_streams:?}"));
        assert!(
            v.contains(&"hevc".to_string())
                && v.contains(&"320".to_string())
                && v.contains(&"180".to_string()),
            "{stream}: HTTP-TS {v:?}"
        );
    } else {
        assert!(
            ts_video.is_none(),
            "{stream}: no video track in HTTP-TS: {ts_streams:?}"
        );
    }
    for (who, log) in [("RTMP", &rtmp_log), ("HTTP-FLV", &flv_log)] {
        assert_eq!(
            first_iskey(log),
            Some("1"),
            "{stream}: a late {who} player's first frame is a keyframe:\n{log}"
        );
        assert!(log.contains("320x180"), "{stream} over {who}:\n{log}");
    }
    (publisher, s)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_aac_from_ffmpeg9_plays_late_and_goes_to_hls_and_dvr() {
    let Some(ff9) = modern_ffmpeg() else { return };
    if !have("ffprobe") {
        return;
    }
    let dir = temp_dir("enhanced-hevc-build");
    let mut args = X265.to_vec();
    args.extend(["-c:a", "aac", "-b:a", "48k"]);
    let clip = encode(&ff9, &dir, "hevc-aac", true, &args);
    let server = start_server("enhanced-hevc", &config(&temp_dir("enhanced-hevc-out"))).await;
    let (mut publisher, s) = publish_and_play(&ff9, &server, &clip, "hevc").await;
    assert_eq!(s["video"]["codec"], "H265", "{s}");
    assert_eq!(s["video"]["profile"], "Main", "{s}");
    assert_eq!(
        (s["video"]["width"].as_u64(), s["video"]["height"].as_u64()),
        (Some(320), Some(180)),
        "{s}"
    );
    assert_eq!(s["audio"]["codec"], "AAC", "{s}");
    assert!(
        s["video"].get("hls_skipped").is_none(),
        "HEVC goes to HLS: {s}"
    );
    assert!(
        wait_exit(&mut publisher, Duration::from_secs(15)).await,
        "publisher done"
    );
    let out = temp_path("enhanced-hevc-out");

    // HLS: every segment is HEVC at 320x180 with AAC, as Debian's ffprobe reads it.
    assert!(
        wait_for(Duration::from_secs(5), || segments(&out.join("live")).len()
            >= 3)
        .await,
        "segments written"
    );
    let segs = segments(&out.join("live"));
    for seg in &segs {
        let p = ffprobe(&seg.display().to_string());
        assert_eq!(
            (p.video_codec.as_str(), p.audio_codec.as_str()),
            ("hevc", "aac"),
            "{}: {p:?}",
            seg.display()
        );
        assert_eq!((p.width, p.height), (320, 180), "{}", seg.display());
        assert!(p.video_frames >= 5, "{}: {p:?}", seg.display());
    }

    // DVR: the Enhanced FLV file as recorded, read by ffmpeg 9.
    let dvr = out.join("dvr/live/hevc.flv");
    assert!(
        wait_for(Duration::from_secs(5), || dvr.exists()).await,
        "DVR file"
    );
    let o = Command::new(&ff9)
        .args(["-hide_banner", "-i"])
        .arg(&dvr)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg 9 reads the DVR file");
    let log = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{log}");
    assert!(
        log.contains("Video: hevc") && log.contains("320x180"),
        "{log}"
    );
    assert!(log.contains("Audio: aac"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn av1_from_ffmpeg9_plays_late_and_the_api_says_why_hls_skips_it() {
    let Some(ff9) = modern_ffmpeg() else { return };
    let dir = temp_dir("enhanced-av1-build");
    let clip = encode(&ff9, &dir, "av1", false, SVTAV1);
    let server = start_server("enhanced-av1", &config(&temp_dir("enhanced-av1-out"))).await;
    let (mut publisher, s) = publish_and_play(&ff9, &server, &clip, "av1").await;
    assert_eq!(s["video"]["codec"], "AV1", "{s}");
    assert_eq!(
        (s["video"]["width"].as_u64(), s["video"]["height"].as_u64()),
        (Some(320), Some(180)),
        "{s}"
    );
    assert!(
        s["video"]["hls_skipped"]
            .as_str()
            .is_some_and(|w| w.contains("AV1")),
        "{s}"
    );
    assert!(s["audio"].is_null(), "{s}");
    let _ = wait_exit(&mut publisher, Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vp9_from_ffmpeg9_plays_late_and_the_api_reads_its_size_from_a_keyframe() {
    let Some(ff9) = modern_ffmpeg() else { return };
    let dir = temp_dir("enhanced-vp9-build");
    let clip = encode(&ff9, &dir, "vp9", false, VPX_VP9);
    let server = start_server("enhanced-vp9", &config(&temp_dir("enhanced-vp9-out"))).await;
    let (mut publisher, s) = publish_and_play(&ff9, &server, &clip, "vp9").await;
    assert_eq!(s["video"]["codec"], "VP9", "{s}");
    assert_eq!(s["video"]["profile"], "Profile0", "{s}");
    // vpcC has no picture size: it comes from the first keyframe's uncompressed header.
    assert_eq!(
        (s["video"]["width"].as_u64(), s["video"]["height"].as_u64()),
        (Some(320), Some(180)),
        "{s}"
    );
    assert!(
        s["video"]["hls_skipped"]
            .as_str()
            .is_some_and(|w| w.contains("VP9")),
        "{s}"
    );
    let metrics = api_get(server.api.expect("API"), "/metrics").await;
    assert!(
        metrics.lines().any(|l| l.starts_with("srsd_stream_info{")
            && l.contains("stream=\"vp9\"")
            && l.contains("video_codec=\"VP9\",width=\"320\",height=\"180\"")),
        "{metrics}"
    );
    let _ = wait_exit(&mut publisher, Duration::from_secs(15)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hevc_opus_from_ffmpeg9_plays_late_and_hls_keeps_the_video() {
    let Some(ff9) = modern_ffmpeg() else { return };
    if !have("ffprobe") {
        return;
    }
    let dir = temp_dir("enhanced-opus-build");
    let mut args = X265.to_vec();
    args.extend(["-c:a", "libopus", "-b:a", "32k"]);
    let clip = encode(&ff9, &dir, "hevc-opus", true, &args);
    let server = start_server("enhanced-opus", &config(&temp_dir("enhanced-opus-out"))).await;
    let (mut publisher, s) = publish_and_play(&ff9, &server, &clip, "opus").await;
    assert_eq!(s["video"]["codec"], "H265", "{s}");
    assert_eq!(s["audio"]["codec"], "Opus", "{s}");
    assert_eq!(s["audio"]["sample_rate"].as_u64(), Some(48_000), "{s}");
    assert!(
        s["audio"]["hls_skipped"]
            .as_str()
            .is_some_and(|w| w.contains("Opus")),
        "{s}"
    );
    assert!(
        wait_exit(&mut publisher, Duration::from_secs(15)).await,
        "publisher done"
    );
    let out = temp_path("enhanced-opus-out");
    assert!(
        wait_for(Duration::from_secs(5), || segments(&out.join("live")).len()
            >= 3)
        .await,
        "segments written"
    );
    // The Opus track is left out; the HEVC track is whole.
    let seg = &segments(&out.join("live"))[1];
    let p = ffprobe(&seg.display().to_string());
    assert_eq!(
        (p.video_codec.as_str(), p.audio_codec.as_str()),
        ("hevc", ""),
        "{p:?}"
    );
    assert_eq!((p.width, p.height), (320, 180));
}

/// The `.ts` files of `dir`, sorted by name.
fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "ts"))
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// Edge pull and forward relay Enhanced RTMP unchanged: ffmpeg 9 publishes HEVC + Opus to an
/// origin that forwards to a second server; a late ffmpeg 9 player on an edge (which pulls
/// from the origin, announcing `fourCcList`) starts on a keyframe; the forward destination
/// knows the codecs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edge_pull_and_forward_relay_enhanced_hevc_and_opus() {
    let Some(ff9) = modern_ffmpeg() else { return };
    let dir = temp_dir("enhanced-relay-build");
    let mut args = X265.to_vec();
    args.extend(["-c:a", "libopus", "-b:a", "32k"]);
    let clip = encode(&ff9, &dir, "relay", true, &args);
    let dest = start_server("enhanced-relay-dest", "").await;
    let origin = start_server(
        "enhanced-relay-origin",
        &format!(
            "[vhost.\"__defaultVhost__\".forward]\nenabled = true\ndestination = [\"127.0.0.1:{}\"]\n",
            dest.addr.port()
        ),
    )
    .await;
    let edge = start_server(
        "enhanced-relay-edge",
        &format!(
            "[vhost.\"__defaultVhost__\".cluster]\nmode = \"remote\"\norigin = [\"127.0.0.1:{}\"]\n",
            origin.addr.port()
        ),
    )
    .await;
    let _publisher = publish(&ff9, &clip, &origin.url("live/relay"));
    assert!(
        wait_publishing(&origin, "live/relay", Duration::from_secs(10)).await,
        "published to the origin"
    );
    assert!(
        wait_publishing(&dest, "live/relay", Duration::from_secs(10)).await,
        "forwarded to the destination"
    );
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let log = play(&ff9, &edge.url("live/relay")).await;
    assert_eq!(first_iskey(&log), Some("1"), "edge player:\n{log}");
    assert!(
        log.contains("hevc") && log.contains("320x180") && log.contains("opus"),
        "{log}"
    );
    let j = api_streams(dest.api.expect("API")).await;
    let s = &j["streams"][0];
    assert_eq!(
        (s["video"]["codec"].as_str(), s["audio"]["codec"].as_str()),
        (Some("H265"), Some("Opus")),
        "{j}"
    );
    assert_eq!(s["video"]["width"].as_u64(), Some(320), "{j}");
}
