//! Request frames: a big-endian `i32` length, then a request header and body.
//!
//! Parsing trusts nothing: the length is checked against a limit before any
//! buffering, and the header is read field by field from a bounds-checked
//! cursor. Only a header that names a supported API at a supported version is
//! handed to the `kafka-protocol` codecs.

use bytes::{Buf, Bytes};
use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind};
use kafka_protocol::protocol::Decodable;

use crate::apis;
use crate::error::ProtocolError;

/// Bytes of the length prefix in front of every request and response.
pub const LENGTH_PREFIX: usize = 4;

/// The smallest request: api key, api version, correlation id, client id length.
const MIN_HEADER: usize = 10;

/// Checks a frame's length prefix before the frame is buffered.
pub fn check_frame_length(raw: i32, limit: usize) -> Result<usize, ProtocolError> {
    let length = usize::try_from(raw).map_err(|_| ProtocolError::BadFrameLength(raw))?;
    if length < MIN_HEADER {
        return Err(ProtocolError::BadFrameLength(raw));
    }
    if length > limit {
        return Err(ProtocolError::FrameTooLarge { length, limit });
    }
    Ok(length)
}

/// The fixed start of every request header, readable for any api and version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HeaderPrefix {
    pub api_key: i16,
    pub api_version: i16,
    pub correlation_id: i32,
}

impl HeaderPrefix {
    /// Reads api key, version and correlation id from the start of a frame body.
    pub fn peek(frame: &[u8]) -> Result<Self, ProtocolError> {
        let mut cursor = frame;
        if cursor.remaining() < 8 {
            return Err(ProtocolError::MalformedHeader);
        }
        Ok(HeaderPrefix {
            api_key: cursor.get_i16(),
            api_version: cursor.get_i16(),
            correlation_id: cursor.get_i32(),
        })
    }
}

/// The client id of a request header, read without trusting the frame:
/// `None` when null or cut short. Every request header version but 0 (no
/// API Strata serves uses it) carries it right after the correlation id as
/// a nullable `i16`-length string, so it is readable even in a request at
/// a version Strata cannot decode. Invalid UTF-8 is replaced.
pub fn peek_client_id(frame: &[u8]) -> Option<String> {
    let rest = frame.get(8..)?;
    let len = i16::from_be_bytes([*rest.first()?, *rest.get(1)?]);
    let bytes = rest.get(2..2 + usize::try_from(len).ok()?)?;
    Some(String::from_utf8_lossy(bytes).into_owned())
}

/// A decoded request: its header and its typed body.
#[derive(Debug)]
pub struct Request {
    pub api_key: ApiKey,
    pub header: RequestHeader,
    pub body: RequestKind,
}

/// Decodes a whole frame body (without the length prefix).
///
/// The caller answers `UnsupportedVersion` for ApiVersions itself (it has a
/// special v0 answer); every other error closes the connection.
pub fn decode_request(frame: Bytes) -> Result<Request, ProtocolError> {
    let prefix = HeaderPrefix::peek(&frame)?;
    let api_key = ApiKey::try_from(prefix.api_key)
        .map_err(|()| ProtocolError::UnknownApiKey(prefix.api_key))?;
    let range =
        apis::supported_versions(api_key).ok_or(ProtocolError::UnknownApiKey(prefix.api_key))?;
    if prefix.api_version < range.min || prefix.api_version > range.max {
        return Err(ProtocolError::UnsupportedVersion {
            api_key: prefix.api_key,
            version: prefix.api_version,
        });
    }
    let mut body = frame;
    let header_version = api_key.request_header_version(prefix.api_version);
    let header =
        RequestHeader::decode(&mut body, header_version).map_err(|e| malformed(prefix, &e))?;
    let body_kind = RequestKind::decode(api_key, &mut body, prefix.api_version)
        .map_err(|e| malformed(prefix, &e))?;
    Ok(Request {
        api_key,
        header,
        body: body_kind,
    })
}

/// `kafka-protocol` reports decode errors as `anyhow::Error`; only the message is kept.
fn malformed(prefix: HeaderPrefix, error: &dyn std::fmt::Display) -> ProtocolError {
    ProtocolError::MalformedBody {
        api_key: prefix.api_key,
        version: prefix.api_version,
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_length_limits() {
        assert!(check_frame_length(-1, 100).is_err());
        assert!(check_frame_length(3, 100).is_err());
        assert!(matches!(
            check_frame_length(101, 100),
            Err(ProtocolError::FrameTooLarge { .. })
        ));
        assert_eq!(check_frame_length(100, 100).ok(), Some(100));
    }

    #[test]
    fn unknown_api_key_is_refused() {
        let frame = Bytes::from_static(&[0x03, 0xe7, 0, 0, 0, 0, 0, 1, 0xff, 0xff]);
        assert!(matches!(
            decode_request(frame),
            Err(ProtocolError::UnknownApiKey(999))
        ));
    }

    #[test]
    fn truncated_body_is_malformed_not_a_panic() {
        // Metadata v1 header with client id, then a topics array claiming a
        // million entries that are not there. (Counts near 2^31 make the codec
        // reserve terabytes; the binary's allocator keeps that virtual, see
        // the `strata` crate.)
        let mut raw = vec![0, 3, 0, 1, 0, 0, 0, 7, 0, 0];
        raw.extend_from_slice(&1_000_000i32.to_be_bytes());
        assert!(matches!(
            decode_request(Bytes::from(raw)),
            Err(ProtocolError::MalformedBody { .. })
        ));
    }

    #[test]
    fn the_client_id_is_read_from_any_header_or_none() {
        let raw = [
            0, 2, 0, 0, 0, 0, 0, 1, 0, 6, b'b', b'u', b'r', b'r', b'o', b'w', 0xff,
        ];
        assert_eq!(peek_client_id(&raw).as_deref(), Some("burrow"));
        assert_eq!(peek_client_id(&raw[..15]), None);
        assert_eq!(peek_client_id(&[0, 2, 0, 0, 0, 0, 0, 1, 0xff, 0xff]), None);
        assert_eq!(peek_client_id(&[0, 2, 0, 0, 0, 0, 0, 1, 0]), None);
        assert_eq!(
            peek_client_id(&[0, 2, 0, 0, 0, 0, 0, 1, 0, 2, 0xff, b'x']).as_deref(),
            Some("\u{fffd}x")
        );
    }

    #[test]
    fn every_prefix_of_a_request_is_handled() {
        let raw: Vec<u8> = vec![
            0, 18, 0, 3, 0, 0, 0, 1, 0, 4, b'k', b'c', b'a', b't', 0, 4, b'k', 0,
        ];
        for end in 0..raw.len() {
            let _ = decode_request(Bytes::copy_from_slice(&raw[..end]));
        }
    }
}
