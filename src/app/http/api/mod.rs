//! The HTTP API, SRS v7 shapes (CONTRACTS.md §5): every answer is a JSON object with `code`
//! (0 = ok), `server`, `service` and `pid` (strings). Errors a handler finds (unknown id, raw
//! API disabled) are HTTP 200 with a non-zero `code`, as SRS answers; only an unknown path is
//! an HTTP 404. `?callback=NAME` wraps the answer as JSONP; `?method=DELETE` stands for DELETE
//! for JSONP clients, as SRS documents.

use super::body::Body;
use super::json::{obj, Value};
use super::{cors, procfs, query_param, Conn};
use crate::app::edge::{Direction, EdgeInfo};
use crate::app::stats::ClientStat;
use crate::app::Context;
use crate::hub::{Frame, Source, StreamKey};
use crate::protocol::codec_info;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

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

/// (server id, service id): random per process, stable while it runs. `server` changing
/// tells a console the server restarted.
/// The server and service ids of this process (the API's `server`/`service`, the hooks'
/// `server_id`/`service_id`).
pub fn server_ids() -> &'static (String, String) {
    ids()
}

fn ids() -> &'static (String, String) {
    static IDS: OnceLock<(String, String)> = OnceLock::new();
    IDS.get_or_init(|| {
        let mut seed = crate::app::log::now_unix_ms()
            ^ ((std::process::id() as u64) << 32)
            ^ (std::time::Instant::now().elapsed().as_nanos() as u64)
            ^ 0x9E37_79B9_7F4A_7C15;
        let mut word = |n: usize| -> String {
            const ALPHABET: &[u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
            (0..n)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    ALPHABET[(seed % 36) as usize] as char
                })
                .collect()
        };
        (format!("vid-{}", word(7)), word(8))
    })
}

/// The envelope every answer carries.
fn envelope(code: i64) -> Value {
    let (server, service) = ids();
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
    ])
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

/// `/proc/meminfo` as SRS's `srs_update_meminfo` reads it: kB values and the two 0–1 ratios.
struct MemInfo {
    total: u64,
    free: u64,
    buffers: u64,
    cached: u64,
    swap_total: u64,
    swap_free: u64,
}

impl MemInfo {
    fn read() -> MemInfo {
        let mem = procfs::kv_file("/proc/meminfo");
        let m = |k: &str| mem.get(k).copied().unwrap_or(0);
        MemInfo {
            total: m("MemTotal"),
            free: m("MemFree"),
            buffers: m("Buffers"),
            cached: m("Cached"),
            swap_total: m("SwapTotal"),
            swap_free: m("SwapFree"),
        }
    }
    /// SRS's `MemActive`: total minus free (not /proc's `Active`).
    fn active(&self) -> u64 {
        self.total.saturating_sub(self.free)
    }
    /// SRS's `RealInUse`: active minus buffers and page cache.
    fn real_in_use(&self) -> u64 {
        self.active()
            .saturating_sub(self.buffers)
            .saturating_sub(self.cached)
    }
    /// `percent_ram`, 0–1.
    fn ram_ratio(&self) -> f64 {
        ratio(self.real_in_use(), self.total)
    }
    /// `percent_swap`, 0–1.
    fn swap_ratio(&self) -> f64 {
        ratio(
            self.swap_total.saturating_sub(self.swap_free),
            self.swap_total,
        )
    }
}

/// `a / b` as SRS's percentages are: a fraction, 0 when `b` is 0.
fn ratio(a: u64, b: u64) -> f64 {
    if b > 0 {
        a as f64 / b as f64
    } else {
        0.0
    }
}

/// The `data` object of `/api/v1/summaries` (SRS `srs_api_dump_summaries`), also sent by the
/// heartbeat. Every `*_percent` is a fraction, 0–1 (`cpu_percent` 0.77 = 77% of one core),
/// as SRS reports it and its console multiplies by 100; byte counters and `*_kbyte` are
/// integers, `uptime`, `ilde_time` and the load averages floats, `srs_uptime` whole seconds.
/// `mem_kbyte` is the current resident size (SRS: the peak, `ru_maxrss`).
pub(crate) fn summaries(ctx: &Context) -> Value {
    let s = procfs::SelfStat::read();
    let mem = MemInfo::read();
    let rss = procfs::rss_kbyte();
    let (own_cpu, sys_cpu) = procfs::cpu_percent();
    let load = procfs::loadavg();
    let (uptime, idle) = procfs::uptime();
    let ((rx, tx), (rxi, txi)) = procfs::net_bytes();
    let (tcp, est, tw, udp) = procfs::connections();
    let (srs_recv, srs_send) = ctx.stats.totals();
    let now = crate::app::log::now_unix_ms();
    let argv = std::env::args().collect::<Vec<_>>().join(" ");
    let cwd = std::env::current_dir()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    obj([
        ("ok", true.into()),
        ("now_ms", now.into()),
        (
            "self",
            obj([
                ("version", crate::VERSION.into()),
                ("pid", std::process::id().into()),
                ("ppid", s.ppid().into()),
                ("argv", argv.into()),
                ("cwd", cwd.into()),
                ("mem_kbyte", rss.into()),
                ("mem_percent", ratio(rss, mem.total).into()),
                ("cpu_percent", own_cpu.into()),
                ("srs_uptime", ctx.started.elapsed().as_secs().into()),
            ]),
        ),
        (
            "system",
            obj([
                ("cpu_percent", sys_cpu.into()),
                ("disk_read_KBps", 0u64.into()),
                ("disk_write_KBps", 0u64.into()),
                ("disk_busy_percent", 0.0.into()),
                ("mem_ram_kbyte", mem.total.into()),
                ("mem_ram_percent", mem.ram_ratio().into()),
                ("mem_swap_kbyte", mem.swap_total.into()),
                ("mem_swap_percent", mem.swap_ratio().into()),
                ("cpus", procfs::cpus_online().into()),
                ("cpus_online", procfs::cpus_online().into()),
                ("uptime", uptime.into()),
                // SRS's spelling, kept for consoles that read it.
                ("ilde_time", idle.into()),
                ("load_1m", load[0].into()),
                ("load_5m", load[1].into()),
                ("load_15m", load[2].into()),
                ("net_sample_time", now.into()),
                ("net_recv_bytes", rx.into()),
                ("net_send_bytes", tx.into()),
                ("net_recvi_bytes", rxi.into()),
                ("net_sendi_bytes", txi.into()),
                ("srs_sample_time", now.into()),
                ("srs_recv_bytes", srs_recv.into()),
                ("srs_send_bytes", srs_send.into()),
                ("conn_sys", tcp.into()),
                ("conn_sys_et", est.into()),
                ("conn_sys_tw", tw.into()),
                ("conn_sys_udp", udp.into()),
                (
                    "conn_srs",
                    ctx.connections
                        .load(std::sync::atomic::Ordering::Relaxed)
                        .into(),
                ),
            ]),
        ),
    ])
}

fn rusages() -> Value {
    let s = procfs::SelfStat::read();
    let st = procfs::kv_file("/proc/self/status");
    let g = |k: &str| st.get(k).copied().unwrap_or(0);
    obj([
        ("ok", true.into()),
        ("sample_time", crate::app::log::now_unix_ms().into()),
        // Whole seconds, integers: SRS writes `ru_utime.tv_sec` and `ru_stime.tv_sec`.
        ("ru_utime", (s.utime() / procfs::TICKS as i64).into()),
        ("ru_stime", (s.stime() / procfs::TICKS as i64).into()),
        ("ru_maxrss", g("VmHWM").into()),
        ("ru_ixrss", 0u64.into()),
        ("ru_idrss", 0u64.into()),
        ("ru_isrss", 0u64.into()),
        ("ru_minflt", s.field(10).into()),
        ("ru_majflt", s.field(12).into()),
        ("ru_nswap", 0u64.into()),
        ("ru_inblock", 0u64.into()),
        ("ru_oublock", 0u64.into()),
        ("ru_msgsnd", 0u64.into()),
        ("ru_msgrcv", 0u64.into()),
        ("ru_nsignals", 0u64.into()),
        ("ru_nvcsw", g("voluntary_ctxt_switches").into()),
        ("ru_nivcsw", g("nonvoluntary_ctxt_switches").into()),
    ])
}

fn self_proc_stats() -> Value {
    let s = procfs::SelfStat::read();
    let (own, _) = procfs::cpu_percent();
    // proc(5) names, fields 4..=44.
    const NAMES: [&str; 41] = [
        "ppid",
        "pgrp",
        "session",
        "tty_nr",
        "tpgid",
        "flags",
        "minflt",
        "cminflt",
        "majflt",
        "cmajflt",
        "utime",
        "stime",
        "cutime",
        "cstime",
        "priority",
        "nice",
        "num_threads",
        "itrealvalue",
        "starttime",
        "vsize",
        "rss",
        "rsslim",
        "startcode",
        "endcode",
        "startstack",
        "kstkesp",
        "kstkeip",
        "signal",
        "blocked",
        "sigignore",
        "sigcatch",
        "wchan",
        "nswap",
        "cnswap",
        "exit_signal",
        "processor",
        "rt_priority",
        "policy",
        "delayacct_blkio_ticks",
        "guest_time",
        "cguest_time",
    ];
    let mut v = obj([
        ("ok", true.into()),
        ("sample_time", crate::app::log::now_unix_ms().into()),
        ("percent", own.into()),
        ("pid", std::process::id().into()),
        ("comm", s.comm.as_str().into()),
        ("state", s.state.as_str().into()),
    ]);
    for (i, name) in NAMES.iter().enumerate() {
        v.push(name, s.field(i + 4));
    }
    v
}

fn system_proc_stats() -> Value {
    let c = procfs::system_cpu();
    let (_, sys) = procfs::cpu_percent();
    obj([
        ("ok", true.into()),
        ("sample_time", crate::app::log::now_unix_ms().into()),
        ("percent", sys.into()),
        ("user", c[0].into()),
        ("nice", c[1].into()),
        ("sys", c[2].into()),
        ("idle", c[3].into()),
        ("iowait", c[4].into()),
        ("irq", c[5].into()),
        ("softirq", c[6].into()),
        ("steal", c[7].into()),
        ("guest", c[8].into()),
    ])
}

/// `/api/v1/meminfos`: SRS's fields and definitions (`MemActive` = total − free,
/// `RealInUse` = active − buffers − cached); `percent_ram`/`percent_swap` are 0–1.
fn meminfos() -> Value {
    let m = MemInfo::read();
    obj([
        ("ok", true.into()),
        ("sample_time", crate::app::log::now_unix_ms().into()),
        ("percent_ram", m.ram_ratio().into()),
        ("percent_swap", m.swap_ratio().into()),
        ("MemActive", m.active().into()),
        ("RealInUse", m.real_in_use().into()),
        ("NotInUse", m.total.saturating_sub(m.real_in_use()).into()),
        ("MemTotal", m.total.into()),
        ("MemFree", m.free.into()),
        ("Buffers", m.buffers.into()),
        ("Cached", m.cached.into()),
        ("SwapTotal", m.swap_total.into()),
        ("SwapFree", m.swap_free.into()),
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
        if s.tc_url.is_empty() || info.kind.is_some_and(|k| k.is_publish()) {
            s.tc_url = info.tc_url;
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
    obj([
        ("id", src.id.to_string().into()),
        ("name", src.key.stream.as_str().into()),
        ("vhost", vhost_id(&src.key.vhost).into()),
        ("app", src.key.app.as_str().into()),
        ("tcUrl", s.tc_url.as_str().into()),
        ("url", src.key.url().into()),
        ("live_ms", crate::app::log::now_unix_ms().into()),
        ("clients", s.clients.into()),
        ("frames", src.stats().frames.into()),
        ("send_bytes", s.send.into()),
        ("recv_bytes", s.recv.into()),
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
    ])
}

/// The stream's codecs from its cached sequence headers: `video`/`audio` objects, or null
/// while unknown.
fn codec_info(src: &Source, parse_sps: bool) -> (Value, Value) {
    let (video_sh, audio_sh) = src.sequence_headers();
    (
        video_sh
            .as_deref()
            .map_or(Value::Null, |sh| video_info(sh, parse_sps)),
        audio_sh.as_deref().map_or(Value::Null, audio_info),
    )
}

/// `video` from a video sequence-header frame (its tag header read by the hub): codec,
/// profile, level, width, height. A record srsd cannot read gives the codec name (when
/// known) with null fields, and a log line; a codec without a name gives null.
pub(crate) fn video_info(sh: &Frame, parse_sps: bool) -> Value {
    let Some(name) = sh.codec().name() else {
        return Value::Null;
    };
    match codec_info::video_info(&sh.tag, sh.data()) {
        Ok(v) => obj([
            ("codec", name.into()),
            ("profile", v.profile.into()),
            ("level", v.level.into()),
            ("width", if parse_sps { v.width } else { 0 }.into()),
            ("height", if parse_sps { v.height } else { 0 }.into()),
        ]),
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
        let mine: Vec<&Arc<ClientStat>> =
            clients.iter().filter(|c| c.info().vhost == name).collect();
        let (mut r, mut w, mut kr, mut kw) = (0, 0, 0, 0);
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
            hls.push("fragment", v.hls.fragment);
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
    let vhost = if info.vhost.is_empty() {
        String::new()
    } else {
        vhost_id(&info.vhost)
    };
    let url = info.key.as_ref().map(StreamKey::url).unwrap_or_default();
    let kind = info.kind.unwrap_or(crate::app::stats::ClientType::Unknown);
    obj([
        ("id", c.id.to_string().into()),
        ("vhost", vhost.into()),
        ("stream", stream_id.into()),
        ("ip", c.ip.as_str().into()),
        ("pageUrl", info.page_url.into()),
        ("swfUrl", info.swf_url.into()),
        ("tcUrl", info.tc_url.into()),
        ("url", url.into()),
        ("name", info.stream.into()),
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
///   rid}`, see [`crate::app::ReloadStatus`]); a missing or unknown rpc is 1060.
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
