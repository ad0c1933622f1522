//! Writes the seed corpora of the fuzz targets into `corpus/TARGET/` (relative to the current
//! directory, normally `fuzz/`): small valid inputs made with the server's own encoders, so the
//! fuzzers start from deep inside each format. `cargo run --bin seeds` in `fuzz/` rewrites them.

use bytes::{Bytes, BytesMut};
use srsd::protocol::amf0::{encode_all, Amf0Value};
use srsd::protocol::flv::{encode_header, encode_tag, Tag};
use srsd::protocol::rtmp::chunk::{encode_message, RawMessage};
use srsd::protocol::rtmp::handshake::{ClientHandshake, HandshakeProgress, ServerHandshake};
use srsd::protocol::rtmp::session::{ClientSession, MediaKind, ServerEvent, ServerSession};
use std::fs;
use std::path::Path;

fn write(target: &str, name: &str, bytes: &[u8]) {
    let dir = Path::new("corpus").join(target);
    fs::create_dir_all(&dir).expect("corpus dir");
    fs::write(dir.join(name), bytes).expect("seed file");
}

fn with_seed(seed: u8, bytes: &[u8]) -> Vec<u8> {
    let mut v = vec![seed];
    v.extend_from_slice(bytes);
    v
}

/// An FLV video body holding an AVC sequence header (Baseline 3.0, one SPS, one PPS).
fn avc_sequence_header() -> Vec<u8> {
    let sps = [0x67, 0x42, 0xC0, 0x1E, 0xDA, 0x02, 0x80, 0xF6, 0x40];
    let pps = [0x68, 0xCE, 0x3C, 0x80];
    let mut v = vec![0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x1E, 0xFF, 0xE1];
    v.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    v.extend_from_slice(&sps);
    v.push(1);
    v.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    v.extend_from_slice(&pps);
    v
}

/// An FLV video body holding one IDR NALU of `n` bytes in AVCC (4-byte lengths).
fn idr(n: usize) -> Vec<u8> {
    let mut v = vec![0x17, 1, 0, 0, 0];
    v.extend_from_slice(&((n + 1) as u32).to_be_bytes());
    v.push(0x65);
    v.extend(std::iter::repeat_n(0x88, n));
    v
}

const AAC_SEQ: &[u8] = &[0xAF, 0x00, 0x12, 0x10];
const AAC_RAW: &[u8] = &[0xAF, 0x01, 0x21, 0x00, 0x49, 0x90, 0x02];

/// What a client sends to the server in a whole session (connect, then publish or play, then
/// media when publishing), with the server accepting everything.
fn client_wire(publish: bool) -> Vec<u8> {
    let mut s = ServerSession::new(60000, "srsd/seeds");
    let mut c = ClientSession::new();
    c.connect(
        ClientSession::connect_object("live", "rtmp://127.0.0.1/live"),
        vec![],
    );
    let mut wire = Vec::new();
    let mut step = 0;
    for _ in 0..50 {
        if let Some(b) = c.take_output() {
            wire.extend_from_slice(&b);
            s.handle_input(&mut BytesMut::from(&b[..]))
                .expect("server input");
        }
        while let Some(e) = s.poll_event() {
            match e {
                ServerEvent::Connect { id, .. } => s.accept_connect(id),
                ServerEvent::Publish { id, .. } => s.accept_publish(id),
                ServerEvent::Play { id, .. } => s.accept_play(id),
                _ => {}
            }
        }
        if let Some(b) = s.take_output() {
            c.handle_input(&mut BytesMut::from(&b[..]))
                .expect("client input");
        }
        while c.poll_event().is_some() {}
        step += 1;
        if step == 5 {
            if publish {
                c.publish("stream?token=1");
            } else {
                c.play("stream");
            }
        }
        if step == 10 && publish {
            c.send_media(MediaKind::Video, 0, Bytes::from(avc_sequence_header()));
            c.send_media(MediaKind::Audio, 0, Bytes::from_static(AAC_SEQ));
            c.send_media(MediaKind::Video, 40, Bytes::from(idr(300)));
            c.send_media(MediaKind::Audio, 46, Bytes::from_static(AAC_RAW));
            c.unpublish("stream?token=1");
        }
    }
    wire
}

fn main() {
    // Chunk streams: a few messages at chunk sizes 128 and 4096 (byte 2 is the size / 16).
    for (i, (seed, size)) in [(0u8, 128u32), (3, 4096), (77, 128)]
        .into_iter()
        .enumerate()
    {
        let mut wire = BytesMut::new();
        // (csid, timestamp, type id, payload length): commands, media, an extended timestamp
        // and a three-byte chunk stream id.
        for (n, (csid, timestamp, type_id, len)) in [
            (3u32, 0u32, 20u8, 40usize),
            (4, 40, 9, 300),
            (6, 0xFF_FFFF, 8, 900),
            (70_000, 0x100_0000, 18, 10),
        ]
        .into_iter()
        .enumerate()
        {
            let msg = RawMessage {
                csid,
                timestamp,
                type_id,
                stream_id: 1,
                payload: Bytes::from(vec![n as u8; len]),
            };
            encode_message(&mut wire, &msg, size);
        }
        let mut v = vec![seed, (size / 16).min(255) as u8];
        if size == 128 {
            v[1] = 0;
        }
        v.extend_from_slice(&wire);
        write("chunk", &format!("messages-{i}"), &v);
    }

    // Server sessions: a publisher and a player, whole in one read and in small pieces.
    write(
        "server_session",
        "publish",
        &with_seed(0, &client_wire(true)),
    );
    write(
        "server_session",
        "publish-pieces",
        &with_seed(6, &client_wire(true)),
    );
    write("server_session", "play", &with_seed(2, &client_wire(false)));

    // Handshakes: C0C1C2 to a server; S0S1S2 to a client.
    let mut fill = |b: &mut [u8]| b.fill(0x3C);
    let (mut client, c0c1) = ClientHandshake::new(&mut fill, 1);
    let mut server = ServerHandshake::new();
    let s0s1s2 = match server.handle_input(&mut BytesMut::from(&c0c1[..]), &mut fill, 2) {
        Ok(HandshakeProgress::NeedMore { send }) => send,
        other => panic!("server handshake: {other:?}"),
    };
    let c2 = match client.handle_input(&mut BytesMut::from(&s0s1s2[..])) {
        Ok(HandshakeProgress::Done { send }) => send,
        other => panic!("client handshake: {other:?}"),
    };
    let mut c0c1c2 = c0c1.to_vec();
    c0c1c2.extend_from_slice(&c2);
    write("handshake", "c0c1c2", &with_seed(0, &c0c1c2));
    write("handshake", "c0c1c2-pieces", &with_seed(9, &c0c1c2));
    write("handshake", "s0s1s2", &with_seed(0x80, &s0s1s2));

    // AMF0: a connect command and an onMetaData.
    let mut out = BytesMut::new();
    encode_all(
        &[
            Amf0Value::string("connect"),
            Amf0Value::Number(1.0),
            Amf0Value::Object(ClientSession::connect_object("live", "rtmp://h/live")),
            Amf0Value::Null,
        ],
        &mut out,
    );
    write("amf0", "connect", &out);
    let mut out = BytesMut::new();
    encode_all(
        &[
            Amf0Value::string("onMetaData"),
            Amf0Value::EcmaArray(vec![
                ("width".into(), Amf0Value::Number(1280.0)),
                ("encoder".into(), Amf0Value::string("Lavf")),
                ("stereo".into(), Amf0Value::Boolean(true)),
            ]),
            Amf0Value::StrictArray(vec![Amf0Value::Undefined, Amf0Value::Number(2.5)]),
        ],
        &mut out,
    );
    write("amf0", "metadata", &out);

    // FLV: a small file with both sequence headers and a frame of each.
    let mut flv = BytesMut::new();
    encode_header(true, true, &mut flv);
    for (kind, ts, body) in [
        (MediaKind::Data, 0, vec![2, 0, 2, b'o', b'k']),
        (MediaKind::Video, 0, avc_sequence_header()),
        (MediaKind::Audio, 0, AAC_SEQ.to_vec()),
        (MediaKind::Video, 40, idr(120)),
        (MediaKind::Audio, 46, AAC_RAW.to_vec()),
    ] {
        encode_tag(
            &Tag {
                kind,
                timestamp: ts,
                payload: Bytes::from(body),
            },
            &mut flv,
        );
    }
    write("flv", "av", &with_seed(0, &flv));
    write("flv", "av-pieces", &with_seed(5, &flv));

    // AVC: the record of a 1080p High SPS + a PPS, then an IDR in AVCC and one in Annex B.
    let sps = hex("67640028acd940780227e5c044000003000400000300c83c60c658");
    let pps = hex("68cb83cb20");
    let mut rec = vec![1, 0x64, 0, 0x28, 0xFF, 0xE1];
    rec.extend_from_slice(&(sps.len() as u16).to_be_bytes());
    rec.extend_from_slice(&sps);
    rec.push(1);
    rec.extend_from_slice(&(pps.len() as u16).to_be_bytes());
    rec.extend_from_slice(&pps);
    let mut avcc = rec.clone();
    avcc.extend_from_slice(&[0xFF, 0xFF]);
    avcc.extend_from_slice(&idr(30)[5..]);
    write("avc", "record-avcc", &with_seed(0x80, &avcc));
    let mut annexb = rec;
    annexb.extend_from_slice(&[
        0xFF, 0xFF, 0, 0, 0, 1, 0x09, 0xF0, 0, 0, 1, 0x65, 0x88, 0x84,
    ]);
    write("avc", "record-annexb", &with_seed(4, &annexb));
    write("avc", "sps", &with_seed(4, &sps));

    // AAC: LC 44.1 kHz stereo, HE-AAC with SBR, an escape sample rate index.
    write("aac", "lc", &[0x12, 0x10]);
    write("aac", "he", &[0x2B, 0x92, 0x08, 0x00]);
    write("aac", "escape", &[0x17, 0x80, 0x00, 0x01, 0x80]);

    // HTTP paths: path, Range, tcUrl, stream name (one a line).
    write(
        "http_paths",
        "flv",
        b"/live/livestream.flv\nbytes=0-99\nrtmp://127.0.0.1:1935/live?vhost=v.com\nlivestream?token=a",
    );
    write(
        "http_paths",
        "escape",
        b"/live/%2e%2e/x.m3u8\nbytes=-5\nrtmp://h/live/../x\n../../etc/passwd",
    );
    write(
        "http_paths",
        "hls",
        b"/v.com/live/s.m3u8\nbytes=10-\nrtmp://[::1]/a/b/c\n",
    );

    // Hook answers and hook URLs.
    write("hook_answer", "zero", b"\x000");
    write(
        "hook_answer",
        "json",
        b"\x01{\"code\": 0, \"data\": {\"urls\": [\"x\"]}}",
    );
    write(
        "hook_answer",
        "url",
        b"\x03http://127.0.0.1:8085/api/v1/streams?x=1",
    );

    // Config: the default and the annotated full config.
    write(
        "config",
        "srsd.toml",
        include_bytes!("../../../conf/srsd.toml"),
    );
    write(
        "config",
        "full.toml",
        include_bytes!("../../../conf/full.toml"),
    );

    // TS remux: video and audio sequence headers, then a keyframe and an audio frame.
    let mut frames = vec![0u8];
    for (h, dts, body) in [
        (0b110u8, 0i32, avc_sequence_header()),
        (0b101, 0, AAC_SEQ.to_vec()),
        (0b010, 40, idr(200)),
        (0b001, 46, AAC_RAW.to_vec()),
        (0b000, 80, idr(20)),
    ] {
        frames.push(h);
        frames.extend_from_slice(&dts.to_be_bytes());
        frames.extend_from_slice(&(body.len() as u16).to_be_bytes());
        frames.extend_from_slice(&body);
    }
    write("ts_remux", "av", &frames);

    // DNS answers to "origin.test": two A records (id 0x11: seed byte 0x22), one AAAA (id 0x11:
    // seed 0x23), NXDOMAIN.
    use srsd::protocol::dns::{encode_answer, encode_query, Address, QueryType};
    let q = encode_query(0x11, "origin.test", QueryType::A).expect("query");
    let a = encode_answer(
        &q,
        &[Address::V4([127, 0, 0, 1]), Address::V4([10, 0, 0, 1])],
        0,
    );
    write("dns", "a", &with_seed(0x22, &a.expect("answer")));
    write(
        "dns",
        "nxdomain",
        &with_seed(0x22, &encode_answer(&q, &[], 3).expect("answer")),
    );
    let q = encode_query(0x11, "origin.test", QueryType::Aaaa).expect("query");
    let a = encode_answer(&q, &[Address::V6([0xFE; 16])], 0);
    write("dns", "aaaa", &with_seed(0x23, &a.expect("answer")));
    // Media: tag bodies (selector byte: 0 audio, 1 video) as ffmpeg 9 writes them over
    // Enhanced RTMP (x265 + Opus, SVT-AV1, libvpx-vp9, 64x48), and the legacy AVC/AAC forms.
    // Coded frames are cut after their first bytes: the headers read from them are short.
    use srsd::protocol::media::{Codec, MediaKind as Kind, Packet, TagHeader};
    let media = [
        (
            "hevc-config",
            1,
            format!("90{}{HVCC_X265}", hex_of(b"hvc1")),
        ),
        (
            "hevc-key",
            1,
            "93687663310000036f2801ac469894a4ad934ceb30".into(),
        ),
        (
            "opus-config",
            0,
            "904f7075734f707573486561640101380180bb0000000000".into(),
        ),
        ("opus-frame", 0, "914f707573f87249472710e4".into()),
        (
            "av1-config",
            1,
            "906176303181000c000a0b02000005157fbc02f80040".into(),
        ),
        (
            "av1-key",
            1,
            "916176303112000a0b02000005157fbc4af900403287".into(),
        ),
        ("vp9-config", 1, "907670303901000000000a820202020000".into()),
        (
            "vp9-key",
            1,
            "9176703039824983420003f002f60638241c184a0002d05f63".into(),
        ),
        (
            "color-info",
            1,
            "d476703039020009636f6c6f72496e666f03000b636f6c6f72436f6e66696703000009000009".into(),
        ),
    ];
    for (name, selector, body) in media {
        write("media", name, &with_seed(selector, &hex(&body)));
    }
    write("media", "avc-config", &with_seed(1, &avc_sequence_header()));
    write("media", "aac-config", &with_seed(0, AAC_SEQ));
    // A multitrack keyframe (OBS 31's Enhanced Broadcasting), from the server's encoder.
    let mut mt = Vec::new();
    TagHeader {
        codec: Codec::Hevc,
        enhanced: true,
        frame_type: 1,
        packet: Packet::FrameX,
        multitrack: Some(0),
        ..TagHeader::unknown(Kind::Video)
    }
    .encode(&mut mt);
    mt.extend_from_slice(&[0, 0, 0, 0, 1, 0x26]);
    write("media", "multitrack-key", &with_seed(1, &mt));

    // SRS configs (the importer's unit-test configs: SRS 3+ blocks, SRS 2 flat), one with
    // an include, one with an include that includes itself (see fuzz_targets/srs_import.rs).
    write(
        "srs_import",
        "srs3.conf",
        include_bytes!("../../../src/config/import_srs/srs3.conf"),
    );
    write(
        "srs_import",
        "srs2.conf",
        include_bytes!("../../../src/config/import_srs/srs2.conf"),
    );
    write(
        "srs_import",
        "include.conf",
        b"listen 1935;\ninclude inc.conf;\nhttp_api { enabled on; listen 1985; }\n",
    );
    write(
        "srs_import",
        "include-loop.conf",
        b"vhost a.test {\n    include loop.conf;\n}\n",
    );
    println!("seeds written under corpus/");
}

/// An hvcC from x265 (ffmpeg 9, 64x48 Main): its VPS, SPS and PPS (the SEI array dropped).
const HVCC_X265: &str = "0101600000009000000000001ef000fcfdf8f800000f03200001001840010c01ffff0160\
    0000030090000003000003001e959409210001002942010101600000030090000003000003001ea02083165959\
    52930bc05a02000003000200000300141022000100064401c073c089";

fn hex_of(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}
