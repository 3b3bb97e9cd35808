//! Installs the Prometheus recorder and builds what `GET /metrics` serves:
//! the recorded metrics, the broker-state gauges and the process metrics.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use strata_broker::http::RenderMetrics;
use strata_broker::Broker;
use tokio::sync::watch;

use crate::process_metrics;

/// Histogram buckets for durations, in seconds: 100 µs to 30 s.
const SECONDS_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];
const ENTRY_BUCKETS: &[f64] = &[
    1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0, 4096.0,
];
const BYTE_BUCKETS: &[f64] = &[
    1024.0,
    4096.0,
    16384.0,
    65536.0,
    262_144.0,
    1_048_576.0,
    4_194_304.0,
    8_388_608.0,
    16_777_216.0,
];
/// How often recorded histogram samples are folded into their buckets;
/// this bounds the samples held between scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

/// Installs the process-wide recorder and registers every metric.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_string()), SECONDS_BUCKETS)?
        .set_buckets_for_metric(
            Matcher::Full(strata_log::metrics::WAL_GROUP_COMMIT_ENTRIES.to_string()),
            ENTRY_BUCKETS,
        )?
        .set_buckets_for_metric(
            Matcher::Full(strata_log::metrics::WAL_GROUP_COMMIT_BYTES.to_string()),
            BYTE_BUCKETS,
        )?
        .install_recorder()
        .context("cannot install the metrics recorder")?;
    strata_log::metrics::describe();
    strata_broker::metrics::describe();
    Ok(handle)
}

/// Folds histogram samples into buckets until shutdown.
pub async fn upkeep(handle: PrometheusHandle, mut shutdown: watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(UPKEEP_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => handle.run_upkeep(),
            _ = shutdown.changed() => return,
        }
    }
}

/// What `GET /metrics` answers.
pub fn renderer(handle: PrometheusHandle, broker: Arc<Broker>) -> RenderMetrics {
    Arc::new(move || {
        let state = strata_broker::metrics::scrape::render(&broker);
        let mut out = handle.render();
        out.push_str(&state);
        out.push_str(&process_metrics::render());
        out
    })
}
