//! The thread a DVR recording writes on ([`crate::app::runtime::file_thread`]): it feeds the
//! [`Recorder`] the frames its hub consumer received, sends every closed file back for
//! `on_dvr`, and keeps the recording's `dvr` state (API, `/metrics`), logging once per change.

use super::dvr::{Recorder, RECORDING, RETRYING, RETRY_FIRST_MS, RETRY_MAX_MS};
use crate::app::runtime::output_status::{Reason, Status};
use crate::hub::StreamKey;
use std::path::PathBuf;

/// The writer thread: records until the feeder is gone, keeps `status`, logs once per change
/// of state, and sends every closed file to `closed`.
pub fn write(
    mut rec: Recorder,
    mut rx: tokio::sync::mpsc::Receiver<crate::app::runtime::file_thread::Batch>,
    closed: tokio::sync::mpsc::Sender<PathBuf>,
    key: &StreamKey,
    status: &Status,
) {
    while let Some(batch) = rx.blocking_recv() {
        for (f, ts) in batch {
            let out = rec.handle(&f, ts);
            for p in out.closed {
                let _ = closed.blocking_send(p);
            }
            if let Some(e) = out.failed {
                if status.fail(Reason::of_io(&e), &e, RETRYING) {
                    log::error!(
                        "dvr {key}: {e}; recording resumes into a new file once writes \
                         succeed (retried every {} to {} s of stream)",
                        RETRY_FIRST_MS / 1000,
                        RETRY_MAX_MS / 1000
                    );
                }
            } else if out.resumed {
                status.set_state(RECORDING);
                log::warn!("dvr {key}: writes succeed again; recording resumed");
            } else if rec.is_open() && !rec.failing() {
                status.set_state(RECORDING);
            }
        }
    }
    match rec.close() {
        Ok(Some(path)) => {
            let _ = closed.blocking_send(path);
        }
        Ok(None) => {}
        Err(e) => {
            status.fail(Reason::of_io(&e), &e, RETRYING);
            log::error!("dvr {key}: closing: {e}");
        }
    }
}
