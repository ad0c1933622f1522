//! Quitting with the real binary: a graceful quit (`srsd -s quit`) sends the notify of every
//! allowed gate, within a bound even when the hook server hangs; a fast quit (`srsd -s stop`)
//! exits within a second.

mod common;

use common::*;
use srsd::client::{RtmpClient, RtmpUrl};
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const BIN: &str = env!("CARGO_BIN_EXE_srsd");
const T: Duration = Duration::from_secs(10);

/// Hook calls by action.
type Calls = Arc<Mutex<Vec<String>>>;

/// A hook server that answers every call `0` after `delay`, or never (`None`: it holds the
/// socket). Records each call's action as it arrives.
async fn hook_server(delay: Option<Duration>) -> (String, Calls) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let calls: Calls = Arc::default();
    let c2 = calls.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let calls = c2.clone();
            tokio::spawn(async move {
                let Some((_, body)) = read_http_request(&mut s).await else {
                    return;
                };
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                calls
                    .lock()
                    .unwrap()
                    .push(v["action"].as_str().unwrap_or("").to_string());
                let Some(delay) = delay else {
                    tokio::time::sleep(Duration::from_secs(120)).await;
                    return;
                };
                tokio::time::sleep(delay).await;
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n0",
                    )
                    .await;
            });
        }
    });
    (base, calls)
}

fn count(calls: &Calls) -> HashMap<String, usize> {
    let mut m = HashMap::new();
    for a in calls.lock().unwrap().iter() {
        *m.entry(a.clone()).or_insert(0) += 1;
    }
    m
}

/// A config in `dir` with the hooks of `hooks` (TOML lines of the default vhost's
/// `http_hooks`), RTMP on a free port, logging to a file; with `hls`, the HTTP server on a
/// free port and HLS in 1 s fragments under `dir`.
fn write_config(dir: &Path, hooks: &str, hls: bool) -> PathBuf {
    let conf = dir.join("srsd.toml");
    let http = if hls {
        format!(
            "[http_server]\nlisten = \"127.0.0.1:0\"\ndir = \"{d}\"\n\n\
             [vhost.\"__defaultVhost__\".hls]\nenabled = true\nfragment = 1\nwindow = 30\n\
             path = \"{d}\"\n",
            d = dir.display()
        )
    } else {
        "[http_server]\nenabled = false\n".to_string()
    };
    std::fs::write(
        &conf,
        format!(
            "listen = [\"127.0.0.1:0\"]\npid = \"{d}/srsd.pid\"\n\n\
             [log]\ntank = \"file\"\nlevel = \"trace\"\nfile = \"{d}/srsd.log\"\n\n\
             [http_api]\nenabled = false\n\n{http}\n\
             [vhost.\"__defaultVhost__\".http_hooks]\nenabled = true\n{hooks}\n",
            d = dir.display()
        ),
    )
    .unwrap();
    conf
}

fn log_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("srsd.log")).unwrap_or_default()
}

/// Starts srsd on `conf`; returns it and the RTMP port it logged.
async fn start(dir: &Path, conf: &Path) -> (Proc, u16) {
    let p = Proc(
        Command::new(BIN)
            .arg("-c")
            .arg(conf)
            .stdin(Stdio::null())
            .spawn()
            .expect("start srsd"),
    );
    let mut port = None;
    wait_for(T, || {
        port = log_text(dir)
            .lines()
            .find_map(|l| l.split("RTMP listen at tcp://").nth(1))
            .and_then(|a| a.rsplit(':').next())
            .and_then(|p| p.trim().parse::<u16>().ok());
        port.is_some()
    })
    .await;
    (p, port.expect("the server logs its RTMP port"))
}

fn signal(conf: &Path, what: &str) {
    let ok = Command::new(BIN)
        .args(["-s", what, "-c"])
        .arg(conf)
        .status()
        .expect("srsd -s")
        .success();
    assert!(ok, "srsd -s {what}");
}

/// Waits at most `limit` for the server to exit; how long it took.
async fn exited_within(p: &mut Proc, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if p.0.try_wait().ok().flatten().is_some() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    None
}

/// `players` players of `live/q` (connecting together), and when `publish`, a publisher
/// sending media in real time until the server closes it.
async fn clients(port: u16, players: usize, publish: bool) -> Vec<RtmpClient> {
    let url = RtmpUrl::parse(&format!("rtmp://127.0.0.1:{port}/live/q")).unwrap();
    if publish {
        let mut publisher = RtmpClient::connect(&url, T).await.expect("connect");
        publisher.publish(&url.stream, T).await.expect("publish");
        tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            for t in synthetic_tags(120_000, 1000, 25) {
                tokio::time::sleep_until(start + Duration::from_millis(t.timestamp.into())).await;
                if publisher
                    .send(t.kind, t.timestamp, t.payload)
                    .await
                    .is_err()
                {
                    return;
                }
            }
        });
    }
    let tasks: Vec<_> = (0..players)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move {
                let mut c = RtmpClient::connect(&url, T).await.expect("connect");
                c.play(&url.stream, T).await.expect("play");
                c
            })
        })
        .collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.expect("a player"));
    }
    out
}

const NOTIFIES: &str =
    "on_close = [\"{B}/n\"]\non_stop = [\"{B}/n\"]\non_unpublish = [\"{B}/n\"]\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_graceful_quit_sends_every_notify_of_its_clients() {
    // Gates and notifies answered in 1 s each (the case measured: on_stop 1 of 8, on_close 1
    // of 9 before the quit waited for the hook lanes; 4 of 8 and 0 of 9 in this test then).
    let (base, calls) = hook_server(Some(Duration::from_secs(1))).await;
    let dir = temp_dir("lifecycle-graceful");
    let conf = write_config(
        &dir,
        &format!(
            "timeout = 5000\non_connect = [\"{base}/g\"]\non_play = [\"{base}/g\"]\n{}",
            NOTIFIES.replace("{B}", &base)
        ),
        true,
    );
    let (mut server, port) = start(&dir, &conf).await;
    let players = clients(port, 8, true).await;
    // And an HLS viewer: it has no connection of its own; the quit ends it too.
    assert!(
        wait_for(T, || dir.join("live/q.m3u8").is_file()).await,
        "the playlist is written"
    );
    let http = log_text(&dir)
        .lines()
        .find_map(|l| l.split("HTTP server listen at http://").nth(1))
        .and_then(|a| a.trim().parse::<std::net::SocketAddr>().ok())
        .expect("the HTTP server's address");
    let mut s = tokio::net::TcpStream::connect(http).await.unwrap();
    s.write_all(b"GET /live/q.m3u8 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let mut answer = String::new();
    let _ = tokio::time::timeout(
        T,
        tokio::io::AsyncReadExt::read_to_string(&mut s, &mut answer),
    )
    .await;
    assert!(answer.contains("hls_ctx="), "an HLS viewer: {answer}");
    let c = count(&calls);
    assert_eq!((c["on_connect"], c["on_play"]), (9, 9), "{c:?}");
    let sent = Instant::now();
    signal(&conf, "quit");
    // Clients have their grace (10 s), then the shutdown ends them and the quit sends their
    // notifies (at most 8 s).
    let took = exited_within(&mut server, Duration::from_secs(30)).await;
    drop(players);
    let c = count(&calls);
    eprintln!("graceful quit took {took:?}: {c:?}");
    assert!(took.is_some(), "exits: {}", log_text(&dir));
    assert_eq!(
        (
            c.get("on_stop").copied(),
            c.get("on_close").copied(),
            c.get("on_unpublish").copied()
        ),
        (Some(9), Some(9), Some(1)),
        "8 RTMP players and the HLS viewer stop, 9 RTMP clients close: {}",
        log_text(&dir)
    );
    assert!(sent.elapsed() < Duration::from_secs(25));
    assert!(
        log_text(&dir).contains("0 left unsent"),
        "{}",
        log_text(&dir)
    );
    // The HLS viewer's line says why it left: the shutdown (it had asked for its playlist a
    // moment before; it was logged as "no request for 24s", its timeout).
    let log = log_text(&dir);
    assert!(
        log.lines()
            .any(|l| l.contains("HLS viewer") && l.contains("server shutdown)")),
        "{log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_hook_server_does_not_hold_a_graceful_quit() {
    let (base, calls) = hook_server(None).await;
    let dir = temp_dir("lifecycle-hung");
    let conf = write_config(
        &dir,
        &format!("timeout = 30000\n{}", NOTIFIES.replace("{B}", &base)),
        false,
    );
    let (mut server, port) = start(&dir, &conf).await;
    // Two players come and go: their on_stop and on_close wait on the hung server.
    drop(clients(port, 2, false).await);
    assert!(wait_for(T, || calls.lock().unwrap().len() >= 2).await);
    signal(&conf, "quit");
    let took = exited_within(&mut server, Duration::from_secs(20)).await;
    eprintln!("graceful quit with a hung hook server took {took:?}");
    let took = took.expect("exits");
    // 8 s of hook drain after the goodbyes; the notifies left are logged.
    assert!(took < Duration::from_secs(13), "{took:?}");
    assert!(
        took >= Duration::from_secs(7),
        "it did wait for the hooks: {took:?}"
    );
    assert!(
        log_text(&dir).contains("not sent in time"),
        "{}",
        log_text(&dir)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fast_quit_exits_within_a_second() {
    let (base, _calls) = hook_server(None).await;
    let dir = temp_dir("lifecycle-fast");
    let conf = write_config(
        &dir,
        &format!("timeout = 30000\n{}", NOTIFIES.replace("{B}", &base)),
        false,
    );
    let (mut server, port) = start(&dir, &conf).await;
    let players = clients(port, 8, true).await;
    let sent = Instant::now();
    signal(&conf, "stop");
    let took = exited_within(&mut server, Duration::from_secs(10)).await;
    drop(players);
    let after_signal = sent.elapsed();
    eprintln!("fast quit took {took:?} ({after_signal:?} from `srsd -s stop`)");
    assert!(
        took.is_some_and(|t| t < Duration::from_secs(1)),
        "{took:?}: {}",
        log_text(&dir)
    );
    assert!(log_text(&dir).contains("fast quit"));
}

/// The periodic client lines (SRS's pithy print, every 10 s) give the client's age as
/// `time=`, not the server's uptime, and a player that hangs up is logged with what happened
/// (the OS's words for a reset; "closed the connection" for a close, not "unexpected end of
/// file").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_lines_give_the_clients_age_and_how_it_left() {
    let dir = temp_dir("lifecycle-pithy");
    let conf = write_config(&dir, "", false);
    let (mut server, port) = start(&dir, &conf).await;
    // The server runs a while before its clients come: its uptime and their age differ.
    tokio::time::sleep(Duration::from_secs(6)).await;
    let players = clients(port, 1, true).await;
    let mut line = None;
    let found = wait_for(Duration::from_secs(20), || {
        line = log_text(&dir)
            .lines()
            .find(|l| l.contains("-> PLA "))
            .map(str::to_string);
        line.is_some()
    })
    .await;
    assert!(found, "a player line within 20 s:\n{}", log_text(&dir));
    let line = line.unwrap_or_default();
    let age: u64 = line
        .split(" time=")
        .nth(1)
        .and_then(|r| r.split('s').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    assert!((9..=12).contains(&age), "the player's age, ~10 s: {line}");
    // Closed with frames unread: the kernel resets the connection.
    drop(players);
    let left = wait_for(T, || {
        log_text(&dir)
            .lines()
            .any(|l| l.contains(" left (Connection reset by peer"))
    })
    .await;
    assert!(left, "the player's reset logged:\n{}", log_text(&dir));
    signal(&conf, "stop");
    assert!(exited_within(&mut server, T).await.is_some());
}
