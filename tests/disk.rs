//! Disk faults against a running server: a disk that stalls (HLS and DVR write off the
//! runtime threads, so with one worker thread the publisher and the players keep flowing),
//! and a disk that fills and frees again (DVR closes its file cleanly and resumes into a new
//! one; HLS drops what it could not write, leaves no `.ts.tmp`, and marks the gap
//! `EXT-X-DISCONTINUITY`), with the state shown in the API and `/metrics`; and a forward
//! destination that refuses, shown there too.

mod common;

use common::playlist::History;
use common::*;
use serde_json::Value;
use srsd::protocol::amf0;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(10);

/// A tmpfs of a given size mounted for one test, unmounted (lazily) when dropped. Mounting
/// needs root; without it the test is skipped loudly (and fails when
/// `SRSD_REQUIRE_INTEROP=1`, as in CI).
struct SmallFs {
    dir: PathBuf,
}

impl SmallFs {
    fn mount(dir: &Path, size: &str) -> Option<SmallFs> {
        std::fs::create_dir_all(dir).expect("mount point");
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            if std::env::var("SRSD_REQUIRE_INTEROP").is_ok_and(|v| v == "1") {
                panic!("cannot mount a tmpfs (root is needed), SRSD_REQUIRE_INTEROP=1");
            }
            eprintln!(
                "\n*** SKIPPED: cannot mount a tmpfs (not root?); disk-full test not run ***\n"
            );
            return None;
        }
        Some(SmallFs {
            dir: dir.to_path_buf(),
        })
    }

    /// Takes every free byte left (appending to one filler file until ENOSPC).
    fn fill(&self) {
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.dir.join("filler"))
            .expect("filler");
        let chunk = vec![0u8; 64 * 1024];
        while let Ok(n) = f.write(&chunk) {
            if n == 0 {
                break;
            }
        }
    }

    /// Gives the space back.
    fn free(&self) {
        let _ = std::fs::remove_file(self.dir.join("filler"));
    }
}

impl Drop for SmallFs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.dir).status();
    }
}

/// A hook server that answers `0` and records the bodies it got.
async fn hook_server() -> (String, Arc<Mutex<Vec<Value>>>) {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c2 = calls.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let calls = c2.clone();
            tokio::spawn(async move {
                let Some((_, body)) = read_http_request(&mut s).await else {
                    return;
                };
                if let Ok(v) = serde_json::from_str(&body) {
                    calls.lock().unwrap().push(v);
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n0",
                    )
                    .await;
            });
        }
    });
    (base, calls)
}

async fn http_get(addr: std::net::SocketAddr, target: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(T, s.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).to_string();
    text.split_once("\r\n\r\n")
        .map(|(_, b)| b.to_string())
        .unwrap_or_default()
}

/// The API's object for stream `name`.
async fn stream_json(server: &TestServer, name: &str) -> Value {
    let body = http_get(server.api.unwrap(), "/api/v1/streams/").await;
    let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{e}: {body}"));
    v["streams"]
        .as_array()
        .and_then(|a| a.iter().find(|s| s["name"] == name).cloned())
        .unwrap_or(Value::Null)
}

/// What `ffmpeg -v error -i FILE -f null -` prints: nothing when the file decodes to its end.
fn decode_errors(file: &Path) -> String {
    let out = Command::new("timeout")
        .args(["60", "ffmpeg", "-nostdin", "-v", "error", "-i"])
        .arg(file)
        .args(["-f", "null", "-"])
        .output()
        .expect("run ffmpeg");
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// ffprobe's format duration, seconds.
fn probe_duration(file: &Path) -> f64 {
    let out = Command::new("timeout")
        .args([
            "60",
            "ffprobe",
            "-v",
            "error",
            "-show_entries",
            "format=duration",
        ])
        .args(["-of", "csv=p=0"])
        .arg(file)
        .output()
        .expect("run ffprobe");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .unwrap_or(-1.0)
}

/// onMetaData's `duration` and `filesize` of an FLV file, and its last tag's time (s).
fn flv_totals(file: &Path) -> (f64, f64, f64) {
    let tags = flv_tags(file);
    let meta = amf0::decode_all(&tags[0].payload).expect("onMetaData");
    let get = |k: &str| meta[1].get(k).and_then(|v| v.as_f64()).unwrap_or(-1.0);
    let last = tags.iter().map(|t| t.timestamp).max().unwrap_or(0);
    (get("duration"), get("filesize"), f64::from(last) / 1000.0)
}

fn files_with(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.to_string_lossy().ends_with(suffix) {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Index of the first tag at or after `ms` (past the sequence headers).
fn at(tags: &[srsd::protocol::flv::Tag], ms: u32) -> usize {
    2 + tags[2..]
        .iter()
        .position(|t| t.timestamp >= ms)
        .unwrap_or(tags.len() - 2)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_costs_dvr_and_hls_only_the_media_of_while_it_is_full() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let base = temp_dir("disk-full");
    let Some(fs) = SmallFs::mount(&base.join("fs"), "16m") else {
        return;
    };
    // 40 s of H.264 + AAC, a keyframe every second.
    let src = make_flv_gop(&base, "src.flv", 40, 25, 25);
    let tags = flv_tags(&src);
    let (hooks, calls) = hook_server().await;
    let d = fs.dir.display();
    let extra = format!(
        "[vhost.\"__defaultVhost__\".dvr]\nenabled = true\n\
         path = \"{d}/dvr/[app]/[stream].[timestamp].flv\"\n\
         [vhost.\"__defaultVhost__\".hls]\nenabled = true\nfragment = 2\nwindow = 120\n\
         path = \"{d}/hls\"\n\
         [vhost.\"__defaultVhost__\".http_hooks]\nenabled = true\non_dvr = [\"{hooks}/dvr\"]\n"
    );
    let server = start_server("disk-full-server", &extra).await;
    let m3u8 = fs.dir.join("hls/live/d.m3u8");
    // Every state of the playlist is checked against RFC 8216 while it changes.
    let checking = {
        let m3u8 = m3u8.clone();
        tokio::spawn(async move {
            let mut h = History::default();
            let mut last = String::new();
            loop {
                if let Ok(text) = std::fs::read_to_string(&m3u8) {
                    if text != last {
                        h.check(&text);
                        last = text;
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let mut p = rtmp_publisher(&server, "live/d").await;
    let speed = 4;
    // 0-10 s: the disk takes writes.
    send_tags(&mut p, &tags[..at(&tags, 10_000)], speed).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    // 10-20 s: full (filled again every second of stream, as the writers free what failed).
    for s in 10..20 {
        fs.fill();
        send_tags(
            &mut p,
            &tags[at(&tags, s * 1000)..at(&tags, (s + 1) * 1000)],
            speed,
        )
        .await;
        if s == 15 {
            let st = stream_json(&server, "d").await;
            assert_eq!(st["dvr"]["state"], "retrying", "{st}");
            assert_eq!(st["hls"]["state"], "failed", "{st}");
            for o in ["dvr", "hls"] {
                let e = st[o]["last_error"].as_str().unwrap_or("");
                assert!(e.contains("space"), "{o}: {st}");
                assert!(st[o]["last_error_ms"].as_u64().unwrap_or(0) > 0, "{st}");
            }
            let metrics = http_get(server.api.unwrap(), "/metrics").await;
            for o in ["dvr", "hls"] {
                let line =
                    format!("srsd_output_errors_total{{output=\"{o}\",reason=\"no_space\"}}");
                assert!(metrics.contains(&line), "{metrics}");
            }
        }
    }
    // 20-40 s: space is back.
    fs.free();
    send_tags(&mut p, &tags[at(&tags, 20_000)..], speed).await;
    let st = stream_json(&server, "d").await;
    assert_eq!(st["dvr"]["state"], "recording", "{st}");
    assert_eq!(st["hls"]["state"], "writing", "{st}");
    drop(p);
    assert!(
        wait_for(T, || calls.lock().unwrap().len() >= 2).await,
        "on_dvr for each closed file"
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    checking.abort();

    // DVR: two files, each closed cleanly, decodable to its last frame, totals right.
    let flvs = files_with(&fs.dir.join("dvr"), ".flv");
    assert!(
        files_with(&fs.dir, ".tmp").is_empty(),
        "no temporary file left"
    );
    assert_eq!(flvs.len(), 2, "{flvs:?}");
    let reported: Vec<String> = calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c["file"].as_str().unwrap_or("").to_string())
        .collect();
    let mut durations = Vec::new();
    for f in &flvs {
        assert!(
            reported.iter().any(|r| Path::new(r) == f.as_path()),
            "{f:?} reported by on_dvr: {reported:?}"
        );
        assert_eq!(decode_errors(f), "", "{f:?} decodes to its last frame");
        let (meta_duration, meta_size, last) = flv_totals(f);
        let size = std::fs::metadata(f).unwrap().len() as f64;
        assert_eq!(meta_size, size, "{f:?}: filesize patched");
        assert!(
            (meta_duration - last).abs() < 0.05,
            "{f:?}: {meta_duration} vs {last}"
        );
        let probed = probe_duration(f);
        assert!(
            (probed - meta_duration).abs() < 0.2,
            "{f:?}: {probed} vs {meta_duration}"
        );
        durations.push(meta_duration);
    }
    // The first file holds what was written before the disk filled (0 - ~10 s); the second
    // starts once a retry found space again, and runs to the end (40 s).
    let lost_after_space_came_back = 20.0 - durations[1];
    eprintln!(
        "dvr: file 1 {:.2} s, file 2 {:.2} s; lost after space came back: {:.2} s of 20",
        durations[0], durations[1], lost_after_space_came_back
    );
    assert!(durations[0] > 8.0 && durations[0] < 11.0, "{durations:?}");
    assert!(
        lost_after_space_came_back < 7.0,
        "resumed within the backoff (5 s) and a GOP: {durations:?}"
    );

    // HLS: no partial segment left, the gap marked, every listed segment there.
    assert!(files_with(&fs.dir.join("hls"), ".ts.tmp").is_empty());
    let text = std::fs::read_to_string(&m3u8).unwrap();
    let pl = common::playlist::parse(&text);
    let gaps = pl.segments.iter().filter(|s| s.discontinuity).count();
    assert_eq!(gaps, 1, "{text}");
    let listed = pl.total();
    eprintln!(
        "hls: {listed:.1} s listed of 40 s, {} segments",
        pl.segments.len()
    );
    assert!(listed > 20.0 && listed < 36.0, "{text}");
    // Each segment decodes on its own (ffmpeg on the live playlist would wait for more).
    for s in &pl.segments {
        let ts = m3u8.parent().unwrap().join(&s.uri);
        assert_eq!(decode_errors(&ts), "", "{}", s.uri);
    }
    drop(server);
    drop(fs);
    let _ = std::fs::remove_dir_all(&base);
}

/// A server on a thread of its own, on a current-thread runtime: what `workers = 1` runs
/// (routers). The test's clients and timers run on the test's own runtime, so a server
/// thread that blocks shows up as clients timing out, not as a hung test. Drop the returned
/// sender to let the thread end (after the server is dropped).
async fn one_worker_server(
    name: &'static str,
    extra: String,
) -> (TestServer, tokio::sync::oneshot::Sender<()>) {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let _ = tx.send(start_server(name, &extra).await);
            let _ = done_rx.await;
        });
    });
    (rx.await.expect("server started"), done_tx)
}

/// Reads a FIFO to its end on a thread of its own: the writer blocked opening it goes on.
fn drain_fifo(path: PathBuf) {
    std::thread::spawn(move || {
        if let Ok(mut f) = std::fs::File::open(&path) {
            let _ = std::io::copy(&mut f, &mut std::io::sink());
        }
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_disk_holds_up_neither_the_publisher_nor_the_players_with_one_worker() {
    let dir = temp_dir("disk-stall");
    // The files HLS and DVR will create first are FIFOs nobody reads: opening one for
    // writing blocks until a reader comes, like a write to a stalled SD card.
    let hls_tmp = dir.join("hls/live/s-0.ts.tmp");
    let dvr_tmp = dir.join("dvr/live/s.flv.tmp");
    for f in [&hls_tmp, &dvr_tmp] {
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        let ok = Command::new("mkfifo")
            .arg(f)
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "mkfifo {f:?}");
    }
    let d = dir.display();
    let extra = format!(
        "workers = 1\n[vhost.\"__defaultVhost__\".dvr]\nenabled = true\n\
         path = \"{d}/dvr/[app]/[stream].flv\"\n\
         [vhost.\"__defaultVhost__\".hls]\nenabled = true\nfragment = 1\npath = \"{d}/hls\"\n"
    );
    let (server, done) = one_worker_server("disk-stall-server", extra).await;
    let url = srsd::client::RtmpUrl::parse(&server.url("live/s")).unwrap();
    let mut player = srsd::client::RtmpClient::connect(&url, T)
        .await
        .expect("connect");
    player.play("s", T).await.expect("play");
    let mut p = rtmp_publisher(&server, "live/s").await;
    // 8 s of 25 fps video with a keyframe a second, in real time.
    let tags = synthetic_tags(8000, 1000, 25);
    let publishing = tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        send_tags(&mut p, &tags, 1).await;
        (p, started.elapsed())
    });
    let got = recv_video(&mut player, 201, Duration::from_secs(12)).await;
    let (p, took) = tokio::time::timeout(Duration::from_secs(15), publishing)
        .await
        .expect("the publisher was never held up")
        .unwrap();
    eprintln!(
        "stalled disk: the player got {} of 201 video messages; publishing 8 s took {took:?}",
        got.len()
    );
    assert_eq!(got.len(), 201, "the player kept flowing");
    assert!(took < Duration::from_secs(9), "{took:?}");
    // The writers really are stuck: nothing was written, yet the API answers and shows them.
    let written: Vec<PathBuf> = files_with(&dir, "")
        .into_iter()
        .filter(|f| !f.to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(written.is_empty(), "{written:?}");
    let st = stream_json(&server, "s").await;
    assert_eq!(st["hls"]["state"], "writing", "{st}");
    assert_eq!(st["dvr"]["state"], "waiting", "{st}");
    // The disk comes back: both writers go on and finish their files at unpublish.
    drain_fifo(hls_tmp);
    drain_fifo(dvr_tmp);
    drop(p);
    drop(player);
    let key = srsd::hub::StreamKey::new("__defaultVhost__", "live", "s");
    let ctx = server.ctx.clone();
    assert!(
        wait_for(T, || ctx.outputs.of(&key).is_empty()).await,
        "HLS and DVR ended once the disk came back"
    );
    drop(server);
    drop(done);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_forward_destination_shows_in_the_api_and_metrics() {
    // Nothing listens there: every connect is refused.
    let dead = free_port();
    let extra = format!(
        "[vhost.\"__defaultVhost__\".forward]\nenabled = true\n\
         destination = [\"127.0.0.1:{dead}\"]\n"
    );
    let server = start_server("disk-forward", &extra).await;
    let mut p = rtmp_publisher(&server, "live/f").await;
    send_tags(&mut p, &synthetic_tags(1000, 1000, 25), 1).await;
    let mut st = Value::Null;
    for _ in 0..50 {
        st = stream_json(&server, "f").await;
        if st["forward"][0]["errors"].as_u64().unwrap_or(0) >= 1 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let f = &st["forward"][0];
    assert!(
        ["retrying", "connecting"].contains(&f["state"].as_str().unwrap_or("")),
        "{st}"
    );
    assert!(
        f["target"]
            .as_str()
            .unwrap_or("")
            .contains(&dead.to_string()),
        "{st}"
    );
    assert!(!f["last_error"].as_str().unwrap_or("").is_empty(), "{st}");
    assert!(f["last_error_ms"].as_u64().unwrap_or(0) > 0, "{st}");
    assert_eq!(st["hls"], Value::Null, "HLS is off: {st}");
    let metrics = http_get(server.api.unwrap(), "/metrics").await;
    assert!(
        metrics.contains("srsd_output_errors_total{output=\"forward\",reason=\"refused\"}"),
        "{metrics}"
    );
    drop(p);
}
