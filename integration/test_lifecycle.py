"""The data lifecycle with real clients: retention.ms and retention.bytes
remove records on schedule and move the log start, consumers below it
reset as auto.offset.reset says, WAL compaction gives the disk back while
a topic kept forever shares the segments, and kill -9 during compaction
loses and duplicates nothing."""

from __future__ import annotations

import random
import time

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

import helpers

# Retention checked and WAL compaction run every 200 ms, on small
# segments, whenever anything in a segment is dead.
LIFECYCLE_ARGS = (
    "--wal-segment-bytes", "65536",
    "--log-retention-check-interval-ms", "200",
    "--wal-compaction-check-interval-ms", "200",
    "--wal-compaction-dead-bytes", "0",
    "--wal-compaction-live-percent", "90",
)


def wait_until(what: str, check, timeout: float = 30.0):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def messages(tag: str, count: int, size: int = 1000):
    return [(f"k{i}".encode(), f"{tag}-{i:06d}-".encode().ljust(size, b"x")) for i in range(count)]


def produce_interleaved(bootstrap: str, topics: list[str], count: int) -> dict[str, list]:
    """`count` messages to each topic, alternating, so their batches share
    WAL segments; returns the acknowledgements per topic."""
    p = Producer(helpers.producer_config(bootstrap, **{"linger.ms": 0}))
    acked: dict[str, list] = {t: [] for t in topics}
    batches = {t: messages(t, count) for t in topics}
    for start in range(0, count, 20):
        for t in topics:
            acked[t] += helpers.produce_all(p, t, batches[t][start:start + 20])
    for t in topics:
        assert all(d.error is None for d in acked[t]), t
        # produce_all numbers each call from 0; the index is the message's.
        for i, d in enumerate(acked[t]):
            d.index = i
    return acked


def test_retention_ms_removes_old_records_and_the_disk_comes_back(broker_factory):
    b = broker_factory(extra_args=LIFECYCLE_ARGS)
    helpers.create_topic(b.bootstrap, "short", 1, {"retention.ms": "3000"})
    helpers.create_topic(b.bootstrap, "forever", 1, {"retention.ms": "-1"})
    acked = produce_interleaved(b.bootstrap, ["short", "forever"], 400)
    produced_at = time.monotonic()
    wal_full = helpers.sample(helpers.scrape(b.http_port), "wal_bytes")
    assert wal_full > 700_000

    # Nothing goes before retention.ms has passed.
    assert helpers.watermarks(b.bootstrap, "short", [0])[0] == (0, 400)
    # Then "short" empties: its log start moves to its end.
    wait_until("retention of short", lambda: helpers.watermarks(b.bootstrap, "short", [0])[0] == (400, 400))
    assert time.monotonic() - produced_at > 2.5
    # "forever" shares every segment and keeps every record, in order.
    got = helpers.consume_all(b.bootstrap, "forever", [0])
    helpers.check_against_acks(acked["forever"], got)
    # The disk comes back although every segment held a "forever" batch.
    wait_until("WAL compaction", lambda: helpers.sample(helpers.scrape(b.http_port), "wal_bytes") < wal_full * 0.6)
    m = helpers.scrape(b.http_port)
    assert helpers.sample(m, "retention_deleted_batches_total") > 0
    assert helpers.sample(m, "wal_compaction_runs_total") > 0
    assert helpers.sample(m, "wal_compaction_bytes_reclaimed_total") > 200_000
    assert helpers.sample(m, "wal_compaction_bytes_copied_total") > 0
    assert helpers.sample(m, "wal_compaction_failures_total") == 0
    assert helpers.metric_families(b.http_port).get("wal_compaction_duration_seconds") == "histogram"
    assert 0 < helpers.sample(m, "wal_live_ratio") <= 1

    # A consumer below the log start resets as auto.offset.reset says.
    fresh = helpers.produce_all(Producer(helpers.producer_config(b.bootstrap)), "short", messages("new", 5))
    assert [d.offset for d in fresh] == [400, 401, 402, 403, 404]
    c = Consumer(helpers.consumer_config(b.bootstrap, **{"auto.offset.reset": "earliest"}))
    c.assign([TopicPartition("short", 0, 10)])
    got = []
    deadline = time.monotonic() + 20
    while len(got) < 5 and time.monotonic() < deadline:
        for msg in c.consume(10, timeout=0.5):
            assert msg.error() is None, msg.error()
            got.append((msg.offset(), msg.value()))
    c.close()
    assert got == [(d.offset, d.value) for d in fresh]
    c = Consumer(helpers.consumer_config(b.bootstrap, **{"auto.offset.reset": "error"}))
    c.assign([TopicPartition("short", 0, 10)])
    errors = []
    deadline = time.monotonic() + 20
    while not errors and time.monotonic() < deadline:
        for msg in c.consume(10, timeout=0.5):
            if msg.error():
                errors.append(msg.error())
    c.close()
    assert errors and errors[0].code() == KafkaError._AUTO_OFFSET_RESET, errors

    # After a restart: the same log starts, the same records.
    b.restart()
    assert helpers.watermarks(b.bootstrap, "short", [0])[0] == (400, 405)
    helpers.check_against_acks(acked["forever"], helpers.consume_all(b.bootstrap, "forever", [0]))


def post(http_port: int, path: str) -> str:
    import urllib.request
    req = urllib.request.Request(f"http://127.0.0.1:{http_port}{path}", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.status == 200
        return r.read().decode()


def test_compaction_paused_and_resumed_over_http(broker_factory):
    b = broker_factory(extra_args=LIFECYCLE_ARGS)
    assert "paused" in post(b.http_port, "/compaction/pause")
    assert helpers.sample(helpers.scrape(b.http_port), "compaction_paused") == 1
    helpers.create_topic(b.bootstrap, "short", 1, {"retention.ms": "1000"})
    helpers.create_topic(b.bootstrap, "forever", 1, {"retention.ms": "-1"})
    acked = produce_interleaved(b.bootstrap, ["short", "forever"], 400)
    wait_until("retention of short", lambda: helpers.watermarks(b.bootstrap, "short", [0])[0] == (400, 400))
    wal_full = helpers.sample(helpers.scrape(b.http_port), "wal_bytes")
    # Held back: a few compaction checks pass and nothing is compacted.
    time.sleep(1.5)
    m = helpers.scrape(b.http_port)
    assert helpers.sample(m, "wal_compaction_runs_total") == 0
    assert helpers.sample(m, "compaction_io_bytes_total") == 0
    assert helpers.sample(m, "wal_bytes") >= wal_full

    assert "resumed" in post(b.http_port, "/compaction/resume")
    wait_until("WAL compaction", lambda: helpers.sample(helpers.scrape(b.http_port), "wal_bytes") < wal_full * 0.6)
    m = helpers.scrape(b.http_port)
    assert helpers.sample(m, "compaction_paused") == 0
    assert helpers.sample(m, "compaction_io_bytes_total") >= helpers.sample(m, "wal_compaction_bytes_copied_total") > 0
    helpers.check_against_acks(acked["forever"], helpers.consume_all(b.bootstrap, "forever", [0]))


def test_retention_bytes_set_by_incremental_alter_configs_applies_at_once(broker_factory):
    b = broker_factory(extra_args=LIFECYCLE_ARGS)
    helpers.create_topic(b.bootstrap, "sized", 1)
    [acked] = produce_interleaved(b.bootstrap, ["sized"], 300).values()
    assert helpers.watermarks(b.bootstrap, "sized", [0])[0] == (0, 300)
    admin = AdminClient({"bootstrap.servers": b.bootstrap, "broker.address.family": "v4"})
    resource = ConfigResource(ConfigResource.Type.TOPIC, "sized", incremental_configs=[
        ConfigEntry("retention.bytes", "100000", incremental_operation=AlterConfigOpType.SET)])
    for f in admin.incremental_alter_configs([resource]).values():
        f.result(15)
    low, high = wait_until("retention.bytes", lambda: (lambda w: w if w[0] > 0 else None)(
        helpers.watermarks(b.bootstrap, "sized", [0])[0]))
    assert high == 300
    # At least retention.bytes stay, and no more than one batch beyond
    # (batches of up to 20 records of about 1 KB).
    size = helpers.sample(helpers.scrape(b.http_port), "partition_size_bytes", topic="sized", partition=0)
    assert 100_000 <= size < 100_000 + 25_000, size
    got = helpers.consume_all(b.bootstrap, "sized", [0], start_offset=low)
    kept = [d for d in acked if d.offset >= low]
    assert [o for o, *_ in got[0]] == list(range(low, 300))
    helpers.check_against_acks(kept, {0: got[0]}, dense=False)


def test_broker_default_retention_applies_to_topics_without_an_override(broker_factory):
    b = broker_factory(extra_args=LIFECYCLE_ARGS + ("--log-retention-ms", "2000"))
    helpers.create_topic(b.bootstrap, "defaulted", 1)
    helpers.create_topic(b.bootstrap, "kept", 1, {"retention.ms": "-1"})
    produce_interleaved(b.bootstrap, ["defaulted", "kept"], 50)
    wait_until("broker-wide retention", lambda: helpers.watermarks(b.bootstrap, "defaulted", [0])[0] == (50, 50))
    assert helpers.watermarks(b.bootstrap, "kept", [0])[0] == (0, 50)
    admin = AdminClient({"bootstrap.servers": b.bootstrap, "broker.address.family": "v4"})
    resource = ConfigResource(ConfigResource.Type.TOPIC, "defaulted")
    [configs] = [f.result(15) for f in admin.describe_configs([resource]).values()]
    assert configs["retention.ms"].value == "2000"
    assert not configs["retention.ms"].is_default


def test_kill9_during_wal_compaction_loses_and_duplicates_nothing(broker_factory):
    # A slow I/O budget keeps a compaction in progress most of the time.
    args = LIFECYCLE_ARGS + ("--wal-compaction-bytes-per-sec", "400000")
    b = broker_factory(extra_args=args)
    helpers.create_topic(b.bootstrap, "short", 2, {"retention.ms": "1000"})
    helpers.create_topic(b.bootstrap, "forever", 2, {"retention.ms": "-1"})
    p = Producer(helpers.producer_config(b.bootstrap, **{"linger.ms": 0}))
    acked = []
    rng = random.Random(7)
    for round_ in range(5):
        for start in range(0, 300, 30):
            acked += helpers.produce_all(p, "forever", messages(f"r{round_}", 300)[start:start + 30])
            helpers.produce_all(p, "short", messages("s", 60))
        time.sleep(1.5 + rng.random())
        runs = helpers.sample(helpers.scrape(b.http_port), "wal_compaction_runs_total")
        b.kill9()
        b.start()
        assert runs > 0 or round_ == 0
    for i, d in enumerate(acked):
        assert d.error is None
        d.index = i
    got = helpers.consume_all(b.bootstrap, "forever", [0, 1])
    helpers.check_against_acks(acked, got)
    assert sum(len(v) for v in got.values()) == len(acked)
    assert "WAL entry failed its checksum" not in b.log_text()
