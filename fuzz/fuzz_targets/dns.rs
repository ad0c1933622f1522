//! DNS answers (src/protocol/dns.rs), as a name server or anyone spoofing one would send them:
//! any bytes parse or fail cleanly, compression pointers cannot loop, at most MAX_ADDRESSES
//! addresses of the asked type come out. The first byte picks the query type and id.
#![no_main]
use libfuzzer_sys::fuzz_target;
use srsd::protocol::dns::{parse_answer, query_question, Address, QueryType, MAX_ADDRESSES};

fuzz_target!(|data: &[u8]| {
    let (b, answer) = srsd_fuzz::split_seed(data);
    let qtype = if b & 1 == 0 {
        QueryType::A
    } else {
        QueryType::Aaaa
    };
    let id = u16::from(b >> 1);
    if let Ok(v) = parse_answer(answer, id, "origin.test", qtype) {
        assert!(v.len() <= MAX_ADDRESSES);
        assert!(v.iter().all(|a| match a {
            Address::V4(_) => qtype == QueryType::A,
            Address::V6(_) => qtype == QueryType::Aaaa,
        }));
    }
    let _ = query_question(answer);
});
