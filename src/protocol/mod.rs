//! Sans-IO codecs: bytes in, events and bytes out.
//!
//! Nothing in this module (or below it) may use tokio, `std::net`, `std::fs`, or read the
//! clock: time and randomness are arguments. `tests/layering.rs` checks this.

pub mod aac;
pub mod amf0;
pub mod avc;
pub mod codec_info;
pub mod dns;
pub mod flv;
pub mod hevc;
pub mod m3u8;
pub mod media;
pub mod rtmp;
pub mod ts;
pub mod ts_remux;

#[cfg(test)]
pub(crate) mod testutil;
