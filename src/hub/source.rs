//! A live stream: its publisher lock, caches and consumers.
//!
//! Contract:
//! - [`Source::publish`] takes the one publisher slot or fails with the current holder's id.
//!   The returned [`Publisher`] pushes frames; dropping it unpublishes.
//! - [`Source::subscribe`] registers a consumer; atomically under the source lock it receives
//!   metadata, sequence headers and the GOP cache, then every live frame: nothing missed,
//!   nothing twice. Dropping the [`Consumer`] unregisters it.
//! - Pushing never waits on a consumer: a short lock, one append to the stream's [`Log`]
//!   whatever the number of consumers, never held across an `.await`. Consumers read the log
//!   through their own [`Reader`] and are woken only when they found it empty.

use super::frame::{Codec, Frame};
use super::jitter::{Rebase, Repair, TimeJitter};
use super::queue::{Batch, Item, Log, QueueLimits, Reader};
use super::wake::{Registered, Wakers, WriteTime};
use super::{Hub, StreamKey};
use crate::protocol::codec_info;
use crate::protocol::media::MediaKind;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};
use std::time::Instant;

/// How a source caches (per vhost, from `[vhost.X.play]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceOptions {
    pub gop_cache: bool,
    /// A GOP longer than this is not cached (SRS's `gop_cache_max_frames`).
    pub gop_cache_max_frames: usize,
    /// Re-order audio and video by timestamp before fan-out (SRS's `mix_correct`), for
    /// encoders that interleave them badly.
    pub mix_correct: bool,
}

impl Default for SourceOptions {
    fn default() -> Self {
        SourceOptions {
            gop_cache: true,
            gop_cache_max_frames: 2500,
            mix_correct: false,
        }
    }
}

/// Frames a pure-audio or pure-video stream holds in the mix queue before it flows (SRS's
/// SRS_MIX_CORRECT_PURE_AV).
const MIX_PURE_AV: usize = 10;

/// SRS's mix queue: holds audio and video until both kinds are present (or one kind alone
/// has piled up), then releases the frame with the lowest timestamp.
#[derive(Default)]
struct MixQueue {
    frames: VecDeque<Arc<Frame>>,
    audios: usize,
    videos: usize,
}

impl MixQueue {
    fn push(&mut self, f: Arc<Frame>) {
        if f.is_video() {
            self.videos += 1;
        } else {
            self.audios += 1;
        }
        // Stable insertion by dts: equal timestamps keep their arrival order.
        let at = self
            .frames
            .iter()
            .rposition(|x| x.dts <= f.dts)
            .map(|i| i + 1)
            .unwrap_or(0);
        self.frames.insert(at, f);
    }

    fn pop(&mut self) -> Option<Arc<Frame>> {
        let ok = (self.videos >= MIX_PURE_AV && self.audios == 0)
            || (self.audios >= MIX_PURE_AV && self.videos == 0)
            || (self.videos >= 1 && self.audios >= 1);
        if !ok {
            return None;
        }
        let f = self.frames.pop_front()?;
        if f.is_video() {
            self.videos -= 1;
        } else {
            self.audios -= 1;
        }
        Some(f)
    }
}

/// Audio frames kept for late joiners of an audio-only stream (SRS keeps 115).
const PURE_AUDIO_GOP: usize = 115;

/// Counters read by logs and the API. 32-bit MIPS has no 64-bit atomics, so byte counters
/// are kept under the source lock instead.
#[derive(Debug, Default, Clone, Copy)]
pub struct SourceStats {
    pub frames: u64,
    pub bytes_in: u64,
    pub video_frames: u64,
    pub audio_frames: u64,
}

/// The tracks a publish session has shown in its frames so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tracks {
    /// The codec of its audio (from the frames' tag headers).
    pub audio: Option<Codec>,
    /// Any video message came (sequence header included).
    pub video: bool,
}

pub struct Source {
    /// A number unique in this process, for the API's stream id.
    pub id: u32,
    pub key: StreamKey,
    hub: Weak<Hub>,
    inner: Mutex<Inner>,
    consumers_count: AtomicUsize,
    publishing: AtomicBool,
    /// Context id of the publisher (0 = none), for the API.
    publisher_cid: AtomicU32,
    /// Counts the times every waiting consumer was taken at once (publish, unpublish):
    /// a consumer's registration made before a change of it may be gone (see [`Armed`]).
    /// Changed under the source's lock.
    drained: AtomicU32,
}

struct Inner {
    opts: SourceOptions,
    publisher: Option<u64>,
    metadata: Option<Arc<Frame>>,
    video_sh: Option<Arc<Frame>>,
    audio_sh: Option<Arc<Frame>>,
    /// The picture size read from the first keyframe since the video sequence header, for a
    /// codec whose record does not carry it (VP9).
    frame_picture_size: Option<(u32, u32)>,
    gop: VecDeque<Arc<Frame>>,
    /// A GOP that grew past the cap stops being cached until the next keyframe.
    gop_overflowed: bool,
    has_video: bool,
    /// What this publish session's media frames showed (sequence headers included).
    tracks: Tracks,
    /// The stream announced video (metadata) or sent some: consumers hold audio back until
    /// their first keyframe (see [`Reader`]).
    expects_video: bool,
    repair: Repair,
    mix: MixQueue,
    /// The frames and control items every consumer reads.
    log: Log,
    /// The log's length at which it is next trimmed.
    trim_at: usize,
    /// Consumers waiting for an append.
    wakers: Wakers,
    consumers: Vec<Arc<ConsumerShared>>,
    next_consumer: u64,
    stats: SourceStats,
}

/// Appends between two trims of a log (each trim reads every consumer's cursor).
const TRIM_EVERY: usize = 32;

pub struct ConsumerShared {
    id: u64,
    limits: QueueLimits,
    /// The reader's cursor, for trimming the log without taking the reader's lock (the
    /// low bits of the entry number: the log is far shorter than `usize::MAX`).
    cursor: AtomicUsize,
    /// The reader, locked only by its consumer (and never while the source is locked by
    /// someone else: the consumer takes its reader, then the source).
    reader: Mutex<ReaderSlot>,
}

struct ReaderSlot {
    reader: Reader,
    /// Where this consumer's waker is registered with the source.
    registered: Registered,
    /// A merged write's wait this consumer registered (see [`Armed`]).
    armed: Option<Armed>,
}

/// A merged write's wait registered with the source: until `at`, nothing takes it from the
/// source's list but a publish or unpublish (which bumps `Source::drained`), so a poll before
/// `at` with the same waker and the same count is answered `Pending` without the source's
/// lock — the poll that follows every player's write.
struct Armed {
    at: std::time::Instant,
    drained: u32,
    waker: Waker,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BusyError {
    pub publisher: u64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock must not take every stream down with it.
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Source {
    pub(super) fn new(id: u32, key: StreamKey, hub: Weak<Hub>, opts: SourceOptions) -> Source {
        Source {
            id,
            key,
            hub,
            inner: Mutex::new(Inner {
                opts,
                publisher: None,
                metadata: None,
                video_sh: None,
                audio_sh: None,
                frame_picture_size: None,
                gop: VecDeque::new(),
                gop_overflowed: false,
                has_video: false,
                tracks: Tracks::default(),
                expects_video: false,
                repair: Repair::default(),
                mix: MixQueue::default(),
                log: Log::default(),
                trim_at: TRIM_EVERY,
                wakers: Wakers::default(),
                consumers: Vec::new(),
                next_consumer: 1,
                stats: SourceStats::default(),
            }),
            consumers_count: AtomicUsize::new(0),
            publishing: AtomicBool::new(false),
            publisher_cid: AtomicU32::new(0),
            drained: AtomicU32::new(0),
        }
    }

    pub fn is_publishing(&self) -> bool {
        self.publishing.load(Ordering::Acquire)
    }

    pub fn publisher_cid(&self) -> u32 {
        self.publisher_cid.load(Ordering::Relaxed)
    }

    pub fn consumer_count(&self) -> usize {
        self.consumers_count.load(Ordering::Relaxed)
    }

    pub fn stats(&self) -> SourceStats {
        lock(&self.inner).stats
    }

    /// The cached onMetaData body, if the publisher sent one.
    pub fn metadata(&self) -> Option<Bytes> {
        lock(&self.inner)
            .metadata
            .as_ref()
            .map(|f| f.payload.clone())
    }

    /// The cached sequence-header frames (video, audio), for codec info in the API.
    pub fn sequence_headers(&self) -> (Option<Arc<Frame>>, Option<Arc<Frame>>) {
        let i = lock(&self.inner);
        (i.video_sh.clone(), i.audio_sh.clone())
    }

    /// Payload bytes the stream holds for its consumers (its log: shared, never copied per
    /// consumer), bounded by the longest `QueueLimits` of a consumer within them.
    pub fn retained_bytes(&self) -> u64 {
        lock(&self.inner).log.retained_bytes()
    }

    /// The picture size (width, height in pixels) of the first keyframe since the video
    /// sequence header, for a codec whose record does not carry it (VP9: read from the
    /// keyframe's uncompressed header); `None` for other codecs and until such a keyframe came.
    pub fn frame_picture_size(&self) -> Option<(u32, u32)> {
        lock(&self.inner).frame_picture_size
    }

    /// The tracks this publish session has shown so far (none before its first frame).
    pub fn tracks(&self) -> Tracks {
        lock(&self.inner).tracks
    }

    /// Applies new per-vhost options (reload).
    pub fn set_options(&self, opts: SourceOptions) {
        let mut i = lock(&self.inner);
        if !opts.gop_cache {
            i.gop.clear();
        }
        i.opts = opts;
    }

    /// Takes the publisher slot. `id` identifies the publisher (its connection's context id).
    pub fn publish(self: &Arc<Self>, id: u32) -> Result<Publisher, BusyError> {
        let mut i = lock(&self.inner);
        if let Some(p) = i.publisher {
            return Err(BusyError { publisher: p });
        }
        i.publisher = Some(id as u64);
        i.repair = Repair::default();
        i.mix = MixQueue::default();
        i.metadata = None;
        i.video_sh = None;
        i.audio_sh = None;
        i.gop.clear();
        i.has_video = false;
        i.tracks = Tracks::default();
        i.expects_video = false;
        i.log.push_control(Item::Published);
        let woken = self.take_all_wakers(&mut i);
        self.publishing.store(true, Ordering::Release);
        self.publisher_cid.store(id, Ordering::Relaxed);
        drop(i);
        woken.into_iter().for_each(Waker::wake);
        Ok(Publisher {
            source: self.clone(),
        })
    }

    fn unpublish(&self) {
        {
            let mut i = lock(&self.inner);
            i.publisher = None;
            // The caches belong to this publish session; a new publisher may change codecs.
            i.metadata = None;
            i.video_sh = None;
            i.audio_sh = None;
            i.gop.clear();
            i.tracks = Tracks::default();
            i.expects_video = false;
            i.log.push_control(Item::Unpublished);
            let woken = self.take_all_wakers(&mut i);
            self.publishing.store(false, Ordering::Release);
            self.publisher_cid.store(0, Ordering::Relaxed);
            drop(i);
            woken.into_iter().for_each(Waker::wake);
        }
        self.release_if_idle();
    }

    /// Takes every waiting consumer's waker (under the source's lock), counted in
    /// `drained`.
    fn take_all_wakers(&self, i: &mut Inner) -> Vec<Waker> {
        self.drained.fetch_add(1, Ordering::Release);
        i.wakers.take_all()
    }

    fn release_if_idle(&self) {
        if let Some(hub) = self.hub.upgrade() {
            hub.release(&self.key);
        }
    }

    /// True when neither a publisher nor a consumer holds the source.
    pub(super) fn is_idle(&self) -> bool {
        let i = lock(&self.inner);
        i.publisher.is_none() && i.consumers.is_empty()
    }

    /// Registers a consumer and primes its queue with what a late joiner needs.
    pub fn subscribe(self: &Arc<Self>, limits: QueueLimits, jitter: TimeJitter) -> Consumer {
        let mut i = lock(&self.inner);
        let id = i.next_consumer;
        i.next_consumer += 1;
        let headers = [&i.metadata, &i.video_sh, &i.audio_sh];
        let reader = Reader::new(
            &i.log,
            limits,
            headers.into_iter().flatten(),
            &i.gop,
            i.expects_video,
        );
        let shared = Arc::new(ConsumerShared {
            id,
            limits,
            cursor: AtomicUsize::new(reader.cursor() as usize),
            reader: Mutex::new(ReaderSlot {
                reader,
                registered: Registered::No,
                armed: None,
            }),
        });
        i.consumers.push(shared.clone());
        self.consumers_count
            .store(i.consumers.len(), Ordering::Relaxed);
        drop(i);
        Consumer {
            shared,
            source: self.clone(),
            rebase: Rebase::new(jitter),
        }
    }

    fn unsubscribe(&self, id: u64) {
        {
            let mut i = lock(&self.inner);
            i.consumers.retain(|c| c.id != id);
            self.consumers_count
                .store(i.consumers.len(), Ordering::Relaxed);
        }
        self.release_if_idle();
    }

    fn push(&self, kind: MediaKind, raw_ts: u32, payload: Bytes) {
        let mut i = lock(&self.inner);
        let k = match kind {
            MediaKind::Audio => 0,
            MediaKind::Video => 1,
            MediaKind::Data => 2,
        };
        let (dts, delta) = i.repair.map_with_delta(raw_ts, k);
        let frame = Arc::new(Frame::new(kind, dts, raw_ts, payload).with_delta(delta));
        i.stats.frames += 1;
        i.stats.bytes_in += frame.payload.len() as u64;
        match kind {
            MediaKind::Video => i.stats.video_frames += 1,
            MediaKind::Audio => i.stats.audio_frames += 1,
            MediaKind::Data => {}
        }
        // Sequence headers and metadata never wait in the mix queue: they describe what
        // follows and carry no timing that matters.
        if i.opts.mix_correct && kind != MediaKind::Data && !frame.flags.seq_header {
            i.mix.push(frame);
            while let Some(f) = i.mix.pop() {
                Self::distribute(&mut i, f);
            }
        } else {
            Self::distribute(&mut i, frame);
        }
        if i.log.len() >= i.trim_at {
            Self::trim(&mut i);
        }
        let mut now = None;
        let head = i.log.head();
        if !i.wakers.has_due(head, || *now.insert(Instant::now())) {
            return;
        }
        let woken = i.wakers.take_due(head, now.unwrap_or_else(Instant::now));
        drop(i);
        woken.into_iter().for_each(Waker::wake);
    }

    /// Wakes the consumers whose merged-write time came (see [`super::wake`]).
    pub(super) fn wake_due(&self, now: Instant) {
        let mut due = Vec::new();
        lock(&self.inner).wakers.take_deferred(now, &mut due);
        due.into_iter().for_each(Waker::wake);
    }

    /// Drops the log entries that no consumer within its limits still has to read (one
    /// beyond them skips ahead when it reads: see [`Reader`]).
    fn trim(i: &mut Inner) {
        let head = i.log.head();
        let mut keep_from = head;
        for c in &i.consumers {
            let behind = (head as usize).wrapping_sub(c.cursor.load(Ordering::Relaxed));
            if behind > i.log.len() {
                continue;
            }
            let seq = head - behind as u64;
            if seq < keep_from && i.log.within(seq, c.limits) {
                keep_from = seq;
            }
        }
        i.log.trim_to(keep_from);
        i.trim_at = i.log.len() + TRIM_EVERY;
    }

    /// Caches a frame as needed and pushes it to every consumer.
    fn distribute(i: &mut Inner, frame: Arc<Frame>) {
        let f = frame.flags;
        let kind = frame.kind;
        match (kind, frame.payload.is_empty()) {
            (MediaKind::Audio, false) => i.tracks.audio = Some(frame.codec()),
            (MediaKind::Video, false) => {
                i.tracks.video = true;
                i.expects_video = true;
            }
            _ => {}
        }
        if f.metadata && super::frame::metadata_announces_video(&frame.payload) {
            i.expects_video = true;
        }
        if f.metadata {
            i.metadata = Some(frame.clone());
        } else if f.seq_header && kind == MediaKind::Video {
            i.video_sh = Some(frame.clone());
            i.frame_picture_size = None;
        } else if f.seq_header && kind == MediaKind::Audio {
            i.audio_sh = Some(frame.clone());
        } else if i.opts.gop_cache && kind != MediaKind::Data {
            Self::cache_gop(i, &frame);
        }
        if f.keyframe && i.frame_picture_size.is_none() {
            // A codec check, or a few bytes read, until one keyframe gave a size.
            i.frame_picture_size = codec_info::frame_picture_size(&frame.tag, frame.data());
        }
        let expects_video = i.expects_video;
        i.log.push_frame(frame, expects_video);
    }

    fn cache_gop(i: &mut Inner, frame: &Arc<Frame>) {
        if frame.is_video() {
            i.has_video = true;
            if frame.flags.keyframe {
                i.gop.clear();
                i.gop_overflowed = false;
            }
        }
        if i.gop_overflowed {
            return;
        }
        if !i.has_video {
            // Audio-only: keep the last few frames so a player starts with sound at once.
            i.gop.push_back(frame.clone());
            while i.gop.len() > PURE_AUDIO_GOP {
                i.gop.pop_front();
            }
            return;
        }
        // A GOP must start on a keyframe; until one came, there is nothing to cache.
        if i.gop.is_empty() && !frame.flags.keyframe {
            return;
        }
        i.gop.push_back(frame.clone());
        if i.gop.len() > i.opts.gop_cache_max_frames {
            i.gop.clear();
            i.gop_overflowed = true;
        }
    }
}

/// The publisher's handle. Dropping it unpublishes the stream, whatever way the publisher left.
pub struct Publisher {
    source: Arc<Source>,
}

impl Publisher {
    pub fn source(&self) -> &Arc<Source> {
        &self.source
    }

    /// Pushes one frame with the publisher's 32-bit timestamp.
    pub fn push(&self, kind: MediaKind, timestamp: u32, payload: Bytes) {
        self.source.push(kind, timestamp, payload);
    }
}

impl Drop for Publisher {
    fn drop(&mut self) {
        self.source.unpublish();
    }
}

/// A consumer's handle: drains its queue; rebases timestamps for its player.
pub struct Consumer {
    shared: Arc<ConsumerShared>,
    source: Arc<Source>,
    rebase: Rebase,
}

impl Consumer {
    pub fn source(&self) -> &Arc<Source> {
        &self.source
    }

    /// Waits until at least one item is there, then moves up to ~`max_bytes` (and at most
    /// `queue::MAX_BATCH_ITEMS`) into `out`.
    /// Returns whether more was left to read ([`Batch::more`]).
    pub async fn recv(&self, out: &mut Vec<Item>, max_bytes: usize) -> bool {
        self.recv_at(out, max_bytes, None).await
    }

    /// [`Consumer::recv`] that reads nothing before `not_before`; then the stream's first
    /// append at or after it wakes the task. A file writer that gathers a tenth of a second
    /// per wake-up is woken ten times a second, not once per frame.
    pub async fn recv_at(
        &self,
        out: &mut Vec<Item>,
        max_bytes: usize,
        not_before: Option<Instant>,
    ) -> bool {
        let mut batch = Batch::from_vec(std::mem::take(out));
        let when = not_before.map(WriteTime::at);
        std::future::poll_fn(|cx| self.poll(cx, &mut batch, max_bytes, when, false, &|_| None))
            .await;
        let more = batch.more();
        *out = batch.into_vec();
        more
    }

    /// Moves what is there (up to ~`max_bytes`) into `out` without waiting; returns the count.
    pub fn try_recv(&self, out: &mut Vec<Item>, max_bytes: usize) -> usize {
        let mut slot = lock(&self.shared.reader);
        let mut i = lock(&self.source.inner);
        let mut batch = Batch::from_vec(std::mem::take(out));
        let n = self.read(&mut slot, &mut i, &mut batch, max_bytes, false);
        *out = batch.into_vec();
        n
    }

    /// The next batch for a player or viewer, as a poll: `Ready` with items moved into
    /// `out` (a run in step with the stream shared with the other readers: see [`Batch`]),
    /// or `Pending` with the task's waker registered with the source (under its lock, so an
    /// append in between is not missed) until the next append. With `when` (a merged write's
    /// time and message count), it reads nothing before that time and is woken by the first
    /// append at or after it that leaves enough to read ([`WriteTime`]): no timer of its
    /// own. A publish or unpublish event is read at once. One consumer is polled by one task.
    ///
    /// `then` gives, from the time of a read that took everything, the merged write's time
    /// that will follow it: the wait for it is registered under the read's lock, and the
    /// poll after the write (with that time as `when`) takes no lock of the source.
    pub fn poll_batch(
        &self,
        cx: &mut Context<'_>,
        out: &mut Batch,
        max_bytes: usize,
        when: Option<WriteTime>,
        then: &dyn Fn(Instant) -> Option<WriteTime>,
    ) -> Poll<()> {
        self.poll(cx, out, max_bytes, when, true, then)
    }

    fn poll(
        &self,
        cx: &mut Context<'_>,
        out: &mut Batch,
        max_bytes: usize,
        when: Option<WriteTime>,
        share: bool,
        then: &dyn Fn(Instant) -> Option<WriteTime>,
    ) -> Poll<()> {
        let mut slot = lock(&self.shared.reader);
        if let (Some(w), Some(a)) = (when, &slot.armed) {
            if a.at == w.at
                && a.drained == self.source.drained.load(Ordering::Acquire)
                && a.waker.will_wake(cx.waker())
                && Instant::now() < w.at
            {
                return Poll::Pending;
            }
        }
        let mut i = lock(&self.source.inner);
        let slot = &mut *slot;
        let cursor = slot.reader.cursor();
        // One clock read serves the wait's check and the next write's time.
        let mut read_at = None;
        if let Some(w) = when.filter(|_| !i.log.control_pending(cursor)) {
            let now = *read_at.insert(Instant::now());
            if now < w.at {
                self.arm(slot, &mut i, w.at, cx.waker());
                return Poll::Pending;
            }
            // Unread entries (more for a reader that fell out of the log: it reads).
            let unread = i.log.head().saturating_sub(cursor);
            if now < w.until && unread <= u64::from(w.more_than) {
                let seq = cursor + u64::from(w.more_than) + 1;
                i.wakers
                    .wait_count(&mut slot.registered, seq, w.until, cx.waker());
                return Poll::Pending;
            }
        }
        if self.read(slot, &mut i, out, max_bytes, share) > 0 {
            if !out.more() {
                let now = read_at.unwrap_or_else(Instant::now);
                if let Some(next) = then(now).filter(|t| now < t.at) {
                    self.arm(slot, &mut i, next.at, cx.waker());
                    out.armed = true;
                }
            }
            return Poll::Ready(());
        }
        i.wakers.wait(&mut slot.registered, cx.waker());
        Poll::Pending
    }

    /// Registers a merged write's wait until `at` (under the source's lock) and remembers it
    /// (see [`Armed`]).
    fn arm(&self, slot: &mut ReaderSlot, i: &mut Inner, at: Instant, waker: &Waker) {
        i.wakers.wait_until(&mut slot.registered, at, waker);
        let drained = self.source.drained.load(Ordering::Acquire);
        match &mut slot.armed {
            Some(a) if a.waker.will_wake(waker) => {
                a.at = at;
                a.drained = drained;
            }
            armed => {
                *armed = Some(Armed {
                    at,
                    drained,
                    waker: waker.clone(),
                })
            }
        }
    }

    fn read(
        &self,
        slot: &mut ReaderSlot,
        i: &mut Inner,
        out: &mut Batch,
        max: usize,
        share: bool,
    ) -> usize {
        let before = out.len();
        let headers = [
            i.metadata.as_ref(),
            i.video_sh.as_ref(),
            i.audio_sh.as_ref(),
        ];
        slot.reader.read(&mut i.log, headers, out, max, share);
        out.dropped = slot.reader.dropped;
        out.armed = false;
        self.shared
            .cursor
            .store(slot.reader.cursor() as usize, Ordering::Relaxed);
        out.len() - before
    }

    /// Frames dropped for this consumer so far (counted when it reads).
    pub fn dropped(&self) -> u64 {
        lock(&self.shared.reader).reader.dropped
    }

    /// The timestamp this consumer sends for `frame`.
    ///
    /// onMetaData goes out at 0 on a rebased timeline, also after a republish: ffmpeg's FLV
    /// reader skips an onMetaData stamped 0 but opens a "Subtitle: text" stream for one
    /// stamped later, and the tag carries no timing that matters.
    #[inline(always)]
    pub fn timestamp(&mut self, frame: &Frame) -> u32 {
        if frame.flags.metadata && self.rebase.mode() != TimeJitter::Off {
            return 0;
        }
        let anchor = !frame.flags.seq_header && !frame.flags.metadata;
        self.rebase.map(frame.dts, frame.raw_ts, anchor)
    }

    /// Restarts the timeline (on a new publish).
    pub fn reset_timeline(&mut self) {
        self.rebase.reset();
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.source.unsubscribe(self.shared.id);
    }
}
