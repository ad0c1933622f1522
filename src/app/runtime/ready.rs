//! Lines on stdout for the process that started srsd (an Android app's `ProcessBuilder`, a
//! supervisor): one per listener as it starts serving, then `srsd: ready`. They are written
//! whatever the log's tank is, so a parent reading stdout knows when to connect:
//!
//! ```text
//! srsd: listen rtmp tcp://127.0.0.1:1935
//! srsd: listen http-server http://0.0.0.0:8080
//! srsd: listen http-api http://127.0.0.1:1985
//! srsd: ready
//! ```
//!
//! A closed or full stdout is ignored (a daemon's is /dev/null).

use std::io::Write;

/// `srsd: listen KIND URL`.
pub fn listener(kind: &str, url: &str) {
    line(&format!("srsd: listen {kind} {url}"));
}

/// `srsd: ready`, after every listener line.
pub fn ready() {
    line("srsd: ready");
}

fn line(s: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{s}").and_then(|()| out.flush());
}
