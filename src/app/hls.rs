//! HLS: one segmenter task per published stream, a consumer of the hub like any player, so
//! it never blocks the publisher. It muxes H.264 + AAC/MP3 into MPEG-TS segments cut on
//! keyframes and keeps a sliding m3u8 window, both written under a temporary name and renamed
//! so a player never reads half a file.
//!
//! Per stream, the playlist's state (sequence numbers, the window) outlives one publish: a
//! republish continues the numbering and marks `EXT-X-DISCONTINUITY`, as SRS does.

use super::template::{self, Vars};
use crate::config::{HlsConfig, HlsOnError};
use crate::hub::{Consumer, Frame, Item, StreamKey};
use crate::protocol::m3u8::{Playlist, Segment as PlaylistSegment};
use crate::protocol::ts_remux::{Sample, TsRemuxer};
use bytes::BytesMut;
use std::collections::{HashMap, VecDeque};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// The playlist state of one m3u8, kept across publishes.
#[derive(Debug, Default, Clone)]
struct Memo {
    next_seq: u64,
    window: VecDeque<Done>,
    /// Bumped by every publish; a pending dispose only runs if no publish came since.
    generation: u64,
}

#[derive(Debug, Clone)]
struct Done {
    seq: u64,
    duration: f64,
    uri: String,
    path: PathBuf,
    discontinuity: bool,
}

/// Memos by m3u8 path: the file is the identity of a playlist, whatever server wrote it.
fn memos() -> &'static Mutex<HashMap<PathBuf, Memo>> {
    static M: OnceLock<Mutex<HashMap<PathBuf, Memo>>> = OnceLock::new();
    M.get_or_init(Default::default)
}

fn memo_lock() -> std::sync::MutexGuard<'static, HashMap<PathBuf, Memo>> {
    memos().lock().unwrap_or_else(|p| p.into_inner())
}

/// Something to tell the rest of the server: a segment was closed (for on_hls).
#[derive(Debug, Clone)]
pub struct SegmentEvent {
    pub key: StreamKey,
    pub file: PathBuf,
    pub uri: String,
    pub m3u8: PathBuf,
    pub m3u8_url: String,
    pub seq: u64,
    pub duration: f64,
}

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
    tmp: PathBuf,
    uri: String,
    file: io::BufWriter<File>,
    start_dts: i64,
    last_dts: i64,
    discontinuity: bool,
}

pub struct Segmenter {
    cfg: HlsConfig,
    key: StreamKey,
    m3u8_path: PathBuf,
    m3u8_url: String,
    remux: TsRemuxer,
    open: Option<Open>,
    first_of_publish: bool,
    buf: BytesMut,
    events: Option<tokio::sync::mpsc::Sender<SegmentEvent>>,
}

impl Segmenter {
    pub fn new(
        cfg: HlsConfig,
        key: StreamKey,
        events: Option<tokio::sync::mpsc::Sender<SegmentEvent>>,
    ) -> Self {
        let vars = Vars {
            vhost: &key.vhost,
            app: &key.app,
            stream: &key.stream,
            ..Vars::default()
        };
        let rel = template::render(&cfg.m3u8_file, &vars);
        let m3u8_path = Path::new(&cfg.path).join(&rel);
        let m3u8_url = format!("/{}", rel.trim_start_matches('/'));
        {
            let mut m = memo_lock();
            let memo = m.entry(m3u8_path.clone()).or_default();
            memo.generation += 1;
        }
        let remux = TsRemuxer::new(cfg.vcodec != "vn", cfg.acodec != "an");
        Segmenter {
            cfg,
            key,
            m3u8_path,
            m3u8_url,
            remux,
            open: None,
            first_of_publish: true,
            buf: BytesMut::with_capacity(64 * 1024),
            events,
        }
    }

    pub fn m3u8_path(&self) -> &Path {
        &self.m3u8_path
    }

    /// Feeds one frame. Errors are write errors (disk full, permissions).
    pub fn handle(&mut self, f: &Frame) -> io::Result<()> {
        let sample = match self.remux.inspect(
            f.kind,
            f.dts,
            &f.payload,
            f.flags.keyframe,
            f.flags.seq_header,
        ) {
            Ok(s) => s,
            Err(e) => {
                log::warn!("hls {}: {e}", self.key);
                return Ok(());
            }
        };
        let duration = self.open.as_ref().map(|o| f.dts - o.start_dts).unwrap_or(0);
        let cut = match sample {
            Sample::Skip => return Ok(()),
            Sample::Video { keyframe, .. } => {
                let fragment_ms = (self.cfg.fragment * 1000.0) as i64;
                let max_ms = (self.cfg.fragment * self.cfg.td_ratio * 1000.0) as i64;
                let at_cut_point = keyframe || !self.cfg.wait_keyframe;
                match &self.open {
                    None => at_cut_point,
                    Some(_) => (duration >= fragment_ms && at_cut_point) || duration >= max_ms,
                }
            }
            // Audio-only streams are cut on time (aof_ratio), as SRS does.
            Sample::Audio { .. } => {
                let limit = (self.cfg.fragment * self.cfg.aof_ratio * 1000.0) as i64;
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
        match self.remux.write(sample, &f.payload, &mut self.buf) {
            Ok(()) => self.write_buf(f.dts),
            Err(e) => {
                log::warn!("hls {}: skipped: {e}", self.key);
                Ok(())
            }
        }
    }

    fn write_buf(&mut self, dts: i64) -> io::Result<()> {
        if let Some(o) = self.open.as_mut() {
            o.file.write_all(&self.buf)?;
            o.last_dts = o.last_dts.max(dts);
        }
        Ok(())
    }

    /// Closes the open segment (if any) and opens the next one starting at `dts`.
    fn reap(&mut self, dts: i64) -> io::Result<()> {
        self.close_segment(dts)?;
        let (seq, discontinuity) = {
            let mut m = memo_lock();
            let memo = m.entry(self.m3u8_path.clone()).or_default();
            let seq = memo.next_seq;
            memo.next_seq += 1;
            // The first segment of a republish follows older ones: a discontinuity.
            (seq, self.first_of_publish && !memo.window.is_empty())
        };
        self.first_of_publish = false;
        let vars = Vars {
            vhost: &self.key.vhost,
            app: &self.key.app,
            stream: &self.key.stream,
            seq: Some(seq),
            unix_ms: super::log::now_unix_ms(),
            ..Vars::default()
        };
        let rel = template::render(&self.cfg.ts_file, &vars);
        let path = Path::new(&self.cfg.path).join(&rel);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let tmp = path.with_extension("ts.tmp");
        let file = io::BufWriter::with_capacity(64 * 1024, File::create(&tmp)?);
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
            tmp,
            uri,
            file,
            start_dts: dts,
            last_dts: dts,
            discontinuity,
        });
        self.write_buf(dts)
    }

    fn close_segment(&mut self, next_dts: i64) -> io::Result<()> {
        let Some(mut o) = self.open.take() else {
            return Ok(());
        };
        o.file.flush()?;
        drop(o.file);
        std::fs::rename(&o.tmp, &o.path)?;
        // A segment lasts until the next one starts (or its last frame, at the end).
        let end = next_dts.max(o.last_dts);
        let duration = (end - o.start_dts).max(0) as f64 / 1000.0;
        let done = Done {
            seq: o.seq,
            duration,
            uri: o.uri.clone(),
            path: o.path.clone(),
            discontinuity: o.discontinuity,
        };
        let (playlist, removed) = {
            let mut m = memo_lock();
            let memo = m.entry(self.m3u8_path.clone()).or_default();
            memo.window.push_back(done);
            // Slide the window: keep the newest segments that fit in `window` seconds.
            let mut removed = Vec::new();
            while memo.window.len() > 1
                && memo.window.iter().map(|d| d.duration).sum::<f64>() > self.cfg.window
            {
                if let Some(old) = memo.window.pop_front() {
                    removed.push(old.path);
                }
            }
            (self.playlist(memo), removed)
        };
        write_atomic(&self.m3u8_path, playlist.render().as_bytes())?;
        if self.cfg.cleanup {
            for p in removed {
                let _ = std::fs::remove_file(p);
            }
        }
        if let Some(tx) = &self.events {
            let _ = tx.try_send(SegmentEvent {
                key: self.key.clone(),
                file: o.path,
                uri: o.uri,
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
            target_duration: (self.cfg.fragment * self.cfg.td_ratio).ceil().max(1.0) as u64,
            media_sequence: memo.window.front().map(|d| d.seq).unwrap_or(0),
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

    /// Ends the publish: closes the open segment into the playlist.
    pub fn finish(&mut self) -> io::Result<()> {
        let last = self.open.as_ref().map(|o| o.last_dts).unwrap_or(0);
        self.close_segment(last)
    }
}

fn write_atomic(path: &Path, data: &[u8]) -> io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("m3u8.tmp");
    std::fs::write(&tmp, data)?;
    std::fs::rename(&tmp, path)
}

/// Runs the segmenter on `consumer` until the stream is unpublished.
pub async fn run(
    cfg: HlsConfig,
    key: StreamKey,
    consumer: Consumer,
    events: Option<tokio::sync::mpsc::Sender<SegmentEvent>>,
) -> HlsStop {
    let dispose = cfg.dispose;
    let on_error = cfg.on_error;
    let mut seg = Segmenter::new(cfg, key.clone(), events);
    let m3u8 = seg.m3u8_path().to_path_buf();
    log::info!("hls {key}: writing {}", m3u8.display());
    let mut items = Vec::with_capacity(256);
    let mut failed = false;
    let stop = 'outer: loop {
        consumer.recv(&mut items, 1 << 20).await;
        for item in items.drain(..) {
            match item {
                Item::Frame(f) if !failed => {
                    if let Err(e) = seg.handle(&f) {
                        match on_error {
                            HlsOnError::Ignore => {
                                log::warn!(
                                    "hls {key}: {e}; on_error=ignore: HLS off for this publish"
                                );
                                failed = true;
                            }
                            HlsOnError::Disconnect => {
                                log::error!(
                                    "hls {key}: {e}; on_error=disconnect: dropping the publisher"
                                );
                                break 'outer HlsStop::Disconnect(e);
                            }
                            HlsOnError::Continue => log::warn!("hls {key}: {e}; on_error=continue"),
                        }
                    }
                }
                Item::Frame(_) | Item::Published => {}
                Item::Unpublished => break 'outer HlsStop::Unpublished,
            }
        }
    };
    if let Err(e) = seg.finish() {
        log::warn!("hls {key}: closing the last segment: {e}");
    }
    drop(consumer);
    if dispose > 0 {
        let generation = memo_lock().get(&m3u8).map(|m| m.generation);
        let key2 = key.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(dispose as u64)).await;
            let mut m = memo_lock();
            if m.get(&m3u8).map(|x| x.generation) != generation {
                return; // republished meanwhile
            }
            if let Some(memo) = m.remove(&m3u8) {
                for d in memo.window {
                    let _ = std::fs::remove_file(d.path);
                }
                let _ = std::fs::remove_file(&m3u8);
                log::info!("hls {key2}: disposed after {dispose} s without a publisher");
            }
        });
    }
    stop
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
/// reported to `on_hls` hooks.
pub fn spawn(
    ctx: &Arc<super::Context>,
    vhost: &crate::config::VhostConfig,
    source: &Arc<crate::hub::Source>,
    publisher_cid: u32,
    who: super::hooks::Who,
) {
    if !vhost.hls.enabled {
        return;
    }
    let consumer = source.subscribe(queue_limits(), crate::hub::TimeJitter::Off);
    let key = source.key.clone();
    let cfg = vhost.hls.clone();
    let hooks_cfg = vhost.http_hooks.clone();
    let (tx, mut rx) = tokio::sync::mpsc::channel::<SegmentEvent>(64);
    let ctx2 = ctx.clone();
    // Logged under the publisher's cid, so one grep follows the stream.
    let cid = super::log::current_cid();
    tokio::spawn(super::log::with_cid(cid, async move {
        while let Some(seg) = rx.recv().await {
            super::hooks::on_hls(&ctx2, &hooks_cfg, &who, &seg);
        }
    }));
    let ctx = ctx.clone();
    let writing = super::Writing::start(&ctx);
    tokio::spawn(super::log::with_cid(cid, async move {
        let _writing = writing;
        if let HlsStop::Disconnect(_) = run(cfg, key, consumer, Some(tx)).await {
            if let Some(c) = ctx.stats.client(publisher_cid) {
                c.kick.notify_one();
            }
        }
    }));
}
