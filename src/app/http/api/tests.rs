use super::*;

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
    let v = video_info(&avc, true).to_json();
    assert!(v.contains("\"codec\":\"H264\""), "{v}");
    assert!(v.contains("\"profile\":\"Baseline\""), "{v}");
    assert!(v.contains("\"level\":\"1.3\""), "{v}");
    assert!(v.contains("\"width\":320,\"height\":240"), "{v}");
    // parse_sps = false: profile and level from the record, no size.
    let v = video_info(&avc, false).to_json();
    assert!(v.contains("\"profile\":\"Baseline\""), "{v}");
    assert!(v.contains("\"width\":0,\"height\":0"), "{v}");
    let a = audio_info(&[0xAF, 0, 0x12, 0x10]).to_json();
    assert_eq!(
        a,
        r#"{"codec":"AAC","sample_rate":44100,"channel":2,"profile":"LC"}"#
    );
    assert_eq!(video_info(&[0x17], true), Value::Null);
    assert_eq!(audio_info(&[0x2F, 0]), Value::Null);
}

#[test]
fn callback_names() {
    assert!(valid_callback("JSON_CALLBACK"));
    assert!(valid_callback("a.b$c"));
    assert!(!valid_callback("alert(1)//"));
    assert!(!valid_callback(""));
}
