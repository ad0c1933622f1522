use super::*;
use crate::hub::MediaKind;

#[test]
fn envelope_has_string_ids() {
    let j = envelope(0).to_json();
    assert!(j.starts_with("{\"code\":0,\"server\":\"vid-"), "{j}");
    assert!(j.contains(&format!("\"pid\":\"{}\"", std::process::id())));
    assert_eq!(
        system::server_ids(),
        system::server_ids(),
        "stable for the process"
    );
}

#[test]
fn paging_defaults_and_bounds() {
    assert_eq!(paging(None), (0, 10));
    assert_eq!(paging(Some("start=5&count=0")), (5, 1));
    assert_eq!(paging(Some("start=-3&count=x")), (0, 10));
}

#[test]
fn codec_info_from_sequence_headers() {
    // A 320x240 Baseline level 1.3 SPS from x264.
    let sps: Vec<u8> = (0..48)
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(
                &"6742c00dd90141fb011000000300100000030320f142a480"[i..i + 2],
                16,
            )
            .unwrap()
        })
        .collect();
    let mut avc = vec![0x17, 0, 0, 0, 0, 1, 0x42, 0xC0, 0x0D, 0xFF, 0xE1, 0, 24];
    avc.extend_from_slice(&sps);
    avc.extend_from_slice(&[1, 0, 4, 0x68, 0xCE, 0x3C, 0x80]);
    let frame = |kind, body: &[u8]| Frame::new(kind, 0, 0, bytes::Bytes::copy_from_slice(body));
    let avc = frame(MediaKind::Video, &avc);
    let v = video_info(&avc, None, true).to_json();
    assert!(v.contains("\"codec\":\"H264\""), "{v}");
    assert!(v.contains("\"profile\":\"Baseline\""), "{v}");
    assert!(v.contains("\"level\":\"1.3\""), "{v}");
    assert!(v.contains("\"width\":320,\"height\":240"), "{v}");
    // parse_sps = false: profile and level from the record, no size.
    let v = video_info(&avc, None, false).to_json();
    assert!(v.contains("\"profile\":\"Baseline\""), "{v}");
    assert!(v.contains("\"width\":0,\"height\":0"), "{v}");
    let a = audio_info(&frame(MediaKind::Audio, &[0xAF, 0, 0x12, 0x10])).to_json();
    assert_eq!(
        a,
        r#"{"codec":"AAC","sample_rate":44100,"channel":2,"profile":"LC"}"#
    );
    assert_eq!(
        video_info(&frame(MediaKind::Video, &[0x12]), None, true),
        Value::Null,
        "H.263 has no name"
    );
    let v = video_info(&frame(MediaKind::Video, &[0x17, 0, 0, 0, 0, 1]), None, true).to_json();
    assert_eq!(
        v, r#"{"codec":"H264","profile":null,"level":null,"width":null,"height":null}"#,
        "a malformed record keeps the codec, with null fields"
    );
    let hevc = crate::protocol::testutil::hevc_sequence_header();
    let v = video_info(&frame(MediaKind::Video, &hevc), None, true).to_json();
    assert_eq!(
        v,
        r#"{"codec":"H265","profile":"Main","level":"2","width":320,"height":180}"#
    );
    let mut av1 = b"\x90av01".to_vec();
    av1.extend_from_slice(&crate::protocol::testutil::av1c());
    let v = video_info(&frame(MediaKind::Video, &av1), None, true).to_json();
    assert_eq!(
        v,
        r#"{"codec":"AV1","profile":"Main","level":"2.0","width":320,"height":180}"#
    );
    let mut opus = b"\x90OpusOpusHead\x01\x01\x38\x01\x80\xbb\x00\x00\x00\x00\x00".to_vec();
    let a = audio_info(&frame(MediaKind::Audio, &opus)).to_json();
    assert_eq!(
        a,
        r#"{"codec":"Opus","sample_rate":48000,"channel":1,"profile":""}"#
    );
    opus.truncate(10);
    assert!(audio_info(&frame(MediaKind::Audio, &opus))
        .to_json()
        .contains("\"sample_rate\":null"));
    assert_eq!(
        audio_info(&frame(MediaKind::Audio, &[0x2F, 0])).to_json(),
        r#"{"codec":"MP3","sample_rate":null,"channel":null,"profile":null}"#
    );
}

#[test]
fn callback_names() {
    assert!(valid_callback("JSON_CALLBACK"));
    assert!(valid_callback("a.b$c"));
    assert!(!valid_callback("alert(1)//"));
    assert!(!valid_callback(""));
}
