//! Why an RTMP connection ended (DESIGN.md §3 `ConnError`): the peer, the network, the
//! protocol, a deadline, the API or the server, each logged at its own level and counted by
//! reason in `/metrics` (`srsd_connection_closes_total{reason}`).

use std::fmt;
use std::io;

/// The end of one connection.
#[derive(Debug)]
pub enum ConnError {
    /// The peer hung up (EOF, reset, broken pipe, aborted): how players and encoders stop.
    Peer(io::Error),
    /// A read or write failed otherwise.
    Io(io::Error),
    /// The peer broke the protocol (handshake, chunk stream, a command out of place).
    Protocol(String),
    /// A deadline passed: handshake, idle, a silent publisher, a stalled write.
    Timeout(String),
    /// Kicked by the HTTP API (`DELETE /api/v1/clients/ID`).
    Kicked,
    /// The server is quitting.
    Shutdown,
}

/// Every reason a connection ends, as `/metrics` labels them (see [`ConnError::reason`]);
/// `closed` is the server's own clean end (after refusing a request, or a bandwidth check).
pub const CLOSE_REASONS: [&str; 7] = [
    "closed", "peer", "io", "protocol", "timeout", "kicked", "shutdown",
];

impl ConnError {
    /// The `/metrics` label, one of [`CLOSE_REASONS`].
    pub fn reason(&self) -> &'static str {
        match self {
            ConnError::Peer(_) => "peer",
            ConnError::Io(_) => "io",
            ConnError::Protocol(_) => "protocol",
            ConnError::Timeout(_) => "timeout",
            ConnError::Kicked => "kicked",
            ConnError::Shutdown => "shutdown",
        }
    }

    /// Whether it is how connections ordinarily end (logged as information, not a warning):
    /// a peer that hangs up, a kick, a quit.
    pub fn is_ordinary(&self) -> bool {
        matches!(
            self,
            ConnError::Peer(_) | ConnError::Kicked | ConnError::Shutdown
        )
    }
}

/// Sorts an I/O error: a peer hanging up is [`ConnError::Peer`], a timeout
/// [`ConnError::Timeout`], bad bytes [`ConnError::Protocol`], the rest [`ConnError::Io`].
impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> ConnError {
        match e.kind() {
            io::ErrorKind::ConnectionReset
            | io::ErrorKind::BrokenPipe
            | io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionAborted => ConnError::Peer(e),
            io::ErrorKind::TimedOut => ConnError::Timeout(e.to_string()),
            io::ErrorKind::InvalidData => ConnError::Protocol(e.to_string()),
            _ => ConnError::Io(e),
        }
    }
}

impl fmt::Display for ConnError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnError::Peer(e) => write!(f, "peer left: {e}"),
            ConnError::Io(e) => write!(f, "{e}"),
            ConnError::Protocol(why) => write!(f, "protocol error: {why}"),
            ConnError::Timeout(why) => write!(f, "timeout: {why}"),
            ConnError::Kicked => f.write_str("kicked by the HTTP API"),
            ConnError::Shutdown => f.write_str("server quitting"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_sorted_by_who_is_to_blame() {
        let table = [
            (io::ErrorKind::ConnectionReset, "peer", true),
            (io::ErrorKind::BrokenPipe, "peer", true),
            (io::ErrorKind::UnexpectedEof, "peer", true),
            (io::ErrorKind::TimedOut, "timeout", false),
            (io::ErrorKind::InvalidData, "protocol", false),
            (io::ErrorKind::PermissionDenied, "io", false),
        ];
        for (kind, reason, ordinary) in table {
            let e = ConnError::from(io::Error::new(kind, "x"));
            assert_eq!(e.reason(), reason, "{kind:?}");
            assert_eq!(e.is_ordinary(), ordinary, "{kind:?}");
            assert!(CLOSE_REASONS.contains(&e.reason()));
        }
        for e in [ConnError::Kicked, ConnError::Shutdown] {
            assert!(e.is_ordinary() && CLOSE_REASONS.contains(&e.reason()));
        }
    }
}
