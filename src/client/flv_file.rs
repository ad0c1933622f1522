//! FLV in and out of an [`RtmpClient`]: publish a file's tags, record a played stream.

use super::{ClientError, RtmpClient};
use crate::protocol::flv::{self, FlvDecoder, Tag};
use crate::protocol::media::{MediaKind, TagHeader};
use bytes::{Bytes, BytesMut};
use std::time::Duration;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

/// Gap added between the last tag of a loop and the first of the next (one 25 fps frame).
const LOOP_GAP_MS: u64 = 40;
/// Longest sleep between two `stop()` checks while pacing.
const STOP_CHECK: Duration = Duration::from_millis(100);

/// Publishes every audio, video and script tag of the FLV file `data` on `client` (which must
/// be publishing already). Returns the number of tags sent.
///
/// Timestamps are rebased so the first tag is at 0. `realtime` paces the tags by their
/// timestamps (`tokio::time`, so paused-clock tests work); otherwise they go as fast as the
/// socket takes them. `repeat` loops forever, shifting each pass after the previous one so the
/// timeline stays monotonic. `stop` is checked before every tag and while pacing; when it says
/// true the function returns `Ok`. A file cut short ends at its last whole tag.
pub async fn publish_flv(
    client: &mut RtmpClient,
    data: Bytes,
    realtime: bool,
    repeat: bool,
    stop: impl Fn() -> bool,
) -> Result<u64, ClientError> {
    let tags = decode_all(&data)?;
    let Some(first) = tags.first() else {
        return Ok(0);
    };
    let first_ts = first.timestamp;
    let rel = |t: &Tag| u64::from(t.timestamp.saturating_sub(first_ts));
    let pass_len = tags.iter().map(rel).max().unwrap_or(0) + LOOP_GAP_MS;

    let start = Instant::now();
    let mut base: u64 = 0;
    let mut sent: u64 = 0;
    loop {
        for tag in &tags {
            if stop() {
                return Ok(sent);
            }
            let at = base + rel(tag);
            if realtime && !pace(start + Duration::from_millis(at), &stop).await {
                return Ok(sent);
            }
            // RTMP timestamps are 32-bit and wrap (after 49.7 days of looping).
            client
                .send(tag.kind, at as u32, tag.payload.clone())
                .await?;
            sent += 1;
        }
        if !repeat {
            return Ok(sent);
        }
        base += pass_len;
    }
}

/// Sleeps until `until`, checking `stop` every [`STOP_CHECK`]. False when stopped.
async fn pace(until: Instant, stop: &impl Fn() -> bool) -> bool {
    loop {
        let now = Instant::now();
        if now >= until {
            return true;
        }
        tokio::time::sleep_until(until.min(now + STOP_CHECK)).await;
        if stop() {
            return false;
        }
    }
}

fn decode_all(data: &Bytes) -> Result<Vec<Tag>, ClientError> {
    let mut buf = BytesMut::from(&data[..]);
    let mut decoder = FlvDecoder::new();
    let mut tags = Vec::new();
    while let Some(tag) = decoder.decode(&mut buf)? {
        tags.push(tag);
    }
    Ok(tags)
}

/// Writes what `client` (already playing) receives to `out` as an FLV file: the header, then
/// every frame as a tag with the server's timestamps. Stops at end of stream, after
/// `max_duration`, or after `max_frames`; returns the number of frames written.
///
/// When `max_duration` ends a read in the middle, the connection is left in an unknown state:
/// close it afterwards rather than reading on.
pub async fn play_to_flv(
    client: &mut RtmpClient,
    out: &mut (impl AsyncWrite + Unpin),
    max_duration: Duration,
    max_frames: Option<u64>,
) -> Result<u64, ClientError> {
    let deadline = Instant::now() + max_duration;
    let mut buf = BytesMut::with_capacity(64 * 1024);
    flv::encode_header(true, true, &mut buf);
    out.write_all(&buf).await?;
    let mut frames: u64 = 0;
    while !matches!(max_frames, Some(max) if frames >= max) {
        let (kind, timestamp, payload) =
            match tokio::time::timeout_at(deadline, client.recv()).await {
                Err(_elapsed) => break,
                Ok(Err(ClientError::Closed)) => break,
                Ok(Err(e)) => return Err(e),
                Ok(Ok(frame)) => frame,
            };
        buf.clear();
        flv::encode_tag(
            &Tag {
                kind,
                timestamp,
                payload,
            },
            &mut buf,
        );
        out.write_all(&buf).await?;
        frames += 1;
    }
    out.flush().await?;
    Ok(frames)
}

/// True for a video tag of FLV frame type 1 (a keyframe or a keyframe's sequence header),
/// legacy or Enhanced RTMP.
pub fn is_keyframe(kind: MediaKind, payload: &[u8]) -> bool {
    kind == MediaKind::Video && TagHeader::classify(kind, payload).frame_type == 1
}
