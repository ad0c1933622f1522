//! RTMP: handshake, chunk stream, messages, commands and the server/client session machines.

pub mod chunk;
pub mod command;
pub mod handshake;
pub mod message;
pub mod session;
pub mod url;
