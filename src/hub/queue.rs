//! A consumer's bounded queue and the pure admission policy that bounds it.
//!
//! The queue is bounded by duration (`queue_length`, as SRS) and by bytes. When a frame would
//! overflow it, everything queued but metadata and sequence headers is dropped, and later
//! frames are skipped until the next video keyframe (or the next audio frame, for an
//! audio-only stream), so the player resumes on a decodable picture. Drops are counted.

use super::frame::Frame;
use crate::protocol::rtmp::chunk::MAX_MESSAGE_LEN;
use std::collections::VecDeque;
use std::sync::Arc;

/// An item a consumer receives.
#[derive(Debug, Clone)]
pub enum Item {
    Frame(Arc<Frame>),
    /// The publisher went away (players get NetStream.Play.UnpublishNotify).
    Unpublished,
    /// A publisher started (players may reset their timeline).
    Published,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueLimits {
    /// Longest span of dts the queue may hold, in ms.
    pub max_duration_ms: i64,
    pub max_bytes: usize,
}

/// The default byte cap of a player's queue: twice the largest message the RTMP layer
/// accepts ([`MAX_MESSAGE_LEN`], 16 MiB), so a queue always holds the largest frame the
/// server took plus what follows it while the player writes it. Payloads are shared between
/// players, so the cap bounds references to the stream's recent frames, not copies.
pub const DEFAULT_MAX_BYTES: usize = 2 * MAX_MESSAGE_LEN as usize;

impl Default for QueueLimits {
    fn default() -> Self {
        QueueLimits {
            max_duration_ms: 10_000,
            max_bytes: DEFAULT_MAX_BYTES,
        }
    }
}

/// The queue state; every method is synchronous and cheap (called under a short lock).
#[derive(Debug, Default)]
pub struct ConsumerQueue {
    items: VecDeque<Item>,
    bytes: usize,
    /// After an overflow, skip frames until a keyframe.
    waiting_keyframe: bool,
    /// The stream has video (so resumption waits for a video keyframe).
    has_video: bool,
    /// Frames dropped so far (never reset).
    pub dropped: u64,
    /// Times the queue overflowed.
    pub overflows: u64,
    /// The stream announced video (onMetaData's `videocodecid`, or a video message): until
    /// this consumer has a video keyframe, audio waits (nginx-rtmp's `wait_video`), so a
    /// player that joins before the first keyframe still finds the video track. Set by the
    /// source before each push.
    pub expects_video: bool,
    /// This consumer got a video keyframe (or gave up waiting for one).
    video_started: bool,
    /// The dts of the first audio frame held back while waiting for video.
    audio_wait_from: Option<i64>,
    /// Audio frames skipped while waiting for the first keyframe (not drops: nothing was
    /// lost to slowness).
    pub skipped_before_video: u64,
}

/// How much audio (in ms of its timestamps) a consumer skips waiting for the video that
/// the metadata announced; past it, audio flows without video (the announcement lied).
/// nginx-rtmp sends audio from the start and its first video at the next keyframe, which
/// with OBS's default 250-frame interval is up to 8.3 s later.
pub const MAX_VIDEO_WAIT_MS: i64 = 10_000;

/// What [`admit`] decided for one frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    Accept,
    /// Skipped: we are waiting for a keyframe after an overflow.
    Skip,
    /// The queue was flushed (keeping headers) before accepting or skipping this frame.
    Overflow,
}

/// The admission policy, a pure function of the queue's span and size and the frame.
pub fn admit(
    waiting_keyframe: bool,
    has_video: bool,
    span_ms: i64,
    bytes: usize,
    frame: &Frame,
    limits: QueueLimits,
) -> Admission {
    let f = frame.flags;
    if f.metadata || f.seq_header {
        return Admission::Accept;
    }
    // An empty queue takes any frame: one larger than the cap goes out alone.
    if span_ms > limits.max_duration_ms
        || (bytes > 0 && bytes + frame.payload.len() > limits.max_bytes)
    {
        return Admission::Overflow;
    }
    if waiting_keyframe {
        let resumes = if has_video {
            frame.is_video() && f.keyframe
        } else {
            frame.is_audio()
        };
        if !resumes {
            return Admission::Skip;
        }
    }
    Admission::Accept
}

impl ConsumerQueue {
    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    fn span_ms(&self, next: &Frame) -> i64 {
        let first = self.items.iter().find_map(|i| match i {
            Item::Frame(f) if !f.flags.seq_header && !f.flags.metadata => Some(f.dts),
            _ => None,
        });
        first.map(|d| next.dts - d).unwrap_or(0)
    }

    /// Pushes a control item (never dropped).
    pub fn push_control(&mut self, item: Item) {
        self.items.push_back(item);
    }

    /// Pushes a frame through the admission policy. Returns the number of frames dropped.
    pub fn push(&mut self, frame: Arc<Frame>, limits: QueueLimits) -> u64 {
        if frame.is_video() {
            self.has_video = true;
            self.video_started |= frame.flags.keyframe;
        }
        if self.expects_video && !self.video_started && frame.is_audio() && !frame.flags.seq_header
        {
            // ffprobe and players decide the tracks from the first seconds: audio alone
            // there makes them report an audio-only stream.
            let from = *self.audio_wait_from.get_or_insert(frame.dts);
            if frame.dts - from <= MAX_VIDEO_WAIT_MS {
                self.skipped_before_video += 1;
                return 0;
            }
            self.video_started = true;
        }
        let mut dropped = 0;
        let mut decision = admit(
            self.waiting_keyframe,
            self.has_video,
            self.span_ms(&frame),
            self.bytes,
            &frame,
            limits,
        );
        if decision == Admission::Overflow {
            dropped += self.flush_to_headers();
            self.overflows += 1;
            self.waiting_keyframe = true;
            // What remains (headers, metadata) is never dropped, so it does not count: a
            // frame larger than the byte cap on its own still goes out, alone. Every size
            // limit on the way to a player agrees with the largest message the RTMP layer
            // accepts (16 MiB); a 9 MB keyframe of a 4K encoder must not silence every player.
            decision = admit(true, self.has_video, 0, 0, &frame, limits);
        }
        match decision {
            Admission::Accept => {
                if self.waiting_keyframe && !frame.flags.seq_header && !frame.flags.metadata {
                    self.waiting_keyframe = false;
                }
                self.bytes += frame.payload.len();
                self.items.push_back(Item::Frame(frame));
            }
            _ => dropped += 1,
        }
        self.dropped += dropped;
        dropped
    }

    /// Drops everything but headers, metadata and control items; returns frames dropped.
    fn flush_to_headers(&mut self) -> u64 {
        let before = self.items.len();
        self.items.retain(|i| match i {
            Item::Frame(f) => f.flags.seq_header || f.flags.metadata,
            _ => true,
        });
        self.bytes = self.items.iter().map(item_bytes).sum();
        (before - self.items.len()) as u64
    }

    /// Moves queued items into `out`, up to about `max_bytes` and at most [`MAX_BATCH_ITEMS`]
    /// (at least one item). A queue that held a burst (a GOP cache, a stall) and is nearly
    /// empty again gives its capacity back ([`shrunk_capacity`]).
    pub fn drain_into(&mut self, out: &mut Vec<Item>, max_bytes: usize) {
        let mut taken = 0;
        let mut count = 0;
        while let Some(item) = self.items.front() {
            let b = item_bytes(item);
            if count > 0 && (taken + b > max_bytes || count >= MAX_BATCH_ITEMS) {
                break;
            }
            count += 1;
            taken += b;
            self.bytes -= b;
            if let Some(i) = self.items.pop_front() {
                out.push(i);
            }
        }
        if let Some(cap) = shrunk_capacity(self.items.len(), self.items.capacity(), QUEUE_KEEP) {
            self.items.shrink_to(cap);
        }
    }
}

/// Items one drain hands out at most: two iovecs each (own header, shared payload), so a
/// batch is one `writev`'s worth (well under IOV_MAX, 1024) and the per-player batch
/// buffers stay small however much was queued.
pub const MAX_BATCH_ITEMS: usize = 64;

/// The capacity a consumer queue keeps between bursts (items; 16 bytes each).
pub const QUEUE_KEEP: usize = 32;

/// The capacity a buffer should shrink to, or `None` to leave it: a buffer holding `len`
/// items whose capacity is more than twice `max(keep, 2 * len)` (it grew for a burst: the
/// GOP cache, a stalled player) goes back to that, so per-player memory returns to its
/// steady size after the burst instead of keeping its peak. Growth is left to the
/// container; a steady load within `2 * keep` never reallocates.
pub fn shrunk_capacity(len: usize, capacity: usize, keep: usize) -> Option<usize> {
    let target = keep.max(len * 2);
    (capacity > target * 2).then_some(target)
}

fn item_bytes(i: &Item) -> usize {
    match i {
        Item::Frame(f) => f.payload.len(),
        _ => 0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::media::MediaKind;
    use bytes::Bytes;

    fn video(dts: i64, key: bool) -> Arc<Frame> {
        let b0 = if key { 0x17 } else { 0x27 };
        Arc::new(Frame::new(
            MediaKind::Video,
            dts,
            dts as u32,
            Bytes::from(vec![b0, 1, 0, 0, 0, 0, 0, 0, 0, 0]),
        ))
    }
    fn seq_header() -> Arc<Frame> {
        Arc::new(Frame::new(
            MediaKind::Video,
            0,
            0,
            Bytes::from_static(&[0x17, 0, 0, 0, 0]),
        ))
    }
    fn audio(dts: i64) -> Arc<Frame> {
        Arc::new(Frame::new(
            MediaKind::Audio,
            dts,
            dts as u32,
            Bytes::from_static(&[0xAF, 1, 0, 0]),
        ))
    }

    const L: QueueLimits = QueueLimits {
        max_duration_ms: 1000,
        max_bytes: 1 << 20,
    };

    #[test]
    fn admission_table() {
        let key = video(0, true);
        let inter = video(0, false);
        let sh = seq_header();
        let a = audio(0);
        // (waiting, has_video, span, bytes, frame, expected)
        let cases: Vec<(bool, bool, i64, usize, &Frame, Admission)> = vec![
            (false, true, 0, 0, &inter, Admission::Accept),
            (false, true, 1001, 0, &inter, Admission::Overflow),
            (false, true, 0, 1 << 20, &inter, Admission::Overflow),
            (true, true, 0, 0, &inter, Admission::Skip),
            (true, true, 0, 0, &a, Admission::Skip),
            (true, true, 0, 0, &key, Admission::Accept),
            (true, false, 0, 0, &a, Admission::Accept),
            (false, true, 5000, 1 << 30, &sh, Admission::Accept),
        ];
        for (w, hv, span, bytes, f, want) in cases {
            assert_eq!(
                admit(w, hv, span, bytes, f, L),
                want,
                "{w} {hv} {span} {bytes} {:?}",
                f.flags
            );
        }
    }

    #[test]
    fn overflow_drops_to_next_keyframe_and_keeps_headers() {
        let mut q = ConsumerQueue::default();
        q.push(seq_header(), L);
        q.push(video(0, true), L);
        for i in 1..=30 {
            q.push(video(i * 40, false), L);
        }
        // 30 * 40 = 1200 ms > 1000: overflowed once.
        assert_eq!(q.overflows, 1);
        assert!(q.dropped > 0);
        // Inter frames are skipped until the keyframe.
        assert_eq!(q.push(video(1300, false), L), 1);
        assert_eq!(q.push(video(1340, true), L), 0);
        let mut out = Vec::new();
        q.drain_into(&mut out, usize::MAX);
        let first_two: Vec<(bool, bool)> = out
            .iter()
            .take(2)
            .map(|i| match i {
                Item::Frame(f) => (f.flags.seq_header, f.flags.keyframe),
                _ => (false, false),
            })
            .collect();
        assert_eq!(first_two[0], (true, false), "header kept first");
        assert_eq!(
            first_two[1],
            (false, true),
            "then the keyframe it resumed on"
        );
        assert_eq!(out.len(), 2, "nothing between or after them");
        assert!(matches!(&out[1], Item::Frame(f) if f.dts == 1340));
        assert_eq!(q.bytes(), 0);
    }

    #[test]
    fn bytes_are_bounded() {
        let limits = QueueLimits {
            max_duration_ms: i64::MAX,
            max_bytes: 1000,
        };
        let mut q = ConsumerQueue::default();
        for i in 0..10_000 {
            q.push(video(i, i % 50 == 0), limits);
            assert!(q.bytes() <= 1000);
        }
        assert!(q.dropped > 9000);
    }

    /// A stream that announced video: audio waits for the first keyframe (a player joining
    /// an nginx-rtmp stream between keyframes must still find its video), at most
    /// MAX_VIDEO_WAIT_MS of audio; a stream without video is not held back.
    #[test]
    fn audio_waits_for_the_first_keyframe_of_announced_video() {
        let mut q = ConsumerQueue {
            expects_video: true,
            ..ConsumerQueue::default()
        };
        q.push(seq_header(), L);
        for i in 0..5 {
            q.push(audio(i * 23), L);
        }
        assert_eq!(q.skipped_before_video, 5);
        assert_eq!(q.len(), 1, "only the sequence header");
        q.push(video(120, true), L);
        q.push(audio(130), L);
        assert_eq!(q.len(), 3, "keyframe, then audio flows");
        assert_eq!(q.dropped, 0, "nothing counted as a drop");

        let mut q = ConsumerQueue {
            expects_video: true,
            ..ConsumerQueue::default()
        };
        q.push(audio(0), L);
        q.push(audio(MAX_VIDEO_WAIT_MS), L);
        q.push(audio(MAX_VIDEO_WAIT_MS + 23), L);
        assert_eq!(q.len(), 1, "the announced video never came: audio flows");

        let mut q = ConsumerQueue::default();
        q.push(audio(0), L);
        assert_eq!(q.len(), 1, "audio-only streams are not held back");
    }

    /// A keyframe larger than the byte cap (a 9 MB 4K scene cut) is still delivered, alone:
    /// the queue drops what it held before it, then takes it.
    #[test]
    fn a_frame_larger_than_the_cap_is_delivered_alone() {
        let limits = QueueLimits {
            max_duration_ms: i64::MAX,
            max_bytes: 1000,
        };
        let mut q = ConsumerQueue::default();
        q.push(seq_header(), limits);
        q.push(video(0, true), limits);
        let mut big = vec![0u8; 5000];
        big[0] = 0x17;
        big[1] = 1;
        let big = Arc::new(Frame::new(MediaKind::Video, 40, 40, Bytes::from(big)));
        q.push(big, limits);
        let mut out = Vec::new();
        q.drain_into(&mut out, usize::MAX);
        let sizes: Vec<usize> = out.iter().map(item_bytes).collect();
        assert_eq!(sizes, vec![5, 5000], "the header, then the big keyframe");
        // And the queue goes on after it.
        assert_eq!(q.push(video(80, false), limits), 0);
    }

    #[test]
    fn shrinks_after_a_burst_only() {
        // (len, capacity, keep, expected)
        let cases = [
            (0, 16, 32, None),        // small: leave it
            (0, 64, 32, None),        // a steady batch's room: leave it
            (0, 65, 32, Some(32)),    // grew past twice keep, empty: back to keep
            (0, 128, 32, Some(32)),   // the GOP burst's room
            (10, 1024, 32, Some(32)), // mostly empty
            (40, 1024, 32, Some(80)), // keeps room for twice what it holds
            (300, 1024, 32, None),    // half full: leave it
            (600, 1024, 32, None),    // still busy: leave it
        ];
        for (len, cap, keep, want) in cases {
            assert_eq!(shrunk_capacity(len, cap, keep), want, "{len} {cap} {keep}");
        }
    }

    #[test]
    fn a_burst_is_drained_in_bounded_batches_and_the_queue_shrinks() {
        let mut q = ConsumerQueue::default();
        for i in 0..1000 {
            q.push(video(i, i % 50 == 0), QueueLimits::default());
        }
        assert!(q.items.capacity() >= 1000);
        let mut out = Vec::new();
        let mut batches = 0;
        while !q.is_empty() {
            out.clear();
            q.drain_into(&mut out, usize::MAX);
            assert!(out.len() <= MAX_BATCH_ITEMS);
            batches += 1;
        }
        assert_eq!(batches, 1000usize.div_ceil(MAX_BATCH_ITEMS));
        assert!(
            q.items.capacity() <= QUEUE_KEEP * 2,
            "{}",
            q.items.capacity()
        );
    }

    #[test]
    fn drain_respects_byte_cap_but_takes_at_least_one() {
        let mut q = ConsumerQueue::default();
        for i in 0..10 {
            q.push(video(i, true), L);
        }
        let mut out = Vec::new();
        q.drain_into(&mut out, 25);
        assert_eq!(out.len(), 2);
        out.clear();
        q.drain_into(&mut out, 1);
        assert_eq!(out.len(), 1);
        assert_eq!(q.len(), 7);
    }
}
