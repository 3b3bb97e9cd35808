//! The transaction coordinator: transactional ids, their producer ids and
//! epochs, the partitions and groups of each open transaction, and the
//! commit/abort markers that end it.
//!
//! Every state change is written to `__transaction_state` (through the WAL)
//! before it is acknowledged. Ending a transaction: the state moves to
//! Prepare{Commit,Abort} (durable), markers go to every partition of the
//! transaction, offsets committed in it reach the group coordinator (on
//! commit), and the state moves to Complete{Commit,Abort}. A crash between
//! those steps is finished at startup. How states are written and read
//! back is in `persist`.

mod persist;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_groups::CommittedOffset;
use strata_groups::GroupCoordinator;
use strata_log::{LogError, LogStore, PartitionLog, PendingBatch};
use strata_protocol::builder::build_control_batch;
use strata_protocol::kafka_protocol::ResponseError;
use tokio::sync::Mutex;
use tracing::{info, warn};

use crate::state::{PendingOffset, Status, TxnState};
use crate::TxnError;

/// The internal topic holding transaction states.
pub const STATE_TOPIC: &str = "__transaction_state";

/// Kafka's `transaction.max.timeout.ms` default.
pub const MAX_TIMEOUT_MS: i32 = 900_000;

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// All transactional ids of this broker.
#[derive(Debug)]
pub struct TransactionCoordinator {
    store: Arc<LogStore>,
    groups: Arc<GroupCoordinator>,
    state_partition: Arc<PartitionLog>,
    /// One lock for all transactions: operations are short (one or two
    /// group commits), and this keeps each id's steps strictly ordered.
    txns: Mutex<HashMap<String, TxnState>>,
    /// Records of Strata's first layout found at startup (a rewrite is due).
    strata_layout_records: AtomicUsize,
}

type Result<T> = std::result::Result<T, ResponseError>;

impl TransactionCoordinator {
    /// Opens the coordinator: creates the state topic if needed and
    /// replays it. Before serving, [`Self::upgrade_records`] rewrites
    /// records of Strata's first layout in Kafka's.
    pub fn open(
        store: Arc<LogStore>,
        groups: Arc<GroupCoordinator>,
    ) -> std::result::Result<Arc<Self>, TxnError> {
        let state_partition = store.internal_partition(STATE_TOPIC)?;
        let replayed = persist::replay(&state_partition)?;
        info!(
            transactional_ids = replayed.txns.len(),
            "transaction states restored"
        );
        Ok(Arc::new(TransactionCoordinator {
            store,
            groups,
            state_partition,
            txns: Mutex::new(replayed.txns),
            strata_layout_records: AtomicUsize::new(replayed.strata_layout),
        }))
    }

    /// Finishes transactions a crash left half-ended, then aborts
    /// transactions that outlive their timeout, until shutdown.
    pub async fn run_clock(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        self.finish_prepared().await;
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let now = now_ms();
            let mut txns = self.txns.lock().await;
            let expired: Vec<String> = txns
                .iter()
                .filter(|(_, s)| s.expired(now))
                .map(|(id, _)| id.clone())
                .collect();
            for id in expired {
                let Some(mut state) = txns.get(&id).cloned() else {
                    continue;
                };
                info!(transactional_id = %id, "transaction timed out; aborting");
                // Bump the epoch so the timed-out producer is fenced.
                bump_epoch(&mut state, &self.store);
                if let Err(e) = self.end(&id, &mut state, false).await {
                    warn!(transactional_id = %id, error = %e, "cannot abort a timed-out transaction");
                    continue;
                }
                txns.insert(id, state);
            }
        }
    }

    async fn finish_prepared(&self) {
        let mut txns = self.txns.lock().await;
        let prepared: Vec<String> = txns
            .iter()
            .filter(|(_, s)| matches!(s.status, Status::PrepareCommit | Status::PrepareAbort))
            .map(|(id, _)| id.clone())
            .collect();
        for id in prepared {
            let Some(mut state) = txns.get(&id).cloned() else {
                continue;
            };
            let commit = state.status == Status::PrepareCommit;
            match self.end(&id, &mut state, commit).await {
                Ok(()) => {
                    txns.insert(id, state);
                }
                Err(e) => {
                    warn!(transactional_id = %id, error = %e, "cannot finish a prepared transaction")
                }
            }
        }
    }

    /// InitProducerId with a transactional id.
    pub async fn init_producer_id(
        &self,
        id: &str,
        timeout_ms: i32,
        producer_id: i64,
        epoch: i16,
    ) -> Result<(i64, i16)> {
        if timeout_ms <= 0 || timeout_ms > MAX_TIMEOUT_MS {
            return Err(ResponseError::InvalidTransactionTimeout);
        }
        let mut txns = self.txns.lock().await;
        let mut state = match txns.get(id) {
            None => {
                let pid = self
                    .store
                    .allocate_producer_id()
                    .map_err(|_| ResponseError::KafkaStorageError)?;
                TxnState::new(pid, timeout_ms, now_ms())
            }
            Some(existing) => {
                let mut state = existing.clone();
                if producer_id >= 0 && (producer_id != state.producer_id || epoch != state.epoch) {
                    return Err(ResponseError::ProducerFenced);
                }
                // A new incarnation fences the old one: new epoch, and its
                // open transaction is aborted under that epoch.
                bump_epoch(&mut state, &self.store);
                if state.in_flight() {
                    let commit = state.status == Status::PrepareCommit;
                    self.end(id, &mut state, commit)
                        .await
                        .map_err(|_| ResponseError::KafkaStorageError)?;
                }
                state.timeout_ms = timeout_ms;
                state.status = Status::Empty;
                state
            }
        };
        state.updated_ms = now_ms();
        self.persist(id, &state)
            .await
            .map_err(|_| ResponseError::KafkaStorageError)?;
        let answer = (state.producer_id, state.epoch);
        txns.insert(id.to_string(), state);
        Ok(answer)
    }

    /// Checks that a request comes from the current producer of `id`.
    fn check<'a>(
        txns: &'a mut HashMap<String, TxnState>,
        id: &str,
        producer_id: i64,
        epoch: i16,
    ) -> Result<&'a mut TxnState> {
        let state = txns
            .get_mut(id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if state.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if epoch != state.epoch {
            return Err(ResponseError::ProducerFenced);
        }
        if matches!(state.status, Status::PrepareCommit | Status::PrepareAbort) {
            return Err(ResponseError::ConcurrentTransactions);
        }
        Ok(state)
    }

    /// Every transactional id's state, for the admin APIs (read only).
    pub async fn states(&self) -> Vec<(String, TxnState)> {
        let txns = self.txns.lock().await;
        let mut all: Vec<(String, TxnState)> = txns
            .iter()
            .map(|(id, state)| (id.clone(), state.clone()))
            .collect();
        all.sort_by(|a, b| a.0.cmp(&b.0));
        all
    }

    /// AddPartitionsToTxn: returns one error code per partition asked for.
    pub async fn add_partitions(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        partitions: Vec<(String, i32)>,
    ) -> Vec<((String, i32), i16)> {
        let mut txns = self.txns.lock().await;
        let all = |code: i16, partitions: Vec<(String, i32)>| {
            partitions.into_iter().map(|p| (p, code)).collect()
        };
        let state = match Self::check(&mut txns, id, producer_id, epoch) {
            Ok(state) => state,
            Err(e) => return all(e.code(), partitions),
        };
        let unknown: Vec<bool> = partitions
            .iter()
            .map(|(t, p)| {
                self.store
                    .topic(t)
                    .and_then(|topic| topic.partition(*p))
                    .is_none()
            })
            .collect();
        if unknown.iter().any(|u| *u) {
            return partitions
                .into_iter()
                .zip(unknown)
                .map(|(p, u)| {
                    let e = if u {
                        ResponseError::UnknownTopicOrPartition
                    } else {
                        ResponseError::OperationNotAttempted
                    };
                    (p, e.code())
                })
                .collect();
        }
        let mut next = state.clone();
        next.partitions.extend(partitions.iter().cloned());
        next.updated_ms = now_ms();
        next.begin(next.updated_ms);
        if self.persist(id, &next).await.is_err() {
            return all(ResponseError::KafkaStorageError.code(), partitions);
        }
        *state = next;
        all(0, partitions)
    }

    /// AddOffsetsToTxn: the group's offsets will be committed with the transaction.
    pub async fn add_offsets(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        group: &str,
    ) -> Result<()> {
        let mut txns = self.txns.lock().await;
        let state = Self::check(&mut txns, id, producer_id, epoch)?;
        let mut next = state.clone();
        next.groups.insert(group.to_string());
        next.updated_ms = now_ms();
        next.begin(next.updated_ms);
        self.persist(id, &next)
            .await
            .map_err(|_| ResponseError::KafkaStorageError)?;
        *state = next;
        Ok(())
    }

    /// TxnOffsetCommit: offsets that become the group's committed offsets
    /// when the transaction commits.
    pub async fn commit_offsets(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        offsets: Vec<PendingOffset>,
    ) -> Result<()> {
        let mut txns = self.txns.lock().await;
        let state = Self::check(&mut txns, id, producer_id, epoch)?;
        if offsets.iter().any(|o| !state.groups.contains(&o.group)) {
            return Err(ResponseError::InvalidTxnState);
        }
        let mut next = state.clone();
        for offset in offsets {
            next.pending_offsets.retain(|o| {
                !(o.group == offset.group
                    && o.topic == offset.topic
                    && o.partition == offset.partition)
            });
            next.pending_offsets.push(offset);
        }
        next.updated_ms = now_ms();
        self.persist(id, &next)
            .await
            .map_err(|_| ResponseError::KafkaStorageError)?;
        *state = next;
        Ok(())
    }

    /// EndTxn.
    pub async fn end_txn(
        &self,
        id: &str,
        producer_id: i64,
        epoch: i16,
        commit: bool,
    ) -> Result<()> {
        let mut txns = self.txns.lock().await;
        let state = txns
            .get(id)
            .ok_or(ResponseError::InvalidProducerIdMapping)?;
        if state.producer_id != producer_id {
            return Err(ResponseError::InvalidProducerIdMapping);
        }
        if epoch != state.epoch {
            return Err(ResponseError::ProducerFenced);
        }
        match (state.status, commit) {
            (Status::CompleteCommit, true) | (Status::CompleteAbort, false) => return Ok(()),
            (Status::Ongoing, _)
            | (Status::PrepareCommit, true)
            | (Status::PrepareAbort, false) => {}
            // Nothing was added since the last transaction ended: there is
            // no transaction to end (Kafka answers the same).
            _ => return Err(ResponseError::InvalidTxnState),
        }
        let mut next = state.clone();
        self.end(id, &mut next, commit)
            .await
            .map_err(|_| ResponseError::KafkaStorageError)?;
        txns.insert(id.to_string(), next);
        Ok(())
    }

    /// Prepares, writes markers (and, on commit, offsets), completes.
    async fn end(
        &self,
        id: &str,
        state: &mut TxnState,
        commit: bool,
    ) -> std::result::Result<(), TxnError> {
        state.status = if commit {
            Status::PrepareCommit
        } else {
            Status::PrepareAbort
        };
        state.updated_ms = now_ms();
        self.persist(id, state).await?;
        let now = now_ms();
        let markers: Vec<PendingBatch> = state
            .partitions
            .iter()
            .filter_map(|(topic, index)| self.store.topic(topic)?.partition(*index))
            .map(|partition| PendingBatch {
                partition,
                batch: Bytes::from(build_control_batch(
                    state.producer_id,
                    state.epoch,
                    commit,
                    now,
                )),
                log_append_time: false,
            })
            .collect();
        for result in self.store.append(markers).await {
            match result {
                Ok(_) | Err(LogError::UnknownTopicOrPartition) => {}
                Err(e) => return Err(e.into()),
            }
        }
        if commit {
            let mut by_group: BTreeMap<String, Vec<(String, i32, CommittedOffset)>> =
                BTreeMap::new();
            for o in &state.pending_offsets {
                by_group.entry(o.group.clone()).or_default().push((
                    o.topic.clone(),
                    o.partition,
                    CommittedOffset {
                        offset: o.offset,
                        leader_epoch: o.leader_epoch,
                        metadata: o.metadata.clone(),
                        commit_ms: now,
                    },
                ));
            }
            for (group, offsets) in by_group {
                self.groups.commit(&group, offsets).await?;
            }
        }
        state.status = if commit {
            Status::CompleteCommit
        } else {
            Status::CompleteAbort
        };
        state.partitions.clear();
        state.groups.clear();
        state.pending_offsets.clear();
        state.updated_ms = now_ms();
        self.persist(id, state).await
    }
}

/// Moves to the next epoch (a fresh producer id when the epoch is exhausted).
fn bump_epoch(state: &mut TxnState, store: &LogStore) {
    if state.epoch < i16::MAX - 1 {
        state.epoch += 1;
    } else if let Ok(pid) = store.allocate_producer_id() {
        state.producer_id = pid;
        state.epoch = 0;
    }
}
