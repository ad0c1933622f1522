//! `srsd bench play rtmp://HOST/APP/STREAM -n N [--duration SECS] [--ramp MS]`
//!
//! N concurrent players, one task each, started `ramp` ms apart. A reporter prints one line a
//! second and a summary at the end. Counters are per-player atomics written by the player's
//! own task and summed by the reporter, so players never contend on a lock.

use super::{bad_args, option_value, runtime, STEP_TIMEOUT};
use crate::client::{RtmpClient, RtmpUrl};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

const USAGE: &str = "\
usage: srsd bench play rtmp://HOST[:PORT]/APP/STREAM -n N [--duration SECS] [--ramp MS]

Starts N concurrent players of one stream and reports, every second:
  [bench] t=Xs connected=C/N mbps=M stalled=S
(stalled = connected players that received nothing for 3 s), then a summary.
  -n N              number of players (1..=100000)
  --duration SECS   how long the bench runs, ramp included (default 30)
  --ramp MS         delay between two connects (default 5)";

/// A connected player that received nothing for this long counts as stalled.
const STALL: Duration = Duration::from_secs(3);
const MAX_PLAYERS: usize = 100_000;

struct Args {
    url: RtmpUrl,
    players: usize,
    duration: Duration,
    ramp: Duration,
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(None);
    }
    let mut it = args.iter();
    match it.next().map(String::as_str) {
        Some("play") => {}
        Some(other) => return Err(format!("unknown bench mode {other:?} (only \"play\")")),
        None => return Err("need a mode: play".into()),
    }
    let mut url = None;
    let mut players = None;
    let (mut duration, mut ramp) = (Duration::from_secs(30), Duration::from_millis(5));
    while let Some(a) = it.next() {
        match a.as_str() {
            "-n" => players = Some(option_value::<usize>("-n", &mut it)?),
            "--duration" => {
                let secs: f64 = option_value("--duration", &mut it)?;
                duration = Duration::try_from_secs_f64(secs)
                    .map_err(|_| format!("--duration: bad value {secs}"))?;
            }
            "--ramp" => ramp = Duration::from_millis(option_value::<u64>("--ramp", &mut it)?),
            o if o.starts_with('-') => return Err(format!("unknown option {o}")),
            u if url.is_none() => url = Some(RtmpUrl::parse(u).map_err(|e| e.to_string())?),
            extra => return Err(format!("unexpected argument {extra:?}")),
        }
    }
    let url = url.ok_or("need an rtmp:// URL")?;
    let players = players.ok_or("need -n N")?;
    if !(1..=MAX_PLAYERS).contains(&players) {
        return Err(format!("-n must be 1..={MAX_PLAYERS}"));
    }
    Ok(Some(Args {
        url,
        players,
        duration,
        ramp,
    }))
}

pub fn main(args: &[String]) -> i32 {
    let args = match parse(args) {
        Ok(Some(a)) => a,
        Ok(None) => {
            println!("{USAGE}");
            return 0;
        }
        Err(e) => return bad_args(&e, USAGE),
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
            let run = player(&url, &players[i], start);
            if tokio::time::timeout_at(deadline, run).await == Ok(false) {
                failures.fetch_add(1, Ordering::Relaxed);
            }
            players[i].connected.store(false, Ordering::Relaxed);
        }));
    }

    let n = args.players;
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
    if let Err(e) = client.play(&url.stream, STEP_TIMEOUT).await {
        eprintln!("[bench] play failed: {e}");
        return false;
    }
    me.last_rx_ms
        .store(start.elapsed().as_millis() as usize, Ordering::Relaxed);
    me.connected.store(true, Ordering::Relaxed);
    me.played.store(true, Ordering::Relaxed);
    while client.recv().await.is_ok() {
        me.frames.fetch_add(1, Ordering::Relaxed);
        me.bytes
            .store(client.bytes_received() as usize, Ordering::Relaxed);
        me.last_rx_ms
            .store(start.elapsed().as_millis() as usize, Ordering::Relaxed);
    }
    true
}
