use super::*;
use crate::config::{ClusterMode, DvrPlan, HlsStorage, IngestInputType, TimeJitter};
use crate::protocol::testutil::{fuzz, mutate};
use std::collections::HashMap;

/// SRS 3+ syntax: every directive family in its block.
pub const SRS3: &str = include_str!("srs3.conf");

/// SRS 2 syntax: the same families, flat where SRS 2 had them flat.
pub const SRS2: &str = include_str!("srs2.conf");

fn no_includes(name: &str) -> Result<(String, String), String> {
    Err(format!("no include {name} here"))
}

fn import_text(text: &str) -> (Config, String, usize) {
    let d = parse(text, "srs.conf", &mut no_includes).expect("SRS syntax parses");
    let (toml, unmapped) = import(&d, "srs.conf").expect("srsd accepts the import");
    let config = Config::parse(&toml, "out.toml").expect("valid TOML");
    (config, toml, unmapped)
}

#[test]
fn srs3_nested_config_maps_every_family() {
    let (c, toml, unmapped) = import_text(SRS3);
    assert_eq!(c.listen, ["1935", "1936"]);
    assert_eq!(c.max_connections, 500);
    assert_eq!(c.pid, "./objs/srs.pid");
    assert_eq!(c.log.file, "./objs/srs.log");
    assert!(c.http_api.enabled && c.http_api.raw_api.allow_reload);
    assert_eq!(c.http_api.listen, "1985");
    assert_eq!(c.http_server.dir, "./objs/nginx/html");
    assert_eq!(c.heartbeat.interval.as_secs_f64(), 9.3);
    let v = &c.vhost[DEFAULT_VHOST];
    assert!(!v.play.gop_cache);
    assert_eq!(v.play.queue_length.as_secs_f64(), 20.0);
    assert_eq!(v.play.time_jitter, TimeJitter::Zero);
    assert_eq!(v.publish.firstpkt_timeout.as_millis(), 30000);
    assert!(v.hls.enabled);
    assert_eq!(v.hls.fragment.as_secs_f64(), 4.0);
    assert_eq!(v.hls.dispose.as_secs_f64(), 30.0);
    assert!(v.http_remux.enabled);
    assert_eq!(v.dvr.plan, DvrPlan::Segment);
    assert_eq!(v.dvr.duration.as_secs_f64(), 60.0);
    assert_eq!(v.http_hooks.on_publish.len(), 2);
    assert_eq!(
        v.security.allow,
        ["publish 127.0.0.1", "publish 192.168.0.0/16", "play all"]
    );
    assert_eq!(v.security.deny, ["publish all"]);
    assert_eq!(v.refer.all, ["github.com"]);
    assert_eq!(v.forward.destination.len(), 2);
    let t = &v.transcode[0];
    assert_eq!(t.scope, "live/livestream");
    let e = &t.engine[0];
    assert_eq!(e.name, "sd");
    assert_eq!(
        e.vfilter,
        [
            "-i",
            "./doc/ffmpeg-logo.png",
            "-filter_complex",
            "overlay=10:10"
        ]
    );
    assert_eq!(e.vparams, ["-t", "100", "-coder", "1"]);
    assert_eq!(e.aparams, ["-profile:a", "aac_low"]);
    assert_eq!(e.vbitrate, 500);
    let i = &c.ingest[0];
    assert_eq!(
        (i.id.as_str(), i.vhost.as_str()),
        ("livestream", DEFAULT_VHOST)
    );
    assert_eq!(i.input.kind, IngestInputType::File);
    assert_eq!(i.engine.len(), 1);
    let edge = &c.vhost["edge.example.com"];
    assert_eq!(edge.cluster.mode, ClusterMode::Remote);
    assert!(edge.cluster.token_traverse);
    // SRS's defaults where srsd's differ: a vhost without hls/http_remux blocks has neither.
    assert!(!edge.hls.enabled && !edge.http_remux.enabled);
    let bc = &c.vhost["bandcheck.example.com"];
    assert!(bc.bandcheck.enabled);
    assert_eq!(bc.chunk_size, Some(65000));
    // Each directive without an srsd key is a comment that says so.
    for what in [
        "ff_log_dir",
        "crossdomain",
        "rtc_server",
        "hls_nb_notify",
        "fast_cache",
        "on_hls_notify",
        "mr off",
    ] {
        assert!(
            toml.lines()
                .any(|l| l.starts_with("# not imported: ") && l.contains(what)),
            "{what} in\n{toml}"
        );
    }
    assert_eq!(unmapped, 7, "{toml}");
    // SRS's merged-write message count and its min_latency default.
    let v = &c.vhost[DEFAULT_VHOST];
    assert!(v.min_latency && v.tcp_nodelay);
    assert_eq!((v.play.mw_msgs, v.mw_msgs()), (Some(4), 4));
}

#[test]
fn srs2_flat_config_maps_to_the_same_keys() {
    let (c, toml, _) = import_text(SRS2);
    let v = &c.vhost[DEFAULT_VHOST];
    assert!(v.play.gop_cache);
    assert_eq!(v.play.mw_latency.as_millis(), 350);
    assert_eq!(v.publish.firstpkt_timeout.as_millis(), 20000);
    assert!(v.forward.enabled);
    assert_eq!(v.forward.destination, ["127.0.0.1:19350"]);
    assert!(v.refer.enabled);
    assert_eq!(v.refer.all, ["github.com"]);
    assert_eq!(v.refer.publish, ["ossrs.net"]);
    assert_eq!(v.hls.storage, HlsStorage::Memory);
    assert_eq!(v.hls.window.as_secs_f64(), 60.0);
    assert!(!v.http_remux.enabled, "SRS 2 had no http_remux here");
    assert_eq!(v.dvr.plan, DvrPlan::Session);
    let edge = &c.vhost["edge.srs.com"];
    assert_eq!(edge.cluster.mode, ClusterMode::Remote);
    assert_eq!(edge.cluster.origin, ["127.0.0.1:1935", "localhost:1935"]);
    // No http_api/http_server blocks: off, as in SRS.
    assert!(!c.http_api.enabled && !c.http_server.enabled);
    assert!(toml.contains("# not imported: mr { ... }"), "{toml}");
}

#[test]
fn a_config_without_default_vhost_refuses_unknown_vhosts_as_srs() {
    let (c, _, _) = import_text("listen 1935;\nvhost a.com { }\n");
    assert!(c.resolve_vhost("b.com").is_none());
    assert!(c.resolve_vhost("a.com").is_some());
}

#[test]
fn includes_are_spliced_in_place_at_any_level() {
    let files: HashMap<&str, &str> = HashMap::from([
        ("vhosts.conf", "vhost a.com { include play.conf; }"),
        ("play.conf", "play { gop_cache off; }"),
        ("loop.conf", "include loop.conf;"),
    ]);
    let mut load = |name: &str| {
        files
            .get(name)
            .map(|t| (name.to_string(), t.to_string()))
            .ok_or_else(|| "missing".to_string())
    };
    let d = parse(
        "listen 1935;\ninclude vhosts.conf;\n",
        "srs.conf",
        &mut load,
    )
    .unwrap();
    let (toml, _) = import(&d, "srs.conf").unwrap();
    let c = Config::parse(&toml, "x").unwrap();
    assert!(!c.vhost["a.com"].play.gop_cache);
    let e = parse("include loop.conf;", "srs.conf", &mut load).unwrap_err();
    assert!(e.message.contains("includes nested deeper"), "{e}");
    let e = parse("include nothere.conf;", "srs.conf", &mut load).unwrap_err();
    assert_eq!(e.to_string(), "srs.conf:1:1: include nothere.conf: missing");
}

#[test]
fn syntax_errors_say_where() {
    for (text, at, what) in [
        ("listen 1935", "1:1", "needs \";\""),
        ("vhost a {\n play { gop_cache on; }\n", "1:1", "not closed"),
        ("}\n", "1:1", "unexpected"),
        ("listen \"1935;\n", "1:8", "unterminated"),
        ("vhost a { gop_cache on }", "1:24", "before \"}\""),
    ] {
        let e = parse(text, "srs.conf", &mut no_includes).unwrap_err();
        assert_eq!(e.at.to_string(), format!("srs.conf:{at}"), "{text}: {e}");
        assert!(e.message.contains(what), "{text}: {e}");
    }
    let deep = "a {".repeat(MAX_DEPTH + 1) + &"}".repeat(MAX_DEPTH + 1);
    let e = parse(&deep, "srs.conf", &mut no_includes).unwrap_err();
    assert!(e.message.contains("nested deeper"), "{e}");
}

#[test]
fn srs_syntax_is_told_apart_from_toml() {
    assert!(looks_like_srs(SRS2) && looks_like_srs(SRS3));
    assert!(!looks_like_srs(Config::DEFAULT_TOML));
    assert!(!looks_like_srs(include_str!("../../../conf/full.toml")));
}

#[test]
fn hostile_srs_configs_never_panic_and_every_import_parses() {
    fuzz("import-srs", 0x5125, 800, |rng| {
        let base = if rng.chance(1, 2) { SRS3 } else { SRS2 };
        let text = String::from_utf8_lossy(&mutate(rng, base.as_bytes())).into_owned();
        if let Ok(d) = parse(&text, "srs.conf", &mut no_includes) {
            match import(&d, "srs.conf") {
                Ok((toml, _)) => {
                    if let Err(e) = Config::parse(&toml, "x") {
                        panic!("{e}\n{toml}");
                    }
                }
                Err(e) => panic!("import failed: {e}\n{text}"),
            }
        }
    });
}
