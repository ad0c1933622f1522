//! `srsd import-srs` as an SRS user runs it: SRS 2 and SRS 3+ configs (with an include) in,
//! TOML out that `srsd -t` accepts; `srsd -c srs.conf` says to run the importer.

mod common;

use std::path::Path;
use std::process::{Command, Output};

fn srsd(args: &[&str], dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_srsd"))
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

const SRS3: &str = "# SRS 3+\nlisten 1935 1936;\nmax_connections 1000;\n\
srs_log_tank file;\nsrs_log_file ./objs/srs.log;\n\
http_api { enabled on; listen 1985; }\nhttp_server { enabled on; listen 8080; dir ./objs/nginx/html; }\n\
stream_caster { enabled off; caster mpegts_over_udp; }\n\
include vhosts.conf;\n";

const VHOSTS: &str = "vhost __defaultVhost__ {\n\
    play { gop_cache on; queue_length 10; mw_latency 100; }\n\
    publish { firstpkt_timeout 20000; }\n\
    hls { enabled on; hls_fragment 2; hls_window 10; hls_path ./objs/nginx/html; }\n\
    http_remux { enabled on; mount [vhost]/[app]/[stream].flv; }\n\
    dvr { enabled off; dvr_plan session; }\n\
    http_hooks { enabled on; on_publish http://127.0.0.1:8085/api/v1/streams; }\n\
    security { enabled on; allow publish 127.0.0.1; deny publish all; allow play all; }\n\
    refer { enabled off; }\n\
    forward { enabled on; destination 127.0.0.1:19350; }\n\
    transcode live { enabled on; ffmpeg ffmpeg; engine ld { enabled on; vcodec libx264; vbitrate 300; acodec aac; abitrate 45; output rtmp://127.0.0.1:[port]/[app]/[stream]_[engine]; } }\n\
    ingest cam { enabled on; input { type stream; url rtmp://127.0.0.1/live/cam; } ffmpeg ffmpeg; engine { enabled off; output rtmp://127.0.0.1:[port]/live/cam2; } }\n\
}\n\
vhost edge.example.com { cluster { mode remote; origin 127.0.0.1:19350; } }\n";

const SRS2: &str = "listen 1935;\nvhost __defaultVhost__ {\n    gop_cache on;\n\
    queue_length 10;\n    forward 127.0.0.1:19350;\n    refer github.com;\n\
    mode remote;\n    origin 127.0.0.1:19350;\n    mr { enabled off; }\n\
    hls { enabled on; hls_storage ram; }\n}\n";

#[test]
fn srs_configs_import_into_toml_that_srsd_accepts() {
    let dir = common::temp_dir("import-srs");
    std::fs::write(dir.join("srs3.conf"), SRS3).unwrap();
    std::fs::write(dir.join("vhosts.conf"), VHOSTS).unwrap();
    std::fs::write(dir.join("srs2.conf"), SRS2).unwrap();
    for (conf, expect) in [
        (
            "srs3.conf",
            &[
                "listen = [\"1935\", \"1936\"]",
                "on_publish = ",
                "[[ingest]]",
            ][..],
        ),
        (
            "srs2.conf",
            &["mode = \"remote\"", "storage = \"memory\""][..],
        ),
    ] {
        let out = srsd(&["import-srs", conf], &dir);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{conf}: {err}");
        let toml = String::from_utf8(out.stdout).unwrap();
        for e in expect {
            assert!(toml.contains(e), "{conf}: {e} in\n{toml}");
        }
        assert!(toml.contains("# not imported: "), "{toml}");
        assert!(err.contains("not imported"), "{err}");
        let name = format!("{conf}.toml");
        std::fs::write(dir.join(&name), &toml).unwrap();
        let t = srsd(&["-t", "-c", &name], &dir);
        assert!(
            t.status.success(),
            "srsd -t {name}: {}\n{toml}",
            String::from_utf8_lossy(&t.stderr)
        );
    }
}

#[test]
fn srsd_given_an_srs_config_says_to_run_the_importer() {
    let dir = common::temp_dir("import-srs-hint");
    std::fs::write(dir.join("srs.conf"), SRS2).unwrap();
    for args in [&["-c", "srs.conf"][..], &["-t", "-c", "srs.conf"]] {
        let out = srsd(args, &dir);
        assert_eq!(out.status.code(), Some(1));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("srsd import-srs srs.conf > srsd.toml"),
            "{err}"
        );
    }
    // A missing file is named, not placed at line 0.
    let out = srsd(&["-t", "-c", "nothere.toml"], &dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nothere.toml: cannot read config"), "{err}");
    // Bad SRS syntax is reported at its place.
    std::fs::write(dir.join("bad.conf"), "listen 1935;\nvhost a {\n").unwrap();
    let out = srsd(&["import-srs", "bad.conf"], &dir);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("bad.conf:2:1: block \"vhost\" is not closed"),
        "{err}"
    );
}
