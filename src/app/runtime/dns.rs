//! Host names of outgoing connections (edge origins, forward destinations, hook URLs, ingest
//! inputs) to addresses, without depending on `/etc/resolv.conf`.
//!
//! The order, per name:
//! 1. an IP literal (`1.2.3.4`, `::1`, `[::1]`) is used as is, with no DNS at all;
//! 2. `localhost` is the loopback address (there may be no `/etc/hosts` either);
//! 3. with name servers configured (`[dns] servers`, else the `SRSD_DNS_SERVERS` environment
//!    variable an app can set: `"8.8.8.8,1.1.1.1:53"`), srsd asks them itself over UDP
//!    (src/protocol/dns.rs): A first, AAAA when there is no A; each server `[dns] timeout_ms`
//!    per query, all servers `[dns] attempts` times; an NXDOMAIN ends the search;
//! 4. else, while `/etc/resolv.conf` exists, the system resolver (musl's, which reads it);
//! 5. else an error that says what to configure. musl with no resolv.conf would ask
//!    127.0.0.1:53, which on Android answers nothing: better to fail at once and say why.
//!
//! Nothing is cached: origins and hook servers are resolved on each (re)connect, as SRS does.

use crate::config::dns::{parse_server, DnsConfig};
use crate::protocol::dns::{self as codec, Address, DnsError, QueryType};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::Duration;
use tokio::net::{TcpStream, UdpSocket};

/// The environment variable an app sets when it cannot write a config (same syntax as
/// `[dns] servers`, comma separated). `[dns] servers` wins when both are set.
pub const ENV_SERVERS: &str = "SRSD_DNS_SERVERS";

/// The system resolver's file; when it is missing and no servers are configured, names fail.
const RESOLV_CONF: &str = "/etc/resolv.conf";

/// Largest UDP answer read (RFC 1035 §4.2.1: 512 bytes without EDNS; kept larger for servers
/// that answer more anyway).
const MAX_ANSWER: usize = 1500;

/// The settings in use: set at start and on reload from `[dns]`.
static SETTINGS: RwLock<Option<DnsConfig>> = RwLock::new(None);

/// Applies `[dns]` (at start and on reload).
pub fn configure(cfg: &DnsConfig) {
    *SETTINGS.write().unwrap_or_else(|p| p.into_inner()) = Some(cfg.clone());
}

/// What resolution uses now: (servers, per-query timeout, attempts).
fn settings() -> (Vec<SocketAddr>, Duration, u32) {
    let cfg = SETTINGS
        .read()
        .unwrap_or_else(|p| p.into_inner())
        .clone()
        .unwrap_or_default();
    let mut servers: Vec<SocketAddr> = cfg.servers.iter().filter_map(|s| parse_server(s)).collect();
    if servers.is_empty() {
        if let Ok(env) = std::env::var(ENV_SERVERS) {
            servers = env.split(',').filter_map(parse_server).collect();
        }
    }
    (
        servers,
        cfg.timeout_ms.get().max(Duration::from_millis(1)),
        cfg.attempts.clamp(1, 5),
    )
}

/// An IP literal host (IPv6 with or without brackets).
fn literal(host: &str) -> Option<IpAddr> {
    let h = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    h.parse().ok()
}

/// The addresses of `host` with `port`, by the order of the module doc. Errors name the host
/// and the reason.
pub async fn resolve(host: &str, port: u16) -> io::Result<Vec<SocketAddr>> {
    if let Some(ip) = literal(host) {
        return Ok(vec![SocketAddr::new(ip, port)]);
    }
    if host.eq_ignore_ascii_case("localhost") {
        return Ok(vec![SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)]);
    }
    let (servers, timeout, attempts) = settings();
    if !servers.is_empty() {
        let ips = ask(&servers, host, timeout, attempts).await?;
        return Ok(ips
            .into_iter()
            .map(|ip| SocketAddr::new(ip, port))
            .collect());
    }
    if std::path::Path::new(RESOLV_CONF).exists() {
        return Ok(tokio::net::lookup_host((host, port)).await?.collect());
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!(
            "cannot resolve {host}: no {RESOLV_CONF} and no name servers \
             (set [dns] servers or {ENV_SERVERS})"
        ),
    ))
}

/// TCP connection to `host:port`: each resolved address in turn until one connects.
pub async fn connect(host: &str, port: u16) -> io::Result<TcpStream> {
    let addrs = resolve(host, port).await?;
    let mut last = io::Error::new(io::ErrorKind::NotFound, format!("{host}: no address found"));
    for a in addrs {
        match TcpStream::connect(a).await {
            Ok(s) => return Ok(s),
            Err(e) => last = e,
        }
    }
    Err(last)
}

/// A query id: not guessable from outside the box only as far as the clock and a counter go,
/// which is all a loopback or LAN name server on an app's own network needs.
fn query_id() -> u16 {
    static SEQ: AtomicUsize = AtomicUsize::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    let n = SEQ.fetch_add(1, Ordering::Relaxed) as u32;
    let x = nanos ^ n.wrapping_mul(0x9E37_79B9);
    (x ^ (x >> 16)) as u16
}

/// Asks `servers` in order, `attempts` rounds: A, then AAAA when the name has no A record.
async fn ask(
    servers: &[SocketAddr],
    host: &str,
    timeout: Duration,
    attempts: u32,
) -> io::Result<Vec<IpAddr>> {
    let mut last = String::from("no answer");
    for _ in 0..attempts {
        for &server in servers {
            for qtype in [QueryType::A, QueryType::Aaaa] {
                match exchange(server, host, qtype, timeout).await {
                    Ok(v) if !v.is_empty() => {
                        return Ok(v
                            .into_iter()
                            .map(|a| match a {
                                Address::V4(b) => IpAddr::V4(Ipv4Addr::from(b)),
                                Address::V6(b) => IpAddr::V6(Ipv6Addr::from(b)),
                            })
                            .collect())
                    }
                    Ok(_) => last = format!("{server}: no address records"),
                    Err(Failure::Final(e)) => {
                        return Err(io::Error::new(
                            io::ErrorKind::NotFound,
                            format!("cannot resolve {host}: {server}: {e}"),
                        ))
                    }
                    Err(Failure::Retry(e)) => {
                        last = format!("{server}: {e}");
                        // A server that does not answer A will not answer AAAA either.
                        break;
                    }
                }
            }
        }
    }
    Err(io::Error::new(
        io::ErrorKind::NotFound,
        format!("cannot resolve {host}: {last}"),
    ))
}

enum Failure {
    /// The name is answered not to exist, or cannot be asked: no other server is tried.
    Final(DnsError),
    /// Timeout, network error, server failure: the next server (or round) may do better.
    Retry(String),
}

/// One query to one server, answered within `timeout`. Answers with another id (late answers
/// to an earlier query) are skipped; the socket is connected, so only the server can answer.
async fn exchange(
    server: SocketAddr,
    host: &str,
    qtype: QueryType,
    timeout: Duration,
) -> Result<Vec<Address>, Failure> {
    let id = query_id();
    let query = codec::encode_query(id, host, qtype).map_err(Failure::Final)?;
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let io = async {
        let sock = UdpSocket::bind(local).await?;
        sock.connect(server).await?;
        sock.send(&query).await?;
        let mut buf = vec![0u8; MAX_ANSWER];
        loop {
            let n = sock.recv(&mut buf).await?;
            if codec::message_id(&buf[..n]) == Some(id) {
                buf.truncate(n);
                return Ok::<_, io::Error>(buf);
            }
        }
    };
    let answer = match tokio::time::timeout(timeout, io).await {
        Ok(Ok(a)) => a,
        Ok(Err(e)) => return Err(Failure::Retry(e.to_string())),
        Err(_) => {
            return Err(Failure::Retry(format!(
                "no answer in {} ms",
                timeout.as_millis()
            )))
        }
    };
    match codec::parse_answer(&answer, id, host, qtype) {
        Ok(v) => Ok(v),
        Err(e @ DnsError::Rcode(3)) => Err(Failure::Final(e)),
        Err(e) => Err(Failure::Retry(e.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A name server on loopback answering `name` with `addr` (A), NXDOMAIN for others; it
    /// ignores the first `drop_first` queries (a lost packet).
    async fn server(name: &'static str, addr: [u8; 4], drop_first: usize) -> SocketAddr {
        let sock = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let at = sock.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 512];
            let mut seen = 0;
            while let Ok((n, peer)) = sock.recv_from(&mut buf).await {
                seen += 1;
                if seen <= drop_first {
                    continue;
                }
                let q = &buf[..n];
                let Some((qname, qtype)) = codec::query_question(q) else {
                    continue;
                };
                let a = match (qname == name, qtype) {
                    (true, Some(QueryType::A)) => codec::encode_answer(q, &[Address::V4(addr)], 0),
                    (true, _) => codec::encode_answer(q, &[], 0),
                    (false, _) => codec::encode_answer(q, &[], 3),
                };
                if let Some(a) = a {
                    let _ = sock.send_to(&a, peer).await;
                }
            }
        });
        at
    }

    #[tokio::test]
    async fn names_through_configured_servers_literals_without_dns() {
        let good = server("origin.test", [127, 0, 0, 9], 1).await;
        // A server that never answers comes first: its timeout, then the next one.
        let dead = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let servers = vec![dead.local_addr().unwrap(), good];
        let t = Duration::from_millis(200);
        let t0 = std::time::Instant::now();
        let ips = ask(&servers, "Origin.Test", t, 2).await.unwrap();
        assert_eq!(ips, vec![IpAddr::V4(Ipv4Addr::new(127, 0, 0, 9))]);
        // Round 1: dead (200 ms), good drops the query (200 ms); round 2: dead, good answers.
        assert!(
            t0.elapsed() < Duration::from_millis(1500),
            "{:?}",
            t0.elapsed()
        );
        let e = ask(&[good], "nope.test", t, 2).await.unwrap_err();
        assert!(e.to_string().contains("NXDOMAIN"), "{e}");
        // Bounded: every server silent, the whole search ends after attempts x servers x t.
        let t0 = std::time::Instant::now();
        let e = ask(&[dead.local_addr().unwrap()], "origin.test", t, 2)
            .await
            .unwrap_err();
        assert!(e.to_string().contains("no answer in 200 ms"), "{e}");
        assert!(
            t0.elapsed() < Duration::from_millis(1000),
            "{:?}",
            t0.elapsed()
        );
        // Literals never reach DNS.
        assert_eq!(
            resolve("[::1]", 80).await.unwrap(),
            vec!["[::1]:80".parse().unwrap()]
        );
        assert_eq!(
            resolve("10.1.2.3", 1935).await.unwrap(),
            vec!["10.1.2.3:1935".parse().unwrap()]
        );
        assert_eq!(
            resolve("localhost", 1).await.unwrap(),
            vec!["127.0.0.1:1".parse().unwrap()]
        );
    }
}
