//! Hub tests: publisher lock, late joiners, fan-out, drops.

use super::*;
use crate::protocol::media::MediaKind;
use bytes::Bytes;

fn key() -> StreamKey {
    StreamKey::new(crate::config::DEFAULT_VHOST, "live", "s")
}

fn frames(items: &[Item]) -> Vec<(MediaKind, FrameFlags)> {
    items
        .iter()
        .filter_map(|i| match i {
            Item::Frame(f) => Some((f.kind, f.flags)),
            _ => None,
        })
        .collect()
}

fn publish_gop(p: &Publisher, start: u32, inter: u32) {
    p.push(
        MediaKind::Video,
        start,
        Bytes::from_static(&[0x17, 1, 0, 0, 0, 1]),
    );
    for i in 1..=inter {
        p.push(
            MediaKind::Audio,
            start + i * 40 - 20,
            Bytes::from_static(&[0xAF, 1, 9]),
        );
        p.push(
            MediaKind::Video,
            start + i * 40,
            Bytes::from_static(&[0x27, 1, 0, 0, 0, 2]),
        );
    }
}

#[test]
fn second_publisher_is_refused_until_the_first_leaves() {
    let hub = Hub::new();
    let src = hub.source(&key(), SourceOptions::default());
    let p = src.publish(7).unwrap();
    assert_eq!(src.publish(8).err(), Some(BusyError { publisher: 7 }));
    assert_eq!(src.publisher_cid(), 7);
    drop(p);
    assert!(src.publish(8).is_ok());
}

#[test]
fn late_joiner_gets_metadata_headers_then_gop_from_a_keyframe() {
    let hub = Hub::new();
    let src = hub.source(&key(), SourceOptions::default());
    let p = src.publish(1).unwrap();
    let mut meta = bytes::BytesMut::new();
    crate::protocol::amf0::encode_all(
        &[
            crate::protocol::amf0::Amf0Value::string("onMetaData"),
            crate::protocol::amf0::Amf0Value::Null,
        ],
        &mut meta,
    );
    p.push(MediaKind::Data, 0, meta.freeze());
    p.push(MediaKind::Video, 0, Bytes::from_static(&[0x17, 0, 1, 2]));
    p.push(
        MediaKind::Audio,
        0,
        Bytes::from_static(&[0xAF, 0, 0x12, 0x10]),
    );
    publish_gop(&p, 0, 5);
    publish_gop(&p, 240, 3);
    let c = src.subscribe(QueueLimits::default(), TimeJitter::Full);
    let mut out = Vec::new();
    assert!(c.try_recv(&mut out, usize::MAX) > 0);
    let f = frames(&out);
    assert!(f[0].1.metadata);
    assert!(f[1].1.seq_header && f[1].0 == MediaKind::Video);
    assert!(f[2].1.seq_header && f[2].0 == MediaKind::Audio);
    assert!(f[3].1.keyframe, "GOP starts on a keyframe");
    assert_eq!(f.len(), 3 + 1 + 3 * 2, "only the last GOP");
    // Then live frames, nothing twice.
    p.push(
        MediaKind::Video,
        400,
        Bytes::from_static(&[0x27, 1, 0, 0, 0, 3]),
    );
    out.clear();
    assert_eq!(c.try_recv(&mut out, usize::MAX), 1);
}

#[test]
fn player_before_publisher_starts_when_it_comes() {
    let hub = Hub::new();
    let src = hub.source(&key(), SourceOptions::default());
    let c = src.subscribe(QueueLimits::default(), TimeJitter::Full);
    let p = src.publish(1).unwrap();
    publish_gop(&p, 0, 1);
    drop(p);
    let mut out = Vec::new();
    c.try_recv(&mut out, usize::MAX);
    assert!(matches!(out.first(), Some(Item::Published)));
    assert!(matches!(out.last(), Some(Item::Unpublished)));
    assert_eq!(frames(&out).len(), 3);
}

#[test]
fn slow_consumer_is_bounded_and_does_not_affect_others() {
    let hub = Hub::new();
    let src = hub.source(&key(), SourceOptions::default());
    let limits = QueueLimits {
        max_duration_ms: 2000,
        max_bytes: 1 << 20,
    };
    let slow = src.subscribe(limits, TimeJitter::Full);
    let fast = src.subscribe(limits, TimeJitter::Full);
    let p = src.publish(1).unwrap();
    let mut got = 0;
    let mut out = Vec::new();
    for g in 0..100u32 {
        publish_gop(&p, g * 1000, 24);
        fast.try_recv(&mut out, usize::MAX);
        got += frames(&out).len();
        out.clear();
    }
    assert_eq!(got, 100 * 49);
    assert_eq!(fast.dropped(), 0);
    // The stream keeps what the fast consumer read last (one GOP: 24 × 3 + 25 × 6 bytes, and
    // what came since the last trim), not the slow one's backlog of the whole publish.
    let gop_bytes = 24 * 3 + 25 * 6;
    assert!(
        src.retained_bytes() <= 2 * gop_bytes,
        "{}",
        src.retained_bytes()
    );
    // Drops are counted when the slow consumer reads: it gets about its 2 s.
    slow.try_recv(&mut out, usize::MAX);
    assert!(slow.dropped() > 4000, "{}", slow.dropped());
    assert!(
        frames(&out).len() <= 2 * 49 + 2,
        "slow queue holds about 2 s"
    );
}

#[test]
fn idle_sources_are_released() {
    let hub = Hub::new();
    let src = hub.source(&key(), SourceOptions::default());
    let c = src.subscribe(QueueLimits::default(), TimeJitter::Full);
    drop(src);
    assert!(hub.find(&key()).is_some());
    drop(c);
    assert!(hub.find(&key()).is_none());
    let p = hub
        .source(&key(), SourceOptions::default())
        .publish(1)
        .unwrap();
    assert_eq!(hub.list().len(), 1);
    drop(p);
    assert!(hub.list().is_empty());
}

#[test]
fn gop_cache_off_and_overflow() {
    let hub = Hub::new();
    let src = hub.source(
        &key(),
        SourceOptions {
            gop_cache: false,
            gop_cache_max_frames: 10,
            mix_correct: false,
        },
    );
    let p = src.publish(1).unwrap();
    publish_gop(&p, 0, 3);
    let mut out = Vec::new();
    src.subscribe(QueueLimits::default(), TimeJitter::Full)
        .try_recv(&mut out, usize::MAX);
    assert!(out.is_empty());
    src.set_options(SourceOptions {
        gop_cache: true,
        gop_cache_max_frames: 10,
        mix_correct: false,
    });
    // Turned on (reload): a GOP within the cap (1 keyframe + 3 × audio and video) is
    // cached, so a late joiner starts with it.
    publish_gop(&p, 500, 3);
    src.subscribe(QueueLimits::default(), TimeJitter::Full)
        .try_recv(&mut out, usize::MAX);
    assert_eq!(out.len(), 7, "the cached GOP after gop_cache was turned on");
    out.clear();
    publish_gop(&p, 1000, 20);
    src.subscribe(QueueLimits::default(), TimeJitter::Full)
        .try_recv(&mut out, usize::MAX);
    assert!(out.is_empty(), "a GOP past the cap is not cached");
}

#[test]
fn mix_correct_orders_audio_and_video_by_timestamp() {
    let hub = Hub::new();
    let src = hub.source(
        &key(),
        SourceOptions {
            mix_correct: true,
            ..SourceOptions::default()
        },
    );
    let c = src.subscribe(QueueLimits::default(), TimeJitter::Off);
    let p = src.publish(1).unwrap();
    p.push(MediaKind::Video, 0, Bytes::from_static(&[0x17, 0, 1]));
    // Video runs ahead of audio, as badly interleaving encoders send it.
    for (kind, ts) in [
        (MediaKind::Video, 0u32),
        (MediaKind::Video, 40),
        (MediaKind::Video, 80),
        (MediaKind::Audio, 10),
        (MediaKind::Audio, 50),
        (MediaKind::Audio, 90),
        (MediaKind::Video, 120),
    ] {
        let payload: &'static [u8] = if kind == MediaKind::Video && ts == 0 {
            &[0x17, 1, 0]
        } else if kind == MediaKind::Video {
            &[0x27, 1, 0]
        } else {
            &[0xAF, 1, 0]
        };
        p.push(kind, ts, Bytes::from_static(payload));
    }
    let mut out = Vec::new();
    c.try_recv(&mut out, usize::MAX);
    let ts: Vec<u32> = out
        .iter()
        .filter_map(|i| match i {
            Item::Frame(f) if !f.flags.seq_header => Some(f.raw_ts),
            _ => None,
        })
        .collect();
    let mut sorted = ts.clone();
    sorted.sort();
    assert_eq!(ts, sorted, "released in timestamp order");
    assert!(
        ts.len() >= 6,
        "frames flow once both kinds are present: {ts:?}"
    );
}

/// One stream's tag bodies in each form srsd meets: (name, video sequence header, keyframe,
/// inter frame, audio sequence header, audio frame).
fn forms() -> Vec<(&'static str, [&'static [u8]; 5])> {
    vec![
        (
            "legacy H.264 + AAC",
            [
                &[0x17, 0, 0, 0, 0, 1],
                &[0x17, 1, 0, 0, 0, 0, 0, 0, 1, 0x65],
                &[0x27, 1, 0, 0, 0, 0, 0, 0, 1, 0x41],
                &[0xAF, 0, 0x12, 0x10],
                &[0xAF, 1, 9],
            ],
        ),
        (
            "CDN HEVC (codec id 12) + AAC",
            [
                &[0x1C, 0, 0, 0, 0, 1],
                &[0x1C, 1, 0, 0, 0, 0, 0, 0, 1, 0x26],
                &[0x2C, 1, 0, 0, 0, 0, 0, 0, 1, 0x02],
                &[0xAF, 0, 0x12, 0x10],
                &[0xAF, 1, 9],
            ],
        ),
        (
            "Enhanced HEVC + AAC",
            [
                b"\x90hvc1\x01",
                b"\x91hvc1\x00\x00\x28\x00\x00\x00\x01\x26",
                b"\xA3hvc1\x00\x00\x00\x01\x02",
                &[0xAF, 0, 0x12, 0x10],
                &[0xAF, 1, 9],
            ],
        ),
        (
            // v2 Multitrack, one track: OBS 31's Enhanced Broadcasting form.
            "Enhanced Multitrack HEVC + AAC",
            [
                b"\x96\x00hvc1\x00\x01",
                b"\x96\x03hvc1\x00\x00\x00\x00\x01\x26",
                b"\xA6\x03hvc1\x00\x00\x00\x00\x01\x02",
                &[0xAF, 0, 0x12, 0x10],
                &[0xAF, 1, 9],
            ],
        ),
        (
            "Enhanced AV1 + Opus",
            [
                b"\x90av01\x81",
                b"\x91av01\x12\x00",
                b"\xA1av01\x32\x00",
                b"\x90OpusOpusHead",
                b"\x91Opus\xFC",
            ],
        ),
    ]
}

#[test]
fn enhanced_streams_get_the_gop_cache_late_joiners_drops_and_jitter_of_h264() {
    for (name, [vsh, keyframe, inter, ash, audio]) in forms() {
        let hub = Hub::new();
        let src = hub.source(&key(), SourceOptions::default());
        let p = src.publish(1).unwrap();
        let gop = |p: &Publisher, start: u32, n: u32| {
            p.push(MediaKind::Video, start, Bytes::from_static(keyframe));
            for i in 1..=n {
                p.push(
                    MediaKind::Audio,
                    start + i * 40 - 20,
                    Bytes::from_static(audio),
                );
                p.push(MediaKind::Video, start + i * 40, Bytes::from_static(inter));
            }
        };
        // Starts on a big timestamp: `time_jitter = "full"` must start the player at 0.
        p.push(MediaKind::Video, 90_000, Bytes::from_static(vsh));
        p.push(MediaKind::Audio, 90_000, Bytes::from_static(ash));
        gop(&p, 90_000, 5);
        gop(&p, 90_240, 3);
        let (v, a) = src.sequence_headers();
        assert!(v.is_some() && a.is_some(), "{name}: both headers cached");

        // A late joiner: headers, then the last GOP from its keyframe, at 0.
        let mut c = src.subscribe(QueueLimits::default(), TimeJitter::Full);
        let mut out = Vec::new();
        c.try_recv(&mut out, usize::MAX);
        let f = frames(&out);
        assert!(
            f[0].1.seq_header && f[0].0 == MediaKind::Video,
            "{name}: {f:?}"
        );
        assert!(f[1].1.seq_header && f[1].0 == MediaKind::Audio, "{name}");
        assert!(
            f[2].1.keyframe && f[2].0 == MediaKind::Video,
            "{name}: GOP from a keyframe"
        );
        assert_eq!(f.len(), 2 + 1 + 3 * 2, "{name}: only the last GOP");
        let first_media = out
            .iter()
            .find_map(|i| match i {
                Item::Frame(f) if f.flags.keyframe => Some(c.timestamp(f)),
                _ => None,
            })
            .unwrap();
        assert_eq!(first_media, 0, "{name}: the player's timeline starts at 0");

        // A slow player overflows, drops to the next keyframe and keeps the headers.
        let limits = QueueLimits {
            max_duration_ms: 500,
            max_bytes: 1 << 20,
        };
        let slow = src.subscribe(limits, TimeJitter::Full);
        out.clear();
        slow.try_recv(&mut out, usize::MAX);
        for g in 0..10u32 {
            gop(&p, 91_000 + g * 1000, 24);
        }
        gop(&p, 101_000, 1);
        out.clear();
        slow.try_recv(&mut out, usize::MAX);
        assert!(slow.dropped() > 0, "{name}: dropped");
        let f = frames(&out);
        let first = f
            .iter()
            .position(|(k, fl)| *k == MediaKind::Video && !fl.seq_header);
        assert!(
            first.is_some_and(|i| f[i].1.keyframe),
            "{name}: resumes on a keyframe: {f:?}"
        );
    }
}

#[test]
fn vp9_picture_size_comes_from_the_first_keyframe_since_the_sequence_header() {
    let hub = Hub::new();
    let src = hub.source(&key(), SourceOptions::default());
    let p = src.publish(1).unwrap();
    // vpcC (profile 0, level 1.0, 8-bit 4:2:0): no picture size in it.
    let vsh: &[u8] = b"\x90vp09\x01\x00\x00\x00\x00\x0a\x82\x02\x02\x02\x00\x00";
    // The starts of a 320x180 keyframe and an inter frame from libvpx-vp9 (ffmpeg 9), and a
    // 64x48 keyframe (see protocol::codec_info's tests).
    let key_320: &[u8] = b"\x91vp09\x82\x49\x83\x42\x00\x13\xf0\x0b\x36\x06";
    let inter: &[u8] = b"\xA1vp09\x86\x00\x40\x92\x9c\x48\x50\x00\x00\x12";
    let key_64: &[u8] = b"\x91vp09\xa2\x49\x83\x42\x00\x00\x7e\x00\x5e\xc0";
    p.push(MediaKind::Video, 0, Bytes::from_static(vsh));
    assert_eq!(src.frame_picture_size(), None, "no keyframe yet");
    p.push(MediaKind::Video, 0, Bytes::from_static(inter));
    assert_eq!(
        src.frame_picture_size(),
        None,
        "an inter frame says nothing"
    );
    p.push(MediaKind::Video, 40, Bytes::from_static(key_320));
    assert_eq!(src.frame_picture_size(), Some((320, 180)));
    p.push(MediaKind::Video, 80, Bytes::from_static(key_64));
    assert_eq!(
        src.frame_picture_size(),
        Some((320, 180)),
        "the first one counts"
    );
    // A new sequence header (the encoder restarted): the next keyframe gives the size.
    p.push(MediaKind::Video, 120, Bytes::from_static(vsh));
    assert_eq!(src.frame_picture_size(), None);
    p.push(MediaKind::Video, 160, Bytes::from_static(key_64));
    assert_eq!(src.frame_picture_size(), Some((64, 48)));
    // H.264 keeps its size in the record: nothing read from its frames.
    let h264 = hub.source(
        &StreamKey::new(crate::config::DEFAULT_VHOST, "live", "h"),
        SourceOptions::default(),
    );
    let p2 = h264.publish(2).unwrap();
    publish_gop(&p2, 0, 2);
    assert_eq!(h264.frame_picture_size(), None);
}

/// A merged writer reads nothing before its time, except a publish or unpublish event: the
/// end of a publish reaches players and file writers at once (a graceful quit waits for
/// them).
#[test]
fn merged_readers_wait_for_their_time_but_not_for_an_unpublish() {
    let hub = Hub::new();
    let src = hub.source(&key(), SourceOptions::default());
    let c = src.subscribe(QueueLimits::default(), TimeJitter::Full);
    let p = src.publish(1).unwrap();
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut out = Batch::default();
    let later = Some(WriteTime::at(
        std::time::Instant::now() + std::time::Duration::from_secs(60),
    ));
    // The Published event: at once.
    assert!(c
        .poll_batch(&mut cx, &mut out, usize::MAX, later, &|_| None)
        .is_ready());
    assert!(matches!(out.iter().next(), Some(Item::Published)));
    out.clear(0);
    publish_gop(&p, 0, 3);
    assert!(c
        .poll_batch(&mut cx, &mut out, usize::MAX, later, &|_| None)
        .is_pending());
    assert!(out.is_empty(), "frames wait for the merged write");
    drop(p);
    assert!(c
        .poll_batch(&mut cx, &mut out, usize::MAX, later, &|_| None)
        .is_ready());
    assert!(matches!(out.iter().last(), Some(Item::Unpublished)));
    assert_eq!(
        frames(&out.into_vec()).len(),
        7,
        "with the frames before it"
    );
}

/// A waker that counts its wake-ups.
struct Count(std::sync::atomic::AtomicUsize);

impl std::task::Wake for Count {
    fn wake(self: std::sync::Arc<Self>) {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }
}

/// A published source with one reader that was given a first GOP, and the waker its polls
/// use, which counts its wake-ups.
struct Reading {
    _hub: std::sync::Arc<Hub>,
    src: std::sync::Arc<Source>,
    c: Consumer,
    p: Publisher,
    count: std::sync::Arc<Count>,
    waker: std::task::Waker,
}

impl Reading {
    fn new() -> Reading {
        let hub = Hub::new();
        let src = hub.source(&key(), SourceOptions::default());
        let c = src.subscribe(QueueLimits::default(), TimeJitter::Full);
        let p = src.publish(1).unwrap();
        publish_gop(&p, 0, 1);
        let count = std::sync::Arc::new(Count(Default::default()));
        let waker = std::task::Waker::from(count.clone());
        Reading {
            _hub: hub,
            src,
            c,
            p,
            count,
            waker,
        }
    }

    fn woken(&self) -> usize {
        self.count.0.load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// SRS's `mw_msgs`: from its time, a merged write waits for more than `more_than` unread
/// messages (woken by the append that makes them), or until `until` (the hub's periodic
/// check wakes it when no such append comes).
#[test]
fn merged_readers_wait_for_more_than_mw_msgs_messages_or_until_their_limit() {
    use std::time::{Duration, Instant};
    let r = Reading::new();
    let (src, c, p) = (&r.src, &r.c, &r.p);
    let woken = || r.woken();
    let mut cx = std::task::Context::from_waker(&r.waker);
    let mut out = Batch::default();
    // The Published event and a first GOP: read at once (no merged write yet).
    assert!(c
        .poll_batch(&mut cx, &mut out, usize::MAX, None, &|_| None)
        .is_ready());
    out.clear(0);
    let now = Instant::now();
    let when = Some(WriteTime {
        at: now,
        more_than: 4,
        until: now + Duration::from_secs(60),
    });
    // (messages appended before the poll, ready, wake-ups so far)
    for (n, append, ready, wakes) in [(0, 0, false, 0), (1, 3, false, 0), (2, 1, false, 0)] {
        for k in 0..append {
            p.push(MediaKind::Audio, 100 + k, Bytes::from_static(&[0xAF, 1, 9]));
        }
        let r = c.poll_batch(&mut cx, &mut out, usize::MAX, when, &|_| None);
        assert_eq!(r.is_ready(), ready, "round {n}");
        assert_eq!(woken(), wakes, "round {n}");
    }
    // The fifth unread message wakes the player once, and it reads all five.
    p.push(MediaKind::Audio, 200, Bytes::from_static(&[0xAF, 1, 9]));
    assert_eq!(woken(), 1);
    assert!(c
        .poll_batch(&mut cx, &mut out, usize::MAX, when, &|_| None)
        .is_ready());
    assert_eq!(frames(&out.into_vec()).len(), 5);

    // Fewer messages than that: the limit. Appends before it wake no one; the periodic
    // check at the limit does.
    let mut out = Batch::default();
    let until = Instant::now() + Duration::from_millis(300);
    let when = Some(WriteTime {
        at: Instant::now(),
        more_than: 8,
        until,
    });
    p.push(MediaKind::Audio, 300, Bytes::from_static(&[0xAF, 1, 9]));
    assert!(c
        .poll_batch(&mut cx, &mut out, usize::MAX, when, &|_| None)
        .is_pending());
    p.push(MediaKind::Audio, 320, Bytes::from_static(&[0xAF, 1, 9]));
    assert_eq!(woken(), 1, "two messages of nine");
    src.wake_due(until - Duration::from_millis(1));
    assert_eq!(woken(), 1, "before the limit");
    src.wake_due(until);
    assert_eq!(woken(), 2, "at the limit");
    // Past its limit the read takes what there is.
    let past = Some(WriteTime {
        at: until - Duration::from_secs(1),
        more_than: 8,
        until: until - Duration::from_millis(500),
    });
    assert!(c
        .poll_batch(&mut cx, &mut out, usize::MAX, past, &|_| None)
        .is_ready());
    assert_eq!(frames(&out.into_vec()).len(), 2);
}

/// A read that takes everything registers the merged write that follows it (`then`): the
/// poll after the write is answered without the source's lock, the first append at or after
/// that time wakes the player, and a publish or unpublish in between is not missed.
#[test]
fn a_read_arms_the_next_merged_write() {
    use std::time::{Duration, Instant};
    let Reading {
        _hub,
        src,
        c,
        p,
        count,
        waker,
    } = Reading::new();
    let woken = || count.0.load(std::sync::atomic::Ordering::Relaxed);
    let mut cx = std::task::Context::from_waker(&waker);
    let mut out = Batch::default();
    let at = Instant::now() + Duration::from_millis(40);
    let then = move |_: Instant| Some(WriteTime::at(at));
    assert!(c
        .poll_batch(&mut cx, &mut out, usize::MAX, None, &then)
        .is_ready());
    out.clear(0);
    // After the write: its time has not come.
    let when = Some(WriteTime::at(at));
    assert!(c
        .poll_batch(&mut cx, &mut out, usize::MAX, when, &then)
        .is_pending());
    p.push(MediaKind::Audio, 100, Bytes::from_static(&[0xAF, 1, 9]));
    assert_eq!(woken(), 0, "an append before the write's time wakes nobody");
    std::thread::sleep(Duration::from_millis(50));
    p.push(MediaKind::Audio, 150, Bytes::from_static(&[0xAF, 1, 9]));
    assert_eq!(
        woken(),
        1,
        "the first append at or after it wakes the player"
    );
    assert!(c
        .poll_batch(&mut cx, &mut out, usize::MAX, when, &then)
        .is_ready());
    assert_eq!(frames(&out.into_vec()).len(), 2);

    // Armed for a time far off, then the stream is unpublished: the player is woken and
    // reads the event at once.
    let mut out = Batch::default();
    p.push(MediaKind::Audio, 200, Bytes::from_static(&[0xAF, 1, 9]));
    let far = Instant::now() + Duration::from_secs(60);
    let then = move |_: Instant| Some(WriteTime::at(far));
    assert!(c
        .poll_batch(&mut cx, &mut out, usize::MAX, None, &then)
        .is_ready());
    out.clear(0);
    let when = Some(WriteTime::at(far));
    assert!(c
        .poll_batch(&mut cx, &mut out, usize::MAX, when, &then)
        .is_pending());
    drop(p);
    assert_eq!(woken(), 2, "the unpublish wakes the armed player");
    assert!(c
        .poll_batch(&mut cx, &mut out, usize::MAX, when, &then)
        .is_ready());
    assert!(matches!(out.iter().last(), Some(Item::Unpublished)));
    // And a publish after it: the next read is not held by the old registration.
    let mut out = Batch::default();
    let p = src.publish(2).unwrap();
    assert!(c
        .poll_batch(&mut cx, &mut out, usize::MAX, when, &then)
        .is_ready());
    assert!(matches!(out.iter().next(), Some(Item::Published)));
    drop(p);
}
