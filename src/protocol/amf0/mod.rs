//! AMF0 values: the encoding of RTMP command and data messages (connect, publish, onMetaData).
//!
//! Contract:
//! - [`decode`] reads exactly one value from the front of a slice and advances it;
//!   [`decode_all`] reads values until the slice is empty. Both work on a *complete* message
//!   payload (the chunk layer reassembles messages), so running out of bytes is an error
//!   ([`Amf0Error::Truncated`]), not "need more".
//! - [`encode`] / [`encode_all`] append to a `BytesMut` and cannot fail.
//!
//! Input is hostile. Decoding never panics, nests containers at most [`MAX_DEPTH`] deep, and
//! never allocates more than the input could justify: every length and count is checked against
//! the bytes that remain before anything is reserved.
//!
//! Leniency, each for a real encoder in the field:
//! - strings are decoded with `from_utf8_lossy`, because encoders put Latin-1 in metadata
//!   (e.g. `encoder`, `title`) and one bad byte must not drop a whole publish;
//! - an ECMA array may end at the end of the buffer without its `00 00 09` end marker
//!   (SRS's `SrsAmf0EcmaArray::read` loops "while not empty" for the same reason);
//! - long strings (0x0C) and XML documents (0x0F) decode as [`Amf0Value::String`], typed
//!   objects (0x10) as [`Amf0Value::Object`] (the class name is dropped), and the
//!   "unsupported" marker (0x0D) as [`Amf0Value::Undefined`].
//!
//! Reference: "Action Message Format -- AMF 0", Adobe, 2006 (amf0-file-format-specification).

use bytes::{BufMut, BytesMut};
use std::fmt;

/// Nesting cap for objects, ECMA arrays and strict arrays. Real commands nest two levels
/// (the connect command object holds no containers); metadata rarely goes deeper than three.
pub const MAX_DEPTH: usize = 16;

// Markers, AMF0 spec section 2.1.
const MARKER_NUMBER: u8 = 0x00;
const MARKER_BOOLEAN: u8 = 0x01;
const MARKER_STRING: u8 = 0x02;
const MARKER_OBJECT: u8 = 0x03;
const MARKER_NULL: u8 = 0x05;
const MARKER_UNDEFINED: u8 = 0x06;
const MARKER_ECMA_ARRAY: u8 = 0x08;
const MARKER_OBJECT_END: u8 = 0x09;
const MARKER_STRICT_ARRAY: u8 = 0x0A;
const MARKER_DATE: u8 = 0x0B;
const MARKER_LONG_STRING: u8 = 0x0C;
const MARKER_UNSUPPORTED: u8 = 0x0D;
const MARKER_XML_DOCUMENT: u8 = 0x0F;
const MARKER_TYPED_OBJECT: u8 = 0x10;
const MARKER_AVMPLUS: u8 = 0x11;

/// One AMF0 value.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf0Value {
    Number(f64),
    Boolean(bool),
    /// Decoded from a string (0x02), a long string (0x0C) or an XML document (0x0F).
    /// Encoded as a string, or as a long string when longer than 0xFFFF bytes.
    String(String),
    /// Ordered properties: order is kept because some peers care (e.g. `onMetaData` readers).
    Object(Vec<(String, Amf0Value)>),
    Null,
    Undefined,
    EcmaArray(Vec<(String, Amf0Value)>),
    StrictArray(Vec<Amf0Value>),
    Date {
        millis: f64,
        timezone: i16,
    },
}

/// Why a payload could not be decoded. All of them are the peer's fault.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Amf0Error {
    /// The payload ended inside a value.
    Truncated,
    /// A marker AMF0 does not define, or one we refuse (movie clip, reference, record set).
    UnknownMarker(u8),
    /// The peer switched to AMF3 (0x11); we speak AMF0 only, as SRS does.
    Amf3NotSupported,
    /// Containers nested deeper than [`MAX_DEPTH`].
    TooDeep,
    /// A count that claims more elements than the remaining bytes could hold.
    TooLarge,
    /// Not produced by the decoder (strings are decoded lossily, see the module doc); kept so
    /// that callers needing strict text can report it with the same error type.
    InvalidUtf8,
}

impl fmt::Display for Amf0Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Amf0Error::Truncated => write!(f, "AMF0 payload truncated"),
            Amf0Error::UnknownMarker(m) => write!(f, "unknown AMF0 marker 0x{m:02x}"),
            Amf0Error::Amf3NotSupported => write!(f, "AMF3 values are not supported"),
            Amf0Error::TooDeep => write!(f, "AMF0 nesting deeper than {MAX_DEPTH}"),
            Amf0Error::TooLarge => write!(f, "AMF0 count larger than the payload"),
            Amf0Error::InvalidUtf8 => write!(f, "AMF0 string is not valid UTF-8"),
        }
    }
}

impl std::error::Error for Amf0Error {}

impl Amf0Value {
    /// The text of a string value.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf0Value::String(s) => Some(s),
            _ => None,
        }
    }

    /// The value of a number.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Amf0Value::Number(n) => Some(*n),
            _ => None,
        }
    }

    /// The value of a boolean.
    pub fn as_bool(&self) -> Option<bool> {
        match self {
            Amf0Value::Boolean(b) => Some(*b),
            _ => None,
        }
    }

    /// Property lookup for Object and EcmaArray: the first property named `key`.
    pub fn get(&self, key: &str) -> Option<&Amf0Value> {
        match self {
            Amf0Value::Object(props) | Amf0Value::EcmaArray(props) => {
                props.iter().find(|(k, _)| k == key).map(|(_, v)| v)
            }
            _ => None,
        }
    }

    /// An object from borrowed keys, for building replies: `object(vec![("code", ...)])`.
    pub fn object(props: Vec<(&str, Amf0Value)>) -> Amf0Value {
        Amf0Value::Object(props.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
    }

    /// A string value.
    pub fn string(s: impl Into<String>) -> Amf0Value {
        Amf0Value::String(s.into())
    }
}

/// Decode one value from the front of `buf`, advancing it past the value.
///
/// On error `buf` is left somewhere inside the bad value; the message should be dropped.
pub fn decode(buf: &mut &[u8]) -> Result<Amf0Value, Amf0Error> {
    decode_value(buf, 0)
}

/// Decode values until `buf` is empty (a command message is a sequence of values).
pub fn decode_all(buf: &[u8]) -> Result<Vec<Amf0Value>, Amf0Error> {
    let mut rest = buf;
    let mut values = Vec::new();
    while !rest.is_empty() {
        values.push(decode(&mut rest)?);
    }
    Ok(values)
}

/// Append the encoding of `value` to `out`.
pub fn encode(value: &Amf0Value, out: &mut BytesMut) {
    match value {
        Amf0Value::Number(n) => {
            out.put_u8(MARKER_NUMBER);
            out.put_f64(*n);
        }
        Amf0Value::Boolean(b) => {
            out.put_u8(MARKER_BOOLEAN);
            out.put_u8(u8::from(*b));
        }
        Amf0Value::String(s) => {
            if s.len() <= usize::from(u16::MAX) {
                out.put_u8(MARKER_STRING);
                put_short_str(s, out);
            } else {
                out.put_u8(MARKER_LONG_STRING);
                put_long_str(s, out);
            }
        }
        Amf0Value::Object(props) => {
            out.put_u8(MARKER_OBJECT);
            put_props(props, out);
        }
        Amf0Value::Null => out.put_u8(MARKER_NULL),
        Amf0Value::Undefined => out.put_u8(MARKER_UNDEFINED),
        Amf0Value::EcmaArray(props) => {
            out.put_u8(MARKER_ECMA_ARRAY);
            out.put_u32(saturating_u32(props.len()));
            put_props(props, out);
        }
        Amf0Value::StrictArray(items) => {
            out.put_u8(MARKER_STRICT_ARRAY);
            // Never more than u32::MAX items in memory in practice; if there were, writing
            // only as many as the count says keeps the output self-consistent.
            let count = saturating_u32(items.len());
            out.put_u32(count);
            for item in items.iter().take(count as usize) {
                encode(item, out);
            }
        }
        Amf0Value::Date { millis, timezone } => {
            out.put_u8(MARKER_DATE);
            out.put_f64(*millis);
            out.put_i16(*timezone);
        }
    }
}

/// Append the encodings of `values` one after another (a command message body).
pub fn encode_all(values: &[Amf0Value], out: &mut BytesMut) {
    for value in values {
        encode(value, out);
    }
}

fn decode_value(buf: &mut &[u8], depth: usize) -> Result<Amf0Value, Amf0Error> {
    let marker = read_u8(buf)?;
    match marker {
        MARKER_NUMBER => Ok(Amf0Value::Number(read_f64(buf)?)),
        MARKER_BOOLEAN => Ok(Amf0Value::Boolean(read_u8(buf)? != 0)),
        MARKER_STRING => Ok(Amf0Value::String(read_short_str(buf)?)),
        MARKER_LONG_STRING | MARKER_XML_DOCUMENT => Ok(Amf0Value::String(read_long_str(buf)?)),
        MARKER_OBJECT => {
            let child = enter(depth)?;
            Ok(Amf0Value::Object(read_props(buf, child, false)?))
        }
        MARKER_TYPED_OBJECT => {
            let child = enter(depth)?;
            // The class name only matters to Flash's deserializer; the properties are the data.
            let class_name_len = usize::from(read_u16(buf)?);
            let _class_name = take(buf, class_name_len)?;
            Ok(Amf0Value::Object(read_props(buf, child, false)?))
        }
        MARKER_NULL => Ok(Amf0Value::Null),
        MARKER_UNDEFINED | MARKER_UNSUPPORTED => Ok(Amf0Value::Undefined),
        MARKER_ECMA_ARRAY => {
            let child = enter(depth)?;
            // The count is advisory: encoders get it wrong (often 0), and readers (SRS,
            // ffmpeg) go by the end marker. Never trust it for allocation either.
            let _count = read_u32(buf)?;
            Ok(Amf0Value::EcmaArray(read_props(buf, child, true)?))
        }
        MARKER_STRICT_ARRAY => {
            let child = enter(depth)?;
            let count = usize::try_from(read_u32(buf)?).map_err(|_| Amf0Error::TooLarge)?;
            // Every element takes at least its one marker byte, so a count beyond the remaining
            // bytes is a lie; rejecting it bounds the reservation below by the input size.
            if count > buf.len() {
                return Err(Amf0Error::TooLarge);
            }
            let mut items = Vec::with_capacity(count);
            for _ in 0..count {
                items.push(decode_value(buf, child)?);
            }
            Ok(Amf0Value::StrictArray(items))
        }
        MARKER_DATE => {
            let millis = read_f64(buf)?;
            let timezone = read_i16(buf)?;
            Ok(Amf0Value::Date { millis, timezone })
        }
        MARKER_AVMPLUS => Err(Amf0Error::Amf3NotSupported),
        other => Err(Amf0Error::UnknownMarker(other)),
    }
}

/// The depth for the children of a container found at `depth`, or `TooDeep`.
fn enter(depth: usize) -> Result<usize, Amf0Error> {
    if depth >= MAX_DEPTH {
        Err(Amf0Error::TooDeep)
    } else {
        Ok(depth + 1)
    }
}

/// Properties until the object end (`00 00 09`). With `end_at_eof`, the end of the buffer at a
/// property boundary also ends the list (ECMA arrays from encoders that omit the end marker).
fn read_props(
    buf: &mut &[u8],
    depth: usize,
    end_at_eof: bool,
) -> Result<Vec<(String, Amf0Value)>, Amf0Error> {
    let mut props = Vec::new();
    loop {
        if end_at_eof && buf.is_empty() {
            return Ok(props);
        }
        if let [0x00, 0x00, MARKER_OBJECT_END, rest @ ..] = *buf {
            *buf = rest;
            return Ok(props);
        }
        let key = read_short_str(buf)?;
        let value = decode_value(buf, depth)?;
        props.push((key, value));
    }
}

fn put_props(props: &[(String, Amf0Value)], out: &mut BytesMut) {
    for (key, value) in props {
        put_short_str(key, out);
        encode(value, out);
    }
    out.put_slice(&[0x00, 0x00, MARKER_OBJECT_END]);
}

/// A u16-length string. Longer text cannot be written here (property keys); cut it at a char
/// boundary so the count and the bytes agree and the output stays valid UTF-8.
fn put_short_str(s: &str, out: &mut BytesMut) {
    let s = clamp_str(s, usize::from(u16::MAX));
    // clamp_str guarantees the length fits.
    out.put_u16(u16::try_from(s.len()).unwrap_or(u16::MAX));
    out.put_slice(s.as_bytes());
}

fn put_long_str(s: &str, out: &mut BytesMut) {
    let s = clamp_str(s, u32::MAX as usize);
    out.put_u32(saturating_u32(s.len()));
    out.put_slice(s.as_bytes());
}

fn clamp_str(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("")
}

fn saturating_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn take<'a>(buf: &mut &'a [u8], n: usize) -> Result<&'a [u8], Amf0Error> {
    if buf.len() < n {
        return Err(Amf0Error::Truncated);
    }
    let (head, rest) = buf.split_at(n);
    *buf = rest;
    Ok(head)
}

fn take_array<const N: usize>(buf: &mut &[u8]) -> Result<[u8; N], Amf0Error> {
    let mut out = [0u8; N];
    out.copy_from_slice(take(buf, N)?);
    Ok(out)
}

fn read_u8(buf: &mut &[u8]) -> Result<u8, Amf0Error> {
    let [b] = take_array::<1>(buf)?;
    Ok(b)
}

fn read_u16(buf: &mut &[u8]) -> Result<u16, Amf0Error> {
    Ok(u16::from_be_bytes(take_array(buf)?))
}

fn read_i16(buf: &mut &[u8]) -> Result<i16, Amf0Error> {
    Ok(i16::from_be_bytes(take_array(buf)?))
}

fn read_u32(buf: &mut &[u8]) -> Result<u32, Amf0Error> {
    Ok(u32::from_be_bytes(take_array(buf)?))
}

fn read_f64(buf: &mut &[u8]) -> Result<f64, Amf0Error> {
    Ok(f64::from_be_bytes(take_array(buf)?))
}

fn read_short_str(buf: &mut &[u8]) -> Result<String, Amf0Error> {
    let len = usize::from(read_u16(buf)?);
    Ok(String::from_utf8_lossy(take(buf, len)?).into_owned())
}

fn read_long_str(buf: &mut &[u8]) -> Result<String, Amf0Error> {
    let len = usize::try_from(read_u32(buf)?).map_err(|_| Amf0Error::TooLarge)?;
    // `take` checks the length against the input before anything is allocated.
    Ok(String::from_utf8_lossy(take(buf, len)?).into_owned())
}

#[cfg(test)]
mod tests;
