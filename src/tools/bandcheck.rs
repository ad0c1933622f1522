//! `srsd bandcheck rtmp://HOST[:PORT]/APP?key=KEY`: the client side of SRS's bandwidth check
//! (the `srs_bandwidth_check` of srs-librtmp). The server sends for a few seconds (down),
//! then reads what we send (up), then reports; see `app::bandcheck` for the exchange.
//!
//! Prints one line: `down_kbps=N up_kbps=N rtt_ms=N`, then the server's report. `down_kbps`
//! is what we received during the server's play phase, `up_kbps` what the server read during
//! the publish phase (its report), `rtt_ms` the time from our connect to its `_result`.

use super::{parsed, runtime, STEP_TIMEOUT};
use crate::client::{ClientError, ClientEvent, RtmpClient, RtmpUrl};
use crate::protocol::amf0::Amf0Value;
use std::time::Duration;
use tokio::time::Instant;

const USAGE: &str = "\
usage: srsd bandcheck rtmp://HOST[:PORT]/APP?key=KEY

Runs SRS's bandwidth check against a server whose vhost has bandcheck enabled and prints
the measured down and up kbps and the round-trip time.";

/// The whole check must end within this long (two 3 s phases and their handshakes).
const CHECK_TIMEOUT: Duration = Duration::from_secs(40);
/// The longest wait for the server's next call.
const EVENT_TIMEOUT: Duration = Duration::from_secs(8);
/// Strings per publishing packet (~2.5 KB, as the server's play packets).
const PUBLISH_STRINGS: usize = 50;

/// What the check measured.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub down_kbps: f64,
    pub up_kbps: f64,
    pub rtt_ms: f64,
    /// The server's own numbers from `onSrsBandCheckFinished`.
    pub server_play_kbps: f64,
    pub server_publish_kbps: f64,
}

/// The URL to connect to: `rtmp://host/app?key=K` has no stream, so the parser is given a
/// placeholder one and the app keeps the query (SRS reads the key from the tcUrl).
fn parse_url(url: &str) -> Result<RtmpUrl, String> {
    let u = RtmpUrl::parse(&format!("{}/bandcheck", url.trim_end_matches('/')))
        .map_err(|e| e.to_string())?;
    Ok(u)
}

fn number(args: &[Amf0Value], key: &str) -> Option<f64> {
    args.iter()
        .find_map(|a| a.get(key).and_then(Amf0Value::as_f64))
}

/// Runs the check on `url` (its tcUrl carries the key).
pub async fn check(url: &RtmpUrl) -> Result<Report, ClientError> {
    tokio::time::timeout(CHECK_TIMEOUT, check_inner(url))
        .await
        .unwrap_or(Err(ClientError::Timeout("the bandwidth check")))
}

async fn check_inner(url: &RtmpUrl) -> Result<Report, ClientError> {
    let mut c = RtmpClient::connect(url, STEP_TIMEOUT).await?;
    let rtt_ms = c.connect_rtt().as_secs_f64() * 1000.0;
    let mut play_start: Option<(Instant, u64)> = None;
    let mut down_kbps = 0.0;
    let text = "SRS band check data from client's publishing......";
    let fields: Vec<(String, Amf0Value)> = (0..PUBLISH_STRINGS)
        .map(|i| (i.to_string(), Amf0Value::string(text)))
        .collect();
    let mut queued: Vec<ClientEvent> = Vec::new();
    loop {
        let event = match queued.pop() {
            Some(e) => e,
            // The server never pauses longer than a step between two calls; a server that
            // sends none (no bandcheck on that vhost) is given up on.
            None => tokio::time::timeout(EVENT_TIMEOUT, c.next_event())
                .await
                .unwrap_or(Err(ClientError::Timeout(
                    "the server's next bandcheck call",
                )))?,
        };
        let ClientEvent::Call { name, args } = event else {
            continue;
        };
        match name.as_str() {
            "onSrsBandCheckStartPlayBytes" => {
                c.call("onSrsBandCheckStartingPlayBytes", vec![]).await?;
                play_start = Some((Instant::now(), c.bytes_received()));
            }
            "onSrsBandCheckStopPlayBytes" => {
                if let Some((t, b)) = play_start {
                    let ms = t.elapsed().as_secs_f64() * 1000.0;
                    down_kbps = ((c.bytes_received() - b) as f64 * 8.0 / ms.max(1.0)).floor();
                }
                c.call("onSrsBandCheckStoppedPlayBytes", vec![]).await?;
            }
            "onSrsBandCheckStartPublishBytes" => {
                let limit = number(&args, "limit_kbps").unwrap_or(1000.0).max(1.0);
                let duration = number(&args, "duration_ms")
                    .unwrap_or(3000.0)
                    .clamp(0.0, 10_000.0);
                c.call("onSrsBandCheckStartingPublishBytes", vec![]).await?;
                let start = Instant::now();
                let mut sent: u64 = 0;
                let mut stop = false;
                while !stop && start.elapsed().as_secs_f64() * 1000.0 < duration {
                    let obj = Amf0Value::Object(fields.clone());
                    let events = c
                        .call_and_poll("onSrsBandCheckPublishing", vec![obj])
                        .await?;
                    // ~ the encoded size of one packet: names, strings, AMF markers.
                    sent += (PUBLISH_STRINGS * (text.len() + 6) + 40) as u64;
                    for e in events {
                        if matches!(&e, ClientEvent::Call { name, .. } if name == "onSrsBandCheckStopPublishBytes")
                        {
                            stop = true;
                        }
                        if matches!(&e, ClientEvent::Call { .. }) {
                            queued.insert(0, e);
                        }
                    }
                    // Never faster than the server's limit: it would only fill buffers.
                    let due = Duration::from_secs_f64(sent as f64 * 8.0 / limit / 1000.0);
                    tokio::time::sleep_until(start + due).await;
                }
            }
            "onSrsBandCheckStopPublishBytes" => {
                c.call("onSrsBandCheckStoppedPublishBytes", vec![]).await?;
            }
            "onSrsBandCheckFinished" => {
                let report = Report {
                    down_kbps,
                    up_kbps: number(&args, "publish_kbps").unwrap_or(0.0),
                    rtt_ms,
                    server_play_kbps: number(&args, "play_kbps").unwrap_or(0.0),
                    server_publish_kbps: number(&args, "publish_kbps").unwrap_or(0.0),
                };
                let _ = c.call("finalClientPacket", vec![]).await;
                c.close().await;
                return Ok(report);
            }
            _ => {}
        }
    }
}

pub fn main(args: &[String]) -> i32 {
    let parse = |args: &[String]| -> Result<Option<RtmpUrl>, String> {
        match args {
            [h] if h == "-h" || h == "--help" => Ok(None),
            [url] => parse_url(url).map(Some),
            _ => Err("need one rtmp://HOST[:PORT]/APP?key=KEY URL".into()),
        }
    };
    let url = match parsed(parse(args), USAGE) {
        Ok(u) => u,
        Err(code) => return code,
    };
    let Some(rt) = runtime(false) else { return 1 };
    match rt.block_on(check(&url)) {
        Ok(r) => {
            println!(
                "down_kbps={} up_kbps={} rtt_ms={:.1}",
                r.down_kbps, r.up_kbps, r.rtt_ms
            );
            println!(
                "server: play_kbps={} publish_kbps={}",
                r.server_play_kbps, r.server_publish_kbps
            );
            0
        }
        Err(e) => {
            eprintln!("[bandcheck] {}: {e}", url.tc_url);
            1
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_keeps_its_key_on_the_tc_url() {
        let u = parse_url("rtmp://127.0.0.1:1935/app?key=abc").unwrap();
        assert_eq!(u.tc_url, "rtmp://127.0.0.1:1935/app?key=abc");
        assert_eq!(u.port, 1935);
        assert!(parse_url("http://h/app").is_err());
    }
}
