//! The server log: SRS's line format, to the console or a file, with connection context ids.
//!
//! Every line is `[2026-11-23 19:29:53.123][trace][PID][CID] message` (CONTRACTS.md §7). CID is
//! the context id of the connection the current task serves (set with [`with_cid`]), the same
//! id the HTTP API shows as the client id and hooks send as `client_id`, so one grep follows a
//! client through logs, API and hooks. Lines logged outside a connection task print CID 0.
//!
//! Levels: srsd uses SRS's names. They map onto the `log` crate's macros as follows (SRS's
//! `trace` is the normal, always-on level, so it sits on `log::info!`):
//!
//! | macro            | printed as | config `level` |
//! |------------------|------------|----------------|
//! | `log::trace!`    | `verbose`  | `"verbose"`    |
//! | `log::debug!`    | `info`     | `"info"`       |
//! | `log::info!`     | `trace`    | `"trace"`      |
//! | `log::warn!`     | `warn`     | `"warn"`       |
//! | `log::error!`    | `error`    | `"error"`      |
//!
//! Time is UTC, computed from `SystemTime` without libc (local time would need the C library's
//! time zone database, which `#![deny(unsafe_code)]` and a static MIPS build rule out).
//!
//! Writes go through one mutex: a line is formatted first, then written in one `write_all`
//! (and flushed) while the lock is held, so lines never interleave and [`LogHandle::reopen`]
//! (SIGUSR1, logrotate) swaps the file between two lines without losing any.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use log::{Level, LevelFilter, Log, Metadata, Record};

use crate::config::{LogConfig, LogLevel, LogTank};

tokio::task_local! {
    /// The context id of the connection the current task serves; read with [`current_cid`].
    pub static CID: u64;
}

/// Run `f` with `cid` as its context id: every line it logs carries that CID.
pub fn with_cid<F: Future>(cid: u64, f: F) -> impl Future<Output = F::Output> {
    CID.scope(cid, f)
}

/// The current task's context id, 0 outside [`with_cid`].
pub fn current_cid() -> u64 {
    CID.try_with(|cid| *cid).unwrap_or(0)
}

/// Counter behind [`next_cid`]. `AtomicUsize`, not `AtomicU64`: 32-bit MIPS has no 64-bit
/// atomics; 2^32 connections before a wrap is plenty.
static NEXT_CID: AtomicUsize = AtomicUsize::new(1);

/// A fresh context id for a new connection: 1, 2, 3, ... (0 means "none" and is skipped on
/// wrap-around).
pub fn next_cid() -> u64 {
    loop {
        let cid = NEXT_CID.fetch_add(1, Ordering::Relaxed);
        if cid != 0 {
            return cid as u64;
        }
    }
}

/// Our level name for a `log` crate level (see the table in the module doc).
fn level_name(level: Level) -> &'static str {
    match level {
        Level::Trace => "verbose",
        Level::Debug => "info",
        Level::Info => "trace",
        Level::Warn => "warn",
        Level::Error => "error",
    }
}

/// The `log` crate filter that lets `level` and everything more severe through.
pub fn level_filter(level: LogLevel) -> LevelFilter {
    match level {
        LogLevel::Verbose => LevelFilter::Trace,
        LogLevel::Info => LevelFilter::Debug,
        LogLevel::Trace => LevelFilter::Info,
        LogLevel::Warn => LevelFilter::Warn,
        LogLevel::Error => LevelFilter::Error,
    }
}

/// Proleptic Gregorian (year, month 1..=12, day 1..=31) of `days` since 1970-01-01.
/// Howard Hinnant's `civil_from_days` (http://howardhinnant.github.io/date_algorithms.html):
/// count in 400-year eras of 146097 days, with years starting on March 1st so the leap day
/// is the last day of the year.
pub(crate) fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468; // days since 0000-03-01
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097); // day of era, [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // day of March-based year, [0, 365]
    let mp = (5 * doy + 2) / 153; // March-based month, [0, 11]
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month as u32, day as u32)
}

/// `2026-11-23 19:29:53.123` (UTC) for `unix_ms` milliseconds since the epoch.
struct Timestamp(u64);

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ms = self.0 % 1000;
        let secs = self.0 / 1000;
        let (year, month, day) = civil_from_days((secs / 86_400) as i64);
        let in_day = secs % 86_400;
        write!(
            f,
            "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{ms:03}",
            in_day / 3600,
            in_day % 3600 / 60,
            in_day % 60
        )
    }
}

/// Milliseconds since the Unix epoch (0 for a clock before 1970).
pub fn now_unix_ms() -> u64 {
    // A clock before 1970 prints the epoch rather than failing to log.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// One complete line, newline included.
fn format_line(
    unix_ms: u64,
    level: Level,
    pid: u32,
    cid: u64,
    args: &fmt::Arguments<'_>,
) -> String {
    format!(
        "[{}][{}][{pid}][{cid}] {args}\n",
        Timestamp(unix_ms),
        level_name(level)
    )
}

/// Where lines go.
enum Sink {
    /// stderr (stdout is left to tools' output).
    Console,
    /// Append to `path`; `file` is its open handle, swapped by reopen.
    File {
        path: PathBuf,
        file: File,
        rotation: super::log_rotate::Rotation,
    },
}

/// Opens `path` for appending, creating its directory (the rotation reopens with it).
pub(crate) fn open_append_path(path: &Path) -> io::Result<File> {
    open_append(path)
}

fn open_append(path: &Path) -> io::Result<File> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    OpenOptions::new().create(true).append(true).open(path)
}

impl Sink {
    fn open(cfg: &LogConfig) -> io::Result<Sink> {
        Ok(match cfg.tank {
            LogTank::Console => Sink::Console,
            LogTank::File => {
                let path = PathBuf::from(&cfg.file);
                let file = open_append(&path)?;
                let rotation = super::log_rotate::Rotation::new(cfg.max_size, cfg.keep, &file);
                Sink::File {
                    path,
                    file,
                    rotation,
                }
            }
        })
    }

    fn is(&self, cfg: &LogConfig) -> bool {
        match (self, cfg.tank) {
            (Sink::Console, LogTank::Console) => true,
            (Sink::File { path, .. }, LogTank::File) => path.as_path() == Path::new(&cfg.file),
            _ => false,
        }
    }

    fn write_line(&mut self, line: &str) {
        // Nowhere to report a failing log write; drop the line rather than the server.
        let _ = match self {
            Sink::Console => io::stderr().lock().write_all(line.as_bytes()),
            Sink::File {
                file,
                path,
                rotation,
            } => {
                let r = file.write_all(line.as_bytes()).and_then(|()| file.flush());
                if let Some(Ok(new)) = rotation.wrote(path, line.len()) {
                    *file = new;
                }
                r
            }
        };
    }
}

/// State shared by the installed logger and every [`LogHandle`].
struct Shared {
    /// A `LevelFilter as usize`: lines with `level as usize` above it are skipped.
    max_level: AtomicUsize,
    sink: Mutex<Sink>,
    pid: u32,
}

impl Shared {
    fn sink(&self) -> MutexGuard<'_, Sink> {
        // A panic while holding the lock cannot leave a Sink half-updated; keep logging.
        self.sink
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn enabled(&self, level: Level) -> bool {
        level as usize <= self.max_level.load(Ordering::Relaxed)
    }

    fn write(&self, level: Level, args: &fmt::Arguments<'_>) {
        if !self.enabled(level) {
            return;
        }
        let line = format_line(now_unix_ms(), level, self.pid, current_cid(), args);
        self.sink().write_line(&line);
    }
}

/// The `log::Log` installed by [`init`].
struct Logger(Arc<Shared>);

impl Log for Logger {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.0.enabled(metadata.level())
    }

    fn log(&self, record: &Record<'_>) {
        self.0.write(record.level(), record.args());
    }

    fn flush(&self) {
        if let Sink::Console = *self.0.sink() {
            let _ = io::stderr().flush();
        }
    }
}

/// Controls the installed logger: reopen the file, change level or destination on reload.
#[derive(Clone)]
pub struct LogHandle {
    shared: Arc<Shared>,
}

impl fmt::Debug for LogHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LogHandle").finish_non_exhaustive()
    }
}

/// The logger installed in this process, kept so a second [`init`] reconfigures it.
static INSTALLED: Mutex<Option<LogHandle>> = Mutex::new(None);

/// Install the server logger as configured by `cfg` and return its handle. Fails when the log
/// file cannot be opened (its directory is created when missing) or when another `log::Log`
/// is already installed. Calling it again reconfigures the installed logger.
pub fn init(cfg: &LogConfig) -> Result<LogHandle, io::Error> {
    let mut installed = INSTALLED.lock().unwrap_or_else(|p| p.into_inner());
    if let Some(handle) = installed.as_ref() {
        handle.apply(cfg)?;
        return Ok(handle.clone());
    }
    let handle = LogHandle::open(cfg)?;
    log::set_boxed_logger(Box::new(Logger(handle.shared.clone()))).map_err(|_| {
        io::Error::new(
            io::ErrorKind::AlreadyExists,
            "another logger is already installed",
        )
    })?;
    log::set_max_level(level_filter(cfg.level));
    *installed = Some(handle.clone());
    Ok(handle)
}

impl LogHandle {
    /// A logger's state, not installed (tests write through it directly).
    fn open(cfg: &LogConfig) -> io::Result<LogHandle> {
        Ok(LogHandle {
            shared: Arc::new(Shared {
                max_level: AtomicUsize::new(level_filter(cfg.level) as usize),
                sink: Mutex::new(Sink::open(cfg)?),
                pid: std::process::id(),
            }),
        })
    }

    /// Reopen the log file by its path (after logrotate renamed it). Lines logged meanwhile
    /// wait on the lock and land in the new file. No-op for the console. On failure the old
    /// file is kept.
    pub fn reopen(&self) -> io::Result<()> {
        let mut sink = self.shared.sink();
        if let Sink::File {
            path,
            file,
            rotation,
        } = &mut *sink
        {
            *file = open_append(path)?;
            rotation.reopened(file);
        }
        Ok(())
    }

    /// Change the level filter (reload).
    pub fn set_level(&self, level: LogLevel) {
        let filter = level_filter(level);
        self.shared
            .max_level
            .store(filter as usize, Ordering::Relaxed);
        log::set_max_level(filter);
    }

    /// Apply a (reloaded) log config: level, and tank/file when they changed. On failure to
    /// open the new file the old destination is kept.
    pub fn apply(&self, cfg: &LogConfig) -> io::Result<()> {
        self.set_level(cfg.level);
        let mut sink = self.shared.sink();
        if !sink.is(cfg) {
            *sink = Sink::open(cfg)?;
        } else if let Sink::File { rotation, .. } = &mut *sink {
            rotation.max_size = cfg.max_size;
            rotation.keep = cfg.keep.max(1);
        }
        Ok(())
    }
}

/// Counts events and says so at most once a second.
#[derive(Default)]
pub struct RateLog {
    state: Mutex<(Option<tokio::time::Instant>, usize)>,
}

impl RateLog {
    /// Counts one event; returns the events to report when a line is due now (the first
    /// event, then at most one line a second with what came meanwhile).
    pub fn hit(&self, now: tokio::time::Instant) -> Option<usize> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        s.1 += 1;
        match s.0 {
            Some(last) if now < last + std::time::Duration::from_secs(1) => None,
            _ => {
                s.0 = Some(now);
                Some(std::mem::take(&mut s.1))
            }
        }
    }

    /// Events counted since the last line, when a line is due (for a periodic flush).
    pub fn flush(&self, now: tokio::time::Instant) -> Option<usize> {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.0 {
            Some(last) if s.1 > 0 && now >= last + std::time::Duration::from_secs(1) => {
                s.0 = Some(now);
                Some(std::mem::take(&mut s.1))
            }
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unique, empty directory under the system temp dir.
    fn temp_dir(name: &str) -> PathBuf {
        static SEQ: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "srsd-log-{name}-{}-{}",
            std::process::id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        dir
    }

    fn file_config(path: &Path, level: LogLevel) -> LogConfig {
        LogConfig {
            tank: LogTank::File,
            level,
            file: path.display().to_string(),
            ..LogConfig::default()
        }
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).expect("read log file")
    }

    #[test]
    fn formats_a_line_like_srs() {
        // 2026-11-23 19:29:53 UTC = 1795462193 s.
        let line = format_line(
            1_795_462_193_123,
            Level::Info,
            4242,
            7,
            &format_args!("hello {}", 1),
        );
        assert_eq!(line, "[2026-11-23 19:29:53.123][trace][4242][7] hello 1\n");
        let line = format_line(5, Level::Trace, 1, 0, &format_args!("x"));
        assert_eq!(line, "[1970-01-01 00:00:00.005][verbose][1][0] x\n");
    }

    #[test]
    fn maps_levels_to_srs_names_and_filters() {
        assert_eq!(level_name(Level::Trace), "verbose");
        assert_eq!(level_name(Level::Debug), "info");
        assert_eq!(level_name(Level::Info), "trace");
        assert_eq!(level_name(Level::Warn), "warn");
        assert_eq!(level_name(Level::Error), "error");
        assert_eq!(level_filter(LogLevel::Verbose), LevelFilter::Trace);
        assert_eq!(level_filter(LogLevel::Info), LevelFilter::Debug);
        assert_eq!(level_filter(LogLevel::Trace), LevelFilter::Info);
        assert_eq!(level_filter(LogLevel::Warn), LevelFilter::Warn);
        assert_eq!(level_filter(LogLevel::Error), LevelFilter::Error);
    }

    #[test]
    fn converts_days_to_civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(civil_from_days(951_782_400 / 86_400), (2000, 2, 29));
        assert_eq!(civil_from_days(951_782_400 / 86_400 + 1), (2000, 3, 1));
        assert_eq!(civil_from_days(4_102_444_799 / 86_400), (2099, 12, 31));
        // 1900 is not a leap year, 2000 is.
        assert_eq!(civil_from_days(-25_508), (1900, 3, 1));
        assert_eq!(civil_from_days(-25_509), (1900, 2, 28));
    }

    #[test]
    fn formats_known_timestamps() {
        assert_eq!(Timestamp(0).to_string(), "1970-01-01 00:00:00.000");
        assert_eq!(
            Timestamp(951_782_400_000).to_string(),
            "2000-02-29 00:00:00.000"
        );
        assert_eq!(
            Timestamp(1_798_000_000_000).to_string(),
            "2026-12-23 04:26:40.000"
        );
        assert_eq!(
            Timestamp(4_102_444_799_999).to_string(),
            "2099-12-31 23:59:59.999"
        );
    }

    #[test]
    fn next_cid_is_unique_and_nonzero() {
        let a = next_cid();
        let b = next_cid();
        assert!(a != 0 && b != 0 && a != b);
    }

    #[tokio::test]
    async fn cid_is_scoped_to_the_task() {
        assert_eq!(current_cid(), 0);
        let inner = with_cid(42, async { current_cid() }).await;
        assert_eq!(inner, 42);
        assert_eq!(current_cid(), 0);
    }

    #[tokio::test]
    async fn file_lines_carry_cid_and_respect_the_level() {
        let dir = temp_dir("level");
        let path = dir.join("srsd.log");
        let handle = LogHandle::open(&file_config(&path, LogLevel::Trace)).expect("open");
        let shared = handle.shared.clone();
        with_cid(9, async {
            shared.write(Level::Info, &format_args!("kept"))
        })
        .await;
        handle.shared.write(Level::Debug, &format_args!("filtered"));
        handle.set_level(LogLevel::Info);
        handle.shared.write(Level::Debug, &format_args!("now kept"));
        let text = read(&path);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        let pid = std::process::id();
        assert!(
            lines[0].ends_with(&format!("][trace][{pid}][9] kept")),
            "{text}"
        );
        assert!(
            lines[1].ends_with(&format!("][info][{pid}][0] now kept")),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn reopen_after_rename_writes_to_the_new_file() {
        let dir = temp_dir("reopen");
        let path = dir.join("srsd.log");
        let rotated = dir.join("srsd.log.1");
        let handle = LogHandle::open(&file_config(&path, LogLevel::Trace)).expect("open");
        handle.shared.write(Level::Info, &format_args!("one"));
        std::fs::rename(&path, &rotated).expect("rename");
        // Until reopen, lines follow the open handle into the renamed file.
        handle.shared.write(Level::Info, &format_args!("two"));
        handle.reopen().expect("reopen");
        handle.shared.write(Level::Info, &format_args!("three"));
        let old = read(&rotated);
        let new = read(&path);
        assert_eq!(old.lines().count(), 2, "{old}");
        assert!(old.contains("] one\n") && old.contains("] two\n"), "{old}");
        assert_eq!(new.lines().count(), 1, "{new}");
        assert!(new.ends_with("] three\n"), "{new}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn apply_switches_the_file_and_creates_its_directory() {
        let dir = temp_dir("apply");
        let first = dir.join("a.log");
        let second = dir.join("sub").join("b.log");
        let handle = LogHandle::open(&file_config(&first, LogLevel::Trace)).expect("open");
        handle.shared.write(Level::Info, &format_args!("first"));
        handle
            .apply(&file_config(&second, LogLevel::Warn))
            .expect("apply");
        handle.shared.write(Level::Info, &format_args!("filtered"));
        handle.shared.write(Level::Warn, &format_args!("second"));
        assert!(read(&first).ends_with("] first\n"));
        let b = read(&second);
        assert_eq!(b.lines().count(), 1, "{b}");
        assert!(b.contains("[warn]") && b.ends_with("] second\n"), "{b}");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
