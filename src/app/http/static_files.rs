//! Static files from `http_server.dir` (HLS playlists and segments are written there).
//!
//! GET and HEAD, MIME by extension, single `Range`, CORS. The path is refused (403) when it
//! could leave the directory: a `..` segment, a percent-encoded `/` or `\`, NUL, a malformed
//! escape; and a file whose canonical path (symlinks resolved) is outside the canonical root
//! is refused too. Files are read in chunks off the async threads and streamed, never read
//! whole into memory.
//!
//! With `http_server.vod` (on by default, as SRS), recordings are VOD: `.flv?start=BYTES` is
//! answered by [`super::vod`], and `.mp4?range=A-B` is read as a Range header.

use super::{cors, percent_decode, text, Conn};
use crate::app::runtime::body::{Body, Chunks};
use bytes::Bytes;
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Bytes per read (and per body chunk).
const READ_CHUNK: usize = 64 * 1024;
/// Chunks read ahead of the socket.
const READ_AHEAD: usize = 2;
/// A client that takes no chunk for this long is gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The MIME type for a file name's extension.
pub fn mime(path: &Path) -> &'static str {
    let ext = path
        .extension()
        .and_then(OsStr::to_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    match ext.as_str() {
        "m3u8" => "application/vnd.apple.mpegurl",
        "ts" => "video/mp2t",
        "flv" => "video/x-flv",
        "mp4" | "m4s" | "m4v" => "video/mp4",
        "m4a" => "audio/mp4",
        "aac" => "audio/aac",
        "mp3" => "audio/mpeg",
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" => "application/javascript",
        "css" => "text/css",
        "json" => "application/json",
        "txt" | "log" => "text/plain; charset=utf-8",
        "xml" => "application/xml",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "ico" => "image/x-icon",
        "wasm" => "application/wasm",
        "mpd" => "application/dash+xml",
        _ => "application/octet-stream",
    }
}

/// Why a request path was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum PathError {
    /// It tries to leave the root (`..`, encoded separators, NUL).
    Forbidden,
    /// Malformed (bad escape).
    Bad,
}

/// The relative path a request path names under the root, checked segment by segment.
pub fn relative_path(uri_path: &str) -> Result<PathBuf, PathError> {
    let mut rel = PathBuf::new();
    for seg in uri_path.split('/') {
        if seg.is_empty() || seg == "." {
            continue;
        }
        let raw = percent_decode(seg).ok_or(PathError::Bad)?;
        if raw.is_empty() || raw == b"." {
            continue;
        }
        if raw == b".." || raw.iter().any(|&b| b == b'/' || b == b'\\' || b == 0) {
            return Err(PathError::Forbidden);
        }
        rel.push(OsStr::from_bytes(&raw));
    }
    Ok(rel)
}

/// A single byte range, resolved against the file length: (start, end inclusive).
#[derive(Debug, PartialEq, Eq)]
pub enum RangeSpec {
    /// No usable Range header: the whole file.
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

/// Parses `bytes=a-b`, `bytes=a-`, `bytes=-n` for a file of `len` bytes. Several ranges or a
/// malformed header are ignored (the whole file is served, which RFC 9110 allows).
pub fn parse_range(value: &str, len: u64) -> RangeSpec {
    let Some(spec) = value.trim().strip_prefix("bytes=") else {
        return RangeSpec::Whole;
    };
    if spec.contains(',') {
        return RangeSpec::Whole;
    }
    let Some((a, b)) = spec.trim().split_once('-') else {
        return RangeSpec::Whole;
    };
    let (a, b) = (a.trim(), b.trim());
    match (a.is_empty(), b.is_empty()) {
        (true, true) => RangeSpec::Whole,
        (true, false) => match b.parse::<u64>() {
            Ok(0) => RangeSpec::Unsatisfiable,
            Ok(_) if len == 0 => RangeSpec::Unsatisfiable,
            Ok(n) => RangeSpec::Part(len.saturating_sub(n), len - 1),
            Err(_) => RangeSpec::Whole,
        },
        (false, _) => {
            let Ok(start) = a.parse::<u64>() else {
                return RangeSpec::Whole;
            };
            let end = if b.is_empty() {
                len.saturating_sub(1)
            } else {
                match b.parse::<u64>() {
                    Ok(e) if e >= start => e.min(len.saturating_sub(1)),
                    _ => return RangeSpec::Whole,
                }
            };
            if start >= len {
                RangeSpec::Unsatisfiable
            } else {
                RangeSpec::Part(start, end)
            }
        }
    }
}

/// The file to serve: canonical path inside the canonical root, opened, its length.
fn open_inside(root: &Path, rel: &Path) -> Result<(PathBuf, File, u64), StatusCode> {
    let root = root.canonicalize().map_err(|_| StatusCode::NOT_FOUND)?;
    let mut path = root
        .join(rel)
        .canonicalize()
        .map_err(|_| StatusCode::NOT_FOUND)?;
    if !path.starts_with(&root) {
        return Err(StatusCode::FORBIDDEN);
    }
    if path.is_dir() {
        path = path.join("index.html");
        // index.html itself may be a symlink out of the root.
        path = path.canonicalize().map_err(|_| StatusCode::NOT_FOUND)?;
        if !path.starts_with(&root) {
            return Err(StatusCode::FORBIDDEN);
        }
    }
    let file = File::open(&path).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => StatusCode::FORBIDDEN,
        _ => StatusCode::NOT_FOUND,
    })?;
    let meta = file.metadata().map_err(|_| StatusCode::NOT_FOUND)?;
    if !meta.is_file() {
        return Err(StatusCode::NOT_FOUND);
    }
    Ok((path, file, meta.len()))
}

/// Serves the request's path from `http_server.dir`.
pub async fn handle(conn: &Conn, req: &Request<hyper::body::Incoming>) -> Response<Body> {
    let root = PathBuf::from(&conn.ctx.config().http_server.dir);
    serve(conn, req, root, req.uri().path()).await
}

/// Serves `uri_path` (still percent-encoded) from under `root`, with the same checks, ranges
/// and headers as every static file.
pub async fn serve(
    conn: &Conn,
    req: &Request<hyper::body::Incoming>,
    root: PathBuf,
    uri_path: &str,
) -> Response<Body> {
    let head = req.method() == Method::HEAD;
    if !head && req.method() != Method::GET {
        return text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let rel = match relative_path(uri_path) {
        Ok(r) => r,
        Err(PathError::Forbidden) => {
            ::log::warn!(
                "HTTP {} refused path {:?}: outside the root",
                conn.peer,
                req.uri().path()
            );
            return text(StatusCode::FORBIDDEN, "forbidden\n");
        }
        Err(PathError::Bad) => return text(StatusCode::BAD_REQUEST, "bad path\n"),
    };
    let vod = conn.ctx.config().http_server.vod;
    // HLS kept in memory (`hls.storage = "memory"`) is served where its files would be.
    let virtual_path = root.join(&rel);
    if let Some(data) = conn.ctx.hls_memory.get(&virtual_path) {
        return memory_file(req, &virtual_path, data);
    }
    let opened = tokio::task::spawn_blocking(move || open_inside(&root, &rel)).await;
    let (path, file, len) = match opened {
        Ok(Ok(x)) => x,
        Ok(Err(StatusCode::FORBIDDEN)) => {
            ::log::warn!(
                "HTTP {} refused path {:?}: resolves outside the root",
                conn.peer,
                req.uri().path()
            );
            return text(StatusCode::FORBIDDEN, "forbidden\n");
        }
        Ok(Err(_)) => return text(StatusCode::NOT_FOUND, "not found\n"),
        Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
    };
    let ext = path
        .extension()
        .and_then(OsStr::to_str)
        .unwrap_or("")
        .to_ascii_lowercase();
    let query = req.uri().query();
    if vod && ext == "flv" {
        let start = super::query_param(query, "start").and_then(|v| v.trim().parse::<u64>().ok());
        if let Some(start) = start.filter(|&s| s > 0) {
            return flv_from(conn, &path, file, len, start, head).await;
        }
    }
    // SRS's VOD reads an mp4 range from the query too (`?range=A-B`, for players that cannot
    // set headers).
    let query_range = match (vod, ext.as_str()) {
        (true, "mp4" | "m4v" | "m4a") => {
            super::query_param(query, "range").map(|r| match r.starts_with("bytes=") {
                true => r,
                false => format!("bytes={r}"),
            })
        }
        _ => None,
    };
    let (status, start, count) = match requested_range_or(req, query_range.as_deref(), len) {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let body = if head || count == 0 {
        Body::empty()
    } else {
        stream_file(Arc::new(file), Bytes::new(), start, count)
    };
    respond(body, &path, status, start, count, len)
}

/// The answer to `file.flv?start=BYTES` (see [`super::vod`]): 200 with the header and the
/// sequence headers, then the file from the keyframe at or after `start`.
async fn flv_from(
    conn: &Conn,
    path: &Path,
    file: File,
    len: u64,
    start: u64,
    head: bool,
) -> Response<Body> {
    let file = Arc::new(file);
    let f = file.clone();
    let found = tokio::task::spawn_blocking(move || super::vod::seek(&*f, len, start)).await;
    let seek = match found {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            ::log::warn!("HTTP {} VOD {}: {e}", conn.peer, path.display());
            return text(StatusCode::UNSUPPORTED_MEDIA_TYPE, format!("{e}\n"));
        }
        Err(_) => return text(StatusCode::INTERNAL_SERVER_ERROR, "internal error\n"),
    };
    let tail = len - seek.from;
    let total = seek.prefix.len() as u64 + tail;
    ::log::info!(
        "HTTP {} VOD {} start={start}: from {} of {len}",
        conn.peer,
        path.display(),
        seek.from
    );
    let body = if head {
        Body::empty()
    } else {
        stream_file(file, seek.prefix, seek.from, tail)
    };
    let mut r = respond(body, path, StatusCode::OK, 0, total, total);
    // A part of the file, not the file: a Range on it would mean nothing.
    r.headers_mut().remove(header::ACCEPT_RANGES);
    r
}

/// The part of a `len`-byte file a request asks for, `(status, start, count)`, or the 416
/// answer for a range outside it.
#[allow(clippy::result_large_err)]
fn requested_range(
    req: &Request<hyper::body::Incoming>,
    len: u64,
) -> Result<(StatusCode, u64, u64), Response<Body>> {
    requested_range_or(req, None, len)
}

/// [`requested_range`] with `query` (a `bytes=` spec from the URL) taking the Range header's
/// place when given.
#[allow(clippy::result_large_err)]
fn requested_range_or(
    req: &Request<hyper::body::Incoming>,
    query: Option<&str>,
    len: u64,
) -> Result<(StatusCode, u64, u64), Response<Body>> {
    let range = query
        .or_else(|| {
            req.headers()
                .get(header::RANGE)
                .and_then(|v| v.to_str().ok())
        })
        .map_or(RangeSpec::Whole, |v| parse_range(v, len));
    match range {
        RangeSpec::Whole => Ok((StatusCode::OK, 0, len)),
        RangeSpec::Part(a, b) => Ok((StatusCode::PARTIAL_CONTENT, a, b - a + 1)),
        RangeSpec::Unsatisfiable => {
            let mut r = text(StatusCode::RANGE_NOT_SATISFIABLE, "range not satisfiable\n");
            if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                r.headers_mut().insert(header::CONTENT_RANGE, v);
            }
            Err(r)
        }
    }
}

/// A file kept in memory (HLS with `storage = "memory"`), answered like one on disk.
fn memory_file(
    req: &Request<hyper::body::Incoming>,
    path: &Path,
    data: bytes::Bytes,
) -> Response<Body> {
    let len = data.len() as u64;
    let (status, start, count) = match requested_range(req, len) {
        Ok(r) => r,
        Err(refused) => return refused,
    };
    let body = if req.method() == Method::HEAD || count == 0 {
        Body::empty()
    } else {
        Body::full(data.slice(start as usize..(start + count) as usize))
    };
    respond(body, path, status, start, count, len)
}

/// The answer for `count` bytes from `start` of the `len`-byte file at `path`: type, length,
/// range and caching headers (a playlist changes every segment; a segment never changes).
fn respond(
    body: Body,
    path: &Path,
    status: StatusCode,
    start: u64,
    count: u64,
    len: u64,
) -> Response<Body> {
    let mut r = Response::new(body);
    *r.status_mut() = status;
    let h = r.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime(path)));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(count));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    if status == StatusCode::PARTIAL_CONTENT {
        if let Ok(v) = HeaderValue::from_str(&format!("bytes {start}-{}/{len}", start + count - 1))
        {
            h.insert(header::CONTENT_RANGE, v);
        }
    }
    match path.extension().and_then(OsStr::to_str) {
        Some("m3u8") => {
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        }
        Some("ts") | Some("m4s") | Some("aac") | Some("mp3") => {
            h.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
        }
        _ => {}
    }
    cors(h);
    r
}

/// Streams `prefix`, then `count` bytes of the file from `start`: each chunk read by a
/// blocking-pool job (which holds no thread while the client is slow), sent through a small
/// channel.
fn stream_file(file: Arc<File>, prefix: Bytes, start: u64, count: u64) -> Body {
    let (tx, body) = Body::channel(READ_AHEAD);
    tokio::spawn(async move {
        if !prefix.is_empty() {
            match tokio::time::timeout(SEND_TIMEOUT, tx.send(Ok(Chunks::one(prefix)))).await {
                Ok(Ok(())) => {}
                _ => return,
            }
        }
        let mut off = start;
        let end = start + count;
        while off < end {
            let n = (end - off).min(READ_CHUNK as u64) as usize;
            let f = file.clone();
            let read = tokio::task::spawn_blocking(move || {
                let mut buf = vec![0u8; n];
                f.read_exact_at(&mut buf, off).map(|()| buf)
            })
            .await
            .unwrap_or_else(|e| Err(io::Error::other(e.to_string())));
            let item = match read {
                Ok(buf) => Ok(Chunks::one(Bytes::from(buf))),
                // The file shrank under us: abort the connection rather than send a body
                // shorter than its Content-Length.
                Err(e) => Err(e),
            };
            let failed = item.is_err();
            match tokio::time::timeout(SEND_TIMEOUT, tx.send(item)).await {
                Ok(Ok(())) if !failed => {}
                _ => return,
            }
            off += n as u64;
        }
    });
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_paths_that_leave_the_root() {
        assert_eq!(
            relative_path("/live/a.m3u8"),
            Ok(PathBuf::from("live/a.m3u8"))
        );
        assert_eq!(
            relative_path("//etc/passwd"),
            Ok(PathBuf::from("etc/passwd"))
        );
        assert_eq!(relative_path("/./a"), Ok(PathBuf::from("a")));
        for bad in [
            "/../etc/passwd",
            "/a/../../b",
            "/%2e%2e/etc/passwd",
            "/%2E%2e/x",
            "/a%2fb",
            "/a%2F..%2Fb",
            "/a%5cb",
            "/a%00b",
        ] {
            assert_eq!(relative_path(bad), Err(PathError::Forbidden), "{bad}");
        }
        assert_eq!(relative_path("/a%zz"), Err(PathError::Bad));
    }

    #[test]
    fn parses_single_ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), RangeSpec::Part(0, 9));
        assert_eq!(parse_range("bytes=90-", 100), RangeSpec::Part(90, 99));
        assert_eq!(parse_range("bytes=-10", 100), RangeSpec::Part(90, 99));
        assert_eq!(parse_range("bytes=-1000", 100), RangeSpec::Part(0, 99));
        assert_eq!(parse_range("bytes=50-1000", 100), RangeSpec::Part(50, 99));
        assert_eq!(parse_range("bytes=100-", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=-0", 100), RangeSpec::Unsatisfiable);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), RangeSpec::Whole);
        assert_eq!(parse_range("bytes=9-1", 100), RangeSpec::Whole);
        assert_eq!(parse_range("items=0-1", 100), RangeSpec::Whole);
        assert_eq!(parse_range("bytes=x-1", 100), RangeSpec::Whole);
    }

    #[test]
    fn mime_types() {
        assert_eq!(mime(Path::new("a/b.m3u8")), "application/vnd.apple.mpegurl");
        assert_eq!(mime(Path::new("b.TS")), "video/mp2t");
        assert_eq!(mime(Path::new("b.flv")), "video/x-flv");
        assert_eq!(mime(Path::new("noext")), "application/octet-stream");
    }

    use crate::protocol::testutil::{fuzz, text, TEXT_PIECES};

    #[test]
    fn hostile_paths_and_ranges_never_escape_or_panic() {
        let pieces = TEXT_PIECES;
        fuzz("static paths", 0x57A7, 3_000, |rng| {
            let path = text(rng, pieces, 12);
            if let Ok(rel) = relative_path(&path) {
                assert!(
                    rel.components()
                        .all(|c| matches!(c, std::path::Component::Normal(_))),
                    "{path:?} -> {rel:?}"
                );
            }
            let some = rng.next_u64() >> 40;
            let len = *rng.pick(&[0, 1, u64::MAX, some]);
            let range = format!(
                "{}{}",
                rng.pick(&["bytes=", "", "bytes= "]),
                text(rng, pieces, 5)
            );
            if let RangeSpec::Part(a, b) = parse_range(&range, len) {
                assert!(a <= b && b < len, "{range:?} of {len}: {a}-{b}");
            }
            let n = rng.next_u64() >> rng.below(64);
            let m = rng.next_u64() >> rng.below(64);
            if let RangeSpec::Part(a, b) = parse_range(&format!("bytes={n}-{m}"), len) {
                assert!(a <= b && b < len, "{n}-{m} of {len}: {a}-{b}");
            }
        });
    }
}
