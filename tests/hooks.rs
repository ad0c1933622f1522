//! HTTP callbacks against a hook server inside the test that records every call.

mod common;

use bytes::Bytes;
use common::*;
use srsd::client::{ClientError, MediaKind, RtmpClient, RtmpUrl};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

const T: Duration = Duration::from_secs(5);

/// One recorded hook call: the URL path and the JSON body.
#[derive(Debug, Clone)]
struct Call {
    path: String,
    body: String,
}

impl Call {
    fn action(&self) -> String {
        field(&self.body, "action")
    }
}

/// A top-level field of a hook body: a string as it is, any other value as JSON text.
fn field(json: &str, key: &str) -> String {
    let body: serde_json::Value =
        serde_json::from_str(json).unwrap_or_else(|e| panic!("a hook body is JSON ({e}): {json}"));
    match body.get(key) {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => String::from("<missing>"),
    }
}

/// A hook server: answers by path. `/allow` -> `0`, `/code0` -> `{"code":0,"msg":"ok"}`,
/// `/deny` -> `1`, `/500` -> HTTP 500, `/slow` -> answers after 3 s, `/token` -> allows only a
/// body carrying `token=good`.
async fn hook_server() -> (String, Arc<Mutex<Vec<Call>>>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", l.local_addr().unwrap());
    let calls = Arc::new(Mutex::new(Vec::new()));
    let c2 = calls.clone();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let calls = c2.clone();
            tokio::spawn(async move {
                let Some((head, body)) = read_http_request(&mut s).await else {
                    return;
                };
                let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                calls.lock().unwrap().push(Call {
                    path: path.clone(),
                    body: body.clone(),
                });
                let (status, answer) = match path.split('?').next().unwrap_or("") {
                    "/allow" => ("200 OK", "0".to_string()),
                    "/code0" => ("200 OK", "{\"code\":0,\"msg\":\"ok\"}".to_string()),
                    "/deny" => ("200 OK", "1".to_string()),
                    "/500" => ("500 Internal Server Error", "0".to_string()),
                    "/slow" => {
                        tokio::time::sleep(Duration::from_secs(3)).await;
                        ("200 OK", "0".to_string())
                    }
                    "/token" if body.contains("token=good") => ("200 OK", "0".to_string()),
                    _ => ("200 OK", "1".to_string()),
                };
                let resp = format!(
                    "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{answer}",
                    answer.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    (base, calls)
}

fn hooks_toml(base: &str, gate: &str) -> String {
    format!(
        "[vhost.\"__defaultVhost__\".http_hooks]\nenabled = true\ntimeout = 1000\n\
         on_connect = [\"{base}/allow\"]\non_close = [\"{base}/allow\"]\n\
         on_publish = [\"{base}{gate}\"]\non_unpublish = [\"{base}/allow\"]\n\
         on_play = [\"{base}/code0\", \"{base}/allow?second=1\"]\non_stop = [\"{base}/allow\"]\n"
    )
}

async fn publisher(server: &TestServer, path: &str) -> Result<RtmpClient, ClientError> {
    let url = RtmpUrl::parse(&server.url(path)).unwrap();
    let mut c = RtmpClient::connect(&url, T).await?;
    c.publish(&url.stream, T).await?;
    Ok(c)
}

fn actions(calls: &Arc<Mutex<Vec<Call>>>) -> Vec<String> {
    calls.lock().unwrap().iter().map(Call::action).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_cycle_sends_every_hook_with_srs_fields_in_order() {
    let (base, calls) = hook_server().await;
    let server = start_server("hooks-cycle", &hooks_toml(&base, "/allow")).await;
    let mut p = publisher(&server, "live/s?token=abc")
        .await
        .expect("publish allowed");
    p.send(
        MediaKind::Video,
        0,
        Bytes::from_static(&[0x17, 0, 0, 0, 0, 1, 2]),
    )
    .await
    .unwrap();
    let url = RtmpUrl::parse(&server.url("live/s")).unwrap();
    let mut player = RtmpClient::connect(&url, T).await.unwrap();
    player
        .play(&url.stream, T)
        .await
        .expect("play allowed by both on_play URLs");
    player.close().await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    p.close().await;
    assert!(
        wait_for(Duration::from_secs(5), || actions(&calls).len() >= 9).await,
        "{:?}",
        actions(&calls)
    );
    let got = calls.lock().unwrap().clone();
    let acts: Vec<String> = got.iter().map(Call::action).collect();
    // Per client, in order: publisher connect, publish, unpublish, close; player connect,
    // play (two URLs), stop, close. Different clients interleave freely.
    let publisher_id = field(
        &got.iter()
            .find(|c| c.action() == "on_publish")
            .unwrap()
            .body,
        "client_id",
    );
    let player_id = field(
        &got.iter().find(|c| c.action() == "on_play").unwrap().body,
        "client_id",
    );
    let of = |id: &str| -> Vec<String> {
        got.iter()
            .filter(|c| field(&c.body, "client_id") == id)
            .map(Call::action)
            .collect()
    };
    assert_eq!(
        of(&publisher_id),
        ["on_connect", "on_publish", "on_unpublish", "on_close"],
        "{acts:?}"
    );
    assert_eq!(
        of(&player_id),
        ["on_connect", "on_play", "on_play", "on_stop", "on_close"],
        "{acts:?}"
    );
    assert_eq!(
        got.iter().filter(|c| c.path == "/allow?second=1").count(),
        1,
        "URL query kept"
    );

    let publish = got.iter().find(|c| c.action() == "on_publish").unwrap();
    for (k, v) in [
        ("vhost", "__defaultVhost__"),
        ("app", "live"),
        ("stream", "s"),
        ("param", "?token=abc"),
        ("ip", "127.0.0.1"),
    ] {
        assert_eq!(field(&publish.body, k), v, "{}", publish.body);
    }
    for k in [
        "server_id",
        "service_id",
        "client_id",
        "tcUrl",
        "stream_url",
        "stream_id",
    ] {
        assert_ne!(
            field(&publish.body, k),
            "<missing>",
            "{k} in {}",
            publish.body
        );
    }
    assert_eq!(field(&publish.body, "stream_url"), "/live/s");
    let play = got.iter().find(|c| c.action() == "on_play").unwrap();
    assert_ne!(field(&play.body, "pageUrl"), "<missing>", "{}", play.body);
    let close = got.iter().find(|c| c.action() == "on_close").unwrap();
    assert_ne!(
        field(&close.body, "send_bytes"),
        "<missing>",
        "{}",
        close.body
    );
    assert_ne!(
        field(&close.body, "recv_bytes"),
        "<missing>",
        "{}",
        close.body
    );
    let connect = got
        .iter()
        .find(|c| c.action() == "on_connect" && field(&c.body, "client_id") == publisher_id)
        .unwrap();
    assert!(
        field(&connect.body, "tcUrl").starts_with("rtmp://127.0.0.1:"),
        "{}",
        connect.body
    );
    // As SRS 6: the stream and param of the publish name.
    assert_eq!(field(&connect.body, "stream"), "s", "{}", connect.body);
    assert_eq!(
        field(&connect.body, "param"),
        "?token=abc",
        "{}",
        connect.body
    );
    // The client id is the same in every hook of one client.
    let pub_id = field(&publish.body, "client_id");
    assert_eq!(
        got.iter()
            .filter(|c| field(&c.body, "client_id") == pub_id)
            .count(),
        4,
        "connect, publish, unpublish, close"
    );
}

/// SRS's example config sends on_close and on_unpublish/on_stop to different URLs; SRS sends
/// a client's notifies one after the other, on_close last. Here on_unpublish's server answers
/// only after 3 s: on_close, to a quick URL of its own, waits for that answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_close_to_its_own_url_comes_after_the_clients_other_notifies() {
    let (base, calls) = hook_server().await;
    let extra = format!(
        "[vhost.\"__defaultVhost__\".http_hooks]\nenabled = true\ntimeout = 5000\n\
         on_unpublish = [\"{base}/slow\"]\non_close = [\"{base}/allow?close=1\"]\n"
    );
    let server = start_server("hooks-close-last", &extra).await;
    let p = publisher(&server, "live/last").await.expect("publish");
    p.close().await;
    let left = std::time::Instant::now();
    let seen = |action: &str| calls.lock().unwrap().iter().any(|c| c.action() == action);
    assert!(
        wait_for(T, || seen("on_unpublish")).await,
        "on_unpublish sent"
    );
    assert!(
        wait_for(Duration::from_secs(10), || seen("on_close")).await,
        "on_close sent"
    );
    let after = left.elapsed();
    assert!(
        after >= Duration::from_millis(2500),
        "on_close waited for on_unpublish's answer (3 s): sent after {after:?}"
    );
    let order: Vec<String> = calls.lock().unwrap().iter().map(Call::action).collect();
    let at = |a: &str| order.iter().position(|x| x == a);
    assert!(at("on_unpublish") < at("on_close"), "{order:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_denials_and_allows() {
    let (base, _calls) = hook_server().await;
    let mut told = 0;
    for (gate, allowed) in [
        ("/deny", false),
        ("/500", false),
        ("/slow", false),
        ("/code0", true),
        ("/allow", true),
    ] {
        let server = start_server("hooks-gate", &hooks_toml(&base, gate)).await;
        let started = std::time::Instant::now();
        let r = publisher(&server, "live/g").await;
        assert_eq!(r.is_ok(), allowed, "{gate}: {:?}", r.as_ref().err());
        if let Err(ClientError::Rejected { description, .. }) = &r {
            // Why and SRS's code, not the hook's URL or answer (those are in the log).
            assert!(
                description.contains("(code ") && !description.contains(base.as_str()),
                "{gate}: the client is told {description:?}"
            );
            told += 1;
        }
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{gate}: answered within the hook timeout"
        );
    }
    assert_eq!(told, 3, "each refusal comes with a status the client reads");
    // A closed port denies.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let server = start_server(
        "hooks-closed",
        &hooks_toml(&format!("http://{closed}"), "/allow"),
    )
    .await;
    // on_connect runs once the stream is named (SRS 6): the publish is refused.
    assert!(
        publisher(&server, "live/g").await.is_err(),
        "on_connect to a closed port denies"
    );
}

/// SRS 6 runs on_connect once the client named its stream, so a token check in on_connect
/// sees the publish/play name's `stream` and `param` (ffmpeg and OBS put the token there,
/// SRS edges too): a good token is let in, a bad one refused, a connect alone asks nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_connect_carries_the_stream_and_param_of_the_publish_or_play_name() {
    let (base, calls) = hook_server().await;
    let server = start_server(
        "hooks-connect-token",
        &format!(
            "[vhost.\"__defaultVhost__\".http_hooks]\nenabled = true\ntimeout = 1000\n\
             on_connect = [\"{base}/token\"]\non_close = [\"{base}/allow\"]\n"
        ),
    )
    .await;
    let connects = || -> Vec<serde_json::Value> {
        calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.action() == "on_connect")
            .map(|c| serde_json::from_str(&c.body).expect("JSON body"))
            .collect()
    };
    // Connect alone: no on_connect yet (SRS answers connect before any check).
    let url = RtmpUrl::parse(&server.url("live/t?token=good")).unwrap();
    let c = RtmpClient::connect(&url, T)
        .await
        .expect("connect answered");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(connects().is_empty(), "{:?}", connects());
    drop(c);

    let p = publisher(&server, "live/t?token=good")
        .await
        .expect("a good token publishes");
    assert!(
        publisher(&server, "live/t2?token=bad").await.is_err(),
        "a bad token is refused"
    );
    let url = RtmpUrl::parse(&server.url("live/t?token=good")).unwrap();
    let mut player = RtmpClient::connect(&url, T).await.unwrap();
    player
        .play(&url.stream, T)
        .await
        .expect("a good token plays");
    let port = server.addr.port();
    let got = connects();
    assert_eq!(got.len(), 3, "{got:?}");
    for (body, stream, param) in [
        (&got[0], "t", "?token=good"),
        (&got[1], "t2", "?token=bad"),
        (&got[2], "t", "?token=good"),
    ] {
        assert_eq!(body["stream"], stream, "{body}");
        assert_eq!(body["param"], param, "{body}");
        assert_eq!(body["app"], "live", "{body}");
        assert_eq!(body["vhost"], "__defaultVhost__", "{body}");
        assert_eq!(
            body["tcUrl"],
            format!("rtmp://127.0.0.1:{port}/live"),
            "{body}"
        );
        assert!(body["pageUrl"].is_string(), "{body}");
    }
    player.close().await;
    p.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn killed_clients_still_get_exactly_one_notify() {
    let (base, calls) = hook_server().await;
    let server = start_server("hooks-kill", &hooks_toml(&base, "/allow")).await;
    let p = publisher(&server, "live/k").await.unwrap();
    drop(p); // the socket just closes: no FCUnpublish, no deleteStream
    assert!(
        wait_for(Duration::from_secs(5), || actions(&calls)
            .contains(&"on_close".to_string()))
        .await
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    let acts = actions(&calls);
    assert_eq!(
        acts.iter().filter(|a| *a == "on_unpublish").count(),
        1,
        "{acts:?}"
    );
    assert_eq!(
        acts.iter().filter(|a| *a == "on_close").count(),
        1,
        "{acts:?}"
    );
}

#[cfg_attr(srsd_missing = "ffmpeg", ignore = "ffmpeg not installed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ffmpeg_with_a_bad_token_fails_fast_and_a_good_one_publishes() {
    if !have("ffmpeg") {
        return;
    }
    let (base, _calls) = hook_server().await;
    let server = start_server("hooks-ffmpeg", &hooks_toml(&base, "/token")).await;
    let started = std::time::Instant::now();
    let mut bad = ffmpeg_publish(&server.url("live/t?token=bad"), 5);
    assert!(
        !wait_exit(&mut bad, Duration::from_secs(10)).await,
        "bad token refused"
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "and ffmpeg gave up fast"
    );
    let _good = ffmpeg_publish(&server.url("live/t?token=good"), 5);
    assert!(wait_publishing(&server, "live/t", Duration::from_secs(10)).await);

    // The same token checked by on_connect: ffmpeg sends tcUrl rtmp://HOST:PORT/live and the
    // token on the stream name only, where SRS 6's on_connect finds it.
    let server = start_server(
        "hooks-ffmpeg-connect",
        &format!(
            "[vhost.\"__defaultVhost__\".http_hooks]\nenabled = true\ntimeout = 1000\n\
             on_connect = [\"{base}/token\"]\n"
        ),
    )
    .await;
    let mut bad = ffmpeg_publish(&server.url("live/c?token=bad"), 5);
    assert!(
        !wait_exit(&mut bad, Duration::from_secs(10)).await,
        "bad token refused by on_connect"
    );
    let _good = ffmpeg_publish(&server.url("live/c?token=good"), 5);
    assert!(wait_publishing(&server, "live/c", Duration::from_secs(10)).await);
}

#[cfg_attr(srsd_missing = "ffmpeg", ignore = "ffmpeg not installed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_hls_once_per_segment_with_file_url_duration_and_seq() {
    if !have("ffmpeg") {
        return;
    }
    let (base, calls) = hook_server().await;
    let dir = temp_dir("hooks-hls-files");
    let extra = format!(
        "{}on_hls = [\"{base}/allow\"]\n[vhost.\"__defaultVhost__\".hls]\nenabled = true\nfragment = 2\nwindow = 60\npath = \"{}\"\n",
        hooks_toml(&base, "/allow"),
        dir.display()
    );
    let server = start_server("hooks-hls", &extra).await;
    let mut p = ffmpeg_publish(&server.url("live/h"), 7);
    assert!(wait_exit(&mut p, Duration::from_secs(30)).await);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let got: Vec<Call> = calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.action() == "on_hls")
        .cloned()
        .collect();
    assert!(got.len() >= 3, "{got:?}");
    let m3u8 = std::fs::read_to_string(dir.join("live/h.m3u8")).unwrap();
    for (i, c) in got.iter().enumerate() {
        assert_eq!(field(&c.body, "seq_no"), i.to_string(), "{}", c.body);
        // url is relative to the HTTP root (SRS: the playlist's directory + its URI).
        let url = field(&c.body, "url");
        assert_eq!(url, format!("live/h-{i}.ts"), "{}", c.body);
        let uri = url.strip_prefix("live/").unwrap();
        assert!(m3u8.lines().any(|l| l == uri), "{uri} in the playlist");
        let file = field(&c.body, "file");
        assert!(std::path::Path::new(&file).exists(), "{file}");
        let raw = field(&c.body, "duration");
        assert!(raw.contains('.'), "a float: {}", c.body);
        let d: f64 = raw.parse().unwrap();
        assert!(d > 0.5 && d < 3.5, "{}", c.body);
        assert_eq!(field(&c.body, "m3u8_url"), "live/h.m3u8");
    }
}

#[cfg_attr(
    any(srsd_missing = "ffmpeg", srsd_missing = "ffprobe"),
    ignore = "ffmpeg or ffprobe not installed"
)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dvr_segments_are_playable_and_each_sends_on_dvr_after_it_is_closed() {
    if !have("ffmpeg") || !have("ffprobe") {
        return;
    }
    let (base, calls) = hook_server().await;
    let dir = temp_dir("hooks-dvr-files");
    let extra = format!(
        "{}on_dvr = [\"{base}/allow\"]\n[vhost.\"__defaultVhost__\".dvr]\nenabled = true\n\
         plan = \"segment\"\nduration = 3\npath = \"{}/[app]/[stream].[timestamp].flv\"\n",
        hooks_toml(&base, "/allow"),
        dir.display()
    );
    let server = start_server("hooks-dvr", &extra).await;
    let mut p = ffmpeg_publish(&server.url("live/d"), 8);
    assert!(wait_exit(&mut p, Duration::from_secs(30)).await);
    let dvr_calls = || -> Vec<Call> {
        calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.action() == "on_dvr")
            .cloned()
            .collect()
    };
    assert!(
        wait_for(Duration::from_secs(5), || dvr_calls().len() >= 3).await,
        "{:?}",
        dvr_calls()
    );
    let got = dvr_calls();
    assert_eq!(got.len(), 3, "8 s in 3 s segments: {got:?}");
    let mut frames = 0;
    for c in &got {
        assert_eq!(field(&c.body, "stream"), "d", "{}", c.body);
        assert!(!field(&c.body, "cwd").is_empty(), "{}", c.body);
        let file = field(&c.body, "file");
        assert!(
            file.starts_with(&dir.join("live/d.").display().to_string()),
            "{file}"
        );
        assert!(file.ends_with(".flv"), "{file}");
        let probe = ffprobe(&file);
        assert_eq!(probe.video_codec, "h264", "{file}: {probe:?}");
        assert_eq!(probe.audio_codec, "aac", "{file}: {probe:?}");
        assert_eq!((probe.width, probe.height), (320, 240));
        frames += probe.video_frames;
    }
    println!("dvr: {} files, {frames} video frames", got.len());
    // Every frame from the first keyframe on is in exactly one file (8 s at 25 fps).
    assert!(
        (190..=200).contains(&frames),
        "{frames} video frames recorded"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.join("live"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().extension().is_some_and(|x| x == "tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no .tmp files left: {leftovers:?}");
}

/// A whole HTTP/1.1 GET answer (status line, headers and body) from `addr`.
async fn http_get(addr: std::net::SocketAddr, target: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(T, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).to_string()
}

#[cfg_attr(srsd_missing = "ffmpeg", ignore = "ffmpeg not installed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_viewers_get_on_play_and_on_stop_and_show_in_the_api() {
    if !have("ffmpeg") {
        return;
    }
    let (base, calls) = hook_server().await;
    let dir = temp_dir("hooks-hls-viewers");
    let extra = format!(
        "{}[vhost.\"__defaultVhost__\".hls]\nenabled = true\nfragment = 1\nwindow = 2\npath = \"{}\"\n\
         [http_server]\nlisten = \"127.0.0.1:0\"\ndir = \"{}\"\n",
        hooks_toml(&base, "/allow"),
        dir.display(),
        dir.display()
    );
    let server = start_server("hooks-hls-viewers", &extra).await;
    let http = server.http.unwrap();
    let _ff = ffmpeg_publish(&server.url("live/v"), 20);
    assert!(
        wait_for(Duration::from_secs(15), || dir
            .join("live/v.m3u8")
            .is_file())
        .await,
        "the playlist is written"
    );
    // First request: the play checks, then (200, as SRS 6) a master playlist naming the
    // viewer's own URL.
    let first = http_get(http, "/live/v.m3u8?token=1").await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let variant = first
        .lines()
        .find(|l| l.starts_with("v.m3u8?"))
        .unwrap_or_else(|| panic!("a variant: {first}"))
        .trim()
        .to_string();
    assert!(variant.starts_with("v.m3u8?hls_ctx="), "{variant}");
    assert!(variant.ends_with("&token=1"), "{variant}");
    let location = format!("/live/{variant}");
    let plays: Vec<Call> = calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| c.action() == "on_play")
        .cloned()
        .collect();
    assert_eq!(plays.len(), 2, "both on_play URLs were asked: {plays:?}");
    assert_eq!(field(&plays[0].body, "stream"), "v");
    assert_eq!(field(&plays[0].body, "param"), "?token=1");
    // The viewer's playlist names its segments with its ctx; segments keep it alive.
    let playlist = http_get(http, &location).await;
    assert!(playlist.starts_with("HTTP/1.1 200"), "{playlist}");
    let seg = playlist
        .lines()
        .find(|l| l.contains(".ts?hls_ctx="))
        .unwrap_or_else(|| panic!("segments carry the ctx: {playlist}"))
        .trim()
        .to_string();
    let got = http_get(http, &format!("/live/{seg}")).await;
    assert!(
        got.starts_with("HTTP/1.1 200"),
        "{}",
        &got[..got.len().min(200)]
    );
    let api = server.api.unwrap();
    let clients = http_get(api, "/api/v1/clients").await;
    assert!(clients.contains("\"type\":\"hls-play\""), "{clients}");
    // As SRS's console reads it: tcUrl is http://HOST/APP (no playlist file), url /app/stream.
    let json = clients.split_once("\r\n\r\n").map_or("", |(_, b)| b);
    let j: serde_json::Value = serde_json::from_str(json).expect("clients JSON");
    let viewer = j["clients"]
        .as_array()
        .and_then(|a| a.iter().find(|c| c["type"] == "hls-play"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(viewer["tcUrl"], "http://127.0.0.1/live", "{viewer}");
    assert_eq!(viewer["url"], "/live/v", "{viewer}");
    // One request per client: the hook and the API say the same tcUrl and client id.
    assert_eq!(field(&plays[0].body, "tcUrl"), "http://127.0.0.1/live");
    assert_eq!(viewer["id"], field(&plays[0].body, "client_id"), "{viewer}");
    // Silent for twice the window (4 s): gone, with its on_stop.
    let left = std::time::Instant::now();
    assert!(
        wait_for(Duration::from_secs(10), || calls
            .lock()
            .unwrap()
            .iter()
            .any(|c| c.action() == "on_stop"))
        .await,
        "on_stop after the viewer stopped asking"
    );
    assert!(
        left.elapsed() >= Duration::from_secs(3),
        "{:?}",
        left.elapsed()
    );
    let clients = http_get(api, "/api/v1/clients").await;
    assert!(!clients.contains("hls-play"), "{clients}");
}

#[cfg_attr(srsd_missing = "ffmpeg", ignore = "ffmpeg not installed")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_hls_viewer_denied_by_on_play_gets_403() {
    if !have("ffmpeg") {
        return;
    }
    let (base, _calls) = hook_server().await;
    let dir = temp_dir("hooks-hls-deny");
    let extra = format!(
        "[vhost.\"__defaultVhost__\".http_hooks]\nenabled = true\non_play = [\"{base}/deny\"]\n\
         [vhost.\"__defaultVhost__\".hls]\nenabled = true\nfragment = 1\npath = \"{}\"\n\
         [http_server]\nlisten = \"127.0.0.1:0\"\ndir = \"{}\"\n",
        dir.display(),
        dir.display()
    );
    let server = start_server("hooks-hls-deny", &extra).await;
    let _ff = ffmpeg_publish(&server.url("live/d"), 10);
    assert!(
        wait_for(Duration::from_secs(15), || dir
            .join("live/d.m3u8")
            .is_file())
        .await
    );
    let answer = http_get(server.http.unwrap(), "/live/d.m3u8").await;
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    // A playlist that does not exist is a plain 404, no hook.
    let answer = http_get(server.http.unwrap(), "/live/none.m3u8").await;
    assert!(answer.starts_with("HTTP/1.1 404"), "{answer}");
}

/// The status code of a GET (the body is not read: live answers never end).
async fn http_status(addr: std::net::SocketAddr, path: &str, referer: Option<&str>) -> u16 {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let extra = referer
        .map(|r| format!("Referer: {r}\r\n"))
        .unwrap_or_default();
    let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{extra}\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(T, s.read(&mut buf))
        .await
        .unwrap()
        .unwrap();
    String::from_utf8_lossy(&buf[..n])
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0)
}

async fn rtmp_play(
    server: &TestServer,
    path: &str,
    page_url: Option<&str>,
) -> Result<RtmpClient, ClientError> {
    let url = RtmpUrl::parse(&server.url(path)).unwrap();
    let mut obj =
        srsd::protocol::rtmp::session::ClientSession::connect_object(&url.app, &url.tc_url);
    if let Some(p) = page_url {
        obj.push(("pageUrl".into(), srsd::protocol::amf0::Amf0Value::string(p)));
    }
    let mut c = RtmpClient::connect_with(&url, obj, vec![], T).await?;
    c.play(&url.stream, T).await?;
    Ok(c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_rules_apply_to_rtmp_and_http_flv() {
    let allow = "[vhost.\"__defaultVhost__\".http_remux]\nenabled = true\n\
                 [vhost.\"__defaultVhost__\".security]\nenabled = true\nallow = [\"publish 127.0.0.1\", \"play 127.0.0.0/8\"]\n";
    let server = start_server("sec-allow", allow).await;
    let _p = publisher(&server, "live/sec")
        .await
        .expect("publish allowed");
    assert!(
        rtmp_play(&server, "live/sec", None).await.is_ok(),
        "RTMP play allowed"
    );
    assert_eq!(
        http_status(server.http.unwrap(), "/live/sec.flv", None).await,
        200
    );

    let deny = "[vhost.\"__defaultVhost__\".http_remux]\nenabled = true\n\
                [vhost.\"__defaultVhost__\".security]\nenabled = true\nallow = [\"publish all\", \"play all\"]\ndeny = [\"play 127.0.0.1\"]\n";
    let server = start_server("sec-deny", deny).await;
    let _p = publisher(&server, "live/sec")
        .await
        .expect("publish still allowed");
    assert!(
        rtmp_play(&server, "live/sec", None).await.is_err(),
        "RTMP play denied"
    );
    assert_eq!(
        http_status(server.http.unwrap(), "/live/sec.flv", None).await,
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refer_rules_apply_to_rtmp_and_http_flv() {
    let cfg = "[vhost.\"__defaultVhost__\".http_remux]\nenabled = true\n\
               [vhost.\"__defaultVhost__\".refer]\nenabled = true\nplay = [\"example.com\"]\n";
    let server = start_server("refer", cfg).await;
    let _p = publisher(&server, "live/r")
        .await
        .expect("publish has no refer list");
    assert!(rtmp_play(
        &server,
        "live/r",
        Some("http://www.example.com/player.html")
    )
    .await
    .is_ok());
    assert!(rtmp_play(&server, "live/r", Some("http://evil.test/"))
        .await
        .is_err());
    assert!(rtmp_play(&server, "live/r", None).await.is_err());
    let http = server.http.unwrap();
    assert_eq!(
        http_status(http, "/live/r.flv", Some("https://example.com/")).await,
        200
    );
    assert_eq!(
        http_status(http, "/live/r.flv", Some("https://evil.test/")).await,
        403
    );
    assert_eq!(http_status(http, "/live/r.flv", None).await, 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_basic_auth() {
    let server = start_server(
        "api-auth",
        "[http_api.auth]\nenabled = true\nusername = \"admin\"\npassword = \"secret\"\n",
    )
    .await;
    let api = server.api.unwrap();
    let get = |auth: Option<&'static str>| async move {
        let mut s = tokio::net::TcpStream::connect(api).await.unwrap();
        let h = auth
            .map(|a| format!("Authorization: Basic {a}\r\n"))
            .unwrap_or_default();
        s.write_all(
            format!("GET /api/v1/versions HTTP/1.1\r\nHost: x\r\n{h}Connection: close\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let mut out = Vec::new();
        let _ = tokio::time::timeout(T, s.read_to_end(&mut out)).await;
        String::from_utf8_lossy(&out).to_string()
    };
    let refused = get(None).await;
    assert!(refused.starts_with("HTTP/1.1 401"), "{refused}");
    assert!(
        refused.contains("\"code\":401")
            && (refused.contains("WWW-Authenticate: Basic")
                || refused.contains("www-authenticate: Basic")),
        "a JSON envelope and the challenge: {refused}"
    );
    assert!(
        get(Some("YWRtaW46d3Jvbmc="))
            .await
            .starts_with("HTTP/1.1 401"),
        "admin:wrong"
    );
    let ok = get(Some("YWRtaW46c2VjcmV0")).await;
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.contains("\"code\":0"),
        "{ok}"
    );
}

/// on_connect runs once the stream is named (as SRS 6 does) and carries its `stream` and
/// `param`: a token check in on_connect sees the token, for every URL shape a client uses,
/// OBS's whole URL in "Server" with an empty key included.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_connect_carries_the_stream_and_its_param() {
    let (base, calls) = hook_server().await;
    let server = start_server("hooks-connect-stream", &hooks_toml(&base, "/allow")).await;
    let port = server.addr.port();
    // (app as connected, name as published, stream and param on_connect must carry)
    for (app, name, stream, param) in [
        ("live", "t?token=abc", "t", "?token=abc"),
        ("live?token=abc", "t2", "t2", "?token=abc"),
        ("live/t3?token=abc", "", "t3", "?token=abc"),
    ] {
        calls.lock().unwrap().clear();
        let url = RtmpUrl {
            host: "127.0.0.1".into(),
            port,
            app: app.into(),
            stream: name.into(),
            tc_url: format!("rtmp://127.0.0.1:{port}/{app}"),
        };
        let mut c = RtmpClient::connect(&url, T).await.unwrap();
        c.publish(name, T).await.unwrap();
        let connect = calls
            .lock()
            .unwrap()
            .iter()
            .find(|c| c.action() == "on_connect")
            .cloned()
            .expect("on_connect was called");
        assert_eq!(field(&connect.body, "app"), "live", "{app} {name}");
        assert_eq!(field(&connect.body, "stream"), stream, "{app} {name}");
        assert_eq!(field(&connect.body, "param"), param, "{app} {name}");
        let gates: Vec<String> = actions(&calls)
            .into_iter()
            .filter(|a| a == "on_connect" || a == "on_publish")
            .collect();
        assert_eq!(gates, ["on_connect", "on_publish"], "{app} {name}");
    }
}

/// A publish or play whose name is empty or unusable is refused before any hook is called.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unusable_names_never_reach_the_hooks() {
    let (base, calls) = hook_server().await;
    let server = start_server("hooks-badname", &hooks_toml(&base, "/allow")).await;
    for name in ["", "?token=good", "..", "a/../b"] {
        let url = RtmpUrl::parse(&server.url("live/x")).unwrap();
        let mut c = RtmpClient::connect(&url, T).await.unwrap();
        assert!(c.publish(name, T).await.is_err(), "publish {name:?}");
        let mut c = RtmpClient::connect(&url, T).await.unwrap();
        assert!(c.play(name, T).await.is_err(), "play {name:?}");
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(actions(&calls), Vec::<String>::new(), "no hook was called");
}

/// The publisher's hook calls, in the order the hook server got them.
fn calls_of(calls: &Arc<Mutex<Vec<Call>>>, client_id: &str) -> Vec<Call> {
    calls
        .lock()
        .unwrap()
        .iter()
        .filter(|c| field(&c.body, "client_id") == client_id)
        .cloned()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_hls_body_is_srs6_and_the_last_on_hls_and_on_dvr_precede_on_unpublish() {
    let (base, calls) = hook_server().await;
    let dir = temp_dir("hooks-hls-srs6-files");
    let extra = format!(
        "{}on_hls = [\"{base}/allow\"]\non_dvr = [\"{base}/allow\"]\n\
         [vhost.\"__defaultVhost__\".hls]\nenabled = true\nfragment = 2\nwindow = 60\npath = \"{d}\"\n\
         [vhost.\"__defaultVhost__\".dvr]\nenabled = true\nplan = \"session\"\n\
         path = \"{d}/[app]/[stream].[timestamp].flv\"\n",
        hooks_toml(&base, "/allow"),
        d = dir.display()
    );
    let server = start_server("hooks-hls-srs6", &extra).await;
    // 8 s of a 1 s GOP, then the keyframe at 8 s and nothing more: the publisher stops right
    // after a keyframe, which opens a one-frame segment.
    let mut tags = synthetic_tags(8000, 1000, 25);
    tags.extend(
        synthetic_tags(8040, 1000, 25)
            .into_iter()
            .filter(|t| t.kind == MediaKind::Video && t.timestamp == 8000),
    );
    let mut p = rtmp_publisher(&server, "live/h").await;
    send_tags(&mut p, &tags, 50).await;
    p.close().await;
    assert!(
        wait_for(T, || actions(&calls).contains(&"on_close".to_string())).await,
        "{:?}",
        actions(&calls)
    );
    let publisher = field(
        &calls
            .lock()
            .unwrap()
            .iter()
            .find(|c| c.action() == "on_publish")
            .unwrap()
            .body,
        "client_id",
    );
    let mine = calls_of(&calls, &publisher);
    let acts: Vec<String> = mine.iter().map(Call::action).collect();
    // Four 2 s segments; the one-frame segment at 8 s is dropped: no on_hls of duration 0.
    let hls: Vec<&Call> = mine.iter().filter(|c| c.action() == "on_hls").collect();
    assert_eq!(hls.len(), 4, "{acts:?}");
    for (i, c) in hls.iter().enumerate() {
        assert_eq!(
            field(&c.body, "url"),
            format!("live/h-{i}.ts"),
            "{}",
            c.body
        );
        assert_eq!(field(&c.body, "m3u8_url"), "live/h.m3u8", "{}", c.body);
        assert_eq!(field(&c.body, "seq_no"), i.to_string(), "{}", c.body);
        // A JSON float as SRS writes it: "2.00", never the integer 2 (the text matters to
        // hook servers that read it with a typed decoder).
        assert_eq!(field(&c.body, "duration"), "2.0", "{}", c.body);
        assert!(c.body.contains("\"duration\":2.00,"), "{}", c.body);
        assert!(
            field(&c.body, "file").ends_with(&format!("live/h-{i}.ts")),
            "{}",
            c.body
        );
        assert!(
            field(&c.body, "m3u8").ends_with("live/h.m3u8"),
            "{}",
            c.body
        );
    }
    assert!(
        !dir.join("live/h-4.ts").exists(),
        "the dropped segment's file"
    );
    // SRS's order at unpublish: the last on_hls and on_dvr, then on_unpublish, then on_close.
    let at = |a: &str| acts.iter().rposition(|x| x == a).unwrap_or(usize::MAX);
    assert_eq!(
        acts.iter().filter(|a| *a == "on_dvr").count(),
        1,
        "{acts:?}"
    );
    assert!(at("on_hls") < at("on_unpublish"), "{acts:?}");
    assert!(at("on_dvr") < at("on_unpublish"), "{acts:?}");
    assert!(at("on_unpublish") < at("on_close"), "{acts:?}");
    assert_eq!(
        acts.last().map(String::as_str),
        Some("on_close"),
        "{acts:?}"
    );
}

/// `GET` with a method of choice; returns the whole answer.
async fn http_req(addr: std::net::SocketAddr, method: &str, target: &str) -> String {
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(T, s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hls_ctx_master_playlist_then_refreshes_are_one_viewer() {
    let (base, calls) = hook_server().await;
    let dir = temp_dir("hooks-hls-master");
    let extra = format!(
        "{}[vhost.\"__defaultVhost__\".hls]\nenabled = true\nfragment = 1\nwindow = 10\npath = \"{d}\"\n\
         [http_server]\nlisten = \"127.0.0.1:0\"\ndir = \"{d}\"\n",
        hooks_toml(&base, "/allow"),
        d = dir.display()
    );
    let server = start_server("hooks-hls-master", &extra).await;
    let http = server.http.unwrap();
    let mut p = rtmp_publisher(&server, "live/c").await;
    send_tags(&mut p, &synthetic_tags(5000, 1000, 25), 50).await;
    // The segmenter reads its stream a tenth of a second at a time (outputs::FILE_GATHER).
    assert!(
        wait_for(Duration::from_secs(2), || dir.join("live/c.m3u8").is_file()).await,
        "the playlist is written"
    );
    let plays = || -> Vec<Call> {
        calls
            .lock()
            .unwrap()
            .iter()
            .filter(|c| c.action() == "on_play")
            .cloned()
            .collect()
    };

    // What curl gets: 200 and a one-variant master playlist (SRS 6's exact text).
    let first = http_req(http, "GET", "/live/c.m3u8?token=1").await;
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let lower = first.to_ascii_lowercase();
    assert!(
        lower.contains("content-type: application/vnd.apple.mpegurl"),
        "{first}"
    );
    assert!(lower.contains("cache-control: no-cache"), "{first}");
    assert!(!lower.contains("location:"), "{first}");
    let body = &first[first.find("\r\n\r\n").unwrap() + 4..];
    let lines: Vec<&str> = body.lines().collect();
    assert_eq!(lines.len(), 3, "{body}");
    assert_eq!(lines[0], "#EXTM3U");
    assert_eq!(
        lines[1],
        "#EXT-X-STREAM-INF:BANDWIDTH=1,AVERAGE-BANDWIDTH=1"
    );
    let id = lines[2]
        .strip_prefix("c.m3u8?hls_ctx=")
        .and_then(|r| r.strip_suffix("&token=1"))
        .unwrap_or_else(|| panic!("the variant: {body}"))
        .to_string();
    assert!(
        !id.is_empty() && id.bytes().all(|b| b.is_ascii_alphanumeric()),
        "{id}"
    );
    assert_eq!(plays().len(), 2, "one viewer, both on_play URLs");

    // The player refreshes the variant URL (as Chromium's native player and hls.js do): the
    // same viewer every time, no new on_play.
    for _ in 0..5 {
        let r = http_req(http, "GET", &format!("/live/{}", lines[2])).await;
        assert!(r.starts_with("HTTP/1.1 200"), "{r}");
        assert!(r.contains("#EXT-X-TARGETDURATION"), "a media playlist: {r}");
        assert!(r.contains(&format!(".ts?hls_ctx={id}")), "{r}");
    }
    let head = http_req(http, "HEAD", &format!("/live/{}", lines[2])).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert_eq!(plays().len(), 2, "refreshes are the same viewer");
    let ids: std::collections::HashSet<String> = plays()
        .iter()
        .map(|c| field(&c.body, "client_id"))
        .collect();
    assert_eq!(ids.len(), 1, "{ids:?}");
    let clients = http_get(server.api.unwrap(), "/api/v1/clients").await;
    assert_eq!(clients.matches("\"hls-play\"").count(), 1, "{clients}");

    // A ctx the server does not know (expired, or the server restarted) is admitted under
    // that ID and served the media playlist, so the player's next refresh finds it.
    let r = http_req(http, "GET", "/live/c.m3u8?hls_ctx=zz9").await;
    assert!(
        r.starts_with("HTTP/1.1 200") && r.contains(".ts?hls_ctx=zz9"),
        "{r}"
    );
    let r = http_req(http, "GET", "/live/c.m3u8?hls_ctx=zz9").await;
    assert!(r.starts_with("HTTP/1.1 200"), "{r}");
    assert_eq!(plays().len(), 4, "one more viewer, once");
    let clients = http_get(server.api.unwrap(), "/api/v1/clients").await;
    assert_eq!(clients.matches("\"hls-play\"").count(), 2, "{clients}");
    p.close().await;
}

/// A hook server that is down is not a denial: HTTP viewers get 503 (retry later), a
/// rejecting one gets 403, and `/metrics` counts each refusal by its reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_hook_server_is_a_503_and_refusals_are_counted_by_reason() {
    let (base, _calls) = hook_server().await;
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    for (on_play, want) in [
        (format!("http://{closed}/allow"), 503),
        (format!("{base}/deny"), 403),
    ] {
        let cfg = format!(
            "[vhost.\"__defaultVhost__\".http_remux]\nenabled = true\n\
             [vhost.\"__defaultVhost__\".http_hooks]\nenabled = true\ntimeout = 1000\n\
             on_play = [\"{on_play}\"]\n"
        );
        let server = start_server("hooks-503", &cfg).await;
        let http = server.http.unwrap();
        assert_eq!(
            http_status(http, "/live/x.flv", None).await,
            want,
            "{on_play}"
        );
        // An RTMP player is refused either way.
        let url = RtmpUrl::parse(&server.url("live/x")).unwrap();
        let mut c = RtmpClient::connect(&url, T).await.unwrap();
        assert!(c.play(&url.stream, T).await.is_err());
        // A bad name is counted apart from the hook.
        let mut c = RtmpClient::connect(&url, T).await.unwrap();
        assert!(c.publish("..", T).await.is_err());
        let metrics = http_get(server.api.unwrap(), "/metrics").await;
        let count = |reason: &str| {
            metrics
                .lines()
                .find_map(|l| {
                    l.strip_prefix(&format!("srsd_denials_total{{reason=\"{reason}\"}} "))
                })
                .and_then(|n| n.trim().parse::<u64>().ok())
        };
        let hook_reason = if want == 503 {
            "hook_unreachable"
        } else {
            "hook_rejected"
        };
        assert_eq!(count(hook_reason), Some(2), "{metrics}");
        assert_eq!(count("bad_name"), Some(1), "{metrics}");
        let other = if want == 503 {
            "hook_rejected"
        } else {
            "hook_unreachable"
        };
        assert_eq!(count(other), Some(0), "{metrics}");
    }
}
