//! HLS viewers as clients, as SRS 6 does with `hls_ctx`: a player's first playlist request
//! runs the play checks (refer, security, `on_play`) and is answered 200 with a one-variant
//! master playlist naming the same playlist with `?hls_ctx=ID` ([`master_playlist`]); the
//! media playlist served for that ID names its segments with the same ID, so every request of
//! the viewer refreshes it. A viewer that has asked for nothing for twice the HLS `window` is
//! gone: its `on_stop` is sent and it leaves `/api/v1/clients`.
//!
//! Not a redirect (srsd once answered 302): `curl` and players that do not follow redirects
//! got nothing, and Chromium's native player re-requests the *original* URL on every refresh
//! after a redirect, so each refresh was a new viewer with its own `on_play`. A player reloads
//! the variant URL of a master playlist, which carries its ID.
//!
//! A request with an `hls_ctx` the server does not know (the viewer expired, the server
//! restarted) is admitted under that ID, as SRS does, and gets the media playlist: its player
//! keeps refreshing that URL, which then finds the viewer again.
//!
//! Only playlists that exist are tracked (a 404 stays a 404, with no hook), and the number of
//! tracked viewers is capped by `max_connections`, so a request flood cannot grow the table.

use super::live::{refused, request_host, viewer_tc_url};
use super::{cors, Conn};
use crate::app::runtime::body::Body;
use crate::app::runtime::stats::{ClientGuard, ClientType};
use crate::app::session;
use crate::app::shared::ClientRequest;
use crate::app::shared::Context;
use crate::config::DEFAULT_VHOST;
use crate::hub::StreamKey;
use hyper::header::{self, HeaderValue};
use hyper::{Request, Response, StatusCode};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The shortest time a viewer stays without a request, whatever the window.
const MIN_TIMEOUT: Duration = Duration::from_secs(2);

struct Viewer {
    key: StreamKey,
    /// The viewer's client id (its log lines' CID, `client_id` in hooks and the API).
    cid: u32,
    last: Instant,
    timeout: Duration,
    /// Sends `on_stop` when the viewer expires.
    _playing: session::Playing,
    /// Keeps the viewer in the client registry.
    _client: ClientGuard,
}

/// The HLS viewers of a server, by `hls_ctx`.
#[derive(Default)]
pub struct HlsViewers {
    map: Mutex<HashMap<String, Viewer>>,
}

impl HlsViewers {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Viewer>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Refreshes a known viewer; false when `id` is unknown.
    fn touch(&self, id: &str) -> bool {
        match self.lock().get_mut(id) {
            Some(v) => {
                v.last = Instant::now();
                true
            }
            None => false,
        }
    }

    /// Drops the viewers silent for longer than their timeout (their guards send `on_stop`);
    /// each is logged with how long it was silent.
    pub fn expire(&self, now: Instant) {
        self.drop_where(
            |v| now.duration_since(v.last) > v.timeout,
            |v| format!("no request for {}s", now.duration_since(v.last).as_secs()),
        );
    }

    /// Drops every viewer (server shutdown; their guards send `on_stop`).
    pub fn close_all(&self) {
        self.drop_where(|_| true, |_| "server shutdown".to_string());
    }

    fn drop_where(&self, gone: impl Fn(&Viewer) -> bool, why: impl Fn(&Viewer) -> String) {
        let gone: Vec<(String, Viewer)> = {
            let mut m = self.lock();
            let ids: Vec<String> = m
                .iter()
                .filter(|(_, v)| gone(v))
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| m.remove(&id).map(|v| (id, v)))
                .collect()
        };
        for (id, v) in gone {
            // Under the viewer's CID: its line and its on_stop go with the rest of its log.
            crate::app::runtime::log::CID.sync_scope(u64::from(v.cid), || {
                ::log::info!(
                    "HLS viewer {id} of {} left (client {}, {})",
                    v.key,
                    v.cid,
                    why(&v)
                );
                drop(v);
            });
        }
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The value of `hls_ctx` in a query, if it is one we could have made.
fn ctx_param(query: Option<&str>) -> Option<&str> {
    query?
        .split('&')
        .find_map(|kv| kv.strip_prefix("hls_ctx="))
        .filter(|id| {
            !id.is_empty() && id.len() <= 32 && id.bytes().all(|b| b.is_ascii_alphanumeric())
        })
}

/// The query without its `hls_ctx`, with its leading `?` (the `param` of the hooks).
fn param_without_ctx(query: Option<&str>) -> String {
    let kept: Vec<&str> = query
        .unwrap_or("")
        .split('&')
        .filter(|kv| !kv.is_empty() && !kv.starts_with("hls_ctx="))
        .collect();
    if kept.is_empty() {
        String::new()
    } else {
        format!("?{}", kept.join("&"))
    }
}

/// A playlist whose segment (and sub-playlist) URIs carry `hls_ctx=ID`.
pub fn with_ctx(m3u8: &str, id: &str) -> String {
    let mut out = String::with_capacity(m3u8.len() + 64);
    for line in m3u8.lines() {
        out.push_str(line);
        let uri = line.trim();
        if !uri.is_empty() && !uri.starts_with('#') {
            out.push(if uri.contains('?') { '&' } else { '?' });
            out.push_str("hls_ctx=");
            out.push_str(id);
        }
        out.push('\n');
    }
    out
}

fn new_id(ctx: &Context) -> String {
    // Unique per server (cid) and not guessable from the cid alone (time mixed in).
    let n = crate::app::runtime::log::next_cid();
    let t = crate::app::runtime::log::now_unix_ms() ^ ctx.started.elapsed().as_nanos() as u64;
    format!(
        "{:x}{:08x}",
        n,
        (t.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as u32
    )
}

/// Handles a `.m3u8` or `.ts` request of an HLS vhost; `None` lets the static files answer.
pub async fn handle(conn: &Conn, req: &Request<hyper::body::Incoming>) -> Option<Response<Body>> {
    let path = req.uri().path();
    let query = req.uri().query();
    if path.ends_with(".ts") {
        // A segment: it refreshes its viewer; the file itself is served as a static file.
        if let Some(id) = ctx_param(query) {
            conn.ctx.hls_viewers.touch(id);
        }
        return None;
    }
    let stem = path.strip_suffix(".m3u8")?;
    let config = conn.ctx.config();
    let host = request_host(req);
    let vhost_name = if config.vhost.contains_key(&host) {
        host.clone()
    } else {
        DEFAULT_VHOST.to_string()
    };
    let v = config.vhost.get(&vhost_name)?;
    if !v.enabled || !v.hls.enabled || !v.hls.ctx {
        return None;
    }
    let rel = super::static_files::relative_path(path).ok()?;
    let file = std::path::Path::new(&config.http_server.dir).join(&rel);
    // The playlist as HLS wrote it: in memory (`storage = "memory"`) or a file.
    let in_memory = conn.ctx.hls_memory.get(&file);
    if in_memory.is_none() && !file.is_file() {
        return None;
    }
    let (app, stream) = stem.trim_start_matches('/').rsplit_once('/')?;
    let key = StreamKey::new(&vhost_name, app, stream);
    let given = ctx_param(query);
    let known = given.filter(|id| conn.ctx.hls_viewers.touch(id));
    let id = match known {
        Some(id) => id.to_string(),
        None => {
            let timeout = (2 * v.hls.window.get()).max(MIN_TIMEOUT);
            match admit(conn, req, v, &key, timeout, given).await {
                Ok(id) => id,
                Err(resp) => return Some(resp),
            }
        }
    };
    if given.is_none() {
        // First request: the viewer's own playlist URL in a master playlist, as SRS 6.
        let name = path.rsplit('/').next().unwrap_or_default();
        let body = master_playlist(name, &id, &param_without_ctx(query));
        return Some(playlist_response(req, body));
    }
    let text = match in_memory {
        Some(data) => String::from_utf8_lossy(&data).into_owned(),
        None => tokio::task::spawn_blocking(move || std::fs::read_to_string(file))
            .await
            .ok()?
            .ok()?,
    };
    Some(playlist_response(req, with_ctx(&text, &id)))
}

/// The master playlist of a new viewer (SRS 6's `SrsHlsStream::serve_new_session`): one
/// variant, the requested playlist `name` with `?hls_ctx=ID` and then the request's other
/// parameters (`param`, with its `?`, as the hooks get it):
///
/// ```text
/// #EXTM3U
/// #EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1
/// livestream.m3u8?hls_ctx=ID&token=1
/// ```
///
/// SRS writes the request's absolute path; srsd writes the file name, relative to the
/// master's own URL (RFC 8216 §4.1), which resolves to the same URL and still works behind a
/// reverse proxy that serves srsd under a path prefix.
pub fn master_playlist(name: &str, id: &str, param: &str) -> String {
    let mut uri = format!("{name}?hls_ctx={id}");
    if let Some(rest) = param.strip_prefix('?').filter(|r| !r.is_empty()) {
        uri.push('&');
        uri.push_str(rest);
    }
    // A name or parameter from the request line cannot hold CR/LF (hyper refuses them), and
    // the URI is one line whatever: a stray line break would be a new playlist line.
    let uri = uri.replace(['\r', '\n'], "");
    format!("#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1\n{uri}\n")
}

/// A 200 with a playlist: its type, no caching, CORS; no body for HEAD.
fn playlist_response(req: &Request<hyper::body::Incoming>, body: String) -> Response<Body> {
    let len = body.len();
    let mut r = Response::new(if req.method() == hyper::Method::HEAD {
        Body::empty()
    } else {
        Body::full(body)
    });
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.apple.mpegurl"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    cors(h);
    r
}

/// A new viewer: the play checks, then its entry (a client of type `hls-play`) under
/// `wanted` (an `hls_ctx` the request brought) or a new ID.
async fn admit(
    conn: &Conn,
    req: &Request<hyper::body::Incoming>,
    v: &crate::config::VhostConfig,
    key: &StreamKey,
    timeout: Duration,
    wanted: Option<&str>,
) -> Result<String, Response<Body>> {
    let ctx = &conn.ctx;
    if ctx.hls_viewers.len() >= ctx.config().max_connections as usize {
        ::log::warn!("refuse HLS viewer of {key}: max_connections viewers tracked");
        return Err(super::text(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many viewers\n",
        ));
    }
    let referer = req
        .headers()
        .get(header::REFERER)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let id = wanted.map_or_else(|| new_id(ctx), str::to_string);
    let cid = crate::app::runtime::log::next_cid() as u32;
    let who = ClientRequest {
        client_id: cid,
        ip: conn.peer.ip().to_string(),
        vhost: key.vhost.clone(),
        app: key.app.clone(),
        tc_url: viewer_tc_url(req, &key.app),
        page_url: referer.to_string(),
        stream: key.stream.clone(),
        param: param_without_ctx(req.uri().query()),
        stream_url: key.url(),
        stream_id: ctx
            .hub
            .find(key)
            .map(|s| s.id.to_string())
            .unwrap_or_default(),
        ..ClientRequest::default()
    };
    let playing = session::play_http(ctx, v, "HLS play", key, &who, conn.peer.ip())
        .await
        .map_err(|d| refused(d.http_status()))?;
    let client = ctx.stats.register(cid, who.ip.clone());
    client.stat.update(|i| {
        i.request = who.clone();
        i.kind = Some(ClientType::HlsPlay);
        i.key = Some(key.clone());
    });
    ::log::info!("HLS viewer {id} of {key} from {} (client {cid})", who.ip);
    let viewer = Viewer {
        key: key.clone(),
        cid,
        last: Instant::now(),
        timeout,
        _playing: playing,
        _client: client,
    };
    // Two first requests racing with the same unknown ID: the first entry stays, the other
    // is dropped (its guard sends the on_stop matching its on_play) outside the lock.
    let duplicate = match ctx.hls_viewers.lock().entry(id.clone()) {
        std::collections::hash_map::Entry::Occupied(_) => Some(viewer),
        std::collections::hash_map::Entry::Vacant(e) => {
            e.insert(viewer);
            None
        }
    };
    drop(duplicate);
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn playlists_carry_the_ctx_on_every_uri() {
        let m3u8 = "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:3\n#EXTINF:2.0,\ns-3.ts\n#EXTINF:2.0,\nseg/s-4.ts?k=v\n";
        assert_eq!(
            with_ctx(m3u8, "ab12"),
            "#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:3\n#EXTINF:2.0,\ns-3.ts?hls_ctx=ab12\n#EXTINF:2.0,\nseg/s-4.ts?k=v&hls_ctx=ab12\n"
        );
    }

    #[test]
    fn master_playlist_names_the_viewer_url() {
        assert_eq!(
            master_playlist("livestream.m3u8", "k3x9", ""),
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1\n\
             livestream.m3u8?hls_ctx=k3x9\n"
        );
        assert_eq!(
            master_playlist("s.m3u8", "a1", "?token=1&x=2"),
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1\n\
             s.m3u8?hls_ctx=a1&token=1&x=2\n"
        );
        assert!(!master_playlist("a\r\n#EXT-X-ENDLIST", "a1", "").contains("\n#EXT-X-ENDLIST"));
    }

    #[test]
    fn ctx_and_param_parsing() {
        assert_eq!(ctx_param(Some("a=1&hls_ctx=x9")), Some("x9"));
        assert_eq!(ctx_param(Some("hls_ctx=")), None);
        assert_eq!(
            ctx_param(Some("hls_ctx=../x")),
            None,
            "only ids we could have made"
        );
        assert_eq!(
            ctx_param(Some(&format!("hls_ctx={}", "a".repeat(33)))),
            None
        );
        assert_eq!(ctx_param(None), None);
        assert_eq!(param_without_ctx(Some("token=1&hls_ctx=x9")), "?token=1");
        assert_eq!(param_without_ctx(Some("hls_ctx=x9")), "");
        assert_eq!(param_without_ctx(None), "");
    }
}
