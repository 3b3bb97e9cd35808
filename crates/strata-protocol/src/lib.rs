//! Kafka wire protocol for Strata: framing, request decoding, record batches.
//!
//! This crate is pure logic: it never touches a socket or a file, so everything
//! in it is tested on byte slices.
//!
//! - [`frame`]: the length-prefixed request frame and the request header,
//!   decoded without trusting a single byte the client sent.
//! - [`apis`]: the APIs and version ranges Strata serves (what ApiVersions says).
//! - [`batch`]: the Kafka V2 record batch header — validation (CRC-32C, sizes),
//!   and the broker-owned fields the broker stamps (base offset, log-append time).
//! - [`records`]: decompression (gzip, snappy, lz4, zstd) and record iteration,
//!   bounded in memory, for the checks that need record contents.
//! - [`retain`]: dropping records from a batch as key compaction does, the
//!   kept records byte for byte and the batch's offsets and producer fields
//!   intact; and the KIP-534 delete horizon.
//! - [`builder`]: encoding uncompressed batches, for tools and tests.
//! - [`coordinator_records`]: Kafka's layouts of the records in
//!   `__consumer_offsets` and `__transaction_state`.
//!
//! Invariant: a batch that passes [`batch::BatchHeader::parse`] and
//! [`batch::validate_crc`] is stored and served byte for byte, except for the
//! fields [`batch`] documents as broker-owned.

pub mod apis;
pub mod batch;
pub mod builder;
pub mod coordinator_records;
pub mod error;
pub mod frame;
pub mod records;
pub mod retain;

pub use error::{BatchError, ProtocolError};
pub use kafka_protocol;
