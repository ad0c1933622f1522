//! Where the embedded default config keeps its files.
//!
//! The embedded default (`srsd` without `-c`) names relative paths (`./objs/srsd.pid`,
//! `./objs/html`, ...), as SRS's `conf/srs.conf` does. SRS reads them against the working
//! directory, so `srs -s stop` from another directory finds no pid file and each start from a
//! new directory writes HLS somewhere else. srsd anchors the embedded default's relative paths
//! under one per-user state directory instead (`$XDG_STATE_HOME/srsd`, else
//! `$HOME/.local/state/srsd`): the pid file, log, HLS and DVR land in the same place from
//! wherever it is started, and `srsd -s stop|reload|quit` finds the server from any
//! directory. A config file given with `-c` is not touched: its relative paths stay relative
//! to the working directory, as in SRS.

use std::path::{Path, PathBuf};

use super::Config;

/// The embedded default's base directory: `$XDG_STATE_HOME/srsd` when that variable is an
/// absolute path (the XDG rule), else `$HOME/.local/state/srsd`; `None` without either (the
/// paths then stay relative to the working directory).
pub fn base_dir() -> Option<PathBuf> {
    let xdg = std::env::var_os("XDG_STATE_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute());
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .map(|h| h.join(".local/state"));
    xdg.or(home).map(|d| d.join("srsd"))
}

/// `path` under `base` when it is relative (a leading `./` dropped); unchanged when absolute
/// or empty.
fn anchored(base: &Path, path: &str) -> String {
    if path.is_empty() || Path::new(path).is_absolute() {
        return path.to_string();
    }
    base.join(path.trim_start_matches("./"))
        .to_string_lossy()
        .into_owned()
}

/// Rewrites every relative file path of `config` (pid, log file, HTTP root, each vhost's HLS
/// and DVR path) to lie under `base`.
pub fn anchor_paths(config: &mut Config, base: &Path) {
    config.pid = anchored(base, &config.pid);
    config.log.file = anchored(base, &config.log.file);
    config.http_server.dir = anchored(base, &config.http_server.dir);
    for vhost in config.vhost.values_mut() {
        vhost.hls.path = anchored(base, &vhost.hls.path);
        vhost.dvr.path = anchored(base, &vhost.dvr.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_paths_go_under_the_base_and_absolute_ones_stay() {
        let mut c = Config::parse(
            "pid = \"./objs/srsd.pid\"\n[log]\nfile = \"/var/log/srsd.log\"\n\
             [vhost.\"__defaultVhost__\".dvr]\npath = \"rec/[stream].flv\"\n",
            "t.toml",
        )
        .unwrap();
        anchor_paths(&mut c, Path::new("/home/u/.local/state/srsd"));
        assert_eq!(c.pid, "/home/u/.local/state/srsd/objs/srsd.pid");
        assert_eq!(c.log.file, "/var/log/srsd.log");
        assert_eq!(c.http_server.dir, "/home/u/.local/state/srsd/objs/html");
        let v = &c.vhost[crate::config::DEFAULT_VHOST];
        assert_eq!(v.hls.path, "/home/u/.local/state/srsd/objs/html");
        assert_eq!(v.dvr.path, "/home/u/.local/state/srsd/rec/[stream].flv");
    }

    #[test]
    fn the_embedded_default_does_not_depend_on_the_working_directory() {
        let c = Config::embedded_default();
        if base_dir().is_some() {
            for p in [&c.pid, &c.log.file, &c.http_server.dir] {
                assert!(Path::new(p).is_absolute(), "{p}");
            }
        }
    }
}
