//! HTTP VOD of recorded FLV files: `GET /app/file.flv?start=BYTES` (SRS's `SrsVodStream`).
//!
//! A flash or web player seeks in a recording by asking for a byte offset (from the
//! `keyframes.filepositions` of the file's metadata, or a guess). SRS answers with a new FLV
//! header (`FLV`, flags, offset 9, PreviousTagSize0) and the file's leading script and
//! sequence-header tags, then the file from that offset on. We do the same, except that the
//! tail starts at the first video keyframe whose tag starts at or after the offset (the first
//! tag at or after it for a file without video), so a guessed offset still plays from a
//! decodable frame. Timestamps are the file's own (a player sees a start time, not 0).
//!
//! [`seek`] walks only the 11-byte tag headers (plus two bytes of each body) through a
//! buffered reader; nothing of the media is read into memory except the leading configuration
//! tags, which are capped at [`MAX_PREFIX`].

use crate::hub::{MediaKind, TagHeader};
use crate::protocol::flv::{FLV_HEADER_LEN, PREVIOUS_TAG_SIZE_LEN, TAG_HEADER_LEN};
use bytes::Bytes;
use std::fmt;
use std::io::{self, BufReader, Read, Seek, SeekFrom};

/// Most bytes of leading script and sequence-header tags sent before the tail (metadata with
/// a large keyframe index is the biggest of them).
pub const MAX_PREFIX: usize = 4 * 1024 * 1024;

/// Read-ahead of the tag walk.
const WALK_BUFFER: usize = 8 * 1024;

/// Where a `?start=` request is answered from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlvSeek {
    /// The FLV header (9 bytes, data offset 9) and PreviousTagSize0, then the leading
    /// script/sequence-header tags of the file, each with its PreviousTagSize.
    pub prefix: Bytes,
    /// File offset of the first tag of the tail; the file's length when nothing is left.
    pub from: u64,
}

/// Why a file cannot be answered as FLV VOD.
#[derive(Debug)]
pub enum VodError {
    /// Not an FLV file (bad signature or data offset).
    NotFlv,
    /// The leading configuration tags are larger than [`MAX_PREFIX`].
    PrefixTooLarge,
    Io(io::Error),
}

impl fmt::Display for VodError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            VodError::NotFlv => write!(f, "not an FLV file"),
            VodError::PrefixTooLarge => {
                write!(f, "sequence headers and metadata over {MAX_PREFIX} bytes")
            }
            VodError::Io(e) => write!(f, "i/o: {e}"),
        }
    }
}

impl From<io::Error> for VodError {
    fn from(e: io::Error) -> Self {
        VodError::Io(e)
    }
}

/// What a tag is, from its header and the first two bytes of its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TagClass {
    Script,
    /// A video or audio sequence header (AVC/HEVC decoder configuration, AudioSpecificConfig).
    Config {
        video: bool,
    },
    VideoKeyframe,
    /// Any other video frame or audio frame.
    Media {
        video: bool,
    },
    /// Types FLV does not define; skipped.
    Other,
}

fn classify(kind: u8, body: &[u8]) -> TagClass {
    // FLV tag types are RTMP's message type ids (8 audio, 9 video, 18 script data).
    let Some(kind) = MediaKind::from_type_id(kind & 0x1f) else {
        return TagClass::Other;
    };
    if kind == MediaKind::Data {
        return TagClass::Script;
    }
    // Legacy and Enhanced RTMP forms, read by the one FLV tag-header parser.
    let tag = TagHeader::classify(kind, body);
    let video = kind == MediaKind::Video;
    if tag.is_config() {
        TagClass::Config { video }
    } else if tag.is_keyframe() {
        TagClass::VideoKeyframe
    } else {
        TagClass::Media { video }
    }
}

/// Reads as many bytes as there are, up to `buf.len()`; fewer means end of file.
fn read_up_to(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// A buffered reader that knows its position, so skipping a tag body stays inside the
/// buffer (`BufReader::seek` would drop it on every tag).
struct Walker<R> {
    r: BufReader<R>,
    at: u64,
}

impl<R: Read + Seek> Walker<R> {
    fn goto(&mut self, pos: u64) -> io::Result<()> {
        let diff = i128::from(pos) - i128::from(self.at);
        if let Ok(diff) = i64::try_from(diff) {
            self.r.seek_relative(diff)?;
        } else {
            self.r.seek(SeekFrom::Start(pos))?;
        }
        self.at = pos;
        Ok(())
    }

    fn read_up_to(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = read_up_to(&mut self.r, buf)?;
        self.at += n as u64;
        Ok(n)
    }

    fn read_exact(&mut self, buf: &mut [u8]) -> io::Result<()> {
        self.r.read_exact(buf)?;
        self.at += buf.len() as u64;
        Ok(())
    }
}

/// Finds where to answer `?start=start` in the `len`-byte FLV file `r`: the prefix (header and
/// leading configuration tags) and the offset of the first keyframe tag (or first tag, without
/// video) at or after `start`. A tag cut short by the end of the file ends the walk.
pub fn seek<R: Read + Seek>(r: R, len: u64, start: u64) -> Result<FlvSeek, VodError> {
    let mut r = Walker {
        // Small: audio tags are skipped inside the buffer, and a video frame larger than it
        // is skipped by a seek instead of being read.
        r: BufReader::with_capacity(WALK_BUFFER, r),
        at: 0,
    };
    let mut header = [0u8; FLV_HEADER_LEN];
    r.r.seek(SeekFrom::Start(0))?;
    if r.read_up_to(&mut header)? < FLV_HEADER_LEN || &header[..3] != b"FLV" {
        return Err(VodError::NotFlv);
    }
    let data_offset = u32::from_be_bytes([header[5], header[6], header[7], header[8]]) as u64;
    if data_offset < FLV_HEADER_LEN as u64 || data_offset > len {
        return Err(VodError::NotFlv);
    }
    let mut prefix = Vec::with_capacity(64);
    prefix.extend_from_slice(&header[..5]);
    prefix.extend_from_slice(&(FLV_HEADER_LEN as u32).to_be_bytes());
    prefix.extend_from_slice(&[0; PREVIOUS_TAG_SIZE_LEN]);
    let header_says_video = header[4] & 0x01 != 0;

    let mut pos = data_offset + PREVIOUS_TAG_SIZE_LEN as u64;
    let mut leading = true;
    let mut has_video = header_says_video;
    let mut head = [0u8; TAG_HEADER_LEN + 2];
    loop {
        if pos + TAG_HEADER_LEN as u64 > len {
            return Ok(FlvSeek {
                prefix: Bytes::from(prefix),
                from: len,
            });
        }
        r.goto(pos)?;
        let got = r.read_up_to(&mut head)?;
        if got < TAG_HEADER_LEN {
            return Ok(FlvSeek {
                prefix: Bytes::from(prefix),
                from: len,
            });
        }
        let size = u32::from_be_bytes([0, head[1], head[2], head[3]]) as u64;
        let whole = (TAG_HEADER_LEN + PREVIOUS_TAG_SIZE_LEN) as u64 + size;
        let body_start = (size as usize).min(2).min(got - TAG_HEADER_LEN);
        let class = classify(head[0], &head[TAG_HEADER_LEN..TAG_HEADER_LEN + body_start]);
        if leading {
            match class {
                TagClass::Script | TagClass::Config { .. } => {
                    if pos + whole > len {
                        // The file ends inside its configuration: nothing to play.
                        return Ok(FlvSeek {
                            prefix: Bytes::from(prefix),
                            from: len,
                        });
                    }
                    if prefix.len() as u64 + whole > MAX_PREFIX as u64 {
                        return Err(VodError::PrefixTooLarge);
                    }
                    if class == (TagClass::Config { video: true }) {
                        has_video = true;
                    }
                    let at = prefix.len();
                    prefix.resize(at + whole as usize, 0);
                    r.goto(pos)?;
                    r.read_exact(&mut prefix[at..])?;
                    pos += whole;
                    continue;
                }
                _ => leading = false,
            }
        }
        if pos >= start {
            let fits = match class {
                TagClass::VideoKeyframe => true,
                TagClass::Media { .. } => !has_video,
                _ => false,
            };
            if fits {
                return Ok(FlvSeek {
                    prefix: Bytes::from(prefix),
                    from: pos,
                });
            }
        }
        pos += whole;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::client::MediaKind;
    use crate::protocol::flv::{encode_header, encode_tag, Tag};
    use bytes::BytesMut;
    use std::io::Cursor;

    fn tag(kind: MediaKind, ts: u32, body: &[u8]) -> Tag {
        Tag {
            kind,
            timestamp: ts,
            payload: Bytes::copy_from_slice(body),
        }
    }

    /// A file: metadata, AVC and AAC sequence headers, then GOPs of one keyframe and two
    /// inter frames with an audio frame between; returns the file and each tag's offset.
    fn file() -> (Vec<u8>, Vec<(u64, Tag)>) {
        let mut tags = vec![
            tag(MediaKind::Data, 0, b"\x02\x00\x0aonMetaData"),
            tag(MediaKind::Video, 0, &[0x17, 0, 0, 0, 0, 1, 2]),
            tag(MediaKind::Audio, 0, &[0xaf, 0, 0x12, 0x10]),
        ];
        for g in 0..4u32 {
            tags.push(tag(MediaKind::Video, g * 100, &[0x17, 1, 0, 0, 0, 9, 9]));
            tags.push(tag(MediaKind::Audio, g * 100 + 10, &[0xaf, 1, 7, 7]));
            tags.push(tag(MediaKind::Video, g * 100 + 40, &[0x27, 1, 0, 0, 0, 8]));
            tags.push(tag(MediaKind::Video, g * 100 + 80, &[0x27, 1, 0, 0, 0, 8]));
        }
        let mut out = BytesMut::new();
        encode_header(true, true, &mut out);
        let mut at = Vec::new();
        for t in tags {
            let off = out.len() as u64;
            encode_tag(&t, &mut out);
            at.push((off, t));
        }
        (out.to_vec(), at)
    }

    #[test]
    fn seeks_to_the_keyframe_at_or_after_the_offset_with_the_sequence_headers_first() {
        let (data, at) = file();
        let len = data.len() as u64;
        let first_media = at[3].0;
        let keyframes: Vec<u64> = at
            .iter()
            .filter(|(_, t)| t.kind == MediaKind::Video && t.payload[..2] == [0x17, 1])
            .map(|(o, _)| *o)
            .collect();
        for (start, want) in [
            (1, keyframes[0]),
            (keyframes[0], keyframes[0]),
            (keyframes[0] + 1, keyframes[1]),
            (keyframes[2], keyframes[2]),
            (keyframes[3] + 1, len),
            (len + 100, len),
        ] {
            let s = seek(Cursor::new(&data), len, start).unwrap();
            assert_eq!(s.from, want, "start {start}");
            // Header + PreviousTagSize0 + the three leading tags, byte for byte.
            assert_eq!(
                &s.prefix[..],
                &data[..first_media as usize],
                "start {start}"
            );
        }
    }

    #[test]
    fn audio_only_files_start_at_the_first_tag_after_the_offset() {
        let mut out = BytesMut::new();
        encode_header(true, false, &mut out);
        encode_tag(&tag(MediaKind::Audio, 0, &[0xaf, 0, 0x12, 0x10]), &mut out);
        let a1 = out.len() as u64;
        encode_tag(&tag(MediaKind::Audio, 23, &[0xaf, 1, 1]), &mut out);
        let a2 = out.len() as u64;
        encode_tag(&tag(MediaKind::Audio, 46, &[0xaf, 1, 2]), &mut out);
        let len = out.len() as u64;
        let s = seek(Cursor::new(&out[..]), len, a1 + 1).unwrap();
        assert_eq!(s.from, a2);
        assert_eq!(s.prefix.len() as u64, a1);
    }

    #[test]
    fn refuses_what_is_not_flv_and_survives_truncation() {
        assert!(matches!(
            seek(Cursor::new(b"GIF89a....."), 11, 1),
            Err(VodError::NotFlv)
        ));
        let (data, _) = file();
        for cut in 0..data.len() {
            let d = &data[..cut];
            if let Ok(s) = seek(Cursor::new(d), cut as u64, 5) {
                assert!(s.from <= cut as u64);
            }
        }
        // A data offset beyond the file.
        let mut bad = data.clone();
        bad[5..9].copy_from_slice(&u32::MAX.to_be_bytes());
        assert!(matches!(
            seek(Cursor::new(&bad), bad.len() as u64, 5),
            Err(VodError::NotFlv)
        ));
    }

    #[test]
    fn classifies_enhanced_rtmp_video() {
        // IsExHeader | keyframe | SequenceStart, then | CodedFrames.
        assert_eq!(classify(9, &[0x90, b'h']), TagClass::Config { video: true });
        assert_eq!(classify(9, &[0x91, b'h']), TagClass::VideoKeyframe);
        assert_eq!(classify(9, &[0xa1, b'h']), TagClass::Media { video: true });
        assert_eq!(classify(18, &[]), TagClass::Script);
        assert_eq!(classify(8, &[0x2f]), TagClass::Media { video: false });
    }
}
