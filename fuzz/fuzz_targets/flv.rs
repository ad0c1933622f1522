//! FLV files and HTTP-FLV streams (src/protocol/flv.rs): any bytes, in any read sizes, decode
//! to tags or fail cleanly; each tag consumes input; the tag size cap holds.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use srsd::protocol::flv::FlvDecoder;

fuzz_target!(|data: &[u8]| {
    let (seed, file) = srsd_fuzz::split_seed(data);
    // A small cap on some runs, so that the over-cap path is reached.
    let max = if seed & 0x40 != 0 { 100 } else { 1 << 20 };
    let mut dec = FlvDecoder::with_max_tag_size(max);
    let mut buf = BytesMut::new();
    srsd_fuzz::feed_in_pieces(seed & 0x3F, file, &mut buf, |buf| loop {
        let before = buf.len();
        match dec.decode(buf) {
            Ok(Some(t)) => {
                assert!(buf.len() < before, "a tag consumed nothing");
                assert!(t.payload.len() <= max);
            }
            Ok(None) => return true,
            Err(_) => return false,
        }
    });
});
