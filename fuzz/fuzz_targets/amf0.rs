//! AMF0 (src/protocol/amf0): any bytes decode or fail cleanly; what decodes re-encodes to
//! bytes that decode to the same values.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use srsd::protocol::amf0::{decode_all, encode_all};

fuzz_target!(|data: &[u8]| {
    if let Ok(values) = decode_all(data) {
        let mut out = BytesMut::new();
        encode_all(&values, &mut out);
        let again = decode_all(&out).expect("re-encoded values decode");
        assert_eq!(format!("{again:?}"), format!("{values:?}"));
    }
});
