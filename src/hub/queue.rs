//! The stream's shared log and each consumer's reader over it (DESIGN.md §2).
//!
//! The publisher appends every frame once to its source's [`Log`]; each consumer (RTMP
//! player, HTTP viewer, HLS, DVR, forward) reads it through a [`Reader`]: a cursor and the
//! drop policy. A consumer's backlog is bounded by duration (`queue_length`, as SRS) and by
//! bytes: one that falls further behind skips ahead to a keyframe, keeping metadata and
//! sequence headers, so the player resumes on a decodable picture. Drops are counted.

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

/// How much audio (in ms of its timestamps) a consumer skips waiting for the video that
/// the metadata announced; past it, audio flows without video (the announcement lied).
/// nginx-rtmp sends audio from the start and its first video at the next keyframe, which
/// with OBS's default 250-frame interval is up to 8.3 s later.
pub const MAX_VIDEO_WAIT_MS: i64 = 10_000;

/// Entries a stream's log holds at most, whatever its timestamps say (a publisher that
/// stamps every frame 0 spans no time at all): 16,384 entries of 40 bytes, about two
/// minutes of a 60 fps stream with audio.
pub const MAX_LOG_ENTRIES: usize = 16_384;

/// The capacity a stream's log keeps between bursts (entries).
const LOG_KEEP: usize = 256;

/// One appended item of a stream's [`Log`].
#[derive(Debug)]
struct Entry {
    item: Item,
    /// Payload bytes appended before this entry (the log's running total then).
    bytes_before: u64,
    /// The source expected video when it was appended (a reader holds audio back until its
    /// first video keyframe then: see [`Reader`]).
    expects_video: bool,
    /// The publish session it belongs to (incremented by each [`Item::Published`]).
    session: u32,
}

/// A stream's shared log of recent frames and control items: the publisher appends each
/// once, and every consumer reads it through its own [`Reader`], so a frame costs the
/// publisher the same with one consumer or a thousand (no per-consumer queue, lock or
/// reference count). Entries are numbered from 0 for the source's life; the source trims
/// what every reader within its limits has passed ([`Log::trim_to`]).
#[derive(Debug, Default)]
pub struct Log {
    entries: VecDeque<Entry>,
    /// The number of `entries[0]`.
    first: u64,
    /// Payload bytes ever appended.
    total_bytes: u64,
    /// The dts of the newest media frame, in ms.
    last_dts: i64,
    /// The current publish session.
    session: u32,
    /// One past the number of the newest control item (0: none yet).
    control_end: u64,
    /// The run of entries the last reader took whole, from the entry numbered `.0`, shared
    /// with every reader at the same place (see [`Batch`]).
    memo: Option<(u64, Arc<[Item]>, RunPolicy)>,
}

/// What a reader's drop policy needs of a run of entries, worked out once per run for every
/// reader in step (see `Reader::in_step`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct RunPolicy {
    /// A video frame is in the run.
    video: bool,
    /// A video keyframe is in the run.
    keyframe: bool,
    /// An audio frame (not a sequence header) of a stream that expects video comes before
    /// the run's first keyframe: a reader whose video has not started would hold it back.
    audio_before_keyframe: bool,
    /// The publish session of the run's last control entry.
    session: Option<u32>,
}

impl RunPolicy {
    fn of<'a>(entries: impl Iterator<Item = &'a Entry>) -> RunPolicy {
        let mut p = RunPolicy::default();
        for e in entries {
            match &e.item {
                Item::Frame(f) if f.is_video() => {
                    p.video = true;
                    p.keyframe |= f.flags.keyframe;
                }
                Item::Frame(f) => {
                    p.audio_before_keyframe |=
                        f.is_audio() && e.expects_video && !p.keyframe && !f.flags.seq_header;
                }
                _ => p.session = Some(e.session),
            }
        }
        p
    }
}

impl Log {
    /// The number the next entry will get (one past the newest).
    pub fn head(&self) -> u64 {
        self.first + self.entries.len() as u64
    }

    /// The number of the oldest entry still held.
    pub fn first(&self) -> u64 {
        self.first
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Payload bytes the log holds (shared with every consumer, not copied per consumer).
    pub fn retained_bytes(&self) -> u64 {
        self.entries
            .front()
            .map_or(0, |e| self.total_bytes - e.bytes_before)
    }

    fn get(&self, seq: u64) -> Option<&Entry> {
        let i = usize::try_from(seq.checked_sub(self.first)?).ok()?;
        self.entries.get(i)
    }

    /// Payload bytes from entry `seq` to the head (all the log holds for an older `seq`).
    pub fn bytes_from(&self, seq: u64) -> u64 {
        match self.get(seq) {
            Some(e) => self.total_bytes - e.bytes_before,
            None if seq >= self.head() => 0,
            None => self.retained_bytes(),
        }
    }

    /// The span of dts from the first media frame at or after `seq` to the newest, in ms
    /// (metadata, sequence headers and control items carry no time that counts).
    fn span_from(&self, seq: u64) -> i64 {
        let skip = usize::try_from(seq.saturating_sub(self.first)).unwrap_or(usize::MAX);
        let first_dts = self.entries.iter().skip(skip).find_map(|e| match &e.item {
            Item::Frame(f) if !f.flags.seq_header && !f.flags.metadata => Some(f.dts),
            _ => None,
        });
        first_dts.map_or(0, |d| self.last_dts.saturating_sub(d))
    }

    /// Whether a reader at `seq` is within `limits`: what it has left to read spans at most
    /// `max_duration_ms` of media and `max_bytes` (a single entry left may be larger: a
    /// frame over the cap goes out alone). A reader behind the log's start is not.
    pub fn within(&self, seq: u64, limits: QueueLimits) -> bool {
        if seq < self.first {
            return false;
        }
        let left = self.head().saturating_sub(seq);
        left == 0
            || (self.span_from(seq) <= limits.max_duration_ms
                && (left == 1 || self.bytes_from(seq) <= limits.max_bytes as u64))
    }

    /// Appends a frame; `expects_video` is the source's state for it (see [`Reader`]).
    pub fn push_frame(&mut self, frame: Arc<Frame>, expects_video: bool) {
        let bytes = frame.payload.len() as u64;
        if !frame.flags.seq_header && !frame.flags.metadata {
            self.last_dts = frame.dts;
        }
        self.push(Item::Frame(frame), expects_video);
        self.total_bytes += bytes;
    }

    /// Appends a control item; [`Item::Published`] starts a new publish session.
    pub fn push_control(&mut self, item: Item) {
        if matches!(item, Item::Published) {
            self.session = self.session.wrapping_add(1);
        }
        self.push(item, false);
        self.control_end = self.head();
    }

    /// Whether a reader at `seq` has a publish or unpublish event still to read: it reads
    /// at once, whatever time its merged write is due (the end of a publish must reach
    /// the HLS and DVR writers and the players without delay).
    pub fn control_pending(&self, seq: u64) -> bool {
        seq < self.control_end
    }

    fn push(&mut self, item: Item, expects_video: bool) {
        self.entries.push_back(Entry {
            item,
            bytes_before: self.total_bytes,
            expects_video,
            session: self.session,
        });
        if self.entries.len() > MAX_LOG_ENTRIES {
            self.trim_to(self.first + 1);
        }
    }

    /// The entries from `from` to the head as one shared run, and what the drop policy needs
    /// of it: the memo when the last run was this one, else a new run that becomes the memo.
    fn run(&mut self, from: u64) -> (Arc<[Item]>, RunPolicy) {
        let head = self.head();
        if let Some((start, run, policy)) = &self.memo {
            if *start == from && start + run.len() as u64 == head {
                return (run.clone(), *policy);
            }
        }
        let skip = usize::try_from(from.saturating_sub(self.first)).unwrap_or(usize::MAX);
        let run: Arc<[Item]> = self
            .entries
            .iter()
            .skip(skip)
            .map(|e| e.item.clone())
            .collect();
        let policy = RunPolicy::of(self.entries.iter().skip(skip));
        self.memo = Some((from, run.clone(), policy));
        (run, policy)
    }

    /// Drops the entries numbered below `seq`, and gives back the room of a burst.
    pub fn trim_to(&mut self, seq: u64) {
        while self.first < seq && self.entries.pop_front().is_some() {
            self.first += 1;
        }
        if self
            .memo
            .as_ref()
            .is_some_and(|(start, _, _)| *start < self.first)
        {
            self.memo = None;
        }
        if let Some(cap) = shrunk_capacity(self.entries.len(), self.entries.capacity(), LOG_KEEP) {
            self.entries.shrink_to(cap);
        }
    }
}

/// One consumer's place in its stream's [`Log`] and its drop policy (SRS's consumer queue,
/// applied when the consumer reads):
/// - A joining reader gets metadata, the sequence headers and the GOP cache first (the
///   GOP only when it fits the reader's limits), then the log from its head.
/// - A reader further behind the newest frame than `max_duration_ms` of media or
///   `max_bytes` skips ahead: the frames it skips are counted as dropped, the metadata,
///   sequence headers and publish events among them are still delivered, and it resumes
///   on a video keyframe (any audio frame for a stream without video), the first from
///   which the rest is within its limits. One that fell behind what the log still holds
///   gets the stream's current headers again and waits for a keyframe the same way.
/// - When the stream announced video, audio waits for this reader's first video keyframe,
///   at most [`MAX_VIDEO_WAIT_MS`] (nginx-rtmp's `wait_video`), so a player that joins
///   before the first keyframe still finds the video track.
#[derive(Debug)]
pub struct Reader {
    /// The number of the next entry to read.
    cursor: u64,
    /// What the reader gets before the log: metadata, sequence headers, the GOP cache.
    prime: VecDeque<Item>,
    limits: QueueLimits,
    /// The publish session of the last entry read.
    session: u32,
    /// After a skip, frames are dropped until a keyframe.
    waiting_keyframe: bool,
    /// The stream has video (so resumption waits for a video keyframe).
    has_video: bool,
    /// This reader got a video keyframe (or gave up waiting for one).
    video_started: bool,
    /// The dts of the first audio frame held back while waiting for video.
    audio_wait_from: Option<i64>,
    /// Frames dropped so far (never reset).
    pub dropped: u64,
    /// Times the reader skipped ahead.
    pub overflows: u64,
    /// Audio frames skipped while waiting for the first keyframe (not drops: nothing was
    /// lost to slowness).
    pub skipped_before_video: u64,
}

/// What a read took so far.
struct Budget {
    count: usize,
    bytes: usize,
    max_bytes: usize,
}

impl Budget {
    fn fits(&self, bytes: usize) -> bool {
        self.count == 0 || (self.count < MAX_BATCH_ITEMS && self.bytes + bytes <= self.max_bytes)
    }

    fn add(&mut self, bytes: usize) {
        self.count += 1;
        self.bytes += bytes;
    }
}

impl Reader {
    /// A reader at the head of `log`, primed with `headers` (metadata and sequence headers,
    /// always) and `gop` (the cached GOP, when its span and size fit `limits`; otherwise the
    /// reader waits for the next keyframe, as after a skip). `expects_video` is the
    /// source's state now.
    pub fn new<'a>(
        log: &Log,
        limits: QueueLimits,
        headers: impl IntoIterator<Item = &'a Arc<Frame>>,
        gop: &VecDeque<Arc<Frame>>,
        expects_video: bool,
    ) -> Reader {
        let mut r = Reader {
            cursor: log.head(),
            prime: VecDeque::new(),
            limits,
            session: log.session,
            waiting_keyframe: false,
            has_video: false,
            video_started: false,
            audio_wait_from: None,
            dropped: 0,
            overflows: 0,
            skipped_before_video: 0,
        };
        for f in headers {
            if r.accept(f, expects_video) {
                r.prime.push_back(Item::Frame(f.clone()));
            }
        }
        let span = match (gop.front(), gop.back()) {
            (Some(a), Some(b)) => b.dts - a.dts,
            _ => 0,
        };
        let bytes: usize = gop.iter().map(|f| f.payload.len()).sum();
        if span > limits.max_duration_ms || (gop.len() > 1 && bytes > limits.max_bytes) {
            r.overflows += 1;
            r.dropped += gop.len() as u64;
            r.has_video |= gop.iter().any(|f| f.is_video());
            r.waiting_keyframe = true;
        } else {
            for f in gop {
                if r.accept(f, expects_video) {
                    r.prime.push_back(Item::Frame(f.clone()));
                }
            }
        }
        r
    }

    /// The number of the next log entry this reader reads.
    pub fn cursor(&self) -> u64 {
        self.cursor
    }

    /// Payload bytes this reader has yet to read (primed and in the log).
    pub fn pending_bytes(&self, log: &Log) -> u64 {
        let primed: usize = self.prime.iter().map(item_bytes).sum();
        primed as u64 + log.bytes_from(self.cursor)
    }

    /// Moves the next batch into `out`: up to about `max_bytes` and at most
    /// [`MAX_BATCH_ITEMS`] items (at least one when anything is there; the headers sent
    /// again after falling behind may add three), applying the policy above. `headers` are
    /// the stream's current metadata and sequence headers. With `share`, a reader in step
    /// with the stream takes what is new as one run shared with the readers at the same
    /// place ([`Batch`]).
    pub fn read(
        &mut self,
        log: &mut Log,
        headers: [Option<&Arc<Frame>>; 3],
        batch: &mut Batch,
        max_bytes: usize,
        share: bool,
    ) {
        if batch.shared.is_some() {
            batch.unshare();
        }
        let out = &mut batch.own;
        let mut budget = Budget {
            count: 0,
            bytes: 0,
            max_bytes,
        };
        batch.more = true;
        while let Some(item) = self.prime.front() {
            let b = item_bytes(item);
            if !budget.fits(b) {
                return;
            }
            budget.add(b);
            out.extend(self.prime.pop_front());
        }
        if self.prime.capacity() > 0 {
            // The burst of joining is over: keep no room for it.
            self.prime = VecDeque::new();
        }
        if self.cursor < log.first() {
            self.fell_behind(log, headers, out, &mut budget);
        }
        if !log.within(self.cursor, self.limits) {
            self.skip_ahead(log, out, &mut budget);
        }
        if share && budget.count == 0 {
            if let Some(run) = self.in_step(log, max_bytes) {
                batch.shared = Some(run);
                self.cursor = log.head();
                batch.more = false;
                return;
            }
        }
        while let Some(e) = log.get(self.cursor) {
            let b = item_bytes(&e.item);
            if !budget.fits(b) {
                break;
            }
            self.cursor += 1;
            match &e.item {
                Item::Frame(f) => {
                    if self.accept(f, e.expects_video) {
                        budget.add(b);
                        out.push(e.item.clone());
                    }
                }
                control => {
                    self.session = e.session;
                    budget.add(0);
                    out.push(control.clone());
                }
            }
        }
        batch.more = self.cursor < log.head();
    }

    /// Everything from the cursor to the head as one shared run, when it goes out as it is
    /// in one batch: at least two entries, within the batch bounds, and no frame the policy
    /// would hold back (after a skip, or audio waiting for the first keyframe). If so, the
    /// policy's state moves as if each entry had been read. The run and what the policy needs
    /// of it are worked out by the first reader at this place (`Log::run`).
    fn in_step(&mut self, log: &mut Log, max_bytes: usize) -> Option<Arc<[Item]>> {
        let left = log.head().saturating_sub(self.cursor);
        if self.waiting_keyframe
            || left < 2
            || left > MAX_BATCH_ITEMS as u64
            || log.bytes_from(self.cursor) > max_bytes as u64
            || self.cursor < log.first()
        {
            return None;
        }
        let (run, p) = log.run(self.cursor);
        if p.audio_before_keyframe && !self.video_started {
            return None;
        }
        self.has_video |= p.video;
        self.video_started |= p.keyframe;
        if let Some(session) = p.session {
            self.session = session;
        }
        Some(run)
    }

    /// The entries this reader had not read were trimmed: it gets the current headers
    /// again (and the publish event it missed) and waits for a keyframe.
    fn fell_behind(
        &mut self,
        log: &Log,
        headers: [Option<&Arc<Frame>>; 3],
        out: &mut Vec<Item>,
        budget: &mut Budget,
    ) {
        self.dropped += log.first() - self.cursor;
        self.overflows += 1;
        self.waiting_keyframe = true;
        self.cursor = log.first();
        let missed = log.get(self.cursor).map_or(log.session, |e| match e.item {
            // A Published entry still in the log is read in turn.
            Item::Published => e.session.wrapping_sub(1),
            _ => e.session,
        });
        if missed != self.session {
            self.session = missed;
            out.push(Item::Published);
            budget.add(0);
        }
        for f in headers.into_iter().flatten() {
            self.has_video |= f.is_video();
            budget.add(f.payload.len());
            out.push(Item::Frame(f.clone()));
        }
    }

    /// This reader is beyond its limits: it skips to the first keyframe (audio frame, for a
    /// stream without video) from which the rest is within them, or to the head.
    fn skip_ahead(&mut self, log: &Log, out: &mut Vec<Item>, budget: &mut Budget) {
        self.overflows += 1;
        self.waiting_keyframe = true;
        let head = log.head();
        self.has_video |= (self.cursor..head)
            .filter_map(|s| log.get(s))
            .any(|e| matches!(&e.item, Item::Frame(f) if f.is_video()));
        let mut from = self.cursor;
        while from < head && !log.within(from, self.limits) {
            from += 1;
        }
        let has_video = self.has_video;
        let resume = (from..head)
            .find(|&s| {
                log.get(s).is_some_and(|e| match &e.item {
                    Item::Frame(f) if has_video => f.is_video() && f.flags.keyframe,
                    Item::Frame(f) => f.is_audio(),
                    _ => false,
                })
            })
            .unwrap_or(head);
        while self.cursor < resume {
            let Some(e) = log.get(self.cursor) else { break };
            self.cursor += 1;
            match &e.item {
                Item::Frame(f) if f.flags.seq_header || f.flags.metadata => {
                    budget.add(f.payload.len());
                    out.push(e.item.clone());
                }
                Item::Frame(_) => self.dropped += 1,
                control => {
                    self.session = e.session;
                    budget.add(0);
                    out.push(control.clone());
                }
            }
        }
    }

    /// The per-frame policy: whether this reader delivers `f` (false: skipped, counted).
    fn accept(&mut self, f: &Frame, expects_video: bool) -> bool {
        if f.is_video() {
            self.has_video = true;
            self.video_started |= f.flags.keyframe;
        }
        if expects_video && !self.video_started && f.is_audio() && !f.flags.seq_header {
            // ffprobe and players decide the tracks from the first seconds: audio alone
            // there makes them report an audio-only stream.
            let from = *self.audio_wait_from.get_or_insert(f.dts);
            if f.dts - from <= MAX_VIDEO_WAIT_MS {
                self.skipped_before_video += 1;
                return false;
            }
            self.video_started = true;
        }
        if f.flags.metadata || f.flags.seq_header {
            return true;
        }
        if self.waiting_keyframe {
            let resumes = if self.has_video {
                f.is_video() && f.flags.keyframe
            } else {
                f.is_audio()
            };
            if !resumes {
                self.dropped += 1;
                return false;
            }
            self.waiting_keyframe = false;
        }
        true
    }
}

/// What one read hands a consumer: items of its own (a joining reader's GOP, headers sent
/// again, anything the drop policy sorted), then a run of the log shared by every reader
/// that read the same run. Readers in step with the stream (all of them, when their merged
/// writes fall on one grid) take one reference to the run per batch instead of one per
/// frame each: at a thousand players the frames' reference counts are no longer bounced
/// between the CPUs a thousand times per frame.
#[derive(Debug, Default)]
pub struct Batch {
    own: Vec<Item>,
    shared: Option<Arc<[Item]>>,
    /// The read stopped at a bound with more left to read.
    more: bool,
    /// The read that filled it registered the merged write after it (`Consumer::poll_batch`
    /// with a `then` time): the consumer's waker stays with the source until that time.
    pub(super) armed: bool,
    /// Frames dropped for the consumer so far, as of the read that filled it.
    pub(super) dropped: u64,
}

impl Batch {
    /// A batch whose own items start as `items` (the shared run empty).
    pub fn from_vec(items: Vec<Item>) -> Batch {
        Batch {
            own: items,
            ..Batch::default()
        }
    }

    /// All items as one vector (the shared run's cloned).
    pub fn into_vec(mut self) -> Vec<Item> {
        self.unshare();
        self.own
    }

    pub fn len(&self) -> usize {
        self.own.len() + self.shared.as_ref().map_or(0, |s| s.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The items in order as two slices: its own, then the shared run. Walking them as two
    /// plain loops costs less per frame and player than [`Batch::iter`]'s chain.
    pub fn as_slices(&self) -> [&[Item]; 2] {
        [&self.own, self.shared.as_deref().unwrap_or_default()]
    }

    /// Whether the read that filled it left the consumer's waker registered with the source
    /// for the next merged write: a poll before that time would answer `Pending`, and any
    /// publish, unpublish or append at or after it wakes the task.
    pub fn armed(&self) -> bool {
        self.armed
    }

    /// Frames dropped for the consumer so far, as of the read that filled the batch (what
    /// `Consumer::dropped` would say, without taking the reader's lock again).
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The items in order: its own, then the shared run.
    pub fn iter(&self) -> impl Iterator<Item = &Item> {
        // Two slices chained: walked per frame and player, where a flattened `Option` costs a
        // state check per item.
        self.own
            .iter()
            .chain(self.shared.as_deref().unwrap_or_default().iter())
    }

    /// The item at `i` in [`Batch::iter`]'s order.
    pub fn get(&self, i: usize) -> Option<&Item> {
        match i.checked_sub(self.own.len()) {
            None => self.own.get(i),
            Some(j) => self.shared.as_ref()?.get(j),
        }
    }

    /// Whether the read that filled it stopped at a bound ([`MAX_BATCH_ITEMS`], the byte
    /// cap) with more left to read: a merging writer then reads again at once, so a stream
    /// of any bitrate is not held to one batch per `mw_latency`.
    pub fn more(&self) -> bool {
        self.more
    }

    /// Empties the batch; its own items' room shrinks back after a burst
    /// ([`shrunk_capacity`], keeping `keep`).
    pub fn clear(&mut self, keep: usize) {
        self.own.clear();
        self.shared = None;
        self.more = false;
        self.armed = false;
        if let Some(cap) = shrunk_capacity(0, self.own.capacity(), keep) {
            self.own.shrink_to(cap);
        }
    }

    /// Makes the shared run items of its own.
    fn unshare(&mut self) {
        if let Some(run) = self.shared.take() {
            self.own.extend(run.iter().cloned());
        }
    }
}

/// Items one drain hands out at most: two iovecs each (own header, shared payload), so a
/// batch is one `writev`'s worth (well under IOV_MAX, 1024) and the per-player batch
/// buffers stay small however much was queued.
pub const MAX_BATCH_ITEMS: usize = 64;

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
mod tests;
