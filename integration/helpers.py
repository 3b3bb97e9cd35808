"""Shared helpers: raw Kafka frames, WAL file parsing, client round trips."""

from __future__ import annotations

import re
import socket
import struct
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

# --------------------------------------------------------------- raw protocol

API_VERSIONS = 18
UNSUPPORTED_VERSION = 35


def request_frame(
    api_key: int,
    api_version: int,
    correlation_id: int,
    body: bytes = b"",
    client_id: str | None = "strata-it",
    flexible_header: bool = False,
) -> bytes:
    """A length-prefixed request: header v1 (or v2 with empty tagged fields)."""
    header = struct.pack(">hhi", api_key, api_version, correlation_id)
    if client_id is None:
        header += struct.pack(">h", -1)
    else:
        cid = client_id.encode()
        header += struct.pack(">h", len(cid)) + cid
    if flexible_header:
        header += b"\x00"  # no tagged fields
    payload = header + body
    return struct.pack(">i", len(payload)) + payload


def recv_exact(sock: socket.socket, n: int) -> bytes:
    buf = bytearray()
    while len(buf) < n:
        chunk = sock.recv(n - len(buf))
        if not chunk:
            raise ConnectionError(f"connection closed after {len(buf)} of {n} bytes")
        buf += chunk
    return bytes(buf)


def recv_frame(sock: socket.socket) -> bytes:
    """One length-prefixed response; returns the bytes after the length."""
    (length,) = struct.unpack(">i", recv_exact(sock, 4))
    assert 0 <= length < 64 * 1024 * 1024, f"implausible response length {length}"
    return recv_exact(sock, length)


@dataclass
class ApiVersionsV0:
    correlation_id: int
    error_code: int
    ranges: dict[int, tuple[int, int]] = field(default_factory=dict)
    trailing: bytes = b""


def parse_api_versions_v0(frame: bytes) -> ApiVersionsV0:
    """ApiVersions response in the v0 layout: corr id, error, [key min max]."""
    corr, err, n = struct.unpack(">ihi", frame[:10])
    assert 0 <= n < 10_000, f"implausible api key count {n}"
    ranges = {}
    pos = 10
    for _ in range(n):
        key, lo, hi = struct.unpack(">hhh", frame[pos:pos + 6])
        ranges[key] = (lo, hi)
        pos += 6
    return ApiVersionsV0(corr, err, ranges, frame[pos:])


def api_versions(port: int, timeout: float = 5.0, version: int = 0) -> ApiVersionsV0:
    """Sends ApiVersions v0 on a fresh connection and parses the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(request_frame(API_VERSIONS, version, 7))
        frame = recv_frame(s)
    resp = parse_api_versions_v0(frame)
    assert resp.correlation_id == 7, f"correlation id {resp.correlation_id} != 7"
    return resp


def wait_closed(sock: socket.socket, timeout: float) -> bool:
    """True when the peer closes (EOF or reset) within timeout; drains data."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = sock.recv(65536)
        except socket.timeout:
            return False
        except (ConnectionResetError, BrokenPipeError):
            return True
        if not data:
            return True
    return False


# -------------------------------------------------------------------- WAL files

WAL_FILE_HEADER = b"STRATAWL"
WAL_HEADER_TAG = b"HEAD"  # version 2 headers: 32 bytes; version 1: the magic alone
WAL_ENTRY_MAGIC = 0x53574C45
WAL_ENTRY_HEADER = 16  # magic u32, length u32, crc64 u64 (all little-endian)


@dataclass
class WalEntry:
    position: int        # file offset of the entry header
    payload_start: int   # file offset of the payload
    length: int          # payload length
    payload: bytes

    @property
    def end(self) -> int:
        return self.payload_start + self.length


def wal_header_len(data: bytes) -> int:
    """Bytes of a WAL segment's file header (see docs/formats.md)."""
    return 32 if data[8:12] == WAL_HEADER_TAG else 8


def wal_entries(path: Path) -> list[WalEntry]:
    """Entries of an intact WAL segment, in file order (stops at a torn tail)."""
    data = Path(path).read_bytes()
    assert data[:8] == WAL_FILE_HEADER, f"{path}: bad file header {data[:8]!r}"
    pos = wal_header_len(data)
    out = []
    while pos + WAL_ENTRY_HEADER <= len(data):
        magic, length, _crc = struct.unpack("<IIQ", data[pos:pos + WAL_ENTRY_HEADER])
        if magic != WAL_ENTRY_MAGIC:
            break
        start = pos + WAL_ENTRY_HEADER
        if start + length > len(data):
            break
        out.append(WalEntry(pos, start, length, data[start:start + length]))
        pos = start + length
    return out


def values_in(payload: bytes, values) -> list[bytes]:
    """Which of the given (uncompressed, unique) values appear in a payload."""
    return [v for v in values if v in payload]


# ------------------------------------------------------- confluent-kafka helpers


@dataclass
class Delivered:
    """One message and what its delivery report said."""
    index: int
    key: bytes | None
    value: bytes
    partition: int = -1
    offset: int = -1
    error: object = None


def producer_config(bootstrap: str, **extra) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "acks": "all",
        "enable.idempotence": False,
        "linger.ms": 5,
        "message.timeout.ms": 60000,
    }
    conf.update(extra)
    return conf


def consumer_config(bootstrap: str, **extra) -> dict:
    conf = {
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "group.id": "strata-it",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        "fetch.wait.max.ms": 100,
    }
    conf.update(extra)
    return conf


def produce_all(producer, topic: str, messages, timeout: float = 120.0,
                flush_each: bool = False, **produce_kwargs) -> list[Delivered]:
    """Produces (key, value) pairs in order; returns their delivery reports."""
    from confluent_kafka import KafkaError  # noqa: F401  (import check)

    results: list[Delivered] = []
    deadline = time.monotonic() + timeout
    for i, (key, value) in enumerate(messages):
        d = Delivered(i, key, value)
        results.append(d)

        def cb(err, msg, d=d):
            if err is not None:
                d.error = err
            else:
                d.partition = msg.partition()
                d.offset = msg.offset()

        while True:
            try:
                producer.produce(topic, key=key, value=value, on_delivery=cb, **produce_kwargs)
                break
            except BufferError:
                producer.poll(0.05)
                assert time.monotonic() < deadline, "producer queue stayed full"
        producer.poll(0)
        if flush_each:
            left = producer.flush(max(0.1, deadline - time.monotonic()))
            assert left == 0, f"{left} messages still in flight at the deadline"
    left = producer.flush(max(0.1, deadline - time.monotonic()))
    assert left == 0, f"{left} messages still in flight at the deadline"
    return results


def watermarks(bootstrap: str, topic: str, partitions, timeout: float = 10.0):
    """{partition: (low, high)} through a throwaway consumer."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer(consumer_config(bootstrap))
    try:
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
                for p in partitions}
    finally:
        c.close()


def consume_all(bootstrap: str, topic: str, partitions, timeout: float = 60.0,
                start_offset: int = 0, **conf) -> dict[int, list]:
    """Reads every partition from start_offset up to its current high watermark.

    Returns {partition: [(offset, key, value, timestamp_ms), ...]} in
    the order the consumer delivered them.
    """
    from confluent_kafka import Consumer, TopicPartition

    partitions = list(partitions)
    ends = watermarks(bootstrap, topic, partitions)
    out: dict[int, list] = {p: [] for p in partitions}
    todo = {p for p in partitions if ends[p][1] > 0 and ends[p][1] > ends[p][0]}
    if not todo:
        return out
    c = Consumer(consumer_config(bootstrap, **conf))
    try:
        c.assign([TopicPartition(topic, p, start_offset) for p in partitions])
        deadline = time.monotonic() + timeout
        while todo:
            assert time.monotonic() < deadline, (
                f"consume timed out; still waiting for partitions {sorted(todo)} "
                f"(ends {ends}, got { {p: len(v) for p, v in out.items()} })")
            for m in c.consume(num_messages=10000, timeout=0.5):
                if m.error():
                    raise AssertionError(f"consumer error: {m.error()}")
                p = m.partition()
                out[p].append((m.offset(), m.key(), m.value(), m.timestamp()[1]))
                if m.offset() + 1 >= ends[p][1]:
                    todo.discard(p)
    finally:
        c.close()
    return out


def create_topic(bootstrap: str, name: str, partitions: int, config: dict | None = None,
                 timeout: float = 15.0) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})
    fs = admin.create_topics(
        [NewTopic(name, num_partitions=partitions, replication_factor=1, config=config or {})],
        request_timeout=timeout)
    fs[name].result(timeout)


def check_against_acks(acked: list[Delivered], consumed: dict[int, list],
                       dense: bool = True, ordered: bool = True) -> None:
    """Every acked message is served at its acked offset (in produce order).

    dense: the served offsets of each partition are 0, 1, 2, ...
    ordered: per partition, acknowledged offsets ascend in produce order
    (a producer without idempotence may reorder across retries, so crash
    tests turn this off).
    """
    by_part: dict[int, list[Delivered]] = defaultdict(list)
    for d in acked:
        by_part[d.partition].append(d)
    for p, ds in by_part.items():
        got = consumed.get(p, [])
        offsets = [o for o, *_ in got]
        assert offsets == sorted(offsets), f"partition {p}: offsets not ascending"
        if dense:
            assert offsets == list(range(len(got))), (
                f"partition {p}: offsets not dense from 0: first {offsets[:5]}, "
                f"count {len(offsets)}, last {offsets[-3:]}")
        at = {o: (k, v) for o, k, v, _ in got}
        for d in ds:
            assert d.offset in at, (
                f"partition {p}: acknowledged offset {d.offset} (message #{d.index}) not served")
            k, v = at[d.offset]
            assert v == d.value and k == d.key, (
                f"partition {p} offset {d.offset}: served {k!r}/{v[:40]!r}, "
                f"acknowledged {d.key!r}/{d.value[:40]!r}")
        if not ordered:
            continue
        # per-partition order of acknowledgements matches produce order
        acked_offsets = [d.offset for d in sorted(ds, key=lambda d: d.index)]
        assert acked_offsets == sorted(acked_offsets), (
            f"partition {p}: acknowledged offsets are not in produce order")


# ------------------------------------------------------------------ /metrics


def metrics_text(http_port: int, timeout: float = 5.0) -> str:
    """GET /metrics: the exposition text as served."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=timeout) as r:
        assert r.status == 200
        assert r.headers["content-type"].startswith("text/plain")
        return r.read().decode()


# One label pair; the value keeps its escapes (\\, \" and \n).
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"')


def _unescape_label(value: str) -> str:
    return re.sub(r"\\(.)", lambda m: "\n" if m.group(1) == "n" else m.group(1), value)


def scrape(http_port: int, timeout: float = 5.0) -> dict[tuple[str, frozenset], float]:
    """GET /metrics: {(sample name, frozenset of (label, value)): value}."""
    text = metrics_text(http_port, timeout)
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        labels = frozenset()
        if "{" in head:
            name, rest = head.split("{", 1)
            labels = frozenset((k, _unescape_label(v)) for k, v in _LABEL.findall(rest))
        else:
            name = head
        key = (name, labels)
        assert key not in out, f"sample {key} appears twice"
        out[key] = float(value)
    return out


def metric_families(http_port: int) -> dict[str, str]:
    """{family name: type} from the # TYPE lines of /metrics."""
    import urllib.request

    with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/metrics", timeout=5.0) as r:
        text = r.read().decode()
    families = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ", 3)
            families[name] = kind
    return families


def sample(metrics: dict, name: str, **labels) -> float:
    """One sample's value (0 when absent: a labelled counter not yet touched)."""
    return metrics.get((name, frozenset((k, str(v)) for k, v in labels.items())), 0.0)
