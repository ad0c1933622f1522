//! HLS: one segmenter task per published stream, a consumer of the hub like any player, so
//! it never blocks the publisher. It muxes H.264 + AAC/MP3 into MPEG-TS segments cut on
//! keyframes and keeps a sliding m3u8 window, both written under a temporary name and renamed
//! so a player never reads half a file.
//!
//! Per stream, the playlist's state (sequence numbers, the window) outlives one publish: a
//! republish continues the numbering and marks `EXT-X-DISCONTINUITY`, as SRS does. That
//! state lives in the server ([`Playlists`]), bounded, forgotten once a stream is gone a while.
//!
//! The segmenter runs on a thread of its own ([`crate::app::runtime::file_thread`]): a slow or stalled disk
//! holds up only this stream's HLS. A write error (a full disk) drops the segment being
//! written (its `.ts.tmp` is deleted), and the next segment listed after the gap is marked
//! `EXT-X-DISCONTINUITY`; the state shows in the API (`hls` of the stream) and `/metrics`.

use crate::app::runtime::file_thread::Batch;
use crate::app::runtime::output_status::{Output, Reason, Status};
use crate::app::runtime::template::{self, Vars};
use crate::config::{HlsConfig, HlsStorage, Seconds};
use crate::hub::{Codec, Consumer, Frame, Item, StreamKey};
use crate::protocol::m3u8::{self, Playlist, Segment as PlaylistSegment};
use crate::protocol::ts_remux::{Sample, TsRemuxer};
use bytes::BytesMut;
use std::collections::VecDeque;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod playlists;
pub mod storage;
mod writer;
pub use playlists::Playlists;
use storage::SegmentOut;
pub use storage::{MemoryFiles, Storage};

/// The playlist state of one m3u8, kept across publishes.
#[derive(Debug, Default, Clone)]
struct Memo {
    next_seq: u64,
    window: VecDeque<Done>,
    /// Bumped by every publish; a pending dispose only runs if no publish came since.
    generation: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`: segments tagged `EXT-X-DISCONTINUITY` that left the
    /// window (RFC 8216 §6.2.2).
    discontinuity_seq: u64,
    /// `EXT-X-TARGETDURATION` so far, whole seconds. It only grows while the playlist lives:
    /// RFC 8216 §6.2.1 wants it never to change, which a server that cuts on keyframes cannot
    /// promise (it learns the encoder's GOP as it goes), so it at least never shrinks.
    target_duration: u64,
    /// The long-GOP warning was logged for this stream.
    gop_warned: bool,
    /// Seconds of media listed so far in this playlist's life: the clock that
    /// [`Retired`] segments expire on.
    clock: f64,
    /// Segments that left the window, still on disk (with `cleanup`) until they expire.
    retired: VecDeque<Retired>,
    /// Publishes writing this playlist now.
    publishing: usize,
    /// Since when no publish writes it (see [`Playlists`]).
    idle_since: Option<Instant>,
}

/// A segment that left the playlist. RFC 8216 §6.2.2: it must stay available for its
/// duration plus that of the longest playlist that listed it, since a player may have just
/// read that playlist; SRS deletes it at once, and a slow player then gets a 404.
#[derive(Debug, Clone)]
struct Retired {
    path: PathBuf,
    /// When it may be deleted, on [`Memo::clock`].
    until: f64,
}

#[derive(Debug, Clone)]
struct Done {
    seq: u64,
    duration: f64,
    uri: String,
    path: PathBuf,
    discontinuity: bool,
}

/// Segments shorter than this are dropped instead of listed (SRS's
/// `SRS_HLS_SEGMENT_MIN_DURATION`): a publisher that stops right after a keyframe would
/// otherwise leave a one-frame segment, `#EXTINF:0.000` and an `on_hls` of duration 0.
pub const MIN_SEGMENT_MS: i64 = 100;

/// A closed segment, as `on_hls` reports it (defined with the hook that sends it).
pub use crate::app::hooks::SegmentEvent;

/// Why the segmenter stopped writing.
#[derive(Debug)]
pub enum HlsStop {
    /// The stream was unpublished (or the consumer closed).
    Unpublished,
    /// A write failed and `on_error = "disconnect"` asks to drop the publisher.
    Disconnect(io::Error),
}

struct Open {
    seq: u64,
    path: PathBuf,
    uri: String,
    out: SegmentOut,
    start_dts: i64,
    last_dts: i64,
}

/// The playlist file of `key` (`hls.path` joined with the rendered `m3u8_file`) and its URL
/// relative to the HTTP root (`live/hk.m3u8`).
fn m3u8_file(cfg: &HlsConfig, key: &StreamKey) -> (PathBuf, String) {
    let vars = Vars {
        vhost: &key.vhost,
        app: &key.app,
        stream: &key.stream,
        ..Vars::default()
    };
    let rel = template::render(&cfg.m3u8_file, &vars);
    (
        Path::new(&cfg.path).join(&rel),
        rel.trim_start_matches('/').to_string(),
    )
}

/// Whether a video frame starts a new segment (all times in ms).
///
/// A segment only ever starts on a keyframe, so every segment opens with SPS/PPS and an IDR
/// that a player can decode on its own: the cut comes at the first keyframe once the segment
/// lasts `fragment_ms`, however long that takes. A GOP longer than the fragment makes
/// segments as long as the GOP: SRS instead cuts mid-GOP after `fragment * td_ratio` when
/// `hls_wait_keyframe` is off, and players (hls.js, ffmpeg: "non-existing PPS 0
/// referenced") cannot start such a segment. A keyframe also cuts early when a track
/// appeared since the segment began (`tracks_changed`): the new track must be in the PMT.
pub fn video_cut(
    open: bool,
    keyframe: bool,
    duration_ms: i64,
    fragment_ms: i64,
    tracks_changed: bool,
) -> bool {
    if !open {
        return keyframe;
    }
    keyframe && (duration_ms >= fragment_ms || tracks_changed)
}

/// The HLS writer of one publish: frames in (see [`Segmenter::handle`]), TS segments and the
/// sliding m3u8 out, with the playlist's state shared with the publishes before and after
/// it (numbering, window, target duration, discontinuities).
pub struct Segmenter {
    cfg: HlsConfig,
    key: StreamKey,
    m3u8_path: PathBuf,
    m3u8_url: String,
    remux: TsRemuxer,
    open: Option<Open>,
    /// The next segment listed follows a break (this publish after an earlier one, a track
    /// that appeared): it is tagged `EXT-X-DISCONTINUITY` unless it is the playlist's first.
    pending_discontinuity: bool,
    /// DTS of the last video keyframe, to measure the encoder's keyframe interval.
    last_keyframe: Option<i64>,
    buf: BytesMut,
    events: Option<tokio::sync::mpsc::Sender<SegmentEvent>>,
    storage: Storage,
    /// The (video, audio) codecs already logged as skipped (no MPEG-TS mapping).
    skipped_logged: (Option<Codec>, Option<Codec>),
    playlists: Arc<Playlists>,
    /// Segments listed so far by this publish: a change tells that writes work.
    committed: u64,
}

impl Drop for Segmenter {
    fn drop(&mut self) {
        // A segment still open (a write failed, the publish ended without `finish`) leaves
        // no `.ts.tmp` behind.
        if let Some(o) = self.open.take() {
            self.storage.discard(o.out);
        }
        self.playlists.end(&self.m3u8_path, Instant::now());
    }
}

impl Segmenter {
    /// A segmenter for a new publish of `key`, writing to `storage`, with its playlist's
    /// state in `playlists`; closed segments are sent to `events` (for on_hls). The first
    /// segment it lists after an earlier publish's is a discontinuity.
    pub fn new(
        cfg: HlsConfig,
        key: StreamKey,
        events: Option<tokio::sync::mpsc::Sender<SegmentEvent>>,
        storage: Storage,
        playlists: Arc<Playlists>,
    ) -> Self {
        let (m3u8_path, m3u8_url) = m3u8_file(&cfg, &key);
        playlists.begin(&m3u8_path, Instant::now());
        if !cfg.wait_keyframe {
            log::info!(
                "hls {key}: wait_keyframe = false is ignored for video: a segment that starts \
                 mid-GOP cannot be played, so video segments always start on a keyframe"
            );
        }
        let remux = TsRemuxer::new(cfg.vcodec != "vn", cfg.acodec != "an");
        Segmenter {
            cfg,
            key,
            m3u8_path,
            m3u8_url,
            remux,
            open: None,
            pending_discontinuity: true,
            last_keyframe: None,
            buf: BytesMut::with_capacity(64 * 1024),
            events,
            storage,
            skipped_logged: (None, None),
            playlists,
            committed: 0,
        }
    }

    /// Segments listed by this publish so far.
    pub fn committed(&self) -> u64 {
        self.committed
    }

    /// The playlist file (`hls.path` joined with the rendered `m3u8_file`).
    pub fn m3u8_path(&self) -> &Path {
        &self.m3u8_path
    }

    /// Feeds one frame. Errors are write errors (disk full, permissions): the segment being
    /// written is then dropped (its temporary file deleted), the next one starts at the next
    /// keyframe, and the first listed after the gap is marked `EXT-X-DISCONTINUITY`.
    pub fn handle(&mut self, f: &Frame) -> io::Result<()> {
        let r = self.feed(f);
        if r.is_err() {
            self.abandon();
        }
        r
    }

    /// Drops the open segment after a write error: its file is deleted, its sequence number
    /// goes to the next segment, and the media lost makes the next one listed a discontinuity.
    fn abandon(&mut self) {
        if let Some(o) = self.open.take() {
            self.storage.discard(o.out);
            self.give_back_seq(o.seq);
        }
        self.pending_discontinuity = true;
    }

    /// Returns sequence number `seq` when it was the last one taken.
    fn give_back_seq(&self, seq: u64) {
        let mut m = self.playlists.lock();
        if let Some(memo) = m.get_mut(&self.m3u8_path) {
            if memo.next_seq == seq + 1 {
                memo.next_seq = seq;
            }
        }
    }

    fn feed(&mut self, f: &Frame) -> io::Result<()> {
        let sample = match self.remux.inspect(&f.tag, f.dts, f.data()) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("hls {}: {e}", self.key);
                return Ok(());
            }
        };
        if sample == Sample::Skip && self.remux.skipped() != self.skipped_logged {
            // One line per codec, not per frame: the track is left out of every segment.
            let skipped = self.remux.skipped();
            for (now, before) in [
                (skipped.0, self.skipped_logged.0),
                (skipped.1, self.skipped_logged.1),
            ] {
                if let Some(c) = now.filter(|&c| Some(c) != before) {
                    let why = crate::protocol::ts_remux::no_ts_mapping(c).unwrap_or_default();
                    log::warn!("hls {}: {c:?} track skipped: {why}", self.key);
                }
            }
            self.skipped_logged = skipped;
        }
        let duration = self.open.as_ref().map(|o| f.dts - o.start_dts).unwrap_or(0);
        let cut = match sample {
            Sample::Skip => return Ok(()),
            Sample::Video { keyframe, .. } => {
                self.watch_keyframes(f.dts, keyframe);
                let tracks_changed = self.remux.tracks_changed();
                let cut = video_cut(
                    self.open.is_some(),
                    keyframe,
                    duration,
                    self.cfg.fragment.as_millis_i64(),
                    tracks_changed,
                );
                if cut && tracks_changed {
                    // A track was added: the stream's encoding changes (RFC 8216 §4.3.2.3).
                    self.pending_discontinuity = true;
                }
                cut
            }
            // Audio-only streams are cut on time (aof_ratio), as SRS does.
            Sample::Audio { .. } => {
                let limit = (self.cfg.fragment.as_secs_f64() * self.cfg.aof_ratio * 1000.0) as i64;
                !self.remux.has_video() && (self.open.is_none() || duration >= limit)
            }
        };
        if cut {
            self.reap(f.dts)?;
        }
        if self.open.is_none() {
            return Ok(());
        }
        self.buf.clear();
        match self.remux.write(sample, f.data(), &mut self.buf) {
            Ok(()) => self.write_buf(f.dts),
            Err(e) => {
                log::warn!("hls {}: skipped: {e}", self.key);
                Ok(())
            }
        }
    }

    /// Measures the encoder's keyframe interval and tells the operator, once per stream, when
    /// it is longer than `fragment * td_ratio`: segments then last a whole GOP.
    fn watch_keyframes(&mut self, dts: i64, keyframe: bool) {
        let limit_s = self.cfg.fragment.as_secs_f64() * self.cfg.td_ratio.max(1.0);
        let Some(last) = self.last_keyframe else {
            if keyframe {
                self.last_keyframe = Some(dts);
            }
            return;
        };
        let since_s = dts.saturating_sub(last) as f64 / 1000.0;
        // Without a next keyframe, say so once it is clearly missing (some encoders send a
        // single IDR, e.g. x264 with intra refresh): the segment grows until unpublish.
        let missing = !keyframe && since_s > (10.0 * limit_s).max(30.0);
        if (keyframe && since_s > limit_s) || missing {
            let warned = {
                let mut m = self.playlists.lock();
                let memo = m.entry(self.m3u8_path.clone()).or_default();
                std::mem::replace(&mut memo.gop_warned, true)
            };
            if !warned {
                let what = if missing {
                    format!("has sent no keyframe for {since_s:.1} s")
                } else {
                    format!("sends a keyframe every {since_s:.1} s")
                };
                let fragment = self.cfg.fragment;
                log::warn!(
                    "hls {}: the encoder {what}, longer than hls fragment {fragment} s \
                     (x td_ratio {}); segments start on keyframes, so each lasts a whole GOP \
                     and players start and lag that much later. Set the encoder's keyframe \
                     interval to {fragment} s or less (OBS: Settings > Output > Keyframe \
                     Interval; ffmpeg: -g <fps x {fragment}>), or raise hls fragment. \
                     (logged once per stream)",
                    self.key,
                    self.cfg.td_ratio
                );
            }
        }
        if keyframe {
            self.last_keyframe = Some(dts);
        }
    }

    fn write_buf(&mut self, dts: i64) -> io::Result<()> {
        if let Some(o) = self.open.as_mut() {
            o.out.write_all(&self.buf)?;
            o.last_dts = o.last_dts.max(dts);
        }
        Ok(())
    }

    /// Closes the open segment (if any) and opens the next one starting at `dts`.
    fn reap(&mut self, dts: i64) -> io::Result<()> {
        self.close_segment(dts)?;
        let seq = {
            let mut m = self.playlists.lock();
            let memo = m.entry(self.m3u8_path.clone()).or_default();
            let seq = memo.next_seq;
            memo.next_seq += 1;
            seq
        };
        let vars = Vars {
            vhost: &self.key.vhost,
            app: &self.key.app,
            stream: &self.key.stream,
            seq: Some(seq),
            unix_ms: crate::app::runtime::log::now_unix_ms(),
            ..Vars::default()
        };
        let rel = template::render(&self.cfg.ts_file, &vars);
        let path = Path::new(&self.cfg.path).join(&rel);
        let out = match self.storage.create(&path) {
            Ok(out) => out,
            Err(e) => {
                self.give_back_seq(seq);
                return Err(e);
            }
        };
        // The URI is relative to the m3u8's directory unless entry_prefix makes it absolute.
        let m3u8_dir = self
            .m3u8_path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        let relative = path
            .strip_prefix(&m3u8_dir)
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| rel.clone());
        let uri = if self.cfg.entry_prefix.is_empty() {
            relative
        } else {
            format!(
                "{}/{}",
                self.cfg.entry_prefix.trim_end_matches('/'),
                rel.trim_start_matches('/')
            )
        };
        self.buf.clear();
        self.remux.start(&mut self.buf);
        self.open = Some(Open {
            seq,
            path,
            uri,
            out,
            start_dts: dts,
            last_dts: dts,
        });
        self.write_buf(dts)
    }

    fn close_segment(&mut self, next_dts: i64) -> io::Result<()> {
        let Some(o) = self.open.take() else {
            return Ok(());
        };
        // A segment lasts until the next one starts (or its last frame, at the end).
        let end = next_dts.max(o.last_dts);
        let duration_ms = end.saturating_sub(o.start_dts).max(0);
        if duration_ms < MIN_SEGMENT_MS {
            // Too short to play (SRS drops these too): not listed, no on_hls, no file; its
            // sequence number goes to the next segment.
            self.storage.discard(o.out);
            self.give_back_seq(o.seq);
            log::info!(
                "hls {}: dropped segment {} of {duration_ms} ms (under {MIN_SEGMENT_MS} ms)",
                self.key,
                o.seq
            );
            return Ok(());
        }
        if let Err(e) = self.storage.commit(o.out, &o.path) {
            self.give_back_seq(o.seq);
            return Err(e);
        }
        self.committed += 1;
        let duration = duration_ms as f64 / 1000.0;
        let floor = (self.cfg.fragment.as_secs_f64() * self.cfg.td_ratio)
            .ceil()
            .max(1.0) as u64;
        let (playlist, expired) = {
            let mut m = self.playlists.lock();
            let memo = m.entry(self.m3u8_path.clone()).or_default();
            let discontinuity = self.pending_discontinuity && !memo.window.is_empty();
            self.pending_discontinuity = false;
            memo.window.push_back(Done {
                seq: o.seq,
                duration,
                uri: o.uri.clone(),
                path: o.path.clone(),
                discontinuity,
            });
            memo.target_duration = memo
                .target_duration
                .max(floor)
                .max(m3u8::target_for(duration));
            memo.clock += duration;
            let expired = slide(memo, self.cfg.window.as_secs_f64(), self.cfg.cleanup);
            (self.playlist(memo), expired)
        };
        self.storage
            .write_whole(&self.m3u8_path, playlist.render().as_bytes())?;
        for p in expired {
            self.storage.remove(&p);
        }
        if let Some(tx) = &self.events {
            // SRS's on_hls url: the playlist's directory joined with the segment's URI.
            let url = if o.uri.starts_with("http://") || o.uri.starts_with("https://") {
                o.uri
            } else {
                match self.m3u8_url.rsplit_once('/') {
                    Some((dir, _)) => format!("{dir}/{}", o.uri),
                    None => o.uri,
                }
            };
            let _ = tx.try_send(SegmentEvent {
                key: self.key.clone(),
                file: o.path,
                url,
                m3u8: self.m3u8_path.clone(),
                m3u8_url: self.m3u8_url.clone(),
                seq: o.seq,
                duration,
            });
        }
        Ok(())
    }

    fn playlist(&self, memo: &Memo) -> Playlist {
        Playlist {
            target_duration: memo.target_duration,
            media_sequence: memo.window.front().map(|d| d.seq).unwrap_or(0),
            discontinuity_sequence: memo.discontinuity_seq,
            segments: memo
                .window
                .iter()
                .map(|d| PlaylistSegment {
                    sequence: d.seq,
                    duration: d.duration,
                    uri: d.uri.clone(),
                    discontinuity: d.discontinuity,
                })
                .collect(),
            ended: false,
        }
    }

    /// Ends the publish: closes the open segment into the playlist (or drops it when it is
    /// shorter than [`MIN_SEGMENT_MS`]).
    pub fn finish(&mut self) -> io::Result<()> {
        let last = self.open.as_ref().map(|o| o.last_dts).unwrap_or(0);
        let r = self.close_segment(last);
        if r.is_err() {
            self.abandon();
        }
        r
    }
}

/// Slides the window after a segment was added (and [`Memo::clock`] advanced): drops the
/// oldest segments while the rest still last more than `window` seconds, but never below
/// three target durations (RFC 8216 §6.2.2: a live playlist must not get shorter than that;
/// with a long GOP the target grows, and a player needs three segments to start). Counts the
/// discontinuities that leave. With `cleanup`, what left is retired until it expires; returns
/// the files of the retired segments that expired now, to delete.
fn slide(memo: &mut Memo, window: f64, cleanup: bool) -> Vec<PathBuf> {
    let keep_at_least = 3.0 * memo.target_duration as f64;
    let mut total: f64 = memo.window.iter().map(|d| d.duration).sum();
    // The longest playlist that listed the segments leaving now is this one.
    let listed = total;
    while memo.window.len() > 1 {
        let Some(first) = memo.window.front() else {
            break;
        };
        if total <= window || total - first.duration < keep_at_least {
            break;
        }
        if let Some(old) = memo.window.pop_front() {
            total -= old.duration;
            if old.discontinuity {
                memo.discontinuity_seq += 1;
            }
            if cleanup {
                memo.retired.push_back(Retired {
                    path: old.path,
                    until: memo.clock + old.duration + listed,
                });
            }
        }
    }
    let mut expired = Vec::new();
    while memo.retired.front().is_some_and(|r| r.until <= memo.clock) {
        if let Some(r) = memo.retired.pop_front() {
            expired.push(r.path);
        }
    }
    expired
}

/// How long without a publisher a `storage = "memory"` stream with `dispose = 0` keeps its
/// playlist and segments (SRS's full.conf suggests 120 s for `hls_dispose`).
pub const MEMORY_DISPOSE: Seconds = Seconds::from_secs(120);

/// The `hls` state words in the API: segments are being listed.
pub const WRITING: &str = "writing";
/// A write failed (`on_error = "continue"`): segments are dropped until writes succeed.
pub const FAILED: &str = "failed";
/// HLS stopped for this publish (`on_error = "ignore"` after a write error).
pub const STOPPED: &str = "stopped";

/// Runs the segmenter of `key` on `consumer` until the stream is unpublished. The segmenter
/// works on a thread of its own, fed through a bounded channel: a stalled disk fills it, and
/// then this consumer's queue drops (counted in `status`), never the publisher.
pub async fn run(
    cfg: HlsConfig,
    key: StreamKey,
    consumer: Consumer,
    events: Option<tokio::sync::mpsc::Sender<SegmentEvent>>,
    storage: Storage,
    playlists: Arc<Playlists>,
    status: Arc<Status>,
) -> HlsStop {
    // In memory, a stream that is gone must give its window back: without a dispose of its
    // own it is freed after MEMORY_DISPOSE without a publisher.
    let dispose = match (&storage, cfg.dispose) {
        (Storage::Memory(_), d) if d.is_zero() => MEMORY_DISPOSE,
        (_, d) => d,
    };
    let on_error = cfg.on_error;
    let seg = Segmenter::new(cfg, key.clone(), events, storage.clone(), playlists.clone());
    let m3u8 = seg.m3u8_path().to_path_buf();
    match &storage {
        Storage::Disk => log::info!("hls {key}: writing {}", m3u8.display()),
        Storage::Memory(_) => log::info!("hls {key}: in memory, served as {}", m3u8.display()),
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Batch>(crate::app::runtime::file_thread::BATCHES);
    let cid = crate::app::runtime::log::current_cid();
    // The writer's answer (on_error = "disconnect" asks to drop the publisher).
    let stop = Arc::new(std::sync::Mutex::new(HlsStop::Unpublished));
    let writer = {
        let (key, status, stop) = (key.clone(), status.clone(), stop.clone());
        let work = move || {
            let s = writer::write(seg, rx, on_error, &key, &status);
            *stop.lock().unwrap_or_else(|p| p.into_inner()) = s;
        };
        crate::app::runtime::file_thread::spawn("srsd-hls", cid, Box::new(work))
    };
    let writer = match writer {
        Ok(w) => w,
        Err(e) => {
            log::error!("hls {key}: no thread for the segmenter: {e}; HLS off for this publish");
            status.fail(Reason::of_io(&e), &e, STOPPED);
            return HlsStop::Unpublished;
        }
    };
    let mut items = Vec::with_capacity(256);
    let mut gathered_until = None;
    loop {
        let more = consumer.recv_at(&mut items, 1 << 20, gathered_until).await;
        gathered_until = crate::app::outputs::next_gather(more);
        status.set_dropped(consumer.dropped() as usize);
        let mut end = false;
        let mut batch = Batch::with_capacity(items.len());
        for item in items.drain(..) {
            match item {
                Item::Frame(f) => batch.push((f, 0)),
                Item::Published => {}
                Item::Unpublished => end = true,
            }
        }
        // An error: the writer ended (on_error = "disconnect").
        if tx.send(batch).await.is_err() || end {
            break;
        }
    }
    drop(tx);
    drop(consumer);
    let _ = writer.await;
    let stop = std::mem::replace(
        &mut *stop.lock().unwrap_or_else(|p| p.into_inner()),
        HlsStop::Unpublished,
    );
    // Nothing more is appended, so the clock stands: the retired segments expire after the
    // media time they still had, now in wall time (unless a new publish takes them over).
    let (generation, retention) = {
        let m = playlists.lock();
        let memo = m.get(&m3u8);
        let retention = memo
            .and_then(|x| x.retired.back().map(|r| r.until - x.clock))
            .unwrap_or(0.0);
        (memo.map(|x| x.generation), retention)
    };
    if retention > 0.0 && (dispose.is_zero() || dispose.as_secs_f64() > retention) {
        let m3u8 = m3u8.clone();
        let storage = storage.clone();
        let playlists = playlists.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs_f64(retention.min(86_400.0))).await;
            let expired: Vec<PathBuf> = {
                let mut m = playlists.lock();
                let Some(memo) = m
                    .get_mut(&m3u8)
                    .filter(|x| Some(x.generation) == generation)
                else {
                    return; // republished (the new publish expires them) or disposed
                };
                let retired = std::mem::take(&mut memo.retired);
                retired.into_iter().map(|r| r.path).collect()
            };
            remove_files(storage, expired);
        });
    }
    if !dispose.is_zero() {
        let key2 = key.clone();
        tokio::spawn(async move {
            tokio::time::sleep(dispose.get()).await;
            let files: Vec<PathBuf> = {
                let mut m = playlists.lock();
                if m.get(&m3u8).map(|x| x.generation) != generation
                    || m.get(&m3u8).is_some_and(|x| x.publishing > 0)
                {
                    return; // republished meanwhile
                }
                let Some(memo) = m.remove(&m3u8) else {
                    return;
                };
                let segments = memo.window.into_iter().map(|d| d.path);
                let retired = memo.retired.into_iter().map(|r| r.path);
                segments.chain(retired).chain([m3u8.clone()]).collect()
            };
            log::info!("hls {key2}: disposed after {dispose} s without a publisher");
            remove_files(storage, files);
        });
    }
    stop
}

/// Deletes `files` off the runtime threads.
fn remove_files(storage: Storage, files: Vec<PathBuf>) {
    if files.is_empty() {
        return;
    }
    let work = move || {
        for f in files {
            storage.remove(&f);
        }
    };
    if let Err(e) = crate::app::runtime::file_thread::spawn("srsd-hls-rm", 0, Box::new(work)) {
        log::warn!("hls: no thread to delete expired files: {e}");
    }
}

/// The consumer limits for a segmenter: it must see every frame, so its queue is as long as
/// a player's could ever be; it drains as fast as files take writes.
pub fn queue_limits() -> crate::hub::QueueLimits {
    crate::hub::QueueLimits {
        max_duration_ms: 30_000,
        max_bytes: 32 * 1024 * 1024,
    }
}

/// Spawns the segmenter for a new publish when the vhost has HLS on; closed segments are
/// reported to `on_hls` hooks. The returned [`Finished`](crate::app::shared::Finished) resolves once the
/// last segment is closed and its `on_hls` queued (`None` when HLS is off).
pub fn spawn(
    ctx: &Arc<crate::app::shared::Context>,
    vhost: &crate::config::VhostConfig,
    source: &Arc<crate::hub::Source>,
    publisher_cid: u32,
    who: crate::app::shared::ClientRequest,
) -> Option<crate::app::shared::Finished> {
    if !vhost.hls.enabled {
        return None;
    }
    let (signal, finished) = crate::app::shared::Finished::pair();
    let consumer = source.subscribe(queue_limits(), crate::hub::TimeJitter::Off);
    let key = source.key.clone();
    let cfg = vhost.hls.clone();
    let hooks_cfg = vhost.http_hooks.clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<SegmentEvent>(64);
    let ctx2 = ctx.clone();
    // Logged under the publisher's cid, so one grep follows the stream.
    let cid = crate::app::runtime::log::current_cid();
    tokio::spawn(crate::app::runtime::log::with_cid(cid, async move {
        // Ends when the segmenter is done (its sender dropped), after the last on_hls.
        let _signal = signal;
        while let Some(seg) = rx.recv().await {
            crate::app::hooks::on_hls(&ctx2, &hooks_cfg, &who, &seg);
        }
    }));
    let storage = match cfg.storage {
        HlsStorage::Disk => Storage::Disk,
        HlsStorage::Memory => Storage::Memory(ctx.hls_memory.clone()),
    };
    let target = m3u8_file(&cfg, &key).0.display().to_string();
    let registered = ctx.outputs.register(&key, Output::Hls, target, WRITING);
    let ctx = ctx.clone();
    let writing = crate::app::shared::Writing::start(&ctx);
    tokio::spawn(crate::app::runtime::log::with_cid(cid, async move {
        let _writing = writing;
        let playlists = ctx.hls_playlists.clone();
        let status = registered.status.clone();
        let stop = run(cfg, key, consumer, Some(tx), storage, playlists, status).await;
        drop(registered);
        if let HlsStop::Disconnect(_) = stop {
            if let Some(c) = ctx.stats.client(publisher_cid) {
                c.kick.notify_one();
            }
        }
    }));
    Some(finished)
}

#[cfg(test)]
mod tests;
