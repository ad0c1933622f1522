//! The RTMP server session (src/protocol/rtmp/session/server.rs) after the handshake: any
//! chunk stream from a client, in any read sizes. Connects, publishes and plays are accepted
//! (or refused, by the split seed's low bit) as the server would, so that the fuzzer reaches
//! the publishing and playing states. Output stays proportional to input; events per call stay
//! under the session's cap.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use srsd::protocol::rtmp::command::status;
use srsd::protocol::rtmp::session::{ServerEvent, ServerSession};

fuzz_target!(|data: &[u8]| {
    let (seed, wire) = srsd_fuzz::split_seed(data);
    let accept = seed & 1 == 0;
    let mut s = ServerSession::new(60000, "srsd/fuzz");
    let mut buf = BytesMut::new();
    srsd_fuzz::feed_in_pieces(seed, wire, &mut buf, |buf| {
        let before = buf.len();
        let r = s.handle_input(buf);
        let out = s.take_output().map_or(0, |b| b.len());
        assert!(out <= 64 * before + 8192, "{out} bytes out for {before} in");
        let mut n = 0;
        while let Some(e) = s.poll_event() {
            n += 1;
            match e {
                ServerEvent::Connect { id, .. } if accept => s.accept_connect(id),
                ServerEvent::Connect { id, .. } => s.reject_connect(id, "no"),
                ServerEvent::Publish { id, .. } if accept => s.accept_publish(id),
                ServerEvent::Publish { id, .. } => {
                    s.reject_publish(id, status::PUBLISH_DENIED, "no")
                }
                ServerEvent::Play { id, .. } if accept => s.accept_play(id),
                ServerEvent::Play { id, .. } => {
                    s.reject_play(id, status::PLAY_STREAM_NOT_FOUND, "no")
                }
                _ => {}
            }
        }
        assert!(n <= 4097, "{n} events from one input");
        r.is_ok()
    });
});
