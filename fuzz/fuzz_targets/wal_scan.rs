//! Any bytes as a WAL segment, behind a version 2 file header or a version
//! 1 one (the first input byte chooses): scanning must return, never
//! panic, every entry it reports must lie inside the input, and the bytes
//! after the intact entries are accounted for as torn tail or padding.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let Some((&choice, data)) = data.split_first() else {
        return;
    };
    let mut segment = if choice & 1 == 0 {
        strata_wal::encode_file_header(u64::from(choice)).to_vec()
    } else {
        b"STRATAWL".to_vec()
    };
    segment.extend_from_slice(data);
    let scan = strata_wal::scan_segment(&segment);
    for entry in &scan.entries {
        assert!(entry.payload_position + u64::from(entry.payload_len) <= segment.len() as u64);
    }
    assert!(scan.valid_end <= segment.len() as u64);
    // What follows the intact entries is either a torn tail or zero padding.
    assert!(scan.torn_bytes == 0 || scan.padding_bytes == 0);
    assert_eq!(
        scan.valid_end + scan.torn_bytes + scan.padding_bytes,
        segment.len() as u64
    );
});
