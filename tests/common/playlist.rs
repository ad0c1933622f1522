//! An HLS media playlist checker for the tests: [`parse`] asserts the syntax rules of one
//! playlist (RFC 8216 §4), [`History::check`] asserts the server rules between successive
//! states of one live playlist (§6.2.1, §6.2.2). Every failure message carries the text.

/// One media segment as listed.
#[derive(Debug, Clone, PartialEq)]
pub struct Seg {
    /// Media sequence number (EXT-X-MEDIA-SEQUENCE + position).
    pub seq: u64,
    pub duration: f64,
    pub uri: String,
    pub discontinuity: bool,
}

/// One state of a media playlist.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct State {
    pub version: u64,
    pub target: u64,
    pub media_seq: u64,
    pub disc_seq: u64,
    pub segments: Vec<Seg>,
    pub ended: bool,
}

impl State {
    /// Sum of the EXTINF durations, seconds.
    pub fn total(&self) -> f64 {
        self.segments.iter().map(|s| s.duration).sum()
    }

    pub fn durations(&self) -> Vec<f64> {
        self.segments.iter().map(|s| s.duration).collect()
    }
}

/// Tags a media playlist may hold (§4.3.1 – §4.3.3, §4.3.5); master-playlist tags are
/// errors here.
const MEDIA_TAGS: &[&str] = &[
    "#EXT-X-VERSION",
    "#EXT-X-TARGETDURATION",
    "#EXT-X-MEDIA-SEQUENCE",
    "#EXT-X-DISCONTINUITY-SEQUENCE",
    "#EXT-X-DISCONTINUITY",
    "#EXTINF",
    "#EXT-X-ENDLIST",
    "#EXT-X-PLAYLIST-TYPE",
    "#EXT-X-INDEPENDENT-SEGMENTS",
    "#EXT-X-PROGRAM-DATE-TIME",
];

/// Parses a media playlist and asserts RFC 8216 §4 on it, and srsd's own rule that no
/// segment is shorter than 100 ms.
pub fn parse(text: &str) -> State {
    let ctx = |why: &str| format!("{why}\n--- playlist ---\n{text}");
    let mut lines = text.lines();
    assert_eq!(
        lines.next(),
        Some("#EXTM3U"),
        "{}",
        ctx("§4.3.1.1 first line")
    );
    let mut st = State {
        version: 1,
        ..State::default()
    };
    let (mut seen_version, mut seen_target, mut seen_mseq, mut seen_dseq) =
        (false, false, false, false);
    let mut pending_inf: Option<f64> = None;
    let mut pending_disc = false;
    let mut seen_disc_tag = false;
    for line in lines {
        assert!(!st.ended, "{}", ctx("nothing after EXT-X-ENDLIST"));
        assert_eq!(line.trim_end(), line, "{}", ctx("trailing whitespace"));
        if line.is_empty() {
            continue;
        }
        if !line.starts_with('#') {
            let d = pending_inf
                .take()
                .unwrap_or_else(|| panic!("{}", ctx(&format!("URI {line} without EXTINF"))));
            assert!(!line.contains(char::is_whitespace), "{}", ctx("URI"));
            st.segments.push(Seg {
                seq: st.media_seq + st.segments.len() as u64,
                duration: d,
                uri: line.to_string(),
                discontinuity: std::mem::take(&mut pending_disc),
            });
            continue;
        }
        if !line.starts_with("#EXT") {
            continue; // a comment
        }
        let (tag, value) = line.split_once(':').unwrap_or((line, ""));
        assert!(
            MEDIA_TAGS.contains(&tag),
            "{}",
            ctx(&format!("unknown or master tag {tag}"))
        );
        let int = |v: &str| -> u64 {
            assert!(
                !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()),
                "{}",
                ctx(&format!("{tag} wants a decimal-integer, not {v:?}"))
            );
            v.parse().unwrap()
        };
        let before_segments = st.segments.is_empty() && pending_inf.is_none();
        match tag {
            "#EXT-X-VERSION" => {
                assert!(!seen_version, "{}", ctx("§4.3.1.2 one EXT-X-VERSION"));
                seen_version = true;
                st.version = int(value);
            }
            "#EXT-X-TARGETDURATION" => {
                assert!(!seen_target, "{}", ctx("one EXT-X-TARGETDURATION"));
                seen_target = true;
                st.target = int(value);
            }
            "#EXT-X-MEDIA-SEQUENCE" => {
                assert!(!seen_mseq && before_segments, "{}", ctx("§4.3.3.2"));
                seen_mseq = true;
                st.media_seq = int(value);
            }
            "#EXT-X-DISCONTINUITY-SEQUENCE" => {
                assert!(
                    !seen_dseq && before_segments && !seen_disc_tag,
                    "{}",
                    ctx("§4.3.3.3: once, before any segment and any EXT-X-DISCONTINUITY")
                );
                seen_dseq = true;
                st.disc_seq = int(value);
            }
            "#EXT-X-DISCONTINUITY" => {
                assert!(
                    value.is_empty(),
                    "{}",
                    ctx("EXT-X-DISCONTINUITY has no value")
                );
                seen_disc_tag = true;
                pending_disc = true;
            }
            "#EXTINF" => {
                assert!(pending_inf.is_none(), "{}", ctx("two EXTINF for one URI"));
                let (d, _title) = value
                    .split_once(',')
                    .unwrap_or_else(|| panic!("{}", ctx("EXTINF:<duration>,")));
                assert!(
                    !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit() || b == b'.'),
                    "{}",
                    ctx(&format!("EXTINF duration {d:?}"))
                );
                if d.contains('.') {
                    assert!(
                        st.version >= 3,
                        "{}",
                        ctx("§4.3.2.1 decimal EXTINF needs v3")
                    );
                }
                pending_inf = Some(d.parse().unwrap());
            }
            "#EXT-X-ENDLIST" => st.ended = true,
            _ => {}
        }
    }
    assert!(pending_inf.is_none(), "{}", ctx("EXTINF without a URI"));
    assert!(
        !pending_disc,
        "{}",
        ctx("EXT-X-DISCONTINUITY without a segment")
    );
    assert!(
        seen_target,
        "{}",
        ctx("§4.3.3.1 EXT-X-TARGETDURATION is required")
    );
    for s in &st.segments {
        // §4.3.3.1: every EXTINF, rounded to the nearest integer, is at most the target.
        assert!(
            s.duration.round() as u64 <= st.target,
            "{}",
            ctx(&format!(
                "segment {} of {} s over the target",
                s.seq, s.duration
            ))
        );
        assert!(
            s.duration >= 0.1,
            "{}",
            ctx(&format!(
                "segment {} of {} s: under 100 ms",
                s.seq, s.duration
            ))
        );
    }
    st
}

/// The successive states of one live playlist (one life: from its first write to its
/// removal by dispose).
#[derive(Debug, Default)]
pub struct History {
    pub last: Option<State>,
    /// States checked so far.
    pub states: usize,
}

impl History {
    /// Parses and checks `text` (§4), then checks it as the next state of the playlist
    /// (§6.2.1, §6.2.2). Returns the state.
    pub fn check(&mut self, text: &str) -> State {
        let new = parse(text);
        if let Some(old) = &self.last {
            check_transition(old, &new, text);
        }
        self.states += 1;
        self.last = Some(new.clone());
        new
    }

    /// The playlist was removed (dispose): a new life starts.
    pub fn reset(&mut self) {
        self.last = None;
    }
}

fn check_transition(old: &State, new: &State, text: &str) {
    let ctx = |why: &str| format!("{why}\n--- before ---\n{old:#?}\n--- now ---\n{text}");
    assert!(
        !old.ended || old == new,
        "{}",
        ctx("nothing changes after ENDLIST")
    );
    // §6.2.1: the media sequence number never decreases ...
    assert!(
        new.media_seq >= old.media_seq,
        "{}",
        ctx("EXT-X-MEDIA-SEQUENCE went back")
    );
    // ... segments leave only from the front, in order, and a segment that stays is listed
    // exactly as before (same URI, duration, discontinuity): old = removed ++ kept and
    // new = kept ++ appended.
    let removed = (new.media_seq - old.media_seq) as usize;
    assert!(
        removed <= old.segments.len(),
        "{}",
        ctx("a segment never listed was removed")
    );
    for (a, b) in old.segments[removed..].iter().zip(&new.segments) {
        assert_eq!(a, b, "{}", ctx("a segment changed"));
    }
    assert!(
        new.segments.len() >= old.segments.len() - removed,
        "{}",
        ctx("a segment left from the middle or the end")
    );
    // §6.2.2: every removed EXT-X-DISCONTINUITY is counted.
    let disc_removed = old.segments[..removed]
        .iter()
        .filter(|s| s.discontinuity)
        .count() as u64;
    assert_eq!(
        new.disc_seq,
        old.disc_seq + disc_removed,
        "{}",
        ctx("EXT-X-DISCONTINUITY-SEQUENCE")
    );
    // §6.2.1 wants the target never to change; a server that only learns the encoder's GOP
    // as it goes can at least never lower it.
    assert!(
        new.target >= old.target,
        "{}",
        ctx("EXT-X-TARGETDURATION decreased")
    );
    // §6.2.2: no removal may leave less than three target durations.
    if removed > 0 {
        assert!(
            new.total() >= 3.0 * new.target as f64 - 0.001,
            "{}",
            ctx("a removal left less than three target durations")
        );
    }
}
