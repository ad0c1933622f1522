//! What a publish starts besides its players: HLS segmenter, DVR recorder, transcode.

pub mod dvr;
pub mod hls;
pub mod transcode;
