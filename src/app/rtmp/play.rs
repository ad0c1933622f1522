//! A player's writes: each batch of frames goes out as one vectored write of the player's own
//! first headers and the frames' shared chunked payloads (DESIGN.md §2, encode once).

use super::{Conn, Role, WRITE_TIMEOUT};
use crate::app::runtime::writev::{send, Plan, View};
use crate::hub::{Batch, Item, MediaKind};
use crate::protocol::rtmp::chunk::{encode_first_header, EXTENDED_TIMESTAMP};
use crate::protocol::rtmp::command::status;
use crate::protocol::rtmp::session::ServerSession;
use std::io;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::time::Instant;

/// Bytes read from the stream per vectored write.
pub(super) const WRITE_BATCH_BYTES: usize = 512 * 1024;
/// Batch items a player keeps room for between writes after a burst. A steady 350 ms batch
/// of a 25 fps stream with AAC is ~24 frames: capacities up to twice this stay (no
/// reallocation per batch); a burst's (the GOP cache: `MAX_BATCH_ITEMS`) is given back.
const ITEMS_KEEP: usize = 16;

impl Conn<'_> {
    /// Writes queued items: per frame its own first header and the shared chunked payload,
    /// all in vectored writes. Once primed (see `PlayState::primed`), waits `mw_latency`
    /// first to merge more frames per syscall.
    ///
    /// What the socket takes at once is written without a future of its own (a player that
    /// keeps up takes the whole batch in one `writev`); only the rest of a batch the socket
    /// did not take waits, in a boxed future that exists while it waits (`writev::send`).
    ///
    /// `Ok((true, _))`: the socket took the batch at once (the task did not wait for it);
    /// with the time the write ended (one clock read per batch, for the next merged write
    /// and the caller's counters).
    pub(super) async fn write_items(
        &mut self,
        writer: &mut OwnedWriteHalf,
        items: &mut Batch,
    ) -> io::Result<(bool, Instant)> {
        let was_primed = matches!(&self.role, Role::Playing(p) if p.primed);
        let written = match self.plan_items(items) {
            Some(plan) => {
                self.bytes_out += plan.len() as u64;
                match send(writer, b"", plan, b"", items, WRITE_TIMEOUT) {
                    Ok(None) => Ok(true),
                    Ok(Some(rest)) => rest.await.map(|()| false),
                    Err(e) => Err(e),
                }
            }
            None => Ok(true),
        };
        let now = Instant::now();
        self.after_write(writer, items, was_primed, now);
        written.map(|at_once| (at_once, now))
    }

    /// Whether the play reached the length its client asked for (see [`PlayLength`]): then
    /// the connection ends, as SRS 6 ends it (ERROR_RTMP_DURATION_EXCEED, no status message).
    pub(super) fn played_out(&self) -> bool {
        let Role::Playing(p) = &self.role else {
            return false;
        };
        let Some((played, limit)) = p.length.as_ref().and_then(PlayLength::reached) else {
            return false;
        };
        log::info!(
            "{} played {played} ms of the {limit} ms asked for: play ends",
            p.key
        );
        true
    }

    /// A player's plan for `items` (`None` when the connection plays nothing): per frame,
    /// when the player is in step with the stream, the frame's whole shared message (type-1
    /// header and chunks); else its own first header (12 bytes, 16 with an extended
    /// timestamp) and the shared chunked payload. Status messages for publish and unpublish
    /// go in as the player's own bytes.
    fn plan_items<'b>(&mut self, items: &'b Batch) -> Option<Plan<'b>> {
        let Role::Playing(p) = &mut self.role else {
            return None;
        };
        let chunk_size = self.session.out_chunk_size();
        // The batch's plan is made for it and freed after it: a few allocations per write (a
        // 350 ms batch, or a frame at mw_latency 0) rather than kilobytes kept by every
        // player between writes. Shared bytes are borrowed from the frame (`items` holds it)
        // so no reference count is touched per frame and player.
        let mut plan = Plan::for_batch(items, View::Chunked(chunk_size));
        for run in items.as_slices() {
            for item in run {
                match item {
                    Item::Frame(f) => {
                        let ts = p.consumer.timestamp(f);
                        if let Some(l) = &mut p.length {
                            l.count(ts);
                        }
                        let track = match f.kind {
                            MediaKind::Audio => Some(0),
                            MediaKind::Video => Some(1),
                            MediaKind::Data => None,
                        };
                        if let Some(t) = track {
                            let last = p.last_ts[t].replace(ts);
                            // In step with the stream: the frame's shared type-1 header gives
                            // the player this timestamp (see `Frame::shared_wire`).
                            if let Some((_, wire)) = f.shared_wire(chunk_size).filter(|(d, _)| {
                                ts < EXTENDED_TIMESTAMP && last == Some(ts.wrapping_sub(*d))
                            }) {
                                plan.frame(wire);
                                p.msgs += 1;
                                p.primed |= !f.flags.metadata && !f.flags.seq_header;
                                continue;
                            }
                        }
                        plan.put(|h| {
                            encode_first_header(
                                h,
                                f.kind.csid(),
                                ts,
                                f.payload.len() as u32,
                                f.kind.type_id(),
                                p.stream_id,
                            )
                        });
                        match f.chunks_ref(chunk_size) {
                            Some(bytes) if ts < EXTENDED_TIMESTAMP => plan.frame(bytes),
                            _ if ts >= EXTENDED_TIMESTAMP => {
                                plan.owned(f.chunks_extended(chunk_size, ts))
                            }
                            _ => plan.owned(f.chunks(chunk_size)),
                        }
                        p.msgs += 1;
                        p.primed |= !f.flags.metadata && !f.flags.seq_header;
                    }
                    Item::Unpublished => {
                        log::info!("{} unpublished; player waits for the next publish", p.key);
                        if p.publish_notify {
                            notify(
                                &mut self.session,
                                &mut plan,
                                status::PLAY_UNPUBLISH_NOTIFY,
                                "stream is now unpublished",
                            );
                        }
                    }
                    Item::Published => {
                        // The timeline continues (time_jitter): players ride over the gap.
                        p.consumer.reset_timeline();
                        // The new publish's headers and first keyframe go out at once.
                        p.primed = false;
                        if p.publish_notify {
                            notify(
                                &mut self.session,
                                &mut plan,
                                status::PLAY_PUBLISH_NOTIFY,
                                "stream is now published",
                            );
                        }
                    }
                }
            }
        }
        Some(plan)
    }

    /// What follows every write of a batch: TCP_NODELAY off once primed, the next merged
    /// write's time, the batch's references dropped (frames may be freed), new drops logged.
    fn after_write(
        &mut self,
        writer: &OwnedWriteHalf,
        items: &mut Batch,
        was_primed: bool,
        now: Instant,
    ) {
        let Role::Playing(p) = &mut self.role else {
            items.clear(ITEMS_KEEP);
            return;
        };
        if p.primed && !was_primed && !p.tcp_nodelay {
            // Live frames from here on: let the kernel merge them (see `tcp_nodelay`).
            let _ = writer.as_ref().set_nodelay(false);
        }
        if p.primed {
            // The next batch goes out at most mw_latency after this one, on the grid all
            // players share, with more than mw_msgs messages (runtime::merge): the task is
            // not woken by the frames that come meanwhile. When the read left more (a
            // backlog), at once.
            p.next_write = crate::app::runtime::merge::next_player_write(
                now,
                p.mw_latency,
                p.mw_msgs,
                items.more(),
            );
        }
        let drops = items.dropped();
        items.clear(ITEMS_KEEP);
        if drops > p.reported_drops {
            // Rate-limited by the batch: one line per write that saw new drops.
            log::warn!("{} player too slow: dropped {} frames so far", p.key, drops);
            p.reported_drops = drops;
        }
    }
}

/// The length of a play when the client asked for one (the `play` command's duration,
/// `rtmpdump -B`): the media time sent so far, counted as SRS 6 counts it (srs#45). Each
/// message adds its timestamp's step from the message before, whatever its track; a step back
/// adds nothing. The play ends after the write that reaches the length.
#[derive(Debug)]
pub(super) struct PlayLength {
    limit_ms: u32,
    played_ms: u64,
    last: Option<u32>,
}

impl PlayLength {
    pub(super) fn new(limit_ms: u32) -> PlayLength {
        PlayLength {
            limit_ms,
            played_ms: 0,
            last: None,
        }
    }

    /// Counts a message with timestamp `ts` (ms, as sent to the player).
    fn count(&mut self, ts: u32) {
        if let Some(step) = self.last.and_then(|last| ts.checked_sub(last)) {
            self.played_ms += u64::from(step);
        }
        self.last = Some(ts);
    }

    /// `(played, limit)` in ms once the played media time reached the limit.
    pub(super) fn reached(&self) -> Option<(u64, u32)> {
        (self.played_ms >= u64::from(self.limit_ms)).then_some((self.played_ms, self.limit_ms))
    }
}

/// An onStatus notice of the stream's publish or unpublish to a player that asked for them
/// (`publish_notify`), as the player's own bytes in the batch's plan.
fn notify(session: &mut ServerSession, plan: &mut Plan<'_>, code: &str, description: &str) {
    session.send_status("status", code, description);
    if let Some(b) = session.take_output() {
        plan.owned(b);
    }
}

#[cfg(test)]
mod tests {
    use super::PlayLength;

    #[test]
    fn a_play_length_adds_the_steps_of_every_track_and_none_back() {
        let mut l = PlayLength::new(150);
        // Audio and video interleaved: 0, 20 (a), 40 (v), 40 (a), 60 ...
        for ts in [0, 20, 40, 40, 60] {
            l.count(ts);
        }
        assert_eq!(l.reached(), None);
        // A step back (a republish's timeline, out-of-order audio) adds nothing, and counting
        // goes on from there.
        l.count(10);
        l.count(70);
        assert_eq!(l.reached(), None, "60 + 0 + 60");
        l.count(110);
        assert_eq!(l.reached(), Some((160, 150)));
        let mut first = PlayLength::new(1);
        first.count(5_000);
        assert_eq!(first.reached(), None, "the first message starts the count");
    }
}
