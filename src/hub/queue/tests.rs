//! The log and reader policy, without a source or a lock.

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

fn reader(log: &Log, limits: QueueLimits) -> Reader {
    Reader::new(log, limits, [], &VecDeque::new(), false)
}

fn read_all(r: &mut Reader, log: &mut Log) -> Vec<Item> {
    read(r, log, [None, None, None], usize::MAX)
}

fn read(r: &mut Reader, log: &mut Log, h: [Option<&Arc<Frame>>; 3], max: usize) -> Vec<Item> {
    let mut out = Batch::default();
    r.read(log, h, &mut out, max, false);
    out.into_vec()
}

/// (kind, dts, seq_header, keyframe) of the frames, for short assertions.
fn shape(items: &[Item]) -> Vec<(char, i64)> {
    items
        .iter()
        .map(|i| match i {
            Item::Frame(f) if f.flags.seq_header => ('H', f.dts),
            Item::Frame(f) if f.flags.keyframe => ('K', f.dts),
            Item::Frame(f) if f.is_video() => ('v', f.dts),
            Item::Frame(f) => ('a', f.dts),
            Item::Published => ('P', 0),
            Item::Unpublished => ('U', 0),
        })
        .collect()
}

/// `within`: how far behind a reader may be, by span of media and bytes.
#[test]
fn within_limits_table() {
    let mut log = Log::default();
    log.push_frame(seq_header(), false); // 0
    log.push_frame(video(0, true), false); // 1
    for i in 1..=30 {
        log.push_frame(video(i * 40, false), false); // 2..=31
    }
    let small = QueueLimits {
        max_duration_ms: i64::MAX,
        max_bytes: 25,
    };
    // (seq, limits, expected)
    let cases = [
        (0, L, false),      // from the header: the keyframe at 0 to 1200 ms
        (1, L, false),      // 1200 ms > 1000
        (6, L, true),       // from 200 ms: 1000 ms
        (7, L, true),       // 960 ms
        (31, L, true),      // one frame left
        (32, L, true),      // nothing left
        (29, small, false), // 30 bytes > 25
        (30, small, true),  // 20 bytes
        (31, small, true),  // a single frame goes out whatever its size
    ];
    for (seq, limits, want) in cases {
        assert_eq!(log.within(seq, limits), want, "seq {seq} {limits:?}");
    }
    log.trim_to(5);
    assert!(!log.within(4, L), "behind the log's start");
    assert_eq!(log.first(), 5);
    assert_eq!(log.bytes_from(0), log.retained_bytes());
    assert_eq!(log.retained_bytes(), 27 * 10);
}

/// A reader that fell behind by more than its limits skips to the first keyframe from which
/// the rest is within them, delivering the headers it passes; the frames skipped are drops.
#[test]
fn a_lagging_reader_skips_to_a_keyframe_within_its_limits_and_keeps_headers() {
    let mut log = Log::default();
    let mut r = reader(&log, L);
    log.push_frame(seq_header(), true);
    log.push_frame(video(0, true), true);
    for i in 1..=24 {
        log.push_frame(video(i * 40, false), true);
    }
    log.push_frame(video(1000, true), true);
    for i in 1..=5 {
        log.push_frame(video(1000 + i * 40, false), true);
    }
    // 1200 ms behind: the keyframe at 1000 is 200 ms from the newest frame.
    let out = read_all(&mut r, &mut log);
    let s = shape(&out);
    assert_eq!(&s[..2], &[('H', 0), ('K', 1000)], "{s:?}");
    assert_eq!(s.len(), 2 + 5);
    assert_eq!(r.dropped, 25);
    assert_eq!(r.overflows, 1);

    // No keyframe within the limits: to the head, then frames wait for the next keyframe.
    let mut r = reader(&log, L);
    for i in 0..30 {
        log.push_frame(video(2000 + i * 40, false), true);
    }
    let out = read_all(&mut r, &mut log);
    assert!(out.is_empty(), "{:?}", shape(&out));
    assert_eq!(r.dropped, 30);
    log.push_frame(video(3300, false), true);
    log.push_frame(video(3340, true), true);
    assert_eq!(shape(&read_all(&mut r, &mut log)), [('K', 3340)]);
    assert_eq!(r.dropped, 31);
}

#[test]
fn bytes_are_bounded() {
    let limits = QueueLimits {
        max_duration_ms: i64::MAX,
        max_bytes: 1000,
    };
    let mut log = Log::default();
    let mut r = reader(&log, limits);
    for i in 0..10_000 {
        log.push_frame(video(i, i % 50 == 0), false);
    }
    let out = read_all(&mut r, &mut log);
    let bytes: usize = out.iter().map(item_bytes).sum();
    assert!(bytes <= 1000, "{bytes}");
    assert!(r.dropped > 9000);
}

/// A stream that announced video: audio waits for the first keyframe (a player joining an
/// nginx-rtmp stream between keyframes must still find its video), at most
/// MAX_VIDEO_WAIT_MS of audio; a stream without video is not held back.
#[test]
fn audio_waits_for_the_first_keyframe_of_announced_video() {
    let mut log = Log::default();
    let mut r = reader(&log, L);
    log.push_frame(seq_header(), true);
    for i in 0..5 {
        log.push_frame(audio(i * 23), true);
    }
    assert_eq!(shape(&read_all(&mut r, &mut log)), [('H', 0)]);
    assert_eq!(r.skipped_before_video, 5);
    log.push_frame(video(120, true), true);
    log.push_frame(audio(130), true);
    assert_eq!(shape(&read_all(&mut r, &mut log)), [('K', 120), ('a', 130)]);
    assert_eq!(r.dropped, 0, "nothing counted as a drop");

    let mut log = Log::default();
    let long = QueueLimits {
        max_duration_ms: 60_000,
        ..L
    };
    let mut r = reader(&log, long);
    log.push_frame(audio(0), true);
    log.push_frame(audio(MAX_VIDEO_WAIT_MS), true);
    log.push_frame(audio(MAX_VIDEO_WAIT_MS + 23), true);
    assert_eq!(
        read_all(&mut r, &mut log).len(),
        1,
        "the announced video never came: audio flows"
    );

    let mut log = Log::default();
    let mut r = reader(&log, L);
    log.push_frame(audio(0), false);
    assert_eq!(
        read_all(&mut r, &mut log).len(),
        1,
        "audio-only: not held back"
    );
}

/// A keyframe larger than the byte cap (a 9 MB 4K scene cut) is still delivered, alone.
#[test]
fn a_frame_larger_than_the_cap_is_delivered_alone() {
    let limits = QueueLimits {
        max_duration_ms: i64::MAX,
        max_bytes: 1000,
    };
    let mut log = Log::default();
    let mut r = reader(&log, limits);
    log.push_frame(seq_header(), false);
    log.push_frame(video(0, true), false);
    let mut big = vec![0u8; 5000];
    big[0] = 0x17;
    big[1] = 1;
    log.push_frame(
        Arc::new(Frame::new(MediaKind::Video, 40, 40, Bytes::from(big))),
        false,
    );
    let sizes: Vec<usize> = read_all(&mut r, &mut log).iter().map(item_bytes).collect();
    assert_eq!(sizes, vec![5, 5000], "the header, then the big keyframe");
    log.push_frame(video(80, false), false);
    assert_eq!(
        read_all(&mut r, &mut log).len(),
        1,
        "and it goes on after it"
    );
}

/// A joining reader gets the headers and the GOP cache first, then the log from its head;
/// a GOP longer than its limits is left out and the reader waits for the next keyframe.
#[test]
fn a_joining_reader_is_primed_with_headers_and_the_gop() {
    let mut log = Log::default();
    let sh = seq_header();
    let gop: VecDeque<Arc<Frame>> = (0..10).map(|i| video(i * 40, i == 0)).collect();
    for f in &gop {
        log.push_frame(f.clone(), true);
    }
    let mut r = Reader::new(&log, L, [&sh], &gop, true);
    log.push_frame(video(400, false), true);
    let s = shape(&read_all(&mut r, &mut log));
    assert_eq!(s.len(), 1 + 10 + 1, "{s:?}");
    assert_eq!(&s[..2], &[('H', 0), ('K', 0)]);

    let short = QueueLimits {
        max_duration_ms: 200,
        ..L
    };
    let mut r = Reader::new(&log, short, [&sh], &gop, true);
    log.push_frame(video(440, false), true);
    log.push_frame(video(480, true), true);
    assert_eq!(shape(&read_all(&mut r, &mut log)), [('H', 0), ('K', 480)]);
    assert_eq!(
        r.dropped, 11,
        "the GOP and the inter frame before the keyframe"
    );
}

/// A reader whose entries were trimmed (it was beyond its limits, or past
/// MAX_LOG_ENTRIES) gets the current headers again, the publish it missed, and resumes on a
/// keyframe.
#[test]
fn a_reader_behind_the_log_gets_headers_again_and_the_publish_it_missed() {
    let mut log = Log::default();
    let mut r = reader(&log, L);
    log.push_frame(video(0, true), true);
    log.push_control(Item::Unpublished);
    log.push_control(Item::Published);
    log.push_frame(video(0, false), true);
    log.push_frame(video(40, true), true);
    log.trim_to(3);
    let sh = seq_header();
    let out = read(&mut r, &mut log, [None, Some(&sh), None], usize::MAX);
    assert_eq!(shape(&out), [('P', 0), ('H', 0), ('K', 40)]);
    assert_eq!(r.dropped, 3 + 1, "the three trimmed, the inter frame");

    // The Published entry itself still in the log is read once, in turn.
    let mut log = Log::default();
    let mut r = reader(&log, L);
    log.push_frame(video(0, true), true);
    log.push_control(Item::Published);
    log.push_frame(video(40, true), true);
    log.trim_to(1);
    assert_eq!(shape(&read_all(&mut r, &mut log)), [('P', 0), ('K', 40)]);
}

#[test]
fn the_log_is_bounded_by_entries_whatever_the_timestamps() {
    let mut log = Log::default();
    for _ in 0..MAX_LOG_ENTRIES + 100 {
        log.push_frame(video(0, false), false);
    }
    assert_eq!(log.len(), MAX_LOG_ENTRIES);
    assert_eq!(log.first(), 100);
    log.trim_to(log.head());
    assert!(log.is_empty());
    assert!(
        log.entries.capacity() <= 2 * LOG_KEEP,
        "a burst's room given back"
    );
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
fn a_burst_is_read_in_bounded_batches() {
    let mut log = Log::default();
    let limits = QueueLimits {
        max_duration_ms: i64::MAX,
        ..QueueLimits::default()
    };
    let mut r = reader(&log, limits);
    for i in 0..1000 {
        log.push_frame(video(i, i % 50 == 0), false);
    }
    let mut batches = 0;
    while r.cursor() < log.head() {
        let out = read(&mut r, &mut log, [None, None, None], usize::MAX);
        assert!(!out.is_empty() && out.len() <= MAX_BATCH_ITEMS);
        batches += 1;
    }
    assert_eq!(batches, 1000usize.div_ceil(MAX_BATCH_ITEMS));
    assert_eq!(r.pending_bytes(&log), 0);
}

#[test]
fn read_respects_the_byte_cap_but_takes_at_least_one() {
    let mut log = Log::default();
    let mut r = reader(&log, L);
    for i in 0..10 {
        log.push_frame(video(i, true), false);
    }
    assert_eq!(read(&mut r, &mut log, [None, None, None], 25).len(), 2);
    assert_eq!(read(&mut r, &mut log, [None, None, None], 1).len(), 1);
    assert_eq!(r.pending_bytes(&log), 70);
}

/// A read says whether it stopped at a bound with more left ([`Batch::more`]): a merging
/// writer then reads again at once instead of waiting for its next period.
#[test]
fn a_read_says_when_it_left_more() {
    let mut log = Log::default();
    let mut r = reader(&log, L);
    for i in 0..(MAX_BATCH_ITEMS as i64 + 10) {
        log.push_frame(video(i, i == 0), false);
    }
    let mut out = Batch::default();
    // (byte cap, items read, more left)
    for (cap, n, more) in [
        (25, 2, true),
        (usize::MAX, MAX_BATCH_ITEMS, true),
        (usize::MAX, 8, false),
        (usize::MAX, 0, false),
    ] {
        out.clear(0);
        r.read(&mut log, [None, None, None], &mut out, cap, true);
        assert_eq!((out.len(), out.more()), (n, more), "cap {cap}");
    }
}

/// Readers in step with the stream take what is new as one shared run (one reference count
/// per batch); a reader the policy holds back (after a skip, audio waiting for video) reads
/// item by item; a reader elsewhere in the log gets a run of its own.
#[test]
fn readers_in_step_share_one_run() {
    let mut log = Log::default();
    let mut a = reader(&log, L);
    let mut b = reader(&log, L);
    let mut behind = reader(&log, L);
    log.push_frame(video(0, true), false);
    log.push_frame(audio(10), false);
    let read_shared = |r: &mut Reader, log: &mut Log| {
        let mut out = Batch::default();
        r.read(log, [None, None, None], &mut out, usize::MAX, true);
        out
    };
    let first = read_shared(&mut behind, &mut log);
    assert_eq!(shape(&first.into_vec()), [('K', 0), ('a', 10)]);
    log.push_frame(video(40, false), false);
    log.push_frame(audio(50), false);
    let ra = read_shared(&mut a, &mut log);
    let rb = read_shared(&mut b, &mut log);
    let (Some(sa), Some(sb)) = (&ra.shared, &rb.shared) else {
        panic!("not shared: {ra:?} {rb:?}");
    };
    assert!(Arc::ptr_eq(sa, sb), "one run for both");
    assert_eq!(shape(&ra.iter().cloned().collect::<Vec<_>>()).len(), 4);
    assert_eq!(ra.get(3).map(item_bytes), Some(4));
    // The reader that was two entries behind them reads a run of its own.
    let rc = read_shared(&mut behind, &mut log);
    assert_eq!(shape(&rc.into_vec()), [('v', 40), ('a', 50)]);
    assert_eq!(a.cursor(), log.head());

    // Audio of a stream that announced video, before this reader's first keyframe: held
    // back item by item, never shared.
    let mut log = Log::default();
    let mut r = reader(&log, L);
    log.push_frame(audio(0), true);
    log.push_frame(audio(23), true);
    let out = read_shared(&mut r, &mut log);
    assert!(out.is_empty() && out.shared.is_none());
    assert_eq!(r.skipped_before_video, 2);
}

/// What the drop policy needs of a run is worked out once, by its first reader: a reader
/// whose video has started shares a run with audio before its keyframe; one whose video has
/// not reads it item by item (the audio held back).
#[test]
fn a_run_policy_is_shared_by_readers_at_one_place() {
    let mut log = Log::default();
    let mut started = reader(&log, L);
    log.push_frame(video(0, true), true);
    log.push_frame(audio(10), true);
    let mut out = Batch::default();
    started.read(&mut log, [None, None, None], &mut out, usize::MAX, true);
    assert!(started.video_started);
    let mut fresh = reader(&log, L);
    log.push_frame(audio(33), true);
    log.push_frame(video(40, true), true);
    log.push_control(Item::Unpublished);
    let from = log.head() - 3;
    let (_, p) = log.run(from);
    assert_eq!(
        p,
        RunPolicy {
            video: true,
            keyframe: true,
            audio_before_keyframe: true,
            session: Some(log.session),
        }
    );
    let mut a = Batch::default();
    started.read(&mut log, [None, None, None], &mut a, usize::MAX, true);
    assert!(a.shared.is_some(), "in step: the run as it is");
    let mut b = Batch::default();
    fresh.read(&mut log, [None, None, None], &mut b, usize::MAX, true);
    assert!(b.shared.is_none(), "held back: item by item");
    assert_eq!(
        shape(&b.into_vec()),
        [('K', 40), ('U', 0)],
        "the audio before the keyframe dropped"
    );
    assert_eq!(
        RunPolicy::of(std::iter::empty()),
        RunPolicy::default(),
        "an empty run changes nothing"
    );
}
