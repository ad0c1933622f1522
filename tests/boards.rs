//! Board profiles (board/*.toml), their default configs, the cross-built binaries
//! (board/build.sh) and a smoke test of those binaries under qemu-user with ffmpeg.
//!
//! The binary tests use what board/build.sh left in target/boards/out/BOARD/. When a board is
//! not built (or qemu is missing) build.rs marks them ignored, with the reason; with
//! SRSD_REQUIRE_INTEROP=1 (CI) they run and fail instead.

mod common;

use srsd::config::{Config, LogTank};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BOARDS: [&str; 5] = ["x86_64", "armhf", "aarch64", "mips", "mipsel"];
const BUDGET: u64 = 2_621_440;

fn required() -> bool {
    std::env::var("SRSD_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

/// A check that cannot run although build.rs found what it needs when the tests were
/// compiled (or CI requires it): a failure, never a silent pass.
fn missing(why: &str) -> ! {
    if required() {
        panic!("{why} (SRSD_REQUIRE_INTEROP=1)");
    }
    panic!("{why}: it was there when the tests were compiled; `touch build.rs` to recheck");
}

fn profile(board: &str) -> toml::Table {
    let path = Path::new(ROOT).join("board").join(format!("{board}.toml"));
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .parse()
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn prop<'a>(p: &'a toml::Table, key: &str) -> &'a str {
    p.get(key).and_then(|v| v.as_str()).unwrap_or("")
}

/// The built binary of a board, if board/build.sh made it.
fn built(board: &str) -> Option<PathBuf> {
    let bin = Path::new(ROOT)
        .join("target/boards/out")
        .join(board)
        .join("srsd");
    bin.exists().then_some(bin)
}

/// Applies `over` onto `base` the way board/build.sh must: tables merge, values replace.
fn merge(base: &mut toml::Table, over: &toml::Table) {
    for (k, v) in over {
        match (base.get_mut(k), v) {
            (Some(toml::Value::Table(b)), toml::Value::Table(o)) => merge(b, o),
            _ => {
                base.insert(k.clone(), v.clone());
            }
        }
    }
}

#[test]
fn every_board_has_a_complete_profile() {
    let mut found: Vec<String> = std::fs::read_dir(Path::new(ROOT).join("board"))
        .unwrap()
        .filter_map(|e| {
            let p = e.ok()?.path();
            (p.extension()? == "toml").then(|| p.file_stem().unwrap().to_string_lossy().into())
        })
        .collect();
    found.sort();
    for b in BOARDS {
        assert!(found.iter().any(|f| f == b), "board/{b}.toml exists");
    }
    for b in &found {
        let p = profile(b);
        assert_eq!(prop(&p, "name"), b, "board/{b}.toml: name");
        let target = prop(&p, "target");
        assert!(target.ends_with("-linux-musl") || target.ends_with("-linux-musleabihf"));
        let toolchain = prop(&p, "toolchain");
        assert!(
            toolchain == "stable" || toolchain == "nightly",
            "{b}: toolchain"
        );
        let workers = p["config"]["workers"].as_integer().expect("workers");
        assert!(workers == 0 || workers == 1, "{b}: workers");
        if target.starts_with("x86_64") {
            assert_eq!(prop(&p, "qemu"), "");
        } else {
            assert!(prop(&p, "qemu").starts_with("qemu-"), "{b}: qemu runner");
        }
        // Routers get fewer connections and a single-threaded runtime.
        if target.starts_with("mips") {
            assert!(p["config"]["max_connections"].as_integer().unwrap() <= 200);
            assert_eq!(workers, 1);
            assert_ne!(prop(&p, "ipk_arch"), "");
        }
    }
}

#[test]
fn cargo_config_has_the_per_target_flags_boards_md_requires() {
    let text = std::fs::read_to_string(Path::new(ROOT).join(".cargo/config.toml")).unwrap();
    let cfg: toml::Table = text.parse().unwrap();
    for b in BOARDS {
        let p = profile(b);
        let target = prop(&p, "target");
        let flags: Vec<String> = cfg["target"]
            .get(target)
            .and_then(|t| t.get("rustflags"))
            .and_then(|f| f.as_array())
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        let joined = flags.join(" ");
        if prop(&p, "toolchain") == "nightly" {
            assert!(
                joined.contains("link-self-contained=no"),
                "{target}: {joined}"
            );
        }
        assert_eq!(
            joined.contains("+crt-static"),
            target.starts_with("mips"),
            "{target}: {joined}"
        );
        // Non-PIC code for the static mips binaries: 13% smaller (.cargo/config.toml).
        assert_eq!(
            joined.contains("relocation-model=static"),
            target.starts_with("mips"),
            "{target}: {joined}"
        );
        let runner = cfg["target"]
            .get(target)
            .and_then(|t| t.get("runner"))
            .and_then(|r| r.as_str())
            .unwrap_or("");
        assert_eq!(runner, prop(&p, "qemu"), "{target}: runner");
    }
}

#[test]
fn board_configs_are_the_default_plus_exactly_the_overrides() {
    let base_text = std::fs::read_to_string(Path::new(ROOT).join("conf/srsd.toml")).unwrap();
    let dir = common::temp_dir("board-config");
    for b in BOARDS {
        let out = dir.join(b);
        let st = Command::new(Path::new(ROOT).join("board/build.sh"))
            .args(["--config", b])
            .arg(&out)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "board/build.sh --config {b}");
        let file = out.join("srsd.toml");
        let text = std::fs::read_to_string(&file).unwrap();
        let mut expected: toml::Table = base_text.parse().unwrap();
        let p = profile(b);
        merge(&mut expected, p["config"].as_table().unwrap());
        let got: toml::Table = text.parse().unwrap();
        assert_eq!(
            got, expected,
            "{b}: conf/srsd.toml + board/{b}.toml [config]"
        );

        // The server accepts it, and it is an appliance config.
        let c = Config::load(&file).unwrap_or_else(|e| panic!("{b}: {e}"));
        assert_eq!(c.pid, "/var/run/srsd.pid");
        assert_eq!(c.log.tank, LogTank::File);
        assert_eq!(c.log.file, "/var/log/srsd/srsd.log");
        assert_eq!(c.http_server.dir, "/tmp/srsd/html");
        assert_eq!(c.vhost["__defaultVhost__"].hls.path, "/tmp/srsd/html");
        let srsd = env!("CARGO_BIN_EXE_srsd");
        let st = Command::new(srsd)
            .args(["-t", "-c"])
            .arg(&file)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(st.success(), "srsd -t -c {}", file.display());
    }
    let _ = std::fs::remove_dir_all(&dir);
}

/// The built binary of `b` is static, stripped, of its architecture and within budget.
fn static_stripped_within_budget(b: &str) {
    let Some(bin) = built(b) else {
        missing(&format!("board {b} not built (board/build.sh {b})"));
    };
    let size = std::fs::metadata(&bin).unwrap().len();
    let out = Command::new("file").arg("-b").arg(&bin).output().unwrap();
    let info = String::from_utf8_lossy(&out.stdout);
    eprintln!(
        "board {b}: {size} bytes, {} under the 2.5 MiB budget: {}",
        BUDGET.saturating_sub(size),
        info.trim()
    );
    assert!(size <= BUDGET, "{b}: {size} bytes is over {BUDGET}");
    assert!(
        info.contains("statically linked") || info.contains("static-pie linked"),
        "{b}: {info}"
    );
    assert!(!info.contains("not stripped"), "{b}: {info}");
    let arch = match b {
        "x86_64" => "x86-64",
        "armhf" => "ARM, EABI5",
        "aarch64" => "ARM aarch64",
        "mips" => "MSB executable, MIPS",
        _ => "LSB executable, MIPS",
    };
    assert!(info.contains(arch), "{b}: {info}");
}

// One test per board, ignored with the reason when build.rs found it not built.
#[cfg_attr(
    srsd_missing = "board-x86_64",
    ignore = "board x86_64 not built (board/build.sh x86_64)"
)]
#[test]
fn x86_64_binary_is_static_stripped_and_within_budget() {
    static_stripped_within_budget("x86_64");
}

#[cfg_attr(
    srsd_missing = "board-armhf",
    ignore = "board armhf not built (board/build.sh armhf)"
)]
#[test]
fn armhf_binary_is_static_stripped_and_within_budget() {
    static_stripped_within_budget("armhf");
}

#[cfg_attr(
    srsd_missing = "board-aarch64",
    ignore = "board aarch64 not built (board/build.sh aarch64)"
)]
#[test]
fn aarch64_binary_is_static_stripped_and_within_budget() {
    static_stripped_within_budget("aarch64");
}

#[cfg_attr(
    srsd_missing = "board-mips",
    ignore = "board mips not built (board/build.sh mips)"
)]
#[test]
fn mips_binary_is_static_stripped_and_within_budget() {
    static_stripped_within_budget("mips");
}

#[cfg_attr(
    srsd_missing = "board-mipsel",
    ignore = "board mipsel not built (board/build.sh mipsel)"
)]
#[test]
fn mipsel_binary_is_static_stripped_and_within_budget() {
    static_stripped_within_budget("mipsel");
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The board binary under qemu-user on 127.0.0.1; ffmpeg on the host publishes 5 s of H.264 +
/// AAC, ffprobe plays it back over RTMP and, once segments are written, over HLS (HTTP).
fn qemu_smoke(board: &str) {
    let p = profile(board);
    let qemu = prop(&p, "qemu").to_string();
    let Some(bin) = built(board) else {
        missing(&format!("board {board} not built (board/build.sh {board})"));
    };
    if Command::new(&qemu).arg("--version").output().is_err() {
        missing(&format!(
            "{qemu} missing (apt-get install qemu-user-static)"
        ));
    }
    if !common::have("ffmpeg") || !common::have("ffprobe") {
        missing("ffmpeg or ffprobe missing (apt-get install ffmpeg)");
    }
    let dir = common::temp_dir(&format!("qemu-{board}"));
    let port = free_port();
    let http_port = free_port();
    let conf = dir.join("srsd.toml");
    std::fs::write(
        &conf,
        format!(
            "listen = [\"127.0.0.1:{port}\"]\npid = \"{d}/srsd.pid\"\nworkers = {w}\n\
             [log]\ntank = \"file\"\nfile = \"{d}/srsd.log\"\n\
             [http_api]\nenabled = false\n\
             [http_server]\nenabled = true\nlisten = \"127.0.0.1:{http_port}\"\ndir = \"{d}/html\"\n\
             [vhost.\"__defaultVhost__\".hls]\nenabled = true\nfragment = 1\nwindow = 20\npath = \"{d}/html\"\n",
            d = dir.display(),
            w = p["config"]["workers"].as_integer().unwrap()
        ),
    )
    .unwrap();
    let _server = common::Proc(
        Command::new(&qemu)
            .arg(&bin)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "{board}: srsd under {qemu} listens"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let url = format!("rtmp://127.0.0.1:{port}/live/s");
    let mut publisher = common::Proc(
        Command::new("ffmpeg")
            .stderr(common::child_log("ffmpeg"))
            .args(["-hide_banner", "-loglevel", "error", "-re"])
            .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
            .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=44100"])
            .args([
                "-t",
                "5",
                "-c:v",
                "libx264",
                "-g",
                "25",
                "-preset",
                "ultrafast",
            ])
            .args(["-c:a", "aac", "-f", "flv"])
            .arg(&url)
            .stdin(Stdio::null())
            .spawn()
            .unwrap(),
    );
    std::thread::sleep(Duration::from_millis(1500));
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-rw_timeout", "10000000"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,sample_rate",
        ])
        .args(["-of", "compact", "-read_intervals", "%+2"])
        .arg(&url)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout);
    let log = std::fs::read_to_string(dir.join("srsd.log")).unwrap_or_default();
    assert!(
        probe.status.success(),
        "{board}: ffprobe: {}\nserver log:\n{log}",
        String::from_utf8_lossy(&probe.stderr)
    );
    assert!(
        text.contains("codec_name=h264") && text.contains("width=320"),
        "{board}: {text}"
    );
    assert!(
        text.contains("codec_name=aac") && text.contains("sample_rate=44100"),
        "{board}: {text}"
    );
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(s) = publisher.0.try_wait().unwrap() {
            assert!(s.success(), "{board}: ffmpeg published all 5 s");
            break;
        }
        assert!(Instant::now() < deadline, "{board}: ffmpeg finishes");
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(dir.join("srsd.log")).unwrap_or_default();
    assert!(log.contains("] publish /live/s"), "{board}: {log}");
    // HLS written by the board binary, served by its HTTP server, read by ffprobe. coreutils'
    // timeout bounds it: a live playlist could make ffprobe wait for more segments.
    let m3u8 = format!("http://127.0.0.1:{http_port}/live/s.m3u8");
    let probe = Command::new("timeout")
        .args(["30", "ffprobe", "-v", "error"])
        .args([
            "-show_entries",
            "stream=codec_name,width,height,sample_rate",
        ])
        .args(["-of", "compact"])
        .arg(&m3u8)
        .stdin(Stdio::null())
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout);
    assert!(
        text.contains("codec_name=h264")
            && text.contains("width=320")
            && text.contains("codec_name=aac"),
        "{board}: HLS ffprobe: {text} {}\nserver log:\n{log}",
        String::from_utf8_lossy(&probe.stderr)
    );
    eprintln!("board {board}: published and played back under {qemu}");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg_attr(
    any(
        srsd_missing = "board-armhf",
        srsd_missing = "qemu-arm-static",
        srsd_missing = "ffmpeg",
        srsd_missing = "ffprobe"
    ),
    ignore = "board armhf not built (board/build.sh armhf), or qemu-user-static, ffmpeg or ffprobe not installed"
)]
#[test]
fn armhf_binary_serves_ffmpeg_under_qemu() {
    qemu_smoke("armhf");
}

#[cfg_attr(
    any(
        srsd_missing = "board-mipsel",
        srsd_missing = "qemu-mipsel-static",
        srsd_missing = "ffmpeg",
        srsd_missing = "ffprobe"
    ),
    ignore = "board mipsel not built (board/build.sh mipsel), or qemu-user-static, ffmpeg or ffprobe not installed"
)]
#[test]
fn mipsel_binary_serves_ffmpeg_under_qemu() {
    qemu_smoke("mipsel");
}
