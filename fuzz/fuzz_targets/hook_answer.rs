//! HTTP hook answers and hook URLs (src/app/hooks.rs): SRS's allow rule (HTTP 200/201 with a
//! body of `0` or a JSON object whose `code` is 0) on any body, and any hook URL.
#![no_main]
use libfuzzer_sys::fuzz_target;
use srsd::app::hooks;

fuzz_target!(|data: &[u8]| {
    let (b, rest) = srsd_fuzz::split_seed(data);
    let status = [200, 201, 0, 500, 204, u16::MAX][usize::from(b) % 6];
    let body = String::from_utf8_lossy(rest);
    let allowed = hooks::allows(status, &body);
    if allowed {
        assert!(status == 200 || status == 201);
    }
    let _ = hooks::parse_url(&body);
});
