//! Connection budgets that keep a full box manageable.
//!
//! - Client connections (RTMP, HTTP server) count against `max_connections`, capped at start
//!   to what the open-file limit allows ([`fit_fd_limit`]).
//! - The HTTP API listener (when it has an address of its own) has its own small budget,
//!   [`API_CONNECTIONS`]: at `max_connections` the operator still reaches `/api/v1/summaries`
//!   and `/metrics`.
//! - Refusals are logged as one line a second with their count ([`Refusals`]).
//! - Under pressure (3/4 of `max_connections` open), an RTMP handshake gets
//!   [`HANDSHAKE_TIMEOUT_PRESSED`] instead of 10 s: idle sockets that never handshake cannot
//!   hold the slots for long.
//! - A client that cannot get a file descriptor (accept fails with EMFILE/ENFILE) is refused
//!   at once with the help of a spare descriptor ([`Spare`]), and the accept loop never spins.

use super::log::RateLog;
use crate::app::shared::Context;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use tokio::time::Instant;

/// Connections the API listener serves at once, besides `max_connections`.
pub const API_CONNECTIONS: usize = 16;
/// An RTMP handshake's bound when the server is nearly full.
pub const HANDSHAKE_TIMEOUT_PRESSED: Duration = Duration::from_secs(2);
/// An RTMP handshake's bound otherwise (the handshake and the connect command).
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Which budget an accepted connection counts against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    /// `max_connections` (RTMP, the HTTP server, an API sharing its address).
    Clients,
    /// [`API_CONNECTIONS`], for a listener that serves only the API.
    Api,
}

/// `max_connections` as the server applies it: the config's, within the fd cap found at start.
pub fn max_connections(ctx: &Context) -> usize {
    (ctx.config().max_connections as usize).min(ctx.fd_cap.load(Ordering::Relaxed))
}

/// Whether the server is nearly full (3/4 of its connections open).
pub fn pressed(ctx: &Context) -> bool {
    let open = ctx.connections.load(Ordering::Relaxed);
    open.saturating_mul(4) >= max_connections(ctx).saturating_mul(3)
}

/// How long an RTMP handshake may take, asked again while it waits.
pub fn handshake_timeout(ctx: &Context) -> Duration {
    if pressed(ctx) {
        HANDSHAKE_TIMEOUT_PRESSED
    } else {
        HANDSHAKE_TIMEOUT
    }
}

/// Refused connections, logged one line a second.
#[derive(Default)]
pub struct Refusals {
    log: RateLog,
    /// What the last refusals were for, for the periodic line.
    reason: std::sync::Mutex<String>,
}

impl Refusals {
    /// Counts one refusal (`total` so far) and logs when a line is due.
    pub fn refused(&self, what: &str, reason: String, total: usize) {
        if let Some(n) = self.log.hit(Instant::now()) {
            log::warn!("refused {n} {what}connections: {reason} ({total} refused so far)");
        }
        *self.reason.lock().unwrap_or_else(|p| p.into_inner()) = reason;
    }

    /// Logs the refusals not yet logged, once their second has passed (called every second).
    pub fn flush(&self, total: usize) {
        if let Some(n) = self.log.flush(Instant::now()) {
            let reason = self
                .reason
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            log::warn!("refused {n} connections: {reason} ({total} refused so far)");
        }
    }
}

/// A spare file descriptor (`/dev/null`) kept open by an accept loop. When accept fails for
/// want of descriptors, it is closed to make room, the waiting client is accepted and closed
/// at once (refused, not left hanging in the backlog), and the spare is opened again.
pub struct Spare(Option<std::fs::File>);

impl Spare {
    pub fn open() -> Spare {
        Spare(std::fs::File::open("/dev/null").ok())
    }

    /// Whether `e` means the process (or system) is out of file descriptors.
    pub fn out_of_fds(e: &std::io::Error) -> bool {
        use nix::errno::Errno;
        matches!(e.raw_os_error(), Some(c) if c == Errno::EMFILE as i32 || c == Errno::ENFILE as i32)
    }

    /// Refuses one waiting client of `listener` using the spare; false when no client could
    /// be refused (no spare to give up, or the accept failed again): the caller backs off.
    pub async fn refuse_one(&mut self, listener: &tokio::net::TcpListener) -> bool {
        if self.0.take().is_none() {
            *self = Spare::open();
            return false;
        }
        // The accept is ready (it just failed for want of a descriptor): bounded anyway.
        let refused = tokio::time::timeout(Duration::from_millis(100), listener.accept()).await;
        let done = matches!(refused, Ok(Ok(_)));
        drop(refused);
        *self = Spare::open();
        done
    }
}

/// The open-file limit: raises the soft limit to the hard one, then returns the most client
/// connections that fit (what the server itself needs set aside: listeners, log, files of
/// HLS/DVR, hook requests, ffmpeg pipes, the API budget). Logs what it did.
pub fn fit_fd_limit(max_connections: u32) -> usize {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) else {
        return usize::MAX;
    };
    let mut limit = soft;
    if hard > soft {
        match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => {
                limit = hard;
                log::info!("open file limit raised from {soft} to {hard}");
            }
            Err(e) => log::warn!("cannot raise the open file limit {soft} to {hard}: {e}"),
        }
    }
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    let cap = fd_cap(limit);
    if (max_connections as usize) > cap {
        log::warn!(
            "max_connections {max_connections} does not fit the open file limit {limit}: \
             capped to {cap} (raise `ulimit -n` to serve more)"
        );
    }
    cap
}

/// Client connections that fit `limit` descriptors: a quarter (32..=256) and the API budget
/// set aside for the server's own files and sockets; at least 1.
pub fn fd_cap(limit: usize) -> usize {
    let reserve = (limit / 4).clamp(32, 256) + API_CONNECTIONS;
    limit.saturating_sub(reserve).max(1)
}

/// Counts a connection against a budget; the slot is given back when dropped.
pub struct Slot(std::sync::Arc<Context>, Budget);

impl Slot {
    /// Takes a slot of `budget`, or says why not.
    pub fn take(ctx: &std::sync::Arc<Context>, budget: Budget) -> Result<Slot, String> {
        let (counter, max, name) = match budget {
            Budget::Clients => (&ctx.connections, max_connections(ctx), "max_connections"),
            Budget::Api => (&ctx.api_connections, API_CONNECTIONS, "the API budget"),
        };
        let open = counter.fetch_add(1, Ordering::AcqRel);
        if open >= max {
            counter.fetch_sub(1, Ordering::AcqRel);
            return Err(format!("{name} {max} reached"));
        }
        Ok(Slot(ctx.clone(), budget))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let counter: &AtomicUsize = match self.1 {
            Budget::Clients => &self.0.connections,
            Budget::Api => &self.0.api_connections,
        };
        counter.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fd_cap_sets_aside_the_servers_own_descriptors() {
        assert_eq!(fd_cap(64), 16);
        assert_eq!(fd_cap(256), 176);
        assert_eq!(fd_cap(1024), 752);
        assert_eq!(fd_cap(65536), 65264);
        assert_eq!(fd_cap(10), 1);
    }
}
