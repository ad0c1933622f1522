//! Edge (`[vhost.X.cluster] mode = "remote"`): pull on play, push on publish, token
//! traverse, and the registry that shows each edge stream's upstream to the API.
//!
//! Pull: the first player of a stream makes [`ensure_pull`] take the local source's publisher
//! slot and spawn one pull task; every later player shares it (the hub serves metadata,
//! sequence headers and the GOP cache locally). The task plays the stream from the origins in
//! order, cycling on failure (refused, reset, upstream unpublished, no data for
//! [`NO_DATA_TIMEOUT`]) with the capped [`Backoff`] shared with forward. It keeps ONE
//! [`Publisher`] across upstream reconnects, so players never see an unpublish during a
//! failover; the source's timeline repair collapses the new upstream's timestamp jump, so
//! players' timestamps stay monotonic. When no player is left for [`PULL_GRACE`], the pull
//! stops (a player that reconnects at once does not restart it).
//!
//! Push: a publish on an edge is forwarded to the origins by the forwarder of
//! [`crate::app::cluster::forward`] for as long as the local publisher stays.
//!
//! Lock order: the registry lock may be held while taking a source's or the hub's lock (to
//! publish or unpublish atomically with the registry entry), never the other way round.

use crate::app::cluster::forward::{self, Backoff, CONNECT_TIMEOUT};
use crate::app::shared::Context;
use crate::client::{ClientError, ClientEvent, RtmpClient, RtmpUrl, DEFAULT_PORT};
use crate::config::{ClusterMode, VhostConfig, DEFAULT_VHOST};
use crate::hub::{Publisher, QueueLimits, Source, StreamKey, TimeJitter};
use crate::protocol::amf0::Amf0Value;
use crate::protocol::rtmp::command::{status, ConnectRequest};
use crate::protocol::rtmp::session::ClientSession;
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use tokio::time::Instant;

/// How long a pull outlives its last player. A constant (SRS has no key for it): long enough
/// for a player that reconnects at once, short enough not to waste the uplink.
pub const PULL_GRACE: Duration = Duration::from_secs(3);
/// An upstream that sends nothing for this long is given up for the next origin.
pub const NO_DATA_TIMEOUT: Duration = Duration::from_secs(5);
/// How often a pull waiting to retry checks whether its players left.
const STOP_CHECK: Duration = Duration::from_millis(250);

/// Which way an edge stream flows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// Played on the edge, pulled from an origin.
    Pull,
    /// Published on the edge, pushed to an origin.
    Push,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Connecting to `upstream`.
    Connecting,
    /// Media flows with `upstream`.
    Active,
    /// `upstream` failed; waiting to try the next origin.
    Retrying,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Connecting => "connecting",
            LinkState::Active => "active",
            LinkState::Retrying => "retrying",
        }
    }
}

/// What the API shows about one edge stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeInfo {
    pub direction: Direction,
    /// The upstream URL tried last (`rtmp://origin:port/app[?query]/stream`).
    pub upstream: String,
    pub state: LinkState,
}

/// One edge stream's link to its upstream, shared by its task and the registry.
pub struct Link {
    /// Tells this link from a later one of the same stream.
    id: usize,
    info: Mutex<EdgeInfo>,
}

impl Link {
    pub(crate) fn set(&self, upstream: String, state: LinkState) {
        let mut i = lock(&self.info);
        i.upstream = upstream;
        i.state = state;
    }

    pub(crate) fn set_state(&self, state: LinkState) {
        lock(&self.info).state = state;
    }

    pub fn info(&self) -> EdgeInfo {
        lock(&self.info).clone()
    }
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The edge streams of this server: one [`Link`] per stream pulled or pushed.
#[derive(Default)]
pub struct Edges {
    links: Mutex<HashMap<StreamKey, Arc<Link>>>,
    next_id: AtomicUsize,
}

impl Edges {
    /// The edge state of `key`, if it is an edge stream now.
    pub fn get(&self, key: &StreamKey) -> Option<EdgeInfo> {
        lock(&self.links).get(key).map(|l| l.info())
    }

    /// Every edge stream, sorted by key.
    pub fn list(&self) -> Vec<(StreamKey, EdgeInfo)> {
        let mut v: Vec<_> = lock(&self.links)
            .iter()
            .map(|(k, l)| (k.clone(), l.info()))
            .collect();
        v.sort_by(|a, b| a.0.cmp(&b.0));
        v
    }

    fn new_link(&self, direction: Direction, upstream: String) -> Arc<Link> {
        Arc::new(Link {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            info: Mutex::new(EdgeInfo {
                direction,
                upstream,
                state: LinkState::Connecting,
            }),
        })
    }

    fn remove(&self, key: &StreamKey, link: &Link) {
        let mut m = lock(&self.links);
        if m.get(key).is_some_and(|l| l.id == link.id) {
            m.remove(key);
        }
    }
}

fn is_edge(vhost: &VhostConfig) -> bool {
    vhost.cluster.mode == ClusterMode::Remote && !vhost.cluster.origin.is_empty()
}

/// Splits `"host[:port]"` (IPv6 as `[::1]:port`).
fn split_origin(origin: &str) -> Result<(String, u16), ClientError> {
    let bad = || ClientError::Url(format!("bad origin {origin:?}: want host[:port]"));
    let (host, port) = if let Some(v6) = origin.strip_prefix('[') {
        let (h, rest) = v6.split_once(']').ok_or_else(bad)?;
        match rest.strip_prefix(':') {
            Some(p) => (h, Some(p)),
            None if rest.is_empty() => (h, None),
            None => return Err(bad()),
        }
    } else {
        match origin.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (origin, None),
        }
    };
    let port = match port {
        None => DEFAULT_PORT,
        Some(p) => p.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(bad)?,
    };
    if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '/') {
        return Err(bad());
    }
    Ok((host.to_string(), port))
}

/// The vhost to name upstream: `cluster.vhost` when set, else this stream's own vhost unless
/// it is the default one (an origin resolves its default vhost by itself).
pub(crate) fn upstream_vhost<'a>(key: &'a StreamKey, over: Option<&'a str>) -> Option<&'a str> {
    over.or((key.vhost != DEFAULT_VHOST).then_some(key.vhost.as_str()))
}

/// The upstream query: the client's `param` (leading `?` optional) without its own
/// `vhost`/`domain`, with `vhost=` first when one is named. Empty or starting with `?`.
pub(crate) fn upstream_query(param: &str, vhost: Option<&str>) -> String {
    let mut items: Vec<String> = vhost.map(|v| format!("vhost={v}")).into_iter().collect();
    items.extend(
        param
            .trim_start_matches('?')
            .split('&')
            .filter(|kv| !kv.is_empty() && !kv.starts_with("vhost=") && !kv.starts_with("domain="))
            .map(str::to_string),
    );
    if items.is_empty() {
        String::new()
    } else {
        format!("?{}", items.join("&"))
    }
}

/// An upstream URL as SRS's edge builds one (`srs_generate_rtmp_url`,
/// `srs_generate_tc_url`): the TCP peer is `origin`; the tcUrl is bare,
/// `rtmp://VHOST:PORT/app` with the upstream vhost as its host when one is named (an origin
/// resolves the vhost from it at connect) else the origin's host; the query rides on the
/// stream name (`s?vhost=v&token=t`).
///
/// Never a query in the tcUrl: an SRS 6 origin parses the tcUrl at connect, keeps that query
/// as the request's param, then parses tcUrl + stream name + param again at publish/play, so
/// a query in both places reached its hooks twice (`?token=good?token=good`).
pub(crate) fn upstream_url(
    origin: &str,
    vhost: Option<&str>,
    app: &str,
    stream: &str,
    query: &str,
) -> Result<RtmpUrl, ClientError> {
    let (host, port) = split_origin(origin)?;
    let host_part = match vhost {
        Some(v) => v.to_string(),
        None if host.contains(':') => format!("[{host}]"),
        None => host.clone(),
    };
    Ok(RtmpUrl {
        tc_url: format!("rtmp://{host_part}:{port}/{app}"),
        host,
        port,
        app: app.to_string(),
        stream: format!("{stream}{query}"),
    })
}

/// The connect command object for an upstream, with the client's pageUrl/swfUrl when known.
pub(crate) fn connect_object(
    url: &RtmpUrl,
    page_url: &str,
    swf_url: &str,
) -> Vec<(String, Amf0Value)> {
    let mut o = ClientSession::connect_object(&url.app, &url.tc_url);
    for (k, v) in [("pageUrl", page_url), ("swfUrl", swf_url)] {
        if !v.is_empty() {
            o.push((k.to_string(), Amf0Value::string(v)));
        }
    }
    o
}

/// The extra connect argument that tells an origin this client is an srsd edge (SRS's edge
/// sends the same `srs_*` fields; nginx-rtmp ignores extra arguments).
pub(crate) fn identity() -> Vec<Amf0Value> {
    vec![Amf0Value::Object(vec![
        (
            "srs_server".into(),
            Amf0Value::string(format!("srsd/{}", crate::VERSION)),
        ),
        ("srs_version".into(), Amf0Value::string(crate::VERSION)),
        (
            "srs_pid".into(),
            Amf0Value::Number(std::process::id() as f64),
        ),
        (
            "srs_id".into(),
            Amf0Value::Number(crate::app::runtime::log::current_cid() as f64),
        ),
    ])]
}

/// Token traverse: asks the first reachable origin whether it would take this client, before
/// the edge serves it. The edge connects as it would for a pull (the client's pageUrl,
/// swfUrl and connect arguments; a bare tcUrl) and plays `key` with the client's `param`
/// on the stream name, then closes as soon as the origin answers. An origin that refuses
/// (connect or play rejected) makes the edge refuse the client; one that cannot be reached
/// is skipped for the next.
///
/// SRS 6's traverse sends only `connect`, which its own origins answer before any check
/// (they run on_connect once a stream is named), so it verifies nothing against SRS 6 or
/// srsd origins; the play makes the origin run its on_connect and on_play gates with the
/// client's token, once per edge client.
pub async fn token_traverse(
    vhost: &VhostConfig,
    key: &StreamKey,
    connect: &ConnectRequest,
    param: &str,
) -> Result<(), String> {
    let up_vhost = upstream_vhost(key, vhost.cluster.vhost.as_deref());
    let query = upstream_query(param, up_vhost);
    for origin in &vhost.cluster.origin {
        let url = upstream_url(origin, up_vhost, &key.app, &key.stream, &query)
            .map_err(|e| e.to_string())?;
        let refused = |code: String, description: String| {
            format!("token traverse: origin {origin} refused {url}: {code} ({description})")
        };
        let mut c = match RtmpClient::connect_with(
            &url,
            connect_object(&url, &connect.page_url, &connect.swf_url),
            connect.extra_args.clone(),
            CONNECT_TIMEOUT,
        )
        .await
        {
            Ok(c) => c,
            Err(ClientError::Rejected { code, description }) => {
                return Err(refused(code, description))
            }
            Err(e) => {
                log::warn!("token traverse: origin {origin}: {e}; trying the next");
                continue;
            }
        };
        let played = c.play(&url.stream, CONNECT_TIMEOUT).await;
        c.close().await;
        match played {
            Ok(()) => {
                log::info!("token traverse: origin {origin} accepted {url}");
                return Ok(());
            }
            Err(ClientError::Rejected { code, description }) => {
                return Err(refused(code, description))
            }
            Err(e) => log::warn!("token traverse: origin {origin}: {e}; trying the next"),
        }
    }
    Err("token traverse: no origin reachable".into())
}

/// What a pull needs to know to connect upstream.
struct PullPlan {
    origins: Vec<String>,
    /// The vhost to name upstream, if any (the tcUrl's host).
    vhost: Option<String>,
    /// The query for the stream name, `?...` or empty.
    query: String,
    page_url: String,
    swf_url: String,
}

/// Called on every play on an edge vhost, after the player subscribed: starts the stream's
/// pull unless one runs or a local publisher holds the stream. `param`, `page_url` and `swf_url`
/// are the player's (the first player's query and pageUrl go upstream, as SRS does, so an origin's
/// hooks see its token).
pub fn ensure_pull(
    ctx: &Arc<Context>,
    vhost: &VhostConfig,
    source: &Arc<Source>,
    param: &str,
    page_url: &str,
    swf_url: &str,
) {
    if !is_edge(vhost) {
        return;
    }
    let key = &source.key;
    let mut links = lock(&ctx.edges.links);
    if links.contains_key(key) {
        return;
    }
    let cid = crate::app::runtime::log::next_cid();
    let publisher = match source.publish(cid as u32) {
        Ok(p) => p,
        // A client publishes it on this edge: players get it from there.
        Err(_) => return,
    };
    let link = ctx.edges.new_link(Direction::Pull, String::new());
    links.insert(key.clone(), link.clone());
    drop(links);
    let plan = PullPlan {
        origins: vhost.cluster.origin.clone(),
        vhost: upstream_vhost(key, vhost.cluster.vhost.as_deref()).map(str::to_string),
        query: upstream_query(param, upstream_vhost(key, vhost.cluster.vhost.as_deref())),
        page_url: page_url.to_string(),
        swf_url: swf_url.to_string(),
    };
    log::info!("edge pull {key}: started (pull cid {cid})");
    ctx.links.spawn(crate::app::runtime::log::with_cid(
        cid,
        pull(ctx.clone(), publisher, link, plan),
    ));
}

/// How one upstream session ended.
enum Outcome {
    /// No player left for the grace period (or shutdown): the pull ends.
    Stop,
    Failed {
        why: String,
        got_media: bool,
    },
}

/// Tracks how long the source has had no player.
struct Idle {
    since: Option<Instant>,
}

impl Idle {
    fn expired(&mut self, source: &Source, ctx: &Context) -> bool {
        if *ctx.shutdown.borrow() {
            return true;
        }
        if source.consumer_count() > 0 {
            self.since = None;
            return false;
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        since.elapsed() >= PULL_GRACE
    }
}

async fn pull(ctx: Arc<Context>, publisher: Publisher, link: Arc<Link>, plan: PullPlan) {
    let source = publisher.source().clone();
    let key = source.key.clone();
    let mut publisher = Some(publisher);
    let mut idle = Idle { since: None };
    let mut backoff = Backoff::default();
    let mut idx = 0usize;
    let mut attempt = 0u64;
    'outer: loop {
        if idle.expired(&source, &ctx) && stop(&ctx, &key, &link, &mut publisher) {
            break;
        }
        let origin = &plan.origins[idx];
        idx = (idx + 1) % plan.origins.len();
        attempt += 1;
        let outcome = match upstream_url(
            origin,
            plan.vhost.as_deref(),
            &key.app,
            &key.stream,
            &plan.query,
        ) {
            Ok(url) => {
                link.set(url.to_string(), LinkState::Connecting);
                log::info!("edge pull {key}: connecting to {url} (attempt {attempt})");
                let Some(p) = publisher.as_ref() else { break };
                pull_once(&ctx, p, &url, &plan, &link, &mut idle).await
            }
            Err(e) => Outcome::Failed {
                why: e.to_string(),
                got_media: false,
            },
        };
        match outcome {
            Outcome::Stop => {
                if stop(&ctx, &key, &link, &mut publisher) {
                    break;
                }
                continue;
            }
            Outcome::Failed { why, got_media } => {
                if got_media {
                    backoff.reset();
                }
                let wait = backoff.next_delay();
                log::warn!(
                    "edge pull {key}: origin {origin}: {why}; next origin in {} ms",
                    wait.as_millis()
                );
                link.set_state(LinkState::Retrying);
                let until = Instant::now() + wait;
                while Instant::now() < until {
                    if idle.expired(&source, &ctx) && stop(&ctx, &key, &link, &mut publisher) {
                        break 'outer;
                    }
                    tokio::time::sleep(STOP_CHECK.min(until - Instant::now())).await;
                }
            }
        }
    }
    log::info!("edge pull {key}: stopped (no player for {PULL_GRACE:?})");
}

/// Ends the pull unless a player came back: under the registry lock, so a player's
/// [`ensure_pull`] either sees this pull running or finds the slot free and starts another.
/// Drops the publisher under the lock too, so that new pull can take the slot at once.
fn stop(ctx: &Context, key: &StreamKey, link: &Link, publisher: &mut Option<Publisher>) -> bool {
    let mut links = lock(&ctx.edges.links);
    let back = publisher
        .as_ref()
        .is_some_and(|p| p.source().consumer_count() > 0);
    if back && !*ctx.shutdown.borrow() {
        return false;
    }
    if links.get(key).is_some_and(|l| l.id == link.id) {
        links.remove(key);
    }
    publisher.take();
    true
}

/// One upstream session: connect, play, push every frame into the local source.
async fn pull_once(
    ctx: &Context,
    publisher: &Publisher,
    url: &RtmpUrl,
    plan: &PullPlan,
    link: &Link,
    idle: &mut Idle,
) -> Outcome {
    let failed = |why: String, got_media: bool| Outcome::Failed { why, got_media };
    let mut c = match RtmpClient::connect_with(
        url,
        connect_object(url, &plan.page_url, &plan.swf_url),
        identity(),
        CONNECT_TIMEOUT,
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return failed(e.to_string(), false),
    };
    if let Err(e) = c.play(&url.stream, CONNECT_TIMEOUT).await {
        return failed(e.to_string(), false);
    }
    link.set(url.to_string(), LinkState::Active);
    log::info!("edge pull {}: playing {url}", publisher.source().key);
    let source = publisher.source();
    let mut got_media = false;
    loop {
        if idle.expired(source, ctx) {
            c.close().await;
            return Outcome::Stop;
        }
        // Not cancelled for the stop check (a cancelled read could cut an acknowledgement
        // short): a flowing stream checks on every frame, a silent one within the timeout.
        let ev = match tokio::time::timeout(NO_DATA_TIMEOUT, c.next_event()).await {
            Ok(Ok(ev)) => ev,
            Ok(Err(e)) => return failed(e.to_string(), got_media),
            Err(_) => {
                return failed(
                    format!("no data for {} s", NO_DATA_TIMEOUT.as_secs()),
                    got_media,
                )
            }
        };
        match ev {
            ClientEvent::Media {
                kind,
                timestamp,
                payload,
            } => {
                publisher.push(kind, timestamp, payload);
                got_media = true;
            }
            ClientEvent::Status { code, .. } if code == status::PLAY_UNPUBLISH_NOTIFY => {
                return failed("upstream unpublished".into(), got_media);
            }
            ClientEvent::Status { level, code, .. } if level == "error" => {
                return failed(format!("upstream error {code}"), got_media);
            }
            _ => {}
        }
    }
}

/// Called on publish on an edge vhost: forwards the local stream to the origins (tried in
/// order, cycling with backoff) until the local publisher leaves.
pub fn push(ctx: &Arc<Context>, vhost: &VhostConfig, source: &Arc<Source>, param: &str) {
    if !is_edge(vhost) {
        return;
    }
    let key = &source.key;
    let up_vhost = upstream_vhost(key, vhost.cluster.vhost.as_deref());
    let query = upstream_query(param, up_vhost);
    let urls: Vec<RtmpUrl> = vhost
        .cluster
        .origin
        .iter()
        .filter_map(
            |o| match upstream_url(o, up_vhost, &key.app, &key.stream, &query) {
                Ok(u) => Some(u),
                Err(e) => {
                    log::error!("edge push {key}: {e}");
                    None
                }
            },
        )
        .collect();
    let Some(first) = urls.first() else { return };
    let link = ctx.edges.new_link(Direction::Push, first.to_string());
    lock(&ctx.edges.links).insert(key.clone(), link.clone());
    let consumer = source.subscribe(QueueLimits::default(), TimeJitter::Off);
    let cid = crate::app::runtime::log::next_cid();
    log::info!("edge push {key}: started (push cid {cid})");
    let ctx2 = ctx.clone();
    let key = key.clone();
    ctx.links
        .spawn(crate::app::runtime::log::with_cid(cid, async move {
            let label = format!("edge push {key}");
            // Ends with the local stream (unpublish) or the server: never stopped from outside.
            let (_never, stop) = crate::app::runtime::tasks::stop_pair();
            forward::forward_stream(
                ctx2.clone(),
                consumer,
                label,
                urls,
                Some(link.clone()),
                stop,
            )
            .await;
            ctx2.edges.remove(&key, &link);
        }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_origins() {
        assert_eq!(
            split_origin("127.0.0.1:19350").unwrap(),
            ("127.0.0.1".into(), 19350)
        );
        assert_eq!(
            split_origin("o.example").unwrap(),
            ("o.example".into(), 1935)
        );
        assert_eq!(split_origin("[::1]:1936").unwrap(), ("::1".into(), 1936));
        assert_eq!(split_origin("[::1]").unwrap(), ("::1".into(), 1935));
        for bad in ["", ":1935", "h:0", "h:x", "[::1", "[::1]x", "h/x:1"] {
            assert!(split_origin(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn upstream_query_names_the_vhost_first_and_keeps_the_rest() {
        assert_eq!(upstream_query("", None), "");
        assert_eq!(upstream_query("?token=a", None), "?token=a");
        assert_eq!(
            upstream_query("?vhost=old&token=a&domain=d", Some("v.example")),
            "?vhost=v.example&token=a"
        );
    }

    #[test]
    fn upstream_url_puts_the_query_on_the_stream_and_the_vhost_in_the_tc_url() {
        let u = upstream_url("127.0.0.1:1936", Some("v"), "live", "s", "?vhost=v&t=1").unwrap();
        assert_eq!(u.tc_url, "rtmp://v:1936/live");
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 1936));
        assert_eq!(u.app, "live");
        assert_eq!(u.stream, "s?vhost=v&t=1");
        let u = upstream_url("[::1]:1937", None, "a/b", "s", "").unwrap();
        assert_eq!(u.tc_url, "rtmp://[::1]:1937/a/b");
        assert_eq!(u.stream, "s");
        let key = StreamKey::new(DEFAULT_VHOST, "live", "s");
        assert_eq!(upstream_vhost(&key, None), None);
        assert_eq!(upstream_vhost(&key, Some("o")), Some("o"));
        let key = StreamKey::new("e.example", "live", "s");
        assert_eq!(upstream_vhost(&key, None), Some("e.example"));
    }
}
