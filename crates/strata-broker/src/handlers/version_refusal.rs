//! Requests at a version Strata does not serve. The connection closes, as
//! in Kafka (the request cannot be parsed, so nothing can be answered),
//! and a WARN names who sent what, at most once a minute per API and
//! version: Kafka 4 removed the oldest versions of several APIs (KIP-896),
//! and a user of a client that still sends them sees only a closed
//! connection; the broker's log is where they find out why.

use std::net::SocketAddr;
use std::time::Duration;

use kafka_protocol::messages::ApiKey;
use strata_log::log_limit::KeyedLogLimit;
use strata_protocol::apis;
use strata_protocol::frame::peek_client_id;
use tracing::warn;

/// One limit per (API key, version); versions are the client's, so the
/// keys are capped.
static REFUSED: KeyedLogLimit<(i16, i16)> = KeyedLogLimit::new(Duration::from_secs(60), 256);

/// Logs a refused request at `version` of `api_key` (an API Strata serves).
pub fn report(frame: &[u8], api_key: i16, version: i16, peer: SocketAddr) {
    let Some(suppressed) = REFUSED.admit((api_key, version)) else {
        return;
    };
    let Ok(api) = ApiKey::try_from(api_key) else {
        return;
    };
    let Some(served) = apis::supported_versions(api) else {
        return;
    };
    let client_id = peek_client_id(frame);
    let advice = if version < served.min {
        "a version Kafka 4 removed (KIP-896): the client needs an upgrade, see docs/compatibility.md"
    } else {
        "a version newer than this broker serves: the client should have asked ApiVersions first"
    };
    warn!(
        client_id = client_id.as_deref().unwrap_or("(none)"),
        %peer,
        api = ?api,
        version,
        lowest_served = served.min,
        highest_served = served.max,
        suppressed,
        "refused a request at an API version this broker does not serve, closing the connection: {advice}"
    );
}
