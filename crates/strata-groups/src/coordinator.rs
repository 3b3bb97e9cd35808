//! The group coordinator: every group of this broker, their committed
//! offsets, and the clock that expires sessions and rebalances.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_log::{LogError, LogStore, PartitionLog, PendingBatch};
use strata_protocol::builder::{build_batch, RecordSpec};
use strata_protocol::kafka_protocol::ResponseError;
use tracing::{info, warn};

use crate::group::{Group, GroupState, JoinRequest, JoinResponse, Outcome, SyncResponse};
use crate::offsets::{CommittedOffset, OffsetChange, OffsetMap};
use crate::GroupError;

/// The internal topic holding committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";

/// How the coordinator behaves.
#[derive(Debug, Clone)]
pub struct CoordinatorOptions {
    /// Kafka's `group.initial.rebalance.delay.ms`.
    pub initial_rebalance_delay: Duration,
    /// Kafka's `offsets.retention.minutes`: offsets of a group without
    /// members expire this long after their last commit.
    pub offsets_retention: Duration,
    pub min_session_timeout: Duration,
    pub max_session_timeout: Duration,
}

impl Default for CoordinatorOptions {
    fn default() -> Self {
        CoordinatorOptions {
            initial_rebalance_delay: Duration::from_secs(3),
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            min_session_timeout: Duration::from_secs(6),
            max_session_timeout: Duration::from_secs(30 * 60),
        }
    }
}

/// A group as DescribeGroups reports it.
#[derive(Debug, Clone)]
pub struct GroupDescription {
    pub state: GroupState,
    pub protocol_type: String,
    pub protocol: String,
    /// member id, instance id, client id, client host, metadata, assignment
    pub members: Vec<(String, Option<String>, String, String, Bytes, Bytes)>,
}

/// All groups of this broker.
#[derive(Debug)]
pub struct GroupCoordinator {
    store: Arc<LogStore>,
    offsets_partition: Arc<PartitionLog>,
    groups: Mutex<HashMap<String, Group>>,
    offsets: Mutex<OffsetMap>,
    /// Commits hold it shared; rewriting the offsets topic holds it alone,
    /// so no commit lands between the live state read and its rewrite.
    write_order: tokio::sync::RwLock<()>,
    options: CoordinatorOptions,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

impl GroupCoordinator {
    /// Opens the coordinator: creates the offsets topic if needed and
    /// replays it.
    pub fn open(
        store: Arc<LogStore>,
        options: CoordinatorOptions,
    ) -> Result<Arc<Self>, GroupError> {
        let offsets_partition = store.internal_partition(OFFSETS_TOPIC)?;
        let offsets = replay(&offsets_partition)?;
        info!(
            groups = offsets.groups().count(),
            "committed offsets restored"
        );
        Ok(Arc::new(GroupCoordinator {
            store,
            offsets_partition,
            groups: Mutex::new(HashMap::new()),
            offsets: Mutex::new(offsets),
            write_order: tokio::sync::RwLock::new(()),
            options,
        }))
    }

    /// Runs the session and rebalance clock until the coordinator is dropped elsewhere.
    pub async fn run_clock(self: Arc<Self>, mut shutdown: tokio::sync::watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        let mut last_expiry = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let now = Instant::now();
            {
                let mut groups = lock(&self.groups);
                for group in groups.values_mut() {
                    group.tick(now);
                }
                // Bounded memory: groups without members are forgotten.
                groups.retain(|_, group| !group.is_idle());
            }
            if now.duration_since(last_expiry) > Duration::from_secs(60) {
                last_expiry = now;
                self.expire_offsets().await;
            }
        }
    }

    /// The settings the coordinator runs with (for DescribeConfigs).
    pub fn options(&self) -> &CoordinatorOptions {
        &self.options
    }

    pub fn session_timeout_valid(&self, timeout: Duration) -> bool {
        timeout >= self.options.min_session_timeout && timeout <= self.options.max_session_timeout
    }

    pub fn join(&self, group_id: &str, request: JoinRequest) -> Outcome<JoinResponse> {
        let mut groups = lock(&self.groups);
        let delay = self.options.initial_rebalance_delay;
        let group = groups
            .entry(group_id.to_string())
            .or_insert_with(|| Group::new(group_id.to_string(), delay));
        group.join(request, Instant::now())
    }

    pub fn sync(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
    ) -> Outcome<SyncResponse> {
        match lock(&self.groups).get_mut(group_id) {
            Some(group) => group.sync(
                member_id,
                instance_id,
                generation,
                assignments,
                Instant::now(),
            ),
            None => Outcome::Now(SyncResponse {
                error: ResponseError::UnknownMemberId.code(),
                ..SyncResponse::default()
            }),
        }
    }

    pub fn heartbeat(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> i16 {
        match lock(&self.groups).get_mut(group_id) {
            Some(group) => group.heartbeat(member_id, instance_id, generation, Instant::now()),
            None => ResponseError::UnknownMemberId.code(),
        }
    }

    pub fn leave(&self, group_id: &str, member_id: &str, instance_id: Option<&str>) -> i16 {
        match lock(&self.groups).get_mut(group_id) {
            Some(group) => group.leave(member_id, instance_id, Instant::now()),
            None => ResponseError::UnknownMemberId.code(),
        }
    }

    /// Checks who may commit: a current member of the current generation,
    /// or anyone (generation < 0, no member id) while the group has no members.
    pub fn check_commit(
        &self,
        group_id: &str,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> i16 {
        let groups = lock(&self.groups);
        let Some(group) = groups.get(group_id) else {
            return if generation < 0 {
                0
            } else {
                ResponseError::IllegalGeneration.code()
            };
        };
        if generation < 0 && member_id.is_empty() {
            return if group.is_empty() {
                0
            } else {
                ResponseError::UnknownMemberId.code()
            };
        }
        if let Err(e) = group.check_member(member_id, instance_id, generation) {
            return e.code();
        }
        if group.state == GroupState::CompletingRebalance {
            return ResponseError::RebalanceInProgress.code();
        }
        0
    }

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

    async fn write(&self, changes: Vec<OffsetChange>) -> Result<(), GroupError> {
        if changes.is_empty() {
            return Ok(());
        }
        let _order = self.write_order.read().await;
        let pending = PendingBatch {
            partition: Arc::clone(&self.offsets_partition),
            batch: encode_batch(&changes),
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

    pub fn committed(
        &self,
        group_id: &str,
        topic: &str,
        partition: i32,
    ) -> Option<CommittedOffset> {
        lock(&self.offsets).get(group_id, topic, partition).cloned()
    }

    pub fn committed_all(&self, group_id: &str) -> Vec<(String, i32, CommittedOffset)> {
        lock(&self.offsets).group(group_id)
    }

    /// Consumer lag: the partition's high watermark minus the committed offset.
    pub fn lag(&self, group_id: &str, topic: &str, partition: i32) -> Option<i64> {
        let committed = self.committed(group_id, topic, partition)?;
        let (_, high_watermark) = self.store.topic(topic)?.partition(partition)?.bounds();
        Some((high_watermark - committed.offset).max(0))
    }

    /// `(group, protocol type, state)` of every group, including groups
    /// known only by their committed offsets.
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        let groups = lock(&self.groups);
        let mut out: BTreeMap<String, (String, GroupState)> = lock(&self.offsets)
            .groups()
            .map(|g| (g.clone(), ("consumer".to_string(), GroupState::Empty)))
            .collect();
        for (id, group) in groups.iter() {
            out.insert(
                id.clone(),
                (group.protocol_type.clone().unwrap_or_default(), group.state),
            );
        }
        out.into_iter().map(|(id, (t, s))| (id, t, s)).collect()
    }

    pub fn describe(&self, group_id: &str) -> Option<GroupDescription> {
        let groups = lock(&self.groups);
        let Some(group) = groups.get(group_id) else {
            let known = lock(&self.offsets).groups().any(|g| g == group_id);
            return known.then(|| GroupDescription {
                state: GroupState::Empty,
                protocol_type: "consumer".to_string(),
                protocol: String::new(),
                members: Vec::new(),
            });
        };
        let protocol = group.protocol.clone().unwrap_or_default();
        Some(GroupDescription {
            state: group.state,
            protocol_type: group.protocol_type.clone().unwrap_or_default(),
            protocol: protocol.clone(),
            members: group
                .members
                .values()
                .map(|m| {
                    let metadata = m
                        .protocols
                        .iter()
                        .find(|(name, _)| *name == protocol)
                        .map(|(_, meta)| meta.clone())
                        .unwrap_or_default();
                    (
                        m.id.clone(),
                        m.instance_id.clone(),
                        m.client_id.clone(),
                        m.client_host.clone(),
                        metadata,
                        m.assignment.clone(),
                    )
                })
                .collect(),
        })
    }

    /// Deletes a group without members, and its offsets.
    pub async fn delete_group(&self, group_id: &str) -> i16 {
        {
            let groups = lock(&self.groups);
            if let Some(group) = groups.get(group_id) {
                if !group.is_empty() {
                    return ResponseError::NonEmptyGroup.code();
                }
            } else if !lock(&self.offsets).groups().any(|g| g == group_id) {
                return ResponseError::GroupIdNotFound.code();
            }
        }
        // A tombstone for each offset, then one for the group: the offsets
        // topic is compacted by key, so each key needs its own.
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
        changes.push(OffsetChange::DeleteGroup {
            group: group_id.to_string(),
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
        if !lock(&self.offsets).groups().any(|g| g == group_id) {
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

    /// Removes offsets of member-less groups older than the retention.
    async fn expire_offsets(&self) {
        let retention_ms =
            i64::try_from(self.options.offsets_retention.as_millis()).unwrap_or(i64::MAX);
        let cutoff = now_ms().saturating_sub(retention_ms);
        let candidates: Vec<String> = lock(&self.offsets).groups().cloned().collect();
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
    }
}

/// One batch of offset-topic records.
fn encode_batch(changes: &[OffsetChange]) -> Bytes {
    let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> =
        changes.iter().map(OffsetChange::encode).collect();
    let now = now_ms();
    let specs: Vec<RecordSpec<'_>> = encoded
        .iter()
        .map(|(key, value)| RecordSpec {
            key: Some(key),
            value: value.as_deref(),
            timestamp: now,
        })
        .collect();
    Bytes::from(build_batch(&specs))
}

/// Rebuilds the offset map from the internal topic.
fn replay(partition: &PartitionLog) -> Result<OffsetMap, GroupError> {
    let mut map = OffsetMap::default();
    partition.replay_records(|record| {
        if let Some(change) = record
            .key
            .and_then(|k| OffsetChange::decode(k, record.value))
        {
            map.apply(change, record.offset);
        }
    })?;
    Ok(map)
}
