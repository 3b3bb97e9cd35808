//! InitProducerId: producer ids for idempotent producers.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;
use tracing::warn;

use crate::Broker;

/// Kafka's `transaction.max.timeout.ms` default.
pub const TRANSACTION_MAX_TIMEOUT_MS: i32 = 900_000;

pub fn handle(broker: &Arc<Broker>, request: InitProducerIdRequest) -> InitProducerIdResponse {
    let failed = |e: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(e.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if request.transactional_id.is_some() {
        if request.transaction_timeout_ms <= 0
            || request.transaction_timeout_ms > TRANSACTION_MAX_TIMEOUT_MS
        {
            return failed(ResponseError::InvalidTransactionTimeout);
        }
        // Transactions are not served yet: there is no transaction coordinator.
        return failed(ResponseError::CoordinatorNotAvailable);
    }
    // An idempotent producer always gets a fresh id at epoch 0, as from Kafka.
    match broker.store.allocate_producer_id() {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(e) => {
            warn!(error = %e, "cannot allocate a producer id");
            failed(ResponseError::KafkaStorageError)
        }
    }
}
