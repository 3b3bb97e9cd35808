//! The Kafka listener: accepts connections until shutdown, then waits for
//! the open ones to finish their in-flight requests.

use std::sync::Arc;
use std::time::Duration;

use strata_log::log_limit::LogLimit;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tracing::{debug, warn};

use crate::{connection, metrics, Broker};

static ACCEPT_FAILED: LogLimit = LogLimit::new(Duration::from_secs(10));
static AT_CONNECTION_CAP: LogLimit = LogLimit::new(Duration::from_secs(10));

/// How long open connections get to finish once shutdown starts.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves Kafka clients on `listener` until `shutdown` turns true.
pub async fn run(broker: Arc<Broker>, listener: TcpListener, mut shutdown: watch::Receiver<bool>) {
    let mut connections = JoinSet::new();
    // One slot per open connection, given back when its task ends.
    let slots = Arc::new(Semaphore::new(broker.options.max_connections.max(1)));
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let Ok(slot) = Arc::clone(&slots).try_acquire_owned() else {
                        metrics::count_connection_rejected();
                        if let Some(suppressed) = AT_CONNECTION_CAP.admit() {
                            warn!(%peer, max_connections = broker.options.max_connections, suppressed, "connection closed on arrival: max_connections are open");
                        }
                        drop(stream);
                        continue;
                    };
                    debug!(%peer, "connection opened");
                    let _ = stream.set_nodelay(true);
                    let open = metrics::ConnectionGuard::open();
                    let serve = connection::serve(Arc::clone(&broker), stream, peer, shutdown.clone());
                    connections.spawn(async move {
                        serve.await;
                        drop(open);
                        drop(slot);
                    });
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off, keep serving.
                    if let Some(suppressed) = ACCEPT_FAILED.admit() {
                        warn!(error = %e, suppressed, "accept failed");
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            _ = shutdown.changed() => break,
        }
    }
    drop(listener);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        warn!("connections did not finish within the drain timeout");
        connections.abort_all();
    }
}
