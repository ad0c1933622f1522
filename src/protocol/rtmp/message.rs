//! RTMP messages: the typed form of a [`RawMessage`] (RTMP spec §5.4, §6, §7).
//!
//! [`Message::decode`] turns a raw message into a typed one; [`Message::encode`] does the
//! reverse for the messages a session sends. Media payloads (audio, video, data) stay `Bytes`
//! so they are never copied. Aggregate messages (type 22) are split by [`split_aggregate`].

use super::chunk::{csid, RawMessage};
use crate::protocol::amf0::{self, Amf0Error, Amf0Value};
use bytes::{BufMut, Bytes, BytesMut};
use std::fmt;

pub mod type_id {
    pub const SET_CHUNK_SIZE: u8 = 1;
    pub const ABORT: u8 = 2;
    pub const ACKNOWLEDGEMENT: u8 = 3;
    pub const USER_CONTROL: u8 = 4;
    pub const WINDOW_ACK_SIZE: u8 = 5;
    pub const SET_PEER_BANDWIDTH: u8 = 6;
    pub const AUDIO: u8 = 8;
    pub const VIDEO: u8 = 9;
    pub const AMF3_DATA: u8 = 15;
    pub const AMF3_SHARED_OBJECT: u8 = 16;
    pub const AMF3_COMMAND: u8 = 17;
    pub const AMF0_DATA: u8 = 18;
    pub const AMF0_SHARED_OBJECT: u8 = 19;
    pub const AMF0_COMMAND: u8 = 20;
    pub const AGGREGATE: u8 = 22;
}

/// User Control events (RTMP spec §6.2, §7.1.7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UserControl {
    StreamBegin(u32),
    StreamEof(u32),
    StreamDry(u32),
    SetBufferLength {
        stream_id: u32,
        ms: u32,
    },
    StreamIsRecorded(u32),
    PingRequest(u32),
    PingResponse(u32),
    /// Event types we do not act on (e.g. Flash's SWF verification, 26/27).
    Other {
        event: u16,
    },
}

/// A command (AMF0 or AMF3-wrapped) as sent on the wire: name, transaction id, the rest.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandMessage {
    pub stream_id: u32,
    pub name: String,
    pub transaction_id: f64,
    /// The command object (often null) followed by the optional arguments.
    pub args: Vec<Amf0Value>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Message {
    SetChunkSize(u32),
    Abort(u32),
    Acknowledgement(u32),
    UserControl(UserControl),
    WindowAckSize(u32),
    SetPeerBandwidth {
        size: u32,
        limit: u8,
    },
    Audio {
        timestamp: u32,
        stream_id: u32,
        payload: Bytes,
    },
    Video {
        timestamp: u32,
        stream_id: u32,
        payload: Bytes,
    },
    /// AMF0 data (onMetaData, @setDataFrame, |RtmpSampleAccess), payload kept as sent.
    Data {
        timestamp: u32,
        stream_id: u32,
        payload: Bytes,
    },
    Command(CommandMessage),
    Aggregate {
        timestamp: u32,
        stream_id: u32,
        payload: Bytes,
    },
    /// Shared objects and unknown types: ignored by sessions.
    Ignored {
        type_id: u8,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MessageError {
    /// A control message shorter than its fixed layout.
    Truncated { type_id: u8 },
    /// A command whose AMF0 body does not decode.
    BadAmf(Amf0Error),
    /// A command whose first values are not (string name, number transaction id).
    BadCommand,
}

impl fmt::Display for MessageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MessageError::Truncated { type_id } => write!(f, "message type {type_id} truncated"),
            MessageError::BadAmf(e) => write!(f, "command body is not valid AMF0: {e}"),
            MessageError::BadCommand => write!(f, "command without name and transaction id"),
        }
    }
}

impl std::error::Error for MessageError {}

fn be32(p: &[u8], type_id: u8) -> Result<u32, MessageError> {
    match p.get(0..4) {
        Some(b) => Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]])),
        None => Err(MessageError::Truncated { type_id }),
    }
}

impl Message {
    pub fn decode(raw: RawMessage) -> Result<Message, MessageError> {
        use type_id::*;
        let p = &raw.payload[..];
        let t = raw.type_id;
        Ok(match t {
            // The top bit of Set Chunk Size must be 0 (§5.4.1).
            SET_CHUNK_SIZE => Message::SetChunkSize(be32(p, t)? & 0x7FFF_FFFF),
            ABORT => Message::Abort(be32(p, t)?),
            ACKNOWLEDGEMENT => Message::Acknowledgement(be32(p, t)?),
            WINDOW_ACK_SIZE => Message::WindowAckSize(be32(p, t)?),
            SET_PEER_BANDWIDTH => Message::SetPeerBandwidth {
                size: be32(p, t)?,
                limit: p.get(4).copied().unwrap_or(2),
            },
            USER_CONTROL => {
                let event = match p.get(0..2) {
                    Some(b) => u16::from_be_bytes([b[0], b[1]]),
                    None => return Err(MessageError::Truncated { type_id: t }),
                };
                let rest = &p[2..];
                Message::UserControl(match event {
                    0 => UserControl::StreamBegin(be32(rest, t)?),
                    1 => UserControl::StreamEof(be32(rest, t)?),
                    2 => UserControl::StreamDry(be32(rest, t)?),
                    3 => UserControl::SetBufferLength {
                        stream_id: be32(rest, t)?,
                        ms: be32(rest.get(4..).unwrap_or(&[]), t)?,
                    },
                    4 => UserControl::StreamIsRecorded(be32(rest, t)?),
                    6 => UserControl::PingRequest(be32(rest, t)?),
                    7 => UserControl::PingResponse(be32(rest, t)?),
                    other => UserControl::Other { event: other },
                })
            }
            AUDIO => Message::Audio {
                timestamp: raw.timestamp,
                stream_id: raw.stream_id,
                payload: raw.payload,
            },
            VIDEO => Message::Video {
                timestamp: raw.timestamp,
                stream_id: raw.stream_id,
                payload: raw.payload,
            },
            AMF0_DATA => Message::Data {
                timestamp: raw.timestamp,
                stream_id: raw.stream_id,
                payload: raw.payload,
            },
            // AMF3 data/command messages carry a leading format byte, then (from every encoder
            // we know) plain AMF0 values.
            AMF3_DATA => Message::Data {
                timestamp: raw.timestamp,
                stream_id: raw.stream_id,
                payload: raw.payload.slice(1.min(raw.payload.len())..),
            },
            AMF0_COMMAND | AMF3_COMMAND => {
                let body = if t == AMF3_COMMAND {
                    p.get(1..).unwrap_or(&[])
                } else {
                    p
                };
                let mut values = amf0::decode_all(body)
                    .map_err(MessageError::BadAmf)?
                    .into_iter();
                let name = match values.next() {
                    Some(Amf0Value::String(s)) => s,
                    _ => return Err(MessageError::BadCommand),
                };
                // Some clients omit the transaction id of notifications; treat as 0.
                let transaction_id = match values.next() {
                    Some(Amf0Value::Number(n)) => n,
                    Some(_) | None => 0.0,
                };
                Message::Command(CommandMessage {
                    stream_id: raw.stream_id,
                    name,
                    transaction_id,
                    args: values.collect(),
                })
            }
            AGGREGATE => Message::Aggregate {
                timestamp: raw.timestamp,
                stream_id: raw.stream_id,
                payload: raw.payload,
            },
            other => Message::Ignored { type_id: other },
        })
    }

    /// Encodes a message the session sends into a raw message on the customary chunk stream.
    pub fn encode(&self) -> RawMessage {
        use type_id::*;
        let mut b = BytesMut::new();
        let (csid, timestamp, type_id, stream_id) = match self {
            Message::SetChunkSize(v) => {
                b.put_u32(*v);
                (csid::PROTOCOL_CONTROL, 0, SET_CHUNK_SIZE, 0)
            }
            Message::Abort(v) => {
                b.put_u32(*v);
                (csid::PROTOCOL_CONTROL, 0, ABORT, 0)
            }
            Message::Acknowledgement(v) => {
                b.put_u32(*v);
                (csid::PROTOCOL_CONTROL, 0, ACKNOWLEDGEMENT, 0)
            }
            Message::WindowAckSize(v) => {
                b.put_u32(*v);
                (csid::PROTOCOL_CONTROL, 0, WINDOW_ACK_SIZE, 0)
            }
            Message::SetPeerBandwidth { size, limit } => {
                b.put_u32(*size);
                b.put_u8(*limit);
                (csid::PROTOCOL_CONTROL, 0, SET_PEER_BANDWIDTH, 0)
            }
            Message::UserControl(uc) => {
                match uc {
                    UserControl::StreamBegin(s) => put_event(&mut b, 0, &[*s]),
                    UserControl::StreamEof(s) => put_event(&mut b, 1, &[*s]),
                    UserControl::StreamDry(s) => put_event(&mut b, 2, &[*s]),
                    UserControl::SetBufferLength { stream_id, ms } => {
                        put_event(&mut b, 3, &[*stream_id, *ms])
                    }
                    UserControl::StreamIsRecorded(s) => put_event(&mut b, 4, &[*s]),
                    UserControl::PingRequest(t) => put_event(&mut b, 6, &[*t]),
                    UserControl::PingResponse(t) => put_event(&mut b, 7, &[*t]),
                    UserControl::Other { event } => put_event(&mut b, *event, &[]),
                }
                (csid::PROTOCOL_CONTROL, 0, USER_CONTROL, 0)
            }
            Message::Audio {
                timestamp,
                stream_id,
                payload,
            } => {
                b.extend_from_slice(payload);
                (csid::AUDIO, *timestamp, AUDIO, *stream_id)
            }
            Message::Video {
                timestamp,
                stream_id,
                payload,
            } => {
                b.extend_from_slice(payload);
                (csid::VIDEO, *timestamp, VIDEO, *stream_id)
            }
            Message::Data {
                timestamp,
                stream_id,
                payload,
            } => {
                b.extend_from_slice(payload);
                (csid::OVER_STREAM, *timestamp, AMF0_DATA, *stream_id)
            }
            Message::Aggregate {
                timestamp,
                stream_id,
                payload,
            } => {
                b.extend_from_slice(payload);
                (csid::OVER_STREAM, *timestamp, AGGREGATE, *stream_id)
            }
            Message::Command(c) => {
                amf0::encode(&Amf0Value::String(c.name.clone()), &mut b);
                amf0::encode(&Amf0Value::Number(c.transaction_id), &mut b);
                amf0::encode_all(&c.args, &mut b);
                let cs = if c.stream_id == 0 {
                    csid::OVER_CONNECTION
                } else {
                    csid::OVER_STREAM
                };
                (cs, 0, AMF0_COMMAND, c.stream_id)
            }
            Message::Ignored { type_id } => (csid::OVER_STREAM, 0, *type_id, 0),
        };
        RawMessage {
            csid,
            timestamp,
            type_id,
            stream_id,
            payload: b.freeze(),
        }
    }
}

fn put_event(b: &mut BytesMut, event: u16, values: &[u32]) {
    b.put_u16(event);
    for v in values {
        b.put_u32(*v);
    }
}

/// One message of an aggregate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AggregatePart {
    pub type_id: u8,
    pub timestamp: u32,
    pub payload: Bytes,
}

/// Splits an aggregate message (type 22) into its parts. The body is a run of FLV tags
/// (header 11 bytes, body, 4-byte back pointer); the aggregate's own timestamp replaces the
/// first tag's, and the others keep their offset from it (as FMS and SRS do). A malformed tail
/// ends the split; the parts before it are kept.
///
/// The parts come lazily: a 16 MiB aggregate of empty tags holds a million of them, so the
/// caller decides how many it has room for (the sessions stop at their event cap).
pub fn split_aggregate(timestamp: u32, payload: &Bytes) -> AggregateParts {
    AggregateParts {
        timestamp,
        payload: payload.clone(),
        pos: 0,
        first_ts: None,
    }
}

/// The parts of an aggregate message, see [`split_aggregate`].
#[derive(Debug)]
pub struct AggregateParts {
    timestamp: u32,
    payload: Bytes,
    pos: usize,
    first_ts: Option<u32>,
}

impl Iterator for AggregateParts {
    type Item = AggregatePart;

    fn next(&mut self) -> Option<AggregatePart> {
        let payload = &self.payload;
        let pos = self.pos;
        let h = payload.get(pos..pos.checked_add(11)?)?;
        let type_id = h[0];
        let size = ((h[1] as usize) << 16) | ((h[2] as usize) << 8) | h[3] as usize;
        let ts = ((h[7] as u32) << 24) | ((h[4] as u32) << 16) | ((h[5] as u32) << 8) | h[6] as u32;
        let start = pos + 11;
        let end = start.checked_add(size)?;
        if end > payload.len() {
            self.pos = payload.len();
            return None;
        }
        let base = *self.first_ts.get_or_insert(ts);
        // Skip the back pointer; a missing one at the very end is tolerated.
        self.pos = end + 4;
        Some(AggregatePart {
            type_id,
            timestamp: self.timestamp.wrapping_add(ts.wrapping_sub(base)),
            payload: payload.slice(start..end),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(type_id: u8, payload: &[u8]) -> RawMessage {
        RawMessage {
            csid: 2,
            timestamp: 0,
            type_id,
            stream_id: 0,
            payload: Bytes::copy_from_slice(payload),
        }
    }

    /// One table for both directions: typed message, wire payload.
    fn table() -> Vec<(Message, u8, Vec<u8>)> {
        vec![
            (Message::SetChunkSize(60000), 1, vec![0, 0, 0xEA, 0x60]),
            (Message::Abort(6), 2, vec![0, 0, 0, 6]),
            (
                Message::Acknowledgement(2_500_000),
                3,
                vec![0, 0x26, 0x25, 0xA0],
            ),
            (
                Message::WindowAckSize(2_500_000),
                5,
                vec![0, 0x26, 0x25, 0xA0],
            ),
            (
                Message::SetPeerBandwidth {
                    size: 2_500_000,
                    limit: 2,
                },
                6,
                vec![0, 0x26, 0x25, 0xA0, 2],
            ),
            (
                Message::UserControl(UserControl::StreamBegin(1)),
                4,
                vec![0, 0, 0, 0, 0, 1],
            ),
            (
                Message::UserControl(UserControl::StreamEof(1)),
                4,
                vec![0, 1, 0, 0, 0, 1],
            ),
            (
                Message::UserControl(UserControl::StreamDry(1)),
                4,
                vec![0, 2, 0, 0, 0, 1],
            ),
            (
                Message::UserControl(UserControl::SetBufferLength {
                    stream_id: 1,
                    ms: 3000,
                }),
                4,
                vec![0, 3, 0, 0, 0, 1, 0, 0, 0x0B, 0xB8],
            ),
            (
                Message::UserControl(UserControl::PingRequest(77)),
                4,
                vec![0, 6, 0, 0, 0, 77],
            ),
            (
                Message::UserControl(UserControl::PingResponse(77)),
                4,
                vec![0, 7, 0, 0, 0, 77],
            ),
        ]
    }

    #[test]
    fn control_table_round_trips() {
        for (m, t, wire) in table() {
            let enc = m.encode();
            assert_eq!(enc.type_id, t);
            assert_eq!(&enc.payload[..], &wire[..], "{m:?}");
            assert_eq!(Message::decode(raw(t, &wire)).unwrap(), m);
        }
    }

    #[test]
    fn truncated_control_messages_are_errors() {
        for (_, t, wire) in table() {
            for cut in 0..wire.len() {
                let r = Message::decode(raw(t, &wire[..cut]));
                // Set Peer Bandwidth tolerates a missing limit byte.
                if t == 6 && cut == 4 {
                    continue;
                }
                assert!(r.is_err(), "type {t} cut at {cut}: {r:?}");
            }
        }
    }

    #[test]
    fn command_round_trips() {
        let c = CommandMessage {
            stream_id: 0,
            name: "connect".into(),
            transaction_id: 1.0,
            args: vec![Amf0Value::object(vec![("app", Amf0Value::string("live"))])],
        };
        let enc = Message::Command(c.clone()).encode();
        assert_eq!(enc.type_id, 20);
        assert_eq!(Message::decode(enc).unwrap(), Message::Command(c));
    }

    #[test]
    fn amf3_command_skips_format_byte() {
        let mut b = BytesMut::new();
        b.put_u8(0);
        amf0::encode_all(
            &[
                Amf0Value::string("play"),
                Amf0Value::Number(4.0),
                Amf0Value::Null,
            ],
            &mut b,
        );
        let m = Message::decode(raw(17, &b)).unwrap();
        assert!(matches!(m, Message::Command(c) if c.name == "play" && c.transaction_id == 4.0));
    }

    #[test]
    fn command_without_name_is_rejected() {
        let mut b = BytesMut::new();
        amf0::encode(&Amf0Value::Number(1.0), &mut b);
        assert_eq!(Message::decode(raw(20, &b)), Err(MessageError::BadCommand));
    }

    #[test]
    fn splits_aggregate_and_rebases_timestamps() {
        let mut b = BytesMut::new();
        for (t, ts, body) in [
            (9u8, 1000u32, &[0x17u8, 1][..]),
            (8, 1040, &[0xAF, 1, 2][..]),
        ] {
            b.put_u8(t);
            b.put_slice(&(body.len() as u32).to_be_bytes()[1..]);
            b.put_slice(&ts.to_be_bytes()[1..]);
            b.put_u8((ts >> 24) as u8);
            b.put_slice(&[0, 0, 0]);
            b.put_slice(body);
            b.put_u32(11 + body.len() as u32);
        }
        let parts: Vec<_> = split_aggregate(5000, &b.freeze()).collect();
        assert_eq!(parts.len(), 2);
        assert_eq!((parts[0].type_id, parts[0].timestamp), (9, 5000));
        assert_eq!(
            (parts[1].type_id, parts[1].timestamp, &parts[1].payload[..]),
            (8, 5040, &[0xAF, 1, 2][..])
        );
        // Truncated bodies never panic and keep what was whole.
        let full = {
            let mut b = BytesMut::new();
            b.put_slice(&[9, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 2, 0, 0, 0, 13]);
            b.freeze()
        };
        for cut in 0..full.len() {
            let _ = split_aggregate(0, &full.slice(..cut)).count();
        }
    }
}
