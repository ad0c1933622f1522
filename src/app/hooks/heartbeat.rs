//! The SRS heartbeat (`[heartbeat]`): every `interval` seconds, POST
//! `{"device_id", "ip", "server", "service", "pid", "summaries": {"data": {...}}}` to `url`,
//! `summaries` only when `summaries = true` (SRS `srs_app_heartbeat.cpp`, see [`report`]). The response is ignored, as SRS does;
//! failures are logged at warn at most once a minute, so a dead collector does not flood the
//! log at one line per tick.
//!
//! The task reads the config on every tick, so a reload can enable, disable or retarget it.
//! It ends when the server shuts down.

use crate::app::runtime::json::obj;
use crate::app::shared::Context;
use crate::config::HeartbeatConfig;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// How often a failing heartbeat may log.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// How often a disabled heartbeat looks at the config again.
const IDLE_CHECK: Duration = Duration::from_secs(1);
/// Bounds on the interval, whatever the config says: `Duration::from_secs_f64` must never
/// see a value it would panic on.
const MIN_INTERVAL: f64 = 0.1;
const MAX_INTERVAL: f64 = 86_400.0;
/// The POST timeout is the interval, within these bounds.
const MIN_TIMEOUT: f64 = 1.0;
const MAX_TIMEOUT: f64 = 30.0;

/// Runs until shutdown. Spawn once per server.
pub async fn run(ctx: Arc<Context>) {
    let mut shutdown = ctx.shutdown.clone();
    let mut warned: Option<Instant> = None;
    let mut suppressed: u64 = 0;
    loop {
        let cfg = ctx.config().heartbeat.clone();
        let wait = if cfg.enabled {
            let interval = clamp_secs(cfg.interval.as_secs_f64(), MIN_INTERVAL, MAX_INTERVAL);
            let timeout = clamp_secs(cfg.interval.as_secs_f64(), MIN_TIMEOUT, MAX_TIMEOUT);
            let started = Instant::now();
            let result = crate::app::hooks::post_json(&cfg.url, report(&ctx, &cfg), timeout).await;
            let failure = match result {
                Ok((status, _)) if (200..300).contains(&status) => None,
                Ok((status, body)) => Some(format!("HTTP {status}: {}", snippet(&body))),
                Err(e) => Some(e),
            };
            match failure {
                None => ::log::debug!("heartbeat sent to {}", cfg.url),
                Some(why) => {
                    let now = Instant::now();
                    let due = match warned {
                        Some(t) => now.duration_since(t) >= WARN_EVERY,
                        None => true,
                    };
                    if due {
                        let more = if suppressed > 0 {
                            format!(" ({suppressed} more failures since the last warning)")
                        } else {
                            String::new()
                        };
                        ::log::warn!("heartbeat to {} failed: {why}{more}", cfg.url);
                        warned = Some(now);
                        suppressed = 0;
                    } else {
                        suppressed += 1;
                    }
                }
            }
            // Ticks are `interval` apart from start to start, as long as a post is quicker.
            interval.saturating_sub(started.elapsed())
        } else {
            IDLE_CHECK
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|stop| *stop) => return,
        }
    }
}

/// The JSON body of one heartbeat, SRS 6's (`SrsHttpHeartbeat::do_heartbeat`):
/// `{"device_id", "ip", "server", "service", "pid", "summaries"?}` where `server`, `service`
/// and `pid` are the strings every API answer carries, and `summaries` (only when
/// `summaries = true`) is `{"data": {...}}` holding exactly the `data` of
/// `/api/v1/summaries` (SRS fills it with the same `srs_api_dump_summaries`, which writes no
/// `code` there), plus srsd's `clients` and `streams` counts inside `data`.
pub fn report(ctx: &Context, cfg: &HeartbeatConfig) -> String {
    let (server, service) = crate::app::runtime::system::server_ids();
    let mut v = obj([
        ("device_id", cfg.device_id.as_str().into()),
        ("ip", local_ipv4().to_string().into()),
        ("server", server.as_str().into()),
        ("service", service.as_str().into()),
        ("pid", std::process::id().to_string().into()),
    ]);
    if cfg.summaries {
        let mut data = crate::app::runtime::system::summaries(ctx);
        data.push("clients", ctx.stats.clients().len());
        data.push("streams", ctx.hub.list().len());
        v.push("summaries", obj([("data", data)]));
    }
    v.to_json()
}

/// This host's IPv4 address: the source address of the default route (a connected UDP
/// socket sends nothing), else the first non-loopback local address in
/// `/proc/net/fib_trie`, else 127.0.0.1.
pub fn local_ipv4() -> Ipv4Addr {
    route_ipv4()
        .or_else(|| {
            std::fs::read_to_string("/proc/net/fib_trie")
                .ok()
                .and_then(|t| fib_trie_local_ipv4(&t))
        })
        .unwrap_or(Ipv4Addr::LOCALHOST)
}

fn route_ipv4() -> Option<Ipv4Addr> {
    let s = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).ok()?;
    // Any routable address works; connect only picks the route, nothing is sent.
    s.connect((Ipv4Addr::new(192, 0, 2, 1), 9)).ok()?;
    match s.local_addr().ok()?.ip() {
        IpAddr::V4(a) if !a.is_loopback() && !a.is_unspecified() => Some(a),
        _ => None,
    }
}

/// The first `/32 host LOCAL` address that is not loopback. The file lists each address on a
/// `|-- a.b.c.d` line followed by its kind lines.
pub fn fib_trie_local_ipv4(text: &str) -> Option<Ipv4Addr> {
    let mut last: Option<Ipv4Addr> = None;
    for line in text.lines() {
        let line = line.trim();
        if let Some(addr) = line.strip_prefix("|-- ") {
            last = addr.trim().parse().ok();
        } else if line.starts_with("/32 host LOCAL") {
            if let Some(a) = last.filter(|a| !a.is_loopback() && !a.is_unspecified()) {
                return Some(a);
            }
        }
    }
    None
}

fn clamp_secs(secs: f64, min: f64, max: f64) -> Duration {
    let s = if secs.is_finite() {
        secs.clamp(min, max)
    } else {
        min
    };
    Duration::try_from_secs_f64(s).unwrap_or(Duration::from_secs(1))
}

/// The start of a response body for a log line, on one line.
fn snippet(body: &str) -> String {
    body.chars()
        .take(80)
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_first_non_loopback_local_address_from_fib_trie() {
        let text = "Main:\n  +-- 0.0.0.0/0 3 0 5\n     |-- 0.0.0.0\n        /0 universe UNICAST\n     +-- 127.0.0.0/8 2 0 2\n        |-- 127.0.0.1\n           /32 host LOCAL\n     |-- 10.1.2.3\n        /32 link UNICAST\n     |-- 10.1.2.4\n        /32 host LOCAL\n";
        assert_eq!(fib_trie_local_ipv4(text), Some(Ipv4Addr::new(10, 1, 2, 4)));
        assert_eq!(fib_trie_local_ipv4(""), None);
        assert_eq!(fib_trie_local_ipv4("|-- garbage\n/32 host LOCAL\n"), None);
    }

    #[test]
    fn clamps_any_interval_without_panicking() {
        for (v, want) in [
            (0.5, 0.5),
            (0.0, MIN_INTERVAL),
            (-3.0, MIN_INTERVAL),
            (f64::NAN, MIN_INTERVAL),
            (f64::INFINITY, MIN_INTERVAL),
            (1e300, MAX_INTERVAL),
        ] {
            assert_eq!(
                clamp_secs(v, MIN_INTERVAL, MAX_INTERVAL),
                Duration::from_secs_f64(want),
                "{v}"
            );
        }
    }

    #[test]
    fn local_ipv4_is_never_unspecified() {
        assert!(!local_ipv4().is_unspecified());
    }
}
