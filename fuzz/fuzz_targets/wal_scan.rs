//! Any bytes as a WAL segment: scanning must return, never panic, and every
//! entry it reports must lie inside the input.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let mut segment = strata_wal::FILE_HEADER.to_vec();
    segment.extend_from_slice(data);
    let scan = strata_wal::scan_segment(&segment);
    for entry in &scan.entries {
        assert!(entry.payload_position + u64::from(entry.payload_len) <= segment.len() as u64);
    }
    assert!(scan.valid_end <= segment.len() as u64);
});
