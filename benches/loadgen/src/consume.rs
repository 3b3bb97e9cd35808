//! Consuming: one librdkafka consumer per thread, either assigned a share
//! of the partitions from the beginning or subscribed as a group.

use std::sync::atomic::{AtomicI64, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::Connection;
use crate::produce::{micros_since, WARMUP};
use crate::stats::latency_histogram;
use crate::Throughput;

#[derive(Debug, Clone)]
pub struct ConsumeSpec {
    pub topic: String,
    pub consumers: usize,
    /// Subscribe as this group; `None` assigns partitions directly.
    pub group: Option<String>,
    /// Stop once this many messages arrived over all consumers.
    pub expect: u64,
    pub max_duration: Duration,
    /// Read the send time from the first 8 payload bytes (end-to-end latency).
    pub stamped: bool,
    /// Partitions of the topic, for counting each offset once.
    pub partitions: usize,
}

/// Shared between the consumer threads of a run.
#[derive(Clone, Copy)]
struct Counters<'a> {
    received: &'a AtomicU64,
    seen: &'a [AtomicI64],
    assigned: &'a AtomicUsize,
}

pub struct ConsumeOutcome {
    pub messages: u64,
    pub bytes: u64,
    /// When the last message arrived.
    pub last: Instant,
    pub e2e_latency: Histogram<u64>,
}

impl ConsumeOutcome {
    /// Throughput counted from `from` to the last message.
    pub fn throughput(&self, from: Instant) -> Throughput {
        let seconds = self.last.saturating_duration_since(from).as_secs_f64();
        Throughput::new(self.messages, self.bytes, seconds, 0)
    }
}

/// Messages in `topic` (sum of high minus low watermarks) and its partitions.
pub fn topic_extent(connection: &Connection, topic: &str) -> anyhow::Result<(u64, i32)> {
    let consumer = consumer(connection, None, 0)?;
    let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(10))?;
    let partitions = metadata
        .topics()
        .first()
        .map_or(0, |t| t.partitions().len() as i32);
    let mut total = 0;
    for p in 0..partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10))?;
        total += u64::try_from(high - low).unwrap_or(0);
    }
    Ok((total, partitions))
}

fn consumer(
    connection: &Connection,
    group: Option<&str>,
    index: usize,
) -> anyhow::Result<BaseConsumer> {
    let mut config = connection.config();
    config
        .set("group.id", group.unwrap_or("strata-bench-assign"))
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("fetch.wait.max.ms", "100")
        .set("client.id", format!("strata-bench-consumer-{index}"));
    connection.finish(&mut config);
    Ok(config.create()?)
}

/// Runs the consumers. `assigned` counts the partitions they hold, so a
/// caller can wait for a group to form before producing.
pub fn run(
    connection: &Connection,
    spec: &ConsumeSpec,
    origin: Instant,
    assigned: &AtomicUsize,
) -> anyhow::Result<ConsumeOutcome> {
    let partitions = if spec.group.is_none() {
        topic_extent(connection, &spec.topic)?.1
    } else {
        0
    };
    let received = AtomicU64::new(0);
    // Highest offset seen per partition: a message delivered again (a group
    // rebalance hands a partition to a consumer that starts over) counts once.
    let seen: Vec<AtomicI64> = (0..spec.partitions.max(1))
        .map(|_| AtomicI64::new(-1))
        .collect();
    let counters = Counters {
        received: &received,
        seen: &seen,
        assigned,
    };
    let started = Instant::now();
    let outcomes: Vec<anyhow::Result<ConsumeOutcome>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..spec.consumers.max(1))
            .map(|i| {
                let counters = &counters;
                scope
                    .spawn(move || consume_share(connection, spec, origin, i, partitions, counters))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("consumer thread panicked"))?
            })
            .collect()
    });
    let mut e2e_latency = latency_histogram()?;
    let (mut messages, mut bytes) = (0, 0);
    let mut last = started;
    for outcome in outcomes {
        let share = outcome?;
        messages += share.messages;
        bytes += share.bytes;
        e2e_latency.add(&share.e2e_latency)?;
        last = last.max(share.last);
    }
    Ok(ConsumeOutcome {
        messages,
        bytes,
        last,
        e2e_latency,
    })
}

fn consume_share(
    connection: &Connection,
    spec: &ConsumeSpec,
    origin: Instant,
    index: usize,
    partitions: i32,
    counters: &Counters<'_>,
) -> anyhow::Result<ConsumeOutcome> {
    let Counters {
        received,
        seen,
        assigned,
    } = *counters;
    let consumer = consumer(connection, spec.group.as_deref(), index)?;
    match &spec.group {
        Some(_) => consumer.subscribe(&[&spec.topic])?,
        None => {
            let mut list = TopicPartitionList::new();
            let consumers = spec.consumers.max(1) as i32;
            for p in (0..partitions).filter(|p| p % consumers == index as i32) {
                list.add_partition_offset(&spec.topic, p, Offset::Beginning)?;
            }
            if list.count() == 0 {
                return Ok(ConsumeOutcome {
                    messages: 0,
                    bytes: 0,
                    last: Instant::now(),
                    e2e_latency: latency_histogram()?,
                });
            }
            consumer.assign(&list)?;
        }
    }
    let mut latency = latency_histogram()?;
    let (mut messages, mut bytes) = (0u64, 0u64);
    let mut last = Instant::now();
    let started = Instant::now();
    let mut holding = 0;
    while received.load(Ordering::Relaxed) < spec.expect && started.elapsed() < spec.max_duration {
        let polled = consumer.poll(Duration::from_millis(20));
        if messages == 0 || polled.is_none() {
            let now = consumer.assignment().map_or(0, |a| a.count());
            if now > holding {
                assigned.fetch_add(now - holding, Ordering::Relaxed);
            } else {
                assigned.fetch_sub(holding - now, Ordering::Relaxed);
            }
            holding = now;
        }
        let Some(message) = polled else {
            continue;
        };
        let message = message?;
        let partition = usize::try_from(message.partition()).ok();
        if let Some(high) = partition.and_then(|p| seen.get(p)) {
            if high.fetch_max(message.offset(), Ordering::Relaxed) >= message.offset() {
                continue;
            }
        }
        let payload = message.payload().unwrap_or_default();
        if spec.stamped && payload.len() >= 8 {
            let mut stamp = [0u8; 8];
            stamp.copy_from_slice(&payload[..8]);
            let sent_at = u64::from_le_bytes(stamp);
            if sent_at & WARMUP == 0 {
                let _ = latency.record(micros_since(origin).saturating_sub(sent_at).max(1));
            }
        }
        messages += 1;
        bytes += (payload.len() + message.key().map_or(0, <[u8]>::len)) as u64;
        last = Instant::now();
        received.fetch_add(1, Ordering::Relaxed);
    }
    Ok(ConsumeOutcome {
        messages,
        bytes,
        last,
        e2e_latency: latency,
    })
}
