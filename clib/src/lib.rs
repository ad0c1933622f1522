//! `libsrsd_rtmp`: a C ABI over srsd's async RTMP client (`srsd::client`), the successor of
//! SRS's srs-librtmp. The contract for C callers is in `include/srsd_rtmp.h`; this file keeps
//! the Rust side of it.
//!
//! Each handle owns its own current-thread tokio runtime, its client and its muxer state; the
//! library has no global state, so handles on different threads never meet. Every call blocks
//! the calling thread on the handle's runtime, bounded by a timeout. No Rust panic crosses the
//! ABI: calls that could panic are wrapped in `catch_unwind` (in release builds panics abort,
//! and nothing here panics on peer input).
#![allow(clippy::missing_safety_doc)]

pub mod mux;

use bytes::Bytes;
use srsd::client::{ClientError, MediaKind, RtmpClient, RtmpUrl};
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

/// Success.
pub const OK: c_int = 0;
/// A NULL or invalid argument (bad tag type, empty buffer).
pub const ERR_ARG: c_int = -1;
/// The URL is not `rtmp://host[:port]/app/stream`.
pub const ERR_URL: c_int = -2;
/// A socket error (connection refused, reset).
pub const ERR_IO: c_int = -3;
/// The step did not finish within its timeout.
pub const ERR_TIMEOUT: c_int = -4;
/// The RTMP handshake failed.
pub const ERR_HANDSHAKE: c_int = -5;
/// The server broke the RTMP protocol.
pub const ERR_PROTOCOL: c_int = -6;
/// The server refused connect, publish or play.
pub const ERR_REJECTED: c_int = -7;
/// The server closed the connection (end of a played stream).
pub const ERR_CLOSED: c_int = -8;
/// A call out of order (write before publish, read before play, connect twice).
pub const ERR_STATE: c_int = -9;
/// Raw media that cannot be packed (no start code, frame before SPS/PPS, bad ADTS).
pub const ERR_MEDIA: c_int = -10;
/// The handle's runtime could not be created, or an internal error.
pub const ERR_INTERNAL: c_int = -11;

/// Default bound of a write or read when the caller set none (ms).
const DEFAULT_IO_TIMEOUT: Duration = Duration::from_secs(30);

/// FLV tag types accepted by `srsd_rtmp_write_tag`.
const TAG_AUDIO: c_int = 8;
const TAG_VIDEO: c_int = 9;
const TAG_SCRIPT: c_int = 18;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Created,
    Connected,
    Publishing,
    Playing,
}

/// One RTMP connection for C: `srsd_rtmp_t`.
pub struct Handle {
    rt: tokio::runtime::Runtime,
    url: RtmpUrl,
    client: Option<RtmpClient>,
    state: State,
    io_timeout: Duration,
    last_error: CString,
    h264: mux::H264,
    hevc: mux::Hevc,
    aac: mux::Aac,
}

fn code_of(e: &ClientError) -> c_int {
    match e {
        ClientError::Url(_) => ERR_URL,
        ClientError::Io(_) => ERR_IO,
        ClientError::Handshake(_) => ERR_HANDSHAKE,
        ClientError::Session(_) | ClientError::Flv(_) => ERR_PROTOCOL,
        ClientError::Rejected { .. } => ERR_REJECTED,
        ClientError::Timeout(_) => ERR_TIMEOUT,
        ClientError::Closed => ERR_CLOSED,
    }
}

fn timeout_of(ms: c_int, fallback: Duration) -> Duration {
    if ms > 0 {
        Duration::from_millis(ms as u64)
    } else {
        fallback
    }
}

impl Handle {
    fn fail(&mut self, code: c_int, msg: impl std::fmt::Display) -> c_int {
        let text = msg.to_string().replace('\0', " ");
        self.last_error = CString::new(text).unwrap_or_default();
        code
    }

    fn client_error(&mut self, e: ClientError) -> c_int {
        let code = code_of(&e);
        if matches!(code, ERR_IO | ERR_PROTOCOL | ERR_CLOSED | ERR_HANDSHAKE) {
            // The connection is unusable; the handle can only be destroyed.
            self.client = None;
        }
        self.fail(code, e)
    }

    fn connect(&mut self, timeout: Duration) -> c_int {
        if self.state != State::Created {
            return self.fail(ERR_STATE, "already connected");
        }
        let url = self.url.clone();
        match self.rt.block_on(RtmpClient::connect(&url, timeout)) {
            Ok(c) => {
                self.client = Some(c);
                self.state = State::Connected;
                OK
            }
            Err(e) => self.client_error(e),
        }
    }

    fn start(&mut self, publish: bool, timeout: Duration) -> c_int {
        if self.state != State::Connected {
            return self.fail(ERR_STATE, "publish/play need a connected handle");
        }
        let stream = self.url.stream.clone();
        let Some(client) = self.client.as_mut() else {
            return self.fail(ERR_STATE, "the connection is gone");
        };
        let r = if publish {
            self.rt.block_on(client.publish(&stream, timeout))
        } else {
            self.rt.block_on(client.play(&stream, timeout))
        };
        match r {
            Ok(()) => {
                self.state = if publish {
                    State::Publishing
                } else {
                    State::Playing
                };
                OK
            }
            Err(e) => self.client_error(e),
        }
    }

    fn send(&mut self, kind: MediaKind, timestamp: u32, payload: Bytes) -> c_int {
        if self.state != State::Publishing {
            return self.fail(ERR_STATE, "write needs a publishing handle");
        }
        let Some(client) = self.client.as_mut() else {
            return self.fail(ERR_STATE, "the connection is gone");
        };
        let limit = self.io_timeout;
        let r = self.rt.block_on(async {
            tokio::time::timeout(limit, client.send(kind, timestamp, payload))
                .await
                .unwrap_or(Err(ClientError::Timeout("write")))
        });
        match r {
            Ok(()) => OK,
            Err(e) => {
                // A write cut by its timeout may have left half a chunk on the wire: the
                // connection cannot be used any more.
                if matches!(e, ClientError::Timeout(_)) {
                    self.client = None;
                }
                self.client_error(e)
            }
        }
    }

    /// Sends what an H.264 or HEVC packer made of one access unit (all at `dts_ms`), or
    /// fails the handle with ERR_MEDIA.
    fn send_video(
        &mut self,
        packed: Result<Vec<mux::Packed>, mux::MuxError>,
        dts_ms: u32,
    ) -> c_int {
        match packed {
            Ok(p) => self.send_packed(
                p.into_iter().map(|p| (dts_ms, p)).collect(),
                MediaKind::Video,
            ),
            Err(e) => self.fail(ERR_MEDIA, e),
        }
    }

    fn send_packed(&mut self, packed: Vec<(u32, mux::Packed)>, kind: MediaKind) -> c_int {
        for (ts, p) in packed {
            let r = self.send(kind, ts, p.body);
            if r != OK {
                return r;
            }
        }
        OK
    }

    fn read(&mut self, timeout: Duration) -> Result<(MediaKind, u32, Bytes), c_int> {
        if self.state != State::Playing {
            return Err(self.fail(ERR_STATE, "read needs a playing handle"));
        }
        let Some(client) = self.client.as_mut() else {
            return Err(self.fail(ERR_STATE, "the connection is gone"));
        };
        let r = self.rt.block_on(async {
            tokio::time::timeout(timeout, client.recv())
                .await
                .unwrap_or(Err(ClientError::Timeout("a tag")))
        });
        r.map_err(|e| self.client_error(e))
    }
}

/// Runs `f` on the handle, turning a NULL handle into `ERR_ARG` and a panic into
/// `ERR_INTERNAL`.
unsafe fn with(h: *mut Handle, f: impl FnOnce(&mut Handle) -> c_int) -> c_int {
    let Some(h) = h.as_mut() else {
        return ERR_ARG;
    };
    catch_unwind(AssertUnwindSafe(|| f(h))).unwrap_or(ERR_INTERNAL)
}

/// # Safety
/// `p`, when not NULL, points to `n` readable bytes.
unsafe fn bytes_of<'a>(p: *const u8, n: usize) -> Option<&'a [u8]> {
    if p.is_null() || n == 0 {
        None
    } else {
        Some(std::slice::from_raw_parts(p, n))
    }
}

#[no_mangle]
pub unsafe extern "C" fn srsd_rtmp_create(url: *const c_char) -> *mut Handle {
    if url.is_null() {
        return std::ptr::null_mut();
    }
    let r = catch_unwind(|| {
        let url = CStr::from_ptr(url).to_str().ok()?;
        let url = RtmpUrl::parse(url).ok()?;
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .ok()?;
        Some(Box::into_raw(Box::new(Handle {
            rt,
            url,
            client: None,
            state: State::Created,
            io_timeout: DEFAULT_IO_TIMEOUT,
            last_error: CString::default(),
            h264: mux::H264::default(),
            hevc: mux::Hevc::default(),
            aac: mux::Aac::default(),
        })))
    });
    r.ok().flatten().unwrap_or(std::ptr::null_mut())
}

#[no_mangle]
pub unsafe extern "C" fn srsd_rtmp_destroy(h: *mut Handle) {
    if h.is_null() {
        return;
    }
    let h = Box::from_raw(h);
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let Handle { rt, client, .. } = *h;
        if let Some(c) = client {
            rt.block_on(c.close());
        }
        drop(rt);
    }));
}

#[no_mangle]
pub unsafe extern "C" fn srsd_rtmp_set_timeout(h: *mut Handle, io_timeout_ms: c_int) -> c_int {
    with(h, |h| {
        h.io_timeout = timeout_of(io_timeout_ms, DEFAULT_IO_TIMEOUT);
        OK
    })
}

#[no_mangle]
pub unsafe extern "C" fn srsd_rtmp_connect(h: *mut Handle, timeout_ms: c_int) -> c_int {
    with(h, |h| {
        let t = timeout_of(timeout_ms, DEFAULT_IO_TIMEOUT);
        h.connect(t)
    })
}

#[no_mangle]
pub unsafe extern "C" fn srsd_rtmp_publish(h: *mut Handle, timeout_ms: c_int) -> c_int {
    with(h, |h| {
        let t = timeout_of(timeout_ms, DEFAULT_IO_TIMEOUT);
        h.start(true, t)
    })
}

#[no_mangle]
pub unsafe extern "C" fn srsd_rtmp_play(h: *mut Handle, timeout_ms: c_int) -> c_int {
    with(h, |h| {
        let t = timeout_of(timeout_ms, DEFAULT_IO_TIMEOUT);
        h.start(false, t)
    })
}

#[no_mangle]
pub unsafe extern "C" fn srsd_rtmp_write_tag(
    h: *mut Handle,
    tag_type: c_int,
    timestamp_ms: u32,
    data: *const u8,
    size: usize,
) -> c_int {
    let Some(body) = bytes_of(data, size) else {
        return ERR_ARG;
    };
    let kind = match tag_type {
        TAG_AUDIO => MediaKind::Audio,
        TAG_VIDEO => MediaKind::Video,
        TAG_SCRIPT => MediaKind::Data,
        _ => return ERR_ARG,
    };
    if size > srsd::protocol::flv::MAX_TAG_DATA_SIZE {
        return ERR_ARG;
    }
    with(h, |h| {
        h.send(kind, timestamp_ms, Bytes::copy_from_slice(body))
    })
}

#[no_mangle]
pub unsafe extern "C" fn srsd_rtmp_write_h264(
    h: *mut Handle,
    dts_ms: u32,
    pts_ms: u32,
    data: *const u8,
    size: usize,
) -> c_int {
    let Some(au) = bytes_of(data, size) else {
        return ERR_ARG;
    };
    with(h, |h| {
        let packed = h.h264.pack(au, dts_ms, pts_ms);
        h.send_video(packed, dts_ms)
    })
}

#[no_mangle]
pub unsafe extern "C" fn srsd_rtmp_write_hevc(
    h: *mut Handle,
    dts_ms: u32,
    pts_ms: u32,
    data: *const u8,
    size: usize,
) -> c_int {
    let Some(au) = bytes_of(data, size) else {
        return ERR_ARG;
    };
    with(h, |h| {
        let packed = h.hevc.pack(au, dts_ms, pts_ms);
        h.send_video(packed, dts_ms)
    })
}

#[no_mangle]
pub unsafe extern "C" fn srsd_rtmp_write_aac(
    h: *mut Handle,
    timestamp_ms: u32,
    data: *const u8,
    size: usize,
) -> c_int {
    let Some(adts) = bytes_of(data, size) else {
        return ERR_ARG;
    };
    with(h, |h| match h.aac.pack(adts, timestamp_ms) {
        Ok(p) => h.send_packed(p, MediaKind::Audio),
        Err(e) => h.fail(ERR_MEDIA, e),
    })
}

extern "C" {
    fn malloc(size: usize) -> *mut c_void;
    fn free(p: *mut c_void);
}

#[no_mangle]
pub unsafe extern "C" fn srsd_rtmp_read_tag(
    h: *mut Handle,
    tag_type: *mut c_int,
    timestamp_ms: *mut u32,
    data: *mut *mut u8,
    size: *mut usize,
    timeout_ms: c_int,
) -> c_int {
    if tag_type.is_null() || timestamp_ms.is_null() || data.is_null() || size.is_null() {
        return ERR_ARG;
    }
    *data = std::ptr::null_mut();
    *size = 0;
    with(h, |h| {
        let t = timeout_of(timeout_ms, h.io_timeout);
        let (kind, ts, payload) = match h.read(t) {
            Ok(x) => x,
            Err(code) => return code,
        };
        // malloc(0) may return NULL: keep at least one byte.
        let p = malloc(payload.len().max(1)) as *mut u8;
        if p.is_null() {
            return h.fail(ERR_INTERNAL, "out of memory");
        }
        std::ptr::copy_nonoverlapping(payload.as_ptr(), p, payload.len());
        *tag_type = match kind {
            MediaKind::Audio => TAG_AUDIO,
            MediaKind::Video => TAG_VIDEO,
            MediaKind::Data => TAG_SCRIPT,
        };
        *timestamp_ms = ts;
        *data = p;
        *size = payload.len();
        OK
    })
}

#[no_mangle]
pub unsafe extern "C" fn srsd_rtmp_free(p: *mut c_void) {
    if !p.is_null() {
        free(p);
    }
}

#[no_mangle]
pub extern "C" fn srsd_rtmp_strerror(code: c_int) -> *const c_char {
    let s: &'static CStr = match code {
        OK => c"success",
        ERR_ARG => c"invalid argument",
        ERR_URL => c"bad RTMP URL",
        ERR_IO => c"socket error",
        ERR_TIMEOUT => c"timed out",
        ERR_HANDSHAKE => c"RTMP handshake failed",
        ERR_PROTOCOL => c"RTMP protocol error",
        ERR_REJECTED => c"rejected by the server",
        ERR_CLOSED => c"connection closed by the server",
        ERR_STATE => c"call out of order",
        ERR_MEDIA => c"bad media data",
        ERR_INTERNAL => c"internal error",
        _ => c"unknown error",
    };
    s.as_ptr()
}

#[no_mangle]
pub unsafe extern "C" fn srsd_rtmp_last_error(h: *const Handle) -> *const c_char {
    match h.as_ref() {
        Some(h) => h.last_error.as_ptr(),
        None => c"".as_ptr(),
    }
}
