//! `[dns]`: the name servers srsd asks itself, for hosts where the system resolver has nothing
//! to read (Android has no `/etc/resolv.conf`). See `src/app/dns.rs` for when they are used.

use super::Millis;
use serde::Deserialize;
use std::net::{IpAddr, SocketAddr};

/// `[dns]` of the config.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DnsConfig {
    /// Name servers, `"ip"` or `"ip:port"` (IPv6 as `"[ip]:port"`), asked in order. Empty:
    /// the `SRSD_DNS_SERVERS` environment variable (same syntax, comma separated), else the
    /// system resolver while `/etc/resolv.conf` exists.
    pub servers: Vec<String>,
    /// Per query, in milliseconds (1..=30000).
    pub timeout_ms: Millis,
    /// Rounds over all servers before giving up (1..=5).
    pub attempts: u32,
}

impl Default for DnsConfig {
    fn default() -> Self {
        DnsConfig {
            servers: Vec::new(),
            timeout_ms: Millis::from_millis(2_000),
            attempts: 2,
        }
    }
}

/// A name server entry: `"ip"` (port 53) or `"ip:port"` / `"[v6]:port"`.
pub fn parse_server(entry: &str) -> Option<SocketAddr> {
    let entry = entry.trim();
    if let Ok(ip) = entry.parse::<IpAddr>() {
        return Some(SocketAddr::new(ip, 53));
    }
    entry.parse::<SocketAddr>().ok()
}

impl DnsConfig {
    /// Checks the entries and bounds: (key, message) of the first problem.
    pub fn check(&self) -> Result<(), (&'static str, String)> {
        for s in &self.servers {
            if parse_server(s).is_none() {
                return Err((
                    "servers",
                    format!("dns.servers: {s:?} is not an IP address or ip:port"),
                ));
            }
        }
        if !(1..=30_000).contains(&self.timeout_ms.as_millis()) {
            return Err((
                "timeout_ms",
                format!("dns.timeout_ms: {} is not in 1..=30000", self.timeout_ms),
            ));
        }
        if !(1..=5).contains(&self.attempts) {
            return Err((
                "attempts",
                format!("dns.attempts: {} is not in 1..=5", self.attempts),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;

    #[test]
    fn servers_timeouts_and_rotation_are_checked_with_a_location() {
        let c = Config::parse(
            "[dns]\nservers = [\"10.0.0.1\", \"[::1]:5353\", \"127.0.0.1:53\"]\n",
            "t.toml",
        )
        .unwrap();
        assert_eq!(c.dns.servers.len(), 3);
        assert_eq!(
            super::parse_server("[::1]:5353"),
            Some("[::1]:5353".parse().unwrap())
        );
        assert_eq!(
            super::parse_server("10.0.0.1"),
            Some("10.0.0.1:53".parse().unwrap())
        );
        for (text, at, why) in [
            (
                "[dns]\nservers = [\"dns.google\"]\n",
                "t.toml:2:",
                "not an IP address",
            ),
            ("[dns]\ntimeout_ms = 0\n", "t.toml:2:", "timeout_ms"),
            ("[dns]\nattempts = 9\n", "t.toml:2:", "attempts"),
            ("[log]\nmax_size = 100\n", "t.toml:2:", "under the minimum"),
            ("[log]\nkeep = 0\n", "t.toml:2:", "log.keep"),
        ] {
            let e = Config::parse(text, "t.toml").unwrap_err().to_string();
            assert!(e.starts_with(at) && e.contains(why), "{text:?}: {e}");
        }
    }
}
