//! HTTP-FLV live (and `.ts` MPEG-TS, `.aac` ADTS, `.mp3` raw frames of the same stream: the
//! path's extension picks the format): `http_remux.mount` of each vhost (default `[vhost]/[app]/[stream].flv`; for
//! the default vhost the `[vhost]/` prefix is dropped, as SRS does, so the URL is
//! `/[app]/[stream].flv`). A mount without a leading `/` after substitution names a host:
//! `example.com/live/s.flv` matches the Host header `example.com` and the path `/live/s.flv`.
//!
//! A viewer is a hub consumer, exactly like an RTMP player: metadata, sequence headers and the
//! GOP cache first, then live; a slow viewer is dropped to the next keyframe by its queue. Each
//! batch, gathered for `play.mw_latency` as RTMP players' writes are, becomes one HTTP chunk of
//! shared payloads with per-viewer 11-byte tag headers (timestamps rebased for this viewer) and
//! one vectored write.
//!
//! HTTP-TS goes through the same [`TsRemuxer`] as the HLS segmenter, one per viewer (its own
//! continuity counters): PAT/PMT, then from the first keyframe (the GOP cache's) on, with
//! PAT/PMT again at every keyframe (every second for audio-only streams) so a player can
//! join anywhere. A `.ts` path is a live stream only while that stream is published;
//! otherwise it is left to the static files (HLS segments are `.ts` files too).

use super::{cors, Conn};
use crate::app::runtime::body::{Body, Chunks};
use crate::app::runtime::stats::ClientType;
use crate::app::session;
use crate::app::shared::ClientRequest;
use crate::app::shared::{play_jitter, source_options};
use crate::config::{Config, VhostConfig, DEFAULT_VHOST};
use crate::hub::{Codec, Item, QueueLimits, StreamKey};
use crate::protocol::ts_remux::{Sample, TsRemuxer};
use crate::protocol::{aac, flv};
use bytes::{BufMut, BytesMut};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use std::io;
use std::time::Duration;

/// Bytes drained from the consumer queue per batch (one HTTP chunk, one writev).
const BATCH_BYTES: usize = 512 * 1024;
/// Batches waiting for the socket; beyond that the consumer queue (bounded, dropping) absorbs.
const CHANNEL_DEPTH: usize = 2;
/// A viewer that takes no batch for this long is gone.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The container a mount streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Flv,
    /// MPEG-TS (H.264 + AAC/MP3), as an endless HTTP-TS stream.
    Ts,
    /// AAC audio as an ADTS stream.
    Aac,
    /// MP3 audio: the raw MPEG audio frames.
    Mp3,
}

impl Format {
    fn from_ext(ext: &str) -> Option<Format> {
        match ext {
            "flv" => Some(Format::Flv),
            "ts" => Some(Format::Ts),
            "aac" => Some(Format::Aac),
            "mp3" => Some(Format::Mp3),
            _ => None,
        }
    }

    /// The name logs give a viewer of this format.
    fn label(self) -> &'static str {
        match self {
            Format::Flv => "HTTP-FLV",
            Format::Ts => "HTTP-TS",
            Format::Aac => "HTTP-AAC",
            Format::Mp3 => "HTTP-MP3",
        }
    }

    fn content_type(self) -> &'static str {
        match self {
            Format::Flv => "video/x-flv",
            Format::Ts => "video/mp2t",
            Format::Aac => "audio/aac",
            Format::Mp3 => "audio/mpeg",
        }
    }
}

/// Matches `input` against a template of literals, `[app]` (one or more characters, `/`
/// allowed: apps may have several levels) and `[stream]` (no `/`). Returns (app, stream).
pub fn match_template(template: &str, input: &str) -> Option<(String, String)> {
    #[derive(Clone, Copy)]
    enum Tok<'a> {
        Lit(&'a str),
        App,
        Stream,
    }
    let mut toks = Vec::new();
    let mut rest = template;
    while !rest.is_empty() {
        let next = [("[app]", Tok::App), ("[stream]", Tok::Stream)]
            .into_iter()
            .filter_map(|(name, t)| rest.find(name).map(|i| (i, name.len(), t)))
            .min_by_key(|x| x.0);
        match next {
            Some((0, n, t)) => {
                toks.push(t);
                rest = &rest[n..];
            }
            Some((i, _, _)) => {
                toks.push(Tok::Lit(&rest[..i]));
                rest = &rest[i..];
            }
            None => {
                toks.push(Tok::Lit(rest));
                rest = "";
            }
        }
    }
    /// Backtracking with memory: `failed` holds the (tokens left, input left) states known
    /// not to match. Without it, a mount with several wildcards against a long path that
    /// almost matches takes exponential time (a hostile path or config must not hang a
    /// worker); with it each state is tried once.
    struct Matcher<'a> {
        failed: std::collections::HashSet<(usize, usize)>,
        app: &'a str,
        stream: &'a str,
    }
    fn go<'a>(toks: &[Tok<'_>], s: &'a str, m: &mut Matcher<'a>) -> bool {
        if m.failed.contains(&(toks.len(), s.len())) {
            return false;
        }
        let Some((first, more)) = toks.split_first() else {
            return s.is_empty();
        };
        let matched = match *first {
            Tok::Lit(l) => s.strip_prefix(l).is_some_and(|r| go(more, r, m)),
            Tok::App | Tok::Stream => {
                let is_app = matches!(first, Tok::App);
                let mut matched = false;
                for (i, c) in s.char_indices() {
                    if !is_app && c == '/' {
                        break;
                    }
                    let end = i + c.len_utf8();
                    if go(more, &s[end..], m) {
                        if is_app {
                            m.app = &s[..end];
                        } else {
                            m.stream = &s[..end];
                        }
                        matched = true;
                        break;
                    }
                }
                matched
            }
        };
        if !matched {
            m.failed.insert((toks.len(), s.len()));
        }
        matched
    }
    let mut m = Matcher {
        failed: std::collections::HashSet::new(),
        app: "",
        stream: "",
    };
    go(&toks, input, &mut m).then(|| (m.app.to_string(), m.stream.to_string()))
}

/// A name usable as an app or stream: no traversal, no control characters (CONTRACTS.md §3.7).
fn safe_name(s: &str, allow_slash: bool) -> bool {
    !s.is_empty()
        && !s
            .chars()
            .any(|c| c.is_control() || (!allow_slash && c == '/'))
        && !s
            .split('/')
            .any(|seg| seg == ".." || seg == "." || seg.is_empty())
}

/// Finds the live mount `host` + `path` names, if any: the stream (its vhost resolved, app and
/// name checked safe for paths) and the format the extension asks for.
pub fn find(config: &Config, host: &str, path: &str) -> Option<(StreamKey, Format)> {
    if path.len() > 1024 {
        return None;
    }
    // Host-bound mounts first: the default vhost's `/[app]/[stream].flv` matches any host.
    let mut mounts: Vec<(&String, String)> = config
        .vhost
        .iter()
        .filter(|(_, v)| v.enabled && v.http_remux.enabled)
        .map(|(name, v)| {
            let mut t = v.http_remux.mount.replace("[vhost]", name);
            if name == DEFAULT_VHOST {
                t = t.replace(&format!("{DEFAULT_VHOST}/"), "/");
            }
            (name, t)
        })
        .collect();
    mounts.sort_by_key(|(_, t)| t.starts_with('/'));
    for (name, template) in mounts {
        let (ext_template, _ext) = match template.rsplit_once('.') {
            Some((stem, ext)) if Format::from_ext(ext).is_some() => (stem.to_string(), ext),
            _ => continue,
        };
        // The path's extension picks the format.
        let Some((path_stem, path_ext)) = path.rsplit_once('.') else {
            continue;
        };
        let Some(format) = Format::from_ext(path_ext) else {
            continue;
        };
        let matched = if let Some(t) = ext_template.strip_prefix('/') {
            path_stem
                .strip_prefix('/')
                .and_then(|p| match_template(t, p))
        } else {
            let Some((thost, t)) = ext_template.split_once('/') else {
                continue;
            };
            if !thost.eq_ignore_ascii_case(host) {
                continue;
            }
            path_stem
                .strip_prefix('/')
                .and_then(|p| match_template(t, p))
        };
        if let Some((app, stream)) = matched {
            if safe_name(&app, true) && safe_name(&stream, false) {
                return Some((StreamKey::new(name, &app, &stream), format));
            }
        }
    }
    None
}

/// The Host header without its port.
pub(super) fn request_host(req: &Request<hyper::body::Incoming>) -> String {
    let h = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().host())
        .unwrap_or("");
    // "[::1]:8080", "example.com:8080", "example.com".
    let h = match h.rfind(':') {
        Some(i) if !h[i..].contains(']') => &h[..i],
        _ => h,
    };
    h.trim_start_matches('[').trim_end_matches(']').to_string()
}

/// The tcUrl `/api/v1/clients` shows for an HTTP viewer: `http://HOST[:PORT]/APP`, as SRS's
/// `SrsRequest::as_http()` writes it — the app only, never the mount's file (`o.flv`), which
/// SRS's console would append the stream name to again (`.../live/o.flv/o`). HOST[:PORT] is
/// the `Host` the viewer asked (SRS uses the vhost or the publisher's host; a viewer behind
/// a proxy or NAT knows the address that works for it better).
pub(super) fn viewer_tc_url(req: &Request<hyper::body::Incoming>, app: &str) -> String {
    let authority = req
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri().authority().map(|a| a.as_str()))
        .unwrap_or("")
        .trim();
    format!("http://{authority}/{app}")
}

/// Serves a live mount, or `None` when the path names none (or a static file of that name
/// exists and no such stream is live: VOD files keep working).
pub async fn handle(conn: &Conn, req: &Request<hyper::body::Incoming>) -> Option<Response<Body>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return None;
    }
    let config = conn.ctx.config();
    let (key, format) = find(&config, &request_host(req), req.uri().path())?;
    // HLS segments share the extension: `.ts` names a live stream only while it is published.
    if format == Format::Ts && !conn.ctx.hub.find(&key).is_some_and(|s| s.is_publishing()) {
        return None;
    }
    if conn.ctx.hub.find(&key).is_none() {
        let rel = super::static_files::relative_path(req.uri().path()).ok()?;
        if std::path::Path::new(&config.http_server.dir)
            .join(rel)
            .is_file()
        {
            return None;
        }
    }
    if let Some(missing) = conn
        .ctx
        .hub
        .find(&key)
        .and_then(|s| missing_track(&s, format))
    {
        ::log::warn!(
            "{} {key}: refused {}: {missing}",
            format.label(),
            conn.peer.ip()
        );
        return Some(super::text(StatusCode::NOT_FOUND, format!("{missing}\n")));
    }
    let v = config.vhost.get(&key.vhost)?.clone();
    let referer = req
        .headers()
        .get(header::REFERER)
        .and_then(|h| h.to_str().ok())
        .unwrap_or("");
    let param = req
        .uri()
        .query()
        .map(|q| format!("?{q}"))
        .unwrap_or_default();
    let source_id = conn.ctx.hub.source(&key, source_options(&v)).id;
    let who = ClientRequest {
        client_id: conn.cid,
        ip: conn.peer.ip().to_string(),
        vhost: key.vhost.clone(),
        app: key.app.clone(),
        tc_url: viewer_tc_url(req, &key.app),
        page_url: referer.to_string(),
        stream: key.stream.clone(),
        param,
        stream_url: key.url(),
        stream_id: source_id.to_string(),
        ..ClientRequest::default()
    };
    let playing =
        match session::play_http(&conn.ctx, &v, "HTTP play", &key, &who, conn.peer.ip()).await {
            Ok(p) => p,
            Err(d) => return Some(refused(d.http_status())),
        };
    let mut resp = if req.method() == Method::HEAD {
        Response::new(Body::empty())
    } else {
        Response::new(subscribe(conn, &key, &v, format, &who, playing))
    };
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    cors(h);
    Some(resp)
}

/// What a live source is known to carry: its frames so far, completed by its onMetaData
/// (`audiocodecid` / `videocodecid`, which ffmpeg and OBS write only for the tracks they
/// send). `known` is false until the publish session has shown either.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamTracks {
    pub known: bool,
    /// The audio codec, if the stream has audio.
    pub audio: Option<Codec>,
    pub video: bool,
}

/// The tracks of `source` (see [`StreamTracks`]).
pub fn stream_tracks(source: &crate::hub::Source) -> StreamTracks {
    use crate::protocol::amf0::{self, Amf0Value};
    let seen = source.tracks();
    let mut t = StreamTracks {
        known: seen.video || seen.audio.is_some(),
        audio: seen.audio,
        video: seen.video,
    };
    if let Some(values) = source.metadata().and_then(|m| amf0::decode_all(&m).ok()) {
        t.known = true;
        for v in &values {
            // A legacy SoundFormat number, or (Enhanced RTMP) a FourCC as a number or string.
            let id = match v.get("audiocodecid") {
                Some(Amf0Value::Number(n)) if (0.0..=u32::MAX as f64).contains(n) => {
                    Some((*n as u32).to_be_bytes())
                }
                Some(Amf0Value::String(s)) => s.as_bytes().try_into().ok(),
                _ => None,
            };
            if t.audio.is_none() {
                t.audio = id.map(Codec::from_audio_codec_id);
            }
            t.video |= v.get("videocodecid").is_some();
        }
    }
    t
}

/// Why an audio-only mount of a published stream cannot be served (the stream has no audio,
/// or not in the mount's codec), or `None`. Unknown tracks (a publish just starting, or a
/// viewer waiting for one) are given the benefit of the doubt.
fn missing_track(source: &crate::hub::Source, format: Format) -> Option<String> {
    let want = match format {
        Format::Aac => (Codec::Aac, "AAC"),
        Format::Mp3 => (Codec::Mp3, "MP3"),
        Format::Flv | Format::Ts => return None,
    };
    let t = stream_tracks(source);
    if !source.is_publishing() || !t.known {
        return None;
    }
    match t.audio {
        None => Some(format!("the stream has no audio for a {} mount", want.1)),
        Some(a) if a != want.0 => Some(format!("the stream's audio is not {} ({a:?})", want.1)),
        Some(_) => None,
    }
}

/// The answer to a refused HTTP viewer ([`session::Denied::http_status`]): 503 with
/// `Retry-After` when the hook server was unreachable, else the status with a short text.
pub(super) fn refused(status: StatusCode) -> Response<Body> {
    if status == StatusCode::SERVICE_UNAVAILABLE {
        let mut r = super::text(status, "hook server unavailable, retry later\n");
        r.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
        return r;
    }
    if status == StatusCode::FORBIDDEN {
        return forbidden();
    }
    super::text(
        status,
        format!("{}\n", status.canonical_reason().unwrap_or("refused")),
    )
}

fn subscribe(
    conn: &Conn,
    key: &StreamKey,
    v: &VhostConfig,
    format: Format,
    who: &ClientRequest,
    playing: session::Playing,
) -> Body {
    let ctx = conn.ctx.clone();
    let source = ctx.hub.source(key, source_options(v));
    let limits = QueueLimits {
        max_duration_ms: v.play.queue_length.as_millis_i64(),
        ..QueueLimits::default()
    };
    let mut consumer = source.subscribe(limits, play_jitter(v, &source));
    let param = who.param.clone();
    // edge: an HTTP viewer on an edge starts (or shares) the upstream pull like an RTMP one.
    crate::app::cluster::edge::ensure_pull(&ctx, v, &source, &param, &who.page_url, "");
    // edge: end.
    let guard = ctx.stats.register(conn.cid, conn.peer.ip().to_string());
    // Merged writes, as for RTMP players: wait this long after the first frame of a batch so
    // one HTTP chunk and one writev carry more frames (SRS's mw_sleep applies to HTTP too).
    let mw_latency = v.play.mw_latency.get();
    guard.stat.update(|i| {
        i.request = who.clone();
        i.kind = Some(ClientType::FlvPlay);
        i.key = Some(key.clone());
    });
    let ip = conn.peer.ip();
    ::log::info!(
        "{} play {key} from {ip} param={param} (publishing={})",
        format.label(),
        source.is_publishing()
    );
    let (tx, body) = Body::channel(CHANNEL_DEPTH);
    let live = conn.activity.live_guard();
    let mut shutdown = ctx.shutdown.clone();
    let key = key.clone();
    let cid = conn.cid as u64;
    tokio::spawn(crate::app::runtime::log::with_cid(cid, async move {
        let _live = live;
        // on_stop fires when this viewer's task ends, whatever way it ends.
        let _playing = playing;
        let stat = guard.stat.clone();
        // FLV: the header's audio/video flags must be true (ffprobe probes a video-only
        // stream flagged 0x05 for 30 s waiting for audio), so it waits for the first media
        // frame; metadata and sequence headers before it are held (a few items).
        let mut flv_header = format != Format::Flv;
        let mut held: Vec<Item> = Vec::new();
        let mut sent = 0u64;
        let mut pending: Option<io::Result<Chunks>> = None;
        let mut aac_config: Option<aac::AacConfig> = None;
        // HTTP-TS: the remuxer, its output, when PAT/PMT were last written, and whether the
        // stream waits for an entry point (the first keyframe, again after a republish).
        // Made by the first frame of an HTTP-TS viewer only.
        let mut remux: Option<Box<TsRemuxer>> = None;
        let mut ts_out = BytesMut::new();
        let mut last_psi = 0i64;
        let mut need_entry = true;
        // Grows to one batch and shrinks back after a burst (see app/rtmp/mod.rs).
        let mut items: Vec<Item> = Vec::new();
        let mut reported_drops = 0u64;
        // A batch with media went out (see `PlayState::primed` in app/rtmp/mod.rs).
        let mut primed = false;
        let why: io::Result<&str> = loop {
            if let Some(batch) = pending.take() {
                match tokio::time::timeout(SEND_TIMEOUT, tx.send(batch)).await {
                    Ok(Ok(())) => stat.set_bytes(0, sent),
                    Ok(Err(_)) => break Ok("viewer left"),
                    Err(_) => {
                        break Err(io::Error::new(io::ErrorKind::TimedOut, "write timed out"))
                    }
                }
            }
            tokio::select! {
                _ = async {
                    consumer.recv(&mut items, BATCH_BYTES).await;
                    // The first media (metadata, sequence headers, GOP cache) goes out at
                    // once; merging applies to the live frames after it.
                    if primed && !mw_latency.is_zero() {
                        tokio::time::sleep(mw_latency).await;
                        consumer.try_recv(&mut items, BATCH_BYTES);
                    }
                } => {}
                _ = tx.closed() => break Ok("viewer left"),
                _ = shutdown.changed() => break Ok("server shutdown"),
                _ = stat.kick.notified() => {
                    let _ = tx.try_send(Err(io::Error::new(io::ErrorKind::ConnectionAborted, "kicked")));
                    break Err(io::Error::new(io::ErrorKind::ConnectionAborted, "kicked by the HTTP API"));
                }
            }
            let mut chunks = Chunks::default();
            let mut small = BytesMut::with_capacity(items.len() * 16);
            if !flv_header {
                let media = |i: &Item| matches!(i, Item::Frame(f) if !f.flags.metadata && !f.flags.seq_header && f.kind != crate::hub::MediaKind::Data);
                if !items.iter().any(media) && held.len() + items.len() < 64 {
                    held.append(&mut items);
                    continue;
                }
                held.append(&mut items);
                std::mem::swap(&mut held, &mut items);
                let t = stream_tracks(consumer.source());
                let has = |want: fn(&crate::hub::Frame) -> bool| {
                    items.iter().any(|i| matches!(i, Item::Frame(f) if want(f)))
                };
                let audio = t.audio.is_some() || has(crate::hub::Frame::is_audio);
                let video = t.video || has(crate::hub::Frame::is_video);
                flv::encode_header(audio, video, &mut small);
                chunks.push(small.split().freeze());
                flv_header = true;
            }
            // An audio mount whose stream turned out to carry another codec ends at once
            // rather than answering 200 and never sending a byte.
            let mut wrong_codec = false;
            for item in items.drain(..) {
                match item {
                    Item::Frame(f) => match format {
                        Format::Flv => {
                            let ts = consumer.timestamp(&f);
                            let len = f.payload.len().min(flv::MAX_TAG_DATA_SIZE);
                            flv::encode_tag_header(f.kind, ts, len, &mut small);
                            chunks.push(small.split().freeze());
                            chunks.push(f.payload.slice(..len));
                            small.put_u32((flv::TAG_HEADER_LEN + len) as u32);
                        }
                        Format::Ts => {
                            let ts = i64::from(consumer.timestamp(&f));
                            let remux =
                                remux.get_or_insert_with(|| Box::new(TsRemuxer::new(true, true)));
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
                                    remux.start(&mut ts_out);
                                } else {
                                    remux.write_pat_pmt(&mut ts_out);
                                }
                                last_psi = ts;
                                need_entry = false;
                            }
                            if let Err(e) = remux.write(sample, f.data(), &mut ts_out) {
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
                                    aac::adts_header(cfg, len, &mut small);
                                    chunks.push(small.split().freeze());
                                    chunks.push(f.payload.slice(f.tag.len()..));
                                }
                            }
                        }
                        Format::Mp3 => {
                            if f.is_audio() && !matches!(f.codec(), Codec::Mp3 | Codec::None) {
                                wrong_codec = true;
                            }
                            if f.is_audio() && f.codec() == Codec::Mp3 && !f.data().is_empty() {
                                chunks.push(f.payload.slice(f.tag.len()..));
                            }
                        }
                    },
                    Item::Published => {
                        consumer.reset_timeline();
                        need_entry = true;
                    }
                    Item::Unpublished => {
                        ::log::info!("{key} unpublished; HTTP viewer waits for the next publish");
                    }
                }
            }
            if !ts_out.is_empty() {
                chunks.push(ts_out.split().freeze());
            }
            chunks.push(small.split().freeze());
            sent += chunks.len() as u64;
            primed |= flv_header && sent > 0;
            if !chunks.is_empty() {
                pending = Some(Ok(chunks));
            }
            if wrong_codec && sent == 0 {
                break Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "the stream's audio is not in this mount's codec",
                ));
            }
            if let Some(cap) = crate::hub::queue::shrunk_capacity(0, items.capacity(), 16) {
                items.shrink_to(cap);
            }
            let drops = consumer.dropped();
            if drops > reported_drops {
                ctx.stats.add_drops(drops - reported_drops);
                ::log::warn!(
                    "{key} {} viewer too slow: dropped {drops} frames so far",
                    format.label()
                );
                reported_drops = drops;
            }
        };
        match why {
            Ok(why) => ::log::info!("{} {key} viewer {ip} closed: {why}", format.label()),
            Err(e) => ::log::warn!("{} {key} viewer {ip} closed: {e}", format.label()),
        }
        drop(consumer);
        drop(guard);
    }));
    body
}

pub(super) fn forbidden() -> Response<Body> {
    super::text(StatusCode::FORBIDDEN, "forbidden\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_mount_templates() {
        let m = |t, p| match_template(t, p);
        assert_eq!(
            m("[app]/[stream]", "live/s"),
            Some(("live".into(), "s".into()))
        );
        assert_eq!(
            m("[app]/[stream]", "a/b/s"),
            Some(("a/b".into(), "s".into()))
        );
        assert_eq!(m("[app]/[stream]", "s"), None);
        assert_eq!(
            m("x/[app]-[stream]", "x/live-s"),
            Some(("live".into(), "s".into()))
        );
        assert_eq!(m("live/[stream]", "live/s"), Some(("".into(), "s".into())));
    }

    #[test]
    fn finds_default_and_named_vhost_mounts() {
        let c = Config::parse(
            "listen = [\"1935\"]\n[vhost.\"__defaultVhost__\".http_remux]\nenabled = true\n\
             [vhost.\"v.com\".http_remux]\nenabled = true\nmount = \"[vhost]/[app]/[stream].flv\"\n",
            "t.toml",
        )
        .unwrap();
        let (r, format) = find(&c, "127.0.0.1", "/live/s.flv").unwrap();
        assert_eq!(
            (r.vhost.as_str(), r.app.as_str(), r.stream.as_str(), format),
            (DEFAULT_VHOST, "live", "s", Format::Flv)
        );
        let (r, _) = find(&c, "v.com", "/live/s.flv").unwrap();
        assert_eq!(r.vhost, "v.com");
        assert!(find(&c, "x", "/live/s.m3u8").is_none());
        assert!(find(&c, "x", "/s.flv").is_none());
        assert!(find(&c, "x", "/../s.flv").is_none());
        assert!(find(&c, "x", "/live/../s.flv").is_none());
    }

    use crate::protocol::testutil::{fuzz, text, TEXT_PIECES};

    #[test]
    fn hostile_paths_and_mounts_never_panic_or_hang() {
        let pieces = TEXT_PIECES;
        let mut configs = Vec::new();
        for mount in [
            "[vhost]/[app]/[stream].flv",
            "/[app]/[stream].ts",
            "/[app][stream].flv",
            "/[stream]/[app].m3u8",
            "/x/[app]/[app]/[stream].flv",
        ] {
            let c = Config::parse(
                &format!(
                    "[vhost.\"__defaultVhost__\".http_remux]\nenabled = true\nmount = \"{mount}\"\n\
                     [vhost.\"v.com\".http_remux]\nenabled = true\n"
                ),
                "x.toml",
            )
            .unwrap();
            configs.push(c);
        }
        fuzz("live find", 0x11FE, 2_000, |rng| {
            let path = text(rng, pieces, 16);
            let c = rng.pick(&configs);
            if let Some((r, _)) = find(c, rng.pick::<&str>(&["v.com", "", "h"]), &path) {
                assert!(!r.app.split('/').any(|s| s == ".."), "{path:?}: {r:?}");
                assert!(!r.stream.contains('/'), "{path:?}: {r:?}");
            }
            let template = text(rng, pieces, 6);
            let _ = match_template(&template, &text(rng, pieces, 10));
        });
    }

    /// Regression: matching backtracked without memory, so a mount with several `[app]`s
    /// against a long path that almost matches took exponential time.
    #[test]
    fn many_wildcards_against_a_long_path_match_quickly() {
        let template = "[app]x[app]x[app]x[app]x[app]x[stream]y";
        let input = "x".repeat(1000);
        assert_eq!(match_template(template, &input), None);
        assert_eq!(
            match_template("[app]/[stream]", &format!("{}a/s", "a/".repeat(499))),
            Some((format!("{}a", "a/".repeat(499)), "s".to_string()))
        );
    }
}
