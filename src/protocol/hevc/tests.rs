use super::*;
use crate::protocol::testutil::{fuzz, hvcc, mutate, HEVC_PPS, HEVC_SPS, HEVC_VPS};

#[test]
fn reads_libx265_hvcc_and_its_sps_size() {
    let c = parse_hvcc(&hvcc()).unwrap();
    assert_eq!((c.profile, c.high_tier, c.level), (1, false, 60));
    assert_eq!(c.nalu_length_size, 4);
    assert_eq!(
        (c.width, c.height),
        (320, 180),
        "cropped by the conformance window"
    );
    assert_eq!(c.parameter_sets, vec![HEVC_VPS, HEVC_SPS, HEVC_PPS]);
    assert_eq!(
        (profile_name(c.profile), level_name(c.level)),
        ("Main", "2".to_string())
    );
    assert_eq!(level_name(93), "3.1");
}

#[test]
fn malformed_records_are_errors() {
    assert_eq!(parse_hvcc(&[]), Err(AvcError::Truncated { what: "hvcC" }));
    let mut bad = hvcc();
    bad[0] = 0;
    assert_eq!(parse_hvcc(&bad), Err(AvcError::UnsupportedConfigVersion(0)));
    let full = hvcc();
    assert!(
        parse_hvcc(&full[..full.len() - 1]).is_err(),
        "last NALU cut"
    );
    assert!(parse_sps(HEVC_PPS).is_err());
    assert!(parse_sps(&HEVC_SPS[..10]).is_err());
}

fn avcc(nalus: &[&[u8]]) -> Vec<u8> {
    let mut v = Vec::new();
    for n in nalus {
        v.extend_from_slice(&(n.len() as u32).to_be_bytes());
        v.extend_from_slice(n);
    }
    v
}

#[test]
fn irap_gets_aud_then_parameter_sets_in_annexb() {
    let c = parse_hvcc(&hvcc()).unwrap();
    let idr = [0x26, 0x01, 0xAF, 0x10]; // IDR_W_RADL (19)
    let mut out = BytesMut::new();
    to_annexb(&avcc(&[&idr]), Some(&c), false, &mut out).unwrap();
    let mut want = AUD_NALU.to_vec();
    for n in [HEVC_VPS, HEVC_SPS, HEVC_PPS, &idr] {
        want.extend_from_slice(&[0, 0, 0, 1]);
        want.extend_from_slice(n);
    }
    assert_eq!(&out[..], &want[..]);

    let trail = [0x02, 0x01, 0xD0]; // TRAIL_R (1): no parameter sets
    out.clear();
    to_annexb(&avcc(&[&trail]), Some(&c), false, &mut out).unwrap();
    assert_eq!(
        &out[..],
        [&AUD_NALU[..], &[0, 0, 0, 1, 0x02, 0x01, 0xD0]].concat()
    );

    // An access unit with its own AUD and SPS gets neither again.
    let aud = [0x46, 0x01, 0x50];
    out.clear();
    to_annexb(
        &avcc(&[&aud, HEVC_VPS, HEVC_SPS, HEVC_PPS, &idr]),
        Some(&c),
        true,
        &mut out,
    )
    .unwrap();
    assert_eq!(out.windows(4).filter(|w| w == &[0, 0, 0, 1]).count(), 5);
}

#[test]
fn hevc_parsers_never_panic_on_mutated_input() {
    let rec = hvcc();
    let c = parse_hvcc(&rec).unwrap();
    fuzz("hevc hvcC", 0x4E7C, 5_000, |rng| {
        let m = mutate(rng, &rec);
        if let Ok(c) = parse_hvcc(&m) {
            assert!(c.parameter_sets.iter().map(|p| p.len()).sum::<usize>() <= m.len());
        }
        let sps = mutate(rng, HEVC_SPS);
        if let Ok((w, h)) = parse_sps(&sps) {
            assert!(w > 0 && h > 0);
        }
        let data = mutate(rng, &avcc(&[&[0x26, 0x01, 0xAF], &[0x02, 0x01]]));
        let mut out = BytesMut::new();
        if to_annexb(&data, Some(&c), rng.chance(1, 2), &mut out).is_err() {
            assert!(out.is_empty(), "nothing is written on error");
        }
    });
}
