//! The web console and the player page in a real browser: Debian's chromium driven by
//! playwright-core (`tests/browser/console.js`) against a server with ffmpeg publishing.
//!
//! Needs ffmpeg, node, chromium (`/usr/bin/chromium`, or `CHROMIUM`), `npm ci` in
//! `tests/browser/` and the player libraries in `target/www` (`packaging/web-assets.sh
//! target/www`). Without them `cargo test` lists the test as ignored with the reason (build.rs
//! decides); under `SRSD_REQUIRE_INTEROP=1` (CI) it runs and fails. `SRSD_SHOTS=DIR` saves the screenshots (`docs/` has them).

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// Whether everything the browser test needs is here; fails as [`have`] when not (build.rs
/// marks the test ignored when it found them missing).
fn have_browser() -> bool {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let needs: [(PathBuf, &str); 4] = [
        (
            PathBuf::from(&chromium),
            "chromium (apt-get install chromium)",
        ),
        (
            root.join("tests/browser/node_modules/playwright-core/package.json"),
            "playwright-core (npm ci in tests/browser)",
        ),
        (
            root.join("target/www/lib/mpegts.js"),
            "the player libraries (packaging/web-assets.sh target/www)",
        ),
        (
            root.join("target/www/lib/hls.min.js"),
            "the player libraries (packaging/web-assets.sh target/www)",
        ),
    ];
    for (path, what) in needs {
        if !path.exists() {
            panic!("{what} is required but {path:?} is missing");
        }
    }
    have("node")
}

/// `GET path` with Basic auth `admin:hunter2`; the whole answer as text ("" on failure).
async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let fetch = async {
        let mut c = tokio::net::TcpStream::connect(addr).await.ok()?;
        let req = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\n\
             Authorization: Basic YWRtaW46aHVudGVyMg==\r\nConnection: close\r\n\r\n"
        );
        c.write_all(req.as_bytes()).await.ok()?;
        let mut buf = Vec::new();
        c.read_to_end(&mut buf).await.ok()?;
        Some(String::from_utf8_lossy(&buf).into_owned())
    };
    tokio::time::timeout(Duration::from_secs(5), fetch)
        .await
        .ok()
        .flatten()
        .unwrap_or_default()
}

/// Polls the API until the stream shows its video codec (bounded).
async fn wait_for_video(api: std::net::SocketAddr) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while Instant::now() < deadline {
        if get(api, "/api/v1/streams").await.contains("\"H264\"") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    panic!("the published stream never showed H264 in the API");
}

#[cfg_attr(
    any(
        srsd_missing = "ffmpeg",
        srsd_missing = "chromium",
        srsd_missing = "node",
        srsd_missing = "playwright",
        srsd_missing = "www"
    ),
    ignore = "ffmpeg, chromium, node, playwright-core (npm ci in tests/browser) or target/www (packaging/web-assets.sh target/www) missing"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_lists_kicks_fits_a_phone_and_the_player_plays_flv_and_hls() {
    if !have("ffmpeg") || !have_browser() {
        return;
    }
    let name = "browser";
    // start_server's directory for this test: HLS writes where the HTTP server serves.
    let dir = temp_path(name);
    let extra = format!(
        "[http_api]\nlisten = \"127.0.0.1:0\"\n\
         [http_api.raw_api]\nenabled = true\nallow_reload = true\n\
         [http_api.auth]\nenabled = true\nusername = \"admin\"\npassword = \"hunter2\"\n\
         [console]\nwww = \"{www}\"\n\
         [vhost.\"__defaultVhost__\".http_remux]\nenabled = true\n\
         [vhost.\"__defaultVhost__\".hls]\nenabled = true\nfragment = 1\nwindow = 6\npath = \"{dir}\"\n\
         [vhost.\"__defaultVhost__\".dvr]\nenabled = true\npath = \"{dir}/dvr/[app]/[stream].flv\"\n",
        www = concat!(env!("CARGO_MANIFEST_DIR"), "/target/www"),
        dir = dir.display()
    );
    let srv = start_server(name, &extra).await;
    let (api, http) = (srv.api.expect("api"), srv.http.expect("http"));
    let _publisher = ffmpeg_publish(&srv.url("live/browser"), 180);
    wait_for_video(api).await;
    // An RTMP player for the console to kick.
    let mut player = Proc(
        std::process::Command::new("ffmpeg")
            .args(["-hide_banner", "-loglevel", "error", "-i"])
            .arg(srv.url("live/browser"))
            .args(["-f", "null", "-"])
            .stdin(Stdio::null())
            // Its "Input/output error" when kicked is expected.
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn ffmpeg player"),
    );
    // A short recording for the player's VOD check (DVR writes under the HTTP root).
    let mut recorder = ffmpeg_publish(&srv.url("live/rec"), 4);
    assert!(wait_exit(&mut recorder, Duration::from_secs(20)).await);
    let recording = dir.join("dvr/live/rec.flv");
    assert!(
        wait_for(Duration::from_secs(10), || recording.is_file()).await,
        "the recording {} was closed",
        recording.display()
    );
    // Seconds of HLS segments before the browser starts.
    tokio::time::sleep(Duration::from_secs(3)).await;

    let mut node = tokio::process::Command::new("node");
    node.arg("console.js")
        .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/browser"))
        .env("SRSD_API", format!("http://{api}"))
        .env("SRSD_HTTP", format!("http://{http}"))
        .env("SRSD_AUTH", "admin:hunter2")
        .env("SRSD_STREAM", "live/browser")
        .env("SRSD_KICK", "1")
        .env("SRSD_VOD", "/dvr/live/rec.flv")
        .stdin(Stdio::null())
        .kill_on_drop(true);
    let run = tokio::time::timeout(Duration::from_secs(240), node.output())
        .await
        .expect("the browser test finished within 240 s")
        .expect("run node");
    let out = String::from_utf8_lossy(&run.stdout);
    eprintln!("{out}{}", String::from_utf8_lossy(&run.stderr));
    assert!(run.status.success(), "browser checks failed:\n{out}");
    for want in [
        "Kick removed client",
        "no horizontal overflow at 360 px (console tabs and player)",
        "HTTP-FLV plays",
        "HLS plays",
        "a recording plays over HTTP VOD",
        "no Reload button when raw_api does not allow it",
        "without the player libraries the page says how to install them",
        "no JavaScript error in any page",
    ] {
        assert!(out.contains(want), "missing check {want:?}:\n{out}");
    }
    // The kicked RTMP player saw its connection close and ended.
    let deadline = Instant::now() + Duration::from_secs(10);
    while player.0.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        player.0.try_wait().ok().flatten().is_some(),
        "the kicked RTMP player is still running"
    );
}
