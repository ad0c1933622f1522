//! The TOML configuration (src/config): any text parses or fails with `file:line:col: reason`
//! at a line that exists.
#![no_main]
use libfuzzer_sys::fuzz_target;
use srsd::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = Config::parse(text, "x.toml") {
        let shown = e.to_string();
        let mut parts = shown.splitn(4, ':');
        assert_eq!(parts.next(), Some("x.toml"), "{shown}");
        let line: usize = parts.next().and_then(|l| l.parse().ok()).expect(&shown);
        let col: usize = parts.next().and_then(|c| c.parse().ok()).expect(&shown);
        assert!(line >= 1 && col >= 1, "{shown}");
        assert!(line <= text.lines().count() + 1, "{shown}");
    }
});
