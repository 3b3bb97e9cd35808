//! The log store: opens a data dir, owns the append and seal threads, and
//! carries out topic administration.
//!
//! Data dir layout:
//! ```text
//! <data>/meta/topics.json               topics, configs, log start offsets
//! <data>/wal/<seq>.wal                  the shared write-ahead log: every
//!                                       partition's batches, where they stay
//! <data>/wal/<seq>.idx                  a sealed segment's index
//! <data>/partitions/<topic id>-<n>/     producer-state snapshot of partition n
//! ```

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use strata_wal::Storage;
use tokio::sync::{mpsc, oneshot, watch};
use tracing::warn;

use crate::append::{AppendRequest, Appended, Appender, PendingBatch};
use crate::config::{validate_overrides, BrokerDefaults, TopicConfig};
use crate::data_dir::{refuse_partition_segments, remove_leftover_tmp, remove_orphan_partitions};
use crate::housekeeping::{Housekeeper, SealTask};
use crate::ledger::Ledger;
use crate::partition::{PartitionLog, SharedParts};
use crate::recovery::{self, RecoveryReport};
use crate::registry::{Registry, Topic};
use crate::seal::Sealer;
use crate::segment_index::cache::IndexCache;
use crate::tail_cache::TailCache;
use crate::topic::{validate_topic_name, MetaFile, MetaStore, TopicId, TopicRecord};
use crate::wal_health::WalHealth;
use crate::LogError;

mod deletion;
mod options;
mod retention;

pub use options::StoreOptions;

/// A queued append, resolving to one result per batch.
#[derive(Debug)]
pub struct AppendTicket {
    count: usize,
    answer: Option<oneshot::Receiver<Vec<Result<Appended, LogError>>>>,
}

impl AppendTicket {
    pub async fn wait(self) -> Vec<Result<Appended, LogError>> {
        let Some(answer) = self.answer else {
            return (0..self.count)
                .map(|_| Err(LogError::ShuttingDown))
                .collect();
        };
        match answer.await {
            Ok(results) => results,
            Err(_) => (0..self.count)
                .map(|_| Err(LogError::StorageUnavailable))
                .collect(),
        }
    }
}

/// The broker's storage.
#[derive(Debug)]
pub struct LogStore {
    data_dir: PathBuf,
    storage: Arc<dyn Storage>,
    registry: Arc<Registry>,
    meta: MetaStore,
    /// Serialises topic administration and metadata file writes.
    admin: Mutex<()>,
    append_tx: Mutex<Option<mpsc::Sender<AppendRequest>>>,
    producer_ids: Mutex<crate::producer_ids::ProducerIdBlock>,
    appended: watch::Receiver<u64>,
    health: Arc<WalHealth>,
    /// What every partition shares: the tail cache, the index cache and
    /// the ledger of live bytes per WAL segment.
    shared: SharedParts,
    topic_defaults: BrokerDefaults,
    /// Asks the sealing thread to remove segments nobody holds.
    removal: Mutex<Option<std::sync::mpsc::SyncSender<SealTask>>>,
    removal_wanted: Arc<std::sync::atomic::AtomicBool>,
    threads: Mutex<Vec<std::thread::JoinHandle<()>>>,
    /// Dropped to stop the retention thread.
    retention_stop: Mutex<Option<std::sync::mpsc::Sender<()>>>,
    /// Set at shutdown: compaction stops at its next batch.
    stopping: Arc<std::sync::atomic::AtomicBool>,
    /// Set while background compaction is paused.
    compaction_paused: Arc<std::sync::atomic::AtomicBool>,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> LogError + '_ {
    move |source| LogError::Io {
        path: path.to_path_buf(),
        source,
    }
}

impl LogStore {
    /// Opens (or creates) a data dir and recovers it.
    pub fn open(options: &StoreOptions) -> Result<(Arc<Self>, RecoveryReport), LogError> {
        let started = Instant::now();
        validate_overrides(&options.topic_defaults)?;
        let meta_dir = options.data_dir.join("meta");
        let wal_dir = options.data_dir.join("wal");
        let partitions_dir = options.data_dir.join("partitions");
        let storage = Arc::clone(&options.storage);
        for dir in [&meta_dir, &wal_dir, &partitions_dir] {
            strata_wal::create_dir_all_durably(storage.as_ref(), dir).map_err(io(dir))?;
        }
        remove_leftover_tmp(storage.as_ref(), &meta_dir);
        remove_leftover_tmp(storage.as_ref(), &wal_dir);
        if let Ok(dirs) = std::fs::read_dir(&partitions_dir) {
            for dir in dirs.flatten() {
                remove_leftover_tmp(storage.as_ref(), &dir.path());
            }
        }
        refuse_partition_segments(&partitions_dir)?;
        let meta = MetaStore::new(meta_dir, Arc::clone(&storage));
        let registry = Arc::new(Registry::default());
        let cache = Arc::new(TailCache::with_read_ahead(
            options.wal_cache_bytes,
            options.wal_read_ahead_bytes,
        ));
        let ledger = Arc::new(Ledger::default());
        let indexes = Arc::new(IndexCache::new(
            wal_dir.clone(),
            options.wal_index_cache_bytes,
        ));
        let shared = SharedParts {
            cache: Arc::clone(&cache),
            indexes: Arc::clone(&indexes),
            ledger: Arc::clone(&ledger),
        };
        let topic_defaults = BrokerDefaults::new(options.topic_defaults.clone());
        for record in meta.load()?.topics {
            let topic = open_topic(
                &options.data_dir,
                &record,
                (&shared, storage.as_ref()),
                &topic_defaults,
            )?;
            registry.insert(Arc::new(topic));
        }
        remove_orphan_partitions(storage.as_ref(), &partitions_dir, &registry);
        let wal = recovery::replay_wal(
            storage.as_ref(),
            (&wal_dir, &indexes),
            &registry,
            started,
            options.wal_direct_io,
        )?;
        let report = wal.report;

        let writer = strata_wal::SegmentWriter::create(
            storage.as_ref(),
            &wal_dir,
            wal.next_segment,
            options.wal_direct_io,
        )?;
        let reader = Arc::new(writer.reader()?);
        let (append_tx, append_rx) = mpsc::channel(options.append_queue.max(1));
        let (seal_tx, seal_rx) = std::sync::mpsc::sync_channel(64 + wal.unsealed.len());
        for id in &wal.unsealed {
            let _ = seal_tx.try_send(SealTask::Seal(*id));
        }
        let removal_tx = seal_tx.clone();
        let seal_overflow = Arc::new(crate::housekeeping::SealOverflow::default());
        let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let compaction_paused = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let removal_wanted = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let (appended_tx, appended_rx) = watch::channel(0u64);
        let health = Arc::new(WalHealth::default());
        let appender = Appender {
            rx: append_rx,
            wal: writer,
            wal_reader: reader,
            wal_dir: wal_dir.clone(),
            storage: Arc::clone(&storage),
            roll_bytes: options.wal_segment_bytes,
            sealer: seal_tx,
            seal_overflow: Arc::clone(&seal_overflow),
            appended: appended_tx,
            cut_back_to: None,
            health: Arc::clone(&health),
            direct_io: options.wal_direct_io,
            cache: Arc::clone(&cache),
            staging: crate::tail_cache::Staging::new(options.wal_cache_bytes),
        };
        let housekeeper = Housekeeper {
            sealer: Sealer {
                wal_dir,
                storage: Arc::clone(&storage),
                registry: Arc::clone(&registry),
                sealed: wal.sealed.into_iter().collect(),
                ledger: Arc::clone(&ledger),
                failed: Vec::new(),
                cache: Arc::clone(&cache),
                indexes: Arc::clone(&indexes),
                direct_io: options.wal_direct_io,
                compaction: options.wal_compaction,
                stop: Arc::clone(&stopping),
                paused: Arc::clone(&compaction_paused),
                background: false,
                thread_start: options.compaction_thread_start,
            },
            rx: seal_rx,
            removal_wanted: Arc::clone(&removal_wanted),
            overflow: seal_overflow,
        };
        let spawn = |name: &str, f: Box<dyn FnOnce() + Send>| {
            std::thread::Builder::new()
                .name(name.to_string())
                .spawn(f)
                .map_err(|source| LogError::Io {
                    path: PathBuf::from(name),
                    source,
                })
        };
        let threads = vec![
            spawn("strata-append", Box::new(move || appender.run()))?,
            spawn("strata-seal", Box::new(move || housekeeper.run()))?,
        ];
        let producer_ids =
            crate::producer_ids::ProducerIdBlock::load(&options.data_dir.join("meta"))?;
        let store = LogStore {
            producer_ids: Mutex::new(producer_ids),
            data_dir: options.data_dir.clone(),
            storage,
            registry,
            meta,
            admin: Mutex::new(()),
            append_tx: Mutex::new(Some(append_tx)),
            appended: appended_rx,
            health,
            shared,
            topic_defaults,
            removal: Mutex::new(Some(removal_tx)),
            removal_wanted,
            threads: Mutex::new(threads),
            retention_stop: Mutex::new(None),
            stopping,
            compaction_paused,
        };
        store.request_removal();
        let store = Arc::new(store);
        let (stop_tx, stop_rx) = std::sync::mpsc::channel();
        let weak = Arc::downgrade(&store);
        let interval = options.retention_check_interval;
        let retention = spawn(
            "strata-retention",
            Box::new(move || retention::run(&weak, &stop_rx, interval)),
        )?;
        *store
            .retention_stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(stop_tx);
        store
            .threads
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(retention);
        Ok((store, report))
    }

    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    pub fn topic(&self, name: &str) -> Option<Arc<Topic>> {
        self.registry.topic(name)
    }

    /// Whether the WAL takes writes, and why not.
    pub fn wal_health(&self) -> &WalHealth {
        &self.health
    }

    /// A receiver that changes whenever new batches become readable.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.appended.clone()
    }

    /// Queues batches for appending, in call order; the ticket resolves
    /// once they are durable. Waits (backpressure) while the queue is full.
    pub async fn submit(&self, batches: Vec<PendingBatch>) -> AppendTicket {
        let count = batches.len();
        let sender = self
            .append_tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        let Some(sender) = sender else {
            return AppendTicket {
                count,
                answer: None,
            };
        };
        let (reply, answer) = oneshot::channel();
        let request = AppendRequest {
            batches,
            reply,
            queued: Instant::now(),
        };
        if sender.send(request).await.is_err() {
            return AppendTicket {
                count,
                answer: None,
            };
        }
        AppendTicket {
            count,
            answer: Some(answer),
        }
    }

    /// Appends validated batches; resolves once they are durable.
    pub async fn append(&self, batches: Vec<PendingBatch>) -> Vec<Result<Appended, LogError>> {
        self.submit(batches).await.wait().await
    }

    /// Creates a topic; with `validate_only`, only checks that it could be.
    pub fn create_topic(
        &self,
        name: &str,
        partitions: i32,
        configs: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<Arc<Topic>, LogError> {
        validate_topic_name(name)?;
        if partitions < 1 {
            return Err(LogError::InvalidPartitions(format!(
                "number of partitions must be at least 1, got {partitions}"
            )));
        }
        validate_overrides(&configs)?;
        let _admin = self.admin.lock().unwrap_or_else(PoisonError::into_inner);
        if self.registry.topic(name).is_some() {
            return Err(LogError::TopicExists(name.to_string()));
        }
        let record = TopicRecord {
            name: name.to_string(),
            id: TopicId::random().to_hex(),
            partitions,
            configs,
            log_start_offsets: Vec::new(),
        };
        if validate_only {
            let id = TopicId::from_hex(&record.id).unwrap_or_else(TopicId::random);
            return Ok(Arc::new(Topic::new(
                record.name,
                id,
                TopicConfig::resolve(record.configs, &self.topic_defaults),
                Vec::new(),
            )));
        }
        let topic = Arc::new(open_topic(
            &self.data_dir,
            &record,
            (&self.shared, self.storage.as_ref()),
            &self.topic_defaults,
        )?);
        self.registry.insert(Arc::clone(&topic));
        if let Err(e) = self.save_meta() {
            self.registry.remove(name);
            return Err(e);
        }
        Ok(topic)
    }

    /// Partition 0 of an internal one-partition topic (compacted), created on
    /// first use: the coordinators keep their state in such topics.
    pub fn internal_partition(&self, name: &str) -> Result<Arc<PartitionLog>, LogError> {
        let topic = match self.topic(name) {
            Some(topic) => topic,
            None => {
                let configs =
                    BTreeMap::from([("cleanup.policy".to_string(), "compact".to_string())]);
                self.create_topic(name, 1, configs, false)?
            }
        };
        topic.partition(0).ok_or(LogError::UnknownTopicOrPartition)
    }

    /// Deletes a topic and its data.
    pub fn delete_topic(&self, name: &str) -> Result<TopicId, LogError> {
        let _admin = self.admin.lock().unwrap_or_else(PoisonError::into_inner);
        let topic = self
            .registry
            .remove(name)
            .ok_or(LogError::UnknownTopicOrPartition)?;
        if let Err(e) = self.save_meta() {
            self.registry.insert(topic);
            return Err(e);
        }
        for partition in topic.partitions() {
            {
                let mut st = partition.state_mut();
                st.deleted = true;
                st.clear_batches();
            }
            if let Err(e) = self.storage.remove_dir_all(&partition.dir) {
                warn!(dir = %partition.dir.display(), error = %e, "cannot remove a deleted partition's files");
            }
        }
        self.request_removal();
        Ok(topic.id)
    }

    /// Grows a topic to `total` partitions.
    pub fn create_partitions(
        &self,
        name: &str,
        total: i32,
        validate_only: bool,
    ) -> Result<(), LogError> {
        let _admin = self.admin.lock().unwrap_or_else(PoisonError::into_inner);
        let topic = self
            .registry
            .topic(name)
            .ok_or(LogError::UnknownTopicOrPartition)?;
        let current = topic.partition_count();
        if total <= current {
            return Err(LogError::InvalidPartitions(format!(
                "topic currently has {current} partitions, which is higher than or equal to the requested {total}"
            )));
        }
        if validate_only {
            return Ok(());
        }
        let mut added = Vec::new();
        for index in current..total {
            let dir = partition_dir(&self.data_dir, topic.id, index);
            let log = recovery::open_partition(
                topic.id,
                index,
                dir,
                0,
                &self.shared,
                self.storage.as_ref(),
            )?;
            added.push(Arc::new(log));
        }
        topic.add_partitions(added);
        self.save_meta()
    }

    /// Replaces a topic's config overrides.
    pub fn set_topic_config(
        &self,
        name: &str,
        overrides: BTreeMap<String, String>,
        validate_only: bool,
    ) -> Result<(), LogError> {
        validate_overrides(&overrides)?;
        let _admin = self.admin.lock().unwrap_or_else(PoisonError::into_inner);
        let topic = self
            .registry
            .topic(name)
            .ok_or(LogError::UnknownTopicOrPartition)?;
        if validate_only {
            return Ok(());
        }
        let previous = topic.config();
        topic.set_config(TopicConfig::resolve(overrides, &self.topic_defaults));
        if let Err(e) = self.save_meta() {
            topic.set_config(previous);
            return Err(e);
        }
        Ok(())
    }

    /// A producer id never handed out before, even across restarts.
    pub fn allocate_producer_id(&self) -> Result<i64, LogError> {
        let mut block = self
            .producer_ids
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        block.allocate(self.storage.as_ref(), &self.data_dir.join("meta"))
    }

    fn save_meta(&self) -> Result<(), LogError> {
        let topics = self
            .registry
            .topics()
            .iter()
            .map(|topic| TopicRecord {
                name: topic.name.clone(),
                id: topic.id.to_hex(),
                partitions: topic.partition_count(),
                configs: topic.config().overrides,
                log_start_offsets: topic
                    .partitions()
                    .iter()
                    .map(|p| p.state().log_start)
                    .collect(),
            })
            .collect();
        self.meta.save(&MetaFile {
            version: crate::topic::META_VERSION,
            topics,
        })
    }

    /// Stops the append and seal threads once queued appends are durable.
    pub fn shutdown(&self) {
        self.stopping
            .store(true, std::sync::atomic::Ordering::Release);
        self.retention_stop
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.append_tx
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        self.removal
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let threads =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for thread in threads {
            if thread.join().is_err() {
                warn!("a storage thread panicked during shutdown");
            }
        }
    }
}

fn partition_dir(data_dir: &Path, topic: TopicId, index: i32) -> PathBuf {
    data_dir
        .join("partitions")
        .join(format!("{}-{index}", topic.to_hex()))
}

fn open_topic(
    data_dir: &Path,
    record: &TopicRecord,
    (shared, storage): (&SharedParts, &dyn Storage),
    topic_defaults: &BrokerDefaults,
) -> Result<Topic, LogError> {
    let id = TopicId::from_hex(&record.id).ok_or_else(|| LogError::Metadata {
        path: data_dir.join("meta"),
        reason: format!("topic {} has a malformed id {:?}", record.name, record.id),
    })?;
    let mut partitions = Vec::new();
    for index in 0..record.partitions {
        let log_start = usize::try_from(index)
            .ok()
            .and_then(|i| record.log_start_offsets.get(i))
            .copied()
            .unwrap_or(0);
        let dir = partition_dir(data_dir, id, index);
        partitions.push(Arc::new(recovery::open_partition(
            id, index, dir, log_start, shared, storage,
        )?));
    }
    Ok(Topic::new(
        record.name.clone(),
        id,
        TopicConfig::resolve(record.configs.clone(), topic_defaults),
        partitions,
    ))
}
