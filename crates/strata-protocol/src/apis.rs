//! The APIs Strata serves and the versions it accepts, as ApiVersions reports them.

use kafka_protocol::messages::ApiKey;
use kafka_protocol::protocol::VersionRange;

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
];

/// The version range served for `api`, or `None` when the API is not served.
///
/// Strata serves the whole range its codec crate knows, so a client never
/// negotiates down for lack of a version.
pub fn supported_versions(api: ApiKey) -> Option<VersionRange> {
    SERVED.contains(&api).then(|| api.valid_versions())
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
}
