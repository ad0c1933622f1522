//! Packages (packaging/build.sh) of the boards board/build.sh built: the rootfs tarball, .deb,
//! .rpm and OpenWrt .ipk — contents, owners, modes, conffiles, maintainer scripts, maintainer
//! and homepage (Cargo.toml's), and lintian and rpmlint without errors or warnings (each
//! accepted tag overridden with its reason). Upgrades: tests/package_upgrade.rs. One test
//! per board; a board not built (or a missing
//! packaging tool) makes it ignored with the reason (build.rs), a failure under
//! SRSD_REQUIRE_INTEROP=1, as in CI.

mod common;

use common::packages::{board_built, build_packages, cargo_package, metadata, run, sh};
use std::path::{Path, PathBuf};
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const BOARDS: [&str; 5] = ["x86_64", "armhf", "aarch64", "mips", "mipsel"];

fn prop(board: &str, key: &str) -> String {
    let t: toml::Table =
        std::fs::read_to_string(Path::new(ROOT).join(format!("board/{board}.toml")))
            .unwrap()
            .parse()
            .unwrap();
    t.get(key)
        .and_then(|v| v.as_str())
        .unwrap_or("")
        .to_string()
}

/// Builds the packages of `board` into a fresh directory.
fn package(board: &str) -> PathBuf {
    board_built(board);
    let dir = common::temp_dir(&format!("pkg-{board}"));
    build_packages(board, &dir, &[]);
    dir
}

/// `tar tvzf` lines as (mode, owner, path).
fn tar_list(archive: &Path) -> Vec<(String, String, String)> {
    run(Command::new("tar")
        .arg("--numeric-owner")
        .arg("-tvzf")
        .arg(archive))
    .lines()
    .map(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        (
            f[0].to_string(),
            f[1].to_string(),
            f[f.len() - 1].to_string(),
        )
    })
    .collect()
}

fn entry<'a>(list: &'a [(String, String, String)], path: &str) -> &'a (String, String, String) {
    list.iter()
        .find(|(_, _, p)| p.trim_end_matches('/') == path)
        .unwrap_or_else(|| panic!("{path} missing from {list:?}"))
}

/// The console player's libraries every package carries ([console] www's default).
const WWW_LIBS: [&str; 4] = [
    "usr/share/srsd/www/lib/mpegts.js",
    "usr/share/srsd/www/lib/mpegts.js.LICENSE",
    "usr/share/srsd/www/lib/hls.min.js",
    "usr/share/srsd/www/lib/hls.min.js.LICENSE",
];

fn check_rootfs(board: &str, dir: &Path) {
    let version = srsd::VERSION;
    let tgz = dir.join(format!("srsd-{version}-{board}.tar.gz"));
    let list = tar_list(&tgz);
    for (_, owner, path) in &list {
        assert_eq!(owner, "0/0", "{board}: {path} owned by root");
    }
    assert_eq!(entry(&list, "./usr/bin/srsd").0, "-rwxr-xr-x");
    assert_eq!(entry(&list, "./etc/srsd/srsd.toml").0, "-rw-r--r--");
    assert_eq!(entry(&list, "./etc/init.d/srsd").0, "-rwxr-xr-x");
    assert_eq!(entry(&list, "./etc/logrotate.d/srsd").0, "-rw-r--r--");
    assert_eq!(entry(&list, "./var/log/srsd").0, "drwxr-xr-x");
    // Unpacked over a root, a ./tmp entry would reset /tmp's mode and owner.
    assert!(
        list.iter().all(|(_, _, p)| !p.starts_with("./tmp")),
        "{list:?}"
    );
    for lib in WWW_LIBS {
        assert_eq!(entry(&list, &format!("./{lib}")).0, "-rw-r--r--");
    }

    // Unpacked: the board's config, the repository's init script and logrotate file.
    let root = dir.join("root");
    std::fs::create_dir_all(&root).unwrap();
    run(Command::new("tar")
        .arg("-xzf")
        .arg(&tgz)
        .arg("-C")
        .arg(&root));
    let board_out = Path::new(ROOT).join("target/boards/out").join(board);
    assert_eq!(
        std::fs::read(root.join("etc/srsd/srsd.toml")).unwrap(),
        std::fs::read(board_out.join("srsd.toml")).unwrap()
    );
    assert_eq!(
        std::fs::read(root.join("usr/bin/srsd")).unwrap(),
        std::fs::read(board_out.join("srsd")).unwrap()
    );
    assert_eq!(
        std::fs::read(root.join("etc/init.d/srsd")).unwrap(),
        std::fs::read(Path::new(ROOT).join("init.d/srsd")).unwrap()
    );
    let logrotate = std::fs::read_to_string(root.join("etc/logrotate.d/srsd")).unwrap();
    assert!(logrotate.contains("/var/log/srsd/*.log"));
    assert!(logrotate.contains("srsd -s reopen -c /etc/srsd/srsd.toml"));
}

fn check_deb(board: &str, dir: &Path, arch: &str) {
    let deb = dir.join(format!("srsd_{}-1_{arch}.deb", srsd::VERSION));
    let fields = run(Command::new("dpkg-deb").arg("-f").arg(&deb).args([
        "Package",
        "Architecture",
        "Version",
        "Depends",
    ]));
    assert!(fields.contains("Package: srsd"), "{fields}");
    // Cargo.toml's maintainer and homepage (or none), the same in every package.
    let (maintainer, homepage) = metadata();
    let field = |name: &str| run(Command::new("dpkg-deb").arg("-f").arg(&deb).arg(name));
    assert_eq!(field("Maintainer").trim_end(), maintainer, "{board}");
    assert_eq!(
        field("Homepage").trim_end(),
        homepage.as_deref().unwrap_or(""),
        "{board}"
    );
    assert!(
        fields.contains(&format!("Architecture: {arch}")),
        "{fields}"
    );
    let list = run(Command::new("dpkg-deb").arg("-c").arg(&deb));
    for l in list.lines() {
        assert!(l.contains(" root/root "), "{board}: {l}");
    }
    for path in [
        "./usr/bin/srsd",
        "./etc/srsd/srsd.toml",
        "./etc/init.d/srsd",
        "./etc/logrotate.d/srsd",
        "./usr/lib/systemd/system/srsd.service",
        "./usr/share/doc/srsd/copyright",
        "./var/log/srsd/",
        "./usr/share/srsd/www/lib/mpegts.js",
        "./usr/share/srsd/www/lib/hls.min.js",
        "./usr/share/man/man1/srsd.1.gz",
    ] {
        assert!(
            list.lines().any(|l| l.ends_with(path)),
            "{board}: {path} in\n{list}"
        );
    }
    // The packaged config runs the server as the package's srsd user once bound, and limits
    // publishing to loopback and the LAN.
    let data = dir.join(format!("deb-data-{board}"));
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(&data));
    let conf = srsd::config::Config::load(&data.join("etc/srsd/srsd.toml")).unwrap();
    assert_eq!(conf.user, "srsd");
    let sec = &conf.vhost["__defaultVhost__"].security;
    assert!(sec.enabled && sec.allow.iter().any(|r| *r == "publish 192.168.0.0/16"));
    assert!(!sec.allow.iter().any(|r| *r == "publish all"));
    let logrotate = std::fs::read_to_string(data.join("etc/logrotate.d/srsd")).unwrap();
    assert!(logrotate.contains("su srsd srsd"), "{logrotate}");
    let ctl = dir.join(format!("deb-control-{board}"));
    run(Command::new("dpkg-deb").arg("-e").arg(&deb).arg(&ctl));
    let conffiles = std::fs::read_to_string(ctl.join("conffiles")).unwrap();
    assert!(
        conffiles.lines().any(|l| l == "/etc/srsd/srsd.toml"),
        "{conffiles}"
    );
    let md5sums = std::fs::read_to_string(ctl.join("md5sums")).unwrap();
    assert!(
        md5sums.lines().any(|l| l.ends_with("  usr/bin/srsd")),
        "{md5sums}"
    );
    let postinst = std::fs::read_to_string(ctl.join("postinst")).unwrap();
    assert!(
        postinst.contains("adduser --system --group"),
        "creates the user"
    );
    assert!(
        postinst.contains("mkdir -p /var/log/srsd"),
        "creates the log dir"
    );
    assert!(postinst.contains("update-rc.d srsd defaults"));
    assert!(std::fs::read_to_string(ctl.join("prerm"))
        .unwrap()
        .contains("stop"));
    assert!(std::fs::read_to_string(ctl.join("postrm"))
        .unwrap()
        .contains("purge"));
    for s in ["postinst", "prerm", "postrm"] {
        run(Command::new("sh").arg("-n").arg(ctl.join(s)));
    }
    {
        // Exit status non-zero = an error or warning tag (each accepted one is overridden with
        // its reason in packaging/deb/lintian-overrides); info tags are printed for the log.
        // lintian checks a foreign-architecture .deb (armhf, arm64) as it does amd64.
        let out = Command::new("lintian")
            .args(["--display-info", "--fail-on", "error,warning"])
            .arg(&deb)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        eprintln!("lintian {board}:\n{text}");
        assert!(
            out.status.success(),
            "lintian errors or warnings for {board}:\n{text}"
        );
        assert!(!text.lines().any(|l| l.starts_with("E:")), "{text}");
    }
}

fn check_rpm(board: &str, dir: &Path, arch: &str) {
    let rpm = dir.join(format!("srsd-{}-1.{arch}.rpm", srsd::VERSION));
    let q = |args: &[&str]| run(Command::new("rpm").arg("-qp").args(args).arg(&rpm));
    assert_eq!(q(&["--qf", "%{NAME} %{ARCH}"]), format!("srsd {arch}"));
    let (maintainer, homepage) = metadata();
    assert_eq!(q(&["--qf", "%{PACKAGER}"]), maintainer, "{board}");
    // rpm prints an absent tag as "(none)".
    assert_eq!(
        q(&["--qf", "%{URL}"]),
        homepage.as_deref().unwrap_or("(none)"),
        "{board}"
    );
    let list = q(&["-lv"]);
    for path in [
        "/usr/bin/srsd",
        "/etc/srsd/srsd.toml",
        "/etc/rc.d/init.d/srsd",
        "/etc/logrotate.d/srsd",
        "/usr/lib/systemd/system/srsd.service",
        "/var/log/srsd",
        "/usr/share/srsd/www/lib/mpegts.js",
        "/usr/share/srsd/www/lib/hls.min.js",
    ] {
        let line = list
            .lines()
            .find(|l| l.ends_with(&format!(" {path}")))
            .unwrap_or_else(|| panic!("{board}: {path} in\n{list}"));
        // The server, running as srsd after binding, writes its logs there.
        let owner = if path == "/var/log/srsd" {
            " srsd "
        } else {
            " root "
        };
        assert!(line.contains(owner), "{line}");
    }
    let configs = q(&["-c"]);
    assert!(
        configs.lines().any(|l| l == "/etc/srsd/srsd.toml"),
        "{configs}"
    );
    let scripts = q(&["--scripts"]);
    assert!(scripts.contains("useradd -r -g srsd"), "{scripts}");
    assert!(scripts.contains("disable --now srsd.service"), "{scripts}");
    {
        // Built without a homepage (no URL tag), rpmlint also gets rpmlintrc-no-url's filter.
        let mut filters =
            std::fs::read_to_string(Path::new(ROOT).join("packaging/rpm/rpmlintrc")).unwrap();
        if homepage.is_none() {
            filters +=
                &std::fs::read_to_string(Path::new(ROOT).join("packaging/rpm/rpmlintrc-no-url"))
                    .unwrap();
        }
        let rpmlintrc = dir.join(format!("rpmlintrc-{board}"));
        std::fs::write(&rpmlintrc, filters).unwrap();
        let out = Command::new("rpmlint")
            .arg("-r")
            .arg(&rpmlintrc)
            .arg(&rpm)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        eprintln!("rpmlint {board}:\n{text}");
        assert!(
            out.status.success(),
            "rpmlint errors or warnings for {board}:\n{text}"
        );
        // Warnings too: each accepted one is filtered with its reason in the rpmlintrc.
        assert!(text.contains(" 0 errors, 0 warnings"), "{text}");
    }
}

fn check_ipk(board: &str, dir: &Path, arch: &str) {
    let ipk = dir.join(format!("srsd_{}-1_{arch}.ipk", srsd::VERSION));
    let outer: Vec<String> = tar_list(&ipk).into_iter().map(|(_, _, p)| p).collect();
    assert_eq!(
        outer,
        ["./debian-binary", "./data.tar.gz", "./control.tar.gz"],
        "{board}: what opkg expects, in ipkg-build's order"
    );
    let x = dir.join(format!("ipk-{board}"));
    std::fs::create_dir_all(x.join("control")).unwrap();
    std::fs::create_dir_all(x.join("data")).unwrap();
    run(Command::new("tar").arg("-xzf").arg(&ipk).arg("-C").arg(&x));
    assert_eq!(
        std::fs::read_to_string(x.join("debian-binary")).unwrap(),
        "2.0\n"
    );
    sh(&format!(
        "tar -xzf {0}/control.tar.gz -C {0}/control && tar -xzf {0}/data.tar.gz -C {0}/data",
        x.display()
    ));
    let control = std::fs::read_to_string(x.join("control/control")).unwrap();
    assert!(
        control.contains(&format!("Architecture: {arch}\n")),
        "{control}"
    );
    assert!(control.contains("Package: srsd\n"), "{control}");
    let (maintainer, homepage) = metadata();
    let field = |name: &str| {
        control
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(": "))
            .map(String::from)
    };
    assert_eq!(field("Maintainer"), Some(maintainer), "{control}");
    assert_eq!(field("URL"), homepage, "{control}");
    let conffiles = std::fs::read_to_string(x.join("control/conffiles")).unwrap();
    assert!(conffiles.contains("/etc/srsd/srsd.toml") && conffiles.contains("/etc/config/srsd"));
    let init = std::fs::read_to_string(x.join("data/etc/init.d/srsd")).unwrap();
    assert!(init.starts_with("#!/bin/sh /etc/rc.common"), "procd script");
    assert!(init.contains("USE_PROCD=1") && init.contains("procd_set_param respawn"));
    assert!(init.contains("procd_set_param reload_signal HUP"));
    let uci = std::fs::read_to_string(x.join("data/etc/config/srsd")).unwrap();
    assert!(uci.contains("config srsd 'main'"), "{uci}");
    let conf = srsd::config::Config::load(&x.join("data/etc/srsd/srsd.toml")).unwrap();
    assert!(!conf.daemon, "procd wants srsd in the foreground");
    assert_eq!(
        std::fs::read(x.join("data/usr/bin/srsd")).unwrap(),
        std::fs::read(
            Path::new(ROOT)
                .join("target/boards/out")
                .join(board)
                .join("srsd")
        )
        .unwrap()
    );
    let list = tar_list(&x.join("data.tar.gz"));
    assert!(list.iter().all(|(_, owner, _)| owner == "0/0"), "{list:?}");
    for lib in WWW_LIBS {
        assert_eq!(entry(&list, &format!("./{lib}")).0, "-rw-r--r--");
    }
    for s in ["postinst", "prerm"] {
        run(Command::new("sh").arg("-n").arg(x.join("control").join(s)));
    }
}

/// Builds and checks every package of one built board.
fn packages_cleanly(board: &str) {
    let dir = package(board);
    check_rootfs(board, &dir);
    let deb = prop(board, "deb_arch");
    if !deb.is_empty() {
        check_deb(board, &dir, &deb);
    }
    let rpm = prop(board, "rpm_arch");
    if !rpm.is_empty() {
        check_rpm(board, &dir, &rpm);
    }
    let ipk = prop(board, "ipk_arch");
    if !ipk.is_empty() {
        check_ipk(board, &dir, &ipk);
    }
    // Reproducible: a second build makes the same bytes.
    let again = common::temp_dir(&format!("pkg-again-{board}"));
    build_packages(board, &again, &[]);
    for e in std::fs::read_dir(&again).unwrap().flatten() {
        let name = e.file_name();
        if e.path().is_file() {
            assert!(
                std::fs::read(e.path()).unwrap() == std::fs::read(dir.join(&name)).unwrap(),
                "{board}: {name:?} differs between two builds"
            );
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

// One test per board, ignored (with the reason) when the board is not built or a packaging
// tool is missing: build.rs decides, so a skip never reads as a pass.
#[cfg_attr(
    any(
        srsd_missing = "board-x86_64",
        srsd_missing = "dpkg-deb",
        srsd_missing = "lintian",
        srsd_missing = "rpmbuild",
        srsd_missing = "rpmlint"
    ),
    ignore = "board x86_64 not built (board/build.sh x86_64), or dpkg-deb, lintian, rpm or rpmlint not installed"
)]
#[test]
fn x86_64_packages_cleanly() {
    packages_cleanly("x86_64");
}

#[cfg_attr(
    any(
        srsd_missing = "board-armhf",
        srsd_missing = "dpkg-deb",
        srsd_missing = "lintian"
    ),
    ignore = "board armhf not built (board/build.sh armhf), or dpkg-deb or lintian not installed"
)]
#[test]
fn armhf_packages_cleanly() {
    packages_cleanly("armhf");
}

#[cfg_attr(
    any(
        srsd_missing = "board-aarch64",
        srsd_missing = "dpkg-deb",
        srsd_missing = "lintian",
        srsd_missing = "rpmbuild",
        srsd_missing = "rpmlint"
    ),
    ignore = "board aarch64 not built (board/build.sh aarch64), or dpkg-deb, lintian, rpm or rpmlint not installed"
)]
#[test]
fn aarch64_packages_cleanly() {
    packages_cleanly("aarch64");
}

#[cfg_attr(
    srsd_missing = "board-mips",
    ignore = "board mips not built (board/build.sh mips)"
)]
#[test]
fn mips_packages_cleanly() {
    packages_cleanly("mips");
}

#[cfg_attr(
    srsd_missing = "board-mipsel",
    ignore = "board mipsel not built (board/build.sh mipsel)"
)]
#[test]
fn mipsel_packages_cleanly() {
    packages_cleanly("mipsel");
}

// packaging/build.sh reads the maintainer and homepage from Cargo.toml: a copy of the
// packaging files beside a Cargo.toml that names both (test values, `.invalid` addresses)
// builds packages that carry them, with no SRSD_MAINTAINER/SRSD_HOMEPAGE in the environment.
#[cfg_attr(
    any(
        srsd_missing = "board-x86_64",
        srsd_missing = "dpkg-deb",
        srsd_missing = "rpmbuild"
    ),
    ignore = "board x86_64 not built (board/build.sh x86_64), or dpkg-deb or rpm not installed"
)]
#[test]
fn cargo_toml_names_the_maintainer_and_homepage() {
    board_built("x86_64");
    let tree = common::temp_dir("pkg-cargo-metadata");
    let cargo = std::fs::read_to_string(Path::new(ROOT).join("Cargo.toml")).unwrap();
    let cargo = cargo.replacen(
        "[package]\n",
        "[package]\nauthors = [\n    \"Test Packager <packager@srsd.invalid>\",\n    \"Other <o@srsd.invalid>\",\n]\nhomepage = \"https://srsd.invalid/home\"\n",
        1,
    );
    std::fs::write(tree.join("Cargo.toml"), cargo).unwrap();
    for f in ["packaging", "board", "init.d", "rootfs", "LICENSE"] {
        run(Command::new("cp")
            .arg("-r")
            .arg(Path::new(ROOT).join(f))
            .arg(&tree));
    }
    let out = tree.join("out");
    run(Command::new(tree.join("packaging/build.sh"))
        .arg("x86_64")
        .arg(&out)
        .env_remove("SRSD_MAINTAINER")
        .env_remove("SRSD_HOMEPAGE")
        .env(
            "SRSD_BOARD_OUT",
            Path::new(ROOT).join("target/boards/out/x86_64"),
        )
        .env("SRSD_WWW", Path::new(ROOT).join("target/www"))
        .env("SOURCE_DATE_EPOCH", "0"));
    let deb = out.join(format!("srsd_{}-1_amd64.deb", srsd::VERSION));
    let fields = run(Command::new("dpkg-deb")
        .arg("-f")
        .arg(&deb)
        .args(["Maintainer", "Homepage"]));
    assert_eq!(
        fields,
        "Maintainer: Test Packager <packager@srsd.invalid>\nHomepage: https://srsd.invalid/home\n"
    );
    let rpm = out.join(format!("srsd-{}-1.x86_64.rpm", srsd::VERSION));
    let tags = run(Command::new("rpm")
        .args(["-qp", "--qf", "%{PACKAGER}|%{URL}"])
        .arg(&rpm));
    assert_eq!(
        tags,
        "Test Packager <packager@srsd.invalid>|https://srsd.invalid/home"
    );
    let _ = std::fs::remove_dir_all(&tree);
}

#[test]
fn packages_name_no_made_up_maintainer_or_homepage() {
    let script = std::fs::read_to_string(Path::new(ROOT).join("packaging/build.sh")).unwrap();
    assert!(
        !script.contains("example.org"),
        "no placeholder maintainer or homepage"
    );
    let build = |maintainer: Option<&str>| {
        let mut cmd = Command::new(Path::new(ROOT).join("packaging/build.sh"));
        cmd.arg("x86_64")
            .arg(common::temp_dir("pkg-no-maintainer"))
            // Refused before the board's files are looked at.
            .env("SRSD_BOARD_OUT", "/nonexistent");
        match maintainer {
            Some(m) => cmd.env("SRSD_MAINTAINER", m),
            None => cmd.env_remove("SRSD_MAINTAINER"),
        };
        let out = cmd.output().unwrap();
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let err = build(Some("nobody"));
    assert!(err.contains("want 'Name <email>'"), "{err}");
    let err = build(Some("a & b <a@b.invalid>"));
    assert!(err.contains("bad maintainer"), "{err}");
    if cargo_package("authors").is_none() {
        let err = build(None);
        assert!(
            err.contains("no maintainer: Cargo.toml's [package] authors is empty"),
            "{err}"
        );
    } else {
        // With a maintainer, the build goes on to the board's files.
        let err = build(None);
        assert!(err.contains("no /nonexistent/srsd"), "{err}");
    }
}

#[test]
fn the_package_matrix_covers_the_issue() {
    // .deb for amd64/armhf/arm64, .rpm for x86_64/aarch64, .ipk for mips/mipsel.
    let debs: Vec<String> = BOARDS.iter().map(|b| prop(b, "deb_arch")).collect();
    assert_eq!(debs, ["amd64", "armhf", "arm64", "", ""]);
    let rpms: Vec<String> = BOARDS.iter().map(|b| prop(b, "rpm_arch")).collect();
    assert_eq!(rpms, ["x86_64", "", "aarch64", "", ""]);
    let ipks: Vec<String> = BOARDS.iter().map(|b| prop(b, "ipk_arch")).collect();
    assert_eq!(ipks, ["", "", "", "mips_24kc", "mipsel_24kc"]);
}
