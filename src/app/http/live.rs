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

use super::viewer::{Sink, Viewer};
use super::{cors, Conn};
use crate::app::runtime::body::Body;
use crate::app::session;
use crate::app::shared::source_options;
use crate::app::shared::ClientRequest;
use crate::config::{Config, DEFAULT_VHOST};
use crate::hub::{Codec, StreamKey};
use hyper::header::{self, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};

/// Batches waiting for hyper to write them; beyond that the consumer queue (bounded,
/// dropping) absorbs.
const CHANNEL_DEPTH: usize = 2;

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
    pub(super) fn label(self) -> &'static str {
        match self {
            Format::Flv => "HTTP-FLV",
            Format::Ts => "HTTP-TS",
            Format::Aac => "HTTP-AAC",
            Format::Mp3 => "HTTP-MP3",
        }
    }

    pub(super) fn content_type(self) -> &'static str {
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
    LiveAsk::of(req).host_name().to_string()
}

/// The tcUrl `/api/v1/clients` shows for an HTTP viewer: `http://HOST[:PORT]/APP`, as SRS's
/// `SrsRequest::as_http()` writes it — the app only, never the mount's file (`o.flv`), which
/// SRS's console would append the stream name to again (`.../live/o.flv/o`). HOST[:PORT] is
/// the `Host` the viewer asked (SRS uses the vhost or the publisher's host; a viewer behind
/// a proxy or NAT knows the address that works for it better).
pub(super) fn viewer_tc_url(req: &Request<hyper::body::Incoming>, app: &str) -> String {
    format!("http://{}/{app}", LiveAsk::of(req).host)
}

/// What a live request says, read from hyper's request or from the head [`super::direct`]
/// peeked at accept: the same admission serves both.
pub(super) struct LiveAsk<'a> {
    /// `HEAD`: the answer's head only.
    pub head: bool,
    /// The `Host` header as sent (`example.com:8080`), or the request target's authority.
    pub host: &'a str,
    pub path: &'a str,
    /// The query, without its `?`.
    pub query: Option<&'a str>,
    pub referer: &'a str,
}

impl<'a> LiveAsk<'a> {
    fn of(req: &'a Request<hyper::body::Incoming>) -> LiveAsk<'a> {
        LiveAsk {
            head: req.method() == Method::HEAD,
            host: req
                .headers()
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .or_else(|| req.uri().authority().map(|a| a.as_str()))
                .unwrap_or("")
                .trim(),
            path: req.uri().path(),
            query: req.uri().query(),
            referer: req
                .headers()
                .get(header::REFERER)
                .and_then(|h| h.to_str().ok())
                .unwrap_or(""),
        }
    }

    /// The host without its port (`[::1]:8080` -> `::1`), as vhosts and mounts name it.
    pub fn host_name(&self) -> &'a str {
        let h = self.host;
        let h = match h.rfind(':') {
            Some(i) if !h[i..].contains(']') => &h[..i],
            _ => h,
        };
        h.trim_start_matches('[').trim_end_matches(']')
    }
}

/// The live stream and format `ask` names, or `None` when it names none: no mount matches,
/// a `.ts` path of a stream not published now (HLS segments share the extension), or a
/// static file of that name exists and no such stream is live (VOD files keep working).
pub(super) fn mount(conn: &Conn, ask: &LiveAsk) -> Option<(StreamKey, Format)> {
    let config = conn.ctx.config();
    let (key, format) = find(&config, ask.host_name(), ask.path)?;
    if format == Format::Ts && !conn.ctx.hub.find(&key).is_some_and(|s| s.is_publishing()) {
        return None;
    }
    if conn.ctx.hub.find(&key).is_none() {
        let rel = super::static_files::relative_path(ask.path).ok()?;
        if std::path::Path::new(&config.http_server.dir)
            .join(rel)
            .is_file()
        {
            return None;
        }
    }
    config
        .vhost
        .contains_key(&key.vhost)
        .then_some((key, format))
}

/// Why a live request was refused: its HTTP status and the text of the answer.
pub(super) struct Refusal {
    pub status: StatusCode,
    /// The body; `None`: the status's own text (see [`refused`]).
    pub text: Option<String>,
}

impl Refusal {
    pub fn response(self) -> Response<Body> {
        match self.text {
            Some(t) => super::text(self.status, t),
            None => refused(self.status),
        }
    }
}

/// The play checks of a live viewer ([`session::play_http`]: refer, security, `on_play`),
/// then its subscription to the stream: a [`Viewer`] ready to run, or the refusal.
pub(super) async fn admit(
    conn: &Conn,
    ask: &LiveAsk<'_>,
    key: &StreamKey,
    format: Format,
) -> Result<Viewer, Refusal> {
    if let Some(missing) = conn
        .ctx
        .hub
        .find(key)
        .and_then(|s| missing_track(&s, format))
    {
        ::log::warn!(
            "{} {key}: refused {}: {missing}",
            format.label(),
            conn.peer.ip()
        );
        return Err(Refusal {
            status: StatusCode::NOT_FOUND,
            text: Some(format!("{missing}\n")),
        });
    }
    let config = conn.ctx.config();
    let Some(v) = config.vhost.get(&key.vhost) else {
        return Err(Refusal {
            status: StatusCode::NOT_FOUND,
            text: None,
        });
    };
    let source_id = conn.ctx.hub.source(key, source_options(v)).id;
    let who = ClientRequest {
        client_id: conn.cid,
        ip: conn.peer.ip().to_string(),
        vhost: key.vhost.clone(),
        app: key.app.clone(),
        tc_url: format!("http://{}/{}", ask.host, key.app),
        page_url: ask.referer.to_string(),
        stream: key.stream.clone(),
        param: ask.query.map(|q| format!("?{q}")).unwrap_or_default(),
        stream_url: key.url(),
        stream_id: source_id.to_string(),
        ..ClientRequest::default()
    };
    let playing = session::play_http(&conn.ctx, v, "HTTP play", key, &who, conn.peer.ip())
        .await
        .map_err(|d| Refusal {
            status: d.http_status(),
            text: None,
        })?;
    Ok(Viewer::subscribe(conn, key, v, format, &who, playing))
}

/// Serves a live mount through hyper (requests not taken at accept by [`super::direct`]:
/// HEAD, later requests of a keep-alive connection), or `None` as [`mount`] says.
pub async fn handle(conn: &Conn, req: &Request<hyper::body::Incoming>) -> Option<Response<Body>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return None;
    }
    let ask = LiveAsk::of(req);
    let (key, format) = mount(conn, &ask)?;
    let viewer = match admit(conn, &ask, &key, format).await {
        Ok(v) => v,
        Err(r) => return Some(r.response()),
    };
    let mut resp = if ask.head {
        Response::new(Body::empty())
    } else {
        let (tx, body) = Body::channel(CHANNEL_DEPTH);
        let cid = conn.cid as u64;
        tokio::spawn(crate::app::runtime::log::with_cid(
            cid,
            viewer.run(Sink::Channel(tx)),
        ));
        Response::new(body)
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
