//! The group coordinator: every group of this broker, their committed
//! offsets, and the clock that expires sessions and rebalances. What it
//! writes to `__consumer_offsets`, and how it reads the topic back, is in
//! `persist`.

mod persist;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_log::{LogStore, PartitionLog};
use strata_protocol::coordinator_records::group::GroupMetadataValue;
use strata_protocol::kafka_protocol::ResponseError;
use tracing::info;

use crate::group::{Group, GroupState, JoinRequest, JoinResponse, Outcome, SyncResponse};
use crate::offsets::OffsetMap;
use crate::records::CommittedOffset;
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
    /// Kafka's `offsets.retention.check.interval.ms`: how often expired
    /// offsets, and records of groups left with neither members nor
    /// offsets, are removed.
    pub retention_check_interval: Duration,
}

impl Default for CoordinatorOptions {
    fn default() -> Self {
        CoordinatorOptions {
            initial_rebalance_delay: Duration::from_secs(3),
            offsets_retention: Duration::from_secs(7 * 24 * 3600),
            min_session_timeout: Duration::from_secs(6),
            max_session_timeout: Duration::from_secs(30 * 60),
            retention_check_interval: Duration::from_secs(60),
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
    /// Group records waiting to be written, the latest per group.
    records_due: Mutex<BTreeMap<String, GroupMetadataValue>>,
    /// Held while group records or a group's tombstones are written, so a
    /// group's record never lands after its tombstone.
    record_order: tokio::sync::Mutex<()>,
    /// Records of Strata's first layout found at startup (a rewrite is due).
    strata_layout_records: AtomicUsize,
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
    /// replays it. Before serving, [`Self::upgrade_records`] rewrites
    /// records of Strata's first layout in Kafka's.
    pub fn open(
        store: Arc<LogStore>,
        options: CoordinatorOptions,
    ) -> Result<Arc<Self>, GroupError> {
        let offsets_partition = store.internal_partition(OFFSETS_TOPIC)?;
        let replayed = persist::replay(&offsets_partition)?;
        info!(
            groups = replayed.offsets.groups().len(),
            "committed offsets restored"
        );
        Ok(Arc::new(GroupCoordinator {
            store,
            offsets_partition,
            groups: Mutex::new(HashMap::new()),
            offsets: Mutex::new(replayed.offsets),
            write_order: tokio::sync::RwLock::new(()),
            records_due: Mutex::new(BTreeMap::new()),
            record_order: tokio::sync::Mutex::new(()),
            strata_layout_records: AtomicUsize::new(replayed.strata_layout),
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
                    let before = (group.generation, group.state);
                    group.tick(now);
                    if (group.generation, group.state) != before {
                        self.note_record(group);
                    }
                }
                // Bounded memory: groups without members are forgotten
                // (their record is already due, if they need one).
                groups.retain(|_, group| !group.is_idle());
            }
            self.flush_records().await;
            if now.duration_since(last_expiry) >= self.options.retention_check_interval {
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
        let group = groups.entry(group_id.to_string()).or_insert_with(|| {
            // Generations continue from the group's last record (written,
            // or still due).
            let mut group = Group::new(group_id.to_string(), delay);
            let written = lock(&self.offsets).record(group_id).map(|r| r.generation);
            let due = lock(&self.records_due).get(group_id).map(|r| r.generation);
            group.generation = written.max(due).unwrap_or(0).max(0);
            group
        });
        let outcome = group.join(request, Instant::now());
        self.note_record(group);
        outcome
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
            Some(group) => {
                let outcome = group.sync(
                    member_id,
                    instance_id,
                    generation,
                    assignments,
                    Instant::now(),
                );
                self.note_record(group);
                outcome
            }
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
            Some(group) => {
                let code = group.leave(member_id, instance_id, Instant::now());
                self.note_record(group);
                code
            }
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
    /// known only by their committed offsets or their record.
    pub fn list(&self) -> Vec<(String, String, GroupState)> {
        let groups = lock(&self.groups);
        let stored = lock(&self.offsets);
        let mut out: BTreeMap<String, (String, GroupState)> = stored
            .groups()
            .into_iter()
            .map(|g| {
                (
                    g.clone(),
                    (stored_protocol_type(&stored, g), GroupState::Empty),
                )
            })
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
            let stored = lock(&self.offsets);
            return stored.knows(group_id).then(|| GroupDescription {
                state: GroupState::Empty,
                protocol_type: stored_protocol_type(&stored, group_id),
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
}

/// The protocol type of a group not in memory: its record's, else
/// "consumer" (a group known only by its offsets).
fn stored_protocol_type(stored: &OffsetMap, group: &str) -> String {
    stored
        .record(group)
        .map(|r| r.protocol_type.clone())
        .filter(|t| !t.is_empty())
        .unwrap_or_else(|| "consumer".to_string())
}
