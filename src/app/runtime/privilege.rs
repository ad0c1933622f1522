//! Dropping root once the ports are bound (`user` / `group` keys), as nginx's `user`
//! directive: a server on a router's WAN side should not keep root for parsing RTMP.
//!
//! Before switching, the directories srsd writes (the log file's, the HTTP root, each vhost's
//! HLS path and the fixed part of its DVR path) are created and handed to the user, and so is
//! the open log file, so logs (and their reopen after logrotate), HLS and DVR keep working.
//! System directories (`/`, `/tmp`, `/var`, `/var/log`, `/run`, ...) are never handed over.
//! The pid file stays root's: it was written, and is locked, before the switch.
//! `setgroups` + `setgid` + `setuid` go through the C library, which applies them to every
//! thread of the process (glibc and musl both broadcast set*id to all threads).

use crate::config::Config;
use nix::unistd::{Gid, Group, Uid, User};
use std::io;
use std::path::{Path, PathBuf};

/// Directories that belong to the system, whatever a config says.
const SYSTEM_DIRS: &[&str] = &[
    "/", "/tmp", "/var", "/var/log", "/var/run", "/run", "/var/lib", "/var/tmp", "/usr", "/etc",
    "/home", "/root", "/srv", "/opt", "/mnt", "/media", "/dev", "/proc", "/sys",
];

fn err(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::PermissionDenied, msg)
}

/// The uid and gid `user` / `group` name: names from the system's user database, or numbers.
fn resolve(user: &str, group: &str) -> io::Result<(Uid, Gid, String)> {
    let entry = match user.parse::<u32>() {
        Ok(n) => User::from_uid(Uid::from_raw(n)),
        Err(_) => User::from_name(user),
    }
    .map_err(|e| err(format!("user {user:?}: {e}")))?;
    let (uid, primary, name) = match (entry, user.parse::<u32>()) {
        (Some(u), _) => (u.uid, u.gid, u.name),
        // A bare uid with no passwd entry (common on routers): its own number as group.
        (None, Ok(n)) => (Uid::from_raw(n), Gid::from_raw(n), n.to_string()),
        (None, Err(_)) => return Err(err(format!("user {user:?}: no such user"))),
    };
    let gid = if group.is_empty() {
        primary
    } else {
        match group.parse::<u32>() {
            Ok(n) => Gid::from_raw(n),
            Err(_) => {
                Group::from_name(group)
                    .map_err(|e| err(format!("group {group:?}: {e}")))?
                    .ok_or_else(|| err(format!("group {group:?}: no such group")))?
                    .gid
            }
        }
    };
    Ok((uid, gid, name))
}

/// The directories the server writes under `config`.
fn writable_dirs(config: &Config) -> Vec<PathBuf> {
    let mut dirs = vec![PathBuf::from(&config.http_server.dir)];
    if config.log.tank == crate::config::LogTank::File {
        if let Some(d) = Path::new(&config.log.file).parent() {
            dirs.push(d.to_path_buf());
        }
    }
    for v in config.vhost.values() {
        if v.hls.enabled && v.hls.storage == crate::config::HlsStorage::Disk {
            dirs.push(PathBuf::from(&v.hls.path));
        }
        if v.dvr.enabled {
            // The part before the first template variable, up to its last `/`.
            let fixed = v.dvr.path.split('[').next().unwrap_or("");
            if let Some(i) = fixed.rfind('/') {
                dirs.push(PathBuf::from(&fixed[..i]));
            }
        }
    }
    dirs.retain(|d| !d.as_os_str().is_empty());
    dirs.sort();
    dirs.dedup();
    dirs
}

fn is_system(dir: &Path) -> bool {
    let abs = std::path::absolute(dir).unwrap_or_else(|_| dir.to_path_buf());
    let text = abs.to_string_lossy();
    SYSTEM_DIRS.contains(&text.trim_end_matches('/')) || text == "/"
}

/// Switches to `config.user` / `config.group` when set: call once the listeners are bound.
/// Errors (no such user, not root, a failed set*id) stop the server: running as root when
/// the config asked otherwise would be worse.
pub fn drop_after_bind(config: &Config) -> io::Result<()> {
    if config.user.is_empty() {
        return Ok(());
    }
    let (uid, gid, name) = resolve(&config.user, &config.group)?;
    if !Uid::effective().is_root() {
        if Uid::effective() == uid {
            return Ok(());
        }
        return Err(err(format!(
            "user = {:?} needs root to switch to; running as uid {}",
            config.user,
            Uid::effective()
        )));
    }
    for dir in writable_dirs(config) {
        if let Err(e) = std::fs::create_dir_all(&dir) {
            log::warn!("user {name}: cannot create {}: {e}", dir.display());
            continue;
        }
        if is_system(&dir) {
            continue;
        }
        if let Err(e) = nix::unistd::chown(&dir, Some(uid), Some(gid)) {
            log::warn!("user {name}: cannot hand {} over: {e}", dir.display());
        }
    }
    if config.log.tank == crate::config::LogTank::File {
        let _ = nix::unistd::chown(Path::new(&config.log.file), Some(uid), Some(gid));
    }
    // Supplementary groups first (root's would otherwise stay), then the group, then the
    // user: after setuid nothing else may be changed.
    nix::unistd::setgroups(&[gid]).map_err(|e| err(format!("setgroups: {e}")))?;
    nix::unistd::setgid(gid).map_err(|e| err(format!("setgid {gid}: {e}")))?;
    nix::unistd::setuid(uid).map_err(|e| err(format!("setuid {uid}: {e}")))?;
    log::info!("running as user {name} (uid {uid}, gid {gid}) after binding");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_go_to_the_configs_directories_and_system_ones_are_never_handed_over() {
        let c = Config::parse(
            "[log]\ntank = \"file\"\nfile = \"/var/log/srsd/srsd.log\"\n\
             [http_server]\ndir = \"/tmp/srsd/html\"\n\
             [vhost.\"__defaultVhost__\".dvr]\nenabled = true\npath = \"/srv/rec/[app]/[stream].flv\"\n",
            "t.toml",
        )
        .unwrap();
        let dirs = writable_dirs(&c);
        for d in ["/tmp/srsd/html", "/var/log/srsd", "/srv/rec"] {
            assert!(dirs.contains(&PathBuf::from(d)), "{d} in {dirs:?}");
        }
        assert!(is_system(Path::new("/tmp")) && is_system(Path::new("/var/log/")));
        assert!(!is_system(Path::new("/var/log/srsd")));
    }

    #[test]
    fn unknown_users_are_an_error_and_numbers_need_no_entry() {
        assert!(resolve("no-such-user-srsd-test", "").is_err());
        let (uid, gid, _) = resolve("65533", "").unwrap();
        assert_eq!((uid.as_raw(), gid.as_raw()), (65533, 65533));
        assert!(resolve("0", "no-such-group-srsd-test").is_err());
    }
}
