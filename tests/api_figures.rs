//! The HTTP API's stream and vhost figures over the clients' comings and goings: bytes count
//! for the stream's life (a player that left still counts, as in SRS's statistics), and a
//! stream whose publisher left keeps the publisher's tcUrl, not a viewer's.

mod common;

use bytes::Bytes;
use common::*;
use srsd::client::{MediaKind, RtmpClient, RtmpUrl};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const T: Duration = Duration::from_secs(10);

/// The one stream's object and the default vhost's.
async fn figures(api: std::net::SocketAddr) -> (serde_json::Value, serde_json::Value) {
    let streams = api_json(api, "/api/v1/streams/").await;
    let vhosts = api_json(api, "/api/v1/vhosts/").await;
    (streams["streams"][0].clone(), vhosts["vhosts"][0].clone())
}

fn num(v: &serde_json::Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_bytes_outlive_their_clients_and_the_tc_url_stays_the_publishers() {
    let server = start_server("api-figures", "").await;
    let api = server.api.expect("API listener");
    let http = server.http.expect("HTTP listener");
    let mut publisher = rtmp_publisher(&server, "live/fig").await;
    publisher
        .send(
            MediaKind::Video,
            0,
            Bytes::from_static(&[
                0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1, 0, 4, 0x67, 0x42, 0xC0, 0x1E,
            ]),
        )
        .await
        .unwrap();
    let frame = |i: u32| {
        let mut p = vec![if i == 0 { 0x17 } else { 0x27 }, 1, 0, 0, 0];
        p.resize(2000, 7);
        Bytes::from(p)
    };
    for i in 0..10u32 {
        publisher
            .send(MediaKind::Video, i * 40, frame(i))
            .await
            .unwrap();
    }

    // A player takes the cached GOP and leaves.
    let url = RtmpUrl::parse(&server.url("live/fig")).unwrap();
    let mut player = RtmpClient::connect(&url, T).await.unwrap();
    player.play("fig", T).await.unwrap();
    let got = recv_video(&mut player, 10, T).await;
    assert!(got.len() >= 10, "the player got the GOP: {}", got.len());
    player.close().await;
    let ctx = server.ctx.clone();
    assert!(
        wait_for(T, || ctx.stats.clients().len() == 1).await,
        "the player is gone"
    );
    let (stream, vhost) = figures(api).await;
    assert_eq!(num(&stream, "clients"), 1, "{stream}");
    assert!(
        num(&stream, "send_bytes") >= 20_000,
        "the bytes sent to the player that left: {stream}"
    );
    assert!(num(&vhost, "send_bytes") >= 20_000, "{vhost}");
    let publisher_tc = stream["tcUrl"].as_str().unwrap_or("").to_string();
    assert!(publisher_tc.starts_with("rtmp://127.0.0.1"), "{stream}");

    // An HTTP-FLV viewer stays; the publisher leaves.
    let mut viewer = tokio::net::TcpStream::connect(http).await.unwrap();
    viewer
        .write_all(b"GET /live/fig.flv HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(T, viewer.read(&mut buf))
        .await
        .expect("the viewer gets bytes")
        .unwrap();
    assert!(n > 0);
    assert!(wait_for(T, || ctx.stats.clients().len() == 2).await);
    let (before, _) = figures(api).await;
    publisher.close().await;
    assert!(
        wait_for(T, || ctx.stats.clients().len() == 1).await,
        "the publisher is gone"
    );
    let (after, vhost) = figures(api).await;
    assert_eq!(after["publish"]["active"], false, "{after}");
    assert_eq!(after["tcUrl"], publisher_tc.as_str(), "{after}");
    for key in ["recv_bytes", "send_bytes"] {
        assert!(
            num(&after, key) >= num(&before, key),
            "{key} never goes back: {before} then {after}"
        );
    }
    assert!(num(&after, "recv_bytes") >= 20_000, "{after}");
    assert!(num(&vhost, "recv_bytes") >= 20_000, "{vhost}");
}
