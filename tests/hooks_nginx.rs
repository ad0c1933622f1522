//! `hook_protocol = "nginx"`: an auth backend written for nginx-rtmp's on_publish/on_play
//! (form fields, an empty 200 allows, a 3xx renames the stream, anything else denies) works
//! with srsd unchanged.

mod common;

use common::*;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncWriteExt;

/// One form post as the backend read it.
type Form = HashMap<String, String>;

fn parse_form(body: &str) -> Form {
    body.split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect()
}

fn percent_decode(v: &str) -> String {
    let b = v.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let hex = v
            .get(i + 1..i + 3)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (b[i], hex) {
            (b'%', Some(n)) => {
                out.push(n);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// An nginx-rtmp style auth backend: `name=open` and `token=good` allow with an empty 200,
/// `name=old` is redirected (302) to `renamed`, anything else gets 403. It records every
/// form and its content type.
async fn auth_backend() -> (std::net::SocketAddr, Arc<Mutex<Vec<(String, Form)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let Some((head, body)) = read_http_request(&mut s).await else {
                    return;
                };
                let ctype = head
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-type:")
                            .map(|v| v.trim().to_string())
                    })
                    .unwrap_or_default();
                let form = parse_form(&body);
                let get = |k: &str| form.get(k).map(String::as_str);
                let notify = get("call").is_some_and(|c| c.ends_with("done") || c == "disconnect");
                let answer = if get("name") == Some("old") {
                    "HTTP/1.1 302 Found\r\nLocation: renamed\r\nContent-Length: 0\r\n\r\n"
                } else if notify || get("name") == Some("open") || get("token") == Some("good") {
                    "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
                } else {
                    "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n"
                };
                log.lock().unwrap().push((ctype, form));
                let _ = s.write_all(answer.as_bytes()).await;
            });
        }
    });
    (addr, seen)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nginx_rtmp_auth_backend_allows_denies_and_renames() {
    let (auth, seen) = auth_backend().await;
    let hook = format!("http://{auth}/auth");
    let extra = format!(
        "[vhost.\"__defaultVhost__\".http_hooks]\nenabled = true\nhook_protocol = \"nginx\"\n\
         on_publish = [\"{hook}\"]\non_play = [\"{hook}\"]\non_unpublish = [\"{hook}\"]\n"
    );
    let server = start_server("hooks-nginx", &extra).await;

    // An empty 200 allows (SRS's protocol would deny it).
    let open = rtmp_publisher(&server, "live/open").await;
    assert!(wait_publishing(&server, "live/open", Duration::from_secs(5)).await);
    // A token in the query travels as its own form field.
    let good = rtmp_publisher(&server, "live/cam?token=good").await;
    assert!(wait_publishing(&server, "live/cam", Duration::from_secs(5)).await);
    // 403 denies.
    let url = srsd::client::RtmpUrl::parse(&server.url("live/cam2?token=bad")).unwrap();
    let mut c = srsd::client::RtmpClient::connect(&url, Duration::from_secs(5))
        .await
        .unwrap();
    assert!(c
        .publish(&url.stream, Duration::from_secs(5))
        .await
        .is_err());
    // A 302 renames: publishing "old" publishes "renamed".
    let _renamed = rtmp_publisher(&server, "live/old").await;
    assert!(wait_publishing(&server, "live/renamed", Duration::from_secs(5)).await);
    let old = srsd::hub::StreamKey::new("__defaultVhost__", "live", "old");
    assert!(server.ctx.hub.find(&old).is_none_or(|s| !s.is_publishing()));

    drop(open);
    drop(good);
    let done = wait_for(Duration::from_secs(5), || {
        seen.lock()
            .unwrap()
            .iter()
            .any(|(_, f)| f.get("call").map(String::as_str) == Some("publish_done"))
    })
    .await;
    assert!(done, "publish_done was sent");
    let seen = seen.lock().unwrap();
    let publish = seen
        .iter()
        .find(|(_, f)| f.get("name").map(String::as_str) == Some("cam"))
        .expect("the cam publish was asked");
    assert_eq!(publish.0, "application/x-www-form-urlencoded");
    let f = &publish.1;
    for (k, v) in [
        ("call", "publish"),
        ("app", "live"),
        ("type", "live"),
        ("addr", "127.0.0.1"),
        ("token", "good"),
    ] {
        assert_eq!(f.get(k).map(String::as_str), Some(v), "{k} in {f:?}");
    }
    for k in ["flashver", "swfurl", "tcurl", "pageurl", "clientid"] {
        assert!(f.contains_key(k), "{k} in {f:?}");
    }
    assert!(f["tcurl"].starts_with("rtmp://127.0.0.1:"), "{f:?}");
}
