//! SRS's bandwidth check end to end: `srsd bandcheck` (the CLI, a separate process) against
//! a test server with `[vhost.X.bandcheck]`. On loopback the only bottleneck is the vhost's
//! `limit_kbps`, so the measured numbers must come within 30 % of it (and never far above:
//! a check cannot flood the box); a wrong key and a check within `interval` are refused.
//! Behind a throttling proxy (a link of known capacity) the check must agree within 30 %
//! with what an ffmpeg push of a file of known size achieves through the same link.

mod common;

use common::*;
use std::net::SocketAddr;
use std::process::{Command, Output};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const LIMIT_KBPS: f64 = 2000.0;

fn bandcheck_toml(interval: u32) -> String {
    format!(
        "[vhost.\"__defaultVhost__\".bandcheck]\nenabled = true\nkey = \"sekrit\"\n\
         interval = {interval}\nlimit_kbps = {LIMIT_KBPS}\n"
    )
}

/// Runs `srsd bandcheck URL` off the test's runtime (the server runs on it).
async fn run(url: String) -> Output {
    tokio::task::spawn_blocking(move || {
        Command::new("timeout")
            .arg("60")
            .arg(env!("CARGO_BIN_EXE_srsd"))
            .args(["bandcheck", &url])
            .output()
            .expect("run srsd bandcheck")
    })
    .await
    .unwrap()
}

fn field(text: &str, key: &str) -> f64 {
    text.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{key}=")))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("{key} in {text:?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandcheck_measures_within_the_limit_and_refuses_wrong_keys_and_floods() {
    let server = start_server("bandcheck", &bandcheck_toml(30)).await;
    let base = format!("rtmp://127.0.0.1:{}/live", server.addr.port());

    // A wrong key is refused at connect, before any test data moves.
    let out = run(format!("{base}?key=wrong")).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("rejected"),
        "{out:?}"
    );

    let t = Instant::now();
    let out = run(format!("{base}?key=sekrit")).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    println!("{text}");
    let (down, up, rtt) = (
        field(&text, "down_kbps"),
        field(&text, "up_kbps"),
        field(&text, "rtt_ms"),
    );
    for (what, kbps) in [("down", down), ("up", up)] {
        assert!(
            (kbps - LIMIT_KBPS).abs() <= LIMIT_KBPS * 0.3,
            "{what} {kbps} kbps, limit {LIMIT_KBPS}: {text}"
        );
    }
    assert!(rtt > 0.0 && rtt < 1000.0, "{text}");
    // Two 3 s phases and their exchanges.
    assert!(t.elapsed() >= Duration::from_secs(6) && t.elapsed() < Duration::from_secs(20));

    // A second check within the interval is refused.
    let out = run(format!("{base}?key=sekrit")).await;
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("too many checks"),
        "{out:?}"
    );

    // Normal clients of the vhost without the key are refused too: a bandcheck vhost is
    // for checks only, as in SRS.
    let url = srsd::client::RtmpUrl::parse(&server.url("live/s")).unwrap();
    assert!(
        srsd::client::RtmpClient::connect(&url, Duration::from_secs(5))
            .await
            .is_err()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vhosts_without_bandcheck_are_untouched() {
    let server = start_server("bandcheck-off", "").await;
    let url = srsd::client::RtmpUrl::parse(&server.url("live/s?key=x")).unwrap();
    let c = srsd::client::RtmpClient::connect(&url, Duration::from_secs(5)).await;
    assert!(c.is_ok());
    let out = run(format!(
        "rtmp://127.0.0.1:{}/live?key=x",
        server.addr.port()
    ))
    .await;
    // Connected as a normal client: no check comes, so the tool gives up (bounded).
    assert_eq!(out.status.code(), Some(1), "{out:?}");
}

/// Copies `r` to `w` at most `kbps`, bursting at most 50 ms worth after an idle time.
async fn pump(
    mut r: tokio::net::tcp::OwnedReadHalf,
    mut w: tokio::net::tcp::OwnedWriteHalf,
    kbps: u64,
) {
    let mut buf = [0u8; 2048];
    let mut due = tokio::time::Instant::now();
    loop {
        let n = match r.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if w.write_all(&buf[..n]).await.is_err() {
            break;
        }
        let now = tokio::time::Instant::now();
        due = due.max(now - Duration::from_millis(50))
            + Duration::from_micros(n as u64 * 8 * 1000 / kbps);
        tokio::time::sleep_until(due).await;
    }
    let _ = w.shutdown().await;
}

fn small_socket() -> tokio::net::TcpSocket {
    let s = tokio::net::TcpSocket::new_v4().unwrap();
    // Small buffers keep the link's queue short, as a real slow link's would be.
    s.set_recv_buffer_size(16 * 1024).unwrap();
    s.set_send_buffer_size(16 * 1024).unwrap();
    s
}

/// A TCP proxy to `target` that carries at most `kbps` each way: a link of known capacity.
async fn throttled_link(target: SocketAddr, kbps: u64) -> SocketAddr {
    let sock = small_socket();
    sock.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let listener = sock.listen(16).unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((down, _)) = listener.accept().await {
            let Ok(up) = small_socket().connect(target).await else {
                continue;
            };
            let (dr, dw) = down.into_split();
            let (ur, uw) = up.into_split();
            tokio::spawn(pump(dr, uw, kbps));
            tokio::spawn(pump(ur, dw, kbps));
        }
    });
    addr
}

#[cfg_attr(srsd_missing = "ffmpeg", ignore = "ffmpeg not installed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bandcheck_agrees_with_an_ffmpeg_push_over_the_same_slow_link() {
    if !have("ffmpeg") {
        return;
    }
    const LINK_KBPS: u64 = 1500;
    // The check's own limit is above the link's: the link is what is measured.
    let extra =
        "[vhost.bc.bandcheck]\nenabled = true\nkey = \"k\"\ninterval = 0\nlimit_kbps = 2000\n";
    let server = start_server("bandcheck-link", extra).await;
    let link = throttled_link(server.addr, LINK_KBPS).await;

    // ffmpeg pushes a file of known size as fast as the link takes it; the push is done
    // when the server has it all (the stream unpublished).
    // ~1.5 MB: noise keeps x264 at its 3000 kbps, so the fixed costs (connect, the last
    // round trip) stay small against ~8 s of transfer.
    let file = server.dir.join("big.flv");
    let ok = Command::new("ffmpeg")
        .stderr(child_log("ffmpeg"))
        .args([
            "-hide_banner",
            "-loglevel",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
        ])
        .arg("testsrc=size=320x240:rate=25,noise=alls=60:allf=t")
        .args([
            "-t",
            "4",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-b:v",
            "3000k",
        ])
        .args([
            "-maxrate", "3000k", "-bufsize", "1000k", "-pix_fmt", "yuv420p", "-f", "flv",
        ])
        .arg(&file)
        .status()
        .unwrap()
        .success();
    assert!(ok, "ffmpeg made the file");
    let size = std::fs::metadata(&file).unwrap().len();
    let t = Instant::now();
    let mut p = Proc(
        Command::new("ffmpeg")
            .stderr(child_log("ffmpeg"))
            .args(["-hide_banner", "-loglevel", "error", "-i"])
            .arg(&file)
            .args(["-c", "copy", "-f", "flv"])
            .arg(format!("rtmp://{link}/live/ff"))
            .stdin(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(wait_publishing(&server, "live/ff", Duration::from_secs(10)).await);
    let key = srsd::hub::StreamKey::new("__defaultVhost__", "live", "ff");
    assert!(
        wait_for(Duration::from_secs(60), || !server
            .ctx
            .hub
            .find(&key)
            .is_some_and(|s| s.is_publishing()))
        .await
    );
    let push_kbps = size as f64 * 8.0 / t.elapsed().as_secs_f64() / 1000.0;
    assert!(wait_exit(&mut p, Duration::from_secs(10)).await);

    let out = run(format!("rtmp://{link}/live?vhost=bc&key=k")).await;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{out:?}");
    println!("ffmpeg push: {size} bytes at {push_kbps:.0} kbps; bandcheck: {text}");
    let up = field(&text, "up_kbps");
    let down = field(&text, "down_kbps");
    assert!(
        (up - push_kbps).abs() <= push_kbps * 0.3,
        "up {up} kbps vs the ffmpeg push's {push_kbps:.0} kbps"
    );
    assert!(
        (down - LINK_KBPS as f64).abs() <= LINK_KBPS as f64 * 0.3,
        "down {down} kbps over a {LINK_KBPS} kbps link"
    );
}
