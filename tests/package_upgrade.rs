//! Upgrades of the packages (packaging/build.sh) over an edited /etc/srsd/srsd.toml: the edit
//! survives, and a changed default lands beside it as the format does it (.dpkg-dist,
//! .rpmnew). dpkg and rpm install into a scratch root, never onto this machine.

mod common;

use common::packages::{board_built, build_packages, missing, run};
use std::path::Path;
use std::process::Command;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// A root directory in which dpkg and rpm can run the packages' maintainer scripts
/// (they chroot into it, hence root): busybox as /bin/sh with the few commands the scripts
/// use, and stand-ins for the system tools (adduser, useradd, groupadd, getent, update-rc.d,
/// invoke-rc.d, systemctl) that append each call to /calls.log and add the srsd user and group
/// to this root's /etc/passwd and /etc/group. Nothing outside `root` is touched.
fn script_root(root: &Path) {
    let busybox = std::env::split_paths(&std::env::var_os("PATH").unwrap_or_default())
        .map(|d| d.join("busybox"))
        .find(|p| p.is_file())
        .unwrap_or_else(|| missing("busybox not installed"));
    for d in [
        "bin",
        "usr/sbin",
        "etc",
        "dev",
        "var/lib/dpkg/info",
        "var/lib/dpkg/updates",
    ] {
        std::fs::create_dir_all(root.join(d)).unwrap();
    }
    // Debian's busybox is dynamically linked: its libraries go to the same paths in the root
    // (ldd prints none for a static one).
    let ldd = Command::new("ldd").arg(&busybox).output().unwrap();
    for lib in String::from_utf8_lossy(&ldd.stdout)
        .split_whitespace()
        .filter(|w| w.starts_with('/'))
    {
        let to = root.join(lib.trim_start_matches('/'));
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(lib, to).unwrap();
    }
    std::fs::copy(&busybox, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "mkdir", "chown", "chmod", "rm", "cat", "grep"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    let stand_in = r#"#!/bin/sh
# Records the call; creates the user or group (the last argument) in this root.
name=${0##*/}
echo "$name $*" >> /calls.log
last=${*##* }
case $name in
    getent) grep -q "^$2:" "/etc/$1" ;;
    adduser) echo "$last:x:101:101::/nonexistent:/usr/sbin/nologin" >> /etc/passwd
        echo "$last:x:101:" >> /etc/group ;;
    useradd) echo "$last:x:101:101::/:/sbin/nologin" >> /etc/passwd ;;
    groupadd) echo "$last:x:101:" >> /etc/group ;;
esac
"#;
    std::fs::write(root.join("usr/sbin/stand-in"), stand_in).unwrap();
    std::fs::set_permissions(
        root.join("usr/sbin/stand-in"),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    for tool in [
        "adduser",
        "useradd",
        "groupadd",
        "getent",
        "update-rc.d",
        "invoke-rc.d",
        "systemctl",
    ] {
        std::os::unix::fs::symlink("stand-in", root.join("usr/sbin").join(tool)).unwrap();
    }
    std::fs::write(root.join("etc/passwd"), "root:x:0:0::/root:/bin/sh\n").unwrap();
    std::fs::write(root.join("etc/group"), "root:x:0:\n").unwrap();
    std::fs::write(root.join("var/lib/dpkg/status"), "").unwrap();
}

/// The calls the maintainer scripts made in `root` since the last look (then forgotten).
fn calls(root: &Path) -> String {
    let log = root.join("calls.log");
    let text = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(log);
    text
}

/// The owner of `path` in `root`, by the name of `root`'s /etc/passwd.
fn owner_in(root: &Path, path: &str) -> String {
    use std::os::unix::fs::MetadataExt;
    let uid = std::fs::metadata(root.join(path))
        .unwrap()
        .uid()
        .to_string();
    std::fs::read_to_string(root.join("etc/passwd"))
        .unwrap()
        .lines()
        .map(|l| l.split(':').collect::<Vec<_>>())
        .find(|f| f.get(2) == Some(&uid.as_str()))
        .map(|f| f[0].to_string())
        .unwrap_or(uid)
}

/// The files beside the config: the config itself and what the package manager left there.
fn conf_dir(root: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(root.join("etc/srsd"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

// Installs the x86_64 .deb and .rpm into a scratch root with their maintainer scripts, edits
// /etc/srsd/srsd.toml, then upgrades twice: to a version whose default config is unchanged
// (the edit stays, nothing beside it), and to one whose default changed (the edit stays; the
// new default lands as srsd.toml.dpkg-dist / srsd.toml.rpmnew); an unedited config takes the
// changed default. dpkg and rpm chroot into the
// root to run the scripts, so this needs root. The .ipk's upgrade is not run: opkg is not
// packaged for Debian (see `ipk_upgrade_keeps_an_edited_config`).
#[cfg_attr(
    any(
        srsd_missing = "board-x86_64",
        srsd_missing = "dpkg-deb",
        srsd_missing = "rpmbuild",
        srsd_missing = "busybox",
        srsd_missing = "root"
    ),
    ignore = "needs root (dpkg and rpm chroot to run the maintainer scripts), busybox, dpkg-deb, rpm and board x86_64 (board/build.sh x86_64)"
)]
#[test]
fn upgrade_keeps_an_edited_config() {
    let board = "x86_64";
    board_built(board);
    let dir = common::temp_dir("pkg-upgrade");
    let v1 = srsd::VERSION.to_string();
    let v2 = format!("{v1}.1");
    let v3 = format!("{v1}.2");
    // v3's default config differs from v1's and v2's.
    let changed = dir.join("changed-board");
    std::fs::create_dir_all(&changed).unwrap();
    let board_out = Path::new(ROOT).join("target/boards/out").join(board);
    std::fs::copy(board_out.join("srsd"), changed.join("srsd")).unwrap();
    let default = std::fs::read_to_string(board_out.join("srsd.toml")).unwrap();
    let changed_default = format!("{default}# a newer default\n");
    std::fs::write(changed.join("srsd.toml"), &changed_default).unwrap();
    build_packages(board, &dir.join(&v1), &[]);
    build_packages(board, &dir.join(&v2), &[("SRSD_VERSION", Path::new(&v2))]);
    build_packages(
        board,
        &dir.join(&v3),
        &[
            ("SRSD_VERSION", Path::new(&v3)),
            ("SRSD_BOARD_OUT", &changed),
        ],
    );
    let edit = "# edited by the admin\n";

    // .deb: --force-depends for adduser (not in this root's dpkg database; its stand-in is
    // there), --force-confold answers dpkg's conffile question as a non-interactive upgrade
    // (unattended-upgrades, `apt-get -o Dpkg::Options::=--force-confold`) does.
    let deb = |v: &str| dir.join(v).join(format!("srsd_{v}-1_amd64.deb"));
    let dpkg = |root: &Path, v: &str| {
        run(Command::new("dpkg")
            .arg(format!("--root={}", root.display()))
            .args(["--force-depends", "--force-confold", "-i"])
            .arg(deb(v))
            .stdin(std::process::Stdio::null()))
    };
    let root = dir.join("deb-root");
    script_root(&root);
    dpkg(&root, &v1);
    let c = calls(&root);
    assert!(c.contains("adduser --system --group"), "{c}");
    assert!(c.contains("update-rc.d srsd defaults"), "{c}");
    assert_eq!(owner_in(&root, "var/log/srsd"), "srsd");
    let conf = root.join("etc/srsd/srsd.toml");
    let edited = std::fs::read_to_string(&conf).unwrap() + edit;
    std::fs::write(&conf, &edited).unwrap();
    dpkg(&root, &v2);
    assert!(
        calls(&root).contains("invoke-rc.d srsd stop"),
        "prerm upgrade"
    );
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), edited);
    assert_eq!(
        conf_dir(&root),
        ["srsd.toml"],
        "default unchanged: nothing beside it"
    );
    dpkg(&root, &v3);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), edited);
    assert_eq!(conf_dir(&root), ["srsd.toml", "srsd.toml.dpkg-dist"]);
    let dist = std::fs::read_to_string(root.join("etc/srsd/srsd.toml.dpkg-dist")).unwrap();
    assert!(dist.ends_with("# a newer default\n"), "{dist}");
    let status = run(Command::new("dpkg")
        .arg(format!("--root={}", root.display()))
        .args(["-s", "srsd"]));
    assert!(status.contains(&format!("Version: {v3}-1\n")), "{status}");
    // Not edited: the changed default replaces it, nothing beside it.
    let root = dir.join("deb-root-unedited");
    script_root(&root);
    dpkg(&root, &v1);
    dpkg(&root, &v3);
    assert_eq!(conf_dir(&root), ["srsd.toml"]);
    let conf = std::fs::read_to_string(root.join("etc/srsd/srsd.toml")).unwrap();
    assert!(conf.ends_with("# a newer default\n"), "{conf}");

    // .rpm: --nodeps for shadow-utils and logrotate (not in this root's rpm database).
    let rpm = |v: &str| dir.join(v).join(format!("srsd-{v}-1.x86_64.rpm"));
    let rpm_run = |root: &Path, op: &str, v: &str| {
        run(Command::new("rpm")
            .arg("--root")
            .arg(root)
            .args(["--dbpath", "/var/lib/rpm", "--nodeps", op])
            .arg(rpm(v)))
    };
    let root = dir.join("rpm-root");
    script_root(&root);
    rpm_run(&root, "-i", &v1);
    let c = calls(&root);
    assert!(
        c.contains("groupadd -r srsd") && c.contains("useradd -r -g srsd"),
        "{c}"
    );
    assert_eq!(owner_in(&root, "var/log/srsd"), "srsd");
    let conf = root.join("etc/srsd/srsd.toml");
    let edited = std::fs::read_to_string(&conf).unwrap() + edit;
    std::fs::write(&conf, &edited).unwrap();
    rpm_run(&root, "-U", &v2);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), edited);
    assert_eq!(
        conf_dir(&root),
        ["srsd.toml"],
        "default unchanged: nothing beside it"
    );
    rpm_run(&root, "-U", &v3);
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), edited);
    assert_eq!(conf_dir(&root), ["srsd.toml", "srsd.toml.rpmnew"]);
    let new = std::fs::read_to_string(root.join("etc/srsd/srsd.toml.rpmnew")).unwrap();
    assert!(new.ends_with("# a newer default\n"), "{new}");
    let q = run(Command::new("rpm").arg("--root").arg(&root).args([
        "--dbpath",
        "/var/lib/rpm",
        "-q",
        "srsd",
    ]));
    assert_eq!(q.trim_end(), format!("srsd-{v3}-1.x86_64"));
    let root = dir.join("rpm-root-unedited");
    script_root(&root);
    rpm_run(&root, "-i", &v1);
    rpm_run(&root, "-U", &v3);
    assert_eq!(conf_dir(&root), ["srsd.toml"]);
    let conf = std::fs::read_to_string(root.join("etc/srsd/srsd.toml")).unwrap();
    assert!(conf.ends_with("# a newer default\n"), "{conf}");
    let _ = std::fs::remove_dir_all(&dir);
}

// Not run here: the .ipk upgrade. opkg (OpenWrt's package manager) is not packaged for
// Debian, so nothing on this machine can install an .ipk and upgrade it; ipk's conffiles list
// (/etc/srsd/srsd.toml, /etc/config/srsd) is checked by mips_packages_cleanly /
// mipsel_packages_cleanly. On a router opkg keeps an edited conffile and writes the new
// default as srsd.toml-opkg.
