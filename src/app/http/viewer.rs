//! One live HTTP viewer (FLV, TS, AAC, MP3 of a stream): the hub consumer's batches, muxed
//! for the mount's format, written to a [`Sink`] — hyper's body channel, or the socket itself
//! when [`super::direct`] took the request at accept (no hyper connection, no second task,
//! no channel: one task and one `writev` per batch, as an RTMP player).

use super::live::{stream_tracks, Format};
use super::{Conn, LiveGuard};
use crate::app::runtime::body::Chunks;
use crate::app::runtime::quiet::{stop_signals, PollGate, Quiet, Stop};
use crate::app::runtime::stats::{ClientGuard, ClientType};
use crate::app::runtime::writev::{send, Plan, View};
use crate::app::session;
use crate::app::shared::{play_jitter, source_options, ClientRequest, Context};
use crate::config::VhostConfig;
use crate::hub::{Batch, Codec, Consumer, Item, QueueLimits, StreamKey, WriteTime};
use crate::protocol::ts_remux::{Sample, TsRemuxer};
use crate::protocol::{aac, flv};
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;
use tokio::net::TcpStream;
use tokio::sync::mpsc;

/// Bytes drained from the consumer queue per batch (one HTTP chunk, one writev).
const BATCH_BYTES: usize = 512 * 1024;
/// A viewer whose socket takes no byte (or, behind hyper, whose connection takes no batch)
/// for this long is gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// Where a viewer's bytes go.
pub(super) enum Sink {
    /// hyper's body channel (the response head is hyper's; chunked transfer encoding).
    Channel(mpsc::Sender<io::Result<Chunks>>),
    /// The socket, the response head already written. `chunked`: each batch is one HTTP/1.1
    /// chunk, as hyper (and SRS 6) send HTTP-FLV; else (an HTTP/1.0 client) the body runs
    /// until the connection closes.
    Socket { socket: TcpStream, chunked: bool },
}

impl Sink {
    /// The writing side, which also tells when the viewer is gone ([`Out::poll_gone`]).
    fn into_out(self) -> Out {
        match self {
            Sink::Channel(tx) => {
                let watch = tx.clone();
                Out::Channel {
                    tx,
                    gone: Box::pin(async move { watch.closed().await }),
                }
            }
            Sink::Socket { socket, chunked } => Out::Socket { socket, chunked },
        }
    }
}

/// The writing side of a [`Sink`].
enum Out {
    Channel {
        tx: mpsc::Sender<io::Result<Chunks>>,
        /// Resolves when hyper dropped the body (made once per viewer).
        gone: Pin<Box<dyn Future<Output = ()> + Send>>,
    },
    Socket {
        socket: TcpStream,
        chunked: bool,
    },
}

impl Out {
    /// Ready when the viewer is gone: hyper dropped the body, or the socket's read side
    /// ended (what a viewer sends after its request is read and dropped). Polled between
    /// batches; no state is kept for it in the viewer's task.
    fn poll_gone(&mut self, cx: &mut std::task::Context<'_>) -> Poll<()> {
        match self {
            Out::Channel { gone, .. } => gone.as_mut().poll(cx),
            Out::Socket { socket, .. } => {
                // Bytes a viewer sends after its request are read and dropped, a few reads per
                // poll: one that keeps sending gets a turn like any task, not a loop.
                for _ in 0..16 {
                    match socket.poll_read_ready(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(Err(_)) => return Poll::Ready(()),
                        Poll::Ready(Ok(())) => {}
                    }
                    let mut scrap = [0u8; 256];
                    match socket.try_read(&mut scrap) {
                        Ok(0) => return Poll::Ready(()),
                        Ok(_) => {}
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(_) => return Poll::Ready(()),
                    }
                }
                cx.waker().wake_by_ref();
                Poll::Pending
            }
        }
    }

    /// Writes one batch: to the socket straight from the batch's items (one `writev`), or
    /// to hyper as shared `Bytes`. `Ok(true)`: the socket took it at once (the task did not
    /// wait). Errors: the viewer left, or took nothing for [`SEND_TIMEOUT`] (`TimedOut`);
    /// a viewer that keeps taking bytes has as long as it needs.
    async fn send(&mut self, plan: Plan<'_>, items: &Batch) -> io::Result<bool> {
        match self {
            Out::Channel { tx, .. } => {
                let chunks = plan.into_chunks(items);
                match tokio::time::timeout(SEND_TIMEOUT, tx.send(Ok(chunks))).await {
                    // Whether the channel's send waited is not known: as if it had.
                    Ok(Ok(())) => Ok(false),
                    Ok(Err(_)) => Err(io::ErrorKind::BrokenPipe.into()),
                    Err(_) => Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out")),
                }
            }
            Out::Socket { socket, chunked } => {
                // RFC 9112 §7.1: the size in hex, CRLF, the data, CRLF.
                let mut line = [0u8; 18];
                let line_len = if *chunked {
                    chunk_size_line(plan.len(), &mut line)
                } else {
                    0
                };
                let post: &'static [u8] = if *chunked { b"\r\n" } else { b"" };
                let rest = send(socket, &line[..line_len], plan, post, items, SEND_TIMEOUT)?;
                match rest {
                    None => Ok(true),
                    Some(rest) => rest.await.map(|()| false),
                }
            }
        }
    }

    /// Kicked: hyper is told the body failed (it closes the connection); a socket closes
    /// when the viewer ends.
    fn abort(&mut self) {
        if let Out::Channel { tx, .. } = self {
            let _ = tx.try_send(Err(io::Error::new(
                io::ErrorKind::ConnectionAborted,
                "kicked",
            )));
        }
    }
}

/// Writes `len` in hex and CRLF into `out`; returns the bytes written (at most 18).
fn chunk_size_line(len: usize, out: &mut [u8; 18]) -> usize {
    let digits = (usize::BITS - len.leading_zeros()).div_ceil(4).max(1) as usize;
    for (i, slot) in out[..digits].iter_mut().enumerate() {
        let nibble = (len >> (4 * (digits - 1 - i))) & 0xf;
        *slot = b"0123456789ABCDEF"[nibble];
    }
    out[digits..digits + 2].copy_from_slice(b"\r\n");
    digits + 2
}

/// An admitted live viewer, subscribed, not yet running (see [`Viewer::run`]).
pub(super) struct Viewer {
    ctx: Arc<Context>,
    consumer: Consumer,
    guard: ClientGuard,
    /// on_stop fires when the viewer ends, whatever way it ends.
    _playing: session::Playing,
    _live: LiveGuard,
    format: Format,
    key: StreamKey,
    ip: IpAddr,
    /// Merged writes, as for RTMP players: wait this long after the first frame of a batch so
    /// one write carries more frames (SRS's mw_sleep applies to HTTP too).
    mw_latency: Duration,
}

impl Viewer {
    /// Subscribes the viewer `who` to `key` (starting or sharing an edge pull, registering it
    /// as an `flv-play` client).
    pub(super) fn subscribe(
        conn: &Conn,
        key: &StreamKey,
        v: &VhostConfig,
        format: Format,
        who: &ClientRequest,
        playing: session::Playing,
    ) -> Viewer {
        let ctx = conn.ctx.clone();
        let source = ctx.hub.source(key, source_options(v));
        let limits = QueueLimits {
            max_duration_ms: v.play.queue_length.as_millis_i64(),
            ..QueueLimits::default()
        };
        let consumer = source.subscribe(limits, play_jitter(v, &source));
        // edge: an HTTP viewer on an edge starts (or shares) the upstream pull like an RTMP one.
        crate::app::cluster::edge::ensure_pull(&ctx, v, &source, &who.param, &who.page_url, "");
        // edge: end.
        let guard = ctx.stats.register(conn.cid, who.ip.clone());
        guard.stat.update(|i| {
            i.request = who.clone();
            i.kind = Some(ClientType::FlvPlay);
            i.key = Some(key.clone());
        });
        ::log::info!(
            "{} play {key} from {} param={} (publishing={})",
            format.label(),
            conn.peer.ip(),
            who.param,
            source.is_publishing()
        );
        Viewer {
            consumer,
            guard,
            _playing: playing,
            _live: conn.activity.live_guard(),
            format,
            key: key.clone(),
            ip: conn.peer.ip(),
            mw_latency: v.play.mw_latency.get(),
            ctx,
        }
    }

    /// Streams until the viewer leaves, is kicked or too slow, or the server shuts down.
    pub(super) async fn run(self, sink: Sink) {
        let Viewer {
            ctx,
            mut consumer,
            guard,
            format,
            key,
            ip,
            mw_latency,
            ..
        } = self;
        let mut shutdown = ctx.shutdown.clone();
        let stat = guard.stat.clone();
        // Made once: nothing registers with the shared shutdown channel, the kick or the
        // socket per batch.
        let mut out = sink.into_out();
        let stop = Quiet::new(stop_signals(&mut shutdown, &stat.kick));
        tokio::pin!(stop);
        // FLV: the header's audio/video flags must be true (ffprobe probes a video-only
        // stream flagged 0x05 for 30 s waiting for audio), so it waits for the first media
        // frame; metadata and sequence headers before it are held (a few items).
        let mut flv_header = format != Format::Flv;
        let mut held: Vec<Item> = Vec::new();
        let mut sent = 0u64;
        let mut aac_config: Option<aac::AacConfig> = None;
        // HTTP-TS: the remuxer, when PAT/PMT were last written, and whether the stream waits
        // for an entry point (the first keyframe, again after a republish). Made by the first
        // frame of an HTTP-TS viewer only.
        let mut remux: Option<Box<TsRemuxer>> = None;
        let mut last_psi = 0i64;
        let mut need_entry = true;
        // Grows to one batch and shrinks back after a burst (see app/rtmp/mod.rs).
        let mut items = Batch::default();
        let mut reported_drops = 0u64;
        // A batch with media went out (see `PlayState::primed` in app/rtmp/mod.rs).
        let mut primed = false;
        let mut next_write: Option<tokio::time::Instant> = None;
        // The read before the last write left the task's waker with the source, and the
        // socket took the write at once (see `Batch::armed`).
        let mut just_armed = false;
        let mut gone_gate = PollGate::default();
        // When the byte count next reaches the client table (runtime::stats::BYTES_EVERY).
        let mut bytes_due = std::time::Instant::now();
        let why: io::Result<&str> = loop {
            // The merged write after a read that takes everything (as set below): registered
            // with the read, so the poll after the write takes no source lock.
            let then = |now: std::time::Instant| {
                let next = crate::app::runtime::merge::next_write(
                    tokio::time::Instant::from_std(now),
                    mw_latency,
                    false,
                );
                next.filter(|_| primed).map(|t| WriteTime::at(t.into_std()))
            };
            tokio::select! {
                // The batch first: a wake-up for it polls nothing else.
                biased;
                // Merged writes, as for RTMP players: once primed, the next batch waits for
                // the grid point all players share (runtime::merge), and the stream's first
                // append at or after it wakes the viewer (no timer per viewer). The first
                // media (metadata, sequence headers, GOP cache) goes out at once.
                _ = std::future::poll_fn(|cx| {
                    if std::mem::take(&mut just_armed) {
                        return Poll::Pending;
                    }
                    consumer.poll_batch(cx, &mut items, BATCH_BYTES, next_write.map(|t| WriteTime::at(t.into_std())), &then)
                }) => {}
                // Behind a gate: polled on a wake-up only when the socket caused it.
                _ = std::future::poll_fn(|cx| gone_gate.poll(cx, |cx| out.poll_gone(cx))) => break Ok("viewer left"),
                e = &mut stop => match e {
                    Stop::Shutdown => break Ok("server shutdown"),
                    Stop::Kicked => {
                        out.abort();
                        break Err(io::Error::new(io::ErrorKind::ConnectionAborted, "kicked by the HTTP API"));
                    }
                },
            }
            let more = items.more();
            let armed = items.armed();
            let mut plan = Plan::for_batch(&items, View::Payload);
            if !flv_header {
                let media = |i: &Item| matches!(i, Item::Frame(f) if !f.flags.metadata && !f.flags.seq_header && f.kind != crate::hub::MediaKind::Data);
                held.extend(items.iter().cloned());
                items.clear(16);
                if !held.iter().any(media) && held.len() < 64 {
                    continue;
                }
                items = Batch::from_vec(std::mem::take(&mut held));
                let t = stream_tracks(consumer.source());
                let has = |want: fn(&crate::hub::Frame) -> bool| {
                    items.iter().any(|i| matches!(i, Item::Frame(f) if want(f)))
                };
                let audio = t.audio.is_some() || has(crate::hub::Frame::is_audio);
                let video = t.video || has(crate::hub::Frame::is_video);
                plan.put(|h| flv::encode_header(audio, video, h));
                flv_header = true;
            }
            // An audio mount whose stream turned out to carry another codec ends at once
            // rather than answering 200 and never sending a byte.
            let mut wrong_codec = false;
            // FLV: the PreviousTagSize the last tag written still owes.
            let mut tag_size: Option<[u8; 4]> = None;
            for run in items.as_slices() {
                for item in run {
                    match item {
                        Item::Frame(f) => match format {
                            Format::Flv => {
                                let ts = consumer.timestamp(f);
                                let body = f.flv_tag_body();
                                let len = body.len();
                                // The previous tag's size and this tag's header: one write
                                // of the buffer between two payloads.
                                let mut between = [0u8; 4 + flv::TAG_HEADER_LEN];
                                let at = match tag_size.take() {
                                    Some(size) => {
                                        between[..4].copy_from_slice(&size);
                                        0
                                    }
                                    None => 4,
                                };
                                between[4..].copy_from_slice(&flv::tag_header(f.kind, ts, len));
                                plan.put(|h| h.extend_from_slice(&between[at..]));
                                plan.frame(body);
                                tag_size = Some(((flv::TAG_HEADER_LEN + len) as u32).to_be_bytes());
                            }
                            Format::Ts => {
                                let ts = i64::from(consumer.timestamp(f));
                                let remux = remux
                                    .get_or_insert_with(|| Box::new(TsRemuxer::new(true, true)));
                                let sample = match remux.inspect(&f.tag, ts, f.data()) {
                                    Ok(s) => s,
                                    Err(e) => {
                                        ::log::warn!("HTTP-TS {key}: skipped: {e}");
                                        continue;
                                    }
                                };
                                // Where a player can start: a keyframe, or any audio frame (at most
                                // once a second) of a stream without video.
                                let entry = match sample {
                                    Sample::Skip => continue,
                                    Sample::Video { keyframe, .. } => keyframe,
                                    Sample::Audio { .. } => {
                                        !remux.has_video() && (need_entry || ts - last_psi >= 1000)
                                    }
                                };
                                if need_entry && !entry {
                                    continue;
                                }
                                if entry {
                                    if !remux.is_started() || remux.tracks_changed() {
                                        plan.put(|h| remux.start(h));
                                    } else {
                                        plan.put(|h| remux.write_pat_pmt(h));
                                    }
                                    last_psi = ts;
                                    need_entry = false;
                                }
                                if let Err(e) = plan.put(|h| remux.write(sample, f.data(), h)) {
                                    ::log::warn!("HTTP-TS {key}: skipped: {e}");
                                }
                            }
                            Format::Aac => {
                                if f.is_audio() && !matches!(f.codec(), Codec::Aac | Codec::None) {
                                    wrong_codec = true;
                                }
                                if !f.is_audio() || f.codec() != Codec::Aac {
                                    continue;
                                }
                                if f.flags.seq_header {
                                    aac_config = aac::parse_audio_specific_config(f.data()).ok();
                                } else if let Some(cfg) = &aac_config {
                                    let len = f.data().len();
                                    if len > 0 && len <= aac::MAX_ADTS_PAYLOAD {
                                        plan.put(|h| aac::adts_header(cfg, len, h));
                                        plan.frame(f.data());
                                    }
                                }
                            }
                            Format::Mp3 => {
                                if f.is_audio() && !matches!(f.codec(), Codec::Mp3 | Codec::None) {
                                    wrong_codec = true;
                                }
                                if f.is_audio() && f.codec() == Codec::Mp3 && !f.data().is_empty() {
                                    plan.frame(f.data());
                                }
                            }
                        },
                        Item::Published => {
                            consumer.reset_timeline();
                            need_entry = true;
                        }
                        Item::Unpublished => {
                            ::log::info!(
                                "{key} unpublished; HTTP viewer waits for the next publish"
                            );
                        }
                    }
                }
            }
            if let Some(size) = tag_size.take() {
                plan.put(|h| h.extend_from_slice(&size));
            }
            sent += plan.len() as u64;
            primed |= flv_header && sent > 0;
            // One clock read per batch: the next merged write's time and the byte counts'.
            let now = tokio::time::Instant::now();
            if primed {
                next_write = crate::app::runtime::merge::next_write(now, mw_latency, more);
            }
            if !plan.is_empty() {
                match out.send(plan, &items).await {
                    Ok(at_once) => {
                        // As for RTMP players (app/rtmp/mod.rs): the poll that would follow
                        // this write in the same wake-up answers `Pending`, and is skipped.
                        just_armed = armed && at_once;
                        stat.set_bytes_every(0, sent, now.into_std(), &mut bytes_due);
                    }
                    Err(e) if e.kind() == io::ErrorKind::TimedOut => break Err(e),
                    Err(_) => break Ok("viewer left"),
                }
            }
            if wrong_codec && sent == 0 {
                break Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the stream's audio is not in this mount's codec",
                ));
            }
            let drops = items.dropped();
            items.clear(16);
            if drops > reported_drops {
                ctx.stats.add_drops(drops - reported_drops);
                ::log::warn!(
                    "{key} {} viewer too slow: dropped {drops} frames so far",
                    format.label()
                );
                reported_drops = drops;
            }
        };
        stat.set_bytes(0, sent);
        match why {
            Ok(why) => ::log::info!("{} {key} viewer {ip} closed: {why}", format.label()),
            Err(e) => ::log::warn!("{} {key} viewer {ip} closed: {e}", format.label()),
        }
        drop(consumer);
        drop(guard);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    #[test]
    fn chunk_size_lines_are_hex() {
        let mut line = [0u8; 18];
        for (len, want) in [
            (0usize, "0\r\n"),
            (9, "9\r\n"),
            (0x1f, "1F\r\n"),
            (0x10000, "10000\r\n"),
            (usize::MAX, "FFFFFFFFFFFFFFFF\r\n"),
        ] {
            let n = chunk_size_line(len, &mut line);
            assert_eq!(std::str::from_utf8(&line[..n]).unwrap(), want);
        }
    }
}
