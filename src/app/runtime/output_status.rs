//! What the outputs of a live stream (HLS, DVR, forward) are doing, for the HTTP API (per
//! stream: `hls`, `dvr`, `forward`) and `/metrics` (`srsd_output_errors_total` by output and
//! reason), so a full disk or a dead forward destination shows somewhere else than the log.
//!
//! An output registers a [`Status`] when it starts and keeps the returned [`Registered`]
//! guard; dropping the guard (the output ended) removes it. Counters outlive the outputs.

use crate::hub::StreamKey;
use std::io;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

/// The kinds of output that report a state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    Hls,
    Dvr,
    Forward,
}

impl Output {
    const ALL: [Output; 3] = [Output::Hls, Output::Dvr, Output::Forward];

    /// The name in the API and in `/metrics` (`output="hls"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Output::Hls => "hls",
            Output::Dvr => "dvr",
            Output::Forward => "forward",
        }
    }
}

/// Why an output failed, as `/metrics` counts it (`reason="no_space"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reason {
    /// The disk (or the HLS memory store) is full: ENOSPC, EDQUOT, EFBIG.
    NoSpace,
    /// EACCES, EPERM, EROFS.
    Permission,
    /// Any other file or socket error.
    Io,
    /// A forward destination refused the connection or the publish.
    Refused,
    /// A forward destination did not answer in time.
    Timeout,
    /// A forward destination closed the connection or broke the protocol.
    Closed,
}

impl Reason {
    const ALL: [Reason; 6] = [
        Reason::NoSpace,
        Reason::Permission,
        Reason::Io,
        Reason::Refused,
        Reason::Timeout,
        Reason::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::NoSpace => "no_space",
            Reason::Permission => "permission",
            Reason::Io => "io",
            Reason::Refused => "refused",
            Reason::Timeout => "timeout",
            Reason::Closed => "closed",
        }
    }

    /// The reason of a file error.
    pub fn of_io(e: &io::Error) -> Reason {
        use io::ErrorKind as K;
        match e.kind() {
            K::StorageFull | K::QuotaExceeded | K::FileTooLarge | K::OutOfMemory => Reason::NoSpace,
            K::PermissionDenied | K::ReadOnlyFilesystem => Reason::Permission,
            K::ConnectionRefused => Reason::Refused,
            K::TimedOut => Reason::Timeout,
            _ => Reason::Io,
        }
    }
}

/// One output of one stream: its state word, its errors, the last one and when.
#[derive(Debug)]
pub struct Status {
    pub output: Output,
    /// What it writes to: the m3u8 file, the DVR file pattern, the forward destination.
    pub target: String,
    inner: Mutex<Inner>,
    counters: Arc<Counters>,
}

#[derive(Debug, Clone, Default)]
struct Inner {
    state: &'static str,
    errors: usize,
    last_error: String,
    /// Unix time of the last error, ms; 0 when there was none.
    last_error_ms: u64,
    /// Frames the output lost because it could not keep up (its queue dropped them).
    dropped: usize,
}

/// A copy of a [`Status`] for the API.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub output: Output,
    pub target: String,
    /// The state word: `hls` "writing"/"failed"/"stopped", `dvr`
    /// "waiting"/"recording"/"retrying", `forward` "connecting"/"forwarding"/"retrying".
    pub state: &'static str,
    /// Errors since the output started.
    pub errors: usize,
    /// The last error's text ("" when none).
    pub last_error: String,
    /// Unix time of the last error, ms (0 when none).
    pub last_error_ms: u64,
    /// Frames dropped because the output fell behind (slow disk, slow destination).
    pub dropped: usize,
}

impl Status {
    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Sets the state word; returns whether it changed (callers log once per change).
    pub fn set_state(&self, state: &'static str) -> bool {
        std::mem::replace(&mut self.lock().state, state) != state
    }

    /// The state word now.
    pub fn state(&self) -> &'static str {
        self.lock().state
    }

    /// Records an error (counted in `/metrics` by `reason`) and sets the state word; returns
    /// whether the state changed.
    pub fn fail(&self, reason: Reason, error: &dyn std::fmt::Display, state: &'static str) -> bool {
        self.counters.add(self.output, reason);
        let mut i = self.lock();
        i.errors += 1;
        i.last_error = error.to_string();
        i.last_error_ms = super::log::now_unix_ms();
        std::mem::replace(&mut i.state, state) != state
    }

    /// Sets the count of frames dropped for this output.
    pub fn set_dropped(&self, n: usize) {
        self.lock().dropped = n;
    }

    pub fn snapshot(&self) -> Snapshot {
        let i = self.lock().clone();
        Snapshot {
            output: self.output,
            target: self.target.clone(),
            state: i.state,
            errors: i.errors,
            last_error: i.last_error,
            last_error_ms: i.last_error_ms,
            dropped: i.dropped,
        }
    }
}

/// Errors by output and reason since the server started.
#[derive(Debug, Default)]
struct Counters([[AtomicUsize; Reason::ALL.len()]; Output::ALL.len()]);

impl Counters {
    fn add(&self, output: Output, reason: Reason) {
        self.0[output as usize][reason as usize].fetch_add(1, Ordering::Relaxed);
    }
}

/// The outputs of every live stream, and the error counters.
#[derive(Debug, Default)]
pub struct Outputs {
    /// A list, not a map: a few entries per live stream, read only by the API.
    streams: Mutex<Vec<(StreamKey, Arc<Status>)>>,
    counters: Arc<Counters>,
}

/// Keeps a [`Status`] listed while alive.
#[derive(Debug)]
pub struct Registered {
    outputs: Arc<Outputs>,
    pub status: Arc<Status>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        let mut m = self.outputs.lock();
        if let Some(i) = m.iter().position(|(_, s)| Arc::ptr_eq(s, &self.status)) {
            m.swap_remove(i);
        }
    }
}

impl Outputs {
    fn lock(&self) -> MutexGuard<'_, Vec<(StreamKey, Arc<Status>)>> {
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Lists a new output of `key` in state `state` until the guard is dropped.
    pub fn register(
        self: &Arc<Self>,
        key: &StreamKey,
        output: Output,
        target: String,
        state: &'static str,
    ) -> Registered {
        let status = Arc::new(Status {
            output,
            target,
            inner: Mutex::new(Inner {
                state,
                ..Inner::default()
            }),
            counters: self.counters.clone(),
        });
        self.lock().push((key.clone(), status.clone()));
        Registered {
            outputs: self.clone(),
            status,
        }
    }

    /// The outputs of `key` now.
    pub fn of(&self, key: &StreamKey) -> Vec<Snapshot> {
        let m = self.lock();
        m.iter()
            .filter(|(k, _)| k == key)
            .map(|(_, s)| s.snapshot())
            .collect()
    }

    /// Every (output, reason, count) with a count above 0, for `/metrics`.
    pub fn error_counts(&self) -> Vec<(&'static str, &'static str, usize)> {
        let mut out = Vec::new();
        for o in Output::ALL {
            for r in Reason::ALL {
                let n = self.counters.0[o as usize][r as usize].load(Ordering::Relaxed);
                if n > 0 {
                    out.push((o.as_str(), r.as_str(), n));
                }
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_listed_while_registered_and_errors_counted_by_reason() {
        let outputs = Arc::new(Outputs::default());
        let key = StreamKey::new("v", "live", "s");
        let hls = outputs.register(&key, Output::Hls, "s.m3u8".into(), "writing");
        let dvr = outputs.register(&key, Output::Dvr, "s.flv".into(), "waiting");
        let full = io::Error::from(io::ErrorKind::StorageFull);
        assert!(hls.status.fail(Reason::of_io(&full), &full, "failed"));
        assert!(!hls.status.fail(Reason::of_io(&full), &full, "failed"));
        assert!(!dvr.status.set_state("waiting"));
        let s = outputs.of(&key);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].state, s[0].errors), ("failed", 2));
        assert!(s[0].last_error_ms > 0 && !s[0].last_error.is_empty());
        assert_eq!(outputs.error_counts(), vec![("hls", "no_space", 2)]);
        drop(hls);
        drop(dvr);
        assert!(outputs.of(&key).is_empty(), "gone with their outputs");
        assert!(outputs.lock().is_empty());
        assert_eq!(outputs.error_counts().len(), 1, "counters outlive outputs");
    }
}
