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
pub mod import_srs;
mod locate;
mod rotation;
pub mod security;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::Path;

use serde::Deserialize;

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
pub struct VhostConfig {
    pub enabled: bool,
    /// Overrides the global `chunk_size` for this vhost's connections.
    pub chunk_size: Option<u32>,
    /// TCP_NODELAY on players' sockets once their first media went out (SRS's vhost
    /// `tcp_nodelay`, default off, as SRS and nginx-rtmp): off lets the kernel merge the
    /// small writes of live frames into fewer packets while the player's ACK is pending;
    /// on sends every write at once (more packets, more CPU). The first media is always
    /// written with it on.
    pub tcp_nodelay: bool,
    pub play: PlayConfig,
    pub publish: PublishConfig,
    pub cluster: ClusterConfig,
    pub forward: ForwardConfig,
    pub refer: ReferConfig,
    pub security: SecurityConfig,
    pub http_hooks: HttpHooksConfig,
    pub hls: HlsConfig,
    pub http_remux: HttpRemuxConfig,
    pub dvr: DvrConfig,
    pub transcode: Vec<TranscodeConfig>,
    pub bandcheck: BandcheckConfig,
}

impl Default for VhostConfig {
    fn default() -> Self {
        VhostConfig {
            enabled: true,
            chunk_size: None,
            tcp_nodelay: false,
            play: PlayConfig::default(),
            publish: PublishConfig::default(),
            cluster: ClusterConfig::default(),
            forward: ForwardConfig::default(),
            refer: ReferConfig::default(),
            security: SecurityConfig::default(),
            http_hooks: HttpHooksConfig::default(),
            hls: HlsConfig::default(),
            http_remux: HttpRemuxConfig::default(),
            dvr: DvrConfig::default(),
            transcode: Vec::new(),
            bandcheck: BandcheckConfig::default(),
        }
    }
}

/// How timestamps are corrected before they reach players and recorders (SRS `time_jitter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum TimeJitter {
    /// Make timestamps monotonic, start at 0, replace big jumps by a small delta.
    #[default]
    Full,
    /// Only shift so the stream starts at 0.
    Zero,
    /// Pass timestamps through untouched.
    Off,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PlayConfig {
    pub gop_cache: bool,
    pub gop_cache_max_frames: u32,
    /// Seconds of media a player's queue may hold before whole GOPs are dropped.
    pub queue_length: f64,
    pub time_jitter: TimeJitter,
    pub mix_correct: bool,
    pub atc: bool,
    pub atc_auto: bool,
    /// Merged-write latency, ms.
    pub mw_latency: u32,
    /// Tell RTMP players when the publisher leaves and comes back
    /// (`NetStream.Play.UnpublishNotify` / `PublishNotify`). Off by default, as nginx-rtmp's
    /// `publish_notify`: ffmpeg, ffplay, mpv, VLC and rtmpdump end the stream on
    /// UnpublishNotify, while without it they ride over a republish.
    pub publish_notify: bool,
}

impl Default for PlayConfig {
    fn default() -> Self {
        PlayConfig {
            gop_cache: true,
            gop_cache_max_frames: 2500,
            queue_length: 10.0,
            time_jitter: TimeJitter::Full,
            mix_correct: false,
            atc: false,
            atc_auto: false,
            mw_latency: 350,
            publish_notify: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishConfig {
    /// ms to wait for the first media packet after `publish`.
    pub firstpkt_timeout: u32,
    /// ms to wait for each following packet.
    pub normal_timeout: u32,
    pub parse_sps: bool,
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            firstpkt_timeout: 20000,
            normal_timeout: 5000,
            parse_sps: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum ClusterMode {
    /// Origin: streams are published here.
    #[default]
    Local,
    /// Edge: streams are pulled from / pushed to `origin`.
    Remote,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ClusterConfig {
    pub mode: ClusterMode,
    /// `"host:port"` of the origins, tried in order; required when `mode = "remote"`.
    pub origin: Vec<String>,
    pub token_traverse: bool,
    /// The vhost to ask the origin for, when it differs from this one.
    pub vhost: Option<String>,
}

/// SRS's bandwidth check (`bandcheck` block, `bw_check` in SRS 2): a client connecting to
/// this vhost with `key=KEY` in its tcUrl gets the play and publish test instead of a normal
/// connection (see `app::bandcheck`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct BandcheckConfig {
    pub enabled: bool,
    /// The key a client must send as `key=` in its tcUrl's query.
    pub key: String,
    /// Seconds: at most one check per vhost in this window; later ones are refused.
    pub interval: f64,
    /// Kbps: the most either phase sends or reads.
    pub limit_kbps: u32,
}

impl Default for BandcheckConfig {
    fn default() -> Self {
        BandcheckConfig {
            enabled: false,
            key: "35c9b402c12a7246868752e2878f7e0e".to_string(),
            interval: 30.0,
            limit_kbps: 4000,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ForwardConfig {
    pub enabled: bool,
    /// `"host:port"` destinations every published stream is pushed to.
    pub destination: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct ReferConfig {
    pub enabled: bool,
    pub all: Vec<String>,
    pub play: Vec<String>,
    pub publish: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct SecurityConfig {
    pub enabled: bool,
    /// Rules `"publish|play all|IP|CIDR"`, parsed at load.
    pub allow: Vec<security::Rule>,
    pub deny: Vec<security::Rule>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpHooksConfig {
    pub enabled: bool,
    pub on_connect: Vec<String>,
    pub on_close: Vec<String>,
    pub on_publish: Vec<String>,
    pub on_unpublish: Vec<String>,
    pub on_play: Vec<String>,
    pub on_stop: Vec<String>,
    pub on_dvr: Vec<String>,
    pub on_hls: Vec<String>,
    /// ms per callback request.
    pub timeout: u32,
    /// Which server's hook protocol the URLs speak (see [`HookProtocol`]).
    pub hook_protocol: HookProtocol,
}

/// The hook protocol of a vhost's `http_hooks`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HookProtocol {
    /// SRS's: JSON bodies; HTTP 200/201 with `0` or `{"code":0}` allows.
    #[default]
    Srs,
    /// nginx-rtmp's (`ngx_rtmp_notify_module.c`): form fields (`app`, `flashver`, `swfurl`,
    /// `tcurl`, `pageurl`, `addr`, `clientid`, `call`, `name`, ...), any 2xx allows, a 3xx
    /// on publish/play renames the stream to its `Location`.
    Nginx,
}

impl Default for HttpHooksConfig {
    fn default() -> Self {
        HttpHooksConfig {
            enabled: false,
            on_connect: Vec::new(),
            on_close: Vec::new(),
            on_publish: Vec::new(),
            on_unpublish: Vec::new(),
            on_play: Vec::new(),
            on_stop: Vec::new(),
            on_dvr: Vec::new(),
            on_hls: Vec::new(),
            timeout: 30000,
            hook_protocol: HookProtocol::Srs,
        }
    }
}

/// What HLS does when writing a segment fails (SRS `hls_on_error`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HlsOnError {
    /// Stop HLS for this stream, keep the stream.
    Ignore,
    /// Disconnect the publisher.
    Disconnect,
    /// Log and keep trying with the next segment.
    #[default]
    Continue,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HlsConfig {
    pub enabled: bool,
    /// Target segment duration, s.
    pub fragment: f64,
    /// With video, segments are cut only on keyframes; a keyframe interval longer than
    /// `fragment * td_ratio` is logged once per stream, and `ceil(fragment * td_ratio)` is the
    /// least `EXT-X-TARGETDURATION`.
    pub td_ratio: f64,
    /// Pure-audio segments are cut at `fragment * aof_ratio`.
    pub aof_ratio: f64,
    /// Playlist duration, s.
    pub window: f64,
    pub on_error: HlsOnError,
    pub path: String,
    pub m3u8_file: String,
    pub ts_file: String,
    pub entry_prefix: String,
    pub acodec: String,
    pub vcodec: String,
    /// Delete segments that left the window.
    pub cleanup: bool,
    /// s after unpublish to delete the stream's files; 0 = never.
    pub dispose: u32,
    /// SRS's `hls_wait_keyframe`, accepted for its configs; video segments always start on a
    /// keyframe whatever it says (a segment starting mid-GOP cannot be played).
    pub wait_keyframe: bool,
    /// Track HLS viewers as clients (SRS's `hls_ctx`): on_play/on_stop hooks, `hls-play` in
    /// the API; a viewer's first playlist request gets a master playlist naming its own URL.
    pub ctx: bool,
    /// Where segments and playlists live: files under `path`, or the server's memory.
    pub storage: HlsStorage,
}

/// Where HLS keeps its segments and playlists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum HlsStorage {
    /// Files under `hls.path` (written under a temporary name, then renamed); `on_hls` names
    /// them.
    #[default]
    Disk,
    /// In the server's memory, bounded by the window (and a server-wide cap): served by the
    /// HTTP server at the URLs the files would have had (so `hls.path` should be
    /// `http_server.dir`, the default); nothing touches the disk. Routers keep their flash.
    Memory,
}

impl Default for HlsConfig {
    fn default() -> Self {
        HlsConfig {
            // On, as SRS 6's shipped conf/srs.conf has it (SRS's built-in default is off):
            // one set of defaults, the embedded config equals an empty file.
            enabled: true,
            fragment: 2.0,
            td_ratio: 1.5,
            aof_ratio: 2.1,
            window: 12.0,
            on_error: HlsOnError::Continue,
            // Empty = `http_server.dir` (filled in by `Config::parse`), so what HLS writes is
            // what the HTTP server serves, as SRS's hls_path and http_server dir agree.
            path: String::new(),
            m3u8_file: "[app]/[stream].m3u8".to_string(),
            ts_file: "[app]/[stream]-[seq].ts".to_string(),
            entry_prefix: String::new(),
            acodec: "aac".to_string(),
            vcodec: "h264".to_string(),
            cleanup: true,
            dispose: 0,
            wait_keyframe: true,
            ctx: true,
            storage: HlsStorage::Disk,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HttpRemuxConfig {
    pub enabled: bool,
    /// Path template; the extension (.flv .ts .aac .mp3) picks the format.
    pub mount: String,
}

impl Default for HttpRemuxConfig {
    fn default() -> Self {
        HttpRemuxConfig {
            // On, as SRS 6's shipped conf/srs.conf has it (see HlsConfig).
            enabled: true,
            mount: "[vhost]/[app]/[stream].flv".to_string(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum DvrPlan {
    /// One file per publish session.
    #[default]
    Session,
    /// A new file every `duration` seconds.
    Segment,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DvrConfig {
    pub enabled: bool,
    pub plan: DvrPlan,
    pub path: String,
    /// Segment length, s (plan = "segment").
    pub duration: u32,
    pub wait_keyframe: bool,
    pub time_jitter: TimeJitter,
}

impl Default for DvrConfig {
    fn default() -> Self {
        DvrConfig {
            enabled: false,
            plan: DvrPlan::Session,
            path: "./objs/dvr/[app]/[stream].[timestamp].flv".to_string(),
            duration: 30,
            wait_keyframe: true,
            time_jitter: TimeJitter::Full,
        }
    }
}

/// `[[vhost.NAME.transcode]]`: run ffmpeg on matching streams.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TranscodeConfig {
    pub enabled: bool,
    /// `""` = every stream of the vhost, `"app"` or `"app/stream"`.
    pub scope: String,
    /// The ffmpeg binary.
    pub ffmpeg: String,
    pub engine: Vec<EngineConfig>,
}

impl Default for TranscodeConfig {
    fn default() -> Self {
        TranscodeConfig {
            enabled: false,
            scope: String::new(),
            ffmpeg: "ffmpeg".to_string(),
            engine: Vec::new(),
        }
    }
}

/// One ffmpeg output of a transcode or ingest. Empty strings and zeros mean "not given to
/// ffmpeg". `vparams`, `vfilter` and `aparams` are extra ffmpeg arguments, in order (order
/// matters to ffmpeg, e.g. `["-i", "logo.png", "-filter_complex", "overlay=10:10"]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    pub name: String,
    pub enabled: bool,
    /// `"libx264"` (any ffmpeg encoder), `"copy"`, or `"vn"` (no video).
    pub vcodec: VideoCodec,
    /// kbps.
    pub vbitrate: u32,
    pub vfps: f64,
    pub vwidth: u32,
    pub vheight: u32,
    pub vthreads: u32,
    pub vprofile: String,
    pub vpreset: String,
    pub vparams: Vec<String>,
    pub vfilter: Vec<String>,
    /// `"aac"`, `"libfdk_aac"` (any ffmpeg encoder), `"copy"`, or `"an"` (no audio).
    pub acodec: AudioCodec,
    /// kbps.
    pub abitrate: u32,
    pub asample_rate: u32,
    pub achannels: u32,
    pub aparams: Vec<String>,
    /// Output URL template.
    pub output: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            name: String::new(),
            enabled: false,
            vcodec: VideoCodec(Codec::Copy),
            vbitrate: 0,
            vfps: 0.0,
            vwidth: 0,
            vheight: 0,
            vthreads: 0,
            vprofile: String::new(),
            vpreset: String::new(),
            vparams: Vec::new(),
            vfilter: Vec::new(),
            acodec: AudioCodec(Codec::Copy),
            abitrate: 0,
            asample_rate: 0,
            achannels: 0,
            aparams: Vec::new(),
            output: "rtmp://127.0.0.1:[port]/[app]/[stream]_[engine]?vhost=[vhost]".to_string(),
        }
    }
}

/// What a transcode or ingest engine does with one track (SRS's `SRS_RTMP_ENCODER_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    /// `"copy"`: remux without re-encoding.
    Copy,
    /// `"vn"` / `"an"`: leave the track out.
    Drop,
    /// An ffmpeg encoder name (`libx264`, `h264_v4l2m2m`, `aac`, `libfdk_aac`): one
    /// argument of letters, digits, `_`, `-` and `.`, as ffmpeg names them.
    Encode(String),
}

impl Codec {
    /// Parses `text` for a track whose "leave it out" word is `drop_word` (`vn` or `an`).
    fn parse(text: &str, drop_word: &str, other: &str) -> Result<Codec, String> {
        match text {
            "copy" => Ok(Codec::Copy),
            t if t == drop_word => Ok(Codec::Drop),
            t if t == other => Err(format!(
                "\"{t}\" is for the other track (want \"{drop_word}\")"
            )),
            "" => Err(format!(
                "empty: want \"copy\", \"{drop_word}\" or an ffmpeg encoder name"
            )),
            t if t.len() <= 64
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) =>
            {
                Ok(Codec::Encode(t.to_string()))
            }
            t => Err(format!(
                "\"{t}\" is not an ffmpeg encoder name (letters, digits, _ - . only)"
            )),
        }
    }
}

/// `vcodec` of an engine, parsed at load: `"copy"`, `"vn"` or an encoder.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct VideoCodec(pub Codec);

impl TryFrom<String> for VideoCodec {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Codec::parse(&text, "vn", "an").map(VideoCodec)
    }
}

/// `acodec` of an engine, parsed at load: `"copy"`, `"an"` or an encoder.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct AudioCodec(pub Codec);

impl TryFrom<String> for AudioCodec {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Codec::parse(&text, "an", "vn").map(AudioCodec)
    }
}

/// `[[ingest]]`: pull a file, stream or device into a local stream with ffmpeg.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub id: String,
    pub vhost: String,
    pub enabled: bool,
    pub input: IngestInput,
    pub ffmpeg: String,
    pub engine: Vec<EngineConfig>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            id: String::new(),
            vhost: DEFAULT_VHOST.to_string(),
            enabled: false,
            input: IngestInput::default(),
            ffmpeg: "ffmpeg".to_string(),
            engine: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IngestInputType {
    /// A file, read at native speed and looped.
    #[default]
    File,
    /// A URL ffmpeg can read.
    Stream,
    /// A capture device.
    Device,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct IngestInput {
    #[serde(rename = "type")]
    pub kind: IngestInputType,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct HeartbeatConfig {
    pub enabled: bool,
    /// s between reports.
    pub interval: f64,
    pub url: String,
    pub device_id: String,
    /// Include the `/api/v1/summaries` data in each report.
    pub summaries: bool,
}

impl Default for HeartbeatConfig {
    fn default() -> Self {
        HeartbeatConfig {
            enabled: false,
            interval: 9.9,
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

impl Config {
    /// The embedded default configuration (`conf/srsd.toml`).
    pub const DEFAULT_TOML: &'static str = include_str!("../../conf/srsd.toml");

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
            let queue = vhost.play.queue_length;
            if !(queue.is_finite() && queue >= 0.0) {
                return err(
                    &["play", "queue_length"],
                    format!(": {queue} must be >= 0 (seconds)"),
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
                ("fragment", hls.fragment),
                ("td_ratio", hls.td_ratio),
                ("aof_ratio", hls.aof_ratio),
                ("window", hls.window),
            ] {
                if !(value.is_finite() && value > 0.0) {
                    return err(&["hls", key], format!(": {value} must be > 0"));
                }
            }
            let bc = &vhost.bandcheck;
            if bc.enabled {
                if !(bc.interval.is_finite() && bc.interval >= 0.0) {
                    return err(
                        &["bandcheck", "interval"],
                        format!(": {} must be >= 0 (seconds)", bc.interval),
                    );
                }
                if bc.limit_kbps == 0 {
                    return err(&["bandcheck", "limit_kbps"], ": must be > 0".into());
                }
                if bc.key.is_empty() {
                    return err(&["bandcheck", "key"], ": must not be empty".into());
                }
            }
            if vhost.dvr.plan == DvrPlan::Segment && vhost.dvr.duration == 0 {
                return err(
                    &["dvr", "duration"],
                    ": must be > 0 with plan = \"segment\"".into(),
                );
            }
        }
        if self.heartbeat.enabled
            && !(self.heartbeat.interval.is_finite() && self.heartbeat.interval > 0.0)
        {
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
