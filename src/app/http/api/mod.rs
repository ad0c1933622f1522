//! The HTTP API, SRS v7 shapes (CONTRACTS.md §5): every answer is a JSON object with `code`
//! (0 = ok), `server`, `service` and `pid` (strings). Errors a handler finds (unknown id, raw
//! API disabled) are HTTP 200 with a non-zero `code`, as SRS answers; only an unknown path is
//! an HTTP 404. `?callback=NAME` wraps the answer as JSONP; `?method=DELETE` stands for DELETE
//! for JSONP clients, as SRS documents.

use super::{cors, query_param, Conn};
use crate::app::cluster::edge::{Direction, EdgeInfo};
use crate::app::runtime::body::Body;
use crate::app::runtime::json::{obj, Value};
use crate::app::runtime::stats::ClientStat;
use crate::app::runtime::system::{
    self, meminfos, rusages, self_proc_stats, summaries, system_proc_stats,
};
use crate::app::shared::Context;
use crate::hub::{Frame, Source, StreamKey};
use crate::protocol::codec_info;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::collections::HashMap;
use std::sync::Arc;

/// SRS error codes the API answers with.
pub mod code {
    pub const OK: i64 = 0;
    /// ERROR_SYSTEM_CONFIG_RAW: no or unknown `rpc` (SRS 6).
    pub const RAW: i64 = 1060;
    /// ERROR_SYSTEM_CONFIG_RAW_DISABLED: the raw API (or its reload) is not enabled.
    pub const RAW_DISABLED: i64 = 1061;
    /// ERROR_RTMP_VHOST_NOT_FOUND.
    pub const VHOST_NOT_FOUND: i64 = 2014;
    /// ERROR_RTMP_STREAM_NOT_FOUND.
    pub const STREAM_NOT_FOUND: i64 = 2048;
    /// ERROR_RTMP_CLIENT_NOT_FOUND.
    pub const CLIENT_NOT_FOUND: i64 = 2049;
    /// ERROR_HTTP_PATTERN_EMPTY-like: a path the API does not serve.
    pub const NOT_FOUND: i64 = 404;
}

/// The envelope every answer carries.
fn envelope(code: i64) -> Value {
    let (server, service) = system::server_ids();
    obj([
        ("code", code.into()),
        ("server", server.as_str().into()),
        ("service", service.as_str().into()),
        ("pid", std::process::id().to_string().into()),
    ])
}

fn with(code: i64, key: &'static str, v: Value) -> Value {
    let mut e = envelope(code);
    e.push(key, v);
    e
}

/// The id the API gives a vhost: derived from its name, so it is stable across reloads.
pub fn vhost_id(name: &str) -> String {
    let mut h: u32 = 0x811C_9DC5;
    for b in name.bytes() {
        h ^= b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    format!("vid-{h:08x}")
}

/// A JSON answer (JSONP when `callback` names a function).
fn answer(status: StatusCode, v: &Value, callback: Option<&str>) -> Response<Body> {
    let json = v.to_json();
    let (body, ctype) = match callback {
        Some(cb) => (format!("{cb}({json})"), "application/javascript"),
        None => (json, "application/json"),
    };
    let mut r = Response::new(Body::full(body));
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    cors(h);
    r
}

pub fn not_found() -> Response<Body> {
    answer(StatusCode::NOT_FOUND, &envelope(code::NOT_FOUND), None)
}

/// A JSONP callback name we are willing to echo: a JavaScript identifier path, bounded.
fn valid_callback(cb: &str) -> bool {
    !cb.is_empty()
        && cb.len() <= 64
        && cb
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b == b'.')
}

/// The 401 answer when `[http_api.auth]` is on and the request lacks the right credentials
/// (the API, /metrics and the console share it).
pub fn unauthorized(
    conn: &Conn,
    req: &Request<hyper::body::Incoming>,
    callback: Option<&str>,
) -> Option<Response<Body>> {
    let auth = &conn.ctx.config().http_api.auth;
    if !auth.enabled || super::auth::authorized(req, &auth.username, &auth.password) {
        return None;
    }
    // The usual JSON envelope, code 401, as every other answer of the API.
    let mut r = answer(StatusCode::UNAUTHORIZED, &envelope(401), callback);
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Basic realm=\"srsd\""),
    );
    Some(r)
}

/// Answers an API request (`/api...`, `/metrics`).
pub fn handle(conn: &Conn, req: &Request<hyper::body::Incoming>) -> Response<Body> {
    let query = req.uri().query();
    let callback = query_param(query, "callback").filter(|c| valid_callback(c));
    let callback = callback.as_deref();
    let path = req.uri().path();
    if let Some(denied) = unauthorized(conn, req, callback) {
        return denied;
    }
    if path == "/metrics" {
        return super::metrics::handle(&conn.ctx);
    }
    let method = match query_param(query, "method") {
        Some(m) if m.eq_ignore_ascii_case("DELETE") => Method::DELETE,
        _ => req.method().clone(),
    };
    let ctx = &conn.ctx;
    let rest = path.trim_end_matches('/');
    let v = if rest == "/api" {
        Some(with(
            code::OK,
            "urls",
            obj([("v1", "the api version 1.0".into())]),
        ))
    } else if rest == "/api/v1" {
        Some(with(code::OK, "urls", urls()))
    } else if let Some(sub) = rest.strip_prefix("/api/v1/") {
        let (name, id) = match sub.split_once('/') {
            Some((n, id)) => (n, Some(id)),
            None => (sub, None),
        };
        if method == Method::DELETE && !(name == "clients" && id.is_some()) {
            return answer(
                StatusCode::METHOD_NOT_ALLOWED,
                &envelope(code::NOT_FOUND),
                callback,
            );
        }
        match (name, id) {
            ("versions", None) => Some(with(code::OK, "data", versions())),
            ("summaries", None) => Some(with(code::OK, "data", summaries(ctx))),
            ("rusages", None) => Some(with(code::OK, "data", rusages())),
            ("self_proc_stats", None) => Some(with(code::OK, "data", self_proc_stats())),
            ("system_proc_stats", None) => Some(with(code::OK, "data", system_proc_stats())),
            ("meminfos", None) => Some(with(code::OK, "data", meminfos())),
            ("authors", None) => Some(with(
                code::OK,
                "data",
                obj([
                    ("license", "MIT".into()),
                    ("contributors", "the srsd authors".into()),
                ]),
            )),
            ("features", None) => Some(with(code::OK, "data", features())),
            ("vhosts", id) => Some(vhosts(ctx, id)),
            ("streams", id) => Some(streams(ctx, id, query)),
            ("clients", id) => Some(clients(ctx, id, query, method == Method::DELETE)),
            ("raw", None) => Some(raw(ctx, query)),
            ("hooks", None) => Some(with(code::OK, "hooks", hooks(ctx))),
            _ => None,
        }
    } else {
        None
    };
    match v {
        Some(v) => answer(StatusCode::OK, &v, callback),
        None => answer(StatusCode::NOT_FOUND, &envelope(code::NOT_FOUND), callback),
    }
}

fn urls() -> Value {
    obj([
        ("versions", "the version of SRS".into()),
        (
            "summaries",
            "the summary(pid, argv, pwd, cpu, mem) of SRS".into(),
        ),
        ("rusages", "the rusage of SRS".into()),
        ("self_proc_stats", "the self process stats".into()),
        ("system_proc_stats", "the system process stats".into()),
        ("meminfos", "the meminfo of system".into()),
        (
            "authors",
            "the license, copyright, authors and contributors".into(),
        ),
        ("features", "the supported features of SRS".into()),
        ("vhosts", "manage all vhosts or specified vhost".into()),
        ("streams", "manage all streams or specified stream".into()),
        (
            "clients",
            "manage all clients or specified client, default query top 10 clients".into(),
        ),
        (
            "raw",
            "raw api for srs, support CUID srs for instance the config".into(),
        ),
        ("hooks", "hook notify delivery per URL (srsd)".into()),
    ])
}

/// `/api/v1/hooks` (srsd's own): notify delivery per hook URL, as `/metrics` counts it.
fn hooks(ctx: &Context) -> Value {
    Value::Arr(
        ctx.hooks
            .snapshot()
            .into_iter()
            .map(|u| {
                obj([
                    ("url", u.url.into()),
                    ("queued", Value::UInt(u.queued as u64)),
                    ("delivered", Value::UInt(u.delivered as u64)),
                    ("failed", Value::UInt(u.failed as u64)),
                    ("dropped", Value::UInt(u.dropped as u64)),
                    ("circuit_open", Value::Bool(u.circuit_open)),
                ])
            })
            .collect(),
    )
}

fn versions() -> Value {
    let mut parts = crate::VERSION
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u64>().unwrap_or(0));
    obj([
        ("major", parts.next().unwrap_or(0).into()),
        ("minor", parts.next().unwrap_or(0).into()),
        ("revision", parts.next().unwrap_or(0).into()),
        ("version", crate::VERSION.into()),
    ])
}

/// What this build offers: SRS 6's feature keys, each reported truthfully for srsd.
/// `complex_send` (SRS_PERF_COMPLEX_SEND): players get merged, vectored writes;
/// `tcp_nodelay`: the vhost's `tcp_nodelay` for RTMP players (HTTP sockets always have it);
/// `so_sendbuf`: srsd leaves the kernel's
/// send buffer size alone; `mr` (merged read, SRS's `mr_sleep`): srsd reads what is there and
/// never waits to gather more. `ssl`, `hds` and `caster`: not in srsd.
fn features() -> Value {
    obj([
        ("options", "".into()),
        ("options2", "".into()),
        ("build", std::env::consts::ARCH.into()),
        ("build2", std::env::consts::OS.into()),
        (
            "features",
            obj([
                ("ssl", false.into()),
                ("hls", true.into()),
                ("hds", false.into()),
                ("callback", true.into()),
                ("api", true.into()),
                ("httpd", true.into()),
                ("dvr", true.into()),
                ("transcode", true.into()),
                ("ingest", true.into()),
                ("stat", true.into()),
                ("caster", false.into()),
                ("complex_send", true.into()),
                ("tcp_nodelay", true.into()),
                ("so_sendbuf", false.into()),
                ("mr", false.into()),
                // srsd's own, beyond SRS 6's list.
                ("complex_handshake", true.into()),
                ("hls_codec", true.into()),
            ]),
        ),
    ])
}

/// Per-stream sums over the clients attached to it.
#[derive(Default)]
struct StreamSums {
    clients: u64,
    send: u64,
    recv: u64,
    kbps_recv: u64,
    kbps_send: u64,
    tc_url: String,
    /// `tc_url` is its publisher's.
    publisher: bool,
}

fn stream_sums(clients: &[Arc<ClientStat>]) -> HashMap<StreamKey, StreamSums> {
    let mut m: HashMap<StreamKey, StreamSums> = HashMap::new();
    for c in clients {
        let info = c.info();
        let Some(key) = info.key else { continue };
        let s = m.entry(key).or_default();
        let (r, w) = c.bytes();
        let (kr, kw) = c.kbps();
        s.clients += 1;
        s.recv += r;
        s.send += w;
        s.kbps_recv += kr;
        s.kbps_send += kw;
        let publisher = info.kind.is_some_and(|k| k.is_publish());
        if s.tc_url.is_empty() || publisher {
            s.tc_url = info.request.tc_url;
            s.publisher |= publisher;
        }
    }
    m
}

fn kbps(recv: u64, send: u64) -> Value {
    obj([("recv_30s", recv.into()), ("send_30s", send.into())])
}

fn stream_object(
    ctx: &Context,
    src: &Source,
    sums: Option<&StreamSums>,
    edge: Option<EdgeInfo>,
) -> Value {
    let empty = StreamSums::default();
    let s = sums.unwrap_or(&empty);
    // Bytes count for the stream's life, as SRS's: its closed connections' too. Its tcUrl is
    // its publisher's, the last one's while none publishes.
    let gone = ctx.stats.departed(&src.id.to_string()).unwrap_or_default();
    let tc_url = if s.publisher || gone.publisher_tc_url.is_empty() {
        s.tc_url.as_str()
    } else {
        gone.publisher_tc_url.as_str()
    };
    let mut publish = obj([("active", src.is_publishing().into())]);
    if src.is_publishing() {
        publish.push("cid", src.publisher_cid().to_string());
    }
    // `publish.parse_sps = false`: the SPS is not parsed, so the size is unknown (0, as SRS).
    let parse_sps = ctx
        .config()
        .vhost
        .get(&src.key.vhost)
        .map_or(true, |v| v.publish.parse_sps);
    let (mut video, mut audio) = codec_info(src, parse_sps);
    // A track HLS leaves out says why (srsd's own field; SRS has no such case).
    let hls = ctx
        .config()
        .vhost
        .get(&src.key.vhost)
        .is_some_and(|v| v.hls.enabled);
    if hls {
        let (v, a) = src.sequence_headers();
        for (value, frame) in [(&mut video, v), (&mut audio, a)] {
            if let (Value::Obj(_), Some(why)) = (
                &*value,
                frame.and_then(|f| crate::protocol::ts_remux::no_ts_mapping(f.codec())),
            ) {
                value.push("hls_skipped", why);
            }
        }
    }
    let mut stream = obj([
        ("id", src.id.to_string().into()),
        ("name", src.key.stream.as_str().into()),
        ("vhost", vhost_id(&src.key.vhost).into()),
        ("app", src.key.app.as_str().into()),
        ("tcUrl", tc_url.into()),
        ("url", src.key.url().into()),
        ("live_ms", crate::app::runtime::log::now_unix_ms().into()),
        ("clients", s.clients.into()),
        ("frames", src.stats().frames.into()),
        ("send_bytes", (s.send + gone.send).into()),
        ("recv_bytes", (s.recv + gone.recv).into()),
        ("kbps", kbps(s.kbps_recv, s.kbps_send)),
        ("publish", publish),
        ("video", video),
        ("audio", audio),
        // srsd's own field: an edge stream's link to its origin, null on an origin.
        (
            "edge",
            edge.map_or(Value::Null, |e| {
                obj([
                    (
                        "direction",
                        (if e.direction == Direction::Pull {
                            "pull"
                        } else {
                            "push"
                        })
                        .into(),
                    ),
                    ("upstream", e.upstream.into()),
                    ("state", e.state.as_str().into()),
                ])
            }),
        ),
    ]);
    outputs_json(&mut stream, ctx, &src.key);
    stream
}

/// srsd's own fields: `hls` and `dvr` (an object each, null when off) and `forward` (one
/// object per forwarder, empty when none): `state`, `errors`, `last_error`, `last_error_ms`
/// (Unix ms, 0 when none), `dropped` (frames lost because the output fell behind) and
/// `target` (m3u8 file, DVR path pattern, destination URLs).
fn outputs_json(stream: &mut Value, ctx: &Context, key: &StreamKey) {
    use crate::app::runtime::output_status::Output;
    let (mut hls, mut dvr, mut forward) = (Value::Null, Value::Null, Vec::new());
    for s in ctx.outputs.of(key) {
        let v = obj([
            ("state", s.state.into()),
            ("errors", s.errors.into()),
            ("last_error", s.last_error.into()),
            ("last_error_ms", s.last_error_ms.into()),
            ("dropped", s.dropped.into()),
            ("target", s.target.into()),
        ]);
        match s.output {
            Output::Hls => hls = v,
            Output::Dvr => dvr = v,
            Output::Forward => forward.push(v),
        }
    }
    stream.push("hls", hls);
    stream.push("dvr", dvr);
    stream.push("forward", forward);
}

/// The stream's codecs from its cached sequence headers: `video`/`audio` objects, or null
/// while unknown.
fn codec_info(src: &Source, parse_sps: bool) -> (Value, Value) {
    let (video_sh, audio_sh) = src.sequence_headers();
    (
        video_sh.as_deref().map_or(Value::Null, |sh| {
            video_info(sh, src.frame_picture_size(), parse_sps)
        }),
        audio_sh.as_deref().map_or(Value::Null, audio_info),
    )
}

/// `video` from a video sequence-header frame (its tag header read by the hub): codec,
/// profile, level, width, height (from `frame_size`, what a keyframe said, when the record
/// has none: VP9). A record srsd cannot read gives the codec name (when known) with null
/// fields, and a log line; a codec without a name gives null.
pub(crate) fn video_info(sh: &Frame, frame_size: Option<(u32, u32)>, parse_sps: bool) -> Value {
    let Some(name) = sh.codec().name() else {
        return Value::Null;
    };
    match codec_info::video_info(&sh.tag, sh.data()) {
        Ok(v) => {
            let (w, h) = if parse_sps {
                v.picture_size(frame_size)
            } else {
                (0, 0)
            };
            obj([
                ("codec", name.into()),
                ("profile", v.profile.into()),
                ("level", v.level.into()),
                ("width", w.into()),
                ("height", h.into()),
            ])
        }
        Err(e) => {
            warn_once(sh, format_args!("video sequence header: {e}"));
            obj([
                ("codec", name.into()),
                ("profile", Value::Null),
                ("level", Value::Null),
                ("width", Value::Null),
                ("height", Value::Null),
            ])
        }
    }
}

/// Logs why a sequence header could not be read, once per header frame rather than once per
/// API request (a console polls every 2 s).
fn warn_once(sh: &Frame, why: std::fmt::Arguments<'_>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    static LAST: AtomicUsize = AtomicUsize::new(0);
    let at = sh as *const Frame as usize;
    if LAST.swap(at, Ordering::Relaxed) != at {
        log::warn!("{why}");
    }
}

/// `audio` from an audio sequence-header frame: codec, sample rate, channels, profile; a
/// record srsd cannot read gives the codec name with null fields, and a log line.
pub(crate) fn audio_info(sh: &Frame) -> Value {
    let Some(name) = sh.codec().name() else {
        return Value::Null;
    };
    match codec_info::audio_info(&sh.tag, sh.data()) {
        Ok(a) => obj([
            ("codec", name.into()),
            ("sample_rate", a.sample_rate.into()),
            ("channel", u32::from(a.channels).into()),
            ("profile", a.profile.into()),
        ]),
        Err(e) => {
            warn_once(sh, format_args!("audio sequence header: {e}"));
            obj([
                ("codec", name.into()),
                ("sample_rate", Value::Null),
                ("channel", Value::Null),
                ("profile", Value::Null),
            ])
        }
    }
}

/// `start` (default 0) and `count` (default 10, at least 1), as SRS v7.
fn paging(query: Option<&str>) -> (usize, usize) {
    let start = query_param(query, "start")
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(0)
        .max(0) as usize;
    let count = query_param(query, "count")
        .and_then(|s| s.parse::<i64>().ok())
        .unwrap_or(10)
        .max(1) as usize;
    (start, count)
}

fn vhosts(ctx: &Context, id: Option<&str>) -> Value {
    let config = ctx.config();
    let clients = ctx.stats.clients();
    let sources = ctx.hub.list();
    let one = |name: &str, v: &crate::config::VhostConfig| -> Value {
        let mine: Vec<&Arc<ClientStat>> = clients
            .iter()
            .filter(|c| c.info().request.vhost == name)
            .collect();
        let (mut r, mut w) = ctx.stats.departed_vhost(name);
        let (mut kr, mut kw) = (0, 0);
        for c in &mine {
            let (a, b) = c.bytes();
            let (ka, kb) = c.kbps();
            r += a;
            w += b;
            kr += ka;
            kw += kb;
        }
        let mut hls = obj([("enabled", v.hls.enabled.into())]);
        if v.hls.enabled {
            hls.push("fragment", v.hls.fragment.as_secs_f64());
        }
        obj([
            ("id", vhost_id(name).into()),
            ("name", name.into()),
            ("enabled", v.enabled.into()),
            ("clients", mine.len().into()),
            (
                "streams",
                sources
                    .iter()
                    .filter(|s| s.key.vhost == name)
                    .count()
                    .into(),
            ),
            ("send_bytes", w.into()),
            ("recv_bytes", r.into()),
            ("kbps", kbps(kr, kw)),
            ("hls", hls),
        ])
    };
    match id {
        None => with(
            code::OK,
            "vhosts",
            Value::Arr(config.vhost.iter().map(|(n, v)| one(n, v)).collect()),
        ),
        Some(id) => match config
            .vhost
            .iter()
            .find(|(n, _)| vhost_id(n) == id || n.as_str() == id)
        {
            Some((n, v)) => with(code::OK, "vhost", one(n, v)),
            None => envelope(code::VHOST_NOT_FOUND),
        },
    }
}

fn streams(ctx: &Context, id: Option<&str>, query: Option<&str>) -> Value {
    let sums = stream_sums(&ctx.stats.clients());
    let sources = ctx.hub.list();
    match id {
        None => {
            let (start, count) = paging(query);
            let list: Vec<Value> = sources
                .iter()
                .skip(start)
                .take(count)
                .map(|s| stream_object(ctx, s, sums.get(&s.key), ctx.edges.get(&s.key)))
                .collect();
            let mut v = with(code::OK, "streams", Value::Arr(list));
            v.push("total", sources.len());
            v
        }
        Some(id) => match sources.iter().find(|s| s.id.to_string() == id) {
            Some(s) => with(
                code::OK,
                "stream",
                stream_object(ctx, s, sums.get(&s.key), ctx.edges.get(&s.key)),
            ),
            None => envelope(code::STREAM_NOT_FOUND),
        },
    }
}

fn client_object(ctx: &Context, c: &ClientStat) -> Value {
    let info = c.info();
    let (r, w) = c.bytes();
    let (kr, kw) = c.kbps();
    let stream_id = info
        .key
        .as_ref()
        .and_then(|k| ctx.hub.find(k))
        .map(|s| s.id.to_string())
        .unwrap_or_default();
    let vhost = if info.request.vhost.is_empty() {
        String::new()
    } else {
        vhost_id(&info.request.vhost)
    };
    let url = info.key.as_ref().map(StreamKey::url).unwrap_or_default();
    let kind = info
        .kind
        .unwrap_or(crate::app::runtime::stats::ClientType::Unknown);
    obj([
        ("id", c.id.to_string().into()),
        ("vhost", vhost.into()),
        ("stream", stream_id.into()),
        ("ip", c.ip.as_str().into()),
        ("pageUrl", info.request.page_url.into()),
        ("swfUrl", info.request.swf_url.into()),
        ("tcUrl", info.request.tc_url.into()),
        ("url", url.into()),
        ("name", info.request.stream.into()),
        ("type", kind.as_str().into()),
        ("publish", kind.is_publish().into()),
        ("alive", c.alive().as_secs_f64().into()),
        ("send_bytes", w.into()),
        ("recv_bytes", r.into()),
        ("kbps", kbps(kr, kw)),
    ])
}

fn clients(ctx: &Context, id: Option<&str>, query: Option<&str>, delete: bool) -> Value {
    match id {
        None => {
            let (start, count) = paging(query);
            let all = ctx.stats.clients();
            let list: Vec<Value> = all
                .iter()
                .skip(start)
                .take(count)
                .map(|c| client_object(ctx, c))
                .collect();
            let mut v = with(code::OK, "clients", Value::Arr(list));
            v.push("total", all.len());
            v
        }
        Some(id) => {
            let Some(c) = id.parse::<u32>().ok().and_then(|id| ctx.stats.client(id)) else {
                return envelope(code::CLIENT_NOT_FOUND);
            };
            if delete {
                ::log::warn!("kick client {} by the HTTP API", c.id);
                c.kick.notify_one();
                envelope(code::OK)
            } else {
                with(code::OK, "client", client_object(ctx, &c))
            }
        }
    }
}

/// `/api/v1/raw`, as SRS 6's `SrsGoApiRaw`:
/// - `rpc=raw` answers code 0 and the `http_api` block (`enabled`, `listen`, `crossdomain`,
///   `raw_api{enabled, allow_reload, allow_query, allow_update}`) whether or not the raw API
///   is enabled: SRS's console reads its config page from it. `allow_query`/`allow_update`
///   are always false (SRS 6 removed both); `crossdomain` is true (srsd always sends CORS).
/// - anything else needs `raw_api.enabled` (else 1061); `rpc=reload` also `allow_reload`
///   (else 1061); `reload-fetch` tells how the last reload went (`data{err, msg, state,
///   rid}`, see [`crate::app::shared::ReloadStatus`]); a missing or unknown rpc is 1060.
fn raw(ctx: &Context, query: Option<&str>) -> Value {
    let config = ctx.config();
    let api = &config.http_api;
    let raw = &api.raw_api;
    let rpc = query_param(query, "rpc");
    if rpc.as_deref() == Some("raw") {
        return with(
            code::OK,
            "http_api",
            obj([
                ("enabled", api.enabled.into()),
                ("listen", api.listen.as_str().into()),
                ("crossdomain", true.into()),
                (
                    "raw_api",
                    obj([
                        ("enabled", raw.enabled.into()),
                        ("allow_reload", raw.allow_reload.into()),
                        ("allow_query", false.into()),
                        ("allow_update", false.into()),
                    ]),
                ),
            ]),
        );
    }
    if !raw.enabled {
        return envelope(code::RAW_DISABLED);
    }
    match rpc.as_deref() {
        Some("reload") if raw.allow_reload => {
            ::log::info!("reload requested by the HTTP API");
            ctx.reload.notify_one();
            envelope(code::OK)
        }
        Some("reload") => envelope(code::RAW_DISABLED),
        Some("reload-fetch") => {
            let s = ctx
                .reload_status
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            with(
                code::OK,
                "data",
                obj([
                    ("err", s.err.into()),
                    ("msg", s.msg.into()),
                    ("state", u32::from(s.state).into()),
                    ("rid", s.rid.into()),
                ]),
            )
        }
        _ => envelope(code::RAW),
    }
}

#[cfg(test)]
mod tests;
