//! libsrsd_rtmp from C: the example programs `examples/c/publish.c` and `examples/c/play.c`
//! compiled with `cc` against the static library, run against srsd and against nginx-rtmp,
//! judged by ffprobe; and run under valgrind, which must find no leak and no invalid access in
//! the library's API.
//!
//! The library is built by `cargo build -p srsd_rtmp` into this test's own target directory
//! and profile. Needs cc and ffmpeg (and nginx-rtmp, valgrind for their parts): ignored with
//! the reason when missing (build.rs), failed when SRSD_REQUIRE_INTEROP=1.

mod common;

use common::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// `target/<profile>` of this test binary (`target/<profile>/deps/clib-HASH`).
fn profile_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test exe");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps")
        .to_path_buf()
}

/// Builds the library (once per test binary) and the two examples; their paths.
fn examples() -> &'static (PathBuf, PathBuf) {
    static BUILT: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    BUILT.get_or_init(|| {
        let profile = profile_dir();
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new("timeout");
        build
            .arg("900")
            .arg(cargo)
            .args(["build", "-p", "srsd_rtmp"]);
        if profile.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        let target = profile.parent().expect("target dir");
        let status = build
            .env("CARGO_TARGET_DIR", target)
            .current_dir(root)
            .status()
            .expect("run cargo");
        assert!(status.success(), "cargo build -p srsd_rtmp");
        let lib = profile.join("libsrsd_rtmp.a");
        assert!(lib.exists(), "{}", lib.display());
        let out = temp_dir("clib-bin");
        let mut paths = Vec::new();
        for name in ["publish", "play"] {
            let bin = out.join(name);
            let ok = Command::new("cc")
                .args([
                    "-std=c99",
                    "-D_POSIX_C_SOURCE=200809L",
                    "-Wall",
                    "-Wextra",
                    "-Werror",
                    "-g",
                ])
                .arg("-I")
                .arg(root.join("include"))
                .arg(root.join(format!("examples/c/{name}.c")))
                .arg(&lib)
                .args(["-lpthread", "-ldl", "-lm", "-o"])
                .arg(&bin)
                .status()
                .expect("run cc")
                .success();
            assert!(ok, "cc {name}.c");
            paths.push(bin);
        }
        (paths[0].clone(), paths[1].clone())
    })
}

fn spawn(program: &Path, args: &[&str]) -> Proc {
    Proc(
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            // Their "published N tags" lines go to the temp root's log, not the test output.
            .stdout(child_log("clib-examples"))
            .stderr(child_log("clib-examples"))
            .spawn()
            .expect("spawn"),
    )
}

/// Plays `url` into `out` for `secs` with the C example while the C example publishes
/// `source` to `publish_url`; both must exit 0 in time.
async fn publish_and_play(source: &Path, publish_url: &str, url: &str, out: &Path, secs: u32) {
    let (publish, play) = examples();
    let mut player = spawn(play, &[url, out.to_str().unwrap(), &secs.to_string()]);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut publisher = spawn(publish, &[source.to_str().unwrap(), publish_url]);
    let limit = Duration::from_secs(u64::from(secs) + 20);
    assert!(wait_exit(&mut publisher, limit).await, "publish.c exits 0");
    assert!(wait_exit(&mut player, limit).await, "play.c exits 0");
}

fn tools() -> bool {
    have("cc") && have("ffmpeg") && have("ffprobe")
}

#[cfg_attr(
    any(srsd_missing = "cc", srsd_missing = "ffmpeg", srsd_missing = "ffprobe"),
    ignore = "cc, ffmpeg or ffprobe not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_examples_publish_and_play_through_srsd() {
    if !tools() {
        return;
    }
    let server = start_server("clib-srsd", "").await;
    let source = make_flv(&server.dir, 4);
    let out = server.dir.join("played.flv");
    publish_and_play(
        &source,
        &server.url("live/c"),
        &server.url("live/c"),
        &out,
        7,
    )
    .await;
    let p = ffprobe(out.to_str().unwrap());
    assert_eq!(
        (p.video_codec.as_str(), p.audio_codec.as_str()),
        ("h264", "aac")
    );
    assert_eq!((p.width, p.height), (320, 240));
    // 4 s at 25 fps, the player joined before the publisher.
    assert!(p.video_frames >= 90, "{p:?}");
}

#[cfg_attr(
    any(
        srsd_missing = "nginx",
        srsd_missing = "nginx-rtmp",
        srsd_missing = "cc",
        srsd_missing = "ffmpeg",
        srsd_missing = "ffprobe"
    ),
    ignore = "nginx, libnginx-mod-rtmp, cc, ffmpeg or ffprobe not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn c_examples_publish_and_play_through_nginx_rtmp() {
    if !tools() || !have_nginx_rtmp() {
        return;
    }
    let (_nginx, addr) = start_nginx("clib-nginx").await;
    let dir = temp_dir("clib-nginx-media");
    let source = make_flv(&dir, 4);
    let out = dir.join("played.flv");
    let url = format!("rtmp://{addr}/live/c");
    // nginx-rtmp has no waiting players: the player starts after the publisher.
    let (publish, play) = examples();
    let mut publisher = spawn(publish, &[source.to_str().unwrap(), &url]);
    tokio::time::sleep(Duration::from_millis(700)).await;
    let mut player = spawn(play, &[&url, out.to_str().unwrap(), "5"]);
    assert!(
        wait_exit(&mut publisher, Duration::from_secs(25)).await,
        "publish.c exits 0"
    );
    assert!(
        wait_exit(&mut player, Duration::from_secs(25)).await,
        "play.c exits 0"
    );
    let p = ffprobe(out.to_str().unwrap());
    assert_eq!(p.video_codec, "h264", "{p:?}");
    assert_eq!(p.audio_codec, "aac", "{p:?}");
    assert!(p.video_frames >= 40, "{p:?}");
}

#[cfg_attr(srsd_missing = "cc", ignore = "cc not installed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urls_and_refused_publishes_fail_with_a_message() {
    if !have("cc") {
        return;
    }
    let (publish, play) = examples();
    let server = start_server("clib-errors", "").await;
    let source = server.dir.join("none.flv");
    std::fs::write(&source, b"FLV\x01\x05\0\0\0\x09\0\0\0\0").unwrap();
    let out = Command::new(play)
        .args(["http://x/y/z", "/dev/null", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "bad URL");
    // A busy stream: the second publisher is refused with the server's status code.
    let _first = rtmp_publisher(&server, "live/busy").await;
    let out = Command::new(publish)
        .arg(&source)
        .arg(server.url("live/busy"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("rejected") && err.contains("NetStream.Publish"),
        "{err}"
    );
    // Nothing listening.
    let out = Command::new(play)
        .args([
            &format!("rtmp://127.0.0.1:{}/live/s", free_port()),
            "/dev/null",
            "1",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("socket error"));
}

/// valgrind over both examples: no definite or indirect leak and no invalid access.
#[cfg_attr(
    any(
        srsd_missing = "valgrind",
        srsd_missing = "cc",
        srsd_missing = "ffmpeg",
        srsd_missing = "ffprobe"
    ),
    ignore = "valgrind, cc, ffmpeg or ffprobe not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valgrind_finds_no_leak_in_the_library_api() {
    if !tools() || !have("valgrind") {
        return;
    }
    let (publish, play) = examples();
    let server = start_server("clib-valgrind", "").await;
    let source = make_flv(&server.dir, 2);
    let vg = |bin: &Path, args: &[&str], log: &Path| {
        let mut c = Command::new("valgrind");
        c.args([
            "--leak-check=full",
            "--errors-for-leak-kinds=definite,indirect",
        ])
        .args(["--error-exitcode=9", "--quiet"])
        .arg(format!("--log-file={}", log.display()))
        .arg(bin)
        .args(args)
        .stdin(Stdio::null())
        .stdout(child_log("clib-examples"));
        Proc(c.spawn().expect("spawn valgrind"))
    };
    let out = server.dir.join("vg.flv");
    let (plog, qlog) = (
        server.dir.join("vg-play.log"),
        server.dir.join("vg-publish.log"),
    );
    let url = server.url("live/vg");
    let mut player = vg(play, &[&url, out.to_str().unwrap(), "8"], &plog);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mut publisher = vg(publish, &[source.to_str().unwrap(), &url], &qlog);
    let ok_pub = wait_exit(&mut publisher, Duration::from_secs(60)).await;
    let ok_play = wait_exit(&mut player, Duration::from_secs(60)).await;
    let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
    assert!(ok_pub, "publish.c under valgrind: {}", read(&qlog));
    assert!(ok_play, "play.c under valgrind: {}", read(&plog));
    let p = ffprobe(out.to_str().unwrap());
    assert_eq!(p.video_codec, "h264", "{p:?}");
}
