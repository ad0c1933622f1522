//! HTTP on hyper 1.x (http1 only): `http_server.listen` serves static files (HLS lives there)
//! and HTTP-FLV live mounts; `http_api.listen` serves the SRS-compatible API and `/metrics`.
//! When both resolve to the same address, one listener serves both (SRS does the same).
//!
//! Bounds on every connection: request head at most [`MAX_HEAD_BYTES`] (hyper answers 431
//! beyond), the whole head within [`HEADER_READ_TIMEOUT`] (slowloris; hyper also applies it to
//! an idle keep-alive connection waiting for its next request), and no read or write progress
//! for [`STALL_TIMEOUT`] closes it unless a live stream is waiting for its publisher. HTTP
//! server connections count against `max_connections` together with RTMP ones; an API
//! listener of its own has its own budget ([`crate::app::runtime::admission::API_CONNECTIONS`]).

pub mod api;
pub mod auth;
pub mod console;
mod direct;
pub mod hls_play;
pub mod live;
pub mod metrics;
pub mod static_files;
pub mod viewer;
pub mod vod;

use crate::app::runtime::body::Body;
use crate::app::shared::Context;
use crate::config::Config;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::convert::Infallible;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU32, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{self, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::time::Instant;

/// Largest request line + headers accepted.
pub const MAX_HEAD_BYTES: usize = 16 * 1024;
/// Most header lines accepted.
const MAX_HEADERS: usize = 64;
/// A client must send a whole request head within this long.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
/// No byte read or written for this long (and no live stream waiting) closes the connection.
pub const STALL_TIMEOUT: Duration = Duration::from_secs(30);

/// What a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Roles {
    /// Static files and live mounts (`http_server`).
    pub files: bool,
    /// The API and /metrics (`http_api`).
    pub api: bool,
}

pub struct HttpListener {
    pub listener: TcpListener,
    pub roles: Roles,
}

impl HttpListener {
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }
}

/// Binds `http_server.listen` and `http_api.listen` (those enabled). Port 0 always binds its
/// own listener, so tests get two distinct ephemeral ports.
pub async fn bind(config: &Config) -> io::Result<Vec<HttpListener>> {
    let files = match config.http_server.enabled {
        true => Some(config.http_server.listen.addr),
        false => None,
    };
    let api = match config.http_api.enabled {
        true => Some(config.http_api.listen.addr),
        false => None,
    };
    let mut wanted: Vec<(SocketAddr, Roles)> = Vec::new();
    match (files, api) {
        (Some(f), Some(a)) if f == a && f.port() != 0 => wanted.push((
            f,
            Roles {
                files: true,
                api: true,
            },
        )),
        (f, a) => {
            if let Some(f) = f {
                wanted.push((
                    f,
                    Roles {
                        files: true,
                        api: false,
                    },
                ));
            }
            if let Some(a) = a {
                wanted.push((
                    a,
                    Roles {
                        files: false,
                        api: true,
                    },
                ));
            }
        }
    }
    let mut out = Vec::new();
    for (addr, roles) in wanted {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| io::Error::new(e.kind(), format!("HTTP listen on {addr}: {e}")))?;
        out.push(HttpListener { listener, roles });
    }
    Ok(out)
}

/// Accepts HTTP connections until the task is aborted (at shutdown).
pub async fn accept_loop(ctx: Arc<Context>, l: HttpListener) {
    let roles = l.roles;
    // An API with an address of its own has its own budget: reachable on a full server.
    let budget = match roles.files {
        true => crate::app::runtime::admission::Budget::Clients,
        false => crate::app::runtime::admission::Budget::Api,
    };
    let what = if roles.files { "HTTP " } else { "HTTP API " };
    crate::app::runtime::listen::accept_counted(ctx, &l.listener, what, budget, move |ctx, socket, peer, cid| async move {
        serve_conn(&ctx, socket, peer, roles, cid).await
    })
    .await
}

/// Progress of one connection, shared by its I/O wrapper and its handlers.
pub struct Activity {
    start: Instant,
    /// Milliseconds after `start` of the last read or write progress.
    last_ms: AtomicU32,
    /// Live streams of this connection waiting for media: the stall timer is theirs to keep.
    live: AtomicUsize,
}

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            start: Instant::now(),
            last_ms: AtomicU32::new(0),
            live: AtomicUsize::new(0),
        })
    }

    fn touch(&self) {
        let ms = self.start.elapsed().as_millis().min(u32::MAX as u128) as u32;
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    fn last(&self) -> Instant {
        self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed) as u64)
    }

    /// Marks a live stream in flight until the guard drops.
    pub fn live_guard(self: &Arc<Self>) -> LiveGuard {
        self.live.fetch_add(1, Ordering::AcqRel);
        LiveGuard(self.clone())
    }
}

pub struct LiveGuard(Arc<Activity>);

impl Drop for LiveGuard {
    fn drop(&mut self) {
        self.0.live.fetch_sub(1, Ordering::AcqRel);
        self.0.touch();
    }
}

/// The socket, noting every read and write that made progress.
struct TrackedIo {
    inner: TcpStream,
    activity: Arc<Activity>,
}

impl AsyncRead for TrackedIo {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut task::Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl AsyncWrite for TrackedIo {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut task::Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut task::Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut task::Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// What a request handler needs to know about its connection.
#[derive(Clone)]
pub struct Conn {
    pub ctx: Arc<Context>,
    pub peer: SocketAddr,
    pub cid: u32,
    pub roles: Roles,
    pub activity: Arc<Activity>,
}

async fn serve_conn(
    ctx: &Arc<Context>,
    socket: TcpStream,
    peer: SocketAddr,
    roles: Roles,
    cid: u32,
) {
    let _ = socket.set_nodelay(true);
    let activity = Activity::new();
    let conn = Conn {
        ctx: ctx.clone(),
        peer,
        cid,
        roles,
        activity: activity.clone(),
    };
    // A live viewer's first request is taken here, without hyper (see `direct`).
    let socket = if roles.files {
        match direct::take(&conn, socket).await {
            Ok(()) => return,
            Err(socket) => socket,
        }
    } else {
        socket
    };
    // Boxed: hyper's connection state is large, and inline it would be reserved in the task
    // of every live viewer `direct` serves too.
    Box::pin(serve_hyper(ctx, socket, peer, conn, activity)).await
}

/// Serves the connection's requests with hyper until it closes, stalls or the server stops.
async fn serve_hyper(
    ctx: &Arc<Context>,
    socket: TcpStream,
    peer: SocketAddr,
    conn: Conn,
    activity: Arc<Activity>,
) {
    let io = TokioIo::new(TrackedIo {
        inner: socket,
        activity: activity.clone(),
    });
    let service = service_fn(move |req| {
        let conn = conn.clone();
        async move { Ok::<_, Infallible>(route(conn, req).await) }
    });
    let http = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(MAX_HEAD_BYTES.max(8192) * 4)
        .max_header_size(MAX_HEAD_BYTES)
        .max_headers(MAX_HEADERS)
        .keep_alive(true)
        .serve_connection(io, service);
    tokio::pin!(http);
    let mut shutdown = ctx.shutdown.clone();
    let mut check = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            r = http.as_mut() => {
                if let Err(e) = r {
                    ::log::debug!("HTTP client {peer} closed: {e}");
                }
                return;
            }
            _ = check.tick() => {
                let stalled = activity.live.load(Ordering::Acquire) == 0
                    && activity.last().elapsed() >= STALL_TIMEOUT;
                if stalled {
                    ::log::info!("HTTP client {peer} closed: no progress for {}s", STALL_TIMEOUT.as_secs());
                    return;
                }
            }
            _ = shutdown.changed() => return,
        }
    }
}

/// Dispatches a request to the API, a live mount or the static files.
async fn route(conn: Conn, req: Request<hyper::body::Incoming>) -> Response<Body> {
    let path = req.uri().path();
    if req.method() == Method::OPTIONS {
        return preflight();
    }
    if conn.roles.api && (path == "/metrics" || path == "/api" || path.starts_with("/api/")) {
        return api::handle(&conn, &req);
    }
    // `/` redirects to the console on the API's own listener; on one shared with the HTTP
    // server it stays the server's (its index.html, or the index of live streams).
    let console_path =
        (path == "/" && !conn.roles.files) || path == "/console" || path.starts_with("/console/");
    if conn.roles.api && console_path {
        if let Some(denied) = api::unauthorized(&conn, &req, None) {
            return denied;
        }
        if let Some(resp) = console::handle_api(&conn, &req).await {
            return resp;
        }
    }
    if conn.roles.files {
        if let Some(resp) = console::handle_files(&conn, &req).await {
            return resp;
        }
        if let Some(resp) = live::handle(&conn, &req).await {
            return resp;
        }
        if let Some(resp) = hls_play::handle(&conn, &req).await {
            return resp;
        }
        return static_files::handle(&conn, &req).await;
    }
    api::not_found()
}

/// CORS preflight: any origin, the methods and headers we answer.
fn preflight() -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::NO_CONTENT;
    let h = r.headers_mut();
    cors(h);
    h.insert(
        header::ACCESS_CONTROL_ALLOW_METHODS,
        HeaderValue::from_static("GET, HEAD, POST, PUT, DELETE, OPTIONS"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static(
            "Origin, X-Requested-With, Content-Type, Accept, Range, Authorization",
        ),
    );
    h.insert(
        header::ACCESS_CONTROL_MAX_AGE,
        HeaderValue::from_static("86400"),
    );
    r
}

pub fn cors(h: &mut hyper::HeaderMap) {
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::ACCESS_CONTROL_EXPOSE_HEADERS,
        HeaderValue::from_static("Content-Length, Content-Range"),
    );
}

/// A plain-text answer with `status`.
pub fn text(status: StatusCode, msg: impl Into<bytes::Bytes>) -> Response<Body> {
    let mut r = Response::new(Body::full(msg));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    cors(h);
    r
}

/// Percent-decodes `s`; `None` on a malformed escape.
pub fn percent_decode(s: &str) -> Option<Vec<u8>> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hex = b.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

/// The value of query parameter `key` (percent-decoded, `+` as space), if present.
pub fn query_param(query: Option<&str>, key: &str) -> Option<String> {
    query?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then(|| {
            let v = v.replace('+', " ");
            percent_decode(&v)
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or(v)
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_percent_escapes_and_query() {
        assert_eq!(percent_decode("a%2e%2E/b").as_deref(), Some(&b"a../b"[..]));
        assert_eq!(percent_decode("bad%2"), None);
        assert_eq!(percent_decode("bad%zz"), None);
        let q = Some("start=1&callback=cb&x&name=a+b%21");
        assert_eq!(query_param(q, "callback").as_deref(), Some("cb"));
        assert_eq!(query_param(q, "name").as_deref(), Some("a b!"));
        assert_eq!(query_param(q, "x").as_deref(), Some(""));
        assert_eq!(query_param(q, "nope"), None);
    }
}
