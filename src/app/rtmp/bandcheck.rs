//! The server side of SRS's bandwidth check (`srs_app_bandwidth.cpp`), for vhosts with
//! `[vhost.X.bandcheck] enabled`.
//!
//! A client connects with `key=KEY` in its tcUrl's query. The connection task hands the
//! connection over to [`run`] instead of answering connect; then, as SRS does:
//!
//! ```text
//! client                                   server
//!   connect (tcUrl ...?key=K)   ------>    key wrong: _error; within `interval` of the last
//!                                          check of this vhost: _error; else _result
//!                               <------    onSrsBandCheckStartPlayBytes {limit_kbps, duration_ms, interval_ms}
//!   onSrsBandCheckStartingPlayBytes ---->
//!                               <------    onSrsBandCheckPlaying {...} for duration_ms, paced at limit_kbps
//!                               <------    onSrsBandCheckStopPlayBytes {duration_ms, interval_ms, duration_delta, bytes_delta}
//!   onSrsBandCheckStoppedPlayBytes ----->
//!                               <------    onSrsBandCheckStartPublishBytes {limit_kbps, duration_ms, interval_ms}
//!   onSrsBandCheckStartingPublishBytes ->
//!   onSrsBandCheckPublishing {...} ----->  read for duration_ms, at most limit_kbps
//!                               <------    onSrsBandCheckStopPublishBytes {...}
//!   onSrsBandCheckStoppedPublishBytes -->
//!                               <------    onSrsBandCheckFinished {start_time, end_time, play_kbps, publish_kbps,
//!                                                                  play_bytes, publish_bytes, play_time, publish_time}
//!   finalClientPacket           ------>    (waited for briefly, then the connection closes)
//! ```
//!
//! A check cannot flood the box: both phases are paced at `limit_kbps` (the publish phase by
//! reading no faster, so TCP slows the client), last [`SAMPLE`] each, every wait is bounded,
//! and at most one check per vhost runs per `interval` (SRS keeps one global last-check time;
//! here it is per vhost, in [`Gate`]).

use crate::config::BandcheckConfig;
use crate::protocol::amf0::Amf0Value;
use crate::protocol::rtmp::command;
use crate::protocol::rtmp::message::Message;
use crate::protocol::rtmp::session::{ServerEvent, ServerSession};
use bytes::BytesMut;
use std::collections::HashMap;
use std::io;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::time::Instant;

/// How long each phase samples (SRS's `_SRS_BANDWIDTH_SAMPLE_DURATION_MS`).
pub const SAMPLE: Duration = Duration::from_millis(3000);
/// A client that does not answer a step within this long is dropped (SRS: twice the sample).
const STEP_TIMEOUT: Duration = Duration::from_millis(6000);
/// How long to wait for the client's `finalClientPacket`.
const FINAL_WAIT: Duration = Duration::from_millis(600);
/// Strings per `onSrsBandCheckPlaying` packet (each ~50 bytes: ~2.5 KB per packet).
const PLAY_STRINGS: usize = 50;
/// Bytes read from the socket at a time in the publish phase (small, so pacing is smooth).
const READ_CHUNK: usize = 4096;

/// The last check of each vhost, to refuse checks within its `interval`.
#[derive(Debug, Default)]
pub struct Gate {
    last: Mutex<HashMap<String, Instant>>,
}

impl Gate {
    /// Whether a check of `vhost` may start now; when it may, now becomes its last check.
    fn admit(&self, vhost: &str, interval: Duration) -> bool {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(t) = last.get(vhost) {
            if now.duration_since(*t) < interval {
                return false;
            }
        }
        // One entry per configured vhost name at most: bounded by the config.
        last.insert(vhost.to_string(), now);
        true
    }
}

/// Whether `tc_url`'s query carries `key=KEY` exactly (SRS looks for the substring
/// `key=KEY` in the tcUrl; an exact parameter match refuses `key=KEYx` too).
pub fn key_matches(tc_url: &str, key: &str) -> bool {
    let Some((_, query)) = tc_url.split_once('?') else {
        return false;
    };
    query
        .split(['&', '?'])
        .filter_map(|kv| kv.split_once('='))
        .any(|(k, v)| k == "key" && v == key)
}

/// The socket and session of a connection being checked.
struct Link<'a> {
    session: &'a mut ServerSession,
    reader: &'a mut OwnedReadHalf,
    writer: &'a mut OwnedWriteHalf,
    rbuf: &'a mut BytesMut,
    sent: u64,
    received: u64,
}

impl Link<'_> {
    async fn flush(&mut self) -> io::Result<()> {
        while let Some(out) = self.session.take_output() {
            self.sent += out.len() as u64;
            tokio::time::timeout(STEP_TIMEOUT, self.writer.write_all(&out))
                .await
                .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "bandcheck: write"))??;
        }
        Ok(())
    }

    async fn call(&mut self, name: &str, fields: Vec<(&str, Amf0Value)>) -> io::Result<()> {
        let args = vec![Amf0Value::Null, Amf0Value::object(fields)];
        let c = command::command(0, name, 0.0, args);
        self.session.send_message(&Message::Command(c));
        self.flush().await
    }

    /// Reads at most `max` bytes (waiting until `deadline`) and feeds the session; the
    /// names of the calls that arrived. `Ok(None)` when the deadline passed.
    async fn read_calls(
        &mut self,
        max: usize,
        deadline: Instant,
    ) -> io::Result<Option<Vec<String>>> {
        self.rbuf.reserve(max);
        let mut limited = (&mut *self.reader).take(max as u64);
        let n = match tokio::time::timeout_at(deadline, limited.read_buf(self.rbuf)).await {
            Err(_) => return Ok(None),
            Ok(r) => r?,
        };
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "bandcheck: client left",
            ));
        }
        self.received += n as u64;
        self.session
            .handle_input(self.rbuf)
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e.to_string()))?;
        let mut names = Vec::new();
        while let Some(e) = self.session.poll_event() {
            if let ServerEvent::Call { name, .. } = e {
                names.push(name);
            }
        }
        self.flush().await?;
        Ok(Some(names))
    }

    /// Waits (bounded) for the client's call `want`, dropping anything else.
    async fn expect(&mut self, want: &str) -> io::Result<()> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        loop {
            match self.read_calls(64 * 1024, deadline).await? {
                Some(names) if names.iter().any(|n| n == want) => return Ok(()),
                Some(_) => {}
                None => {
                    return Err(io::Error::new(
                        io::ErrorKind::TimedOut,
                        format!("bandcheck: no {want}"),
                    ))
                }
            }
        }
    }
}

/// Sleeps until `bytes` moved since `start` are within `limit_kbps` (SRS's `SrsKbpsLimit`).
async fn pace(start: Instant, bytes: u64, limit_kbps: u32) {
    let due = Duration::from_millis(bytes * 8 / u64::from(limit_kbps.max(1)));
    tokio::time::sleep_until(start + due).await;
}

fn kbps(bytes: u64, elapsed: Duration) -> f64 {
    let ms = elapsed.as_millis().max(1) as f64;
    (bytes as f64 * 8.0 / ms).floor()
}

fn epoch_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_millis() as f64)
}

/// Runs a check on a connection whose connect request `id` is pending: the key and the
/// gate decide, then the play and publish phases and the report. A `flash` client (its
/// connect had a swfUrl) is not waited for after the publish phase, as SRS does: its queue
/// of publishing calls hides the `onSrsBandCheckStoppedPublishBytes` it never sends. `Ok` when the check ended
/// (or was refused) normally; the connection closes afterwards either way.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    session: &mut ServerSession,
    reader: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
    rbuf: &mut BytesMut,
    id: u32,
    vhost: &str,
    tc_url: &str,
    flash: bool,
    cfg: &BandcheckConfig,
    gate: &Gate,
) -> io::Result<()> {
    let mut link = Link {
        session,
        reader,
        writer,
        rbuf,
        sent: 0,
        received: 0,
    };
    if !key_matches(tc_url, &cfg.key) {
        log::warn!("bandcheck {vhost}: refused: wrong or missing key in tcUrl {tc_url:?}");
        link.session.reject_connect(id, "bandcheck: wrong key");
        return link.flush().await;
    }
    let interval = cfg.interval.get();
    if !gate.admit(vhost, interval) {
        log::warn!(
            "bandcheck {vhost}: refused: one check per {} s",
            cfg.interval
        );
        link.session
            .reject_connect(id, "bandcheck: rejected, too many checks");
        return link.flush().await;
    }
    link.session.accept_connect(id);
    link.flush().await?;
    let limit = cfg.limit_kbps;
    let duration_ms = SAMPLE.as_millis() as f64;
    let start_time = epoch_ms();

    // Play: we send, paced at the limit.
    link.call(
        "onSrsBandCheckStartPlayBytes",
        vec![
            ("limit_kbps", Amf0Value::Number(f64::from(limit))),
            ("duration_ms", Amf0Value::Number(duration_ms)),
            ("interval_ms", Amf0Value::Number(0.0)),
        ],
    )
    .await?;
    link.expect("onSrsBandCheckStartingPlayBytes").await?;
    let text = "SRS band check data from server's playing......";
    let fields: Vec<(String, Amf0Value)> = (0..PLAY_STRINGS)
        .map(|i| (i.to_string(), Amf0Value::string(text)))
        .collect();
    let start = Instant::now();
    let base = link.sent;
    while start.elapsed() < SAMPLE {
        let c = command::command(
            0,
            "onSrsBandCheckPlaying",
            0.0,
            vec![Amf0Value::Null, Amf0Value::Object(fields.clone())],
        );
        link.session.send_message(&Message::Command(c));
        link.flush().await?;
        pace(start, link.sent - base, limit).await;
    }
    let play_time = start.elapsed();
    let play_bytes = link.sent - base;
    let play_kbps = kbps(play_bytes, play_time);
    link.call(
        "onSrsBandCheckStopPlayBytes",
        vec![
            ("duration_ms", Amf0Value::Number(duration_ms)),
            ("interval_ms", Amf0Value::Number(0.0)),
            (
                "duration_delta",
                Amf0Value::Number(play_time.as_millis() as f64),
            ),
            ("bytes_delta", Amf0Value::Number(play_bytes as f64)),
        ],
    )
    .await?;
    link.expect("onSrsBandCheckStoppedPlayBytes").await?;

    // Publish: the client sends, we read no faster than the limit.
    link.call(
        "onSrsBandCheckStartPublishBytes",
        vec![
            ("limit_kbps", Amf0Value::Number(f64::from(limit))),
            ("duration_ms", Amf0Value::Number(duration_ms)),
            ("interval_ms", Amf0Value::Number(0.0)),
        ],
    )
    .await?;
    link.expect("onSrsBandCheckStartingPublishBytes").await?;
    let start = Instant::now();
    let base = link.received;
    let end = start + SAMPLE;
    loop {
        match link.read_calls(READ_CHUNK, end).await? {
            None => break,
            Some(names) if names.iter().any(|n| n == "onSrsBandCheckStopPublishBytes") => break,
            Some(_) => {}
        }
        pace(start, link.received - base, limit).await;
        if Instant::now() >= end {
            break;
        }
    }
    let publish_time = start.elapsed();
    let publish_bytes = link.received - base;
    let publish_kbps = kbps(publish_bytes, publish_time);
    link.call(
        "onSrsBandCheckStopPublishBytes",
        vec![
            ("duration_ms", Amf0Value::Number(duration_ms)),
            ("interval_ms", Amf0Value::Number(0.0)),
            (
                "duration_delta",
                Amf0Value::Number(publish_time.as_millis() as f64),
            ),
            ("bytes_delta", Amf0Value::Number(publish_bytes as f64)),
        ],
    )
    .await?;
    if !flash {
        link.expect("onSrsBandCheckStoppedPublishBytes").await?;
    }

    log::info!(
        "bandcheck {vhost}: play {play_kbps} kbps ({play_bytes} bytes in {} ms), publish \
         {publish_kbps} kbps ({publish_bytes} bytes in {} ms), limit {limit} kbps",
        play_time.as_millis(),
        publish_time.as_millis()
    );
    link.call(
        "onSrsBandCheckFinished",
        vec![
            ("start_time", Amf0Value::Number(start_time)),
            ("end_time", Amf0Value::Number(epoch_ms())),
            ("play_kbps", Amf0Value::Number(play_kbps)),
            ("publish_kbps", Amf0Value::Number(publish_kbps)),
            ("play_bytes", Amf0Value::Number(play_bytes as f64)),
            ("publish_bytes", Amf0Value::Number(publish_bytes as f64)),
            ("play_time", Amf0Value::Number(play_time.as_millis() as f64)),
            (
                "publish_time",
                Amf0Value::Number(publish_time.as_millis() as f64),
            ),
        ],
    )
    .await?;
    // The client's final packet is a courtesy; it may close instead.
    let deadline = Instant::now() + FINAL_WAIT;
    while let Ok(Some(names)) = link.read_calls(64 * 1024, deadline).await {
        if names.iter().any(|n| n == "finalClientPacket") {
            break;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_key_must_be_an_exact_query_parameter() {
        assert!(key_matches("rtmp://h/app?key=abc", "abc"));
        assert!(key_matches("rtmp://h/app?vhost=v&key=abc", "abc"));
        assert!(!key_matches("rtmp://h/app?key=abcd", "abc"));
        assert!(!key_matches("rtmp://h/app?mykey=abc", "abc"));
        assert!(!key_matches("rtmp://h/app/key=abc", "abc"));
        assert!(!key_matches("rtmp://h/app", "abc"));
    }

    #[test]
    fn one_check_per_vhost_per_interval() {
        let g = Gate::default();
        assert!(g.admit("a", Duration::from_secs(30)));
        assert!(!g.admit("a", Duration::from_secs(30)));
        assert!(g.admit("b", Duration::from_secs(30)));
        assert!(g.admit("a", Duration::ZERO));
    }
}
