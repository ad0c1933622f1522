//! Hook notifies under a hook server that hangs, then answers slowly, while hundreds of
//! clients leave: every notify is delivered, failed or dropped, and counted so per URL; each
//! client's notifies reach a URL in order; a second, healthy URL is not held up.

mod common;

use common::*;
use srsd::client::{RtmpClient, RtmpUrl};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const T: Duration = Duration::from_secs(10);

/// One call a hook server saw: (client_id, action), in arrival order.
type Calls = Arc<Mutex<Vec<(String, String)>>>;

/// A hook server that records each request as it arrives. Until `hang_until` it never
/// answers (holds the socket); after it, it answers `0` after `delay`.
async fn hook_server(hang_until: Arc<Mutex<Option<Instant>>>, delay: Duration) -> (String, Calls) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let calls: Calls = Arc::default();
    let c2 = calls.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let (calls, hang_until) = (c2.clone(), hang_until.clone());
            tokio::spawn(async move {
                let Some((_, body)) = read_http_request(&mut s).await else {
                    return;
                };
                let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                calls.lock().unwrap().push((
                    v["client_id"].as_str().unwrap_or("").to_string(),
                    v["action"].as_str().unwrap_or("").to_string(),
                ));
                let hang = hang_until
                    .lock()
                    .unwrap()
                    .is_some_and(|t| Instant::now() < t);
                if hang {
                    tokio::time::sleep(Duration::from_secs(30)).await;
                    return;
                }
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

async fn http_body(addr: SocketAddr, path: &str) -> String {
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(T, s.read_to_end(&mut buf)).await;
    let text = String::from_utf8_lossy(&buf).to_string();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// `/api/v1/hooks` entry of `url`.
async fn hook_stats(api: SocketAddr, url: &str) -> serde_json::Value {
    let v: serde_json::Value =
        serde_json::from_str(&http_body(api, "/api/v1/hooks").await).unwrap_or_default();
    v["hooks"]
        .as_array()
        .and_then(|a| a.iter().find(|h| h["url"] == url).cloned())
        .unwrap_or_default()
}

/// A `/metrics` sample value.
fn metric(text: &str, name_and_labels: &str) -> Option<u64> {
    text.lines()
        .find_map(|l| l.strip_prefix(name_and_labels))
        .and_then(|v| v.trim().parse().ok())
}

/// Every client's on_stop reached the URL before its on_close (when both arrived).
fn assert_in_order(calls: &[(String, String)], what: &str) {
    let mut seen: HashMap<&str, Vec<&str>> = HashMap::new();
    for (cid, action) in calls {
        seen.entry(cid).or_default().push(action);
    }
    for (cid, actions) in seen {
        let stop = actions.iter().position(|a| *a == "on_stop");
        let close = actions.iter().position(|a| *a == "on_close");
        if let (Some(s), Some(c)) = (stop, close) {
            assert!(s < c, "{what}: client {cid} got {actions:?}");
        }
    }
}

/// `n` players of one stream (not published: they wait for it), 50 connecting at a time.
async fn connect_players(server: &TestServer, n: usize) -> Vec<RtmpClient> {
    let url = RtmpUrl::parse(&server.url("live/many")).unwrap();
    let mut players = Vec::new();
    while players.len() < n {
        let batch: Vec<_> = (0..50.min(n - players.len()))
            .map(|_| {
                let url = url.clone();
                tokio::spawn(async move {
                    let mut c = RtmpClient::connect(&url, T).await.expect("connect");
                    c.play(&url.stream, T).await.expect("play");
                    c
                })
            })
            .collect();
        for b in batch {
            players.push(b.await.unwrap());
        }
    }
    assert!(
        wait_for(T, || server.ctx.stats.clients().len() == n).await,
        "{n} players in"
    );
    players
}

/// Closes the players, 50 every 50 ms.
async fn leave_in_waves(mut players: Vec<RtmpClient>) {
    while !players.is_empty() {
        drop(players.split_off(players.len().saturating_sub(50)));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_then_slow_hook_server_loses_only_what_it_counts_and_holds_up_no_other_url() {
    const PLAYERS: usize = 600;
    let hang_until = Arc::new(Mutex::new(None));
    let (sick, sick_calls) = hook_server(hang_until.clone(), Duration::from_millis(50)).await;
    let (healthy, healthy_calls) = hook_server(Arc::default(), Duration::ZERO).await;
    let (sick_url, healthy_url) = (format!("{sick}/sick"), format!("{healthy}/ok"));
    let server = start_server(
        "hook-delivery",
        &format!(
            "max_connections = {PLAYERS}\n\
             [vhost.\"__defaultVhost__\".http_hooks]\nenabled = true\ntimeout = 1000\n\
             on_close = [\"{sick_url}\", \"{healthy_url}\"]\n\
             on_stop = [\"{sick_url}\", \"{healthy_url}\"]\n"
        ),
    )
    .await;
    let api = server.api.unwrap();

    // The sick URL hangs for 6 s from the first leave, then answers in 50 ms. Two rounds of
    // players (a full server, max_connections of them) leave in waves of 50 every 50 ms,
    // the second while the sick URL still hangs.
    // Watches the sick URL's circuit from now until it is drained.
    let watch_url = sick_url.clone();
    let watcher = tokio::spawn(async move {
        let start = Instant::now();
        let mut opened = None;
        while start.elapsed() < Duration::from_secs(60) {
            let h = hook_stats(api, &watch_url).await;
            if h["circuit_open"] == true && opened.is_none() {
                opened = Some(h.clone());
            }
            if opened.is_some() && h["queued"] == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        opened
    });
    let mut leave = None;
    for _round in 0..2 {
        let players = connect_players(&server, PLAYERS).await;
        let t = *leave.get_or_insert_with(Instant::now);
        *hang_until.lock().unwrap() = Some(t + Duration::from_secs(6));
        leave_in_waves(players).await;
    }
    let leave = leave.unwrap();
    let hang_end = leave + Duration::from_secs(6);
    let events = 2 * 2 * PLAYERS; // on_stop + on_close of each player of both rounds
    let queue = srsd::app::hooks::lanes::queue_per_url(PLAYERS as u32);

    // The healthy URL hears of every client while the sick one still hangs.
    let prompt = wait_for(hang_end.saturating_duration_since(Instant::now()), || {
        healthy_calls.lock().unwrap().len() == events
    })
    .await;
    let healthy_took = leave.elapsed();
    assert!(
        prompt,
        "healthy URL got {} of {events} in {healthy_took:?}",
        healthy_calls.lock().unwrap().len()
    );
    // Its timeouts (1 s) opened the sick URL's circuit.
    let opened = watcher.await.unwrap();
    assert!(opened.is_some(), "the sick URL was backed off");

    // The sick URL recovers: everything queued is sent, nothing stays.
    let started = Instant::now();
    let mut drained = false;
    while started.elapsed() < Duration::from_secs(90) {
        if hook_stats(api, &sick_url).await["queued"] == 0 {
            drained = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(
        drained,
        "sick URL drained: {}",
        hook_stats(api, &sick_url).await
    );
    let sick_took = leave.elapsed();
    let players = 2 * PLAYERS;

    let metrics = http_body(api, "/metrics").await;
    let count = |url: &str, result: &str| {
        metric(
            &metrics,
            &format!("srsd_hook_notifies_total{{url=\"{url}\",result=\"{result}\"}}"),
        )
        .unwrap_or_else(|| panic!("{url} {result} in /metrics:\n{metrics}"))
    };
    let (delivered, failed, dropped) = (
        count(&sick_url, "delivered"),
        count(&sick_url, "failed"),
        count(&sick_url, "dropped"),
    );
    let arrived = sick_calls.lock().unwrap().len() as u64;
    eprintln!(
        "{players} players left: healthy URL got {events}/{events} in {healthy_took:?}; \
         sick URL: {arrived} arrived ({delivered} answered, {failed} failed), {dropped} dropped, \
         drained {sick_took:?} after the first left"
    );
    assert_eq!(arrived, delivered + failed, "every request sent arrived");
    assert_eq!(
        arrived + dropped,
        events as u64,
        "what did not arrive is counted as dropped"
    );
    assert!(failed >= 1, "the hang was felt");
    // The first round fits the queue (two per connection); of the second, only what the
    // failures made room for is taken.
    assert!(
        dropped <= (events - queue) as u64 && dropped + failed >= (events - queue) as u64,
        "drops only past the per-URL queue of {queue}: {dropped}"
    );
    assert_eq!(
        (
            count(&healthy_url, "delivered"),
            count(&healthy_url, "dropped")
        ),
        (events as u64, 0)
    );
    assert_eq!(hook_stats(api, &sick_url).await["circuit_open"], false);
    assert_in_order(&sick_calls.lock().unwrap(), "sick URL");
    assert_in_order(&healthy_calls.lock().unwrap(), "healthy URL");
}
