//! Everything that does I/O on tokio.
pub mod log;
