//! Accepting connections: one loop per listener, counted against `max_connections`.

use super::log;
use crate::app::shared::Context;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::net::TcpListener;

/// Accepts connections until the task is aborted (at shutdown). Each counts against its
/// `budget` (over it, the socket is closed at once and counted as refused) and is served by
/// `serve` on its own task, under a new cid. `what` prefixes the log lines. A client that
/// cannot get a file descriptor is refused at once too (see [`super::admission::Spare`]).
pub async fn accept_counted<F, Fut>(
    ctx: Arc<Context>,
    listener: &TcpListener,
    what: &str,
    budget: super::admission::Budget,
    serve: F,
) where
    F: Fn(Arc<Context>, tokio::net::TcpStream, std::net::SocketAddr, u32) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut spare = super::admission::Spare::open();
    loop {
        let (socket, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) if super::admission::Spare::out_of_fds(&e) => {
                if spare.refuse_one(listener).await {
                    let n = ctx.refused.fetch_add(1, Ordering::Relaxed) + 1;
                    ctx.refusals.refused(what, format!("accept: {e}"), n);
                } else {
                    // No spare to give up: back off instead of spinning on the ready socket.
                    ::log::warn!("{what}accept: {e}; retrying in 100 ms");
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                continue;
            }
            Err(e) => {
                ::log::warn!("{what}accept failed: {e}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        let slot = match super::admission::Slot::take(&ctx, budget) {
            Ok(s) => s,
            Err(reason) => {
                let n = ctx.refused.fetch_add(1, Ordering::Relaxed) + 1;
                ctx.refusals
                    .refused(what, format!("{reason} (last from {peer})"), n);
                drop(socket);
                continue;
            }
        };
        let cid = log::next_cid();
        let served = serve(ctx.clone(), socket, peer, cid as u32);
        // Not an `async` block around `served`: see `tasks::Holding`.
        ctx.connection_tasks
            .spawn(log::with_cid(cid, super::tasks::Holding::new(served, slot)));
    }
}
