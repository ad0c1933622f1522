//! Checks of `[log] max_size` / `keep` (the size-capped rotation srsd does itself where no
//! logrotate runs, e.g. Android).

use super::LogConfig;

/// Smallest `max_size`: below it a burst of lines would rotate the file many times a second.
pub const MIN_LOG_MAX_SIZE: u64 = 64 * 1024;

impl LogConfig {
    /// (key, message) of the first problem with the rotation keys.
    pub(crate) fn check_rotation(&self) -> Result<(), (&'static str, String)> {
        if self.max_size != 0 && self.max_size < MIN_LOG_MAX_SIZE {
            return Err((
                "max_size",
                format!(
                    "log.max_size: {} bytes is under the minimum {MIN_LOG_MAX_SIZE} (0 = never rotate)",
                    self.max_size
                ),
            ));
        }
        if !(1..=20).contains(&self.keep) {
            return Err(("keep", format!("log.keep: {} is not in 1..=20", self.keep)));
        }
        Ok(())
    }
}
