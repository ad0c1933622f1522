//! The android-arm64 board binary as an app would run it, under qemu-aarch64 in a mount
//! namespace that looks like Android where it matters: no `/etc/resolv.conf` (an empty,
//! read-only `/etc`), `/tmp` and `/var` read-only, every path under one base directory given
//! with `-w`. As an edge whose origin is a host name (`origin.test`), it resolves the name
//! through a DNS server this test runs on loopback (`[dns] servers`), pulls a stream from an
//! x86_64 srsd origin, and ffprobe plays it from the edge. Then `srsd -t` as an unprivileged
//! uid with no user database, and SIGTERM.
//!
//! Needs: root (for `unshare -m` and mounts), util-linux (`unshare`, `mount`, `setpriv`),
//! qemu-aarch64-static, ffmpeg/ffprobe, and target/boards/out/android-arm64/srsd
//! (`board/build.sh android-arm64`). Missing pieces skip loudly, or fail under
//! SRSD_REQUIRE_INTEROP=1 (CI).

mod common;

use std::io::{BufRead, BufReader};
use std::net::UdpSocket;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant};

use srsd::protocol::dns::{encode_answer, query_question, Address, QueryType};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

fn required() -> bool {
    std::env::var("SRSD_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

fn skip(why: &str) {
    if required() {
        panic!("{why} (SRSD_REQUIRE_INTEROP=1)");
    }
    eprintln!("\n*** SKIPPED: {why} ***\n");
}

/// A DNS server on 127.0.0.1: `origin.test` has A 127.0.0.1, every other name is NXDOMAIN.
/// Records every name asked; stops when `stop` is set.
fn dns_server(stop: Arc<AtomicBool>) -> (u16, Arc<Mutex<Vec<String>>>) {
    let sock = UdpSocket::bind("127.0.0.1:0").unwrap();
    sock.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let port = sock.local_addr().unwrap().port();
    let asked = Arc::new(Mutex::new(Vec::new()));
    let seen = asked.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 512];
        while !stop.load(Ordering::Relaxed) {
            let Ok((n, peer)) = sock.recv_from(&mut buf) else {
                continue;
            };
            let q = &buf[..n];
            let Some((name, qtype)) = query_question(q) else {
                continue;
            };
            seen.lock().unwrap().push(name.clone());
            let answer = match (name == "origin.test", qtype) {
                (true, Some(QueryType::A)) => encode_answer(q, &[Address::V4([127, 0, 0, 1])], 0),
                (true, _) => encode_answer(q, &[], 0),
                (false, _) => encode_answer(q, &[], 3),
            };
            if let Some(a) = answer {
                let _ = sock.send_to(&a, peer);
            }
        }
    });
    (port, asked)
}

/// Mounts what Android lacks, then runs the arguments: /tmp and /var read-only, /etc an empty
/// read-only tmpfs (no resolv.conf, hosts, passwd or group). Exits 97/98 when the namespace is
/// not as intended, so the test cannot pass by accident.
const NAMESPACE: &str = r#"
set -e
mount --make-rprivate /
for d in /tmp /var; do mount --bind "$d" "$d"; mount -o remount,bind,ro "$d"; done
mount -t tmpfs -o ro,size=16k,mode=755 srsd-no-etc /etc
if [ -e /etc/resolv.conf ] || [ -e /etc/passwd ]; then echo "namespace: /etc not empty" >&2; exit 97; fi
for d in /tmp /var /etc; do
    if touch "$d/.srsd-rw-probe" 2>/dev/null; then echo "namespace: $d writable" >&2; exit 98; fi
done
exec "$@"
"#;

fn in_namespace() -> Command {
    let mut c = Command::new("unshare");
    c.args(["-m", "sh", "-c", NAMESPACE, "sh"]);
    c
}

/// A base directory outside /tmp, /var and /etc (they are read-only in the namespace).
fn base_dir() -> PathBuf {
    let mut d = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    if ["/tmp", "/var", "/etc"].iter().any(|p| d.starts_with(p)) {
        d = Path::new(ROOT).join("target/tmp");
    }
    let d = d.join(format!("android-edge-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

#[test]
fn android_arm64_edge_resolves_its_origin_without_resolv_conf() {
    let bin = Path::new(ROOT).join("target/boards/out/android-arm64/srsd");
    if !bin.exists() {
        return skip("board android-arm64 not built (board/build.sh android-arm64)");
    }
    if Command::new("qemu-aarch64-static")
        .arg("--version")
        .output()
        .is_err()
    {
        return skip("qemu-aarch64-static missing (apt-get install qemu-user-static)");
    }
    let uid = Command::new("id").arg("-u").output().unwrap();
    if String::from_utf8_lossy(&uid.stdout).trim() != "0" {
        return skip("not root: unshare -m and mounts need it");
    }
    let probe = in_namespace().arg("true").output().unwrap();
    if !probe.status.success() {
        let err = String::from_utf8_lossy(&probe.stderr);
        if probe.status.code() == Some(97) || probe.status.code() == Some(98) {
            panic!("the namespace is not as intended: {err}");
        }
        return skip(&format!("cannot build the mount namespace: {err}"));
    }
    if !common::have("ffmpeg") || !common::have("ffprobe") {
        return;
    }

    // The x86_64 origin, publishing a generated stream.
    let base = base_dir();
    let origin_dir = base.join("origin");
    std::fs::create_dir_all(&origin_dir).unwrap();
    let origin_port = common::free_port();
    std::fs::write(
        origin_dir.join("srsd.toml"),
        format!(
            "listen = [\"127.0.0.1:{origin_port}\"]\npid = \"\"\n\
             [log]\ntank = \"file\"\nfile = \"srsd.log\"\n\
             [http_api]\nenabled = false\n[http_server]\nenabled = false\n"
        ),
    )
    .unwrap();
    let _origin = common::Proc(
        Command::new(env!("CARGO_BIN_EXE_srsd"))
            .arg("-w")
            .arg(&origin_dir)
            .args(["-c", "srsd.toml"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(("127.0.0.1", origin_port)).is_err() {
        assert!(Instant::now() < deadline, "the origin listens");
        std::thread::sleep(Duration::from_millis(50));
    }
    let _publisher =
        common::ffmpeg_publish(&format!("rtmp://127.0.0.1:{origin_port}/live/stream"), 60);

    // The edge: the android-arm64 binary, every path relative to its base dir.
    let stop = Arc::new(AtomicBool::new(false));
    let (dns_port, asked) = dns_server(stop.clone());
    let edge_dir = base.join("files");
    std::fs::create_dir_all(&edge_dir).unwrap();
    let (rtmp, http) = (common::free_port(), common::free_port());
    std::fs::write(
        edge_dir.join("srsd.toml"),
        format!(
            "listen = [\"127.0.0.1:{rtmp}\"]\npid = \"\"\ndaemon = false\nworkers = 1\n\
             [log]\ntank = \"file\"\nfile = \"logs/srsd.log\"\nmax_size = 65536\nkeep = 2\n\
             [dns]\nservers = [\"127.0.0.1:{dns_port}\"]\ntimeout_ms = 1000\nattempts = 2\n\
             [http_api]\nenabled = false\n\
             [http_server]\nenabled = true\nlisten = \"127.0.0.1:{http}\"\ndir = \"html\"\n\
             [vhost.\"__defaultVhost__\".cluster]\nmode = \"remote\"\norigin = [\"origin.test:{origin_port}\"]\n\
             [vhost.\"__defaultVhost__\".http_remux]\nenabled = true\nmount = \"[vhost]/[app]/[stream].flv\"\n"
        ),
    )
    .unwrap();
    let mut edge = common::Proc(
        in_namespace()
            .arg("qemu-aarch64-static")
            .arg(&bin)
            .arg("-w")
            .arg(&edge_dir)
            .args(["-c", "srsd.toml"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    // The app's view: stdout lines, one per listener, then "srsd: ready".
    let (tx, rx) = mpsc::channel();
    let stdout = edge.0.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !lines.iter().any(|l| l == "srsd: ready") {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(l) => lines.push(l),
            Err(_) => panic!("no \"srsd: ready\" from the edge; stdout: {lines:?}"),
        }
    }
    assert!(
        lines.contains(&format!("srsd: listen rtmp tcp://127.0.0.1:{rtmp}")),
        "{lines:?}"
    );
    assert!(
        lines.contains(&format!("srsd: listen http-server http://127.0.0.1:{http}")),
        "{lines:?}"
    );

    // A player on the edge: the edge resolves origin.test and pulls.
    let log = || std::fs::read_to_string(edge_dir.join("logs/srsd.log")).unwrap_or_default();
    let streams = common::probe_streams(&format!("rtmp://127.0.0.1:{rtmp}/live/stream"), &[]);
    assert!(
        streams.contains(&("video".into(), "h264".into())),
        "RTMP from the edge: {streams:?}\nedge log:\n{}",
        log()
    );
    let streams = common::probe_streams(&format!("http://127.0.0.1:{http}/live/stream.flv"), &[]);
    assert!(
        streams.contains(&("video".into(), "h264".into())),
        "HTTP-FLV from the edge: {streams:?}\nedge log:\n{}",
        log()
    );
    assert!(
        asked.lock().unwrap().iter().any(|n| n == "origin.test"),
        "the edge asked the configured DNS server"
    );
    assert!(log().contains("origin.test"), "edge log:\n{}", log());

    // SIGTERM: the app stops its edge; it must be gone within a second.
    let t0 = Instant::now();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(edge.0.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = loop {
        if let Some(s) = edge.0.try_wait().unwrap() {
            break s;
        }
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "the edge ignores SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let took = t0.elapsed();
    eprintln!("android-arm64 edge: SIGTERM to exit in {took:?} (under qemu)");
    assert!(status.success(), "edge exit status {status}\n{}", log());
    assert!(took < Duration::from_secs(1), "SIGTERM took {took:?}");

    // `srsd -t` as an unprivileged uid that has no user database entry (/etc is empty).
    let t = in_namespace()
        .args([
            "setpriv",
            "--reuid=65534",
            "--regid=65534",
            "--clear-groups",
        ])
        .arg("qemu-aarch64-static")
        .arg(&bin)
        .arg("-t")
        .arg("-w")
        .arg(&edge_dir)
        .args(["-c", "srsd.toml"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&t.stderr);
    if err.contains("Permission denied") && !t.status.success() {
        // The checkout's parent directories are not open to others (e.g. under /root).
        skip(&format!(
            "srsd -t as uid 65534: {} is not reachable for it: {err}",
            edge_dir.display()
        ));
    } else {
        assert!(t.status.success(), "srsd -t as uid 65534: {err}");
    }

    stop.store(true, Ordering::Relaxed);
    let _ = std::fs::remove_dir_all(&base);
}

/// The Android boards' default configs are app configs: every path relative (under the base
/// directory the app passes with `-w`), no pid file, no daemon, a log file srsd rotates
/// itself, listeners on loopback. Their binaries, when built, are static and within budget.
#[test]
fn android_board_configs_are_app_configs() {
    let dir = common::temp_dir("android-board-config");
    for b in ["android-arm64", "android-armv7"] {
        let out = dir.join(b);
        let st = Command::new(Path::new(ROOT).join("board/build.sh"))
            .args(["--config", b])
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "board/build.sh --config {b}");
        let c = srsd::config::Config::load(&out.join("srsd.toml"))
            .unwrap_or_else(|e| panic!("{b}: {e}"));
        assert_eq!(c.pid, "", "{b}: no pid file");
        assert!(!c.daemon, "{b}: not a daemon");
        assert_eq!(c.log.tank, srsd::config::LogTank::File, "{b}");
        assert!(c.log.max_size > 0, "{b}: srsd rotates its log");
        let paths = [
            c.log.file.as_str(),
            c.http_server.dir.as_str(),
            c.vhost["__defaultVhost__"].hls.path.as_str(),
        ];
        for p in paths {
            assert!(Path::new(p).is_relative(), "{b}: {p} is under the base dir");
        }
        for l in c
            .listen
            .iter()
            .chain([&c.http_api.listen, &c.http_server.listen])
        {
            let a = l.addr;
            assert!(a.ip().is_loopback(), "{b}: {l} is loopback");
        }
        let srsd = env!("CARGO_BIN_EXE_srsd");
        let st = Command::new(srsd)
            .arg("-t")
            .arg("-w")
            .arg(&out)
            .args(["-c", "srsd.toml"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "srsd -t -w {} -c srsd.toml", out.display());

        let bin = Path::new(ROOT)
            .join("target/boards/out")
            .join(b)
            .join("srsd");
        if !bin.exists() {
            skip(&format!("board {b} not built (board/build.sh {b})"));
            continue;
        }
        let size = std::fs::metadata(&bin).unwrap().len();
        let info = Command::new("file").arg("-b").arg(&bin).output().unwrap();
        let info = String::from_utf8_lossy(&info.stdout);
        eprintln!("board {b}: {size} bytes: {}", info.trim());
        assert!(size <= 2_621_440, "{b}: {size} bytes is over the budget");
        assert!(info.contains("statically linked"), "{b}: {info}");
        assert!(!info.contains("not stripped"), "{b}: {info}");
        let arch = if b == "android-arm64" {
            "ARM aarch64"
        } else {
            "ARM, EABI5"
        };
        assert!(info.contains(arch), "{b}: {info}");
    }
    let _ = std::fs::remove_dir_all(&dir);
}
