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
