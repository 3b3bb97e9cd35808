"""Fetch answers within their limits: KIP-74's fetch.max.bytes across
partitions, and the broker-wide budget for answers that slow consumers have
not read yet."""

from __future__ import annotations

import socket
import struct
import time

import pytest
from confluent_kafka import Producer, TopicPartition

import helpers

FETCH = 1


def fetch_v4(correlation_id: int, topic: str, partition: int, offset: int,
             max_bytes: int) -> bytes:
    """A Fetch v4 request for one partition (max_wait 0, min_bytes 1)."""
    name = topic.encode()
    body = struct.pack(">iiiib", -1, 0, 1, max_bytes, 0)
    body += struct.pack(">i", 1) + struct.pack(">h", len(name)) + name
    body += struct.pack(">i", 1) + struct.pack(">iqi", partition, offset, max_bytes)
    return helpers.request_frame(FETCH, 4, correlation_id, body)


def rss_bytes(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@pytest.mark.timeout(120)
def test_large_batches_across_partitions_under_small_fetch_max_bytes(broker):
    """Three partitions each holding 900 KB batches, fetch.max.bytes=1000000:
    only the first partition with data may exceed the limit, so librdkafka
    (which refuses answers larger than receive.message.max.bytes) reads all."""
    topic = "big-batches"
    helpers.create_topic(broker.bootstrap, topic, 3)
    producer = Producer(helpers.producer_config(broker.bootstrap, **{"linger.ms": 0}))
    acked = []
    for p in range(3):
        for i in range(2):
            value = bytes([65 + p]) * 900_000 + b"-%d" % i
            acked += helpers.produce_all(producer, topic, [(b"k%d" % p, value)],
                                         partition=p)
    assert all(d.error is None for d in acked), [d.error for d in acked]

    consumed = helpers.consume_all(
        broker.bootstrap, topic, range(3), timeout=60,
        **{"fetch.max.bytes": 1_000_000, "receive.message.max.bytes": 1_000_512,
           "max.partition.fetch.bytes": 1_000_000})
    helpers.check_against_acks(acked, consumed)


@pytest.mark.timeout(60)
def test_only_the_first_partition_may_exceed_max_bytes(broker):
    """At the protocol level: max_bytes 300 KB over two partitions of 200 KB
    batches: the first batch is served, the second does not fit in the
    100 KB left and is not."""
    topic = "kip74"
    helpers.create_topic(broker.bootstrap, topic, 2)
    producer = Producer(helpers.producer_config(broker.bootstrap, **{"linger.ms": 0}))
    for p in range(2):
        helpers.produce_all(producer, topic, [(None, b"x" * 200_000)], partition=p)
    name = topic.encode()
    body = struct.pack(">iiiib", -1, 0, 1, 300_000, 0)
    body += struct.pack(">i", 1) + struct.pack(">h", len(name)) + name
    body += struct.pack(">i", 2)
    for p in range(2):
        body += struct.pack(">iqi", p, 0, 1_000_000)
    with socket.create_connection(("127.0.0.1", broker.port), timeout=10) as s:
        s.sendall(helpers.request_frame(FETCH, 4, 9, body))
        frame = helpers.recv_frame(s)
    # The answer holds one 200 KB batch, not two (max_bytes would be exceeded).
    assert 200_000 < len(frame) < 300_000, len(frame)


@pytest.mark.timeout(180)
def test_slow_readers_hold_at_most_the_fetch_memory_budget(broker_factory):
    """Ten consumers that ask for 50 MB and never read their answers hold the
    fetch memory budget at most; once they go, everyone else is served."""
    budget = 8 * 1024 * 1024
    broker = broker_factory(extra_args=(
        "--fetch-memory-bytes", str(budget), "--wal-cache-bytes", "0"))
    topic = "slow-readers"
    helpers.create_topic(broker.bootstrap, topic, 1)
    producer = Producer(helpers.producer_config(broker.bootstrap, **{"linger.ms": 20}))
    value = b"v" * 100_000
    acked = helpers.produce_all(producer, topic, [(None, value)] * 300)
    assert all(d.error is None for d in acked)

    idle_rss = rss_bytes(broker.proc.pid)
    readers = []
    for i in range(10):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.connect(("127.0.0.1", broker.port))
        s.sendall(fetch_v4(100 + i, topic, 0, 0, 50 * 1024 * 1024))
        readers.append(s)
    try:
        deadline = time.monotonic() + 10
        held = 0.0
        while time.monotonic() < deadline:
            m = helpers.scrape(broker.http_port)
            held = helpers.sample(m, "fetch_memory_held_bytes")
            waits = helpers.sample(m, "fetch_memory_waits_total")
            if held > 0 and waits > 0:
                break
            time.sleep(0.2)
        assert 0 < held <= budget, held
        assert waits > 0, "the other slow readers should be waiting"
        assert helpers.sample(m, "fetch_memory_limit_bytes") == budget
        time.sleep(1)
        grown = rss_bytes(broker.proc.pid) - idle_rss
        # Without the budget, each reader holds its 30 MB answer (300 MB).
        assert grown < 64 * 1024 * 1024, f"RSS grew by {grown / 1e6:.0f} MB"
    finally:
        for s in readers:
            s.close()

    consumed = helpers.consume_all(broker.bootstrap, topic, [0], timeout=60)
    for d in acked:
        d.partition = 0
    helpers.check_against_acks(acked, consumed)
    deadline = time.monotonic() + 10
    while helpers.sample(helpers.scrape(broker.http_port), "fetch_memory_held_bytes") > 0:
        assert time.monotonic() < deadline, "answers to closed connections still held"
        time.sleep(0.2)


@pytest.mark.timeout(60)
def test_connections_beyond_the_cap_are_closed_on_arrival(broker_factory):
    broker = broker_factory(extra_args=("--max-connections", "5"))
    # The readiness probes' connections are gone before the count starts.
    deadline = time.monotonic() + 10
    while helpers.sample(helpers.scrape(broker.http_port), "kafka_connections_open") > 0:
        assert time.monotonic() < deadline
        time.sleep(0.1)
    held = [socket.create_connection(("127.0.0.1", broker.port), timeout=5) for _ in range(5)]
    try:
        for s in held:
            s.sendall(helpers.request_frame(helpers.API_VERSIONS, 0, 1))
            helpers.recv_frame(s)
        extra = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
        assert helpers.wait_closed(extra, 5), "a sixth connection should be closed"
        extra.close()
        m = helpers.scrape(broker.http_port)
        assert helpers.sample(m, "kafka_connections_rejected_total") >= 1
    finally:
        for s in held:
            s.close()
    # Below the cap again, clients connect as usual.
    deadline = time.monotonic() + 10
    while True:
        try:
            assert helpers.api_versions(broker.port).error_code == 0
            break
        except (ConnectionError, OSError, AssertionError):
            assert time.monotonic() < deadline
            time.sleep(0.2)


@pytest.mark.timeout(60)
def test_list_offsets_max_timestamp_names_the_record(broker):
    """ListOffsets -3 answers the offset of the record with the largest
    timestamp, not the last offset of its batch (KAFKA-16310)."""
    from confluent_kafka.admin import AdminClient, OffsetSpec

    topic = "max-ts"
    helpers.create_topic(broker.bootstrap, topic, 1)
    producer = Producer(helpers.producer_config(broker.bootstrap, **{"linger.ms": 100}))
    reports = []
    for ts in (1000, 3000, 2000):
        producer.produce(topic, value=b"t%d" % ts, timestamp=ts, partition=0,
                         on_delivery=lambda e, m: reports.append((e, m.offset())))
    assert producer.flush(15) == 0
    assert reports == [(None, 0), (None, 1), (None, 2)], reports
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})
    tp = TopicPartition(topic, 0)
    got = admin.list_offsets({tp: OffsetSpec.max_timestamp()}, request_timeout=10)[tp].result(15)
    assert (got.offset, got.timestamp) == (1, 3000)
