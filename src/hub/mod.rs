//! The hub: one live stream = one [`Source`]. It knows no protocol: publishers push frames,
//! consumers (RTMP players, HTTP-FLV viewers, HLS, DVR, forward) drain bounded queues.
//!
//! Invariants (DESIGN.md §2): publishing never waits on a consumer; every queue is bounded and
//! every drop is counted; a late joiner gets metadata, sequence headers and the GOP cache
//! atomically before live frames.

pub mod frame;
pub mod jitter;
pub mod queue;
pub mod source;
pub mod wake;

pub use frame::{Codec, Frame, FrameFlags, MediaKind, Packet, TagHeader};
pub use jitter::TimeJitter;
pub use queue::{Batch, Item, QueueLimits};
pub use source::{BusyError, Consumer, Publisher, Source, SourceOptions};
pub use wake::WriteTime;

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

/// A stream's identity: (vhost, app, stream), the vhost already resolved.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamKey {
    pub vhost: String,
    pub app: String,
    pub stream: String,
}

impl StreamKey {
    pub fn new(vhost: &str, app: &str, stream: &str) -> Self {
        StreamKey {
            vhost: vhost.into(),
            app: app.into(),
            stream: stream.into(),
        }
    }

    /// The stream URL used by hooks and stats: `[vhost/]app/stream`, the vhost omitted for the
    /// default one (CONTRACTS.md §3 rule 6).
    pub fn url(&self) -> String {
        if self.vhost == crate::config::DEFAULT_VHOST {
            format!("/{}/{}", self.app, self.stream)
        } else {
            format!("{}/{}/{}", self.vhost, self.app, self.stream)
        }
    }
}

impl fmt::Display for StreamKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.url())
    }
}

/// How often [`Hub::wake_due`] runs: the most a merged write waits past its time when its
/// stream's publisher pauses.
pub const MERGE_CHECK: std::time::Duration = std::time::Duration::from_millis(50);

/// The registry of live sources.
#[derive(Default)]
pub struct Hub {
    sources: Mutex<HashMap<StreamKey, Arc<Source>>>,
    /// Stream ids for the API; 32-bit so the counter is atomic on 32-bit MIPS too.
    next_id: std::sync::atomic::AtomicU32,
}

impl Hub {
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub::default())
    }

    /// The source for `key`, created on first use (a player may come before the publisher).
    pub fn source(self: &Arc<Self>, key: &StreamKey, opts: SourceOptions) -> Arc<Source> {
        let mut s = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        s.entry(key.clone())
            .or_insert_with(|| {
                let id = self
                    .next_id
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
                    + 1;
                Arc::new(Source::new(id, key.clone(), Arc::downgrade(self), opts))
            })
            .clone()
    }

    pub fn find(&self, key: &StreamKey) -> Option<Arc<Source>> {
        self.sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(key)
            .cloned()
    }

    /// All sources, sorted by key.
    pub fn list(&self) -> Vec<Arc<Source>> {
        let mut v = self.all();
        v.sort_by(|a, b| a.key.cmp(&b.key));
        v
    }

    /// All sources, in no order (the registry's lock is not held while they are used).
    fn all(&self) -> Vec<Arc<Source>> {
        self.sources
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .values()
            .cloned()
            .collect()
    }

    /// Wakes, on every stream, the consumers whose merged-write time came: their stream's
    /// next frame wakes them otherwise, so this matters only for a publisher that paused
    /// with frames still to send. Called a few times a second ([`MERGE_CHECK`]).
    pub fn wake_due(&self) {
        let now = std::time::Instant::now();
        for s in self.all() {
            s.wake_due(now);
        }
    }

    /// Drops the source when nobody holds it any more (also for a source made for a viewer
    /// that was then refused: a flood of refused names must not pile up sources).
    pub fn release(&self, key: &StreamKey) {
        let mut s = self.sources.lock().unwrap_or_else(|p| p.into_inner());
        if s.get(key).is_some_and(|src| src.is_idle()) {
            s.remove(key);
        }
    }
}

#[cfg(test)]
mod tests;
