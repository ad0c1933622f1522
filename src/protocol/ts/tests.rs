use super::*;

fn hex(s: &str) -> Vec<u8> {
    let s: String = s.split_whitespace().collect();
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn packets(out: &[u8]) -> Vec<&[u8]> {
    assert_eq!(out.len() % PACKET_SIZE, 0, "whole packets only");
    let p: Vec<&[u8]> = out.chunks(PACKET_SIZE).collect();
    for pkt in &p {
        assert_eq!(pkt[0], SYNC_BYTE);
    }
    p
}

fn pid_of(p: &[u8]) -> u16 {
    (u16::from(p[1] & 0x1F) << 8) | u16::from(p[2])
}

fn cc_of(p: &[u8]) -> u8 {
    p[3] & 0x0F
}

/// The PES bytes a packet carries (after its adaptation field, if any).
fn payload_of(p: &[u8]) -> &[u8] {
    match p[3] & 0x30 {
        0x10 => &p[4..],
        0x30 => &p[5 + usize::from(p[4])..],
        other => panic!("unexpected adaptation_field_control {other:#x}"),
    }
}

fn read_timestamp(b: &[u8]) -> u64 {
    assert_eq!(b[0] & 1, 1, "marker");
    assert_eq!(b[2] & 1, 1, "marker");
    assert_eq!(b[4] & 1, 1, "marker");
    (u64::from(b[0] >> 1 & 0x07) << 30)
        | (u64::from(b[1]) << 22)
        | (u64::from(b[2] >> 1) << 15)
        | (u64::from(b[3]) << 7)
        | u64::from(b[4] >> 1)
}

fn read_pcr(b: &[u8]) -> u64 {
    (u64::from(b[0]) << 25)
        | (u64::from(b[1]) << 17)
        | (u64::from(b[2]) << 9)
        | (u64::from(b[3]) << 1)
        | u64::from(b[4] >> 7)
}

#[test]
fn crc32_mpeg2_check_value() {
    assert_eq!(crc32_mpeg2(b"123456789"), 0x0376_E6E7);
    // A section followed by its own CRC checks to 0.
    let mut s = b"srsd".to_vec();
    s.extend_from_slice(&crc32_mpeg2(b"srsd").to_be_bytes());
    assert_eq!(crc32_mpeg2(&s), 0);
}

#[test]
fn crc_matches_ffmpeg_pat() {
    // ffmpeg's default PAT (PMT on 0x1000) ends with the well-known CRC 2A B1 04 B2.
    let section = hex("00 b00d 0001 c1 00 00 0001 f000");
    assert_eq!(crc32_mpeg2(&section), 0x2AB1_04B2);
}

#[test]
fn pat_and_pmt_are_byte_exact() {
    let mut m = TsMuxer::new(true, true, AudioCodec::Aac);
    let mut out = BytesMut::new();
    m.write_pat_pmt(&mut out);
    let p = packets(&out);
    assert_eq!(p.len(), 2);

    let mut pat = hex("47 40 00 10 00  00 b00d 0001 c1 00 00  0001 f001");
    pat.extend_from_slice(&crc32_mpeg2(&pat[5..]).to_be_bytes());
    // SRS's PAT: program 1 -> PMT 0x1001.
    assert_eq!(&pat[17..], &hex("2e 70 19 05")[..]);
    pat.resize(PACKET_SIZE, 0xFF);
    assert_eq!(p[0], &pat[..]);

    let mut pmt =
        hex("47 50 01 10 00  02 b017 0001 c1 00 00  e100 f000  1b e100 f000  0f e101 f000");
    pmt.extend_from_slice(&crc32_mpeg2(&pmt[5..]).to_be_bytes());
    pmt.resize(PACKET_SIZE, 0xFF);
    assert_eq!(p[1], &pmt[..]);
    assert_eq!(crc32_mpeg2(&p[1][5..5 + 3 + 0x17]), 0);
}

#[test]
fn hevc_pmt_is_byte_exact() {
    let mut m = TsMuxer::new(true, true, AudioCodec::Aac);
    m.set_video_codec(VideoCodec::Hevc);
    let mut out = BytesMut::new();
    m.write_pat_pmt(&mut out);
    // As ffmpeg's: stream_type 0x24 (H.265) on the video PID, which carries the PCR.
    let mut pmt =
        hex("47 50 01 10 00  02 b017 0001 c1 00 00  e100 f000  24 e100 f000  0f e101 f000");
    pmt.extend_from_slice(&crc32_mpeg2(&pmt[5..]).to_be_bytes());
    pmt.resize(PACKET_SIZE, 0xFF);
    assert_eq!(packets(&out)[1], &pmt[..]);
}

#[test]
fn pmt_for_audio_only_mp3_puts_pcr_on_audio() {
    let mut m = TsMuxer::new(false, true, AudioCodec::Mp3);
    let mut out = BytesMut::new();
    m.write_pat_pmt(&mut out);
    let pmt = packets(&out)[1];
    assert_eq!(
        &pmt[5..22],
        &hex("02 b012 0001 c1 00 00 e101 f000 03 e101 f000")[..]
    );
    assert_eq!(crc32_mpeg2(&pmt[5..5 + 3 + 0x12]), 0);
    assert_eq!(m.pcr_pid(), pid::AUDIO);
    assert_eq!(
        TsMuxer::new(false, false, AudioCodec::Aac).pcr_pid(),
        pid::NULL
    );
}

#[test]
fn continuity_counters_are_per_pid_and_wrap() {
    let mut m = TsMuxer::new(true, true, AudioCodec::Aac);
    let mut out = BytesMut::new();
    for _ in 0..20 {
        m.write_pat_pmt(&mut out);
        m.write_video(0, 0, &[0; 10], false, &mut out);
        m.write_audio(0, &[0; 10], &mut out);
    }
    let mut expected = std::collections::HashMap::new();
    for p in packets(&out) {
        let next = expected.entry(pid_of(p)).or_insert(0u8);
        assert_eq!(cc_of(p), *next, "pid {:#x}", pid_of(p));
        *next = (*next + 1) % 16;
    }
    assert_eq!(expected.len(), 4);
}

#[test]
fn video_pes_header_carries_pts_and_dts_with_marker_bits() {
    let mut m = TsMuxer::new(true, true, AudioCodec::Aac);
    let mut out = BytesMut::new();
    m.write_video(1040, 1000, &[0xAB; 20], true, &mut out);
    let p = packets(&out);
    assert_eq!(p.len(), 1);
    let pkt = p[0];
    assert_eq!(&pkt[..4], &[0x47, 0x41, 0x00, 0x30], "PUSI, PID 0x100, AF");
    // AF: stuffed to fill the packet; flags: random access + PCR.
    assert_eq!(usize::from(pkt[4]), PACKET_SIZE - 5 - (19 + 20));
    assert_eq!(pkt[5], 0x50);
    assert_eq!(read_pcr(&pkt[6..12]), 90_000);
    assert_eq!(pkt[10] & 0x7E, 0x7E, "reserved bits");
    assert_eq!(pkt[11], 0, "PCR extension");
    assert!(pkt[12..5 + usize::from(pkt[4])].iter().all(|&b| b == 0xFF));
    let pes = payload_of(pkt);
    assert_eq!(&pes[..9], &[0, 0, 1, 0xE0, 0, 0, 0x80, 0xC0, 10]);
    assert_eq!(pes[9] >> 4, 0x3);
    assert_eq!(read_timestamp(&pes[9..14]), 1040 * 90);
    assert_eq!(pes[14] >> 4, 0x1);
    assert_eq!(read_timestamp(&pes[14..19]), 1000 * 90);
    assert_eq!(&pes[19..], &[0xAB; 20]);
}

#[test]
fn pts_only_when_equal_to_dts_and_no_random_access_on_p_frames() {
    let mut m = TsMuxer::new(true, false, AudioCodec::Aac);
    let mut out = BytesMut::new();
    m.write_video(500, 500, &[1, 2, 3], false, &mut out);
    let pkt = packets(&out)[0];
    assert_eq!(pkt[5], 0x10, "PCR only");
    let pes = payload_of(pkt);
    assert_eq!(&pes[..9], &[0, 0, 1, 0xE0, 0, 0, 0x80, 0x80, 5]);
    assert_eq!(pes[9] >> 4, 0x2);
    assert_eq!(read_timestamp(&pes[9..14]), 45_000);
    assert_eq!(&pes[14..], &[1, 2, 3]);
}

#[test]
fn timestamp_bytes_are_exact() {
    // All-ones 33-bit value: every data bit and marker set.
    let mut h = Vec::new();
    put_timestamp(&mut h, 0x2, Timestamp90k::new((1 << 33) - 1));
    assert_eq!(h, [0x2F, 0xFF, 0xFF, 0xFF, 0xFF]);
    let mut h = Vec::new();
    put_timestamp(&mut h, 0x3, Timestamp90k::new(0));
    assert_eq!(h, [0x31, 0x00, 0x01, 0x00, 0x01]);
    // 0x1_2345_6789 split 3/15/15 bits: 0b100, 0x468A, 0x6789.
    let mut h = Vec::new();
    put_timestamp(&mut h, 0x1, Timestamp90k::new(0x1_2345_6789));
    assert_eq!(read_timestamp(&h), 0x1_2345_6789);
    assert_eq!(h, [0x19, 0x8D, 0x15, 0xCF, 0x13]);
    let mut pcr = BytesMut::new();
    put_pcr(&mut pcr, Timestamp90k::new((1 << 33) - 1));
    assert_eq!(pcr.as_ref(), &[0xFF, 0xFF, 0xFF, 0xFF, 0xFE, 0x00]);
    let mut pcr = BytesMut::new();
    put_pcr(&mut pcr, Timestamp90k::new(1));
    assert_eq!(pcr.as_ref(), &[0, 0, 0, 0, 0xFE, 0x00]);
}

#[test]
fn timestamps_wrap_at_33_bits() {
    let wrap_ms = (Timestamp90k::MODULUS / 90) as i64; // 95443717 ms, ~26.5 h
    assert_eq!(
        Timestamp90k::from_ms(wrap_ms).ticks(),
        (wrap_ms as u64 * 90) % (1 << 33)
    );
    assert_eq!(
        Timestamp90k::from_ms(wrap_ms + 1).ticks(),
        wrap_ms as u64 * 90 + 90 - (1 << 33)
    );
    assert_eq!(Timestamp90k::from_ms(-1).ticks(), (1 << 33) - 90);
    assert!(Timestamp90k::from_ms(i64::MIN).ticks() < (1 << 33));
    assert_eq!(Timestamp90k::new(1 << 33), Timestamp90k::new(0));
    assert_eq!(Timestamp90k::from_ms(1000).ticks(), 90_000);

    let mut m = TsMuxer::new(true, false, AudioCodec::Aac);
    let mut out = BytesMut::new();
    m.write_video(wrap_ms + 2, wrap_ms + 1, &[0], false, &mut out);
    let pkt = packets(&out)[0];
    assert_eq!(read_pcr(&pkt[6..12]), (wrap_ms as u64 + 1) * 90 - (1 << 33));
    let pes = payload_of(pkt);
    assert_eq!(
        read_timestamp(&pes[9..14]),
        (wrap_ms as u64 + 2) * 90 - (1 << 33)
    );
}

#[test]
fn ten_kilobyte_frame_splits_into_whole_packets() {
    let frame: Vec<u8> = (0..10_000u32).map(|i| i as u8).collect();
    let mut m = TsMuxer::new(true, true, AudioCodec::Aac);
    let mut out = BytesMut::new();
    m.write_video(0, 0, &frame, true, &mut out);
    let p = packets(&out);
    // First packet: 184 - 8 (AF with PCR) = 176 bytes of PES; then 184 per packet.
    let pes_len = 14 + frame.len();
    let expected = 1 + (pes_len - 176).div_ceil(184);
    assert_eq!(p.len(), expected);
    let mut pes = Vec::new();
    for (i, pkt) in p.iter().enumerate() {
        assert_eq!(pid_of(pkt), pid::VIDEO);
        assert_eq!(cc_of(pkt), (i % 16) as u8);
        assert_eq!(pkt[1] & 0x40 != 0, i == 0, "PUSI only on the first packet");
        if i > 0 && i < p.len() - 1 {
            assert_eq!(
                pkt[3] & 0x30,
                0x10,
                "middle packets have no adaptation field"
            );
        }
        pes.extend_from_slice(payload_of(pkt));
    }
    let last = p[p.len() - 1];
    let stuffing = 184 - (pes_len - 176) % 184;
    assert_eq!(usize::from(last[4]) + 1, stuffing);
    assert_eq!(last[5], 0, "stuffing-only adaptation field has no flags");
    assert_eq!(pes.len(), pes_len);
    assert_eq!(&pes[14..], &frame[..]);
}

#[test]
fn stuffing_of_one_and_two_bytes() {
    // Sizes that leave 0, 1 and 2 bytes free in the last packet.
    for (free, af) in [
        (0usize, None),
        (1, Some(vec![0x00])),
        (2, Some(vec![0x01, 0x00])),
    ] {
        let mut m = TsMuxer::new(true, false, AudioCodec::Aac);
        let mut out = BytesMut::new();
        // 176 in the first packet, then one more packet with 184 - free bytes.
        let data = vec![0x11; 176 + 184 - free - 14];
        m.write_video(0, 0, &data, false, &mut out);
        let p = packets(&out);
        assert_eq!(p.len(), 2);
        match af {
            None => assert_eq!(p[1][3] & 0x30, 0x10),
            Some(af) => {
                assert_eq!(p[1][3] & 0x30, 0x30);
                assert_eq!(&p[1][4..4 + af.len()], &af[..]);
            }
        }
        assert_eq!(payload_of(p[1]).len(), 184 - free);
    }
}

#[test]
fn audio_pes_has_length_and_pcr_only_without_video() {
    let adts = [0xFF, 0xF1, 0x50, 0x80, 0x01, 0xBF, 0xFC, 1, 2, 3, 4, 5, 6];
    let mut with_video = TsMuxer::new(true, true, AudioCodec::Aac);
    let mut out = BytesMut::new();
    with_video.write_audio(2000, &adts, &mut out);
    let pkt = packets(&out)[0];
    assert_eq!(pid_of(pkt), pid::AUDIO);
    assert_eq!(pkt[5], 0x00, "no PCR, no random access: stuffing only");
    let pes = payload_of(pkt);
    let len = 3 + 5 + adts.len();
    assert_eq!(&pes[..9], &[0, 0, 1, 0xC0, 0, len as u8, 0x80, 0x80, 5]);
    assert_eq!(read_timestamp(&pes[9..14]), 180_000);
    assert_eq!(&pes[14..], &adts);

    let mut audio_only = TsMuxer::new(false, true, AudioCodec::Aac);
    let mut out = BytesMut::new();
    audio_only.write_audio(2000, &adts, &mut out);
    let pkt = packets(&out)[0];
    assert_eq!(pkt[5], 0x50, "PCR and random access on audio-only");
    assert_eq!(read_pcr(&pkt[6..12]), 180_000);
}

#[test]
fn huge_audio_pes_gets_length_zero() {
    let mut m = TsMuxer::new(false, true, AudioCodec::Mp3);
    let mut out = BytesMut::new();
    m.write_audio(0, &vec![0; 70_000], &mut out);
    let pes = payload_of(packets(&out)[0]);
    assert_eq!(&pes[4..6], &[0, 0]);
}

#[test]
fn empty_payloads_still_write_one_packet() {
    let mut m = TsMuxer::new(true, true, AudioCodec::Aac);
    let mut out = BytesMut::new();
    m.write_video(0, 0, &[], true, &mut out);
    m.write_audio(0, &[], &mut out);
    assert_eq!(packets(&out).len(), 2);
}

#[test]
fn every_size_round_trips_through_packets() {
    let mut m = TsMuxer::new(true, true, AudioCodec::Aac);
    for size in (0..1200).chain([65_535, 65_536, 100_000]) {
        let data: Vec<u8> = (0..size).map(|i| (i * 7) as u8).collect();
        for video in [true, false] {
            let mut out = BytesMut::new();
            if video {
                m.write_video(size as i64, 0, &data, size % 2 == 0, &mut out);
            } else {
                m.write_audio(size as i64, &data, &mut out);
            }
            let pes: Vec<u8> = packets(&out)
                .iter()
                .flat_map(|p| payload_of(p).to_vec())
                .collect();
            let header = usize::from(pes[8]) + 9;
            assert_eq!(&pes[header..], &data[..], "size {size} video {video}");
        }
    }
}
