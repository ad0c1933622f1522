//! `srsd probe rtmp://... [--duration SECS]`: what a stream carries, as JSON.

use super::{option_value, parsed, runtime, STEP_TIMEOUT};
use crate::app::http::api::{audio_info, video_info};
use crate::app::runtime::json::{obj, Value};
use crate::client::{MediaKind, RtmpClient, RtmpUrl};
use crate::hub::Frame;
use crate::protocol::amf0::{self, Amf0Value};
use crate::protocol::codec_info::frame_picture_size;
use bytes::Bytes;
use std::time::Duration;

const USAGE: &str = "\
usage: srsd probe rtmp://HOST[:PORT]/APP/STREAM [--duration SECS]

Plays an RTMP stream for a few seconds and prints, as one JSON object: its metadata, the
codecs from its sequence headers (H.264, H.265, AV1, VP9 profile, level and size; AAC
profile, rate and channels; Opus rate and channels), frame counts, frame rate, bitrate and the first and last timestamps. Exit 0 when
media arrived, 1 otherwise.
  --duration SECS   how long to watch (default 3)";

struct Args {
    url: RtmpUrl,
    duration: Duration,
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    let mut url = None;
    let mut duration = Duration::from_secs(3);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--duration" => {
                let secs: f64 = option_value("--duration", &mut it)?;
                duration = Duration::try_from_secs_f64(secs)
                    .ok()
                    .filter(|d| !d.is_zero() && d.as_secs() <= 3600)
                    .ok_or_else(|| format!("--duration: bad value {secs}"))?;
            }
            o if o.starts_with('-') => return Err(format!("unknown option {o}")),
            u if url.is_none() => url = Some(RtmpUrl::parse(u).map_err(|e| e.to_string())?),
            extra => return Err(format!("unexpected argument {extra:?}")),
        }
    }
    let url = url.ok_or("need an rtmp:// URL")?;
    Ok(Some(Args { url, duration }))
}

pub fn main(args: &[String]) -> i32 {
    let args = match parsed(parse(args), USAGE) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let Some(rt) = runtime(false) else { return 1 };
    rt.block_on(probe(args))
}

/// What was seen of the stream.
#[derive(Default)]
struct Seen {
    metadata: Option<Bytes>,
    video_header: Option<Frame>,
    /// The picture size of the first keyframe since the video header, when its record has
    /// none (VP9).
    frame_picture_size: Option<(u32, u32)>,
    audio_header: Option<Frame>,
    video: u64,
    keyframes: u64,
    audio: u64,
    bytes: u64,
    first_ts: Option<u32>,
    last_ts: u32,
}

impl Seen {
    fn add(&mut self, kind: MediaKind, ts: u32, payload: Bytes) {
        // The hub's frame: its tag header is read once, by the one FLV tag-header parser.
        let frame = Frame::new(kind, 0, ts, payload);
        let header = frame.flags.seq_header;
        match kind {
            MediaKind::Data => {
                if frame.flags.metadata {
                    self.metadata = Some(frame.payload);
                }
            }
            MediaKind::Video if header => {
                self.video_header = Some(frame);
                self.frame_picture_size = None;
            }
            MediaKind::Audio if header => self.audio_header = Some(frame),
            MediaKind::Video => {
                if frame.flags.keyframe && self.frame_picture_size.is_none() {
                    self.frame_picture_size = frame_picture_size(&frame.tag, frame.data());
                }
                self.video += 1;
                self.keyframes += u64::from(frame.flags.keyframe);
                self.count(ts, frame.payload.len());
            }
            MediaKind::Audio => {
                self.audio += 1;
                self.count(ts, frame.payload.len());
            }
        }
    }

    fn count(&mut self, ts: u32, len: usize) {
        self.first_ts.get_or_insert(ts);
        self.last_ts = ts;
        self.bytes += len as u64;
    }

    fn report(&self, url: &RtmpUrl) -> Value {
        let span_ms = self
            .first_ts
            .map_or(0, |f| self.last_ts.wrapping_sub(f))
            .min(u32::MAX / 2);
        let per_sec = |n: u64| {
            if span_ms == 0 {
                0.0
            } else {
                (n as f64 * 1000.0 / f64::from(span_ms) * 100.0).round() / 100.0
            }
        };
        let metadata =
            self.metadata
                .as_deref()
                .and_then(metadata_props)
                .map_or(Value::Null, |props| {
                    // An object keyed by the stream's own property names (the first of a
                    // name given twice wins; at most 64, see metadata_props).
                    let mut fields: Vec<(String, Value)> = Vec::new();
                    for (k, v) in props {
                        if fields.iter().any(|(n, _)| *n == k) {
                            continue;
                        }
                        let value = match v {
                            Amf0Value::Number(n) => Value::Float(n),
                            Amf0Value::Boolean(b) => b.into(),
                            Amf0Value::String(s) => s.as_str().into(),
                            _ => Value::Null,
                        };
                        fields.push((k, value));
                    }
                    Value::Map(fields)
                });
        obj([
            ("url", url.to_string().into()),
            ("metadata", metadata),
            (
                "video",
                self.video_header.as_ref().map_or(Value::Null, |h| {
                    video_info(h, self.frame_picture_size, true)
                }),
            ),
            (
                "audio",
                self.audio_header.as_ref().map_or(Value::Null, audio_info),
            ),
            (
                "frames",
                obj([
                    ("video", self.video.into()),
                    ("keyframes", self.keyframes.into()),
                    ("audio", self.audio.into()),
                ]),
            ),
            ("fps", Value::Float(per_sec(self.video))),
            // Whole kbps, as SRS reports bitrates.
            (
                "kbps",
                Value::UInt((per_sec(self.bytes * 8) / 1000.0).round() as u64),
            ),
            ("first_ts", self.first_ts.map_or(Value::Null, |t| t.into())),
            ("last_ts", self.last_ts.into()),
        ])
    }
}

/// The properties of an onMetaData body, if it is one.
fn metadata_props(payload: &[u8]) -> Option<Vec<(String, Amf0Value)>> {
    let values = amf0::decode_all(payload).ok()?;
    if values.first().and_then(Amf0Value::as_str) != Some("onMetaData") {
        return None;
    }
    values.into_iter().skip(1).find_map(|v| match v {
        Amf0Value::EcmaArray(p) | Amf0Value::Object(p) => Some(p.into_iter().take(64).collect()),
        _ => None,
    })
}

async fn probe(args: Args) -> i32 {
    let mut client = match RtmpClient::connect(&args.url, STEP_TIMEOUT).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("[probe] connect to {} failed: {e}", args.url);
            return 1;
        }
    };
    if let Err(e) = client.play(&args.url.stream, STEP_TIMEOUT).await {
        eprintln!("[probe] play {} failed: {e}", args.url);
        client.close().await;
        return 1;
    }
    let mut seen = Seen::default();
    let _ = tokio::time::timeout(args.duration, async {
        while let Ok((kind, ts, payload)) = client.recv().await {
            seen.add(kind, ts, payload);
        }
    })
    .await;
    client.close().await;
    println!("{}", seen.report(&args.url).to_json());
    if seen.first_ts.is_some() {
        0
    } else {
        eprintln!("[probe] no media from {} in {:?}", args.url, args.duration);
        1
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_codecs_counts_and_metadata() {
        let mut s = Seen::default();
        let mut meta = bytes::BytesMut::new();
        amf0::encode_all(
            &[
                Amf0Value::string("onMetaData"),
                Amf0Value::EcmaArray(vec![
                    ("width".into(), Amf0Value::Number(320.0)),
                    ("encoder".into(), Amf0Value::string("Lavf")),
                ]),
            ],
            &mut meta,
        );
        s.add(MediaKind::Data, 0, meta.freeze());
        s.add(
            MediaKind::Audio,
            0,
            Bytes::from_static(&[0xAF, 0, 0x12, 0x10]),
        );
        for n in 0..26u32 {
            let key = if n % 25 == 0 { 0x17 } else { 0x27 };
            s.add(
                MediaKind::Video,
                n * 40,
                Bytes::from(vec![key, 1, 0, 0, 0, 9]),
            );
        }
        let url = RtmpUrl::parse("rtmp://127.0.0.1/live/s").unwrap();
        let j = s.report(&url).to_json();
        assert!(
            j.contains("\"metadata\":{\"width\":320.0,\"encoder\":\"Lavf\"}"),
            "{j}"
        );
        assert!(j.contains("\"kbps\":"), "{j}");
        assert!(!j.contains("\"kbps\":0."), "whole kbps: {j}");
        assert!(j.contains("\"codec\":\"AAC\""), "{j}");
        assert!(
            j.contains("\"frames\":{\"video\":26,\"keyframes\":2,\"audio\":0}"),
            "{j}"
        );
        assert!(j.contains("\"fps\":26"), "{j}");
        assert!(j.contains("\"first_ts\":0,\"last_ts\":1000"), "{j}");
    }

    #[test]
    fn arguments() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(parse(&a(&["rtmp://h/live/s", "--duration", "1.5"])).is_ok());
        assert!(parse(&a(&["rtmp://h/live/s", "--duration", "0"])).is_err());
        assert!(parse(&a(&[])).is_err());
        assert!(matches!(parse(&a(&["-h"])), Ok(None)));
    }
}
