//! `strata-bench`: a load generator for any Kafka-compatible broker, built
//! on librdkafka, that also measures the machine's own limits so broker
//! figures can be read as ratios of what the hardware allows.
//!
//! Modes: `produce`, `consume`, `latency` (end-to-end at a fixed rate),
//! `mixed` (produce while a consumer group reads) and `limits`. Every run is
//! bounded by a message count and a time limit. With `--broker-pid` the
//! broker's CPU seconds per GB and peak RSS are reported; with `--limits`
//! (a file written by `limits --json`) each figure is also shown as a ratio
//! of its limit.

mod consume;
mod kafka;
mod limits;
mod produce;
mod report;
mod series;
mod stats;

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use serde::Serialize;

use crate::consume::ConsumeSpec;
use crate::kafka::Connection;
use crate::produce::ProduceSpec;
use crate::report::Report;

#[derive(Debug, Parser)]
#[command(
    name = "strata-bench",
    about = "Kafka load generator (librdkafka) with machine-limit measurements"
)]
struct Cli {
    /// Broker bootstrap address.
    #[arg(long, global = true, default_value = "127.0.0.1:9092")]
    bootstrap: String,
    /// Extra librdkafka property for every client, `key=value` (repeatable).
    #[arg(short = 'X', global = true, value_parser = kafka::property)]
    property: Vec<(String, String)>,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    /// The broker's process id: report its CPU seconds per GB and peak RSS.
    #[arg(long, global = true)]
    broker_pid: Option<u32>,
    /// Machine limits (from `limits --json`): print each figure as a ratio too.
    #[arg(long, global = true)]
    limits: Option<PathBuf>,
    /// A name for this run in the report.
    #[arg(long, global = true)]
    label: Option<String>,
    #[command(subcommand)]
    mode: Mode,
}

#[derive(Debug, clap::Args)]
struct LoadArgs {
    #[arg(long)]
    topic: String,
    /// Create the topic with this many partitions first (an existing topic is an error).
    #[arg(long)]
    partitions: Option<i32>,
    #[arg(long, default_value_t = 100_000)]
    messages: u64,
    /// Payload bytes per message (no key).
    #[arg(long, default_value_t = 1024)]
    size: usize,
    #[arg(long, default_value = "all")]
    acks: String,
    /// none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
    #[arg(long, default_value_t = 1)]
    producers: usize,
    /// Messages per second over all producers (default: full speed).
    #[arg(long)]
    rate: Option<f64>,
    #[arg(long, default_value_t = 5)]
    linger_ms: u32,
    /// Stop after this many seconds even if messages remain.
    #[arg(long, default_value_t = 120)]
    max_seconds: u64,
    /// Latency and mixed modes: latencies of the messages sent in the first
    /// seconds are not recorded (clients connecting, fetchers starting).
    #[arg(long, default_value_t = 1.0)]
    warmup_seconds: f64,
    /// Also report acks and send-to-ack latencies per interval of this
    /// many ms of ack time (`ack_series` in the JSON).
    #[arg(long)]
    series_ms: Option<u64>,
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Produce messages and report throughput and ack latency.
    Produce(LoadArgs),
    /// Read a topic back and report throughput.
    Consume {
        #[arg(long)]
        topic: String,
        /// Messages to read (default: everything in the topic now).
        #[arg(long)]
        messages: Option<u64>,
        #[arg(long, default_value_t = 1)]
        consumers: usize,
        /// Subscribe as a consumer group (default: assign partitions).
        #[arg(long)]
        group: Option<String>,
        #[arg(long, default_value_t = 120)]
        max_seconds: u64,
    },
    /// End-to-end latency (produce timestamp -> consume) at a fixed rate.
    Latency(LoadArgs),
    /// Produce while a consumer group reads the same topic.
    Mixed {
        #[command(flatten)]
        load: LoadArgs,
        #[arg(long, default_value_t = 3)]
        consumers: usize,
    },
    /// Measure the machine: fdatasync'd write bandwidth and latency in DIR,
    /// loopback TCP bandwidth.
    Limits {
        #[arg(long)]
        dir: PathBuf,
        #[arg(long, default_value_t = 256)]
        disk_mb: usize,
        #[arg(long, default_value_t = 2048)]
        loopback_mb: usize,
    },
}

/// Messages and bytes moved in some time.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub messages: u64,
    /// Payload bytes (value + key) of the messages counted.
    pub bytes: u64,
    pub seconds: f64,
    pub msgs_per_s: f64,
    /// 10^6 payload bytes per second.
    pub mb_per_s: f64,
    pub errors: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sent: Option<u64>,
}

impl Throughput {
    pub fn new(messages: u64, bytes: u64, seconds: f64, errors: u64) -> Self {
        let seconds = seconds.max(1e-9);
        Throughput {
            messages,
            bytes,
            seconds,
            msgs_per_s: messages as f64 / seconds,
            mb_per_s: bytes as f64 / 1e6 / seconds,
            errors,
            sent: None,
        }
    }

    pub fn with_sent(mut self, sent: u64) -> Self {
        self.sent = Some(sent);
        self
    }
}

fn produce_spec(args: &LoadArgs, stamp: bool, linger_ms: u32) -> ProduceSpec {
    let warmup = if stamp { args.warmup_seconds } else { 0.0 };
    ProduceSpec {
        topic: args.topic.clone(),
        messages: args.messages,
        size: args.size,
        acks: args.acks.clone(),
        compression: args.compression.clone(),
        producers: args.producers,
        rate: args.rate,
        max_duration: Duration::from_secs(args.max_seconds),
        linger_ms,
        stamp_payload: stamp,
        warmup: Duration::from_secs_f64(warmup),
        series_ms: args.series_ms,
    }
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let connection = Connection {
        bootstrap: cli.bootstrap.clone(),
        properties: cli.property.clone(),
    };
    let limits = match &cli.limits {
        Some(path) => Some(
            serde_json::from_str::<limits::LimitsReport>(&std::fs::read_to_string(path)?)?.limits,
        ),
        None => None,
    };
    let mut report = Report::new(cli.label.clone(), &cli.mode_name());
    if let Mode::Limits {
        dir,
        disk_mb,
        loopback_mb,
    } = &cli.mode
    {
        let measured = limits::measure(dir, *disk_mb, *loopback_mb)?;
        report.limits = Some(measured);
        return report.print(cli.json);
    }
    let watch = match cli.broker_pid {
        Some(pid) => Some(stats::ProcessWatch::start(pid)?),
        None => None,
    };
    let origin = Instant::now();
    let origin_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64() * 1000.0);
    report.origin_unix_ms = origin_unix_ms;
    match &cli.mode {
        Mode::Produce(args) => {
            report.describe_load(args);
            if let Some(p) = args.partitions {
                kafka::create_topic(&connection, &args.topic, p, false)?;
            }
            let outcome = produce::run(
                &connection,
                &produce_spec(args, false, args.linger_ms),
                origin,
            )?;
            report.add_produce(outcome);
        }
        Mode::Consume {
            topic,
            messages,
            consumers,
            group,
            max_seconds,
        } => {
            report.topic = Some(topic.clone());
            let expect = match messages {
                Some(m) => *m,
                None => consume::topic_extent(&connection, topic)?.0,
            };
            let spec = ConsumeSpec {
                topic: topic.clone(),
                consumers: *consumers,
                group: group.clone(),
                expect,
                max_duration: Duration::from_secs(*max_seconds),
                stamped: false,
                partitions: usize::try_from(consume::topic_extent(&connection, topic)?.1)
                    .unwrap_or(1),
            };
            let started = Instant::now();
            let outcome = consume::run(&connection, &spec, origin, &AtomicUsize::new(0))?;
            report.add_consume(outcome.throughput(started), &outcome.e2e_latency);
        }
        Mode::Latency(args) => {
            report.describe_load(args);
            kafka::create_topic(
                &connection,
                &args.topic,
                args.partitions.unwrap_or(1),
                false,
            )?;
            let (produced, consumed) = produce_and_consume(&connection, args, 1, None, origin)?;
            report.add_produce(produced);
            report.add_consume(consumed.0, &consumed.1);
        }
        Mode::Mixed { load, consumers } => {
            report.describe_load(load);
            kafka::create_topic(
                &connection,
                &load.topic,
                load.partitions.unwrap_or(1),
                false,
            )?;
            let group = format!("strata-bench-{}-{}", load.topic, std::process::id());
            let (produced, consumed) =
                produce_and_consume(&connection, load, *consumers, Some(group), origin)?;
            report.add_produce(produced);
            report.add_consume(consumed.0, &consumed.1);
        }
        Mode::Limits { .. } => {}
    }
    if let Some(watch) = watch {
        report.add_broker_cost(watch.finish()?);
    }
    if let Some(limits) = limits {
        report.add_ratios(&limits);
    }
    report.print(cli.json)
}

/// Producers and consumers at once on a fresh topic: producing starts once
/// the consumers hold every partition, and they read until every message
/// arrived. Consume throughput counts from the start of producing.
fn produce_and_consume(
    connection: &Connection,
    args: &LoadArgs,
    consumers: usize,
    group: Option<String>,
    origin: Instant,
) -> anyhow::Result<(
    produce::ProduceOutcome,
    (Throughput, hdrhistogram::Histogram<u64>),
)> {
    let partitions = usize::try_from(args.partitions.unwrap_or(1)).unwrap_or(1);
    let produce = produce_spec(args, true, args.linger_ms);
    let consume = ConsumeSpec {
        topic: args.topic.clone(),
        consumers,
        group,
        expect: args.messages,
        max_duration: Duration::from_secs(args.max_seconds + 30),
        stamped: true,
        partitions,
    };
    let assigned = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let reader = scope.spawn(|| consume::run(connection, &consume, origin, &assigned));
        let waiting = Instant::now();
        while assigned.load(Ordering::Relaxed) < partitions && !reader.is_finished() {
            if waiting.elapsed() > Duration::from_secs(60) {
                anyhow::bail!("consumers did not get every partition within 60 s");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        // Let the consumers' first fetches reach the broker.
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let produced = produce::run(connection, &produce, origin);
        let consumed = reader
            .join()
            .map_err(|_| anyhow::anyhow!("consumer panicked"))??;
        Ok((
            produced?,
            (consumed.throughput(started), consumed.e2e_latency),
        ))
    })
}

impl Cli {
    fn mode_name(&self) -> String {
        match self.mode {
            Mode::Produce(_) => "produce",
            Mode::Consume { .. } => "consume",
            Mode::Latency(_) => "latency",
            Mode::Mixed { .. } => "mixed",
            Mode::Limits { .. } => "limits",
        }
        .to_string()
    }
}
