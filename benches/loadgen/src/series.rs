//! Acks over time: per interval of ack time, the messages acknowledged and
//! their send-to-ack latencies. A run whose conditions change while it
//! goes (a background task switched on and off at known times) can then be
//! cut into the stretches of each condition afterwards, and latency
//! percentiles taken over all stretches of one condition together.

use hdrhistogram::Histogram;
use serde::Serialize;

/// Per-interval acks and latencies of one run (or one producer of it).
#[derive(Debug, Clone)]
pub struct AckSeries {
    interval_us: u64,
    slots: Vec<Slot>,
    /// An empty slot histogram, cloned for each new slot.
    empty: Histogram<u64>,
}

#[derive(Debug, Clone)]
struct Slot {
    acked: u64,
    latency: Histogram<u64>,
}

/// What a run's JSON report holds of its series.
#[derive(Debug, Serialize)]
pub struct SeriesReport {
    pub interval_ms: u64,
    /// Wall-clock time (ms since the Unix epoch) of the start of slot 0.
    pub origin_unix_ms: f64,
    pub slots: Vec<SlotReport>,
}

#[derive(Debug, Serialize)]
pub struct SlotReport {
    pub acked: u64,
    pub bytes: u64,
    /// `[latency µs, count]` for each latency recorded in the slot, at two
    /// significant digits (the latency is the top of its 1% bucket).
    pub latency_us: Vec<(u64, u64)>,
}

impl AckSeries {
    pub fn new(interval_ms: u64) -> anyhow::Result<Self> {
        Ok(AckSeries {
            interval_us: interval_ms.max(1) * 1000,
            slots: Vec::new(),
            // 1 µs to 100 s.
            empty: Histogram::new_with_bounds(1, 100_000_000, 2)?,
        })
    }

    fn slot(&mut self, at_us: u64) -> &mut Slot {
        let index = usize::try_from(at_us / self.interval_us).unwrap_or(usize::MAX - 1);
        if index >= self.slots.len() {
            let empty = &self.empty;
            self.slots.resize_with(index + 1, || Slot {
                acked: 0,
                latency: empty.clone(),
            });
        }
        &mut self.slots[index]
    }

    /// An ack at `at_us` (µs since the run's origin), with its latency
    /// unless the message was sent during the warm-up.
    pub fn record(&mut self, at_us: u64, latency_us: Option<u64>) {
        let slot = self.slot(at_us);
        slot.acked += 1;
        if let Some(latency) = latency_us {
            slot.latency.saturating_record(latency);
        }
    }

    /// Adds another producer's series (same interval and origin).
    pub fn merge(&mut self, other: &AckSeries) {
        for (i, theirs) in other.slots.iter().enumerate() {
            let at = i as u64 * self.interval_us;
            let mine = self.slot(at);
            mine.acked += theirs.acked;
            let _ = mine.latency.add(&theirs.latency);
        }
    }

    pub fn report(&self, origin_unix_ms: f64, message_bytes: u64) -> SeriesReport {
        SeriesReport {
            interval_ms: self.interval_us / 1000,
            origin_unix_ms,
            slots: self
                .slots
                .iter()
                .map(|s| SlotReport {
                    acked: s.acked,
                    bytes: s.acked * message_bytes,
                    latency_us: s
                        .latency
                        .iter_recorded()
                        .map(|v| (v.value_iterated_to(), v.count_at_value()))
                        .collect(),
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn acks_land_in_the_slot_of_their_time_and_merge() -> anyhow::Result<()> {
        let mut a = AckSeries::new(1000)?;
        a.record(10, Some(500));
        a.record(999_999, None);
        a.record(2_500_000, Some(2000));
        let mut b = AckSeries::new(1000)?;
        b.record(1_200_000, Some(700));
        a.merge(&b);
        let report = a.report(1.0e12, 100);
        let acked: Vec<u64> = report.slots.iter().map(|s| s.acked).collect();
        assert_eq!(acked, vec![2, 1, 1]);
        assert_eq!(report.slots[0].bytes, 200);
        assert_eq!(report.slots[0].latency_us.len(), 1);
        assert_eq!(report.slots[1].latency_us[0].1, 1);
        assert!((report.slots[2].latency_us[0].0 as i64 - 2000).abs() <= 20);
        Ok(())
    }
}
