//! AAC AudioSpecificConfig (src/protocol/aac.rs): any bytes parse or fail cleanly; whatever
//! parses frames a payload of any length in a 7-byte ADTS header.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use srsd::protocol::aac::{adts_header, parse_audio_specific_config};

fuzz_target!(|data: &[u8]| {
    if let Ok(cfg) = parse_audio_specific_config(data) {
        for len in [0, 1, 8184, 8192, usize::MAX] {
            let mut out = BytesMut::new();
            adts_header(&cfg, len, &mut out);
            assert_eq!(out.len(), 7);
            assert_eq!(&out[..2], &[0xFF, 0xF1]);
        }
    }
});
