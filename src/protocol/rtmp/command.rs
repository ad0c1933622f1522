//! RTMP commands (RTMP spec §7.2): the typed requests a client sends and the answers a server
//! gives, built from and into [`CommandMessage`].

use super::message::CommandMessage;
use crate::protocol::amf0::Amf0Value;

/// Status codes real clients (Flash, OBS, ffmpeg, librtmp) look for.
pub mod status {
    pub const CONNECT_SUCCESS: &str = "NetConnection.Connect.Success";
    pub const CONNECT_REJECTED: &str = "NetConnection.Connect.Rejected";
    pub const PUBLISH_START: &str = "NetStream.Publish.Start";
    pub const PUBLISH_BAD_NAME: &str = "NetStream.Publish.BadName";
    pub const PUBLISH_DENIED: &str = "NetStream.Publish.Denied";
    pub const UNPUBLISH_SUCCESS: &str = "NetStream.Unpublish.Success";
    pub const PLAY_RESET: &str = "NetStream.Play.Reset";
    pub const PLAY_START: &str = "NetStream.Play.Start";
    pub const PLAY_STOP: &str = "NetStream.Play.Stop";
    pub const PLAY_STREAM_NOT_FOUND: &str = "NetStream.Play.StreamNotFound";
    pub const PLAY_UNPUBLISH_NOTIFY: &str = "NetStream.Play.UnpublishNotify";
    pub const PLAY_PUBLISH_NOTIFY: &str = "NetStream.Play.PublishNotify";
    pub const PAUSE_NOTIFY: &str = "NetStream.Pause.Notify";
    pub const UNPAUSE_NOTIFY: &str = "NetStream.Unpause.Notify";
}

/// The arguments of `connect` a server cares about, plus everything else as sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ConnectRequest {
    pub app: String,
    pub tc_url: String,
    pub page_url: String,
    pub swf_url: String,
    pub flash_ver: String,
    /// 0 = AMF0, 3 = AMF3; echoed in the answer (Flash needs it back).
    pub object_encoding: f64,
    /// The whole command object, for token traversal to an origin.
    pub command_object: Vec<(String, Amf0Value)>,
    /// Optional user arguments after the command object.
    pub extra_args: Vec<Amf0Value>,
}

/// How the client asked to publish (`live`, `record`, `append`). srsd serves every kind live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublishRequest {
    pub stream_name: String,
    pub kind: String,
}

#[derive(Debug, Clone, PartialEq)]
pub struct PlayRequest {
    pub stream_name: String,
    /// -2 live or recorded, -1 live only, >= 0 recorded from that offset (seconds).
    pub start: f64,
    /// How long to play, in milliseconds as librtmp sends it (`rtmpdump -B/--stop N`: the stop
    /// offset less the start, N s as N × 1000); -1 (or absent) plays to the end.
    pub duration: f64,
    pub reset: bool,
}

impl PlayRequest {
    /// The play's length when the client asked for one: `duration` as whole milliseconds
    /// when it is above 0 (SRS 6 stops a live play there, srs#45), capped at `u32::MAX`.
    /// `None` for -1, 0, a negative or a non-finite number.
    pub fn length_ms(&self) -> Option<u32> {
        (self.duration.is_finite() && self.duration >= 1.0)
            .then(|| self.duration.min(u32::MAX as f64) as u32)
    }
}

/// A command a client sends to a server.
#[derive(Debug, Clone, PartialEq)]
pub enum ClientCommand {
    Connect {
        transaction_id: f64,
        request: ConnectRequest,
    },
    CreateStream {
        transaction_id: f64,
    },
    ReleaseStream {
        transaction_id: f64,
        stream_name: String,
    },
    FcPublish {
        transaction_id: f64,
        stream_name: String,
    },
    FcUnpublish {
        transaction_id: f64,
        stream_name: String,
    },
    Publish {
        transaction_id: f64,
        stream_id: u32,
        request: PublishRequest,
    },
    Play {
        transaction_id: f64,
        stream_id: u32,
        request: PlayRequest,
    },
    Pause {
        transaction_id: f64,
        stream_id: u32,
        paused: bool,
        position_ms: f64,
    },
    CloseStream {
        stream_id: u32,
    },
    DeleteStream {
        stream_id: u32,
        deleted: u32,
    },
    GetStreamLength {
        transaction_id: f64,
        stream_name: String,
    },
    /// `_result`/`_error` from the peer (answers to our own calls, e.g. onBWDone checks).
    Result {
        transaction_id: f64,
        args: Vec<Amf0Value>,
    },
    Error {
        transaction_id: f64,
        args: Vec<Amf0Value>,
    },
    /// Anything else (`call`, `checkBandwidth`, `_checkbw`, `@setDataFrame` sent as command...).
    Other(CommandMessage),
}

fn arg_str(args: &[Amf0Value], i: usize) -> String {
    args.get(i)
        .and_then(Amf0Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn prop_str(obj: &Amf0Value, key: &str) -> String {
    obj.get(key)
        .and_then(Amf0Value::as_str)
        .unwrap_or_default()
        .to_string()
}

impl ClientCommand {
    /// Types a command message. Missing or odd arguments get defaults rather than errors:
    /// encoders differ (e.g. OBS omits the publish type, some players omit `start`).
    pub fn parse(c: CommandMessage) -> ClientCommand {
        let t = c.transaction_id;
        // args[0] is the command object (usually null); the stream name etc. follow.
        let args = &c.args;
        match c.name.as_str() {
            "connect" => {
                let obj = args.first().cloned().unwrap_or(Amf0Value::Null);
                let command_object = match &obj {
                    Amf0Value::Object(p) | Amf0Value::EcmaArray(p) => p.clone(),
                    _ => Vec::new(),
                };
                let request = ConnectRequest {
                    app: prop_str(&obj, "app"),
                    tc_url: prop_str(&obj, "tcUrl"),
                    page_url: prop_str(&obj, "pageUrl"),
                    swf_url: prop_str(&obj, "swfUrl"),
                    flash_ver: prop_str(&obj, "flashVer"),
                    object_encoding: obj
                        .get("objectEncoding")
                        .and_then(Amf0Value::as_f64)
                        .unwrap_or(0.0),
                    command_object,
                    extra_args: args.iter().skip(1).cloned().collect(),
                };
                ClientCommand::Connect {
                    transaction_id: t,
                    request,
                }
            }
            "createStream" => ClientCommand::CreateStream { transaction_id: t },
            "releaseStream" => ClientCommand::ReleaseStream {
                transaction_id: t,
                stream_name: arg_str(args, 1),
            },
            "FCPublish" => ClientCommand::FcPublish {
                transaction_id: t,
                stream_name: arg_str(args, 1),
            },
            "FCUnpublish" => ClientCommand::FcUnpublish {
                transaction_id: t,
                stream_name: arg_str(args, 1),
            },
            "publish" => ClientCommand::Publish {
                transaction_id: t,
                stream_id: c.stream_id,
                request: PublishRequest {
                    stream_name: arg_str(args, 1),
                    kind: args
                        .get(2)
                        .and_then(Amf0Value::as_str)
                        .unwrap_or("live")
                        .to_string(),
                },
            },
            "play" => ClientCommand::Play {
                transaction_id: t,
                stream_id: c.stream_id,
                request: PlayRequest {
                    stream_name: arg_str(args, 1),
                    start: args.get(2).and_then(Amf0Value::as_f64).unwrap_or(-2.0),
                    duration: args.get(3).and_then(Amf0Value::as_f64).unwrap_or(-1.0),
                    reset: args.get(4).and_then(Amf0Value::as_bool).unwrap_or(true),
                },
            },
            "pause" => ClientCommand::Pause {
                transaction_id: t,
                stream_id: c.stream_id,
                paused: args.get(1).and_then(Amf0Value::as_bool).unwrap_or(true),
                position_ms: args.get(2).and_then(Amf0Value::as_f64).unwrap_or(0.0),
            },
            "closeStream" => ClientCommand::CloseStream {
                stream_id: c.stream_id,
            },
            "deleteStream" => ClientCommand::DeleteStream {
                stream_id: c.stream_id,
                deleted: args
                    .get(1)
                    .and_then(Amf0Value::as_f64)
                    .map(|v| v as u32)
                    .unwrap_or(c.stream_id),
            },
            "getStreamLength" => ClientCommand::GetStreamLength {
                transaction_id: t,
                stream_name: arg_str(args, 1),
            },
            "_result" => ClientCommand::Result {
                transaction_id: t,
                args: c.args,
            },
            "_error" => ClientCommand::Error {
                transaction_id: t,
                args: c.args,
            },
            _ => ClientCommand::Other(c),
        }
    }
}

/// Builds a command message.
pub fn command(
    stream_id: u32,
    name: &str,
    transaction_id: f64,
    args: Vec<Amf0Value>,
) -> CommandMessage {
    CommandMessage {
        stream_id,
        name: name.to_string(),
        transaction_id,
        args,
    }
}

/// `onStatus(0, null, {level, code, description})` on a message stream.
pub fn on_status(stream_id: u32, level: &str, code: &str, description: &str) -> CommandMessage {
    on_status_with(stream_id, level, code, description, Vec::new())
}

/// `onStatus` with extra properties (e.g. `details`, `clientid`).
pub fn on_status_with(
    stream_id: u32,
    level: &str,
    code: &str,
    description: &str,
    extra: Vec<(&str, Amf0Value)>,
) -> CommandMessage {
    let mut props = vec![
        ("level", Amf0Value::string(level)),
        ("code", Amf0Value::string(code)),
        ("description", Amf0Value::string(description)),
    ];
    props.extend(extra);
    command(
        stream_id,
        "onStatus",
        0.0,
        vec![Amf0Value::Null, Amf0Value::object(props)],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_connect_with_extra_args() {
        let c = command(
            0,
            "connect",
            1.0,
            vec![
                Amf0Value::object(vec![
                    ("app", Amf0Value::string("live")),
                    ("tcUrl", Amf0Value::string("rtmp://127.0.0.1/live")),
                    ("objectEncoding", Amf0Value::Number(3.0)),
                ]),
                Amf0Value::string("token"),
            ],
        );
        let ClientCommand::Connect { request, .. } = ClientCommand::parse(c) else {
            panic!()
        };
        assert_eq!(request.app, "live");
        assert_eq!(request.tc_url, "rtmp://127.0.0.1/live");
        assert_eq!(request.object_encoding, 3.0);
        assert_eq!(request.extra_args, vec![Amf0Value::string("token")]);
    }

    #[test]
    fn parses_publish_and_play_with_defaults() {
        let p = command(
            1,
            "publish",
            5.0,
            vec![Amf0Value::Null, Amf0Value::string("s?k=v")],
        );
        assert_eq!(
            ClientCommand::parse(p),
            ClientCommand::Publish {
                transaction_id: 5.0,
                stream_id: 1,
                request: PublishRequest {
                    stream_name: "s?k=v".into(),
                    kind: "live".into()
                }
            }
        );
        let p = command(
            1,
            "play",
            4.0,
            vec![Amf0Value::Null, Amf0Value::string("s")],
        );
        let ClientCommand::Play { request, .. } = ClientCommand::parse(p) else {
            panic!()
        };
        assert_eq!(
            (request.start, request.duration, request.reset),
            (-2.0, -1.0, true)
        );
        assert_eq!(request.length_ms(), None);
    }

    #[test]
    fn a_play_length_is_whole_milliseconds_above_zero() {
        // What rtmpdump -v -B 3 sends: start -1000 (live), duration 3000.
        let p = command(
            1,
            "play",
            4.0,
            vec![
                Amf0Value::Null,
                Amf0Value::string("s"),
                Amf0Value::Number(-1000.0),
                Amf0Value::Number(3000.0),
            ],
        );
        let ClientCommand::Play { request, .. } = ClientCommand::parse(p) else {
            panic!()
        };
        assert_eq!(request.length_ms(), Some(3000));
        let length = |duration| {
            PlayRequest {
                duration,
                ..request.clone()
            }
            .length_ms()
        };
        assert_eq!(length(2500.7), Some(2500));
        assert_eq!(length(1e300), Some(u32::MAX));
        for none in [-1.0, 0.0, 0.5, -2000.0, f64::NAN, f64::INFINITY] {
            assert_eq!(length(none), None, "{none}");
        }
    }

    #[test]
    fn odd_arguments_do_not_fail() {
        for name in [
            "connect",
            "publish",
            "play",
            "pause",
            "deleteStream",
            "FCPublish",
        ] {
            let _ = ClientCommand::parse(command(0, name, 0.0, vec![]));
            let _ = ClientCommand::parse(command(0, name, 0.0, vec![Amf0Value::Number(1.0); 6]));
        }
    }
}
