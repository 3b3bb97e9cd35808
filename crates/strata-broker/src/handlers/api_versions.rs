//! ApiVersions: what Strata serves, and the v0 answer to a version it does not.

use bytes::{BufMut, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::ApiVersionsResponse;
use kafka_protocol::ResponseError;
use strata_protocol::apis;

/// Every served API with its version range.
pub fn handle() -> ApiVersionsResponse {
    ApiVersionsResponse::default().with_api_keys(api_list())
}

fn api_list() -> Vec<ApiVersion> {
    apis::SERVED
        .iter()
        .filter_map(|api| {
            let range = apis::supported_versions(*api)?;
            Some(
                ApiVersion::default()
                    .with_api_key(*api as i16)
                    .with_min_version(range.min)
                    .with_max_version(range.max),
            )
        })
        .collect()
}

/// The answer to an ApiVersions request at a version the broker does not
/// know: a v0 response with UNSUPPORTED_VERSION and the served ranges, so
/// the client can retry at a version both sides speak (KIP-511).
pub fn unsupported_version_answer(correlation_id: i32) -> Option<BytesMut> {
    let apis = api_list();
    let mut body = BytesMut::new();
    body.put_i32(correlation_id);
    body.put_i16(ResponseError::UnsupportedVersion.code());
    body.put_i32(i32::try_from(apis.len()).ok()?);
    for api in &apis {
        body.put_i16(api.api_key);
        body.put_i16(api.min_version);
        body.put_i16(api.max_version);
    }
    let mut framed = BytesMut::with_capacity(body.len() + 4);
    framed.put_i32(i32::try_from(body.len()).ok()?);
    framed.extend_from_slice(&body);
    Some(framed)
}
