//! Path templates with SRS's variables (CONTRACTS.md §2): `[vhost] [app] [stream] [seq]
//! [timestamp] [2006] [01] [02] [15] [04] [05] [999] [engine] [port] [param]`.
//!
//! Date variables are UTC, like the log (see `app::log`).

use crate::app::runtime::log::civil_from_days;

/// The values a template may use; unset ones render as empty.
#[derive(Debug, Clone, Default)]
pub struct Vars<'a> {
    pub vhost: &'a str,
    pub app: &'a str,
    pub stream: &'a str,
    pub seq: Option<u64>,
    pub engine: &'a str,
    pub port: Option<u16>,
    pub param: &'a str,
    /// Milliseconds since the Unix epoch, for `[timestamp]` and the date variables.
    pub unix_ms: u64,
}

/// `s` made safe to render into a file path: separators, control characters and `..` become
/// `_`, so a client's query string (`[param]`) can never climb out of the configured directory.
pub fn path_safe(s: &str) -> String {
    let mut out: String = s
        .chars()
        .map(|c| {
            if c == '/' || c == '\\' || c.is_control() {
                '_'
            } else {
                c
            }
        })
        .collect();
    while out.contains("..") {
        out = out.replace("..", "_");
    }
    out
}

/// Renders `template`. Variables that are not known are left as written.
pub fn render(template: &str, v: &Vars<'_>) -> String {
    let secs = v.unix_ms / 1000;
    let (year, month, day) = civil_from_days((secs / 86_400) as i64);
    let in_day = secs % 86_400;
    let mut out = String::with_capacity(template.len() + 32);
    let mut rest = template;
    while let Some(open) = rest.find('[') {
        out.push_str(&rest[..open]);
        let after = &rest[open..];
        let Some(close) = after.find(']') else {
            out.push_str(after);
            return out;
        };
        let name = &after[1..close];
        let value = match name {
            "vhost" => Some(v.vhost.to_string()),
            "app" => Some(v.app.to_string()),
            "stream" => Some(v.stream.to_string()),
            "seq" => Some(v.seq.map(|s| s.to_string()).unwrap_or_default()),
            "timestamp" => Some(v.unix_ms.to_string()),
            "2006" => Some(format!("{year:04}")),
            "01" => Some(format!("{month:02}")),
            "02" => Some(format!("{day:02}")),
            "15" => Some(format!("{:02}", in_day / 3600)),
            "04" => Some(format!("{:02}", in_day % 3600 / 60)),
            "05" => Some(format!("{:02}", in_day % 60)),
            "999" => Some(format!("{:03}", v.unix_ms % 1000)),
            "engine" => Some(v.engine.to_string()),
            "port" => Some(v.port.map(|p| p.to_string()).unwrap_or_default()),
            "param" => Some(v.param.to_string()),
            _ => None,
        };
        match value {
            Some(val) => out.push_str(&val),
            None => out.push_str(&after[..=close]),
        }
        rest = &after[close + 1..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_srs_variables() {
        let v = Vars {
            vhost: "v",
            app: "live",
            stream: "s",
            seq: Some(7),
            unix_ms: 951_782_400_123 + 3_600_000 * 13 + 60_000 * 4 + 5_000,
            ..Vars::default()
        };
        assert_eq!(render("[app]/[stream]-[seq].ts", &v), "live/s-7.ts");
        assert_eq!(
            render("[2006]-[01]-[02] [15]:[04]:[05].[999]", &v),
            "2000-02-29 13:04:05.123"
        );
        assert_eq!(render("[vhost]/[nope]/[unclosed", &v), "v/[nope]/[unclosed");
        assert_eq!(
            render("[timestamp]", &v),
            (951_782_400_123u64 + 47_045_000).to_string()
        );
    }

    use crate::protocol::testutil::{fuzz, text, TEXT_PIECES};

    #[test]
    fn hostile_templates_and_values_never_panic() {
        let pieces = TEXT_PIECES;
        fuzz("template render", 0x7E4, 3_000, |rng| {
            let template = text(rng, pieces, 12);
            let app = text(rng, pieces, 3);
            let some = rng.next_u64() >> 20;
            let v = Vars {
                vhost: "v",
                app: &app,
                stream: "[stream]",
                seq: Some(rng.next_u64()),
                unix_ms: *rng.pick(&[0, 1, u64::MAX, some]),
                port: Some(rng.u32() as u16),
                ..Vars::default()
            };
            let out = render(&template, &v);
            // Values are inserted once, never expanded again.
            assert!(
                out.len() <= template.len() + 64 * (template.len() + 1),
                "{template:?}"
            );
        });
    }
}
