//! Links to other servers: edge pull/push from/to an origin (with failover and token
//! traverse) and forward to other servers.

pub mod edge;
pub mod forward;
