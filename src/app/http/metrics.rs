//! `/metrics` in the Prometheus text format (version 0.0.4), on the API listener.

use super::cors;
use crate::app::runtime::body::Body;
use crate::app::runtime::procfs;
use crate::app::shared::Context;
use hyper::header::{self, HeaderValue};
use hyper::Response;
use std::fmt::Write;
use std::sync::atomic::Ordering;

pub fn render(ctx: &Context) -> String {
    let clients = ctx.stats.clients();
    let (recv, send) = ctx.stats.totals();
    let drops = ctx.stats.drops();
    let mut out = String::with_capacity(1024);
    let mut metric = |name: &str, kind: &str, help: &str, value: String| {
        let _ = write!(
            out,
            "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {value}\n"
        );
    };
    metric(
        "srsd_streams",
        "gauge",
        "Live streams (published or awaited by players).",
        ctx.hub.list().len().to_string(),
    );
    metric(
        "srsd_clients",
        "gauge",
        "Client connections (RTMP and HTTP viewers).",
        clients.len().to_string(),
    );
    metric(
        "srsd_connections",
        "gauge",
        "Open connections counted against max_connections.",
        ctx.connections.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "srsd_api_connections",
        "gauge",
        "Open connections of the API listener (its own budget, beside max_connections).",
        ctx.api_connections.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "srsd_bytes_received_total",
        "counter",
        "Bytes received from clients.",
        recv.to_string(),
    );
    metric(
        "srsd_bytes_sent_total",
        "counter",
        "Bytes sent to clients.",
        send.to_string(),
    );
    metric(
        "srsd_drops_total",
        "counter",
        "Frames dropped for slow consumers of live streams.",
        drops.to_string(),
    );
    metric(
        "srsd_connections_refused_total",
        "counter",
        "Connections refused: max_connections or the API budget reached, or no file descriptor left.",
        ctx.refused.load(Ordering::Relaxed).to_string(),
    );
    metric(
        "srsd_uptime_seconds",
        "gauge",
        "Seconds since the server started.",
        format!("{:.3}", ctx.started.elapsed().as_secs_f64()),
    );
    metric(
        "srsd_rss_bytes",
        "gauge",
        "Resident memory of the process.",
        (procfs::rss_kbyte() * 1024).to_string(),
    );
    metric(
        "srsd_hls_memory_bytes",
        "gauge",
        "Bytes of HLS segments and playlists kept in memory (hls.storage = \"memory\").",
        ctx.hls_memory.bytes().to_string(),
    );
    metric(
        "srsd_cpu_seconds_total",
        "counter",
        "CPU time used by the process (user + system).",
        format!("{:.2}", procfs::SelfStat::read().cpu_seconds()),
    );
    out.push_str(
        "# HELP srsd_denials_total Publishes and plays refused, by reason.\n\
         # TYPE srsd_denials_total counter\n",
    );
    for (reason, n) in ctx.denials.snapshot() {
        out.push_str(&format!("srsd_denials_total{{reason=\"{reason}\"}} {n}\n"));
    }
    out.push_str(
        "# HELP srsd_connection_closes_total RTMP connections ended, by why.\n\
         # TYPE srsd_connection_closes_total counter\n",
    );
    for (reason, n) in ctx.closes.snapshot() {
        out.push_str(&format!(
            "srsd_connection_closes_total{{reason=\"{reason}\"}} {n}\n"
        ));
    }
    out.push_str(
        "# HELP srsd_output_errors_total HLS, DVR and forward failures, by output and reason.\n\
         # TYPE srsd_output_errors_total counter\n",
    );
    for (output, reason, n) in ctx.outputs.error_counts() {
        let _ = writeln!(
            out,
            "srsd_output_errors_total{{output=\"{output}\",reason=\"{reason}\"}} {n}"
        );
    }
    stream_info(ctx, &mut out);
    hooks(ctx, &mut out);
    out
}

/// `srsd_stream_info`: one series per stream with a known codec, its labels the codecs and
/// picture size the API shows (read from the cached sequence headers), value 1.
fn stream_info(ctx: &Context, out: &mut String) {
    use crate::protocol::codec_info;
    out.push_str(
        "# HELP srsd_stream_info Codecs and picture size of each live stream.\n\
         # TYPE srsd_stream_info gauge\n",
    );
    for src in ctx.hub.list() {
        let (video, audio) = src.sequence_headers();
        let v = video.as_deref().and_then(|f| {
            Some((
                f.codec().name()?,
                codec_info::video_info(&f.tag, f.data()).ok(),
            ))
        });
        let a = audio.as_deref().and_then(|f| f.codec().name());
        if v.is_none() && a.is_none() {
            continue;
        }
        let (w, h) = v
            .as_ref()
            .and_then(|(_, i)| i.as_ref())
            .map_or((0, 0), |i| i.picture_size(src.frame_picture_size()));
        let _ = writeln!(
            out,
            "srsd_stream_info{{vhost=\"{}\",app=\"{}\",stream=\"{}\",video_codec=\"{}\",width=\"{w}\",height=\"{h}\",audio_codec=\"{}\"}} 1",
            label(&src.key.vhost),
            label(&src.key.app),
            label(&src.key.stream),
            v.map_or("", |(n, _)| n),
            a.unwrap_or(""),
        );
    }
}

/// Hook notify delivery per URL (see `hooks::lanes`).
fn hooks(ctx: &Context, out: &mut String) {
    let urls = ctx.hooks.snapshot();
    out.push_str(
        "# HELP srsd_hook_notifies_total Hook notifies per URL: delivered (answered), failed \
         (sent, no usable answer), dropped (never sent: queue full or quit deadline).\n\
         # TYPE srsd_hook_notifies_total counter\n",
    );
    for u in &urls {
        let url = label(&u.url);
        for (result, n) in [
            ("delivered", u.delivered),
            ("failed", u.failed),
            ("dropped", u.dropped),
        ] {
            let _ = writeln!(
                out,
                "srsd_hook_notifies_total{{url=\"{url}\",result=\"{result}\"}} {n}"
            );
        }
    }
    out.push_str(
        "# HELP srsd_hook_queue Hook notifies waiting or in flight per URL.\n\
         # TYPE srsd_hook_queue gauge\n",
    );
    for u in &urls {
        let _ = writeln!(
            out,
            "srsd_hook_queue{{url=\"{}\"}} {}",
            label(&u.url),
            u.queued
        );
    }
    out.push_str(
        "# HELP srsd_hook_circuit_open 1 while a hook URL's notifies are held back after \
         failures in a row.\n# TYPE srsd_hook_circuit_open gauge\n",
    );
    for u in &urls {
        let _ = writeln!(
            out,
            "srsd_hook_circuit_open{{url=\"{}\"}} {}",
            label(&u.url),
            u8::from(u.circuit_open)
        );
    }
}

/// A Prometheus label value: backslash, double quote and newline escaped.
fn label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

pub fn handle(ctx: &Context) -> Response<Body> {
    let mut r = Response::new(Body::full(render(ctx)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    cors(h);
    r
}
