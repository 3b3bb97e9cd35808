//! Any bytes as a request frame body: decoding must return, never panic or abort.
#![no_main]

// The broker's own allocator, so hostile array counts behave as in production.
#[path = "../../crates/strata/src/alloc.rs"]
mod alloc;

#[global_allocator]
static GLOBAL: alloc::LazyLargeAllocator = alloc::LazyLargeAllocator;

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let _ = strata_protocol::frame::decode_request(bytes::Bytes::copy_from_slice(data));
});
