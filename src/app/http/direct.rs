//! Live viewers taken at accept, without hyper: the connection's first request head is
//! peeked (not read) from the socket and parsed with `httparse`; when it is a `GET` of a live
//! mount ([`live::mount`]), the head is consumed, the viewer admitted ([`live::admit`]) and
//! streamed on the socket by the connection's own task ([`Sink::Socket`]). Anything else —
//! another request, a head split over several segments, `HEAD`, a later request on a
//! keep-alive connection — finds the socket untouched and goes to hyper as before.
//!
//! Why: a viewer behind hyper costs its connection state (an 8 KiB read buffer kept for the
//! stream's life, a write queue), a body channel and a second task, ~25 KiB each at 1000
//! viewers; taken here it costs what an RTMP player does. SRS serves HTTP-FLV the same way:
//! its own parser, then the socket is the stream's.
//!
//! The answer is what hyper sends for the same request: HTTP/1.1 `200`, chunked transfer
//! encoding (one chunk a batch, as SRS 6 and nginx-http-flv send), `Connection: close`; to an
//! HTTP/1.0 client, no chunking and the body delimited by the close (RFC 9112 §6.3).

use super::live::{self, LiveAsk, Refusal};
use super::viewer::Sink;
use super::{Conn, HEADER_READ_TIMEOUT};
use hyper::StatusCode;
use std::io;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

/// The most of a first request head looked at; a longer head goes to hyper.
const PEEK_BYTES: usize = 2048;
/// Headers parsed; a request with more goes to hyper.
const PEEK_HEADERS: usize = 24;

/// What the first request head says, owned (the peek buffer is gone when it is used).
struct Head {
    /// Bytes of the head, to consume once the request is taken.
    len: usize,
    /// HTTP/1.1 (chunked answer) rather than 1.0 (close-delimited).
    http11: bool,
    host: String,
    path: String,
    query: Option<String>,
    referer: String,
}

/// Takes the connection when its first request is a live `GET`: `Ok(())` once served (or
/// refused, or the client sent nothing within [`HEADER_READ_TIMEOUT`]); `Err(socket)`,
/// untouched, for hyper.
pub(super) async fn take(conn: &Conn, socket: TcpStream) -> Result<(), TcpStream> {
    // The whole wait for the first bytes is bounded, not only the first readiness: a fresh
    // socket may report itself readable before anything arrived, and the peek then waits.
    // Boxed: the peek buffer exists only for this step, not in the task for the stream's
    // life.
    let head = match tokio::time::timeout(HEADER_READ_TIMEOUT, Box::pin(peek_head(&socket))).await {
        Ok(Some(head)) => head,
        Ok(None) => return Err(socket),
        // Nothing in time: closed, as hyper's header timeout would close it.
        Err(_) => return Ok(()),
    };
    let ask = LiveAsk {
        head: false,
        host: &head.host,
        path: &head.path,
        query: head.query.as_deref(),
        referer: &head.referer,
    };
    let Some((key, format)) = live::mount(conn, &ask) else {
        return Err(socket);
    };
    let mut socket = socket;
    if consume(&socket, head.len).is_err() {
        return Ok(());
    }
    // Boxed: admission (hooks, edge) is large and brief; inline, its state would be reserved
    // in the task for the viewer's whole life.
    let admitted = Box::pin(live::admit(conn, &ask, &key, format)).await;
    let chunked = head.http11;
    drop(head);
    match admitted {
        Err(r) => {
            let _ = socket.write_all(&refusal_bytes(&r)).await;
            let _ = socket.shutdown().await;
        }
        Ok(viewer) => {
            let answer = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {}\r\nCache-Control: no-cache\r\n\
                 Access-Control-Allow-Origin: *\r\n\
                 Access-Control-Expose-Headers: Content-Length, Content-Range\r\n\
                 {}Connection: close\r\n\r\n",
                format.content_type(),
                if chunked {
                    "Transfer-Encoding: chunked\r\n"
                } else {
                    ""
                }
            );
            let sent = socket.write_all(answer.as_bytes()).await;
            drop(answer);
            if sent.is_ok() {
                viewer.run(Sink::Socket { socket, chunked }).await;
            }
        }
    }
    Ok(())
}

/// Peeks the first request head; `None` unless it is complete within [`PEEK_BYTES`], a
/// `GET` with an origin-form target, and readable as UTF-8 where it matters.
async fn peek_head(socket: &TcpStream) -> Option<Head> {
    let mut buf = vec![0u8; PEEK_BYTES];
    let n = socket.peek(&mut buf).await.ok()?;
    parse_head(&buf[..n])
}

fn parse_head(bytes: &[u8]) -> Option<Head> {
    let mut headers = [httparse::EMPTY_HEADER; PEEK_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    let len = match req.parse(bytes) {
        Ok(httparse::Status::Complete(len)) => len,
        _ => return None,
    };
    if req.method != Some("GET") {
        return None;
    }
    let target = req.path?;
    if !target.starts_with('/') {
        return None;
    }
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (target, None),
    };
    let header = |name: &str| {
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .and_then(|h| std::str::from_utf8(h.value).ok())
            .map(|v| v.trim().to_string())
    };
    Some(Head {
        len,
        http11: req.version == Some(1),
        host: header("host").unwrap_or_default(),
        path: path.to_string(),
        query,
        referer: header("referer").unwrap_or_default(),
    })
}

/// Reads and drops the `len` bytes of the head just peeked (they are in the socket's buffer
/// already: no wait).
fn consume(socket: &TcpStream, mut len: usize) -> io::Result<()> {
    let mut scrap = [0u8; 512];
    while len > 0 {
        let want = len.min(scrap.len());
        match socket.try_read(&mut scrap[..want]) {
            Ok(0) => return Err(io::ErrorKind::UnexpectedEof.into()),
            Ok(n) => len -= n,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// A refusal as HTTP/1.1 bytes: the same status, text and `Retry-After` hyper's path sends.
fn refusal_bytes(r: &Refusal) -> Vec<u8> {
    let status = r.status;
    let text = match &r.text {
        Some(t) => t.clone(),
        None if status == StatusCode::SERVICE_UNAVAILABLE => {
            "hook server unavailable, retry later\n".to_string()
        }
        None if status == StatusCode::FORBIDDEN => "forbidden\n".to_string(),
        None => format!("{}\n", status.canonical_reason().unwrap_or("refused")),
    };
    let retry = if status == StatusCode::SERVICE_UNAVAILABLE {
        "Retry-After: 5\r\n"
    } else {
        ""
    };
    format!(
        "HTTP/1.1 {} {}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: {}\r\n\
         Access-Control-Allow-Origin: *\r\n\
         Access-Control-Expose-Headers: Content-Length, Content-Range\r\n\
         {retry}Connection: close\r\n\r\n{text}",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        text.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_get_head_is_read_and_anything_else_left_to_hyper() {
        let head =
            b"GET /live/s.flv?token=1 HTTP/1.1\r\nHost: a.com:8080\r\nReferer: http://p/\r\n\r\n";
        let mut with_more = head.to_vec();
        with_more.extend_from_slice(b"GET /next HTTP/1.1\r\n");
        let h = parse_head(&with_more).expect("a live GET");
        assert_eq!(
            (h.host.as_str(), h.path.as_str(), h.query.as_deref()),
            ("a.com:8080", "/live/s.flv", Some("token=1"))
        );
        assert_eq!(h.referer, "http://p/");
        assert_eq!(h.len, head.len(), "the head only, not what follows");
        // Partial, HEAD, POST, absolute-form, garbage: hyper's.
        for other in [
            &b"GET /live/s.flv HTTP/1.1\r\nHost: a"[..],
            b"HEAD /live/s.flv HTTP/1.1\r\n\r\n",
            b"POST /live/s.flv HTTP/1.1\r\n\r\n",
            b"GET http://a/live/s.flv HTTP/1.1\r\n\r\n",
            b"\x16\x03\x01\x02\x00",
            b"",
        ] {
            assert!(parse_head(other).is_none(), "{other:?}");
        }
    }

    #[test]
    fn refusals_say_what_hyper_says() {
        let r = refusal_bytes(&Refusal {
            status: StatusCode::SERVICE_UNAVAILABLE,
            text: None,
        });
        let r = String::from_utf8(r).unwrap();
        assert!(r.starts_with("HTTP/1.1 503 Service Unavailable\r\n"), "{r}");
        assert!(r.contains("Retry-After: 5\r\n"), "{r}");
        assert!(
            r.ends_with("\r\n\r\nhook server unavailable, retry later\n"),
            "{r}"
        );
        let r = String::from_utf8(refusal_bytes(&Refusal {
            status: StatusCode::NOT_FOUND,
            text: Some("no audio\n".into()),
        }))
        .unwrap();
        assert!(
            r.contains("Content-Length: 9\r\n") && r.ends_with("no audio\n"),
            "{r}"
        );
    }
}
