//! Strata's Kafka front end: the TCP listener, one task per connection, and
//! a handler per Kafka API, plus the small HTTP listener for health checks.
//!
//! - [`server`]: accepting connections and shutting down cleanly.
//! - [`connection`]: reading frames, answering in order, pipelining.
//! - [`handlers`]: one module per Kafka API (decode → act → answer).
//! - [`outgoing`]: encoded responses as pieces, written with one vectored write.
//! - [`peer`]: where a connection comes from.
//! - [`fetch_memory`]: the broker-wide budget for unsent fetch answers.
//! - [`errors`]: the one place log errors become Kafka error codes.
//! - [`http`]: `GET /health`, `GET /ready` and `GET /metrics`.
//! - [`metrics`]: request, connection and traffic metrics, and the state
//!   gauges read when `/metrics` is scraped.
//!
//! Invariants: nothing a client sends can panic a task or buffer more than
//! the request size limit per connection; unsent fetch answers together hold
//! at most the fetch memory budget (beyond it only by one batch larger than
//! the whole budget); connections are capped; a bad frame closes only its
//! own connection; responses on a connection go out in request order.

pub mod connection;
pub mod errors;
pub mod fetch_memory;
pub mod handlers;
pub mod http;
pub mod metrics;
pub mod outgoing;
pub mod peer;
pub mod server;

use std::sync::Arc;

use strata_groups::GroupCoordinator;
use strata_log::LogStore;
use strata_txn::TransactionCoordinator;

/// What the broker says about itself and how it treats clients.
#[derive(Debug, Clone)]
pub struct BrokerOptions {
    pub node_id: i32,
    pub cluster_id: String,
    /// Host and port clients are told to connect to.
    pub advertised_host: String,
    pub advertised_port: i32,
    pub default_partitions: i32,
    pub auto_create_topics: bool,
    /// Requests larger than this are refused before they are buffered.
    pub max_request_bytes: usize,
    /// Requests one connection may have in flight before reading pauses.
    pub max_in_flight: usize,
    /// Record bytes all unsent fetch answers together may hold.
    pub fetch_memory_bytes: usize,
    /// Client connections open at once; more are closed as they arrive.
    pub max_connections: usize,
}

impl Default for BrokerOptions {
    fn default() -> Self {
        BrokerOptions {
            node_id: 0,
            cluster_id: "strata-cluster".to_string(),
            advertised_host: "127.0.0.1".to_string(),
            advertised_port: 9092,
            default_partitions: 1,
            auto_create_topics: true,
            max_request_bytes: 100 * 1024 * 1024,
            max_in_flight: 64,
            fetch_memory_bytes: 256 * 1024 * 1024,
            max_connections: 10_000,
        }
    }
}

/// Everything a request handler needs.
#[derive(Debug)]
pub struct Broker {
    pub options: BrokerOptions,
    pub store: Arc<LogStore>,
    pub groups: Arc<GroupCoordinator>,
    pub txns: Arc<TransactionCoordinator>,
    /// Per-topic metric labels, capped in number.
    pub topic_labels: metrics::TopicLabels,
    /// Bytes held by fetch answers not yet sent.
    pub fetch_memory: fetch_memory::FetchMemory,
}

impl Broker {
    pub fn new(
        options: BrokerOptions,
        store: Arc<LogStore>,
        groups: Arc<GroupCoordinator>,
        txns: Arc<TransactionCoordinator>,
    ) -> Arc<Self> {
        Arc::new(Broker {
            fetch_memory: fetch_memory::FetchMemory::new(options.fetch_memory_bytes),
            options,
            store,
            groups,
            txns,
            topic_labels: metrics::TopicLabels::default(),
        })
    }
}
