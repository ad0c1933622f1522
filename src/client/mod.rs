//! Async RTMP client (publish and play).
