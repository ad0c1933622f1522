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

/// An onStatus notice of the stream's publish or unpublish to a player that asked for them
/// (`publish_notify`), as the player's own bytes in the batch's plan.
fn notify(session: &mut ServerSession, plan: &mut Plan<'_>, code: &str, description: &str) {
    session.send_status("status", code, description);
    if let Some(b) = session.take_output() {
        plan.owned(b);
    }
}
