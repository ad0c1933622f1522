//! Everything that does I/O on tokio: listeners, connections, signals.
//!
//! [`Server::bind`] binds every listener of a config (so tests can bind 127.0.0.1:0 and read
//! the ports back); [`Server::run`] serves until the shutdown future resolves.

pub mod cluster;
pub mod ffmpeg;
pub mod hooks;
pub mod http;
pub mod outputs;
pub mod rtmp;
pub mod runtime;
pub mod session;
pub mod shared;

pub use shared::{Context, ReloadStatus};

use crate::app::ffmpeg::ingest;
use crate::app::hooks::heartbeat;
use crate::app::runtime::{admission, daemon, dns, log, memory, ready};
use crate::config::Config;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Instant;
use tokio::net::TcpListener;
use tokio::sync::watch;

pub struct Server {
    ctx: Arc<Context>,
    listeners: Vec<TcpListener>,
    http: Vec<http::HttpListener>,
    shutdown_tx: watch::Sender<bool>,
}

impl Server {
    /// Binds every RTMP listen address of `config`, and the HTTP server and API listeners.
    pub async fn bind(config: Config) -> io::Result<Server> {
        let addrs = config.listen_addrs();
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
        let ctx = Arc::new(Context::new(config, shutdown, rtmp_port, http_port));
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
            let at = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
            ::log::info!("RTMP listen at tcp://{at}");
            ready::listener("rtmp", &format!("tcp://{at}"));
            tasks.push(tokio::spawn(accept_loop(self.ctx.clone(), l)));
        }
        for l in self.http {
            let at = l.local_addr().map(|a| a.to_string()).unwrap_or_default();
            let (what, kind) = match (l.roles.files, l.roles.api) {
                (true, true) => ("server and API", "http-server+api"),
                (true, false) => ("server", "http-server"),
                _ => ("API", "http-api"),
            };
            ::log::info!("HTTP {what} listen at http://{at}");
            ready::listener(kind, &format!("http://{at}"));
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
                // Figures of closed connections of streams and vhosts that are gone.
                let config = ctx.config();
                ctx.stats.forget_departed(
                    || ctx.hub.list().iter().map(|s| s.id.to_string()).collect(),
                    |v| config.vhost.contains_key(v),
                );
            }
        }));
        tasks.push(tokio::spawn(ingest::run(self.ctx.clone())));
        tasks.push(tokio::spawn(memory::run(self.ctx.clone())));
        let hub = self.ctx.hub.clone();
        // Merged writes of streams whose publisher paused (see hub::wake). Not one of the
        // tasks stopped first at shutdown: players and writers still draining need it; it
        // ends with the runtime.
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::hub::MERGE_CHECK);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                hub.wake_due();
            }
        });
        ready::ready();
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
        self.ctx.hls_viewers.close_all();
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
            &self.ctx.links,
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
    runtime::listen::accept_counted(ctx, &listener, "", admission::Budget::Clients, rtmp::serve)
        .await
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

/// The process: config already loaded, logging set up and the signal handlers installed
/// ([`Signals::install`], before the pid file is written, so a signal sent as soon as the pid
/// is readable is handled, not fatal). Runs until SIGTERM/SIGINT/SIGQUIT.
pub async fn run(
    config: Config,
    config_path: Option<PathBuf>,
    log: log::LogHandle,
    signals: Signals,
) -> io::Result<()> {
    let fd_cap = admission::fit_fd_limit(config.max_connections);
    dns::configure(&config.dns);
    let server = Server::bind(config).await?;
    runtime::privilege::drop_after_bind(&server.context().config())?;
    let ctx = server.context().clone();
    ctx.fd_cap.store(fd_cap, Ordering::Relaxed);
    let stop = signals.serve(ctx, config_path, log);
    server.run(stop).await;
    Ok(())
}

/// The process's signal streams: SIGHUP reload, SIGUSR1 reopen log, SIGTERM/SIGINT fast quit,
/// SIGQUIT graceful quit. Installed from `main` inside the runtime's context before the pid
/// file holds our pid: an init script that signals the pid at once (`srsd -c F && srsd -s
/// stop`) must meet a handler, not the default action that kills the process.
pub struct Signals {
    hup: tokio::signal::unix::Signal,
    usr1: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    int: tokio::signal::unix::Signal,
    quit: tokio::signal::unix::Signal,
}

impl Signals {
    /// Registers the handlers. Must be called within a tokio runtime context
    /// (`Runtime::enter`). Errors: the OS refused a handler.
    pub fn install() -> io::Result<Signals> {
        use tokio::signal::unix::{signal, SignalKind};
        Ok(Signals {
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            quit: signal(SignalKind::quit())?,
        })
    }

    /// The future that serves reloads and log reopens and resolves on quit.
    fn serve(
        self,
        ctx: Arc<Context>,
        config_path: Option<PathBuf>,
        log: log::LogHandle,
    ) -> impl std::future::Future<Output = ()> {
        let Signals {
            mut hup,
            mut usr1,
            mut term,
            mut int,
            mut quit,
        } = self;
        async move {
            let started = ctx.config();
            loop {
                tokio::select! {
                    _ = hup.recv() => reload(&ctx, &started, config_path.as_deref(), &log),
                    _ = ctx.reload.notified() => {
                        reload(&ctx, &started, config_path.as_deref(), &log)
                    }
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
        }
    }
}

/// Reload: parse and validate the file again; on error keep running on the old config.
/// `started` is the config the process started with: keys a reload cannot apply are compared
/// with it (see [`Config::restart_only_changes`]).
fn reload(ctx: &Context, started: &Config, path: Option<&std::path::Path>, log: &log::LogHandle) {
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
            for key in c.restart_only_changes(started) {
                ::log::warn!("reload: {key} differs from what runs; restart to apply it");
            }
            dns::configure(&c.dns);
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
