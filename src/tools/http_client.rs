//! A minimal HTTP/1.1 client for the bench tools: `GET` over a tokio `TcpStream`, keep-alive,
//! bodies framed by Content-Length, chunked encoding or the connection's end. No TLS, no
//! redirects, no proxies: it loads srsd, nothing else.

use bytes::{Buf, Bytes, BytesMut};
use std::fmt;
use std::io;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A response head bigger than this is an error.
const MAX_HEAD: usize = 64 * 1024;
const READ_CHUNK: usize = 64 * 1024;

/// `http://HOST[:PORT]/PATH[?QUERY]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    pub host: String,
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
}

impl HttpUrl {
    pub fn parse(s: &str) -> Result<HttpUrl, String> {
        let rest = s
            .strip_prefix("http://")
            .ok_or_else(|| format!("{s:?} is not an http:// URL"))?;
        let (authority, path) = match rest.find(['/', '?']) {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        let (host, port) = match authority.rsplit_once(':') {
            Some((h, p)) if !p.contains(']') => (
                h,
                p.parse::<u16>()
                    .map_err(|_| format!("{s:?}: bad port {p:?}"))?,
            ),
            _ => (authority, 80),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        if host.is_empty() {
            return Err(format!("{s:?}: no host"));
        }
        let path = if path.starts_with('?') {
            format!("/{path}")
        } else {
            path.to_string()
        };
        Ok(HttpUrl {
            host: host.to_string(),
            port,
            path,
        })
    }

    /// Resolves a reference found in a document at this URL (an m3u8's segment URI): an
    /// absolute `http://` URL, an absolute path, or a path relative to this one's directory.
    pub fn join(&self, reference: &str) -> Result<HttpUrl, String> {
        if reference.starts_with("http://") {
            return HttpUrl::parse(reference);
        }
        let path = if reference.starts_with('/') {
            reference.to_string()
        } else {
            let base = self.path.split('?').next().unwrap_or("/");
            let dir = &base[..base.rfind('/').map_or(0, |i| i + 1)];
            format!("{dir}{reference}")
        };
        Ok(HttpUrl {
            path,
            ..self.clone()
        })
    }

    fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// Whether `other` is served by the same host and port (so a connection can be reused).
    pub fn same_origin(&self, other: &HttpUrl) -> bool {
        self.host == other.host && self.port == other.port
    }
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}{}", self.authority(), self.path)
    }
}

/// One keep-alive connection.
pub struct HttpConn {
    stream: TcpStream,
    buf: BytesMut,
    /// The server said `Connection: close` or a body ran to the end of the connection.
    closed: bool,
}

#[derive(Debug, Clone, Copy)]
enum Framing {
    Length(u64),
    Chunked,
    Close,
}

/// A response being read: its status and headers, then the body piece by piece.
pub struct Response<'a> {
    conn: &'a mut HttpConn,
    pub status: u16,
    /// Header names lowercased.
    pub headers: Vec<(String, String)>,
    framing: Framing,
    /// Bytes left in the current chunk (chunked) or the body (Content-Length).
    left: u64,
    /// Chunked: a chunk's data ended and its CRLF is still to be read.
    after_data: bool,
    done: bool,
}

impl HttpConn {
    pub async fn connect(url: &HttpUrl) -> io::Result<HttpConn> {
        let stream = TcpStream::connect((url.host.as_str(), url.port)).await?;
        stream.set_nodelay(true)?;
        Ok(HttpConn {
            stream,
            buf: BytesMut::with_capacity(READ_CHUNK),
            closed: false,
        })
    }

    /// Whether another request may be sent on this connection (the previous body was read to
    /// its end and the server keeps the connection).
    pub fn reusable(&self) -> bool {
        !self.closed
    }

    async fn fill(&mut self) -> io::Result<usize> {
        self.buf.reserve(READ_CHUNK);
        self.stream.read_buf(&mut self.buf).await
    }

    /// Sends `GET url` and reads the response head.
    pub async fn get(&mut self, url: &HttpUrl) -> io::Result<Response<'_>> {
        let req = format!(
            "GET {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: srsd-bench\r\nAccept: */*\r\n\r\n",
            url.path,
            url.authority()
        );
        self.stream.write_all(req.as_bytes()).await?;
        let end = loop {
            if let Some(i) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
            if self.buf.len() > MAX_HEAD {
                return Err(bad("response head too large"));
            }
            if self.fill().await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed before a response",
                ));
            }
        };
        let head = self.buf.split_to(end);
        let head = std::str::from_utf8(&head).map_err(|_| bad("response head is not UTF-8"))?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|_| status_line.starts_with("HTTP/1."))
            .ok_or_else(|| bad("bad status line"))?;
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
            .collect();
        let header = |name: &str| {
            headers
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.to_ascii_lowercase())
        };
        let framing = if header("transfer-encoding").is_some_and(|v| v.contains("chunked")) {
            Framing::Chunked
        } else if let Some(n) = header("content-length") {
            Framing::Length(n.parse().map_err(|_| bad("bad Content-Length"))?)
        } else if status == 204 || status == 304 {
            Framing::Length(0)
        } else {
            Framing::Close
        };
        if header("connection").is_some_and(|v| v.contains("close"))
            || matches!(framing, Framing::Close)
        {
            self.closed = true;
        }
        let left = match framing {
            Framing::Length(n) => n,
            _ => 0,
        };
        Ok(Response {
            conn: self,
            status,
            headers,
            framing,
            left,
            after_data: false,
            done: false,
        })
    }
}

impl Response<'_> {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The next piece of the (decoded) body; `None` at its end.
    pub async fn chunk(&mut self) -> io::Result<Option<Bytes>> {
        loop {
            if self.done {
                return Ok(None);
            }
            match self.framing {
                Framing::Close => {
                    if self.conn.buf.is_empty() && self.conn.fill().await? == 0 {
                        self.done = true;
                        return Ok(None);
                    }
                    return Ok(Some(self.conn.buf.split().freeze()));
                }
                Framing::Length(_) => {
                    if self.left == 0 {
                        self.done = true;
                        return Ok(None);
                    }
                    return self.take_left().await.map(Some);
                }
                Framing::Chunked => {
                    if self.left > 0 {
                        let data = self.take_left().await?;
                        self.after_data = self.left == 0;
                        return Ok(Some(data));
                    }
                    if self.after_data {
                        let line = self.line().await?;
                        if !line.is_empty() {
                            return Err(bad("chunk data not followed by CRLF"));
                        }
                        self.after_data = false;
                    }
                    let line = self.line().await?;
                    let size = line.split(';').next().unwrap_or_default().trim();
                    let size = u64::from_str_radix(size, 16).map_err(|_| bad("bad chunk size"))?;
                    if size == 0 {
                        // Trailers, up to the empty line.
                        while !self.line().await?.is_empty() {}
                        self.done = true;
                        return Ok(None);
                    }
                    self.left = size;
                }
            }
        }
    }

    /// Up to `left` bytes that are buffered (reading when none are).
    async fn take_left(&mut self) -> io::Result<Bytes> {
        if self.conn.buf.is_empty() && self.conn.fill().await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed inside a body",
            ));
        }
        let n = (self.left.min(self.conn.buf.len() as u64)) as usize;
        self.left -= n as u64;
        Ok(self.conn.buf.split_to(n).freeze())
    }

    /// One CRLF-terminated line, without the CRLF.
    async fn line(&mut self) -> io::Result<String> {
        loop {
            if let Some(i) = self.conn.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.conn.buf[..i]).into_owned();
                self.conn.buf.advance(i + 2);
                return Ok(line);
            }
            if self.conn.buf.len() > MAX_HEAD {
                return Err(bad("chunk header line too long"));
            }
            if self.conn.fill().await? == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "connection closed inside a chunked body",
                ));
            }
        }
    }

    /// The whole body (at most `limit` bytes).
    pub async fn bytes(mut self, limit: usize) -> io::Result<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(c) = self.chunk().await? {
            if out.len() + c.len() > limit {
                return Err(bad("body too large"));
            }
            out.extend_from_slice(&c);
        }
        Ok(out)
    }
}

fn bad(msg: &'static str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::net::TcpListener;

    #[test]
    fn parses_and_joins_urls() {
        let u = HttpUrl::parse("http://127.0.0.1:8080/live/s.m3u8?token=1").unwrap();
        assert_eq!((u.host.as_str(), u.port), ("127.0.0.1", 8080));
        assert_eq!(u.path, "/live/s.m3u8?token=1");
        assert_eq!(u.join("s-1.ts").unwrap().path, "/live/s-1.ts");
        assert_eq!(u.join("/x/y.ts").unwrap().path, "/x/y.ts");
        let other = u.join("http://example.com/a.ts").unwrap();
        assert_eq!((other.host.as_str(), other.port), ("example.com", 80));
        assert!(!u.same_origin(&other));
        assert_eq!(HttpUrl::parse("http://h").unwrap().path, "/");
        assert_eq!(HttpUrl::parse("http://[::1]:1/a").unwrap().host, "::1");
        assert!(HttpUrl::parse("rtmp://h/a").is_err());
        assert!(HttpUrl::parse("http://h:x/a").is_err());
        assert_eq!(u.to_string(), "http://127.0.0.1:8080/live/s.m3u8?token=1");
    }

    #[tokio::test]
    async fn reads_length_chunked_and_close_bodies_on_one_connection() {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let answers: [&[u8]; 3] = [
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
                b"HTTP/1.1 404 Not Found\r\nConnection: close\r\n\r\nbye",
            ];
            let mut buf = vec![0u8; 4096];
            for a in answers {
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    let n = s.read(&mut buf).await.unwrap();
                    got.extend_from_slice(&buf[..n]);
                }
                // Dribble the answer to exercise partial reads.
                for b in a.chunks(3) {
                    s.write_all(b).await.unwrap();
                    s.flush().await.unwrap();
                    tokio::time::sleep(std::time::Duration::from_millis(1)).await;
                }
            }
        });
        let url = HttpUrl::parse(&format!("http://{addr}/a")).unwrap();
        let mut c = HttpConn::connect(&url).await.unwrap();
        let r = c.get(&url).await.unwrap();
        assert_eq!(r.status, 200);
        assert_eq!(r.bytes(100).await.unwrap(), b"hello");
        assert!(c.reusable());
        let r = c.get(&url).await.unwrap();
        assert_eq!(r.header("transfer-encoding"), Some("chunked"));
        assert_eq!(r.bytes(100).await.unwrap(), b"abcde");
        let r = c.get(&url).await.unwrap();
        assert_eq!(r.status, 404);
        assert_eq!(r.bytes(100).await.unwrap(), b"bye");
        assert!(!c.reusable());
    }
}
