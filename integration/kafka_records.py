"""Kafka's record schemas for `__consumer_offsets` and `__transaction_state`,
written out from Apache Kafka's public message specs
(group-coordinator/src/main/resources/common/message/{OffsetCommitKey,
OffsetCommitValue,GroupMetadataKey,GroupMetadataValue}.json and
transaction-coordinator/src/main/resources/common/message/
TransactionLog{Key,Value}.json), and a decoder that follows them the way
Kafka's generated readers do: a big-endian int16 version first; then each
field present at that version; compact forms and tagged-field sections in
flexible versions; unknown tags skipped.

Nothing here knows Strata: the tests decode what Strata writes with
Kafka's definitions only.
"""

from __future__ import annotations

import struct

OFFSET_COMMIT_KEY = {
    "name": "OffsetCommitKey", "validVersions": "0-1", "flexibleVersions": "none",
    "fields": [
        {"name": "group", "type": "string", "versions": "0-1"},
        {"name": "topic", "type": "string", "versions": "0-1"},
        {"name": "partition", "type": "int32", "versions": "0-1"},
    ],
}

OFFSET_COMMIT_VALUE = {
    "name": "OffsetCommitValue", "validVersions": "0-4", "flexibleVersions": "4+",
    "fields": [
        {"name": "offset", "type": "int64", "versions": "0+"},
        {"name": "leaderEpoch", "type": "int32", "versions": "3+", "default": -1},
        {"name": "metadata", "type": "string", "versions": "0+"},
        {"name": "commitTimestamp", "type": "int64", "versions": "0+"},
        {"name": "expireTimestamp", "type": "int64", "versions": "1", "default": -1},
    ],
}

GROUP_METADATA_KEY = {
    "name": "GroupMetadataKey", "validVersions": "2", "flexibleVersions": "none",
    "fields": [{"name": "group", "type": "string", "versions": "2"}],
}

MEMBER_METADATA = [
    {"name": "memberId", "versions": "0+", "type": "string"},
    {"name": "groupInstanceId", "versions": "3+", "type": "string", "default": None,
     "nullableVersions": "3+"},
    {"name": "clientId", "versions": "0+", "type": "string"},
    {"name": "clientHost", "versions": "0+", "type": "string"},
    {"name": "rebalanceTimeout", "versions": "1+", "type": "int32", "default": -1},
    {"name": "sessionTimeout", "versions": "0+", "type": "int32"},
    {"name": "subscription", "versions": "0+", "type": "bytes"},
    {"name": "assignment", "versions": "0+", "type": "bytes"},
]

GROUP_METADATA_VALUE = {
    "name": "GroupMetadataValue", "validVersions": "0-4", "flexibleVersions": "4+",
    "fields": [
        {"name": "protocolType", "versions": "0+", "type": "string"},
        {"name": "generation", "versions": "0+", "type": "int32"},
        {"name": "protocol", "versions": "0+", "type": "string", "nullableVersions": "0+"},
        {"name": "leader", "versions": "0+", "type": "string", "nullableVersions": "0+"},
        {"name": "currentStateTimestamp", "versions": "2+", "type": "int64", "default": -1},
        {"name": "members", "versions": "0+", "type": "[]MemberMetadata",
         "fields": MEMBER_METADATA},
    ],
}

TRANSACTION_LOG_KEY = {
    "name": "TransactionLogKey", "validVersions": "0", "flexibleVersions": "none",
    "fields": [{"name": "TransactionalId", "type": "string", "versions": "0"}],
}

TRANSACTION_LOG_VALUE = {
    "name": "TransactionLogValue", "validVersions": "0-1", "flexibleVersions": "1+",
    "fields": [
        {"name": "ProducerId", "type": "int64", "versions": "0+"},
        {"name": "PreviousProducerId", "type": "int64", "taggedVersions": "1+", "tag": 0,
         "default": -1},
        {"name": "NextProducerId", "type": "int64", "taggedVersions": "1+", "tag": 1,
         "default": -1},
        {"name": "ProducerEpoch", "type": "int16", "versions": "0+"},
        {"name": "TransactionTimeoutMs", "type": "int32", "versions": "0+"},
        {"name": "TransactionStatus", "type": "int8", "versions": "0+"},
        {"name": "TransactionPartitions", "type": "[]PartitionsSchema", "versions": "0+",
         "nullableVersions": "0+", "fields": [
             {"name": "Topic", "type": "string", "versions": "0+"},
             {"name": "PartitionIds", "type": "[]int32", "versions": "0+"},
         ]},
        {"name": "TransactionLastUpdateTimestampMs", "type": "int64", "versions": "0+"},
        {"name": "TransactionStartTimestampMs", "type": "int64", "versions": "0+"},
        {"name": "ClientTransactionVersion", "type": "int16", "default": 0,
         "taggedVersions": "1+", "tag": 2},
    ],
}

# Kafka's TransactionState ids.
TXN_STATUS = {0: "Empty", 1: "Ongoing", 2: "PrepareCommit", 3: "PrepareAbort",
              4: "CompleteCommit", 5: "CompleteAbort", 6: "Dead", 7: "PrepareEpochFence"}

_INTS = {"int8": ">b", "int16": ">h", "int32": ">i", "int64": ">q"}


def in_versions(spec: str | None, version: int) -> bool:
    """Whether `version` is in a spec's range ("0+", "1-3", "2", "none")."""
    if spec is None or spec == "none":
        return False
    if spec.endswith("+"):
        return version >= int(spec[:-1])
    if "-" in spec:
        low, high = spec.split("-")
        return int(low) <= version <= int(high)
    return version == int(spec)


class DecodeError(Exception):
    pass


class _Reader:
    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0

    def take(self, n: int) -> bytes:
        if n < 0 or self.pos + n > len(self.data):
            raise DecodeError(f"need {n} bytes at {self.pos} of {len(self.data)}")
        out = self.data[self.pos:self.pos + n]
        self.pos += n
        return out

    def int(self, kind: str) -> int:
        fmt = _INTS[kind]
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))[0]

    def uvarint(self) -> int:
        value, shift = 0, 0
        while True:
            byte = self.take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
            shift += 7
            if shift > 28:
                raise DecodeError("varint too long")

    def length(self, flexible: bool, wide: bool) -> int:
        """A length or count: -1 for null."""
        if flexible:
            return self.uvarint() - 1
        return self.int("int32" if wide else "int16")

    def at_end(self) -> bool:
        return self.pos == len(self.data)


def _read_value(r: _Reader, field: dict, version: int, flexible: bool):
    kind = field["type"]
    nullable = in_versions(field.get("nullableVersions"), version)
    if kind in _INTS:
        return r.int(kind)
    if kind in ("string", "bytes"):
        n = r.length(flexible, wide=(kind == "bytes"))
        if n < 0:
            if not nullable:
                raise DecodeError(f"null {field['name']}")
            return None
        raw = r.take(n)
        return raw.decode("utf-8") if kind == "string" else raw
    if kind.startswith("[]"):
        n = r.length(flexible, wide=True)
        if n < 0:
            if not nullable:
                raise DecodeError(f"null array {field['name']}")
            return None
        element = kind[2:]
        if element in _INTS:
            return [r.int(element) for _ in range(n)]
        return [_read_struct(r, field["fields"], version, flexible) for _ in range(n)]
    raise DecodeError(f"type {kind} not written out here")


def _read_struct(r: _Reader, fields: list[dict], version: int, flexible: bool) -> dict:
    out: dict = {}
    tagged = {}
    for field in fields:
        if in_versions(field.get("taggedVersions"), version):
            tagged[field["tag"]] = field
            out[field["name"]] = field.get("default")
        elif in_versions(field.get("versions"), version):
            out[field["name"]] = _read_value(r, field, version, flexible)
        else:
            out[field["name"]] = field.get("default")
    if flexible:
        for _ in range(r.uvarint()):
            tag = r.uvarint()
            data = r.take(r.uvarint())
            if tag in tagged:
                inner = _Reader(data)
                out[tagged[tag]["name"]] = _read_value(inner, tagged[tag], version, True)
                if not inner.at_end():
                    raise DecodeError(f"tagged field {tag} longer than its type")
            else:
                out.setdefault("_unknownTaggedFields", {})[tag] = data
    return out


def decode(schema: dict, data: bytes) -> tuple[int, dict]:
    """`(version, fields)` of a version-prefixed record; DecodeError if the
    bytes are not this schema at a version it defines, whole."""
    r = _Reader(data)
    version = r.int("int16")
    if not in_versions(schema["validVersions"], version):
        raise DecodeError(f"{schema['name']} has no version {version}")
    flexible = in_versions(schema["flexibleVersions"], version)
    fields = _read_struct(r, schema["fields"], version, flexible)
    if not r.at_end():
        raise DecodeError(f"{len(data) - r.pos} bytes after {schema['name']} v{version}")
    return version, fields


def decode_offsets_record(key: bytes, value: bytes | None) -> tuple[str, int, dict, dict | None]:
    """A `__consumer_offsets` record as Kafka reads it: the key version picks
    the schema (0 and 1 OffsetCommit, 2 GroupMetadata). Returns
    `(kind, key version, key fields, value fields or None)`."""
    key_version = struct.unpack(">h", key[:2])[0]
    if key_version in (0, 1):
        _, k = decode(OFFSET_COMMIT_KEY, key)
        v = None if value is None else decode(OFFSET_COMMIT_VALUE, value)
        kind = "offset"
    elif key_version == 2:
        _, k = decode(GROUP_METADATA_KEY, key)
        v = None if value is None else decode(GROUP_METADATA_VALUE, value)
        kind = "group"
    else:
        raise DecodeError(f"key version {key_version}")
    if v is not None:
        value_version, fields = v
        fields["_version"] = value_version
        v = fields
    return kind, key_version, k, v


def decode_txn_record(key: bytes, value: bytes | None) -> tuple[str, dict | None]:
    """A `__transaction_state` record: `(transactional id, value fields or None)`."""
    _, k = decode(TRANSACTION_LOG_KEY, key)
    if value is None:
        return k["TransactionalId"], None
    version, fields = decode(TRANSACTION_LOG_VALUE, value)
    fields["_version"] = version
    return k["TransactionalId"], fields
