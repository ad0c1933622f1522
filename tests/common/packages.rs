//! What the package tests share (tests/packaging.rs, tests/package_upgrade.rs): running
//! packaging/build.sh with the metadata a build needs, and the values it puts in the packages.

use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

pub fn required() -> bool {
    std::env::var("SRSD_REQUIRE_INTEROP").is_ok_and(|v| v == "1")
}

/// A check that cannot run although build.rs found what it needs when the tests were
/// compiled (or CI requires it): a failure, never a silent pass.
pub fn missing(why: &str) -> ! {
    if required() {
        panic!("{why} (SRSD_REQUIRE_INTEROP=1)");
    }
    panic!("{why}: it was there when the tests were compiled; `touch build.rs` to recheck");
}

pub fn run(cmd: &mut Command) -> String {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{cmd:?}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn sh(script: &str) -> String {
    run(Command::new("sh").arg("-c").arg(script))
}

/// The maintainer of an unreleased build (CI's, a developer's): Cargo.toml names no author
/// yet and packaging/build.sh refuses to make one up, so the build is told who it is; .ci/run
/// exports the same. `.invalid` (RFC 2606) is a domain that never reaches anyone.
pub const UNRELEASED_MAINTAINER: &str = "srsd unreleased build <unreleased@srsd.invalid>";

/// A non-empty environment variable.
pub fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.is_empty())
}

/// The first string of Cargo.toml's [package] `key` (a string, or an array like `authors`).
pub fn cargo_package(key: &str) -> Option<String> {
    let cargo: toml::Table = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml"))
        .unwrap()
        .parse()
        .unwrap();
    let v = cargo.get("package")?.get(key)?;
    let v = v.as_array().and_then(|a| a.first()).unwrap_or(v);
    v.as_str().map(String::from)
}

/// What packaging/build.sh writes as Maintainer/Packager and Homepage/URL: SRSD_MAINTAINER,
/// else Cargo.toml's first `authors` entry (else [`UNRELEASED_MAINTAINER`], which
/// [`build_packages`] passes); SRSD_HOMEPAGE, else Cargo.toml's `homepage`, else its
/// `repository`, else no such field at all (None).
pub fn metadata() -> (String, Option<String>) {
    let maintainer = env("SRSD_MAINTAINER")
        .or_else(|| cargo_package("authors"))
        .unwrap_or_else(|| UNRELEASED_MAINTAINER.to_string());
    let homepage = env("SRSD_HOMEPAGE")
        .or_else(|| cargo_package("homepage"))
        .or_else(|| cargo_package("repository"));
    (maintainer, homepage)
}

/// packaging/build.sh BOARD OUT with `vars` set (SRSD_VERSION, SRSD_BOARD_OUT); a checkout
/// whose Cargo.toml names no author builds as [`UNRELEASED_MAINTAINER`] unless
/// SRSD_MAINTAINER says otherwise.
pub fn build_packages(board: &str, out: &Path, vars: &[(&str, &Path)]) {
    let mut cmd = Command::new(Path::new(ROOT).join("packaging/build.sh"));
    cmd.arg(board).arg(out);
    if env("SRSD_MAINTAINER").is_none() && cargo_package("authors").is_none() {
        cmd.env("SRSD_MAINTAINER", UNRELEASED_MAINTAINER);
    }
    for (k, v) in vars {
        cmd.env(k, v);
    }
    run(&mut cmd);
}

/// Fails (or, without SRSD_REQUIRE_INTEROP, says how to build it) when `board` is not built.
pub fn board_built(board: &str) {
    let out = Path::new(ROOT).join("target/boards/out").join(board);
    if !out.join("srsd").exists() {
        missing(&format!("board {board} not built (board/build.sh {board})"));
    }
}
