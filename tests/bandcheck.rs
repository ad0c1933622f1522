//! SRS's bandwidth check end to end: `srsd bandcheck` (the CLI, a separate process) against
//! a test server with `[vhost.X.bandcheck]`. On loopback the only bottleneck is the vhost's
//! `limit_kbps`, so the measured numbers must come within 30 % of it (and never far above:
//! a check cannot flood the box); a wrong key and a check within `interval` are refused.

mod common;

use common::*;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

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
