//! The script the power-cut tests run, and what they check after a restart.
//!
//! A script is a seeded list of operations on four topics: "forever"
//! (nothing is ever deleted), "short" (retention and DeleteRecords move its
//! log start), "keyed" (compacted, a few keys, tombstones) and "scratch"
//! (deleted part way). Every produced record's value is unique, so a
//! record served after a restart can be traced to its produce.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_log::wal_compaction::{CompactionOptions, CompactionPolicy};
use strata_log::{LogStore, PendingBatch, StoreOptions};
use strata_protocol::batch::{split_batches, stamp_base_offset, validate_crc};
use strata_protocol::builder::{build_batch, RecordSpec};

pub const FOREVER: &str = "forever";
pub const SHORT: &str = "short";
pub const KEYED: &str = "keyed";
pub const SCRATCH: &str = "scratch";
const PRODUCED: [&str; 4] = [FOREVER, SHORT, KEYED, SCRATCH];

/// The script's clock: record timestamps and retention's "now".
const CLOCK_START: i64 = 1_000_000;
const TICK_MS: i64 = 100;
const SHORT_RETENTION_MS: i64 = 2_000;

#[derive(Debug, Clone, Copy)]
pub enum Op {
    /// `records` records to a topic, one batch.
    Produce {
        topic: usize,
        records: usize,
    },
    Retention,
    /// DeleteRecords on "short", to this share (per cent) of its log.
    DeleteRecords {
        percent: i64,
    },
    CompactNow,
    DeleteScratch,
}

/// A deterministic random number generator (splitmix64).
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// `len` operations, mostly produces.
pub fn script(seed: u64, len: usize) -> Vec<Op> {
    let mut rng = Rng::new(seed);
    let mut ops = Vec::with_capacity(len);
    for i in 0..len {
        if i == len * 3 / 5 {
            ops.push(Op::DeleteScratch);
            continue;
        }
        let op = match rng.below(20) {
            0 => Op::Retention,
            1 => Op::DeleteRecords {
                percent: 20 + rng.below(60) as i64,
            },
            2 => Op::CompactNow,
            _ => Op::Produce {
                topic: rng.below(PRODUCED.len() as u64) as usize,
                records: 1 + rng.below(3) as usize,
            },
        };
        ops.push(op);
    }
    ops
}

/// Options for the script's store: 4 KiB WAL segments, compaction and
/// retention only when the script asks. Direct I/O is on, as by default:
/// a simulated disk keeps the WAL's appends on the seam, and holds
/// compaction's unbuffered writes to direct I/O's alignment rules.
pub fn options(dir: &Path, storage: Arc<dyn strata_wal::Storage>) -> StoreOptions {
    let mut options = StoreOptions::new(dir.to_path_buf());
    options.wal_segment_bytes = 4096;
    options.wal_direct_io = true;
    options.wal_cache_bytes = 1 << 20;
    options.retention_check_interval = Duration::from_secs(3600);
    options.wal_compaction = CompactionOptions {
        policy: CompactionPolicy {
            live_ratio: 0.0,
            dead_bytes: u64::MAX,
            max_age_ms: u64::MAX,
            max_output_bytes: 4096,
        },
        bytes_per_sec: 0,
        check_interval: Duration::from_secs(3600),
    };
    options.storage = storage;
    options
}

/// One produced record: key and value (`None`: a tombstone).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    pub key: Vec<u8>,
    pub value: Option<Vec<u8>>,
}

/// An acknowledged batch.
#[derive(Debug, Clone)]
pub struct Acked {
    pub base_offset: i64,
    pub records: Vec<Record>,
    /// The bytes as the broker stores them (base offset stamped).
    pub bytes: Vec<u8>,
}

/// What the script was told: the truth a restart is checked against.
#[derive(Debug, Default)]
pub struct Outcome {
    pub acked: BTreeMap<String, Vec<Acked>>,
    /// Every value ever sent (acknowledged or not).
    pub attempted: HashSet<Vec<u8>>,
    pub created: HashSet<String>,
    pub scratch_deleted: bool,
    /// Operations that failed (the power cut, or an injected EIO).
    pub failures: usize,
    /// Operations run so far (numbering the records' values).
    pub steps: usize,
    /// The log start of "short" that retention or DeleteRecords moved to
    /// and acknowledged: records below it never come back.
    pub short_log_start: i64,
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("runtime: {e}"))
}

/// Creates the script's topics; false if one could not be.
pub fn create_topics(store: &LogStore, out: &mut Outcome) -> bool {
    let configs = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let short_retention = SHORT_RETENTION_MS.to_string();
    let topics = [
        (FOREVER, configs(&[("retention.ms", "-1")])),
        (
            SHORT,
            configs(&[("retention.ms", short_retention.as_str())]),
        ),
        (
            KEYED,
            configs(&[
                ("cleanup.policy", "compact"),
                ("min.cleanable.dirty.ratio", "0.01"),
                ("delete.retention.ms", "1000"),
            ]),
        ),
        (SCRATCH, configs(&[("retention.ms", "-1")])),
    ];
    for (name, configs) in topics {
        if store.create_topic(name, 1, configs, false).is_err() {
            out.failures += 1;
            return false;
        }
        out.created.insert(name.to_string());
    }
    true
}

/// Runs `ops` on `store`, stopping at the first failure when `stop_on_failure`.
pub fn run(store: &LogStore, ops: &[Op], stop_on_failure: bool, out: &mut Outcome) {
    let rt = runtime();
    for op in ops {
        let step = out.steps;
        out.steps += 1;
        let clock = CLOCK_START + TICK_MS * step as i64;
        let ok = match *op {
            Op::Produce { topic, records } => {
                produce(store, &rt, PRODUCED[topic], step, records, clock, out)
            }
            Op::Retention => {
                let done = store.enforce_retention(clock).is_ok();
                if let (true, Some(log)) = (done, store.topic(SHORT).and_then(|t| t.partition(0))) {
                    out.short_log_start = log.bounds().0;
                }
                done
            }
            Op::DeleteRecords { percent } => {
                match store.topic(SHORT).and_then(|t| t.partition(0)) {
                    Some(log) => {
                        let (start, hw) = log.bounds();
                        let to = start + (hw - start) * percent / 100;
                        let done = store.delete_records(&log, to);
                        if let Ok(start) = done {
                            out.short_log_start = start;
                        }
                        done.is_ok()
                    }
                    None => false,
                }
            }
            Op::CompactNow => store
                .compact_wal(CompactionPolicy {
                    live_ratio: 0.9,
                    dead_bytes: 0,
                    max_age_ms: 0,
                    max_output_bytes: 4096,
                })
                .is_ok_and(|totals| totals.failed_runs == 0),
            Op::DeleteScratch => {
                let deleted = store.delete_topic(SCRATCH).is_ok();
                out.scratch_deleted |= deleted;
                deleted
            }
        };
        if !ok {
            out.failures += 1;
            if stop_on_failure {
                return;
            }
        }
    }
}

fn produce(
    store: &LogStore,
    rt: &tokio::runtime::Runtime,
    topic: &str,
    step: usize,
    count: usize,
    clock: i64,
    out: &mut Outcome,
) -> bool {
    let Some(log) = store.topic(topic).and_then(|t| t.partition(0)) else {
        return topic == SCRATCH && out.scratch_deleted;
    };
    let records: Vec<Record> = (0..count)
        .map(|i| {
            let key = if topic == KEYED {
                format!("k{}", (step * 7 + i) % 5)
            } else {
                format!("k{step}")
            };
            let value = format!("{topic}-{step}-{i}-{}", "v".repeat(60 + step % 90));
            // Every fourth keyed record is a tombstone (its value stays
            // unique in `attempted` only as a marker).
            let tombstone = topic == KEYED && (step + i).is_multiple_of(4);
            out.attempted.insert(value.clone().into_bytes());
            Record {
                key: key.into_bytes(),
                value: (!tombstone).then(|| value.into_bytes()),
            }
        })
        .collect();
    let specs: Vec<RecordSpec<'_>> = records
        .iter()
        .map(|r| RecordSpec {
            key: Some(&r.key),
            value: r.value.as_deref(),
            timestamp: clock,
        })
        .collect();
    let mut bytes = build_batch(&specs);
    let pending = PendingBatch {
        partition: log,
        batch: Bytes::from(bytes.clone()),
        log_append_time: false,
    };
    let result = rt.block_on(store.append(vec![pending])).into_iter().next();
    let Some(Ok(appended)) = result else {
        return false;
    };
    stamp_base_offset(&mut bytes, appended.base_offset, 0);
    out.acked.entry(topic.to_string()).or_default().push(Acked {
        base_offset: appended.base_offset,
        records,
        bytes,
    });
    true
}

/// A record as served: its offset, key and value.
type Served = (i64, Vec<u8>, Option<Vec<u8>>);

/// Reads a topic's partition whole, checking what any topic must hold:
/// every batch passes its CRC, offsets strictly increase, each batch is
/// served once. Returns the records and the stored batches by base offset.
pub fn read_all(store: &LogStore, topic: &str) -> (Vec<Served>, HashMap<i64, Vec<u8>>) {
    let log = store
        .topic(topic)
        .and_then(|t| t.partition(0))
        .unwrap_or_else(|| panic!("{topic} is gone"));
    let (mut offset, high_watermark) = log.bounds();
    let mut served: Vec<Served> = Vec::new();
    let mut batches = HashMap::new();
    while offset < high_watermark {
        let read = log
            .read(offset, 1 << 20)
            .unwrap_or_else(|e| panic!("{topic}: read at {offset}: {e}"));
        if read.records.is_empty() {
            // Only key compaction leaves a gap up to the high watermark.
            assert_eq!(topic, KEYED, "{topic}: nothing served at {offset}");
            break;
        }
        let split = split_batches(&read.records)
            .unwrap_or_else(|e| panic!("{topic}: malformed batches at {offset}: {e}"));
        for (header, range) in split {
            let bytes = &read.records[range];
            validate_crc(bytes, &header).unwrap_or_else(|e| {
                panic!("{topic}: batch {} served damaged: {e}", header.base_offset)
            });
            assert!(
                header.last_offset() >= offset,
                "{topic}: batch {} served again",
                header.base_offset
            );
            strata_protocol::records::for_each_record(bytes, &header, 1 << 20, |r| {
                served.push((
                    r.offset,
                    r.key.map(|k| k.to_vec()).unwrap_or_default(),
                    r.value.map(|v| v.to_vec()),
                ));
            })
            .unwrap_or_else(|e| panic!("{topic}: records of batch {}: {e}", header.base_offset));
            batches.insert(header.base_offset, bytes.to_vec());
            offset = header.last_offset() + 1;
        }
    }
    for pair in served.windows(2) {
        assert!(
            pair[0].0 < pair[1].0,
            "{topic}: offset {} served after {}",
            pair[1].0,
            pair[0].0
        );
    }
    (served, batches)
}

/// Checks a restarted store against what the script was told.
pub fn check(store: &LogStore, out: &Outcome) {
    let acked = |topic: &str| out.acked.get(topic).map_or(&[][..], Vec::as_slice);
    for name in &out.created {
        let deleted = name == SCRATCH && out.scratch_deleted;
        let exists = store.topic(name).is_some();
        assert!(exists || deleted, "acknowledged topic {name} is gone");
        assert!(!(exists && deleted), "deleted topic {name} is back");
    }
    for name in PRODUCED {
        if store.topic(name).is_none() {
            continue;
        }
        let (served, batches) = read_all(store, name);
        let log_start = store
            .topic(name)
            .and_then(|t| t.partition(0))
            .map_or(0, |p| p.bounds().0);
        let by_offset: HashMap<i64, &Record> = acked(name)
            .iter()
            .flat_map(|b| {
                b.records
                    .iter()
                    .enumerate()
                    .map(move |(i, r)| (b.base_offset + i as i64, r))
            })
            .collect();
        // Nothing that was never sent; at an acknowledged offset, exactly
        // the acknowledged record.
        for (offset, key, value) in &served {
            match by_offset.get(offset) {
                Some(r) => assert!(
                    r.key == *key && r.value == *value,
                    "{name}: offset {offset} holds another record"
                ),
                None => {
                    if let Some(v) = value {
                        assert!(
                            out.attempted.contains(v),
                            "{name}: offset {offset} holds a record never produced"
                        );
                    }
                }
            }
        }
        if name == SHORT {
            // A batch straddling the log start is served whole (a batch
            // holds at most 3 records).
            assert!(
                log_start >= out.short_log_start,
                "{SHORT}: log start {log_start} went back below {}",
                out.short_log_start
            );
            assert!(
                served
                    .first()
                    .is_none_or(|s| s.0 >= out.short_log_start - 3),
                "{SHORT}: a deleted record is served"
            );
        }
        let served_at: HashMap<i64, &Served> = served.iter().map(|s| (s.0, s)).collect();
        match name {
            KEYED => check_keyed(&served_at, acked(name)),
            _ => {
                // Every acknowledged batch at or above the log start is
                // there, byte for byte ("forever": all of them).
                for b in acked(name) {
                    let last = b.base_offset + b.records.len() as i64 - 1;
                    if last < log_start {
                        continue;
                    }
                    assert!(
                        name != FOREVER || log_start == 0,
                        "forever: log start moved"
                    );
                    assert_eq!(
                        batches.get(&b.base_offset),
                        Some(&b.bytes),
                        "{name}: acknowledged batch {} lost or changed (log start {log_start})",
                        b.base_offset
                    );
                }
            }
        }
    }
}

/// The newest acknowledged record of each key is served, or a newer one.
fn check_keyed(served: &HashMap<i64, &Served>, acked: &[Acked]) {
    let mut newest: BTreeMap<&[u8], (i64, &Record)> = BTreeMap::new();
    for b in acked {
        for (i, r) in b.records.iter().enumerate() {
            newest.insert(&r.key, (b.base_offset + i as i64, r));
        }
    }
    for (key, (offset, record)) in newest {
        if record.value.is_none() {
            continue;
        }
        let newer_or_same = served
            .values()
            .any(|(o, k, _)| k.as_slice() == key && *o >= offset);
        assert!(
            newer_or_same,
            "keyed: the newest value of {:?} (offset {offset}) is gone",
            String::from_utf8_lossy(key)
        );
    }
}
