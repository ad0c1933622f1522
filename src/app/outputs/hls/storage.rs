//! Where a segmenter puts what it writes: files under `hls.path` (`storage = "disk"`), or
//! the server's memory (`storage = "memory"`), served by the HTTP server at the URLs the
//! files would have had.
//!
//! Both keep a reader from ever seeing half a file: on disk a segment is written as
//! `NAME.ts.tmp` and renamed when closed, a playlist written whole under a temporary name
//! and renamed; in memory a segment is inserted only once closed and a playlist replaced
//! whole. Memory is keyed by the path the file would have had (`hls.path` joined with the
//! rendered template), so two servers in one process (tests) or two vhosts never mix, and
//! the HTTP server finds an entry by joining `http_server.dir` with the request path.

use bytes::Bytes;
use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// Bytes the memory store may hold for the whole server: the live windows of every stream
/// (a 1 Mbit/s stream with a 12 s window holds ~2 MB; retired segments stay a window
/// longer). A write past it fails like a full disk, and `hls.on_error` decides.
pub const MEMORY_CAP: usize = 256 * 1024 * 1024;

/// HLS files kept in memory: path → contents, with their total size bounded by a cap.
#[derive(Debug)]
pub struct MemoryFiles {
    inner: Mutex<Files>,
    cap: usize,
}

#[derive(Debug, Default)]
struct Files {
    map: HashMap<PathBuf, Bytes>,
    bytes: usize,
}

impl Default for MemoryFiles {
    fn default() -> Self {
        MemoryFiles::with_cap(MEMORY_CAP)
    }
}

impl MemoryFiles {
    /// A store holding at most `cap` bytes.
    pub fn with_cap(cap: usize) -> Self {
        MemoryFiles {
            inner: Mutex::new(Files::default()),
            cap,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Files> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The contents stored at `path` (shared, not copied).
    pub fn get(&self, path: &Path) -> Option<Bytes> {
        self.lock().map.get(path).cloned()
    }

    /// Stores `data` at `path`, replacing what was there. Errors (`OutOfMemory`) when the
    /// store would exceed its cap; the old contents then stay.
    pub fn put(&self, path: &Path, data: Bytes) -> io::Result<()> {
        let mut f = self.lock();
        let old = f.map.get(path).map_or(0, Bytes::len);
        let after = f.bytes - old + data.len();
        if after > self.cap {
            return Err(io::Error::new(
                io::ErrorKind::OutOfMemory,
                format!(
                    "HLS memory store full: {} of {} bytes used, {} more asked for {}",
                    f.bytes,
                    self.cap,
                    data.len(),
                    path.display()
                ),
            ));
        }
        f.bytes = after;
        f.map.insert(path.to_path_buf(), data);
        Ok(())
    }

    /// Removes `path`, if stored.
    pub fn remove(&self, path: &Path) {
        let mut f = self.lock();
        if let Some(old) = f.map.remove(path) {
            f.bytes -= old.len();
        }
    }

    /// Total bytes stored.
    pub fn bytes(&self) -> usize {
        self.lock().bytes
    }

    /// Number of files stored.
    pub fn len(&self) -> usize {
        self.lock().map.len()
    }

    /// Whether nothing is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Where one segmenter writes.
#[derive(Debug, Clone, Default)]
pub enum Storage {
    /// Files, created with their directories.
    #[default]
    Disk,
    /// The server's memory store.
    Memory(Arc<MemoryFiles>),
}

impl Storage {
    /// Starts a segment that will be at `path` once closed.
    pub fn create(&self, path: &Path) -> io::Result<SegmentOut> {
        match self {
            Storage::Disk => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let tmp = path.with_extension("ts.tmp");
                let file = io::BufWriter::with_capacity(64 * 1024, File::create(&tmp)?);
                Ok(SegmentOut::File { file, tmp })
            }
            Storage::Memory(_) => Ok(SegmentOut::Memory(Vec::with_capacity(64 * 1024))),
        }
    }

    /// Makes the closed segment `out` visible at `path`.
    pub fn commit(&self, out: SegmentOut, path: &Path) -> io::Result<()> {
        match (self, out) {
            (_, SegmentOut::File { mut file, tmp }) => {
                // A segment that cannot be completed is not left behind as `.ts.tmp`.
                let done = file.flush().and_then(|()| {
                    drop(file);
                    std::fs::rename(&tmp, path)
                });
                if done.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                done
            }
            (Storage::Memory(m), SegmentOut::Memory(data)) => m.put(path, Bytes::from(data)),
            (Storage::Disk, SegmentOut::Memory(_)) => Ok(()),
        }
    }

    /// Throws away a segment that will not be listed.
    pub fn discard(&self, out: SegmentOut) {
        if let SegmentOut::File { file, tmp } = out {
            drop(file);
            let _ = std::fs::remove_file(tmp);
        }
    }

    /// Replaces the whole of `path` with `data` (a playlist), never visible half written.
    pub fn write_whole(&self, path: &Path, data: &[u8]) -> io::Result<()> {
        match self {
            Storage::Disk => {
                if let Some(dir) = path.parent() {
                    std::fs::create_dir_all(dir)?;
                }
                let tmp = path.with_extension("m3u8.tmp");
                let done = std::fs::write(&tmp, data).and_then(|()| std::fs::rename(&tmp, path));
                if done.is_err() {
                    let _ = std::fs::remove_file(&tmp);
                }
                done
            }
            Storage::Memory(m) => m.put(path, Bytes::copy_from_slice(data)),
        }
    }

    /// Deletes `path` (a segment that expired, a disposed playlist); missing is fine.
    pub fn remove(&self, path: &Path) {
        match self {
            Storage::Disk => {
                let _ = std::fs::remove_file(path);
            }
            Storage::Memory(m) => m.remove(path),
        }
    }
}

/// A segment being written.
#[derive(Debug)]
pub enum SegmentOut {
    /// `NAME.ts.tmp`, renamed to its name when closed.
    File {
        file: io::BufWriter<File>,
        tmp: PathBuf,
    },
    /// The bytes so far.
    Memory(Vec<u8>),
}

impl SegmentOut {
    /// Appends TS packets.
    pub fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            SegmentOut::File { file, .. } => file.write_all(data),
            SegmentOut::Memory(v) => {
                v.extend_from_slice(data);
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_memory_store_is_bounded_and_counts_replacements_once() {
        let m = MemoryFiles::with_cap(100);
        let a = Path::new("/x/a.ts");
        m.put(a, Bytes::from(vec![0; 60])).unwrap();
        m.put(a, Bytes::from(vec![0; 70])).unwrap();
        assert_eq!(m.bytes(), 70, "a replacement counts once");
        let b = Path::new("/x/b.ts");
        let e = m.put(b, Bytes::from(vec![0; 40])).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::OutOfMemory);
        assert!(m.get(b).is_none(), "nothing stored past the cap");
        m.remove(a);
        assert_eq!((m.bytes(), m.len()), (0, 0));
        m.put(b, Bytes::from(vec![0; 40])).unwrap();
        assert_eq!(m.get(b).map(|d| d.len()), Some(40));
    }

    #[test]
    fn memory_segments_appear_only_once_committed() {
        let m = Arc::new(MemoryFiles::default());
        let s = Storage::Memory(m.clone());
        let p = Path::new("/hls/live/s-0.ts");
        let mut out = s.create(p).unwrap();
        out.write_all(&[0x47; 188]).unwrap();
        assert!(m.get(p).is_none(), "not visible while written");
        s.commit(out, p).unwrap();
        assert_eq!(m.get(p).map(|d| d.len()), Some(188));
        s.write_whole(Path::new("/hls/live/s.m3u8"), b"#EXTM3U\n")
            .unwrap();
        s.remove(p);
        assert_eq!(m.len(), 1, "only the playlist is left");
    }
}
