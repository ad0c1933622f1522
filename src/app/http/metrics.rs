//! `/metrics` in the Prometheus text format (version 0.0.4), on the API listener.

use super::body::Body;
use super::{cors, procfs};
use crate::app::Context;
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
    hooks(ctx, &mut out);
    out
}

/// Hook notify delivery per URL (see `hook_lanes`).
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
