//! srsd: a small, fast live-streaming server (RTMP origin/edge, HLS, HTTP-FLV) compatible
//! with SRS's configuration concepts, HTTP API and callbacks.
//!
//! Layers (see ARCHITECTURE.md): `protocol` is sans-IO, `hub` fans frames out, `app` does all
//! I/O on tokio, `config` is the typed configuration tree, `client` is the async RTMP client,
//! `tools` are the CLI tools built into the same binary.
#![deny(unsafe_code)]

pub mod app;
pub mod client;
pub mod config;
pub mod hub;
pub mod protocol;
pub mod tools;

/// The server's version, as printed by `srsd -v` and sent in RTMP connect answers.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
