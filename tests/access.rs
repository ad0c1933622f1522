//! refer and security rules through the public functions, and the heartbeat against a small
//! collector inside the test.

mod common;

use srsd::app::session::access::{refer_allows, security_allows, Action};
use srsd::config::security::Rule;
use srsd::config::{ReferConfig, SecurityConfig};
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

fn strings(l: &[&str]) -> Vec<String> {
    l.iter().map(|s| s.to_string()).collect()
}

fn rules(l: &[&str]) -> Vec<Rule> {
    l.iter()
        .map(|s| Rule::try_from(s.to_string()).expect("a valid test rule"))
        .collect()
}

#[test]
fn refer_allows_and_refuses_by_page_host_suffix() {
    let cfg = ReferConfig {
        enabled: true,
        all: vec![],
        play: strings(&["github.com"]),
        publish: strings(&["ossrs.net"]),
    };
    let cases = [
        (Action::Play, "http://www.github.com/srs/player.html", true),
        (Action::Play, "https://github.com:8443/", true),
        (Action::Play, "http://www.ossrs.net/", false),
        (Action::Play, "", false),
        (Action::Publish, "http://ossrs.net/console", true),
        (Action::Publish, "http://github.com/", false),
        (Action::Publish, "", false),
    ];
    for (action, url, ok) in cases {
        assert_eq!(refer_allows(&cfg, action, url), ok, "{action} {url:?}");
    }
    let off = ReferConfig {
        enabled: false,
        ..cfg
    };
    assert!(refer_allows(&off, Action::Play, "http://evil.example/"));
}

#[test]
fn refer_all_list_applies_to_both_actions() {
    let cfg = ReferConfig {
        enabled: true,
        all: strings(&["example.com"]),
        play: vec![],
        publish: vec![],
    };
    assert!(refer_allows(&cfg, Action::Play, "http://a.example.com/"));
    assert!(refer_allows(&cfg, Action::Publish, "http://a.example.com/"));
    assert!(!refer_allows(&cfg, Action::Play, "http://a.example.org/"));
    assert!(!refer_allows(
        &cfg,
        Action::Publish,
        "http://a.example.org/"
    ));
}

#[test]
fn security_allows_and_denies_by_ip_and_cidr() {
    let cfg = SecurityConfig {
        enabled: true,
        allow: rules(&[
            "publish 127.0.0.1",
            "play 10.0.0.0/8",
            "play ::1",
            "play 2001:db8::/32",
        ]),
        deny: rules(&["play 10.6.6.6"]),
    };
    let ip = |s: &str| s.parse::<IpAddr>().expect("test ip");
    let cases = [
        (Action::Publish, "127.0.0.1", true),
        (Action::Publish, "::ffff:127.0.0.1", true),
        (Action::Publish, "127.0.0.2", false),
        (Action::Publish, "10.0.0.1", false),
        (Action::Play, "10.1.2.3", true),
        (Action::Play, "::ffff:10.1.2.3", true),
        (Action::Play, "10.6.6.6", false),
        (Action::Play, "192.168.1.1", false),
        (Action::Play, "::1", true),
        (Action::Play, "2001:db8:ffff::1", true),
        (Action::Play, "2001:db9::1", false),
        (Action::Play, "127.0.0.1", false),
    ];
    for (action, addr, ok) in cases {
        let a = security_allows(&cfg, action, ip(addr));
        assert_eq!(a.is_ok(), ok, "{action} {addr}: {a:?}");
    }
    let e = security_allows(&cfg, Action::Play, ip("10.6.6.6")).unwrap_err();
    assert!(e.contains("play 10.6.6.6"), "the error names the rule: {e}");
}

#[test]
fn security_enabled_without_rules_denies_and_disabled_allows() {
    let ip: IpAddr = "1.2.3.4".parse().expect("ip");
    let mut cfg = SecurityConfig {
        enabled: true,
        allow: vec![],
        deny: vec![],
    };
    assert!(security_allows(&cfg, Action::Play, ip).is_err());
    assert!(security_allows(&cfg, Action::Publish, ip).is_err());
    cfg.enabled = false;
    assert!(security_allows(&cfg, Action::Play, ip).is_ok());
}

/// A collector that answers every request `200 0` and keeps each request's body.
async fn collector() -> (u16, Arc<Mutex<Vec<(String, String)>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let seen = seen2.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Read the head, then Content-Length bytes of body.
                let (head, body) = loop {
                    let n = match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_string();
                    let len = head
                        .lines()
                        .find_map(|l| {
                            let (k, v) = l.split_once(':')?;
                            k.eq_ignore_ascii_case("content-length")
                                .then(|| v.trim().parse::<usize>().ok())?
                        })
                        .unwrap_or(0);
                    while buf.len() < end + 4 + len {
                        match sock.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).to_string();
                    break (head, body);
                };
                seen.lock().expect("lock").push((head, body));
                let _ = sock
                    .write_all(
                        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nConnection: close\r\n\r\n0",
                    )
                    .await;
            });
        }
    });
    (port, seen)
}

#[tokio::test]
async fn heartbeat_posts_device_id_and_ip_every_interval() {
    let (port, seen) = collector().await;
    let server = common::start_server(
        "heartbeat",
        &format!(
            "[heartbeat]\nenabled = true\ninterval = 0.2\nurl = \"http://127.0.0.1:{port}/api/v1/heartbeat\"\ndevice_id = \"dev1\"\n"
        ),
    )
    .await;
    // Until Server::run spawns it.
    tokio::spawn(srsd::app::hooks::heartbeat::run(server.ctx.clone()));
    assert!(
        common::wait_for(Duration::from_secs(5), || seen.lock().expect("lock").len()
            >= 2)
        .await,
        "two heartbeats arrive"
    );
    let (head, body) = seen.lock().expect("lock")[0].clone();
    assert!(head.starts_with("POST /api/v1/heartbeat HTTP/1."), "{head}");
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    assert!(
        body.starts_with("{\"device_id\":\"dev1\",\"ip\":\""),
        "{body}"
    );
    assert!(
        !body.contains("summaries"),
        "summaries only when asked: {body}"
    );
    let ip = body
        .split("\"ip\":\"")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .unwrap_or_default();
    assert!(
        ip.parse::<std::net::Ipv4Addr>().is_ok(),
        "an IPv4 address: {body}"
    );
}

#[tokio::test]
async fn heartbeat_includes_summaries_when_asked() {
    let (port, seen) = collector().await;
    let server = common::start_server(
        "heartbeat-summaries",
        &format!(
            "[heartbeat]\nenabled = true\ninterval = 0.2\nurl = \"http://127.0.0.1:{port}/hb\"\ndevice_id = \"dev2\"\nsummaries = true\n"
        ),
    )
    .await;
    tokio::spawn(srsd::app::hooks::heartbeat::run(server.ctx.clone()));
    assert!(
        common::wait_for(Duration::from_secs(5), || !seen
            .lock()
            .expect("lock")
            .is_empty())
        .await,
        "a heartbeat arrives"
    );
    let (_, body) = seen.lock().expect("lock")[0].clone();
    // SRS 6's body: device_id, ip, server, service, pid (strings, as the API's envelope),
    // and summaries = {"data": <the data of /api/v1/summaries>}.
    let j: serde_json::Value = serde_json::from_str(&body).expect("JSON body");
    assert_eq!(j["device_id"], "dev2", "{body}");
    assert!(j["ip"].is_string(), "{body}");
    let api = server.api.expect("API");
    let versions = common::api_json(api, "/api/v1/versions").await;
    for k in ["server", "service", "pid"] {
        assert!(j[k].is_string(), "{k}: {body}");
        assert_eq!(j[k], versions[k], "{k} as the API says it");
    }
    assert_eq!(j["pid"], std::process::id().to_string());
    let data = &j["summaries"]["data"];
    assert_eq!(data["self"]["pid"], std::process::id(), "{body}");
    let from_api = common::api_json(api, "/api/v1/summaries").await;
    let keys = |v: &serde_json::Value| -> Vec<String> {
        v.as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default()
    };
    for part in ["self", "system"] {
        assert_eq!(
            keys(&data[part]),
            keys(&from_api["data"][part]),
            "summaries.data.{part} has the API's keys"
        );
    }
    let cpu = data["system"]["cpu_percent"].as_f64().expect("a float");
    assert!((0.0..=1.0).contains(&cpu), "a fraction: {cpu}");
}

#[tokio::test]
async fn heartbeat_to_a_closed_port_keeps_running_and_a_disabled_one_sends_nothing() {
    // A closed port: bind, read the port, close.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").port()
    };
    let server = common::start_server(
        "heartbeat-closed",
        &format!(
            "[heartbeat]\nenabled = true\ninterval = 0.1\nurl = \"http://127.0.0.1:{port}/\"\n"
        ),
    )
    .await;
    let task = tokio::spawn(srsd::app::hooks::heartbeat::run(server.ctx.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!task.is_finished(), "failures do not stop the heartbeat");
    task.abort();

    let (port, seen) = collector().await;
    let server = common::start_server(
        "heartbeat-off",
        &format!("[heartbeat]\nenabled = false\nurl = \"http://127.0.0.1:{port}/\"\n"),
    )
    .await;
    let task = tokio::spawn(srsd::app::hooks::heartbeat::run(server.ctx.clone()));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(seen.lock().expect("lock").is_empty(), "disabled: no posts");
    drop(server);
    // Shutdown ends the task.
    assert!(
        tokio::time::timeout(Duration::from_secs(3), task)
            .await
            .is_ok(),
        "the heartbeat ends with the server"
    );
}
