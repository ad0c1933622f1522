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
    assert!(slow.dropped() > 4000);
    slow.try_recv(&mut out, usize::MAX);
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
