//! Runtime for appliances, with the real binary: the locked pid file, `daemon = true`,
//! `srsd -s`, log reopen across a rotation, and init.d/srsd under busybox ash and dash in a
//! temporary root (never installed onto this machine).

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_srsd");
const INITD: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/init.d/srsd");

/// A config in `dir`: RTMP on a free port, pid, log file and HLS (on by default, under
/// `http_server.dir`) inside `dir`.
fn write_config(dir: &Path, daemon: bool, tank: &str) -> PathBuf {
    let conf = dir.join("srsd.toml");
    std::fs::write(
        &conf,
        format!(
            "listen = [\"127.0.0.1:0\"]\npid = \"{d}/run/srsd.pid\"\ndaemon = {daemon}\n\
             workers = 1\n\n[log]\ntank = \"{tank}\"\nlevel = \"trace\"\nfile = \"{d}/log/srsd.log\"\n\
             \n[http_api]\nenabled = false\n\n[http_server]\nenabled = false\ndir = \"{d}/html\"\n",
            d = dir.display()
        ),
    )
    .unwrap();
    conf
}

fn srsd(args: &[&str], conf: &Path) -> Output {
    Command::new(BIN)
        .args(args)
        .arg("-c")
        .arg(conf)
        .stdin(Stdio::null())
        .output()
        .expect("run srsd")
}

/// Polls `f` every 20 ms for at most `limit`.
fn wait_for(limit: Duration, mut f: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if f() {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

/// Alive and not a zombie (a daemon's parent here may be a PID 1 that does not reap).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Kills whatever process the pid file names when the test ends, passed or not.
struct KillOnDrop(PathBuf);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(pid) = read_pid(&self.0) {
            let _ = Command::new("kill")
                .arg("-KILL")
                .arg(pid.to_string())
                .status();
        }
    }
}

fn log_text(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("log/srsd.log")).unwrap_or_default()
}

/// The RTMP port the server bound, from its "RTMP listen at" log line.
fn rtmp_port(text: &str) -> Option<u16> {
    let at = text.find("RTMP listen at tcp://")?;
    let rest = &text[at..];
    let line = rest.lines().next()?;
    line.rsplit(':').next()?.trim().parse().ok()
}

/// Starts srsd in the foreground on `conf` (logging to a file in `dir`); returns it and the
/// RTMP port it logged.
fn start_foreground(dir: &Path, conf: &Path) -> (common::Proc, u16) {
    let server = common::Proc(
        Command::new(BIN)
            .arg("-c")
            .arg(conf)
            .stdin(Stdio::null())
            .spawn()
            .expect("start srsd"),
    );
    let mut port = None;
    assert!(
        wait_for(Duration::from_secs(10), || {
            port = rtmp_port(&log_text(dir));
            port.is_some()
        }),
        "the server logs its port: {}",
        log_text(dir)
    );
    (server, port.unwrap_or(0))
}

#[test]
fn the_pid_file_is_locked_and_a_second_instance_refuses() {
    let dir = common::temp_dir("initd-lock");
    let conf = write_config(&dir, false, "file");
    let pid_path = dir.join("run/srsd.pid");
    let _guard = KillOnDrop(pid_path.clone());
    let mut first = common::Proc(
        Command::new(BIN)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let first_pid = first.0.id();
    assert!(
        wait_for(Duration::from_secs(10), || read_pid(&pid_path)
            == Some(first_pid)),
        "the pid file holds the server's pid"
    );

    let second = srsd(&[], &conf);
    assert_eq!(second.status.code(), Some(1), "second instance exits 1");
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(
        err.contains("already running") && err.contains(&format!("pid {first_pid}")),
        "clear message: {err}"
    );
    assert_eq!(read_pid(&pid_path), Some(first_pid), "pid file untouched");

    assert!(srsd(&["-s", "stop"], &conf).status.success());
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(s) = first.0.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "stops on srsd -s stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "fast quit exits 0");
    assert!(!pid_path.exists(), "pid file removed at exit");

    // No server now: -s fails with a clear message.
    let out = srsd(&["-s", "reload"], &conf);
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is srsd running?"));
}

/// The pid file holds the pid only once the signal handlers are installed: an init script that
/// signals the pid the moment it can read it stops the server cleanly (exit 0, pid file
/// removed), never kills it with the signal's default action. Tried several times, polling the
/// pid file every millisecond, to land inside any window between the two.
#[test]
fn a_signal_sent_as_soon_as_the_pid_is_readable_is_handled() {
    for round in 0..8 {
        let dir = common::temp_dir(&format!("initd-early-{round}"));
        let conf = write_config(&dir, false, "file");
        let pid_path = dir.join("run/srsd.pid");
        let _guard = KillOnDrop(pid_path.clone());
        let mut server = common::Proc(
            Command::new(BIN)
                .arg("-c")
                .arg(&conf)
                .stdin(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let pid = server.0.id();
        let deadline = Instant::now() + Duration::from_secs(10);
        while read_pid(&pid_path) != Some(pid) {
            assert!(Instant::now() < deadline, "round {round}: pid file written");
            std::thread::sleep(Duration::from_millis(1));
        }
        let signal = if round % 2 == 0 { "-TERM" } else { "-HUP" };
        assert!(Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .unwrap()
            .success());
        if signal == "-HUP" {
            // A reload must leave it running; then stop it.
            std::thread::sleep(Duration::from_millis(100));
            assert!(
                server.0.try_wait().unwrap().is_none(),
                "round {round}: SIGHUP right after start reloads, it does not kill"
            );
            assert!(srsd(&["-s", "stop"], &conf).status.success());
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        let status = loop {
            if let Some(s) = server.0.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "round {round}: stops");
            std::thread::sleep(Duration::from_millis(5));
        };
        assert!(
            status.success(),
            "round {round}: {signal} right after the pid appeared: {status:?}\n{}",
            log_text(&dir)
        );
        assert!(!pid_path.exists(), "round {round}: pid file removed");
    }
}

#[test]
fn daemon_forks_into_the_background_and_obeys_srsd_s() {
    let dir = common::temp_dir("initd-daemon");
    let conf = write_config(&dir, true, "file");
    let pid_path = dir.join("run/srsd.pid");
    let _guard = KillOnDrop(pid_path.clone());
    let started = Instant::now();
    let out = srsd(&[], &conf);
    assert!(
        out.status.success(),
        "the foreground process exits 0: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    // The pid file is written before the foreground process returns (systemd Type=forking).
    let pid = read_pid(&pid_path).expect("pid file written when srsd returns");
    assert!(alive(pid), "the daemon runs");
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .unwrap()
        .1
        .split_whitespace()
        .collect();
    // fields: state ppid pgrp session ...: its own session, and not the session leader.
    assert_eq!(fields[3].parse::<u32>().ok(), fields[2].parse().ok());
    assert_ne!(
        fields[3].parse::<u32>().ok(),
        Some(pid),
        "not a session leader"
    );
    let fd0 = std::fs::read_link(format!("/proc/{pid}/fd/0")).unwrap();
    assert_eq!(fd0, Path::new("/dev/null"), "stdin on /dev/null");
    assert!(wait_for(Duration::from_secs(10), || rtmp_port(&log_text(
        &dir
    ))
    .is_some()));

    // A second daemon refuses in the foreground, with exit 1.
    let second = srsd(&[], &conf);
    assert_eq!(second.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&second.stderr).contains("already running"));

    // Reloads: the same file, one whose listen differs from what runs (a restart applies
    // it: warned), and the first again (what runs: not warned, though it changed since the
    // last reload).
    let original = std::fs::read_to_string(&conf).unwrap();
    let moved = original.replace("127.0.0.1:0", "127.0.0.1:1");
    assert_ne!(moved, original);
    for (round, text) in [&original, &moved, &original].into_iter().enumerate() {
        std::fs::write(&conf, text).unwrap();
        assert!(srsd(&["-s", "reload"], &conf).status.success());
        assert!(
            wait_for(Duration::from_secs(10), || log_text(&dir)
                .matches("reload: applied")
                .count()
                > round),
            "SIGHUP reloads: {}",
            log_text(&dir)
        );
    }
    let log = log_text(&dir);
    assert_eq!(
        log.matches("restart to apply it").count(),
        1,
        "only the reload whose listen differs from what runs warns: {log}"
    );
    assert!(
        log.contains("reload: listen differs from what runs"),
        "{log}"
    );
    assert!(srsd(&["-s", "quit"], &conf).status.success());
    assert!(
        wait_for(Duration::from_secs(10), || !alive(pid)),
        "quits on srsd -s quit"
    );
    assert!(wait_for(Duration::from_secs(2), || !pid_path.exists()));
    assert!(log_text(&dir).contains("SIGQUIT: graceful quit"));
}

/// Ports of the "client 127.0.0.1:PORT closed" lines of a log text, with their counts.
fn closed_ports(text: &str, counts: &mut HashMap<u16, usize>) {
    for line in text.lines() {
        if let Some(at) = line.find("] client 127.0.0.1:") {
            let rest = &line[at + "] client 127.0.0.1:".len()..];
            if let Some(port) = rest.split(' ').next().and_then(|p| p.parse().ok()) {
                *counts.entry(port).or_default() += 1;
            }
        }
    }
}

#[test]
fn log_reopen_after_a_rotation_loses_no_line() {
    let dir = common::temp_dir("initd-reopen");
    let conf = write_config(&dir, false, "file");
    let pid_path = dir.join("run/srsd.pid");
    let log = dir.join("log/srsd.log");
    let rotated = dir.join("log/srsd.log.1");
    let _guard = KillOnDrop(pid_path.clone());
    let (_server, port) = start_foreground(&dir, &conf);
    assert!(wait_for(Duration::from_secs(10), || pid_path.exists()));

    // Each connection makes the server log one line naming our local port. Lines keep coming
    // from a second thread while the file is renamed and reopened, and for a while after.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stop2 = stop.clone();
    let client = std::thread::spawn(move || {
        let mut ports = Vec::new();
        while !stop2.load(std::sync::atomic::Ordering::Relaxed) && ports.len() < 20_000 {
            let mut s = TcpStream::connect(("127.0.0.1", port)).expect("connect");
            ports.push(s.local_addr().unwrap().port());
            let _ = s.write_all(b"\x03");
            drop(s);
            std::thread::sleep(Duration::from_millis(3));
        }
        ports
    });
    std::thread::sleep(Duration::from_millis(300));
    std::fs::rename(&log, &rotated).expect("rotate");
    let out = srsd(&["-s", "reopen"], &conf);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(wait_for(Duration::from_secs(10), || log_text(&dir)
        .contains("log file reopened")));
    std::thread::sleep(Duration::from_millis(300));
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let ports = client.join().unwrap();
    // Ephemeral ports are unique among this many connections (the range has ~28000).
    assert!(ports.len() < 20_000);

    let mut counts = HashMap::new();
    assert!(
        wait_for(Duration::from_secs(15), || {
            counts.clear();
            closed_ports(
                &std::fs::read_to_string(&rotated).unwrap_or_default(),
                &mut counts,
            );
            closed_ports(&log_text(&dir), &mut counts);
            ports.iter().all(|p| counts.contains_key(p))
        }),
        "every connection's line is in one of the two files"
    );
    for p in &ports {
        assert_eq!(counts[p], 1, "port {p} logged once, not twice");
    }
    let old = std::fs::read_to_string(&rotated).unwrap();
    let new = log_text(&dir);
    assert!(
        old.contains("RTMP listen at"),
        "old lines stay in the rotated file"
    );
    assert!(new.contains("log file reopened"), "new file: {new}");
    let mut in_new = HashMap::new();
    closed_ports(&new, &mut in_new);
    let mut in_old = HashMap::new();
    closed_ports(&old, &mut in_old);
    assert!(
        !in_new.is_empty() && !in_old.is_empty(),
        "lines on both sides of the rotation (old {}, new {})",
        in_old.len(),
        in_new.len()
    );
    assert!(srsd(&["-s", "stop"], &conf).status.success());
}

/// Runs init.d/srsd under `shell` with the temporary root's paths.
fn initd(shell: &[&str], conf: &Path, cmd: &str) -> (i32, String) {
    let out = Command::new(shell[0])
        .args(&shell[1..])
        .arg(INITD)
        .arg(cmd)
        .env("SRSD_BIN", BIN)
        .env("SRSD_CONF", conf)
        .env_remove("PIDFILE")
        .stdin(Stdio::null())
        .output()
        .expect("run the init script");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn exercise_initd(shell: &[&str], daemon: bool) {
    let name = format!("initd-{}-{daemon}", shell.last().unwrap());
    let dir = common::temp_dir(&name);
    let conf = write_config(&dir, daemon, "file");
    let pid_path = dir.join("run/srsd.pid");
    let _guard = KillOnDrop(pid_path.clone());

    let (code, text) = initd(shell, &conf, "status");
    assert_eq!(code, 3, "LSB: not running = 3: {text}");
    let (code, text) = initd(shell, &conf, "start");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("srsd started (pid "), "{text}");
    let pid = read_pid(&pid_path).expect("pid file");
    assert!(alive(pid));
    let (code, text) = initd(shell, &conf, "status");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains(&format!("is running (pid {pid})")), "{text}");
    let (code, text) = initd(shell, &conf, "start");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("already running"), "{text}");
    assert_eq!(read_pid(&pid_path), Some(pid));

    let (code, text) = initd(shell, &conf, "reload");
    assert_eq!(code, 0, "{text}");
    assert!(
        wait_for(Duration::from_secs(10), || log_text(&dir)
            .contains("reload: applied")),
        "reload reached the server"
    );
    let (code, text) = initd(shell, &conf, "reopen");
    assert_eq!(code, 0, "{text}");
    assert!(wait_for(Duration::from_secs(10), || log_text(&dir)
        .contains("log file reopened")));

    let (code, text) = initd(shell, &conf, "restart");
    assert_eq!(code, 0, "{text}");
    let pid2 = read_pid(&pid_path).expect("pid after restart");
    assert_ne!(pid, pid2);
    assert!(!alive(pid) && alive(pid2));

    let (code, text) = initd(shell, &conf, "stop");
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("srsd stopped"), "{text}");
    assert!(!alive(pid2));
    assert!(!pid_path.exists());
    let (code, _) = initd(shell, &conf, "status");
    assert_eq!(code, 3);
    let (code, _) = initd(shell, &conf, "reload");
    assert_eq!(code, 7, "LSB: reload when not running = 7");
    let (code, _) = initd(shell, &conf, "bogus");
    assert_eq!(code, 2);
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg_attr(srsd_missing = "busybox", ignore = "busybox not installed")]
#[test]
fn initd_script_under_busybox_ash() {
    assert!(common::have("busybox"), "busybox runs");
    exercise_initd(&["busybox", "sh"], true);
}

#[cfg_attr(srsd_missing = "dash", ignore = "dash not installed")]
#[test]
fn initd_script_under_dash() {
    assert!(common::have("dash"), "dash runs");
    exercise_initd(&["dash"], false);
}

/// SIGTERM while a stream is being recorded: the server closes the DVR file before it exits,
/// so the recording is complete (renamed from `.tmp`, duration patched) and plays.
#[cfg_attr(
    any(srsd_missing = "ffmpeg", srsd_missing = "ffprobe"),
    ignore = "ffmpeg or ffprobe not installed"
)]
#[test]
fn sigterm_while_recording_leaves_a_complete_dvr_file() {
    if !common::have("ffmpeg") || !common::have("ffprobe") {
        return;
    }
    let dir = common::temp_dir("initd-dvr");
    let conf = write_config(&dir, false, "file");
    let mut text = std::fs::read_to_string(&conf).unwrap();
    text += &format!(
        "\n[vhost.\"__defaultVhost__\".dvr]\nenabled = true\npath = \"{}/dvr/[app]/[stream].flv\"\n",
        dir.display()
    );
    std::fs::write(&conf, text).unwrap();
    let (mut server, port) = start_foreground(&dir, &conf);
    let _guard = KillOnDrop(dir.join("run/srsd.pid"));
    let url = format!("rtmp://127.0.0.1:{port}/live/rec");
    let _ff = common::ffmpeg_publish(&url, 30);
    let tmp = dir.join("dvr/live/rec.flv.tmp");
    let flv = dir.join("dvr/live/rec.flv");
    assert!(
        wait_for(Duration::from_secs(15), || std::fs::metadata(&tmp)
            .is_ok_and(|m| m.len() > 100_000)),
        "recording under .tmp"
    );
    std::thread::sleep(Duration::from_secs(2));
    let killed = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    assert!(
        wait_for(Duration::from_secs(10), || server
            .0
            .try_wait()
            .ok()
            .flatten()
            .is_some()),
        "srsd exits on SIGTERM"
    );
    assert!(!tmp.exists(), "the .tmp was renamed");
    let probe = common::ffprobe(&flv.display().to_string());
    assert_eq!(probe.video_codec, "h264", "{probe:?}");
    assert!(probe.video_frames >= 50, "{probe:?}");
    let duration = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "format=duration",
            "-of",
            "csv=p=0",
        ])
        .arg(&flv)
        .output()
        .unwrap();
    let d: f64 = String::from_utf8_lossy(&duration.stdout)
        .trim()
        .parse()
        .unwrap_or(0.0);
    assert!(d >= 2.0, "duration {d} s in the file");
}

/// `srsd -s quit` (SIGQUIT) stops accepting and lets a connected publisher finish; `srsd -s
/// stop` (SIGTERM) quits at once even with one connected.
#[cfg_attr(srsd_missing = "ffmpeg", ignore = "ffmpeg not installed")]
#[test]
fn quit_is_graceful_and_stop_is_fast() {
    if !common::have("ffmpeg") {
        return;
    }
    for (signal, graceful) in [("quit", true), ("stop", false)] {
        let dir = common::temp_dir(&format!("initd-{signal}"));
        let conf = write_config(&dir, false, "file");
        let (mut server, port) = start_foreground(&dir, &conf);
        let _guard = KillOnDrop(dir.join("run/srsd.pid"));
        let url = format!("rtmp://127.0.0.1:{port}/live/q");
        let ff = common::ffmpeg_publish(&url, 60);
        assert!(
            wait_for(Duration::from_secs(15), || log_text(&dir)
                .contains("publish /live/q")),
            "ffmpeg publishes: {}",
            log_text(&dir)
        );
        let sent = Instant::now();
        assert!(srsd(&["-s", signal], &conf).status.success());
        if graceful {
            std::thread::sleep(Duration::from_millis(1500));
            assert!(
                server.0.try_wait().unwrap().is_none(),
                "still serving the publisher"
            );
            // New clients are refused meanwhile: the listener is closed.
            assert!(
                TcpStream::connect(("127.0.0.1", port)).is_err(),
                "not accepting during a graceful quit"
            );
            drop(ff); // the publisher leaves: the server may go
        }
        assert!(
            wait_for(Duration::from_secs(8), || server
                .0
                .try_wait()
                .ok()
                .flatten()
                .is_some()),
            "{signal}: exits"
        );
        if !graceful {
            assert!(
                sent.elapsed() < Duration::from_secs(5),
                "{:?}",
                sent.elapsed()
            );
        }
        assert!(
            log_text(&dir).contains(if graceful {
                "graceful quit"
            } else {
                "fast quit"
            }),
            "{}",
            log_text(&dir)
        );
    }
}
