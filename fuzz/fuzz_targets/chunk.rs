//! The RTMP chunk stream decoder (src/protocol/rtmp/chunk): any bytes, in any read sizes,
//! decode to messages or a clean error; each message consumes input; memory stays bounded.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use srsd::protocol::rtmp::chunk::ChunkDecoder;

fuzz_target!(|data: &[u8]| {
    let (seed, wire) = srsd_fuzz::split_seed(data);
    let mut dec = ChunkDecoder::new();
    // The second byte picks the peer's chunk size, as a Set Chunk Size would (0: the default
    // 128).
    let (size, wire) = srsd_fuzz::split_seed(wire);
    if size != 0 {
        let _ = dec.set_chunk_size(u32::from(size) * 16);
    }
    let mut buf = BytesMut::new();
    srsd_fuzz::feed_in_pieces(seed, wire, &mut buf, |buf| loop {
        let before = buf.len();
        match dec.decode(buf) {
            Ok(Some(m)) => {
                assert!(buf.len() < before, "a message consumed nothing");
                assert!(m.payload.len() <= srsd::protocol::rtmp::chunk::MAX_MESSAGE_LEN as usize);
            }
            Ok(None) => return true,
            Err(_) => return false,
        }
    });
});
