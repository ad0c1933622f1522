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
mod tests {
    use super::*;

    fn s(v: &str) -> Amf0Value {
        Amf0Value::string(v)
    }

    fn n(v: f64) -> Amf0Value {
        Amf0Value::Number(v)
    }

    fn enc(value: &Amf0Value) -> Vec<u8> {
        let mut out = BytesMut::new();
        encode(value, &mut out);
        out.to_vec()
    }

    /// Concatenate byte pieces (keeps the table readable: marker, length, text).
    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    /// One table, used both ways: every entry must decode to the value and the value must
    /// encode to exactly these bytes.
    fn table() -> Vec<(Vec<u8>, Amf0Value)> {
        vec![
            (cat(&[&[0x00], &1.0f64.to_be_bytes()]), n(1.0)),
            (cat(&[&[0x00], &(-0.5f64).to_be_bytes()]), n(-0.5)),
            (vec![0x01, 0x01], Amf0Value::Boolean(true)),
            (vec![0x01, 0x00], Amf0Value::Boolean(false)),
            (vec![0x02, 0x00, 0x00], s("")),
            (cat(&[&[0x02, 0x00, 0x04], b"live"]), s("live")),
            (cat(&[&[0x02, 0x00, 0x02], "é".as_bytes()]), s("é")),
            (vec![0x05], Amf0Value::Null),
            (vec![0x06], Amf0Value::Undefined),
            (vec![0x03, 0x00, 0x00, 0x09], Amf0Value::Object(vec![])),
            (
                cat(&[
                    &[0x03, 0x00, 0x04],
                    b"code",
                    &[0x02, 0x00, 0x02],
                    b"ok",
                    &[0x00, 0x01],
                    b"n",
                    &[0x00],
                    &2.0f64.to_be_bytes(),
                    &[0x00, 0x00, 0x09],
                ]),
                Amf0Value::object(vec![("code", s("ok")), ("n", n(2.0))]),
            ),
            (
                cat(&[
                    &[0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x08],
                    b"duration",
                    &[0x00],
                    &0.0f64.to_be_bytes(),
                    &[0x00, 0x00, 0x09],
                ]),
                Amf0Value::EcmaArray(vec![("duration".into(), n(0.0))]),
            ),
            (
                vec![0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09],
                Amf0Value::EcmaArray(vec![]),
            ),
            (
                cat(&[
                    &[
                        0x0A, 0x00, 0x00, 0x00, 0x03, 0x05, 0x01, 0x01, 0x02, 0x00, 0x01,
                    ],
                    b"x",
                ]),
                Amf0Value::StrictArray(vec![Amf0Value::Null, Amf0Value::Boolean(true), s("x")]),
            ),
            (
                vec![0x0A, 0x00, 0x00, 0x00, 0x00],
                Amf0Value::StrictArray(vec![]),
            ),
            (
                cat(&[&[0x0B], &1.5e12f64.to_be_bytes(), &[0xFF, 0xC4]]),
                Amf0Value::Date {
                    millis: 1.5e12,
                    timezone: -60,
                },
            ),
            (
                // An object inside an object (connect's reply carries `data` like this).
                cat(&[
                    &[0x03, 0x00, 0x01],
                    b"o",
                    &[0x03, 0x00, 0x00, 0x09],
                    &[0x00, 0x00, 0x09],
                ]),
                Amf0Value::object(vec![("o", Amf0Value::Object(vec![]))]),
            ),
        ]
    }

    #[test]
    fn table_decodes_to_values() {
        for (bytes, value) in table() {
            let mut buf = bytes.as_slice();
            assert_eq!(decode(&mut buf), Ok(value.clone()), "bytes {bytes:02x?}");
            assert!(buf.is_empty(), "leftover after {value:?}");
        }
    }

    #[test]
    fn table_values_encode_to_bytes() {
        for (bytes, value) in table() {
            assert_eq!(enc(&value), bytes, "value {value:?}");
        }
    }

    #[test]
    fn truncation_at_every_offset_is_an_error_not_a_panic() {
        for (bytes, value) in table() {
            for cut in 0..bytes.len() {
                let mut buf = &bytes[..cut];
                let result = decode(&mut buf);
                if matches!(value, Amf0Value::EcmaArray(_)) {
                    // End of buffer may legally end an ECMA array (see module doc); a cut
                    // there must still never produce a value with more than was sent.
                    if let Ok(Amf0Value::EcmaArray(props)) = &result {
                        let Amf0Value::EcmaArray(full) = &value else {
                            unreachable!()
                        };
                        assert!(full.starts_with(props));
                        continue;
                    }
                }
                assert!(result.is_err(), "cut {cut} of {value:?} gave {result:?}");
            }
        }
    }

    #[test]
    fn decode_only_variants_map_to_the_common_values() {
        let long = cat(&[&[0x0C, 0x00, 0x00, 0x00, 0x03], b"abc"]);
        let xml = cat(&[&[0x0F, 0x00, 0x00, 0x00, 0x03], b"<a>"]);
        let typed = cat(&[
            &[0x10, 0x00, 0x03],
            b"Foo",
            &[0x00, 0x01],
            b"k",
            &[0x05, 0x00, 0x00, 0x09],
        ]);
        assert_eq!(decode_all(&long), Ok(vec![s("abc")]));
        assert_eq!(decode_all(&xml), Ok(vec![s("<a>")]));
        assert_eq!(
            decode_all(&typed),
            Ok(vec![Amf0Value::object(vec![("k", Amf0Value::Null)])])
        );
        assert_eq!(decode_all(&[0x0D]), Ok(vec![Amf0Value::Undefined]));
    }

    #[test]
    fn ecma_array_without_end_marker_ends_at_end_of_buffer() {
        // As sent by some encoders in @setDataFrame/onMetaData.
        let bytes = cat(&[
            &[0x08, 0x00, 0x00, 0x00, 0x01, 0x00, 0x05],
            b"width",
            &[0x00],
            &1280.0f64.to_be_bytes(),
        ]);
        let value = decode_all(&bytes).unwrap();
        assert_eq!(
            value,
            vec![Amf0Value::EcmaArray(vec![("width".into(), n(1280.0))])]
        );
        assert_eq!(
            value[0].get("width").and_then(Amf0Value::as_f64),
            Some(1280.0)
        );
    }

    #[test]
    fn ecma_array_count_is_not_trusted() {
        let bytes = cat(&[&[0x08, 0xFF, 0xFF, 0xFF, 0xFF], &[0x00, 0x00, 0x09]]);
        assert_eq!(decode_all(&bytes), Ok(vec![Amf0Value::EcmaArray(vec![])]));
    }

    #[test]
    fn strict_array_count_beyond_payload_is_too_large() {
        let bytes = [0x0A, 0xFF, 0xFF, 0xFF, 0xFF, 0x05];
        assert_eq!(decode(&mut &bytes[..]), Err(Amf0Error::TooLarge));
    }

    #[test]
    fn long_string_length_beyond_payload_is_truncated() {
        let bytes = [0x0C, 0xFF, 0xFF, 0xFF, 0xFF, b'a'];
        assert_eq!(decode(&mut &bytes[..]), Err(Amf0Error::Truncated));
    }

    #[test]
    fn latin1_strings_decode_lossily() {
        // "café" in Latin-1, as some hardware encoders write it.
        let bytes = [0x02, 0x00, 0x04, b'c', b'a', b'f', 0xE9];
        assert_eq!(decode(&mut &bytes[..]), Ok(s("caf\u{FFFD}")));
    }

    #[test]
    fn nesting_is_capped_at_max_depth() {
        fn nested(levels: usize) -> Vec<u8> {
            let mut bytes = Vec::new();
            for _ in 0..levels {
                bytes.extend_from_slice(&[0x0A, 0x00, 0x00, 0x00, 0x01]);
            }
            bytes.push(0x05);
            bytes
        }
        assert!(decode(&mut &nested(MAX_DEPTH)[..]).is_ok());
        assert_eq!(
            decode(&mut &nested(MAX_DEPTH + 1)[..]),
            Err(Amf0Error::TooDeep)
        );

        // Objects count too, and deep hostile input fails fast instead of recursing.
        let mut deep = Vec::new();
        for _ in 0..10_000 {
            deep.extend_from_slice(&[0x03, 0x00, 0x01, b'a']);
        }
        assert_eq!(decode(&mut &deep[..]), Err(Amf0Error::TooDeep));
    }

    #[test]
    fn amf3_switch_is_refused() {
        assert_eq!(
            decode(&mut &[0x11, 0x02][..]),
            Err(Amf0Error::Amf3NotSupported)
        );
    }

    #[test]
    fn unknown_and_refused_markers_are_errors() {
        for marker in [0x04, 0x07, 0x09, 0x0E, 0x12, 0xFF] {
            assert_eq!(
                decode(&mut &[marker, 0, 0, 0, 0, 0, 0, 0, 0][..]),
                Err(Amf0Error::UnknownMarker(marker))
            );
        }
    }

    #[test]
    fn long_text_encodes_as_long_string_and_round_trips() {
        let text = "a".repeat(0x1_0000);
        let bytes = enc(&s(&text));
        assert_eq!(&bytes[..5], &[0x0C, 0x00, 0x01, 0x00, 0x00]);
        assert_eq!(decode_all(&bytes), Ok(vec![s(&text)]));

        let edge = "b".repeat(0xFFFF);
        assert_eq!(enc(&s(&edge))[..3], [0x02, 0xFF, 0xFF]);
    }

    #[test]
    fn accessors_match_only_their_variant() {
        let obj = Amf0Value::object(vec![
            ("app", s("live")),
            ("fpad", Amf0Value::Boolean(false)),
        ]);
        assert_eq!(obj.get("app").and_then(Amf0Value::as_str), Some("live"));
        assert_eq!(obj.get("fpad").and_then(Amf0Value::as_bool), Some(false));
        assert_eq!(obj.get("missing"), None);
        assert_eq!(s("x").as_f64(), None);
        assert_eq!(n(1.0).as_str(), None);
        assert_eq!(n(1.0).get("x"), None);
        assert_eq!(Amf0Value::Null.as_bool(), None);
    }

    #[test]
    fn decodes_ffmpeg_publish_connect_command() {
        // What `ffmpeg -f flv rtmp://127.0.0.1:1935/live/stream` sends as its first command
        // (libavformat/rtmpproto.c gen_connect): name, transaction id, command object.
        fn prop(key: &str, value: &[u8]) -> Vec<u8> {
            cat(&[&(key.len() as u16).to_be_bytes(), key.as_bytes(), value])
        }
        fn str_bytes(text: &str) -> Vec<u8> {
            cat(&[&[0x02], &(text.len() as u16).to_be_bytes(), text.as_bytes()])
        }
        let payload = cat(&[
            &str_bytes("connect"),
            &[0x00],
            &1.0f64.to_be_bytes(),
            &[0x03],
            &prop("app", &str_bytes("live")),
            &prop("type", &str_bytes("nonprivate")),
            &prop("flashVer", &str_bytes("FMLE/3.0 (compatible; FMSc/1.0)")),
            &prop("tcUrl", &str_bytes("rtmp://127.0.0.1:1935/live")),
            &[0x00, 0x00, 0x09],
        ]);

        let values = decode_all(&payload).unwrap();
        let expected = vec![
            s("connect"),
            n(1.0),
            Amf0Value::object(vec![
                ("app", s("live")),
                ("type", s("nonprivate")),
                ("flashVer", s("FMLE/3.0 (compatible; FMSc/1.0)")),
                ("tcUrl", s("rtmp://127.0.0.1:1935/live")),
            ]),
        ];
        assert_eq!(values, expected);
        assert_eq!(
            values[2].get("tcUrl").and_then(Amf0Value::as_str),
            Some("rtmp://127.0.0.1:1935/live")
        );

        let mut out = BytesMut::new();
        encode_all(&expected, &mut out);
        assert_eq!(&out[..], &payload[..]);
    }

    #[test]
    fn decode_all_stops_at_first_error() {
        let bytes = [0x05, 0x05, 0x11];
        assert_eq!(decode_all(&bytes), Err(Amf0Error::Amf3NotSupported));
        assert_eq!(decode_all(&[]), Ok(vec![]));
    }

    use crate::protocol::testutil::{fuzz, largest_allocation, mutate, Rng};

    /// A random value tree, `depth` levels at most, for "encode, mutate, decode" fuzzing.
    fn random_value(rng: &mut Rng, depth: usize) -> Amf0Value {
        let text = |rng: &mut Rng| {
            let n = rng.below(12);
            (0..n)
                .map(|_| char::from(b'a' + rng.u8() % 26))
                .collect::<String>()
        };
        let leaf = depth == 0 || rng.chance(1, 2);
        match rng.below(if leaf { 5 } else { 8 }) {
            0 => Amf0Value::Number(f64::from(rng.u32())),
            1 => Amf0Value::Boolean(rng.chance(1, 2)),
            2 => Amf0Value::String(text(rng)),
            3 => Amf0Value::Null,
            4 => Amf0Value::Date {
                millis: 1e12,
                timezone: 0,
            },
            5 => Amf0Value::Object(
                (0..rng.below(4))
                    .map(|_| (text(rng), random_value(rng, depth - 1)))
                    .collect(),
            ),
            6 => Amf0Value::EcmaArray(
                (0..rng.below(4))
                    .map(|_| (text(rng), random_value(rng, depth - 1)))
                    .collect(),
            ),
            _ => Amf0Value::StrictArray(
                (0..rng.below(4))
                    .map(|_| random_value(rng, depth - 1))
                    .collect(),
            ),
        }
    }

    /// Decodes hostile bytes: never a panic, a successful decode re-encodes to something that
    /// decodes the same, and no allocation beyond what the input size could justify (a value
    /// is 56 bytes at most per input byte, whatever the lengths and counts claim).
    fn check_hostile(bytes: &[u8]) {
        let (result, largest) = largest_allocation(|| decode_all(bytes));
        let bound = 64 * bytes.len() + 1024;
        assert!(
            largest <= bound,
            "allocated {largest} bytes for {} input bytes: {bytes:02x?}",
            bytes.len()
        );
        if let Ok(values) = result {
            let mut out = BytesMut::new();
            encode_all(&values, &mut out);
            let again = decode_all(&out).expect("re-encoded values decode");
            assert_eq!(format!("{again:?}"), format!("{values:?}"));
        }
    }

    #[test]
    fn hostile_bytes_never_panic() {
        fuzz("amf0 random bytes", 0xA3F0, 5_000, |rng| {
            // Biased towards markers and small lengths, so containers and strings are common.
            let len = rng.below(64);
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    if rng.chance(1, 3) {
                        rng.u8() % 0x12
                    } else {
                        rng.u8() % 4
                    }
                })
                .collect();
            check_hostile(&bytes);
            check_hostile(&rng.bytes(48));
        });
    }

    #[test]
    fn mutated_valid_encodings_decode_or_fail_cleanly() {
        fuzz("amf0 mutated encodings", 0xA3F1, 3_000, |rng| {
            let values: Vec<Amf0Value> = (0..1 + rng.below(3))
                .map(|_| random_value(rng, 4))
                .collect();
            let mut valid = BytesMut::new();
            encode_all(&values, &mut valid);
            assert_eq!(decode_all(&valid), Ok(values.clone()), "round trip");
            check_hostile(&mutate(rng, &valid));
        });
    }

    #[test]
    fn huge_declared_lengths_and_counts_fail_without_allocating() {
        let cases: Vec<Vec<u8>> = vec![
            vec![MARKER_LONG_STRING, 0xFF, 0xFF, 0xFF, 0xFF, b'a'],
            vec![MARKER_XML_DOCUMENT, 0x7F, 0xFF, 0xFF, 0xFF],
            vec![MARKER_STRING, 0xFF, 0xFF, b'a'],
            vec![MARKER_STRICT_ARRAY, 0xFF, 0xFF, 0xFF, 0xFF, MARKER_NULL],
            vec![MARKER_ECMA_ARRAY, 0xFF, 0xFF, 0xFF, 0xFF, 0x00, 0x01, b'k'],
            vec![MARKER_TYPED_OBJECT, 0xFF, 0xFF, b'c'],
            // Nested strict arrays, each claiming as many items as bytes remain.
            [MARKER_STRICT_ARRAY, 0, 0, 0, 40]
                .iter()
                .copied()
                .cycle()
                .take(5 * 16)
                .collect(),
        ];
        for bytes in cases {
            let (r, largest) = largest_allocation(|| decode_all(&bytes));
            assert!(r.is_err(), "{bytes:02x?} decoded to {r:?}");
            assert!(
                largest <= 64 * bytes.len() + 1024,
                "{bytes:02x?}: {largest}"
            );
        }
    }

    #[test]
    fn deep_nesting_is_refused_without_recursing_into_it() {
        // 100,000 nested containers of each kind: a recursive decoder without a cap would
        // overflow the stack long before the end.
        for open in [
            vec![MARKER_OBJECT, 0x00, 0x01, b'k'],
            vec![MARKER_ECMA_ARRAY, 0, 0, 0, 1, 0x00, 0x01, b'k'],
            vec![MARKER_STRICT_ARRAY, 0, 0, 0, 1],
            vec![MARKER_TYPED_OBJECT, 0x00, 0x00, 0x00, 0x01, b'k'],
        ] {
            let bytes: Vec<u8> = open
                .iter()
                .copied()
                .cycle()
                .take(open.len() * 100_000)
                .collect();
            assert_eq!(decode_all(&bytes), Err(Amf0Error::TooDeep), "{open:02x?}");
        }
    }
}
