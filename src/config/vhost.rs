//! `[vhost.NAME]` and its blocks: play, publish, cluster, forward, refer, security,
//! http_hooks, hls, http_remux, dvr, bandcheck (CONTRACTS.md §2; units as SRS's).

use super::*;

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
    /// SRS's vhost `min_latency`: players get every message as it comes (`play.mw_msgs`
    /// defaults to 0 instead of 8). Off by default, as SRS.
    pub min_latency: bool,
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
            min_latency: false,
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

/// The most `play.mw_msgs` may be (SRS's `SRS_PERF_MW_MSGS`).
pub const MW_MSGS_MAX: u32 = 128;
/// `play.mw_msgs` when not set (SRS's `SRS_PERF_MW_MIN_MSGS`; 0 with `min_latency`).
pub const MW_MSGS_DEFAULT: u32 = 8;

impl VhostConfig {
    /// The merged-write message count of this vhost's RTMP players: `play.mw_msgs`, or 8
    /// (0 with `min_latency`), as SRS 6's `get_mw_msgs`.
    pub fn mw_msgs(&self) -> u32 {
        match self.play.mw_msgs {
            Some(n) => n,
            None if self.min_latency => 0,
            None => MW_MSGS_DEFAULT,
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
    pub queue_length: Seconds,
    pub time_jitter: TimeJitter,
    pub mix_correct: bool,
    pub atc: bool,
    pub atc_auto: bool,
    /// Merged-write latency (written in ms).
    pub mw_latency: Millis,
    /// Merged-write messages (SRS's `play.mw_msgs`): an RTMP player's merged write waits,
    /// from its time, until more than this many messages are queued (at most
    /// [`MW_MSGS_MAX`]; [`VhostConfig::mw_msgs`] gives the default). SRS 6 applies it to RTMP
    /// players only, and so does srsd.
    pub mw_msgs: Option<u32>,
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
            queue_length: Seconds::from_secs(10),
            time_jitter: TimeJitter::Full,
            mix_correct: false,
            atc: false,
            atc_auto: false,
            mw_latency: Millis::from_millis(350),
            mw_msgs: None,
            publish_notify: false,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PublishConfig {
    /// How long to wait for the first media packet after `publish` (written in ms).
    pub firstpkt_timeout: Millis,
    /// How long to wait for each following packet (written in ms).
    pub normal_timeout: Millis,
    pub parse_sps: bool,
}

impl Default for PublishConfig {
    fn default() -> Self {
        PublishConfig {
            firstpkt_timeout: Millis::from_millis(20_000),
            normal_timeout: Millis::from_millis(5_000),
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
    /// At most one check per vhost in this window (written in seconds); later ones are refused.
    pub interval: Seconds,
    /// Kbps: the most either phase sends or reads.
    pub limit_kbps: u32,
}

impl Default for BandcheckConfig {
    fn default() -> Self {
        BandcheckConfig {
            enabled: false,
            key: "35c9b402c12a7246868752e2878f7e0e".to_string(),
            interval: Seconds::from_secs(30),
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
    /// How long one callback request may take (written in ms).
    pub timeout: Millis,
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
            timeout: Millis::from_millis(30_000),
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
    /// Target segment duration (written in seconds).
    pub fragment: Seconds,
    /// With video, segments are cut only on keyframes; a keyframe interval longer than
    /// `fragment * td_ratio` is logged once per stream, and `ceil(fragment * td_ratio)` is the
    /// least `EXT-X-TARGETDURATION`.
    pub td_ratio: f64,
    /// Pure-audio segments are cut at `fragment * aof_ratio`.
    pub aof_ratio: f64,
    /// Playlist duration (written in seconds).
    pub window: Seconds,
    pub on_error: HlsOnError,
    pub path: String,
    pub m3u8_file: String,
    pub ts_file: String,
    pub entry_prefix: String,
    pub acodec: String,
    pub vcodec: String,
    /// Delete segments that left the window.
    pub cleanup: bool,
    /// How long after unpublish to delete the stream's files (written in seconds); 0 = never.
    pub dispose: Seconds,
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
            fragment: Seconds::from_secs(2),
            td_ratio: 1.5,
            aof_ratio: 2.1,
            window: Seconds::from_secs(12),
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
            dispose: Seconds::from_secs(0),
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
    /// Segment length (written in seconds; plan = "segment").
    pub duration: Seconds,
    pub wait_keyframe: bool,
    pub time_jitter: TimeJitter,
}

impl Default for DvrConfig {
    fn default() -> Self {
        DvrConfig {
            enabled: false,
            plan: DvrPlan::Session,
            path: "./objs/dvr/[app]/[stream].[timestamp].flv".to_string(),
            duration: Seconds::from_secs(30),
            wait_keyframe: true,
            time_jitter: TimeJitter::Full,
        }
    }
}
