//! `strata serve`: recover the data dir, bind the listeners, serve until
//! SIGTERM or SIGINT, then finish in-flight requests and make everything
//! durable before exiting.

use std::fs::File;
use std::io::{IsTerminal, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use strata_broker::{Broker, BrokerOptions};
use strata_groups::{CoordinatorOptions, GroupCoordinator};
use strata_log::{LogStore, StoreOptions};
use strata_txn::TransactionCoordinator;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tracing::info;
use tracing_subscriber::EnvFilter;

use crate::config::{parse_host_port, Config, ServeArgs};
use crate::metrics_endpoint;

pub fn main(args: &ServeArgs) -> anyhow::Result<()> {
    let config = Config::resolve(args)?;
    if args.print_config {
        let text = toml::to_string_pretty(&config).context("cannot render the configuration")?;
        std::io::stdout().write_all(text.as_bytes())?;
        return Ok(());
    }
    init_logging(&config.log_format, &config.log_level);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("strata-io")
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(run(config))
}

/// `RUST_LOG`, when set, wins over the configured level.
fn init_logging(format: &str, level: &str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}

/// Takes the data dir's lock file, so two brokers (or a repair tool) never
/// share a data dir. Held until the process exits.
fn lock_data_dir(config: &Config) -> anyhow::Result<File> {
    std::fs::create_dir_all(&config.data_dir)
        .with_context(|| format!("cannot create data dir {}", config.data_dir.display()))?;
    let path = config.data_dir.join("LOCK");
    let file = File::create(&path).with_context(|| format!("cannot open {}", path.display()))?;
    file.try_lock().with_context(|| {
        format!(
            "data dir {} is in use by another process",
            config.data_dir.display()
        )
    })?;
    Ok(file)
}

/// The broker's settings that stand in for Kafka's topic config defaults,
/// where they differ from those (DescribeConfigs then reports them as
/// the broker's).
fn topic_defaults(config: &Config) -> std::collections::BTreeMap<String, String> {
    [
        ("retention.ms", config.log_retention_ms.to_string()),
        ("retention.bytes", config.log_retention_bytes.to_string()),
    ]
    .into_iter()
    .filter(|(name, value)| strata_log::config::lookup(name).is_none_or(|key| key.default != value))
    .map(|(name, value)| (name.to_string(), value))
    .collect()
}

/// WAL compaction's settings from the broker's.
pub(crate) fn wal_compaction(config: &Config) -> strata_log::wal_compaction::CompactionOptions {
    strata_log::wal_compaction::CompactionOptions {
        policy: strata_log::wal_compaction::CompactionPolicy {
            live_ratio: f64::from(config.wal_compaction_live_percent) / 100.0,
            dead_bytes: config.wal_compaction_dead_bytes,
            max_age_ms: config.wal_compaction_max_age_ms,
            max_output_bytes: config.wal_segment_bytes,
        },
        bytes_per_sec: config.wal_compaction_bytes_per_sec,
        check_interval: Duration::from_millis(config.wal_compaction_check_interval_ms),
    }
}

async fn run(config: Config) -> anyhow::Result<()> {
    let _lock = lock_data_dir(&config)?;
    let metrics = metrics_endpoint::install()?;
    let mut store_options = StoreOptions::new(config.data_dir.clone());
    store_options.wal_segment_bytes = config.wal_segment_bytes;
    store_options.wal_direct_io = config.wal_direct_io;
    store_options.wal_cache_bytes = config.wal_cache_bytes;
    store_options.wal_read_ahead_bytes = config.wal_read_ahead_bytes;
    store_options.wal_index_cache_bytes = config.wal_index_cache_bytes;
    store_options.topic_defaults = topic_defaults(&config);
    store_options.retention_check_interval =
        Duration::from_millis(config.log_retention_check_interval_ms);
    store_options.wal_compaction = wal_compaction(&config);
    if config.wal_compaction_nice > 0 {
        crate::thread_priority::set_nice(config.wal_compaction_nice);
        store_options.compaction_thread_start = Some(crate::thread_priority::lower);
    }
    let (store, report) = tokio::task::spawn_blocking(move || LogStore::open(&store_options))
        .await
        .context("recovery task failed")?
        .context("cannot open the data dir")?;

    let listen: SocketAddr = config.listen.parse()?;
    let listener = TcpListener::bind(listen)
        .await
        .with_context(|| format!("cannot listen on {listen}"))?;
    let bound = listener.local_addr()?;
    let http_listener = TcpListener::bind(config.http_listen.parse::<SocketAddr>()?)
        .await
        .with_context(|| format!("cannot listen on {}", config.http_listen))?;
    let advertised = match &config.advertised_listener {
        Some(a) => parse_host_port("advertised_listener", a)?,
        None => parse_host_port("listen", &bound.to_string())?,
    };
    info!(
        version = env!("CARGO_PKG_VERSION"),
        data_dir = %config.data_dir.display(),
        kafka = %bound,
        http = %http_listener.local_addr()?,
        advertised = %format!("{}:{}", advertised.host, advertised.port),
        durability = "fsync before ack (group commit)",
        "strata started"
    );
    report.record_metrics();
    let damaged: Vec<String> = report
        .damaged
        .iter()
        .map(|d| format!("{}@{}+{}", d.file.display(), d.position, d.length))
        .collect();
    let checked = report.entries_recovered + report.damaged.len() as u64;
    let corruption_rate = if checked == 0 {
        0.0
    } else {
        report.damaged.len() as f64 / checked as f64
    };
    info!(
        wal_segments = report.wal_segments,
        entries_recovered = report.entries_recovered,
        entries_already_sealed = report.entries_already_sealed,
        damaged_entries = report.damaged.len(),
        damaged = ?damaged,
        corruption_rate = %format!("{:.6}", corruption_rate),
        torn_tails = report.torn_tails.len(),
        millis = report.duration.as_millis() as u64,
        "recovery summary"
    );

    let options = BrokerOptions {
        advertised_host: advertised.host,
        advertised_port: i32::from(advertised.port),
        default_partitions: config.default_partitions,
        auto_create_topics: config.auto_create_topics,
        max_request_bytes: config.max_request_bytes,
        fetch_memory_bytes: config.fetch_memory_bytes,
        max_connections: config.max_connections,
        ..BrokerOptions::default()
    };
    let groups_store = Arc::clone(&store);
    let group_options = CoordinatorOptions {
        initial_rebalance_delay: Duration::from_millis(config.group_initial_rebalance_delay_ms),
        offsets_retention: Duration::from_secs(config.offsets_retention_minutes.saturating_mul(60)),
        min_session_timeout: Duration::from_millis(config.group_min_session_timeout_ms),
        max_session_timeout: Duration::from_millis(config.group_max_session_timeout_ms),
        ..CoordinatorOptions::default()
    };
    let groups =
        tokio::task::spawn_blocking(move || GroupCoordinator::open(groups_store, group_options))
            .await
            .context("group coordinator task failed")?
            .context("cannot restore committed offsets")?;
    let txn_store = Arc::clone(&store);
    let txn_groups = Arc::clone(&groups);
    let txns =
        tokio::task::spawn_blocking(move || TransactionCoordinator::open(txn_store, txn_groups))
            .await
            .context("transaction coordinator task failed")?
            .context("cannot restore transaction states")?;
    // Internal topics of an older data dir take Kafka's record layout
    // before anything is served.
    groups
        .upgrade_records()
        .await
        .context("cannot rewrite __consumer_offsets in Kafka's record layout")?;
    txns.upgrade_records()
        .await
        .context("cannot rewrite __transaction_state in Kafka's record layout")?;
    let broker = Broker::new(
        options,
        Arc::clone(&store),
        Arc::clone(&groups),
        Arc::clone(&txns),
    );
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let clock = tokio::spawn(groups.run_clock(shutdown_rx.clone()));
    let txn_clock = tokio::spawn(txns.run_clock(shutdown_rx.clone()));
    let ready = Arc::new(AtomicBool::new(false));
    let upkeep = tokio::spawn(metrics_endpoint::upkeep(
        metrics.clone(),
        shutdown_rx.clone(),
    ));
    let readiness = {
        let (ready, store) = (Arc::clone(&ready), Arc::clone(&store));
        Arc::new(move || {
            if !ready.load(Ordering::Acquire) {
                return Err("starting".to_string());
            }
            store.wal_health().problem().map_or(Ok(()), Err)
        })
    };
    let pause_compaction = {
        let store = Arc::clone(&store);
        Arc::new(move |paused| store.pause_compaction(paused))
    };
    let endpoints = strata_broker::http::Endpoints {
        ready: readiness,
        metrics: metrics_endpoint::renderer(metrics, Arc::clone(&broker)),
        pause_compaction,
    };
    let http = tokio::spawn(strata_broker::http::run(
        http_listener,
        endpoints,
        shutdown_rx.clone(),
    ));
    let kafka = tokio::spawn(strata_broker::server::run(broker, listener, shutdown_rx));
    ready.store(true, Ordering::Release);

    wait_for_signal().await?;
    info!("shutting down: finishing in-flight requests");
    let _ = shutdown_tx.send(true);
    let _ = kafka.await;
    let _ = http.await;
    let _ = upkeep.await;
    let _ = clock.await;
    let _ = txn_clock.await;
    tokio::task::spawn_blocking(move || store.shutdown())
        .await
        .context("storage shutdown failed")?;
    info!("stopped; all acknowledged data is durable");
    Ok(())
}

async fn wait_for_signal() -> anyhow::Result<()> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
    Ok(())
}
