//! One module per Kafka API: decode → act → answer.

pub mod admin;
pub mod api_versions;
pub mod configs;
pub mod fetch;
pub mod groups;
pub mod list_offsets;
pub mod metadata;
pub mod offsets;
pub mod produce;
pub mod producer_id;
pub mod txn;

use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Encodable, StrBytes};
use strata_protocol::frame::{decode_request, HeaderPrefix};
use strata_protocol::ProtocolError;
use tracing::{debug, warn};

use crate::connection::PendingResponse;
use crate::Broker;

/// Starts handling one frame. `None` closes the connection.
pub async fn start(broker: &Arc<Broker>, frame: Bytes) -> Option<PendingResponse> {
    let prefix = HeaderPrefix::peek(&frame).ok()?;
    let request = match decode_request(frame) {
        Ok(request) => request,
        Err(ProtocolError::UnsupportedVersion { api_key, .. })
            if api_key == ApiKey::ApiVersions as i16 =>
        {
            return ready(api_versions::unsupported_version_answer(
                prefix.correlation_id,
            ));
        }
        Err(e) => {
            debug!(error = %e, "refusing request");
            return None;
        }
    };
    let version = request.header.request_api_version;
    let api_key = request.api_key;
    let correlation_id = request.header.correlation_id;
    let answer = |body: ResponseKind| encode_response(api_key, version, correlation_id, &body);
    let response = match request.body {
        RequestKind::Produce(r) => {
            return Some(produce::start(broker, version, correlation_id, r).await)
        }
        RequestKind::Fetch(r) => {
            let broker = Arc::clone(broker);
            return Some(Box::pin(async move {
                let body = fetch::handle(&broker, version, r).await;
                encode_response(api_key, version, correlation_id, &ResponseKind::Fetch(body))
            }));
        }
        RequestKind::JoinGroup(r) => {
            let broker = Arc::clone(broker);
            return Some(Box::pin(async move {
                let body = groups::join_group(&broker, version, r).await;
                encode_response(
                    api_key,
                    version,
                    correlation_id,
                    &ResponseKind::JoinGroup(body),
                )
            }));
        }
        RequestKind::SyncGroup(r) => {
            let broker = Arc::clone(broker);
            return Some(Box::pin(async move {
                let body = groups::sync_group(&broker, r).await;
                encode_response(
                    api_key,
                    version,
                    correlation_id,
                    &ResponseKind::SyncGroup(body),
                )
            }));
        }
        RequestKind::FindCoordinator(r) => answer(ResponseKind::FindCoordinator(
            groups::find_coordinator(broker, version, r),
        )),
        RequestKind::Heartbeat(r) => answer(ResponseKind::Heartbeat(groups::heartbeat(broker, r))),
        RequestKind::LeaveGroup(r) => answer(ResponseKind::LeaveGroup(groups::leave_group(
            broker, version, r,
        ))),
        RequestKind::ListGroups(r) => {
            answer(ResponseKind::ListGroups(groups::list_groups(broker, r)))
        }
        RequestKind::DescribeGroups(r) => answer(ResponseKind::DescribeGroups(
            groups::describe_groups(broker, r),
        )),
        RequestKind::DeleteGroups(r) => answer(ResponseKind::DeleteGroups(
            groups::delete_groups(broker, r).await,
        )),
        RequestKind::OffsetCommit(r) => {
            answer(ResponseKind::OffsetCommit(offsets::commit(broker, r).await))
        }
        RequestKind::OffsetFetch(r) => answer(ResponseKind::OffsetFetch(offsets::fetch(
            broker, version, r,
        ))),
        RequestKind::OffsetDelete(r) => {
            answer(ResponseKind::OffsetDelete(offsets::delete(broker, r).await))
        }
        RequestKind::InitProducerId(r) => answer(ResponseKind::InitProducerId(
            producer_id::handle(broker, r).await,
        )),
        RequestKind::AddPartitionsToTxn(r) => answer(ResponseKind::AddPartitionsToTxn(
            txn::add_partitions(broker, version, r).await,
        )),
        RequestKind::AddOffsetsToTxn(r) => answer(ResponseKind::AddOffsetsToTxn(
            txn::add_offsets(broker, r).await,
        )),
        RequestKind::TxnOffsetCommit(r) => answer(ResponseKind::TxnOffsetCommit(
            txn::offset_commit(broker, r).await,
        )),
        RequestKind::EndTxn(r) => answer(ResponseKind::EndTxn(txn::end(broker, r).await)),
        RequestKind::ApiVersions(_) => answer(ResponseKind::ApiVersions(api_versions::handle())),
        RequestKind::Metadata(r) => {
            answer(ResponseKind::Metadata(metadata::handle(broker, version, r)))
        }
        RequestKind::ListOffsets(r) => answer(ResponseKind::ListOffsets(list_offsets::handle(
            broker, version, r,
        ))),
        RequestKind::CreateTopics(r) => {
            answer(ResponseKind::CreateTopics(admin::create_topics(broker, r)))
        }
        RequestKind::DeleteTopics(r) => {
            answer(ResponseKind::DeleteTopics(admin::delete_topics(broker, r)))
        }
        RequestKind::CreatePartitions(r) => answer(ResponseKind::CreatePartitions(
            admin::create_partitions(broker, r),
        )),
        RequestKind::DeleteRecords(r) => answer(ResponseKind::DeleteRecords(
            admin::delete_records(broker, r),
        )),
        RequestKind::DescribeCluster(r) => answer(ResponseKind::DescribeCluster(
            admin::describe_cluster(broker, r),
        )),
        RequestKind::DescribeConfigs(r) => answer(ResponseKind::DescribeConfigs(
            configs::describe(broker, version, r),
        )),
        RequestKind::AlterConfigs(r) => {
            answer(ResponseKind::AlterConfigs(configs::alter(broker, r)))
        }
        RequestKind::IncrementalAlterConfigs(r) => answer(ResponseKind::IncrementalAlterConfigs(
            configs::incremental_alter(broker, r),
        )),
        other => {
            warn!(api = ?api_key, "request decoded for an API that has no handler");
            drop(other);
            return None;
        }
    };
    ready(response)
}

fn ready(response: Option<BytesMut>) -> Option<PendingResponse> {
    let response = response?;
    Some(Box::pin(std::future::ready(Some(response))))
}

/// Frames a response: length, header (v0 or flexible v1), body.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Option<BytesMut> {
    let mut buf = BytesMut::with_capacity(256);
    buf.put_i32(0);
    let header = ResponseHeader::default().with_correlation_id(correlation_id);
    let encoded = header
        .encode(&mut buf, api_key.response_header_version(version))
        .and_then(|()| body.encode(&mut buf, version));
    if let Err(e) = encoded {
        warn!(api = ?api_key, version, error = %e, "cannot encode a response; closing the connection");
        return None;
    }
    let length = i32::try_from(buf.len() - 4).ok()?;
    buf[..4].copy_from_slice(&length.to_be_bytes());
    Some(buf)
}

/// A string for a response field.
pub fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
