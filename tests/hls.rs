//! HLS written by the segmenter, read back by ffprobe and ffmpeg (programs no one here wrote).

mod common;

use common::*;
use std::process::Command;
use std::time::Duration;

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
    assert!(seq >= 2, "the window slid: {text}");
    let sum: f64 = durations(&text).iter().sum();
    assert!(sum <= 8.0 + 3.1, "window of about 8 s: {text}");
    // Segments that left the window are deleted.
    let ts_files = std::fs::read_dir(dir.join("html/live"))
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().ends_with(".ts"))
        .count();
    assert_eq!(ts_files, durations(&text).len(), "{text}");
}
