//! Async RTMP client (publish and play): the librtmp of this project.
//!
//! [`RtmpClient`] drives the sans-IO [`ClientHandshake`] and [`ClientSession`] over one
//! `TcpStream` it owns. Edge pulls, forwards, the built-in tools and the end-to-end tests all
//! use it.
//!
//! Contract: every call that reads from the socket feeds the session and then writes all of the
//! session's output (acknowledgements, ping responses, the next command of a sequence) before
//! it returns, so the server never waits on us. Steps that wait for the server (`connect`,
//! `publish`, `play`) take a timeout; `send`, `recv` and `next_event` do not, the caller wraps
//! them in `tokio::time::timeout` when it needs one.

mod flv_file;
#[cfg(test)]
pub(crate) mod loopback;

pub use flv_file::{is_keyframe, play_to_flv, publish_flv};

use crate::protocol::amf0::Amf0Value;
use crate::protocol::flv::FlvError;
use crate::protocol::rtmp::chunk::MAX_MESSAGE_LEN;
use crate::protocol::rtmp::handshake::{ClientHandshake, HandshakeError, HandshakeProgress};
pub use crate::protocol::rtmp::session::{ClientEvent, MediaKind};
use crate::protocol::rtmp::session::{ClientSession, SessionError};
use bytes::{Bytes, BytesMut};
use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// RTMP's registered port.
pub const DEFAULT_PORT: u16 = 1935;
/// Bytes asked of the socket per read.
const READ_SIZE: usize = 64 * 1024;
/// What may stay unconsumed in the read buffer. The session consumes every whole chunk, so
/// only a partial chunk remains, and no chunk carries more than one message.
const MAX_READ_BUFFER: usize = MAX_MESSAGE_LEN as usize + READ_SIZE;
/// How long `close` waits for the unpublish commands to be written.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(1);

/// An `rtmp://` URL split the way SRS (and librtmp) split it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RtmpUrl {
    /// Host name or address, IPv6 without brackets.
    pub host: String,
    pub port: u16,
    /// Everything between the host and the last `/` (may hold several levels, and SRS's
    /// `?vhost=` query when it is written on the app).
    pub app: String,
    /// The last path segment with its query, if any (`stream?token=x`).
    pub stream: String,
    /// `rtmp://host[:port]/app`, the port written only when the URL had one.
    pub tc_url: String,
}

impl RtmpUrl {
    /// Parses `rtmp://host[:port]/app[/more/levels]/stream[?query]`.
    ///
    /// The stream is what follows the last `/`, as in SRS's `srs_parse_rtmp_url`, so
    /// `rtmp://h/app?vhost=v/stream` works and a `/` inside a stream's query does not.
    pub fn parse(url: &str) -> Result<RtmpUrl, ClientError> {
        let bad = |why: &str| ClientError::Url(format!("{why}: {url:?}"));
        let scheme_len = "rtmp://".len();
        let rest = match url.get(..scheme_len) {
            Some(s) if s.eq_ignore_ascii_case("rtmp://") => &url[scheme_len..],
            _ => return Err(bad("not an rtmp:// URL")),
        };
        let (authority, path) = rest
            .split_once('/')
            .ok_or_else(|| bad("no app and stream"))?;

        let (host, port_text) = if let Some(v6) = authority.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("unclosed [ in host"))?;
            match after {
                "" => (host, None),
                p => (
                    host,
                    Some(
                        p.strip_prefix(':')
                            .ok_or_else(|| bad("junk after IPv6 host"))?,
                    ),
                ),
            }
        } else {
            match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            }
        };
        if host.is_empty() || host.contains(|c: char| c.is_whitespace() || c == '@') {
            return Err(bad("bad host"));
        }
        let port = match port_text {
            None => DEFAULT_PORT,
            Some(p) => match p.parse::<u16>() {
                Ok(p) if p != 0 => p,
                _ => return Err(bad("bad port")),
            },
        };

        let (app, stream) = path.rsplit_once('/').ok_or_else(|| bad("no stream name"))?;
        if app.is_empty() || app.starts_with('/') {
            return Err(bad("empty app"));
        }
        if stream.is_empty() || stream.starts_with('?') {
            return Err(bad("empty stream name"));
        }

        let host_part = if host.contains(':') {
            format!("[{host}]")
        } else {
            host.to_string()
        };
        let tc_url = match port_text {
            Some(_) => format!("rtmp://{host_part}:{port}/{app}"),
            None => format!("rtmp://{host_part}/{app}"),
        };
        Ok(RtmpUrl {
            host: host.to_string(),
            port,
            app: app.to_string(),
            stream: stream.to_string(),
            tc_url,
        })
    }
}

/// The URL as given; when the tcUrl names another host than the one connected to (an edge
/// names the vhost there, as SRS's edges do), the host and port actually connected to.
impl fmt::Display for RtmpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        };
        let named = self
            .tc_url
            .strip_prefix("rtmp://")
            .and_then(|rest| rest.strip_prefix(host.as_str()))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']));
        if named {
            write!(f, "{}/{}", self.tc_url, self.stream)
        } else {
            write!(
                f,
                "rtmp://{host}:{}/{}/{}",
                self.port, self.app, self.stream
            )
        }
    }
}

/// Why a client operation failed, by who is to blame: the caller (`Url`), the network (`Io`,
/// `Timeout`, `Closed`), the server's bytes (`Handshake`, `Session`, `Flv` for the file being
/// published) or the server's decision (`Rejected`).
#[derive(Debug)]
pub enum ClientError {
    Url(String),
    Io(std::io::Error),
    Handshake(HandshakeError),
    Session(SessionError),
    /// The FLV data given to [`publish_flv`] is not FLV.
    Flv(FlvError),
    /// The server refused connect (`_error`) or answered publish/play with an error status.
    Rejected {
        code: String,
        description: String,
    },
    /// The named step did not finish in time.
    Timeout(&'static str),
    /// The server closed the connection.
    Closed,
}

impl fmt::Display for ClientError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ClientError::Url(why) => write!(f, "bad RTMP URL: {why}"),
            ClientError::Io(e) => write!(f, "i/o: {e}"),
            ClientError::Handshake(e) => write!(f, "handshake: {e}"),
            ClientError::Session(e) => write!(f, "rtmp: {e}"),
            ClientError::Flv(e) => write!(f, "flv: {e}"),
            ClientError::Rejected { code, description } => {
                write!(f, "server rejected: {code} ({description})")
            }
            ClientError::Timeout(step) => write!(f, "timed out waiting for {step}"),
            ClientError::Closed => write!(f, "connection closed by the server"),
        }
    }
}

impl std::error::Error for ClientError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ClientError::Io(e) => Some(e),
            ClientError::Handshake(e) => Some(e),
            ClientError::Session(e) => Some(e),
            ClientError::Flv(e) => Some(e),
            _ => None,
        }
    }
}

impl From<std::io::Error> for ClientError {
    fn from(e: std::io::Error) -> Self {
        ClientError::Io(e)
    }
}
impl From<HandshakeError> for ClientError {
    fn from(e: HandshakeError) -> Self {
        ClientError::Handshake(e)
    }
}
impl From<SessionError> for ClientError {
    fn from(e: SessionError) -> Self {
        ClientError::Session(e)
    }
}
impl From<FlvError> for ClientError {
    fn from(e: FlvError) -> Self {
        ClientError::Flv(e)
    }
}

/// Runs `fut`, failing with `Timeout(step)` after `timeout`.
async fn bounded<T>(
    step: &'static str,
    timeout: Duration,
    fut: impl Future<Output = Result<T, ClientError>>,
) -> Result<T, ClientError> {
    tokio::time::timeout(timeout, fut)
        .await
        .unwrap_or(Err(ClientError::Timeout(step)))
}

/// Handshake randomness: xorshift64* seeded from the wall clock and a process-wide counter.
/// The handshake's random bytes only need to differ between connections, not be secret.
struct XorShift(u64);

impl XorShift {
    fn seeded() -> Self {
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed) as u64;
        let seed = nanos ^ n.wrapping_add(1).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        XorShift(if seed == 0 {
            0x2545_F491_4F6C_DD1D
        } else {
            seed
        })
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn fill(&mut self, out: &mut [u8]) {
        for chunk in out.chunks_mut(8) {
            let v = self.next().to_le_bytes();
            chunk.copy_from_slice(&v[..chunk.len()]);
        }
    }
}

/// One RTMP connection to a server, publishing or playing one stream.
///
/// Order of calls: [`RtmpClient::connect`] (or `connect_with`), then [`RtmpClient::publish`]
/// followed by [`RtmpClient::send`]s, or [`RtmpClient::play`] followed by
/// [`RtmpClient::recv`]s; finally [`RtmpClient::close`].
pub struct RtmpClient {
    socket: TcpStream,
    session: ClientSession,
    /// Bytes read and not yet consumed by the session (at most a partial chunk).
    read_buf: BytesMut,
    bytes_received: u64,
    /// The stream name while publishing, to unpublish it on close.
    publishing: Option<String>,
    last_status: Option<String>,
    /// From sending `connect` to its `_result`: one round trip plus the server's answer.
    connect_rtt: Duration,
}

impl RtmpClient {
    /// TCP connect, handshake and RTMP connect (waits for `_result`), each step bounded by
    /// `timeout`.
    pub async fn connect(url: &RtmpUrl, timeout: Duration) -> Result<RtmpClient, ClientError> {
        let object = ClientSession::connect_object(&url.app, &url.tc_url);
        Self::connect_with(url, object, Vec::new(), timeout).await
    }

    /// Like [`RtmpClient::connect`], with the caller's connect command object and extra
    /// arguments (an edge passes its client's through for token traversal).
    pub async fn connect_with(
        url: &RtmpUrl,
        command_object: Vec<(String, Amf0Value)>,
        extra_args: Vec<Amf0Value>,
        timeout: Duration,
    ) -> Result<RtmpClient, ClientError> {
        let socket = bounded("TCP connect", timeout, async {
            // Names go through [dns] when configured (Android has no resolv.conf).
            Ok(crate::app::runtime::dns::connect(&url.host, url.port).await?)
        })
        .await?;
        // Media is latency-sensitive and we write whole messages; Nagle only delays them.
        socket.set_nodelay(true)?;
        let mut client = RtmpClient {
            socket,
            session: ClientSession::new(),
            read_buf: BytesMut::with_capacity(READ_SIZE),
            bytes_received: 0,
            publishing: None,
            last_status: None,
            connect_rtt: Duration::ZERO,
        };
        bounded("RTMP handshake", timeout, client.handshake()).await?;
        client.session.connect(command_object, extra_args);
        let asked = tokio::time::Instant::now();
        bounded("connect _result", timeout, async {
            client.flush().await?;
            loop {
                match client.next_event().await? {
                    ClientEvent::Connected => return Ok(()),
                    ClientEvent::ConnectRejected { code, description } => {
                        return Err(ClientError::Rejected { code, description })
                    }
                    _ => {}
                }
            }
        })
        .await?;
        client.connect_rtt = asked.elapsed();
        Ok(client)
    }

    async fn handshake(&mut self) -> Result<(), ClientError> {
        let mut rng = XorShift::seeded();
        let epoch_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u32)
            .unwrap_or(0);
        let (mut hs, c0c1) = ClientHandshake::new(&mut |b: &mut [u8]| rng.fill(b), epoch_ms);
        self.socket.write_all(&c0c1).await?;
        loop {
            match hs.handle_input(&mut self.read_buf)? {
                HandshakeProgress::NeedMore { send } => {
                    if !send.is_empty() {
                        self.socket.write_all(&send).await?;
                    }
                    self.read_some().await?;
                }
                // What is left in the buffer is the server's first chunks.
                HandshakeProgress::Done { send } => {
                    self.socket.write_all(&send).await?;
                    self.session.handle_input(&mut self.read_buf)?;
                    return self.flush().await;
                }
            }
        }
    }

    /// Starts publishing `stream` (FMLE sequence) and waits for NetStream.Publish.Start.
    pub async fn publish(&mut self, stream: &str, timeout: Duration) -> Result<(), ClientError> {
        self.session.publish(stream);
        bounded("NetStream.Publish.Start", timeout, async {
            self.flush().await?;
            loop {
                match self.next_event().await? {
                    ClientEvent::PublishStarted => return Ok(()),
                    ClientEvent::Status {
                        level,
                        code,
                        description,
                    } if level == "error" => {
                        return Err(ClientError::Rejected { code, description })
                    }
                    _ => {}
                }
            }
        })
        .await?;
        self.publishing = Some(stream.to_string());
        Ok(())
    }

    /// Starts playing `stream` and waits for NetStream.Play.Start.
    pub async fn play(&mut self, stream: &str, timeout: Duration) -> Result<(), ClientError> {
        self.session.play(stream);
        bounded("NetStream.Play.Start", timeout, async {
            self.flush().await?;
            loop {
                match self.next_event().await? {
                    ClientEvent::PlayStarted => return Ok(()),
                    ClientEvent::Status {
                        level,
                        code,
                        description,
                    } if level == "error" => {
                        return Err(ClientError::Rejected { code, description })
                    }
                    _ => {}
                }
            }
        })
        .await
    }

    /// Sends one media message on the published stream and writes it out.
    ///
    /// Also reads, without waiting, whatever the server sent meanwhile, answering pings and
    /// acknowledging; its events are dropped except the status code kept for
    /// [`RtmpClient::last_status`]. A server that closed the connection fails the call.
    pub async fn send(
        &mut self,
        kind: MediaKind,
        timestamp: u32,
        payload: Bytes,
    ) -> Result<(), ClientError> {
        self.session.send_media(kind, timestamp, payload);
        self.flush().await?;
        self.drain_nonblocking().await
    }

    /// The next media frame while playing. Status events are skipped (the last code stays
    /// readable through [`RtmpClient::last_status`]); `Err(Closed)` at end of stream.
    pub async fn recv(&mut self) -> Result<(MediaKind, u32, Bytes), ClientError> {
        loop {
            if let ClientEvent::Media {
                kind,
                timestamp,
                payload,
            } = self.next_event().await?
            {
                return Ok((kind, timestamp, payload));
            }
        }
    }

    /// The next event from the session, reading the socket as needed.
    pub async fn next_event(&mut self) -> Result<ClientEvent, ClientError> {
        loop {
            if let Some(e) = self.session.poll_event() {
                self.note(&e);
                return Ok(e);
            }
            self.fill().await?;
        }
    }

    /// Sends a call with transaction id 0 and a null command object before `args` (SRS's
    /// bandcheck replies) and writes it out.
    pub async fn call(&mut self, name: &str, args: Vec<Amf0Value>) -> Result<(), ClientError> {
        self.session.call(name, args);
        self.flush().await
    }

    /// Like [`RtmpClient::call`], then reads without waiting what the server sent meanwhile
    /// and returns its events (at most what one read buffer holds).
    pub async fn call_and_poll(
        &mut self,
        name: &str,
        args: Vec<Amf0Value>,
    ) -> Result<Vec<ClientEvent>, ClientError> {
        self.session.call(name, args);
        self.flush().await?;
        self.read_ready().await
    }

    /// Reads what the socket already holds, without waiting, and returns the session's events.
    async fn read_ready(&mut self) -> Result<Vec<ClientEvent>, ClientError> {
        let mut got = false;
        loop {
            if self.read_buf.len() >= MAX_READ_BUFFER {
                break;
            }
            self.read_buf.reserve(READ_SIZE);
            match self.socket.try_read_buf(&mut self.read_buf) {
                Ok(0) => return Err(ClientError::Closed),
                Ok(n) => {
                    self.bytes_received += n as u64;
                    got = true;
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e.into()),
            }
        }
        let mut events = Vec::new();
        if got {
            self.session.handle_input(&mut self.read_buf)?;
            while let Some(e) = self.session.poll_event() {
                self.note(&e);
                events.push(e);
            }
            self.flush().await?;
        }
        Ok(events)
    }

    /// From sending `connect` to its `_result`: about one round trip to the server.
    pub fn connect_rtt(&self) -> Duration {
        self.connect_rtt
    }

    /// The code of the last onStatus seen (e.g. `NetStream.Play.UnpublishNotify`).
    pub fn last_status(&self) -> Option<&str> {
        self.last_status.as_deref()
    }

    /// Bytes read from the socket so far, handshake included.
    pub fn bytes_received(&self) -> u64 {
        self.bytes_received
    }

    /// Ends the connection: unpublishes politely when publishing (bounded by a short
    /// timeout), then shuts the socket down. Errors are ignored: the peer may be gone.
    pub async fn close(mut self) {
        if let Some(name) = self.publishing.take() {
            self.session.unpublish(&name);
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.flush()).await;
        }
        let _ = tokio::time::timeout(CLOSE_TIMEOUT, self.socket.shutdown()).await;
    }

    fn note(&mut self, e: &ClientEvent) {
        if let ClientEvent::Status { code, .. } = e {
            self.last_status = Some(code.clone());
        }
    }

    /// Writes everything the session has to say.
    async fn flush(&mut self) -> Result<(), ClientError> {
        while let Some(out) = self.session.take_output() {
            self.socket.write_all(&out).await?;
        }
        Ok(())
    }

    /// Reads once from the socket into `read_buf`. EOF is `Closed`.
    async fn read_some(&mut self) -> Result<(), ClientError> {
        if self.read_buf.len() >= MAX_READ_BUFFER {
            // The session could not consume this much: the server broke the chunk stream.
            return Err(ClientError::Session(SessionError::OutOfOrder(
                "an oversized chunk",
            )));
        }
        self.read_buf.reserve(READ_SIZE);
        let n = self.socket.read_buf(&mut self.read_buf).await?;
        if n == 0 {
            return Err(ClientError::Closed);
        }
        self.bytes_received += n as u64;
        Ok(())
    }

    /// Reads once, feeds the session, writes its answers.
    async fn fill(&mut self) -> Result<(), ClientError> {
        self.read_some().await?;
        self.session.handle_input(&mut self.read_buf)?;
        self.flush().await
    }

    /// Reads what is already there without waiting (used while publishing): answers pings
    /// and acknowledges; the events are dropped but for the status code kept.
    async fn drain_nonblocking(&mut self) -> Result<(), ClientError> {
        self.read_ready().await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(host: &str, port: u16, app: &str, stream: &str, tc_url: &str) -> RtmpUrl {
        RtmpUrl {
            host: host.into(),
            port,
            app: app.into(),
            stream: stream.into(),
            tc_url: tc_url.into(),
        }
    }

    #[test]
    fn parses_rtmp_urls() {
        let table = [
            (
                "rtmp://127.0.0.1/live/livestream",
                url(
                    "127.0.0.1",
                    1935,
                    "live",
                    "livestream",
                    "rtmp://127.0.0.1/live",
                ),
            ),
            (
                "rtmp://example.com:19350/live/s",
                url(
                    "example.com",
                    19350,
                    "live",
                    "s",
                    "rtmp://example.com:19350/live",
                ),
            ),
            (
                "rtmp://h/live/sub/level/s",
                url("h", 1935, "live/sub/level", "s", "rtmp://h/live/sub/level"),
            ),
            (
                "rtmp://h/live/s?token=abc&x=1",
                url("h", 1935, "live", "s?token=abc&x=1", "rtmp://h/live"),
            ),
            (
                "rtmp://h/live?vhost=v.example/s",
                url(
                    "h",
                    1935,
                    "live?vhost=v.example",
                    "s",
                    "rtmp://h/live?vhost=v.example",
                ),
            ),
            (
                "rtmp://[::1]:1936/live/s",
                url("::1", 1936, "live", "s", "rtmp://[::1]:1936/live"),
            ),
            (
                "rtmp://[::1]/live/s",
                url("::1", 1935, "live", "s", "rtmp://[::1]/live"),
            ),
            (
                "RTMP://H/live/s",
                url("H", 1935, "live", "s", "rtmp://H/live"),
            ),
        ];
        for (text, want) in table {
            assert_eq!(RtmpUrl::parse(text).unwrap(), want, "{text}");
        }
    }

    #[test]
    fn refuses_bad_urls() {
        for text in [
            "",
            "rtmp",
            "rtmp://",
            "http://h/live/s",
            "rtmps://h/live/s",
            "rtmp://h",
            "rtmp://h/",
            "rtmp://h/live",
            "rtmp://h/live/",
            "rtmp://h//s",
            "rtmp://h/live/?x=1",
            "rtmp:///live/s",
            "rtmp://h:/live/s",
            "rtmp://h:0/live/s",
            "rtmp://h:70000/live/s",
            "rtmp://h:abc/live/s",
            "rtmp://[::1/live/s",
            "rtmp://[::1]x/live/s",
            "rtmp://[]/live/s",
            "rtmp://user@h/live/s",
        ] {
            let r = RtmpUrl::parse(text);
            assert!(matches!(r, Err(ClientError::Url(_))), "{text:?} -> {r:?}");
        }
    }

    #[test]
    fn url_display_round_trips() {
        for text in ["rtmp://h:1936/a/b/s?t=1", "rtmp://[::1]/live/s"] {
            let u = RtmpUrl::parse(text).unwrap();
            assert_eq!(u.to_string(), text);
            assert_eq!(RtmpUrl::parse(&u.to_string()).unwrap(), u);
        }
    }

    #[test]
    fn xorshift_fills_odd_lengths_and_differs_per_seed() {
        let mut a = XorShift::seeded();
        let mut b = XorShift::seeded();
        let (mut x, mut y) = ([0u8; 13], [0u8; 13]);
        a.fill(&mut x);
        b.fill(&mut y);
        assert_ne!(x, y);
        assert_ne!(x, [0u8; 13]);
    }

    #[test]
    fn errors_say_what_happened() {
        let e = ClientError::Rejected {
            code: "NetStream.Publish.BadName".into(),
            description: "busy".into(),
        };
        assert!(e.to_string().contains("BadName"));
        assert!(ClientError::Timeout("connect")
            .to_string()
            .contains("connect"));
    }
}
