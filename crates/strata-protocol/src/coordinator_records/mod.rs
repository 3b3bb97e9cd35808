//! Kafka's record layouts for the coordinators' internal topics, so tools
//! that read `__consumer_offsets` and `__transaction_state` directly
//! (Burrow, Kafka's console-consumer formatters) decode what Strata writes.
//!
//! - [`group`]: `__consumer_offsets` — OffsetCommitKey/Value and
//!   GroupMetadataKey/Value.
//! - [`txn`]: `__transaction_state` — TransactionLogKey/Value, with Strata's
//!   own tagged fields for what its coordinator keeps beyond Kafka's.
//!
//! Every key and value starts with its schema version (big-endian `i16`);
//! the rest follows Kafka's message schemas: big-endian integers; in
//! non-flexible versions `i16`-length strings (-1: null), `i32`-length
//! bytes and `i32`-count arrays (-1: null); in flexible versions the
//! compact forms (unsigned varint length + 1, 0: null) and a tagged-field
//! section after each struct. Strata writes the versions Apache Kafka 3.x
//! and 4.x write, and reads every version the schemas define.
//!
//! Decoding trusts nothing: every read is bounds-checked, no allocation
//! follows a length before its bytes are there, and a record must be read
//! to its last byte. `None` means "not a record of this layout".

pub mod group;
pub mod txn;

/// Builds one key or value; remembers whether every field fit its type.
pub(crate) struct Writer {
    out: Vec<u8>,
    fits: bool,
}

impl Writer {
    /// A record of schema `version`.
    pub(crate) fn new(version: i16) -> Self {
        let mut writer = Writer {
            out: Vec::with_capacity(64),
            fits: true,
        };
        writer.i16(version);
        writer
    }

    /// The bytes, or `None` if a string or array was too long for its type.
    pub(crate) fn finish(self) -> Option<Vec<u8>> {
        self.fits.then_some(self.out)
    }

    pub(crate) fn i8(&mut self, v: i8) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn i16(&mut self, v: i16) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn i32(&mut self, v: i32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn i64(&mut self, v: i64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn uvarint(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.out.push((v as u8 & 0x7f) | 0x80);
            v >>= 7;
        }
        self.out.push(v as u8);
    }

    /// A length as `i16`; too long marks the record as not fitting.
    fn len_i16(&mut self, len: usize) {
        match i16::try_from(len) {
            Ok(len) => self.i16(len),
            Err(_) => self.fits = false,
        }
    }

    fn len_i32(&mut self, len: usize) {
        match i32::try_from(len) {
            Ok(len) => self.i32(len),
            Err(_) => self.fits = false,
        }
    }

    /// A compact length (`len + 1`), bounded like Kafka's (`i32`).
    fn len_compact(&mut self, len: usize) {
        match i32::try_from(len) {
            Ok(len) if len < i32::MAX => self.uvarint(len as u64 + 1),
            _ => self.fits = false,
        }
    }

    pub(crate) fn string(&mut self, s: &str) {
        self.len_i16(s.len());
        self.out.extend_from_slice(s.as_bytes());
    }

    pub(crate) fn nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.string(s),
            None => self.i16(-1),
        }
    }

    pub(crate) fn bytes(&mut self, b: &[u8]) {
        self.len_i32(b.len());
        self.out.extend_from_slice(b);
    }

    pub(crate) fn array_len(&mut self, len: usize) {
        self.len_i32(len);
    }

    pub(crate) fn compact_string(&mut self, s: &str) {
        // Kafka's compact strings are bounded like its other strings.
        if i16::try_from(s.len()).is_err() {
            self.fits = false;
        }
        self.len_compact(s.len());
        self.out.extend_from_slice(s.as_bytes());
    }

    pub(crate) fn compact_nullable_string(&mut self, s: Option<&str>) {
        match s {
            Some(s) => self.compact_string(s),
            None => self.uvarint(0),
        }
    }

    pub(crate) fn compact_array_len(&mut self, len: usize) {
        self.len_compact(len);
    }

    /// A tagged-field section: `(tag, bytes)` in ascending tag order.
    pub(crate) fn tagged_fields(&mut self, fields: &[(u32, Vec<u8>)]) {
        self.uvarint(fields.len() as u64);
        for (tag, bytes) in fields {
            self.uvarint(u64::from(*tag));
            if i32::try_from(bytes.len()).is_err() {
                self.fits = false;
            }
            self.uvarint(bytes.len() as u64);
            self.out.extend_from_slice(bytes);
        }
    }

    /// A nested structure's bytes (a tagged field's contents), without a
    /// version prefix.
    pub(crate) fn nested() -> Self {
        Writer {
            out: Vec::new(),
            fits: true,
        }
    }
}

/// Reads one key or value from untrusted bytes.
pub(crate) struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Reader(bytes)
    }

    /// `Some(())` when every byte was read.
    pub(crate) fn end(&self) -> Option<()> {
        self.0.is_empty().then_some(())
    }

    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let (head, rest) = self.0.split_at_checked(n)?;
        self.0 = rest;
        Some(head)
    }

    fn array<const N: usize>(&mut self) -> Option<[u8; N]> {
        self.take(N)?.try_into().ok()
    }

    pub(crate) fn i8(&mut self) -> Option<i8> {
        Some(i8::from_be_bytes(self.array()?))
    }

    pub(crate) fn i16(&mut self) -> Option<i16> {
        Some(i16::from_be_bytes(self.array()?))
    }

    pub(crate) fn i32(&mut self) -> Option<i32> {
        Some(i32::from_be_bytes(self.array()?))
    }

    pub(crate) fn i64(&mut self) -> Option<i64> {
        Some(i64::from_be_bytes(self.array()?))
    }

    /// An unsigned varint of at most 32 bits, as Kafka's lengths and tags are.
    pub(crate) fn uvarint(&mut self) -> Option<u32> {
        let mut value: u32 = 0;
        for shift in (0..35).step_by(7) {
            let byte = self.array::<1>()?[0];
            let bits = u32::from(byte & 0x7f);
            if shift == 28 && bits > 0x0f {
                return None;
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Some(value);
            }
        }
        None
    }

    fn utf8(&mut self, len: usize) -> Option<String> {
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }

    pub(crate) fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.i16()?).ok()?;
        self.utf8(len)
    }

    pub(crate) fn nullable_string(&mut self) -> Option<Option<String>> {
        match self.i16()? {
            -1 => Some(None),
            len => Some(Some(self.utf8(usize::try_from(len).ok()?)?)),
        }
    }

    pub(crate) fn bytes(&mut self) -> Option<Vec<u8>> {
        let len = usize::try_from(self.i32()?).ok()?;
        Some(self.take(len)?.to_vec())
    }

    /// An array's element count; `Some(None)` for a null array.
    pub(crate) fn nullable_array_len(&mut self) -> Option<Option<usize>> {
        match self.i32()? {
            -1 => Some(None),
            len => Some(Some(usize::try_from(len).ok()?)),
        }
    }

    pub(crate) fn array_len(&mut self) -> Option<usize> {
        self.nullable_array_len()?
    }

    /// A compact length: `Some(None)` for null (0), else the length, at
    /// most `i32::MAX` as Kafka's lengths are.
    fn compact_len(&mut self) -> Option<Option<usize>> {
        match self.uvarint()? {
            0 => Some(None),
            n => {
                let len = i32::try_from(n - 1).ok()?;
                Some(Some(usize::try_from(len).ok()?))
            }
        }
    }

    /// A compact string's length: Kafka refuses strings longer than an
    /// `i16` length could say, compact or not.
    fn compact_string_len(&mut self) -> Option<Option<usize>> {
        let len = self.compact_len()?;
        if len.is_some_and(|len| i16::try_from(len).is_err()) {
            return None;
        }
        Some(len)
    }

    pub(crate) fn compact_string(&mut self) -> Option<String> {
        let len = self.compact_string_len()??;
        self.utf8(len)
    }

    pub(crate) fn compact_nullable_string(&mut self) -> Option<Option<String>> {
        match self.compact_string_len()? {
            None => Some(None),
            Some(len) => Some(Some(self.utf8(len)?)),
        }
    }

    pub(crate) fn compact_bytes(&mut self) -> Option<Vec<u8>> {
        let len = self.compact_len()??;
        Some(self.take(len)?.to_vec())
    }

    pub(crate) fn compact_nullable_array_len(&mut self) -> Option<Option<usize>> {
        self.compact_len()
    }

    pub(crate) fn compact_array_len(&mut self) -> Option<usize> {
        self.compact_len()?
    }

    /// A tagged-field section: `visit(tag, field)` for each field, whose
    /// reader must read the field whole; unknown tags are skipped.
    pub(crate) fn tagged_fields(
        &mut self,
        mut visit: impl FnMut(u32, &mut Reader<'a>) -> Option<()>,
    ) -> Option<()> {
        let count = self.uvarint()?;
        for _ in 0..count {
            let tag = self.uvarint()?;
            let size = usize::try_from(self.uvarint()?).ok()?;
            let mut field = Reader(self.take(size)?);
            visit(tag, &mut field)?;
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_round_trip_and_overlong_ones_are_refused() {
        for v in [0u32, 1, 127, 128, 300, 16_383, 16_384, u32::MAX] {
            let mut w = Writer::nested();
            w.uvarint(u64::from(v));
            let bytes = w.finish().unwrap_or_default();
            let mut r = Reader::new(&bytes);
            assert_eq!(r.uvarint(), Some(v));
            assert_eq!(r.end(), Some(()));
        }
        // Six bytes, or a fifth byte with more than 4 bits: not a 32-bit varint.
        assert_eq!(
            Reader::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0x01]).uvarint(),
            None
        );
        assert_eq!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x1f]).uvarint(), None);
        assert_eq!(Reader::new(&[0x80]).uvarint(), None);
    }

    #[test]
    fn a_string_too_long_for_its_type_does_not_fit() {
        let mut w = Writer::new(0);
        w.string(&"x".repeat(40_000));
        assert!(w.finish().is_none());
        let mut w = Writer::new(1);
        w.compact_string(&"x".repeat(40_000));
        assert!(w.finish().is_none());
    }

    #[test]
    fn lengths_beyond_the_bytes_are_refused_without_allocating() {
        let mut r = Reader::new(&[0x7f, 0xff, 0xff, 0xff, 1, 2]);
        assert_eq!(r.bytes(), None);
        let mut r = Reader::new(&[0x7f, 0xff, b'a']);
        assert_eq!(r.string(), None);
        let mut r = Reader::new(&[0xff, 0xfe]);
        assert_eq!(r.nullable_string(), None);
    }

    #[test]
    fn unknown_tagged_fields_are_skipped() {
        let mut w = Writer::nested();
        w.tagged_fields(&[(3, vec![1, 2, 3]), (200, vec![9])]);
        let bytes = w.finish().unwrap_or_default();
        let mut seen = Vec::new();
        let mut r = Reader::new(&bytes);
        r.tagged_fields(|tag, field| {
            seen.push(tag);
            if tag == 200 {
                assert_eq!(field.i8(), Some(9));
            }
            Some(())
        });
        assert_eq!(seen, vec![3, 200]);
        assert_eq!(r.end(), Some(()));
    }

    /// A small deterministic generator for round-trip checks.
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> usize {
            (self.next() % n) as usize
        }
        fn text(&mut self) -> String {
            let alphabet = ["a", "Z", "-", "✓", "é", "0", " "];
            (0..self.below(12))
                .map(|_| alphabet[self.below(alphabet.len() as u64)])
                .collect()
        }
        fn maybe_text(&mut self) -> Option<String> {
            (self.below(3) > 0).then(|| self.text())
        }
        fn bytes(&mut self) -> Vec<u8> {
            (0..self.below(20)).map(|_| self.next() as u8).collect()
        }
    }

    #[test]
    fn random_values_round_trip() {
        use group::{GroupMetadataValue, GroupRecordKey, MemberMetadata, OffsetCommitValue};
        use txn::{PendingOffsetRecord, TopicPartitions, TransactionLogValue};
        let mut rng = Rng(0x5eed);
        for _ in 0..500 {
            let key = GroupRecordKey::OffsetCommit {
                group: rng.text(),
                topic: rng.text(),
                partition: rng.next() as i32,
            };
            assert_eq!(GroupRecordKey::decode(&key.encode().unwrap()), Some(key));
            let offset = OffsetCommitValue {
                offset: rng.next() as i64,
                leader_epoch: rng.next() as i32,
                metadata: rng.text(),
                commit_timestamp: rng.next() as i64,
            };
            assert_eq!(
                OffsetCommitValue::decode(&offset.encode().unwrap()),
                Some(offset)
            );
            let group = GroupMetadataValue {
                protocol_type: rng.text(),
                generation: rng.next() as i32,
                protocol: rng.maybe_text(),
                leader: rng.maybe_text(),
                current_state_timestamp: rng.next() as i64,
                members: (0..rng.below(4))
                    .map(|_| MemberMetadata {
                        member_id: rng.text(),
                        group_instance_id: rng.maybe_text(),
                        client_id: rng.text(),
                        client_host: rng.text(),
                        rebalance_timeout: rng.next() as i32,
                        session_timeout: rng.next() as i32,
                        subscription: rng.bytes(),
                        assignment: rng.bytes(),
                    })
                    .collect(),
            };
            assert_eq!(
                GroupMetadataValue::decode(&group.encode().unwrap()),
                Some(group)
            );
            let mut state = TransactionLogValue::new(
                rng.next() as i64,
                rng.next() as i16,
                rng.next() as i32,
                rng.below(8) as i8,
            );
            state.partitions = (rng.below(2) == 0).then(|| {
                (0..rng.below(4))
                    .map(|_| TopicPartitions {
                        topic: rng.text(),
                        partitions: (0..rng.below(5)).map(|_| rng.next() as i32).collect(),
                    })
                    .collect()
            });
            state.last_update_ms = rng.next() as i64;
            state.start_ms = rng.next() as i64;
            if rng.below(2) == 0 {
                state.previous_producer_id = rng.next() as i64;
                state.client_transaction_version = rng.next() as i16;
            }
            state.groups = (0..rng.below(3)).map(|_| rng.text()).collect();
            state.pending_offsets = (0..rng.below(3))
                .map(|_| PendingOffsetRecord {
                    group: rng.text(),
                    topic: rng.text(),
                    partition: rng.next() as i32,
                    offset: rng.next() as i64,
                    leader_epoch: rng.next() as i32,
                    metadata: rng.maybe_text(),
                })
                .collect();
            assert_eq!(
                TransactionLogValue::decode(&state.encode().unwrap()),
                Some(state)
            );
        }
    }
}
