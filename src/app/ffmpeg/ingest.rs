//! Ingest (`[[ingest]]`): ffmpeg pulls a file, a stream or a device and publishes it to this
//! server, one supervised process per enabled engine of every enabled ingester.
//!
//! Inputs, as SRS's `SrsIngester` builds them:
//! - `file`: `-re -stream_loop -1 -i FILE` — read at native speed (a file would otherwise be
//!   pushed as fast as the disk reads it) and looped forever. SRS restarts ffmpeg at the end of
//!   the file instead; looping inside ffmpeg keeps players connected across the wrap, because
//!   `-stream_loop` offsets the timestamps of each pass so they keep increasing.
//! - `stream`: `-i URL`.
//! - `device`: `-i URL` as well (SRS passes only `-i` too). The URL must be one ffmpeg opens
//!   without a forced input format; a device that needs `-f v4l2`/`-f alsa` is not supported
//!   yet (there is no config key for an input format).
//!
//! Outputs are the engines' `output` templates, rendered with `[vhost]` (the ingester's),
//! `[port]` (the first RTMP listen port) and `[engine]`; `[app]`/`[stream]` are empty (the
//! output names them).
//!
//! Lifecycle: [`run`] is one task per server. It starts every wanted process, then after each
//! reload recomputes the wanted set: unchanged ingesters keep running, changed ones restart,
//! removed ones stop. Shutdown (or aborting the task) stops them all.

use crate::app::ffmpeg;
use crate::app::ffmpeg::process::{Group, Spec};
use crate::app::runtime::template::{self, Vars};
use crate::app::shared::Context;
use crate::config::{Config, IngestConfig, IngestInputType};
use std::sync::Arc;

/// Runs until shutdown; spawn once per server.
pub async fn run(ctx: Arc<Context>) {
    let mut changes = ctx.config_changes();
    let mut shutdown = ctx.shutdown.clone();
    let mut group = Group::default();
    loop {
        let wanted = wanted(&ctx.config(), ctx.rtmp_port);
        group.apply(&ctx, wanted);
        tokio::select! {
            r = changes.changed() => if r.is_err() { return },
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

/// Every ffmpeg the config wants: one per enabled engine of each enabled ingester.
pub fn wanted(config: &Config, port: u16) -> Vec<(String, Spec)> {
    config
        .ingest
        .iter()
        .filter(|i| i.enabled)
        .flat_map(|i| specs(i, port))
        .collect()
}

fn specs(i: &IngestConfig, port: u16) -> Vec<(String, Spec)> {
    if i.input.url.is_empty() {
        log::warn!("ingest {:?}: input url is empty; not started", i.id);
        return Vec::new();
    }
    let iparams: &[&str] = match i.input.kind {
        // -stream_loop must come before the -i it applies to.
        IngestInputType::File => &["-re", "-stream_loop", "-1"],
        IngestInputType::Stream | IngestInputType::Device => &[],
    };
    i.engine
        .iter()
        .filter(|e| e.enabled)
        .map(|e| {
            let vars = Vars {
                vhost: &i.vhost,
                engine: &e.name,
                port: Some(port),
                unix_ms: crate::app::runtime::log::now_unix_ms(),
                ..Vars::default()
            };
            let output = template::render(&e.output, &vars);
            let label = format!("ingest {:?} -> {}", i.id, target(&output));
            let spec = Spec {
                program: i.ffmpeg.clone(),
                args: ffmpeg::engine_args(iparams, &i.input.url, e, &output),
            };
            (label, spec)
        })
        .collect()
}

/// `vhost/app/stream` of an RTMP output URL for the log, or the output itself.
fn target(output: &str) -> String {
    let (path, query) = output.split_once('?').unwrap_or((output, ""));
    let Some((tc_url, stream)) = path.rsplit_once('/') else {
        return output.to_string();
    };
    match crate::protocol::rtmp::url::parse(tc_url, &format!("{stream}?{query}")) {
        Ok(r) => format!("{}/{}/{}", r.vhost, r.app, r.stream),
        Err(_) => output.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_input_loops_at_native_speed_and_output_is_rendered() {
        let c = Config::parse(
            "[[ingest]]\nid = \"a\"\nenabled = true\ninput = { type = \"file\", url = \"x.flv\" }\n\
             [[ingest.engine]]\nname = \"e\"\nenabled = true\n\
             output = \"rtmp://127.0.0.1:[port]/live/[engine]?vhost=[vhost]\"\n\
             [[ingest.engine]]\nname = \"off\"\n\
             [[ingest]]\nid = \"b\"\ninput = { type = \"stream\", url = \"udp://x\" }\n\
             [[ingest.engine]]\nenabled = true\n",
            "t.toml",
        )
        .expect("parses");
        let w = wanted(&c, 1935);
        assert_eq!(w.len(), 1);
        #[rustfmt::skip]
        let want = [
            "-re", "-stream_loop", "-1", "-i", "x.flv", "-vcodec", "copy", "-acodec", "copy",
            "-f", "flv", "-y", "rtmp://127.0.0.1:1935/live/e?vhost=__defaultVhost__",
        ];
        assert_eq!(w[0].1.args, want);
        assert_eq!(w[0].0, "ingest \"a\" -> __defaultVhost__/live/e");
    }

    #[test]
    fn stream_input_is_plain() {
        let c = Config::parse(
            "[[ingest]]\nenabled = true\ninput = { type = \"stream\", url = \"rtmp://h/a/b\" }\n\
             [[ingest.engine]]\nenabled = true\noutput = \"rtmp://127.0.0.1:[port]/live/x\"\n",
            "t.toml",
        )
        .expect("parses");
        let w = wanted(&c, 1);
        assert_eq!(&w[0].1.args[..4], ["-f", "flv", "-i", "rtmp://h/a/b"]);
    }
}
