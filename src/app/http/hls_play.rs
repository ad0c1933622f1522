//! HLS viewers as clients, as SRS does with `hls_ctx`: a player's first playlist request runs
//! the play checks (refer, security, `on_play`) and is redirected to the same URL with
//! `?hls_ctx=ID`; the playlist served for that ID names its segments with the same ID, so
//! every request of the viewer refreshes it. A viewer that has asked for nothing for twice
//! the HLS `window` is gone: its `on_stop` is sent and it leaves `/api/v1/clients`.
//!
//! Only playlists that exist are tracked (a 404 stays a 404, with no hook), and the number of
//! tracked viewers is capped by `max_connections`, so a request flood cannot grow the table.

use super::body::Body;
use super::live::{forbidden, play_gate, request_host, viewer_tc_url};
use super::{cors, Conn};
use crate::app::hooks::{Guard, Who};
use crate::app::stats::{ClientGuard, ClientType};
use crate::app::Context;
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
    last: Instant,
    timeout: Duration,
    /// Sends `on_stop` when the viewer expires.
    _hook: Option<Guard>,
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

    /// Drops the viewers silent for longer than their timeout (their guards send `on_stop`).
    pub fn expire(&self, now: Instant) {
        let gone: Vec<Viewer> = {
            let mut m = self.lock();
            let ids: Vec<String> = m
                .iter()
                .filter(|(_, v)| now.duration_since(v.last) > v.timeout)
                .map(|(id, _)| id.clone())
                .collect();
            ids.iter().filter_map(|id| m.remove(id)).collect()
        };
        for v in gone {
            ::log::info!(
                "HLS viewer of {} left (no request for {:?})",
                v.key,
                v.timeout
            );
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
    let n = crate::app::log::next_cid();
    let t = crate::app::log::now_unix_ms() ^ ctx.started.elapsed().as_nanos() as u64;
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
    if !file.is_file() {
        return None;
    }
    let (app, stream) = stem.trim_start_matches('/').rsplit_once('/')?;
    let key = StreamKey::new(&vhost_name, app, stream);
    let known = ctx_param(query).filter(|id| conn.ctx.hls_viewers.touch(id));
    let id = match known {
        Some(id) => id.to_string(),
        None => {
            let timeout = Duration::from_secs_f64((2.0 * v.hls.window).max(0.0)).max(MIN_TIMEOUT);
            match admit(conn, req, v, &key, &host, timeout).await {
                Ok(id) => id,
                Err(resp) => return Some(resp),
            }
        }
    };
    if known.is_none() && ctx_param(query).is_none() {
        // First request: send the player to its own URL, as SRS does.
        let mut location = format!("{path}{}", param_without_ctx(query));
        location.push(if location.contains('?') { '&' } else { '?' });
        location.push_str("hls_ctx=");
        location.push_str(&id);
        let mut r = Response::new(Body::empty());
        *r.status_mut() = StatusCode::FOUND;
        if let Ok(l) = HeaderValue::from_str(&location) {
            r.headers_mut().insert(header::LOCATION, l);
        }
        cors(r.headers_mut());
        return Some(r);
    }
    let text = tokio::task::spawn_blocking(move || std::fs::read_to_string(file))
        .await
        .ok()?
        .ok()?;
    let body = with_ctx(&text, &id);
    let mut r = Response::new(if req.method() == hyper::Method::HEAD {
        Body::empty()
    } else {
        Body::full(body.clone())
    });
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/vnd.apple.mpegurl"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(body.len()));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    cors(h);
    Some(r)
}

/// A new viewer: the play checks, then its entry (a client of type `hls-play`).
async fn admit(
    conn: &Conn,
    req: &Request<hyper::body::Incoming>,
    v: &crate::config::VhostConfig,
    key: &StreamKey,
    host: &str,
    timeout: Duration,
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
    let id = new_id(ctx);
    let cid = crate::app::log::next_cid() as u32;
    let who = Who {
        client_id: cid,
        ip: conn.peer.ip().to_string(),
        vhost: key.vhost.clone(),
        app: key.app.clone(),
        tc_url: format!("http://{host}/{}", key.app),
        page_url: referer.to_string(),
        stream: key.stream.clone(),
        param: param_without_ctx(req.uri().query()),
        stream_url: key.url(),
        stream_id: ctx
            .hub
            .find(key)
            .map(|s| s.id.to_string())
            .unwrap_or_default(),
    };
    let hook = play_gate(conn, v, key, &who)
        .await
        .map_err(|()| forbidden())?;
    let client = ctx.stats.register(cid, who.ip.clone());
    client.stat.update(|i| {
        i.vhost = key.vhost.clone();
        i.app = key.app.clone();
        i.stream = key.stream.clone();
        i.tc_url = viewer_tc_url(req, &key.app);
        i.param = who.param.clone();
        i.kind = Some(ClientType::HlsPlay);
        i.key = Some(key.clone());
    });
    ::log::info!("HLS viewer {id} of {key} from {} (client {cid})", who.ip);
    ctx.hls_viewers.lock().insert(
        id.clone(),
        Viewer {
            key: key.clone(),
            last: Instant::now(),
            timeout,
            _hook: hook,
            _client: client,
        },
    );
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
