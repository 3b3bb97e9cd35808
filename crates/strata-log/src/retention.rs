//! Retention as Kafka defines it, at batch granularity: where a
//! partition's log start moves when `retention.ms` or `retention.bytes`
//! removes its oldest batches. Pure decisions; [`crate::LogStore`] carries
//! them out.
//!
//! - `retention.ms`: a batch goes once its largest timestamp is more than
//!   `retention.ms` in the past (Kafka looks at a segment's largest
//!   timestamp; Strata at each batch's).
//! - `retention.bytes`: the oldest batches go while the partition stays at
//!   or above `retention.bytes` without them (Kafka: while the log minus
//!   the oldest segment is at least `retention.bytes`).
//! - `-1` turns either off. Batches go in offset order only: a batch stays
//!   while an older one stays.

/// What retention knows of one batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchFacts {
    pub last_offset: i64,
    pub max_timestamp: i64,
    pub len: u64,
}

/// A topic's retention settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    pub ms: i64,
    pub bytes: i64,
}

/// The log start offset retention moves the partition to, if it moves:
/// `batches` are the partition's batches in offset order, `total_bytes`
/// their sum, `now_ms` the broker's clock.
pub fn new_log_start(
    batches: impl Iterator<Item = BatchFacts>,
    total_bytes: u64,
    log_start: i64,
    now_ms: i64,
    retention: Retention,
) -> Option<i64> {
    let keep_bytes = u64::try_from(retention.bytes).ok();
    let mut remaining = total_bytes;
    let mut start = None;
    for batch in batches {
        let expired =
            retention.ms >= 0 && now_ms.saturating_sub(batch.max_timestamp) > retention.ms;
        let over_size = keep_bytes.is_some_and(|keep| {
            remaining.saturating_sub(batch.len) >= keep && remaining >= batch.len
        });
        if !expired && !over_size {
            break;
        }
        remaining -= batch.len.min(remaining);
        start = Some(batch.last_offset + 1);
    }
    start.filter(|s| *s > log_start)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Ten batches of 100 bytes, offsets 10 apart, timestamps 1000 apart.
    fn batches() -> impl Iterator<Item = BatchFacts> {
        (0..10).map(|i| BatchFacts {
            last_offset: i * 10 + 9,
            max_timestamp: i * 1000,
            len: 100,
        })
    }

    const FOREVER: Retention = Retention { ms: -1, bytes: -1 };

    #[test]
    fn time_retention_removes_batches_older_than_the_limit() {
        let r = Retention {
            ms: 2500,
            ..FOREVER
        };
        // At 5000, batches stamped 0, 1000 and 2000 are more than 2500 old.
        assert_eq!(new_log_start(batches(), 1000, 0, 5000, r), Some(30));
        // Exactly retention.ms old stays.
        assert_eq!(new_log_start(batches(), 1000, 0, 4500, r), Some(20));
        assert_eq!(new_log_start(batches(), 1000, 0, 2000, r), None);
        assert_eq!(new_log_start(batches(), 1000, 0, 100_000, r), Some(100));
    }

    #[test]
    fn size_retention_keeps_at_least_the_limit() {
        let r = Retention {
            bytes: 350,
            ..FOREVER
        };
        // 1000 bytes: six batches go, 400 stay (dropping one more leaves 300 < 350).
        assert_eq!(new_log_start(batches(), 1000, 0, 0, r), Some(60));
        let r = Retention {
            bytes: 0,
            ..FOREVER
        };
        assert_eq!(new_log_start(batches(), 1000, 0, 0, r), Some(100));
        let r = Retention {
            bytes: 1000,
            ..FOREVER
        };
        assert_eq!(new_log_start(batches(), 1000, 0, 0, r), None);
    }

    #[test]
    fn either_limit_is_enough_and_minus_one_is_forever() {
        let r = Retention {
            ms: 6500,
            bytes: 850,
        };
        // Time alone removes the batches stamped 0..=3000; size alone the
        // first one: time wins.
        assert_eq!(new_log_start(batches(), 1000, 0, 9999, r), Some(40));
        let r = Retention {
            ms: 9500,
            bytes: 650,
        };
        // Here size (three batches) goes further than time (one).
        assert_eq!(new_log_start(batches(), 1000, 0, 9999, r), Some(30));
        let r = Retention {
            ms: 9500,
            bytes: 550,
        };
        assert_eq!(new_log_start(batches(), 1000, 0, 9999, r), Some(40));
        assert_eq!(new_log_start(batches(), 1000, 0, i64::MAX, FOREVER), None);
        // A log start already past what retention removes does not move back.
        let r = Retention {
            ms: 2500,
            ..FOREVER
        };
        assert_eq!(new_log_start(batches(), 1000, 45, 5000, r), None);
    }

    #[test]
    fn a_future_timestamp_holds_back_later_batches() {
        let mut list: Vec<BatchFacts> = batches().collect();
        list[1].max_timestamp = i64::MAX;
        let r = Retention { ms: 10, ..FOREVER };
        assert_eq!(
            new_log_start(list.into_iter(), 1000, 0, 50_000, r),
            Some(10)
        );
    }
}
