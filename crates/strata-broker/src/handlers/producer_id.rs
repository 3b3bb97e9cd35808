//! InitProducerId: producer ids for idempotent and transactional producers.

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use kafka_protocol::ResponseError;
use tracing::warn;

use crate::Broker;

/// The first InitProducerId version that knows PRODUCER_FENCED (KIP-588).
const FENCED_FROM: i16 = 4;

pub async fn handle(
    broker: &Arc<Broker>,
    version: i16,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let failed = |e: ResponseError| {
        InitProducerIdResponse::default()
            .with_error_code(super::txn::fenced_for(version, FENCED_FROM, e.code()))
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if let Some(id) = &request.transactional_id {
        return match broker
            .txns
            .init_producer_id(
                id,
                request.transaction_timeout_ms,
                request.producer_id.0,
                request.producer_epoch,
            )
            .await
        {
            Ok((id, epoch)) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(epoch),
            Err(e) => failed(e),
        };
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
