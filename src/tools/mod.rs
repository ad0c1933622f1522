//! CLI tools built into the same binary: `srsd publish`, `srsd play`, `srsd bench`,
//! `srsd probe`, `srsd bandcheck`.
//!
//! Each tool parses its own arguments, builds its own tokio runtime and returns a process exit
//! code: 0 success, 1 failure, 2 bad arguments (after printing its usage). Tools are CLIs, so
//! they print with `println!`/`eprintln!` rather than the server's logger.

pub mod bandcheck;
mod bench;
mod bench_floor;
pub mod http_client;
#[cfg(feature = "import-srs")]
mod import_srs;
mod play;
mod probe;
mod publish;

use std::time::Duration;

/// Timeout for each connection step (TCP, handshake, connect, publish/play) in the tools.
const STEP_TIMEOUT: Duration = Duration::from_secs(10);

/// Names of the tools, for the main usage text.
pub const TOOLS: &[(&str, &str)] = &[
    ("publish", "publish an FLV file to an RTMP URL"),
    (
        "play",
        "play an RTMP stream, optionally recording it to FLV",
    ),
    ("bench", "load-test a server with many concurrent players"),
    (
        "probe",
        "print a stream's metadata, codecs, frame rate and bitrate as JSON",
    ),
    (
        "bandcheck",
        "measure up/down kbps and RTT with SRS's bandwidth check",
    ),
    (
        "import-srs",
        "convert an SRS config (2.0 or 3+ syntax) to srsd's TOML on stdout",
    ),
];

/// Runs tool `tool` with its arguments (without the tool name). `None` when `tool` is not a
/// tool's name, so the caller can go on parsing its own arguments.
pub fn run(tool: &str, args: &[String]) -> Option<i32> {
    Some(match tool {
        "publish" => publish::main(args),
        "play" => play::main(args),
        "bench" => bench::main(args),
        "probe" => probe::main(args),
        "bandcheck" => bandcheck::main(args),
        #[cfg(feature = "import-srs")]
        "import-srs" => import_srs::main(args),
        #[cfg(not(feature = "import-srs"))]
        "import-srs" => {
            eprintln!(
                "srsd import-srs: not in this build (a router board leaves it out for size); \
                 run it from an x86_64 or aarch64 srsd"
            );
            2
        }
        _ => return None,
    })
}

/// A tool's parsed arguments, or the exit code to return: 0 after printing `usage` for
/// `-h`/`--help` (parsers answer `Ok(None)`), 2 after a bad argument.
fn parsed<A>(result: Result<Option<A>, String>, usage: &str) -> Result<A, i32> {
    match result {
        Ok(Some(a)) => Ok(a),
        Ok(None) => {
            println!("{usage}");
            Err(0)
        }
        Err(e) => Err(bad_args(&e, usage)),
    }
}

/// Prints `usage` with an error and returns the bad-arguments exit code.
fn bad_args(error: &str, usage: &str) -> i32 {
    eprintln!("error: {error}\n\n{usage}");
    2
}

/// The value after option `name`, parsed.
fn option_value<T: std::str::FromStr>(
    name: &str,
    it: &mut std::slice::Iter<'_, String>,
) -> Result<T, String> {
    let v = it.next().ok_or_else(|| format!("{name} needs a value"))?;
    v.parse()
        .map_err(|_| format!("{name}: cannot understand {v:?}"))
}

/// A tokio runtime for a tool; `None` (after printing why) when it cannot be built.
fn runtime(multi_thread: bool) -> Option<tokio::runtime::Runtime> {
    runtime_with(if multi_thread { 0 } else { 1 })
}

/// A runtime shaped as the server's is by its `workers` setting
/// ([`crate::app::runtime::tasks::runtime_builder`]).
fn runtime_with(workers: usize) -> Option<tokio::runtime::Runtime> {
    match crate::app::runtime::tasks::runtime_builder(workers).build() {
        Ok(rt) => Some(rt),
        Err(e) => {
            eprintln!("error: cannot start the tokio runtime: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn unknown_tools_are_not_run() {
        assert_eq!(run("nope", &[]), None);
    }

    #[test]
    fn bad_arguments_exit_with_2() {
        for (tool, a) in [
            ("publish", args(&[])),
            ("publish", args(&["a.flv"])),
            ("publish", args(&["a.flv", "http://x/a/b"])),
            ("publish", args(&["a.flv", "rtmp://h/a/s", "--bogus"])),
            ("play", args(&[])),
            ("play", args(&["rtmp://h/a/s", "--duration"])),
            ("play", args(&["rtmp://h/a/s", "--frames", "x"])),
            ("bench", args(&[])),
            ("bench", args(&["play"])),
            ("bench", args(&["play", "rtmp://h/a/s"])),
            ("bench", args(&["play", "rtmp://h/a/s", "-n", "0"])),
            ("bench", args(&["publish", "rtmp://h/a/s", "-n", "1"])),
        ] {
            assert_eq!(run(tool, &a), Some(2), "{tool} {a:?}");
        }
    }

    #[test]
    fn help_exits_with_0() {
        for tool in ["publish", "play", "bench"] {
            assert_eq!(run(tool, &args(&["--help"])), Some(0), "{tool}");
        }
    }
}

#[cfg(test)]
mod loopback {
    use super::run;
    use crate::client::loopback::{flv_file, server};
    use crate::client::MediaKind;
    use crate::protocol::flv::Tag;
    use bytes::Bytes;

    /// Runs the one-connection test server on its own thread and runtime; returns its URL and
    /// the thread, which ends with the media the server received.
    fn background_server(frames: u32) -> (String, std::thread::JoinHandle<usize>) {
        let (tx, rx) = std::sync::mpsc::channel();
        let t = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(async move {
                let (url, mut media) = server(frames).await;
                tx.send(url.to_string()).unwrap();
                let mut n = 0;
                while media.recv().await.is_some() {
                    n += 1;
                }
                n
            })
        });
        (rx.recv().unwrap(), t)
    }

    #[test]
    fn play_tool_records_frames() {
        let (url, t) = background_server(3);
        let out = std::env::temp_dir().join(format!("srsd-play-{}.flv", std::process::id()));
        let out_s = out.to_string_lossy().to_string();
        let code = run(
            "play",
            &[url, "-o".into(), out_s, "--frames".into(), "3".into()],
        );
        assert_eq!(code, Some(0));
        let bytes = std::fs::read(&out).unwrap();
        let _ = std::fs::remove_file(&out);
        assert_eq!(bytes.len(), 13 + 3 * (11 + 6 + 4));
        t.join().unwrap();
    }

    #[test]
    fn publish_tool_sends_the_file() {
        let (url, t) = background_server(0);
        let tags: Vec<Tag> = (0..4u32)
            .map(|i| Tag {
                kind: MediaKind::Video,
                timestamp: i * 10,
                payload: Bytes::from(vec![0x27, 1]),
            })
            .collect();
        let file = std::env::temp_dir().join(format!("srsd-pub-{}.flv", std::process::id()));
        std::fs::write(&file, flv_file(&tags)).unwrap();
        let file_s = file.to_string_lossy().to_string();
        let code = run("publish", &[file_s, url]);
        let _ = std::fs::remove_file(&file);
        assert_eq!(code, Some(0));
        assert_eq!(t.join().unwrap(), 4);
    }

    #[test]
    fn bench_tool_plays_and_summarises() {
        let (url, t) = background_server(3);
        let args: Vec<String> = ["play", &url, "-n", "1", "--duration", "1.2", "--ramp", "0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        assert_eq!(run("bench", &args), Some(0));
        t.join().unwrap();
    }
}
