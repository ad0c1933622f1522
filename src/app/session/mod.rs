//! Admission, the one path every transport takes (RTMP, HTTP-FLV/TS/audio mounts, HLS
//! viewers): SRS's `SrsRtmpConn::stream_service_cycle` checks and hooks, protocol-neutral.
//!
//! [`connect`], [`publish`] and [`play`] return a guard ([`Connected`], [`Publishing`],
//! [`Playing`]) whose drop sends the matching notify (`on_close`, `on_unpublish`, `on_stop`),
//! or a [`Denied`] that knows its RTMP status, HTTP status, SRS error code and `/metrics`
//! reason. A refusal is logged and counted here, once; the transport only answers it.

pub mod access;

use crate::app::cluster::edge;
use crate::app::hooks::{self, Guard, HookError};
use crate::app::runtime::stats::ClientStat;
use crate::app::shared::ClientRequest;
use crate::app::shared::Context;
use crate::config::{ClusterMode, VhostConfig};
use crate::hub::{Publisher, Source, StreamKey};
use crate::protocol::rtmp::command::{status, ConnectRequest};
use access::Action;
use std::fmt;
use std::net::IpAddr;
use std::sync::Arc;

/// Why a client may not publish or play, with who is to blame (DESIGN.md §3).
#[derive(Debug)]
pub enum Denied {
    /// An empty, malformed or unsafe stream name (or a publish/play before connect).
    BadName(String),
    /// No such vhost, a disabled one, or another vhost than the connection's first.
    Vhost(String),
    /// `[vhost.X.refer]`: the page URL (RTMP pageUrl, HTTP Referer) is not allowed.
    Refer(String),
    /// `[vhost.X.security]`: the client's address is not allowed.
    Security(String),
    /// The stream has a publisher already (its client id).
    Busy { publisher: u64 },
    /// A gate hook (`on_connect`, `on_publish`, `on_play`) rejected, or could not be asked.
    Hook {
        action: &'static str,
        error: HookError,
    },
    /// Token traverse: the origin refused the client or could not be reached.
    Origin(String),
}

impl Denied {
    /// The `/metrics` label (`srsd_denials_total{reason}`, one of `stats::DENIAL_REASONS`).
    pub fn reason(&self) -> &'static str {
        match self {
            Denied::BadName(_) => "bad_name",
            Denied::Vhost(_) => "vhost",
            Denied::Refer(_) => "refer",
            Denied::Security(_) => "security",
            Denied::Busy { .. } => "busy",
            Denied::Hook { error, .. } => error.reason(),
            Denied::Origin(_) => "origin",
        }
    }

    /// The onStatus code a refused encoder gets. A busy stream answers BadName as
    /// nginx-rtmp does ("Already publishing"), which OBS and ffmpeg report as such; every
    /// policy refusal answers Denied.
    pub fn publish_status(&self) -> &'static str {
        match self {
            Denied::BadName(_) | Denied::Busy { .. } => status::PUBLISH_BAD_NAME,
            _ => status::PUBLISH_DENIED,
        }
    }

    /// The onStatus code a refused RTMP player gets (SRS closes the connection; players
    /// that wait for a status see StreamNotFound, as nginx-rtmp answers them).
    pub fn play_status(&self) -> &'static str {
        status::PLAY_STREAM_NOT_FOUND
    }

    /// The HTTP status a refused HTTP viewer gets: 503 when the hook server or the origin
    /// could not be asked (nothing was denied: the player may retry), 404 for a name or
    /// vhost that does not exist, 409 for a busy stream, 403 for every policy refusal.
    pub fn http_status(&self) -> hyper::StatusCode {
        use hyper::StatusCode;
        match self {
            Denied::BadName(_) | Denied::Vhost(_) => StatusCode::NOT_FOUND,
            Denied::Busy { .. } => StatusCode::CONFLICT,
            Denied::Hook { error, .. } => error.http_status(),
            Denied::Refer(_) | Denied::Security(_) | Denied::Origin(_) => StatusCode::FORBIDDEN,
        }
    }

    /// SRS 6's error code for it (`srs_kernel_error.hpp`): 2051 StreamNameEmpty, 2014
    /// NoVhost, 2015 SecurityDenied (refer), 1053 SecurityDeny, 1028 StreamBusy, 3064
    /// HttpResponseCode (a hook said no), 1012 SocketConnect (a hook or origin unreachable),
    /// 2022 EdgeProxyPull (the origin refused).
    pub fn srs_code(&self) -> i64 {
        match self {
            Denied::BadName(_) => 2051,
            Denied::Vhost(_) => 2014,
            Denied::Refer(_) => 2015,
            Denied::Security(_) => 1053,
            Denied::Busy { .. } => 1028,
            Denied::Hook {
                error: HookError::Rejected { .. },
                ..
            } => 3064,
            Denied::Hook {
                error: HookError::Unreachable { .. },
                ..
            } => 1012,
            Denied::Origin(_) => 2022,
        }
    }
}

impl Denied {
    /// What the refused client is told (the RTMP status description): why, in its own terms,
    /// and SRS's code, but nothing of the server's side, which the log line has (the hook's
    /// URL and answer, the security rule, the origin's address).
    pub fn to_client(&self) -> String {
        let why = match self {
            Denied::BadName(_) | Denied::Vhost(_) | Denied::Busy { .. } => self.to_string(),
            Denied::Refer(_) => "the page URL is not allowed (refer)".into(),
            Denied::Security(_) => "the address is not allowed (security)".into(),
            Denied::Hook {
                action,
                error: HookError::Rejected { .. },
            } => format!("{action} denied"),
            Denied::Hook {
                action,
                error: HookError::Unreachable { .. },
            } => format!("{action}: the authorization server did not answer; try again"),
            Denied::Origin(_) => "the origin refused the client or did not answer".into(),
        };
        format!("{why} (code {})", self.srs_code())
    }
}

impl fmt::Display for Denied {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Denied::BadName(why)
            | Denied::Vhost(why)
            | Denied::Refer(why)
            | Denied::Security(why)
            | Denied::Origin(why) => f.write_str(why),
            Denied::Busy { publisher } => {
                write!(f, "already published by client {publisher}")
            }
            Denied::Hook { action, error } => write!(f, "{action} {error}"),
        }
    }
}

/// Logs a refusal of `what` (`"publish"`, `"play"`, `"HTTP play"`) on `key` once, counts it
/// under its reason, and hands it back for the transport to answer.
fn refuse(ctx: &Context, what: &str, key: &StreamKey, d: Denied) -> Denied {
    ::log::warn!("reject {what} {key}: {d} (code {})", d.srs_code());
    ctx.denials.count(d.reason());
    d
}

/// Refer (`page_url`: RTMP pageUrl or HTTP Referer) then security (`ip`), as SRS checks
/// them before any hook.
pub fn check_access(
    v: &VhostConfig,
    action: Action,
    page_url: &str,
    ip: IpAddr,
) -> Result<(), Denied> {
    if !access::refer_allows(&v.refer, action, page_url) {
        return Err(Denied::Refer(format!(
            "refer: page {page_url:?} not allowed to {action}"
        )));
    }
    access::security_allows(&v.security, action, ip).map_err(Denied::Security)
}

/// A client admitted to its vhost: `on_connect` passed (its drop sends `on_close`).
pub struct Connected {
    _hook: Option<Guard>,
}

/// The once-per-connection part of admission, at the first publish or play as SRS 6 runs
/// it: refer and security, the `on_connect` hook (with the stream's name and param), and on
/// an edge with `token_traverse` the origin's verdict on the client's token.
pub async fn connect(
    ctx: &Arc<Context>,
    v: &VhostConfig,
    action: Action,
    who: &ClientRequest,
    key: &StreamKey,
    request: &ConnectRequest,
    stat: Arc<ClientStat>,
) -> Result<Connected, Denied> {
    let what = action.to_string();
    let ip = who
        .ip
        .parse()
        .unwrap_or(IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED));
    check_access(v, action, &who.page_url, ip).map_err(|d| refuse(ctx, &what, key, d))?;
    let hook = hooks::run_gate(ctx, &v.http_hooks, "on_connect", who, Some(stat))
        .await
        .map_err(|error| {
            let d = Denied::Hook {
                action: "on_connect",
                error,
            };
            refuse(ctx, &what, key, d)
        })?;
    if v.cluster.token_traverse && v.cluster.mode == ClusterMode::Remote {
        edge::token_traverse(v, key, request, &who.param)
            .await
            .map_err(|e| refuse(ctx, &what, key, Denied::Origin(e)))?;
    }
    Ok(Connected { _hook: hook })
}

/// A live publish: the stream is held (its drop unpublishes) and `on_publish` passed (its
/// drop, after the publisher's, sends `on_unpublish`).
pub struct Publishing {
    pub publisher: Publisher,
    pub hook: Option<Guard>,
}

/// What a gate decided: admitted, or (nginx-rtmp's publish/play redirect, `hook_protocol =
/// "nginx"`) asked to take another stream name; the hook's guard goes with the renamed
/// request, which is not asked again.
pub enum Gate<T> {
    Admitted(T),
    Renamed { to: String, hook: Option<Guard> },
}

/// Takes `source` for a publisher, then asks `on_publish` (unless `decided` carries its
/// guard: a renamed publish). The hook runs while the stream is held, so a racing second
/// publisher is refused rather than admitted behind a slow hook.
pub async fn publish(
    ctx: &Arc<Context>,
    v: &VhostConfig,
    source: &Arc<Source>,
    cid: u32,
    who: &ClientRequest,
    decided: Option<Option<Guard>>,
) -> Result<Gate<Publishing>, Denied> {
    let key = &source.key;
    let publisher = source.publish(cid).map_err(|busy| {
        let d = Denied::Busy {
            publisher: busy.publisher,
        };
        refuse(ctx, "publish", key, d)
    })?;
    let gate = match decided {
        Some(hook) => Ok((hook, None)),
        None => hooks::run_gate_renaming(ctx, &v.http_hooks, "on_publish", who, None).await,
    };
    match gate {
        Ok((hook, None)) => Ok(Gate::Admitted(Publishing { publisher, hook })),
        Ok((hook, Some(to))) => {
            ::log::info!("publish {key}: on_publish renames the stream to {to}");
            drop(publisher);
            Ok(Gate::Renamed { to, hook })
        }
        Err(error) => {
            drop(publisher);
            let d = Denied::Hook {
                action: "on_publish",
                error,
            };
            Err(refuse(ctx, "publish", key, d))
        }
    }
}

/// An admitted player (RTMP, HTTP viewer or HLS viewer): its drop sends `on_stop`.
pub struct Playing {
    _hook: Option<Guard>,
}

/// The play gate of an RTMP player, whose connection passed refer and security in
/// [`connect`]: `on_play` (unless `decided` carries its guard: a renamed play), which may
/// rename the stream (nginx-rtmp's redirect).
pub async fn play(
    ctx: &Arc<Context>,
    v: &VhostConfig,
    key: &StreamKey,
    who: &ClientRequest,
    decided: Option<Option<Guard>>,
) -> Result<Gate<Playing>, Denied> {
    let gate = match decided {
        Some(hook) => Ok((hook, None)),
        None => hooks::run_gate_renaming(ctx, &v.http_hooks, "on_play", who, None).await,
    };
    match gate {
        Ok((hook, None)) => Ok(Gate::Admitted(Playing { _hook: hook })),
        Ok((hook, Some(to))) => {
            ::log::info!("play {key}: on_play renames the stream to {to}");
            ctx.hub.release(key);
            Ok(Gate::Renamed { to, hook })
        }
        Err(error) => {
            let d = Denied::Hook {
                action: "on_play",
                error,
            };
            ctx.hub.release(key);
            Err(refuse(ctx, "play", key, d))
        }
    }
}

/// The play gate of an HTTP viewer (HTTP-FLV/TS/audio mounts, HLS): refer (against the
/// Referer) and security (`ip`), then `on_play`; a hook's redirect is not followed (as
/// nginx-rtmp, which redirects RTMP only). A refusal releases the source when no one else
/// holds it, so refused names do not pile up in the hub.
pub async fn play_http(
    ctx: &Arc<Context>,
    v: &VhostConfig,
    what: &str,
    key: &StreamKey,
    who: &ClientRequest,
    ip: IpAddr,
) -> Result<Playing, Denied> {
    let admitted = async {
        check_access(v, Action::Play, &who.page_url, ip)?;
        hooks::run_gate(ctx, &v.http_hooks, "on_play", who, None)
            .await
            .map_err(|error| Denied::Hook {
                action: "on_play",
                error,
            })
    };
    match admitted.await {
        Ok(hook) => Ok(Playing { _hook: hook }),
        Err(d) => {
            ctx.hub.release(key);
            Err(refuse(ctx, &format!("{what} from {ip}"), key, d))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rejected() -> HookError {
        HookError::Rejected {
            url: "http://127.0.0.1:1/h".into(),
            status: 200,
            body: "1".into(),
        }
    }

    fn unreachable() -> HookError {
        HookError::Unreachable {
            url: "http://127.0.0.1:1/h".into(),
            reason: "connection refused".into(),
        }
    }

    #[test]
    fn each_denial_maps_to_its_wire_answers() {
        use hyper::StatusCode as S;
        let hook = |error| Denied::Hook {
            action: "on_play",
            error,
        };
        // (denial, metrics reason, publish status, HTTP status, SRS code)
        let table: Vec<(Denied, &str, &str, S, i64)> = vec![
            (
                Denied::BadName("x".into()),
                "bad_name",
                status::PUBLISH_BAD_NAME,
                S::NOT_FOUND,
                2051,
            ),
            (
                Denied::Vhost("x".into()),
                "vhost",
                status::PUBLISH_DENIED,
                S::NOT_FOUND,
                2014,
            ),
            (
                Denied::Refer("x".into()),
                "refer",
                status::PUBLISH_DENIED,
                S::FORBIDDEN,
                2015,
            ),
            (
                Denied::Security("x".into()),
                "security",
                status::PUBLISH_DENIED,
                S::FORBIDDEN,
                1053,
            ),
            (
                Denied::Busy { publisher: 7 },
                "busy",
                status::PUBLISH_BAD_NAME,
                S::CONFLICT,
                1028,
            ),
            (
                hook(rejected()),
                "hook_rejected",
                status::PUBLISH_DENIED,
                S::FORBIDDEN,
                3064,
            ),
            (
                hook(unreachable()),
                "hook_unreachable",
                status::PUBLISH_DENIED,
                S::SERVICE_UNAVAILABLE,
                1012,
            ),
            (
                Denied::Origin("x".into()),
                "origin",
                status::PUBLISH_DENIED,
                S::FORBIDDEN,
                2022,
            ),
        ];
        for (d, reason, publish, http, code) in table {
            assert_eq!(d.reason(), reason, "{d}");
            assert!(
                crate::app::runtime::stats::DENIAL_REASONS.contains(&d.reason()),
                "{reason} is a /metrics label"
            );
            assert_eq!(d.publish_status(), publish, "{d}");
            assert_eq!(d.play_status(), status::PLAY_STREAM_NOT_FOUND);
            assert_eq!(d.http_status(), http, "{d}");
            assert_eq!(d.srs_code(), code, "{d}");
        }
    }

    #[test]
    fn a_refused_client_is_told_why_and_the_code_but_nothing_of_the_servers_side() {
        let secret = "10.9.8.7 rule-secret";
        let cases = [
            (
                Denied::BadName("\"\": empty stream name".into()),
                "empty stream name",
            ),
            (
                Denied::Busy { publisher: 7 },
                "already published by client 7",
            ),
            (Denied::Refer(secret.into()), "(refer)"),
            (Denied::Security(secret.into()), "(security)"),
            (Denied::Origin(secret.into()), "the origin refused"),
            (
                Denied::Hook {
                    action: "on_publish",
                    error: rejected(),
                },
                "on_publish denied",
            ),
            (
                Denied::Hook {
                    action: "on_play",
                    error: unreachable(),
                },
                "did not answer",
            ),
        ];
        for (d, says) in cases {
            let told = d.to_client();
            assert!(told.contains(says), "{told}");
            assert!(
                told.ends_with(&format!("(code {})", d.srs_code())),
                "{told}"
            );
            for hidden in [secret, "127.0.0.1:1/h", "HTTP 200", "connection refused"] {
                assert!(!told.contains(hidden), "{told} tells {hidden:?}");
            }
        }
    }

    #[test]
    fn an_unreachable_hook_never_reads_as_denied() {
        let d = Denied::Hook {
            action: "on_publish",
            error: unreachable(),
        };
        let text = d.to_string();
        assert!(text.contains("hook server unreachable"), "{text}");
        assert!(!text.contains("denied"), "{text}");
    }
}
