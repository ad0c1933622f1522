//! One RTMP connection: handshake, then one `select!` loop over socket reads, the consumer
//! queue (when playing), timers and shutdown. The protocol decides nothing here; this task
//! answers the session's requests (vhost, busy stream) and moves media between the socket and
//! the hub.

use crate::app::hooks::Guard;
use crate::app::runtime::quiet::{stop_signals, PollGate, Quiet, Stop};
use crate::app::runtime::stats::{ClientStat, ClientType};
use crate::app::session::access::Action;
use crate::app::session::{self, Denied, Gate};
use crate::app::shared::ClientRequest;
use crate::app::shared::Context;
use crate::app::shared::{play_jitter, source_options};
use crate::protocol::rtmp::url::{self, StreamRequest};
use std::future::Future as _;

pub mod bandcheck;
pub mod error;
mod play;
mod requests;

use crate::config::{Config, VhostConfig};
use crate::hub::{Batch, Consumer, Publisher, QueueLimits, StreamKey, WriteTime};
use crate::protocol::rtmp::command::ConnectRequest;
use crate::protocol::rtmp::handshake::{HandshakeProgress, ServerHandshake};
use crate::protocol::rtmp::session::{ServerEvent, ServerSession};
use bytes::BytesMut;
pub use error::ConnError;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::time::Instant;

/// A peer must finish the handshake and connect within this long (2 s when the server is
/// nearly full: `admission::handshake_timeout`).
const HANDSHAKE_TIMEOUT: Duration = crate::app::runtime::admission::HANDSHAKE_TIMEOUT;
/// A connection neither publishing nor playing is closed after this long.
const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A write that makes no progress for this long means the player is gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Period of the per-connection summary line (SRS's "pithy print").
const PITHY: Duration = Duration::from_secs(10);

pub async fn serve(ctx: Arc<Context>, socket: TcpStream, peer: SocketAddr, cid: u32) {
    // On until a player's first media went out (then the vhost's `tcp_nodelay`): command
    // answers and the GOP burst must not wait for the peer's delayed ACK.
    let _ = socket.set_nodelay(true);
    let guard = ctx.stats.register(cid, peer.ip().to_string());
    let result = serve_inner(&ctx, socket, peer, cid, &guard.stat).await;
    ctx.closes
        .count(result.as_ref().err().map_or("closed", ConnError::reason));
    match result {
        Ok(()) => log::info!("client {peer} closed"),
        // A peer hanging up is ordinary (players stop, benches end): not worth a warning.
        // A player or encoder quitting resets or half-closes its socket: that is how ffmpeg,
        // OBS and VLC leave, not an error worth the OS's wording.
        // The error itself ("closed the connection", "Connection reset by peer"), not its
        // kind: an ordinary close read as "unexpected end of file".
        Err(ConnError::Peer(e)) => log::info!("client {peer} left ({e})"),
        Err(e) if e.is_ordinary() => log::info!("client {peer} closed: {e}"),
        Err(e) => log::warn!("client {peer} closed: {e}"),
    }
}

fn err(kind: io::ErrorKind, msg: impl Into<String>) -> io::Error {
    io::Error::new(kind, msg.into())
}

enum Role {
    Idle,
    Publishing(PublishState),
    Playing(PlayState),
}

struct PublishState {
    publisher: Publisher,
    key: StreamKey,
    got_media: bool,
    last_media: Instant,
    first_timeout: Duration,
    normal_timeout: Duration,
    msgs: u64,
    /// Sends on_unpublish when the publish ends.
    _hook: Option<Guard>,
    /// Forward, transcode, HLS and DVR of this publish: [`Conn::end_publish`] waits for the
    /// last on_hls/on_dvr before it lets on_unpublish go.
    outputs: crate::app::outputs::Outputs,
}

/// How long an unpublish waits for the HLS/DVR writers to close their last files before
/// on_unpublish is sent anyway.
const OUTPUTS_FINISH_LIMIT: Duration = Duration::from_secs(5);

struct PlayState {
    consumer: Consumer,
    key: StreamKey,
    stream_id: u32,
    paused: bool,
    mw_latency: Duration,
    /// The vhost's merged-write message count (`play.mw_msgs`, see `runtime::merge`).
    mw_msgs: u32,
    /// A batch with media went out since the play (or the last republish). Until then
    /// nothing waits for `mw_latency`: a joining player's metadata, sequence headers and GOP
    /// cache go out at once, and merging applies to the live frames after them.
    primed: bool,
    /// When the next merged write is due (`mw_latency` after the last one, once primed,
    /// and `mw_msgs`).
    next_write: Option<WriteTime>,
    /// The timestamp of the last audio (`[0]`) and video (`[1]`) message sent to this player
    /// on its chunk stream, all with a 24-bit time: what a shared type-1 header's delta is
    /// counted from (see `Frame::shared_wire`). `None` until the first.
    last_ts: [Option<u32>; 2],
    /// The vhost's `tcp_nodelay`, applied once primed.
    tcp_nodelay: bool,
    /// `play.publish_notify`: send Unpublish/PublishNotify on a republish.
    publish_notify: bool,
    msgs: u64,
    reported_drops: u64,
    /// The length the client asked to play (`rtmpdump -B`), when it did.
    length: Option<play::PlayLength>,
    /// Sends on_stop when the play ends.
    _playing: session::Playing,
}

struct Conn<'a> {
    ctx: &'a Arc<Context>,
    config: Arc<Config>,
    cid: u32,
    session: ServerSession,
    /// Set by connect: its tcUrl.
    tc_url: String,
    /// A valid connect was answered.
    connected: bool,
    /// The vhost the first publish or play resolved to (SRS resolves it once the stream, and
    /// with it a `?vhost=` in the stream's query, is known).
    vhost: Option<String>,
    role: Role,
    close_after_flush: bool,
    bytes_out: u64,
    /// When the connection was accepted.
    started: Instant,
    stat: Arc<ClientStat>,
    /// The connect request (flashVer tells FMLE from flash publishers for the API).
    connect: ConnectRequest,
    /// What hooks say about this client; stream fields filled by publish/play.
    who: ClientRequest,
    /// Admitted to its vhost (on_connect passed): sends on_close when the connection ends
    /// (dropped with `Conn`).
    connected_guard: Option<session::Connected>,
    /// A connect to a vhost with `bandcheck` on, left unanswered for [`crate::app::rtmp::bandcheck`]:
    /// the request id, the vhost and its settings.
    bandcheck: Option<(u32, String, crate::config::BandcheckConfig)>,
}

async fn serve_inner(
    ctx: &Arc<Context>,
    socket: TcpStream,
    peer: SocketAddr,
    cid: u32,
    stat: &Arc<ClientStat>,
) -> Result<(), ConnError> {
    let (mut reader, mut writer) = socket.into_split();
    // C0+C1 (1537 bytes) and C2 (1536) fit; after the handshake it is given up once empty
    // (see `read_some`).
    let mut rbuf = BytesMut::with_capacity(4096);

    // Boxed: its state (C1/S1 buffers, digests) is needed only here, not in every
    // player's task for the life of the connection.
    let accepted = Instant::now();
    Box::pin(handshake(
        ctx,
        &mut reader,
        &mut writer,
        &mut rbuf,
        peer,
        cid,
    ))
    .await?;

    let config = ctx.config();
    let mut conn = Conn {
        ctx,
        session: ServerSession::new(config.chunk_size, &ctx.server_name),
        config,
        cid,
        tc_url: String::new(),
        connected: false,
        vhost: None,
        role: Role::Idle,
        close_after_flush: false,
        bytes_out: 0,
        started: accepted,
        stat: stat.clone(),
        connect: ConnectRequest::default(),
        who: ClientRequest::default(),
        connected_guard: None,
        bandcheck: None,
    };
    let mut shutdown = ctx.shutdown.clone();
    // Grows to one batch (at most MAX_BATCH_ITEMS) and shrinks back after a burst.
    let mut items = Batch::default();
    let mut idle_since = Instant::now();
    // When the byte counts next reach the client table (runtime::stats::BYTES_EVERY).
    let mut bytes_due = idle_since.into_std();
    let mut next_pithy = Instant::now() + PITHY;
    // One timer for the connection's life, moved only when its deadline changes: arming a
    // new timer on every wake-up costs more than the write it precedes.
    let timer = tokio::time::sleep_until(next_pithy);
    tokio::pin!(timer);
    let mut last_pithy = (Instant::now(), 0u64, 0u64);
    // Leftover bytes after C2 are the first chunks.
    let mut pending_input = !rbuf.is_empty();
    // Made once, not per wake-up: each new `changed()`/`notified()` future takes a lock to
    // join a waiter list shared by every connection, a cost paid per frame by every player;
    // and behind `Quiet`, polled again only when one of them fired (runtime::quiet).
    let stop = Quiet::new(stop_signals(&mut shutdown, &stat.kick));
    tokio::pin!(stop);

    // The read before the last write left the task's waker with the source (see below).
    let mut just_armed = false;
    let mut io_gate = PollGate::default();
    // When the last write ended (its clock read serves the counters below).
    let mut wrote_at: Option<Instant> = None;
    let result: Result<(), ConnError> = loop {
        if pending_input {
            pending_input = false;
            if let Err(e) = conn.session.handle_input(&mut rbuf) {
                break Err(ConnError::Protocol(e.to_string()));
            }
            // Boxed: connect/publish/play (hooks, edge, admission) are rare and their futures
            // large; inline they would sit in every player's task for its whole life.
            if let Err(e) = Box::pin(conn.handle_events()).await {
                break Err(e.into());
            }
            // A bandwidth check takes the connection over until it ends.
            if let Some((id, vhost, bc)) = conn.bandcheck.take() {
                break Box::pin(crate::app::rtmp::bandcheck::run(
                    &mut conn.session,
                    &mut reader,
                    &mut writer,
                    &mut rbuf,
                    id,
                    &vhost,
                    &conn.tc_url,
                    !conn.connect.swf_url.is_empty(),
                    &bc,
                    &ctx.bandcheck,
                ))
                .await
                .map_err(ConnError::from);
            }
        }
        if let Some(out) = conn.session.take_output() {
            conn.bytes_out += out.len() as u64;
            // Boxed: a command's answer or an ack is rare next to the batches; inline, its
            // write state (256 bytes) would sit in every player's task for its whole life.
            if let Err(e) = Box::pin(write_timeout(writer.write_all(&out))).await {
                break Err(e.into());
            }
        }
        if conn.close_after_flush {
            break Ok(());
        }
        let deadline = conn.deadline(idle_since).min(next_pithy);
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
            io_gate.open();
        }
        let publishing = matches!(conn.role, Role::Publishing(_));
        let (playing, merge_at, merge) = match &conn.role {
            Role::Playing(p) if !p.paused => (
                Some(&p.consumer),
                p.next_write,
                p.primed.then_some((p.mw_latency, p.mw_msgs)),
            ),
            _ => (None, None, None),
        };
        // The merged write after a read that takes everything (as `after_write` will set
        // it): registered with the read, so the poll after the write takes no source lock.
        let then = |now: std::time::Instant| {
            let (mw, msgs) = merge?;
            crate::app::runtime::merge::next_player_write(Instant::from_std(now), mw, msgs, false)
        };
        // Biased, queue first: a player woken for a frame writes it without polling the
        // socket's read side, the timers or the shutdown signals (each poll of them costs a
        // lock or more, per frame and player). They are polled whenever the queue is empty.
        tokio::select! {
            biased;
            // Merged writes: nothing is read before the next write time (mw_latency); the
            // stream's first append at or after it wakes the player (no timer per player).
            _ = std::future::poll_fn(|cx| match playing {
                Some(_) if std::mem::take(&mut just_armed) => std::task::Poll::Pending,
                Some(c) => c.poll_batch(cx, &mut items, play::WRITE_BATCH_BYTES, merge_at, &then),
                None => std::task::Poll::Pending,
            }) => {
                // The read registered the next merged write (`Batch::armed`): when the socket
                // takes the batch at once, the poll that follows in this same wake-up would
                // answer `Pending`, and is skipped; any later wake-up polls the queue. (After
                // a write that waited, it is not: a wake-up from the source may have come and
                // been spent on the write.)
                let armed = items.armed();
                // Not boxed: what the socket takes at once is written with no future; only a
                // write that waits boxes its state (writev::send), so none of it sits in every
                // player's task between batches.
                match conn.write_items(&mut writer, &mut items).await {
                    Ok((at_once, at)) => {
                        just_armed = armed && at_once;
                        wrote_at = Some(at);
                        if conn.played_out() {
                            break Ok(());
                        }
                    }
                    Err(e) => break Err(e.into()),
                }
            }
            e = &mut stop => break Err(match e {
                Stop::Shutdown => ConnError::Shutdown,
                Stop::Kicked => ConnError::Kicked,
            }),
            // The timer and the socket's read side, behind a gate: polled on a wake-up only
            // when one of them caused it (a player is woken a few times a second for its
            // queue alone, and each poll of these takes a lock or more).
            ev = std::future::poll_fn(|cx| io_gate.poll(cx, |cx| {
                if timer.as_mut().poll(cx).is_ready() {
                    return std::task::Poll::Ready(None);
                }
                std::pin::pin!(read_some(&mut reader, &mut rbuf, publishing)).poll(cx).map(Some)
            })) => match ev {
                None => {
                    let now = Instant::now();
                    if now >= next_pithy {
                        conn.pithy(&mut last_pithy);
                        next_pithy = now + PITHY;
                    }
                    if let Err(e) = conn.check_timeouts(idle_since) {
                        break Err(e.into());
                    }
                }
                Some(Ok(Some(0))) => break Err(ConnError::Peer(err(
                    io::ErrorKind::UnexpectedEof,
                    "closed the connection",
                ))),
                Some(Ok(Some(_))) => pending_input = true,
                Some(Ok(None)) => {}
                Some(Err(e)) => break Err(e.into()),
            },
        }
        let now = wrote_at.take().unwrap_or_else(Instant::now);
        stat.set_bytes_every(
            conn.session.bytes_received(),
            conn.bytes_out,
            now.into_std(),
            &mut bytes_due,
        );
        if !matches!(conn.role, Role::Idle) {
            idle_since = now;
        }
    };
    stat.set_bytes(conn.session.bytes_received(), conn.bytes_out);
    if let Role::Publishing(p) = &conn.role {
        log::info!("unpublish {} (publisher left)", p.key);
    }
    // Boxed: once per connection, and its state (424 bytes) is the largest of the loop's.
    Box::pin(conn.end_publish()).await;
    let _ = writer.shutdown().await;
    result
}

/// The RTMP handshake (simple or complex), bounded by `admission::handshake_timeout`. Bytes after C2
/// stay in `rbuf` as the first chunks.
async fn handshake(
    ctx: &Arc<Context>,
    reader: &mut OwnedReadHalf,
    writer: &mut OwnedWriteHalf,
    rbuf: &mut BytesMut,
    peer: SocketAddr,
    cid: u32,
) -> io::Result<()> {
    // Handshake.
    let mut hs = ServerHandshake::new();
    let mut seed = (cid as u64) ^ (ctx.started.elapsed().as_nanos() as u64) ^ 0x9E37_79B9_7F4A_7C15;
    let mut random = move |buf: &mut [u8]| {
        for b in buf {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            *b = seed as u8;
        }
    };
    let accepted = Instant::now();
    let deadline = accepted + HANDSHAKE_TIMEOUT;
    loop {
        // The bound shrinks when the server is nearly full (admission::handshake_timeout):
        // asked again every second while the peer sends nothing.
        let n = loop {
            let bound = accepted + crate::app::runtime::admission::handshake_timeout(ctx);
            let slice = bound.min(Instant::now() + Duration::from_secs(1));
            match tokio::time::timeout_at(slice, reader.read_buf(rbuf)).await {
                Ok(r) => break r?,
                Err(_) if Instant::now() >= bound => {
                    return Err(err(io::ErrorKind::TimedOut, "handshake timed out"))
                }
                Err(_) => {}
            }
        };
        if n == 0 {
            return Err(err(
                io::ErrorKind::UnexpectedEof,
                "peer closed during handshake",
            ));
        }
        let epoch = ctx.started.elapsed().as_millis() as u32;
        let progress = hs
            .handle_input(rbuf, &mut random, epoch)
            .map_err(|e| err(io::ErrorKind::InvalidData, format!("handshake: {e}")))?;
        let (send, done) = match progress {
            HandshakeProgress::NeedMore { send } => (send, false),
            HandshakeProgress::Done { send } => (send, true),
        };
        if !send.is_empty() {
            timeout_at(deadline, writer.write_all(&send), "handshake write").await??;
        }
        if done {
            break;
        }
        if rbuf.len() > 8192 {
            return Err(err(io::ErrorKind::InvalidData, "handshake too long"));
        }
    }
    log::info!(
        "RTMP client ip={peer}, {} handshake",
        match hs.complex_schema() {
            Some(s) => format!("complex (schema {s})"),
            None => "simple".to_string(),
        }
    );

    Ok(())
}

/// Reads what the peer sent into `rbuf`. A publisher's media comes in large reads straight
/// into `rbuf` (its payloads are split off it, never copied), which grows by 64 KiB. Anyone
/// else (players send acks and the odd command) reads through a buffer on the stack of one
/// poll, and `rbuf` keeps no capacity once the session consumed it: idle players hold no
/// read buffer at all. `Ok(None)`: a spurious wake-up, nothing read.
async fn read_some(
    reader: &mut OwnedReadHalf,
    rbuf: &mut BytesMut,
    publishing: bool,
) -> io::Result<Option<usize>> {
    if publishing {
        if rbuf.capacity() - rbuf.len() < 4096 {
            rbuf.reserve(64 * 1024);
        }
        return reader.read_buf(rbuf).await.map(Some);
    }
    if rbuf.is_empty() {
        // Also when its capacity reads 0: it may still share a block with the messages
        // split off it, and keep that alive.
        *rbuf = BytesMut::new();
    }
    // Readiness through the socket's one reader slot (no waiter list to join and leave on
    // every wake-up, as `readable()` would).
    std::future::poll_fn(|cx| reader.as_ref().poll_read_ready(cx)).await?;
    let mut tmp = [0u8; 2048];
    match reader.try_read(&mut tmp) {
        Ok(n) => {
            rbuf.extend_from_slice(&tmp[..n]);
            Ok(Some(n))
        }
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(None),
        Err(e) => Err(e),
    }
}

async fn timeout_at<F: std::future::Future>(
    deadline: Instant,
    f: F,
    what: &str,
) -> io::Result<F::Output> {
    tokio::time::timeout_at(deadline, f)
        .await
        .map_err(|_| err(io::ErrorKind::TimedOut, format!("{what} timed out")))
}

async fn write_timeout<F: std::future::Future<Output = io::Result<()>> + Send>(
    f: F,
) -> io::Result<()> {
    crate::app::runtime::writev::within(WRITE_TIMEOUT, std::pin::pin!(f)).await
}

impl Conn<'_> {
    /// Ends a publish (if one is on) in SRS's hook order: the stream is unpublished, the
    /// HLS/DVR writers close their last files and queue their last on_hls/on_dvr (waited for
    /// up to [`OUTPUTS_FINISH_LIMIT`]), and only then is on_unpublish queued, so a hook
    /// server hears of every file before the unpublish and the on_close after it.
    async fn end_publish(&mut self) {
        let Role::Publishing(p) = std::mem::replace(&mut self.role, Role::Idle) else {
            return;
        };
        let PublishState {
            publisher,
            key,
            _hook: hook,
            outputs,
            ..
        } = p;
        drop(publisher);
        if outputs.finish(OUTPUTS_FINISH_LIMIT).await > 0 {
            log::warn!(
                "unpublish {key}: HLS/DVR still writing after {:?}; on_unpublish sent first",
                OUTPUTS_FINISH_LIMIT
            );
        }
        drop(hook);
    }

    fn deadline(&self, idle_since: Instant) -> Instant {
        match &self.role {
            // A peer that has not sent a valid connect yet gets the handshake's bound.
            Role::Idle if !self.connected => {
                self.started + crate::app::runtime::admission::handshake_timeout(self.ctx)
            }
            Role::Idle => idle_since + IDLE_TIMEOUT,
            Role::Publishing(p) => {
                p.last_media
                    + if p.got_media {
                        p.normal_timeout
                    } else {
                        p.first_timeout
                    }
            }
            // No timeout of its own (a dead player's write times out): the loop's timer then
            // serves the pithy print. `idle_since` is the last wake-up, so no clock is read
            // per batch for this.
            Role::Playing(_) => idle_since + Duration::from_secs(3600),
        }
    }

    fn check_timeouts(&self, idle_since: Instant) -> io::Result<()> {
        let now = Instant::now();
        match &self.role {
            Role::Idle
                if !self.connected
                    && now
                        >= self.started
                            + crate::app::runtime::admission::handshake_timeout(self.ctx) =>
            {
                Err(err(
                    io::ErrorKind::TimedOut,
                    "no valid connect within the handshake timeout",
                ))
            }
            Role::Idle if now >= idle_since + IDLE_TIMEOUT => Err(err(
                io::ErrorKind::TimedOut,
                "idle: neither published nor played",
            )),
            Role::Publishing(p) if !p.got_media && now >= p.last_media + p.first_timeout => {
                Err(err(
                    io::ErrorKind::TimedOut,
                    format!(
                        "publisher sent no media within firstpkt_timeout {} ms",
                        p.first_timeout.as_millis()
                    ),
                ))
            }
            Role::Publishing(p) if p.got_media && now >= p.last_media + p.normal_timeout => {
                Err(err(
                    io::ErrorKind::TimedOut,
                    format!(
                        "publisher sent no media within normal_timeout {} ms",
                        p.normal_timeout.as_millis()
                    ),
                ))
            }
            _ => Ok(()),
        }
    }

    fn pithy(&self, last: &mut (Instant, u64, u64)) {
        let now = Instant::now();
        let secs = now.duration_since(last.0).as_secs_f64().max(0.001);
        let inb = self.session.bytes_received();
        let outb = self.bytes_out;
        let ikbps = ((inb - last.1) as f64 * 8.0 / 1000.0 / secs) as u64;
        let okbps = ((outb.saturating_sub(last.2)) as f64 * 8.0 / 1000.0 / secs) as u64;
        *last = (now, inb, outb);
        // time= is the client's age, as SRS's pithy print shows it (not the server's uptime).
        let age = now.duration_since(self.started).as_secs();
        match &self.role {
            Role::Publishing(p) => log::info!(
                "<- CPB {} time={age}s msgs={} ikbps={ikbps} okbps={okbps}",
                p.key,
                p.msgs
            ),
            Role::Playing(p) => log::info!(
                "-> PLA {} time={age}s msgs={} drops={} okbps={okbps} ikbps={ikbps}",
                p.key,
                p.msgs,
                p.consumer.dropped()
            ),
            Role::Idle => {}
        }
    }

    async fn handle_events(&mut self) -> io::Result<()> {
        while let Some(ev) = self.session.poll_event() {
            match ev {
                ServerEvent::Media {
                    kind,
                    timestamp,
                    payload,
                } => {
                    if let Role::Publishing(p) = &mut self.role {
                        p.publisher.push(kind, timestamp, payload);
                        p.got_media = true;
                        p.last_media = Instant::now();
                        p.msgs += 1;
                    }
                }
                ServerEvent::Connect { id, request } => self.on_connect(id, request).await,
                ServerEvent::Publish {
                    id,
                    stream_id: _,
                    request,
                } => {
                    self.on_publish(id, &request.stream_name).await?;
                }
                ServerEvent::Play {
                    id,
                    stream_id,
                    request,
                } => {
                    self.on_play(id, stream_id, &request.stream_name, request.length_ms())
                        .await?;
                }
                ServerEvent::Pause { paused, .. } => {
                    if let Role::Playing(p) = &mut self.role {
                        log::info!("{} {}", if paused { "pause" } else { "unpause" }, p.key);
                        p.paused = paused;
                    }
                }
                ServerEvent::Unpublish => {
                    if let Role::Publishing(p) = &self.role {
                        log::info!("unpublish {}", p.key);
                    }
                    self.end_publish().await;
                }
                ServerEvent::Call { .. } => {}
                ServerEvent::PlayStop => {
                    if let Role::Playing(p) = &self.role {
                        log::info!("stop playing {}", p.key);
                    }
                    self.role = Role::Idle;
                }
            }
        }
        Ok(())
    }
}
