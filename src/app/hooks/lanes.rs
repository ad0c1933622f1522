//! Delivery of hook notifies (`on_close`, `on_unpublish`, `on_stop`, `on_hls`, `on_dvr`): one
//! set of lanes per hook URL, so a slow or dead hook server holds up only its own events.
//!
//! - **Bounded concurrency per URL.** Each URL has [`CONCURRENCY`] serial lanes; a notify takes
//!   the lane of its connection (`cid % CONCURRENCY`), so one client's notifies reach a URL one
//!   after the other, in the order they were raised (on_stop before on_close, on_unpublish
//!   before on_close: hook servers rely on it), while up to [`CONCURRENCY`] clients are sent in
//!   parallel. A lane's task exists only while it has work.
//! - **Bounded queue per URL.** At most [`queue_per_url`] notifies wait (or are in flight) per
//!   URL (two per allowed connection: every client of a full server can leave at once, with
//!   its on_stop/on_unpublish and on_close, while its hook server hangs); past that a notify is
//!   dropped, counted per URL and logged at most once a second.
//! - **Circuit breaker per URL.** [`BREAKER_FAILURES`] failures in a row (no answer, or HTTP
//!   5xx) open the circuit: the URL's lanes stop sending (their notifies wait in the queue)
//!   for a backoff of 1 s, doubled up to 30 s while probes keep failing. When the backoff ends
//!   one lane sends a probe; its success closes the circuit and wakes every lane. Other URLs
//!   are not affected at all.
//! - **Counted.** Per URL: delivered (an HTTP answer came), failed (sent, no usable answer),
//!   dropped (never sent), queued now, circuit state: `/metrics` and `/api/v1/hooks`.
//! - **Drained at quit.** [`Notifier::drain`] waits for the lanes up to a deadline (graceful
//!   quit), then counts and logs what is left.

use crate::app::runtime::log::RateLog;
use crate::app::runtime::tasks::Tracker;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::sync::Notify;
use tokio::time::Instant;

/// Serial lanes per hook URL: at most this many requests in flight to one URL.
pub const CONCURRENCY: usize = 8;
/// Notifies waiting or in flight per URL for a server of `max_connections`: two per
/// connection, at least 256 and at most 8192 (a notify holds its ~400-byte body: 3.2 MiB for
/// a URL that hangs with a full queue of the largest size). More are dropped and counted.
pub fn queue_per_url(max_connections: u32) -> usize {
    (max_connections as usize)
        .saturating_mul(2)
        .clamp(256, 8192)
}
/// Distinct hook URLs tracked; notifies to more URLs than this are dropped and counted.
pub const MAX_URLS: usize = 64;
/// Failures in a row that open a URL's circuit.
pub const BREAKER_FAILURES: u32 = 3;
/// First backoff of an open circuit; doubled by each failed probe up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_secs(1);
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// One notify for one URL.
struct Job {
    /// Shared by the URLs of one event.
    body: Arc<str>,
    /// JSON, or nginx-rtmp's form encoding (`hook_protocol = "nginx"`).
    content_type: &'static str,
    timeout: Duration,
    action: &'static str,
    /// The connection it is about: its delivery is logged under that cid.
    cid: u64,
    /// Counted among the connection's outstanding notifies (see [`Outstanding`]).
    counted: bool,
}

/// The notifies of each connection not yet sent and answered (or failed), by cid: what its
/// `on_close` waits for, so that one client's notifies reach their hook servers in the order
/// they were raised even when each hook has a URL of its own (SRS's own example config sends
/// on_close and on_stop to different URLs; SRS sends them one after the other).
#[derive(Default)]
struct Outstanding(Mutex<std::collections::HashMap<u64, (usize, Arc<Notify>)>>);

impl Outstanding {
    fn add(&self, cid: u64) {
        lock(&self.0).entry(cid).or_default().0 += 1;
    }

    fn done(&self, cid: u64) {
        let mut m = lock(&self.0);
        if let Some((n, _)) = m.get_mut(&cid) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                if let Some((_, done)) = m.remove(&cid) {
                    done.notify_waiters();
                }
            }
        }
    }

    fn any(&self, cid: u64) -> bool {
        lock(&self.0).contains_key(&cid)
    }

    /// Waits until connection `cid` has no outstanding notify.
    async fn settled(&self, cid: u64) {
        loop {
            let Some(done) = lock(&self.0).get(&cid).map(|(_, d)| d.clone()) else {
                return;
            };
            let wait = done.notified();
            tokio::pin!(wait);
            wait.as_mut().enable();
            let same = lock(&self.0)
                .get(&cid)
                .is_some_and(|(_, d)| Arc::ptr_eq(d, &done));
            if !same {
                return;
            }
            wait.await;
        }
    }
}

/// How long a connection's `on_close` waits at most for its earlier notifies (to a hook
/// server that hangs, or whose circuit is open) before it is sent anyway; less when the hook
/// timeout is shorter (see [`Notifier::after_the_others`]).
pub const CLOSE_WAITS_AT_MOST: Duration = Duration::from_secs(10);

#[derive(Default)]
struct Lane {
    queue: VecDeque<Job>,
    /// A task is emptying this lane.
    running: bool,
}

/// A URL's circuit breaker. Pure (time is an argument), so it is tested without a server.
///
/// Input: [`Breaker::permit`] before each send, [`Breaker::record`] with its outcome.
#[derive(Debug, Default)]
pub struct Breaker {
    failures: u32,
    /// Open until then; `None` is closed.
    open_until: Option<Instant>,
    backoff: Duration,
    /// A half-open probe is in flight.
    probing: bool,
}

/// What [`Breaker::permit`] says.
#[derive(Debug, PartialEq, Eq)]
pub enum Permit {
    Send,
    /// Open: wait until then (or until the circuit closes), then ask again.
    WaitUntil(Instant),
}

/// A change of state worth a log line.
#[derive(Debug, PartialEq, Eq)]
pub enum Transition {
    Opened(Duration),
    Reopened(Duration),
    Closed,
}

impl Breaker {
    pub fn permit(&mut self, now: Instant) -> Permit {
        match self.open_until {
            None => Permit::Send,
            Some(t) if now < t || self.probing => Permit::WaitUntil(t.max(now + BACKOFF_MIN)),
            Some(_) => {
                // Half-open: this send is the probe; the others wait for its outcome.
                self.probing = true;
                self.open_until = Some(now + self.backoff);
                Permit::Send
            }
        }
    }

    pub fn record(&mut self, ok: bool, now: Instant) -> Option<Transition> {
        if ok {
            let was_open = self.open_until.is_some();
            *self = Breaker::default();
            return was_open.then_some(Transition::Closed);
        }
        self.failures = self.failures.saturating_add(1);
        if self.probing {
            self.probing = false;
            self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
            self.open_until = Some(now + self.backoff);
            return Some(Transition::Reopened(self.backoff));
        }
        if self.open_until.is_none() && self.failures >= BREAKER_FAILURES {
            self.backoff = BACKOFF_MIN;
            self.open_until = Some(now + self.backoff);
            return Some(Transition::Opened(self.backoff));
        }
        None
    }

    pub fn is_open(&self) -> bool {
        self.open_until.is_some()
    }
}

/// A hook URL's lanes and counters.
struct Url {
    url: String,
    lanes: Vec<Mutex<Lane>>,
    queued: AtomicUsize,
    delivered: AtomicUsize,
    failed: AtomicUsize,
    dropped: AtomicUsize,
    breaker: Mutex<Breaker>,
    /// Woken when the circuit closes.
    closed: Notify,
    drop_log: RateLog,
    /// The server's, shared by every URL.
    outstanding: Arc<Outstanding>,
}

/// One URL's figures, for `/metrics` and the API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlStats {
    pub url: String,
    /// Waiting or in flight now.
    pub queued: usize,
    /// Sent and answered (any HTTP status; a non-2xx answer is logged).
    pub delivered: usize,
    /// Sent without a usable answer: refused, broken, timed out, HTTP 5xx.
    pub failed: usize,
    /// Never sent: the URL's queue was full, or the quit deadline passed.
    pub dropped: usize,
    pub circuit_open: bool,
}

/// The notify lanes of one server.
pub struct Notifier {
    urls: Mutex<Vec<Arc<Url>>>,
    /// See [`queue_per_url`].
    queue: usize,
    tasks: Tracker,
    /// Notifies dropped, all URLs together (queue full, too many URLs, quit deadline).
    pub dropped: AtomicUsize,
    outstanding: Arc<Outstanding>,
}

impl Notifier {
    /// Lanes for a server of `max_connections` (sets [`queue_per_url`], fixed until restart).
    /// Lane tasks are spawned on demand, on the runtime of the caller.
    pub fn start(max_connections: u32) -> Notifier {
        Notifier {
            urls: Mutex::new(Vec::new()),
            queue: queue_per_url(max_connections),
            tasks: Tracker::default(),
            dropped: AtomicUsize::new(0),
            outstanding: Arc::default(),
        }
    }

    /// Queues a notify about the current connection to each of `urls`; never waits.
    pub fn notify(&self, urls: &[String], body: String, timeout: Duration, action: &'static str) {
        self.notify_as(urls, body, super::JSON, timeout, action);
    }

    /// [`Notifier::notify`] with the body's content type.
    pub fn notify_as(
        &self,
        urls: &[String],
        body: String,
        content_type: &'static str,
        timeout: Duration,
        action: &'static str,
    ) {
        if urls.is_empty() {
            return;
        }
        let cid = crate::app::runtime::log::current_cid();
        let body: Arc<str> = body.into();
        // A connection's last notify, on_close, goes after the others.
        let counted = action != "on_close";
        for u in urls {
            if counted {
                self.outstanding.add(cid);
            }
            let queued = self.push(
                u,
                Job {
                    body: body.clone(),
                    content_type,
                    timeout,
                    action,
                    cid,
                    counted,
                },
            );
            if counted && !queued {
                self.outstanding.done(cid);
            }
        }
    }

    /// Whether the current connection has notifies not yet sent and answered: its
    /// `on_close` should then wait for them ([`Notifier::after_the_others`]).
    pub fn has_outstanding(&self) -> bool {
        self.outstanding
            .any(crate::app::runtime::log::current_cid())
    }

    /// Runs `send` (the connection's `on_close`) once the current connection's other
    /// notifies were sent and answered, or after `timeout` (the hook timeout: an answer
    /// comes within it unless the server hangs or its circuit is open; at most
    /// [`CLOSE_WAITS_AT_MOST`]), so a sick hook URL holds another URL's on_close no longer
    /// than that. On a task of the lanes (a graceful quit's drain waits for it too), under
    /// the connection's cid.
    pub fn after_the_others(&self, timeout: Duration, send: impl FnOnce() + Send + 'static) {
        let timeout = timeout.min(CLOSE_WAITS_AT_MOST);
        let cid = crate::app::runtime::log::current_cid();
        let outstanding = self.outstanding.clone();
        if tokio::runtime::Handle::try_current().is_err() {
            return send();
        }
        self.tasks
            .spawn(crate::app::runtime::log::with_cid(cid, async move {
                let _ = tokio::time::timeout(timeout, outstanding.settled(cid)).await;
                send();
            }));
    }

    fn url(&self, url: &str) -> Option<Arc<Url>> {
        let mut urls = lock(&self.urls);
        if let Some(u) = urls.iter().find(|u| u.url == url) {
            return Some(u.clone());
        }
        if urls.len() >= MAX_URLS {
            return None;
        }
        let u = Arc::new(Url {
            url: url.to_string(),
            lanes: (0..CONCURRENCY).map(|_| Mutex::default()).collect(),
            queued: AtomicUsize::new(0),
            delivered: AtomicUsize::new(0),
            failed: AtomicUsize::new(0),
            dropped: AtomicUsize::new(0),
            breaker: Mutex::default(),
            closed: Notify::new(),
            drop_log: RateLog::default(),
            outstanding: self.outstanding.clone(),
        });
        urls.push(u.clone());
        Some(u)
    }

    /// Queues `job` for `url`; false when it was dropped instead.
    fn push(&self, url: &str, job: Job) -> bool {
        let action = job.action;
        let Some(u) = self.url(url) else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            log::warn!("hook {action} {url}: more than {MAX_URLS} hook URLs, event dropped");
            return false;
        };
        let runtime = tokio::runtime::Handle::try_current();
        let full = u.queued.load(Ordering::Acquire) >= self.queue;
        if full || runtime.is_err() {
            u.dropped.fetch_add(1, Ordering::Relaxed);
            let total = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if let Some(n) = u.drop_log.hit(Instant::now()) {
                log::warn!(
                    "hook {action} {url}: {} notifies queued, {n} dropped \
                     ({total} dropped so far, all URLs)",
                    self.queue
                );
            }
            return false;
        }
        u.queued.fetch_add(1, Ordering::AcqRel);
        let i = (job.cid % CONCURRENCY as u64) as usize;
        let start = {
            let mut lane = lock(&u.lanes[i]);
            lane.queue.push_back(job);
            !std::mem::replace(&mut lane.running, true)
        };
        if start {
            if let Ok(rt) = runtime {
                let _enter = rt.enter();
                self.tasks.spawn(run_lane(u, i));
            }
        }
        true
    }

    /// Each URL's figures, in the order the URLs were first used.
    pub fn snapshot(&self) -> Vec<UrlStats> {
        lock(&self.urls)
            .iter()
            .map(|u| UrlStats {
                url: u.url.clone(),
                queued: u.queued.load(Ordering::Relaxed),
                delivered: u.delivered.load(Ordering::Relaxed),
                failed: u.failed.load(Ordering::Relaxed),
                dropped: u.dropped.load(Ordering::Relaxed),
                circuit_open: lock(&u.breaker).is_open(),
            })
            .collect()
    }

    /// Notifies waiting or in flight, all URLs together.
    pub fn pending(&self) -> usize {
        lock(&self.urls)
            .iter()
            .map(|u| u.queued.load(Ordering::Relaxed))
            .sum()
    }

    /// Waits until every queued notify was sent or `deadline` passed. What is left then is
    /// counted as dropped and logged; returns how many.
    pub async fn drain(&self, deadline: Instant) -> usize {
        if self.tasks.wait(deadline).await {
            return 0;
        }
        let mut left = 0;
        for u in lock(&self.urls).iter() {
            let n = u.queued.load(Ordering::Relaxed);
            if n > 0 {
                u.dropped.fetch_add(n, Ordering::Relaxed);
                log::warn!("quit: {n} hook notifies to {} not sent in time", u.url);
                left += n;
            }
        }
        self.dropped.fetch_add(left, Ordering::Relaxed);
        left
    }
}

/// Empties lane `i` of `u`, one notify at a time, then ends.
async fn run_lane(u: Arc<Url>, i: usize) {
    loop {
        let job = {
            let mut lane = lock(&u.lanes[i]);
            match lane.queue.pop_front() {
                Some(j) => j,
                None => {
                    lane.running = false;
                    return;
                }
            }
        };
        loop {
            let closed = u.closed.notified();
            tokio::pin!(closed);
            closed.as_mut().enable();
            let permit = lock(&u.breaker).permit(Instant::now());
            match permit {
                Permit::Send => break,
                Permit::WaitUntil(t) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(t) => {}
                        _ = closed => {}
                    }
                }
            }
        }
        let (action, url) = (job.action, u.url.as_str());
        let result = crate::app::runtime::log::with_cid(
            job.cid,
            super::post_as(url, job.body.to_string(), job.content_type, job.timeout),
        )
        .await;
        let ok = match &result {
            Ok(reply) => {
                let status = &reply.status;
                u.delivered.fetch_add(1, Ordering::Relaxed);
                // nginx-rtmp ignores the answer to a notify (any 2xx is fine); SRS wants
                // 200 or 201.
                let fine = *status == 200
                    || *status == 201
                    || (job.content_type != super::JSON && (200..300).contains(status));
                if !fine {
                    crate::app::runtime::log::with_cid(job.cid, async {
                        log::warn!("hook {action} {url}: HTTP {status}")
                    })
                    .await;
                }
                // A 5xx is an answer (delivered) but a sick server: it counts for the circuit.
                *status < 500
            }
            Err(e) => {
                u.failed.fetch_add(1, Ordering::Relaxed);
                crate::app::runtime::log::with_cid(job.cid, async {
                    log::warn!("hook {action} {url}: {e}")
                })
                .await;
                false
            }
        };
        let change = lock(&u.breaker).record(ok, Instant::now());
        match change {
            Some(Transition::Opened(b)) => log::warn!(
                "hook {url}: {BREAKER_FAILURES} failures in a row, holding its notifies for {b:?}"
            ),
            Some(Transition::Reopened(b)) => {
                log::warn!("hook {url}: still failing, holding its notifies for {b:?}")
            }
            Some(Transition::Closed) => {
                log::info!("hook {url}: answering again, sending its notifies");
                u.closed.notify_waiters();
            }
            None => {}
        }
        u.queued.fetch_sub(1, Ordering::AcqRel);
        if job.counted {
            u.outstanding.done(job.cid);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_connection_settles_when_its_last_counted_notify_is_done() {
        let o = Arc::new(Outstanding::default());
        let quick = Duration::from_millis(50);
        assert!(
            tokio::time::timeout(quick, o.settled(7)).await.is_ok(),
            "none: at once"
        );
        o.add(7);
        o.add(7);
        o.add(8);
        assert!(o.any(7));
        let waiter = tokio::spawn({
            let o = o.clone();
            async move { o.settled(7).await }
        });
        o.done(7);
        tokio::time::sleep(quick).await;
        assert!(!waiter.is_finished(), "one of two is still out");
        o.done(7);
        assert!(tokio::time::timeout(quick * 10, waiter).await.is_ok());
        assert!(!o.any(7) && o.any(8), "each connection on its own");
        o.done(7);
        assert!(
            !o.any(7),
            "a done too many neither panics nor makes an entry"
        );
    }

    #[test]
    fn breaker_opens_after_failures_probes_once_and_backs_off() {
        let t0 = Instant::now();
        let s = Duration::from_secs;
        let mut b = Breaker::default();
        assert_eq!(b.permit(t0), Permit::Send);
        assert_eq!(b.record(false, t0), None);
        assert_eq!(b.record(false, t0), None);
        assert_eq!(b.record(false, t0), Some(Transition::Opened(s(1))));
        assert_eq!(b.permit(t0), Permit::WaitUntil(t0 + s(1)));
        // Half-open: one probe, the others wait for it.
        assert_eq!(b.permit(t0 + s(1)), Permit::Send);
        assert!(matches!(b.permit(t0 + s(1)), Permit::WaitUntil(_)));
        assert_eq!(b.record(false, t0 + s(1)), Some(Transition::Reopened(s(2))));
        assert_eq!(b.permit(t0 + s(2)), Permit::WaitUntil(t0 + s(3)));
        let mut t = t0 + s(3);
        for want in [4, 8, 16, 30, 30] {
            assert_eq!(b.permit(t), Permit::Send);
            assert_eq!(b.record(false, t), Some(Transition::Reopened(s(want))));
            t += s(want);
        }
        assert_eq!(b.permit(t), Permit::Send);
        assert_eq!(b.record(true, t), Some(Transition::Closed));
        assert_eq!(b.permit(t), Permit::Send);
        assert!(!b.is_open());
        // A late failure of a request sent before the circuit opened does not extend it.
        for _ in 0..3 {
            b.record(false, t);
        }
        assert_eq!(b.record(false, t), None);
        assert_eq!(b.permit(t), Permit::WaitUntil(t + s(1)));
    }

    #[test]
    fn rate_log_says_the_first_then_one_line_a_second() {
        let l = RateLog::default();
        let t0 = Instant::now();
        assert_eq!(l.hit(t0), Some(1));
        for _ in 0..9 {
            assert_eq!(l.hit(t0 + Duration::from_millis(500)), None);
        }
        assert_eq!(l.flush(t0 + Duration::from_millis(900)), None);
        assert_eq!(l.flush(t0 + Duration::from_millis(1000)), Some(9));
        assert_eq!(l.flush(t0 + Duration::from_millis(3000)), None);
        assert_eq!(l.hit(t0 + Duration::from_millis(3000)), Some(1));
    }
}
