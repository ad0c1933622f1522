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
//! - A write error stops recording for this publish (the stream goes on) and keeps what was
//!   written: the partial file is still renamed into place.

use crate::app::runtime::template::{self, Vars};
use crate::config::{DvrConfig, DvrPlan};
use crate::hub::MediaKind;
use crate::hub::{Frame, Item, StreamKey};
use crate::protocol::amf0::{self, Amf0Value};
use crate::protocol::flv::{self, Tag};
use bytes::{Bytes, BytesMut};
use std::fs::File;
use std::io::{self, BufWriter, Seek, SeekFrom, Write};
use std::path::PathBuf;
use std::sync::Arc;

/// The file being written.
struct Open {
    path: PathBuf,
    tmp: PathBuf,
    file: BufWriter<File>,
    /// The stream timestamp that is 0 in this file.
    start_ts: u32,
    last_ts: u32,
    bytes: u64,
    /// File offsets of the 8-byte values of onMetaData's `duration` and `filesize`.
    duration_at: u64,
    filesize_at: u64,
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
        }
    }

    /// Writes one frame at stream time `ts`. Returns the path of a file it closed, if any.
    pub fn handle(&mut self, f: &Frame, ts: u32) -> io::Result<Option<PathBuf>> {
        if f.flags.metadata {
            self.metadata = Some(f.payload.clone());
            return self.write_if_open(f.kind, ts, &f.payload).map(|_| None);
        }
        match f.kind {
            MediaKind::Video => self.has_video = true,
            MediaKind::Audio => self.has_audio = true,
            MediaKind::Data => return self.write_if_open(f.kind, ts, &f.payload).map(|_| None),
        }
        if f.flags.seq_header {
            let slot = if f.kind == MediaKind::Video {
                &mut self.video_header
            } else {
                &mut self.audio_header
            };
            *slot = Some(f.payload.clone());
            return self.write_if_open(f.kind, ts, &f.payload).map(|_| None);
        }
        let keyframe = f.kind == MediaKind::Video && f.flags.keyframe;
        let mut closed = None;
        if let Some(o) = &self.open {
            let elapsed = u64::from(ts.wrapping_sub(o.start_ts));
            if self.cfg.plan == DvrPlan::Segment
                && elapsed >= u64::from(self.cfg.duration) * 1000
                && (keyframe || !self.cfg.wait_keyframe || !self.has_video)
            {
                closed = self.close()?;
                self.cut_anywhere = !self.cfg.wait_keyframe;
            }
        }
        if self.open.is_none() {
            // A file a player can start: from a keyframe when the stream has video.
            if self.has_video && !keyframe && !self.cut_anywhere {
                return Ok(closed);
            }
            self.cut_anywhere = false;
            self.start(ts)?;
        }
        self.write_if_open(f.kind, ts, &f.payload)?;
        Ok(closed)
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
        let file = BufWriter::with_capacity(64 * 1024, File::create(&tmp)?);
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
            start_ts: ts,
            last_ts: ts,
            bytes: 0,
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
        let result = open.file.write_all(&head);
        open.bytes = head.len() as u64;
        log::info!("dvr {}: recording to {}", self.key, open.tmp.display());
        self.open = Some(open);
        result.or_else(|e| self.fail(e))
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
        let mut b = BytesMut::with_capacity(flv::TAG_HEADER_LEN + 4 + payload.len());
        encode(kind, rel, payload.clone(), &mut b);
        o.bytes += b.len() as u64;
        match o.file.write_all(&b) {
            Ok(()) => Ok(()),
            Err(e) => self.fail(e),
        }
    }

    /// Keeps what was written: the partial file is renamed into place, then the error goes up.
    fn fail(&mut self, e: io::Error) -> io::Result<()> {
        if let Some(o) = self.open.take() {
            let _ = std::fs::rename(&o.tmp, &o.path);
            log::warn!(
                "dvr {}: {e}; kept the partial file {}",
                self.key,
                o.path.display()
            );
        }
        Err(e)
    }

    /// Closes the open file: patches duration and size into onMetaData, renames it into place.
    pub fn close(&mut self) -> io::Result<Option<PathBuf>> {
        let Some(o) = self.open.take() else {
            return Ok(None);
        };
        let duration = f64::from(o.last_ts.wrapping_sub(o.start_ts)) / 1000.0;
        let patched = finish_file(o.file, o.duration_at, duration, o.filesize_at, o.bytes);
        // Renamed even when patching failed: the media is there, only the header lacks totals.
        std::fs::rename(&o.tmp, &o.path)?;
        if let Err(e) = patched {
            log::warn!("dvr {}: {}: {e}", self.key, o.path.display());
        }
        log::info!(
            "dvr {}: closed {} ({duration:.1} s, {} bytes)",
            self.key,
            o.path.display(),
            o.bytes
        );
        Ok(Some(o.path))
    }
}

fn finish_file(
    file: BufWriter<File>,
    duration_at: u64,
    duration: f64,
    filesize_at: u64,
    size: u64,
) -> io::Result<()> {
    let mut f = file.into_inner().map_err(|e| e.into_error())?;
    f.seek(SeekFrom::Start(duration_at))?;
    f.write_all(&duration.to_be_bytes())?;
    f.seek(SeekFrom::Start(filesize_at))?;
    f.write_all(&(size as f64).to_be_bytes())?;
    f.sync_data()
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
    who: crate::app::hooks::Who,
) -> Option<crate::app::shared::Finished> {
    if !vhost.dvr.enabled {
        return None;
    }
    let (signal, finished) = crate::app::shared::Finished::pair();
    let mut consumer = source.subscribe(
        crate::app::outputs::hls::queue_limits(),
        crate::app::shared::jitter_mode(vhost.dvr.time_jitter),
    );
    let mut rec = Recorder::new(vhost.dvr.clone(), source.key.clone(), who.param.clone());
    let hooks_cfg = vhost.http_hooks.clone();
    let ctx = ctx.clone();
    let writing = crate::app::shared::Writing::start(&ctx);
    let key = source.key.clone();
    // Logged under the publisher's cid, so one grep follows the stream.
    let cid = crate::app::runtime::log::current_cid();
    tokio::spawn(crate::app::runtime::log::with_cid(cid, async move {
        let _writing = writing;
        // Dropped last, after the last on_dvr is queued.
        let _signal = signal;
        let mut items = Vec::with_capacity(256);
        let mut failed = false;
        'outer: loop {
            consumer.recv(&mut items, 1 << 20).await;
            for item in items.drain(..) {
                match item {
                    Item::Frame(f) if !failed => {
                        let ts = consumer.timestamp(&f);
                        match rec.handle(&f, ts) {
                            Ok(Some(path)) => {
                                crate::app::hooks::on_dvr(&ctx, &hooks_cfg, &who, &path)
                            }
                            Ok(None) => {}
                            Err(e) => {
                                log::error!("dvr {key}: {e}; recording stops for this publish");
                                failed = true;
                            }
                        }
                    }
                    Item::Frame(_) | Item::Published => {}
                    Item::Unpublished => break 'outer,
                }
            }
        }
        match rec.close() {
            Ok(Some(path)) => crate::app::hooks::on_dvr(&ctx, &hooks_cfg, &who, &path),
            Ok(None) => {}
            Err(e) => log::error!("dvr {key}: closing: {e}"),
        }
    }));
    Some(finished)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::flv::FlvDecoder;
    use std::path::Path;

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
            duration,
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
        assert!(r.handle(&key_video(1), 0).is_err());
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
