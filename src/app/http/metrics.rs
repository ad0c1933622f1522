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
        "Connections refused because max_connections was reached.",
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
        "# HELP srsd_output_errors_total HLS, DVR and forward failures, by output and reason.\n\
         # TYPE srsd_output_errors_total counter\n",
    );
    for (output, reason, n) in ctx.outputs.error_counts() {
        let _ = writeln!(
            out,
            "srsd_output_errors_total{{output=\"{output}\",reason=\"{reason}\"}} {n}"
        );
    }
    out
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
