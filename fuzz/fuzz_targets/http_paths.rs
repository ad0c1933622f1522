//! HTTP request paths, Range headers, RTMP tcUrls and stream names, and HTTP-FLV/TS/HLS mounts
//! (src/app/http/static_files.rs, src/app/url.rs, src/app/http/live.rs). The input is split at
//! newlines into the fields. Beyond "no panic, no hang", the no-escape check: whatever is
//! accepted, joined under a root directory, stays under it (only normal path components).
#![no_main]
use libfuzzer_sys::fuzz_target;
use srsd::app::http::live;
use srsd::app::http::static_files::{parse_range, relative_path, RangeSpec};
use srsd::protocol::rtmp::url;
use srsd::config::Config;
use std::path::{Component, Path};
use std::sync::OnceLock;

fn stays_under_root(rel: &str) -> bool {
    let joined = Path::new("/root").join(rel);
    joined.starts_with("/root")
        && joined
            .components()
            .skip(2)
            .all(|c| matches!(c, Component::Normal(_)))
}

fn configs() -> &'static [Config] {
    static C: OnceLock<Vec<Config>> = OnceLock::new();
    C.get_or_init(|| {
        [
            "[vhost]/[app]/[stream].flv",
            "/[app]/[stream].ts",
            "/[stream]/[app].m3u8",
        ]
        .iter()
        .map(|mount| {
            let text = format!(
                "[vhost.\"__defaultVhost__\".http_remux]\nenabled = true\nmount = \"{mount}\"\n\
                     [vhost.\"v.com\".http_remux]\nenabled = true\n"
            );
            Config::parse(&text, "fuzz.toml").expect("fuzz config")
        })
        .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut f = text.split('\n');
    let (path, range, tc_url, stream) = (
        f.next().unwrap_or(""),
        f.next().unwrap_or(""),
        f.next().unwrap_or(""),
        f.next().unwrap_or(""),
    );
    if let Ok(rel) = relative_path(path) {
        assert!(
            rel.components().all(|c| matches!(c, Component::Normal(_))),
            "{path:?} -> {rel:?}"
        );
    }
    let len = match data.first() {
        Some(b) if b & 1 == 0 => u64::from(*b) * 1000,
        Some(_) => u64::MAX,
        None => 0,
    };
    if let RangeSpec::Part(a, b) = parse_range(range, len) {
        assert!(a <= b && b < len, "{range:?} of {len}: {a}-{b}");
    }
    for r in [url::parse(tc_url, stream), url::parse_connect(tc_url)]
        .into_iter()
        .flatten()
    {
        assert!(
            stays_under_root(&r.app) || r.app.is_empty(),
            "{tc_url:?} {stream:?}: {r:?}"
        );
        assert!(
            !r.stream.split('/').any(|s| s == ".."),
            "{tc_url:?} {stream:?}: {r:?}"
        );
        assert!(
            !r.app.split('/').any(|s| s == ".."),
            "{tc_url:?} {stream:?}: {r:?}"
        );
    }
    let _ = url::query_value(stream, "vhost");
    let c = &configs()[data.len() % configs().len()];
    for host in ["v.com", "", "h"] {
        if let Some((r, _format)) = live::find(c, host, path) {
            assert!(!r.app.split('/').any(|s| s == ".."), "{path:?}: {r:?}");
            assert!(!r.stream.contains('/'), "{path:?}: {r:?}");
        }
    }
    let _ = live::match_template(range, path);
});
