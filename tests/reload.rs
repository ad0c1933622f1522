//! Reload keeps the promises of `conf/full.toml`: each class of reloadable key is changed on a
//! running server with a live stream (the same `Context::set_config` a SIGHUP or the raw
//! API's reload calls) and the change is observed where full.toml says it applies — the next
//! request, the next hook call, the next publish — while the live stream and its players go on.

mod common;

use bytes::Bytes;
use common::*;
use srsd::client::{MediaKind, RtmpClient, RtmpUrl};
use srsd::config::Config;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

const T: Duration = Duration::from_secs(5);

/// `server`'s config with `extra` TOML in place of its vhost settings, keeping what the test
/// server bound and wrote (listeners, HTTP dir, pid).
fn reloaded(server: &TestServer, extra: &str) -> Config {
    let base = server.ctx.config();
    let text = format!("listen = [\"127.0.0.1:0\"]\n{extra}\n");
    let mut c = Config::parse(&text, "reload.toml").expect("reload config parses");
    c.listen = base.listen.clone();
    c.http_server = base.http_server.clone();
    c.http_api = base.http_api.clone();
    c.pid = base.pid.clone();
    c.log = base.log.clone();
    c
}

/// A publisher of synthetic H.264 + AAC at 25 fps in real time (one keyframe a second) until
/// the task is aborted.
fn publish_live(url: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let u = RtmpUrl::parse(&url).expect("url");
        let Ok(mut c) = RtmpClient::connect(&u, T).await else {
            return;
        };
        if c.publish(&u.stream, T).await.is_err() {
            return;
        }
        let vsh = Bytes::from_static(&[
            0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E,
        ]);
        let ash = Bytes::from_static(&[0xAF, 0, 0x12, 0x10]);
        for (k, p) in [(MediaKind::Video, vsh), (MediaKind::Audio, ash)] {
            if c.send(k, 0, p).await.is_err() {
                return;
            }
        }
        let t0 = tokio::time::Instant::now();
        for n in 0u32.. {
            tokio::time::sleep_until(t0 + Duration::from_millis(u64::from(n) * 40)).await;
            let key = n % 25 == 0;
            let mut frame = vec![if key { 0x17 } else { 0x27 }, 1, 0, 0, 0, 0, 0, 0, 2, 0x65];
            frame.extend_from_slice(&n.to_be_bytes());
            if c.send(MediaKind::Video, n * 40, Bytes::from(frame))
                .await
                .is_err()
                || c.send(
                    MediaKind::Audio,
                    n * 40,
                    Bytes::from_static(&[0xAF, 1, 0x21]),
                )
                .await
                .is_err()
            {
                return;
            }
        }
    })
}

async fn play(server: &TestServer, path: &str) -> Result<RtmpClient, String> {
    let u = RtmpUrl::parse(&server.url(path)).expect("url");
    let mut c = RtmpClient::connect(&u, T)
        .await
        .map_err(|e| e.to_string())?;
    c.play(&u.stream, T).await.map_err(|e| e.to_string())?;
    Ok(c)
}

/// Coded video frames received by `c` within `limit` (at most `want`).
async fn frames(c: &mut RtmpClient, want: usize, limit: Duration) -> usize {
    recv_video_where(c, want, limit, |p| p.len() > 1 && p[1] == 1)
        .await
        .len()
}

/// A hook server that allows everything and counts the calls whose body names `action`.
async fn counting_hook_server(action: &'static str) -> (String, Arc<AtomicUsize>) {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}/hook", l.local_addr().expect("addr"));
    let count = Arc::new(AtomicUsize::new(0));
    let c2 = count.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = l.accept().await {
            let count = c2.clone();
            tokio::spawn(async move {
                if let Some((_, body)) = read_http_request(&mut s).await {
                    let v: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
                    if v["action"] == action {
                        count.fetch_add(1, Ordering::SeqCst);
                    }
                }
                let _ = s
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n0",
                    )
                    .await;
            });
        }
    });
    (url, count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_hooks_and_limits_apply_to_the_next_request_while_players_go_on() {
    let server = start_server("reload-next-request", "").await;
    let publisher = publish_live(server.url("live/r"));
    assert!(wait_publishing(&server, "live/r", T).await, "published");
    let mut watching = play(&server, "live/r").await.expect("first player");
    assert_eq!(frames(&mut watching, 10, T).await, 10);

    // security (Reloadable: next publish or play): a deny rule for play refuses the next
    // player; the one already playing keeps receiving.
    server.ctx.set_config(reloaded(
        &server,
        "[vhost.\"__defaultVhost__\".security]\nenabled = true\nallow = [\"publish all\", \"play all\"]\ndeny = [\"play 127.0.0.1\"]\n",
    ));
    assert!(
        play(&server, "live/r").await.is_err(),
        "a play after the reload is refused"
    );
    assert_eq!(
        frames(&mut watching, 10, T).await,
        10,
        "the player admitted before the reload goes on"
    );

    // http_hooks (Reloadable: next hook call): an on_play URL added by reload is called for
    // the next play.
    let (hook, calls) = counting_hook_server("on_play").await;
    server.ctx.set_config(reloaded(
        &server,
        &format!(
            "[vhost.\"__defaultVhost__\".http_hooks]\nenabled = true\non_play = [\"{hook}\"]\n"
        ),
    ));
    let mut second = play(&server, "live/r").await.expect("allowed again");
    assert_eq!(calls.load(Ordering::SeqCst), 1, "on_play was asked");
    assert_eq!(frames(&mut second, 5, T).await, 5);

    // max_connections (Reloadable: new connections): lowered under the connections open now,
    // the next connection is refused; the open ones stay.
    let open = server.ctx.connections.load(Ordering::SeqCst);
    server
        .ctx
        .set_config(reloaded(&server, &format!("max_connections = {open}\n")));
    let refused_before = server.ctx.refused.load(Ordering::SeqCst);
    assert!(play(&server, "live/r").await.is_err(), "over the new limit");
    assert_eq!(
        server.ctx.refused.load(Ordering::SeqCst),
        refused_before + 1
    );
    assert_eq!(frames(&mut watching, 5, T).await, 5, "open players stay");

    // vhost enabled = false (Reloadable: new connections): the next play of the vhost is
    // refused.
    server.ctx.set_config(reloaded(
        &server,
        "[vhost.\"__defaultVhost__\"]\nenabled = false\n",
    ));
    assert!(play(&server, "live/r").await.is_err(), "vhost disabled");
    assert_eq!(frames(&mut second, 5, T).await, 5, "open players stay");
    publisher.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_and_dvr_take_a_reload_at_the_next_publish() {
    let server = start_server("reload-next-publish", "").await;
    let hls_dir = server.dir.join("hls");
    let dvr_dir = server.dir.join("dvr");
    let publisher = publish_live(server.url("live/n"));
    assert!(wait_publishing(&server, "live/n", T).await, "published");
    server.ctx.set_config(reloaded(
        &server,
        &format!(
            "[vhost.\"__defaultVhost__\".hls]\nenabled = true\nfragment = 1\npath = \"{}\"\n\
             [vhost.\"__defaultVhost__\".dvr]\nenabled = true\npath = \"{}/[app]/[stream].flv\"\n",
            hls_dir.display(),
            dvr_dir.display()
        ),
    ));
    // conf/full.toml: hls and dvr apply "from the next publish": the live publish is left
    // as it started.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let playlist = hls_dir.join("live/n.m3u8");
    assert!(!playlist.exists(), "no HLS for the publish already live");
    assert!(
        !dvr_dir.join("live").exists(),
        "no DVR for the publish already live"
    );

    publisher.abort();
    assert!(
        wait_for(T, || !server
            .ctx
            .hub
            .find(&srsd::hub::StreamKey::new("__defaultVhost__", "live", "n"))
            .is_some_and(|s| s.is_publishing()))
        .await,
        "unpublished"
    );
    let publisher = publish_live(server.url("live/n"));
    assert!(
        wait_for(Duration::from_secs(10), || playlist.exists()).await,
        "the next publish writes HLS"
    );
    assert!(
        wait_for(T, || dvr_dir.join("live").is_dir()).await,
        "the next publish records"
    );
    publisher.abort();
}
