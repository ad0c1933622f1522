//! Process start-up for appliances: the locked pid file and `daemon = true`.
//!
//! Order, from `main` (single-threaded until the tokio runtime is built, which `fork` needs):
//!
//! 1. [`Startup::begin`] opens the pid file and takes an exclusive `flock` on it without
//!    waiting. A second instance fails here, in the foreground, with exit 1 and
//!    "another srsd (pid N) holds the pid file ...". The file is not truncated before the lock is
//!    ours, so the running server's pid stays readable.
//! 2. With `daemon = true` it forks twice (`fork`, `setsid`, `fork`): the grandchild is the
//!    server, in its own session without a controlling terminal, stdin/stdout/stderr on
//!    /dev/null. It keeps the working directory, as SRS does, because the default paths
//!    (`./objs/...`) are relative; board configs use absolute paths. The lock is inherited: a
//!    `flock` belongs to the open file description, which the grandchild keeps open.
//! 3. The original process waits on a pipe until the server calls [`Startup::ready`] (log open,
//!    runtime built, pid written) and exits 0, or prints the error the server sent through
//!    [`Startup::fail`] and exits 1. So `srsd -c FILE && cat PIDFILE` and systemd's
//!    `Type=forking` + `PIDFile=` see the pid file written when the command returns.
//!    Listeners are bound after that point: a bind error is in the log file.
//! 4. [`PidFile`] removes the file when the server exits normally.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, Write};
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use nix::fcntl::{Flock, FlockArg, OFlag};
use nix::unistd::{ForkResult, Pid};

use crate::config::Config;

/// The locked pid file; the lock lasts as long as this value (and the process).
pub struct PidFile {
    file: Flock<File>,
    path: PathBuf,
}

impl PidFile {
    /// Opens (creating it and its directory) and locks `path`. Fails with a clear message when
    /// another process holds the lock.
    pub fn lock(path: &Path) -> Result<PidFile, String> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let _ = std::fs::create_dir_all(dir);
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| format!("cannot open pid file {}: {e}", path.display()))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(file) => Ok(PidFile {
                file,
                path: path.to_path_buf(),
            }),
            Err((_, nix::errno::Errno::EWOULDBLOCK)) => {
                let other = std::fs::read_to_string(path).unwrap_or_default();
                let other = other.trim();
                Err(format!(
                    "another srsd (pid {}) holds the pid file {}: already running",
                    if other.is_empty() { "?" } else { other },
                    path.display()
                ))
            }
            Err((_, e)) => Err(format!("cannot lock pid file {}: {e}", path.display())),
        }
    }

    /// Replaces the file's content with this process's pid.
    pub fn write_pid(&mut self) -> io::Result<()> {
        let f: &mut File = &mut self.file;
        f.set_len(0)?;
        f.rewind()?;
        f.write_all(format!("{}\n", std::process::id()).as_bytes())?;
        f.sync_data()
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        // Removed while still locked, so a new instance cannot lose its file to us.
        let _ = std::fs::remove_file(&self.path);
    }
}

/// What `main` holds between loading the config and running the server.
pub struct Startup {
    pid: Option<PidFile>,
    /// Write end of the pipe the original foreground process waits on (daemon only).
    parent: Option<File>,
}

impl Startup {
    /// Locks the pid file (when `config.pid` is not empty), then daemonizes when
    /// `config.daemon`. In daemon mode only the server process returns from here.
    pub fn begin(config: &Config) -> Result<Startup, String> {
        let pid = if config.pid.is_empty() {
            None
        } else {
            Some(PidFile::lock(Path::new(&config.pid))?)
        };
        let parent = if config.daemon {
            Some(daemonize().map_err(|e| format!("cannot daemonize: {e}"))?)
        } else {
            None
        };
        Ok(Startup { pid, parent })
    }

    /// The server is set up: writes the pid and lets the foreground process exit 0.
    /// Returns the pid file guard, which removes the file when dropped.
    pub fn ready(mut self) -> Option<PidFile> {
        if let Some(p) = self.pid.as_mut() {
            if let Err(e) = p.write_pid() {
                ::log::warn!("cannot write pid file {}: {e}", p.path().display());
            }
        }
        if let Some(mut w) = self.parent.take() {
            let _ = w.write_all(b"ok");
        }
        self.pid.take()
    }

    /// Start-up failed: reports `message` on stderr, and through the foreground process when
    /// daemonized (whose stderr is the user's terminal). Returns exit status 1.
    pub fn fail(mut self, message: &str) -> ExitCode {
        eprintln!("srsd: {message}");
        if let Some(mut w) = self.parent.take() {
            let _ = w.write_all(message.as_bytes());
        }
        ExitCode::FAILURE
    }
}

#[allow(unsafe_code)]
fn fork() -> io::Result<ForkResult> {
    // SAFETY: only called from `Startup::begin`, which `main` runs before it creates any thread
    // (the tokio runtime is built afterwards), so the child gets a consistent copy of the
    // process and may run arbitrary code.
    unsafe { nix::unistd::fork() }.map_err(io::Error::from)
}

/// Double fork. Returns, in the server (grandchild), the write end of the readiness pipe; the
/// original process and the intermediate child never return.
fn daemonize() -> io::Result<File> {
    let (r, w) = nix::unistd::pipe2(OFlag::O_CLOEXEC)?;
    let (r, w) = (File::from(r), File::from(w));
    if let ForkResult::Parent { child } = fork()? {
        drop(w);
        foreground_wait(child, r);
    }
    drop(r);
    let mut w = w;
    let detach = || -> io::Result<()> {
        nix::unistd::setsid()?;
        if let ForkResult::Parent { .. } = fork()? {
            // The session leader leaves; the grandchild can never reacquire a terminal.
            std::process::exit(0);
        }
        let null = OpenOptions::new()
            .read(true)
            .write(true)
            .open("/dev/null")?;
        for fd in 0..3 {
            nix::unistd::dup2(null.as_raw_fd(), fd)?;
        }
        Ok(())
    };
    if let Err(e) = detach() {
        let _ = write!(w, "cannot daemonize: {e}");
        std::process::exit(1);
    }
    Ok(w)
}

/// The original process: reap the intermediate child, then wait for the server's word.
fn foreground_wait(child: Pid, mut r: File) -> ! {
    let _ = nix::sys::wait::waitpid(child, None);
    let mut msg = String::new();
    let _ = r.read_to_string(&mut msg);
    if msg == "ok" {
        std::process::exit(0);
    }
    if msg.is_empty() {
        msg = "the daemon exited during start-up".into();
    }
    eprintln!("srsd: {msg}");
    std::process::exit(1);
}

/// Sends `signal` to the process whose pid `pid_file` holds (`srsd -s`).
pub fn signal_pid_file(pid_file: &str, signal: nix::sys::signal::Signal) -> Result<u32, String> {
    let text = std::fs::read_to_string(pid_file)
        .map_err(|e| format!("cannot read pid file {pid_file}: {e} (is srsd running?)"))?;
    let pid = match text.trim().parse::<i32>() {
        Ok(p) if p > 1 => p,
        _ => return Err(format!("pid file {pid_file} holds no pid")),
    };
    nix::sys::signal::kill(Pid::from_raw(pid), signal)
        .map_err(|e| format!("cannot signal pid {pid}: {e} (stale pid file {pid_file}?)"))?;
    Ok(pid as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_lock_is_refused_with_the_holders_pid() {
        let dir = std::env::temp_dir().join(format!("srsd-daemon-{}", std::process::id()));
        let path = dir.join("sub").join("srsd.pid");
        let mut first = PidFile::lock(&path).expect("first lock");
        first.write_pid().expect("write pid");
        let pid = std::process::id().to_string();
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), pid);
        let err = PidFile::lock(&path).err().expect("second lock refused");
        assert!(err.contains(&format!("pid {pid}")), "{err}");
        assert!(err.contains("already running"), "{err}");
        // The refused attempt left the holder's pid in place.
        assert_eq!(std::fs::read_to_string(&path).unwrap().trim(), pid);
        drop(first);
        assert!(!path.exists(), "removed on drop");
        let again = PidFile::lock(&path).expect("free again");
        drop(again);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
