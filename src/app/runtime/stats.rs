//! Live counters for logs, the HTTP API and /metrics: one entry per client connection.
//!
//! 32-bit MIPS has no 64-bit atomics, so 64-bit byte counters live under a small mutex that
//! only their own connection task and the (rare) API readers take.

use crate::app::shared::ClientRequest;
use crate::hub::StreamKey;
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};
use tokio::sync::Notify;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What kind of client this is, as the SRS API names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientType {
    Unknown,
    RtmpPlay,
    FlvPlay,
    HlsPlay,
    FmlePublish,
    FlashPublish,
}

impl ClientType {
    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Unknown => "unknown",
            ClientType::RtmpPlay => "rtmp-play",
            ClientType::FlvPlay => "flv-play",
            ClientType::HlsPlay => "hls-play",
            ClientType::FmlePublish => "fmle-publish",
            ClientType::FlashPublish => "flash-publish",
        }
    }

    pub fn is_publish(self) -> bool {
        matches!(self, ClientType::FmlePublish | ClientType::FlashPublish)
    }
}

/// What the API says about a client: its request, filled in as it connects, publishes or
/// plays, and what it turned out to be.
#[derive(Debug, Clone, Default)]
pub struct ClientInfo {
    pub request: ClientRequest,
    pub kind: Option<ClientType>,
    pub key: Option<StreamKey>,
}

#[derive(Debug, Default, Clone, Copy)]
struct Counters {
    recv: u64,
    send: u64,
}

/// What the closed connections of one stream leave to its figures (see
/// [`Stats::departed`]).
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Departed {
    /// Bytes received from and sent to them.
    pub recv: u64,
    pub send: u64,
    /// The tcUrl of its last publisher: the stream's tcUrl while none publishes (SRS keeps
    /// the one the stream was made with).
    pub publisher_tc_url: String,
}

/// Samples for the 30-second kbps figures, taken by [`Stats::sample`] every few seconds.
#[derive(Debug, Default)]
struct Kbps {
    samples: VecDeque<(Instant, u64, u64)>,
    recv_30s: u64,
    send_30s: u64,
}

pub const KBPS_WINDOW: Duration = Duration::from_secs(30);

impl Kbps {
    fn sample(&mut self, now: Instant, c: Counters) {
        self.samples.push_back((now, c.recv, c.send));
        while self.samples.len() > 2 && now.duration_since(self.samples[1].0) >= KBPS_WINDOW {
            self.samples.pop_front();
        }
        if let (Some(first), Some(last)) = (self.samples.front(), self.samples.back()) {
            let secs = last.0.duration_since(first.0).as_secs_f64();
            if secs > 0.5 {
                self.recv_30s =
                    (last.1.saturating_sub(first.1) as f64 * 8.0 / 1000.0 / secs) as u64;
                self.send_30s =
                    (last.2.saturating_sub(first.2) as f64 * 8.0 / 1000.0 / secs) as u64;
            }
        }
    }
}

/// One client connection (RTMP or HTTP viewer).
pub struct ClientStat {
    /// The connection's context id: the same in logs, the API and hooks.
    pub id: u32,
    pub ip: String,
    pub started: Instant,
    info: Mutex<ClientInfo>,
    counters: Mutex<Counters>,
    kbps: Mutex<Kbps>,
    /// Signalled by `DELETE /api/v1/clients/{id}`.
    pub kick: Notify,
}

/// How often a connection's running byte counts reach its [`ClientStat`]: the API samples
/// them every 5 s for its 30 s kbps figures, so a second's lag does not show, and a player's
/// batch does not take its client's lock each time. A connection sets its last counts when it
/// ends (on_close's `send_bytes`).
pub const BYTES_EVERY: Duration = Duration::from_secs(1);

impl ClientStat {
    pub fn info(&self) -> ClientInfo {
        lock(&self.info).clone()
    }

    pub fn update(&self, f: impl FnOnce(&mut ClientInfo)) {
        f(&mut lock(&self.info));
    }

    /// Sets the absolute byte counts (the connection owns the running totals).
    pub fn set_bytes(&self, recv: u64, send: u64) {
        *lock(&self.counters) = Counters { recv, send };
    }

    /// [`ClientStat::set_bytes`] at most once per [`BYTES_EVERY`]: `next` is the caller's
    /// time the next update is due (start it at a time already past).
    pub fn set_bytes_every(&self, recv: u64, send: u64, now: Instant, next: &mut Instant) {
        if now >= *next {
            self.set_bytes(recv, send);
            *next = now + BYTES_EVERY;
        }
    }

    pub fn add_bytes(&self, recv: u64, send: u64) {
        let mut c = lock(&self.counters);
        c.recv += recv;
        c.send += send;
    }

    /// (received, sent) bytes.
    pub fn bytes(&self) -> (u64, u64) {
        let c = *lock(&self.counters);
        (c.recv, c.send)
    }

    /// (recv, send) kbps over the last 30 s.
    pub fn kbps(&self) -> (u64, u64) {
        let k = lock(&self.kbps);
        (k.recv_30s, k.send_30s)
    }

    pub fn alive(&self) -> Duration {
        self.started.elapsed()
    }
}

/// The registry of clients. A [`ClientGuard`] removes its entry when the connection ends.
#[derive(Default)]
pub struct Stats {
    clients: Mutex<HashMap<u32, Arc<ClientStat>>>,
    /// Bytes of connections that already closed, so server totals never go backwards.
    closed: Mutex<Counters>,
    /// The same per stream (by source id) and per vhost: SRS's stream and vhost counters run
    /// for the stream's or vhost's life, not only its clients' of now.
    closed_streams: Mutex<HashMap<String, Departed>>,
    closed_vhosts: Mutex<HashMap<String, Counters>>,
    /// Frames dropped for slow consumers, as their tasks report them (for /metrics).
    drops: Mutex<u64>,
}

impl Stats {
    /// Registers a client; the guard unregisters it on drop.
    pub fn register(self: &Arc<Self>, id: u32, ip: String) -> ClientGuard {
        let stat = Arc::new(ClientStat {
            id,
            ip,
            started: Instant::now(),
            info: Mutex::new(ClientInfo::default()),
            counters: Mutex::new(Counters::default()),
            kbps: Mutex::new(Kbps::default()),
            kick: Notify::new(),
        });
        lock(&self.clients).insert(id, stat.clone());
        ClientGuard {
            stats: self.clone(),
            stat,
        }
    }

    pub fn client(&self, id: u32) -> Option<Arc<ClientStat>> {
        lock(&self.clients).get(&id).cloned()
    }

    /// All clients, sorted by id.
    pub fn clients(&self) -> Vec<Arc<ClientStat>> {
        let mut v: Vec<_> = lock(&self.clients).values().cloned().collect();
        v.sort_by_key(|c| c.id);
        v
    }

    /// Total (received, sent) bytes of every connection, open or closed.
    pub fn totals(&self) -> (u64, u64) {
        let closed = *lock(&self.closed);
        lock(&self.clients)
            .values()
            .fold((closed.recv, closed.send), |(r, s), c| {
                let (cr, cs) = c.bytes();
                (r + cr, s + cs)
            })
    }

    /// What the closed connections of the stream whose source id is `id` left to its
    /// figures; `None` when none of its connections closed yet.
    pub fn departed(&self, id: &str) -> Option<Departed> {
        lock(&self.closed_streams).get(id).cloned()
    }

    /// (received, sent) bytes of the closed connections of `vhost`.
    pub fn departed_vhost(&self, vhost: &str) -> (u64, u64) {
        lock(&self.closed_vhosts)
            .get(vhost)
            .map_or((0, 0), |c| (c.recv, c.send))
    }

    /// Forgets the closed connections of streams that are gone (`live` says which source ids
    /// still exist) and of vhosts no longer configured (`vhost_kept`): the maps stay as
    /// large as what runs.
    pub fn forget_departed(
        &self,
        live: impl FnOnce() -> std::collections::HashSet<String>,
        vhost_kept: impl Fn(&str) -> bool,
    ) {
        // The ids are listed only when there is something to forget, and not under the lock.
        if !lock(&self.closed_streams).is_empty() {
            let live = live();
            lock(&self.closed_streams).retain(|id, _| live.contains(id));
        }
        lock(&self.closed_vhosts).retain(|v, _| vhost_kept(v));
    }

    /// Counts `n` more frames dropped for a slow consumer.
    pub fn add_drops(&self, n: u64) {
        *lock(&self.drops) += n;
    }

    /// Frames dropped for slow consumers so far.
    pub fn drops(&self) -> u64 {
        *lock(&self.drops)
    }

    /// Takes a kbps sample of every client (called every few seconds).
    pub fn sample(&self, now: Instant) {
        for c in self.clients() {
            let counters = *lock(&c.counters);
            lock(&c.kbps).sample(now, counters);
        }
    }
}

pub struct ClientGuard {
    stats: Arc<Stats>,
    pub stat: Arc<ClientStat>,
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        let (r, s) = self.stat.bytes();
        {
            let mut closed = lock(&self.stats.closed);
            closed.recv += r;
            closed.send += s;
        }
        let info = self.stat.info();
        if !info.request.stream_id.is_empty() {
            let mut streams = lock(&self.stats.closed_streams);
            let d = streams.entry(info.request.stream_id).or_default();
            d.recv += r;
            d.send += s;
            if info.kind.is_some_and(|k| k.is_publish()) {
                d.publisher_tc_url = info.request.tc_url;
            }
        }
        if !info.request.vhost.is_empty() {
            let mut vhosts = lock(&self.stats.closed_vhosts);
            let c = vhosts.entry(info.request.vhost).or_default();
            c.recv += r;
            c.send += s;
        }
        lock(&self.stats.clients).remove(&self.stat.id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registry_and_totals() {
        let s = Arc::new(Stats::default());
        let a = s.register(1, "127.0.0.1".into());
        let b = s.register(2, "127.0.0.1".into());
        a.stat.set_bytes(100, 10);
        b.stat.add_bytes(5, 5);
        assert_eq!(s.totals(), (105, 15));
        assert_eq!(s.clients().len(), 2);
        drop(a);
        assert!(s.client(1).is_none());
        assert_eq!(s.totals(), (105, 15), "closed connections still count");
    }

    #[test]
    fn closed_connections_stay_in_their_stream_and_vhost_until_those_go() {
        let s = Arc::new(Stats::default());
        let client = |id, kind, tc: &str, bytes: (u64, u64)| {
            let g = s.register(id, "127.0.0.1".into());
            g.stat.update(|i| {
                i.request.vhost = "v".into();
                i.request.stream_id = "7".into();
                i.request.tc_url = tc.into();
                i.kind = Some(kind);
            });
            g.stat.set_bytes(bytes.0, bytes.1);
            g
        };
        drop(client(1, ClientType::RtmpPlay, "rtmp://h/player", (5, 50)));
        assert_eq!(
            s.departed("7"),
            Some(Departed {
                recv: 5,
                send: 50,
                publisher_tc_url: String::new()
            })
        );
        drop(client(
            2,
            ClientType::FmlePublish,
            "rtmp://h/pub",
            (1000, 10),
        ));
        let d = s.departed("7").unwrap();
        assert_eq!(
            (d.recv, d.send, d.publisher_tc_url.as_str()),
            (1005, 60, "rtmp://h/pub")
        );
        assert_eq!(s.departed_vhost("v"), (1005, 60));
        assert_eq!(s.departed("8"), None);
        s.forget_departed(|| ["7".to_string()].into(), |v| v == "v");
        assert!(s.departed("7").is_some(), "a live stream keeps its figures");
        s.forget_departed(Default::default, |_| false);
        assert_eq!((s.departed("7"), s.departed_vhost("v")), (None, (0, 0)));
    }

    #[test]
    fn kbps_over_the_window() {
        let mut k = Kbps::default();
        let t0 = Instant::now();
        for i in 0..10u64 {
            // 125_000 bytes per second = 1000 kbps.
            k.sample(
                t0 + Duration::from_secs(i * 5),
                Counters {
                    recv: i * 5 * 125_000,
                    send: 0,
                },
            );
        }
        assert_eq!(k.recv_30s, 1000);
        assert!(k.samples.len() <= 8);
    }
}

/// Events counted by a reason from a fixed set of labels (`/metrics` counters such as
/// `srsd_denials_total{reason}`): counting takes no lock; a label outside the set is ignored.
#[derive(Debug)]
pub struct ReasonCounts {
    labels: &'static [&'static str],
    counts: Vec<std::sync::atomic::AtomicUsize>,
}

impl ReasonCounts {
    /// Zero for every label of `labels`.
    pub fn new(labels: &'static [&'static str]) -> ReasonCounts {
        ReasonCounts {
            labels,
            counts: labels.iter().map(|_| Default::default()).collect(),
        }
    }

    /// Counts one event for `reason` (one of the labels; others are ignored).
    pub fn count(&self, reason: &str) {
        if let Some(i) = self.labels.iter().position(|r| *r == reason) {
            self.counts[i].fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }

    /// (label, count) for every label, in the labels' order.
    pub fn snapshot(&self) -> Vec<(&'static str, u64)> {
        self.labels
            .iter()
            .zip(&self.counts)
            .map(|(r, c)| (*r, c.load(std::sync::atomic::Ordering::Relaxed) as u64))
            .collect()
    }
}

/// Every reason a client is refused for, as `/metrics` labels them.
pub const DENIAL_REASONS: [&str; 8] = [
    // An empty or unsafe stream name (Publish.BadName).
    "bad_name",
    // No such vhost, or it is disabled.
    "vhost",
    // `[vhost.X.refer]`.
    "refer",
    // `[vhost.X.security]`.
    "security",
    // A second publisher of a live stream.
    "busy",
    // A gate hook answered, and not with an allow.
    "hook_rejected",
    // A gate hook could not be asked (refused, broken, timed out).
    "hook_unreachable",
    // An edge's origin refused the client (token traverse).
    "origin",
];
