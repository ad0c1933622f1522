//! `srsd play rtmp://... [-o OUT.flv] [--duration SECS] [--frames N]`

use super::{option_value, parsed, runtime, STEP_TIMEOUT};
use crate::client::{ClientError, MediaKind, RtmpClient, RtmpUrl};
use crate::protocol::flv::{self, Tag};
use crate::protocol::media::TagHeader;
use bytes::BytesMut;
use std::io::Write;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::AsyncWrite;

const USAGE: &str = "\
usage: srsd play rtmp://HOST[:PORT]/APP/STREAM [-o OUT.flv] [--duration SECS] [--frames N]

Plays an RTMP stream and prints a summary (frames, bytes, whether the first video frame is a
keyframe, media duration).
  -o OUT.flv        record what is received as FLV (\"-\" writes to stdout)
  --duration SECS   stop after this many seconds (default: until the stream ends or Ctrl-C)
  --frames N        stop after N frames";

struct Args {
    url: RtmpUrl,
    output: Option<String>,
    duration: Option<Duration>,
    frames: Option<u64>,
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    let mut url = None;
    let (mut output, mut duration, mut frames) = (None, None, None);
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "-o" => output = Some(option_value::<String>("-o", &mut it)?),
            "--duration" => {
                let secs: f64 = option_value("--duration", &mut it)?;
                duration = Some(
                    Duration::try_from_secs_f64(secs)
                        .map_err(|_| format!("--duration: bad value {secs}"))?,
                );
            }
            "--frames" => frames = Some(option_value::<u64>("--frames", &mut it)?),
            o if o.starts_with('-') => return Err(format!("unknown option {o}")),
            u if url.is_none() => url = Some(RtmpUrl::parse(u).map_err(|e| e.to_string())?),
            extra => return Err(format!("unexpected argument {extra:?}")),
        }
    }
    let url = url.ok_or("need an rtmp:// URL")?;
    Ok(Some(Args {
        url,
        output,
        duration,
        frames,
    }))
}

pub fn main(args: &[String]) -> i32 {
    let args = match parsed(parse(args), USAGE) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let out: Option<Box<dyn Write + Send>> = match args.output.as_deref() {
        None => None,
        Some("-") => Some(Box::new(std::io::stdout())),
        Some(path) => match std::fs::File::create(path) {
            Ok(f) => Some(Box::new(std::io::BufWriter::new(f))),
            Err(e) => {
                eprintln!("error: cannot create {path}: {e}");
                return 1;
            }
        },
    };
    let Some(rt) = runtime(false) else { return 1 };
    rt.block_on(play(args, out.map(BlockingWriter)))
}

/// An `AsyncWrite` over a blocking writer: good enough for a one-connection CLI (the file or
/// terminal write is short next to the network wait), and it spares tokio's `fs` feature.
pub struct BlockingWriter<W>(pub W);

impl<W: Write + Unpin> AsyncWrite for BlockingWriter<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        Poll::Ready(self.get_mut().0.write(buf))
    }
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.get_mut().0.flush())
    }
    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(self.get_mut().0.flush())
    }
}

#[derive(Default)]
struct Summary {
    frames: u64,
    audio: u64,
    video: u64,
    data: u64,
    payload_bytes: u64,
    first_video_keyframe: Option<bool>,
    first_ts: Option<u32>,
    last_ts: u32,
}

async fn play(args: Args, mut out: Option<BlockingWriter<Box<dyn Write + Send>>>) -> i32 {
    use tokio::io::AsyncWriteExt;

    let mut client = match RtmpClient::connect(&args.url, STEP_TIMEOUT).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("[play] connect to {} failed: {e}", args.url);
            return 1;
        }
    };
    if let Err(e) = client.play(&args.url.stream, STEP_TIMEOUT).await {
        eprintln!("[play] play {} failed: {e}", args.url);
        client.close().await;
        return 1;
    }
    eprintln!("[play] playing {}", args.url);

    let start = Instant::now();
    let deadline = args.duration.map(|d| tokio::time::Instant::now() + d);
    let mut s = Summary::default();
    let mut buf = BytesMut::with_capacity(64 * 1024);
    if let Some(w) = out.as_mut() {
        flv::encode_header(true, true, &mut buf);
        if let Err(e) = w.write_all(&buf).await {
            eprintln!("[play] write failed: {e}");
            return 1;
        }
    }
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut code = 0;
    let mut why = "stream ended";
    loop {
        if args.frames.is_some_and(|max| s.frames >= max) {
            why = "frame limit";
            break;
        }
        let next = async {
            match deadline {
                Some(d) => tokio::time::timeout_at(d, client.recv()).await.ok(),
                None => Some(client.recv().await),
            }
        };
        let frame = tokio::select! {
            f = next => f,
            _ = &mut ctrl_c => { why = "interrupted"; break; }
        };
        let (kind, timestamp, payload) = match frame {
            None => {
                why = "duration reached";
                break;
            }
            Some(Err(ClientError::Closed)) => break,
            Some(Err(e)) => {
                eprintln!("[play] error: {e}");
                why = "error";
                code = 1;
                break;
            }
            Some(Ok(f)) => f,
        };
        s.frames += 1;
        s.payload_bytes += payload.len() as u64;
        match kind {
            MediaKind::Audio => s.audio += 1,
            MediaKind::Video => {
                s.video += 1;
                // Sequence headers are not frames of the picture: judge the first coded frame
                // (legacy or Enhanced RTMP, read by the one FLV tag-header parser).
                let tag = TagHeader::classify(kind, &payload);
                if s.first_video_keyframe.is_none() && !tag.is_config() {
                    s.first_video_keyframe = Some(tag.is_keyframe());
                }
            }
            MediaKind::Data => s.data += 1,
        }
        if kind != MediaKind::Data {
            s.first_ts.get_or_insert(timestamp);
            s.last_ts = timestamp;
        }
        if let Some(w) = out.as_mut() {
            buf.clear();
            flv::encode_tag(
                &Tag {
                    kind,
                    timestamp,
                    payload,
                },
                &mut buf,
            );
            if let Err(e) = w.write_all(&buf).await {
                eprintln!("[play] write failed: {e}");
                code = 1;
                why = "write error";
                break;
            }
        }
    }
    if let Some(w) = out.as_mut() {
        if let Err(e) = w.flush().await {
            eprintln!("[play] write failed: {e}");
            code = 1;
        }
    }
    let media_ms = s.first_ts.map_or(0, |f| s.last_ts.wrapping_sub(f));
    let keyframe = match s.first_video_keyframe {
        None => "no video",
        Some(true) => "yes",
        Some(false) => "NO",
    };
    eprintln!(
        "[play] {why}: frames={} (video={} audio={} data={}) payload_bytes={} socket_bytes={} \
         first_video_keyframe={keyframe} media_duration={:.3}s wall={:.1}s last_status={}",
        s.frames,
        s.video,
        s.audio,
        s.data,
        s.payload_bytes,
        client.bytes_received(),
        media_ms as f64 / 1000.0,
        start.elapsed().as_secs_f64(),
        client.last_status().unwrap_or("-"),
    );
    client.close().await;
    code
}
