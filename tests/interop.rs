//! Interop with programs no one here wrote: ffmpeg publishes and plays, rtmpdump plays,
//! ffprobe checks what came out. Skipped loudly when a program is missing; required in CI
//! (SRSD_REQUIRE_INTEROP=1).

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

async fn probe(path: std::path::PathBuf) -> Probe {
    tokio::task::spawn_blocking(move || ffprobe(&path.display().to_string()))
        .await
        .expect("ffprobe task")
}

#[cfg_attr(
    any(
        srsd_missing = "ffmpeg",
        srsd_missing = "ffprobe",
        srsd_missing = "rtmpdump"
    ),
    ignore = "ffmpeg, ffprobe or rtmpdump not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_and_ffmpeg_and_rtmpdump_play() {
    if !have("ffmpeg") || !have("ffprobe") || !have("rtmpdump") {
        return;
    }
    let server = start_server("interop-play", "").await;
    let url = server.url("live/test");
    let _publisher = ffmpeg_publish(&url, 12);
    // Wait until the stream is live on the server.
    assert!(
        wait_publishing(&server, "live/test", Duration::from_secs(10)).await,
        "ffmpeg's publish reached the server"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let ff_out = server.dir.join("ffmpeg-play.flv");
    let mut ff = Proc(
        Command::new("ffmpeg")
            .stderr(child_log("ffmpeg"))
            .args([
                "-hide_banner",
                "-loglevel",
                "error",
                "-y",
                "-i",
                &url,
                "-c",
                "copy",
                "-t",
                "4",
                "-f",
                "flv",
            ])
            .arg(&ff_out)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn ffmpeg player"),
    );
    let dump_out = server.dir.join("rtmpdump-play.flv");
    let dump_started = std::time::Instant::now();
    let mut dump = Proc(
        Command::new("rtmpdump")
            .stderr(child_log("rtmpdump"))
            // --stop 4: the play command asks for 4000 ms, and the server ends the play
            // there (as SRS 6 does, srs#45); rtmpdump itself does not stop a live stream.
            .args(["-q", "--live", "--stop", "4", "-r", &url, "-o"])
            .arg(&dump_out)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn rtmpdump"),
    );
    assert!(
        wait_exit(&mut ff, Duration::from_secs(20)).await,
        "ffmpeg played and exited cleanly"
    );
    // Ended by the server after 4 s of media: the cached GOP's second and 3 s of live
    // frames. rtmpdump exits 2 (RD_INCOMPLETE): the stream's metadata says 12 s.
    let dumped = wait_status(&mut dump, Duration::from_secs(10)).await;
    let took = dump_started.elapsed();
    assert!(
        matches!(dumped.and_then(|s| s.code()), Some(0 | 2)),
        "rtmpdump --stop 4 ended on its own: {dumped:?} after {took:?}"
    );
    assert!(took < Duration::from_secs(8), "{took:?}");

    for (who, file) in [("ffmpeg", ff_out), ("rtmpdump", dump_out)] {
        let p = probe(file).await;
        assert_eq!(p.video_codec, "h264", "{who}: {p:?}");
        assert_eq!(p.audio_codec, "aac", "{who}: {p:?}");
        assert_eq!((p.width, p.height), (320, 240), "{who}: {p:?}");
        // About 4 s at 25 fps, plus up to one cached GOP (1 s).
        assert!(
            (60..=160).contains(&p.video_frames),
            "{who}: {} video frames",
            p.video_frames
        );
    }
}

#[cfg_attr(srsd_missing = "ffmpeg", ignore = "ffmpeg not installed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_ffmpeg_publisher_is_refused_fast() {
    if !have("ffmpeg") {
        return;
    }
    let server = start_server("interop-busy", "").await;
    let url = server.url("live/busy");
    let _first = ffmpeg_publish(&url, 15);
    let key = srsd::hub::StreamKey::new("__defaultVhost__", "live", "busy");
    let ctx = server.ctx.clone();
    assert!(
        wait_for(Duration::from_secs(10), || ctx
            .hub
            .find(&key)
            .is_some_and(|s| s.is_publishing()))
        .await
    );
    let started = std::time::Instant::now();
    let mut second = ffmpeg_publish(&url, 15);
    let ok = wait_exit(&mut second, Duration::from_secs(10)).await;
    assert!(!ok, "second publisher must fail");
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "and fail fast, not loop"
    );
    // The first one is still publishing.
    assert!(ctx.hub.find(&key).is_some_and(|s| s.is_publishing()));
}

/// Video packet times (s) of a file, from ffprobe.
fn video_packet_times(path: &std::path::Path) -> Vec<f64> {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-select_streams",
            "v:0",
            "-show_entries",
            "packet=dts_time",
        ])
        .args(["-of", "csv=p=0"])
        .arg(path)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.trim().trim_end_matches(',').parse().ok())
        .collect()
}

/// A publisher whose timestamps start 3 s before the 2^32 ms wrap (and are past the 24-bit
/// extended-timestamp limit all along); ffmpeg plays with timestamps passed through
/// (`time_jitter = "off"`, so it sees the wire wrap) and with the default `full`.
#[cfg_attr(
    any(srsd_missing = "ffmpeg", srsd_missing = "ffprobe"),
    ignore = "ffmpeg or ffprobe not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_near_2_pow_32_ms_plays_in_ffmpeg_without_a_stall() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let server = start_server(
        "interop-wrap",
        // The ffmpeg players end when the stream does: they ask for UnpublishNotify.
        "[vhost.\"__defaultVhost__\".play]\npublish_notify = true\n\
         [vhost.\"off.test\"]\n[vhost.\"off.test\".play]\ntime_jitter = \"off\"\npublish_notify = true\n",
    )
    .await;
    let dir = server.dir.clone();
    let source = tokio::task::spawn_blocking(move || make_flv(&dir, 8))
        .await
        .unwrap();
    let data = bytes::Bytes::from(std::fs::read(&source).unwrap());

    let mut players = Vec::new();
    for (name, query) in [("off", "?vhost=off.test"), ("full", "")] {
        let out = server.dir.join(format!("wrap-{name}.flv"));
        let url = format!("rtmp://127.0.0.1:{}/live{query}/wrap", server.addr.port());
        let p = Proc(
            Command::new("ffmpeg")
                .stderr(child_log("ffmpeg"))
                .args([
                    "-hide_banner",
                    "-loglevel",
                    "error",
                    "-y",
                    "-i",
                    &url,
                    "-c",
                    "copy",
                    "-f",
                    "flv",
                ])
                .arg(&out)
                .stdin(Stdio::null())
                .spawn()
                .expect("spawn ffmpeg player"),
        );
        players.push((name, p, out));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;

    // Publish the file in real time with every timestamp shifted near the wrap; the same
    // stream goes to both vhosts.
    let offset = u32::MAX - 3000;
    let mut pubs = Vec::new();
    for query in ["?vhost=off.test", ""] {
        let url = srsd::client::RtmpUrl::parse(&format!(
            "rtmp://127.0.0.1:{}/live{query}/wrap",
            server.addr.port()
        ))
        .unwrap();
        let mut c = srsd::client::RtmpClient::connect(&url, Duration::from_secs(5))
            .await
            .unwrap();
        c.publish(&url.stream, Duration::from_secs(5))
            .await
            .unwrap();
        pubs.push(c);
    }
    let mut dec = srsd::protocol::flv::FlvDecoder::new();
    let mut buf = bytes::BytesMut::from(&data[..]);
    let start = tokio::time::Instant::now();
    while let Some(tag) = dec.decode(&mut buf).unwrap() {
        tokio::time::sleep_until(start + Duration::from_millis(tag.timestamp as u64)).await;
        for c in pubs.iter_mut() {
            c.send(
                tag.kind,
                tag.timestamp.wrapping_add(offset),
                tag.payload.clone(),
            )
            .await
            .unwrap();
        }
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    for c in pubs {
        c.close().await;
    }
    for (name, mut p, out) in players {
        let _ = wait_exit(&mut p, Duration::from_secs(10)).await;
        let times = tokio::task::spawn_blocking(move || video_packet_times(&out))
            .await
            .unwrap();
        assert!(
            times.len() >= 150,
            "{name}: {} of 200 video frames",
            times.len()
        );
        let max_gap = times.windows(2).map(|w| w[1] - w[0]).fold(0.0f64, f64::max);
        let min_gap = times
            .windows(2)
            .map(|w| w[1] - w[0])
            .fold(f64::MAX, f64::min);
        assert!(max_gap < 0.5, "{name}: a {max_gap} s gap in playback");
        assert!(
            min_gap >= 0.0,
            "{name}: timestamps went backwards by {min_gap} s"
        );
    }
}

/// `srsd probe` reads what ffmpeg publishes: codecs, size, metadata, frame rate.
#[cfg_attr(srsd_missing = "ffmpeg", ignore = "ffmpeg not installed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn srsd_probe_describes_an_ffmpeg_stream() {
    if !have("ffmpeg") {
        return;
    }
    let server = start_server("probe-tool", "").await;
    let _ff = ffmpeg_publish(&server.url("live/p"), 15);
    assert!(wait_publishing(&server, "live/p", Duration::from_secs(15)).await);
    let url = server.url("live/p");
    let out = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_srsd"))
            .args(["probe", &url, "--duration", "3"])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let json = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{json} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "\"codec\":\"H264\"",
        "\"width\":320,\"height\":240",
        "\"codec\":\"AAC\"",
        "\"sample_rate\":44100",
        "\"metadata\":{",
        "\"encoder\":\"Lavf",
    ] {
        assert!(json.contains(want), "{want} in {json}");
    }
    let fps: f64 = json
        .split("\"fps\":")
        .nth(1)
        .and_then(|r| r.split([',', '}']).next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!((20.0..=30.0).contains(&fps), "about 25 fps: {json}");
}
