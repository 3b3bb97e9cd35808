//! What the broker's in-process tests share: a broker over a fresh store
//! holding topic "t" (2 partitions) with records in partition 0.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::Bytes;
use kafka_protocol::messages::TopicName;
use kafka_protocol::protocol::StrBytes;
use strata_broker::{Broker, BrokerOptions};
use strata_log::{LogStore, PendingBatch, StoreOptions};
use strata_protocol::builder::{build_batch, RecordSpec};

pub fn name(v: &str) -> TopicName {
    TopicName(StrBytes::from_string(v.to_string()))
}

/// A broker whose topic "t" holds one batch of `values` (key "k",
/// timestamps from 1000) in partition 0.
pub async fn broker_with(dir: &std::path::Path, values: &[&[u8]]) -> Arc<Broker> {
    let (store, _) = LogStore::open(&StoreOptions::new(dir.to_path_buf())).unwrap();
    let topic = store.create_topic("t", 2, BTreeMap::new(), false).unwrap();
    let records: Vec<RecordSpec<'_>> = values
        .iter()
        .zip(1000..)
        .map(|(value, timestamp)| RecordSpec {
            key: Some(b"k"),
            value: Some(value),
            timestamp,
        })
        .collect();
    let pending = PendingBatch {
        partition: topic.partition(0).unwrap(),
        batch: Bytes::from(build_batch(&records)),
        log_append_time: false,
    };
    assert!(store.append(vec![pending]).await[0].is_ok());
    let groups =
        strata_groups::GroupCoordinator::open(Arc::clone(&store), Default::default()).unwrap();
    let txns =
        strata_txn::TransactionCoordinator::open(Arc::clone(&store), Arc::clone(&groups)).unwrap();
    Broker::new(BrokerOptions::default(), store, groups, txns)
}
