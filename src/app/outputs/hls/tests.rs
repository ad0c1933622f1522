//! The segmenter on synthetic streams: cuts, playlists, retirement, discontinuities.

use super::*;
use crate::hub::MediaKind;
use crate::protocol::ts::{pid, PACKET_SIZE};
use bytes::Bytes;
use std::collections::HashMap;
use tokio::sync::mpsc;

#[test]
fn video_is_cut_only_on_keyframes_once_the_fragment_passed() {
    // (open, keyframe, duration, tracks_changed) -> cut; fragment 2000.
    let table = [
        ((false, true, 0, false), true),
        ((false, false, 0, false), false),
        ((true, true, 1999, false), false),
        ((true, true, 2000, false), true),
        // However long the GOP, no cut between keyframes (SRS cut at fragment*td_ratio).
        ((true, false, 2000, false), false),
        ((true, false, 3000, false), false),
        ((true, false, 60_000, false), false),
        ((true, true, 8333, false), true),
        // A track appeared: the next keyframe cuts, so the PMT lists it.
        ((true, true, 500, true), true),
        ((true, false, 500, true), false),
    ];
    for ((open, key, d, changed), want) in table {
        assert_eq!(
            video_cut(open, key, d, 2000, changed),
            want,
            "open={open} key={key} d={d} changed={changed}"
        );
    }
}

fn temp(name: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("srsd-hls-unit-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn config(dir: &Path) -> HlsConfig {
    HlsConfig {
        enabled: true,
        path: dir.display().to_string(),
        ..HlsConfig::default()
    }
}

/// Sequence headers, then video at `fps` with a keyframe every `gop` frames and AAC every
/// 23 ms, with timestamps in [from_ms, to_ms).
fn stream(from_ms: i64, to_ms: i64, fps: i64, gop: i64) -> Vec<Frame> {
    let avc = crate::protocol::testutil::avc_sequence_header();
    let mut out = vec![
        Frame::new(MediaKind::Video, from_ms, 0, Bytes::from(avc)),
        Frame::new(
            MediaKind::Audio,
            from_ms,
            0,
            Bytes::from_static(&[0xAF, 0, 0x12, 0x10]),
        ),
    ];
    let mut audio = from_ms;
    for i in 0.. {
        let v = from_ms + i * 1000 / fps;
        if v >= to_ms {
            break;
        }
        while audio < v {
            out.push(Frame::new(
                MediaKind::Audio,
                audio,
                0,
                Bytes::from_static(&[0xAF, 1, 0x21, 0x10, 0x04]),
            ));
            audio += 23;
        }
        let key = i % gop == 0;
        let nalu: &[u8] = if key {
            &[0x65, 0x88, 0x84]
        } else {
            &[0x41, 0x9A, 0x02]
        };
        let mut p = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, 0, 0, 0, 3];
        p.extend_from_slice(nalu);
        out.push(Frame::new(MediaKind::Video, v, 0, Bytes::from(p)));
    }
    out
}

fn feed(seg: &mut Segmenter, frames: &[Frame]) {
    for f in frames {
        seg.handle(f).unwrap();
    }
}

fn events(rx: &mut mpsc::Receiver<SegmentEvent>) -> Vec<SegmentEvent> {
    std::iter::from_fn(|| rx.try_recv().ok()).collect()
}

/// The playlists of these tests (each test has its own directory).
fn playlists() -> Arc<Playlists> {
    static P: std::sync::OnceLock<Arc<Playlists>> = std::sync::OnceLock::new();
    P.get_or_init(Default::default).clone()
}

fn memo_of(m3u8: &Path) -> Memo {
    playlists().lock().get(m3u8).cloned().unwrap_or_default()
}

/// The elementary stream bytes in the first packet of the first video PES of a TS file.
fn first_video_payload(ts: &[u8]) -> &[u8] {
    let p = ts
        .chunks(PACKET_SIZE)
        .find(|p| u16::from(p[1] & 0x1F) << 8 | u16::from(p[2]) == pid::VIDEO)
        .expect("a video packet");
    assert!(p[1] & 0x40 != 0, "a PES starts the segment's video");
    let start = if p[3] & 0x20 != 0 {
        5 + p[4] as usize
    } else {
        4
    };
    // Past the PES header (9 bytes + its optional fields).
    let pes = &p[start..];
    &pes[9 + pes[8] as usize..]
}

#[test]
fn an_obs_gop_makes_whole_gop_segments_each_starting_with_sps_pps_idr() {
    let dir = temp("gop");
    let (tx, mut rx) = mpsc::channel(64);
    let key = StreamKey::new("__defaultVhost__", "live", "obs");
    let mut seg = Segmenter::new(config(&dir), key, Some(tx), Storage::Disk, playlists());
    // OBS's default: 30 fps, a keyframe every 250 frames (8.333 s); 60 s.
    feed(&mut seg, &stream(0, 60_000, 30, 250));
    seg.finish().unwrap();
    let got = events(&mut rx);
    let d: Vec<f64> = got.iter().map(|e| e.duration).collect();
    assert_eq!(d.len(), 8, "{d:?}");
    for x in &d[..7] {
        assert!((8.3..=8.34).contains(x), "{d:?}");
    }
    let m3u8 = seg.m3u8_path().to_path_buf();
    let memo = memo_of(&m3u8);
    assert!(memo.gop_warned, "the long GOP was reported");
    assert_eq!(memo.target_duration, 9);
    // Window 12 s, but never under three target durations (27 s).
    let listed: f64 = memo.window.iter().map(|d| d.duration).sum();
    let first = memo.window.front().map_or(0.0, |d| d.duration);
    assert!(listed >= 27.0 && listed - first < 27.0, "{listed}");
    assert_eq!(memo.window.front().map(|d| d.seq), Some(3));
    let text = std::fs::read_to_string(&m3u8).unwrap();
    assert!(text.contains("#EXT-X-TARGETDURATION:9\n"), "{text}");
    // Every listed segment starts with AUD/SPS/PPS/IDR, and counters run on across them.
    let mut next_cc: HashMap<u16, u8> = HashMap::new();
    for d in &memo.window {
        let ts = std::fs::read(&d.path).unwrap();
        let pes = first_video_payload(&ts);
        let nal_types: Vec<u8> = pes
            .windows(4)
            .filter(|w| w[..3] == [0, 0, 1])
            .map(|w| w[3] & 0x1F)
            .collect();
        assert_eq!(&nal_types[..4], &[9, 7, 8, 5], "segment {}", d.seq);
        for p in ts.chunks(PACKET_SIZE) {
            let pid = u16::from(p[1] & 0x1F) << 8 | u16::from(p[2]);
            let cc = p[3] & 0x0F;
            if let Some(want) = next_cc.get(&pid) {
                assert_eq!(cc, *want, "pid {pid:#x} in segment {}", d.seq);
            }
            next_cc.insert(pid, (cc + 1) & 0x0F);
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn segments_that_left_stay_on_disk_until_they_expire() {
    let dir = temp("retire");
    let key = StreamKey::new("__defaultVhost__", "live", "x");
    let mut seg = Segmenter::new(config(&dir), key, None, Storage::Disk, playlists());
    // 3 minutes of 8.333 s segments: the window lists about 5 (41.7 s with the new one),
    // a segment that leaves is kept for its 8.3 s plus the 41.7 s of the playlist.
    feed(&mut seg, &stream(0, 180_000, 30, 250));
    let memo = memo_of(seg.m3u8_path());
    let on_disk: Vec<String> = std::fs::read_dir(dir.join("live"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".ts"))
        .collect();
    let kept: std::collections::HashSet<PathBuf> = memo
        .window
        .iter()
        .map(|d| d.path.clone())
        .chain(memo.retired.iter().map(|r| r.path.clone()))
        .collect();
    assert_eq!(on_disk.len(), kept.len(), "{on_disk:?}");
    assert!(kept.iter().all(|p| p.exists()));
    assert!(
        !memo.retired.is_empty() && memo.retired.len() <= 7,
        "{memo:?}"
    );
    assert!(memo.retired.iter().all(|r| r.until > memo.clock));
    assert!(!dir.join("live/x-0.ts").exists(), "expired and deleted");
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn short_gops_are_not_reported() {
    let dir = temp("short-gop");
    let key = StreamKey::new("__defaultVhost__", "live", "s");
    let mut seg = Segmenter::new(config(&dir), key, None, Storage::Disk, playlists());
    // 1.5 s GOP: segments of 3 s (fragment 2 reached at 1.5 s? no: at 3 s), no warning.
    feed(&mut seg, &stream(0, 20_000, 25, 37));
    seg.finish().unwrap();
    let memo = memo_of(seg.m3u8_path());
    assert!(!memo.gop_warned);
    assert_eq!(memo.target_duration, 3);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_publisher_stopping_right_after_a_keyframe_leaves_no_tiny_segment() {
    let dir = temp("tiny");
    let (tx, mut rx) = mpsc::channel(64);
    let key = StreamKey::new("__defaultVhost__", "live", "t");
    let mut seg = Segmenter::new(config(&dir), key, Some(tx), Storage::Disk, playlists());
    // 1 s GOP to 8 s, then the keyframe at 8 s opens a segment, and the publisher stops.
    let mut frames = stream(0, 8040, 25, 25);
    frames.retain(|f| f.dts < 8000 || f.kind == MediaKind::Video);
    feed(&mut seg, &frames);
    seg.finish().unwrap();
    let got = events(&mut rx);
    let d: Vec<f64> = got.iter().map(|e| e.duration).collect();
    assert_eq!(d, vec![2.0; 4], "no on_hls for the one-frame segment");
    let text = std::fs::read_to_string(seg.m3u8_path()).unwrap();
    assert!(!text.contains("#EXTINF:0.000"), "{text}");
    assert!(!dir.join("live/t-4.ts").exists() && !dir.join("live/t-4.ts.tmp").exists());
    // Its number goes to the next segment.
    assert_eq!(memo_of(seg.m3u8_path()).next_seq, 4);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_republish_is_a_discontinuity_counted_once_it_slides_out() {
    let dir = temp("republish");
    let key = StreamKey::new("__defaultVhost__", "live", "r");
    let mut first = Segmenter::new(config(&dir), key.clone(), None, Storage::Disk, playlists());
    // A long GOP first: the target grows to 5 and must stay there.
    feed(&mut first, &stream(0, 20_000, 25, 110));
    first.finish().unwrap();
    let m3u8 = first.m3u8_path().to_path_buf();
    assert_eq!(memo_of(&m3u8).target_duration, 5);
    let mut second = Segmenter::new(config(&dir), key, None, Storage::Disk, playlists());
    feed(&mut second, &stream(0, 6_000, 25, 25));
    let text = std::fs::read_to_string(&m3u8).unwrap();
    assert_eq!(text.matches("#EXT-X-DISCONTINUITY\n").count(), 1, "{text}");
    assert!(!text.contains("DISCONTINUITY-SEQUENCE"), "{text}");
    assert!(
        text.contains("#EXT-X-TARGETDURATION:5\n"),
        "never lowered: {text}"
    );
    // Long after: the republish's first segment left the window, and is counted.
    feed(&mut second, &stream(6_000, 60_000, 25, 25));
    second.finish().unwrap();
    let text = std::fs::read_to_string(&m3u8).unwrap();
    assert!(!text.contains("#EXT-X-DISCONTINUITY\n"), "{text}");
    assert!(text.contains("#EXT-X-DISCONTINUITY-SEQUENCE:1\n"), "{text}");
    assert!(text.contains("#EXT-X-TARGETDURATION:5\n"), "{text}");
    let _ = std::fs::remove_dir_all(&dir);
}
