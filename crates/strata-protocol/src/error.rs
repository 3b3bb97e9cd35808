//! Errors of the protocol layer, each mapped to what the broker answers.

use kafka_protocol::ResponseError;

/// A request that cannot be understood at the framing or header level.
///
/// Every variant closes the connection: after such a frame the byte stream
/// can no longer be trusted.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    #[error("frame length {length} exceeds the limit of {limit} bytes")]
    FrameTooLarge { length: usize, limit: usize },
    #[error("frame length {0} is negative or too small for a request header")]
    BadFrameLength(i32),
    #[error("request header is truncated or malformed")]
    MalformedHeader,
    #[error("unknown api key {0}")]
    UnknownApiKey(i16),
    #[error("api key {api_key} version {version} is not supported")]
    UnsupportedVersion { api_key: i16, version: i16 },
    #[error("request body of api key {api_key} version {version} is malformed: {reason}")]
    MalformedBody {
        api_key: i16,
        version: i16,
        reason: String,
    },
}

/// Why a produced record batch was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BatchError {
    #[error("record batch is truncated: {0} bytes")]
    Truncated(usize),
    #[error("record batch magic {0} is not supported (only magic 2)")]
    UnsupportedMagic(i8),
    #[error("record batch length field {declared} does not match the {actual} bytes present")]
    LengthMismatch { declared: i64, actual: usize },
    #[error(
        "record batch CRC-32C mismatch: header says {expected:#010x}, bytes give {actual:#010x}"
    )]
    CrcMismatch { expected: u32, actual: u32 },
    #[error("record batch holds {0} records, which is not a valid count")]
    BadRecordCount(i32),
    #[error("record batch is {size} bytes, over the limit of {limit}")]
    TooLarge { size: usize, limit: usize },
    #[error("compression codec {0} is unknown")]
    UnknownCodec(u8),
    #[error("records cannot be decompressed: {0}")]
    Decompress(String),
    #[error("decompressed records exceed {0} bytes")]
    DecompressedTooLarge(usize),
    #[error("record {index} is malformed")]
    MalformedRecord { index: i32 },
    #[error("{0} bytes follow the last record the batch declares")]
    TrailingBytes(usize),
    #[error("records cannot be compressed: {0}")]
    Compress(String),
    #[error("records {indexes:?} have no key, which a compacted topic requires")]
    MissingKeys { indexes: Vec<i32> },
}

impl BatchError {
    /// The Kafka error a broker answers for this batch.
    pub fn response_error(&self) -> ResponseError {
        match self {
            BatchError::CrcMismatch { .. } | BatchError::Truncated(_) => {
                ResponseError::CorruptMessage
            }
            BatchError::TooLarge { .. } => ResponseError::MessageTooLarge,
            BatchError::UnsupportedMagic(_) => ResponseError::UnsupportedForMessageFormat,
            BatchError::MissingKeys { .. } => ResponseError::InvalidRecord,
            BatchError::LengthMismatch { .. }
            | BatchError::BadRecordCount(_)
            | BatchError::UnknownCodec(_)
            | BatchError::Decompress(_)
            | BatchError::DecompressedTooLarge(_)
            | BatchError::MalformedRecord { .. }
            | BatchError::TrailingBytes(_) => ResponseError::CorruptMessage,
            BatchError::Compress(_) => ResponseError::UnknownServerError,
        }
    }
}
