//! Transcode (`[[vhost.X.transcode]]`): one supervised ffmpeg per enabled engine of every
//! enabled block whose `scope` matches a published stream.
//!
//! Each ffmpeg plays the stream back from this server over RTMP
//! (`rtmp://127.0.0.1:[port]/[app]/[stream]?vhost=[vhost]` plus the publisher's param) and
//! publishes the engine's `output`, usually `[stream]_[engine]` on the same server, as SRS's
//! `SrsEncoder` does.
//!
//! Lifecycle: [`spawn`] returns a [`Transcoder`] guard that the publish state owns. While it
//! lives, a task keeps the set of ffmpeg processes equal to what the current config wants
//! (recomputed after every reload: changed engines restart, others keep running); dropping
//! it (unpublish) stops them all.

use crate::app::ffmpeg;
use crate::app::ffmpeg::process::{Group, Spec};
use crate::app::runtime::tasks::{stop_pair, StopOnDrop};
use crate::app::runtime::template::{self, Vars};
use crate::app::shared::Context;
use crate::config::{Config, EngineConfig, TranscodeConfig};
use crate::hub::StreamKey;
use std::sync::Arc;

/// Stops the stream's transcoding when dropped: the task ends, dropping its `Group`, and
/// each supervisor stops its ffmpeg.
pub struct Transcoder {
    _stop: StopOnDrop,
}

/// On publish: transcodes `key` (published with `param`) as long as the guard lives.
pub fn spawn(ctx: &Arc<Context>, key: &StreamKey, param: &str) -> Transcoder {
    let (ctx, key, param) = (ctx.clone(), key.clone(), param.to_string());
    let cid = crate::app::runtime::log::current_cid();
    let (stop_owner, mut stop) = stop_pair();
    // Not counted itself: it holds no socket or file, only the ffmpeg supervisors, whose
    // children `ctx.processes` counts and shutdown waits for.
    tokio::spawn(crate::app::runtime::log::with_cid(cid, async move {
        let mut changes = ctx.config_changes();
        let mut shutdown = ctx.shutdown.clone();
        let mut group = Group::default();
        loop {
            let wanted = wanted(&ctx.config(), &key, &param, ctx.rtmp_port);
            if !wanted.is_empty() || !group.is_empty() {
                group.apply(&ctx, wanted);
            }
            tokio::select! {
                r = changes.changed() => if r.is_err() { return },
                _ = shutdown.wait_for(|s| *s) => return,
                _ = stop.requested() => return,
            }
        }
    }));
    Transcoder { _stop: stop_owner }
}

/// The blocks of the stream's vhost that apply to it: enabled, and scope `""`, its app, or
/// its `app/stream` (SRS looks up the vhost, app and stream scopes in that order).
pub fn matching<'a>(config: &'a Config, key: &StreamKey) -> Vec<&'a TranscodeConfig> {
    let Some(v) = config.vhost.get(&key.vhost) else {
        return Vec::new();
    };
    let full = format!("{}/{}", key.app, key.stream);
    let mut out = Vec::new();
    for scope in ["", key.app.as_str(), full.as_str()] {
        out.extend(v.transcode.iter().filter(|t| t.enabled && t.scope == scope));
    }
    out
}

/// Whether the stream is itself the output of one of the engines that would transcode it
/// (`livestream_sd` for engine `sd`). SRS then transcodes nothing at all for the stream,
/// which breaks the publish -> ffmpeg -> publish loop.
pub fn is_loop(blocks: &[&TranscodeConfig], stream: &str) -> bool {
    blocks
        .iter()
        .flat_map(|t| t.engine.iter().filter(|e| e.enabled))
        .any(|e| stream.ends_with(&format!("_{}", e.name)))
}

/// The ffmpeg processes the config wants for `key`: label and spec per engine.
pub fn wanted(config: &Config, key: &StreamKey, param: &str, port: u16) -> Vec<(String, Spec)> {
    let blocks = matching(config, key);
    if blocks.is_empty() {
        return Vec::new();
    }
    if is_loop(&blocks, &key.stream) {
        log::info!("transcode {key}: the stream is an engine's output, not transcoded again");
        return Vec::new();
    }
    let input = input_url(key, param, port);
    let mut out = Vec::new();
    for t in blocks {
        for e in t.engine.iter().filter(|e| e.enabled) {
            let output = render_output(e, key, param, port);
            let spec = Spec {
                program: t.ffmpeg.clone(),
                args: ffmpeg::engine_args(&[], &input, e, &output),
            };
            out.push((format!("transcode {key} engine {:?}", e.name), spec));
        }
    }
    out
}

/// Where ffmpeg reads the stream: this server over loopback. The publisher's param is passed
/// on (a token an on_play hook checks, say), minus its `vhost`/`domain`, which we set.
pub fn input_url(key: &StreamKey, param: &str, port: u16) -> String {
    let mut url = format!(
        "rtmp://127.0.0.1:{port}/{}/{}?vhost={}",
        key.app, key.stream, key.vhost
    );
    for kv in param.trim_start_matches('?').split('&') {
        let k = kv.split_once('=').map_or(kv, |(k, _)| k);
        if !kv.is_empty() && k != "vhost" && k != "domain" {
            url.push('&');
            url.push_str(kv);
        }
    }
    url
}

fn render_output(e: &EngineConfig, key: &StreamKey, param: &str, port: u16) -> String {
    let vars = Vars {
        vhost: &key.vhost,
        app: &key.app,
        stream: &key.stream,
        engine: &e.name,
        port: Some(port),
        param,
        unix_ms: crate::app::runtime::log::now_unix_ms(),
        ..Vars::default()
    };
    template::render(&e.output, &vars)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(text: &str) -> Config {
        Config::parse(text, "t.toml").expect("parses")
    }

    const TWO_SCOPES: &str = "[[vhost.v.transcode]]\nenabled = true\nscope = \"live\"\n\
        [[vhost.v.transcode.engine]]\nname = \"ff\"\nenabled = true\n\
        [[vhost.v.transcode.engine]]\nname = \"off\"\n\
        [[vhost.v.transcode]]\nenabled = true\nscope = \"other/s\"\n\
        [[vhost.v.transcode.engine]]\nname = \"x\"\nenabled = true\n";

    #[test]
    fn wants_one_process_per_enabled_engine_of_matching_blocks() {
        let c = config(TWO_SCOPES);
        let w = wanted(&c, &StreamKey::new("v", "live", "s"), "?token=1", 1935);
        assert_eq!(w.len(), 1);
        let args = &w[0].1.args;
        assert_eq!(w[0].1.program, "ffmpeg");
        assert_eq!(args[3], "rtmp://127.0.0.1:1935/live/s?vhost=v&token=1");
        assert_eq!(
            args.last().map(String::as_str),
            Some("rtmp://127.0.0.1:1935/live/s_ff?vhost=v")
        );
        assert_eq!(
            wanted(&c, &StreamKey::new("v", "other", "s"), "", 1).len(),
            1
        );
        assert!(wanted(&c, &StreamKey::new("v", "other", "t"), "", 1).is_empty());
        assert!(wanted(&c, &StreamKey::new("w", "live", "s"), "", 1).is_empty());
    }

    #[test]
    fn an_engines_own_output_is_not_transcoded_again() {
        let c = config(TWO_SCOPES);
        assert!(wanted(&c, &StreamKey::new("v", "live", "s_ff"), "", 1).is_empty());
        // A disabled engine's name does not count.
        assert_eq!(
            wanted(&c, &StreamKey::new("v", "live", "s_off"), "", 1).len(),
            1
        );
    }

    #[test]
    fn disabled_blocks_and_empty_scope() {
        let c = config(
            "[[vhost.v.transcode]]\nscope = \"\"\n[[vhost.v.transcode.engine]]\nenabled = true\n\
             [[vhost.v.transcode]]\nenabled = true\n[[vhost.v.transcode.engine]]\nname = \"a\"\n\
             enabled = true\n",
        );
        let w = wanted(&c, &StreamKey::new("v", "any/app", "s"), "", 1);
        assert_eq!(
            w.len(),
            1,
            "only the enabled block, whose scope \"\" matches all"
        );
    }

    #[test]
    fn input_url_keeps_param_but_not_its_vhost() {
        let k = StreamKey::new("v", "live", "s");
        assert_eq!(
            input_url(&k, "?vhost=x&a=1&domain=y&b", 1),
            "rtmp://127.0.0.1:1/live/s?vhost=v&a=1&b"
        );
        assert_eq!(input_url(&k, "", 1), "rtmp://127.0.0.1:1/live/s?vhost=v");
    }
}
