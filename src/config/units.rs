//! Durations as the config writes them: SRS's units (seconds for `hls.fragment`,
//! `play.queue_length`, `dvr.duration`...; milliseconds for `play.mw_latency`, the publish
//! timeouts, `http_hooks.timeout`), typed at load so that no code converts a bare number and a
//! value the server could not apply (negative, NaN, infinite, beyond [`MAX`]) fails `srsd -t`
//! with `file:line:col`.

use serde::Deserialize;
use std::fmt;
use std::time::Duration;

/// The longest duration a key accepts: ten years, far beyond any useful value, and small
/// enough that every millisecond count fits an `i64` and `Instant + d` cannot overflow.
pub const MAX: Duration = Duration::from_secs(10 * 365 * 86_400);

/// A duration written as a number of seconds (`10`, `0.5`). Errors at load: not a finite
/// number, negative, or over [`MAX`].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Deserialize)]
#[serde(try_from = "f64")]
pub struct Seconds(Duration);

/// A duration written as a whole number of milliseconds (`350`). Errors at load: negative or
/// over `u32::MAX` (the TOML type check), nothing else.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default, Deserialize)]
#[serde(try_from = "i64")]
pub struct Millis(Duration);

impl Seconds {
    /// `secs` seconds; for defaults and tests (whole seconds cannot be invalid).
    pub const fn from_secs(secs: u64) -> Seconds {
        Seconds(Duration::from_secs(secs))
    }

    /// `ms` milliseconds (defaults such as `queue_length = 0.5`).
    pub const fn from_millis(ms: u64) -> Seconds {
        Seconds(Duration::from_millis(ms))
    }

    pub const fn get(self) -> Duration {
        self.0
    }

    /// As written: seconds, fractional.
    pub fn as_secs_f64(self) -> f64 {
        self.0.as_secs_f64()
    }

    /// Whole milliseconds, for the hub's and muxers' millisecond timelines.
    pub fn as_millis_i64(self) -> i64 {
        // At most MAX: ~3.2e11 ms, well inside i64.
        self.0.as_millis() as i64
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl Millis {
    pub const fn from_millis(ms: u64) -> Millis {
        Millis(Duration::from_millis(ms))
    }

    pub const fn get(self) -> Duration {
        self.0
    }

    /// Whole milliseconds, as written.
    pub fn as_millis(self) -> u64 {
        self.0.as_millis() as u64
    }

    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }
}

impl TryFrom<f64> for Seconds {
    type Error = String;

    fn try_from(secs: f64) -> Result<Seconds, String> {
        if !secs.is_finite() || secs < 0.0 {
            return Err(format!("{secs} is not a number of seconds >= 0"));
        }
        if secs > MAX.as_secs_f64() {
            return Err(format!("{secs} s is over the limit of {} s", MAX.as_secs()));
        }
        Ok(Seconds(Duration::from_secs_f64(secs)))
    }
}

impl TryFrom<i64> for Millis {
    type Error = String;

    fn try_from(ms: i64) -> Result<Millis, String> {
        if ms < 0 {
            return Err(format!("{ms} is not a number of milliseconds >= 0"));
        }
        let d = Duration::from_millis(ms as u64);
        if d > MAX {
            return Err(format!(
                "{ms} ms is over the limit of {} ms",
                MAX.as_millis()
            ));
        }
        Ok(Millis(d))
    }
}

impl fmt::Display for Seconds {
    /// As the config writes it: `10`, `0.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_secs_f64())
    }
}

impl fmt::Display for Millis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_millis())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_and_millis_take_what_the_server_can_apply() {
        assert_eq!(
            Seconds::try_from(0.5).unwrap().get(),
            Duration::from_millis(500)
        );
        assert_eq!(Seconds::try_from(10.0).unwrap().as_millis_i64(), 10_000);
        assert_eq!(Seconds::try_from(0.0).unwrap(), Seconds::default());
        for bad in [-1.0, f64::NAN, f64::INFINITY, 1e12] {
            assert!(Seconds::try_from(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Millis::try_from(350).unwrap().get(),
            Duration::from_millis(350)
        );
        assert!(Millis::try_from(-1).is_err());
        assert!(Millis::try_from(i64::MAX).is_err());
        assert_eq!(Seconds::from_millis(1500).to_string(), "1.5");
        assert_eq!(Millis::from_millis(350).to_string(), "350");
    }
}
