//! H.264 (src/protocol/avc): AVCDecoderConfigurationRecords, SPSs and access units (AVCC of
//! every NALU length size, or Annex B) from any bytes. The input is a record, a 0xFF 0xFF
//! separator, then an access unit. `to_annexb` writes nothing on error and a bounded amount
//! otherwise.
#![no_main]
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use srsd::protocol::avc::{parse_avc_config, parse_sps, to_annexb};

fuzz_target!(|data: &[u8]| {
    let (flags, data) = srsd_fuzz::split_seed(data);
    let (record, au) = match data.windows(2).position(|w| w == [0xFF, 0xFF]) {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let cfg = parse_avc_config(record).ok();
    if let Some(c) = &cfg {
        for sps in &c.sps {
            let _ = parse_sps(sps);
        }
    }
    if let Ok(info) = parse_sps(record) {
        assert!(info.width > 0 && info.height > 0);
    }
    let length_size = cfg.as_ref().map_or(flags % 6, |c| c.nalu_length_size);
    let mut out = BytesMut::new();
    let r = to_annexb(au, length_size, cfg.as_ref(), flags & 0x80 != 0, &mut out);
    if r.is_err() {
        assert!(out.is_empty(), "nothing is written on error");
    }
    let params: usize = cfg
        .iter()
        .flat_map(|c| c.sps.iter().chain(&c.pps))
        .map(|p| p.len() + 4)
        .sum();
    // The most an access unit grows: 1-byte NALUs behind 1-byte lengths (2 bytes in, a 4-byte
    // start code + 1 out), plus an AUD and the parameter sets (src/protocol/avc/tests.rs,
    // `one_byte_nalus_behind_one_byte_lengths_grow_at_most_five_halves`).
    assert!(
        out.len() <= 6 + params + (5 * au.len()).div_ceil(2),
        "{} for {}",
        out.len(),
        au.len()
    );
});
