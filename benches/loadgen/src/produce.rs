//! Producing: one librdkafka producer per thread, optionally paced to a
//! rate, each message's send-to-ack latency recorded.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use rdkafka::client::ClientContext;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};

use crate::kafka::{payload_pool, Connection};
use crate::series::AckSeries;
use crate::stats::latency_histogram;
use crate::Throughput;

/// Paced sends go out in steps of this much time at most.
const PACING_STEP: Duration = Duration::from_millis(1);

#[derive(Debug, Clone)]
pub struct ProduceSpec {
    pub topic: String,
    pub messages: u64,
    pub size: usize,
    pub acks: String,
    pub compression: String,
    pub producers: usize,
    /// Messages per second over all producers; `None` is full speed.
    pub rate: Option<f64>,
    pub max_duration: Duration,
    pub linger_ms: u32,
    /// Put the send time (µs since `origin`) in the first 8 payload bytes.
    pub stamp_payload: bool,
    /// Messages sent during this first stretch are marked [`WARMUP`] and
    /// their latencies are not recorded (connections and fetchers starting).
    pub warmup: Duration,
    /// Also record acks and latencies per interval of this many ms.
    pub series_ms: Option<u64>,
}

/// Set in a send-time stamp of a warm-up message.
pub const WARMUP: u64 = 1 << 63;

pub struct ProduceOutcome {
    pub throughput: Throughput,
    pub ack_latency: Histogram<u64>,
    pub first_error: Option<String>,
    pub series: Option<AckSeries>,
}

struct Delivery {
    origin: Instant,
    latency: Mutex<Histogram<u64>>,
    series: Option<Mutex<AckSeries>>,
    acked: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Delivery {}

impl ProducerContext for Delivery {
    /// Send time in µs since `origin`.
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, sent_at: usize) {
        match result {
            Ok(_) => {
                self.acked.fetch_add(1, Ordering::Relaxed);
                let now = micros_since(self.origin);
                let warmup = sent_at as u64 & WARMUP != 0;
                let latency = now.saturating_sub(sent_at as u64).max(1);
                if let Some(Ok(mut series)) = self.series.as_ref().map(Mutex::lock) {
                    series.record(now, (!warmup).then_some(latency));
                }
                if warmup {
                    return;
                }
                if let Ok(mut h) = self.latency.lock() {
                    let _ = h.record(latency);
                }
            }
            Err((error, _)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = self.first_error.lock() {
                    first.get_or_insert_with(|| error.to_string());
                }
            }
        }
    }
}

pub fn micros_since(origin: Instant) -> u64 {
    u64::try_from(origin.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// Runs the producers; `origin` is the clock payload stamps are read against.
pub fn run(
    connection: &Connection,
    spec: &ProduceSpec,
    origin: Instant,
) -> anyhow::Result<ProduceOutcome> {
    let producers = spec.producers.max(1);
    let started = Instant::now();
    let outcomes: Vec<anyhow::Result<ShareOutcome>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..producers)
            .map(|i| {
                let share = spec.messages / producers as u64
                    + u64::from((i as u64) < spec.messages % producers as u64);
                scope.spawn(move || produce_share(connection, spec, origin, share, i))
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| anyhow::anyhow!("producer thread panicked"))?
            })
            .collect()
    });
    let seconds = started.elapsed().as_secs_f64();
    let mut ack_latency = latency_histogram()?;
    let (mut acked, mut failed, mut sent) = (0, 0, 0);
    let mut first_error = None;
    let mut series: Option<AckSeries> = None;
    for outcome in outcomes {
        let share = outcome?;
        if let Some(theirs) = &share.series {
            match &mut series {
                Some(mine) => mine.merge(theirs),
                None => series = Some(theirs.clone()),
            }
        }
        sent += share.sent;
        acked += share.acked;
        failed += share.failed;
        ack_latency.add(&share.latency)?;
        first_error = first_error.or(share.first_error);
    }
    Ok(ProduceOutcome {
        throughput: Throughput::new(acked, acked * spec.size as u64, seconds, failed)
            .with_sent(sent),
        ack_latency,
        first_error,
        series,
    })
}

fn produce_share(
    connection: &Connection,
    spec: &ProduceSpec,
    origin: Instant,
    messages: u64,
    index: usize,
) -> anyhow::Result<ShareOutcome> {
    let mut config = connection.config();
    config
        .set("acks", &spec.acks)
        .set("compression.type", &spec.compression)
        .set("linger.ms", spec.linger_ms.to_string())
        .set("enable.idempotence", "false")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("message.timeout.ms", "120000")
        .set("client.id", format!("strata-bench-producer-{index}"));
    connection.finish(&mut config);
    let context = Delivery {
        origin,
        latency: Mutex::new(latency_histogram()?),
        series: match spec.series_ms {
            Some(ms) => Some(Mutex::new(AckSeries::new(ms)?)),
            None => None,
        },
        acked: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        first_error: Mutex::new(None),
    };
    let producer: BaseProducer<Delivery> = config.create_with_context(context)?;
    let pool = payload_pool(spec.size.max(8) + 64 * 1024);
    let mut payload = vec![0u8; spec.size];
    let per_thread_rate = spec.rate.map(|r| r / spec.producers.max(1) as f64);
    let started = Instant::now();
    let mut sent = 0u64;
    for i in 0..messages {
        if started.elapsed() >= spec.max_duration {
            break;
        }
        if let Some(rate) = per_thread_rate {
            // Serve delivery reports while waiting, so ack latency is not
            // inflated by the pacing. Messages due within one pacing step
            // go now: waiting for each one (microseconds apart at high
            // rates) would spin a core that the broker needs on a small
            // machine.
            let due = started + Duration::from_secs_f64(i as f64 / rate);
            loop {
                let ahead = due.saturating_duration_since(Instant::now());
                if ahead < PACING_STEP {
                    break;
                }
                producer.poll(ahead);
            }
        }
        let at = (i as usize * 7919) % (pool.len() - spec.size);
        payload.copy_from_slice(&pool[at..at + spec.size]);
        let mut sent_at = micros_since(origin);
        if started.elapsed() < spec.warmup {
            sent_at |= WARMUP;
        }
        if spec.stamp_payload && payload.len() >= 8 {
            payload[..8].copy_from_slice(&sent_at.to_le_bytes());
        }
        let mut record =
            BaseRecord::<(), [u8], usize>::with_opaque_to(&spec.topic, sent_at as usize)
                .payload(&payload[..]);
        loop {
            match producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    producer.poll(Duration::from_millis(1));
                }
                Err((e, _)) => anyhow::bail!("produce failed: {e}"),
            }
        }
        sent += 1;
        if i % 256 == 0 {
            producer.poll(Duration::ZERO);
        }
    }
    producer.flush(Duration::from_secs(120))?;
    let context = producer.context();
    let outcome = ShareOutcome {
        sent,
        acked: context.acked.load(Ordering::Relaxed),
        failed: context.failed.load(Ordering::Relaxed),
        latency: context
            .latency
            .lock()
            .map_err(|_| anyhow::anyhow!("latency lock poisoned"))?
            .clone(),
        first_error: context.first_error.lock().ok().and_then(|e| e.clone()),
        series: match &context.series {
            Some(series) => Some(
                series
                    .lock()
                    .map_err(|_| anyhow::anyhow!("series lock poisoned"))?
                    .clone(),
            ),
            None => None,
        },
    };
    Ok(outcome)
}

/// What one producer thread did.
struct ShareOutcome {
    sent: u64,
    acked: u64,
    failed: u64,
    latency: Histogram<u64>,
    first_error: Option<String>,
    series: Option<AckSeries>,
}
