//! The one list of what a publish starts besides its players (SRS's
//! `SrsOriginHub::on_publish`): edge push to the origin, forward, the HLS segmenter, the DVR
//! recorder and transcode. A new output is one more line in [`start`] and one more field in
//! [`Outputs`]; transports never spawn outputs themselves.

pub mod dvr;
pub mod dvr_writer;
pub mod hls;
pub mod transcode;

use crate::app::cluster::{edge, forward};
use crate::app::shared::ClientRequest;
use crate::app::shared::{Context, Finished};
use crate::config::VhostConfig;
use crate::hub::Source;
use std::sync::Arc;
use std::time::Duration;

/// How long the HLS segmenter and the DVR recorder gather frames between two reads of
/// their stream (the first frame after it wakes them): ten wake-ups a second instead of one
/// per frame, each a hand-over to another thread. Segments and files are cut on frame
/// timestamps, so only when a write happens moves, by at most this.
pub const FILE_GATHER: Duration = Duration::from_millis(100);

/// When a file writer reads next: at once when its last read left more to read (it is
/// behind: a burst, a publisher faster than real time), else [`FILE_GATHER`] later.
pub fn next_gather(more: bool) -> Option<std::time::Instant> {
    (!more).then(|| std::time::Instant::now() + FILE_GATHER)
}

/// The outputs of one publish. Dropping it stops forward and transcode; HLS and DVR stop
/// when the stream is unpublished and close their files on their own: [`Outputs::finish`]
/// waits for that.
pub struct Outputs {
    _forward: forward::Forwards,
    _transcode: transcode::Transcoder,
    /// HLS and DVR writers: each resolves once its last file is closed and its last
    /// `on_hls`/`on_dvr` queued.
    files: Vec<Finished>,
}

/// Starts every output `vhost` asks for on `source`, published by client `cid` with the
/// request `who` (the hook facts `on_hls`/`on_dvr` carry) and `param` (the publish query,
/// passed upstream by edge push and forward, and to transcode templates).
pub fn start(
    ctx: &Arc<Context>,
    vhost: &VhostConfig,
    source: &Arc<Source>,
    cid: u32,
    who: &ClientRequest,
    param: &str,
) -> Outputs {
    // edge/forward: a publish on an edge goes up to the origin; forward copies it out.
    edge::push(ctx, vhost, source, param);
    let forward = forward::spawn_all(ctx, source, param);
    // edge/forward: end.
    let files = [
        hls::spawn(ctx, vhost, source, cid, who.clone()),
        dvr::spawn(ctx, vhost, source, who.clone()),
    ]
    .into_iter()
    .flatten()
    .collect();
    Outputs {
        _forward: forward,
        _transcode: transcode::spawn(ctx, &source.key, param),
        files,
    }
}

impl Outputs {
    /// Call after the publisher is gone: stops transcode and forward, then waits up to
    /// `limit` per writer for HLS and DVR to close their last files. Returns how many were
    /// still writing then.
    pub async fn finish(self, limit: Duration) -> usize {
        let Outputs { files, .. } = self;
        let mut late = 0;
        for f in files {
            if !f.wait(limit).await {
                late += 1;
            }
        }
        late
    }
}
