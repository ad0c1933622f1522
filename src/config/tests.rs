use super::*;

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::parse(text, "test.toml")
}

fn parse_err(text: &str) -> ConfigError {
    match parse(text) {
        Ok(config) => panic!("expected an error, parsed {config:?}"),
        Err(e) => e,
    }
}

#[test]
fn empty_text_gives_every_default() {
    let config = parse("").expect("empty config is valid");
    assert_eq!(config, Config::default());
    assert_eq!(config.listen, [Listen::port(1935)]);
    assert_eq!(config.max_connections, 1000);
    assert_eq!(config.chunk_size, 60000);
    assert_eq!(config.pid, "./objs/srsd.pid");
    assert!(!config.daemon);
    assert_eq!(config.workers, 0);
    assert_eq!(config.log.tank, LogTank::Console);
    assert_eq!(config.log.level, LogLevel::Trace);
    assert_eq!(config.log.file, "./objs/srsd.log");
    assert!(config.http_api.enabled);
    assert_eq!(config.http_api.listen.as_str(), "127.0.0.1:1985");
    assert!(!config.http_api.raw_api.enabled);
    assert!(!config.http_api.raw_api.allow_reload);
    assert!(config.http_server.enabled);
    assert_eq!(config.http_server.listen.as_str(), "8080");
    assert_eq!(config.http_server.dir, "./objs/html");
    assert!(config.ingest.is_empty());
    let hb = &config.heartbeat;
    assert!(!hb.enabled);
    assert_eq!(hb.interval.as_secs_f64(), 9.9);
    assert_eq!(hb.url, "http://127.0.0.1:8085/api/v1/servers");
    assert_eq!(hb.device_id, "");
    assert!(!hb.summaries);
    assert_eq!(config.vhost.len(), 1);
    let mut vhost = config.vhost[DEFAULT_VHOST].clone();
    assert_eq!(
        vhost.hls.path, "./objs/html",
        "hls.path follows http_server.dir"
    );
    vhost.hls.path.clear();
    assert_eq!(vhost, VhostConfig::default());
}

#[test]
fn vhost_defaults_match_srs() {
    let v = VhostConfig::default();
    assert!(v.enabled);
    assert_eq!(v.chunk_size, None);
    let play = &v.play;
    assert!(play.gop_cache);
    assert_eq!(play.gop_cache_max_frames, 2500);
    assert_eq!(play.queue_length.as_secs_f64(), 10.0);
    assert_eq!(play.time_jitter, TimeJitter::Full);
    assert!(!play.mix_correct && !play.atc && !play.atc_auto);
    assert_eq!(play.mw_latency.as_millis(), 350);
    assert_eq!((play.mw_msgs, v.min_latency, v.mw_msgs()), (None, false, 8));
    assert_eq!(v.publish.firstpkt_timeout.as_millis(), 20000);
    assert_eq!(v.publish.normal_timeout.as_millis(), 5000);
    assert!(v.publish.parse_sps);
    assert_eq!(v.cluster.mode, ClusterMode::Local);
    assert!(v.cluster.origin.is_empty());
    assert!(!v.cluster.token_traverse);
    assert_eq!(v.cluster.vhost, None);
    assert!(!v.forward.enabled && v.forward.destination.is_empty());
    assert!(!v.refer.enabled);
    assert!(v.refer.all.is_empty() && v.refer.play.is_empty() && v.refer.publish.is_empty());
    assert!(!v.security.enabled && v.security.allow.is_empty() && v.security.deny.is_empty());
    let hooks = &v.http_hooks;
    assert!(!hooks.enabled);
    assert!(hooks.on_connect.is_empty() && hooks.on_hls.is_empty());
    assert_eq!(hooks.timeout.as_millis(), 30000);
    let hls = &v.hls;
    // On, as SRS 6's shipped conf/srs.conf (its built-in default is off).
    assert!(hls.enabled);
    assert_eq!(hls.fragment.as_secs_f64(), 2.0);
    assert_eq!(hls.td_ratio, 1.5);
    assert_eq!(hls.aof_ratio, 2.1);
    assert_eq!(hls.window.as_secs_f64(), 12.0);
    assert_eq!(hls.on_error, HlsOnError::Continue);
    assert_eq!(
        hls.path, "",
        "filled in with http_server.dir by Config::parse"
    );
    assert_eq!(hls.m3u8_file, "[app]/[stream].m3u8");
    assert_eq!(hls.ts_file, "[app]/[stream]-[seq].ts");
    assert_eq!(hls.entry_prefix, "");
    assert_eq!(hls.acodec, "aac");
    assert_eq!(hls.vcodec, "h264");
    assert!(hls.cleanup);
    assert_eq!(hls.dispose.as_secs_f64(), 0.0);
    assert!(hls.wait_keyframe);
    assert!(v.http_remux.enabled);
    assert_eq!(v.http_remux.mount, "[vhost]/[app]/[stream].flv");
    let dvr = &v.dvr;
    assert!(!dvr.enabled);
    assert_eq!(dvr.plan, DvrPlan::Session);
    assert_eq!(dvr.path, "./objs/dvr/[app]/[stream].[timestamp].flv");
    assert_eq!(dvr.duration.as_secs_f64(), 30.0);
    assert!(dvr.wait_keyframe);
    assert_eq!(dvr.time_jitter, TimeJitter::Full);
    assert!(v.transcode.is_empty());
}

#[test]
fn embedded_default_parses_and_turns_on_hls_and_flv() {
    // As written; `embedded_default` anchors the relative paths (anchor.rs tests that).
    let config = Config::parse(Config::DEFAULT_TOML, "conf/srsd.toml").unwrap();
    assert_eq!(config.listen, [Listen::port(1935)]);
    assert_eq!(config.http_server.listen.as_str(), "8080");
    assert_eq!(config.http_server.dir, "./objs/html");
    assert_eq!(config.http_api.listen.as_str(), "127.0.0.1:1985");
    assert_eq!(config.log.tank, LogTank::Console);
    assert_eq!(config.log.level, LogLevel::Trace);
    assert_eq!(config.pid, "./objs/srsd.pid");
    let (name, vhost) = config.resolve_vhost("any.host").expect("default vhost");
    assert_eq!(name, DEFAULT_VHOST);
    assert!(vhost.hls.enabled);
    assert_eq!(vhost.hls.path, "./objs/html");
    assert!(vhost.http_remux.enabled);
    assert_eq!(vhost.http_remux.mount, "[vhost]/[app]/[stream].flv");
}

#[test]
fn full_toml_parses() {
    let text = include_str!("../../conf/full.toml");
    let config = Config::parse(text, "conf/full.toml").expect("conf/full.toml is valid");
    // Its default vhost documents defaults, so apart from the example transcode it equals
    // the struct default.
    let mut vhost = config.vhost[DEFAULT_VHOST].clone();
    assert_eq!(vhost.transcode.len(), 1);
    assert_eq!(vhost.transcode[0].engine.len(), 1);
    vhost.transcode.clear();
    // hls.path "" follows http_server.dir once parsed.
    assert_eq!(vhost.hls.path, config.http_server.dir);
    vhost.hls.path.clear();
    assert_eq!(vhost, VhostConfig::default());
    let edge = &config.vhost["edge.example.com"];
    assert_eq!(edge.cluster.mode, ClusterMode::Remote);
    assert_eq!(config.ingest.len(), 1);
    assert_eq!(config.ingest[0].input.kind, IngestInputType::File);
    let mut top = config.clone();
    top.vhost = Config::default().vhost;
    top.ingest.clear();
    assert_eq!(top, Config::default());
}

#[test]
fn unknown_key_reports_its_exact_line_and_column() {
    let text = "listen = [\"1935\"]\n\n[vhost.\"a.b\".hls]\nenabled = true\n  fragmnet = 3\n";
    let e = parse_err(text);
    assert_eq!((e.file.as_str(), e.line, e.col), ("test.toml", 5, 3), "{e}");
    assert!(e.message.contains("fragmnet"), "{e}");
    assert!(e.to_string().starts_with("test.toml:5:3: "), "{e}");
}

#[test]
fn unknown_top_level_key_is_an_error() {
    let e = parse_err("chunk_size = 4096\nlisten_port = 1935\n");
    assert_eq!((e.line, e.col), (2, 1), "{e}");
}

#[test]
fn wrong_value_type_reports_the_value() {
    let e = parse_err("chunk_size = \"big\"\n");
    assert_eq!((e.line, e.col), (1, 14), "{e}");
    let e = parse_err("[vhost.x.play]\ngop_cache = 1\n");
    assert_eq!(e.line, 2, "{e}");
}

#[test]
fn unknown_enum_value_is_an_error_with_position() {
    let e = parse_err("[log]\nlevel = \"loud\"\n");
    assert_eq!(e.line, 2, "{e}");
    assert!(
        e.message.contains("loud") || e.message.contains("variant"),
        "{e}"
    );
    let e = parse_err("[vhost.x.play]\n time_jitter = \"Full\"\n");
    assert_eq!(e.line, 2, "{e}");
}

#[test]
fn enums_use_lowercase_names() {
    let config = parse(
        "[log]\ntank = \"file\"\nlevel = \"verbose\"\n\
         [vhost.x.play]\ntime_jitter = \"zero\"\n\
         [vhost.x.hls]\non_error = \"disconnect\"\n\
         [vhost.x.dvr]\nplan = \"segment\"\ntime_jitter = \"off\"\n",
    )
    .expect("valid");
    assert_eq!(config.log.tank, LogTank::File);
    assert_eq!(config.log.level, LogLevel::Verbose);
    let x = &config.vhost["x"];
    assert_eq!(x.play.time_jitter, TimeJitter::Zero);
    assert_eq!(x.hls.on_error, HlsOnError::Disconnect);
    assert_eq!(x.dvr.plan, DvrPlan::Segment);
    assert_eq!(x.dvr.time_jitter, TimeJitter::Off);
}

#[test]
fn chunk_size_out_of_range_points_at_the_key() {
    let e = parse_err("listen = [\"1935\"]\nchunk_size = 127\n");
    assert_eq!((e.line, e.col), (2, 1), "{e}");
    assert!(e.message.contains("127"), "{e}");
    assert!(parse("chunk_size = 128").is_ok());
    assert!(parse("chunk_size = 65536").is_ok());
    let e = parse_err("[vhost.\"a.b\"]\n  chunk_size = 65537\n");
    assert_eq!((e.line, e.col), (2, 3), "{e}");
    // Negative numbers do not fit u32: a type error from serde, still positioned.
    let e = parse_err("chunk_size = -1\n");
    assert_eq!(e.line, 1, "{e}");
}

#[test]
fn mw_msgs_defaults_to_8_or_0_with_min_latency_and_is_bounded_as_srs() {
    let cases = [
        ("", 8),
        ("min_latency = true\n", 0),
        ("min_latency = true\nplay.mw_msgs = 3\n", 3),
        ("play.mw_msgs = 0\n", 0),
        ("play.mw_msgs = 128\n", 128),
    ];
    for (body, want) in cases {
        let c = parse(&format!("[vhost.x]\n{body}")).unwrap();
        assert_eq!(c.vhost["x"].mw_msgs(), want, "{body}");
    }
    let e = parse_err("[vhost.x]\nmin_latency = true\n[vhost.x.play]\nmw_msgs = 129\n");
    assert_eq!((e.line, e.col), (4, 1), "{e}");
    assert!(e.message.contains("129 out of range 0..=128"), "{e}");
}

#[test]
fn remote_cluster_without_origin_is_an_error() {
    let e = parse_err("[vhost.\"edge.a.com\".cluster]\nmode = \"remote\"\n");
    assert_eq!((e.line, e.col), (2, 1), "{e}");
    assert!(e.message.contains("edge.a.com"), "{e}");
    let ok = parse("[vhost.e.cluster]\nmode = \"remote\"\norigin = [\"10.0.0.1:1935\"]\n");
    assert!(ok.is_ok());
}

#[test]
fn negative_queue_length_and_zero_fragment_are_errors() {
    // A duration the server could not apply fails at the value, typed at load.
    let e = parse_err("[vhost.x]\nplay.queue_length = -1\n");
    assert_eq!((e.line, e.col), (2, 21), "{e}");
    assert!(e.message.contains("-1 is not a number of seconds"), "{e}");
    let e = parse_err("[vhost.x.play]\nmw_latency = -350\n");
    assert_eq!((e.line, e.col), (2, 14), "{e}");
    assert!(e.message.contains("milliseconds"), "{e}");
    let e = parse_err("[vhost.x.hls]\nwindow = inf\n");
    assert_eq!(e.line, 2, "{e}");
    let e = parse_err("[vhost.x.hls]\nenabled = true\nfragment = 0\n");
    assert_eq!((e.line, e.col), (3, 1), "{e}");
    assert!(parse("[vhost.x.play]\nqueue_length = 0\n").is_ok());
    // Integers are accepted where seconds are fractional.
    let config = parse("[vhost.x.hls]\nfragment = 5\n").expect("valid");
    assert_eq!(config.vhost["x"].hls.fragment.as_secs_f64(), 5.0);
}

#[test]
fn bad_listen_address_is_an_error() {
    let e = parse_err("\nlisten = [\"1935\", \"localhost:1935\"]\n");
    assert_eq!((e.line, e.col), (2, 10), "{e}");
    assert!(e.message.contains("localhost:1935"), "{e}");
    let e = parse_err("[http_api]\nlisten = \"99999\"\n");
    assert_eq!((e.line, e.col), (2, 10), "{e}");
    let e = parse_err("[http_server]\nlisten = \"\"\n");
    assert_eq!(e.line, 2, "{e}");
    assert!(parse("listen = []").is_err());
}

#[test]
fn security_rules_need_an_action_and_a_target() {
    assert!(parse("[vhost.x.security]\nallow = [\"publish all\", \"play 10.0.0.0/8\"]\n").is_ok());
    let e = parse_err("[vhost.x.security]\nallow = []\ndeny = [\"watch all\"]\n");
    assert_eq!(e.line, 3, "{e}");
    // What the server could not apply is refused at load, with the key's line: a prefix
    // past the address size, a non-address, a mapped IPv4 prefix under 96.
    for bad in [
        "play 10.0.0.0/99",
        "play 10.0.0.300",
        "publish ::1/129",
        "play ::ffff:10.0.0.0/8",
        "play 10.0.0.0/x",
    ] {
        let e = parse_err(&format!(
            "[vhost.x.security]\nenabled = true\nallow = [\"publish all\", \"{bad}\"]\n"
        ));
        assert_eq!(e.line, 3, "{bad}: {e}");
        assert!(e.to_string().contains(bad), "{bad}: {e}");
    }
}

#[test]
fn listen_entries_parse_to_socket_addresses() {
    let config = parse("listen = [\"1935\", \"127.0.0.1:19350\", \"[::1]:1936\", \" 0 \"]\n")
        .expect("valid");
    let addrs = config.listen_addrs();
    let want: Vec<SocketAddr> = ["0.0.0.0:1935", "127.0.0.1:19350", "[::1]:1936", "0.0.0.0:0"]
        .iter()
        .map(|s| s.parse().expect("literal"))
        .collect();
    assert_eq!(addrs, want);
    assert_eq!(parse_listen("65536"), None);
    assert_eq!(parse_listen("::1:1935"), None);
    assert_eq!(parse_listen(""), None);
    // Refused at load, where the entry is, for each listener key.
    for (text, line, col) in [
        ("listen = [\"1935\", \"nope\"]\n", 1, 10),
        ("[http_api]\nlisten = \"1985x\"\n", 2, 10),
        (
            "[http_server]\nenabled = true\nlisten = \"host:80\"\n",
            3,
            10,
        ),
    ] {
        let e = parse(text).expect_err(text);
        assert_eq!((e.line, e.col), (line, col), "{text}: {e}");
        assert!(e.message.contains("bad address"), "{text}: {e}");
    }
}

#[test]
fn resolve_vhost_prefers_exact_then_default() {
    let config = parse(
        "[vhost.\"live.example.com\"]\nchunk_size = 4096\n\
         [vhost.\"off.example.com\"]\nenabled = false\n",
    )
    .expect("valid");
    let (name, vhost) = config.resolve_vhost("live.example.com").expect("exact");
    assert_eq!(name, "live.example.com");
    assert_eq!(config.chunk_size_for(vhost), 4096);
    let (name, vhost) = config.resolve_vhost("other.example.com").expect("fallback");
    assert_eq!(name, DEFAULT_VHOST);
    assert_eq!(config.chunk_size_for(vhost), 60000);
    // An exact match that is disabled does not fall back to the default vhost.
    assert!(config.resolve_vhost("off.example.com").is_none());
    // Names are exact: no case folding.
    assert_eq!(
        config.resolve_vhost("LIVE.example.com").map(|v| v.0),
        Some(DEFAULT_VHOST)
    );
}

#[test]
fn default_vhost_is_inserted_unless_explicitly_disabled() {
    let config = parse("[vhost.a]\n").expect("valid");
    assert!(config.vhost.contains_key(DEFAULT_VHOST));
    assert!(config.resolve_vhost("zzz").is_some());
    let config = parse("[vhost.a]\n[vhost.__defaultVhost__]\nenabled = false\n").expect("valid");
    assert!(!config.vhost[DEFAULT_VHOST].enabled);
    assert!(config.resolve_vhost("zzz").is_none());
    assert_eq!(config.resolve_vhost("a").map(|v| v.0), Some("a"));
}

#[test]
fn quoted_vhost_names_with_dots_are_one_key() {
    let config = parse("[vhost.\"a.b.c\".play]\ngop_cache = false\n").expect("valid");
    assert!(!config.vhost["a.b.c"].play.gop_cache);
    assert!(!config.vhost.contains_key("a"));
}

#[test]
fn transcode_and_ingest_blocks_parse() {
    let config = parse(
        "[[vhost.x.transcode]]\nenabled = true\nscope = \"live\"\n\
         [[vhost.x.transcode.engine]]\nname = \"hd\"\nvparams = [\"-g\", \"50\"]\n\
         [[ingest]]\nid = \"cam\"\ninput = { type = \"device\", url = \"/dev/video0\" }\n",
    )
    .expect("valid");
    let t = &config.vhost["x"].transcode[0];
    assert!(t.enabled);
    assert_eq!(t.ffmpeg, "ffmpeg");
    assert_eq!(t.engine[0].name, "hd");
    assert_eq!(t.engine[0].vparams, ["-g", "50"]);
    assert_eq!(t.engine[0].vcodec, VideoCodec(Codec::Copy));
    assert_eq!(config.ingest[0].input.kind, IngestInputType::Device);
    assert_eq!(config.ingest[0].vhost, DEFAULT_VHOST);
    let e = parse_err("[[ingest]]\ninput = { type = \"tape\" }\n");
    assert_eq!(e.line, 2, "{e}");
}

#[test]
fn syntax_error_has_a_position() {
    let e = parse_err("listen = [\"1935\"\nchunk_size = 1\n");
    assert!(e.line >= 1 && e.col >= 1, "{e}");
    assert!(!e.message.contains('\n'), "one line: {e}");
    let e = parse_err("a = \n");
    assert_eq!(e.line, 1, "{e}");
}

#[test]
fn load_reports_io_errors_at_line_zero() {
    let path =
        std::env::temp_dir().join(format!("srsd-config-missing-{}.toml", std::process::id()));
    let e = Config::load(&path).expect_err("missing file");
    assert_eq!((e.line, e.col), (0, 0));
    // Shown without a place in the text: "FILE: cannot read config: ...".
    assert!(e
        .to_string()
        .starts_with(&format!("{}: cannot read config: ", path.display())));
}

#[test]
fn load_reads_and_parses_a_file() {
    let path = std::env::temp_dir().join(format!("srsd-config-load-{}.toml", std::process::id()));
    std::fs::write(&path, "chunk_size = 4096\n").expect("write temp file");
    let loaded = Config::load(&path);
    let _ = std::fs::remove_file(&path);
    assert_eq!(loaded.expect("valid").chunk_size, 4096);
}

mod hostile {
    use super::*;
    use crate::protocol::testutil::{fuzz, mutate, Rng};

    const FULL: &str = include_str!("../../conf/full.toml");

    /// A line-level mutation of `text`: delete lines, swap values between keys, duplicate a
    /// line, or drop in garbage.
    fn mutate_lines(rng: &mut Rng, text: &str) -> String {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        for _ in 0..1 + rng.below(4) {
            let n = lines.len().max(1);
            let i = rng.below(n).min(lines.len().saturating_sub(1));
            match rng.below(5) {
                0 => {
                    if !lines.is_empty() {
                        lines.remove(i);
                    }
                }
                1 => {
                    let j = rng.below(n).min(lines.len().saturating_sub(1));
                    let value = |l: &str| l.split_once('=').map(|(_, v)| v.to_string());
                    if let (Some(a), Some(b)) = (value(&lines[i]), value(&lines[j])) {
                        let key = |l: &str| l.split_once('=').map(|(k, _)| k.to_string());
                        let (ka, kb) = (key(&lines[i]).unwrap(), key(&lines[j]).unwrap());
                        lines[i] = format!("{ka}={b}");
                        lines[j] = format!("{kb}={a}");
                    }
                }
                2 => {
                    if let Some(l) = lines.get(i).cloned() {
                        lines.insert(i, l);
                    }
                }
                3 => {
                    let garbage = *rng.pick(&[
                        "[[",
                        "]",
                        "x = ",
                        "= 1",
                        "\"",
                        "a = 99999999999999999999",
                        "[vhost.\"",
                        "listen = [\"-1\"]",
                        "chunk_size = 0",
                        "a.b.c = {",
                        "\u{0}",
                        "'''",
                        "queue_length = -1e309",
                        "mount = \"[app]\"",
                    ]);
                    lines.insert(i, garbage.to_string());
                }
                _ => {
                    if let Some(l) = lines.get_mut(i) {
                        if let Some((k, _)) = l.split_once('=') {
                            let v = *rng.pick(&[
                                "0",
                                "-1",
                                "1e400",
                                "\"\"",
                                "true",
                                "[]",
                                "{}",
                                "4294967296",
                                "\"\u{e9}\"",
                                "nan",
                                "inf",
                            ]);
                            *l = format!("{k}= {v}");
                        }
                    }
                }
            }
        }
        lines.join("\n")
    }

    #[test]
    fn mutated_full_config_parses_or_fails_with_a_location() {
        assert!(
            Config::parse(FULL, "x.toml").is_ok(),
            "conf/full.toml is valid"
        );
        fuzz("config", 0xC0F1, 1_500, |rng| {
            let text = if rng.chance(1, 4) {
                String::from_utf8_lossy(&mutate(rng, FULL.as_bytes())).into_owned()
            } else {
                mutate_lines(rng, FULL)
            };
            if let Err(e) = Config::parse(&text, "x.toml") {
                let shown = e.to_string();
                assert!(shown.starts_with("x.toml:"), "{shown}");
                let mut parts = shown.splitn(4, ':');
                parts.next();
                let line: usize = parts.next().unwrap().parse().expect("a line number");
                let col: usize = parts.next().unwrap().parse().expect("a column number");
                assert!(line >= 1 && col >= 1, "{shown}");
                assert!(line <= text.lines().count() + 1, "{shown}");
            }
        });
    }
}

#[test]
fn engine_codecs_are_typed_at_load() {
    let engine = |v: &str, a: &str| {
        format!(
            "[[vhost.x.transcode]]\nenabled = true\n[[vhost.x.transcode.engine]]\nenabled = true\nvcodec = \"{v}\"\nacodec = \"{a}\"\n"
        )
    };
    let c = parse(&engine("h264_v4l2m2m", "an")).expect("valid");
    let e = &c.vhost["x"].transcode[0].engine[0];
    assert_eq!(e.vcodec, VideoCodec(Codec::Encode("h264_v4l2m2m".into())));
    assert_eq!(e.acodec, AudioCodec(Codec::Drop));
    let c = parse(&engine("vn", "copy")).expect("valid");
    let e = &c.vhost["x"].transcode[0].engine[0];
    assert_eq!((&e.vcodec.0, &e.acodec.0), (&Codec::Drop, &Codec::Copy));
    // What ffmpeg could not take as one encoder argument is refused where it is written.
    for (v, a, line) in [
        ("lib x264", "aac", 5),
        ("libx264", "aac; rm -rf /", 6),
        ("an", "aac", 5),
        ("libx264", "vn", 6),
        ("", "aac", 5),
    ] {
        let e = parse_err(&engine(v, a));
        assert_eq!(e.line, line, "{v:?} {a:?}: {e}");
    }
}

#[test]
fn an_empty_file_means_the_embedded_default() {
    let empty = Config::parse("", "empty.toml").unwrap();
    let embedded = Config::parse(Config::DEFAULT_TOML, "conf/srsd.toml").unwrap();
    assert_eq!(empty, embedded);
    let v = &empty.vhost[DEFAULT_VHOST];
    assert!(v.hls.enabled && v.http_remux.enabled);
    assert_eq!(v.hls.path, empty.http_server.dir);
}

#[test]
fn a_file_without_vhosts_writes_hls_under_its_http_root() {
    let c = Config::parse("[http_server]\ndir = \"/srv/www\"\n", "t.toml").unwrap();
    assert_eq!(c.vhost[DEFAULT_VHOST].hls.path, "/srv/www");
}

#[test]
fn a_vhost_without_hls_path_writes_under_the_http_root() {
    let c = Config::parse(
        "[http_server]\ndir = \"/srv/html\"\n[vhost.\"a.example\"]\n",
        "t.toml",
    )
    .unwrap();
    assert_eq!(c.vhost["a.example"].hls.path, "/srv/html");
    assert!(c.vhost["a.example"].http_remux.enabled);
}

#[test]
fn restart_only_keys_are_compared_with_what_runs() {
    let running = parse("listen = [\"1935\"]\n[http_server]\nlisten = \"8080\"\n").unwrap();
    let same = parse("listen = [\"1935\"]\nchunk_size = 4096\n").unwrap();
    assert!(
        same.restart_only_changes(&running).is_empty(),
        "reloadable keys only"
    );
    let moved = parse(
        "listen = [\"1936\"]\nworkers = 1\n[http_server]\nlisten = \"8081\"\n\
         [http_api]\nenabled = false\n",
    )
    .unwrap();
    assert_eq!(
        moved.restart_only_changes(&running),
        [
            "listen",
            "workers",
            "http_api.enabled",
            "http_server.listen"
        ]
    );
}
