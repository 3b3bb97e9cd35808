"""GET /metrics after a known workload: the counters moved by the right amounts,
and every metric served is documented in docs/metrics.md (and vice versa)."""

from __future__ import annotations

import os
import re
import socket
import struct
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import helpers
from test_damage import produce_one_per_batch

DOCS = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
METADATA = 3
COUNT = 500
VALUE = 200


def metadata_v1(port: int, topic: str) -> None:
    """One Metadata v1 request for `topic` on its own connection."""
    name = topic.encode()
    body = struct.pack(">i", 1) + struct.pack(">h", len(name)) + name
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(helpers.request_frame(METADATA, 1, 11, body))
        helpers.recv_frame(s)


def api_versions_v2(port: int, times: int) -> None:
    """`times` ApiVersions v2 requests, pipelined on one connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        for i in range(times):
            s.sendall(helpers.request_frame(helpers.API_VERSIONS, 2, 100 + i))
        for _ in range(times):
            helpers.recv_frame(s)


def unknown_api(port: int) -> None:
    """A frame for an API key nobody serves: the broker closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(helpers.request_frame(999, 0, 1))
        assert helpers.wait_closed(s, 5)


def oversized_frame(port: int) -> None:
    """A length prefix over the request size limit: the broker closes the connection."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(struct.pack(">i", 0x7FFFFFFF))
        assert helpers.wait_closed(s, 5)


def documented_metrics(all_: bool = False) -> set[str]:
    """Metric names in the first column of docs/metrics.md's tables.

    Histograms documented as appearing after their first event (a WAL
    compaction run) are left out unless `all_`: a scrape before that event
    has no samples of them to show."""
    names = set()
    for line in DOCS.read_text().splitlines():
        m = re.match(r"\|\s*`([a-z_]+)`\s*\|", line)
        if m and (all_ or "Appears after the first" not in line):
            names.add(m.group(1))
    return names


@pytest.mark.timeout(120)
def test_counters_follow_a_known_workload(broker_factory):
    broker = broker_factory(auto_create_topics=False)
    helpers.create_topic(broker.bootstrap, "met", 2)
    before = helpers.scrape(broker.http_port)

    api_versions_v2(broker.port, 5)
    metadata_v1(broker.port, "no-such-topic")
    unknown_api(broker.port)
    oversized_frame(broker.port)

    producer = Producer(helpers.producer_config(broker.bootstrap))
    messages = [(b"k%d" % i, bytes([65 + i % 26]) * VALUE) for i in range(COUNT)]
    acked = helpers.produce_all(producer, "met", messages)
    assert all(d.error is None for d in acked)
    consumed = helpers.consume_all(broker.bootstrap, "met", [0, 1])
    assert sum(len(v) for v in consumed.values()) == COUNT

    group = Consumer(helpers.consumer_config(broker.bootstrap, **{"group.id": "met-group"}))
    group.commit(offsets=[TopicPartition("met", 0, 10), TopicPartition("met", 1, 0)],
                 asynchronous=False)
    group.close()

    after = helpers.scrape(broker.http_port)

    def moved(name, **labels):
        return helpers.sample(after, name, **labels) - helpers.sample(before, name, **labels)

    # Requests by API and version, and errors by Kafka error name.
    assert moved("kafka_requests_total", api="ApiVersions", version=2) == 5
    assert moved("kafka_requests_total", api="Metadata", version=1) == 1
    assert moved("kafka_request_errors_total", api="Metadata",
                 code="UNKNOWN_TOPIC_OR_PARTITION") == 1
    assert moved("kafka_requests_refused_total", reason="unknown_api") == 1
    assert moved("kafka_requests_refused_total", reason="frame_length") == 1
    produce_requests = sum(v for (n, l), v in after.items()
                           if n == "kafka_requests_total" and ("api", "Produce") in l)
    assert produce_requests >= 1
    assert helpers.sample(after, "kafka_request_duration_seconds_count", api="Produce") \
        == produce_requests

    # Bytes and messages in: every record once, every batch byte once.
    assert moved("kafka_topic_messages_in_total", topic="met") == COUNT
    bytes_in = moved("kafka_topic_bytes_in_total", topic="met")
    held = sum(helpers.sample(after, "partition_size_bytes", topic="met", partition=p)
               for p in (0, 1))
    assert bytes_in == held, (bytes_in, held)
    assert bytes_in > COUNT * VALUE
    assert moved("kafka_topic_bytes_out_total", topic="met") >= bytes_in

    # Partition offsets and consumer group lag.
    ends = helpers.watermarks(broker.bootstrap, "met", [0, 1])
    for p in (0, 1):
        assert helpers.sample(after, "partition_high_watermark", topic="met", partition=p) \
            == ends[p][1]
        assert helpers.sample(after, "partition_log_start_offset", topic="met", partition=p) == 0
    assert helpers.sample(after, "consumer_group_committed_offset",
                          group="met-group", topic="met", partition=0) == 10
    assert helpers.sample(after, "consumer_group_lag",
                          group="met-group", topic="met", partition=0) == ends[0][1] - 10
    assert helpers.sample(after, "consumer_group_lag",
                          group="met-group", topic="met", partition=1) == ends[1][1]

    # The WAL: every acknowledged batch went through a group commit.
    entries = moved("wal_appended_entries_total")
    assert entries >= produce_requests
    assert moved("wal_fsync_duration_seconds_count") >= 1
    assert moved("wal_group_commit_entries_sum") == entries
    assert moved("wal_append_duration_seconds_count") >= produce_requests
    assert helpers.sample(after, "wal_segments") >= 1
    assert helpers.sample(after, "wal_bytes") > bytes_in

    # Connections and the process.
    assert moved("kafka_connections_accepted_total") >= 4
    assert helpers.sample(after, "process_resident_memory_bytes") > 1_000_000
    assert helpers.sample(after, "process_open_fds") > 0

    # Every family served is documented, and every documented one is served.
    served = set(helpers.metric_families(broker.http_port))
    documented = documented_metrics()
    assert served - documented_metrics(all_=True) == set(), f"undocumented metrics: {served - documented}"
    assert documented - served == set(), f"documented but not served: {documented - served}"


@pytest.mark.timeout(120)
def test_recovery_counters_after_a_restart_with_damage(broker):
    produce_one_per_batch(broker)
    broker.kill9()
    files = broker.wal_files()
    assert len(files) == 1, files
    wal = files[0]
    entries = helpers.wal_entries(wal)
    assert len(entries) >= 10
    # Flip a byte inside the third entry's payload, and tear the last entry.
    target = entries[2]
    with open(wal, "r+b") as f:
        f.seek(target.payload_start + target.length // 2)
        b = f.read(1)
        f.seek(target.payload_start + target.length // 2)
        f.write(bytes([b[0] ^ 0x5A]))
    os.truncate(wal, entries[-1].end - 10)

    broker.start()
    after = helpers.scrape(broker.http_port)
    assert helpers.sample(after, "wal_recovery_failures_total") == 1
    assert helpers.sample(after, "wal_recovery_successes_total") == len(entries) - 2
    assert helpers.sample(after, "wal_recovery_torn_tail_truncations_total") == 1
    assert helpers.sample(after, "wal_recovery_torn_tail_bytes_total") > 0
    assert helpers.sample(after, "wal_recovery_duration_seconds") > 0
    assert helpers.sample(after, "wal_compaction_runs_total") == 0

    summary = [line for line in broker.log_text(all_runs=False).splitlines()
               if "recovery summary" in line]
    assert len(summary) == 1, summary
    assert "damaged_entries=1" in summary[0], summary[0]
    rate = 1 / (len(entries) - 1)
    assert f"corruption_rate={rate:.6f}" in summary[0], (rate, summary[0])
    assert wal.name in summary[0], summary[0]


def test_dashboard_uses_only_documented_metrics():
    import json

    dashboard = json.loads((DOCS.parent / "grafana" / "strata-dashboard.json").read_text())
    documented = documented_metrics(all_=True)
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    assert len(exprs) >= 20
    used = set()
    for expr in exprs:
        for name in re.findall(r"\b((?:kafka|wal|partition|consumer|process|sealed|metrics)_[a-z_]+)",
                               expr):
            used.add(re.sub(r"_(bucket|sum|count)$", "", name))
    assert used - documented == set(), f"dashboard uses undocumented metrics: {used - documented}"
    # Throughput, latency, lag and WAL health are all on it.
    for needed in ("kafka_topic_bytes_in_total", "kafka_request_duration_seconds",
                   "consumer_group_lag", "wal_fsync_duration_seconds",
                   "wal_recovery_failures_total"):
        assert needed in used, needed
