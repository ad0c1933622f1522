//! ffmpeg processes run by the server: transcode (`[[vhost.X.transcode]]`), ingest
//! (`[[ingest]]`) and their supervisor (restart with backoff, stop on unpublish, reload and
//! shutdown). Tests with real ffmpeg are ignored with the reason when it is missing (required in CI);
//! the supervisor tests use small shell scripts in place of ffmpeg.

mod common;

use common::*;
use srsd::hub::StreamKey;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn key(stream: &str) -> StreamKey {
    StreamKey::new("__defaultVhost__", "live", stream)
}

fn publishing(server: &TestServer, stream: &str) -> bool {
    server
        .ctx
        .hub
        .find(&key(stream))
        .is_some_and(|s| s.is_publishing())
}

/// Plays `url` for `secs` seconds into an FLV file with ffmpeg, then ffprobes the file.
async fn record_and_probe(url: String, out: PathBuf, secs: u32) -> Probe {
    tokio::task::spawn_blocking(move || {
        let status = Command::new("timeout")
            .stderr(child_log("ffmpeg"))
            .args(["30", "ffmpeg", "-hide_banner", "-loglevel", "error", "-y"])
            .args([
                "-i",
                &url,
                "-c",
                "copy",
                "-t",
                &secs.to_string(),
                "-f",
                "flv",
            ])
            .arg(&out)
            .stdin(Stdio::null())
            .status()
            .expect("run ffmpeg player");
        assert!(status.success(), "ffmpeg played {url}");
        ffprobe(&out.display().to_string())
    })
    .await
    .expect("player task")
}

/// A shell script standing in for ffmpeg: appends a line to `log` at every start, then runs
/// `then` (e.g. `exit 1`, `exec sleep 30`).
fn fake_ffmpeg(dir: &Path, then: &str) -> (PathBuf, PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let log = dir.join("starts.log");
    let script = dir.join("fake-ffmpeg.sh");
    let text = format!("#!/bin/sh\necho start >> '{}'\n{then}\n", log.display());
    std::fs::write(&script, text).expect("write fake ffmpeg");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    (script, log)
}

fn count_lines(p: &Path) -> usize {
    std::fs::read_to_string(p).map_or(0, |t| t.lines().count())
}

fn fake_ingest(script: &Path) -> String {
    format!(
        "[[ingest]]\nid = \"fake\"\nenabled = true\nffmpeg = \"{}\"\n\
         input = {{ type = \"stream\", url = \"rtmp://127.0.0.1:1/none/none\" }}\n\
         [[ingest.engine]]\nenabled = true\n\
         output = \"rtmp://127.0.0.1:[port]/live/fake?vhost=[vhost]\"\n",
        script.display()
    )
}

#[cfg_attr(
    any(srsd_missing = "ffmpeg", srsd_missing = "ffprobe"),
    ignore = "ffmpeg or ffprobe not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transcode_copy_engine_publishes_stream_ff_and_stops_on_unpublish() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let server = start_server(
        "ffprocs-transcode",
        "[[vhost.\"__defaultVhost__\".transcode]]\nenabled = true\nscope = \"live\"\n\
         [[vhost.\"__defaultVhost__\".transcode.engine]]\nname = \"ff\"\nenabled = true\n\
         vcodec = \"copy\"\nacodec = \"copy\"\n\
         output = \"rtmp://127.0.0.1:[port]/[app]/[stream]_[engine]?vhost=[vhost]\"\n",
    )
    .await;
    let publisher = ffmpeg_publish(&server.url("live/s"), 30);
    assert!(
        wait_for(Duration::from_secs(15), || publishing(&server, "s_ff")).await,
        "the transcoder published live/s_ff"
    );
    // The loop guard: s_ff is an engine's output and gets no transcoder of its own.
    assert_eq!(server.ctx.processes.len(), 1);

    let p = record_and_probe(server.url("live/s_ff"), server.dir.join("s_ff.flv"), 3).await;
    assert_eq!(p.video_codec, "h264", "{p:?}");
    assert_eq!(p.audio_codec, "aac", "{p:?}");
    assert!(p.video_frames >= 25, "{p:?}");

    drop(publisher);
    assert!(
        wait_for(Duration::from_secs(8), || !publishing(&server, "s")
            && !publishing(&server, "s_ff"))
        .await,
        "live/s_ff went away with its publisher"
    );
    assert!(
        wait_for(Duration::from_secs(5), || server.ctx.processes.is_empty()).await,
        "the transcoder's ffmpeg stopped"
    );
}

#[cfg_attr(
    any(srsd_missing = "ffmpeg", srsd_missing = "ffprobe"),
    ignore = "ffmpeg or ffprobe not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_of_a_file_publishes_a_looping_stream() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let dir = temp_dir("ffprocs-ingest-src");
    let source = make_flv(&dir, 2);
    let server = start_server(
        "ffprocs-ingest",
        &format!(
            "[[ingest]]\nid = \"file\"\nenabled = true\n\
             input = {{ type = \"file\", url = \"{}\" }}\n\
             [[ingest.engine]]\nenabled = true\nvcodec = \"copy\"\nacodec = \"copy\"\n\
             output = \"rtmp://127.0.0.1:[port]/live/ingested?vhost=[vhost]\"\n",
            source.display()
        ),
    )
    .await;
    assert!(
        wait_for(Duration::from_secs(15), || publishing(&server, "ingested")).await,
        "the ingester published live/ingested"
    );
    // Past the end of the 2 s file: -stream_loop keeps the same publish going.
    let p = record_and_probe(server.url("live/ingested"), server.dir.join("in.flv"), 4).await;
    assert_eq!(p.video_codec, "h264", "{p:?}");
    assert_eq!(p.audio_codec, "aac", "{p:?}");
    assert!(p.video_frames >= 75, "4 s of 25 fps across the loop: {p:?}");
    assert!(publishing(&server, "ingested"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn supervisor_restarts_a_failing_program_with_growing_backoff() {
    let dir = temp_dir("ffprocs-backoff");
    let (script, log) = fake_ffmpeg(&dir, "exit 1");
    let server = start_server("ffprocs-backoff-srv", &fake_ingest(&script)).await;
    // Starts at about 0, 1, 3 and 7 s (waits 1, 2, 4 s): note when each shows up.
    let t0 = Instant::now();
    let mut seen = Vec::new();
    while seen.len() < 4 && t0.elapsed() < Duration::from_secs(12) {
        let n = count_lines(&log);
        while seen.len() < n {
            seen.push(t0.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(seen.len(), 4, "four starts within 12 s: {seen:?}");
    let gaps: Vec<f64> = seen
        .windows(2)
        .map(|w| (w[1] - w[0]).as_secs_f64())
        .collect();
    assert!((0.8..1.8).contains(&gaps[0]), "first wait ~1 s: {gaps:?}");
    assert!((1.7..2.8).contains(&gaps[1]), "second wait ~2 s: {gaps:?}");
    assert!((3.6..4.9).contains(&gaps[2]), "third wait ~4 s: {gaps:?}");
    drop(server);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_follows_reload_and_stops_on_shutdown() {
    let dir = temp_dir("ffprocs-reload");
    let (script, log) = fake_ffmpeg(&dir, "exec sleep 30");
    let server = start_server("ffprocs-reload-srv", &fake_ingest(&script)).await;
    let ctx = server.ctx.clone();
    let live = || ctx.processes.len();
    assert!(wait_for(Duration::from_secs(5), || live() == 1).await);

    // A reload that leaves the ingester alone does not restart it.
    let config = (*ctx.config()).clone();
    ctx.set_config(config.clone());
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count_lines(&log), 1, "unchanged ingester kept running");

    // Removed: stopped. Added back: started.
    let mut without = config.clone();
    without.ingest.clear();
    ctx.set_config(without);
    assert!(wait_for(Duration::from_secs(5), || live() == 0).await);
    ctx.set_config(config);
    assert!(
        wait_for(Duration::from_secs(5), || live() == 1
            && count_lines(&log) == 2)
        .await
    );

    // Shutdown: SIGTERM to `sleep`, which dies of it.
    drop(server);
    assert!(
        wait_for(Duration::from_secs(5), || live() == 0).await,
        "the ingester stopped on shutdown"
    );
}
