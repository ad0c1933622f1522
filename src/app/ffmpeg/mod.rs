//! The ffmpeg command line of one engine (`[[vhost.X.transcode.engine]]`, `[[ingest.engine]]`).
//!
//! A pure function: config in, argv out, so the exact arguments are unit-tested as tables.
//! The order mirrors SRS's `SrsFFMPEG::start` (`trunk/src/app/srs_app_ffmpeg.cpp`), which users'
//! `vparams`/`aparams`/`vfilter` were written against:
//!
//! ```text
//! ffmpeg [iparams...] [-f flv] -i INPUT [vfilter...]
//!        -vcodec X [-b:v Nk] [-r FPS] [-s WxH -aspect W:H] [-threads N] [-profile:v P] [-preset P] [vparams...]
//!        -acodec Y [-b:a Nk] [-ar N] [-ac N] [aparams...]
//!        -f flv -y OUTPUT
//! ```
//!
//! Differences from SRS, all equivalent for ffmpeg: bitrates are written `800k` where SRS
//! writes `800000`; the frame rate `25` where SRS writes `25.00`; and a single given dimension
//! (SRS ignores it) becomes a `scale` filter that keeps the aspect ratio.

pub mod ingest;
pub mod process;

use crate::config::{Codec, EngineConfig};

/// The argv (without the program) of one engine reading `input` and writing `output`.
///
/// `iparams` go before the input (ingest's `-re -stream_loop -1`). `-f flv` is given for the
/// input only when it is an RTMP URL: forcing the FLV demuxer on a file or a UDP/HTTP URL of
/// another format would make ffmpeg fail (SRS issue #290).
pub fn engine_args(iparams: &[&str], input: &str, e: &EngineConfig, output: &str) -> Vec<String> {
    let mut a: Vec<String> = Vec::with_capacity(32);
    fn push(a: &mut Vec<String>, s: &str) {
        a.push(s.to_string());
    }
    for p in iparams {
        push(&mut a, p);
    }
    if input.starts_with("rtmp://") {
        push(&mut a, "-f");
        push(&mut a, "flv");
    }
    push(&mut a, "-i");
    push(&mut a, input);
    for p in e.vfilter.iter().filter(|p| !p.is_empty()) {
        push(&mut a, p);
    }

    match &e.vcodec.0 {
        Codec::Drop => push(&mut a, "-vn"),
        Codec::Copy => {
            push(&mut a, "-vcodec");
            push(&mut a, "copy");
        }
        Codec::Encode(name) => {
            push(&mut a, "-vcodec");
            push(&mut a, name);
        }
    }
    // With "copy" the encoder options mean nothing (ffmpeg would warn about or refuse them).
    if matches!(e.vcodec.0, Codec::Encode(_)) {
        if e.vbitrate > 0 {
            push(&mut a, "-b:v");
            push(&mut a, &format!("{}k", e.vbitrate));
        }
        if e.vfps > 0.0 {
            push(&mut a, "-r");
            push(&mut a, &e.vfps.to_string());
        }
        match (e.vwidth, e.vheight) {
            (0, 0) => {}
            (w, h) if w > 0 && h > 0 => {
                push(&mut a, "-s");
                push(&mut a, &format!("{w}x{h}"));
                push(&mut a, "-aspect");
                push(&mut a, &format!("{w}:{h}"));
            }
            // One dimension: scale to it and let ffmpeg pick the other one. "-2" keeps the
            // aspect ratio and rounds to an even number, which libx264 with yuv420p requires
            // ("-1" can give an odd height and the encoder then fails to open). Skipped when
            // vfilter already sets a video filter: ffmpeg would keep only the last -vf.
            (w, h) if !has_video_filter(&e.vfilter) => {
                push(&mut a, "-vf");
                if w > 0 {
                    push(&mut a, &format!("scale={w}:-2"));
                } else {
                    push(&mut a, &format!("scale=-2:{h}"));
                }
            }
            _ => {}
        }
        if e.vthreads > 0 {
            push(&mut a, "-threads");
            push(&mut a, &e.vthreads.to_string());
        }
        if !e.vprofile.is_empty() {
            push(&mut a, "-profile:v");
            push(&mut a, &e.vprofile);
        }
        if !e.vpreset.is_empty() {
            push(&mut a, "-preset");
            push(&mut a, &e.vpreset);
        }
        for p in e.vparams.iter().filter(|p| !p.is_empty()) {
            push(&mut a, p);
        }
    }

    if let Codec::Drop = e.acodec.0 {
        push(&mut a, "-an");
    } else {
        push(&mut a, "-acodec");
        if let Codec::Encode(name) = &e.acodec.0 {
            push(&mut a, name);
            if e.abitrate > 0 {
                push(&mut a, "-b:a");
                push(&mut a, &format!("{}k", e.abitrate));
            }
            if e.asample_rate > 0 {
                push(&mut a, "-ar");
                push(&mut a, &e.asample_rate.to_string());
            }
            if e.achannels > 0 {
                push(&mut a, "-ac");
                push(&mut a, &e.achannels.to_string());
            }
            for p in e.aparams.iter().filter(|p| !p.is_empty()) {
                push(&mut a, p);
            }
        } else {
            push(&mut a, "copy");
            // Copying audio keeps only `-bsf:a aac_adtstoasc`, as SRS does: AAC copied from an
            // ADTS source (MPEG-TS, HLS, raw .aac) into FLV needs that bitstream filter, while
            // every other audio option is an encoder option that "copy" cannot honour.
            let mut it = e.aparams.iter();
            while let Some(p) = it.next() {
                if p == "-bsf:a" {
                    if let Some(v) = it.next() {
                        if v == "aac_adtstoasc" {
                            push(&mut a, p);
                            push(&mut a, v);
                        }
                    }
                }
            }
        }
    }

    push(&mut a, "-f");
    push(&mut a, "flv");
    push(&mut a, "-y");
    push(&mut a, output);
    a
}

fn has_video_filter(vfilter: &[String]) -> bool {
    vfilter
        .iter()
        .any(|p| p == "-vf" || p == "-filter:v" || p == "-filter_complex")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AudioCodec, VideoCodec};

    fn v(text: &str) -> VideoCodec {
        VideoCodec::try_from(text.to_string()).expect("a valid test vcodec")
    }

    fn a(text: &str) -> AudioCodec {
        AudioCodec::try_from(text.to_string()).expect("a valid test acodec")
    }

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    const IN: &str = "rtmp://127.0.0.1:1935/live/s?vhost=v";
    const OUT: &str = "rtmp://127.0.0.1:1935/live/s_sd?vhost=v";

    fn full() -> EngineConfig {
        EngineConfig {
            name: "sd".into(),
            enabled: true,
            vcodec: v("libx264"),
            vbitrate: 800,
            vfps: 25.0,
            vwidth: 640,
            vheight: 360,
            vthreads: 2,
            vprofile: "main".into(),
            vpreset: "medium".into(),
            vparams: s(&["-g", "50", ""]),
            vfilter: s(&["-i", "logo.png", "-filter_complex", "overlay=10:10"]),
            acodec: a("aac"),
            abitrate: 64,
            asample_rate: 44100,
            achannels: 2,
            aparams: s(&["-strict", "-2"]),
            output: String::new(),
        }
    }

    #[test]
    fn builds_every_option_in_srs_order() {
        #[rustfmt::skip]
        let want = [
            "-f", "flv", "-i", IN,
            "-i", "logo.png", "-filter_complex", "overlay=10:10",
            "-vcodec", "libx264", "-b:v", "800k", "-r", "25", "-s", "640x360", "-aspect", "640:360",
            "-threads", "2", "-profile:v", "main", "-preset", "medium", "-g", "50",
            "-acodec", "aac", "-b:a", "64k", "-ar", "44100", "-ac", "2", "-strict", "-2",
            "-f", "flv", "-y", OUT,
        ];
        assert_eq!(engine_args(&[], IN, &full(), OUT), s(&want));
    }

    #[test]
    fn copy_skips_encoder_options_but_keeps_aac_adtstoasc() {
        let e = EngineConfig {
            vcodec: v("copy"),
            acodec: a("copy"),
            aparams: s(&["-ar", "48000", "-bsf:a", "aac_adtstoasc", "-bsf:a", "other"]),
            ..full()
        };
        #[rustfmt::skip]
        let want = [
            "-f", "flv", "-i", IN,
            "-i", "logo.png", "-filter_complex", "overlay=10:10",
            "-vcodec", "copy", "-acodec", "copy", "-bsf:a", "aac_adtstoasc",
            "-f", "flv", "-y", OUT,
        ];
        assert_eq!(engine_args(&[], IN, &e, OUT), s(&want));
    }

    #[test]
    fn vn_and_an_drop_the_track_and_its_options() {
        let e = EngineConfig {
            vcodec: v("vn"),
            acodec: a("an"),
            vfilter: vec![],
            ..full()
        };
        let want = ["-f", "flv", "-i", IN, "-vn", "-an", "-f", "flv", "-y", OUT];
        assert_eq!(engine_args(&[], IN, &e, OUT), s(&want));
    }

    #[test]
    fn non_rtmp_input_gets_no_input_format_and_keeps_iparams_first() {
        let e = EngineConfig::default();
        #[rustfmt::skip]
        let want = [
            "-re", "-stream_loop", "-1", "-i", "/data/a.mp4",
            "-vcodec", "copy", "-acodec", "copy", "-f", "flv", "-y", OUT,
        ];
        let got = engine_args(&["-re", "-stream_loop", "-1"], "/data/a.mp4", &e, OUT);
        assert_eq!(got, s(&want));
    }

    #[test]
    fn one_dimension_becomes_an_even_scale_filter_unless_a_filter_is_set() {
        let only_w = EngineConfig {
            vcodec: v("libx264"),
            vwidth: 640,
            ..EngineConfig::default()
        };
        #[rustfmt::skip]
        let want = [
            "-f", "flv", "-i", IN, "-vcodec", "libx264", "-vf", "scale=640:-2",
            "-acodec", "copy", "-f", "flv", "-y", OUT,
        ];
        assert_eq!(engine_args(&[], IN, &only_w, OUT), s(&want));
        let only_h = EngineConfig {
            vwidth: 0,
            vheight: 360,
            ..only_w.clone()
        };
        assert!(engine_args(&[], IN, &only_h, OUT).contains(&"scale=-2:360".to_string()));
        let with_filter = EngineConfig {
            vfilter: s(&["-vf", "hflip"]),
            ..only_w
        };
        #[rustfmt::skip]
        let want = [
            "-f", "flv", "-i", IN, "-vf", "hflip", "-vcodec", "libx264",
            "-acodec", "copy", "-f", "flv", "-y", OUT,
        ];
        assert_eq!(engine_args(&[], IN, &with_filter, OUT), s(&want));
    }

    #[test]
    fn fractional_frame_rate_is_kept() {
        let e = EngineConfig {
            vcodec: v("libx264"),
            vfps: 29.97,
            ..EngineConfig::default()
        };
        let a = engine_args(&[], IN, &e, OUT);
        let i = a.iter().position(|x| x == "-r").expect("-r given");
        assert_eq!(a[i + 1], "29.97");
    }
}
