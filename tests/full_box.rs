//! A full box stays manageable, with the real binary: the API answers during a connection
//! storm at `max_connections`, refusals are logged one line a second, idle handshakes are cut
//! short under pressure, and a low open-file limit caps `max_connections` (said at start)
//! instead of leaving clients hanging.

mod common;

use common::*;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const BIN: &str = env!("CARGO_BIN_EXE_srsd");
const T: Duration = Duration::from_secs(10);

fn write_config(dir: &Path, max_connections: u32) -> PathBuf {
    let conf = dir.join("srsd.toml");
    std::fs::write(
        &conf,
        format!(
            "listen = [\"127.0.0.1:0\"]\npid = \"{d}/srsd.pid\"\nmax_connections = {max_connections}\n\n\
             [log]\ntank = \"file\"\nlevel = \"trace\"\nfile = \"{d}/srsd.log\"\n\n\
             [http_api]\nenabled = true\nlisten = \"127.0.0.1:0\"\n\n\
             [http_server]\nenabled = true\nlisten = \"127.0.0.1:0\"\ndir = \"{d}\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    conf
}

fn log_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("srsd.log")).unwrap_or_default()
}

/// The address a "... listen at tcp://ADDR" / "http://ADDR" log line names.
fn logged_addr(text: &str, marker: &str) -> Option<SocketAddr> {
    text.lines()
        .find(|l| l.contains(marker))
        .and_then(|l| l.rsplit("://").next())
        .and_then(|a| a.trim().parse().ok())
}

/// The server (started by `sh -c "ulimit ...; exec srsd"` when `ulimit` is given) and its
/// RTMP and API addresses.
async fn start(dir: &Path, conf: &Path, ulimit: Option<&str>) -> (Proc, SocketAddr, SocketAddr) {
    let mut cmd = match ulimit {
        Some(u) => {
            let mut c = Command::new("sh");
            c.arg("-c")
                .arg(format!("ulimit {u} && exec \"$0\" -c \"$1\""))
                .arg(BIN)
                .arg(conf);
            c
        }
        None => {
            let mut c = Command::new(BIN);
            c.arg("-c").arg(conf);
            c
        }
    };
    let p = Proc(cmd.stdin(Stdio::null()).spawn().expect("start srsd"));
    let mut addrs = None;
    wait_for(T, || {
        let text = log_text(dir);
        addrs = logged_addr(&text, "RTMP listen at").zip(logged_addr(&text, "HTTP API listen at"));
        addrs.is_some()
    })
    .await;
    let (rtmp, api) = addrs.unwrap_or_else(|| panic!("listen lines: {}", log_text(dir)));
    (p, rtmp, api)
}

/// GET `path`: the status (0 when refused or no answer within 2 s) and how long it took.
async fn get(addr: SocketAddr, path: &str) -> (u16, Duration) {
    let start = Instant::now();
    let status = async {
        let mut s = TcpStream::connect(addr).await.ok()?;
        s.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes(),
        )
        .await
        .ok()?;
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).await.ok()?;
        String::from_utf8_lossy(&buf)
            .split_whitespace()
            .nth(1)?
            .parse()
            .ok()
    };
    let status = tokio::time::timeout(Duration::from_secs(2), status)
        .await
        .ok()
        .flatten()
        .unwrap_or(0);
    (status, start.elapsed())
}

/// Whether the server closes `s` within `limit` (EOF or reset).
async fn closed_within(s: &mut TcpStream, limit: Duration) -> bool {
    let mut b = [0u8; 64];
    loop {
        match tokio::time::timeout(limit, s.read(&mut b)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_answers_during_a_connection_storm_at_max_connections() {
    let dir = temp_dir("fullbox-storm");
    let conf = write_config(&dir, 100);
    let (_server, rtmp, api) = start(&dir, &conf, None).await;
    let http = logged_addr(&log_text(&dir), "HTTP server listen at").expect("HTTP server");

    // 6 s of storm: 8 tasks keep opening idle sockets (no handshake, no request) to the RTMP
    // port and the HTTP server, holding up to 60 each.
    let storm_end = Instant::now() + Duration::from_secs(6);
    let storm: Vec<_> = (0..8)
        .map(|i| {
            let target = if i % 2 == 0 { rtmp } else { http };
            tokio::spawn(async move {
                let mut held = std::collections::VecDeque::new();
                let mut opened = 0usize;
                while Instant::now() < storm_end {
                    if let Ok(s) = TcpStream::connect(target).await {
                        held.push_back(s);
                        opened += 1;
                    }
                    if held.len() > 60 {
                        held.pop_front();
                    }
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
                opened
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(500)).await;

    // The server is full: an idle RTMP socket is refused or gets the pressed handshake bound
    // (2 s), not 10 s.
    let mut idle = TcpStream::connect(rtmp).await.unwrap();
    let idle_start = Instant::now();
    let idle = tokio::spawn(async move {
        closed_within(&mut idle, Duration::from_secs(8)).await;
        idle_start.elapsed()
    });

    let mut answers = Vec::new();
    while Instant::now() < storm_end {
        answers.push(get(api, "/api/v1/summaries").await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let idle_took = idle.await.unwrap();
    let mut opened = 0;
    for s in storm {
        opened += s.await.unwrap();
    }
    let metrics = get(api, "/metrics").await;
    let refused: u64 = {
        let mut s = TcpStream::connect(api).await.unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut buf = String::new();
        s.read_to_string(&mut buf).await.unwrap();
        buf.lines()
            .find_map(|l| l.strip_prefix("srsd_connections_refused_total "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    };
    let ok = answers.iter().filter(|(s, _)| *s == 200).count();
    let slowest = answers.iter().map(|(_, d)| *d).max().unwrap_or_default();
    let log = log_text(&dir);
    let refusal_lines = log.lines().filter(|l| l.contains("refused ")).count();
    // Storm sockets the server accepted and timed out within the 6 s: the pressed bound.
    let cut_short = log.matches("handshake timed out").count();
    eprintln!(
        "storm: {opened} sockets opened, {refused} refused; /api/v1/summaries answered {ok}/{} \
         (slowest {slowest:?}); an idle RTMP socket closed after {idle_took:?}; {cut_short} \
         idle handshakes timed out; {refusal_lines} refusal log lines",
        answers.len()
    );
    assert_eq!(metrics.0, 200);
    assert!(refused > 100, "the storm hit max_connections: {refused}");
    assert_eq!(ok, answers.len(), "every API request answered: {answers:?}");
    assert!(answers.len() >= 20);
    assert!(slowest < Duration::from_secs(1), "{slowest:?}");
    assert!(
        idle_took < Duration::from_secs(4),
        "idle socket: {idle_took:?}"
    );
    // The idle socket either found the server full and was refused at once, or took a slot
    // and was cut by the pressed bound (a "handshake timed out" line). Storm sockets live
    // 300 ms, so which of the two happens depends on the moment it connects.
    assert!(
        cut_short > 0 || idle_took < Duration::from_millis(500),
        "idle socket neither refused nor cut short: {idle_took:?}, {cut_short} timeouts"
    );
    // One line a second (6 s of storm, the flush of the last second).
    assert!(
        (1..=10).contains(&refusal_lines),
        "{refusal_lines} lines for {refused} refusals"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_low_open_file_limit_caps_max_connections_and_still_serves() {
    let dir = temp_dir("fullbox-ulimit");
    let conf = write_config(&dir, 1000);
    let (server, rtmp, api) = start(&dir, &conf, Some("-n 64")).await;
    let log = log_text(&dir);
    assert!(
        log.contains("max_connections 1000 does not fit the open file limit 64: capped to 16"),
        "{log}"
    );
    // Serves: the API, and a publish and a play.
    assert_eq!(get(api, "/api/v1/summaries").await.0, 200);
    let url = srsd::client::RtmpUrl::parse(&format!("rtmp://{rtmp}/live/u")).unwrap();
    let mut publisher = srsd::client::RtmpClient::connect(&url, T).await.unwrap();
    publisher.publish(&url.stream, T).await.unwrap();
    let mut player = srsd::client::RtmpClient::connect(&url, T).await.unwrap();
    player.play(&url.stream, T).await.unwrap();
    // Past the cap, clients are refused at once, never left hanging.
    let mut extra = Vec::new();
    for _ in 0..30 {
        extra.push(TcpStream::connect(rtmp).await.unwrap());
    }
    let checks: Vec<_> = extra
        .into_iter()
        .map(|mut s| {
            tokio::spawn(async move { closed_within(&mut s, Duration::from_millis(500)).await })
        })
        .collect();
    let mut refused_at_once = 0;
    for c in checks {
        refused_at_once += usize::from(c.await.unwrap());
    }
    eprintln!("ulimit -n 64: capped to 16; {refused_at_once} of 30 extra sockets refused at once");
    assert_eq!(
        refused_at_once,
        30 - (16 - 2),
        "the publisher and the player hold 2 of 16"
    );
    assert_eq!(
        get(api, "/api/v1/summaries").await.0,
        200,
        "the API still answers"
    );
    drop(server);

    // A soft limit below the hard one is raised: no cap.
    let dir = temp_dir("fullbox-ulimit-soft");
    let conf = write_config(&dir, 1000);
    let hard = Command::new("sh")
        .args(["-c", "ulimit -H -n"])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    if hard.parse::<u64>().is_ok_and(|h| h >= 2048) {
        let (_server, _, api) = start(&dir, &conf, Some("-S -n 64")).await;
        let log = log_text(&dir);
        assert!(
            log.contains(&format!("open file limit raised from 64 to {hard}")),
            "{log}"
        );
        assert!(!log.contains("does not fit"), "{log}");
        assert_eq!(get(api, "/api/v1/summaries").await.0, 200);
    } else {
        eprintln!("SKIPPED the raise check: hard open file limit {hard:?} is below 2048");
    }
}
