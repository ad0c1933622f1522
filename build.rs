//! Two jobs. First, it gzips the web console's files (`www/console/`) into `OUT_DIR/console/`,
//! where `src/app/http/console.rs` embeds them from (served with `Content-Encoding: gzip`).
//!
//! Second, it decides, when the tests are compiled, which checks cannot run on this machine,
//! so that `cargo test` reports them as `ignored` with the reason instead of a silent `ok`.
//!
//! For every program an interop test needs and is not on `PATH` (and every board that
//! `board/build.sh` has not built) it sets `--cfg srsd_missing="NAME"`; a test then carries
//! `#[cfg_attr(srsd_missing = "ffmpeg", ignore = "ffmpeg not installed")]`. Under
//! `SRSD_REQUIRE_INTEROP=1` (CI) nothing is ever missing here, so those tests run and fail at
//! their own check when a program really is absent. That cfg is read by `tests/` only.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The web console's files, embedded gzip-compressed (the list console.rs serves).
const CONSOLE: &[&str] = &[
    "index.html",
    "console.js",
    "console.css",
    "play.html",
    "play.js",
];

/// Writes `OUT_DIR/console/NAME.gz` for every console file: best compression, no file name
/// and a zero time in the gzip header, so the same sources give the same bytes.
fn gzip_console() {
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let out =
        PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR")).join("console");
    std::fs::create_dir_all(&out).expect("create OUT_DIR/console");
    for name in CONSOLE {
        let src = root.join("www/console").join(name);
        println!("cargo::rerun-if-changed={}", src.display());
        let text = std::fs::read(&src).unwrap_or_else(|e| panic!("{}: {e}", src.display()));
        let mut gz = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::best());
        gz.write_all(&text).expect("gzip in memory");
        let bytes = gz.finish().expect("gzip in memory");
        std::fs::write(out.join(format!("{name}.gz")), bytes).expect("write OUT_DIR/console");
    }
}

/// Programs the interop, board and packaging tests run.
const PROGRAMS: &[&str] = &[
    "ffmpeg",
    "ffprobe",
    "rtmpdump",
    "nginx",
    "cc",
    "valgrind",
    "busybox",
    "dash",
    "node",
    "chromium",
    "file",
    "dpkg-deb",
    "rpmbuild",
    "lintian",
    "rpmlint",
    "qemu-arm-static",
    "qemu-mipsel-static",
];

/// The boards board/build.sh knows (board/*.toml).
const BOARDS: &[&str] = &["x86_64", "armhf", "aarch64", "mips", "mipsel"];

/// Debian's libnginx-mod-rtmp, which the nginx-rtmp interop tests load.
const NGINX_RTMP: &str = "/usr/lib/nginx/modules/ngx_rtmp_module.so";

fn main() {
    gzip_console();
    let names: Vec<String> = PROGRAMS
        .iter()
        .map(|p| p.to_string())
        .chain(["nginx-rtmp", "playwright", "www", "root"].map(String::from))
        .chain(BOARDS.iter().map(|b| format!("board-{b}")))
        .map(|n| format!("\"{n}\""))
        .collect();
    println!(
        "cargo::rustc-check-cfg=cfg(srsd_missing, values({}))",
        names.join(", ")
    );
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=SRSD_REQUIRE_INTEROP");
    println!("cargo::rerun-if-env-changed=PATH");
    if std::env::var("SRSD_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
        return;
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
    let mut watch: Vec<PathBuf> = Vec::new();
    for program in PROGRAMS {
        match dirs.iter().map(|d| d.join(program)).find(|p| p.is_file()) {
            // A program that goes away (apt-get remove) changes its own mtime check.
            Some(found) => watch.push(found),
            None => {
                println!("cargo::rustc-cfg=srsd_missing=\"{program}\"");
                // Installing it adds a file to one of these directories.
                watch.extend(dirs.iter().filter(|d| d.is_dir()).cloned());
            }
        }
    }
    if !Path::new(NGINX_RTMP).is_file() {
        println!("cargo::rustc-cfg=srsd_missing=\"nginx-rtmp\"");
        watch.push(PathBuf::from("/usr/lib/nginx"));
    }
    // Tests of the privilege drop (`user` key) need root; the tests run as the user who
    // builds them.
    let uid0 = std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    });
    if !uid0 {
        println!("cargo::rustc-cfg=srsd_missing=\"root\"");
    }
    let root = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    // The browser test's playwright-core (`npm ci` in tests/browser) and the player libraries
    // (`packaging/web-assets.sh target/www`).
    let files = [
        (
            "playwright",
            "tests/browser/node_modules/playwright-core/package.json",
            "tests/browser",
        ),
        ("www", "target/www/lib/mpegts.js", "target/www"),
    ];
    for (name, file, dir) in files {
        if root.join(file).is_file() {
            watch.push(root.join(file));
        } else {
            println!("cargo::rustc-cfg=srsd_missing=\"{name}\"");
            watch.push(root.join(dir));
        }
    }
    for board in BOARDS {
        let bin = root.join("target/boards/out").join(board).join("srsd");
        if bin.is_file() {
            watch.push(bin);
        } else {
            println!("cargo::rustc-cfg=srsd_missing=\"board-{board}\"");
            // Only directories board/build.sh alone writes: watching `target/` itself would
            // make every build look stale. A first board build creates them; until then a
            // new board shows up after `touch build.rs`, as the ignore reason says.
            for d in ["target/boards/out", "target/boards"] {
                if root.join(d).is_dir() {
                    watch.push(root.join(d));
                    break;
                }
            }
        }
    }
    watch.sort();
    watch.dedup();
    for w in watch.iter().filter(|w| w.exists()) {
        println!("cargo::rerun-if-changed={}", w.display());
    }
}
