//! How transaction states reach `__transaction_state` and come back: one
//! record per state change, in Kafka's layout ([`crate::records`]); the
//! replay at startup; and the rewrite of records of Strata's first layout.
//!
//! A data dir from before holds Strata's first layout, whose keys differ
//! from Kafka's for the same transactional id, so key compaction would
//! keep both. Before serving, a topic holding any such record is
//! rewritten: every id's latest state is appended in Kafka's layout, then
//! the log start moves past everything older
//! ([`strata_log::LogStore::replace_records`]); a crash in between leaves
//! both, and the next start rewrites again.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_log::log_limit::LogLimit;
use strata_log::{LogError, PartitionLog, PendingBatch};
use strata_protocol::builder::{build_batch, RecordSpec};
use tracing::{info, warn};

use super::{now_ms, TransactionCoordinator};
use crate::records::{self, Layout};
use crate::state::TxnState;
use crate::TxnError;

/// Records per batch when the topic is rewritten.
const REWRITE_BATCH_RECORDS: usize = 500;

static UNREADABLE_RECORD: LogLimit = LogLimit::new(Duration::from_secs(10));

impl TransactionCoordinator {
    /// Makes a state change durable.
    pub(super) async fn persist(&self, id: &str, state: &TxnState) -> Result<(), TxnError> {
        let pending = PendingBatch {
            partition: Arc::clone(&self.state_partition),
            batch: encode_batch(&[(id, state)])?,
            log_append_time: false,
        };
        match self.store.append(vec![pending]).await.into_iter().next() {
            Some(Ok(_)) => Ok(()),
            Some(Err(e)) => Err(e.into()),
            None => Err(TxnError::Log(LogError::StorageUnavailable)),
        }
    }

    /// Rewrites `__transaction_state` in Kafka's layout if it holds records
    /// of Strata's first layout; call before serving. Returns the records
    /// written (0: nothing to do).
    pub async fn upgrade_records(&self) -> Result<usize, TxnError> {
        if self.strata_layout_records.load(Ordering::Acquire) == 0 {
            return Ok(0);
        }
        let txns = self.txns.lock().await;
        let mut states: Vec<(&str, &TxnState)> =
            txns.iter().map(|(id, s)| (id.as_str(), s)).collect();
        states.sort_by_key(|(id, _)| *id);
        let batches = states
            .chunks(REWRITE_BATCH_RECORDS)
            .map(encode_batch)
            .collect::<Result<Vec<Bytes>, TxnError>>()?;
        self.store
            .replace_records(&self.state_partition, batches)
            .await?;
        let found = self.strata_layout_records.swap(0, Ordering::AcqRel);
        info!(
            records = states.len(),
            replaced = found,
            "__transaction_state rewritten in Kafka's record layout"
        );
        Ok(states.len())
    }
}

/// One batch of state-topic records.
fn encode_batch(states: &[(&str, &TxnState)]) -> Result<Bytes, TxnError> {
    let mut encoded = Vec::with_capacity(states.len());
    for (id, state) in states {
        encoded.push(
            records::encode(id, state).ok_or_else(|| TxnError::RecordTooLarge {
                transactional_id: (*id).to_string(),
            })?,
        );
    }
    let now = now_ms();
    let specs: Vec<RecordSpec<'_>> = encoded
        .iter()
        .map(|(key, value)| RecordSpec {
            key: Some(key),
            value: Some(value),
            timestamp: now,
        })
        .collect();
    Ok(Bytes::from(build_batch(&specs)))
}

/// What the replay of the state topic found.
pub(super) struct Replayed {
    pub txns: HashMap<String, TxnState>,
    /// Records in Strata's first layout.
    pub strata_layout: usize,
}

/// Rebuilds every transactional id's latest state from the state topic.
pub(super) fn replay(partition: &PartitionLog) -> Result<Replayed, TxnError> {
    let mut txns = HashMap::new();
    let mut strata_layout = 0;
    partition.replay_records(|record| {
        let decoded = record
            .key
            .and_then(|key| records::decode(key, record.value));
        let Some((id, state, layout)) = decoded else {
            if let Some(suppressed) = UNREADABLE_RECORD.admit() {
                warn!(
                    offset = record.offset,
                    suppressed, "a __transaction_state record in no known layout; skipped"
                );
            }
            return;
        };
        if layout == Layout::Strata {
            strata_layout += 1;
        }
        match state {
            Some(state) => txns.insert(id, state),
            None => txns.remove(&id),
        };
    })?;
    Ok(Replayed {
        txns,
        strata_layout,
    })
}
