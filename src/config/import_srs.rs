//! `srsd import-srs srs.conf > srsd.toml`: SRS's config syntax to srsd's TOML.
//!
//! SRS's syntax (`trunk/src/app/srs_app_config.cpp`, `SrsConfDirective::parse_conf`) is nginx's:
//! a directive is words ended by `;`, or words then a `{ ... }` block of directives; `#` starts a
//! comment to the end of the line; a word may be quoted with `"` or `'`; `include FILE;` splices
//! another file in at any level. SRS 2 wrote many vhost settings flat (`gop_cache on;`,
//! `forward 127.0.0.1:1936;`, `refer a.com;`, `mode remote;`); SRS 3+ groups them in `play`,
//! `publish`, `cluster`, `forward`, `refer` blocks. Both are read.
//!
//! Every directive is either mapped to a key (CONTRACTS.md §2) or written into the TOML as a
//! comment that says why it was not, at the place it would have gone. Where srsd's default
//! differs from SRS's built-in one (HLS and HTTP-FLV are on in srsd; the HTTP API and server
//! are on; an unknown vhost falls back to `__defaultVhost__`, which srsd always has) the
//! value SRS would have used is written out explicitly. The result is checked with
//! [`Config::parse`]; a line srsd still rejects is commented out with the reason, so
//! `srsd -t` accepts every output.
//!
//! The lexer and parser read hostile input: nesting, include depth, directive count and
//! word length are bounded, and nothing panics (fuzzed in the tests below).

use super::{parse_listen, security, Config, CHUNK_SIZE_RANGE, DEFAULT_VHOST};

mod syntax;
pub use super::looks_like_srs;
use syntax::clean;
#[cfg(test)]
use syntax::MAX_DEPTH;
pub use syntax::{parse, Directive, ImportError, Pos};
/// A TOML value written by the importer.
enum Val {
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
    List(Vec<String>),
}

/// A TOML basic string.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

impl Val {
    fn toml(&self) -> String {
        match self {
            Val::Str(s) => quote(s),
            Val::Int(n) => n.to_string(),
            Val::Float(f) => {
                let s = f.to_string();
                if s.contains(['.', 'e', 'E']) {
                    s
                } else {
                    format!("{s}.0")
                }
            }
            Val::Bool(b) => b.to_string(),
            Val::List(items) => format!(
                "[{}]",
                items
                    .iter()
                    .map(|s| quote(s))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// The TOML being written: tables in the order they were first named; `[[array]]` headers
/// start a new table each time.
#[derive(Default)]
struct Out {
    tables: Vec<(String, Vec<String>)>,
    /// Directives written as comments.
    unmapped: usize,
}

impl Out {
    fn table(&mut self, header: &str) -> &mut Vec<String> {
        let found = self.tables.iter().position(|(h, _)| h == header);
        let i = found.unwrap_or_else(|| {
            self.tables.push((header.to_string(), Vec::new()));
            self.tables.len() - 1
        });
        &mut self.tables[i].1
    }

    /// Starts a new `[[header]]` table.
    fn array(&mut self, header: &str) {
        self.tables.push((header.to_string(), Vec::new()));
    }

    /// Sets `key` in the table most recently named `header`.
    fn set(&mut self, header: &str, key: &str, d: &Directive, v: Val) {
        let line = format!(
            "{key} = {}    # {}: {}",
            v.toml(),
            clean(&d.at.to_string()),
            d.shown()
        );
        match self.tables.iter().rposition(|(h, _)| h == header) {
            Some(i) => {
                // A key already set (SRS allows a directive twice; the last one wins there).
                let lines = &mut self.tables[i].1;
                let prefix = format!("{key} = ");
                if let Some(old) = lines.iter_mut().find(|l| l.starts_with(&prefix)) {
                    *old = format!("# (repeated below) {old}");
                }
                lines.push(line);
            }
            None => self.table(header).push(line),
        }
    }

    /// Sets `key` to a value SRS would have used without a directive saying so: `note`
    /// explains it.
    fn implied(&mut self, header: &str, key: &str, v: Val, note: &str) {
        let line = format!("{key} = {}    # {note}", v.toml());
        match self.tables.iter().rposition(|(h, _)| h == header) {
            Some(i) => self.tables[i].1.push(line),
            None => self.table(header).push(line),
        }
    }

    /// Writes `d` as a comment in `header`, saying why it was not mapped.
    fn skip(&mut self, header: &str, d: &Directive, why: &str) {
        self.unmapped += 1;
        let line = format!(
            "# not imported: {} ({}): {}",
            d.shown(),
            clean(&d.at.to_string()),
            clean(why)
        );
        match self.tables.iter().rposition(|(h, _)| h == header) {
            Some(i) => self.tables[i].1.push(line),
            None => self.table(header).push(line),
        }
    }

    fn text(&self) -> String {
        let mut s = String::new();
        for (header, lines) in &self.tables {
            if !header.is_empty() {
                s.push('\n');
                s.push_str(header);
                s.push('\n');
            }
            for l in lines {
                s.push_str(l);
                s.push('\n');
            }
        }
        s
    }
}

/// SRS's `on`/`off`.
fn flag(d: &Directive) -> Option<bool> {
    match d.arg(0) {
        "on" | "true" => Some(true),
        "off" | "false" => Some(false),
        _ => None,
    }
}

/// Maps one value-carrying directive of kind `kind` to `key` in `header`, or comments it.
fn put(out: &mut Out, header: &str, key: &str, d: &Directive, kind: Kind) {
    let one = d.args.len() == 1;
    let v = match kind {
        Kind::Bool => flag(d).filter(|_| one).map(Val::Bool),
        Kind::Uint => d
            .arg(0)
            .parse::<u32>()
            .ok()
            .filter(|_| one)
            .map(|n| Val::Int(n.into())),
        Kind::UpTo(max) => d
            .arg(0)
            .parse::<u32>()
            .ok()
            .filter(|n| one && *n <= max)
            .map(|n| Val::Int(n.into())),
        Kind::Secs => d
            .arg(0)
            .parse::<f64>()
            .ok()
            .filter(|f| one && f.is_finite() && *f >= 0.0)
            .map(Val::Float),
        Kind::Str => one.then(|| Val::Str(d.arg(0).to_string())),
        Kind::List => (!d.args.is_empty()).then(|| Val::List(d.args.clone())),
        Kind::OneOf(names) => names
            .iter()
            .find(|n| one && **n == d.arg(0))
            .map(|n| Val::Str(n.to_string())),
    };
    match v {
        Some(v) => out.set(header, key, d, v),
        None => out.skip(
            header,
            d,
            &format!("cannot read the value as {}", kind.what()),
        ),
    }
}

#[derive(Clone, Copy)]
enum Kind {
    Bool,
    Uint,
    /// A whole number up to this.
    UpTo(u32),
    Secs,
    Str,
    List,
    OneOf(&'static [&'static str]),
}

impl Kind {
    fn what(self) -> String {
        match self {
            Kind::Bool => "on|off".into(),
            Kind::Uint => "a whole number".into(),
            Kind::UpTo(max) => format!("a whole number up to {max}"),
            Kind::Secs => "a number >= 0".into(),
            Kind::Str => "one word".into(),
            Kind::List => "a list".into(),
            Kind::OneOf(n) => n.join("|"),
        }
    }
}

/// `(SRS name, srsd key, kind)` rows for the simple blocks.
type Rows = &'static [(&'static str, &'static str, Kind)];

const JITTER: Kind = Kind::OneOf(&["full", "zero", "off"]);

const PLAY: Rows = &[
    ("gop_cache", "gop_cache", Kind::Bool),
    ("gop_cache_max_frames", "gop_cache_max_frames", Kind::Uint),
    ("queue_length", "queue_length", Kind::Secs),
    ("time_jitter", "time_jitter", JITTER),
    ("mix_correct", "mix_correct", Kind::Bool),
    ("atc", "atc", Kind::Bool),
    ("atc_auto", "atc_auto", Kind::Bool),
    ("mw_latency", "mw_latency", Kind::Uint),
    ("mw_msgs", "mw_msgs", Kind::UpTo(super::MW_MSGS_MAX)),
];
const PUBLISH: Rows = &[
    ("firstpkt_timeout", "firstpkt_timeout", Kind::Uint),
    ("normal_timeout", "normal_timeout", Kind::Uint),
    ("parse_sps", "parse_sps", Kind::Bool),
];
const CLUSTER: Rows = &[
    ("mode", "mode", Kind::OneOf(&["local", "remote"])),
    ("origin", "origin", Kind::List),
    ("token_traverse", "token_traverse", Kind::Bool),
    ("vhost", "vhost", Kind::Str),
];
const FORWARD: Rows = &[
    ("enabled", "enabled", Kind::Bool),
    ("destination", "destination", Kind::List),
];
const REFER: Rows = &[
    ("enabled", "enabled", Kind::Bool),
    ("all", "all", Kind::List),
    ("play", "play", Kind::List),
    ("publish", "publish", Kind::List),
];
const HOOKS: Rows = &[
    ("enabled", "enabled", Kind::Bool),
    ("on_connect", "on_connect", Kind::List),
    ("on_close", "on_close", Kind::List),
    ("on_publish", "on_publish", Kind::List),
    ("on_unpublish", "on_unpublish", Kind::List),
    ("on_play", "on_play", Kind::List),
    ("on_stop", "on_stop", Kind::List),
    ("on_dvr", "on_dvr", Kind::List),
    ("on_hls", "on_hls", Kind::List),
];
const HLS: Rows = &[
    ("enabled", "enabled", Kind::Bool),
    ("hls_fragment", "fragment", Kind::Secs),
    ("hls_td_ratio", "td_ratio", Kind::Secs),
    ("hls_aof_ratio", "aof_ratio", Kind::Secs),
    ("hls_window", "window", Kind::Secs),
    (
        "hls_on_error",
        "on_error",
        Kind::OneOf(&["ignore", "disconnect", "continue"]),
    ),
    ("hls_path", "path", Kind::Str),
    ("hls_m3u8_file", "m3u8_file", Kind::Str),
    ("hls_ts_file", "ts_file", Kind::Str),
    ("hls_entry_prefix", "entry_prefix", Kind::Str),
    ("hls_acodec", "acodec", Kind::OneOf(&["aac", "mp3", "an"])),
    ("hls_vcodec", "vcodec", Kind::OneOf(&["h264", "vn"])),
    ("hls_cleanup", "cleanup", Kind::Bool),
    ("hls_dispose", "dispose", Kind::Uint),
    ("hls_wait_keyframe", "wait_keyframe", Kind::Bool),
    ("hls_ctx", "ctx", Kind::Bool),
];
const REMUX: Rows = &[
    ("enabled", "enabled", Kind::Bool),
    ("mount", "mount", Kind::Str),
];
const DVR: Rows = &[
    ("enabled", "enabled", Kind::Bool),
    ("dvr_plan", "plan", Kind::OneOf(&["session", "segment"])),
    ("dvr_path", "path", Kind::Str),
    ("dvr_duration", "duration", Kind::Uint),
    ("dvr_wait_keyframe", "wait_keyframe", Kind::Bool),
    ("time_jitter", "time_jitter", JITTER),
];
const BANDCHECK: Rows = &[
    ("enabled", "enabled", Kind::Bool),
    ("key", "key", Kind::Str),
    ("interval", "interval", Kind::Secs),
    ("limit_kbps", "limit_kbps", Kind::Uint),
];
const ENGINE: Rows = &[
    ("enabled", "enabled", Kind::Bool),
    ("vcodec", "vcodec", Kind::Str),
    ("vbitrate", "vbitrate", Kind::Uint),
    ("vfps", "vfps", Kind::Secs),
    ("vwidth", "vwidth", Kind::Uint),
    ("vheight", "vheight", Kind::Uint),
    ("vthreads", "vthreads", Kind::Uint),
    ("vprofile", "vprofile", Kind::Str),
    ("vpreset", "vpreset", Kind::Str),
    ("acodec", "acodec", Kind::Str),
    ("abitrate", "abitrate", Kind::Uint),
    ("asample_rate", "asample_rate", Kind::Uint),
    ("achannels", "achannels", Kind::Uint),
    ("output", "output", Kind::Str),
];
const HEARTBEAT: Rows = &[
    ("enabled", "enabled", Kind::Bool),
    ("interval", "interval", Kind::Secs),
    ("url", "url", Kind::Str),
    ("device_id", "device_id", Kind::Str),
    ("summaries", "summaries", Kind::Bool),
];
const AUTH: Rows = &[
    ("enabled", "enabled", Kind::Bool),
    ("username", "username", Kind::Str),
    ("password", "password", Kind::Str),
];
const RAW_API: Rows = &[
    ("enabled", "enabled", Kind::Bool),
    ("allow_reload", "allow_reload", Kind::Bool),
];

/// Why srsd has no such setting, for the directives users most often have.
fn why_not(name: &str) -> &'static str {
    match name {
        "mr" | "mr_latency" => "srsd merges reads itself (no setting)",
        "tcp_nodelay" => "srsd picks latency settings per player (mw_latency)",
        "crossdomain" => "srsd always answers CORS",
        "ff_log_dir" => "srsd logs each ffmpeg's stderr into its own log",
        "utc_time" | "pithy_print_ms" | "work_dir" | "asprocess" => "not a setting in srsd",
        "stream_caster" | "rtc_server" | "rtc" | "srt_server" | "srt" | "dash" | "hds" | "exec"
        | "nack" | "twcc" => "not supported by srsd yet (README: not supported)",
        "hls_nb_notify"
        | "hls_ts_floor"
        | "hls_mount"
        | "hls_keys"
        | "hls_fragments_per_key"
        | "hls_key_file"
        | "hls_key_file_path"
        | "hls_key_url"
        | "hls_dts_directly"
        | "hls_ts_ctx"
        | "hls_recover"
        | "hls_use_fmp4"
        | "on_hls_notify" => "no such HLS setting in srsd",
        "fast_cache" | "hstrs" | "drop_if_not_match" | "has_audio" | "has_video"
        | "guess_has_av" => "no such HTTP-FLV setting in srsd",
        "stats" | "circuit_breaker" | "exporter" | "tencentcloud_cls" | "tencentcloud_apm" => {
            "SRS-only monitoring; srsd has /api/v1 and /metrics"
        }
        _ => "srsd has no such setting",
    }
}

/// Maps the directives of a simple block through `rows`.
fn rows(out: &mut Out, header: &str, list: &[Directive], rows: Rows) {
    for d in list {
        match rows.iter().find(|(n, _, _)| *n == d.name) {
            Some((_, key, kind)) if d.block.is_none() => put(out, header, key, d, *kind),
            _ => out.skip(header, d, why_not(&d.name)),
        }
    }
}

/// A vhost's TOML header for `sub` (`""` = the vhost table itself).
fn vh(name: &str, sub: &str) -> String {
    if sub.is_empty() {
        format!("[vhost.{}]", quote(name))
    } else {
        format!("[vhost.{}.{sub}]", quote(name))
    }
}

/// ffmpeg arguments from an SRS `vparams { k v; ... }` style block: `-k v ...`.
fn params(d: &Directive) -> Vec<String> {
    d.children()
        .iter()
        .flat_map(|p| std::iter::once(format!("-{}", p.name)).chain(p.args.iter().cloned()))
        .collect()
}

/// An engine block into the `[[header]]` table just started.
fn engine(out: &mut Out, header: &str, d: &Directive) {
    out.array(header);
    if !d.arg(0).is_empty() {
        out.set(header, "name", d, Val::Str(d.arg(0).to_string()));
    }
    for e in d.children() {
        match e.name.as_str() {
            "vparams" | "vfilter" | "aparams" if e.block.is_some() => {
                out.set(header, &e.name, e, Val::List(params(e)))
            }
            "oformat" if e.arg(0) == "flv" => {}
            "iformat" if e.arg(0) == "flv" => {}
            _ => rows(out, header, std::slice::from_ref(e), ENGINE),
        }
    }
}

fn vhost(out: &mut Out, d: &Directive) {
    let name = d.arg(0);
    let top = vh(name, "");
    out.table(&top);
    // SRS's built-in defaults, where srsd's differ: no HLS, no HTTP-FLV unless a block says.
    let mut hls_on = false;
    let mut remux_on = false;
    for c in d.children() {
        let blk = c.block.is_some();
        match c.name.as_str() {
            "enabled" => put(out, &top, "enabled", c, Kind::Bool),
            "chunk_size" => match c.arg(0).parse::<u32>() {
                Ok(n) if CHUNK_SIZE_RANGE.contains(&n) => {
                    out.set(&top, "chunk_size", c, Val::Int(n.into()))
                }
                _ => out.skip(&top, c, "chunk size out of 128..=65536"),
            },
            "tcp_nodelay" => put(out, &top, "tcp_nodelay", c, Kind::Bool),
            "min_latency" => put(out, &top, "min_latency", c, Kind::Bool),
            "play" if blk => rows(out, &vh(name, "play"), c.children(), PLAY),
            "publish" if blk => rows(out, &vh(name, "publish"), c.children(), PUBLISH),
            "cluster" if blk => rows(out, &vh(name, "cluster"), c.children(), CLUSTER),
            "forward" if blk => rows(out, &vh(name, "forward"), c.children(), FORWARD),
            "refer" if blk => rows(out, &vh(name, "refer"), c.children(), REFER),
            "http_hooks" if blk => rows(out, &vh(name, "http_hooks"), c.children(), HOOKS),
            "bandcheck" if blk => rows(out, &vh(name, "bandcheck"), c.children(), BANDCHECK),
            "dvr" if blk => {
                let h = vh(name, "dvr");
                for x in c.children() {
                    match x.name.as_str() {
                        "dvr_apply" if x.arg(0) == "all" => {}
                        "dvr_apply" => out.skip(&h, x, "srsd records every stream of the vhost"),
                        "dvr_plan" if x.arg(0) == "append" => {
                            out.skip(&h, x, "srsd has session and segment plans")
                        }
                        _ => rows(out, &h, std::slice::from_ref(x), DVR),
                    }
                }
            }
            "hls" if blk => {
                let h = vh(name, "hls");
                hls_on = c
                    .children()
                    .iter()
                    .any(|x| x.name == "enabled" && flag(x) == Some(true));
                for x in c.children() {
                    match (x.name.as_str(), x.arg(0)) {
                        ("hls_storage", "disk") => {
                            out.set(&h, "storage", x, Val::Str("disk".into()))
                        }
                        ("hls_storage", "ram") => {
                            out.set(&h, "storage", x, Val::Str("memory".into()))
                        }
                        ("hls_storage", _) => {
                            out.skip(&h, x, "srsd keeps HLS on disk or in memory, not both")
                        }
                        _ => rows(out, &h, std::slice::from_ref(x), HLS),
                    }
                }
            }
            "http_remux" if blk => {
                remux_on = c
                    .children()
                    .iter()
                    .any(|x| x.name == "enabled" && flag(x) == Some(true));
                rows(out, &vh(name, "http_remux"), c.children(), REMUX);
            }
            "security" if blk => {
                let h = vh(name, "security");
                let (mut allow, mut deny) = (Vec::new(), Vec::new());
                for x in c.children() {
                    let rule = x.args.join(" ");
                    match x.name.as_str() {
                        "enabled" => put(out, &h, "enabled", x, Kind::Bool),
                        "allow" | "deny" => match security::Rule::parse(&rule).error() {
                            None if x.name == "allow" => allow.push(rule),
                            None => deny.push(rule),
                            Some(why) => out.skip(&h, x, &why),
                        },
                        _ => out.skip(&h, x, why_not(&x.name)),
                    }
                }
                if !allow.is_empty() {
                    out.set(&h, "allow", c, Val::List(allow));
                }
                if !deny.is_empty() {
                    out.set(&h, "deny", c, Val::List(deny));
                }
            }
            "transcode" if blk => {
                let h = format!("[[vhost.{}.transcode]]", quote(name));
                out.array(&h);
                out.set(&h, "scope", c, Val::Str(c.arg(0).to_string()));
                let eh = format!("[[vhost.{}.transcode.engine]]", quote(name));
                // Engines come after the transcode keys, as TOML wants.
                for x in c.children().iter().filter(|x| x.name != "engine") {
                    match x.name.as_str() {
                        "enabled" => put(out, &h, "enabled", x, Kind::Bool),
                        "ffmpeg" => put(out, &h, "ffmpeg", x, Kind::Str),
                        _ => out.skip(&h, x, why_not(&x.name)),
                    }
                }
                for x in c.children().iter().filter(|x| x.name == "engine") {
                    engine(out, &eh, x);
                }
            }
            "ingest" if blk => {
                let h = "[[ingest]]";
                out.array(h);
                out.set(h, "id", c, Val::Str(c.arg(0).to_string()));
                out.set(h, "vhost", c, Val::Str(name.to_string()));
                for x in c.children().iter().filter(|x| x.name != "engine") {
                    match x.name.as_str() {
                        "enabled" => put(out, h, "enabled", x, Kind::Bool),
                        "ffmpeg" => put(out, h, "ffmpeg", x, Kind::Str),
                        "input" if x.block.is_some() => {
                            for i in x.children() {
                                match i.name.as_str() {
                                    "type" => put(
                                        out,
                                        h,
                                        "input.type",
                                        i,
                                        Kind::OneOf(&["file", "stream", "device"]),
                                    ),
                                    "url" => put(out, h, "input.url", i, Kind::Str),
                                    _ => out.skip(h, i, why_not(&i.name)),
                                }
                            }
                        }
                        _ => out.skip(h, x, why_not(&x.name)),
                    }
                }
                for x in c.children().iter().filter(|x| x.name == "engine") {
                    engine(out, "[[ingest.engine]]", x);
                }
            }
            // SRS 2's flat vhost keys, now in SRS 3's blocks.
            "gop_cache" | "queue_length" | "time_jitter" | "mix_correct" | "atc" | "atc_auto"
            | "mw_latency" => rows(out, &vh(name, "play"), std::slice::from_ref(c), PLAY),
            "publish_1stpkt_timeout" => {
                put(out, &vh(name, "publish"), "firstpkt_timeout", c, Kind::Uint)
            }
            "publish_normal_timeout" => {
                put(out, &vh(name, "publish"), "normal_timeout", c, Kind::Uint)
            }
            "mode" | "origin" | "token_traverse" => {
                rows(out, &vh(name, "cluster"), std::slice::from_ref(c), CLUSTER)
            }
            "forward" => {
                let h = vh(name, "forward");
                out.set(&h, "enabled", c, Val::Bool(true));
                put(out, &h, "destination", c, Kind::List);
            }
            "refer" | "refer_play" | "refer_publish" => {
                let h = vh(name, "refer");
                out.set(&h, "enabled", c, Val::Bool(true));
                let key = c.name.strip_prefix("refer_").unwrap_or("all");
                put(out, &h, key, c, Kind::List);
            }
            _ => out.skip(&top, c, why_not(&c.name)),
        }
    }
    // srsd's default is on (as SRS's shipped srs.conf); SRS's built-in one is off.
    if !hls_on {
        let note = "no \"hls { enabled on; }\" in this SRS vhost: off, as in SRS";
        out.implied(&vh(name, "hls"), "enabled", Val::Bool(false), note);
    }
    if !remux_on {
        let note = "no \"http_remux { enabled on; }\" in this SRS vhost: off, as in SRS";
        out.implied(&vh(name, "http_remux"), "enabled", Val::Bool(false), note);
    }
}

/// The TOML for SRS `directives`, and how many directives were written as comments.
pub fn to_toml(directives: &[Directive], source: &str) -> (String, usize) {
    let mut out = Out::default();
    out.table("").push(format!(
        "# srsd config imported from the SRS config {} by `srsd import-srs`.\n\
         # Each key names the SRS directive it came from; \"not imported\" comments say why a\n\
         # directive has no srsd key. Keys and defaults: conf/full.toml.",
        clean(source)
    ));
    let (mut api_on, mut server_on) = (false, false);
    for d in directives {
        match d.name.as_str() {
            "listen" => {
                let bad = d.args.iter().find(|a| parse_listen(a).is_none());
                match bad {
                    Some(a) => out.skip("", d, &format!("\"{a}\" is not [ip:]port")),
                    None => put(&mut out, "", "listen", d, Kind::List),
                }
            }
            "pid" => put(&mut out, "", "pid", d, Kind::Str),
            "chunk_size" => match d.arg(0).parse::<u32>() {
                Ok(n) if CHUNK_SIZE_RANGE.contains(&n) => {
                    out.set("", "chunk_size", d, Val::Int(n.into()))
                }
                _ => out.skip("", d, "chunk size out of 128..=65536"),
            },
            "max_connections" => put(&mut out, "", "max_connections", d, Kind::Uint),
            "daemon" => put(&mut out, "", "daemon", d, Kind::Bool),
            "srs_log_tank" => put(
                &mut out,
                "[log]",
                "tank",
                d,
                Kind::OneOf(&["console", "file"]),
            ),
            "srs_log_level" => put(
                &mut out,
                "[log]",
                "level",
                d,
                Kind::OneOf(&["verbose", "info", "trace", "warn", "error"]),
            ),
            "srs_log_file" => put(&mut out, "[log]", "file", d, Kind::Str),
            "heartbeat" if d.block.is_some() => {
                rows(&mut out, "[heartbeat]", d.children(), HEARTBEAT)
            }
            "http_api" if d.block.is_some() => {
                let h = "[http_api]";
                out.table(h);
                for x in d.children() {
                    match x.name.as_str() {
                        "enabled" => {
                            api_on = flag(x) == Some(true);
                            put(&mut out, h, "enabled", x, Kind::Bool)
                        }
                        "listen" => listen_key(&mut out, h, x),
                        "raw_api" if x.block.is_some() => {
                            rows(&mut out, "[http_api.raw_api]", x.children(), RAW_API)
                        }
                        "auth" if x.block.is_some() => {
                            rows(&mut out, "[http_api.auth]", x.children(), AUTH)
                        }
                        _ => out.skip(h, x, why_not(&x.name)),
                    }
                }
            }
            "http_server" if d.block.is_some() => {
                let h = "[http_server]";
                out.table(h);
                for x in d.children() {
                    match x.name.as_str() {
                        "enabled" => {
                            server_on = flag(x) == Some(true);
                            put(&mut out, h, "enabled", x, Kind::Bool)
                        }
                        "listen" => listen_key(&mut out, h, x),
                        "dir" => put(&mut out, h, "dir", x, Kind::Str),
                        _ => out.skip(h, x, why_not(&x.name)),
                    }
                }
            }
            "vhost" if d.block.is_some() && !d.arg(0).is_empty() => vhost(&mut out, d),
            _ => out.skip("", d, why_not(&d.name)),
        }
    }
    // SRS's built-in defaults where srsd's differ.
    if !api_on {
        let note = "no \"http_api { enabled on; }\" in the SRS config: off, as in SRS";
        out.implied("[http_api]", "enabled", Val::Bool(false), note);
    }
    if !server_on {
        let note = "no \"http_server { enabled on; }\" in the SRS config: off, as in SRS";
        out.implied("[http_server]", "enabled", Val::Bool(false), note);
    }
    let has_default = directives
        .iter()
        .any(|d| d.name == "vhost" && d.arg(0) == DEFAULT_VHOST);
    if !has_default {
        let note = "no __defaultVhost__ in the SRS config: unknown vhosts are refused, as in SRS";
        out.implied(&vh(DEFAULT_VHOST, ""), "enabled", Val::Bool(false), note);
    }
    let unmapped = out.unmapped;
    (out.text(), unmapped)
}

/// `listen` inside http_api/http_server: one `[ip:]port`.
fn listen_key(out: &mut Out, header: &str, d: &Directive) {
    match d.args.as_slice() {
        [one] if parse_listen(one).is_some() => out.set(header, "listen", d, Val::Str(one.clone())),
        _ => out.skip(header, d, "want one [ip:]port"),
    }
}

/// [`to_toml`], then [`Config::parse`] on the result: each line srsd still rejects is
/// commented out with the reason (at most 100 times). Returns the TOML srsd accepts and the
/// count of directives not imported.
pub fn import(directives: &[Directive], source: &str) -> Result<(String, usize), String> {
    let (mut text, mut unmapped) = to_toml(directives, source);
    for _ in 0..100 {
        let Err(e) = Config::parse(&text, "import") else {
            return Ok((text, unmapped));
        };
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let fixable = |l: &String| !l.starts_with('#') && !l.starts_with('[') && l.contains(" = ");
        let mut at = e.line.saturating_sub(1);
        if !lines.get(at).is_some_and(fixable) {
            // Not located (a vhost name the locator cannot match): the last line setting
            // the key the message names, e.g. `vhost "x": cluster.mode: ...` -> `mode = `.
            let key = e.message.rsplit("\": ").next().unwrap_or("");
            let key = key.split([':', ' ']).next().unwrap_or("");
            let tail = format!("{} = ", key.rsplit('.').next().unwrap_or(key));
            match lines
                .iter()
                .rposition(|l| fixable(l) && l.starts_with(&tail))
            {
                Some(i) if !key.is_empty() => at = i,
                _ => return Err(e.to_string()),
            }
        }
        let line = &mut lines[at];
        *line = clean(&format!(
            "# not imported, srsd rejects it ({}): {line}",
            e.message
        ));
        unmapped += 1;
        text = lines.join("\n") + "\n";
    }
    Err("too many values srsd rejects".into())
}

#[cfg(test)]
mod tests;
