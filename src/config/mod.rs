//! Configuration: one typed TOML tree, defaults, validation.
//!
//! The tree follows SRS 3+'s key names, units and grouping (CONTRACTS.md §2);
//! `conf/full.toml` documents every key. Every struct is
//! `#[serde(deny_unknown_fields, default)]`: a missing key takes the default written on its
//! field, an unknown key is an error carrying its `file:line:col`.
//!
//! Loading is two steps: serde deserializes the text (syntax, types, enum names and unknown keys
//! are reported by toml with their span), then [`Config::parse`] checks value ranges and
//! cross-field rules; those errors find the offending key's position by scanning the text
//! (see `locate.rs`). Every struct derives `PartialEq` so reload can diff per-feature
//! sub-structs and restart only what changed.

pub mod anchor;
pub mod dns;
mod engine;
#[cfg(feature = "import-srs")]
pub mod import_srs;
mod locate;
mod rotation;
pub mod security;
#[cfg(test)]
mod tests;
mod units;
mod vhost;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use serde::Deserialize;

pub use engine::*;
pub use units::{Millis, Seconds};
pub use vhost::*;

/// The vhost every unmatched vhost name falls back to (CONTRACTS.md §3 rule 4).
pub const DEFAULT_VHOST: &str = "__defaultVhost__";

/// Valid RTMP chunk sizes, as SRS checks them (`srs_config_chunk_size`).
pub const CHUNK_SIZE_RANGE: std::ops::RangeInclusive<u32> = 128..=65536;

/// A config that cannot be used: where (1-based; line 0 for I/O errors) and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: String,
    pub line: usize,
    pub col: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.line == 0 {
            // Not about a place in the text (the file cannot be read): no `:0:0`.
            return write!(f, "{}: {}", self.file, self.message);
        }
        write!(
            f,
            "{}:{}:{}: {}",
            self.file, self.line, self.col, self.message
        )
    }
}

impl std::error::Error for ConfigError {}

/// The whole configuration. Reloadability of each key is documented in `conf/full.toml`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// RTMP listen addresses, `"[ip:]port"`, parsed at load.
    pub listen: Vec<Listen>,
    pub max_connections: u32,
    /// Default outgoing RTMP chunk size, 128..=65536.
    pub chunk_size: u32,
    pub pid: String,
    pub daemon: bool,
    /// Runtime threads: 0 = one per core, 1 = current-thread runtime.
    pub workers: u32,
    /// After binding its ports, switch to this user (name or uid; "" = stay who started
    /// it). Needs root; the log, pid, HLS and DVR directories are made and given to the user
    /// first. Not reloadable.
    pub user: String,
    /// The group to switch to with `user` ("" = the user's primary group).
    pub group: String,
    pub log: LogConfig,
    pub http_api: HttpApiConfig,
    pub http_server: HttpServerConfig,
    /// Always contains [`DEFAULT_VHOST`] after [`Config::parse`] (which adds it, and fills
    /// each empty `hls.path` with this file's `http_server.dir`: hence an empty map when
    /// absent, not `Config::default()`'s).
    #[serde(default)]
    pub vhost: BTreeMap<String, VhostConfig>,
    pub ingest: Vec<IngestConfig>,
    pub heartbeat: HeartbeatConfig,
    pub console: ConsoleConfig,
    /// `[dns]`: name servers srsd asks itself (Android: no `/etc/resolv.conf`).
    pub dns: dns::DnsConfig,
    /// Base directory: srsd changes into it at start, so every relative path of the config
    /// (log, HLS, DVR, HTTP root, pid) is under it. Empty = the current directory. `-w DIR`
    /// on the command line wins.
    pub workdir: String,
    /// The text this config was parsed from (the console shows it, secrets masked).
    #[serde(skip)]
    pub source: SourceText,
}

/// The text a [`Config`] was parsed from. It never makes two configs differ: reload compares
/// values, and a changed comment changes no feature.
#[derive(Debug, Clone, Default)]
pub struct SourceText(pub std::sync::Arc<str>);

impl PartialEq for SourceText {
    fn eq(&self, _: &SourceText) -> bool {
        true
    }
}

/// `[console]`: the web console on the API port (`/console/`), its player page, and the
/// index of live streams at `/` of the HTTP server.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ConsoleConfig {
    /// Serve the console, the player and the stream index (a binary built without the
    /// `console` feature has none of them).
    pub enabled: bool,
    /// Directory holding the player libraries (`lib/mpegts.js`, `lib/hls.min.js`); empty =
    /// `/usr/share/srsd/www`, else `target/www` (a source checkout).
    pub www: String,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        ConsoleConfig {
            enabled: true,
            www: String::new(),
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        let http_server = HttpServerConfig::default();
        let mut default_vhost = VhostConfig::default();
        // As `Config::parse` fills it: HLS writes under the HTTP root.
        default_vhost.hls.path.clone_from(&http_server.dir);
        let mut vhost = BTreeMap::new();
        vhost.insert(DEFAULT_VHOST.to_string(), default_vhost);
        Config {
            listen: vec![Listen::port(1935)],
            max_connections: 1000,
            chunk_size: 60000,
            pid: "./objs/srsd.pid".to_string(),
            daemon: false,
            workers: 0,
            user: String::new(),
            group: String::new(),
            log: LogConfig::default(),
            http_api: HttpApiConfig::default(),
            http_server,
            vhost,
            ingest: Vec::new(),
            heartbeat: HeartbeatConfig::default(),
            console: ConsoleConfig::default(),
            dns: dns::DnsConfig::default(),
            workdir: String::new(),
            source: SourceText::default(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogTank {
    #[default]
    Console,
    File,
}

/// SRS's level names, most verbose first. SRS's `trace` is the normal level.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    Verbose,
    Info,
    #[default]
    Trace,
    Warn,
    Error,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    pub tank: LogTank,
    pub level: LogLevel,
    /// Used when `tank = "file"`.
    pub file: String,
    /// Rotate the file when it reaches this many bytes (srsd renames it to `FILE.1`, older
    /// ones shift up to `FILE.<keep>`); 0 = never (logrotate and SIGUSR1 do it).
    pub max_size: u64,
    /// Rotated files kept when `max_size` is set (1..=20).
    pub keep: u32,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            tank: LogTank::Console,
            level: LogLevel::Trace,
            file: "./objs/srsd.log".to_string(),
            max_size: 0,
            keep: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpApiConfig {
    pub enabled: bool,
    /// `"[ip:]port"`.
    pub listen: Listen,
    pub raw_api: RawApiConfig,
    /// HTTP Basic authentication for the API and /metrics.
    pub auth: HttpApiAuthConfig,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct HttpApiAuthConfig {
    pub enabled: bool,
    pub username: String,
    pub password: String,
}

impl Default for HttpApiConfig {
    fn default() -> Self {
        HttpApiConfig {
            enabled: true,
            listen: Listen::addr(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1985)),
            raw_api: RawApiConfig::default(),
            auth: HttpApiAuthConfig::default(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct RawApiConfig {
    pub enabled: bool,
    pub allow_reload: bool,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpServerConfig {
    pub enabled: bool,
    /// `"[ip:]port"`.
    pub listen: Listen,
    /// Root of the static files (HLS output lives here by default).
    pub dir: String,
    /// HTTP VOD of recordings under `dir`, as SRS's http static server: `.flv?start=BYTES`
    /// answers an FLV header, the sequence headers, then the file from the keyframe at or
    /// after BYTES; `.mp4?range=A-B` is read as `Range: bytes=A-B`. Off, `?start=` and
    /// `?range=` are ignored (the file is served whole; the Range header still works).
    pub vod: bool,
}

impl Default for HttpServerConfig {
    fn default() -> Self {
        HttpServerConfig {
            enabled: true,
            listen: Listen::port(8080),
            dir: "./objs/html".to_string(),
            vod: true,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeartbeatConfig {
    pub enabled: bool,
    /// Time between reports (written in seconds).
    pub interval: Seconds,
    pub url: String,
    pub device_id: String,
    /// Include the `/api/v1/summaries` data in each report.
    pub summaries: bool,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            enabled: false,
            interval: Seconds::from_millis(9_900),
            url: "http://127.0.0.1:8085/api/v1/servers".to_string(),
            device_id: String::new(),
            summaries: false,
        }
    }
}

/// A listen address, parsed at load from `"[ip:]port"` (see [`parse_listen`]); it keeps the
/// text as written for the API and messages. A bad address is refused at load with its
/// `file:line:col`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct Listen {
    /// The socket address to bind.
    pub addr: SocketAddr,
    text: String,
}

impl Listen {
    /// `port` on every IPv4 interface, written `"PORT"`.
    pub fn port(port: u16) -> Listen {
        Listen {
            addr: SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port),
            text: port.to_string(),
        }
    }

    /// `addr`, written as Rust prints it (`"127.0.0.1:1985"`, `"[::1]:1935"`).
    pub fn addr(addr: SocketAddr) -> Listen {
        Listen {
            addr,
            text: addr.to_string(),
        }
    }

    /// The address as the config wrote it.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl TryFrom<String> for Listen {
    type Error = String;

    fn try_from(text: String) -> Result<Listen, String> {
        match parse_listen(&text) {
            Some(addr) => Ok(Listen { addr, text }),
            None => Err(format!(
                "bad address \"{text}\", want \"port\", \"ip:port\" or \"[ipv6]:port\""
            )),
        }
    }
}

/// A listen address equals the text it was written as (`listen == ["1935"]`).
impl PartialEq<&str> for Listen {
    fn eq(&self, other: &&str) -> bool {
        self.text == *other
    }
}

impl std::fmt::Display for Listen {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

/// Parse one `"[ip:]port"` listen entry: `"1935"` -> `0.0.0.0:1935`, `"127.0.0.1:1935"`,
/// `"[::1]:1935"`. Host names are not accepted (a listen address must not need DNS).
pub fn parse_listen(entry: &str) -> Option<SocketAddr> {
    let entry = entry.trim();
    if !entry.is_empty() && entry.bytes().all(|b| b.is_ascii_digit()) {
        let port: u16 = entry.parse().ok()?;
        return Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), port));
    }
    entry.parse().ok()
}

/// Whether `text` reads as an SRS config rather than TOML: some line is a known SRS
/// directive ended by `;` or opening a block, and no line assigns with `=` outside a string.
pub fn looks_like_srs(text: &str) -> bool {
    const MARKS: [&str; 8] = [
        "listen",
        "vhost",
        "http_server",
        "http_api",
        "srs_log_tank",
        "srs_log_file",
        "max_connections",
        "daemon",
    ];
    text.lines().any(|l| {
        let l = l.split('#').next().unwrap_or("").trim();
        let first = l.split_whitespace().next().unwrap_or("");
        MARKS.contains(&first) && !l.contains('=') && (l.ends_with(';') || l.ends_with('{'))
    })
}

impl Config {
    /// The embedded default configuration (`conf/srsd.toml`).
    pub const DEFAULT_TOML: &'static str = include_str!("../../conf/srsd.toml");

    /// The keys a reload cannot apply (`Reloadable: no` in `conf/full.toml`) whose value in
    /// `self` differs from `running`'s, the config the process started with: what a reload
    /// warns needs a restart. Compared with what runs, not with the last reload's file, so a
    /// key changed and changed back is not reported.
    pub fn restart_only_changes(&self, running: &Config) -> Vec<&'static str> {
        let (a, b) = (self, running);
        [
            ("listen", a.listen != b.listen),
            ("pid", a.pid != b.pid),
            ("daemon", a.daemon != b.daemon),
            ("workers", a.workers != b.workers),
            ("user", a.user != b.user),
            ("group", a.group != b.group),
            ("workdir", a.workdir != b.workdir),
            ("http_api.enabled", a.http_api.enabled != b.http_api.enabled),
            ("http_api.listen", a.http_api.listen != b.http_api.listen),
            (
                "http_server.enabled",
                a.http_server.enabled != b.http_server.enabled,
            ),
            (
                "http_server.listen",
                a.http_server.listen != b.http_server.listen,
            ),
        ]
        .into_iter()
        .filter_map(|(key, changed)| changed.then_some(key))
        .collect()
    }

    /// Parse and validate `text`; `file_name` only labels errors.
    pub fn parse(text: &str, file_name: &str) -> Result<Config, ConfigError> {
        let mut config: Config = toml::from_str(text).map_err(|e| {
            let (line, col) = match e.span() {
                Some(span) => locate::line_col(text, span.start),
                None => (1, 1),
            };
            ConfigError {
                file: file_name.to_string(),
                line,
                col,
                // toml puts "expected ..." on a second line; keep the error one line.
                message: e
                    .message()
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .collect::<Vec<_>>()
                    .join(": "),
            }
        })?;
        config.vhost.entry(DEFAULT_VHOST.to_string()).or_default();
        for vhost in config.vhost.values_mut() {
            if vhost.hls.path.is_empty() {
                vhost.hls.path.clone_from(&config.http_server.dir);
            }
        }
        config.source = SourceText(text.into());
        config.validate().map_err(|(path, message)| {
            let path: Vec<&str> = path.iter().map(String::as_str).collect();
            let (line, col) = locate::find_key(text, &path);
            ConfigError {
                file: file_name.to_string(),
                line,
                col,
                message,
            }
        })?;
        Ok(config)
    }

    /// Read and parse the file at `path`. I/O errors are reported at line 0, col 0.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let file_name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: file_name.clone(),
            line: 0,
            col: 0,
            message: format!("cannot read config: {e}"),
        })?;
        Config::parse(&text, &file_name)
    }

    /// The embedded default, parsed, its relative paths anchored under [`anchor::base_dir`]
    /// (so it does not depend on the directory srsd was started in). A unit test proves it
    /// parses.
    pub fn embedded_default() -> Config {
        let mut config = Config::parse(Config::DEFAULT_TOML, "conf/srsd.toml")
            .expect("the embedded conf/srsd.toml is valid (tested)");
        if let Some(base) = anchor::base_dir() {
            anchor::anchor_paths(&mut config, &base);
        }
        config
    }

    /// Resolve a vhost name (CONTRACTS.md §3 rule 4): the exact name when configured, else
    /// [`DEFAULT_VHOST`]; `None` when the vhost found is disabled.
    pub fn resolve_vhost(&self, name: &str) -> Option<(&str, &VhostConfig)> {
        let (name, vhost) = self
            .vhost
            .get_key_value(name)
            .or_else(|| self.vhost.get_key_value(DEFAULT_VHOST))?;
        vhost.enabled.then_some((name.as_str(), vhost))
    }

    /// The outgoing chunk size for connections of `vhost`.
    pub fn chunk_size_for(&self, vhost: &VhostConfig) -> u32 {
        vhost.chunk_size.unwrap_or(self.chunk_size)
    }

    /// The RTMP listen addresses.
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        self.listen.iter().map(|l| l.addr).collect()
    }

    /// Range and cross-field checks serde cannot express. On error: the offending key's path
    /// (for locating it in the text) and the message.
    fn validate(&self) -> Result<(), (Vec<String>, String)> {
        let fail = |path: &[&str], message: String| -> Result<(), (Vec<String>, String)> {
            Err((path.iter().map(|s| s.to_string()).collect(), message))
        };
        if self.listen.is_empty() {
            return fail(
                &["listen"],
                "listen: at least one address is required".into(),
            );
        }
        if !CHUNK_SIZE_RANGE.contains(&self.chunk_size) {
            return fail(
                &["chunk_size"],
                bad_chunk_size("chunk_size", self.chunk_size),
            );
        }
        if self.log.tank == LogTank::File && self.log.file.is_empty() {
            return fail(
                &["log", "file"],
                "log.file: required when tank = \"file\"".into(),
            );
        }
        if let Err((key, message)) = self.dns.check() {
            return fail(&["dns", key], message);
        }
        if let Err((key, message)) = self.log.check_rotation() {
            return fail(&["log", key], message);
        }
        for (name, vhost) in &self.vhost {
            let at = |keys: &[&str]| -> Vec<String> {
                let mut path = vec!["vhost".to_string(), name.clone()];
                path.extend(keys.iter().map(|k| k.to_string()));
                path
            };
            let err = |keys: &[&str], what: String| -> Result<(), (Vec<String>, String)> {
                Err((
                    at(keys),
                    format!("vhost \"{name}\": {}{what}", keys.join(".")),
                ))
            };
            if let Some(size) = vhost.chunk_size {
                if !CHUNK_SIZE_RANGE.contains(&size) {
                    return Err((
                        at(&["chunk_size"]),
                        bad_chunk_size(&format!("vhost \"{name}\": chunk_size"), size),
                    ));
                }
            }
            if let Some(n) = vhost.play.mw_msgs.filter(|n| *n > vhost::MW_MSGS_MAX) {
                return err(
                    &["play", "mw_msgs"],
                    format!(": {n} out of range 0..={}", vhost::MW_MSGS_MAX),
                );
            }
            if vhost.cluster.mode == ClusterMode::Remote && vhost.cluster.origin.is_empty() {
                return err(
                    &["cluster", "mode"],
                    ": \"remote\" needs at least one cluster.origin".into(),
                );
            }
            let hls = &vhost.hls;
            for (key, value) in [
                ("fragment", hls.fragment.as_secs_f64()),
                ("td_ratio", hls.td_ratio),
                ("aof_ratio", hls.aof_ratio),
                ("window", hls.window.as_secs_f64()),
            ] {
                if !(value.is_finite() && value > 0.0) {
                    return err(&["hls", key], format!(": {value} must be > 0"));
                }
            }
            let bc = &vhost.bandcheck;
            if bc.enabled {
                if bc.limit_kbps == 0 {
                    return err(&["bandcheck", "limit_kbps"], ": must be > 0".into());
                }
                if bc.key.is_empty() {
                    return err(&["bandcheck", "key"], ": must not be empty".into());
                }
            }
            if vhost.dvr.plan == DvrPlan::Segment && vhost.dvr.duration.is_zero() {
                return err(
                    &["dvr", "duration"],
                    ": must be > 0 with plan = \"segment\"".into(),
                );
            }
        }
        if self.heartbeat.enabled && self.heartbeat.interval.is_zero() {
            return fail(
                &["heartbeat", "interval"],
                format!(
                    "heartbeat.interval: {} must be > 0 (seconds)",
                    self.heartbeat.interval
                ),
            );
        }
        Ok(())
    }
}

fn bad_chunk_size(key: &str, size: u32) -> String {
    format!(
        "{key}: {size} out of range {}..={}",
        CHUNK_SIZE_RANGE.start(),
        CHUNK_SIZE_RANGE.end()
    )
}
