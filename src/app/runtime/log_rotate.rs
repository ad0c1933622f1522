//! Size-capped rotation of the log file, done by srsd itself where no logrotate runs (Android,
//! small routers): when the file reaches `[log] max_size` bytes it becomes `FILE.1`, `FILE.1`
//! becomes `FILE.2` and so on up to `FILE.<keep>` (the oldest is removed), and a new `FILE` is
//! opened. Runs under the log mutex (src/app/log.rs), between two lines: none is split or lost.

use std::fs::File;
use std::io;
use std::path::{Path, PathBuf};

/// The rotation state of the open log file.
#[derive(Debug)]
pub struct Rotation {
    /// Bytes at which the file is rotated; 0 = never.
    pub max_size: u64,
    /// Rotated files kept.
    pub keep: u32,
    /// Bytes in the open file (its length when opened, plus what was written since).
    written: u64,
}

impl Rotation {
    /// Rotation for `file`, already holding its current length.
    pub fn new(max_size: u64, keep: u32, file: &File) -> Rotation {
        Rotation {
            max_size,
            keep: keep.max(1),
            written: file.metadata().map(|m| m.len()).unwrap_or(0),
        }
    }

    /// Counts `n` bytes written to the file at `path`; when the cap is reached, rotates and
    /// returns the new file to write to. A failed rotation is retried after the next line.
    pub fn wrote(&mut self, path: &Path, n: usize) -> Option<io::Result<File>> {
        self.written = self.written.saturating_add(n as u64);
        if self.max_size == 0 || self.written < self.max_size {
            return None;
        }
        Some(rotate(path, self.keep).and_then(|()| {
            let f = super::log::open_append_path(path)?;
            self.written = 0;
            Ok(f)
        }))
    }

    /// The file was reopened by path (SIGUSR1 after an outside rotation): count from its size.
    pub fn reopened(&mut self, file: &File) {
        self.written = file.metadata().map(|m| m.len()).unwrap_or(0);
    }
}

fn numbered(path: &Path, n: u32) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(format!(".{n}"));
    PathBuf::from(s)
}

/// Shifts `path.1 .. path.<keep-1>` up by one (dropping `path.<keep>`) and renames `path` to
/// `path.1`.
pub fn rotate(path: &Path, keep: u32) -> io::Result<()> {
    let keep = keep.max(1);
    match std::fs::remove_file(numbered(path, keep)) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
        _ => {}
    }
    for i in (1..keep).rev() {
        match std::fs::rename(numbered(path, i), numbered(path, i + 1)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
            _ => {}
        }
    }
    std::fs::rename(path, numbered(path, 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_keeps_the_newest_files_and_loses_no_line() {
        let dir = std::env::temp_dir().join(format!("srsd-rotate-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("srsd.log");
        let mut file = super::super::log::open_append_path(&path).unwrap();
        let mut r = Rotation::new(100, 2, &file);
        for i in 0..40 {
            use std::io::Write;
            let line = format!("line {i:02} ...........\n"); // 20 bytes
            file.write_all(line.as_bytes()).unwrap();
            if let Some(f) = r.wrote(&path, line.len()) {
                file = f.unwrap();
            }
        }
        let read = |p: &Path| std::fs::read_to_string(p).unwrap_or_default();
        // 40 lines of 20 bytes, 5 a file: srsd.log is empty (just rotated), .1 and .2 hold
        // the last ten lines, and nothing older is kept.
        assert_eq!(read(&path), "");
        let one = read(&numbered(&path, 1));
        let two = read(&numbered(&path, 2));
        assert!(
            one.starts_with("line 35") && one.ends_with("line 39 ...........\n"),
            "{one}"
        );
        assert!(
            two.starts_with("line 30") && two.contains("line 34"),
            "{two}"
        );
        assert!(!numbered(&path, 3).exists());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
