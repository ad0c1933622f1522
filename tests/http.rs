//! The HTTP side end to end: static files, bad input, the API, HTTP-FLV, /metrics. The real
//! server on 127.0.0.1:0, raw HTTP/1.1 over TcpStream; every wait is bounded.

mod common;

use bytes::Bytes;
use common::*;
use srsd::client::{MediaKind, RtmpClient, RtmpUrl};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(5);
const REMUX: &str = "[vhost.\"__defaultVhost__\".http_remux]\nenabled = true\n";

#[derive(Debug)]
struct Resp {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Resp {
    fn header(&self, name: &str) -> Option<String> {
        self.head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_string())
        })
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Sends `raw` (a whole request) on a fresh connection and reads the answer until the server
/// closes (requests say `Connection: close`) or `T` passes.
async fn send_raw(addr: SocketAddr, raw: &[u8]) -> Resp {
    let mut s = timeout(T, TcpStream::connect(addr))
        .await
        .expect("connect in time")
        .expect("connect");
    s.write_all(raw).await.expect("write request");
    let mut buf = Vec::new();
    let deadline = Instant::now() + T;
    loop {
        let mut chunk = [0u8; 16384];
        match tokio::time::timeout_at(deadline.into(), s.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => break,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    parse(&buf)
}

fn parse(buf: &[u8]) -> Resp {
    let split = buf
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or(buf.len());
    let head = String::from_utf8_lossy(&buf[..split]).into_owned();
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let mut body = buf.get(split + 4..).unwrap_or_default().to_vec();
    if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        body = dechunk(&body);
    }
    if head.to_ascii_lowercase().contains("content-encoding: gzip") {
        let mut text = Vec::new();
        std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut text)
            .expect("a gzip body");
        body = text;
    }
    Resp { status, head, body }
}

fn dechunk(mut b: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    while let Some(i) = b.windows(2).position(|w| w == b"\r\n") {
        let len = usize::from_str_radix(std::str::from_utf8(&b[..i]).unwrap_or("0").trim(), 16)
            .unwrap_or(0);
        if len == 0 || b.len() < i + 2 + len {
            break;
        }
        out.extend_from_slice(&b[i + 2..i + 2 + len]);
        b = &b[(i + 4 + len).min(b.len())..];
    }
    out
}

async fn request(addr: SocketAddr, method: &str, path: &str, headers: &str) -> Resp {
    let raw = format!(
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n"
    );
    send_raw(addr, raw.as_bytes()).await
}

async fn get(addr: SocketAddr, path: &str) -> Resp {
    request(addr, "GET", path, "").await
}

/// The first value named `key` in a JSON answer, depth first in document order.
fn find<'a>(v: &'a serde_json::Value, key: &str) -> Option<&'a serde_json::Value> {
    match v {
        serde_json::Value::Object(m) => m
            .get(key)
            .or_else(|| m.values().find_map(|inner| find(inner, key))),
        serde_json::Value::Array(items) => items.iter().find_map(|inner| find(inner, key)),
        _ => None,
    }
}

/// The first field `key` of a JSON answer as JSON text (`"H264"` with its quotes, `320`,
/// `{...}`); panics when the answer is not JSON or has no such field.
fn field(json: &str, key: &str) -> String {
    let v: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("not JSON ({e}): {json}"));
    find(&v, key)
        .unwrap_or_else(|| panic!("no field {key} in {json}"))
        .to_string()
}

fn is_str(tok: impl AsRef<str>) -> bool {
    let tok = tok.as_ref();
    tok.len() >= 2 && tok.starts_with('"') && tok.ends_with('"')
}
fn is_num(tok: impl AsRef<str>) -> bool {
    let tok = tok.as_ref();
    !tok.is_empty() && tok.parse::<f64>().is_ok()
}

/// Every API answer carries the SRS envelope.
fn check_envelope(json: &str, code: i64) {
    assert_eq!(field(json, "code"), code.to_string(), "{json}");
    assert!(is_str(field(json, "server")), "{json}");
    assert!(is_str(field(json, "service")), "{json}");
    assert_eq!(
        field(json, "pid"),
        format!("\"{}\"", std::process::id()),
        "{json}"
    );
}

#[tokio::test]
async fn static_files_mime_range_cors_and_cache() {
    let s = start_server("http-static", "").await;
    let http = s.http.expect("http server bound");
    std::fs::create_dir_all(s.dir.join("live")).unwrap();
    std::fs::write(s.dir.join("live/s.m3u8"), "#EXTM3U\n").unwrap();
    std::fs::write(s.dir.join("live/s-1.ts"), b"0123456789").unwrap();
    std::fs::write(s.dir.join("index.html"), "<html></html>").unwrap();
    let big: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(s.dir.join("big.flv"), &big).unwrap();

    let r = get(http, "/live/s.m3u8").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/vnd.apple.mpegurl")
    );
    assert_eq!(r.header("cache-control").as_deref(), Some("no-cache"));
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert_eq!(r.text(), "#EXTM3U\n");

    let r = get(http, "/live/s-1.ts").await;
    assert_eq!(r.header("content-type").as_deref(), Some("video/mp2t"));
    assert!(r.header("cache-control").unwrap().contains("max-age"));

    let r = get(http, "/").await;
    assert_eq!(r.status, 200);
    assert!(r.header("content-type").unwrap().starts_with("text/html"));

    let r = get(http, "/big.flv").await;
    assert_eq!(r.header("content-type").as_deref(), Some("video/x-flv"));
    assert_eq!(
        r.body, big,
        "a file larger than one read chunk arrives whole"
    );

    let r = request(http, "GET", "/live/s-1.ts", "Range: bytes=2-5\r\n").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-range").as_deref(), Some("bytes 2-5/10"));
    assert_eq!(r.body, b"2345");
    let r = request(http, "GET", "/live/s-1.ts", "Range: bytes=-3\r\n").await;
    assert_eq!((r.status, r.body.as_slice()), (206, &b"789"[..]));
    let r = request(http, "GET", "/big.flv", "Range: bytes=100000-\r\n").await;
    assert_eq!(r.status, 206);
    assert_eq!(r.body, &big[100_000..]);
    let r = request(http, "GET", "/live/s-1.ts", "Range: bytes=10-\r\n").await;
    assert_eq!(r.status, 416);
    assert_eq!(r.header("content-range").as_deref(), Some("bytes */10"));

    let r = request(http, "HEAD", "/live/s-1.ts", "").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-length").as_deref(), Some("10"));
    assert!(r.body.is_empty());

    let r = request(http, "OPTIONS", "/live/s.m3u8", "Origin: http://x\r\n").await;
    assert_eq!(r.status, 204);
    assert_eq!(
        r.header("access-control-allow-origin").as_deref(),
        Some("*")
    );
    assert!(r
        .header("access-control-allow-methods")
        .unwrap()
        .contains("GET"));

    assert_eq!(get(http, "/nope.m3u8").await.status, 404);
    assert_eq!(
        request(http, "POST", "/live/s.m3u8", "Content-Length: 0\r\n")
            .await
            .status,
        405
    );

    // Keep-alive: two requests on one connection.
    let raw = b"GET /live/s.m3u8 HTTP/1.1\r\nHost: x\r\n\r\nGET /live/s-1.ts HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    let mut c = TcpStream::connect(http).await.unwrap();
    c.write_all(raw).await.unwrap();
    let mut all = Vec::new();
    let _ = timeout(T, c.read_to_end(&mut all)).await;
    let text = String::from_utf8_lossy(&all);
    assert_eq!(text.matches("HTTP/1.1 200").count(), 2, "{text}");
}

#[tokio::test]
async fn traversal_attempts_are_refused() {
    let s = start_server("http-traversal", "").await;
    let http = s.http.expect("http server bound");
    std::fs::write(s.dir.join("ok.txt"), "ok").unwrap();
    // A symlink out of the root.
    let _ = std::os::unix::fs::symlink("/etc", s.dir.join("etc-link"));
    let outside = temp_path("outside.txt");
    std::fs::write(&outside, "secret").unwrap();
    let _ = std::os::unix::fs::symlink(&outside, s.dir.join("secret.txt"));

    for path in [
        "/../etc/passwd",
        "/../../../../etc/passwd",
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        "/%2E%2E/etc/passwd",
        "/..%2f..%2f..%2fetc/passwd",
        "/x/%2f/etc/passwd",
        "/etc-link/passwd",
        "/secret.txt",
        "//etc/passwd",
        "/%00/etc/passwd",
        "/..\\..\\etc/passwd",
        "http://127.0.0.1/../../etc/passwd",
        "/etc/passwd",
    ] {
        let r = get(http, path).await;
        assert!(
            matches!(r.status, 400 | 403 | 404),
            "{path}: status {}",
            r.status
        );
        assert!(!r.text().contains("root:"), "{path} leaked /etc/passwd");
        assert!(!r.text().contains("secret"), "{path} leaked a file outside");
    }
    assert_eq!(get(http, "/../etc/passwd").await.status, 403);
    assert_eq!(get(http, "/%2e%2e/etc/passwd").await.status, 403);
    assert_eq!(get(http, "/etc-link/passwd").await.status, 403);
    assert_eq!(
        get(http, "/ok.txt").await.status,
        200,
        "the server is still up"
    );
    let _ = std::fs::remove_file(outside);
}

#[tokio::test]
async fn huge_header_is_refused_and_the_server_stays_up() {
    let s = start_server("http-huge", "").await;
    let http = s.http.unwrap();
    std::fs::write(s.dir.join("ok.txt"), "ok").unwrap();
    let big = "a".repeat(100 * 1024);
    let raw = format!("GET /ok.txt HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n");
    let mut c = TcpStream::connect(http).await.unwrap();
    // The server may close before taking everything: a write error is fine.
    let _ = timeout(T, c.write_all(raw.as_bytes())).await;
    let mut buf = Vec::new();
    let _ = timeout(T, c.read_to_end(&mut buf)).await;
    let r = parse(&buf);
    assert!(r.status == 431 || buf.is_empty(), "status {}", r.status);
    // Many headers.
    let many: String = (0..200).map(|i| format!("X-H{i}: v\r\n")).collect();
    let r = request(http, "GET", "/ok.txt", &many).await;
    assert_ne!(r.status, 200);
    assert_eq!(get(http, "/ok.txt").await.text(), "ok");
}

#[tokio::test]
async fn slowloris_and_idle_connections_are_closed() {
    let s = start_server("http-slow", "").await;
    let http = s.http.unwrap();
    let api = s.api.unwrap();
    let started = Instant::now();
    let mut slow = TcpStream::connect(http).await.unwrap();
    slow.write_all(b"GET /index.html HT").await.unwrap();
    let mut idle = TcpStream::connect(api).await.unwrap();
    // Silent on the HTTP server's port, where a live viewer's first request is looked for
    // before hyper sees the connection: the same bound applies there.
    let mut idle_http = TcpStream::connect(http).await.unwrap();
    let open = |c: &std::sync::atomic::AtomicUsize| c.load(std::sync::atomic::Ordering::Relaxed);
    assert!(
        wait_for(T, || open(&s.ctx.connections) >= 2
            && open(&s.ctx.api_connections) >= 1)
        .await,
        "HTTP connections count against max_connections, API ones against the API budget"
    );
    for c in [&mut slow, &mut idle, &mut idle_http] {
        let mut buf = [0u8; 1024];
        let mut closed = false;
        while started.elapsed() < Duration::from_secs(20) {
            match timeout(Duration::from_secs(1), c.read(&mut buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => {
                    closed = true;
                    break;
                }
                _ => {}
            }
        }
        assert!(closed, "connection closed by the server");
    }
    assert!(started.elapsed() < Duration::from_secs(16));
    assert!(
        wait_for(T, || open(&s.ctx.connections) == 0
            && open(&s.ctx.api_connections) == 0)
        .await
    );
}

#[tokio::test]
async fn max_connections_counts_http_and_the_api_has_its_own_budget() {
    let s = start_server("http-max", "max_connections = 2").await;
    let (http, api) = (s.http.unwrap(), s.api.unwrap());
    let _a = TcpStream::connect(http).await.unwrap();
    let _b = TcpStream::connect(http).await.unwrap();
    assert!(
        wait_for(T, || s
            .ctx
            .connections
            .load(std::sync::atomic::Ordering::Relaxed)
            == 2)
        .await
    );
    let r = get(http, "/ok.txt").await;
    assert_eq!(r.status, 0, "the third connection is refused");
    assert!(s.ctx.refused.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    let r = get(api, "/api/v1/versions").await;
    assert_eq!(r.status, 200, "the API answers on a full server");
}

#[tokio::test]
async fn api_answers_with_srs_shapes() {
    let s = start_server("http-api", REMUX).await;
    let api = s.api.unwrap();

    let r = get(api, "/api/v1/versions").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/json")
    );
    let j = r.text();
    check_envelope(&j, 0);
    for k in ["major", "minor", "revision"] {
        assert!(is_num(field(&j, k)), "{k} in {j}");
    }
    assert_eq!(field(&j, "version"), format!("\"{}\"", srsd::VERSION));
    let server_id = field(&j, "server").to_string();
    let j2 = get(api, "/api/v1/versions").await.text();
    assert_eq!(field(&j2, "server"), server_id, "server id is stable");

    let j = get(api, "/api/v1/summaries").await.text();
    check_envelope(&j, 0);
    for k in [
        "mem_kbyte",
        "mem_percent",
        "cpu_percent",
        "srs_uptime",
        "ppid",
        "load_1m",
        "mem_ram_kbyte",
        "conn_sys",
        "net_recv_bytes",
    ] {
        assert!(is_num(field(&j, k)), "{k} in {j}");
    }
    assert!(is_str(field(&j, "argv")) && is_str(field(&j, "cwd")));
    assert_ne!(field(&j, "mem_kbyte"), "0", "RSS read from /proc");

    for path in [
        "rusages",
        "self_proc_stats",
        "system_proc_stats",
        "meminfos",
        "authors",
        "features",
    ] {
        let j = get(api, &format!("/api/v1/{path}")).await.text();
        check_envelope(&j, 0);
        assert!(field(&j, "data").starts_with('{'), "{path}: {j}");
    }

    let j = get(api, "/api/v1/vhosts").await.text();
    check_envelope(&j, 0);
    assert!(j.contains("\"name\":\"__defaultVhost__\""), "{j}");
    let vid = field(&j, "id").to_string();
    let j = get(api, &format!("/api/v1/vhosts/{}", vid.trim_matches('"')))
        .await
        .text();
    check_envelope(&j, 0);
    assert!(field(&j, "vhost").starts_with('{'), "{j}");
    check_envelope(&get(api, "/api/v1/vhosts/nope").await.text(), 2014);

    // A publisher with video and audio headers.
    let url = RtmpUrl::parse(&s.url("live/s")).unwrap();
    let mut p = RtmpClient::connect(&url, T).await.unwrap();
    p.publish(&url.stream, T).await.unwrap();
    p.send(
        MediaKind::Video,
        0,
        Bytes::from_static(&[
            0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E,
        ]),
    )
    .await
    .unwrap();
    p.send(
        MediaKind::Audio,
        0,
        Bytes::from_static(&[0xAF, 0, 0x12, 0x10]),
    )
    .await
    .unwrap();
    for i in 0..10u32 {
        p.send(
            MediaKind::Video,
            i * 40,
            Bytes::from(vec![if i == 0 { 0x17 } else { 0x27 }, 1, 0, 0, 0, 1, 2, 3]),
        )
        .await
        .unwrap();
    }
    assert!(
        wait_for(T, || s
            .ctx
            .hub
            .list()
            .first()
            .is_some_and(|x| x.stats().frames >= 12))
        .await
    );

    let j = get(api, "/api/v1/streams?start=0&count=5").await.text();
    check_envelope(&j, 0);
    assert!(j.contains("\"streams\":[{"), "{j}");
    assert!(is_str(field(&j, "id")));
    assert_eq!(field(&j, "name"), "\"s\"");
    assert_eq!(field(&j, "app"), "\"live\"");
    assert_eq!(field(&j, "url"), "\"/live/s\"");
    assert!(field(&j, "tcUrl").contains("rtmp://127.0.0.1"));
    for k in [
        "live_ms",
        "clients",
        "frames",
        "send_bytes",
        "recv_bytes",
        "recv_30s",
        "send_30s",
        "total",
    ] {
        assert!(is_num(field(&j, k)), "{k} in {j}");
    }
    assert_eq!(field(&j, "active"), "true");
    assert!(is_str(field(&j, "cid")));
    let video = field(&j, "video");
    assert!(video == "null" || video.starts_with('{'), "{j}");
    let sid = field(&j, "id").trim_matches('"').to_string();
    let j = get(api, &format!("/api/v1/streams/{sid}")).await.text();
    check_envelope(&j, 0);
    assert!(field(&j, "stream").starts_with('{'), "{j}");
    check_envelope(&get(api, "/api/v1/streams/999999").await.text(), 2048);

    let j = get(api, "/api/v1/clients").await.text();
    check_envelope(&j, 0);
    assert!(
        j.contains("\"type\":\"fmle-publish\"") || j.contains("\"type\":\"flash-publish\""),
        "{j}"
    );
    assert_eq!(field(&j, "publish"), "true");
    assert!(is_num(field(&j, "alive")));
    for k in [
        "ip", "pageUrl", "swfUrl", "tcUrl", "url", "name", "vhost", "stream",
    ] {
        assert!(is_str(field(&j, k)), "{k} in {j}");
    }
    check_envelope(&get(api, "/api/v1/clients/999999").await.text(), 2049);
    check_envelope(
        &request(api, "DELETE", "/api/v1/clients/999999", "")
            .await
            .text(),
        2049,
    );

    // JSONP.
    let r = get(api, "/api/v1/versions?callback=JSON_CALLBACK").await;
    assert_eq!(
        r.header("content-type").as_deref(),
        Some("application/javascript")
    );
    assert!(
        r.text().starts_with("JSON_CALLBACK({\"code\":0"),
        "{}",
        r.text()
    );
    assert!(r.text().ends_with("})"));
    // A callback that is not a plain name is not echoed.
    let r = get(api, "/api/v1/versions?callback=alert(1)").await;
    assert!(r.text().starts_with('{'));

    // Raw API gate.
    check_envelope(&get(api, "/api/v1/raw?rpc=reload").await.text(), 1061);

    // Unknown paths: HTTP 404 with JSON.
    let r = get(api, "/api/v1/nope").await;
    assert_eq!(r.status, 404);
    check_envelope(&r.text(), 404);
    assert_eq!(
        request(api, "OPTIONS", "/api/v1/versions", "").await.status,
        204
    );

    // /metrics.
    let r = get(api, "/metrics").await;
    assert_eq!(r.status, 200);
    let m = r.text();
    for name in [
        "srsd_streams",
        "srsd_clients",
        "srsd_bytes_received_total",
        "srsd_bytes_sent_total",
        "srsd_drops_total",
        "srsd_connections_refused_total",
        "srsd_uptime_seconds",
        "srsd_rss_bytes",
        "srsd_cpu_seconds_total",
    ] {
        assert!(m.contains(&format!("# TYPE {name} ")), "{name} in {m}");
        assert!(m.contains(&format!("# HELP {name} ")), "{name} in {m}");
    }
    assert!(m.contains("srsd_streams 1\n"), "{m}");
    // The static side does not serve the API when on its own port.
    assert_eq!(get(s.http.unwrap(), "/api/v1/versions").await.status, 404);
    p.close().await;
}

#[tokio::test]
async fn raw_reload_when_allowed() {
    let s = start_server(
        "http-raw",
        "[http_api]\nlisten = \"127.0.0.1:0\"\n[http_api.raw_api]\nenabled = true\nallow_reload = true\n",
    )
    .await;
    let api = s.api.unwrap();
    check_envelope(&get(api, "/api/v1/raw?rpc=reload").await.text(), 0);
    check_envelope(&get(api, "/api/v1/raw?rpc=nope").await.text(), 1060);
    // SRS 6's reload-fetch: how the last reload went.
    let j = api_json(api, "/api/v1/raw?rpc=reload-fetch").await;
    assert_eq!(j["code"], 0, "{j}");
    let d = &j["data"];
    assert_eq!(d["err"], 0, "{j}");
    assert_eq!(d["msg"], "Success", "{j}");
    assert!(d["state"].is_u64(), "{j}");
    assert_eq!(d["rid"].as_str().map(str::len), Some(7), "{j}");
}

#[tokio::test]
async fn delete_kicks_an_rtmp_player() {
    let s = start_server("http-kick", "").await;
    let api = s.api.unwrap();
    let url = RtmpUrl::parse(&s.url("live/k")).unwrap();
    let mut c = RtmpClient::connect(&url, T).await.unwrap();
    c.play(&url.stream, T).await.unwrap();
    let j = get(api, "/api/v1/clients").await.text();
    assert!(j.contains("\"ip\":\"127.0.0.1\""), "{j}");
    let id = field(&j, "id").trim_matches('"').to_string();
    let j = request(api, "DELETE", &format!("/api/v1/clients/{id}"), "")
        .await
        .text();
    check_envelope(&j, 0);
    // The socket closes: recv ends with an error, in time.
    let r = timeout(T, c.recv()).await.expect("closed in time");
    assert!(r.is_err());
    assert!(wait_for(T, || s.ctx.stats.clients().is_empty()).await);
    let j = get(api, "/api/v1/clients").await.text();
    assert!(j.contains("\"clients\":[]"), "{j}");
}

/// Reads into `buf` until it holds a response head and at least `want` body bytes
/// (chunked decoded).
async fn read_stream(c: &mut TcpStream, buf: &mut Vec<u8>, want: usize) -> (String, Vec<u8>) {
    let deadline = Instant::now() + T;
    loop {
        let r = parse(buf);
        if r.status != 0 && r.body.len() >= want {
            return (r.head, r.body);
        }
        let mut chunk = [0u8; 16384];
        match tokio::time::timeout_at(deadline.into(), c.read(&mut chunk)).await {
            Ok(Ok(n)) if n > 0 => buf.extend_from_slice(&chunk[..n]),
            _ => {
                let r = parse(buf);
                return (r.head, r.body);
            }
        }
    }
}

/// Opens an HTTP-FLV viewer of `path`: as the connection's first request (taken at accept,
/// written to the socket by the viewer's task), or `via_hyper` as the second request on a
/// keep-alive connection (hyper serves it through the body channel). Returns the connection
/// and what was read of the viewer's answer (its head at least).
async fn open_flv_viewer(http: SocketAddr, path: &str, via_hyper: bool) -> (TcpStream, Vec<u8>) {
    let mut v = TcpStream::connect(http).await.unwrap();
    let first = "GET /absent.txt HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let ask = format!(
        "{}GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        if via_hyper { first } else { "" }
    );
    v.write_all(ask.as_bytes()).await.unwrap();
    let mut buf = Vec::new();
    if via_hyper {
        // The 404's head and body (it has a Content-Length), then the viewer's answer.
        let (head, _) = read_stream(&mut v, &mut buf, 0).await;
        assert!(head.starts_with("HTTP/1.1 404"), "{head}");
        let len: usize = parse(&buf)
            .header("content-length")
            .unwrap()
            .parse()
            .unwrap();
        let end = head.len() + 4 + len;
        while buf.len() < end + 4 {
            let mut chunk = [0u8; 4096];
            let n = timeout(T, v.read(&mut chunk)).await.unwrap().unwrap();
            assert!(n > 0, "the connection stays open after the 404");
            buf.extend_from_slice(&chunk[..n]);
        }
        buf.drain(..end);
    }
    let (head, _) = read_stream(&mut v, &mut buf, 0).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: video/x-flv"),
        "{head}"
    );
    (v, buf)
}

#[tokio::test]
async fn http_flv_viewer_gets_header_tags_and_can_be_kicked() {
    let s = start_server("http-flv", REMUX).await;
    let http = s.http.unwrap();
    let api = s.api.unwrap();
    // The viewers come first (one on the socket, one through hyper); the publisher later.
    let mut viewers = Vec::new();
    for via_hyper in [false, true] {
        viewers.push(open_flv_viewer(http, "/live/f.flv", via_hyper).await);
    }

    let url = RtmpUrl::parse(&s.url("live/f")).unwrap();
    let mut p = RtmpClient::connect(&url, T).await.unwrap();
    p.publish(&url.stream, T).await.unwrap();
    p.send(
        MediaKind::Video,
        1000,
        Bytes::from_static(&[
            0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E,
        ]),
    )
    .await
    .unwrap();
    let frame = Bytes::from(vec![0x17, 1, 0, 0, 0, 9, 9, 9, 9]);
    p.send(MediaKind::Video, 1000, frame.clone()).await.unwrap();
    p.send(
        MediaKind::Video,
        1040,
        Bytes::from(vec![0x27, 1, 0, 0, 0, 8]),
    )
    .await
    .unwrap();
    // A frame bigger than what a batch copies beside its header (written from the frame).
    let big: Vec<u8> = [0x27, 1, 0, 0, 0]
        .into_iter()
        .chain((0..3000u32).map(|i| i as u8))
        .collect();
    p.send(MediaKind::Video, 1080, Bytes::from(big.clone()))
        .await
        .unwrap();
    // header(13) + sh tag (11+17+4) + key tag (11+9+4) + inter tag (11+6+4) + big tag
    let want = 13 + 32 + 24 + 21 + 11 + big.len() + 4;
    for (v, buf) in &mut viewers {
        let (_, body) = read_stream(v, buf, want).await;
        assert!(body.len() >= want, "got {} bytes", body.len());
        // The header waits for the first media and flags the tracks the stream has: video.
        assert_eq!(&body[..13], b"FLV\x01\x01\x00\x00\x00\x09\x00\x00\x00\x00");
        let tags = &body[13..];
        assert_eq!(tags[0], 9, "video tag");
        assert_eq!(&tags[1..4], &[0, 0, 17], "sequence header size");
        let t2 = &tags[32..];
        assert_eq!(&t2[1..4], &[0, 0, 9]);
        assert_eq!(&t2[11..20], &frame[..], "payload");
        assert_eq!(&t2[20..24], &[0, 0, 0, 20], "previous tag size");
        let t3 = &tags[56..];
        let ts = u32::from_be_bytes([t3[7], t3[4], t3[5], t3[6]]);
        let ts2 = u32::from_be_bytes([t2[7], t2[4], t2[5], t2[6]]);
        assert_eq!(ts - ts2, 40, "timestamps keep their spacing");
        let t4 = &tags[77..];
        assert_eq!(t4[0], 9);
        assert_eq!(&t4[11..11 + big.len()], &big[..], "the big payload");
        let size = (11 + big.len()) as u32;
        assert_eq!(&t4[11 + big.len()..15 + big.len()], &size.to_be_bytes());
    }

    let j = get(api, "/api/v1/clients").await.text();
    assert!(j.contains("\"type\":\"flv-play\""), "{j}");
    let flv: Vec<_> = s
        .ctx
        .stats
        .clients()
        .into_iter()
        .filter(|c| c.info().kind == Some(srsd::app::runtime::stats::ClientType::FlvPlay))
        .collect();
    assert_eq!(flv.len(), 2, "both viewers are registered");
    for (c, (v, _)) in flv.iter().zip(&mut viewers) {
        // Counts reach the client table at most once a second (stats::BYTES_EVERY).
        assert!(
            wait_for(T, || c.bytes().1 >= want as u64).await,
            "bytes sent are counted"
        );
        let j = request(api, "DELETE", &format!("/api/v1/clients/{}", c.id), "")
            .await
            .text();
        check_envelope(&j, 0);
        let mut rest = Vec::new();
        let r = timeout(T, v.read_to_end(&mut rest)).await;
        assert!(r.is_ok(), "the kicked viewer's connection is closed");
    }
    assert!(wait_for(T, || s.ctx.stats.clients().len() == 1).await);
    p.close().await;
}

#[cfg_attr(
    any(srsd_missing = "ffmpeg", srsd_missing = "ffprobe"),
    ignore = "ffmpeg or ffprobe not installed"
)]
#[tokio::test]
async fn ffmpeg_plays_http_flv() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let s = start_server("http-flv-ffmpeg", REMUX).await;
    let http = s.http.unwrap();
    let api = s.api.unwrap();
    let _publisher = ffmpeg_publish(&s.url("live/s"), 15);
    assert!(
        wait_publishing(&s, "live/s", Duration::from_secs(10)).await,
        "ffmpeg published"
    );
    let out = s.dir.join("out.flv");
    let mut play = Proc(
        std::process::Command::new("ffmpeg")
            .stderr(child_log("ffmpeg"))
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args([
                "-i",
                &format!("http://127.0.0.1:{}/live/s.flv", http.port()),
            ])
            .args(["-c", "copy", "-t", "3", "-f", "flv"])
            .arg(&out)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("spawn ffmpeg"),
    );
    assert!(
        wait_exit(&mut play, Duration::from_secs(20)).await,
        "ffmpeg played HTTP-FLV"
    );
    let p = ffprobe(out.to_str().unwrap());
    assert_eq!(p.video_codec, "h264");
    assert_eq!(p.audio_codec, "aac");
    assert_eq!((p.width, p.height), (320, 240));

    // The same stream as ADTS audio.
    let out_aac = s.dir.join("out.aac");
    let mut play = Proc(
        std::process::Command::new("ffmpeg")
            .stderr(child_log("ffmpeg"))
            .args(["-hide_banner", "-loglevel", "error", "-y"])
            .args([
                "-i",
                &format!("http://127.0.0.1:{}/live/s.aac", http.port()),
            ])
            .args(["-c", "copy", "-t", "2", "-f", "adts"])
            .arg(&out_aac)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("spawn ffmpeg"),
    );
    assert!(
        wait_exit(&mut play, Duration::from_secs(20)).await,
        "ffmpeg played the .aac mount"
    );
    assert_eq!(ffprobe(out_aac.to_str().unwrap()).audio_codec, "aac");

    let j = get(api, "/api/v1/streams").await.text();
    check_envelope(&j, 0);
    assert_eq!(field(&j, "codec"), "\"H264\"", "{j}");
    assert_eq!(field(&j, "width"), "320", "{j}");
    assert_eq!(field(&j, "height"), "240", "{j}");
    assert!(
        is_str(field(&j, "profile")) && is_str(field(&j, "level")),
        "{j}"
    );
    let audio = field(&j, "audio");
    assert_eq!(field(&audio, "codec"), "\"AAC\"", "{j}");
    assert_eq!(field(&audio, "sample_rate"), "44100", "{j}");
    assert_eq!(field(&audio, "profile"), "\"LC\"", "{j}");
}

#[cfg_attr(
    any(srsd_missing = "ffmpeg", srsd_missing = "ffprobe"),
    ignore = "ffmpeg or ffprobe not installed"
)]
#[tokio::test]
async fn ffmpeg_plays_http_ts() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let s = start_server("http-ts-ffmpeg", REMUX).await;
    let http = s.http.unwrap();
    let api = s.api.unwrap();
    // No publisher yet: a `.ts` path is not a live stream (HLS segments are `.ts` too).
    assert_eq!(get(http, "/live/s.ts").await.status, 404);
    let _publisher = ffmpeg_publish(&s.url("live/s"), 15);
    assert!(
        wait_publishing(&s, "live/s", Duration::from_secs(10)).await,
        "ffmpeg published"
    );

    // Raw: the head, then whole TS packets starting with PAT and PMT.
    let mut v = TcpStream::connect(http).await.unwrap();
    v.write_all(b"GET /live/s.ts HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let (head, body) = read_stream(&mut v, &mut buf, 4 * 188).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let lower = head.to_ascii_lowercase();
    assert!(lower.contains("content-type: video/mp2t"), "{head}");
    assert!(lower.contains("cache-control: no-cache"), "{head}");
    assert!(body.len() >= 4 * 188, "got {} bytes", body.len());
    let pid = |p: &[u8]| (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2]);
    assert_eq!((body[0], pid(&body[..188])), (0x47, 0), "PAT first");
    assert_eq!((body[188], pid(&body[188..])), (0x47, 0x1001), "then PMT");
    assert_eq!(
        pid(&body[376..]),
        0x100,
        "then video (the GOP cache's keyframe)"
    );
    assert!(
        body[376 + 3] & 0x20 != 0 && body[376 + 5] & 0x40 != 0,
        "random access"
    );
    // The viewer shows in the API, and a kick closes it.
    let j = get(api, "/api/v1/clients").await.text();
    assert!(j.contains("\"type\":\"flv-play\""), "{j}");
    let viewer = s
        .ctx
        .stats
        .clients()
        .into_iter()
        .find(|c| c.info().kind == Some(srsd::app::runtime::stats::ClientType::FlvPlay))
        .expect("the viewer is registered");
    let j = request(api, "DELETE", &format!("/api/v1/clients/{}", viewer.id), "")
        .await
        .text();
    check_envelope(&j, 0);
    let mut rest = Vec::new();
    assert!(timeout(T, v.read_to_end(&mut rest)).await.is_ok(), "kicked");

    // ffmpeg plays it, and what it saved decodes without a single error.
    let out = s.dir.join("out.ts");
    let mut play = Proc(
        std::process::Command::new("ffmpeg")
            .stderr(child_log("ffmpeg"))
            .args(["-v", "error", "-y", "-i"])
            .arg(format!("http://127.0.0.1:{}/live/s.ts", http.port()))
            .args(["-c", "copy", "-t", "3", "-f", "mpegts"])
            .arg(&out)
            .stdin(std::process::Stdio::null())
            .spawn()
            .expect("spawn ffmpeg"),
    );
    assert!(
        wait_exit(&mut play, Duration::from_secs(20)).await,
        "ffmpeg played HTTP-TS"
    );
    let o = out.to_str().unwrap().to_string();
    let p = tokio::task::spawn_blocking(move || ffprobe(&o))
        .await
        .unwrap();
    assert_eq!(
        (p.video_codec.as_str(), p.audio_codec.as_str()),
        ("h264", "aac"),
        "{p:?}"
    );
    assert_eq!((p.width, p.height), (320, 240));
    assert!(p.video_frames >= 50, "{} frames in 3 s", p.video_frames);
    let decode = std::process::Command::new("timeout")
        .args(["30", "ffmpeg", "-v", "error", "-i"])
        .arg(&out)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&decode.stderr);
    assert!(
        decode.status.success() && errors.trim().is_empty(),
        "ffmpeg reported: {errors}"
    );
}

/// Runs `srsd bench ARGS` (the real binary) and returns its exit success and stdout.
async fn run_bench(args: Vec<String>) -> (bool, String) {
    tokio::task::spawn_blocking(move || {
        let out = std::process::Command::new("timeout")
            .arg("30")
            .arg(env!("CARGO_BIN_EXE_srsd"))
            .arg("bench")
            .args(&args)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    })
    .await
    .unwrap()
}

#[cfg_attr(srsd_missing = "ffmpeg", ignore = "ffmpeg not installed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_flv_reads_http_flv_with_n_viewers() {
    if !have("ffmpeg") {
        return;
    }
    let s = start_server("bench-flv", REMUX).await;
    let http = s.http.unwrap();
    let _publisher = ffmpeg_publish(&s.url("live/b"), 15);
    assert!(
        wait_publishing(&s, "live/b", Duration::from_secs(10)).await,
        "ffmpeg published"
    );
    let url = format!("http://127.0.0.1:{}/live/b.flv", http.port());
    let args = ["flv", &url, "-n", "5", "--duration", "3", "--ramp", "10"];
    let (ok, out) = run_bench(args.iter().map(|s| s.to_string()).collect()).await;
    assert!(ok, "{out}");
    assert!(out.contains("[bench] t=1s connected=5/5"), "{out}");
    assert!(out.contains("played=5/5"), "{out}");
    assert!(out.contains("received_media=5/5"), "{out}");
    assert!(out.contains("connect_failures=0"), "{out}");
    // About 70 kbit/s a viewer for 3 s, plus the GOP cache: well over 10 KB each.
    let mb: f64 = out
        .split("total=")
        .nth(1)
        .and_then(|t| t.split("MB").next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    assert!(mb > 0.05, "{out}");

    // A stream nobody publishes (and no such file) is a failure, exit code 1.
    let url = format!("http://127.0.0.1:{}/nope/x.m3u8", http.port());
    let (ok, out) = run_bench(
        ["hls", &url, "-n", "1", "--duration", "1"]
            .iter()
            .map(|s| s.to_string())
            .collect(),
    )
    .await;
    assert!(!ok, "{out}");
    assert!(out.contains("connect_failures=1"), "{out}");
}

/// GET `path` on the API and parse the answer.
async fn api_json(api: SocketAddr, path: &str) -> serde_json::Value {
    let r = get(api, path).await;
    serde_json::from_slice(&r.body).unwrap_or_else(|e| panic!("{path}: {e}: {}", r.text()))
}

/// What SRS 6.0.157's own tools read: percentages as 0–1 floats, integer rusage seconds,
/// float `alive`, the feature keys, `raw?rpc=raw`, and an HTTP viewer's tcUrl without its
/// file.
#[tokio::test]
async fn api_values_have_srs6_types_and_units() {
    let s = start_server("http-api-srs6", REMUX).await;
    let api = s.api.unwrap();

    // Percentages are fractions (SRS's console multiplies by 100): under a busy second a
    // CPU share stays within the number of CPUs, never near 100. (A new CPU figure needs a
    // second of wall clock since the last one.)
    let _ = api_json(api, "/api/v1/summaries").await;
    let busy = std::thread::spawn(|| {
        let until = Instant::now() + Duration::from_millis(1100);
        let mut x = 0u64;
        while Instant::now() < until {
            x = x.wrapping_mul(31).wrapping_add(1);
        }
        x
    });
    let _ = busy.join();
    let j = api_json(api, "/api/v1/summaries").await;
    assert_eq!(j["code"], 0);
    let d = &j["data"];
    let cpus = d["system"]["cpus_online"].as_f64().expect("cpus_online") + 0.5;
    for (obj, k, max) in [
        ("self", "cpu_percent", cpus),
        ("self", "mem_percent", 1.0),
        ("system", "cpu_percent", 1.0),
        ("system", "disk_busy_percent", 1.0),
        ("system", "mem_ram_percent", 1.0),
        ("system", "mem_swap_percent", 1.0),
    ] {
        let v = &d[obj][k];
        assert!(v.is_f64(), "{obj}.{k} is a float: {v}");
        let f = v.as_f64().unwrap_or(-1.0);
        assert!((0.0..=max).contains(&f), "{obj}.{k} = {f} in 0..={max}");
    }
    assert!(d["system"]["mem_ram_percent"].as_f64() > Some(0.0));
    for k in ["uptime", "ilde_time", "load_1m"] {
        assert!(d["system"][k].is_f64(), "system.{k}: {}", d["system"][k]);
    }
    for k in ["mem_kbyte", "srs_uptime", "pid"] {
        assert!(d["self"][k].is_u64(), "self.{k}: {}", d["self"][k]);
    }
    let j = api_json(api, "/api/v1/meminfos").await;
    for k in ["percent_ram", "percent_swap"] {
        let f = j["data"][k].as_f64().expect(k);
        assert!(
            j["data"][k].is_f64() && (0.0..=1.0).contains(&f),
            "{k}: {f}"
        );
    }
    let d = &j["data"];
    assert_eq!(
        d["MemActive"].as_u64(),
        Some(d["MemTotal"].as_u64().unwrap_or(0) - d["MemFree"].as_u64().unwrap_or(0)),
        "SRS's MemActive is total - free"
    );
    for path in ["self_proc_stats", "system_proc_stats"] {
        let j = api_json(api, &format!("/api/v1/{path}")).await;
        let p = &j["data"]["percent"];
        assert!(
            p.is_f64() && p.as_f64() <= Some(cpus),
            "{path}.percent: {p}"
        );
    }
    // rusage seconds are integers (SRS writes tv_sec).
    let j = api_json(api, "/api/v1/rusages").await;
    for k in ["ru_utime", "ru_stime", "ru_maxrss", "ru_nvcsw"] {
        assert!(j["data"][k].is_u64(), "{k}: {}", j["data"][k]);
    }
    // SRS 6's feature keys.
    let j = api_json(api, "/api/v1/features").await;
    let f = &j["data"]["features"];
    for k in [
        "ssl",
        "hls",
        "hds",
        "callback",
        "api",
        "httpd",
        "dvr",
        "transcode",
        "ingest",
        "stat",
        "caster",
        "complex_send",
        "tcp_nodelay",
        "so_sendbuf",
        "mr",
    ] {
        assert!(f[k].is_boolean(), "features.{k}: {f}");
    }
    assert_eq!(f["complex_send"], true);
    assert_eq!(f["tcp_nodelay"], true);
    // rpc=raw answers even with the raw API disabled; the rest needs it.
    let j = api_json(api, "/api/v1/raw?rpc=raw").await;
    assert_eq!(j["code"], 0, "{j}");
    let h = &j["http_api"];
    assert_eq!(h["enabled"], true, "{j}");
    assert!(h["listen"].is_string(), "{j}");
    assert_eq!(h["crossdomain"], true, "{j}");
    for (k, want) in [
        ("enabled", false),
        ("allow_reload", false),
        ("allow_query", false),
        ("allow_update", false),
    ] {
        assert_eq!(h["raw_api"][k], want, "raw_api.{k}: {j}");
    }
    assert_eq!(api_json(api, "/api/v1/raw?rpc=reload").await["code"], 1061);
    assert_eq!(
        api_json(api, "/api/v1/raw?rpc=reload-fetch").await["code"],
        1061
    );
    assert_eq!(api_json(api, "/api/v1/raw").await["code"], 1061);

    // An HTTP-FLV viewer: tcUrl is http://HOST:PORT/APP (the Host it asked), url /app/stream.
    let http = s.http.unwrap();
    let mut v = TcpStream::connect(http).await.unwrap();
    let host = format!("127.0.0.1:{}", http.port());
    v.write_all(format!("GET /live/o.flv HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    let (head, _) = read_stream(&mut v, &mut buf, 13).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let j = api_json(api, "/api/v1/clients").await;
    let c = j["clients"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == "flv-play"))
        .unwrap_or_else(|| panic!("an flv-play client: {j}"));
    assert_eq!(c["tcUrl"], format!("http://{host}/live"), "{c}");
    assert_eq!(c["url"], "/live/o", "{c}");
    assert_eq!(c["name"], "o", "{c}");
    assert!(c["alive"].is_f64(), "alive is float seconds: {c}");
}

#[tokio::test]
async fn raw_api_codes_when_enabled_without_reload() {
    let s = start_server(
        "http-raw-noreload",
        "[http_api]\nlisten = \"127.0.0.1:0\"\n[http_api.raw_api]\nenabled = true\n",
    )
    .await;
    let api = s.api.unwrap();
    let j = api_json(api, "/api/v1/raw?rpc=raw").await;
    assert_eq!(j["code"], 0);
    assert_eq!(j["http_api"]["raw_api"]["enabled"], true, "{j}");
    assert_eq!(j["http_api"]["raw_api"]["allow_reload"], false, "{j}");
    // SRS 6: reload not allowed is 1061, an unknown or missing rpc 1060.
    assert_eq!(api_json(api, "/api/v1/raw?rpc=reload").await["code"], 1061);
    assert_eq!(api_json(api, "/api/v1/raw?rpc=nope").await["code"], 1060);
    assert_eq!(api_json(api, "/api/v1/raw").await["code"], 1060);
}

/// SRS 6's reload flow on the real binary: `rpc=reload`, then `rpc=reload-fetch` until its
/// `rid` changes: state 90 and err 0 when the file was applied, state 10 and err 1023 when
/// it was refused (the old config keeps running).
#[tokio::test]
async fn reload_fetch_tells_how_the_last_reload_went() {
    let dir = temp_dir("http-reload-fetch");
    let api_port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    let conf = dir.join("srsd.toml");
    let text = format!(
        "listen = [\"127.0.0.1:0\"]\npid = \"{d}/srsd.pid\"\nworkers = 1\n[log]\nlevel = \"warn\"\n\
         [http_server]\nenabled = false\n[http_api]\nlisten = \"127.0.0.1:{api_port}\"\n\
         [http_api.raw_api]\nenabled = true\nallow_reload = true\n",
        d = dir.display()
    );
    std::fs::write(&conf, &text).expect("write config");
    let _srsd = Proc(
        std::process::Command::new(env!("CARGO_BIN_EXE_srsd"))
            .arg("-c")
            .arg(&conf)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("run srsd"),
    );
    let api: SocketAddr = format!("127.0.0.1:{api_port}").parse().expect("addr");
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect(api).await.is_err() {
        assert!(Instant::now() < deadline, "the API listens");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // Reloads, then waits for reload-fetch to show a new rid.
    let reload = |before: String| async move {
        assert_eq!(api_json(api, "/api/v1/raw?rpc=reload").await["code"], 0);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let j = api_json(api, "/api/v1/raw?rpc=reload-fetch").await;
            if j["data"]["rid"] != before.as_str() {
                return j["data"].clone();
            }
            assert!(Instant::now() < deadline, "the reload ran: {j}");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };
    let first = api_json(api, "/api/v1/raw?rpc=reload-fetch").await;
    assert_eq!(first["data"]["state"], 0, "{first}");
    let rid = first["data"]["rid"].as_str().unwrap_or("").to_string();

    let ok = reload(rid).await;
    assert_eq!(
        (ok["err"].clone(), ok["state"].clone()),
        (0.into(), 90.into()),
        "{ok}"
    );
    assert_eq!(ok["msg"], "Success", "{ok}");

    std::fs::write(&conf, format!("{text}no_such_key = 1\n")).expect("write config");
    let bad = reload(ok["rid"].as_str().unwrap_or("").to_string()).await;
    assert_eq!(
        (bad["err"].clone(), bad["state"].clone()),
        (1023.into(), 10.into()),
        "{bad}"
    );
    assert!(
        bad["msg"]
            .as_str()
            .is_some_and(|m| m.starts_with("code=1023(ConfigInvalid) : ")),
        "{bad}"
    );
}

/// The console's routes without a browser: `/` of the API redirects, the console sits behind
/// the API's Basic auth, `info.json` and the masked config, and the HTTP server's share (the
/// player, a public `info.json`, the stream index unless `http_server.dir` has its own).
#[tokio::test]
async fn console_routes_auth_and_the_stream_index() {
    let empty = temp_dir("http-console-www");
    let s = start_server(
        "http-console",
        &format!(
            "[http_api]\nlisten = \"127.0.0.1:0\"\n\
             [http_api.auth]\nenabled = true\nusername = \"admin\"\npassword = \"hunter2\"\n\
             [console]\nwww = \"{}\"\n{REMUX}",
            empty.display()
        ),
    )
    .await;
    let (api, http) = (s.api.unwrap(), s.http.unwrap());
    let auth = "Authorization: Basic YWRtaW46aHVudGVyMg==\r\n";
    assert_eq!(get(api, "/console/").await.status, 401);
    assert_eq!(get(api, "/").await.status, 401);
    let r = request(api, "GET", "/", auth).await;
    assert_eq!(
        (r.status, r.header("location").as_deref()),
        (302, Some("/console/"))
    );
    let r = request(api, "GET", "/console/", auth).await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("console.js"), "{}", r.text());
    for f in ["console.js", "console.css", "play.html", "play.js"] {
        let r = request(api, "GET", &format!("/console/{f}"), auth).await;
        assert_eq!(r.status, 200, "{f}");
        // Embedded gzip-compressed, served as such to a client that takes gzip.
        assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"), "{f}");
        let src = std::fs::read(format!("{}/www/console/{f}", env!("CARGO_MANIFEST_DIR")));
        assert_eq!(r.body, src.unwrap(), "{f}");
    }
    let gzip = format!("{auth}Accept-Encoding: gzip, deflate\r\n");
    let r = request(api, "GET", "/console/console.js", &gzip).await;
    assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"));
    // A client that refuses gzip is told why rather than sent bytes it cannot read.
    let identity = format!("{auth}Accept-Encoding: identity\r\n");
    let r = request(api, "GET", "/console/console.js", &identity).await;
    assert_eq!(r.status, 406, "{}", r.text());
    let info = request(api, "GET", "/console/info.json", auth).await.text();
    let j: serde_json::Value = serde_json::from_str(&info).expect("info.json is JSON");
    assert_eq!(j["rtmp_port"], s.addr.port(), "{j}");
    assert_eq!(j["http_port"], http.port(), "{j}");
    assert_eq!(j["reload"], false, "{j}");
    assert_eq!(j["libs"]["mpegts"], false, "{j}");
    assert_eq!(j["vhosts"][0]["remux"], "/[app]/[stream].flv", "{j}");
    let cfg = request(api, "GET", "/console/config.toml", auth)
        .await
        .text();
    assert!(cfg.contains("username = \"admin\""), "{cfg}");
    assert!(!cfg.contains("hunter2"), "{cfg}");
    // Missing libraries say how to get them.
    let r = request(api, "GET", "/console/lib/mpegts.js", auth).await;
    assert_eq!(r.status, 404);
    std::fs::create_dir_all(empty.join("lib")).unwrap();
    std::fs::write(empty.join("lib/mpegts.js"), "// lib").unwrap();
    let r = request(api, "GET", "/console/lib/mpegts.js", auth).await;
    assert_eq!((r.status, r.text().as_str()), (200, "// lib"));

    // The HTTP server: no auth, only the player's files, a public info.json.
    assert_eq!(get(http, "/console/play.html").await.status, 200);
    assert_eq!(get(http, "/console/lib/mpegts.js").await.status, 200);
    assert_eq!(get(http, "/console/index.html").await.status, 404);
    assert_eq!(get(http, "/console/config.toml").await.status, 404);
    let public = get(http, "/console/info.json").await.text();
    assert!(
        public.contains("\"remux\"") && !public.contains("reload"),
        "{public}"
    );
    // `/` lists the live streams with links to their players...
    let url = RtmpUrl::parse(&s.url("live/idx")).unwrap();
    let mut publisher = RtmpClient::connect(&url, T).await.unwrap();
    publisher.publish(&url.stream, T).await.unwrap();
    let deadline = Instant::now() + T;
    let mut index = String::new();
    while Instant::now() < deadline && !index.contains("stream=idx") {
        index = get(http, "/").await.text();
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        index.contains("/console/play.html?app=live&amp;stream=idx"),
        "{index}"
    );
    publisher.close().await;
    // ...unless http_server.dir has an index.html of its own.
    std::fs::write(s.dir.join("index.html"), "mine").unwrap();
    assert_eq!(get(http, "/").await.text(), "mine");
}

/// On one listener serving both the HTTP server and the API, `/` stays the HTTP server's (the
/// stream index) while `/console/` is the console.
#[tokio::test]
async fn shared_listener_keeps_the_index_at_root() {
    // A free port for both keys (port 0 would bind two listeners).
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = temp_dir("http-console-shared-dir");
    let s = start_server(
        "http-console-shared",
        &format!(
            "[http_api]\nlisten = \"127.0.0.1:{port}\"\n\
             [http_server]\nlisten = \"127.0.0.1:{port}\"\ndir = \"{}\"\n",
            dir.display()
        ),
    )
    .await;
    let addr = s.api.expect("api");
    assert_eq!(Some(addr), s.http, "one listener");
    let r = get(addr, "/").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("Live streams"), "{}", r.text());
    let r = get(addr, "/console/").await;
    assert_eq!(r.status, 200);
    assert!(r.text().contains("console.js"), "{}", r.text());
}

/// An HTTP-FLV viewer joining a live stream gets its FLV header and first tags at once
/// (within 50 ms over loopback) with the default `mw_latency` of 350 ms.
#[tokio::test]
async fn http_flv_first_media_within_50ms_at_mw_latency_350() {
    let s = start_server(
        "http-flv-first",
        &format!("{REMUX}[vhost.\"__defaultVhost__\".play]\nmw_latency = 350\n"),
    )
    .await;
    let http = s.http.unwrap();
    let url = RtmpUrl::parse(&s.url("live/ff")).unwrap();
    let mut p = RtmpClient::connect(&url, T).await.unwrap();
    p.publish(&url.stream, T).await.unwrap();
    let sh = Bytes::from_static(&[
        0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E,
    ]);
    p.send(MediaKind::Video, 0, sh).await.unwrap();
    p.send(
        MediaKind::Video,
        0,
        Bytes::from(vec![0x17, 1, 0, 0, 0, 9, 9, 9, 9]),
    )
    .await
    .unwrap();
    assert!(wait_publishing(&s, "live/ff", T).await);
    // Let the server take in what was sent (the cache is filled by then).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut v = TcpStream::connect(http).await.unwrap();
    let asked = Instant::now();
    v.write_all(b"GET /live/ff.flv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = Vec::new();
    // header(13) + sequence header tag (32) + keyframe tag (24)
    let (head, body) = read_stream(&mut v, &mut buf, 13 + 32 + 24).await;
    let took = asked.elapsed();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(body.len() >= 13 + 32 + 24, "got {} bytes", body.len());
    assert!(
        took < Duration::from_millis(50),
        "first media after {took:?} (mw_latency 350)"
    );
    p.close().await;
}
