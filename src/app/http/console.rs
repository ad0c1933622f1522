//! The web console and its player page (CONTRACTS.md §5): our own HTML, CSS and JavaScript
//! from `www/console/`, embedded in the binary (cargo feature `console`; no build step, no
//! framework, nothing fetched from another site).
//!
//! - API port (`http_api.listen`): `/` redirects to `/console/`; `/console/` is the console,
//!   which reads the SRS API of the same origin, so the API's Basic auth covers it and no CORS
//!   is involved. `/console/info.json` adds what the SRS API does not say (ports, play mounts,
//!   per-vhost HLS/DVR/forward, reload allowed, video frame counts) and `/console/config.toml`
//!   is the running config's text with secrets masked.
//! - HTTP server (`http_server.listen`): the player (`/console/play.html`, its script and style,
//!   a public `info.json` with only the play mounts), and at `/` an index of the live streams
//!   when `http_server.dir` has no `index.html` of its own.
//! - Both: `/console/lib/*` are the player libraries (mpegts.js, hls.js) from `console.www`
//!   (packaged, never embedded: they weigh ~650 KB).

use super::{cors, static_files, text, Conn};
use crate::app::runtime::body::Body;
use crate::app::runtime::json::{obj, Value};
use crate::app::shared::Context;
use crate::config::{Config, VhostConfig, DEFAULT_VHOST};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::path::{Path, PathBuf};

/// One embedded file of `www/console/`.
struct Asset {
    name: &'static str,
    mime: &'static str,
    /// The file gzip-compressed (by build.rs), served as it is with `Content-Encoding: gzip`.
    body: &'static [u8],
    /// Served by the HTTP server too (the player and what it needs), not only on the API port.
    public: bool,
}

#[cfg(feature = "console")]
macro_rules! asset {
    ($name:literal, $mime:literal, $public:literal) => {
        Asset {
            name: $name,
            mime: $mime,
            body: include_bytes!(concat!(env!("OUT_DIR"), "/console/", $name, ".gz")),
            public: $public,
        }
    };
}

#[cfg(feature = "console")]
const ASSETS: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8", false),
    asset!("console.js", "application/javascript", false),
    asset!("console.css", "text/css", true),
    asset!("play.html", "text/html; charset=utf-8", true),
    asset!("play.js", "application/javascript", true),
];

#[cfg(not(feature = "console"))]
const ASSETS: &[Asset] = &[];

/// Bytes of the embedded console, compressed (0 when built without the `console` feature).
pub fn embedded_bytes() -> usize {
    ASSETS.iter().map(|a| a.body.len()).sum()
}

/// Where the player libraries are looked for when `console.www` is empty, in order.
pub const WWW_DEFAULTS: [&str; 2] = ["/usr/share/srsd/www", "target/www"];

/// The player library files, relative to the www directory.
pub const LIBS: [&str; 2] = ["lib/mpegts.js", "lib/hls.min.js"];

/// The www directory in use: `console.www`, else the first default that has the libraries.
pub fn www_dir(config: &Config) -> Option<PathBuf> {
    if !config.console.www.is_empty() {
        return Some(PathBuf::from(&config.console.www));
    }
    WWW_DEFAULTS
        .iter()
        .map(PathBuf::from)
        .find(|d| d.join(LIBS[0]).is_file())
}

fn enabled(ctx: &Context) -> bool {
    cfg!(feature = "console") && ctx.config().console.enabled
}

/// Requests of the API port: `/`, `/console`, `/console/...`. `None` lets the API answer.
/// The caller has already checked the API's Basic auth.
pub async fn handle_api(
    conn: &Conn,
    req: &Request<hyper::body::Incoming>,
) -> Option<Response<Body>> {
    if !enabled(&conn.ctx) {
        return None;
    }
    let path = req.uri().path();
    if path == "/" || path == "/console" {
        return Some(redirect("/console/"));
    }
    let name = path.strip_prefix("/console/")?;
    Some(serve(conn, req, name, true).await)
}

/// Requests of the HTTP server: `/` (when `http_server.dir` has no index.html) and the
/// player's files. `None` lets the static files answer.
pub async fn handle_files(
    conn: &Conn,
    req: &Request<hyper::body::Incoming>,
) -> Option<Response<Body>> {
    if !enabled(&conn.ctx) {
        return None;
    }
    let path = req.uri().path();
    if path == "/" {
        let own = Path::new(&conn.ctx.config().http_server.dir).join("index.html");
        if tokio::task::spawn_blocking(move || own.is_file())
            .await
            .unwrap_or(false)
        {
            return None;
        }
        return Some(html(index_page(&conn.ctx)));
    }
    let name = path.strip_prefix("/console/")?;
    let public = name == "info.json"
        || name.starts_with("lib/")
        || ASSETS.iter().any(|a| a.public && a.name == name);
    if !public {
        return None;
    }
    Some(serve(conn, req, name, false).await)
}

/// A file under `/console/`: embedded, generated, or a player library.
async fn serve(
    conn: &Conn,
    req: &Request<hyper::body::Incoming>,
    name: &str,
    full: bool,
) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let name = if name.is_empty() { "index.html" } else { name };
    match name {
        "info.json" => return json(info(&conn.ctx, full)),
        "config.toml" if full => return config_text(&conn.ctx),
        _ => {}
    }
    if let Some(lib) = name.strip_prefix("lib/") {
        let Some(root) = www_dir(&conn.ctx.config()) else {
            return text(
                StatusCode::NOT_FOUND,
                "player libraries not installed: run packaging/web-assets.sh /usr/share/srsd/www \
                 (or target/www in a source checkout), or set console.www\n",
            );
        };
        return static_files::serve(conn, req, root.join("lib"), lib).await;
    }
    match ASSETS.iter().find(|a| a.name == name && (full || a.public)) {
        Some(_) if !accepts_gzip(req.headers().get(header::ACCEPT_ENCODING)) => text(
            StatusCode::NOT_ACCEPTABLE,
            "the console is served gzip-compressed (Accept-Encoding: gzip), as every browser \
             takes it; its sources are www/console/ in srsd's repository\n",
        ),
        Some(a) => {
            let mut r = Response::new(Body::full(a.body));
            let h = r.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static(a.mime));
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
            h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            r
        }
        None => text(StatusCode::NOT_FOUND, "not found\n"),
    }
}

/// Whether a request with this `Accept-Encoding` takes a gzip-compressed body (RFC 9110
/// §12.5.3): without the header any coding is acceptable; with it, `gzip`, `x-gzip` or `*`
/// must be listed with a nonzero weight (an empty value asks for no coding at all).
fn accepts_gzip(accept: Option<&HeaderValue>) -> bool {
    let Some(value) = accept else {
        return true;
    };
    let Ok(value) = value.to_str() else {
        return false;
    };
    value.split(',').any(|item| {
        let mut params = item.split(';');
        let coding = params.next().unwrap_or("").trim();
        let named = ["gzip", "x-gzip", "*"]
            .iter()
            .any(|c| coding.eq_ignore_ascii_case(c));
        let weight = params
            .filter_map(|p| p.trim().strip_prefix("q=").or(p.trim().strip_prefix("Q=")))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        named && weight > 0.0
    })
}

fn redirect(to: &'static str) -> Response<Body> {
    let mut r = Response::new(Body::empty());
    *r.status_mut() = StatusCode::FOUND;
    r.headers_mut()
        .insert(header::LOCATION, HeaderValue::from_static(to));
    r
}

fn json(v: Value) -> Response<Body> {
    let mut r = Response::new(Body::full(v.to_json()));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    cors(h);
    r
}

fn html(body: String) -> Response<Body> {
    let mut r = Response::new(Body::full(body));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// A vhost's mount with `[vhost]` resolved as `live::find` matches it: `(host, path)`, the
/// host empty when the mount matches any host.
fn mount_of(name: &str, template: &str) -> (String, String) {
    let mut t = template.replace("[vhost]", name);
    if name == DEFAULT_VHOST {
        t = t.replace(&format!("{DEFAULT_VHOST}/"), "/");
    }
    match t.strip_prefix('/') {
        Some(_) => (String::new(), t),
        None => match t.split_once('/') {
            Some((host, path)) => (host.to_string(), format!("/{path}")),
            None => (String::new(), format!("/{t}")),
        },
    }
}

/// The play mounts of a vhost: HTTP-FLV (and HTTP-TS beside it), HLS; null when off.
fn play_mounts(name: &str, v: &VhostConfig) -> Vec<(&'static str, Value)> {
    let remux = v
        .http_remux
        .enabled
        .then(|| mount_of(name, &v.http_remux.mount));
    let hls = v
        .hls
        .enabled
        .then(|| format!("/{}", v.hls.m3u8_file.trim_start_matches('/')));
    vec![
        (
            "remux_host",
            remux
                .as_ref()
                .map_or(Value::Null, |(h, _)| h.as_str().into()),
        ),
        (
            "remux",
            remux
                .as_ref()
                .map_or(Value::Null, |(_, p)| p.as_str().into()),
        ),
        ("hls", hls.map_or(Value::Null, Value::from)),
    ]
}

/// `/console/info.json`: what the console and the player need beyond the SRS API. `full`
/// (the API port) adds the per-vhost outputs, reload and per-stream counters.
fn info(ctx: &Context, full: bool) -> Value {
    let config = ctx.config();
    let www = www_dir(&config);
    let have = |lib: &str| www.as_ref().is_some_and(|d| d.join(lib).is_file());
    let mut v = obj([
        ("code", 0u32.into()),
        ("version", crate::VERSION.into()),
        ("rtmp_port", u32::from(ctx.rtmp_port).into()),
        ("http_port", u32::from(ctx.http_port).into()),
        (
            "libs",
            obj([
                ("mpegts", have(LIBS[0]).into()),
                ("hls", have(LIBS[1]).into()),
            ]),
        ),
    ]);
    let vhosts = config
        .vhost
        .iter()
        .filter(|(_, vh)| vh.enabled)
        .map(|(name, vh)| {
            let mut o = obj([
                ("id", super::api::vhost_id(name).into()),
                ("name", name.as_str().into()),
            ]);
            for (k, m) in play_mounts(name, vh) {
                o.push(k, m);
            }
            if full {
                o.push("dvr", vh.dvr.enabled);
                o.push(
                    "forward",
                    Value::Arr(match vh.forward.enabled {
                        true => vh
                            .forward
                            .destination
                            .iter()
                            .map(|d| d.as_str().into())
                            .collect(),
                        false => Vec::new(),
                    }),
                );
            }
            o
        })
        .collect();
    v.push("vhosts", Value::Arr(vhosts));
    if full {
        let raw = &config.http_api.raw_api;
        v.push("reload", raw.enabled && raw.allow_reload);
        v.push(
            "www",
            www.map_or(String::new(), |d| d.display().to_string()),
        );
        let streams = ctx
            .hub
            .list()
            .iter()
            .map(|s| {
                obj([
                    ("id", s.id.to_string().into()),
                    ("video_frames", s.stats().video_frames.into()),
                ])
            })
            .collect();
        v.push("streams", Value::Arr(streams));
    }
    v
}

/// The running config's text, with passwords, secrets and tokens masked.
fn config_text(ctx: &Context) -> Response<Body> {
    let config = ctx.config();
    let t = if config.source.0.is_empty() {
        Config::DEFAULT_TOML.to_string()
    } else {
        mask_secrets(&config.source.0)
    };
    let mut r = text(StatusCode::OK, t);
    r.headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    r
}

/// Masks what a config must not show: the string value (or list of strings) of any key whose
/// name says password, secret or token, also inside inline tables; the password of
/// `scheme://user:password@`; and such query parameters in URLs. Comments stay as written.
pub fn mask_secrets(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.lines() {
        if line.trim_start().starts_with('#') {
            out.push_str(line);
        } else {
            out.push_str(&mask_urls(&mask_values(line), secret_name));
        }
        out.push('\n');
    }
    out
}

/// A key or query parameter name that holds a secret.
fn secret_name(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    ["password", "passwd", "secret", "token"]
        .iter()
        .any(|s| k.contains(s))
        || k == "key"
        || k.ends_with("_key")
}

/// Replaces the string values of secret keys on one TOML line (`k = "v"`, `k = ['a', "b"]`,
/// `t = { k = "v" }`) with `"****"`. Only string values: `token_traverse = true` is no secret.
fn mask_values(line: &str) -> String {
    let chars: Vec<char> = line.chars().collect();
    let mut out = String::with_capacity(line.len());
    let mut i = 0;
    // The bare or quoted key read last, outside strings.
    let mut key = String::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' => {
                let end = string_end(&chars, i);
                let s: String = chars[i..end].iter().collect();
                key = s.trim_matches(c).to_string();
                out.push_str(&s);
                i = end;
                continue;
            }
            '=' if secret_name(&key) => {
                out.push('=');
                i += 1;
                while chars.get(i) == Some(&' ') {
                    out.push(' ');
                    i += 1;
                }
                let end = match chars.get(i) {
                    Some('"') | Some('\'') => Some(string_end(&chars, i)),
                    Some('[') => Some(array_end(&chars, i)),
                    _ => None,
                };
                if let Some(end) = end {
                    out.push_str(if chars[i] == '[' {
                        "[\"****\"]"
                    } else {
                        "\"****\""
                    });
                    i = end;
                }
                key.clear();
                continue;
            }
            c if c.is_ascii_alphanumeric() || c == '_' || c == '-' => {
                let joined = i > 0
                    && (chars[i - 1].is_ascii_alphanumeric()
                        || chars[i - 1] == '_'
                        || chars[i - 1] == '-');
                if !joined {
                    key.clear();
                }
                key.push(c);
            }
            ' ' | '\t' => {}
            _ => key.clear(),
        }
        out.push(c);
        i += 1;
    }
    out
}

/// The index after the string that starts at `start` (a `"` string honours `\` escapes); the
/// line's end when it is not closed.
fn string_end(chars: &[char], start: usize) -> usize {
    let q = chars[start];
    let mut i = start + 1;
    while i < chars.len() {
        if q == '"' && chars[i] == '\\' {
            i += 2;
            continue;
        }
        if chars[i] == q {
            return i + 1;
        }
        i += 1;
    }
    chars.len()
}

/// The index after the array that starts at `start` (strings inside skipped); the line's end
/// when it is not closed.
fn array_end(chars: &[char], start: usize) -> usize {
    let (mut depth, mut i) = (0usize, start);
    while i < chars.len() {
        match chars[i] {
            '"' | '\'' => {
                i = string_end(chars, i);
                continue;
            }
            '[' => depth += 1,
            ']' => {
                depth = depth.saturating_sub(1);
                if depth == 0 {
                    return i + 1;
                }
            }
            _ => {}
        }
        i += 1;
    }
    chars.len()
}

/// Masks `user:PASSWORD@` after `://` and `?name=VALUE` / `&name=VALUE` of secret names.
fn mask_urls(line: &str, secret_name: fn(&str) -> bool) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find("://") {
        out.push_str(&rest[..i + 3]);
        rest = &rest[i + 3..];
        let end = rest
            .find(|c: char| c == '"' || c == '\'' || c.is_whitespace())
            .unwrap_or(rest.len());
        let (url, after) = rest.split_at(end);
        let (authority, tail) = url.split_at(url.find(['/', '?']).unwrap_or(url.len()));
        match authority.rsplit_once('@') {
            Some((userinfo, host)) => {
                let user = userinfo.split_once(':').map_or(userinfo, |(u, _)| u);
                out.push_str(user);
                out.push_str(":****@");
                out.push_str(host);
            }
            None => out.push_str(authority),
        }
        let (path, query) = tail.split_at(tail.find('?').unwrap_or(tail.len()));
        out.push_str(path);
        for (i, kv) in query.trim_start_matches('?').split('&').enumerate() {
            if query.is_empty() {
                break;
            }
            out.push(if i == 0 { '?' } else { '&' });
            match kv.split_once('=') {
                Some((k, _)) if secret_name(k) => {
                    out.push_str(k);
                    out.push_str("=****");
                }
                _ => out.push_str(kv),
            }
        }
        rest = after;
    }
    out.push_str(rest);
    out
}

/// Escapes text for HTML.
fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            o.push(b as char);
        } else {
            o.push_str(&format!("%{b:02X}"));
        }
    }
    o
}

/// The HTTP server's `/`: the live streams, each with a link to its player.
fn index_page(ctx: &Context) -> String {
    let mut streams: Vec<_> = ctx
        .hub
        .list()
        .into_iter()
        .filter(|s| s.is_publishing())
        .collect();
    streams.sort_by_key(|s| s.key.url());
    let mut items = String::new();
    for s in &streams {
        let k = &s.key;
        let mut q = format!("app={}&stream={}", enc(&k.app), enc(&k.stream));
        if k.vhost != DEFAULT_VHOST {
            q += &format!("&vhost={}", enc(&k.vhost));
        }
        items += &format!(
            "<li><a href=\"/console/play.html?{}\">{}</a></li>\n",
            esc(&q),
            esc(&k.url())
        );
    }
    if items.is_empty() {
        items = "<li>No stream is live. Publish one, e.g. \
                 <code>ffmpeg -re -i FILE -c copy -f flv rtmp://HOST/live/livestream</code></li>\n"
            .to_string();
    }
    format!(
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <meta name=\"color-scheme\" content=\"light dark\">\
         <title>srsd</title><link rel=\"icon\" href=\"data:,\"><link rel=\"stylesheet\" href=\"/console/console.css\"></head>\
         <body><main><h1>srsd {}</h1><h2>Live streams</h2><ul class=\"index\">\n{items}</ul>\
         </main></body></html>\n",
        esc(crate::VERSION)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_passwords_tokens_and_url_userinfo() {
        let t = "[http_api.auth]\nusername = \"admin\"\npassword = \"hunter2\"\n\
                 # password = \"comment stays\"\n\
                 on_publish = [\"http://u:pw@hooks:8085/api?token=abc&x=1\"]\n\
                 destination = [\"127.0.0.1:19350\"]\ntoken_traverse = true\nwait_keyframe = true\n\
                 auth = { username = \"a\", password = 'pw2', x = 1 }\n\
                 \"secret_key\" = [\"s1\", \"s2\"]\nname = \"password = x\"\n";
        let m = mask_secrets(t);
        assert!(!m.contains("hunter2"), "{m}");
        assert!(!m.contains("pw@"), "{m}");
        assert!(!m.contains("abc"), "{m}");
        assert!(m.contains("username = \"admin\""), "{m}");
        assert!(
            m.contains("http://u:****@hooks:8085/api?token=****&x=1"),
            "{m}"
        );
        assert!(m.contains("# password = \"comment stays\""), "{m}");
        assert!(m.contains("destination = [\"127.0.0.1:19350\"]"), "{m}");
        assert!(
            m.contains("token_traverse = true\nwait_keyframe = true"),
            "{m}"
        );
        assert!(
            m.contains("auth = { username = \"a\", password = \"****\", x = 1 }"),
            "{m}"
        );
        assert!(m.contains("\"secret_key\" = [\"****\"]"), "{m}");
        assert!(m.contains("name = \"password = x\""), "{m}");
        assert!(!m.contains("pw2") && !m.contains("s1"), "{m}");
    }

    #[test]
    fn masking_any_text_keeps_its_lines_and_never_panics() {
        use crate::protocol::testutil::{fuzz, text, TEXT_PIECES};
        let pieces: Vec<&str> = TEXT_PIECES
            .iter()
            .copied()
            .chain([
                "password", "=", "\"", "'", "[", "]", "{", "://", "@", "\\", "\n",
            ])
            .collect();
        fuzz("mask secrets", 0xC0_5E, 2_000, |rng| {
            let t = text(rng, &pieces, 24);
            let m = mask_secrets(&t);
            assert_eq!(m.lines().count(), t.lines().count(), "{t:?} -> {m:?}");
        });
    }

    #[test]
    fn mounts_resolve_as_the_live_mounts_match() {
        assert_eq!(
            mount_of(DEFAULT_VHOST, "[vhost]/[app]/[stream].flv"),
            (String::new(), "/[app]/[stream].flv".to_string())
        );
        assert_eq!(
            mount_of("example.com", "[vhost]/[app]/[stream].flv"),
            ("example.com".to_string(), "/[app]/[stream].flv".to_string())
        );
        assert_eq!(
            mount_of("v", "/live/[stream].flv"),
            (String::new(), "/live/[stream].flv".to_string())
        );
    }

    /// The console is embedded in every board's binary: it must stay small (no framework).
    #[test]
    fn embedded_console_stays_small() {
        assert!(embedded_bytes() < 48 * 1024, "{} bytes", embedded_bytes());
        #[cfg(feature = "console")]
        assert!(ASSETS.iter().all(|a| !a.body.is_empty()));
    }

    #[test]
    fn gzip_is_served_unless_the_client_refuses_it() {
        let h = |v: &'static str| Some(HeaderValue::from_static(v));
        assert!(accepts_gzip(None), "no header: any coding");
        for yes in [
            "gzip",
            "gzip, deflate, br",
            "br;q=1.0, GZIP;q=0.5",
            "*",
            "x-gzip",
        ] {
            assert!(accepts_gzip(h(yes).as_ref()), "{yes}");
        }
        for no in ["", "identity", "br", "gzip;q=0", "gzip; q=0.0, br", "*;q=0"] {
            assert!(!accepts_gzip(h(no).as_ref()), "{no}");
        }
    }

    /// The embedded bytes are the www/console files, gzip-compressed.
    #[cfg(feature = "console")]
    #[test]
    fn embedded_assets_are_the_sources_compressed() {
        use std::io::Read;
        for a in ASSETS {
            let mut text = Vec::new();
            flate2::read::GzDecoder::new(a.body)
                .read_to_end(&mut text)
                .unwrap();
            let src = concat!(env!("CARGO_MANIFEST_DIR"), "/www/console/");
            assert_eq!(
                text,
                std::fs::read(format!("{src}{}", a.name)).unwrap(),
                "{}",
                a.name
            );
        }
    }

    #[test]
    fn index_escapes_names() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
        assert_eq!(enc("a b/c"), "a%20b%2Fc");
    }
}
