//! Process-level services every concern uses: logging, daemon, memory trimming, the client
//! table, path templates, /proc readings, JSON values and HTTP bodies.

pub mod admission;
pub mod body;
pub mod daemon;
pub mod dns;
pub mod file_thread;
pub mod json;
pub mod listen;
pub mod log;
pub mod log_rotate;
pub mod memory;
pub mod merge;
pub mod output_status;
pub mod privilege;
pub mod procfs;
pub mod quiet;
pub mod ready;
pub mod stats;
pub mod system;
pub mod tasks;
pub mod template;
pub mod writev;
