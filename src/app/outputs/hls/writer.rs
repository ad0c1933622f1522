//! The thread an HLS segmenter writes on ([`crate::app::runtime::file_thread`]): it feeds the
//! [`Segmenter`] what its hub consumer received, applies `on_error`, keeps the stream's `hls`
//! state (API, `/metrics`), logging once per change, and closes the last segment.

use super::{HlsStop, Segmenter, FAILED, STOPPED, WRITING};
use crate::app::runtime::file_thread::Batch;
use crate::app::runtime::output_status::{Reason, Status};
use crate::config::HlsOnError;
use crate::hub::StreamKey;

/// The writer thread: feeds the segmenter until the stream is unpublished (the channel
/// closes), applies `on_error`, keeps `status`, and closes the last segment.
pub(super) fn write(
    mut seg: Segmenter,
    mut rx: tokio::sync::mpsc::Receiver<Batch>,
    on_error: HlsOnError,
    key: &StreamKey,
    status: &Status,
) -> HlsStop {
    let mut off = false;
    let stop = 'outer: loop {
        let Some(batch) = rx.blocking_recv() else {
            break HlsStop::Unpublished;
        };
        for (f, _) in batch {
            if off {
                continue;
            }
            let listed = seg.committed();
            let e = match seg.handle(&f) {
                Ok(()) => {
                    if seg.committed() != listed && status.set_state(WRITING) {
                        log::warn!(
                            "hls {key}: writing again; the gap is marked EXT-X-DISCONTINUITY"
                        );
                    }
                    continue;
                }
                Err(e) => e,
            };
            let reason = Reason::of_io(&e);
            match on_error {
                HlsOnError::Ignore => {
                    status.fail(reason, &e, STOPPED);
                    log::warn!("hls {key}: {e}; on_error=ignore: HLS off for this publish");
                    off = true;
                }
                HlsOnError::Disconnect => {
                    status.fail(reason, &e, FAILED);
                    log::error!("hls {key}: {e}; on_error=disconnect: dropping the publisher");
                    break 'outer HlsStop::Disconnect(e);
                }
                HlsOnError::Continue => {
                    if status.fail(reason, &e, FAILED) {
                        log::warn!(
                            "hls {key}: {e}; on_error=continue: segments are dropped until \
                             writes succeed again (logged once)"
                        );
                    }
                }
            }
        }
    };
    if let Err(e) = seg.finish() {
        status.fail(Reason::of_io(&e), &e, FAILED);
        log::warn!("hls {key}: closing the last segment: {e}");
    }
    stop
}
