//! One module per Kafka API: decode → act → answer.

pub mod admin;
pub mod api_versions;
pub mod config_resources;
pub mod configs;
pub mod error_codes;
pub mod fetch;
pub mod fetch_encoding;
pub mod groups;
pub mod leader_epoch;
pub mod list_offsets;
pub mod log_dirs;
pub mod metadata;
pub mod nullable;
pub mod offsets;
pub mod produce;
pub mod producer_id;
pub mod topic_partitions;
pub mod txn;
pub mod txn_admin;
pub mod version_refusal;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind, ResponseHeader, ResponseKind};
use kafka_protocol::protocol::{Encodable, StrBytes};
use strata_protocol::frame::{decode_request, HeaderPrefix};
use strata_protocol::ProtocolError;
use tracing::{debug, warn};

use crate::outgoing::Outgoing;
use crate::outgoing::PendingResponse;
use crate::peer::Peer;
use crate::{metrics, Broker};

/// A handler's answer being worked out; `None` when the request gets none.
type PendingBody = Pin<Box<dyn Future<Output = Option<ResponseKind>> + Send>>;

fn now(body: ResponseKind) -> PendingBody {
    Box::pin(std::future::ready(Some(body)))
}

/// Who sent a request: the client id of its header and the host of its
/// connection (`/IP`), which JoinGroup records for DescribeGroups.
#[derive(Debug, Clone, Default)]
pub struct Client {
    pub id: String,
    pub host: String,
}

/// Starts handling one frame from a client at `peer`. `None` closes the connection.
pub async fn start(broker: &Arc<Broker>, frame: Bytes, peer: &Peer) -> Option<PendingResponse> {
    let started = Instant::now();
    let Ok(prefix) = HeaderPrefix::peek(&frame) else {
        metrics::record_refused("malformed_header");
        return None;
    };
    let request = match decode_request(frame.clone()) {
        Ok(request) => request,
        Err(ProtocolError::UnsupportedVersion { api_key, .. })
            if api_key == ApiKey::ApiVersions as i16 =>
        {
            metrics::record_refused("unsupported_version");
            let answer = api_versions::unsupported_version_answer(prefix.correlation_id)?;
            return Some(Box::pin(std::future::ready(Some(Outgoing::from(answer)))));
        }
        Err(ProtocolError::UnsupportedVersion { api_key, version }) => {
            metrics::record_refused("unsupported_version");
            version_refusal::report(&frame, api_key, version, peer.addr);
            return None;
        }
        Err(e) => {
            debug!(error = %e, "refusing request");
            metrics::record_refused(refusal_reason(&e));
            return None;
        }
    };
    let version = request.header.request_api_version;
    let api_key = request.api_key;
    let correlation_id = request.header.correlation_id;
    let client = Client {
        id: request
            .header
            .client_id
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        host: peer.host.clone(),
    };
    let body = match request.body {
        RequestKind::Fetch(r) => {
            return Some(fetch_answer(broker, version, correlation_id, started, r))
        }
        body => route(broker, version, client, body).await?,
    };
    Some(Box::pin(async move {
        let mut body = body.await;
        if let Some(body) = body.as_mut() {
            nullable::clear_success_messages(body);
        }
        metrics::record_request(api_key, version, started.elapsed(), body.as_ref());
        encode_response(api_key, version, correlation_id, &body?).map(Outgoing::from)
    }))
}

/// A fetch's answer: its record bytes are sent from the buffers they were
/// read into, and hold their share of the fetch memory budget until sent.
fn fetch_answer(
    broker: &Arc<Broker>,
    version: i16,
    correlation_id: i32,
    started: Instant,
    request: kafka_protocol::messages::FetchRequest,
) -> PendingResponse {
    let broker = Arc::clone(broker);
    Box::pin(async move {
        let (body, held) = fetch::handle(&broker, version, request).await;
        fetch::record_traffic(&broker, &body);
        let body = ResponseKind::Fetch(body);
        metrics::record_request(ApiKey::Fetch, version, started.elapsed(), Some(&body));
        let ResponseKind::Fetch(body) = body else {
            return None;
        };
        fetch_encoding::encode(version, correlation_id, body).map(|out| out.holding(held))
    })
}

fn refusal_reason(error: &ProtocolError) -> &'static str {
    match error {
        ProtocolError::FrameTooLarge { .. } | ProtocolError::BadFrameLength(_) => "frame_length",
        ProtocolError::MalformedHeader => "malformed_header",
        ProtocolError::UnknownApiKey(_) => "unknown_api",
        ProtocolError::UnsupportedVersion { .. } => "unsupported_version",
        ProtocolError::MalformedBody { .. } => "malformed_body",
    }
}

/// Hands a decoded request to its API's handler. `None` closes the connection.
async fn route(
    broker: &Arc<Broker>,
    version: i16,
    client: Client,
    body: RequestKind,
) -> Option<PendingBody> {
    let pending = match body {
        RequestKind::Produce(r) => produce::start(broker, r).await,
        RequestKind::JoinGroup(r) => {
            let broker = Arc::clone(broker);
            Box::pin(async move {
                Some(ResponseKind::JoinGroup(
                    groups::join_group(&broker, version, client, r).await,
                ))
            })
        }
        RequestKind::SyncGroup(r) => {
            let broker = Arc::clone(broker);
            Box::pin(async move {
                Some(ResponseKind::SyncGroup(
                    groups::sync_group(&broker, r).await,
                ))
            })
        }
        RequestKind::FindCoordinator(r) => now(ResponseKind::FindCoordinator(
            groups::find_coordinator(broker, version, r),
        )),
        RequestKind::Heartbeat(r) => now(ResponseKind::Heartbeat(groups::heartbeat(broker, r))),
        RequestKind::LeaveGroup(r) => now(ResponseKind::LeaveGroup(groups::leave_group(
            broker, version, r,
        ))),
        RequestKind::ListGroups(r) => now(ResponseKind::ListGroups(groups::list_groups(broker, r))),
        RequestKind::DescribeGroups(r) => now(ResponseKind::DescribeGroups(
            groups::describe_groups(broker, r),
        )),
        RequestKind::DeleteGroups(r) => now(ResponseKind::DeleteGroups(
            groups::delete_groups(broker, r).await,
        )),
        RequestKind::OffsetCommit(r) => {
            now(ResponseKind::OffsetCommit(offsets::commit(broker, r).await))
        }
        RequestKind::OffsetFetch(r) => now(ResponseKind::OffsetFetch(offsets::fetch(
            broker, version, r,
        ))),
        RequestKind::OffsetDelete(r) => {
            now(ResponseKind::OffsetDelete(offsets::delete(broker, r).await))
        }
        RequestKind::InitProducerId(r) => now(ResponseKind::InitProducerId(
            producer_id::handle(broker, version, r).await,
        )),
        RequestKind::AddPartitionsToTxn(r) => now(ResponseKind::AddPartitionsToTxn(
            txn::add_partitions(broker, version, r).await,
        )),
        RequestKind::AddOffsetsToTxn(r) => now(ResponseKind::AddOffsetsToTxn(
            txn::add_offsets(broker, version, r).await,
        )),
        RequestKind::TxnOffsetCommit(r) => now(ResponseKind::TxnOffsetCommit(
            txn::offset_commit(broker, r).await,
        )),
        RequestKind::EndTxn(r) => now(ResponseKind::EndTxn(txn::end(broker, version, r).await)),
        RequestKind::ApiVersions(_) => now(ResponseKind::ApiVersions(api_versions::handle())),
        RequestKind::Metadata(r) => {
            now(ResponseKind::Metadata(metadata::handle(broker, version, r)))
        }
        RequestKind::ListOffsets(r) => now(ResponseKind::ListOffsets(list_offsets::handle(
            broker, version, r,
        ))),
        RequestKind::CreateTopics(r) => {
            now(ResponseKind::CreateTopics(admin::create_topics(broker, r)))
        }
        RequestKind::DeleteTopics(r) => {
            now(ResponseKind::DeleteTopics(admin::delete_topics(broker, r)))
        }
        RequestKind::CreatePartitions(r) => now(ResponseKind::CreatePartitions(
            admin::create_partitions(broker, r),
        )),
        RequestKind::DeleteRecords(r) => now(ResponseKind::DeleteRecords(admin::delete_records(
            broker, r,
        ))),
        RequestKind::DescribeCluster(r) => now(ResponseKind::DescribeCluster(
            admin::describe_cluster(broker, r),
        )),
        RequestKind::DescribeConfigs(r) => now(ResponseKind::DescribeConfigs(configs::describe(
            broker, version, r,
        ))),
        RequestKind::AlterConfigs(r) => now(ResponseKind::AlterConfigs(configs::alter(broker, r))),
        RequestKind::IncrementalAlterConfigs(r) => now(ResponseKind::IncrementalAlterConfigs(
            configs::incremental_alter(broker, r),
        )),
        RequestKind::DescribeLogDirs(r) => {
            now(ResponseKind::DescribeLogDirs(log_dirs::describe(broker, r)))
        }
        RequestKind::DescribeTopicPartitions(r) => now(ResponseKind::DescribeTopicPartitions(
            topic_partitions::describe(broker, r),
        )),
        RequestKind::ListConfigResources(r) => now(ResponseKind::ListConfigResources(
            config_resources::list(broker, version, r),
        )),
        RequestKind::OffsetForLeaderEpoch(r) => now(ResponseKind::OffsetForLeaderEpoch(
            leader_epoch::handle(broker, r),
        )),
        RequestKind::DescribeProducers(r) => now(ResponseKind::DescribeProducers(
            txn_admin::describe_producers(broker, r),
        )),
        RequestKind::DescribeTransactions(r) => now(ResponseKind::DescribeTransactions(
            txn_admin::describe_transactions(broker, r).await,
        )),
        RequestKind::ListTransactions(r) => now(ResponseKind::ListTransactions(
            txn_admin::list_transactions(broker, r).await,
        )),
        other => {
            warn!(request = ?std::mem::discriminant(&other), "request decoded for an API that has no handler");
            return None;
        }
    };
    Some(pending)
}

/// Frames a response: length, header (v0 or flexible v1), body.
pub fn encode_response(
    api_key: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &ResponseKind,
) -> Option<BytesMut> {
    let mut buf = BytesMut::with_capacity(size_hint(body));
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

/// Room for a response, so a large fetch answer is encoded into one
/// allocation instead of a buffer that doubles (and copies) its way up.
fn size_hint(body: &ResponseKind) -> usize {
    match body {
        ResponseKind::Fetch(r) => r
            .responses
            .iter()
            .flat_map(|t| &t.partitions)
            .map(|p| p.records.as_ref().map_or(0, bytes::Bytes::len) + 128)
            .sum::<usize>()
            .saturating_add(1024),
        _ => 256,
    }
}

/// A string for a response field.
pub fn text(s: impl Into<String>) -> StrBytes {
    StrBytes::from_string(s.into())
}
