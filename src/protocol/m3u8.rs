//! HLS media playlists (RFC 8216), written the way SRS writes them.
//!
//! ```text
//! #EXTM3U
//! #EXT-X-VERSION:3
//! #EXT-X-MEDIA-SEQUENCE:12
//! #EXT-X-DISCONTINUITY-SEQUENCE:1
//! #EXT-X-TARGETDURATION:10
//! #EXT-X-DISCONTINUITY
//! #EXTINF:9.960,
//! live-12.ts
//! #EXT-X-ENDLIST
//! ```
//!
//! Version 3 because durations are decimal (RFC 8216 §4.3.2.1 needs version 3 for them).
//! `EXT-X-DISCONTINUITY-SEQUENCE` (§4.3.3.3) is written once a segment tagged
//! `EXT-X-DISCONTINUITY` has left a live window (§6.2.2 asks the server to count them); SRS
//! never writes it, and players then misalign the timelines of the segments around a republish.

use std::fmt::Write;

/// One media segment of a playlist.
#[derive(Debug, Clone, PartialEq)]
pub struct Segment {
    /// Media sequence number of the segment.
    pub sequence: u64,
    /// Duration in seconds.
    pub duration: f64,
    /// URI as written in the playlist (relative to it, or with `entry_prefix`).
    pub uri: String,
    /// The segment follows a break in timestamps or encoding (e.g. a republish).
    pub discontinuity: bool,
}

/// A live (sliding window) or ended media playlist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Playlist {
    /// The configured target duration in whole seconds; [`Playlist::render`] raises it if a
    /// segment is longer.
    pub target_duration: u64,
    /// `EXT-X-MEDIA-SEQUENCE`: the sequence number of the first segment listed.
    pub media_sequence: u64,
    /// `EXT-X-DISCONTINUITY-SEQUENCE`: how many segments tagged `EXT-X-DISCONTINUITY` have
    /// left the playlist so far. Written only when not 0 (absent means 0).
    pub discontinuity_sequence: u64,
    pub segments: Vec<Segment>,
    /// Adds `EXT-X-ENDLIST`: the stream stopped and no segment will be added.
    pub ended: bool,
}

impl Playlist {
    /// `EXT-X-TARGETDURATION`: RFC 8216 §4.3.3.1 requires every `EXTINF` duration, rounded to
    /// the nearest integer, to be at most this. srsd uses the configured value, raised to the
    /// ceiling of the longest segment as written (three decimals), which is stricter than the
    /// rule and keeps players that round up (some do) happy too.
    pub fn effective_target_duration(&self) -> u64 {
        self.segments
            .iter()
            .map(|s| target_for(s.duration))
            .fold(self.target_duration, u64::max)
    }

    /// The playlist text, lines ending in `\n`.
    pub fn render(&self) -> String {
        let mut text = String::with_capacity(96 + self.segments.len() * 64);
        // Writing to a String cannot fail; the results are ignored for that reason.
        let _ = write!(
            text,
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:{}\n",
            self.media_sequence
        );
        if self.discontinuity_sequence > 0 {
            let _ = writeln!(
                text,
                "#EXT-X-DISCONTINUITY-SEQUENCE:{}",
                self.discontinuity_sequence
            );
        }
        let _ = writeln!(
            text,
            "#EXT-X-TARGETDURATION:{}",
            self.effective_target_duration()
        );
        for s in &self.segments {
            if s.discontinuity {
                text.push_str("#EXT-X-DISCONTINUITY\n");
            }
            let ms = written_millis(s.duration);
            let _ = writeln!(text, "#EXTINF:{}.{:03},", ms / 1000, ms % 1000);
            push_uri(&mut text, &s.uri);
            text.push('\n');
        }
        if self.ended {
            text.push_str("#EXT-X-ENDLIST\n");
        }
        text
    }
}

/// The smallest `EXT-X-TARGETDURATION` (whole seconds) that covers a segment of `seconds`:
/// the ceiling of the duration as the playlist writes it (three decimals).
pub fn target_for(seconds: f64) -> u64 {
    (written_millis(seconds) as u64).div_ceil(1000)
}

/// The duration in whole milliseconds, as the playlist states it. NaN, negative and absurd
/// values (from broken timestamps) become 0 or are capped at a day rather than written.
fn written_millis(seconds: f64) -> i64 {
    const DAY_MS: f64 = 86_400_000.0;
    let ms = (seconds * 1000.0).round();
    if ms.is_nan() || ms <= 0.0 {
        0
    } else {
        ms.min(DAY_MS) as i64
    }
}

/// Writes a URI on its own line. Stream names come from publishers, so a line break in one
/// must not inject playlist tags: CR and LF are percent-encoded.
fn push_uri(text: &mut String, uri: &str) {
    for c in uri.chars() {
        match c {
            '\r' => text.push_str("%0D"),
            '\n' => text.push_str("%0A"),
            c => text.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(sequence: u64, duration: f64, discontinuity: bool) -> Segment {
        Segment {
            sequence,
            duration,
            uri: format!("live/livestream-{sequence}.ts"),
            discontinuity,
        }
    }

    #[test]
    fn renders_a_live_window() {
        let p = Playlist {
            target_duration: 10,
            media_sequence: 12,
            discontinuity_sequence: 0,
            segments: vec![
                seg(12, 9.96, false),
                seg(13, 10.0, false),
                seg(14, 3.2004, true),
            ],
            ended: false,
        };
        assert_eq!(
            p.render(),
            "#EXTM3U\n\
             #EXT-X-VERSION:3\n\
             #EXT-X-MEDIA-SEQUENCE:12\n\
             #EXT-X-TARGETDURATION:10\n\
             #EXTINF:9.960,\n\
             live/livestream-12.ts\n\
             #EXTINF:10.000,\n\
             live/livestream-13.ts\n\
             #EXT-X-DISCONTINUITY\n\
             #EXTINF:3.200,\n\
             live/livestream-14.ts\n"
        );
    }

    #[test]
    fn discontinuity_sequence_is_written_once_not_zero() {
        let p = Playlist {
            target_duration: 9,
            media_sequence: 40,
            discontinuity_sequence: 2,
            segments: vec![seg(40, 8.333, false), seg(41, 8.334, true)],
            ended: false,
        };
        assert_eq!(
            p.render(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:40\n\
             #EXT-X-DISCONTINUITY-SEQUENCE:2\n#EXT-X-TARGETDURATION:9\n\
             #EXTINF:8.333,\nlive/livestream-40.ts\n\
             #EXT-X-DISCONTINUITY\n#EXTINF:8.334,\nlive/livestream-41.ts\n"
        );
        assert_eq!(target_for(8.3334), 9);
        assert_eq!(target_for(9.0004), 9);
        assert_eq!(target_for(0.0), 0);
    }

    #[test]
    fn renders_an_ended_playlist() {
        let p = Playlist {
            target_duration: 6,
            media_sequence: 0,
            discontinuity_sequence: 0,
            segments: vec![seg(0, 6.0, false)],
            ended: true,
        };
        assert_eq!(
            p.render(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TARGETDURATION:6\n\
             #EXTINF:6.000,\nlive/livestream-0.ts\n#EXT-X-ENDLIST\n"
        );
    }

    #[test]
    fn renders_an_empty_playlist() {
        let p = Playlist {
            target_duration: 5,
            ..Playlist::default()
        };
        assert_eq!(
            p.render(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TARGETDURATION:5\n"
        );
    }

    #[test]
    fn target_duration_covers_the_longest_segment() {
        let mut p = Playlist {
            target_duration: 10,
            ..Playlist::default()
        };
        let table = [
            (vec![], 10),
            (vec![9.5, 10.0], 10),
            // 10.0004 is written as 10.000 and needs no more.
            (vec![10.0004], 10),
            (vec![10.0006], 11),
            (vec![3.0, 12.3, 4.0], 13),
            (vec![f64::NAN, -1.0], 10),
        ];
        for (durations, expected) in table {
            p.segments = durations
                .iter()
                .enumerate()
                .map(|(i, d)| seg(i as u64, *d, false))
                .collect();
            assert_eq!(p.effective_target_duration(), expected, "{durations:?}");
        }
    }

    #[test]
    fn broken_durations_and_uris_cannot_break_the_text() {
        let p = Playlist {
            target_duration: 2,
            media_sequence: 1,
            discontinuity_sequence: 0,
            segments: vec![
                Segment {
                    sequence: 1,
                    duration: f64::NAN,
                    uri: "a\n#EXT-X-ENDLIST\r.ts".into(),
                    discontinuity: false,
                },
                seg(2, f64::INFINITY, false),
            ],
            ended: false,
        };
        assert_eq!(
            p.render(),
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-MEDIA-SEQUENCE:1\n#EXT-X-TARGETDURATION:86400\n\
             #EXTINF:0.000,\na%0A#EXT-X-ENDLIST%0D.ts\n\
             #EXTINF:86400.000,\nlive/livestream-2.ts\n"
        );
    }
}
