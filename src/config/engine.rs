//! ffmpeg engines: `[[vhost.NAME.transcode]]` with its `engine` list, and `[[ingest]]`.

use super::*;

/// `[[vhost.NAME.transcode]]`: run ffmpeg on matching streams.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TranscodeConfig {
    pub enabled: bool,
    /// `""` = every stream of the vhost, `"app"` or `"app/stream"`.
    pub scope: String,
    /// The ffmpeg binary.
    pub ffmpeg: String,
    pub engine: Vec<EngineConfig>,
}

impl Default for TranscodeConfig {
    fn default() -> Self {
        TranscodeConfig {
            enabled: false,
            scope: String::new(),
            ffmpeg: "ffmpeg".to_string(),
            engine: Vec::new(),
        }
    }
}

/// One ffmpeg output of a transcode or ingest. Empty strings and zeros mean "not given to
/// ffmpeg". `vparams`, `vfilter` and `aparams` are extra ffmpeg arguments, in order (order
/// matters to ffmpeg, e.g. `["-i", "logo.png", "-filter_complex", "overlay=10:10"]`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    pub name: String,
    pub enabled: bool,
    /// `"libx264"` (any ffmpeg encoder), `"copy"`, or `"vn"` (no video).
    pub vcodec: VideoCodec,
    /// kbps.
    pub vbitrate: u32,
    pub vfps: f64,
    pub vwidth: u32,
    pub vheight: u32,
    pub vthreads: u32,
    pub vprofile: String,
    pub vpreset: String,
    pub vparams: Vec<String>,
    pub vfilter: Vec<String>,
    /// `"aac"`, `"libfdk_aac"` (any ffmpeg encoder), `"copy"`, or `"an"` (no audio).
    pub acodec: AudioCodec,
    /// kbps.
    pub abitrate: u32,
    pub asample_rate: u32,
    pub achannels: u32,
    pub aparams: Vec<String>,
    /// Output URL template.
    pub output: String,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            name: String::new(),
            enabled: false,
            vcodec: VideoCodec(Codec::Copy),
            vbitrate: 0,
            vfps: 0.0,
            vwidth: 0,
            vheight: 0,
            vthreads: 0,
            vprofile: String::new(),
            vpreset: String::new(),
            vparams: Vec::new(),
            vfilter: Vec::new(),
            acodec: AudioCodec(Codec::Copy),
            abitrate: 0,
            asample_rate: 0,
            achannels: 0,
            aparams: Vec::new(),
            output: "rtmp://127.0.0.1:[port]/[app]/[stream]_[engine]?vhost=[vhost]".to_string(),
        }
    }
}

/// What a transcode or ingest engine does with one track (SRS's `SRS_RTMP_ENCODER_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Codec {
    /// `"copy"`: remux without re-encoding.
    Copy,
    /// `"vn"` / `"an"`: leave the track out.
    Drop,
    /// An ffmpeg encoder name (`libx264`, `h264_v4l2m2m`, `aac`, `libfdk_aac`): one
    /// argument of letters, digits, `_`, `-` and `.`, as ffmpeg names them.
    Encode(String),
}

impl Codec {
    /// Parses `text` for a track whose "leave it out" word is `drop_word` (`vn` or `an`).
    fn parse(text: &str, drop_word: &str, other: &str) -> Result<Codec, String> {
        match text {
            "copy" => Ok(Codec::Copy),
            t if t == drop_word => Ok(Codec::Drop),
            t if t == other => Err(format!(
                "\"{t}\" is for the other track (want \"{drop_word}\")"
            )),
            "" => Err(format!(
                "empty: want \"copy\", \"{drop_word}\" or an ffmpeg encoder name"
            )),
            t if t.len() <= 64
                && t.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b)) =>
            {
                Ok(Codec::Encode(t.to_string()))
            }
            t => Err(format!(
                "\"{t}\" is not an ffmpeg encoder name (letters, digits, _ - . only)"
            )),
        }
    }
}

/// `vcodec` of an engine, parsed at load: `"copy"`, `"vn"` or an encoder.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct VideoCodec(pub Codec);

impl TryFrom<String> for VideoCodec {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Codec::parse(&text, "vn", "an").map(VideoCodec)
    }
}

/// `acodec` of an engine, parsed at load: `"copy"`, `"an"` or an encoder.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct AudioCodec(pub Codec);

impl TryFrom<String> for AudioCodec {
    type Error = String;
    fn try_from(text: String) -> Result<Self, String> {
        Codec::parse(&text, "an", "vn").map(AudioCodec)
    }
}

/// `[[ingest]]`: pull a file, stream or device into a local stream with ffmpeg.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct IngestConfig {
    pub id: String,
    pub vhost: String,
    pub enabled: bool,
    pub input: IngestInput,
    pub ffmpeg: String,
    pub engine: Vec<EngineConfig>,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            id: String::new(),
            vhost: DEFAULT_VHOST.to_string(),
            enabled: false,
            input: IngestInput::default(),
            ffmpeg: "ffmpeg".to_string(),
            engine: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum IngestInputType {
    /// A file, read at native speed and looped.
    #[default]
    File,
    /// A URL ffmpeg can read.
    Stream,
    /// A capture device.
    Device,
}

#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct IngestInput {
    #[serde(rename = "type")]
    pub kind: IngestInputType,
    pub url: String,
}
