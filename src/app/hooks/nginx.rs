//! nginx-rtmp's hook protocol (`hook_protocol = "nginx"`), so an auth backend written for
//! nginx-rtmp's `on_publish`/`on_play` works with srsd unchanged.
//!
//! As `ngx_rtmp_notify_module.c` and `ngx_rtmp_netcall_module.c` (arut/nginx-rtmp-module 1.2)
//! send them: an `application/x-www-form-urlencoded` POST of the session fields `app`,
//! `flashver`, `swfurl`, `tcurl`, `pageurl`, `addr`, `clientid`, then `call` and the call's
//! own (`name`, `type=live` on publish; `name`, `start`, `duration`, `reset` on play; `name`
//! on `publish_done`/`play_done`; `recorder`, `name`, `path` on `record_done`), then the
//! stream's query string as it came (`&token=abc`). nginx-rtmp judges only the status line:
//! any 2xx allows; a 3xx on publish or play renames the stream to the `Location` header's
//! value (nginx-rtmp pulls or pushes instead when it starts with `rtmp://`: srsd refuses
//! that); anything else, or no answer, denies. The answer to a notify is ignored.
//!
//! srsd's hooks map onto nginx-rtmp's calls: on_connect = `connect`, on_publish = `publish`,
//! on_play = `play`, on_unpublish = `publish_done`, on_stop = `play_done`, on_close =
//! `disconnect`, on_dvr = `record_done`.

use super::{post_as, HookError};
use crate::app::shared::ClientRequest;
use std::time::Duration;

/// The content type nginx-rtmp posts its hooks with.
pub const FORM: &str = "application/x-www-form-urlencoded";

/// Percent-encodes a field value (nginx's `ngx_escape_uri` with `NGX_ESCAPE_ARGS` leaves more
/// alone; a form decoder reads both the same).
fn escape(s: &str, out: &mut String) {
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b':') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

fn field(out: &mut String, key: &str, value: &str) {
    if !out.is_empty() {
        out.push('&');
    }
    out.push_str(key);
    out.push('=');
    escape(value, out);
}

/// The form body of srsd hook `action` about `who`, in nginx-rtmp's field order.
pub fn form(action: &str, who: &ClientRequest) -> String {
    let mut f = String::new();
    field(&mut f, "app", &who.app);
    field(&mut f, "flashver", &who.flash_ver);
    field(&mut f, "swfurl", &who.swf_url);
    field(&mut f, "tcurl", &who.tc_url);
    field(&mut f, "pageurl", &who.page_url);
    field(&mut f, "addr", &who.ip);
    field(&mut f, "clientid", &who.client_id.to_string());
    let call = match action {
        "on_connect" => "connect",
        "on_publish" => "publish",
        "on_play" => "play",
        "on_unpublish" => "publish_done",
        "on_stop" => "play_done",
        "on_close" => "disconnect",
        other => other,
    };
    field(&mut f, "call", call);
    if call != "connect" && call != "disconnect" {
        field(&mut f, "name", &who.stream);
    }
    match call {
        "publish" => field(&mut f, "type", "live"),
        // The play command's start/duration/reset are not kept past the RTMP layer; these
        // are what ffmpeg's and OBS's live players ask for.
        "play" => {
            field(&mut f, "start", "0");
            field(&mut f, "duration", "0");
            field(&mut f, "reset", "0");
        }
        _ => {}
    }
    // nginx-rtmp appends the stream's query string as it came, unescaped.
    let args = who.param.trim_start_matches('?');
    if !args.is_empty() {
        f.push('&');
        f.push_str(args);
    }
    f
}

/// The `record_done` form for a closed DVR file.
pub fn record_done(who: &ClientRequest, file: &std::path::Path) -> String {
    let mut f = form("record_done", who);
    // `recorder` and `path` go before the query, as nginx-rtmp writes them.
    let args = who.param.trim_start_matches('?');
    if !args.is_empty() {
        f.truncate(f.len() - args.len() - 1);
    }
    field(&mut f, "recorder", "dvr");
    field(&mut f, "path", &file.display().to_string());
    if !args.is_empty() {
        f.push('&');
        f.push_str(args);
    }
    f
}

/// Asks each URL in order with the form of `action`: `Ok(None)` when all allow, `Ok(Some(name))`
/// when one redirects a publish or play to another stream name (the chain stops there).
pub async fn gate(
    urls: &[String],
    action: &str,
    who: &ClientRequest,
    timeout: Duration,
) -> Result<Option<String>, HookError> {
    let body = form(action, who);
    for url in urls {
        let r = post_as(url, body.clone(), FORM, timeout)
            .await
            .map_err(|reason| HookError::Unreachable {
                url: url.clone(),
                reason,
            })?;
        let rejected = |why: String| HookError::Rejected {
            url: url.clone(),
            status: r.status,
            body: why.chars().take(80).collect(),
        };
        match r.status {
            200..=299 => {}
            300..=399 => {
                let to = r.location.as_deref().unwrap_or("").trim();
                if to.is_empty() || action == "on_connect" {
                    // nginx-rtmp renames the app on a connect redirect; srsd keeps it.
                    continue;
                }
                if to.len() >= 7 && to[..7].eq_ignore_ascii_case("rtmp://") {
                    return Err(rejected(format!("relay redirect to {to} is not supported")));
                }
                return Ok(Some(to.to_string()));
            }
            _ => return Err(rejected(r.body)),
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who() -> ClientRequest {
        ClientRequest {
            client_id: 7,
            ip: "127.0.0.1".into(),
            app: "live".into(),
            tc_url: "rtmp://127.0.0.1/live".into(),
            stream: "cam 1".into(),
            param: "?token=abc&x=1".into(),
            flash_ver: "FMLE/3.0 (compatible; FMSc/1.0)".into(),
            ..ClientRequest::default()
        }
    }

    #[test]
    fn publish_form_has_nginx_rtmp_fields_in_order() {
        assert_eq!(
            form("on_publish", &who()),
            "app=live&flashver=FMLE/3.0%20%28compatible%3B%20FMSc/1.0%29&swfurl=\
             &tcurl=rtmp://127.0.0.1/live&pageurl=&addr=127.0.0.1&clientid=7\
             &call=publish&name=cam%201&type=live&token=abc&x=1"
        );
    }

    #[test]
    fn play_done_and_disconnect_calls() {
        let w = who();
        assert!(form("on_play", &w)
            .contains("&call=play&name=cam%201&start=0&duration=0&reset=0&token=abc"));
        assert!(form("on_stop", &w).contains("&call=play_done&name=cam%201&token=abc"));
        assert!(form("on_unpublish", &w).contains("&call=publish_done&name="));
        let close = form("on_close", &w);
        assert!(close.contains("&call=disconnect&token=abc") && !close.contains("name="));
        let rec = record_done(&w, std::path::Path::new("/rec/a b.flv"));
        assert!(
            rec.ends_with(
                "&call=record_done&name=cam%201&recorder=dvr&path=/rec/a%20b.flv&token=abc&x=1"
            ),
            "{rec}"
        );
    }
}
