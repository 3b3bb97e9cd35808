//! Any bytes as a `__consumer_offsets` or `__transaction_state` key or
//! value: decoding must return, never panic; what decodes encodes again
//! to bytes that decode to the same record; and a record at the version
//! Strata writes encodes back to exactly its bytes.
#![no_main]

use strata_protocol::coordinator_records::group::{
    GroupMetadataValue, GroupRecordKey, OffsetCommitValue, GROUP_METADATA_VALUE_VERSION,
    OFFSET_COMMIT_VALUE_VERSION,
};
use strata_protocol::coordinator_records::txn::{self, TransactionLogValue};

fn version(data: &[u8]) -> Option<i16> {
    Some(i16::from_be_bytes([*data.first()?, *data.get(1)?]))
}

/// Decode, encode, decode: the same record; and the same bytes when the
/// input was at the version Strata writes (`written`).
fn check<T: PartialEq + std::fmt::Debug>(
    data: &[u8],
    decode: impl Fn(&[u8]) -> Option<T>,
    encode: impl Fn(&T) -> Option<Vec<u8>>,
    written: impl Fn(&[u8]) -> bool,
) {
    let Some(record) = decode(data) else {
        return;
    };
    // A decoded record's strings came from i16 or compact lengths; every
    // one fits the type it is written as.
    let Some(bytes) = encode(&record) else {
        panic!("a decoded record must encode: {record:?}");
    };
    assert_eq!(decode(&bytes).as_ref(), Some(&record));
    if written(data) {
        assert_eq!(bytes, data);
    }
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    check(data, GroupRecordKey::decode, GroupRecordKey::encode, |d| {
        version(d) != Some(0)
    });
    check(
        data,
        OffsetCommitValue::decode,
        OffsetCommitValue::encode,
        |d| version(d) == Some(OFFSET_COMMIT_VALUE_VERSION),
    );
    check(
        data,
        GroupMetadataValue::decode,
        GroupMetadataValue::encode,
        |d| version(d) == Some(GROUP_METADATA_VALUE_VERSION),
    );
    check(
        data,
        txn::decode_key,
        |id: &String| txn::encode_key(id),
        |_| true,
    );
    check(
        data,
        TransactionLogValue::decode,
        TransactionLogValue::encode,
        |d| version(d) == Some(0),
    );
});
