//! RTMP URL to (vhost, app, stream, param), as CONTRACTS.md §3 states and SRS does.
//!
//! Pure string handling; the app resolves the vhost name against the config afterwards.

use std::fmt;

/// A client's request after URL discovery.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StreamRequest {
    /// The host part of tcUrl (without port).
    pub host: String,
    /// The vhost name asked for (`?vhost=`, `?domain=` or the host), not yet resolved.
    pub vhost: String,
    pub app: String,
    pub stream: String,
    /// The query, with its leading `?`, or empty.
    pub param: String,
    pub port: u16,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UrlError {
    NotRtmp,
    EmptyApp,
    EmptyStream,
    /// A name that could escape a directory when used in a path template.
    UnsafeName(String),
}

impl fmt::Display for UrlError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            UrlError::NotRtmp => f.write_str("tcUrl is not an rtmp:// URL"),
            UrlError::EmptyApp => f.write_str("empty app"),
            UrlError::EmptyStream => f.write_str("empty stream name"),
            UrlError::UnsafeName(n) => write!(f, "unsafe app or stream name {n:?}"),
        }
    }
}

impl std::error::Error for UrlError {}

fn strip_blanks(s: &str) -> String {
    s.chars()
        .filter(|c| !matches!(c, ' ' | '\r' | '\n' | '\t'))
        .collect()
}

/// Splits `s` at the first `?`: (before, query without `?`).
fn split_query(s: &str) -> (&str, &str) {
    match s.find('?') {
        Some(i) => (&s[..i], &s[i + 1..]),
        None => (s, ""),
    }
}

/// Turns SRS's legacy `...vhost...NAME` marker into a `vhost=NAME` query item.
fn legacy_vhost(name: &mut String, queries: &mut Vec<String>) {
    if let Some(i) = name.find("...vhost...") {
        let v = name[i + "...vhost...".len()..].to_string();
        name.truncate(i);
        if !v.is_empty() {
            queries.push(format!("vhost={v}"));
        }
    }
}

/// Reads `key` from a query string (without `?`), first match.
pub fn query_value<'a>(query: &'a str, key: &str) -> Option<&'a str> {
    query.trim_start_matches('?').split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=').unwrap_or((kv, ""));
        (k == key).then_some(v)
    })
}

fn is_safe(name: &str) -> bool {
    !name.split('/').any(|seg| seg == ".." || seg == ".")
        && !name.chars().any(|c| c.is_control() || c == '\\')
}

/// Discovers the request of a publish or play from connect's `tcUrl` and the stream name.
///
/// When the name is empty (OBS with the whole URL in "Server" and no "Stream key" connects to
/// app `live/livestream` and publishes `""`), the last level of the app becomes the stream, as
/// SRS 5+ guesses it (`srs_guess_stream_by_app`): `rtmp://h/live/livestream` + `""` is app
/// `live`, stream `livestream`. A stream that is still empty, or a name that could escape a
/// directory, is an error: nothing may publish or play it.
pub fn parse(tc_url: &str, stream_name: &str) -> Result<StreamRequest, UrlError> {
    let mut r = discover(tc_url, stream_name)?;
    if r.stream.is_empty() {
        if let Some((app, stream)) = r.app.rsplit_once('/') {
            let (app, stream) = (app.trim_end_matches('/').to_string(), stream.to_string());
            r.app = app;
            r.stream = stream;
        }
    }
    if r.app.is_empty() {
        return Err(UrlError::EmptyApp);
    }
    if r.stream.is_empty() {
        return Err(UrlError::EmptyStream);
    }
    if r.stream.contains('/') || !is_safe(&r.stream) {
        return Err(UrlError::UnsafeName(r.stream));
    }
    Ok(r)
}

/// Discovers what `connect`'s tcUrl alone says (no stream yet): host, vhost, app, param.
/// The app is checked; the stream is empty.
pub fn parse_connect(tc_url: &str) -> Result<StreamRequest, UrlError> {
    discover(tc_url, "")
}

/// The common discovery: tcUrl and name split into their parts; app checked, stream not.
fn discover(tc_url: &str, stream_name: &str) -> Result<StreamRequest, UrlError> {
    let tc = strip_blanks(tc_url);
    let rest = tc
        .split_once("://")
        .filter(|(schema, _)| schema.to_ascii_lowercase().starts_with("rtmp"))
        .map(|(_, r)| r)
        .ok_or(UrlError::NotRtmp)?;
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = split_host_port(authority);

    let mut queries: Vec<String> = Vec::new();
    // A query placed before the last `/` (FMLE's `rtmp://ip/app?k=v/stream`, typed whole into
    // OBS's "Server") is moved after the stream: `app/stream?k=v`.
    let moved;
    let path = match path.split_once('?') {
        Some((before, query)) if query.contains('/') => {
            let (query, stream) = query.rsplit_once('/').unwrap_or((query, ""));
            moved = format!("{before}/{stream}?{query}");
            moved.as_str()
        }
        _ => path,
    };
    let (app_part, app_query) = split_query(path);
    if !app_query.is_empty() {
        queries.push(app_query.to_string());
    }
    let mut app = app_part.replace("/_definst_", "");
    if app == "_definst_" {
        app.clear();
    }
    legacy_vhost(&mut app, &mut queries);
    let app = app.trim_matches('/').to_string();

    let name = strip_blanks(stream_name);
    let (stream_part, stream_query) = split_query(&name);
    let mut stream = stream_part.to_string();
    legacy_vhost(&mut stream, &mut queries);
    if !stream_query.is_empty() {
        queries.push(stream_query.to_string());
    }
    let stream = stream.trim_matches('/').to_string();

    let param = if queries.is_empty() {
        String::new()
    } else {
        format!("?{}", queries.join("&"))
    };
    let vhost = query_value(&param, "vhost")
        .or_else(|| query_value(&param, "domain"))
        .filter(|v| !v.is_empty())
        .unwrap_or(host)
        .to_string();

    if app.is_empty() {
        return Err(UrlError::EmptyApp);
    }
    if !is_safe(&app) {
        return Err(UrlError::UnsafeName(app));
    }
    Ok(StreamRequest {
        host: host.to_string(),
        vhost,
        app,
        stream,
        param,
        port,
    })
}

fn split_host_port(authority: &str) -> (&str, u16) {
    if let Some(rest) = authority.strip_prefix('[') {
        // [v6]:port
        if let Some((h, p)) = rest.split_once(']') {
            let port = p
                .strip_prefix(':')
                .and_then(|p| p.parse().ok())
                .unwrap_or(1935);
            return (h, port);
        }
    }
    match authority.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => (h, p.parse().unwrap_or(1935)),
        _ => (authority, 1935),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(host: &str, vhost: &str, app: &str, stream: &str, param: &str) -> StreamRequest {
        StreamRequest {
            host: host.into(),
            vhost: vhost.into(),
            app: app.into(),
            stream: stream.into(),
            param: param.into(),
            port: 1935,
        }
    }

    #[test]
    fn discovery_table() {
        let cases = [
            (
                "rtmp://127.0.0.1/live",
                "s",
                req("127.0.0.1", "127.0.0.1", "live", "s", ""),
            ),
            (
                "rtmp://127.0.0.1:1935/live",
                "s?token=1",
                req("127.0.0.1", "127.0.0.1", "live", "s", "?token=1"),
            ),
            (
                "rtmp://h/live?vhost=v.com",
                "s",
                req("h", "v.com", "live", "s", "?vhost=v.com"),
            ),
            (
                "rtmp://h/live?k=v",
                "s?a=b",
                req("h", "h", "live", "s", "?k=v&a=b"),
            ),
            (
                "rtmp://h/live...vhost...v.com",
                "s",
                req("h", "v.com", "live", "s", "?vhost=v.com"),
            ),
            (
                "rtmp://h/live/_definst_",
                "s",
                req("h", "h", "live", "s", ""),
            ),
            ("rtmp://h/a/b/c", "s", req("h", "h", "a/b/c", "s", "")),
            (
                "rtmp://h/live?domain=d.com",
                "s",
                req("h", "d.com", "live", "s", "?domain=d.com"),
            ),
            (
                "rtmp://h/ live \r\n",
                " s\t",
                req("h", "h", "live", "s", ""),
            ),
            ("rtmp://h/live/", "/s/", req("h", "h", "live", "s", "")),
            ("RTMP://h/live", "s", req("h", "h", "live", "s", "")),
        ];
        for (tc, name, want) in cases {
            assert_eq!(parse(tc, name), Ok(want), "{tc} {name}");
        }
    }

    #[test]
    fn ports_and_ipv6() {
        assert_eq!(parse("rtmp://h:19350/live", "s").unwrap().port, 19350);
        let r = parse("rtmp://[::1]:1936/live", "s").unwrap();
        assert_eq!((r.host.as_str(), r.port), ("::1", 1936));
    }

    #[test]
    fn rejects_bad_names() {
        assert_eq!(parse("http://h/live", "s"), Err(UrlError::NotRtmp));
        assert_eq!(parse("rtmp://h", "s"), Err(UrlError::EmptyApp));
        assert_eq!(parse("rtmp://h/live", "?x=1"), Err(UrlError::EmptyStream));
        assert!(matches!(
            parse("rtmp://h/live", "a/b"),
            Err(UrlError::UnsafeName(_))
        ));
        assert!(matches!(
            parse("rtmp://h/live", ".."),
            Err(UrlError::UnsafeName(_))
        ));
        assert!(matches!(
            parse("rtmp://h/../etc", "s"),
            Err(UrlError::UnsafeName(_))
        ));
        assert!(matches!(
            parse("rtmp://h/live", "s\u{0}x"),
            Err(UrlError::UnsafeName(_))
        ));
        // Connect alone (no stream yet) is fine; a publish or play of nothing is not.
        assert!(parse_connect("rtmp://h/live").is_ok());
        assert_eq!(parse("rtmp://h/live", ""), Err(UrlError::EmptyStream));
        assert_eq!(parse("rtmp://h/live", " / "), Err(UrlError::EmptyStream));
        assert_eq!(parse("rtmp://h/live/", "?k=v"), Err(UrlError::EmptyStream));
        assert!(matches!(
            parse("rtmp://h/live/..", ""),
            Err(UrlError::UnsafeName(_))
        ));
    }

    /// OBS with the whole URL in "Server" and no stream key: the app's last level is the
    /// stream (SRS 5+), whatever else the URL carries.
    #[test]
    fn empty_name_takes_the_stream_from_the_app() {
        let cases = [
            (
                "rtmp://h/live/livestream",
                "",
                req("h", "h", "live", "livestream", ""),
            ),
            (
                "rtmp://h:1936/live/livestream?token=abc",
                "",
                StreamRequest {
                    port: 1936,
                    ..req("h", "h", "live", "livestream", "?token=abc")
                },
            ),
            (
                "rtmp://h/a/b/s?vhost=v.com",
                "",
                req("h", "v.com", "a/b", "s", "?vhost=v.com"),
            ),
            ("rtmp://h/live/s/", "", req("h", "h", "live", "s", "")),
            (
                "rtmp://h/live/s",
                "?k=v",
                req("h", "h", "live", "s", "?k=v"),
            ),
            (
                "rtmp://h/live?secret=x/livestream",
                "",
                req("h", "h", "live", "livestream", "?secret=x"),
            ),
            // A name given wins: the app keeps every level.
            ("rtmp://h/live/x", "s", req("h", "h", "live/x", "s", "")),
        ];
        for (tc, name, want) in cases {
            assert_eq!(parse(tc, name), Ok(want), "{tc} {name:?}");
        }
        // One level only: nothing to take the stream from.
        assert_eq!(parse("rtmp://h/live", ""), Err(UrlError::EmptyStream));
    }

    #[test]
    fn query_values() {
        assert_eq!(query_value("?a=1&vhost=x", "vhost"), Some("x"));
        assert_eq!(query_value("a", "a"), Some(""));
        assert_eq!(query_value("", "a"), None);
    }

    use crate::protocol::testutil::{fuzz, text, TEXT_PIECES};

    #[test]
    fn hostile_tc_urls_and_stream_names_never_panic() {
        let pieces = TEXT_PIECES;
        fuzz("url parse", 0x0E1, 3_000, |rng| {
            let tc_url = text(rng, pieces, 12);
            let stream = text(rng, pieces, 6);
            if let Ok(r) = parse(&tc_url, &stream) {
                // Whatever is accepted is safe to use in paths.
                for name in [&r.app, &r.stream] {
                    assert!(
                        !name.split('/').any(|s| s == ".."),
                        "{tc_url:?} {stream:?}: {r:?}"
                    );
                }
            }
            let _ = query_value(&stream, "vhost");
        });
    }
}
