//! What a run reports: a table for people, JSON for scripts.

use std::io::Write;

use serde::Serialize;

use crate::limits::Limits;
use crate::produce::ProduceOutcome;
use crate::series::SeriesReport;
use crate::stats::{BrokerCost, Percentiles};
use crate::{LoadArgs, Throughput};
use hdrhistogram::Histogram;

#[derive(Debug, Serialize)]
pub struct Report {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    pub mode: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub topic: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub load: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub produce: Option<Throughput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub produce_error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_latency: Option<Percentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ack_series: Option<SeriesReport>,
    /// Wall-clock time the run's clock starts at (ms since the Unix epoch).
    #[serde(skip)]
    pub origin_unix_ms: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub consume: Option<Throughput>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub e2e_latency: Option<Percentiles>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub broker: Option<BrokerFigures>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub ratios: Vec<Ratio>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub limits: Option<Limits>,
}

#[derive(Debug, Serialize)]
pub struct BrokerFigures {
    #[serde(flatten)]
    pub cost: BrokerCost,
    /// CPU seconds per GB (10^9 payload bytes) produced and consumed.
    pub cpu_s_per_gb: f64,
}

/// A broker figure against the machine limit it is bounded by.
#[derive(Debug, Serialize)]
pub struct Ratio {
    pub figure: String,
    pub value: f64,
    pub limit: String,
    pub limit_value: f64,
    pub ratio: f64,
}

impl Report {
    pub fn new(label: Option<String>, mode: &str) -> Self {
        Report {
            label,
            mode: mode.to_string(),
            topic: None,
            load: None,
            produce: None,
            produce_error: None,
            ack_latency: None,
            ack_series: None,
            origin_unix_ms: 0.0,
            consume: None,
            e2e_latency: None,
            broker: None,
            ratios: Vec::new(),
            limits: None,
        }
    }

    pub fn describe_load(&mut self, args: &LoadArgs) {
        self.topic = Some(args.topic.clone());
        let rate = args
            .rate
            .map_or("full speed".to_string(), |r| format!("{r:.0} msg/s"));
        self.load = Some(format!(
            "{} x {} B, acks={}, compression={}, producers={}, linger.ms={}, {}",
            args.messages,
            args.size,
            args.acks,
            args.compression,
            args.producers,
            args.linger_ms,
            rate
        ));
    }

    pub fn add_produce(&mut self, outcome: ProduceOutcome) {
        self.produce = Some(outcome.throughput);
        self.produce_error = outcome.first_error;
        self.ack_latency = Percentiles::of(&outcome.ack_latency);
        let message_bytes = self
            .produce
            .as_ref()
            .map_or(0, |t| t.bytes / t.messages.max(1));
        self.ack_series = outcome
            .series
            .map(|s| s.report(self.origin_unix_ms, message_bytes));
    }

    pub fn add_consume(&mut self, throughput: Throughput, e2e_latency: &Histogram<u64>) {
        self.consume = Some(throughput);
        self.e2e_latency = Percentiles::of(e2e_latency);
    }

    pub fn add_broker_cost(&mut self, cost: BrokerCost) {
        let bytes = self.produce.as_ref().map_or(0, |t| t.bytes)
            + self.consume.as_ref().map_or(0, |t| t.bytes);
        let gb = (bytes as f64 / 1e9).max(1e-12);
        self.broker = Some(BrokerFigures {
            cpu_s_per_gb: cost.cpu_seconds / gb,
            cost,
        });
    }

    pub fn add_ratios(&mut self, limits: &Limits) {
        let mut add = |figure: &str, value: f64, limit: &str, limit_value: f64| {
            self.ratios.push(Ratio {
                figure: figure.to_string(),
                value,
                limit: limit.to_string(),
                limit_value,
                ratio: value / limit_value.max(1e-12),
            });
        };
        if let Some(p) = &self.produce {
            add(
                "produce MB/s",
                p.mb_per_s,
                "disk write+fdatasync MB/s",
                limits.disk_write_fdatasync_mb_s,
            );
        }
        if let Some(c) = &self.consume {
            add(
                "consume MB/s",
                c.mb_per_s,
                "loopback TCP MB/s",
                limits.loopback_tcp_mb_s,
            );
        }
        if let Some(l) = &self.ack_latency {
            add(
                "produce ack p99 ms",
                l.p99_ms,
                "4 KiB fdatasync p99 ms",
                limits.fdatasync_4k_p99_ms,
            );
        }
    }

    pub fn print(&self, json: bool) -> anyhow::Result<()> {
        let mut out = std::io::stdout().lock();
        if json {
            serde_json::to_writer(&mut out, self)?;
            writeln!(out)?;
            return Ok(());
        }
        let title = self.label.as_deref().unwrap_or(&self.mode);
        writeln!(out, "== {title} ({})", self.mode)?;
        if let Some(topic) = &self.topic {
            writeln!(out, "topic            {topic}")?;
        }
        if let Some(load) = &self.load {
            writeln!(out, "load             {load}")?;
        }
        for (name, t) in [("produce", &self.produce), ("consume", &self.consume)] {
            if let Some(t) = t {
                writeln!(
                    out,
                    "{name:<16} {} msgs in {:.2} s: {:.0} msgs/s, {:.1} MB/s{}",
                    t.messages,
                    t.seconds,
                    t.msgs_per_s,
                    t.mb_per_s,
                    if t.errors > 0 {
                        format!(", {} errors", t.errors)
                    } else {
                        String::new()
                    }
                )?;
            }
        }
        if let Some(e) = &self.produce_error {
            writeln!(out, "first error      {e}")?;
        }
        for (name, l) in [
            ("ack latency", &self.ack_latency),
            ("e2e latency", &self.e2e_latency),
        ] {
            if let Some(l) = l {
                writeln!(
                    out,
                    "{name:<16} p50 {:.2} ms, p95 {:.2}, p99 {:.2}, p99.9 {:.2}, max {:.2} ({} samples)",
                    l.p50_ms, l.p95_ms, l.p99_ms, l.p999_ms, l.max_ms, l.samples
                )?;
            }
        }
        if let Some(b) = &self.broker {
            writeln!(
                out,
                "broker           {:.2} CPU-s ({:.2} CPU-s/GB), peak RSS {:.1} MB, RSS at end {:.1} MB",
                b.cost.cpu_seconds,
                b.cpu_s_per_gb,
                b.cost.peak_rss_bytes as f64 / 1e6,
                b.cost.rss_at_end_bytes as f64 / 1e6
            )?;
        }
        for r in &self.ratios {
            writeln!(
                out,
                "ratio            {} {:.2} / {} {:.2} = {:.2}",
                r.figure, r.value, r.limit, r.limit_value, r.ratio
            )?;
        }
        if let Some(l) = &self.limits {
            writeln!(
                out,
                "disk             write+fdatasync (1 MiB) {:.0} MB/s, buffered+1 sync {:.0} MB/s",
                l.disk_write_fdatasync_mb_s, l.disk_write_buffered_mb_s
            )?;
            writeln!(
                out,
                "fdatasync 4 KiB  p50 {:.3} ms, p99 {:.3} ms",
                l.fdatasync_4k_p50_ms, l.fdatasync_4k_p99_ms
            )?;
            writeln!(out, "loopback TCP     {:.0} MB/s", l.loopback_tcp_mb_s)?;
        }
        Ok(())
    }
}
