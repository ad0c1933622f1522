//! Timestamps: the source's one-time repair of the publisher's timeline, and each consumer's
//! rebase (`time_jitter`).
//!
//! The wire carries 32-bit millisecond timestamps that wrap after 49.7 days and need the
//! extended form after 4.66 hours; inside, everything is 64-bit, so neither is an event.

/// How a consumer's timeline starts (SRS's `time_jitter`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TimeJitter {
    /// Start at 0 on the repaired (monotonic, jump-free) timeline.
    #[default]
    Full,
    /// Start at 0 on the publisher's own timeline, without repairs.
    Zero,
    /// Pass the publisher's timestamps through.
    Off,
}

/// A forward jump larger than this, or a backward one larger than [`MAX_BACKWARD_MS`], is a
/// discontinuity (encoder restart, broken muxer) and is collapsed to [`FILL_MS`].
pub const MAX_FORWARD_MS: i64 = 5_000;
pub const MAX_BACKWARD_MS: i64 = 1_000;
pub const FILL_MS: i64 = 10;

/// The source's timeline repair: unwraps 32-bit timestamps into 64 bits, collapses jumps, and
/// keeps each kind (audio, video, data) monotonic. Audio may still lag video a little, as it
/// does in every FLV stream.
#[derive(Debug, Default, Clone)]
pub struct Repair {
    last_raw: Option<u32>,
    last_out: i64,
    last_by_kind: [i64; 3],
    seen_kind: [bool; 3],
}

impl Repair {
    /// Maps a raw timestamp of a frame of `kind` (0 audio, 1 video, 2 data) to the repaired
    /// 64-bit timeline.
    pub fn map(&mut self, raw: u32, kind: usize) -> i64 {
        self.map_with_delta(raw, kind).0
    }

    /// [`Repair::map`], and the ms since the previous frame of the same kind on the repaired
    /// timeline (`None` for the kind's first frame, or past 32 bits).
    pub fn map_with_delta(&mut self, raw: u32, kind: usize) -> (i64, Option<u32>) {
        let out = match self.last_raw {
            None => raw as i64,
            Some(last) => {
                // The signed 32-bit difference unwraps a 2^32 wrap into a small step.
                let mut d = raw.wrapping_sub(last) as i32 as i64;
                if !(-MAX_BACKWARD_MS..=MAX_FORWARD_MS).contains(&d) {
                    d = FILL_MS;
                }
                (self.last_out + d).max(0)
            }
        };
        self.last_raw = Some(raw);
        self.last_out = out;
        let k = kind.min(2);
        let out = out.max(self.last_by_kind[k]);
        let delta = self.seen_kind[k]
            .then(|| u32::try_from(out - self.last_by_kind[k]).ok())
            .flatten();
        self.last_by_kind[k] = out;
        self.seen_kind[k] = true;
        (out, delta)
    }
}

/// How far behind a player's timeline a header's own time must be to count as a cached
/// header sent again (ms).
const RESENT_HEADER_MS: i64 = 1000;

/// A consumer's rebase of the source timeline onto its own.
#[derive(Debug, Clone, Default)]
pub struct Rebase {
    mode: TimeJitter,
    base: Option<i64>,
    base_raw: Option<u32>,
    /// Where a restarted timeline resumes (`Full` keeps players monotonic across republish).
    resume_at: i64,
    last_out: i64,
    /// A media frame went out on this timeline: only then does a restart move it forward.
    sent_media: bool,
}

impl Rebase {
    pub fn new(mode: TimeJitter) -> Self {
        Rebase {
            mode,
            base: None,
            base_raw: None,
            resume_at: 0,
            last_out: 0,
            sent_media: false,
        }
    }

    /// The correction this rebase applies.
    pub fn mode(&self) -> TimeJitter {
        self.mode
    }

    /// Forgets the base (a new publisher started: the player's timeline restarts too).
    /// With `Full`, the timeline continues just after the last frame sent, so players see it
    /// monotonic across a republish; a player that has seen no media yet (it waited for the
    /// publisher) still starts at 0, metadata and sequence headers included: ffmpeg reads
    /// an onMetaData stamped other than 0 as a subtitle ("text") stream.
    pub fn reset(&mut self) {
        self.base = None;
        self.base_raw = None;
        if self.sent_media {
            self.resume_at = self.last_out + FILL_MS;
        }
    }

    /// The timestamp to send for a frame. Headers and metadata (`anchor = false`) never set
    /// the base: a cached sequence header is older than the GOP it precedes.
    #[inline]
    pub fn map(&mut self, dts: i64, raw: u32, anchor: bool) -> u32 {
        match self.mode {
            TimeJitter::Off => raw,
            TimeJitter::Full => {
                let base = match self.base {
                    Some(b) => b,
                    None if anchor => *self.base.insert(dts - self.resume_at),
                    None => return self.resume_at as u32,
                };
                let mut out = (dts - base).max(0);
                if !anchor && out + RESENT_HEADER_MS < self.last_out {
                    // A cached header sent again mid-stream (to a player that fell behind
                    // the stream's log) goes out where the player is, not back at its age.
                    // A header of the live stream keeps its own time: it may sit a few ms
                    // behind the other track's last frame.
                    out = self.last_out;
                }
                self.last_out = self.last_out.max(out);
                self.sent_media |= anchor;
                out as u32
            }
            TimeJitter::Zero => {
                let base = match self.base_raw {
                    Some(b) => b,
                    None if anchor => *self.base_raw.insert(raw),
                    None => return 0,
                };
                raw.wrapping_sub(base)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_sent_again_mid_stream_does_not_go_back_in_time() {
        let mut r = Rebase::new(TimeJitter::Full);
        assert_eq!(r.map(0, 0, false), 0, "the header before the first frame");
        assert_eq!(r.map(1000, 1000, true), 0);
        assert_eq!(r.map(5000, 5000, true), 4000);
        assert_eq!(r.map(0, 0, false), 4000, "the cached header, sent again");
        assert_eq!(r.map(5040, 5040, true), 4040);
        // A live header a few ms behind the other track keeps its time.
        assert_eq!(r.map(5020, 5020, false), 4020);
    }

    #[test]
    fn repair_gives_each_kind_its_delta_from_its_own_previous_frame() {
        let mut r = Repair::default();
        assert_eq!(
            r.map_with_delta(1000, 1),
            (1000, None),
            "the first video frame"
        );
        assert_eq!(
            r.map_with_delta(1010, 0),
            (1010, None),
            "the first audio frame"
        );
        assert_eq!(r.map_with_delta(1040, 1), (1040, Some(40)));
        assert_eq!(r.map_with_delta(1033, 0), (1033, Some(23)));
        // A jump collapsed by the repair (to 10 ms after the last frame of either kind): the
        // delta is the repaired one.
        assert_eq!(r.map_with_delta(900_000, 1), (1043, Some(3)));
        // A kind going back is held at its own last time: never a negative delta.
        assert_eq!(r.map_with_delta(899_990, 0), (1033, Some(0)));
        assert_eq!(r.map_with_delta(900_020, 0), (1063, Some(30)));
    }

    #[test]
    fn repair_unwraps_the_32_bit_wrap() {
        let mut r = Repair::default();
        let start = u32::MAX - 100;
        let mut prev = r.map(start, 1);
        for i in 1..200u32 {
            let out = r.map(start.wrapping_add(i * 10), 1);
            assert_eq!(out - prev, 10, "step {i}");
            prev = out;
        }
        assert!(prev > u32::MAX as i64);
    }

    #[test]
    fn repair_collapses_jumps_and_keeps_kinds_monotonic() {
        let mut r = Repair::default();
        assert_eq!(r.map(1000, 1), 1000);
        assert_eq!(r.map(1040, 1), 1040);
        assert_eq!(r.map(1_000_000, 1), 1050, "forward jump collapsed");
        assert_eq!(r.map(1_000_040, 1), 1090);
        assert_eq!(r.map(1_000_020, 0), 1070, "audio may lag video a little");
        assert_eq!(
            r.map(5, 1),
            1090,
            "backward jump collapsed, video monotonic"
        );
    }

    #[test]
    fn rebase_modes() {
        let mut full = Rebase::new(TimeJitter::Full);
        assert_eq!(full.map(900, 900, false), 0, "header before the base");
        assert_eq!(full.map(1000, 1000, true), 0);
        assert_eq!(full.map(1040, 1040, true), 40);
        let mut zero = Rebase::new(TimeJitter::Zero);
        assert_eq!(zero.map(1000, u32::MAX - 5, true), 0);
        assert_eq!(zero.map(1010, 4, true), 10, "wraps through 2^32");
        let mut off = Rebase::new(TimeJitter::Off);
        assert_eq!(off.map(1000, 77, true), 77);
        full.reset();
        assert_eq!(
            full.map(5000, 5000, true),
            50,
            "a republish continues the timeline"
        );
    }

    /// A player that waited for the publisher gets everything from 0: a restart before any
    /// media moves nothing (ffmpeg reads an onMetaData stamped 10 ms as a "text" stream).
    #[test]
    fn a_waiting_player_starts_at_zero() {
        let mut full = Rebase::new(TimeJitter::Full);
        full.reset();
        assert_eq!(full.map(7000, 7000, false), 0, "metadata");
        assert_eq!(full.map(7000, 7000, false), 0, "sequence header");
        assert_eq!(full.map(7000, 7000, true), 0, "first frame");
        assert_eq!(full.map(7040, 7040, true), 40);
        full.reset();
        assert_eq!(
            full.map(100, 100, false),
            50,
            "after media, a restart continues"
        );
    }
}
