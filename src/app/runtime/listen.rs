//! Accepting connections: one loop per listener, counted against `max_connections`.

use super::log;
use crate::app::shared::Context;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Accepts connections until the task is aborted (at shutdown). Each counts against
/// `max_connections` (over it, the socket is closed at once and counted as refused) and is
/// served by `serve` on its own task, under a new cid. `what` prefixes the log lines.
pub async fn accept_counted<F, Fut>(ctx: Arc<Context>, listener: &TcpListener, what: &str, serve: F)
where
    F: Fn(Arc<Context>, tokio::net::TcpStream, std::net::SocketAddr, u32) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off instead of spinning.
                ::log::warn!("{what}accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let max = ctx.config().max_connections as usize;
        let open = ctx.connections.fetch_add(1, Ordering::AcqRel);
        if open >= max {
            ctx.connections.fetch_sub(1, Ordering::AcqRel);
            let n = ctx.refused.fetch_add(1, Ordering::Relaxed) + 1;
            ::log::warn!("refuse {what}{peer}: max_connections {max} reached ({n} refused so far)");
            drop(socket);
            continue;
        }
        let cid = log::next_cid();
        let served = serve(ctx.clone(), socket, peer, cid as u32);
        let ctx2 = ctx.clone();
        tokio::spawn(log::with_cid(cid, async move {
            served.await;
            ctx2.connections.fetch_sub(1, Ordering::AcqRel);
        }));
    }
}
