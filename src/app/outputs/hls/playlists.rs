//! The state of every HLS playlist the server writes, by m3u8 file: owned by the server
//! (`Context::hls_playlists`), bounded, and evicted once a stream has been gone a while.
//!
//! A playlist's state (numbering, window, target duration) outlives one publish so that a
//! republish continues the numbering with an `EXT-X-DISCONTINUITY`, as SRS does. It is not
//! kept forever: a playlist without a publisher for [`IDLE_KEEP`] (and with no retired
//! segment left to delete) is forgotten, and the table never holds more than [`MAX_PLAYLISTS`]
//! idle ones. A stream published again after that starts a new playlist at sequence 0.

use super::Memo;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// How long the state of a playlist without a publisher is kept (a republish within it
/// continues the numbering). Longer than any player keeps polling a playlist that stopped.
pub const IDLE_KEEP: Duration = Duration::from_secs(300);

/// Playlists without a publisher the table keeps at most; past it the longest idle go.
pub const MAX_PLAYLISTS: usize = 1024;

/// Playlist states by m3u8 path (the file is the identity of a playlist).
#[derive(Debug)]
pub struct Playlists {
    map: Mutex<HashMap<PathBuf, Memo>>,
    idle_keep: Duration,
    max_idle: usize,
}

impl Default for Playlists {
    fn default() -> Self {
        Playlists::new(IDLE_KEEP, MAX_PLAYLISTS)
    }
}

impl Playlists {
    /// A table that forgets a playlist idle for `idle_keep` and keeps at most `max_idle`
    /// idle ones.
    pub fn new(idle_keep: Duration, max_idle: usize) -> Playlists {
        Playlists {
            map: Mutex::new(HashMap::new()),
            idle_keep,
            max_idle,
        }
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, HashMap<PathBuf, Memo>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Playlists known now (published or idle).
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no playlist is known.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A publish of `m3u8` starts: evicts what expired, then bumps the playlist's generation.
    pub(super) fn begin(&self, m3u8: &Path, now: Instant) {
        let mut m = self.lock();
        self.evict(&mut m, now);
        let memo = m.entry(m3u8.to_path_buf()).or_default();
        memo.generation += 1;
        memo.publishing += 1;
        memo.idle_since = None;
    }

    /// A publish of `m3u8` ended: the playlist is idle from `now` unless another publishes it.
    pub(super) fn end(&self, m3u8: &Path, now: Instant) {
        let mut m = self.lock();
        if let Some(memo) = m.get_mut(m3u8) {
            memo.publishing = memo.publishing.saturating_sub(1);
            if memo.publishing == 0 {
                memo.idle_since = Some(now);
            }
        }
        self.evict(&mut m, now);
    }

    /// Forgets idle playlists that expired (nothing retired left to delete), then the
    /// longest idle ones past the cap.
    fn evict(&self, m: &mut HashMap<PathBuf, Memo>, now: Instant) {
        m.retain(|_, x| match x.idle_since {
            Some(t) => {
                !(now.saturating_duration_since(t) >= self.idle_keep && x.retired.is_empty())
            }
            None => true,
        });
        // Past the cap, the longest idle go (one at a time: the cap is passed by one publish).
        while m.values().filter(|x| x.idle_since.is_some()).count() > self.max_idle {
            let oldest = m
                .iter()
                .filter_map(|(p, x)| x.idle_since.map(|t| (t, p)))
                .min_by_key(|(t, _)| *t)
                .map(|(_, p)| p.clone());
            let Some(x) = oldest.as_ref().and_then(|p| m.remove(p)) else {
                break;
            };
            if !x.retired.is_empty() {
                log::warn!(
                    "hls {}: forgotten with {} retired segments left on disk (more than {} \
                     idle playlists)",
                    oldest.unwrap_or_default().display(),
                    x.retired.len(),
                    self.max_idle
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_playlists_are_forgotten_after_a_while_and_bounded_in_number() {
        let t0 = Instant::now();
        let p = Playlists::new(Duration::from_secs(60), 4);
        // 10 streams published and gone, one still live.
        for i in 0..10 {
            let m3u8 = PathBuf::from(format!("/hls/live/s{i}.m3u8"));
            p.begin(&m3u8, t0);
            p.end(&m3u8, t0 + Duration::from_secs(i));
        }
        let live = Path::new("/hls/live/on.m3u8");
        p.begin(live, t0);
        assert_eq!(p.len(), 5, "4 idle kept (the newest) + the live one");
        assert!(p.lock().contains_key(Path::new("/hls/live/s9.m3u8")));
        assert!(!p.lock().contains_key(Path::new("/hls/live/s0.m3u8")));
        // A republish within the idle time continues the playlist.
        let s9 = Path::new("/hls/live/s9.m3u8");
        p.lock().get_mut(s9).unwrap().next_seq = 7;
        p.begin(s9, t0 + Duration::from_secs(20));
        assert_eq!(p.lock()[s9].next_seq, 7);
        assert_eq!(p.lock()[s9].generation, 2);
        p.end(s9, t0 + Duration::from_secs(30));
        // Long after, only the live one is left.
        p.begin(live, t0 + Duration::from_secs(200));
        assert_eq!(p.len(), 1);
        p.end(live, t0 + Duration::from_secs(200));
        p.end(live, t0 + Duration::from_secs(200));
        assert_eq!(p.len(), 1, "still idle less than 60 s");
        p.begin(Path::new("/x.m3u8"), t0 + Duration::from_secs(261));
        assert_eq!(p.len(), 1, "only the new one");
    }

    #[test]
    fn a_playlist_with_retired_segments_to_delete_stays_until_they_are_gone() {
        let t0 = Instant::now();
        let p = Playlists::new(Duration::from_secs(60), 4);
        let a = Path::new("/a.m3u8");
        p.begin(a, t0);
        p.lock()
            .get_mut(a)
            .unwrap()
            .retired
            .push_back(super::super::Retired {
                path: "/a-0.ts".into(),
                until: 1.0,
            });
        p.end(a, t0);
        p.begin(Path::new("/b.m3u8"), t0 + Duration::from_secs(100));
        assert!(
            p.lock().contains_key(a),
            "its retired segment is still to delete"
        );
        p.lock().get_mut(a).unwrap().retired.clear();
        p.begin(Path::new("/b.m3u8"), t0 + Duration::from_secs(100));
        assert!(!p.lock().contains_key(a));
    }
}
