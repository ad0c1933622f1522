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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_publishes_and_ffmpeg_and_rtmpdump_play() {
    if !have("ffmpeg") || !have("ffprobe") || !have("rtmpdump") {
        return;
    }
    let server = start_server("interop-play", "").await;
    let url = server.url("live/test");
    let _publisher = ffmpeg_publish(&url, 12);
    // Wait until the stream is live on the server.
    let key = srsd::hub::StreamKey::new("__defaultVhost__", "live", "test");
    let ctx = server.ctx.clone();
    assert!(
        wait_for(Duration::from_secs(10), || ctx
            .hub
            .find(&key)
            .is_some_and(|s| s.is_publishing()))
        .await,
        "ffmpeg's publish reached the server"
    );
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let ff_out = server.dir.join("ffmpeg-play.flv");
    let mut ff = Proc(
        Command::new("ffmpeg")
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
    let mut dump = Proc(
        Command::new("rtmpdump")
            .args(["-q", "--live", "-r", &url, "-o"])
            .arg(&dump_out)
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn rtmpdump"),
    );
    assert!(
        wait_exit(&mut ff, Duration::from_secs(20)).await,
        "ffmpeg played and exited cleanly"
    );
    // rtmpdump's --stop is unreliable on live streams: stop it after about 4 s of playing.
    let _ = wait_exit(&mut dump, Duration::from_secs(1)).await;

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
