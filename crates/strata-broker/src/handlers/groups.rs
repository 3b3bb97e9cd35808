//! Group membership APIs: FindCoordinator, JoinGroup, SyncGroup, Heartbeat,
//! LeaveGroup, ListGroups, DescribeGroups, DeleteGroups.

use std::sync::Arc;
use std::time::Duration;

use kafka_protocol::messages::delete_groups_response::DeletableGroupResult;
use kafka_protocol::messages::describe_groups_response::{DescribedGroup, DescribedGroupMember};
use kafka_protocol::messages::find_coordinator_response::Coordinator;
use kafka_protocol::messages::join_group_response::JoinGroupResponseMember;
use kafka_protocol::messages::leave_group_response::MemberResponse;
use kafka_protocol::messages::list_groups_response::ListedGroup;
use kafka_protocol::messages::*;
use kafka_protocol::ResponseError;
use strata_groups::group::{JoinRequest, JoinResponse, Outcome, SyncResponse};

use super::metadata::OPERATIONS_OMITTED;
use super::{text, Client};
use crate::Broker;

pub fn find_coordinator(
    broker: &Arc<Broker>,
    version: i16,
    request: FindCoordinatorRequest,
) -> FindCoordinatorResponse {
    let o = &broker.options;
    if version < 4 {
        return FindCoordinatorResponse::default()
            .with_node_id(BrokerId(o.node_id))
            .with_host(text(o.advertised_host.clone()))
            .with_port(o.advertised_port);
    }
    let coordinators = request
        .coordinator_keys
        .into_iter()
        .map(|key| {
            Coordinator::default()
                .with_key(key)
                .with_node_id(BrokerId(o.node_id))
                .with_host(text(o.advertised_host.clone()))
                .with_port(o.advertised_port)
        })
        .collect();
    FindCoordinatorResponse::default().with_coordinators(coordinators)
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// JoinGroup from `client`, whose id and host the member keeps.
pub async fn join_group(
    broker: &Arc<Broker>,
    version: i16,
    client: Client,
    request: JoinGroupRequest,
) -> JoinGroupResponse {
    let session_timeout = millis(request.session_timeout_ms);
    let fail = |e: ResponseError| {
        JoinGroupResponse::default()
            .with_error_code(e.code())
            .with_generation_id(-1)
            .with_member_id(request.member_id.clone())
    };
    if request.group_id.is_empty() {
        return fail(ResponseError::InvalidGroupId);
    }
    if !broker.groups.session_timeout_valid(session_timeout) {
        return fail(ResponseError::InvalidSessionTimeout);
    }
    // v0 has no rebalance timeout: it is the session timeout.
    let rebalance_timeout = if version == 0 {
        session_timeout
    } else {
        millis(request.rebalance_timeout_ms)
    };
    let join = JoinRequest {
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(ToString::to_string),
        client_id: client.id,
        client_host: client.host,
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        session_timeout,
        rebalance_timeout,
        requires_known_member_id: version >= 4,
    };
    let answer = match broker.groups.join(&request.group_id, join) {
        Outcome::Now(answer) => answer,
        Outcome::Later(rx) => rx.await.unwrap_or_else(|_| JoinResponse {
            error: ResponseError::UnknownMemberId.code(),
            generation: -1,
            ..JoinResponse::default()
        }),
    };
    let members = answer
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(text(id))
                .with_group_instance_id(if version >= 5 {
                    instance.map(text)
                } else {
                    None
                })
                .with_metadata(metadata)
        })
        .collect();
    // Before v9 there is no skip flag: a returning static leader gets no
    // member list, runs no assignment, and SyncGroup hands out what the group keeps.
    let members = if answer.skip_assignment && version < 9 {
        Vec::new()
    } else {
        members
    };
    JoinGroupResponse::default()
        .with_skip_assignment(answer.skip_assignment && version >= 9)
        .with_error_code(answer.error)
        .with_generation_id(answer.generation)
        .with_protocol_type(answer.protocol_type.map(text))
        .with_protocol_name(answer.protocol_name.map(text))
        .with_leader(text(answer.leader))
        .with_member_id(text(answer.member_id))
        .with_members(members)
}

pub async fn sync_group(broker: &Arc<Broker>, request: SyncGroupRequest) -> SyncGroupResponse {
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let instance = request.group_instance_id.as_ref().map(ToString::to_string);
    let outcome = broker.groups.sync(
        &request.group_id,
        &request.member_id,
        instance.as_deref(),
        request.generation_id,
        assignments,
    );
    let answer = match outcome {
        Outcome::Now(answer) => answer,
        Outcome::Later(rx) => rx.await.unwrap_or_else(|_| SyncResponse {
            error: ResponseError::RebalanceInProgress.code(),
            ..SyncResponse::default()
        }),
    };
    SyncGroupResponse::default()
        .with_error_code(answer.error)
        .with_protocol_type(answer.protocol_type.map(text))
        .with_protocol_name(answer.protocol_name.map(text))
        .with_assignment(answer.assignment)
}

pub fn heartbeat(broker: &Arc<Broker>, request: HeartbeatRequest) -> HeartbeatResponse {
    let instance = request.group_instance_id.as_ref().map(ToString::to_string);
    let code = broker.groups.heartbeat(
        &request.group_id,
        &request.member_id,
        instance.as_deref(),
        request.generation_id,
    );
    HeartbeatResponse::default().with_error_code(code)
}

pub fn leave_group(
    broker: &Arc<Broker>,
    version: i16,
    request: LeaveGroupRequest,
) -> LeaveGroupResponse {
    if version < 3 {
        let code = broker
            .groups
            .leave(&request.group_id, &request.member_id, None);
        return LeaveGroupResponse::default().with_error_code(code);
    }
    let members = request
        .members
        .into_iter()
        .map(|m| {
            let instance = m.group_instance_id.as_ref().map(ToString::to_string);
            let code = broker
                .groups
                .leave(&request.group_id, &m.member_id, instance.as_deref());
            MemberResponse::default()
                .with_member_id(m.member_id)
                .with_group_instance_id(m.group_instance_id)
                .with_error_code(code)
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}

pub fn list_groups(broker: &Arc<Broker>, request: ListGroupsRequest) -> ListGroupsResponse {
    let groups = broker
        .groups
        .list()
        .into_iter()
        .filter(|(_, _, state)| {
            request.states_filter.is_empty()
                || request
                    .states_filter
                    .iter()
                    .any(|s| s.eq_ignore_ascii_case(state.name()))
        })
        .filter(|_| {
            request.types_filter.is_empty()
                || request
                    .types_filter
                    .iter()
                    .any(|t| t.eq_ignore_ascii_case("classic"))
        })
        .map(|(id, protocol_type, state)| {
            ListedGroup::default()
                .with_group_id(GroupId(text(id)))
                .with_protocol_type(text(protocol_type))
                .with_group_state(text(state.name()))
                .with_group_type(text("classic"))
        })
        .collect();
    ListGroupsResponse::default().with_groups(groups)
}

pub fn describe_groups(
    broker: &Arc<Broker>,
    request: DescribeGroupsRequest,
) -> DescribeGroupsResponse {
    let groups = request
        .groups
        .into_iter()
        .map(|group_id| {
            let described = DescribedGroup::default()
                .with_group_id(group_id.clone())
                .with_authorized_operations(OPERATIONS_OMITTED);
            match broker.groups.describe(&group_id) {
                Some(d) => described
                    .with_group_state(text(d.state.name()))
                    .with_protocol_type(text(d.protocol_type))
                    .with_protocol_data(text(d.protocol))
                    .with_members(
                        d.members
                            .into_iter()
                            .map(|(id, instance, client_id, host, metadata, assignment)| {
                                DescribedGroupMember::default()
                                    .with_member_id(text(id))
                                    .with_group_instance_id(instance.map(text))
                                    .with_client_id(text(client_id))
                                    .with_client_host(text(host))
                                    .with_member_metadata(metadata)
                                    .with_member_assignment(assignment)
                            })
                            .collect(),
                    ),
                // Kafka describes an unknown group as Dead, without an error.
                None => described.with_group_state(text("Dead")),
            }
        })
        .collect();
    DescribeGroupsResponse::default().with_groups(groups)
}

pub async fn delete_groups(
    broker: &Arc<Broker>,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group_id in request.groups_names {
        let code = broker.groups.delete_group(&group_id).await;
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group_id)
                .with_error_code(code),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
