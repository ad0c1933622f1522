//! Forward (`[vhost.X.forward]`): every stream published to the vhost is copied to each
//! destination, and the one forwarder both forward and an edge's upstream publish use.
//!
//! A forwarder is a hub consumer like a player: it drains its bounded queue and publishes to
//! an upstream with the project's RTMP client. So a slow or dead destination only fills (and
//! drops, counted) its own queue; the publisher and the other destinations never wait on it.
//!
//! Lifecycle: [`spawn_all`] returns a [`Forwards`] guard that the publish state owns; while
//! it lives, the set of forwarders follows the config (reloads add and remove destinations
//! of live streams). [`forward_stream`] runs until the local stream is unpublished (the consumer sees
//! [`Item::Unpublished`]) or the server shuts down. While the upstream is unreachable it keeps
//! draining its queue, remembering metadata and sequence headers, and retries the upstreams in
//! order with a capped [`Backoff`]; after every (re)connect it sends the remembered metadata
//! and sequence headers first, then skips frames until the next video keyframe, so the
//! destination's players start on a decodable picture.

use crate::app::cluster::edge::{self, Link, LinkState};
use crate::app::runtime::output_status::{Output, Reason};
use crate::app::runtime::tasks::{stop_pair, StopOnDrop, StopSignal};
use crate::app::shared::Context;
use crate::client::{ClientError, RtmpClient, RtmpUrl};
use crate::hub::{Consumer, Frame, Item, QueueLimits, Source, StreamKey, TimeJitter};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// The first retry waits this long; every failure doubles it up to [`BACKOFF_MAX`].
pub const BACKOFF_MIN: Duration = Duration::from_millis(200);
pub const BACKOFF_MAX: Duration = Duration::from_secs(3);
/// Bounds TCP connect, handshake, connect and publish/play, each.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A send that makes no progress this long means the upstream is gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(10);
/// Bytes drained from the consumer queue per wake-up.
const BATCH_BYTES: usize = 256 * 1024;

/// Capped exponential backoff between reconnects (shared by edge pull, edge push, forward).
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff { next: BACKOFF_MIN }
    }
}

impl Backoff {
    /// The wait before the next attempt; doubles the one after, up to [`BACKOFF_MAX`].
    pub fn next_delay(&mut self) -> Duration {
        let d = self.next;
        self.next = (d * 2).min(BACKOFF_MAX);
        d
    }

    /// Called once an upstream worked (media flowed): the next failure retries quickly.
    pub fn reset(&mut self) {
        self.next = BACKOFF_MIN;
    }
}

/// Stops the stream's forwarders when dropped (the publish state owns it): the supervisor
/// ends, dropping its [`Forwarder`]s, and each closes its upstream publish itself.
pub struct Forwards {
    _stop: StopOnDrop,
}

/// Stops its forwarder when dropped (removed by a reload, or the stream's forwards end).
struct Forwarder(#[allow(dead_code)] StopOnDrop);

/// On publish: while the returned guard lives, one independent forwarder runs per
/// destination of the vhost's `[forward]` (each with its own consumer, primed with the
/// stream's headers), and the set follows reloads: a destination added to a live stream's
/// vhost starts forwarding it at once, one removed (or `enabled = false`) stops.
pub fn spawn_all(ctx: &Arc<Context>, source: &Arc<Source>, param: &str) -> Forwards {
    let (ctx, source, param) = (ctx.clone(), source.clone(), param.to_string());
    let cid = crate::app::runtime::log::current_cid();
    let (stop_owner, mut stop) = stop_pair();
    let links = ctx.links.clone();
    links.spawn(crate::app::runtime::log::with_cid(cid, async move {
        let mut changes = ctx.config_changes();
        let mut shutdown = ctx.shutdown.clone();
        let mut running: HashMap<String, Forwarder> = HashMap::new();
        loop {
            let wanted = destinations(&ctx.config(), &source.key);
            running.retain(|dest, _| {
                let keep = wanted.contains(dest);
                if !keep {
                    log::info!("forward {}: {dest} removed by reload; stopped", source.key);
                }
                keep
            });
            for dest in wanted {
                if let std::collections::hash_map::Entry::Vacant(slot) = running.entry(dest) {
                    if let Some(f) = start(&ctx, &source, &param, slot.key()) {
                        slot.insert(f);
                    }
                }
            }
            tokio::select! {
                r = changes.changed() => if r.is_err() { return },
                _ = shutdown.wait_for(|s| *s) => return,
                _ = stop.requested() => return,
            }
        }
    }));
    Forwards { _stop: stop_owner }
}

/// The destinations the current config forwards `key` to (none when forward is off).
fn destinations(config: &crate::config::Config, key: &StreamKey) -> Vec<String> {
    match config.vhost.get(&key.vhost) {
        Some(v) if v.forward.enabled => v.forward.destination.clone(),
        _ => Vec::new(),
    }
}

/// Starts one forwarder of `source` to `dest`.
fn start(ctx: &Arc<Context>, source: &Arc<Source>, param: &str, dest: &str) -> Option<Forwarder> {
    let key = &source.key;
    let up_vhost = edge::upstream_vhost(key, None);
    let query = edge::upstream_query(param, up_vhost);
    let url = match edge::upstream_url(dest, up_vhost, &key.app, &key.stream, &query) {
        Ok(u) => u,
        Err(e) => {
            log::error!("forward {key}: bad destination {dest:?}: {e}");
            return None;
        }
    };
    let consumer = source.subscribe(QueueLimits::default(), TimeJitter::Off);
    let cid = crate::app::runtime::log::next_cid();
    log::info!("forward {key} -> {url} (forwarder cid {cid})");
    let label = format!("forward {key} -> {dest}");
    let (owner, stop) = stop_pair();
    ctx.links.spawn(crate::app::runtime::log::with_cid(
        cid,
        forward_stream(ctx.clone(), consumer, label, vec![url], None, stop),
    ));
    Some(Forwarder(owner))
}

/// Metadata and sequence headers seen on the stream, re-sent after every reconnect.
#[derive(Default)]
struct Headers {
    metadata: Option<Arc<Frame>>,
    video_sh: Option<Arc<Frame>>,
    audio_sh: Option<Arc<Frame>>,
    has_video: bool,
    /// The last dts seen: cached headers are re-sent at "now", not at their old time.
    last_dts: i64,
}

impl Headers {
    fn note(&mut self, f: &Arc<Frame>) {
        self.last_dts = self.last_dts.max(f.dts);
        if f.is_video() {
            self.has_video = true;
        }
        if f.flags.metadata {
            self.metadata = Some(f.clone());
        } else if f.flags.seq_header && f.is_video() {
            self.video_sh = Some(f.clone());
        } else if f.flags.seq_header && f.is_audio() {
            self.audio_sh = Some(f.clone());
        }
    }

    fn all(&self) -> impl Iterator<Item = &Arc<Frame>> {
        [&self.metadata, &self.video_sh, &self.audio_sh]
            .into_iter()
            .flatten()
    }
}

/// An open upstream publish and whether it still waits for a keyframe.
struct Upstream {
    client: RtmpClient,
    url: String,
    waiting_keyframe: bool,
}

/// Publishes what `consumer` receives to `upstreams` (tried in order, cycling), reconnecting
/// with backoff, until the local stream is unpublished, `stop` is requested or the server
/// shuts down; each way ends with a polite unpublish of the open upstream session. `link`,
/// when given, shows the state in the edge registry (edge push).
pub(crate) async fn forward_stream(
    ctx: Arc<Context>,
    consumer: Consumer,
    label: String,
    upstreams: Vec<RtmpUrl>,
    link: Option<Arc<Link>>,
    mut stop: StopSignal,
) {
    if upstreams.is_empty() {
        return;
    }
    let mut shutdown = ctx.shutdown.clone();
    let mut headers = Headers::default();
    let mut up: Option<Upstream> = None;
    let mut backoff = Backoff::default();
    let mut idx = 0usize;
    let mut attempt = 0u64;
    let mut next_attempt = Instant::now();
    let mut items: Vec<Item> = Vec::with_capacity(64);
    // A forward (not an edge push, which shows in the edge registry) shows its state and
    // errors in the API (`forward` of the stream) and /metrics.
    let registered = link.is_none().then(|| {
        let target = upstreams
            .iter()
            .map(|u| u.to_string())
            .collect::<Vec<_>>()
            .join(" ");
        ctx.outputs.register(
            &consumer.source().key,
            Output::Forward,
            target,
            "connecting",
        )
    });
    let status = registered.as_ref().map(|r| r.status.clone());
    let set_state = |url: &RtmpUrl, s: LinkState| {
        if let Some(l) = &link {
            l.set(url.to_string(), s);
        }
        if let Some(st) = &status {
            st.set_state(match s {
                LinkState::Connecting => "connecting",
                LinkState::Active => "forwarding",
                LinkState::Retrying => "retrying",
            });
        }
    };
    let failed = |e: &ClientError| {
        if let Some(st) = &status {
            st.fail(client_reason(e), e, "retrying");
        }
    };
    loop {
        if *shutdown.borrow() {
            break;
        }
        if up.is_none() && Instant::now() >= next_attempt {
            let url = &upstreams[idx];
            attempt += 1;
            set_state(url, LinkState::Connecting);
            log::info!("{label}: connecting to {url} (attempt {attempt})");
            match open(url, &headers).await {
                Ok(client) => {
                    log::info!("{label}: publishing to {url}");
                    set_state(url, LinkState::Active);
                    up = Some(Upstream {
                        client,
                        url: url.to_string(),
                        waiting_keyframe: true,
                    });
                }
                Err(e) => {
                    failed(&e);
                    let wait = backoff.next_delay();
                    log::warn!(
                        "{label}: {url}: {e}; next attempt in {} ms",
                        wait.as_millis()
                    );
                    set_state(url, LinkState::Retrying);
                    idx = (idx + 1) % upstreams.len();
                    next_attempt = Instant::now() + wait;
                }
            }
        }
        // Wait for media; while disconnected, also for the next attempt.
        tokio::select! {
            _ = consumer.recv(&mut items, BATCH_BYTES) => {}
            _ = tokio::time::sleep_until(next_attempt), if up.is_none() => {}
            _ = shutdown.changed() => break,
            _ = stop.requested() => {
                log::info!("{label}: stopped");
                break;
            }
        }
        if let Some(st) = &status {
            st.set_dropped(consumer.dropped() as usize);
        }
        for item in items.drain(..) {
            let f = match item {
                Item::Frame(f) => f,
                Item::Unpublished => {
                    log::info!("{label}: the local stream was unpublished; forwarder ends");
                    if let Some(u) = up.take() {
                        u.client.close().await;
                    }
                    return;
                }
                // A new publish session: its headers replace the old ones as they come.
                Item::Published => {
                    headers = Headers::default();
                    continue;
                }
            };
            headers.note(&f);
            let Some(u) = up.as_mut() else { continue };
            if let Err(e) = send_frame(u, &f, &headers).await {
                failed(&e);
                let wait = backoff.next_delay();
                log::warn!(
                    "{label}: {}: {e}; reconnecting in {} ms",
                    u.url,
                    wait.as_millis()
                );
                set_state(&upstreams[idx], LinkState::Retrying);
                up = None;
                idx = (idx + 1) % upstreams.len();
                next_attempt = Instant::now() + wait;
            } else if !u.waiting_keyframe {
                backoff.reset();
            }
        }
    }
    if let Some(u) = up.take() {
        u.client.close().await;
    }
}

/// The `/metrics` reason of a forward failure.
fn client_reason(e: &ClientError) -> Reason {
    match e {
        ClientError::Io(e) => Reason::of_io(e),
        ClientError::Rejected { .. } | ClientError::Url(_) => Reason::Refused,
        ClientError::Timeout(_) => Reason::Timeout,
        ClientError::Closed | ClientError::Handshake(_) | ClientError::Session(_) => Reason::Closed,
        ClientError::Flv(_) => Reason::Io,
    }
}

/// Connects, publishes, and sends the remembered metadata and sequence headers.
async fn open(url: &RtmpUrl, headers: &Headers) -> Result<RtmpClient, ClientError> {
    let mut c = RtmpClient::connect_with(
        url,
        edge::connect_object(url, "", ""),
        edge::identity(),
        CONNECT_TIMEOUT,
    )
    .await?;
    c.publish(&url.stream, CONNECT_TIMEOUT).await?;
    let ts = headers.last_dts as u32;
    for f in headers.all() {
        timed_send(&mut c, f, ts).await?;
    }
    Ok(c)
}

/// Sends one frame, unless the upstream still waits for a keyframe and this is not one.
async fn send_frame(u: &mut Upstream, f: &Arc<Frame>, h: &Headers) -> Result<(), ClientError> {
    let header = f.flags.metadata || f.flags.seq_header;
    if !header && u.waiting_keyframe {
        let resumes = if h.has_video {
            f.is_video() && f.flags.keyframe
        } else {
            true
        };
        if !resumes {
            return Ok(());
        }
        u.waiting_keyframe = false;
    }
    // The source's repaired timeline: monotonic across the local publisher's hiccups.
    timed_send(&mut u.client, f, f.dts as u32).await
}

async fn timed_send(c: &mut RtmpClient, f: &Frame, ts: u32) -> Result<(), ClientError> {
    tokio::time::timeout(SEND_TIMEOUT, c.send(f.kind, ts, f.payload.clone()))
        .await
        .unwrap_or(Err(ClientError::Timeout("upstream send")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::default();
        let got: Vec<u128> = (0..7).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(got, [200, 400, 800, 1600, 3000, 3000, 3000]);
        b.reset();
        assert_eq!(b.next_delay(), BACKOFF_MIN);
    }
}
