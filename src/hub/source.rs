//! A live stream: its publisher lock, caches and consumers.
//!
//! Contract:
//! - [`Source::publish`] takes the one publisher slot or fails with the current holder's id.
//!   The returned [`Publisher`] pushes frames; dropping it unpublishes.
//! - [`Source::subscribe`] registers a consumer; atomically under the source lock it receives
//!   metadata, sequence headers and the GOP cache, then every live frame: nothing missed,
//!   nothing twice. Dropping the [`Consumer`] unregisters it.
//! - Pushing never waits on a consumer: a short lock, O(consumers) non-blocking queue pushes,
//!   never held across an `.await`.

use super::frame::{Codec, Frame};
use super::jitter::{Rebase, Repair, TimeJitter};
use super::queue::{ConsumerQueue, Item, QueueLimits};
use super::{Hub, StreamKey};
use crate::protocol::codec_info;
use crate::protocol::media::MediaKind;
use bytes::Bytes;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Weak};
use std::task::{Context, Poll, Waker};

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
    /// their first keyframe (see `ConsumerQueue::expects_video`).
    expects_video: bool,
    repair: Repair,
    mix: MixQueue,
    consumers: Vec<Arc<ConsumerShared>>,
    next_consumer: u64,
    stats: SourceStats,
}

pub struct ConsumerShared {
    id: u64,
    /// The queue and the waker of the consumer's task when it found the queue empty: one
    /// lock for both, so a push takes one uncontended lock and wakes the task only when it
    /// waits (at most one wake-up per push, none while the task is busy writing).
    queue: Mutex<Waiting>,
    limits: QueueLimits,
}

/// A consumer's queue and its waiting task.
#[derive(Default)]
struct Waiting {
    queue: ConsumerQueue,
    waker: Option<Waker>,
}

impl ConsumerShared {
    /// Runs `f` on the queue, then wakes the consumer's task if it waits and `wake` says so.
    fn with_queue<R>(
        &self,
        wake: impl FnOnce(&R) -> bool,
        f: impl FnOnce(&mut ConsumerQueue) -> R,
    ) -> R {
        let mut w = lock(&self.queue);
        let r = f(&mut w.queue);
        let waker = if wake(&r) { w.waker.take() } else { None };
        drop(w);
        if let Some(waker) = waker {
            waker.wake();
        }
        r
    }
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
                consumers: Vec::new(),
                next_consumer: 1,
                stats: SourceStats::default(),
            }),
            consumers_count: AtomicUsize::new(0),
            publishing: AtomicBool::new(false),
            publisher_cid: AtomicU32::new(0),
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

    /// The picture size (width, height in pixels) of the first keyframe since the video
    /// sequence header, for a codec whose record does not carry it (VP9: read from the
    /// keyframe's uncompressed header); `None` for other codecs and until such a keyframe came.
    pub fn frame_picture_size(&self) -> Option<(u32, u32)> {
        lock(&self.inner).frame_picture_size
    }

    /// The bytes each consumer has queued now (frames waiting for its writer), in
    /// subscription order: what a slow player holds of the stream, bounded by its
    /// `QueueLimits`.
    pub fn queued_bytes(&self) -> Vec<usize> {
        lock(&self.inner)
            .consumers
            .iter()
            .map(|c| lock(&c.queue).queue.bytes())
            .collect()
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
        for c in &i.consumers {
            c.with_queue(|_| true, |q| q.push_control(Item::Published));
        }
        self.publishing.store(true, Ordering::Release);
        self.publisher_cid.store(id, Ordering::Relaxed);
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
            for c in &i.consumers {
                c.with_queue(|_| true, |q| q.push_control(Item::Unpublished));
            }
            self.publishing.store(false, Ordering::Release);
            self.publisher_cid.store(0, Ordering::Relaxed);
        }
        self.release_if_idle();
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
        let mut q = ConsumerQueue::default();
        q.expects_video = i.expects_video;
        let headers = [&i.metadata, &i.video_sh, &i.audio_sh];
        for f in headers.into_iter().flatten() {
            q.push(f.clone(), limits);
        }
        for f in &i.gop {
            q.push(f.clone(), limits);
        }
        let shared = Arc::new(ConsumerShared {
            id,
            queue: Mutex::new(Waiting {
                queue: q,
                waker: None,
            }),
            limits,
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
        let dts = i.repair.map(raw_ts, k);
        let frame = Arc::new(Frame::new(kind, dts, raw_ts, payload));
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
        for c in &i.consumers {
            c.with_queue(
                |dropped| *dropped == 0,
                |q| {
                    q.expects_video = expects_video;
                    q.push(frame.clone(), c.limits)
                },
            );
        }
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

    /// Waits until at least one item is queued, then moves up to ~`max_bytes` (and at most
    /// `queue::MAX_BATCH_ITEMS`) into `out`.
    pub async fn recv(&self, out: &mut Vec<Item>, max_bytes: usize) {
        std::future::poll_fn(|cx| self.poll_recv(cx, out, max_bytes)).await
    }

    /// [`Consumer::recv`] as a poll: `Ready` with items moved into `out`, or `Pending` with
    /// the task's waker stored under the queue's lock (so a push in between is not missed).
    pub fn poll_recv(
        &self,
        cx: &mut Context<'_>,
        out: &mut Vec<Item>,
        max_bytes: usize,
    ) -> Poll<()> {
        let mut w = lock(&self.shared.queue);
        let before = out.len();
        w.queue.drain_into(out, max_bytes);
        if out.len() > before {
            return Poll::Ready(());
        }
        match &mut w.waker {
            Some(waker) => waker.clone_from(cx.waker()),
            slot => *slot = Some(cx.waker().clone()),
        }
        Poll::Pending
    }

    /// Moves what is queued (up to ~`max_bytes`) into `out` without waiting; returns the count.
    pub fn try_recv(&self, out: &mut Vec<Item>, max_bytes: usize) -> usize {
        let before = out.len();
        lock(&self.shared.queue).queue.drain_into(out, max_bytes);
        out.len() - before
    }

    /// Frames dropped for this consumer so far.
    pub fn dropped(&self) -> u64 {
        lock(&self.shared.queue).queue.dropped
    }

    /// The timestamp this consumer sends for `frame`.
    ///
    /// onMetaData goes out at 0 on a rebased timeline, also after a republish: ffmpeg's FLV
    /// reader skips an onMetaData stamped 0 but opens a "Subtitle: text" stream for one
    /// stamped later, and the tag carries no timing that matters.
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
