//! The README as a newcomer follows it: its configuration example, pasted into a file and run
//! with the real binary from the directory it names its relative paths in, takes an ffmpeg
//! publish and plays it back over HTTP-FLV and HLS.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The first ```toml block of README.md (the configuration example).
fn readme_example() -> &'static str {
    let readme = include_str!("../README.md");
    let start = readme
        .find("```toml\n")
        .expect("a toml block in the README")
        + 8;
    let len = readme[start..].find("```").expect("the block ends");
    &readme[start..start + len]
}

/// ffprobe's `codec_type,codec_name` lines for a URL, bounded in time.
fn probe(url: &str) -> String {
    let out = Command::new("timeout")
        .args(["30", "ffprobe", "-v", "error", "-rw_timeout", "5000000"])
        .args(["-show_entries", "stream=codec_type,codec_name"])
        .args(["-of", "csv=p=0", url])
        .stderr(Stdio::null())
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[cfg_attr(
    any(srsd_missing = "ffmpeg", srsd_missing = "ffprobe"),
    ignore = "ffmpeg or ffprobe not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readme_example_publishes_and_plays_flv_and_hls() {
    assert!(have("ffmpeg") && have("ffprobe"));
    let example = readme_example();
    // As pasted, but on ports this test bound itself (the example names 1935 and leaves
    // HTTP and the API on their defaults, 8080 and 1985).
    assert!(example.contains("listen = [\"1935\"]"), "{example}");
    assert!(!example.contains("[http_server]") && !example.contains("[http_api]"));
    let (rtmp, http, api) = (free_port(), free_port(), free_port());
    let text = example.replace(
        "listen = [\"1935\"]",
        &format!("listen = [\"127.0.0.1:{rtmp}\"]"),
    ) + &format!(
        "\n[http_server]\nlisten = \"127.0.0.1:{http}\"\n[http_api]\nlisten = \"127.0.0.1:{api}\"\n"
    );
    let dir = temp_dir("readme");
    std::fs::write(dir.join("srsd.toml"), &text).unwrap();
    let bin = env!("CARGO_BIN_EXE_srsd");
    let checked = Command::new(bin)
        .args(["-t", "-c", "srsd.toml"])
        .current_dir(&dir)
        .output()
        .unwrap();
    assert!(checked.status.success(), "srsd -t: {checked:?}");
    let mut server = Proc(
        Command::new(bin)
            .args(["-c", "srsd.toml"])
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stderr(child_log("srsd"))
            .spawn()
            .unwrap(),
    );
    assert!(
        wait_for(Duration::from_secs(10), || std::net::TcpStream::connect((
            "127.0.0.1",
            rtmp
        ))
        .is_ok())
        .await,
        "the server listens for RTMP"
    );
    assert!(
        dir.join("objs/srsd.log").is_file(),
        "it logs to ./objs/srsd.log"
    );
    let mut publisher = ffmpeg_publish(&format!("rtmp://127.0.0.1:{rtmp}/live/livestream"), 12);
    let m3u8 = dir.join("objs/html/live/livestream.m3u8");
    assert!(
        wait_for(Duration::from_secs(20), || std::fs::read_to_string(&m3u8)
            .is_ok_and(|t| t.matches("#EXTINF").count() >= 2))
        .await,
        "HLS written under ./objs/html"
    );
    let flv = format!("http://127.0.0.1:{http}/live/livestream.flv");
    let hls = format!("http://127.0.0.1:{http}/live/livestream.m3u8");
    let (flv_streams, hls_streams) =
        tokio::task::spawn_blocking(move || (probe(&flv), probe(&hls)))
            .await
            .unwrap();
    for (what, streams) in [("HTTP-FLV", &flv_streams), ("HLS", &hls_streams)] {
        assert!(streams.contains("h264,video"), "{what}: {streams}");
        assert!(streams.contains("aac,audio"), "{what}: {streams}");
    }
    assert!(wait_exit(&mut publisher, Duration::from_secs(30)).await);
    // A DVR segment is closed at unpublish, under the example's path.
    assert!(
        wait_for(Duration::from_secs(10), || std::fs::read_dir(
            dir.join("objs/dvr/live")
        )
        .is_ok_and(|d| d
            .flatten()
            .any(|e| e.file_name().to_string_lossy().ends_with(".flv"))))
        .await,
        "a recording under ./objs/dvr/live"
    );
    let _ = server.0.kill();
    let _ = server.0.wait();
}
