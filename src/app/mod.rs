//! Everything that does I/O on tokio.
