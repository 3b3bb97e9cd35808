"""Key compaction (cleanup.policy=compact) with real clients: a compacted
topic of many overwrites and tombstones read from the start by
confluent-kafka and kafka-python gives exactly the newest value of each key
at its offset, bytes unchanged, tombstones gone after delete.retention.ms;
transactions mixed with aborts read back committed-only; 100k offset
commits leave __consumer_offsets small and right after a restart."""

from __future__ import annotations

import time

from confluent_kafka import Consumer, Producer, TopicPartition

import helpers
from test_lifecycle import wait_until

COMPACTING = (
    "--wal-segment-bytes", "65536",
    "--wal-compaction-check-interval-ms", "200",
)
COMPACTED = {
    "cleanup.policy": "compact",
    "min.cleanable.dirty.ratio": "0.01",
    "delete.retention.ms": "3000",
}


def fill(bootstrap: str, count: int = 200) -> None:
    """Writes to another topic so the compacted records are in sealed
    segments (the segment being written is never compacted)."""
    p = Producer(helpers.producer_config(bootstrap))
    helpers.produce_all(p, "filler", [(None, b"f" * 1000)] * count)


def read_confluent(bootstrap: str, topic: str, isolation: str = "read_uncommitted") -> list[tuple]:
    """(offset, key, value) of every record, read from offset 0 to the end."""
    end = helpers.watermarks(bootstrap, topic, [0])[0][1]
    c = Consumer(helpers.consumer_config(bootstrap, **{"isolation.level": isolation}))
    out: list[tuple] = []
    try:
        c.assign([TopicPartition(topic, 0, 0)])
        deadline = time.monotonic() + 30
        idle = 0
        while time.monotonic() < deadline and idle < 10:
            msgs = c.consume(1000, timeout=0.3)
            idle = 0 if msgs else idle + 1
            for m in msgs:
                assert m.error() is None, m.error()
                out.append((m.offset(), m.key(), m.value()))
            if out and out[-1][0] >= end - 1:
                break
    finally:
        c.close()
    return out


def read_kafka_python(bootstrap: str, topic: str) -> list[tuple]:
    from kafka import KafkaConsumer
    from kafka import TopicPartition as KTP

    c = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                      auto_offset_reset="earliest", fetch_max_wait_ms=100, request_timeout_ms=15000)
    try:
        tp = KTP(topic, 0)
        c.assign([tp])
        c.seek_to_beginning(tp)
        end = c.end_offsets([tp])[tp]
        out: list[tuple] = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            for records in c.poll(timeout_ms=300).values():
                out.extend((r.offset, r.key, r.value) for r in records)
            if c.position(tp) >= end:
                break
        return out
    finally:
        c.close()


def key_compaction_runs(b) -> float:
    return helpers.sample(helpers.scrape(b.http_port), "key_compaction_runs_total")


def test_a_compacted_topic_keeps_the_newest_value_of_each_key(broker_factory):
    b = broker_factory(extra_args=COMPACTING)
    helpers.create_topic(b.bootstrap, "balances", 1, COMPACTED)
    p = Producer(helpers.producer_config(b.bootstrap, **{"linger.ms": 20}))
    messages = []
    for i in range(3000):
        key = b"account-%03d" % (i % 50)
        # Every 11th write of a key deletes it (a tombstone).
        value = None if (i // 50) % 11 == 10 else b"balance-%06d-" % i + b"x" * 100
        messages.append((key, value))
    acked = helpers.produce_all(p, "balances", messages)
    assert all(d.error is None for d in acked)
    fill(b.bootstrap)
    newest = {}
    for d in acked:
        newest[d.key] = d
    by_offset = {d.offset: d for d in acked}

    def compacted():
        got = read_confluent(b.bootstrap, "balances")
        return got if len(got) <= 100 else None

    got = wait_until("key compaction", compacted)
    assert key_compaction_runs(b) > 0
    offsets = [o for o, _, _ in got]
    assert offsets == sorted(offsets)
    for offset, key, value in got:
        # Only a key's newest record survives, with the bytes produced.
        assert newest[key].offset == offset, (key, offset)
        assert by_offset[offset].value == value
    live = {k for k, d in newest.items() if d.value is not None}
    assert {k for _, k, v in got if v is not None} == live
    # The tombstones go once delete.retention.ms has passed.
    wait_until("tombstone removal", lambda: all(v is not None for _, _, v in read_confluent(b.bootstrap, "balances")))
    final = read_confluent(b.bootstrap, "balances")
    assert {k for _, k, _ in final} == live
    assert read_kafka_python(b.bootstrap, "balances") == final
    # And all of it after a restart.
    b.restart()
    assert read_confluent(b.bootstrap, "balances") == final


def test_transactions_on_a_compacted_topic_read_committed_after_compaction(broker_factory):
    b = broker_factory(extra_args=COMPACTING)
    helpers.create_topic(b.bootstrap, "ledger", 1, COMPACTED)
    p = Producer(helpers.producer_config(b.bootstrap, **{
        "transactional.id": "compacted-app", "enable.idempotence": True}))
    p.init_transactions(15)
    committed = {}
    for round_ in range(20):
        p.begin_transaction()
        batch = {b"k%d" % ((round_ * 3 + i) % 7): b"r%d-%d" % (round_, i) for i in range(5)}
        for k, v in batch.items():
            p.produce("ledger", key=k, value=v)
        if round_ % 3 == 1:
            p.flush(15)
            p.abort_transaction(15)
        else:
            p.commit_transaction(15)
            committed.update(batch)
    before = read_confluent(b.bootstrap, "ledger", "read_committed")
    assert {k: v for _, k, v in before} == committed
    fill(b.bootstrap)
    wait_until("key compaction", lambda: key_compaction_runs(b) > 0 and len(
        read_confluent(b.bootstrap, "ledger", "read_uncommitted")) <= 7)
    after = read_confluent(b.bootstrap, "ledger", "read_committed")
    assert sorted(v for _, _, v in after) == sorted(committed.values())
    assert {k: v for _, k, v in after} == committed
    # Nothing aborted is left even for read_uncommitted.
    assert sorted(read_confluent(b.bootstrap, "ledger", "read_uncommitted")) == sorted(after)


def test_many_offset_commits_leave_a_small_offsets_topic(broker_factory):
    b = broker_factory(extra_args=COMPACTING)
    helpers.create_topic(b.bootstrap, "consumed", 10)
    c = Consumer(helpers.consumer_config(b.bootstrap, **{"group.id": "committer"}))
    try:
        for round_ in range(10_000):
            offsets = [TopicPartition("consumed", p, round_ + 1) for p in range(10)]
            c.commit(offsets=offsets, asynchronous=round_ % 100 != 99)
    finally:
        c.close()
    fill(b.bootstrap, 400)

    def small():
        size = helpers.sample(helpers.scrape(b.http_port), "partition_size_bytes",
                              topic="__consumer_offsets", partition=0)
        return size < 500_000 and size

    wait_until("compaction of __consumer_offsets", small, timeout=60)
    b.restart()
    c = Consumer(helpers.consumer_config(b.bootstrap, **{"group.id": "committer"}))
    try:
        got = c.committed([TopicPartition("consumed", p) for p in range(10)], timeout=15)
    finally:
        c.close()
    assert [tp.offset for tp in got] == [10_000] * 10
