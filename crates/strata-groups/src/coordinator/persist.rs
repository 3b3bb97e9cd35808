//! What the group coordinator writes to `__consumer_offsets` and reads
//! back: commits and their deletion, group records (when a generation's
//! assignment is out, when a group empties, tombstones when it goes),
//! expiry, the replay at startup, and the rewrite of records of Strata's
//! first layout in Kafka's.
//!
//! Records are written in Kafka's layout only. A data dir from before holds
//! Strata's first layout, whose keys differ from Kafka's for the same
//! offset, so key compaction would keep both and, once the Kafka-layout
//! record is deleted, an old one would come back. So before serving, a
//! topic holding any such record is rewritten: every live offset and group
//! record is appended in Kafka's layout, then the log start moves past
//! everything older ([`strata_log::LogStore::replace_records`]). A crash in
//! between leaves both, and the next start rewrites again.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use strata_log::log_limit::LogLimit;
use strata_log::{LogError, PartitionLog, PendingBatch};
use strata_protocol::builder::{build_batch, RecordSpec};
use strata_protocol::kafka_protocol::ResponseError;
use tracing::{info, warn};

use super::{lock, now_ms, GroupCoordinator};
use crate::group::Group;
use crate::offsets::OffsetMap;
use crate::records::{CommittedOffset, Layout, OffsetChange};
use crate::GroupError;

/// Records per batch when the topic is rewritten.
const REWRITE_BATCH_RECORDS: usize = 500;

static RECORD_WRITE_FAILED: LogLimit = LogLimit::new(Duration::from_secs(10));
static UNREADABLE_RECORD: LogLimit = LogLimit::new(Duration::from_secs(10));

impl GroupCoordinator {
    /// Makes commits durable, then visible to OffsetFetch. A null metadata
    /// is stored as the empty string, as Kafka stores it.
    pub async fn commit(
        &self,
        group_id: &str,
        commits: Vec<(String, i32, CommittedOffset)>,
    ) -> Result<(), GroupError> {
        let changes: Vec<OffsetChange> = commits
            .into_iter()
            .map(|(topic, partition, mut value)| {
                value.metadata.get_or_insert_with(String::new);
                OffsetChange::Commit {
                    group: group_id.to_string(),
                    topic,
                    partition,
                    value: Some(value),
                }
            })
            .collect();
        self.write(changes).await
    }

    pub(super) async fn write(&self, changes: Vec<OffsetChange>) -> Result<(), GroupError> {
        if changes.is_empty() {
            return Ok(());
        }
        let _order = self.write_order.read().await;
        let pending = PendingBatch {
            partition: Arc::clone(&self.offsets_partition),
            batch: encode_batch(&changes)?,
            log_append_time: false,
        };
        let appended = self
            .store
            .append(vec![pending])
            .await
            .into_iter()
            .next()
            .ok_or(GroupError::Log(LogError::StorageUnavailable))??;
        let mut offsets = lock(&self.offsets);
        for (i, change) in changes.into_iter().enumerate() {
            offsets.apply(change, appended.base_offset + i64::try_from(i).unwrap_or(0));
        }
        Ok(())
    }

    /// Deletes a group without members: a tombstone for each of its
    /// offsets, then one for the group (the topic is compacted by key, so
    /// each key needs its own).
    pub async fn delete_group(&self, group_id: &str) -> i16 {
        {
            let groups = lock(&self.groups);
            if let Some(group) = groups.get(group_id) {
                if !group.is_empty() {
                    return ResponseError::NonEmptyGroup.code();
                }
            } else if !lock(&self.offsets).knows(group_id) {
                return ResponseError::GroupIdNotFound.code();
            }
        }
        let _order = self.record_order.lock().await;
        lock(&self.records_due).remove(group_id);
        let mut changes: Vec<OffsetChange> = lock(&self.offsets)
            .group(group_id)
            .into_iter()
            .map(|(topic, partition, _)| OffsetChange::Commit {
                group: group_id.to_string(),
                topic,
                partition,
                value: None,
            })
            .collect();
        changes.push(OffsetChange::Group {
            group: group_id.to_string(),
            value: None,
        });
        match self.write(changes).await {
            Ok(()) => {
                lock(&self.groups).remove(group_id);
                0
            }
            Err(e) => {
                warn!(group = group_id, error = %e, "cannot delete a group");
                ResponseError::KafkaStorageError.code()
            }
        }
    }

    /// Deletes committed offsets of a group that is not using them.
    pub async fn delete_offsets(
        &self,
        group_id: &str,
        partitions: Vec<(String, i32)>,
    ) -> Result<(), i16> {
        if lock(&self.groups)
            .get(group_id)
            .is_some_and(|g| !g.is_empty())
        {
            return Err(ResponseError::GroupSubscribedToTopic.code());
        }
        if !lock(&self.offsets).has_offsets(group_id) {
            return Err(ResponseError::GroupIdNotFound.code());
        }
        let changes = partitions
            .into_iter()
            .map(|(topic, partition)| OffsetChange::Commit {
                group: group_id.to_string(),
                topic,
                partition,
                value: None,
            })
            .collect();
        self.write(changes)
            .await
            .map_err(|_| ResponseError::KafkaStorageError.code())
    }

    /// Removes offsets of member-less groups older than the retention,
    /// then the records of groups left with neither members nor offsets
    /// (as Kafka's cleanup does).
    pub(super) async fn expire_offsets(&self) {
        let retention_ms =
            i64::try_from(self.options.offsets_retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms().saturating_sub(retention_ms);
        let candidates: Vec<String> = lock(&self.offsets).groups().into_iter().cloned().collect();
        for group_id in candidates {
            if lock(&self.groups)
                .get(&group_id)
                .is_some_and(|g| !g.is_empty())
            {
                continue;
            }
            let stale = lock(&self.offsets).older_than(&group_id, cutoff);
            if stale.is_empty() {
                continue;
            }
            info!(group = %group_id, partitions = stale.len(), "expiring committed offsets");
            if let Err(e) = self.delete_offsets(&group_id, stale).await {
                warn!(group = %group_id, code = e, "cannot expire committed offsets");
            }
        }
        self.remove_unused_records().await;
    }

    async fn remove_unused_records(&self) {
        let _order = self.record_order.lock().await;
        let unused: Vec<OffsetChange> = {
            let groups = lock(&self.groups);
            let unused = lock(&self.offsets).records_without_offsets();
            let due = lock(&self.records_due);
            unused
                .into_iter()
                .filter(|g| !groups.contains_key(g) && !due.contains_key(g))
                .map(|group| OffsetChange::Group { group, value: None })
                .collect()
        };
        if let Err(e) = self.write(unused).await {
            warn!(error = %e, "cannot remove the records of unused groups");
        }
    }

    /// Queues the group's record if it is where Kafka writes one and the
    /// topic does not hold it yet (same generation, leader and members).
    pub(super) fn note_record(&self, group: &Group) {
        if !group.is_recordable() {
            return;
        }
        let stored = {
            let offsets = lock(&self.offsets);
            offsets.record(&group.id).is_some_and(|r| {
                r.generation == group.generation
                    && r.leader == group.leader
                    && r.members
                        .iter()
                        .map(|m| &m.member_id)
                        .eq(group.members.keys())
            })
        };
        if !stored {
            lock(&self.records_due).insert(group.id.clone(), group.record(now_ms()));
        }
    }

    /// Writes the group records due, one batch.
    pub(super) async fn flush_records(&self) {
        let _order = self.record_order.lock().await;
        let due = std::mem::take(&mut *lock(&self.records_due));
        let changes: Vec<OffsetChange> = due
            .into_iter()
            .map(|(group, value)| OffsetChange::Group {
                group,
                value: Some(value),
            })
            .filter(|change| {
                let fits = change.encode().is_some();
                if !fits {
                    warn!(
                        ?change,
                        "a group record does not fit Kafka's layout; not written"
                    );
                }
                fits
            })
            .collect();
        if let Err(e) = self.write(changes).await {
            if let Some(suppressed) = RECORD_WRITE_FAILED.admit() {
                warn!(error = %e, suppressed, "cannot write group records");
            }
        }
    }

    /// Rewrites `__consumer_offsets` in Kafka's layout if it holds records
    /// of Strata's first layout; call before serving. Returns the records
    /// written (0: nothing to do).
    pub async fn upgrade_records(&self) -> Result<usize, GroupError> {
        if self.strata_layout_records.load(Ordering::Acquire) == 0 {
            return Ok(0);
        }
        let _order = self.write_order.write().await;
        let snapshot = lock(&self.offsets).snapshot();
        let batches = snapshot
            .chunks(REWRITE_BATCH_RECORDS)
            .map(encode_batch)
            .collect::<Result<Vec<Bytes>, GroupError>>()?;
        self.store
            .replace_records(&self.offsets_partition, batches)
            .await?;
        let found = self.strata_layout_records.swap(0, Ordering::AcqRel);
        info!(
            records = snapshot.len(),
            replaced = found,
            "__consumer_offsets rewritten in Kafka's record layout"
        );
        Ok(snapshot.len())
    }
}

/// One batch of offset-topic records.
fn encode_batch(changes: &[OffsetChange]) -> Result<Bytes, GroupError> {
    let mut encoded = Vec::with_capacity(changes.len());
    for change in changes {
        let group = match change {
            OffsetChange::Commit { group, .. } | OffsetChange::Group { group, .. } => group,
        };
        encoded.push(change.encode().ok_or_else(|| GroupError::RecordTooLarge {
            group: group.clone(),
        })?);
    }
    let now = now_ms();
    let specs: Vec<RecordSpec<'_>> = encoded
        .iter()
        .map(|(key, value)| RecordSpec {
            key: Some(key),
            value: value.as_deref(),
            timestamp: now,
        })
        .collect();
    Ok(Bytes::from(build_batch(&specs)))
}

/// What the replay of the offsets topic found.
pub(super) struct Replayed {
    pub offsets: OffsetMap,
    /// Records in Strata's first layout.
    pub strata_layout: usize,
}

/// Rebuilds the offsets and group records from the internal topic.
pub(super) fn replay(partition: &PartitionLog) -> Result<Replayed, GroupError> {
    let mut offsets = OffsetMap::default();
    let mut strata_layout = 0;
    partition.replay_records(|record| {
        let decoded = record
            .key
            .and_then(|key| OffsetChange::decode(key, record.value));
        match decoded {
            Some((change, layout)) => {
                if layout == Layout::Strata {
                    strata_layout += 1;
                }
                offsets.apply(change, record.offset);
            }
            None => {
                if let Some(suppressed) = UNREADABLE_RECORD.admit() {
                    warn!(
                        offset = record.offset,
                        suppressed, "a __consumer_offsets record in no known layout; skipped"
                    );
                }
            }
        }
    })?;
    Ok(Replayed {
        offsets,
        strata_layout,
    })
}
