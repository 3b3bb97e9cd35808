//! Any bytes as a stored batch, filtered by any keep pattern: retaining
//! records and stamping a delete horizon must return, never panic, and a
//! rebuilt batch must be valid and hold exactly the records that were kept.
#![no_main]

use strata_protocol::batch::{validate_crc, BatchHeader};
use strata_protocol::records::{for_each_record, RecordView};
use strata_protocol::retain::{retain_records, set_delete_horizon, Retained};

const LIMIT: usize = 1 << 20;

/// A record as owned data, to compare before and after.
type Owned = (i64, i64, Option<Vec<u8>>, Option<Vec<u8>>);

fn owned(r: &RecordView<'_>) -> Owned {
    (
        r.offset,
        r.timestamp,
        r.key.map(<[u8]>::to_vec),
        r.value.map(<[u8]>::to_vec),
    )
}

fn records_of(batch: &[u8]) -> Vec<Owned> {
    let Ok(header) = BatchHeader::parse(batch) else {
        panic!("a rebuilt batch must parse");
    };
    if let Err(e) = validate_crc(batch, &header) {
        panic!("a rebuilt batch must pass its CRC: {e}");
    }
    let mut out = Vec::new();
    // Re-encoded timestamp deltas can make a stamped batch a few times larger.
    if let Err(e) = for_each_record(batch, &header, 4 * LIMIT, |r| out.push(owned(&r))) {
        panic!("a rebuilt batch must decode: {e}");
    }
    assert_eq!(out.len(), usize::try_from(header.record_count).unwrap_or(0));
    out
}

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    // First byte: which records to keep (bit i mod 8 keeps record i); second:
    // whether to stamp a delete horizon. The rest is the batch.
    let [pattern, mode, batch @ ..] = data else {
        return;
    };
    let Ok(header) = BatchHeader::parse(batch) else {
        return;
    };
    let mut index = 0u32;
    let mut all = Vec::new();
    let mut kept = Vec::new();
    let result = retain_records(batch, &header, LIMIT, |r| {
        let keep = pattern >> (index % 8) & 1 == 1;
        index += 1;
        all.push(owned(r));
        if keep {
            kept.push(owned(r));
        }
        keep
    });
    match result {
        Ok(Retained::All) => assert_eq!(kept.len(), all.len()),
        Ok(Retained::None) => assert!(kept.is_empty()),
        Ok(Retained::Some(out)) => {
            assert_eq!(records_of(&out), kept);
            let Ok(rebuilt) = BatchHeader::parse(&out) else {
                return;
            };
            assert_eq!(rebuilt.base_offset, header.base_offset);
            assert_eq!(rebuilt.last_offset_delta, header.last_offset_delta);
            assert_eq!(rebuilt.attributes, header.attributes);
        }
        Err(_) => {}
    }
    if mode & 1 == 1 {
        let horizon = i64::from(*mode) << 32;
        if let Ok(out) = set_delete_horizon(batch, &header, horizon, LIMIT) {
            // Record timestamps are unchanged: stamping refuses a horizon
            // that leaves a timestamp delta out of range.
            assert_eq!(records_of(&out), all);
            if let Ok(h) = BatchHeader::parse(&out) {
                assert_eq!(h.delete_horizon(), Some(horizon));
            }
        }
    }
});
