//! Nullable `error_message` fields are null when there is no error, as from
//! Kafka. The codec's defaults for several of them are `""`, which clients
//! show as an (empty) error text, so every answer passes through here.

use kafka_protocol::messages::ResponseKind;
use kafka_protocol::protocol::StrBytes;

fn clear(code: i16, message: &mut Option<StrBytes>) {
    if code == 0 && message.as_deref().is_some_and(str::is_empty) {
        *message = None;
    }
}

/// Nulls the empty error messages of successful results in `body`.
pub fn clear_success_messages(body: &mut ResponseKind) {
    match body {
        ResponseKind::CreateTopics(r) => {
            for t in &mut r.topics {
                clear(t.error_code, &mut t.error_message);
            }
        }
        ResponseKind::DeleteTopics(r) => {
            for t in &mut r.responses {
                clear(t.error_code, &mut t.error_message);
            }
        }
        ResponseKind::CreatePartitions(r) => {
            for t in &mut r.results {
                clear(t.error_code, &mut t.error_message);
            }
        }
        ResponseKind::DescribeConfigs(r) => {
            for c in &mut r.results {
                clear(c.error_code, &mut c.error_message);
            }
        }
        ResponseKind::AlterConfigs(r) => {
            for c in &mut r.responses {
                clear(c.error_code, &mut c.error_message);
            }
        }
        ResponseKind::IncrementalAlterConfigs(r) => {
            for c in &mut r.responses {
                clear(c.error_code, &mut c.error_message);
            }
        }
        ResponseKind::DescribeCluster(r) => clear(r.error_code, &mut r.error_message),
        ResponseKind::FindCoordinator(r) => {
            clear(r.error_code, &mut r.error_message);
            for c in &mut r.coordinators {
                clear(c.error_code, &mut c.error_message);
            }
        }
        ResponseKind::DescribeProducers(r) => {
            for p in r.topics.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
                clear(p.error_code, &mut p.error_message);
            }
        }
        _ => {}
    }
}
