//! `user = "nobody"`: the server binds as root, then runs as the user, and still writes its
//! log (also after a reopen) and HLS.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// The real, effective, saved and filesystem uids of a process.
fn uids(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .map(|l| {
            l.split_whitespace()
                .skip(1)
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg_attr(
    srsd_missing = "root",
    ignore = "needs root (the server drops root after binding)"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_runs_as_the_configured_user_after_binding_and_still_writes() {
    assert!(uids(std::process::id()).first() == Some(&0), "run as root");
    let dir = temp_dir("privilege");
    let (rtmp, http, api) = (free_port(), free_port(), free_port());
    let d = dir.display();
    let conf = dir.join("srsd.toml");
    std::fs::write(
        &conf,
        format!(
            "listen = [\"127.0.0.1:{rtmp}\"]\npid = \"{d}/srsd.pid\"\nuser = \"nobody\"\n\
             [log]\ntank = \"file\"\nfile = \"{d}/log/srsd.log\"\n\
             [http_server]\nlisten = \"127.0.0.1:{http}\"\ndir = \"{d}/html\"\n\
             [http_api]\nlisten = \"127.0.0.1:{api}\"\n\
             [vhost.\"__defaultVhost__\".hls]\nfragment = 1\n"
        ),
    )
    .unwrap();
    let mut server = Proc(
        Command::new(env!("CARGO_BIN_EXE_srsd"))
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stderr(child_log("srsd"))
            .spawn()
            .unwrap(),
    );
    let pid = server.0.id();
    assert!(
        wait_for(Duration::from_secs(10), || uids(pid) == [65534; 4]).await,
        "the server runs as nobody: {:?}",
        uids(pid)
    );
    let url = srsd::client::RtmpUrl::parse(&format!("rtmp://127.0.0.1:{rtmp}/live/p")).unwrap();
    let mut c = srsd::client::RtmpClient::connect(&url, Duration::from_secs(5))
        .await
        .expect("RTMP is served after the switch");
    c.publish(&url.stream, Duration::from_secs(5))
        .await
        .unwrap();
    send_tags(&mut c, &synthetic_tags(4000, 1000, 25), 4).await;
    let m3u8 = dir.join("html/live/p.m3u8");
    assert!(
        wait_for(Duration::from_secs(10), || m3u8.exists()).await,
        "HLS written as nobody"
    );
    // A rotated log is reopened as the user, in its directory.
    let log = dir.join("log/srsd.log");
    std::fs::rename(&log, dir.join("log/srsd.log.1")).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_srsd"))
        .args(["-s", "reopen", "-c"])
        .arg(&conf)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        wait_for(Duration::from_secs(5), || log.exists()).await,
        "the log reopened as nobody"
    );
    drop(c);
    let _ = server.0.kill();
    let _ = server.0.wait();
}
