//! HTTP callbacks (CONTRACTS.md §6): SRS's hook protocol.
//!
//! Gates (`on_connect`, `on_publish`, `on_play`) are awaited before the client is accepted
//! (on_connect at its first publish or play, as SRS 6; see `rtmp::Conn::admit`) and
//! return a [`Guard`] whose drop sends the matching notify (`on_close`, `on_unpublish`,
//! `on_stop`) exactly once, whatever way the client leaves. Notifies, `on_hls` and `on_dvr` go
//! through bounded lanes per hook URL ([`lanes`]), so they never block a
//! connection or media, and a slow hook server holds up only its own URL.
//!
//! The HTTP client is hyper's HTTP/1.1 client connection: `Connection: close`, no redirects
//! followed, response headers and body capped, one timeout over the whole exchange.

pub mod heartbeat;
pub mod lanes;
pub mod nginx;

use crate::app::runtime::body::Body;
use crate::app::runtime::json::{obj, Value};
use crate::app::shared::{ClientRequest, Context};
use crate::config::HttpHooksConfig;
use crate::hub::StreamKey;
use hyper::body::Body as _;
use hyper::{header, Request};
use hyper_util::rt::TokioIo;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// Response headers larger than this are refused (a hook server answers tiny responses).
const MAX_HEAD: usize = 16 * 1024;
/// Response bodies are read up to this many bytes.
const MAX_BODY: usize = 64 * 1024;

/// Posts `body` as JSON to `url` (`http://host[:port]/path[?query]`). Returns the status code
/// and the (capped) body.
pub async fn post_json(
    url: &str,
    body: String,
    timeout: Duration,
) -> Result<(u16, String), String> {
    post_as(url, body, JSON, timeout)
        .await
        .map(|r| (r.status, r.body))
}

/// The content type of SRS's hook bodies.
pub(super) const JSON: &str = "application/json";

/// What a hook server answered.
pub(super) struct Reply {
    pub status: u16,
    /// The start of the body ([`MAX_BODY`] bytes at most).
    pub body: String,
    /// The `Location` header, for nginx-rtmp's 3xx redirects.
    pub location: Option<String>,
}

/// Posts `body` with `content_type` to `url`, bounded by `timeout`.
pub(super) async fn post_as(
    url: &str,
    body: String,
    content_type: &'static str,
    timeout: Duration,
) -> Result<Reply, String> {
    tokio::time::timeout(timeout, post(url, body, content_type))
        .await
        .map_err(|_| format!("timed out after {} ms", timeout.as_millis()))?
}

/// A hook URL split for the request: `http://host[:port][/path][?query]`.
#[derive(Debug)]
pub struct Target {
    pub host: String,
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
}

/// Splits a hook URL (only `http://`); the error says why it cannot be used.
pub fn parse_url(url: &str) -> Result<Target, String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or_else(|| format!("only http:// hook URLs are supported: {url}"))?;
    let (authority, path) = match rest.find(['/', '?']) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let path = if path.starts_with('?') {
        format!("/{path}")
    } else {
        path.to_string()
    };
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        let (h, p) = v6.split_once(']').ok_or("bad IPv6 host")?;
        (
            h.to_string(),
            p.strip_prefix(':')
                .map(str::parse)
                .transpose()
                .map_err(|_| "bad port")?,
        )
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (
                h.to_string(),
                Some(p.parse().map_err(|_| format!("bad port in {url}"))?),
            ),
            None => (authority.to_string(), None),
        }
    };
    if host.is_empty() || path.contains(['\r', '\n', ' ']) {
        return Err(format!("bad hook URL {url}"));
    }
    Ok(Target {
        host,
        port: port.unwrap_or(80),
        path,
    })
}

async fn post(url: &str, body: String, content_type: &'static str) -> Result<Reply, String> {
    let t = parse_url(url)?;
    let tcp = crate::app::runtime::dns::connect(&t.host, t.port)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let (mut sender, conn) = hyper::client::conn::http1::Builder::new()
        // Caps what hyper buffers, response headers included.
        .max_buf_size(MAX_HEAD)
        .handshake::<_, Body>(TokioIo::new(tcp))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    // The connection is driven by its own task, aborted when this exchange ends or is dropped
    // (the caller's timeout): nothing outlives the hook call.
    let _driver = AbortOnDrop(tokio::spawn(conn));
    let host = if t.host.contains(':') {
        format!("[{}]:{}", t.host, t.port)
    } else {
        format!("{}:{}", t.host, t.port)
    };
    let req = Request::post(t.path.as_str())
        .header(header::HOST, host)
        .header(header::USER_AGENT, format!("srsd/{}", crate::VERSION))
        .header(header::CONTENT_TYPE, content_type)
        .header(header::CONNECTION, "close")
        .body(Body::full(body))
        .map_err(|e| format!("request: {e}"))?;
    // hyper's client never follows redirects: a 3xx is an answer like any other (it denies).
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let location = resp
        .headers()
        .get(header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut incoming = resp.into_body();
    let mut got = Vec::new();
    while got.len() < MAX_BODY {
        let frame = std::future::poll_fn(|cx| Pin::new(&mut incoming).poll_frame(cx)).await;
        match frame {
            Some(Ok(f)) => {
                if let Ok(data) = f.into_data() {
                    got.extend_from_slice(&data[..data.len().min(MAX_BODY - got.len())]);
                }
            }
            Some(Err(e)) => return Err(format!("read: {e}")),
            None => break,
        }
    }
    Ok(Reply {
        status,
        body: String::from_utf8_lossy(&got).into_owned(),
        location,
    })
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// SRS's allow rule: HTTP 200/201 and a body of exactly `0`, or a JSON object whose integer
/// `code` is 0.
pub fn allows(status: u16, body: &str) -> bool {
    if status != 200 && status != 201 {
        return false;
    }
    let b = body.trim();
    b == "0" || top_level_code(b) == Some(0)
}

/// The integer value of the top-level `"code"` key of a JSON object, if the text is one.
fn top_level_code(text: &str) -> Option<i64> {
    let bytes = text.as_bytes();
    if bytes.first() != Some(&b'{') || bytes.last() != Some(&b'}') {
        return None;
    }
    let mut depth = 0i32;
    let mut i = 0;
    let mut found = None;
    while i < bytes.len() {
        match bytes[i] {
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth -= 1,
            b'"' => {
                // A string: find its end, honouring escapes.
                let start = i + 1;
                let mut j = start;
                while j < bytes.len() && bytes[j] != b'"' {
                    j += if bytes[j] == b'\\' { 2 } else { 1 };
                }
                let s = text.get(start..j.min(text.len()))?;
                i = j;
                if depth == 1 && s == "code" {
                    // Key position: skip spaces and the colon, read an integer.
                    let rest = text
                        .get(j + 1..)?
                        .trim_start()
                        .strip_prefix(':')?
                        .trim_start();
                    let end = rest
                        .find(|c: char| !(c.is_ascii_digit() || c == '-'))
                        .unwrap_or(rest.len());
                    let num = &rest[..end];
                    let after = rest[end..].trim_start();
                    if after.starts_with(',') || after.starts_with('}') {
                        found = num.parse().ok();
                    }
                }
            }
            _ => {}
        }
        if depth < 0 {
            return None;
        }
        i += 1;
    }
    if depth != 0 {
        return None;
    }
    found
}

/// Calls each URL in order; the first that does not allow stops the chain.
pub async fn gate(urls: &[String], body: &str, timeout: Duration) -> Result<(), HookError> {
    for url in urls {
        match post_json(url, body.to_string(), timeout).await {
            Ok((status, resp)) if allows(status, &resp) => {}
            Ok((status, resp)) => {
                return Err(HookError::Rejected {
                    url: url.clone(),
                    status,
                    body: resp.chars().take(80).collect(),
                })
            }
            Err(reason) => {
                return Err(HookError::Unreachable {
                    url: url.clone(),
                    reason,
                })
            }
        }
    }
    Ok(())
}

/// Why a gate hook did not allow a client: the hook server said no, or it could not be
/// asked. The client is refused either way (SRS's rule), but the two are told apart: an
/// HTTP viewer gets 403 for a rejection and 503 (retry later) when the hook server is down
/// or too slow, the log never calls an outage a denial, and `/metrics` counts each.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookError {
    /// The hook server answered, and not with an allow (see [`allows`]).
    Rejected {
        url: String,
        status: u16,
        /// The start of its answer (80 characters at most).
        body: String,
    },
    /// No answer: connection refused, a broken exchange, or the hook timeout passed.
    Unreachable { url: String, reason: String },
}

impl HookError {
    /// The HTTP status an HTTP viewer gets: 403 for a rejection, 503 for an outage.
    pub fn http_status(&self) -> hyper::StatusCode {
        match self {
            HookError::Rejected { .. } => hyper::StatusCode::FORBIDDEN,
            HookError::Unreachable { .. } => hyper::StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The reason label `/metrics` counts it under.
    pub fn reason(&self) -> &'static str {
        match self {
            HookError::Rejected { .. } => "hook_rejected",
            HookError::Unreachable { .. } => "hook_unreachable",
        }
    }
}

impl std::fmt::Display for HookError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HookError::Rejected { url, status, body } => {
                write!(f, "denied by {url}: HTTP {status} {body:?}")
            }
            HookError::Unreachable { url, reason } => {
                write!(f, "hook server unreachable: {url}: {reason}")
            }
        }
    }
}

pub use lanes::Notifier;

/// Builds a hook body: the common fields, then the action's own.
pub fn body(
    _ctx: &Context,
    action: &'static str,
    who: &ClientRequest,
    extra: Vec<(&'static str, Value)>,
) -> String {
    let mut v = obj([
        (
            "server_id",
            crate::app::runtime::system::server_ids().0.as_str().into(),
        ),
        (
            "service_id",
            crate::app::runtime::system::server_ids().1.as_str().into(),
        ),
        ("action", action.into()),
        ("client_id", who.client_id.to_string().into()),
        ("ip", who.ip.as_str().into()),
        ("vhost", who.vhost.as_str().into()),
        ("app", who.app.as_str().into()),
    ]);
    match action {
        "on_connect" => {
            v.push("tcUrl", who.tc_url.as_str());
            v.push("pageUrl", who.page_url.as_str());
            v.push("stream", who.stream.as_str());
            v.push("param", who.param.as_str());
        }
        "on_close" => {}
        _ => {
            v.push("tcUrl", who.tc_url.as_str());
            v.push("stream", who.stream.as_str());
            v.push("param", who.param.as_str());
            v.push("stream_url", who.stream_url.as_str());
            v.push("stream_id", who.stream_id.as_str());
            if action == "on_play" {
                v.push("pageUrl", who.page_url.as_str());
            }
        }
    }
    for (k, val) in extra {
        v.push(k, val);
    }
    v.to_json()
}

/// The undo of an allowed gate: sends its notify once, when dropped. Boxed, so a client
/// without hooks pays one word for it (every player's task holds two).
pub struct Guard(#[allow(dead_code)] Box<Undo>);

/// What a [`Guard`] sends when dropped.
struct Undo {
    ctx: Arc<Context>,
    action: &'static str,
    urls: Vec<String>,
    timeout: Duration,
    who: ClientRequest,
    /// For on_close: the client's byte counters at drop time.
    stat: Option<Arc<crate::app::runtime::stats::ClientStat>>,
    /// Sent in nginx-rtmp's form encoding (`hook_protocol = "nginx"`).
    nginx: bool,
}

impl Drop for Undo {
    fn drop(&mut self) {
        let extra = match (&self.stat, self.action) {
            (Some(s), "on_close") => {
                let (recv, send) = s.bytes();
                vec![
                    ("send_bytes", Value::UInt(send)),
                    ("recv_bytes", Value::UInt(recv)),
                ]
            }
            _ => Vec::new(),
        };
        let (b, content_type) = if self.nginx {
            (nginx::form(self.action, &self.who), nginx::FORM)
        } else {
            (body(&self.ctx, self.action, &self.who, extra), JSON)
        };
        let (ctx, urls, timeout, action) = (
            self.ctx.clone(),
            std::mem::take(&mut self.urls),
            self.timeout,
            self.action,
        );
        let send = move || ctx.hooks.notify_as(&urls, b, content_type, timeout, action);
        // on_close after the client's on_stop/on_unpublish have their answers, whatever
        // URLs they go to (SRS sends them one after the other, on_close last).
        if action == "on_close" && self.ctx.hooks.has_outstanding() {
            self.ctx.hooks.after_the_others(timeout, send);
        } else {
            send();
        }
    }
}

fn urls_for<'a>(cfg: &'a HttpHooksConfig, action: &str) -> &'a [String] {
    if !cfg.enabled {
        return &[];
    }
    match action {
        "on_connect" => &cfg.on_connect,
        "on_close" => &cfg.on_close,
        "on_publish" => &cfg.on_publish,
        "on_unpublish" => &cfg.on_unpublish,
        "on_play" => &cfg.on_play,
        "on_stop" => &cfg.on_stop,
        "on_dvr" => &cfg.on_dvr,
        "on_hls" => &cfg.on_hls,
        _ => &[],
    }
}

/// Runs a gate hook (`on_connect`, `on_publish`, `on_play`). On allow, returns the guard that
/// sends the paired notify (`on_close`, `on_unpublish`, `on_stop`) when dropped — even when no
/// gate URL is configured, so a notify-only setup still hears of every client.
pub async fn run_gate(
    ctx: &Arc<Context>,
    cfg: &HttpHooksConfig,
    action: &'static str,
    who: &ClientRequest,
    stat: Option<Arc<crate::app::runtime::stats::ClientStat>>,
) -> Result<Option<Guard>, HookError> {
    match run_gate_renaming(ctx, cfg, action, who, stat).await? {
        (guard, None) => Ok(guard),
        // Only RTMP publish and play can follow a rename (nginx-rtmp's own rule).
        (_, Some(to)) => Err(HookError::Rejected {
            url: urls_for(cfg, action).first().cloned().unwrap_or_default(),
            status: 302,
            body: format!("redirect to {to} is not followed here"),
        }),
    }
}

/// [`run_gate`], and the stream name an nginx-rtmp style hook redirected the client to
/// (`hook_protocol = "nginx"`, a 3xx with a `Location` on on_publish or on_play).
pub async fn run_gate_renaming(
    ctx: &Arc<Context>,
    cfg: &HttpHooksConfig,
    action: &'static str,
    who: &ClientRequest,
    stat: Option<Arc<crate::app::runtime::stats::ClientStat>>,
) -> Result<(Option<Guard>, Option<String>), HookError> {
    let timeout = cfg.timeout.get().max(Duration::from_millis(1));
    let urls = urls_for(cfg, action);
    let nginx = cfg.hook_protocol == crate::config::HookProtocol::Nginx;
    let mut renamed = None;
    if !urls.is_empty() {
        if nginx {
            renamed = nginx::gate(urls, action, who, timeout).await?;
        } else {
            gate(urls, &body(ctx, action, who, Vec::new()), timeout).await?;
        }
    }
    let undo = match action {
        "on_connect" => "on_close",
        "on_publish" => "on_unpublish",
        _ => "on_stop",
    };
    let undo_urls = urls_for(cfg, undo);
    if undo_urls.is_empty() {
        return Ok((None, renamed));
    }
    let guard = Guard(Box::new(Undo {
        ctx: ctx.clone(),
        action: undo,
        urls: undo_urls.to_vec(),
        timeout,
        who: who.clone(),
        stat,
        nginx,
    }));
    Ok((Some(guard), renamed))
}

/// Queues `on_dvr` for a closed DVR file.
pub fn on_dvr(ctx: &Context, cfg: &HttpHooksConfig, who: &ClientRequest, file: &std::path::Path) {
    let urls = urls_for(cfg, "on_dvr");
    if urls.is_empty() {
        return;
    }
    let timeout = cfg.timeout.get().max(Duration::from_millis(1));
    if cfg.hook_protocol == crate::config::HookProtocol::Nginx {
        let b = nginx::record_done(who, file);
        let form = nginx::FORM;
        ctx.hooks.notify_as(urls, b, form, timeout, "on_dvr");
        return;
    }
    let b = body(
        ctx,
        "on_dvr",
        who,
        vec![
            ("cwd", cwd().into()),
            ("file", file.display().to_string().into()),
        ],
    );
    ctx.hooks.notify(
        urls,
        b,
        cfg.timeout.get().max(Duration::from_millis(1)),
        "on_dvr",
    );
}

fn cwd() -> String {
    std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default()
}

/// An HLS segment was closed: what `on_hls` reports (the HLS segmenter sends it).
#[derive(Debug, Clone)]
pub struct SegmentEvent {
    /// The stream the segment belongs to.
    pub key: StreamKey,
    /// The segment file as written (`hls.path` joined with the rendered `ts_file`).
    pub file: PathBuf,
    /// The segment's URL relative to the HTTP root, as SRS's `on_hls` sends it
    /// (`live/hk-0.ts`): the playlist's directory joined with its URI; an absolute
    /// `entry_prefix` URL is sent as it is.
    pub url: String,
    /// The playlist file as written.
    pub m3u8: PathBuf,
    /// The playlist relative to the HTTP root (`live/hk.m3u8`), as SRS sends it.
    pub m3u8_url: String,
    /// The segment's media sequence number.
    pub seq: u64,
    /// Seconds, as the playlist's `EXTINF` states it.
    pub duration: f64,
}

/// Queues `on_hls` for a closed segment.
pub fn on_hls(ctx: &Context, cfg: &HttpHooksConfig, who: &ClientRequest, seg: &SegmentEvent) {
    let urls = urls_for(cfg, "on_hls");
    if urls.is_empty() {
        return;
    }
    let b = body(
        ctx,
        "on_hls",
        who,
        vec![
            // SRS writes every JSON number with two decimals: "2.00", never "2".
            ("duration", Value::Fixed2(seg.duration)),
            ("cwd", cwd().into()),
            ("file", seg.file.display().to_string().into()),
            ("url", seg.url.as_str().into()),
            ("m3u8", seg.m3u8.display().to_string().into()),
            ("m3u8_url", seg.m3u8_url.as_str().into()),
            ("seq_no", Value::UInt(seg.seq)),
        ],
    );
    ctx.hooks.notify(
        urls,
        b,
        cfg.timeout.get().max(Duration::from_millis(1)),
        "on_hls",
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_rule_table() {
        let cases = [
            (200, "0", true),
            (201, " 0\n", true),
            (200, "{\"code\":0}", true),
            (200, "{\"code\": 0, \"msg\": \"ok\"}", true),
            (200, "{\"data\":{\"code\":0},\"code\":1}", false),
            (200, "{\"data\":{\"code\":1},\"code\":0}", true),
            (200, "1", false),
            (200, "", false),
            (200, "{\"code\":\"0\"}", false),
            (200, "{\"msg\":\"no code\"}", false),
            (200, "not json", false),
            (200, "{\"code\":0", false),
            (500, "0", false),
            (302, "0", false),
            (204, "0", false),
        ];
        for (status, body, want) in cases {
            assert_eq!(allows(status, body), want, "{status} {body:?}");
        }
    }

    #[test]
    fn parses_hook_urls() {
        let t = parse_url("http://127.0.0.1:8085/api/v1/streams?token=1").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.path.as_str()),
            ("127.0.0.1", 8085, "/api/v1/streams?token=1")
        );
        let t = parse_url("http://h?x=1").unwrap();
        assert_eq!((t.port, t.path.as_str()), (80, "/?x=1"));
        let t = parse_url("http://[::1]:9/p").unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9));
        assert!(parse_url("https://h/p").is_err());
        assert!(parse_url("http://h:x/p").is_err());
        assert!(parse_url("http://h/p q").is_err());
    }

    /// A one-shot HTTP server answering `answer` to every request; returns its URL base and
    /// the requests it saw.
    async fn answering(answer: Vec<u8>) -> (String, Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", l.local_addr().unwrap());
        let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
        let seen2 = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut s, _)) = l.accept().await {
                let mut buf = vec![0u8; 8192];
                let n = s.read(&mut buf).await.unwrap_or(0);
                seen2
                    .lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&buf[..n]).into_owned());
                let _ = s.write_all(&answer).await;
            }
        });
        (base, seen)
    }

    #[tokio::test]
    async fn client_sends_srs_headers_follows_no_redirect_and_caps_what_it_reads() {
        let t = Duration::from_secs(5);
        let (base, seen) = answering(
            b"HTTP/1.1 302 Found\r\nLocation: /elsewhere\r\nContent-Length: 1\r\n\r\n0".to_vec(),
        )
        .await;
        let (status, body) = post_json(&format!("{base}/hook?token=a b"), "{}".into(), t)
            .await
            .map_err(|e| e.to_string())
            .unwrap_or((0, String::new()));
        assert_eq!(status, 0, "a space in the URL is refused before sending");
        assert!(body.is_empty());
        let (status, body) = post_json(&format!("{base}/hook?token=1"), "{\"a\":1}".into(), t)
            .await
            .unwrap();
        assert_eq!((status, body.as_str()), (302, "0"));
        assert!(!allows(status, &body), "a redirect denies");
        let reqs = seen.lock().unwrap().clone();
        assert_eq!(reqs.len(), 1, "the redirect was not followed: {reqs:?}");
        let r = reqs[0].to_ascii_lowercase();
        assert!(r.starts_with("post /hook?token=1 http/1.1\r\n"), "{r}");
        for h in [
            "user-agent: srsd/",
            "content-type: application/json",
            "content-length: 7",
        ] {
            assert!(r.contains(h), "{h} in {r}");
        }
        assert!(r.ends_with("{\"a\":1}"), "{r}");

        // A huge body is read up to the cap; huge headers are refused.
        let mut big = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for _ in 0..40 {
            big.extend_from_slice(b"1000\r\n");
            big.extend_from_slice(&[b'0'; 0x1000]);
            big.extend_from_slice(b"\r\n");
        }
        big.extend_from_slice(b"0\r\n\r\n");
        let (base, _) = answering(big).await;
        let (status, body) = post_json(&base, String::new(), t).await.unwrap();
        assert_eq!((status, body.len()), (200, MAX_BODY));
        let mut huge = b"HTTP/1.1 200 OK\r\n".to_vec();
        for i in 0..2000 {
            huge.extend_from_slice(format!("X-Pad-{i}: {}\r\n", "y".repeat(20)).as_bytes());
        }
        huge.extend_from_slice(b"Content-Length: 1\r\n\r\n0");
        let (base, _) = answering(huge).await;
        assert!(post_json(&base, String::new(), t).await.is_err());
        // Nothing listening: an error, promptly.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap()
        };
        assert!(post_json(&format!("http://{closed}/x"), String::new(), t)
            .await
            .is_err());
    }

    use crate::protocol::testutil::{fuzz, text, TEXT_PIECES};

    #[test]
    fn hostile_hook_answers_never_panic() {
        let pieces = TEXT_PIECES;
        fuzz("hooks allows", 0x400C, 3_000, |rng| {
            let mut body = text(rng, pieces, 16);
            if rng.chance(1, 2) {
                body = format!("{{{body}}}");
            }
            let status = *rng.pick(&[200, 201, 0, 500, u16::MAX]);
            let _ = allows(status, &body);
            let _ = parse_url(&text(rng, pieces, 8));
        });
    }

    #[tokio::test]
    async fn a_dead_hook_url_holds_up_only_its_own_lane() {
        // Accepts and never answers: each call to it waits for its whole timeout.
        let hole = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let hole_url = format!("http://{}/dead", hole.local_addr().unwrap());
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((s, _)) = hole.accept().await {
                held.push(s);
            }
        });
        let (base, seen) =
            answering(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\n0".to_vec()).await;
        let n = Notifier::start(1000);
        let t = Duration::from_secs(10);
        // Connection 4 (lane 0) notifies the dead URL first; connection 1 (lane 1) after.
        crate::app::runtime::log::with_cid(4, async {
            n.notify(&[hole_url], "{}".into(), t, "on_close")
        })
        .await;
        crate::app::runtime::log::with_cid(1, async {
            n.notify(&[format!("{base}/alive")], "{}".into(), t, "on_close")
        })
        .await;
        let started = std::time::Instant::now();
        while seen.lock().unwrap().is_empty() && started.elapsed() < Duration::from_secs(5) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(seen.lock().unwrap().len(), 1, "the live hook was called");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }
}
