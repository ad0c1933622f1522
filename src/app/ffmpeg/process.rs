//! The ffmpeg supervisor: keeps one external process running until told to stop.
//!
//! Contract: [`Supervisor::spawn`] starts a task that runs `program args...` (stdin and stdout
//! null, stderr drained into the debug log line by line) and restarts it whenever it exits,
//! after a capped backoff (see [`Backoff`]). Dropping the [`Supervisor`] handle, or the
//! server's shutdown signal, stops it: SIGTERM first, SIGKILL after [`Policy::stop_grace`].
//! Nothing is ever `unwrap`ped: a missing binary is an error in the log and another try after
//! the backoff.
//!
//! [`Group`] keeps a set of supervisors equal to a wanted list (ingest, transcode, reload):
//! unchanged entries keep running, changed ones are restarted, removed ones are stopped.

use crate::app::shared::Context;
use std::process::{ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStderr, Command};
use tokio::sync::{oneshot, watch};
use tokio::time::Instant;

/// Longest stderr line logged; the rest of a longer line is dropped (ffmpeg's progress line is
/// rewritten with `\r` forever and never ends with `\n`, so lines must be cut somewhere).
pub const MAX_LINE: usize = 400;

/// Restart and stop timings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    /// The wait after the first failure; doubles on every quick exit ...
    pub min_backoff: Duration,
    /// ... up to this.
    pub max_backoff: Duration,
    /// A process that ran at least this long was healthy: the next wait is `min_backoff` again.
    pub stable_after: Duration,
    /// Between SIGTERM and SIGKILL when stopping.
    pub stop_grace: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            min_backoff: Duration::from_secs(1),
            max_backoff: Duration::from_secs(30),
            stable_after: Duration::from_secs(30),
            stop_grace: Duration::from_secs(3),
        }
    }
}

/// Capped exponential backoff, reset by a long enough run. Pure, so tested without processes.
#[derive(Debug, Clone)]
pub struct Backoff {
    policy: Policy,
    next: Duration,
}

impl Backoff {
    pub fn new(policy: Policy) -> Self {
        Backoff {
            policy,
            next: policy.min_backoff,
        }
    }

    /// The wait before the next start, given how long the last run (or failed start) lasted.
    pub fn after_exit(&mut self, ran: Duration) -> Duration {
        if ran >= self.policy.stable_after {
            self.next = self.policy.min_backoff;
        }
        let d = self.next;
        self.next = (d * 2).min(self.policy.max_backoff);
        d
    }
}

/// A program and its arguments; also the identity a [`Group`] compares.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Spec {
    pub program: String,
    pub args: Vec<String>,
}

impl Spec {
    /// The command line for logs, arguments with spaces quoted.
    pub fn command_line(&self) -> String {
        let mut s = self.program.clone();
        for a in &self.args {
            s.push(' ');
            if a.is_empty() || a.contains(' ') {
                s.push_str(&format!("{a:?}"));
            } else {
                s.push_str(a);
            }
        }
        s
    }
}

/// Counters of one supervisor, readable while it runs.
#[derive(Debug, Default)]
pub struct Stats {
    /// Processes started (successful spawns).
    pub starts: AtomicUsize,
    /// Start attempts that failed (binary missing, not executable, ...).
    pub spawn_errors: AtomicUsize,
}

/// Handle of one supervised process. Dropping it stops the process.
pub struct Supervisor {
    pub spec: Spec,
    pub stats: Arc<Stats>,
    /// Dropping the sender wakes the task: the receiver resolves with an error.
    _stop: oneshot::Sender<()>,
}

impl Supervisor {
    /// Supervises `spec` with the default [`Policy`], counting its live child in
    /// `ctx.processes` and stopping on server shutdown.
    pub fn spawn(ctx: &Context, label: String, spec: Spec) -> Supervisor {
        Self::spawn_with(
            ctx.shutdown.clone(),
            ctx.processes.clone(),
            label,
            spec,
            Policy::default(),
        )
    }

    /// [`Supervisor::spawn`] with explicit parts (tests use a short policy).
    pub fn spawn_with(
        shutdown: watch::Receiver<bool>,
        live: crate::app::runtime::tasks::Tracker,
        label: String,
        spec: Spec,
        policy: Policy,
    ) -> Supervisor {
        let (tx, rx) = oneshot::channel();
        let stats = Arc::new(Stats::default());
        let cid = crate::app::runtime::log::next_cid();
        let task = supervise(
            Stop { rx, shutdown },
            live,
            label,
            spec.clone(),
            policy,
            stats.clone(),
        );
        tokio::spawn(crate::app::runtime::log::with_cid(cid, task));
        Supervisor {
            spec,
            stats,
            _stop: tx,
        }
    }

    pub fn starts(&self) -> usize {
        self.stats.starts.load(Ordering::Relaxed)
    }
}

/// What ends a supervisor: its handle dropped or the server shutting down.
struct Stop {
    rx: oneshot::Receiver<()>,
    shutdown: watch::Receiver<bool>,
}

impl Stop {
    async fn wait(&mut self) {
        let Stop { rx, shutdown } = self;
        tokio::select! {
            _ = rx => {}
            // An error means the server (the sender) is gone: stop as well.
            _ = shutdown.wait_for(|s| *s) => {}
        }
    }
}

async fn supervise(
    mut stop: Stop,
    live: crate::app::runtime::tasks::Tracker,
    label: String,
    spec: Spec,
    policy: Policy,
    stats: Arc<Stats>,
) {
    let mut backoff = Backoff::new(policy);
    let line = spec.command_line();
    loop {
        if *stop.shutdown.borrow() {
            return;
        }
        let started = Instant::now();
        match start(&spec) {
            Err(e) => {
                stats.spawn_errors.fetch_add(1, Ordering::Relaxed);
                log::error!("{label}: cannot start {}: {e}", spec.program);
            }
            Ok(mut child) => {
                stats.starts.fetch_add(1, Ordering::Relaxed);
                let running = live.token();
                let pid = child.id().unwrap_or(0);
                log::info!("{label}: started pid {pid}: {line}");
                let last = Arc::new(Mutex::new(String::new()));
                if let Some(err) = child.stderr.take() {
                    let (label, last) = (label.clone(), last.clone());
                    let cid = crate::app::runtime::log::current_cid();
                    tokio::spawn(crate::app::runtime::log::with_cid(
                        cid,
                        drain(err, label, last),
                    ));
                }
                let status = tokio::select! {
                    s = child.wait() => Some(s),
                    _ = stop.wait() => None,
                };
                let Some(status) = status else {
                    terminate(&mut child, pid, &label, policy.stop_grace).await;
                    drop(running);
                    return;
                };
                drop(running);
                let ran = started.elapsed();
                let last = last.lock().map(|l| l.clone()).unwrap_or_default();
                match status {
                    Ok(s) => log::warn!(
                        "{label}: pid {pid} exited ({}) after {:.1}s; last output: {last:?}",
                        describe(s),
                        ran.as_secs_f64()
                    ),
                    Err(e) => log::error!("{label}: wait for pid {pid}: {e}"),
                }
            }
        }
        let delay = backoff.after_exit(started.elapsed());
        log::info!("{label}: restart in {:.1}s", delay.as_secs_f64());
        tokio::select! {
            _ = tokio::time::sleep(delay) => {}
            _ = stop.wait() => return,
        }
    }
}

fn start(spec: &Spec) -> std::io::Result<Child> {
    let mut cmd = Command::new(&spec.program);
    cmd.args(&spec.args)
        // ffmpeg reads stdin for interactive keys ('q' quits); a null stdin keeps it from
        // stealing the terminal and from being stopped by SIGTTIN when srsd runs in the
        // background.
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own process group: a Ctrl-C on srsd's terminal reaches srsd only, which then
        // stops its children in order instead of racing them.
        .process_group(0)
        // Last resort when the supervisor task is dropped without stopping (runtime ends).
        .kill_on_drop(true);
    cmd.spawn()
}

/// SIGTERM, then SIGKILL after `grace`. ffmpeg treats SIGTERM as "finish up": it flushes and
/// writes the output's trailer, which can block on a dead network peer, hence the deadline.
async fn terminate(child: &mut Child, pid: u32, label: &str, grace: Duration) {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;
    if let Ok(p) = i32::try_from(pid) {
        if p > 0 {
            let _ = kill(Pid::from_raw(p), Signal::SIGTERM);
        }
    }
    match tokio::time::timeout(grace, child.wait()).await {
        Ok(Ok(s)) => log::info!("{label}: pid {pid} stopped ({})", describe(s)),
        Ok(Err(e)) => log::warn!("{label}: wait for pid {pid}: {e}"),
        Err(_) => {
            log::warn!(
                "{label}: pid {pid} ignored SIGTERM for {}s; killing it",
                grace.as_secs()
            );
            let _ = child.kill().await;
        }
    }
}

fn describe(s: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (s.code(), s.signal()) {
        (Some(c), _) => format!("exit code {c}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        _ => s.to_string(),
    }
}

/// Logs stderr at debug level, one line at a time, each cut to [`MAX_LINE`] bytes; `\r` ends
/// a line too (ffmpeg's progress output). Keeps the last non-empty line for the exit log.
/// Ends at EOF, which comes when the child exits.
async fn drain(mut err: ChildStderr, label: String, last: Arc<Mutex<String>>) {
    let mut buf = [0u8; 2048];
    let mut line: Vec<u8> = Vec::with_capacity(MAX_LINE);
    let emit = |line: &mut Vec<u8>| {
        let text = String::from_utf8_lossy(line);
        let text = text.trim();
        if !text.is_empty() {
            log::debug!("{label}: {text}");
            if let Ok(mut l) = last.lock() {
                l.clear();
                l.push_str(text);
            }
        }
        line.clear();
    };
    loop {
        let n = match err.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for &b in &buf[..n] {
            if b == b'\n' || b == b'\r' {
                emit(&mut line);
            } else if line.len() < MAX_LINE {
                line.push(b);
            }
        }
    }
    emit(&mut line);
}

/// A set of supervised processes kept equal to a wanted list (see [`Group::apply`]).
#[derive(Default)]
pub struct Group {
    running: Vec<Supervisor>,
}

impl Group {
    /// Stops the supervisors whose spec is not wanted any more and starts those that are new;
    /// the others keep running untouched. `wanted` pairs a log label with a spec.
    pub fn apply(&mut self, ctx: &Context, wanted: Vec<(String, Spec)>) {
        self.running.retain(|s| {
            let keep = wanted.iter().any(|(_, w)| *w == s.spec);
            if !keep {
                log::info!("stop {}", s.spec.command_line());
            }
            keep
        });
        for (label, spec) in wanted {
            if !self.running.iter().any(|s| s.spec == spec) {
                self.running.push(Supervisor::spawn(ctx, label, spec));
            }
        }
    }

    pub fn len(&self) -> usize {
        self.running.len()
    }

    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_the_cap_and_resets_after_a_stable_run() {
        let mut b = Backoff::new(Policy::default());
        let quick = Duration::from_millis(10);
        let got: Vec<u64> = (0..7).map(|_| b.after_exit(quick).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 30, 30]);
        assert_eq!(
            b.after_exit(Duration::from_secs(30)),
            Duration::from_secs(1)
        );
        assert_eq!(b.after_exit(quick), Duration::from_secs(2));
    }

    #[test]
    fn command_line_quotes_arguments_with_spaces() {
        let s = Spec {
            program: "ffmpeg".into(),
            args: vec!["-i".into(), "a b.flv".into(), "".into()],
        };
        assert_eq!(s.command_line(), "ffmpeg -i \"a b.flv\" \"\"");
    }

    /// On tokio's paused clock: the supervisor's real backoff (1 s, 2 s, 4 s ... under the
    /// default policy) passes in virtual time, so the test proves the waits without sleeping.
    #[tokio::test(start_paused = true)]
    async fn missing_binary_is_retried_with_backoff_not_a_panic() {
        let (_tx, shutdown) = watch::channel(false);
        let live = crate::app::runtime::tasks::Tracker::default();
        let spec = Spec {
            program: "/nonexistent/srsd-test-ffmpeg".into(),
            args: vec![],
        };
        let started = Instant::now();
        let s = Supervisor::spawn_with(
            shutdown,
            live.clone(),
            "test".into(),
            spec,
            Policy::default(),
        );
        let deadline = started + Duration::from_secs(60);
        while s.stats.spawn_errors.load(Ordering::Relaxed) < 3 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(s.stats.spawn_errors.load(Ordering::Relaxed), 3);
        // Three attempts with the waits of 1 s and 2 s between them, not a busy loop.
        let waited = started.elapsed();
        assert!(
            waited >= Duration::from_secs(3) && waited < Duration::from_secs(7),
            "{waited:?}"
        );
        assert_eq!(s.starts(), 0);
        assert_eq!(live.len(), 0);
    }

    #[tokio::test]
    async fn dropping_the_handle_stops_the_child() {
        let (_tx, shutdown) = watch::channel(false);
        let live = crate::app::runtime::tasks::Tracker::default();
        let spec = Spec {
            program: "sleep".into(),
            args: vec!["30".into()],
        };
        let s = Supervisor::spawn_with(shutdown, live.clone(), "t".into(), spec, Policy::default());
        let deadline = Instant::now() + Duration::from_secs(5);
        while live.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(live.len(), 1, "sleep started");
        drop(s);
        let deadline = Instant::now() + Duration::from_secs(5);
        while !live.is_empty() && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(live.len(), 0, "sleep stopped by SIGTERM");
    }
}
