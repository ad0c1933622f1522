//! DVR: records published streams to FLV files, one recorder task per publish. The recorder
//! is a consumer of the hub like any player, so a slow disk never blocks the publisher (its
//! queue drops, counted, as a player's would).
//!
//! - `plan = "session"`: one file per publish. `plan = "segment"`: a new file every
//!   `duration` seconds, cut on the next keyframe when `wait_keyframe` is on.
//! - A file is written under `PATH.tmp` and renamed to `PATH` when closed, so whatever reads
//!   the DVR directory never sees half a file; `on_dvr` fires after the rename.
//! - Each file starts with the FLV header, onMetaData (with `duration` and `filesize` patched
//!   in at close, as SRS does, so players can seek), the sequence headers, then media from a
//!   keyframe; its timestamps start at 0.
//! - A write error (a full disk) closes the file cleanly (cut to its last whole tag, totals
//!   patched, renamed, `on_dvr`); recording retries ([`RETRY_FIRST_MS`] doubling to
//!   [`RETRY_MAX_MS`] of stream time) and resumes into a new file once writes succeed.
//! - It runs on a thread of its own ([`super::dvr_writer`]): a stalled disk holds up only
//!   this recording (its queue drops, counted), never the publisher or the players.

use crate::app::runtime::output_status::Output;
use crate::app::runtime::template::{self, Vars};
use crate::config::{DvrConfig, DvrPlan};
use crate::hub::MediaKind;
use crate::hub::{Frame, Item, StreamKey};
use crate::protocol::amf0::{self, Amf0Value};
use crate::protocol::flv::{self, Tag};
use bytes::{Bytes, BytesMut};
use std::fs::File;
use std::io::{self, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// The `dvr` state words in the API: before the first file, writing one, retrying after a
/// write error.
pub const WAITING: &str = "waiting";
pub const RECORDING: &str = "recording";
pub const RETRYING: &str = "retrying";
/// Bytes of whole tags gathered before one write to the file.
const WRITE_BUF: usize = 64 * 1024;
/// The first retry after a write error waits this long (stream time, ms) ...
pub const RETRY_FIRST_MS: u32 = 1000;
/// ... and every failed retry doubles the wait up to this.
pub const RETRY_MAX_MS: u32 = 5000;

/// The file being written. Tags are gathered whole in `buf` and written together, so the
/// file always ends on a whole tag except during a write that fails; `written` is where it
/// is cut back to then.
struct Open {
    path: PathBuf,
    tmp: PathBuf,
    file: File,
    buf: BytesMut,
    /// Bytes in the file, all of them whole tags.
    written: u64,
    /// Stream timestamp of the last tag in the file.
    written_ts: u32,
    /// Whether a tag after the head (FLV header, metadata, sequence headers) is in the file,
    /// and in `buf`.
    has_media: bool,
    buf_media: bool,
    /// The stream timestamp that is 0 in this file.
    start_ts: u32,
    last_ts: u32,
    /// File offsets of the 8-byte values of onMetaData's `duration` and `filesize`.
    duration_at: u64,
    filesize_at: u64,
}

impl Open {
    /// Writes the gathered tags.
    fn flush(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        self.file.write_all(&self.buf)?;
        self.written += self.buf.len() as u64;
        self.written_ts = self.last_ts;
        self.has_media |= self.buf_media;
        self.buf_media = false;
        self.buf.clear();
        Ok(())
    }
}

/// After a write error: when (stream time) the next file may be tried, and the wait after.
#[derive(Debug, Clone, Copy)]
struct Retry {
    at_ts: u32,
    wait_ms: u32,
}

/// What one frame did besides being recorded: files closed (cleanly, also after an error;
/// for `on_dvr`), a write error (the file was closed, recording retries), writes succeeding
/// again after one.
#[derive(Debug, Default)]
pub struct Outcome {
    pub closed: Vec<PathBuf>,
    pub failed: Option<io::Error>,
    pub resumed: bool,
}

/// Turns a stream's frames into FLV files. Pure file IO, no tasks: the caller feeds frames
/// with the timestamps its consumer computed.
pub struct Recorder {
    cfg: DvrConfig,
    key: StreamKey,
    param: String,
    metadata: Option<Bytes>,
    video_header: Option<Bytes>,
    audio_header: Option<Bytes>,
    /// Whether the stream has video: files then start on a keyframe.
    has_video: bool,
    has_audio: bool,
    open: Option<Open>,
    /// Set by a time cut without `wait_keyframe`: the next file may start on any frame.
    cut_anywhere: bool,
    /// Milliseconds since the epoch, for the path template (set per file by the caller).
    now_ms: fn() -> u64,
    /// Set after a write error until the next file takes writes.
    retry: Option<Retry>,
    /// Files closed by a cut in the frame being recorded (reported even if the next fails).
    closed_early: Vec<PathBuf>,
}

impl Recorder {
    pub fn new(cfg: DvrConfig, key: StreamKey, param: String) -> Recorder {
        Recorder {
            cfg,
            key,
            // The client's query string may be rendered into the path (`[param]`).
            param: template::path_safe(&param),
            metadata: None,
            video_header: None,
            audio_header: None,
            has_video: false,
            has_audio: false,
            open: None,
            cut_anywhere: false,
            now_ms: crate::app::runtime::log::now_unix_ms,
            retry: None,
            closed_early: Vec::new(),
        }
    }

    /// Whether a file is being written.
    pub fn is_open(&self) -> bool {
        self.open.is_some()
    }

    /// Whether a write failed and no file took writes since.
    pub fn failing(&self) -> bool {
        self.retry.is_some()
    }

    /// Writes one frame at stream time `ts`; a write error closes the file cleanly and
    /// schedules a retry (never an error to the caller: recording goes on when it can).
    pub fn handle(&mut self, f: &Frame, ts: u32) -> Outcome {
        let mut out = Outcome::default();
        let r = self.record(f, ts);
        out.closed.append(&mut self.closed_early);
        if let Err(e) = r {
            out.closed.extend(self.close_failed(&e));
            let wait_ms = self.retry.map_or(RETRY_FIRST_MS, |r| {
                r.wait_ms.saturating_mul(2).min(RETRY_MAX_MS)
            });
            self.retry = Some(Retry {
                at_ts: ts.wrapping_add(wait_ms),
                wait_ms,
            });
            out.failed = Some(e);
            return out;
        }
        if self.retry.is_some() && self.open.as_ref().is_some_and(|o| o.has_media) {
            self.retry = None;
            out.resumed = true;
        }
        out
    }

    /// Records one frame; files it closes go to `closed_early`.
    fn record(&mut self, f: &Frame, ts: u32) -> io::Result<()> {
        if f.flags.metadata {
            self.metadata = Some(f.payload.clone());
            return self.write_if_open(f.kind, ts, &f.payload);
        }
        match f.kind {
            MediaKind::Video => self.has_video = true,
            MediaKind::Audio => self.has_audio = true,
            MediaKind::Data => return self.write_if_open(f.kind, ts, &f.payload),
        }
        if f.flags.seq_header {
            let slot = if f.kind == MediaKind::Video {
                &mut self.video_header
            } else {
                &mut self.audio_header
            };
            *slot = Some(f.payload.clone());
            return self.write_if_open(f.kind, ts, &f.payload);
        }
        let keyframe = f.kind == MediaKind::Video && f.flags.keyframe;
        if let Some(o) = &self.open {
            let elapsed = u64::from(ts.wrapping_sub(o.start_ts));
            if self.cfg.plan == DvrPlan::Segment
                && elapsed >= self.cfg.duration.get().as_millis() as u64
                && (keyframe || !self.cfg.wait_keyframe || !self.has_video)
            {
                if let Some(p) = self.close()? {
                    self.closed_early.push(p);
                }
                self.cut_anywhere = !self.cfg.wait_keyframe;
            }
        }
        if self.open.is_none() {
            // After a write error, the next file waits for its retry time.
            if (self.retry).is_some_and(|r| ts.wrapping_sub(r.at_ts) > u32::MAX / 2) {
                return Ok(());
            }
            // A file a player can start: from a keyframe when the stream has video.
            if self.has_video && !keyframe && !self.cut_anywhere {
                return Ok(());
            }
            self.cut_anywhere = false;
            self.start(ts)?;
        }
        self.write_if_open(f.kind, ts, &f.payload)
    }

    fn start(&mut self, ts: u32) -> io::Result<()> {
        let path = PathBuf::from(template::render(
            &self.cfg.path,
            &Vars {
                vhost: &self.key.vhost,
                app: &self.key.app,
                stream: &self.key.stream,
                param: &self.param,
                unix_ms: (self.now_ms)(),
                ..Vars::default()
            },
        ));
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)?;
        }
        let mut tmp = path.clone().into_os_string();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let file = File::create(&tmp)?;
        let mut head = BytesMut::with_capacity(1024);
        flv::encode_header(
            self.has_audio || self.audio_header.is_some(),
            self.has_video,
            &mut head,
        );
        let (meta, duration_at, filesize_at) = seekable_metadata(self.metadata.as_deref());
        let meta_start = head.len() as u64 + flv::TAG_HEADER_LEN as u64;
        encode(MediaKind::Data, 0, meta, &mut head);
        let mut open = Open {
            path,
            tmp,
            file,
            buf: BytesMut::with_capacity(WRITE_BUF + 1024),
            written: 0,
            written_ts: ts,
            has_media: false,
            buf_media: false,
            start_ts: ts,
            last_ts: ts,
            duration_at: meta_start + duration_at as u64,
            filesize_at: meta_start + filesize_at as u64,
        };
        for (kind, h) in [
            (MediaKind::Video, &self.video_header),
            (MediaKind::Audio, &self.audio_header),
        ] {
            if let Some(h) = h {
                encode(kind, 0, h.clone(), &mut head);
            }
        }
        // Written at once: after a write error, the probe that the disk takes writes again.
        open.buf.extend_from_slice(&head);
        let result = open.flush();
        log::info!("dvr {}: recording to {}", self.key, open.tmp.display());
        self.open = Some(open);
        result
    }

    fn write_if_open(&mut self, kind: MediaKind, ts: u32, payload: &Bytes) -> io::Result<()> {
        let Some(o) = &mut self.open else {
            return Ok(());
        };
        let rel = ts.wrapping_sub(o.start_ts);
        // A timestamp before the file's start (a late audio frame) is written at 0.
        let rel = if rel > u32::MAX / 2 { 0 } else { rel };
        if rel < u32::MAX / 2 && ts.wrapping_sub(o.last_ts) < u32::MAX / 2 {
            o.last_ts = ts;
        }
        encode(kind, rel, payload.clone(), &mut o.buf);
        o.buf_media = true;
        if o.buf.len() >= WRITE_BUF {
            o.flush()?;
        }
        Ok(())
    }

    /// Closes the open file after a write error: cut back to its last whole tag, its totals
    /// patched to what it holds, renamed into place. A file without media is deleted. Returns
    /// the path kept, if any.
    fn close_failed(&mut self, e: &io::Error) -> Option<PathBuf> {
        let o = self.open.take()?;
        let keep = o.has_media;
        let duration = f64::from(o.written_ts.wrapping_sub(o.start_ts)) / 1000.0;
        let kept = keep
            && o.file.set_len(o.written).is_ok()
            && patch_totals(&o.file, o.duration_at, duration, o.filesize_at, o.written).is_ok()
            && std::fs::rename(&o.tmp, &o.path).is_ok();
        if kept {
            log::info!(
                "dvr {}: {e}; closed {} at its last whole tag ({duration:.1} s, {} bytes)",
                self.key,
                o.path.display(),
                o.written
            );
            Some(o.path)
        } else {
            let _ = std::fs::remove_file(&o.tmp);
            None
        }
    }

    /// Closes the open file: writes what is gathered, patches duration and size into
    /// onMetaData, renames it into place. A write error closes it as [`Recorder::handle`]
    /// does (the path is then still returned when the file was kept).
    pub fn close(&mut self) -> io::Result<Option<PathBuf>> {
        let Some(o) = self.open.as_mut() else {
            return Ok(None);
        };
        if let Err(e) = o.flush() {
            let kept = self.close_failed(&e);
            return if kept.is_some() { Ok(kept) } else { Err(e) };
        }
        let Some(o) = self.open.take() else {
            return Ok(None);
        };
        let duration = f64::from(o.last_ts.wrapping_sub(o.start_ts)) / 1000.0;
        let patched = patch_totals(&o.file, o.duration_at, duration, o.filesize_at, o.written)
            .and_then(|()| o.file.sync_data());
        // Renamed even when patching failed: the media is there, only the header lacks totals.
        std::fs::rename(&o.tmp, &o.path)?;
        if let Err(e) = patched {
            log::warn!("dvr {}: {}: {e}", self.key, o.path.display());
        }
        log::info!(
            "dvr {}: closed {} ({duration:.1} s, {} bytes)",
            self.key,
            o.path.display(),
            o.written
        );
        Ok(Some(o.path))
    }
}

/// Overwrites onMetaData's `duration` (s) and `filesize` (bytes) in place: no new blocks
/// are needed, so this works on a full disk.
fn patch_totals(
    mut f: &File,
    duration_at: u64,
    duration: f64,
    filesize_at: u64,
    size: u64,
) -> io::Result<()> {
    f.seek(SeekFrom::Start(duration_at))?;
    f.write_all(&duration.to_be_bytes())?;
    f.seek(SeekFrom::Start(filesize_at))?;
    f.write_all(&(size as f64).to_be_bytes())
}

fn encode(kind: MediaKind, timestamp: u32, payload: Bytes, out: &mut BytesMut) {
    flv::encode_tag(
        &Tag {
            kind,
            timestamp,
            payload,
        },
        out,
    );
}

/// The file's onMetaData: the stream's own properties (or none) with `duration` and
/// `filesize` set to 0 and moved last, and the offsets of their 8-byte values in the body.
fn seekable_metadata(stream: Option<&[u8]>) -> (Bytes, usize, usize) {
    let mut props: Vec<(String, Amf0Value)> = stream
        .and_then(|p| amf0::decode_all(p).ok())
        .and_then(|values| {
            values.into_iter().find_map(|v| match v {
                Amf0Value::EcmaArray(p) | Amf0Value::Object(p) => Some(p),
                _ => None,
            })
        })
        .unwrap_or_default();
    props.retain(|(k, _)| k != "duration" && k != "filesize");
    props.push(("duration".into(), Amf0Value::Number(0.0)));
    props.push(("filesize".into(), Amf0Value::Number(0.0)));
    let mut b = BytesMut::new();
    amf0::encode_all(
        &[Amf0Value::string("onMetaData"), Amf0Value::EcmaArray(props)],
        &mut b,
    );
    // The body ends: "filesize" key, number marker, 8 bytes, object end (00 00 09); before
    // that the same for "duration".
    let filesize_at = b.len() - 3 - 8;
    let duration_at = filesize_at - 1 - (2 + "filesize".len()) - 8;
    (b.freeze(), duration_at, filesize_at)
}

/// Starts the recorder of a new publish when the vhost has DVR on; closed files are reported
/// to `on_dvr` hooks. The returned [`Finished`](crate::app::shared::Finished) resolves once the last file
/// is closed and its `on_dvr` queued (`None` when DVR is off).
pub fn spawn(
    ctx: &Arc<crate::app::shared::Context>,
    vhost: &crate::config::VhostConfig,
    source: &Arc<crate::hub::Source>,
    who: crate::app::shared::ClientRequest,
) -> Option<crate::app::shared::Finished> {
    if !vhost.dvr.enabled {
        return None;
    }
    let (signal, finished) = crate::app::shared::Finished::pair();
    let mut consumer = source.subscribe(
        crate::app::outputs::hls::queue_limits(),
        crate::app::shared::jitter_mode(vhost.dvr.time_jitter),
    );
    let rec = Recorder::new(vhost.dvr.clone(), source.key.clone(), who.param.clone());
    let hooks_cfg = vhost.http_hooks.clone();
    let key = source.key.clone();
    let registered = ctx
        .outputs
        .register(&key, Output::Dvr, vhost.dvr.path.clone(), WAITING);
    let ctx = ctx.clone();
    let writing = crate::app::shared::Writing::start(&ctx);
    // Logged under the publisher's cid, so one grep follows the stream.
    let cid = crate::app::runtime::log::current_cid();
    // Frames with this recording's timestamps, to the writer thread; closed files back.
    let (tx, rx) = tokio::sync::mpsc::channel::<crate::app::runtime::file_thread::Batch>(
        crate::app::runtime::file_thread::BATCHES,
    );
    let (closed_tx, mut closed_rx) = tokio::sync::mpsc::channel::<PathBuf>(16);
    let ctx2 = ctx.clone();
    tokio::spawn(crate::app::runtime::log::with_cid(cid, async move {
        // Ends when the writer is done (its sender dropped), after the last on_dvr.
        let _signal = signal;
        while let Some(path) = closed_rx.recv().await {
            crate::app::hooks::on_dvr(&ctx2, &hooks_cfg, &who, &path);
        }
    }));
    tokio::spawn(crate::app::runtime::log::with_cid(cid, async move {
        let _writing = writing;
        let status = registered.status.clone();
        let work = {
            let (key, status) = (key.clone(), status.clone());
            move || super::dvr_writer::write(rec, rx, closed_tx, &key, &status)
        };
        let writer = match crate::app::runtime::file_thread::spawn("srsd-dvr", cid, Box::new(work))
        {
            Ok(w) => w,
            Err(e) => {
                log::error!("dvr {key}: no thread for the recorder: {e}; not recording");
                return;
            }
        };
        let mut items = Vec::with_capacity(256);
        let mut gathered_until = None;
        loop {
            let more = consumer.recv_at(&mut items, 1 << 20, gathered_until).await;
            gathered_until = crate::app::outputs::next_gather(more);
            status.set_dropped(consumer.dropped() as usize);
            let mut end = false;
            let mut batch = Vec::with_capacity(items.len());
            for item in items.drain(..) {
                match item {
                    Item::Frame(f) => {
                        let ts = consumer.timestamp(&f);
                        batch.push((f, ts));
                    }
                    Item::Published => {}
                    Item::Unpublished => end = true,
                }
            }
            // Waits while the writer is behind: the consumer's queue then drops, counted.
            if tx.send(batch).await.is_err() || end {
                break;
            }
        }
        // The writer closes its file once the channel is closed.
        drop(tx);
        drop(consumer);
        let _ = writer.await;
        drop(registered);
    }));
    Some(finished)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::flv::FlvDecoder;
    use std::path::Path;

    impl Outcome {
        /// The file closed, if any; panics on a write error.
        fn unwrap(self) -> Option<PathBuf> {
            assert!(self.failed.is_none(), "{:?}", self.failed);
            assert!(self.closed.len() <= 1);
            self.closed.into_iter().next()
        }
    }

    fn frame(kind: MediaKind, payload: &[u8]) -> Frame {
        Frame::new(kind, 0, 0, Bytes::copy_from_slice(payload))
    }

    fn key_video(n: u8) -> Frame {
        frame(MediaKind::Video, &[0x17, 1, 0, 0, 0, n])
    }

    fn inter_video(n: u8) -> Frame {
        frame(MediaKind::Video, &[0x27, 1, 0, 0, 0, n])
    }

    fn meta() -> Frame {
        let mut b = BytesMut::new();
        amf0::encode_all(
            &[
                Amf0Value::string("onMetaData"),
                Amf0Value::EcmaArray(vec![
                    ("width".into(), Amf0Value::Number(640.0)),
                    ("duration".into(), Amf0Value::Number(99.0)),
                ]),
            ],
            &mut b,
        );
        Frame::new(MediaKind::Data, 0, 0, b.freeze())
    }

    fn cfg(dir: &Path, plan: DvrPlan, duration: u32, wait_keyframe: bool) -> DvrConfig {
        DvrConfig {
            enabled: true,
            plan,
            path: format!("{}/[app]/[stream].[timestamp].flv", dir.display()),
            duration: crate::config::Seconds::from_secs(u64::from(duration)),
            wait_keyframe,
            ..DvrConfig::default()
        }
    }

    fn recorder(c: DvrConfig) -> Recorder {
        let mut r = Recorder::new(c, StreamKey::new("v", "live", "s"), String::new());
        // Distinct names per file: a counter instead of the clock.
        r.now_ms = || {
            use std::sync::atomic::{AtomicUsize, Ordering};
            static N: AtomicUsize = AtomicUsize::new(1);
            N.fetch_add(1, Ordering::Relaxed) as u64
        };
        r
    }

    fn tags(path: &Path) -> Vec<Tag> {
        let mut buf = BytesMut::from(&std::fs::read(path).expect("read dvr file")[..]);
        let mut d = FlvDecoder::new();
        let mut out = Vec::new();
        while let Some(t) = d.decode(&mut buf).expect("valid FLV") {
            out.push(t);
        }
        assert!(buf.is_empty(), "no trailing bytes");
        out
    }

    fn tmpdir(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("srsd-dvr-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn vsh() -> Frame {
        frame(MediaKind::Video, &[0x17, 0, 0, 0, 0, 1, 0x42])
    }

    fn ash() -> Frame {
        frame(MediaKind::Audio, &[0xAF, 0, 0x12, 0x10])
    }

    #[test]
    fn session_file_starts_on_a_keyframe_with_headers_and_seekable_metadata() {
        let dir = tmpdir("session");
        let mut r = recorder(cfg(&dir, DvrPlan::Session, 30, true));
        for (f, ts) in [(meta(), 0), (vsh(), 0), (ash(), 0)] {
            assert_eq!(r.handle(&f, ts).unwrap(), None);
        }
        // Frames before the first keyframe are not recorded.
        r.handle(&inter_video(0), 1000).unwrap();
        r.handle(&frame(MediaKind::Audio, &[0xAF, 1, 7]), 1010)
            .unwrap();
        r.handle(&key_video(1), 1040).unwrap();
        r.handle(&frame(MediaKind::Audio, &[0xAF, 1, 8]), 1050)
            .unwrap();
        r.handle(&inter_video(2), 3540).unwrap();
        let open = r.open.as_ref().unwrap().tmp.clone();
        assert!(open.extension().is_some_and(|e| e == "tmp") && open.exists());
        let path = r.close().unwrap().expect("a file");
        assert!(!open.exists(), "renamed into place");
        let t = tags(&path);
        let kinds: Vec<_> = t.iter().map(|t| (t.kind, t.timestamp)).collect();
        assert_eq!(
            kinds,
            [
                (MediaKind::Data, 0),
                (MediaKind::Video, 0),
                (MediaKind::Audio, 0),
                (MediaKind::Video, 0),
                (MediaKind::Audio, 10),
                (MediaKind::Video, 2500),
            ]
        );
        let m = amf0::decode_all(&t[0].payload).unwrap();
        let size = std::fs::metadata(&path).unwrap().len() as f64;
        assert_eq!(m[0].as_str(), Some("onMetaData"));
        assert_eq!(m[1].get("width").and_then(|v| v.as_f64()), Some(640.0));
        assert_eq!(m[1].get("duration").and_then(|v| v.as_f64()), Some(2.5));
        assert_eq!(m[1].get("filesize").and_then(|v| v.as_f64()), Some(size));
        assert_eq!(r.close().unwrap(), None, "closing twice is a no-op");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn segment_plan_cuts_on_the_keyframe_after_the_duration() {
        let dir = tmpdir("segment");
        let mut r = recorder(cfg(&dir, DvrPlan::Segment, 2, true));
        r.handle(&vsh(), 0).unwrap();
        r.handle(&ash(), 0).unwrap();
        let mut closed = Vec::new();
        for n in 0..150u32 {
            // 25 fps, a keyframe every 30 frames (1.2 s).
            let f = if n % 30 == 0 {
                key_video(n as u8)
            } else {
                inter_video(n as u8)
            };
            closed.extend(r.handle(&f, n * 40).unwrap());
        }
        closed.extend(r.close().unwrap());
        // Keyframes at 0, 1.2, 2.4, 3.6, 4.8 s: cuts at 2.4 and 4.8.
        assert_eq!(closed.len(), 3, "{closed:?}");
        for (i, p) in closed.iter().enumerate() {
            let t = tags(p);
            assert_eq!(t[0].kind, MediaKind::Data, "metadata first");
            assert_eq!(&t[1].payload[..2], &[0x17, 0], "video header in every file");
            assert_eq!(t[2].payload[..2], [0xAF, 0], "audio header in every file");
            assert_eq!(t[3].payload[0], 0x17, "file {i} starts on a keyframe");
            assert_eq!(t[3].timestamp, 0, "file {i} starts at 0");
            let m = amf0::decode_all(&t[0].payload).unwrap();
            let d = m[1].get("duration").and_then(|v| v.as_f64()).unwrap();
            let want = if i < 2 { 2.36 } else { 1.16 };
            assert!((d - want).abs() < 0.001, "file {i}: duration {d}");
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn segment_plan_without_wait_keyframe_cuts_on_time() {
        let dir = tmpdir("anywhere");
        let mut r = recorder(cfg(&dir, DvrPlan::Segment, 1, false));
        r.handle(&vsh(), 0).unwrap();
        let mut closed = Vec::new();
        for n in 0..60u32 {
            let f = if n % 50 == 0 {
                key_video(1)
            } else {
                inter_video(1)
            };
            closed.extend(r.handle(&f, n * 40).unwrap());
        }
        closed.extend(r.close().unwrap());
        assert_eq!(closed.len(), 3, "cut at 1.0 s and 2.0 s: {closed:?}");
        assert_eq!(
            tags(&closed[1])[2].payload[0],
            0x27,
            "starts on an inter frame"
        );
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn audio_only_streams_record_and_unwritable_paths_fail_cleanly() {
        let dir = tmpdir("audio");
        let mut r = recorder(cfg(&dir, DvrPlan::Session, 30, true));
        r.handle(&ash(), 0).unwrap();
        r.handle(&frame(MediaKind::Audio, &[0xAF, 1, 1]), 23)
            .unwrap();
        let path = r.close().unwrap().expect("a file");
        assert_eq!(tags(&path).len(), 3);
        // A path under a regular file cannot be created: an error, no panic.
        let blocker = dir.join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let mut c = cfg(&dir, DvrPlan::Session, 30, true);
        c.path = format!("{}/sub/x.flv", blocker.display());
        let mut r = recorder(c);
        let out = r.handle(&key_video(1), 0);
        assert!(out.failed.is_some() && out.closed.is_empty());
        assert!(r.failing());
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn after_a_write_error_retries_back_off_on_stream_time_and_resume_into_a_new_file() {
        let dir = tmpdir("retry");
        std::fs::create_dir_all(&dir).unwrap();
        // The file's directory cannot be made while a regular file stands in its way.
        let blocker = dir.join("sub");
        std::fs::write(&blocker, b"x").unwrap();
        let mut c = cfg(&dir, DvrPlan::Session, 30, true);
        c.path = format!("{}/sub/[stream].[timestamp].flv", dir.display());
        let mut r = recorder(c);
        r.handle(&vsh(), 0).unwrap();
        // Fails at 0, then retries at 1 s, 3 s, 7 s, 12 s (the wait doubles to 5 s).
        let mut attempts = Vec::new();
        for n in 0..=300u32 {
            let out = r.handle(&key_video(1), n * 40);
            if out.failed.is_some() {
                attempts.push(n * 40);
            }
        }
        assert_eq!(attempts, [0, 1000, 3000, 7000, 12000], "{attempts:?}");
        assert!(r.failing() && r.open.is_none());
        // Space is back: nothing is tried before the retry time, then a new file starts on
        // the next keyframe and writes resume.
        std::fs::remove_file(&blocker).unwrap();
        let _ = r.handle(&key_video(1), 16_960);
        assert!(r.open.is_none(), "waits for its retry at 17 s");
        let mut resumed = None;
        for n in 0..200u32 {
            let ts = 17_000 + n * 40;
            let f = if n % 25 == 0 {
                key_video(1)
            } else {
                frame(MediaKind::Video, &[0x27, 1, 0, 0, 0, 2].repeat(100))
            };
            let out = r.handle(&f, ts);
            assert!(out.failed.is_none());
            if out.resumed {
                resumed = Some(ts);
            }
        }
        assert!(
            resumed.is_some() && !r.failing(),
            "resumed once media was written"
        );
        let path = r.close().unwrap().expect("the new file");
        let t = tags(&path);
        assert_eq!(t[2].payload[0], 0x17, "starts on a keyframe");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_hostile_param_cannot_climb_out_of_the_dvr_directory() {
        let dir = tmpdir("param");
        let mut c = cfg(&dir, DvrPlan::Session, 30, true);
        c.path = format!("{}/[app]/[stream][param].flv", dir.display());
        let mut r = Recorder::new(
            c,
            StreamKey::new("v", "live", "s"),
            "?x=/../../../tmp/e\\..\n".into(),
        );
        r.handle(&key_video(1), 0).unwrap();
        let path = r.close().unwrap().expect("a file");
        assert_eq!(path.parent(), Some(dir.join("live").as_path()), "{path:?}");
        assert!(!path.to_string_lossy().contains(".."), "{path:?}");
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn metadata_offsets_point_at_the_values() {
        for m in [None, Some(&meta().payload[..])] {
            let (b, d, f) = seekable_metadata(m);
            assert_eq!(&b[d - 11..d - 1], b"\x00\x08duration");
            assert_eq!(&b[f - 11..f - 1], b"\x00\x08filesize");
            assert_eq!(&b[d..d + 8], &0f64.to_be_bytes());
        }
    }
}
