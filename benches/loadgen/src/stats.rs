//! Latency percentiles, and the broker process's CPU time and peak memory
//! during a run (from `/proc/<pid>`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies in microseconds, 1 µs to 100 s at 3 significant digits.
pub fn latency_histogram() -> anyhow::Result<Histogram<u64>> {
    Ok(Histogram::new_with_bounds(1, 100_000_000, 3)?)
}

/// Percentiles of a latency histogram, in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub samples: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub p999_ms: f64,
    pub max_ms: f64,
}

impl Percentiles {
    pub fn of(h: &Histogram<u64>) -> Option<Self> {
        if h.is_empty() {
            return None;
        }
        let ms = |us: u64| us as f64 / 1000.0;
        Some(Percentiles {
            samples: h.len(),
            p50_ms: ms(h.value_at_quantile(0.50)),
            p95_ms: ms(h.value_at_quantile(0.95)),
            p99_ms: ms(h.value_at_quantile(0.99)),
            p999_ms: ms(h.value_at_quantile(0.999)),
            max_ms: ms(h.max()),
        })
    }
}

/// What the broker process spent during a run.
#[derive(Debug, Clone, Serialize)]
pub struct BrokerCost {
    pub cpu_seconds: f64,
    pub peak_rss_bytes: u64,
    pub rss_at_end_bytes: u64,
}

/// Samples a process's resident memory until stopped.
pub struct ProcessWatch {
    pid: u32,
    cpu_start: f64,
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    sampler: Option<JoinHandle<()>>,
}

impl ProcessWatch {
    pub fn start(pid: u32) -> anyhow::Result<Self> {
        let cpu_start = cpu_seconds(pid)?;
        let peak = Arc::new(AtomicU64::new(rss_bytes(pid).unwrap_or(0)));
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (peak, stop) = (Arc::clone(&peak), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(rss) = rss_bytes(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        Ok(ProcessWatch {
            pid,
            cpu_start,
            peak,
            stop,
            sampler: Some(sampler),
        })
    }

    pub fn finish(mut self) -> anyhow::Result<BrokerCost> {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(sampler) = self.sampler.take() {
            let _ = sampler.join();
        }
        let rss = rss_bytes(self.pid).unwrap_or(0);
        Ok(BrokerCost {
            cpu_seconds: cpu_seconds(self.pid)? - self.cpu_start,
            peak_rss_bytes: self.peak.load(Ordering::Relaxed).max(rss),
            rss_at_end_bytes: rss,
        })
    }
}

/// User + system CPU seconds of a process (`/proc/<pid>/stat`, USER_HZ 100).
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let rest = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .ok_or_else(|| anyhow::anyhow!("unreadable /proc/{pid}/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |i: usize| -> anyhow::Result<f64> {
        Ok(fields
            .get(i)
            .ok_or_else(|| anyhow::anyhow!("short /proc/{pid}/stat"))?
            .parse()?)
    };
    Ok((field(11)? + field(12)?) / 100.0)
}

pub fn rss_bytes(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line["VmRSS:".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_known_samples() -> anyhow::Result<()> {
        let mut h = latency_histogram()?;
        for us in 1..=1000 {
            h.record(us)?;
        }
        let p = Percentiles::of(&h).ok_or_else(|| anyhow::anyhow!("empty"))?;
        assert_eq!(p.samples, 1000);
        assert!((p.p50_ms - 0.5).abs() < 0.01, "{p:?}");
        assert!((p.p99_ms - 0.99).abs() < 0.01, "{p:?}");
        assert!((p.max_ms - 1.0).abs() < 0.01, "{p:?}");
        Ok(())
    }

    #[test]
    fn reads_this_process() -> anyhow::Result<()> {
        let pid = std::process::id();
        assert!(cpu_seconds(pid)? >= 0.0);
        assert!(rss_bytes(pid).unwrap_or(0) > 0);
        Ok(())
    }
}
