//! Gauges read from the broker's state when `/metrics` is scraped: per
//! partition offsets and size, per consumer group committed offsets and
//! lag, the WAL's files on disk, and the fetch memory held.
//!
//! These are read fresh on each scrape rather than kept in the metrics
//! registry, so a deleted topic or group disappears from the output at
//! once. Series are capped at [`MAX_SERIES`] per family; the number left
//! out is reported, so a cap is never silent.

use metrics::gauge;
use strata_log::metrics::{wal_disk_usage, WAL_BYTES, WAL_SEGMENTS};

use super::text::Exposition;
use crate::Broker;

/// Most series written per family on one scrape.
pub const MAX_SERIES: usize = 10_000;

pub const PARTITION_LOG_START: &str = "partition_log_start_offset";
pub const PARTITION_HIGH_WATERMARK: &str = "partition_high_watermark";
pub const PARTITION_SIZE: &str = "partition_size_bytes";
pub const GROUP_COMMITTED: &str = "consumer_group_committed_offset";
pub const GROUP_LAG: &str = "consumer_group_lag";
pub const SERIES_OMITTED: &str = "metrics_series_omitted";

/// Updates the sampled registry gauges and writes the state families.
pub fn render(broker: &Broker) -> String {
    let (segments, bytes) = wal_disk_usage(broker.store.data_dir());
    gauge!(WAL_SEGMENTS).set(segments as f64);
    gauge!(WAL_BYTES).set(bytes as f64);
    gauge!(super::FETCH_MEMORY_HELD).set(broker.fetch_memory.held() as f64);
    gauge!(super::FETCH_MEMORY_LIMIT).set(broker.fetch_memory.total() as f64);

    let mut text = Exposition::default();
    let mut omitted = 0;
    omitted += partitions(broker, &mut text);
    omitted += groups(broker, &mut text);
    text.family(
        SERIES_OMITTED,
        "gauge",
        "Series left out of this scrape because a family reached its cap",
    );
    text.sample(SERIES_OMITTED, &[], omitted as f64);
    text.finish()
}

/// One partition's sampled state.
struct PartitionRow {
    topic: String,
    partition: String,
    log_start: i64,
    high_watermark: i64,
    size: u64,
}

fn partition_rows(broker: &Broker) -> Vec<PartitionRow> {
    let mut rows = Vec::new();
    for topic in broker.store.registry().topics() {
        for partition in topic.partitions() {
            let (log_start, high_watermark) = partition.bounds();
            rows.push(PartitionRow {
                topic: topic.name.clone(),
                partition: partition.index.to_string(),
                log_start,
                high_watermark,
                size: partition.size_bytes(),
            });
        }
    }
    rows
}

/// A per-partition family: name, help, and the value it reads.
type Family = (&'static str, &'static str, fn(&PartitionRow) -> f64);

fn partitions(broker: &Broker, text: &mut Exposition) -> usize {
    let rows = partition_rows(broker);
    let omitted = rows.len().saturating_sub(MAX_SERIES);
    let rows = &rows[..rows.len().min(MAX_SERIES)];
    let families: [Family; 3] = [
        (
            PARTITION_LOG_START,
            "First offset still held by the partition",
            |r| r.log_start as f64,
        ),
        (
            PARTITION_HIGH_WATERMARK,
            "One past the last durable offset of the partition",
            |r| r.high_watermark as f64,
        ),
        (
            PARTITION_SIZE,
            "Bytes of record batches the partition holds",
            |r| r.size as f64,
        ),
    ];
    for (name, help, value) in families {
        text.family(name, "gauge", help);
        for row in rows {
            let labels = [
                ("topic", row.topic.as_str()),
                ("partition", row.partition.as_str()),
            ];
            text.sample(name, &labels, value(row));
        }
    }
    omitted * families.len()
}

fn groups(broker: &Broker, text: &mut Exposition) -> usize {
    let mut rows = Vec::new();
    for (group, _, _) in broker.groups.list() {
        for (topic, partition, committed) in broker.groups.committed_all(&group) {
            let high_watermark = broker
                .store
                .topic(&topic)
                .and_then(|t| t.partition(partition))
                .map(|p| p.bounds().1);
            rows.push((
                group.clone(),
                topic,
                partition,
                committed.offset,
                high_watermark,
            ));
        }
    }
    let omitted = rows.len().saturating_sub(MAX_SERIES);
    rows.truncate(MAX_SERIES);
    text.family(
        GROUP_COMMITTED,
        "gauge",
        "Offset committed by a consumer group for a partition",
    );
    for (group, topic, partition, offset, _) in &rows {
        let partition = partition.to_string();
        let labels = [
            ("group", group.as_str()),
            ("topic", topic.as_str()),
            ("partition", partition.as_str()),
        ];
        text.sample(GROUP_COMMITTED, &labels, *offset as f64);
    }
    text.family(
        GROUP_LAG,
        "gauge",
        "High watermark minus the committed offset (partitions that still exist)",
    );
    for (group, topic, partition, offset, high_watermark) in &rows {
        let Some(high_watermark) = high_watermark else {
            continue;
        };
        let partition = partition.to_string();
        let labels = [
            ("group", group.as_str()),
            ("topic", topic.as_str()),
            ("partition", partition.as_str()),
        ];
        text.sample(GROUP_LAG, &labels, (high_watermark - offset).max(0) as f64);
    }
    omitted * 2
}
