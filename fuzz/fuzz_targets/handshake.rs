//! The RTMP handshake, both sides (src/protocol/rtmp/handshake.rs): any C0C1C2 to a server and
//! any S0S1S2 to a client, in any read sizes, complete or fail cleanly; `Done` is sticky.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use srsd::protocol::rtmp::handshake::{ClientHandshake, HandshakeProgress, ServerHandshake};

fuzz_target!(|data: &[u8]| {
    let (seed, wire) = srsd_fuzz::split_seed(data);
    let mut fill = |b: &mut [u8]| b.fill(0x5A);
    if seed & 0x80 == 0 {
        let mut hs = ServerHandshake::new();
        let mut buf = BytesMut::new();
        let mut done = false;
        srsd_fuzz::feed_in_pieces(seed, wire, &mut buf, |buf| {
            match hs.handle_input(buf, &mut fill, 7) {
                Ok(HandshakeProgress::Done { .. }) => {
                    done = true;
                    false
                }
                Ok(_) => true,
                Err(_) => false,
            }
        });
        if done {
            let mut rest = BytesMut::from(&b"x"[..]);
            match hs.handle_input(&mut rest, &mut fill, 7) {
                Ok(HandshakeProgress::Done { send }) => assert!(send.is_empty()),
                other => panic!("Done is not sticky: {other:?}"),
            }
            assert_eq!(&rest[..], b"x");
        }
    } else {
        let (mut hs, c0c1) = ClientHandshake::new(&mut fill, 7);
        assert!(!c0c1.is_empty());
        let mut buf = BytesMut::new();
        srsd_fuzz::feed_in_pieces(seed, wire, &mut buf, |buf| {
            matches!(hs.handle_input(buf), Ok(HandshakeProgress::NeedMore { .. }))
        });
    }
});
