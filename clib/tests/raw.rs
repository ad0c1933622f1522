//! The C API's raw writers end to end: an H.264 Annex B elementary stream and AAC ADTS frames
//! (made by ffmpeg) are published through `srsd_rtmp_write_h264`/`srsd_rtmp_write_aac` on one
//! thread while another thread's handle plays them back with `srsd_rtmp_read_tag` into an FLV
//! file, which ffprobe reads. A srsd server runs in the test on 127.0.0.1:0. Skipped loudly
//! without ffmpeg (failed when SRSD_REQUIRE_INTEROP=1).

use srsd_rtmp::*;
use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn have_ffmpeg() -> bool {
    let ok = Command::new("ffmpeg").arg("-version").output().is_ok()
        && Command::new("ffprobe").arg("-version").output().is_ok();
    if !ok {
        if std::env::var("SRSD_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
            panic!("ffmpeg is required (SRSD_REQUIRE_INTEROP=1)");
        }
        eprintln!("\n*** SKIPPED: ffmpeg/ffprobe not installed ***\n");
    }
    ok
}

fn ffmpeg(args: &[&str], out: &Path) {
    let ok = Command::new("ffmpeg")
        .args(["-hide_banner", "-loglevel", "error", "-y"])
        .args(args)
        .arg(out)
        .status()
        .expect("run ffmpeg")
        .success();
    assert!(ok, "ffmpeg {args:?}");
}

/// Access units of an Annex B stream written with an AUD before each (x264/x265 `aud=1`).
fn access_units(data: &[u8], codec: Codec) -> Vec<&[u8]> {
    let is_aud = |b: u8| match codec {
        Codec::H264 => b & 0x1f == 9,
        Codec::Hevc => (b >> 1) & 0x3f == 35,
    };
    let mut starts: Vec<usize> = data
        .windows(5)
        .enumerate()
        .filter(|(_, w)| w[..4] == [0, 0, 0, 1] && is_aud(w[4]))
        .map(|(i, _)| i)
        .collect();
    starts.push(data.len());
    starts.windows(2).map(|w| &data[w[0]..w[1]]).collect()
}

/// ADTS frames, by their length fields.
fn adts_frames(mut data: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    while data.len() >= 7 {
        let len =
            (((data[3] & 3) as usize) << 11) | ((data[4] as usize) << 3) | (data[5] as usize >> 5);
        if len < 7 || len > data.len() {
            break;
        }
        out.push(&data[..len]);
        data = &data[len..];
    }
    out
}

struct Handle(*mut srsd_rtmp::Handle);
// A handle may move between threads (one user at a time), as the header says.
unsafe impl Send for Handle {}

fn open(url: &str) -> Handle {
    let c = CString::new(url).unwrap();
    let h = unsafe { srsd_rtmp_create(c.as_ptr()) };
    assert!(!h.is_null());
    assert_eq!(unsafe { srsd_rtmp_connect(h, 5000) }, 0);
    Handle(h)
}

#[derive(Clone, Copy, PartialEq)]
enum Codec {
    H264,
    Hevc,
}

/// Publishes 3 s of `codec` + AAC through the raw writers while another thread plays them
/// back; the played FLV file.
fn publish_and_play_raw(codec: Codec, name: &str) -> PathBuf {
    let dir: PathBuf =
        std::env::temp_dir().join(format!("srsd-clib-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let (h264, aac) = (dir.join("v.es"), dir.join("a.aac"));
    let source = [
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=320x240:rate=25",
        "-t",
        "3",
    ];
    let video_args: Vec<&str> = match codec {
        Codec::H264 => vec![
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-bf",
            "0",
            "-g",
            "25",
            "-x264-params",
            "aud=1",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "h264",
        ],
        Codec::Hevc => vec![
            "-c:v",
            "libx265",
            "-preset",
            "ultrafast",
            "-g",
            "25",
            "-x265-params",
            "aud=1:bframes=0:log-level=error",
            "-pix_fmt",
            "yuv420p",
            "-f",
            "hevc",
        ],
    };
    ffmpeg(&[&source[..], &video_args[..]].concat(), &h264);
    ffmpeg(
        &[
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=44100",
            "-t",
            "3",
            "-c:a",
            "aac",
            "-f",
            "adts",
        ],
        &aac,
    );
    let video = std::fs::read(&h264).unwrap();
    let audio = std::fs::read(&aac).unwrap();

    // The server, on its own runtime thread.
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let text = format!(
        "listen = [\"127.0.0.1:0\"]\npid = \"{}/srsd.pid\"\n[http_server]\nenabled = false\n\
         [http_api]\nenabled = false\n[log]\nlevel = \"warn\"\n\
         [vhost.\"__defaultVhost__\".hls]\nenabled = false\n",
        dir.display()
    );
    let config = srsd::config::Config::parse(&text, "raw.toml").unwrap();
    let server = rt.block_on(srsd::app::Server::bind(config)).unwrap();
    let port = server.rtmp_addrs()[0].port();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    rt.spawn(server.run(async move {
        let _ = stopped.await;
    }));
    let url = format!("rtmp://127.0.0.1:{port}/live/raw");

    let player = open(&url);
    assert_eq!(unsafe { srsd_rtmp_play(player.0, 5000) }, 0);
    let out = dir.join("played.flv");
    let out2 = out.clone();
    let play = std::thread::spawn(move || {
        let player = player;
        let mut flv = b"FLV\x01\x05\0\0\0\x09\0\0\0\0".to_vec();
        let deadline = Instant::now() + Duration::from_secs(8);
        let mut tags = 0;
        while Instant::now() < deadline {
            let (mut t, mut ts, mut data, mut size) = (0, 0u32, std::ptr::null_mut(), 0usize);
            let rc =
                unsafe { srsd_rtmp_read_tag(player.0, &mut t, &mut ts, &mut data, &mut size, 500) };
            if rc == ERR_TIMEOUT {
                continue;
            }
            assert_eq!(rc, 0);
            let body = unsafe { std::slice::from_raw_parts(data, size) }.to_vec();
            unsafe { srsd_rtmp_free(data.cast()) };
            flv.push(t as u8);
            flv.extend_from_slice(&(size as u32).to_be_bytes()[1..]);
            flv.extend_from_slice(&(ts & 0xff_ffff).to_be_bytes()[1..]);
            flv.push((ts >> 24) as u8);
            flv.extend_from_slice(&[0, 0, 0]);
            flv.extend_from_slice(&body);
            flv.extend_from_slice(&(size as u32 + 11).to_be_bytes());
            tags += 1;
        }
        std::fs::write(&out2, flv).unwrap();
        unsafe { srsd_rtmp_destroy(player.0) };
        tags
    });

    let publisher = open(&url);
    assert_eq!(unsafe { srsd_rtmp_publish(publisher.0, 5000) }, 0);
    let aus = access_units(&video, codec);
    let frames = adts_frames(&audio);
    assert!(
        aus.len() >= 70 && frames.len() >= 120,
        "{} {}",
        aus.len(),
        frames.len()
    );
    let start = Instant::now();
    let (mut v, mut a) = (0usize, 0usize);
    while v < aus.len() || a < frames.len() {
        let vts = (v * 40) as u32;
        let ats = (a as u64 * 1024 * 1000 / 44100) as u32;
        let (ts, rc) = if v < aus.len() && (a >= frames.len() || vts <= ats) {
            v += 1;
            let au = aus[v - 1];
            let write = match codec {
                Codec::H264 => srsd_rtmp_write_h264,
                Codec::Hevc => srsd_rtmp_write_hevc,
            };
            (vts, unsafe {
                write(publisher.0, vts, vts, au.as_ptr(), au.len())
            })
        } else {
            a += 1;
            let f = frames[a - 1];
            (ats, unsafe {
                srsd_rtmp_write_aac(publisher.0, ats, f.as_ptr(), f.len())
            })
        };
        assert_eq!(rc, 0, "{}", unsafe {
            std::ffi::CStr::from_ptr(srsd_rtmp_last_error(publisher.0)).to_string_lossy()
        });
        // Real time, so the player keeps up without the queue dropping anything.
        let due = start + Duration::from_millis(u64::from(ts));
        std::thread::sleep(due.saturating_duration_since(Instant::now()));
    }
    // Errors say what is wrong.
    assert_eq!(
        unsafe { srsd_rtmp_write_aac(publisher.0, 0, b"junk".as_ptr(), 4) },
        ERR_MEDIA
    );
    unsafe { srsd_rtmp_destroy(publisher.0) };
    let tags = play.join().unwrap();
    assert!(tags > 150, "{tags} tags played");
    let _ = stop.send(());
    out
}

#[test]
fn raw_h264_and_aac_published_by_one_thread_play_back_on_another() {
    if !have_ffmpeg() {
        return;
    }
    let out = publish_and_play_raw(Codec::H264, "raw-h264");
    let probe = Command::new("ffprobe")
        .args(["-v", "error", "-count_frames", "-show_entries"])
        .args([
            "stream=codec_name,width,height,nb_read_frames",
            "-of",
            "csv=p=0",
        ])
        .arg(&out)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&probe.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let video = lines
        .iter()
        .find(|l| l.starts_with("h264"))
        .expect("h264 stream");
    assert!(video.starts_with("h264,320,240,"), "{text}");
    let n: u32 = video.rsplit(',').next().unwrap().trim().parse().unwrap();
    assert!(n >= 70, "{text}");
    assert!(lines.iter().any(|l| l.starts_with("aac")), "{text}");
}

/// A modern ffmpeg (PyPI's imageio-ffmpeg, ffmpeg 9) that reads Enhanced RTMP FLV; Debian's
/// 5.1 does not.
fn modern_ffmpeg() -> Option<String> {
    let out = Command::new("python3")
        .args([
            "-c",
            "import imageio_ffmpeg; print(imageio_ffmpeg.get_ffmpeg_exe())",
        ])
        .output()
        .ok()?;
    let path = String::from_utf8_lossy(&out.stdout).trim().to_string();
    if out.status.success() && !path.is_empty() {
        return Some(path);
    }
    if std::env::var("SRSD_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
        panic!("imageio-ffmpeg is required (SRSD_REQUIRE_INTEROP=1): pip install imageio-ffmpeg");
    }
    eprintln!("\n*** SKIPPED: imageio-ffmpeg (a modern ffmpeg) not installed ***\n");
    None
}

#[test]
fn raw_hevc_goes_out_as_enhanced_rtmp_that_a_modern_ffmpeg_decodes() {
    if !have_ffmpeg() {
        return;
    }
    let Some(ff9) = modern_ffmpeg() else { return };
    let out = publish_and_play_raw(Codec::Hevc, "raw-hevc");
    // Decoding every frame proves the HEVCDecoderConfigurationRecord and the frames.
    let r = Command::new(&ff9)
        .args(["-hide_banner", "-i"])
        .arg(&out)
        .args(["-map", "0:v", "-f", "null", "-"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&r.stderr);
    assert!(r.status.success(), "{err}");
    assert!(
        err.contains("Video: hevc") && err.contains("320x240"),
        "{err}"
    );
    let frames: u32 = err
        .rsplit("frame=")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(frames >= 70, "{frames} frames: {err}");
}
