//! `srsd bench play rtmp://HOST/APP/STREAM -n N [--duration SECS] [--ramp MS] [--pid PID]`,
//! `srsd bench flv http://HOST:PORT/APP/STREAM.flv ...`, `srsd bench hls http://.../S.m3u8 ...`,
//! `srsd bench floor FILE.flv --listen ADDR ...` (the bare writer, [`super::bench_floor`]).
//!
//! N concurrent players (RTMP players, HTTP-FLV viewers reading the endless body, or HLS
//! clients polling the playlist every half target duration and fetching each new segment), one
//! task each, started `ramp` ms apart. A reporter prints one line a
//! second and a summary at the end. Counters are per-player atomics written by the player's
//! own task and summed by the reporter, so players never contend on a lock.
//!
//! With `--pid` the bench also reads the server's CPU time and RSS from `/proc` (Linux): the
//! RSS before the first player (idle), its peak, and `--after` seconds after the players
//! left; the CPU over the steady window (from 2 s after the last connect to the end) divided
//! by the bits delivered in that window. Each player's first-media latency (play request to
//! its first audio or video message or FLV tag) is summarised as percentiles.

use super::http_client::{HttpConn, HttpUrl};
use super::{option_value, parsed, runtime, STEP_TIMEOUT};
use crate::client::{RtmpClient, RtmpUrl};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const USAGE: &str = "\
usage: srsd bench play rtmp://HOST[:PORT]/APP/STREAM -n N [OPTIONS]
       srsd bench flv http://HOST[:PORT]/APP/STREAM.flv -n N [OPTIONS]
       srsd bench hls http://HOST[:PORT]/APP/STREAM.m3u8 -n N [OPTIONS]
       srsd bench floor FILE.flv --listen HOST:PORT [--mw MS]   (srsd bench floor --help)

Starts N concurrent players of one stream and reports, every second:
  [bench] t=Xs connected=C/N mbps=M stalled=S
(stalled = connected players that received nothing for 3 s), then a summary. Players are
RTMP players (play), HTTP-FLV viewers (flv: one endless GET each), or HLS clients (hls: the
playlist polled every half target duration, each new segment fetched once, keep-alive). The
summary's frames are RTMP messages, FLV tags, or HLS segments.
  -n N              number of players (1..=100000)
  --duration SECS   how long the bench runs, ramp included (default 30)
  --ramp MS         delay between two connects (default 5)
  --pid PID[,PID]   the server's process(es): report its CPU per delivered Gbit/s (over the
                    window from 2 s after the last connect to the end), RSS idle, peak and
                    per player (peak - idle) / N, as `[bench] server: key=value ...`
  --after SECS      with --pid: after the players left, wait SECS and report the RSS then

The summary also gives first_media_ms p50/p95/max: from the play request (RTMP play
command, HTTP GET) to the first audio or video message (FLV tag for flv).";

/// A connected player that received nothing for this long counts as stalled.
const STALL: Duration = Duration::from_secs(3);
const MAX_PLAYERS: usize = 100_000;

/// What the players play.
enum Target {
    Rtmp(RtmpUrl),
    Flv(HttpUrl),
    Hls(HttpUrl),
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Rtmp(u) => u.fmt(f),
            Target::Flv(u) | Target::Hls(u) => u.fmt(f),
        }
    }
}

struct Args {
    url: Target,
    players: usize,
    duration: Duration,
    ramp: Duration,
    /// The server's processes, to read CPU time and RSS of.
    pids: Vec<u32>,
    /// Seconds to wait after the players left before the last RSS reading.
    after: Option<Duration>,
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(None);
    }
    let mut it = args.iter();
    let mode = match it.next().map(String::as_str) {
        Some("floor") => return Err("floor is run by bench_floor".into()),
        Some(m @ ("play" | "flv" | "hls")) => m,
        Some(other) => {
            return Err(format!(
                "unknown bench mode {other:?} (\"play\", \"flv\" or \"hls\")"
            ))
        }
        None => return Err("need a mode: play, flv or hls".into()),
    };
    let mut url = None;
    let mut players = None;
    let (mut duration, mut ramp) = (Duration::from_secs(30), Duration::from_millis(5));
    let (mut pids, mut after) = (Vec::new(), None);
    while let Some(a) = it.next() {
        match a.as_str() {
            "-n" => players = Some(option_value::<usize>("-n", &mut it)?),
            "--duration" => {
                let secs: f64 = option_value("--duration", &mut it)?;
                duration = Duration::try_from_secs_f64(secs)
                    .map_err(|_| format!("--duration: bad value {secs}"))?;
            }
            "--ramp" => ramp = Duration::from_millis(option_value::<u64>("--ramp", &mut it)?),
            "--pid" => {
                let v: String = option_value("--pid", &mut it)?;
                for p in v.split(',') {
                    pids.push(p.parse().map_err(|_| format!("--pid: bad pid {p:?}"))?);
                }
            }
            "--after" => {
                let secs: f64 = option_value("--after", &mut it)?;
                after = Some(
                    Duration::try_from_secs_f64(secs)
                        .map_err(|_| format!("--after: bad value {secs}"))?,
                );
            }
            o if o.starts_with('-') => return Err(format!("unknown option {o}")),
            u if url.is_none() => {
                url = Some(match mode {
                    "play" => Target::Rtmp(RtmpUrl::parse(u).map_err(|e| e.to_string())?),
                    "flv" => Target::Flv(HttpUrl::parse(u)?),
                    _ => Target::Hls(HttpUrl::parse(u)?),
                })
            }
            extra => return Err(format!("unexpected argument {extra:?}")),
        }
    }
    let url = url.ok_or(if mode == "play" {
        "need an rtmp:// URL"
    } else {
        "need an http:// URL"
    })?;
    let players = players.ok_or("need -n N")?;
    if !(1..=MAX_PLAYERS).contains(&players) {
        return Err(format!("-n must be 1..={MAX_PLAYERS}"));
    }
    Ok(Some(Args {
        url,
        players,
        duration,
        ramp,
        pids,
        after,
    }))
}

pub fn main(args: &[String]) -> i32 {
    if args.first().is_some_and(|m| m == "floor") {
        return super::bench_floor::main(&args[1..]);
    }
    let args = match parsed(parse(args), USAGE) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let Some(rt) = runtime(true) else { return 1 };
    rt.block_on(bench(args))
}

/// What one player's task reports. Times are milliseconds since the bench started.
#[derive(Default)]
struct Player {
    connected: AtomicBool,
    /// Connected and playing at some point.
    played: AtomicBool,
    bytes: AtomicUsize,
    frames: AtomicUsize,
    last_rx_ms: AtomicUsize,
    /// Milliseconds from the play request to the first media, plus one (0 = none yet).
    first_media: AtomicUsize,
}

/// One reading of a server's processes from `/proc`.
#[derive(Debug, Clone, Copy, Default)]
struct ProcSample {
    /// utime + stime, in clock ticks (USER_HZ, 100 on every Linux board we ship).
    cpu_ticks: u64,
    rss_kib: u64,
}

/// USER_HZ: the unit of utime/stime in /proc/PID/stat.
const TICKS_PER_SEC: f64 = 100.0;

/// Reads utime+stime and VmRSS of `pids` (summed); `None` when a process is gone or /proc
/// cannot be read.
fn proc_sample(pids: &[u32]) -> Option<ProcSample> {
    if pids.is_empty() {
        return None;
    }
    let mut s = ProcSample::default();
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        s.cpu_ticks += stat_cpu_ticks(&stat)?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        s.rss_kib += status_rss_kib(&status)?;
    }
    Some(s)
}

/// utime + stime (fields 14 and 15) of a /proc/PID/stat line; the command name (field 2)
/// may hold spaces and parentheses, so fields are counted after its last ')'.
fn stat_cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut f = rest.split_ascii_whitespace().skip(11);
    let utime: u64 = f.next()?.parse().ok()?;
    let stime: u64 = f.next()?.parse().ok()?;
    Some(utime + stime)
}

/// VmRSS in KiB from /proc/PID/status.
fn status_rss_kib(status: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// The `p`-th percentile (0..=100) of sorted values, nearest rank.
fn percentile(sorted: &[u64], p: u64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len() as u64).div_ceil(100).max(1) as usize;
    sorted[rank.min(sorted.len()) - 1]
}

async fn bench(args: Args) -> i32 {
    let start = Instant::now();
    let deadline = start + args.duration;
    let players: Arc<Vec<Player>> =
        Arc::new((0..args.players).map(|_| Player::default()).collect());
    let failures = Arc::new(AtomicUsize::new(0));
    println!(
        "[bench] {} players of {} for {:.1}s, ramp {}ms",
        args.players,
        args.url,
        args.duration.as_secs_f64(),
        args.ramp.as_millis()
    );

    let url = Arc::new(args.url);
    let mut tasks = Vec::with_capacity(args.players);
    for i in 0..args.players {
        let (url, players, failures) = (url.clone(), players.clone(), failures.clone());
        let at = start + args.ramp.saturating_mul(i as u32);
        tasks.push(tokio::spawn(async move {
            if at >= deadline {
                return;
            }
            tokio::time::sleep_until(at).await;
            let me = &players[i];
            let run = async {
                match &*url {
                    Target::Rtmp(u) => player(u, me, start).await,
                    Target::Flv(u) => flv_viewer(u, me, start).await,
                    Target::Hls(u) => hls_viewer(u, me, start).await,
                }
            };
            if tokio::time::timeout_at(deadline, run).await == Ok(false) {
                failures.fetch_add(1, Ordering::Relaxed);
            }
            players[i].connected.store(false, Ordering::Relaxed);
        }));
    }

    let n = args.players;
    let pids = args.pids.clone();
    let idle = proc_sample(&pids);
    if !pids.is_empty() && idle.is_none() {
        eprintln!("[bench] cannot read /proc for pid(s) {pids:?}");
    }
    // The steady window: from 2 s after the last connect to the end.
    let window_at = start + args.ramp.saturating_mul(n as u32) + Duration::from_secs(2);
    let mut window: Option<(Instant, ProcSample, u64, Vec<usize>)> = None;
    let mut peak_rss = idle.map_or(0, |s| s.rss_kib);
    let (mut prev_bytes, mut max_stalled, mut max_connected) = (0u64, 0usize, 0usize);
    let mut tick = tokio::time::interval_at(start + Duration::from_secs(1), Duration::from_secs(1));
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let end = tokio::time::sleep_until(deadline);
    tokio::pin!(end);
    loop {
        tokio::select! {
            now = tick.tick() => {
                if now > deadline {
                    break;
                }
                let now_ms = now.duration_since(start).as_millis() as u64;
                let (mut connected, mut stalled, mut bytes) = (0usize, 0usize, 0u64);
                for p in players.iter() {
                    bytes += p.bytes.load(Ordering::Relaxed) as u64;
                    if p.connected.load(Ordering::Relaxed) {
                        connected += 1;
                        let last = p.last_rx_ms.load(Ordering::Relaxed) as u64;
                        if now_ms.saturating_sub(last) >= STALL.as_millis() as u64 {
                            stalled += 1;
                        }
                    }
                }
                if let Some(s) = proc_sample(&pids) {
                    peak_rss = peak_rss.max(s.rss_kib);
                    if window.is_none() && now >= window_at && now + Duration::from_secs(3) < deadline {
                        let frames = players.iter().map(|p| p.frames.load(Ordering::Relaxed)).collect();
                        window = Some((now, s, bytes, frames));
                    }
                }
                let mbps = bytes.saturating_sub(prev_bytes) as f64 * 8.0 / 1e6;
                prev_bytes = bytes;
                max_stalled = max_stalled.max(stalled);
                max_connected = max_connected.max(connected);
                println!(
                    "[bench] t={}s connected={connected}/{n} mbps={mbps:.2} stalled={stalled}",
                    now_ms / 1000
                );
            }
            _ = &mut end => break,
            _ = &mut ctrl_c => {
                println!("[bench] interrupted");
                break;
            }
        }
    }
    // The window ends before the players are stopped.
    let window_end = proc_sample(&pids).map(|s| {
        let bytes: u64 = players
            .iter()
            .map(|p| p.bytes.load(Ordering::Relaxed) as u64)
            .sum();
        (Instant::now(), s, bytes)
    });
    for t in &tasks {
        t.abort();
    }
    for t in tasks {
        let _ = t.await;
    }

    let elapsed = start.elapsed().as_secs_f64().max(0.001);
    let total: u64 = players
        .iter()
        .map(|p| p.bytes.load(Ordering::Relaxed) as u64)
        .sum();
    let frames: u64 = players
        .iter()
        .map(|p| p.frames.load(Ordering::Relaxed) as u64)
        .sum();
    let played = players
        .iter()
        .filter(|p| p.played.load(Ordering::Relaxed))
        .count();
    let got_data = players
        .iter()
        .filter(|p| p.frames.load(Ordering::Relaxed) > 0)
        .count();
    let failures = failures.load(Ordering::Relaxed);
    let mut first: Vec<u64> = players
        .iter()
        .filter_map(|p| match p.first_media.load(Ordering::Relaxed) {
            0 => None,
            ms => Some(ms as u64 - 1),
        })
        .collect();
    first.sort_unstable();
    println!(
        "[bench] first_media_ms: players={} p50={} p95={} max={}",
        first.len(),
        percentile(&first, 50),
        percentile(&first, 95),
        first.last().copied().unwrap_or(0)
    );
    if let (Some(idle), Some((t0, s0, b0, f0)), Some((t1, s1, b1))) = (idle, window, window_end) {
        let secs = t1.duration_since(t0).as_secs_f64().max(0.001);
        let cpu = (s1.cpu_ticks.saturating_sub(s0.cpu_ticks)) as f64 / TICKS_PER_SEC / secs;
        let gbps = b1.saturating_sub(b0) as f64 * 8.0 / 1e9 / secs;
        // Delivered: each player's frames in the window against the best player's.
        let got: Vec<usize> = players
            .iter()
            .zip(&f0)
            .map(|(p, f)| p.frames.load(Ordering::Relaxed).saturating_sub(*f))
            .collect();
        let best = got.iter().copied().max().unwrap_or(0).max(1);
        let delivered = got.iter().sum::<usize>() as f64 / (best * n) as f64 * 100.0;
        println!(
            "[bench] server: window={secs:.1}s cpu_pct={:.1} gbps={gbps:.4} cpu_per_gbps={:.3} \
             delivered_pct={delivered:.1} rss_idle_kib={} rss_peak_kib={peak_rss} \
             rss_per_player_kib={:.2}",
            cpu * 100.0,
            if gbps > 0.0 { cpu / gbps } else { 0.0 },
            idle.rss_kib,
            peak_rss.saturating_sub(idle.rss_kib) as f64 / n as f64,
        );
    }
    if let (Some(after), false) = (args.after, pids.is_empty()) {
        tokio::time::sleep(after).await;
        if let Some(s) = proc_sample(&pids) {
            println!(
                "[bench] server: rss_after_kib={} after_s={:.0}",
                s.rss_kib,
                after.as_secs_f64()
            );
        }
    }
    println!(
        "[bench] summary: played={played}/{n} connected(max)={max_connected}/{n} received_media={got_data}/{n} \
         total={:.2}MB frames={frames} avg_mbps={:.2} max_stalled={max_stalled} \
         connect_failures={failures} elapsed={elapsed:.1}s",
        total as f64 / 1e6,
        total as f64 * 8.0 / 1e6 / elapsed,
    );
    i32::from(failures > 0 || played == 0)
}

/// One player: connect, play, count until the connection ends (or the task is dropped at the
/// deadline). False when it could not connect and play.
async fn player(url: &RtmpUrl, me: &Player, start: Instant) -> bool {
    let mut client = match RtmpClient::connect(url, STEP_TIMEOUT).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("[bench] connect failed: {e}");
            return false;
        }
    };
    let asked = Instant::now();
    if let Err(e) = client.play(&url.stream, STEP_TIMEOUT).await {
        eprintln!("[bench] play failed: {e}");
        return false;
    }
    me.last_rx_ms
        .store(start.elapsed().as_millis() as usize, Ordering::Relaxed);
    me.connected.store(true, Ordering::Relaxed);
    me.played.store(true, Ordering::Relaxed);
    while let Ok((kind, _, _)) = client.recv().await {
        if kind != crate::client::MediaKind::Data && me.first_media.load(Ordering::Relaxed) == 0 {
            me.first_media
                .store(asked.elapsed().as_millis() as usize + 1, Ordering::Relaxed);
        }
        me.frames.fetch_add(1, Ordering::Relaxed);
        me.bytes
            .store(client.bytes_received() as usize, Ordering::Relaxed);
        me.last_rx_ms
            .store(start.elapsed().as_millis() as usize, Ordering::Relaxed);
    }
    true
}

impl Player {
    /// Counts `n` bytes received now.
    fn received(&self, n: usize, start: Instant) {
        self.bytes.fetch_add(n, Ordering::Relaxed);
        self.last_rx_ms
            .store(start.elapsed().as_millis() as usize, Ordering::Relaxed);
    }

    fn playing(&self, start: Instant) {
        self.last_rx_ms
            .store(start.elapsed().as_millis() as usize, Ordering::Relaxed);
        self.connected.store(true, Ordering::Relaxed);
        self.played.store(true, Ordering::Relaxed);
    }
}

/// Counts FLV tags in a byte stream fed piece by piece.
struct FlvTagCounter {
    /// Bytes still to skip: the file header, then each tag's data and previous-tag-size.
    skip: usize,
    header: [u8; 11],
    header_len: usize,
    tags: usize,
    /// Audio and video tags (not script data).
    media: usize,
}

impl FlvTagCounter {
    fn new() -> Self {
        // The 9-byte FLV header and PreviousTagSize0.
        FlvTagCounter {
            skip: 13,
            header: [0; 11],
            header_len: 0,
            tags: 0,
            media: 0,
        }
    }

    fn feed(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            if self.skip > 0 {
                let n = self.skip.min(data.len());
                self.skip -= n;
                data = &data[n..];
                continue;
            }
            let n = (11 - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n].copy_from_slice(&data[..n]);
            self.header_len += n;
            data = &data[n..];
            if self.header_len == 11 {
                let h = &self.header;
                let size = (usize::from(h[1]) << 16) | (usize::from(h[2]) << 8) | usize::from(h[3]);
                self.skip = size + 4;
                self.header_len = 0;
                self.tags += 1;
                if h[0] == 8 || h[0] == 9 {
                    self.media += 1;
                }
            }
        }
    }
}

/// One HTTP-FLV viewer: one GET, then the endless body. False when it could not start.
async fn flv_viewer(url: &HttpUrl, me: &Player, start: Instant) -> bool {
    let mut conn = match tokio::time::timeout(STEP_TIMEOUT, HttpConn::connect(url)).await {
        Ok(Ok(c)) => c,
        Ok(Err(e)) => {
            eprintln!("[bench] connect {url}: {e}");
            return false;
        }
        Err(_) => {
            eprintln!("[bench] connect {url}: timed out");
            return false;
        }
    };
    let asked = Instant::now();
    let mut resp = match tokio::time::timeout(STEP_TIMEOUT, conn.get(url)).await {
        Ok(Ok(r)) if r.status == 200 => r,
        Ok(Ok(r)) => {
            eprintln!("[bench] GET {url}: HTTP {}", r.status);
            return false;
        }
        Ok(Err(e)) => {
            eprintln!("[bench] GET {url}: {e}");
            return false;
        }
        Err(_) => {
            eprintln!("[bench] GET {url}: timed out");
            return false;
        }
    };
    me.playing(start);
    let mut tags = FlvTagCounter::new();
    while let Ok(Some(data)) = resp.chunk().await {
        tags.feed(&data);
        if tags.media > 0 && me.first_media.load(Ordering::Relaxed) == 0 {
            me.first_media
                .store(asked.elapsed().as_millis() as usize + 1, Ordering::Relaxed);
        }
        me.frames.store(tags.tags, Ordering::Relaxed);
        me.received(data.len(), start);
    }
    true
}

/// The parts of a playlist an HLS client needs: a media playlist's segments, or a master
/// playlist's variants.
#[derive(Debug, Default, PartialEq)]
struct MediaPlaylist {
    target_duration: f64,
    /// (media sequence number, URI) of each segment.
    segments: Vec<(u64, String)>,
    /// The URI after each `#EXT-X-STREAM-INF` (a master playlist).
    variants: Vec<String>,
}

fn parse_playlist(text: &str) -> MediaPlaylist {
    let mut p = MediaPlaylist {
        target_duration: 2.0,
        ..MediaPlaylist::default()
    };
    let mut seq = 0u64;
    let mut variant = false;
    for line in text.lines().map(str::trim) {
        if let Some(v) = line.strip_prefix("#EXT-X-TARGETDURATION:") {
            p.target_duration = v.parse().unwrap_or(p.target_duration);
        } else if let Some(v) = line.strip_prefix("#EXT-X-MEDIA-SEQUENCE:") {
            seq = v.parse().unwrap_or(seq);
        } else if line.starts_with("#EXT-X-STREAM-INF") {
            variant = true;
        } else if !line.is_empty() && !line.starts_with('#') {
            if std::mem::take(&mut variant) {
                p.variants.push(line.to_string());
            } else {
                p.segments.push((seq, line.to_string()));
                seq += 1;
            }
        }
    }
    p
}

/// GETs `url` on `conn` (opened, or reopened when the server closed it). The body is kept
/// when `keep`, else only counted. `None` for a status other than 200.
async fn fetch(
    conn: &mut Option<HttpConn>,
    url: &HttpUrl,
    me: &Player,
    start: Instant,
    keep: bool,
) -> std::io::Result<Option<Vec<u8>>> {
    let request = async {
        for attempt in 0..2 {
            let reused = conn.as_ref().is_some_and(HttpConn::reusable);
            if !reused {
                *conn = Some(HttpConn::connect(url).await?);
            }
            let Some(c) = conn.as_mut() else { continue };
            let mut resp = match c.get(url).await {
                Ok(r) => r,
                // A kept-alive connection the server closed meanwhile: once more on a new one.
                Err(_) if reused && attempt == 0 => {
                    *conn = None;
                    continue;
                }
                Err(e) => return Err(e),
            };
            let ok = resp.status == 200;
            let mut body = Vec::new();
            while let Some(data) = resp.chunk().await? {
                me.received(data.len(), start);
                if keep && ok {
                    body.extend_from_slice(&data);
                }
            }
            return Ok(ok.then_some(body));
        }
        Err(std::io::Error::other("no connection"))
    };
    match tokio::time::timeout(STEP_TIMEOUT, request).await {
        Ok(r) => {
            if r.is_err() {
                *conn = None;
            }
            r
        }
        Err(_) => {
            *conn = None;
            Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "request timed out",
            ))
        }
    }
}

/// One HLS client: polls the playlist every half target duration and fetches each new
/// segment once (starting, like players, three segments from the live edge). False when the
/// first playlist could not be read.
async fn hls_viewer(url: &HttpUrl, me: &Player, start: Instant) -> bool {
    let mut conn: Option<HttpConn> = None;
    let mut seg_conn: Option<HttpConn> = None;
    let mut next_seq: Option<u64> = None;
    let mut started = false;
    let mut url = url.clone();
    let mut hops = 0;
    loop {
        let fetched = fetch(&mut conn, &url, me, start, true).await;
        let text = match fetched {
            Ok(Some(body)) => String::from_utf8_lossy(&body).into_owned(),
            other => {
                if !started {
                    match other {
                        Err(e) => eprintln!("[bench] GET {url}: {e}"),
                        _ => eprintln!("[bench] GET {url}: not found"),
                    }
                    return false;
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        let playlist = parse_playlist(&text);
        // A server that tracks HLS viewers (SRS 6's hls_ctx) answers the first request with
        // a master playlist naming the viewer's own media playlist: poll that one from now on.
        if playlist.segments.is_empty() && hops < 3 {
            if let Some(next) = playlist.variants.first().and_then(|v| url.join(v).ok()) {
                hops += 1;
                url = next;
                continue;
            }
        }
        if !started {
            me.playing(start);
            started = true;
        }
        let first = next_seq.unwrap_or_else(|| {
            let n = playlist.segments.len();
            playlist
                .segments
                .get(n.saturating_sub(3))
                .map_or(0, |s| s.0)
        });
        for (seq, uri) in playlist.segments.iter().filter(|s| s.0 >= first) {
            let Ok(seg) = url.join(uri) else { continue };
            // Segments on the playlist's server share its connection.
            let c = if seg.same_origin(&url) {
                &mut conn
            } else {
                &mut seg_conn
            };
            if let Ok(Some(_)) = fetch(c, &seg, me, start, false).await {
                me.frames.fetch_add(1, Ordering::Relaxed);
            }
            next_seq = Some(seq + 1);
        }
        let poll = Duration::from_secs_f64((playlist.target_duration / 2.0).clamp(0.5, 30.0));
        tokio::time::sleep(poll).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_flv_tags_across_pieces() {
        let mut flv = b"FLV\x01\x05\x00\x00\x00\x09\x00\x00\x00\x00".to_vec();
        for size in [17usize, 9, 0, 300] {
            flv.extend_from_slice(&[9, 0, (size >> 8) as u8, size as u8, 0, 0, 0, 0, 0, 0, 0]);
            flv.extend(std::iter::repeat(7).take(size));
            flv.extend_from_slice(&((11 + size) as u32).to_be_bytes());
        }
        for piece in [1, 5, 11, 1000] {
            let mut c = FlvTagCounter::new();
            for p in flv.chunks(piece) {
                c.feed(p);
            }
            assert_eq!(c.tags, 4, "pieces of {piece}");
        }
    }

    #[test]
    fn parses_media_playlists() {
        let p = parse_playlist(
            "#EXTM3U\n#EXT-X-VERSION:3\n#EXT-X-TARGETDURATION:3\n#EXT-X-MEDIA-SEQUENCE:7\n\
             #EXTINF:2.000,\ns-7.ts\n#EXT-X-DISCONTINUITY\n#EXTINF:2.1,\n/live/s-8.ts\n",
        );
        assert_eq!(p.target_duration, 3.0);
        assert_eq!(
            p.segments,
            vec![(7, "s-7.ts".to_string()), (8, "/live/s-8.ts".to_string())]
        );
    }

    #[test]
    fn parses_master_playlists() {
        let p = parse_playlist(
            "#EXTM3U\n#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1\n\
             s.m3u8?hls_ctx=ab12&token=1\n",
        );
        assert!(p.segments.is_empty());
        assert_eq!(p.variants, vec!["s.m3u8?hls_ctx=ab12&token=1".to_string()]);
    }

    #[test]
    fn reads_proc_fields() {
        let stat = "42 (a (b) c) S 1 42 42 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 1 0 5 1000 200";
        assert_eq!(stat_cpu_ticks(stat), Some(325));
        assert_eq!(stat_cpu_ticks("garbage"), None);
        let status = "Name:\tsrsd\nVmPeak:\t  9000 kB\nVmRSS:\t    4321 kB\n";
        assert_eq!(status_rss_kib(status), Some(4321));
        let v = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10];
        assert_eq!(percentile(&v, 50), 5);
        assert_eq!(percentile(&v, 95), 10);
        assert_eq!(percentile(&[], 50), 0);
    }

    #[test]
    fn parses_modes() {
        let a = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        let p = parse(&a(&["flv", "http://127.0.0.1:8080/live/s.flv", "-n", "3"]))
            .unwrap()
            .unwrap();
        assert!(matches!(p.url, Target::Flv(_)));
        assert_eq!(p.players, 3);
        let p = parse(&a(&["hls", "http://h/live/s.m3u8", "-n", "1"]))
            .unwrap()
            .unwrap();
        assert!(matches!(p.url, Target::Hls(_)));
        assert!(parse(&a(&["flv", "rtmp://h/live/s", "-n", "1"])).is_err());
        assert!(parse(&a(&["hls", "http://h/live/s.m3u8"])).is_err());
        assert!(parse(&a(&["dash", "http://h/s.mpd", "-n", "1"])).is_err());
    }
}
