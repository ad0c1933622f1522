//! `srsd publish FILE.flv rtmp://HOST[:PORT]/APP/STREAM [--loop] [--no-realtime]`

use super::{parsed, runtime, STEP_TIMEOUT};
use crate::client::{publish_flv, RtmpClient, RtmpUrl};
use bytes::Bytes;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;

const USAGE: &str = "\
usage: srsd publish FILE.flv rtmp://HOST[:PORT]/APP/STREAM [--loop] [--no-realtime]

Publishes the tags of an FLV file to an RTMP server.
  --loop         start over at the end of the file, forever (timestamps keep increasing)
  --no-realtime  send as fast as the server takes it instead of pacing by timestamps
Ctrl-C stops publishing and unpublishes politely.";

/// Files larger than this are refused: the whole file is held in memory.
const MAX_FILE_SIZE: u64 = 2 * 1024 * 1024 * 1024;

struct Args {
    file: String,
    url: RtmpUrl,
    repeat: bool,
    realtime: bool,
}

fn parse(args: &[String]) -> Result<Option<Args>, String> {
    let mut positional = Vec::new();
    let (mut repeat, mut realtime) = (false, true);
    for a in args {
        match a.as_str() {
            "-h" | "--help" => return Ok(None),
            "--loop" => repeat = true,
            "--no-realtime" => realtime = false,
            o if o.starts_with('-') && o.len() > 1 => return Err(format!("unknown option {o}")),
            p => positional.push(p),
        }
    }
    let [file, url] = positional[..] else {
        return Err("need FILE.flv and an rtmp:// URL".into());
    };
    let url = RtmpUrl::parse(url).map_err(|e| e.to_string())?;
    Ok(Some(Args {
        file: file.to_string(),
        url,
        repeat,
        realtime,
    }))
}

pub fn main(args: &[String]) -> i32 {
    let args = match parsed(parse(args), USAGE) {
        Ok(a) => a,
        Err(code) => return code,
    };
    let data = match std::fs::metadata(&args.file).and_then(|m| {
        if m.len() > MAX_FILE_SIZE {
            Err(std::io::Error::other(format!(
                "larger than {MAX_FILE_SIZE} bytes"
            )))
        } else {
            std::fs::read(&args.file)
        }
    }) {
        Ok(d) => Bytes::from(d),
        Err(e) => {
            eprintln!("error: cannot read {}: {e}", args.file);
            return 1;
        }
    };
    let Some(rt) = runtime(false) else { return 1 };
    rt.block_on(publish(args, data))
}

async fn publish(args: Args, data: Bytes) -> i32 {
    let stopped = Arc::new(AtomicBool::new(false));
    let flag = stopped.clone();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            flag.store(true, Ordering::Relaxed);
        }
    });

    let mut client = match RtmpClient::connect(&args.url, STEP_TIMEOUT).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("[publish] connect to {} failed: {e}", args.url);
            return 1;
        }
    };
    if let Err(e) = client.publish(&args.url.stream, STEP_TIMEOUT).await {
        eprintln!("[publish] publish {} failed: {e}", args.url);
        client.close().await;
        return 1;
    }
    println!("[publish] publishing {} to {}", args.file, args.url);
    let start = Instant::now();
    let result = publish_flv(&mut client, data, args.realtime, args.repeat, || {
        stopped.load(Ordering::Relaxed)
    })
    .await;
    let elapsed = start.elapsed().as_secs_f64();
    let code = match result {
        Ok(tags) => {
            println!("[publish] done: {tags} tags in {elapsed:.1}s");
            0
        }
        Err(e) => {
            eprintln!("[publish] stopped after {elapsed:.1}s: {e}");
            1
        }
    };
    client.close().await;
    code
}
