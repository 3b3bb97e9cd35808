//! Compaction's I/O budget: the bytes a run reads and writes, counted as
//! they move (`compaction_io_bytes_total`) and paced to at most
//! `wal_compaction_bytes_per_sec` over the run.

use std::time::{Duration, Instant};

use crate::metrics;

/// The bytes one run (or pass) has moved, and since when.
#[derive(Debug)]
pub(crate) struct IoBudget {
    started: Instant,
    spent: u64,
    bytes_per_sec: u64,
}

impl IoBudget {
    /// A budget of `bytes_per_sec` (0: no limit), from now.
    pub fn new(bytes_per_sec: u64) -> Self {
        IoBudget {
            started: Instant::now(),
            spent: 0,
            bytes_per_sec,
        }
    }

    /// Counts `bytes` read or written; sleeps while more than the budget
    /// allows has been moved since the start.
    pub fn spend(&mut self, bytes: u64) {
        metrics::count_by(metrics::COMPACTION_IO_BYTES, bytes);
        self.spent += bytes;
        if self.bytes_per_sec == 0 {
            return;
        }
        #[allow(clippy::cast_precision_loss)]
        let due = Duration::from_secs_f64(self.spent as f64 / self.bytes_per_sec as f64);
        if let Some(wait) = due.checked_sub(self.started.elapsed()) {
            std::thread::sleep(wait);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spending_beyond_the_budget_waits_for_it() {
        let mut budget = IoBudget::new(10 * 1024 * 1024);
        let started = Instant::now();
        for _ in 0..4 {
            budget.spend(256 * 1024);
        }
        // 1 MiB at 10 MiB/s: about 100 ms.
        assert!(started.elapsed() >= Duration::from_millis(95));
        let mut unlimited = IoBudget::new(0);
        let started = Instant::now();
        unlimited.spend(u64::MAX / 2);
        assert!(started.elapsed() < Duration::from_millis(50));
    }
}
