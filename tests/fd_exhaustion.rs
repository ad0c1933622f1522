//! Out of file descriptors: a client the server cannot accept (EMFILE) is refused at once, not
//! left hanging in the backlog, and the accept loop does not spin. Alone in its test binary:
//! it lowers this process's open-file limit.

mod common;

use common::*;
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::time::Duration;

/// User + system CPU seconds of this process.
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, r)| r.split_whitespace().collect())
        .unwrap_or_default();
    let tick = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the line, 12 and 13 after the comm.
    // A 0 from an unreadable file would let any CPU bound pass.
    assert!(
        fields.len() > 12,
        "this process's /proc/self/stat: {stat:?}"
    );
    (tick(11) + tick(12)) / 100.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_past_the_last_descriptor_is_refused_at_once_without_spinning() {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let server = start_server("fd-exhaustion", "").await;
    let port = server.addr.port();
    // The accept loop opens its spare descriptor when it first runs, which may be after
    // `start_server` returns (the loop is a task of a task): a client served first proves it
    // runs, so its spare is open before the descriptors run out.
    let url = srsd::client::RtmpUrl::parse(&server.url("live/fd")).unwrap();
    let first = srsd::client::RtmpClient::connect(&url, Duration::from_secs(5)).await;
    assert!(first.is_ok(), "served before the test: {:?}", first.err());
    drop(first);
    // And its connection closed: a descriptor the server frees after the test took the
    // free ones would go to a client.
    let gone = std::time::Instant::now() + Duration::from_secs(5);
    while server
        .ctx
        .connections
        .load(std::sync::atomic::Ordering::Relaxed)
        > 0
    {
        assert!(
            std::time::Instant::now() < gone,
            "the first client's connection ends"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    // The clients live in a child started now, while descriptors are still available: it
    // waits for a line, then connects three times, printing how each ended (0 = the server
    // closed it; 124 = still open after 3 s) and how long it took.
    let script = format!(
        "read go; for i in 1 2 3; do s=$(date +%s%N); \
         if exec 3<>/dev/tcp/127.0.0.1/{port}; then timeout 3 cat <&3 >/dev/null; r=$?; \
         exec 3<&-; else r=connect-failed; fi; \
         echo \"$r $(( ($(date +%s%N) - s) / 1000000 ))\"; done"
    );
    let mut child = Proc(
        Command::new("bash")
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("bash"),
    );
    let mut stdin = child.0.stdin.take().unwrap();
    let stdout = child.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<_>>()
    });
    let refused_before = server
        .ctx
        .refused
        .load(std::sync::atomic::Ordering::Relaxed);

    // No descriptor left: the limit is the highest one open now, plus one, ...
    let highest = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u64>().ok())
        .max()
        .unwrap();
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).unwrap();
    let cpu_before = cpu_seconds();
    let wall = std::time::Instant::now();
    setrlimit(Resource::RLIMIT_NOFILE, highest + 1, hard).unwrap();
    // And the free numbers below it taken: once, and once more a moment later, so that a
    // descriptor open elsewhere in this process during the first pass (the server reading a
    // /proc file, the runtime) and closed since goes to the test, not to a client.
    let mut filler = Vec::new();
    for pass in 0..2 {
        if pass > 0 {
            std::thread::sleep(Duration::from_millis(50));
        }
        while let Ok(f) = std::fs::File::open("/dev/null") {
            filler.push(f);
        }
    }
    let go = stdin.write_all(b"go\n").and_then(|()| stdin.flush());
    let lines = tokio::task::spawn_blocking(move || reader.join().unwrap_or_default())
        .await
        .unwrap_or_default();
    // Held a second longer: an accept loop spinning on EMFILE would show in the CPU time.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let held = filler.len();
    drop(filler);
    setrlimit(Resource::RLIMIT_NOFILE, soft, hard).unwrap();
    // Measured with descriptors back: /proc/self/stat cannot be opened while none is free.
    let cpu = cpu_seconds() - cpu_before;
    let wall = wall.elapsed();
    go.expect("tell the child to go");

    let refused = server
        .ctx
        .refused
        .load(std::sync::atomic::Ordering::Relaxed)
        - refused_before;
    eprintln!(
        "out of descriptors ({held} taken by the test): clients {lines:?} (status, ms); \
         {refused} refused; CPU {cpu:.2} s over {wall:?}"
    );
    assert_eq!(lines.len(), 3, "{lines:?}");
    for l in &lines {
        let (status, ms) = l.split_once(' ').unwrap_or(("", ""));
        let ms: u64 = ms.parse().unwrap_or(u64::MAX);
        assert_eq!(status, "0", "closed by the server, not left open: {l}");
        assert!(ms < 1000, "at once: {l}");
    }
    assert_eq!(refused, 3, "counted as refused");
    assert!(
        cpu < 0.5 * wall.as_secs_f64() + 0.2,
        "the accept loop does not spin: {cpu:.2} s CPU in {wall:?}"
    );
    // Descriptors back: the server serves again.
    let again = srsd::client::RtmpClient::connect(&url, Duration::from_secs(5)).await;
    assert!(again.is_ok(), "{:?}", again.err());
}
