//! What every task of the app shares: the [`Context`] (config watch, hub, clients, notifier,
//! counters, shutdown) and the mapping of vhost config to the hub's stream options.
//!
//! This is the bottom of `src/app`'s import order (DESIGN.md §1): every concern folder may
//! import it. It names the state types that the concerns own (the notifier, the edge table,
//! HLS viewers, in-memory HLS files, bandcheck gates) so that one `Arc<Context>` reaches them,
//! and holds no behaviour of theirs.

use crate::app::cluster::edge;
use crate::app::hooks;
use crate::app::http::hls_play;
use crate::app::outputs::hls;
use crate::app::rtmp::bandcheck;
use crate::app::runtime::{admission, log, output_status, stats, tasks};
use crate::config::{Config, VhostConfig};
use crate::hub::{Hub, SourceOptions, TimeJitter};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::sync::watch;

/// SRS's one request (`SrsRequest`): who a client is and what it asked for, the same shape for
/// every transport. Filled as the client goes: the connection facts at accept, the tcUrl /
/// page URL / swfUrl / flashVer at RTMP connect (HTTP viewers get an `http://host/app` tcUrl
/// and the Referer as page URL), the stream, its query and the source once a publish or play
/// names it. Hook bodies (SRS's JSON and nginx-rtmp's form), the API's client list, security
/// and refer checks and the outputs a publish starts all read this one value.
#[derive(Debug, Clone, Default)]
pub struct ClientRequest {
    /// The connection id (`client_id` in hooks, `id` in the API).
    pub client_id: u32,
    /// The peer's IP address, as text.
    pub ip: String,
    /// The vhost resolved from the tcUrl host or the stream's `?vhost=`, after resolution.
    pub vhost: String,
    pub app: String,
    pub tc_url: String,
    pub page_url: String,
    /// The stream name, without its query.
    pub stream: String,
    /// The stream's query, with its leading `?`, or empty.
    pub param: String,
    /// `[vhost/]app/stream` and the source's id, once a stream is named.
    pub stream_url: String,
    pub stream_id: String,
    /// The RTMP connect's `flashVer` and `swfUrl` (nginx-rtmp's hooks send them).
    pub flash_ver: String,
    pub swf_url: String,
}

/// What every task shares.
pub struct Context {
    config: RwLock<Arc<Config>>,
    pub hub: Arc<Hub>,
    pub started: Instant,
    /// Connections open now.
    pub connections: AtomicUsize,
    /// Connections refused: `max_connections` or the API budget reached, or no file
    /// descriptor left.
    pub refused: AtomicUsize,
    /// Connections open now on an API-only listener (its own budget, see [`admission`]).
    pub api_connections: AtomicUsize,
    /// `max_connections` as the open-file limit allows (set at start, see [`admission`]).
    pub fd_cap: AtomicUsize,
    /// Refusals, logged one line a second.
    pub refusals: admission::Refusals,
    /// Publishes and plays refused, by reason.
    pub denials: stats::ReasonCounts,
    /// RTMP connections ended, by why (`ConnError::reason`, or `closed`).
    pub closes: stats::ReasonCounts,
    /// Flips to true once: every task selects on it.
    pub shutdown: watch::Receiver<bool>,
    pub server_name: String,
    /// Clients for logs, the API and /metrics.
    pub stats: Arc<stats::Stats>,
    /// The hook notify queue (on_close, on_unpublish, on_stop, on_hls).
    pub hooks: hooks::Notifier,
    /// Asks the signal loop to reload the config file, as SIGHUP does (`/api/v1/raw?rpc=reload`).
    pub reload: tokio::sync::Notify,
    /// How the last reload went (`/api/v1/raw?rpc=reload-fetch`).
    pub reload_status: std::sync::Mutex<ReloadStatus>,
    /// Edge streams (pulled from / pushed to an origin) and their upstream state, for the API.
    pub edges: edge::Edges,
    /// Set by SIGQUIT: the quit lets clients finish (see [`GRACE`]) before the shutdown.
    pub graceful: std::sync::atomic::AtomicBool,
    /// HLS viewers (by `hls_ctx`), clients without a connection of their own.
    pub hls_viewers: hls_play::HlsViewers,
    /// HLS segments and playlists of `storage = "memory"` streams, served over HTTP.
    pub hls_memory: Arc<hls::MemoryFiles>,
    /// The HLS playlists' state (numbering, window) by m3u8 file, bounded, kept across
    /// publishes until a stream has been gone a while.
    pub hls_playlists: Arc<hls::Playlists>,
    /// What each stream's HLS, DVR and forwards are doing, and their error counters.
    pub outputs: Arc<output_status::Outputs>,
    /// The last bandwidth check of each vhost (one per `bandcheck.interval`).
    pub bandcheck: bandcheck::Gate,
    /// File writers (HLS segmenters, DVR recorders) still running: shutdown waits for them
    /// to close their files.
    pub writers: tasks::Tracker,
    /// Connection tasks (RTMP, HTTP): a graceful quit waits for them.
    pub connection_tasks: tasks::Tracker,
    /// The first RTMP listener's bound port: `[port]` in transcode and ingest templates.
    pub rtmp_port: u16,
    /// The HTTP server's bound port (0 when disabled): the console's play URLs.
    pub http_port: u16,
    /// ffmpeg (transcode, ingest) children running now; shutdown waits for them.
    pub processes: tasks::Tracker,
    /// Cluster links (edge pulls, edge pushes, forwarders and their supervisors): shutdown
    /// waits for them to close their upstream sessions.
    pub links: tasks::Tracker,
    /// Bumped by every applied reload; features that restart on reload watch it.
    config_generation: watch::Sender<u64>,
}

/// The last reload as SRS 6 reports it to `/api/v1/raw?rpc=reload-fetch` (its
/// `_srs_reload_err`, `_srs_reload_state`, `_srs_reload_id`): `rid` changes with every reload
/// started, so a client that asked for one can tell when it is done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReloadStatus {
    /// SRS error code: 0, or 1023 (ERROR_SYSTEM_CONFIG_INVALID) when the file was refused.
    pub err: i64,
    /// `"Success"`, or SRS's error summary form `code=1023(ConfigInvalid) : why`.
    pub msg: String,
    /// SRS's SrsReloadState: 0 init, 10 parsing, 90 finished.
    pub state: u8,
    /// 7 random characters, new for each reload.
    pub rid: String,
}

impl ReloadStatus {
    /// SrsReloadStateInit: reached when the process starts and when a reload begins.
    pub const INIT: u8 = 0;
    /// SrsReloadStateParsing: where a refused file stops.
    pub const PARSING: u8 = 10;
    /// SrsReloadStateFinished.
    pub const FINISHED: u8 = 90;

    pub(crate) fn new() -> ReloadStatus {
        ReloadStatus {
            err: 0,
            msg: "Success".to_string(),
            state: Self::INIT,
            rid: reload_id(),
        }
    }
}

/// Seven characters of `[0-9a-z]`, different for each call (SRS's `srs_random_str(7)`).
fn reload_id() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let mut x = log::now_unix_ms()
        ^ ((NEXT.fetch_add(1, Ordering::Relaxed) as u64) << 40)
        ^ 0x9E37_79B9_7F4A_7C15;
    (0..7)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[(x % 36) as usize])
        })
        .collect()
}

/// Counts a running file writer in [`Context::writers`] while alive.
pub struct Writing(#[allow(dead_code)] tasks::Token);

impl Writing {
    pub fn start(ctx: &Arc<Context>) -> Writing {
        Writing(ctx.writers.token())
    }
}

/// Resolves when an output task of a publish (HLS, DVR) has closed its last file and queued
/// its last hook (`on_hls`, `on_dvr`). The publisher waits for it before its `on_unpublish`,
/// so a hook server hears of the last segment before the unpublish, as SRS sends them.
pub struct Finished(tokio::sync::oneshot::Receiver<()>);

/// Held by an output task; dropping it (when the task ends) resolves its [`Finished`]. The
/// sender is never used otherwise: its drop is the signal.
pub struct FinishSignal(#[allow(dead_code)] tokio::sync::oneshot::Sender<()>);

impl Finished {
    /// A signal for the task and the [`Finished`] that waits for it.
    pub fn pair() -> (FinishSignal, Finished) {
        let (tx, rx) = tokio::sync::oneshot::channel();
        (FinishSignal(tx), Finished(rx))
    }

    /// Waits at most `limit`; false when the task was still running then.
    pub async fn wait(self, limit: std::time::Duration) -> bool {
        tokio::time::timeout(limit, self.0).await.is_ok()
    }
}

impl Context {
    /// A context for `config`, before any task runs: `shutdown` flips once at quit;
    /// `rtmp_port`/`http_port` are the bound ports (0 when not listening).
    pub fn new(
        config: Config,
        shutdown: watch::Receiver<bool>,
        rtmp_port: u16,
        http_port: u16,
    ) -> Context {
        let hooks = hooks::Notifier::start(config.max_connections);
        Context {
            config: RwLock::new(Arc::new(config)),
            hub: Hub::new(),
            started: Instant::now(),
            connections: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            api_connections: AtomicUsize::new(0),
            fd_cap: AtomicUsize::new(usize::MAX),
            refusals: Default::default(),
            denials: stats::ReasonCounts::new(&stats::DENIAL_REASONS),
            closes: stats::ReasonCounts::new(&crate::app::rtmp::error::CLOSE_REASONS),
            shutdown,
            server_name: format!("srsd/{}", crate::VERSION),
            stats: Arc::new(stats::Stats::default()),
            hooks,
            reload: tokio::sync::Notify::new(),
            reload_status: std::sync::Mutex::new(ReloadStatus::new()),
            edges: edge::Edges::default(),
            writers: Default::default(),
            connection_tasks: Default::default(),
            hls_viewers: Default::default(),
            hls_memory: Default::default(),
            hls_playlists: Default::default(),
            outputs: Default::default(),
            bandcheck: Default::default(),
            graceful: Default::default(),
            rtmp_port,
            http_port,
            processes: Default::default(),
            links: Default::default(),
            config_generation: watch::channel(0).0,
        }
    }

    pub fn config(&self) -> Arc<Config> {
        self.config
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Applies a new config (reload, or a test). Live streams take the play options that shape their source at once (`gop_cache`,
    /// `gop_cache_max_frames`, `mix_correct`); features that follow [`Context::config_changes`]
    /// (forward, transcode, ingest) adjust themselves.
    pub fn set_config(&self, c: Config) {
        for source in self.hub.list() {
            if let Some(v) = c.vhost.get(&source.key.vhost) {
                source.set_options(source_options(v));
            }
        }
        *self.config.write().unwrap_or_else(|p| p.into_inner()) = Arc::new(c);
        self.config_generation
            .send_modify(|g| *g = g.wrapping_add(1));
    }

    /// Changes whenever [`Context::set_config`] applies a new config.
    pub fn config_changes(&self) -> watch::Receiver<u64> {
        self.config_generation.subscribe()
    }
}

pub fn source_options(v: &VhostConfig) -> SourceOptions {
    SourceOptions {
        gop_cache: v.play.gop_cache,
        gop_cache_max_frames: v.play.gop_cache_max_frames as usize,
        mix_correct: v.play.mix_correct,
    }
}

pub fn time_jitter(v: &VhostConfig) -> TimeJitter {
    jitter_mode(v.play.time_jitter)
}

/// The timestamp correction for a new player of `source`: `time_jitter`, unless `atc` (or
/// `atc_auto` with a publisher whose metadata says `bravo_atc = "true"`, as SRS checks) asks
/// for the publisher's own absolute timestamps.
pub fn play_jitter(v: &VhostConfig, source: &crate::hub::Source) -> TimeJitter {
    if v.play.atc || (v.play.atc_auto && source.metadata().is_some_and(|m| bravo_atc(&m))) {
        TimeJitter::Off
    } else {
        time_jitter(v)
    }
}

/// Whether an onMetaData body carries `bravo_atc` set to `"true"` (or boolean true).
pub fn bravo_atc(metadata: &[u8]) -> bool {
    use crate::protocol::amf0::{self, Amf0Value};
    amf0::decode_all(metadata).is_ok_and(|values| {
        values.iter().any(|v| match v.get("bravo_atc") {
            Some(Amf0Value::String(s)) => s == "true",
            Some(Amf0Value::Boolean(b)) => *b,
            _ => false,
        })
    })
}

/// The hub's timestamp correction for a configured `time_jitter`.
pub fn jitter_mode(j: crate::config::TimeJitter) -> TimeJitter {
    match j {
        crate::config::TimeJitter::Full => TimeJitter::Full,
        crate::config::TimeJitter::Zero => TimeJitter::Zero,
        crate::config::TimeJitter::Off => TimeJitter::Off,
    }
}
