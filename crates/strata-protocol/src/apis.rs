//! The APIs Strata serves and the versions it accepts, as ApiVersions reports them.

use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Message, VersionRange};

/// Every API the broker answers. Anything else is an unknown API to Strata.
pub const SERVED: &[ApiKey] = &[
    ApiKey::Produce,
    ApiKey::Fetch,
    ApiKey::ListOffsets,
    ApiKey::Metadata,
    ApiKey::ApiVersions,
    ApiKey::CreateTopics,
    ApiKey::DeleteTopics,
    ApiKey::DeleteRecords,
    ApiKey::DescribeConfigs,
    ApiKey::AlterConfigs,
    ApiKey::CreatePartitions,
    ApiKey::IncrementalAlterConfigs,
    ApiKey::DescribeCluster,
    ApiKey::FindCoordinator,
    ApiKey::JoinGroup,
    ApiKey::SyncGroup,
    ApiKey::Heartbeat,
    ApiKey::LeaveGroup,
    ApiKey::OffsetCommit,
    ApiKey::OffsetFetch,
    ApiKey::ListGroups,
    ApiKey::DescribeGroups,
    ApiKey::DeleteGroups,
    ApiKey::OffsetDelete,
    ApiKey::InitProducerId,
    ApiKey::AddPartitionsToTxn,
    ApiKey::AddOffsetsToTxn,
    ApiKey::TxnOffsetCommit,
    ApiKey::EndTxn,
    ApiKey::DescribeLogDirs,
    ApiKey::DescribeTopicPartitions,
    ApiKey::ListConfigResources,
    ApiKey::OffsetForLeaderEpoch,
    ApiKey::DescribeProducers,
    ApiKey::DescribeTransactions,
    ApiKey::ListTransactions,
];

/// The version range served for `api`, or `None` when the API is not served.
///
/// Strata serves the whole range its codec crate can decode and encode, so
/// a client never negotiates down for lack of a version. The codec's
/// `ApiKey` ranges run ahead of its message types for a few APIs (e.g.
/// OffsetCommit v10, InitProducerId v6); advertising those would invite
/// requests the broker cannot read, so the range is cut to what the request
/// and response types both know.
pub fn supported_versions(api: ApiKey) -> Option<VersionRange> {
    if !SERVED.contains(&api) {
        return None;
    }
    let advertised = api.valid_versions();
    let (request, response) = message_versions(api)?;
    let range = VersionRange {
        min: advertised.min.max(request.min).max(response.min),
        max: advertised.max.min(request.max).min(response.max),
    };
    (!range.is_empty()).then_some(range)
}

/// The versions the codec's request and response types for `api` know.
fn message_versions(api: ApiKey) -> Option<(VersionRange, VersionRange)> {
    macro_rules! versions {
        ($($api:ident => $req:ty, $resp:ty;)*) => {
            match api {
                $(ApiKey::$api => Some((<$req as Message>::VERSIONS, <$resp as Message>::VERSIONS)),)*
                _ => None,
            }
        };
    }
    versions! {
        Produce => ProduceRequest, ProduceResponse;
        Fetch => FetchRequest, FetchResponse;
        ListOffsets => ListOffsetsRequest, ListOffsetsResponse;
        Metadata => MetadataRequest, MetadataResponse;
        ApiVersions => ApiVersionsRequest, ApiVersionsResponse;
        CreateTopics => CreateTopicsRequest, CreateTopicsResponse;
        DeleteTopics => DeleteTopicsRequest, DeleteTopicsResponse;
        DeleteRecords => DeleteRecordsRequest, DeleteRecordsResponse;
        DescribeConfigs => DescribeConfigsRequest, DescribeConfigsResponse;
        AlterConfigs => AlterConfigsRequest, AlterConfigsResponse;
        CreatePartitions => CreatePartitionsRequest, CreatePartitionsResponse;
        IncrementalAlterConfigs => IncrementalAlterConfigsRequest, IncrementalAlterConfigsResponse;
        DescribeCluster => DescribeClusterRequest, DescribeClusterResponse;
        FindCoordinator => FindCoordinatorRequest, FindCoordinatorResponse;
        JoinGroup => JoinGroupRequest, JoinGroupResponse;
        SyncGroup => SyncGroupRequest, SyncGroupResponse;
        Heartbeat => HeartbeatRequest, HeartbeatResponse;
        LeaveGroup => LeaveGroupRequest, LeaveGroupResponse;
        OffsetCommit => OffsetCommitRequest, OffsetCommitResponse;
        OffsetFetch => OffsetFetchRequest, OffsetFetchResponse;
        ListGroups => ListGroupsRequest, ListGroupsResponse;
        DescribeGroups => DescribeGroupsRequest, DescribeGroupsResponse;
        DeleteGroups => DeleteGroupsRequest, DeleteGroupsResponse;
        OffsetDelete => OffsetDeleteRequest, OffsetDeleteResponse;
        InitProducerId => InitProducerIdRequest, InitProducerIdResponse;
        AddPartitionsToTxn => AddPartitionsToTxnRequest, AddPartitionsToTxnResponse;
        AddOffsetsToTxn => AddOffsetsToTxnRequest, AddOffsetsToTxnResponse;
        TxnOffsetCommit => TxnOffsetCommitRequest, TxnOffsetCommitResponse;
        EndTxn => EndTxnRequest, EndTxnResponse;
        DescribeLogDirs => DescribeLogDirsRequest, DescribeLogDirsResponse;
        DescribeTopicPartitions => DescribeTopicPartitionsRequest, DescribeTopicPartitionsResponse;
        ListConfigResources => ListConfigResourcesRequest, ListConfigResourcesResponse;
        OffsetForLeaderEpoch => OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse;
        DescribeProducers => DescribeProducersRequest, DescribeProducersResponse;
        DescribeTransactions => DescribeTransactionsRequest, DescribeTransactionsResponse;
        ListTransactions => ListTransactionsRequest, ListTransactionsResponse;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_served_api_has_a_range() {
        for api in SERVED {
            let range = supported_versions(*api);
            assert!(range.is_some_and(|r| !r.is_empty()), "{api:?}");
        }
        assert!(supported_versions(ApiKey::WriteTxnMarkers).is_none());
    }

    #[test]
    fn no_version_is_advertised_that_the_codec_cannot_decode() {
        // The codec's ApiKey range says v10; its OffsetCommitRequest stops at 9.
        assert_eq!(
            supported_versions(ApiKey::OffsetCommit).map(|r| r.max),
            Some(9)
        );
        assert_eq!(
            supported_versions(ApiKey::InitProducerId).map(|r| r.max),
            Some(5)
        );
    }
}
