//! One consumer group's membership and rebalance state machine (Kafka's
//! classic protocol), as pure logic: no sockets, no clock of its own —
//! every call gets `now`, and waiting requests are oneshot channels.
//!
//! ```text
//!   Empty ──join──▶ PreparingRebalance ──all joined / timeout──▶ CompletingRebalance
//!     ▲                  ▲        ▲                                   │ leader's SyncGroup
//!     └── last member ───┘        └──── join, leave, expiry ──── Stable ◀┘
//! ```

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::Bytes;
use strata_protocol::kafka_protocol::ResponseError;
use tokio::sync::oneshot;

mod member_id;
mod messages;
mod record;
use member_id::new_member_id;
pub use messages::{GroupState, JoinRequest, JoinResponse, Outcome, SyncResponse};

/// A member of the group.
#[derive(Debug)]
pub struct Member {
    pub id: String,
    pub instance_id: Option<String>,
    pub client_id: String,
    pub client_host: String,
    pub protocols: Vec<(String, Bytes)>,
    pub session_timeout: Duration,
    pub rebalance_timeout: Duration,
    pub assignment: Bytes,
    last_seen: Instant,
    join_waiter: Option<oneshot::Sender<JoinResponse>>,
    sync_waiter: Option<oneshot::Sender<SyncResponse>>,
}

/// A consumer group.
#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub state: GroupState,
    pub generation: i32,
    pub protocol_type: Option<String>,
    pub protocol: Option<String>,
    pub leader: Option<String>,
    pub members: BTreeMap<String, Member>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    pending: BTreeMap<String, Instant>,
    rebalance_deadline: Option<Instant>,
    initial_delay: Duration,
    initial_rebalance: bool,
}

/// Member ids handed out with MEMBER_ID_REQUIRED and not yet used, per group.
pub const MAX_PENDING_MEMBERS: usize = 10_000;

fn err(e: ResponseError) -> i16 {
    e.code()
}

impl Group {
    pub fn new(id: String, initial_delay: Duration) -> Self {
        Group {
            id,
            state: GroupState::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            pending: BTreeMap::new(),
            rebalance_deadline: None,
            initial_delay,
            initial_rebalance: false,
        }
    }

    fn instance_owner(&self, instance: &str) -> Option<String> {
        self.members
            .values()
            .find(|m| m.instance_id.as_deref() == Some(instance))
            .map(|m| m.id.clone())
    }

    /// Handles JoinGroup.
    pub fn join(&mut self, request: JoinRequest, now: Instant) -> Outcome<JoinResponse> {
        let fail = |e: ResponseError, member_id: &str| {
            Outcome::Now(JoinResponse {
                error: err(e),
                generation: -1,
                member_id: member_id.to_string(),
                ..JoinResponse::default()
            })
        };
        if self.state == GroupState::Dead {
            return fail(ResponseError::CoordinatorNotAvailable, &request.member_id);
        }
        if request.protocols.is_empty()
            || self
                .protocol_type
                .as_ref()
                .is_some_and(|t| *t != request.protocol_type && !self.members.is_empty())
            || (!self.members.is_empty() && self.select_protocol_with(Some(&request)).is_none())
        {
            return fail(ResponseError::InconsistentGroupProtocol, &request.member_id);
        }
        let mut request = request;
        if let Some(instance) = request.instance_id.clone() {
            return self.join_static(request, &instance, now);
        }
        if request.member_id.is_empty() {
            let id = new_member_id(&request.client_id);
            if request.requires_known_member_id {
                if self.pending.len() >= MAX_PENDING_MEMBERS {
                    // Bounded: the member id that would expire first goes.
                    let first = self
                        .pending
                        .iter()
                        .min_by_key(|(_, d)| **d)
                        .map(|(id, _)| id.clone());
                    if let Some(first) = first {
                        self.pending.remove(&first);
                    }
                }
                self.pending
                    .insert(id.clone(), now + request.session_timeout);
                return fail(ResponseError::MemberIdRequired, &id);
            }
            request.member_id = id;
        } else if !self.members.contains_key(&request.member_id)
            && self.pending.remove(&request.member_id).is_none()
        {
            return fail(ResponseError::UnknownMemberId, &request.member_id);
        }
        self.add_or_update(request, now)
    }

    fn join_static(
        &mut self,
        mut request: JoinRequest,
        instance: &str,
        now: Instant,
    ) -> Outcome<JoinResponse> {
        match self.instance_owner(instance) {
            Some(old) if !request.member_id.is_empty() && request.member_id != old => {
                Outcome::Now(JoinResponse {
                    error: err(ResponseError::FencedInstanceId),
                    generation: -1,
                    member_id: request.member_id,
                    ..JoinResponse::default()
                })
            }
            Some(old) if request.member_id.is_empty() => {
                // A restarted static member: it takes over the old member's
                // place; a stable group keeps its assignment (no rebalance)
                // unless the member changed its protocols. A returning leader
                // is told to skip the assignment (KIP-814): it stays leader.
                let new_id = new_member_id(instance);
                let Some(mut member) = self.members.remove(&old) else {
                    return self.add_or_update(request, now);
                };
                let same_protocols = member.protocols == request.protocols;
                member.id.clone_from(&new_id);
                member.last_seen = now;
                member.session_timeout = request.session_timeout;
                member.rebalance_timeout = request.rebalance_timeout;
                self.members.insert(new_id.clone(), member);
                let was_leader = self.leader.as_deref() == Some(old.as_str());
                if was_leader {
                    self.leader = Some(new_id.clone());
                }
                if self.state == GroupState::Stable && same_protocols {
                    let mut answer = self.join_answer(&new_id);
                    answer.skip_assignment = was_leader;
                    return Outcome::Now(answer);
                }
                request.member_id = new_id;
                self.add_or_update(request, now)
            }
            _ => {
                if request.member_id.is_empty() {
                    request.member_id = new_member_id(instance);
                }
                self.add_or_update(request, now)
            }
        }
    }

    fn add_or_update(&mut self, request: JoinRequest, now: Instant) -> Outcome<JoinResponse> {
        let id = request.member_id.clone();
        let (tx, rx) = oneshot::channel();
        let changed = match self.members.get_mut(&id) {
            Some(member) => {
                let changed = member.protocols != request.protocols;
                member.protocols = request.protocols;
                member.session_timeout = request.session_timeout;
                member.rebalance_timeout = request.rebalance_timeout;
                member.last_seen = now;
                member.join_waiter = Some(tx);
                changed
            }
            None => {
                self.members.insert(
                    id.clone(),
                    Member {
                        id: id.clone(),
                        instance_id: request.instance_id,
                        client_id: request.client_id,
                        client_host: request.client_host,
                        protocols: request.protocols,
                        session_timeout: request.session_timeout,
                        rebalance_timeout: request.rebalance_timeout,
                        assignment: Bytes::new(),
                        last_seen: now,
                        join_waiter: Some(tx),
                        sync_waiter: None,
                    },
                );
                true
            }
        };
        self.protocol_type = Some(request.protocol_type);
        let is_leader = self.leader.as_deref() == Some(id.as_str());
        if self.state == GroupState::Stable && !changed && !is_leader {
            // A follower rejoining with nothing new: answer with the current generation.
            if let Some(member) = self.members.get_mut(&id) {
                member.join_waiter = None;
            }
            return Outcome::Now(self.join_answer(&id));
        }
        if self.state != GroupState::PreparingRebalance {
            self.prepare_rebalance(now);
        }
        self.try_complete_join(now);
        Outcome::Later(rx)
    }

    fn prepare_rebalance(&mut self, now: Instant) {
        // Members waiting for a SyncGroup answer must rejoin.
        for member in self.members.values_mut() {
            if let Some(waiter) = member.sync_waiter.take() {
                let _ = waiter.send(SyncResponse {
                    error: err(ResponseError::RebalanceInProgress),
                    ..SyncResponse::default()
                });
            }
        }
        let timeout = self
            .members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or_default();
        let delay = if self.state == GroupState::Empty {
            self.initial_delay.min(timeout)
        } else {
            timeout
        };
        // From Empty, the rebalance waits out the initial delay so members
        // starting together land in one generation.
        self.initial_rebalance = self.state == GroupState::Empty;
        self.state = GroupState::PreparingRebalance;
        self.rebalance_deadline = Some(now + delay);
    }

    /// Moves a rebalance on when every member has rejoined, or when its
    /// deadline has passed (members that did not rejoin are removed).
    pub fn try_complete_join(&mut self, now: Instant) {
        if self.state != GroupState::PreparingRebalance {
            return;
        }
        let all_joined = self.members.values().all(|m| m.join_waiter.is_some());
        let deadline_passed = self.rebalance_deadline.is_some_and(|d| now >= d);
        let initial_wait = self.initial_rebalance && !deadline_passed;
        if !(deadline_passed || (all_joined && !initial_wait)) {
            return;
        }
        self.members.retain(|_, m| m.join_waiter.is_some());
        if self.members.is_empty() {
            self.become_empty();
            return;
        }
        self.generation += 1;
        self.protocol = self.select_protocol_with(None);
        if self
            .leader
            .as_ref()
            .is_none_or(|l| !self.members.contains_key(l))
        {
            self.leader = self.members.keys().next().cloned();
        }
        self.state = GroupState::CompletingRebalance;
        self.rebalance_deadline = None;
        let ids: Vec<String> = self.members.keys().cloned().collect();
        for id in ids {
            let answer = self.join_answer(&id);
            if let Some(waiter) = self.members.get_mut(&id).and_then(|m| m.join_waiter.take()) {
                let _ = waiter.send(answer);
            }
            if let Some(member) = self.members.get_mut(&id) {
                member.last_seen = now;
                member.assignment = Bytes::new();
            }
        }
    }

    fn become_empty(&mut self) {
        self.state = GroupState::Empty;
        self.leader = None;
        self.protocol = None;
        self.rebalance_deadline = None;
        self.generation += 1;
    }

    fn join_answer(&self, member_id: &str) -> JoinResponse {
        let is_leader = self.leader.as_deref() == Some(member_id);
        let protocol = self.protocol.clone();
        let members = if is_leader {
            self.members
                .values()
                .map(|m| {
                    let metadata = protocol
                        .as_ref()
                        .and_then(|p| m.protocols.iter().find(|(name, _)| name == p))
                        .map(|(_, meta)| meta.clone())
                        .unwrap_or_default();
                    (m.id.clone(), m.instance_id.clone(), metadata)
                })
                .collect()
        } else {
            Vec::new()
        };
        JoinResponse {
            error: 0,
            generation: self.generation,
            protocol_type: self.protocol_type.clone(),
            protocol_name: protocol,
            leader: self.leader.clone().unwrap_or_default(),
            member_id: member_id.to_string(),
            members,
            skip_assignment: false,
        }
    }

    /// The protocol every member (and `candidate`) supports, by vote of
    /// each member's first choice among those.
    fn select_protocol_with(&self, candidate: Option<&JoinRequest>) -> Option<String> {
        let mut lists: Vec<&Vec<(String, Bytes)>> =
            self.members.values().map(|m| &m.protocols).collect();
        if let Some(c) = candidate {
            lists.push(&c.protocols);
        }
        let first = lists.first()?;
        let common: Vec<&String> = first
            .iter()
            .map(|(name, _)| name)
            .filter(|name| lists.iter().all(|l| l.iter().any(|(n, _)| n == *name)))
            .collect();
        let mut votes: BTreeMap<&String, usize> = BTreeMap::new();
        for list in &lists {
            if let Some((name, _)) = list.iter().find(|(n, _)| common.contains(&n)) {
                *votes.entry(name).or_default() += 1;
            }
        }
        votes
            .into_iter()
            .max_by_key(|(_, v)| *v)
            .map(|(name, _)| name.clone())
    }

    /// Checks that a request comes from a current member of this generation.
    pub fn check_member(
        &self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
    ) -> Result<(), ResponseError> {
        if let Some(instance) = instance_id {
            if self
                .instance_owner(instance)
                .is_some_and(|owner| owner != member_id)
            {
                return Err(ResponseError::FencedInstanceId);
            }
        }
        if !self.members.contains_key(member_id) {
            return Err(ResponseError::UnknownMemberId);
        }
        if generation != self.generation {
            return Err(ResponseError::IllegalGeneration);
        }
        Ok(())
    }

    /// Handles SyncGroup.
    pub fn sync(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        assignments: Vec<(String, Bytes)>,
        now: Instant,
    ) -> Outcome<SyncResponse> {
        let fail = |e: ResponseError| {
            Outcome::Now(SyncResponse {
                error: err(e),
                ..SyncResponse::default()
            })
        };
        if let Err(e) = self.check_member(member_id, instance_id, generation) {
            return fail(e);
        }
        match self.state {
            GroupState::PreparingRebalance => fail(ResponseError::RebalanceInProgress),
            GroupState::Stable => Outcome::Now(self.sync_answer(member_id)),
            GroupState::CompletingRebalance => {
                let (tx, rx) = oneshot::channel();
                if let Some(member) = self.members.get_mut(member_id) {
                    member.last_seen = now;
                    member.sync_waiter = Some(tx);
                }
                if self.leader.as_deref() == Some(member_id) {
                    for (id, assignment) in assignments {
                        if let Some(member) = self.members.get_mut(&id) {
                            member.assignment = assignment;
                        }
                    }
                    self.state = GroupState::Stable;
                    let ids: Vec<String> = self.members.keys().cloned().collect();
                    for id in ids {
                        let answer = self.sync_answer(&id);
                        if let Some(waiter) =
                            self.members.get_mut(&id).and_then(|m| m.sync_waiter.take())
                        {
                            let _ = waiter.send(answer);
                        }
                    }
                }
                Outcome::Later(rx)
            }
            GroupState::Empty | GroupState::Dead => fail(ResponseError::UnknownMemberId),
        }
    }

    fn sync_answer(&self, member_id: &str) -> SyncResponse {
        SyncResponse {
            error: 0,
            protocol_type: self.protocol_type.clone(),
            protocol_name: self.protocol.clone(),
            assignment: self
                .members
                .get(member_id)
                .map(|m| m.assignment.clone())
                .unwrap_or_default(),
        }
    }

    /// Handles Heartbeat: the member is alive; tells it when to rejoin.
    pub fn heartbeat(
        &mut self,
        member_id: &str,
        instance_id: Option<&str>,
        generation: i32,
        now: Instant,
    ) -> i16 {
        if let Err(e) = self.check_member(member_id, instance_id, generation) {
            // A member of the previous generation still rejoins on this error.
            if e == ResponseError::IllegalGeneration && self.state == GroupState::PreparingRebalance
            {
                self.touch(member_id, now);
                return err(ResponseError::RebalanceInProgress);
            }
            return err(e);
        }
        self.touch(member_id, now);
        match self.state {
            GroupState::PreparingRebalance => err(ResponseError::RebalanceInProgress),
            _ => 0,
        }
    }

    fn touch(&mut self, member_id: &str, now: Instant) {
        if let Some(member) = self.members.get_mut(member_id) {
            member.last_seen = now;
        }
    }

    /// Handles LeaveGroup for one member (by member id, or by instance id).
    pub fn leave(&mut self, member_id: &str, instance_id: Option<&str>, now: Instant) -> i16 {
        let id = match instance_id {
            Some(instance) => match self.instance_owner(instance) {
                Some(owner) if member_id.is_empty() || owner == member_id => owner,
                Some(_) => return err(ResponseError::FencedInstanceId),
                None => return err(ResponseError::UnknownMemberId),
            },
            None => member_id.to_string(),
        };
        if self.pending.remove(&id).is_some() {
            return 0;
        }
        if self.remove_member(&id, now) {
            0
        } else {
            err(ResponseError::UnknownMemberId)
        }
    }

    fn remove_member(&mut self, id: &str, now: Instant) -> bool {
        let Some(member) = self.members.remove(id) else {
            return false;
        };
        if let Some(waiter) = member.join_waiter {
            let _ = waiter.send(JoinResponse {
                error: err(ResponseError::UnknownMemberId),
                generation: -1,
                member_id: id.to_string(),
                ..JoinResponse::default()
            });
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        match self.state {
            GroupState::Stable | GroupState::CompletingRebalance => {
                if self.members.is_empty() {
                    self.become_empty();
                } else {
                    self.prepare_rebalance(now);
                }
            }
            GroupState::PreparingRebalance => self.try_complete_join(now),
            GroupState::Empty | GroupState::Dead => {}
        }
        true
    }

    /// Expires members whose session ran out and completes overdue rebalances.
    pub fn tick(&mut self, now: Instant) {
        self.pending.retain(|_, deadline| *deadline > now);
        let expired: Vec<String> = self
            .members
            .values()
            .filter(|m| {
                m.join_waiter.is_none()
                    && now.saturating_duration_since(m.last_seen) > m.session_timeout
            })
            .map(|m| m.id.clone())
            .collect();
        for id in expired {
            tracing::info!(group = %self.id, member = %id, "member session expired");
            self.remove_member(&id, now);
        }
        self.try_complete_join(now);
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// No members and no member ids handed out: nothing to remember but the
    /// committed offsets, which live elsewhere.
    pub fn is_idle(&self) -> bool {
        self.state == GroupState::Empty && self.members.is_empty() && self.pending.is_empty()
    }
}

#[cfg(test)]
mod tests;
