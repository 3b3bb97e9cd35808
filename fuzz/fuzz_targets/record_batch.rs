//! Any bytes as produced records: header parsing, CRC check and record
//! iteration (with decompression) must return, never panic.
#![no_main]

use strata_protocol::batch::{split_batches, validate_crc, BatchHeader};
use strata_protocol::records::record_infos;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = split_batches(data);
    if let Ok(header) = BatchHeader::parse(data) {
        let _ = validate_crc(data, &header);
        let _ = record_infos(data, &header, 1 << 20);
    }
});
