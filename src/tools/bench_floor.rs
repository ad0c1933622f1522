//! `srsd bench floor FILE.flv --listen ADDR [--mw MS] [--duration SECS]`: the bare writer,
//! the physical floor of a fan-out on this machine (issue 12, DESIGN.md §7).
//!
//! It serves one pre-encoded FLV stream over HTTP to any number of viewers and does no
//! protocol work at all: the file's tags are encoded once (tag header, data, previous tag
//! size) when it starts; a pacer releases them in real time (by their timestamps, the file
//! looped) and every `--mw` ms hands the batch (`Arc<[Bytes]>`) to every viewer through one
//! broadcast channel; each viewer's task writes a batch with one `writev`. No chunked
//! encoding, no queue policy, no timestamps rewritten. `srsd bench flv` pointed at it, with
//! `--pid` of this process, gives the CPU and memory that srsd's fan-out is compared with.

use super::{option_value, parsed, runtime_with};
use crate::protocol::flv::{self, FlvDecoder};
use bytes::{Bytes, BytesMut};
use std::io::{self, IoSlice};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tokio::time::Instant;

const USAGE: &str = "\
usage: srsd bench floor FILE.flv --listen HOST:PORT [--mw MS] [--workers N] [--duration SECS]

Serves FILE.flv (looped, paced by its timestamps) to every HTTP client of HOST:PORT as one
endless FLV body, batched every MS milliseconds (default 350; 0 = a write per tag), one
writev per viewer per batch and no other work: the floor srsd's fan-out is measured against.
  --listen HOST:PORT  where to listen (127.0.0.1 only in tests)
  --mw MS             batching interval (default 350)
  --workers N         runtime threads as srsd's `workers`: 0 = one per core (default),
                      1 = one thread (tokio's current-thread runtime), N = N threads
  --duration SECS     stop after this long (default: run until killed)";

/// Batches a slow viewer may lag behind before it skips ahead (the channel's capacity).
const LAG_BATCHES: usize = 64;
/// Longest iovec list of one `writev` (Linux's IOV_MAX is 1024).
const MAX_IOV: usize = 1024;

struct Args {
    file: String,
    listen: String,
    mw: Duration,
    workers: usize,
    duration: Option<Duration>,
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        return Ok(None);
    }
    let (mut file, mut listen, mut mw, mut duration) =
        (None, None, Duration::from_millis(350), None);
    let mut workers = 0;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--listen" => listen = Some(option_value::<String>("--listen", &mut it)?),
            "--mw" => mw = Duration::from_millis(option_value::<u64>("--mw", &mut it)?),
            "--workers" => workers = option_value::<usize>("--workers", &mut it)?,
            "--duration" => {
                let secs: f64 = option_value("--duration", &mut it)?;
                duration = Some(
                    Duration::try_from_secs_f64(secs)
                        .map_err(|_| format!("--duration: bad value {secs}"))?,
                );
            }
            o if o.starts_with('-') => return Err(format!("unknown option {o}")),
            f if file.is_none() => file = Some(f.to_string()),
            extra => return Err(format!("unexpected argument {extra:?}")),
        }
    }
    Ok(Some(Args {
        file: file.ok_or("need an FLV file")?,
        listen: listen.ok_or("need --listen HOST:PORT")?,
        mw,
        workers,
        duration,
    }))
}

/// The file, encoded once: the response head with the FLV header and the leading script and
/// sequence-header tags (what a joining viewer needs first), then every tag with its time.
struct Encoded {
    head: Bytes,
    tags: Vec<(u32, Bytes)>,
}

fn encode(data: &[u8]) -> Result<Encoded, String> {
    let mut buf = BytesMut::from(data);
    let mut decoder = FlvDecoder::new();
    let mut head = BytesMut::new();
    head.extend_from_slice(
        b"HTTP/1.1 200 OK\r\nContent-Type: video/x-flv\r\nConnection: close\r\n\r\n",
    );
    flv::encode_header(true, true, &mut head);
    let mut tags = Vec::new();
    let mut leading = true;
    while let Some(tag) = decoder.decode(&mut buf).map_err(|e| e.to_string())? {
        let mut b = BytesMut::with_capacity(tag.payload.len() + 15);
        flv::encode_tag(&tag, &mut b);
        let config =
            tag.kind == crate::protocol::media::MediaKind::Data || tag.payload.get(1) == Some(&0);
        if leading && config {
            head.extend_from_slice(&b);
            continue;
        }
        leading = false;
        tags.push((tag.timestamp, b.freeze()));
    }
    if tags.is_empty() {
        return Err("no media tags in the file".into());
    }
    Ok(Encoded {
        head: head.freeze(),
        tags,
    })
}

pub fn main(args: &[String]) -> i32 {
    let args = match parsed(parse(args), USAGE) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let data = match std::fs::read(&args.file) {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {}: {e}", args.file);
            return 1;
        }
    };
    let encoded = match encode(&data) {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: {}: {e}", args.file);
            return 1;
        }
    };
    let Some(rt) = runtime_with(args.workers) else {
        return 1;
    };
    rt.block_on(async move {
        let listener = match TcpListener::bind(&args.listen).await {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: listen {}: {e}", args.listen);
                return 1;
            }
        };
        println!(
            "[floor] serving {} ({} tags) on {} every {} ms",
            args.file,
            encoded.tags.len(),
            args.listen,
            args.mw.as_millis()
        );
        let (tx, _) = broadcast::channel::<Arc<[Bytes]>>(LAG_BATCHES);
        tokio::spawn(pacer(encoded.tags, args.mw, tx.clone()));
        let head = encoded.head;
        let serve = async {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let (rx, head) = (tx.subscribe(), head.clone());
                tokio::spawn(async move {
                    let _ = viewer(socket, head, rx).await;
                });
            }
        };
        match args.duration {
            Some(d) => {
                let _ = tokio::time::timeout(d, serve).await;
            }
            None => serve.await,
        }
        0
    })
}

/// Releases the tags in real time, looped, one batch every `mw` (a batch per tag at 0).
async fn pacer(tags: Vec<(u32, Bytes)>, mw: Duration, tx: broadcast::Sender<Arc<[Bytes]>>) {
    let first = tags[0].0;
    let pass = Duration::from_millis(u64::from(
        tags.iter()
            .map(|t| t.0.saturating_sub(first))
            .max()
            .unwrap_or(0)
            + 40,
    ));
    let start = Instant::now();
    let mut batch: Vec<Bytes> = Vec::new();
    let mut next_batch = start + mw;
    for pass_no in 0u32.. {
        let base = start + pass * pass_no;
        for (ts, tag) in &tags {
            let at = base + Duration::from_millis(u64::from(ts.saturating_sub(first)));
            while !mw.is_zero() && next_batch <= at {
                tokio::time::sleep_until(next_batch).await;
                if !batch.is_empty() {
                    let _ = tx.send(Arc::from(std::mem::take(&mut batch)));
                }
                next_batch += mw;
            }
            tokio::time::sleep_until(at).await;
            batch.push(tag.clone());
            if mw.is_zero() {
                let _ = tx.send(Arc::from(std::mem::take(&mut batch)));
            }
        }
    }
}

/// One viewer: read the request head, write the stream head, then every batch.
async fn viewer(
    mut socket: TcpStream,
    head: Bytes,
    mut rx: broadcast::Receiver<Arc<[Bytes]>>,
) -> io::Result<()> {
    socket.set_nodelay(true)?;
    let mut req = [0u8; 1024];
    let mut got = 0;
    while !req[..got].windows(4).any(|w| w == b"\r\n\r\n") {
        if got == req.len() {
            return Err(io::ErrorKind::InvalidData.into());
        }
        let n = socket.read(&mut req[got..]).await?;
        if n == 0 {
            return Ok(());
        }
        got += n;
    }
    socket.write_all(&head).await?;
    loop {
        let batch = match rx.recv().await {
            Ok(b) => b,
            Err(broadcast::error::RecvError::Lagged(_)) => continue,
            Err(broadcast::error::RecvError::Closed) => return Ok(()),
        };
        write_batch(&mut socket, &batch).await?;
    }
}

/// Writes every part of `parts` with vectored writes (one when the socket takes it all).
async fn write_batch(w: &mut TcpStream, parts: &[Bytes]) -> io::Result<()> {
    let (mut idx, mut off) = (0, 0);
    while idx < parts.len() {
        let mut slices = [IoSlice::new(&[]); 64];
        let mut n_slices = 0;
        for (i, p) in parts[idx..].iter().enumerate().take(MAX_IOV.min(64)) {
            slices[i] = IoSlice::new(if i == 0 { &p[off..] } else { p });
            n_slices += 1;
        }
        let mut n = w.write_vectored(&slices[..n_slices]).await?;
        if n == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
        while n > 0 && idx < parts.len() {
            let left = parts[idx].len() - off;
            if n >= left {
                n -= left;
                idx += 1;
                off = 0;
            } else {
                off += n;
                n = 0;
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn workers_default_to_one_per_core_and_take_a_count() {
        let a = parse(&args(&["s.flv", "--listen", "127.0.0.1:1"]))
            .unwrap()
            .unwrap();
        assert_eq!(a.workers, 0);
        let a = parse(&args(&[
            "s.flv",
            "--listen",
            "127.0.0.1:1",
            "--workers",
            "1",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(a.workers, 1);
        assert!(parse(&args(&[
            "s.flv",
            "--listen",
            "127.0.0.1:1",
            "--workers",
            "x"
        ]))
        .is_err());
        assert!(parse(&args(&["s.flv", "--listen", "127.0.0.1:1", "--workers"])).is_err());
    }
}
