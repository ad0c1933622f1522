use super::*;

fn msg(csid: u32, ts: u32, type_id: u8, sid: u32, payload: &[u8]) -> RawMessage {
    RawMessage {
        csid,
        timestamp: ts,
        type_id,
        stream_id: sid,
        payload: Bytes::copy_from_slice(payload),
    }
}

/// One table of (message, chunk size, wire bytes), used to decode and to encode.
fn table() -> Vec<(RawMessage, u32, Vec<u8>)> {
    vec![
        // Set Chunk Size 4096 on csid 2, single chunk.
        (
            msg(2, 0, 1, 0, &[0, 0, 0x10, 0]),
            128,
            vec![0x02, 0, 0, 0, 0, 0, 4, 1, 0, 0, 0, 0, 0, 0, 0x10, 0],
        ),
        // Video on csid 6, stream 1, ts 0x010203, split into chunks of 2.
        (
            msg(6, 0x010203, 9, 1, &[0x17, 0x01, 0xAA, 0xBB, 0xCC]),
            2,
            vec![
                0x06, 0x01, 0x02, 0x03, 0, 0, 5, 9, 1, 0, 0, 0, 0x17, 0x01, 0xC6, 0xAA, 0xBB, 0xC6,
                0xCC,
            ],
        ),
        // Extended timestamp: type-3 continuation repeats it.
        (
            msg(4, 0x0100_0000, 8, 1, &[0xAF, 0x01, 0x21]),
            2,
            vec![
                0x04, 0xFF, 0xFF, 0xFF, 0, 0, 3, 8, 1, 0, 0, 0, 0x01, 0, 0, 0, 0xAF, 0x01, 0xC4,
                0x01, 0, 0, 0, 0x21,
            ],
        ),
        // Two-byte basic header (csid 64..319).
        (
            msg(100, 5, 20, 0, &[0x05]),
            128,
            vec![0x00, 36, 0, 0, 5, 0, 0, 1, 20, 0, 0, 0, 0, 0x05],
        ),
        // Three-byte basic header.
        (
            msg(400, 5, 18, 1, &[0x05]),
            128,
            vec![0x01, 0x50, 0x01, 0, 0, 5, 0, 0, 1, 18, 1, 0, 0, 0, 0x05],
        ),
        // Empty payload.
        (
            msg(3, 0, 20, 0, &[]),
            128,
            vec![0x03, 0, 0, 0, 0, 0, 0, 20, 0, 0, 0, 0],
        ),
    ]
}

#[test]
fn table_encodes_to_its_bytes() {
    for (m, cs, wire) in table() {
        let mut out = BytesMut::new();
        encode_message(&mut out, &m, cs);
        assert_eq!(&out[..], &wire[..], "{m:?}");
    }
}

#[test]
fn table_decodes_to_its_messages_whole_and_byte_by_byte() {
    for (m, cs, wire) in table() {
        let mut dec = ChunkDecoder::new();
        dec.set_chunk_size(cs).unwrap();
        let mut input = BytesMut::from(&wire[..]);
        assert_eq!(dec.decode(&mut input).unwrap(), Some(m.clone()));
        assert!(input.is_empty());

        let mut dec = ChunkDecoder::new();
        dec.set_chunk_size(cs).unwrap();
        let mut input = BytesMut::new();
        let mut got = None;
        for &b in &wire {
            input.put_u8(b);
            if let Some(x) = dec.decode(&mut input).unwrap() {
                got = Some(x);
            }
        }
        assert_eq!(got, Some(m));
    }
}

#[test]
fn decodes_type3_chunk_without_repeated_extended_timestamp() {
    // Some encoders omit the extended timestamp in type-3 continuation chunks.
    let wire = [
        0x04, 0xFF, 0xFF, 0xFF, 0, 0, 3, 8, 1, 0, 0, 0, 0x01, 0, 0, 0, 0xAF, 0x01, 0xC4, 0x21,
    ];
    let mut dec = ChunkDecoder::new();
    dec.set_chunk_size(2).unwrap();
    let mut input = BytesMut::from(&wire[..]);
    let m = dec.decode(&mut input).unwrap().unwrap();
    assert_eq!(m.timestamp, 0x0100_0000);
    assert_eq!(&m.payload[..], &[0xAF, 0x01, 0x21]);
}

#[test]
fn decodes_compressed_headers_with_deltas() {
    let mut input = BytesMut::new();
    // fmt 0: ts 1000, len 2, type 8, sid 1
    input.extend_from_slice(&[0x04, 0, 0x03, 0xE8, 0, 0, 2, 8, 1, 0, 0, 0, 1, 2]);
    // fmt 1: delta 20, len 1, type 9
    input.extend_from_slice(&[0x44, 0, 0, 20, 0, 0, 1, 9, 3]);
    // fmt 2: delta 30
    input.extend_from_slice(&[0x84, 0, 0, 30, 4]);
    // fmt 3: same delta again
    input.extend_from_slice(&[0xC4, 5]);
    let mut dec = ChunkDecoder::new();
    let ts: Vec<(u32, u8)> = std::iter::from_fn(|| dec.decode(&mut input).unwrap())
        .map(|m| (m.timestamp, m.type_id))
        .collect();
    assert_eq!(ts, vec![(1000, 8), (1020, 9), (1050, 9), (1080, 9)]);
}

#[test]
fn interleaved_chunk_streams_reassemble() {
    let a = msg(6, 10, 9, 1, &[1; 300]);
    let b = msg(7, 10, 8, 1, &[2; 200]);
    let (mut ea, mut eb) = (BytesMut::new(), BytesMut::new());
    encode_message(&mut ea, &a, 128);
    encode_message(&mut eb, &b, 128);
    // Interleave: a's first chunk, b's first chunk, then the rest.
    let mut input = BytesMut::new();
    input.extend_from_slice(&ea[..12 + 128]);
    input.extend_from_slice(&eb[..12 + 128]);
    input.extend_from_slice(&ea[12 + 128..]);
    input.extend_from_slice(&eb[12 + 128..]);
    let mut dec = ChunkDecoder::new();
    let got: Vec<RawMessage> = std::iter::from_fn(|| dec.decode(&mut input).unwrap()).collect();
    assert_eq!(got, vec![a, b]);
}

#[test]
fn rejects_compressed_header_on_unknown_stream() {
    let mut input = BytesMut::from(&[0x44u8, 0, 0, 1, 0, 0, 1, 9, 0][..]);
    assert_eq!(
        ChunkDecoder::new().decode(&mut input),
        Err(ChunkError::NoPreviousHeader { csid: 4 })
    );
}

#[test]
fn bounds_chunk_stream_count() {
    let mut dec = ChunkDecoder::new();
    dec.set_chunk_size(1).unwrap();
    let mut input = BytesMut::new();
    for id in 0..(MAX_CHUNK_STREAMS as u32 + 1) {
        // Each opens a new chunk stream (csid 64 + id) with a 2-byte message and sends
        // only its first byte, so every stream stays open.
        input.extend_from_slice(&[0x00, id as u8, 0, 0, 0, 0, 0, 2, 9, 0, 0, 0, 0, 0xAA]);
    }
    let mut err = None;
    for _ in 0..100 {
        match dec.decode(&mut input) {
            Ok(None) => break,
            Ok(Some(_)) => {}
            Err(e) => {
                err = Some(e);
                break;
            }
        }
    }
    assert_eq!(err, Some(ChunkError::TooManyChunkStreams));
}

#[test]
fn rejects_chunk_size_zero_and_accepts_the_maximum() {
    let mut dec = ChunkDecoder::new();
    assert!(dec.set_chunk_size(0).is_err());
    assert!(dec.set_chunk_size(MAX_CHUNK_SIZE + 1).is_err());
    assert!(dec.set_chunk_size(MAX_CHUNK_SIZE).is_ok());
    // A huge chunk size allocates nothing up front.
    let mut input = BytesMut::from(&[0x06u8, 0, 0, 0, 0, 0, 3, 9, 1, 0, 0, 0, 1][..]);
    assert_eq!(dec.decode(&mut input), Ok(None));
}

#[test]
fn caps_pending_bytes_across_streams() {
    let mut dec = ChunkDecoder::new();
    dec.set_chunk_size(1).unwrap();
    let mut input = BytesMut::new();
    let mut result = Ok(None);
    for i in 0..4u8 {
        // 4 messages of 16 MiB-1 declared, 1 byte each delivered.
        input.extend_from_slice(&[0x00, i, 0, 0, 0, 0xFF, 0xFF, 0xFF, 9, 0, 0, 0, 0, 0]);
        result = dec.decode(&mut input);
        if result.is_err() {
            break;
        }
    }
    // The cap is 32 MiB: the third declared message does not fit.
    assert!(
        matches!(result, Err(ChunkError::MessageTooLarge { .. })),
        "{result:?}"
    );
}

#[test]
fn abort_discards_partial_message() {
    let mut dec = ChunkDecoder::new();
    let mut input = BytesMut::from(&[0x06u8, 0, 0, 0, 0, 0, 200, 9, 1, 0, 0, 0][..]);
    input.extend_from_slice(&[7; 128]);
    assert_eq!(dec.decode(&mut input), Ok(None));
    dec.abort(6);
    let m = msg(6, 0, 9, 1, &[9; 3]);
    encode_message(&mut input, &m, 128);
    assert_eq!(dec.decode(&mut input), Ok(Some(m)));
}

use crate::protocol::testutil::{feed_in_pieces, fuzz, largest_allocation, mutate, Rng};

/// A test-only encoder that uses every header format (§5.3.1.2): fmt 1 when only the
/// stream id repeats, fmt 2 when length and type repeat too, fmt 3 when even the delta
/// repeats; extended timestamps wherever the field overflows, repeated on type-3 chunks
/// as Flash does. Our own encoder only writes fmt 0 and 3.
#[derive(Default)]
struct CompressingEncoder {
    last: HashMap<u32, LastHeader>,
}

/// Per chunk stream: (timestamp, length, type, stream id, delta, extended field).
type LastHeader = (u32, u32, u8, u32, u32, Option<u32>);

impl CompressingEncoder {
    fn put(&mut self, rng: &mut Rng, out: &mut BytesMut, m: &RawMessage, chunk_size: u32) {
        let len = m.payload.len() as u32;
        let prev = self.last.get(&m.csid).copied();
        let delta = prev.map(|p| m.timestamp.wrapping_sub(p.0));
        let mut fmt = 0;
        if let (Some(p), Some(d)) = (prev, delta) {
            // Deltas are unsigned: only a forward step can be compressed.
            if m.timestamp >= p.0 && m.stream_id == p.3 && rng.chance(3, 4) {
                fmt = 1;
                if len == p.1 && m.type_id == p.2 && rng.chance(3, 4) {
                    fmt = 2;
                    if d == p.4 && rng.chance(3, 4) {
                        fmt = 3;
                    }
                }
            }
        }
        let (value, new_delta) = match fmt {
            0 => (m.timestamp, m.timestamp),
            _ => (delta.unwrap_or(0), delta.unwrap_or(0)),
        };
        let ext = match fmt {
            3 => prev.and_then(|p| p.5),
            _ => (value >= EXTENDED_TIMESTAMP).then_some(value),
        };
        put_basic_header(out, fmt, m.csid);
        if fmt <= 2 {
            out.put_slice(&value.min(EXTENDED_TIMESTAMP).to_be_bytes()[1..]);
        }
        if fmt <= 1 {
            out.put_slice(&len.to_be_bytes()[1..]);
            out.put_u8(m.type_id);
        }
        if fmt == 0 {
            out.put_u32_le(m.stream_id);
        }
        if let Some(e) = ext {
            out.put_u32(e);
        }
        let mut chunks = m.payload.chunks(chunk_size as usize);
        if let Some(first) = chunks.next() {
            out.put_slice(first);
        }
        for c in chunks {
            put_basic_header(out, 3, m.csid);
            if let Some(e) = ext {
                out.put_u32(e);
            }
            out.put_slice(c);
        }
        self.last.insert(
            m.csid,
            (m.timestamp, len, m.type_id, m.stream_id, new_delta, ext),
        );
    }
}

/// Random messages on a few chunk streams of every basic-header width, with timestamps
/// that step, repeat and cross the extended boundary.
fn random_messages(rng: &mut Rng) -> Vec<RawMessage> {
    let csids = [2, 3, 6, 63, 64, 319, 320, 65599];
    let mut ts: HashMap<u32, u32> = HashMap::new();
    (0..1 + rng.below(8))
        .map(|_| {
            let csid = *rng.pick(&csids);
            let t = ts.entry(csid).or_insert(match rng.below(3) {
                0 => 0,
                1 => EXTENDED_TIMESTAMP - 2,
                _ => rng.u32(),
            });
            *t = t.wrapping_add(rng.edgy_u32(40));
            let len = match rng.below(4) {
                0 => 0,
                1 => rng.below(4),
                _ => rng.below(400),
            };
            let payload: Vec<u8> = (0..len).map(|_| rng.u8()).collect();
            msg(csid, *t, 1 + rng.u8() % 22, rng.edgy_u32(3), &payload)
        })
        .collect()
}

/// Feeds `wire` in random pieces and decodes until it stalls or fails, checking that every
/// message consumes input and that memory stays within what was fed (plus the 64 KiB a
/// message buffer starts with).
fn decode_pieces(
    rng: &mut Rng,
    wire: &[u8],
    chunk_size: u32,
) -> (Vec<RawMessage>, Option<ChunkError>, BytesMut) {
    let mut dec = ChunkDecoder::new();
    dec.set_chunk_size(chunk_size).unwrap();
    let mut out = Vec::new();
    let mut err = None;
    let mut input = BytesMut::new();
    let max_piece = 1 + rng.below(300);
    let (_, largest) = largest_allocation(|| {
        feed_in_pieces(rng, wire, max_piece, &mut input, |input| loop {
            let before = input.len();
            match dec.decode(input) {
                Ok(Some(m)) => {
                    assert!(input.len() < before, "a message consumed nothing");
                    out.push(m);
                }
                Ok(None) => return true,
                Err(e) => {
                    err = Some(e);
                    return false;
                }
            }
        })
    });
    assert!(
        largest <= 2 * wire.len() + 128 * 1024,
        "allocated {largest} for {} bytes",
        wire.len()
    );
    (out, err, input)
}

#[test]
fn compressed_headers_in_random_pieces_decode_to_their_messages() {
    fuzz("chunk valid streams", 0xC4C0, 1_500, |rng| {
        let messages = random_messages(rng);
        let chunk_size = 1 + rng.edgy_u32(200);
        let mut enc = CompressingEncoder::default();
        let mut wire = BytesMut::new();
        for m in &messages {
            enc.put(rng, &mut wire, m, chunk_size);
        }
        let (got, err, rest) = decode_pieces(rng, &wire, chunk_size);
        assert_eq!(err, None);
        assert!(rest.is_empty(), "{} bytes left over", rest.len());
        assert_eq!(got, messages, "chunk size {chunk_size}");
    });
}

#[test]
fn mutated_chunk_streams_decode_or_fail_cleanly() {
    fuzz("chunk mutated streams", 0xC4C1, 2_000, |rng| {
        let messages = random_messages(rng);
        let chunk_size = 1 + rng.edgy_u32(200);
        let mut enc = CompressingEncoder::default();
        let mut wire = BytesMut::new();
        for m in &messages {
            enc.put(rng, &mut wire, m, chunk_size);
        }
        let bad = mutate(rng, &wire);
        let _ = decode_pieces(rng, &bad, chunk_size);
    });
}

#[test]
fn random_bytes_in_random_pieces_never_panic() {
    fuzz("chunk random bytes", 0xC4C2, 2_000, |rng| {
        let mut wire = rng.bytes(300);
        // Bias some first bytes towards fmt 0 on a small chunk stream, so that headers
        // (and the extended timestamp marker) are often accepted.
        if let Some(b) = wire.first_mut() {
            if rng.chance(1, 2) {
                *b &= 0x3F;
            }
        }
        if wire.len() > 4 && rng.chance(1, 3) {
            wire[1..4].fill(0xFF);
        }
        let chunk_size = 1 + rng.edgy_u32(MAX_CHUNK_SIZE - 1);
        let _ = decode_pieces(rng, &wire, chunk_size);
    });
}

#[test]
fn huge_declared_lengths_reserve_nothing_up_front() {
    // Every chunk stream announces a 16 MiB message and sends one byte of it, at the
    // largest chunk size: the decoder holds 64 chunk streams' worth of small buffers.
    let mut dec = ChunkDecoder::new();
    dec.set_chunk_size(MAX_CHUNK_SIZE).unwrap();
    let mut input = BytesMut::new();
    for csid in 2..2 + MAX_CHUNK_STREAMS as u32 + 1 {
        encode_first_header(&mut input, csid, 0, MAX_MESSAGE_LEN, 9, 1);
        input.put_u8(0x17);
    }
    let (r, largest) = largest_allocation(|| dec.decode(&mut input));
    // The first chunk is not whole (16 MiB of it is missing), so nothing is consumed.
    assert_eq!(r, Ok(None));
    assert!(largest < 64 * 1024, "{largest}");
    // With a small chunk size each stream holds at most one chunk's worth of buffer, and
    // the pending cap stops the third 16 MiB message.
    let mut dec = ChunkDecoder::new();
    let mut input = BytesMut::new();
    for csid in 2..5 {
        encode_first_header(&mut input, csid, 0, MAX_MESSAGE_LEN, 9, 1);
        input.put_slice(&[0; DEFAULT_CHUNK_SIZE as usize]);
    }
    let (r, largest) = largest_allocation(|| dec.decode(&mut input));
    assert_eq!(
        r,
        Err(ChunkError::MessageTooLarge {
            length: MAX_MESSAGE_LEN
        })
    );
    assert!(largest <= 64 * 1024, "{largest}");
}

#[test]
fn continuation_len_matches_encoding() {
    for (len, cs, ext) in [
        (0, 128, false),
        (128, 128, false),
        (129, 128, true),
        (1000, 7, true),
    ] {
        let mut out = BytesMut::new();
        encode_continuation(&mut out, 6, &vec![0; len], cs, ext.then_some(1 << 24));
        assert_eq!(out.len(), continuation_len(6, len, cs, ext));
    }
}

#[test]
fn a_delta_header_decodes_after_the_first_message_of_its_chunk_stream() {
    // The first message of csid 6 with its type-0 header, then one with a shared type-1
    // header and continuation chunks: the decoder gives it the previous time plus the delta
    // and the previous message's stream id.
    let first = msg(6, 1000, 9, 1, &[1, 2, 3]);
    let mut input = BytesMut::new();
    encode_message(&mut input, &first, 4);
    let payload: Vec<u8> = (0..10).collect();
    let h = delta_header(6, 40, payload.len() as u32, 9).unwrap();
    assert_eq!(h, [0x46, 0, 0, 40, 0, 0, 10, 9]);
    input.extend_from_slice(&h);
    encode_continuation(&mut input, 6, &payload, 4, None);
    let mut dec = ChunkDecoder::new();
    dec.set_chunk_size(4).unwrap();
    let got: Vec<RawMessage> = std::iter::from_fn(|| dec.decode(&mut input).unwrap()).collect();
    assert_eq!(got.len(), 2);
    assert_eq!(got[1].timestamp, 1040);
    assert_eq!(got[1].stream_id, 1);
    assert_eq!(&got[1].payload[..], &payload[..]);
    // What the shared form cannot carry.
    assert_eq!(delta_header(64, 40, 10, 9), None);
    assert_eq!(delta_header(6, EXTENDED_TIMESTAMP, 10, 9), None);
    assert_eq!(delta_header(6, 0, MAX_MESSAGE_LEN + 1, 9), None);
}
