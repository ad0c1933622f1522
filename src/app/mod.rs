//! Everything that does I/O on tokio: listeners, connections, signals.
//!
//! [`Server::bind`] binds every listener of a config (so tests can bind 127.0.0.1:0 and read
//! the ports back); [`Server::run`] serves until the shutdown future resolves.

pub mod access;
pub mod admission;
pub mod bandcheck;
pub mod daemon;
pub mod dvr;
pub mod edge;
pub mod ffmpeg;
pub mod forward;
pub mod heartbeat;
pub mod hls;
pub mod hook_lanes;
pub mod hooks;
pub mod http;
pub mod ingest;
pub mod log;
pub mod memory;
pub mod process;
pub mod rtmp;
pub mod stats;
pub mod tasks;
pub mod template;
pub mod transcode;
pub mod url;

use crate::config::Config;
use crate::hub::Hub;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::watch;

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
    pub denials: stats::Denials,
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
    pub hls_viewers: http::hls_play::HlsViewers,
    /// HLS segments and playlists of `storage = "memory"` streams, served over HTTP.
    pub hls_memory: Arc<hls::MemoryFiles>,
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

    fn new() -> ReloadStatus {
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
                source.set_options(rtmp::source_options(v));
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

pub struct Server {
    ctx: Arc<Context>,
    listeners: Vec<TcpListener>,
    http: Vec<http::HttpListener>,
    shutdown_tx: watch::Sender<bool>,
}

impl Server {
    /// Binds every RTMP listen address of `config`, and the HTTP server and API listeners.
    pub async fn bind(config: Config) -> io::Result<Server> {
        let addrs = config
            .listen_addrs()
            .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
        let mut listeners = Vec::new();
        for a in addrs {
            let l = TcpListener::bind(a)
                .await
                .map_err(|e| io::Error::new(e.kind(), format!("RTMP listen on {a}: {e}")))?;
            listeners.push(l);
        }
        let http = http::bind(&config).await?;
        let rtmp_port = listeners
            .first()
            .and_then(|l| l.local_addr().ok())
            .map_or(0, |a| a.port());
        let http_port = http
            .iter()
            .find(|l| l.roles.files)
            .and_then(http::HttpListener::local_addr)
            .map_or(0, |a| a.port());
        let (shutdown_tx, shutdown) = watch::channel(false);
        let hooks = hooks::Notifier::start(config.max_connections);
        let ctx = Arc::new(Context {
            config: RwLock::new(Arc::new(config)),
            hub: Hub::new(),
            started: Instant::now(),
            connections: AtomicUsize::new(0),
            refused: AtomicUsize::new(0),
            api_connections: AtomicUsize::new(0),
            fd_cap: AtomicUsize::new(usize::MAX),
            refusals: Default::default(),
            denials: Default::default(),
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
            bandcheck: Default::default(),
            graceful: Default::default(),
            rtmp_port,
            http_port,
            processes: Default::default(),
            config_generation: watch::channel(0).0,
        });
        Ok(Server {
            ctx,
            listeners,
            http,
            shutdown_tx,
        })
    }

    pub fn context(&self) -> &Arc<Context> {
        &self.ctx
    }

    /// The RTMP addresses actually bound (port 0 resolved).
    pub fn rtmp_addrs(&self) -> Vec<SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// The HTTP server address (static files, HTTP-FLV), when enabled.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http
            .iter()
            .find(|l| l.roles.files)
            .and_then(http::HttpListener::local_addr)
    }

    /// The HTTP API address, when enabled.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.http
            .iter()
            .find(|l| l.roles.api)
            .and_then(http::HttpListener::local_addr)
    }

    /// Serves until `stop` resolves, then tells every task to finish.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        let mut tasks = Vec::new();
        for l in self.listeners {
            ::log::info!(
                "RTMP listen at tcp://{}",
                l.local_addr().map(|a| a.to_string()).unwrap_or_default()
            );
            tasks.push(tokio::spawn(accept_loop(self.ctx.clone(), l)));
        }
        for l in self.http {
            ::log::info!(
                "HTTP {} listen at http://{}",
                match (l.roles.files, l.roles.api) {
                    (true, true) => "server and API",
                    (true, false) => "server",
                    _ => "API",
                },
                l.local_addr().map(|a| a.to_string()).unwrap_or_default()
            );
            tasks.push(tokio::spawn(http::accept_loop(self.ctx.clone(), l)));
        }
        let stats = self.ctx.stats.clone();
        tasks.push(tokio::spawn(async move {
            // kbps over 30 s: a sample every 5 s.
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
            loop {
                tick.tick().await;
                stats.sample(Instant::now());
            }
        }));
        tasks.push(tokio::spawn(heartbeat::run(self.ctx.clone())));
        let ctx = self.ctx.clone();
        tasks.push(tokio::spawn(async move {
            // HLS viewers that stopped asking: each sends its on_stop as it goes.
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            loop {
                tick.tick().await;
                ctx.hls_viewers.expire(Instant::now());
                ctx.refusals.flush(ctx.refused.load(Ordering::Relaxed));
            }
        }));
        tasks.push(tokio::spawn(ingest::run(self.ctx.clone())));
        tasks.push(tokio::spawn(memory::run(self.ctx.clone())));
        stop.await;
        // Listeners (and ingest) first: no new client comes in from here on.
        for t in tasks {
            t.abort();
        }
        let graceful = self.ctx.graceful.load(Ordering::Relaxed);
        if graceful {
            let open = self.ctx.connection_tasks.len();
            ::log::info!("graceful quit: not accepting; {open} connections have {GRACE:?} to end");
            self.ctx
                .connection_tasks
                .wait(tokio::time::Instant::now() + GRACE)
                .await;
        }
        ::log::info!("shutting down");
        let _ = self.shutdown_tx.send(true);
        // HLS viewers have no connection to end: they end here, and their guards queue
        // their on_stop like any player's.
        self.ctx
            .hls_viewers
            .expire(Instant::now() + std::time::Duration::from_secs(86_400));
        // Give connections a moment to say goodbye (unpublish), writers to close their files,
        // and ffmpeg children their SIGTERM grace (3 s, see process.rs) before the runtime
        // kills them. A fast quit gives them what is left of its second.
        let deadline = tokio::time::Instant::now()
            + if graceful {
                std::time::Duration::from_millis(3500)
            } else {
                FAST_QUIT
            };
        for t in [
            &self.ctx.connection_tasks,
            &self.ctx.writers,
            &self.ctx.processes,
        ] {
            t.wait(deadline).await;
        }
        if graceful {
            // Every guard has dropped by now (or its connection is stuck past every
            // deadline): their notifies are queued. Send them, within a bound.
            let left = self
                .ctx
                .hooks
                .drain(tokio::time::Instant::now() + HOOK_DRAIN)
                .await;
            ::log::info!("graceful quit: hook notifies sent, {left} left unsent");
        } else {
            let left = self.ctx.hooks.pending();
            if left > 0 {
                ::log::warn!("fast quit: {left} hook notifies not sent");
            }
        }
    }
}

async fn accept_loop(ctx: Arc<Context>, listener: TcpListener) {
    accept_counted(ctx, &listener, "", admission::Budget::Clients, rtmp::serve).await
}

/// Accepts connections until the task is aborted (at shutdown). Each counts against its
/// `budget` (over it, the socket is closed at once and counted as refused) and is served by
/// `serve` on its own task, under a new cid. `what` prefixes the log lines. A client that
/// cannot get a file descriptor is refused at once too (see [`admission::Spare`]).
pub(crate) async fn accept_counted<F, Fut>(
    ctx: Arc<Context>,
    listener: &TcpListener,
    what: &str,
    budget: admission::Budget,
    serve: F,
) where
    F: Fn(Arc<Context>, tokio::net::TcpStream, std::net::SocketAddr, u32) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut spare = admission::Spare::open();
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) if admission::Spare::out_of_fds(&e) => {
                if spare.refuse_one(listener).await {
                    let n = ctx.refused.fetch_add(1, Ordering::Relaxed) + 1;
                    ctx.refusals.refused(what, format!("accept: {e}"), n);
                } else {
                    // No spare to give up: back off instead of spinning on the ready socket.
                    ::log::warn!("{what}accept: {e}; retrying in 100 ms");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                continue;
            }
            Err(e) => {
                ::log::warn!("{what}accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let slot = match admission::Slot::take(&ctx, budget) {
            Ok(s) => s,
            Err(reason) => {
                let n = ctx.refused.fetch_add(1, Ordering::Relaxed) + 1;
                ctx.refusals
                    .refused(what, format!("{reason} (last from {peer})"), n);
                drop(socket);
                continue;
            }
        };
        let cid = log::next_cid();
        let served = serve(ctx.clone(), socket, peer, cid as u32);
        ctx.connection_tasks.spawn(log::with_cid(cid, async move {
            served.await;
            drop(slot);
        }));
    }
}

/// How long a graceful quit (SIGQUIT, `srsd -s quit`) lets connected clients finish on their
/// own, listeners closed, before the shutdown ends what is left. SIGTERM does not wait.
pub const GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How long a graceful quit keeps sending the hook notifies of the clients it ended (after
/// [`GRACE`] and the goodbyes): a hung hook server cannot hold the quit longer than this.
pub const HOOK_DRAIN: std::time::Duration = std::time::Duration::from_secs(8);

/// How long a fast quit (SIGTERM, SIGINT) gives connections, writers and ffmpeg children to
/// end once told to, so the process is gone within a second.
pub const FAST_QUIT: std::time::Duration = std::time::Duration::from_millis(700);

/// The process: config already loaded and logging set up. Runs until SIGTERM/SIGINT/SIGQUIT.
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    log: log::LogHandle,
) -> io::Result<()> {
    let fd_cap = admission::fit_fd_limit(config.max_connections);
    let server = Server::bind(config).await?;
    let ctx = server.context().clone();
    ctx.fd_cap.store(fd_cap, Ordering::Relaxed);
    let stop = signals(ctx, config_path, log)?;
    server.run(stop).await;
    Ok(())
}

/// Installs signal handlers: SIGHUP reload, SIGUSR1 reopen log, SIGTERM/SIGINT fast quit,
/// SIGQUIT graceful quit. Returns the future that resolves on quit.
fn signals(
    ctx: Arc<Context>,
    config_path: Option<PathBuf>,
    log: log::LogHandle,
) -> io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hup = signal(SignalKind::hangup())?;
    let mut usr1 = signal(SignalKind::user_defined1())?;
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut quit = signal(SignalKind::quit())?;
    Ok(async move {
        loop {
            tokio::select! {
                _ = hup.recv() => reload(&ctx, config_path.as_deref(), &log),
                _ = ctx.reload.notified() => reload(&ctx, config_path.as_deref(), &log),
                _ = usr1.recv() => match log.reopen() {
                    Ok(()) => ::log::info!("log file reopened"),
                    Err(e) => ::log::error!("reopen log file: {e}"),
                },
                _ = term.recv() => { ::log::info!("SIGTERM: fast quit"); break }
                _ = int.recv() => { ::log::info!("SIGINT: fast quit"); break }
                _ = quit.recv() => {
                    ::log::info!("SIGQUIT: graceful quit");
                    ctx.graceful.store(true, Ordering::Relaxed);
                    break
                }
            }
        }
    })
}

/// Reload: parse and validate the file again; on error keep running on the old config.
fn reload(ctx: &Context, path: Option<&std::path::Path>, log: &log::LogHandle) {
    let Some(path) = path else {
        ::log::warn!("reload: running on the embedded config, nothing to reload");
        return;
    };
    let set_status = |err: i64, msg: String, state: u8| {
        let mut s = ctx.reload_status.lock().unwrap_or_else(|p| p.into_inner());
        *s = ReloadStatus {
            err,
            msg,
            state,
            rid: s.rid.clone(),
        };
    };
    {
        let mut s = ctx.reload_status.lock().unwrap_or_else(|p| p.into_inner());
        *s = ReloadStatus::new();
    }
    match Config::load(path) {
        Ok(c) => {
            if let Err(e) = log.apply(&c.log) {
                ::log::error!("reload: log: {e}");
            }
            let old = ctx.config();
            if old.listen != c.listen {
                ::log::warn!("reload: listen changed; restart to apply it");
            }
            ctx.set_config(c);
            set_status(0, "Success".into(), ReloadStatus::FINISHED);
            ::log::info!("reload: applied {}", path.display());
        }
        Err(e) => {
            ::log::error!("reload failed, keeping the running config: {e}");
            set_status(
                1023,
                format!("code=1023(ConfigInvalid) : {e}"),
                ReloadStatus::PARSING,
            );
        }
    }
}

/// `srsd -s reload|reopen|stop|quit`: signals the server whose pid file the config names.
pub fn signal_running(config: &Config, what: &str) -> std::process::ExitCode {
    use nix::sys::signal::Signal;
    use std::process::ExitCode;
    let sig = match what {
        "reload" => Signal::SIGHUP,
        "reopen" => Signal::SIGUSR1,
        "stop" => Signal::SIGTERM,
        "quit" => Signal::SIGQUIT,
        other => {
            eprintln!("srsd: unknown signal {other:?}: use reload|reopen|stop|quit");
            return ExitCode::from(2);
        }
    };
    match daemon::signal_pid_file(&config.pid, sig) {
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("srsd: {e}");
            ExitCode::FAILURE
        }
    }
}
