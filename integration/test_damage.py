"""Damaged WAL files: a torn tail and a corrupted entry in the middle."""

from __future__ import annotations

import os
import random

import pytest
from confluent_kafka import Producer

import helpers

TARGETS = [("dmg-a", 0), ("dmg-a", 1), ("dmg-b", 0)]
COUNT = 30


def produce_one_per_batch(broker) -> list[tuple[str, helpers.Delivered]]:
    """COUNT acks=all messages, each flushed alone: one batch, one WAL entry each."""
    helpers.create_topic(broker.bootstrap, "dmg-a", 2)
    helpers.create_topic(broker.bootstrap, "dmg-b", 1)
    producer = Producer(helpers.producer_config(broker.bootstrap, **{"linger.ms": 0}))
    rng = random.Random(7)
    out = []
    for i in range(COUNT):
        topic, part = TARGETS[i % len(TARGETS)]
        d = helpers.Delivered(i, b"key-%d" % i, b"damage-test-%04d|" % i + rng.randbytes(150))

        def cb(err, msg, d=d):
            if err is not None:
                d.error = err
            else:
                d.partition, d.offset = msg.partition(), msg.offset()

        producer.produce(topic, key=d.key, value=d.value, partition=part, on_delivery=cb)
        assert producer.flush(15) == 0, "flush timed out"
        assert d.error is None, f"message {i} failed: {d.error}"
        out.append((topic, d))
    return out


def wal_map(broker, sent):
    """Checks each message sits in exactly one WAL entry; returns the files' entries."""
    files = broker.wal_files()
    assert files, f"no WAL files under {broker.wal_dir}: {os.listdir(broker.data_dir)}"
    entries = {f: helpers.wal_entries(f) for f in files}
    for _topic, d in sent:
        where = [(f.name, e.position) for f, es in entries.items() for e in es if d.value in e.payload]
        assert len(where) == 1, f"message {d.index} found in WAL entries {where}"
    return entries


def served(broker):
    out = {}
    for topic, parts in (("dmg-a", 2), ("dmg-b", 1)):
        out[topic] = helpers.consume_all(broker.bootstrap, topic, range(parts))
    return out


def check_served(broker, sent, lost_values, dense: bool):
    consumed = served(broker)
    for topic in ("dmg-a", "dmg-b"):
        expected = [d for t, d in sent if t == topic and d.value not in lost_values]
        helpers.check_against_acks(expected, consumed[topic], dense=dense)
        values = [v for recs in consumed[topic].values() for _, _, v, _ in recs]
        for v in lost_values:
            assert v not in values, f"{v[:20]!r} was in the damaged entry but is served"
        assert len(values) == len(expected), (
            f"{topic}: served {len(values)} messages, expected {len(expected)}")
    return consumed


def check_new_writes(broker, consumed):
    """One more message to every partition lands after what is served, and reads back."""
    producer = Producer(helpers.producer_config(broker.bootstrap))
    for topic, part in TARGETS:
        recs = consumed[topic][part]
        next_offset = recs[-1][0] + 1 if recs else 0
        d = helpers.Delivered(0, b"new", b"written-after-damage-%s-%d" % (topic.encode(), part))
        reports = []
        producer.produce(topic, key=d.key, value=d.value, partition=part,
                         on_delivery=lambda e, m: reports.append((e, m.offset())))
        assert producer.flush(15) == 0
        assert reports == [(None, next_offset)], (
            f"{topic}/{part}: new write got {reports}, expected offset {next_offset}")
        got = helpers.consume_all(broker.bootstrap, topic, [part], start_offset=next_offset)[part]
        assert [(o, v) for o, _, v, _ in got] == [(next_offset, d.value)], got


@pytest.mark.timeout(120)
def test_torn_tail_of_newest_wal_file(broker):
    sent = produce_one_per_batch(broker)
    broker.kill9()
    entries = wal_map(broker, sent)

    newest = max(entries)
    assert entries[newest], f"newest WAL file {newest.name} has no entries"
    last = entries[newest][-1]
    assert last.length > 10
    lost = helpers.values_in(last.payload, [d.value for _, d in sent])
    assert len(lost) == 1, lost
    # Direct-I/O appends pad the file with zeros to a block boundary.
    raw = newest.read_bytes()
    assert not raw[last.end:].strip(b"\0"), "newest WAL file has data after its last entry"
    os.truncate(newest, last.end - 10)

    broker.start()
    consumed = check_served(broker, sent, lost, dense=True)
    check_new_writes(broker, consumed)
    assert broker.alive()


@pytest.mark.timeout(120)
def test_corrupted_entry_in_oldest_wal_file(broker):
    sent = produce_one_per_batch(broker)
    broker.kill9()
    entries = wal_map(broker, sent)

    oldest = min(entries)
    es = entries[oldest]
    assert len(es) >= 2, f"oldest WAL file {oldest.name} has {len(es)} entries"
    # The first entry whose payload reaches 100 bytes into the file, and
    # which has an intact entry after it (so it is damage, not a torn tail).
    target = next(e for e in es[:-1] if e.end > 100)
    pos = max(100, target.payload_start + target.length // 2)
    assert target.payload_start <= pos < target.end
    lost = helpers.values_in(target.payload, [d.value for _, d in sent])
    assert len(lost) == 1, f"damaged entry holds {len(lost)} of our messages"
    with open(oldest, "r+b") as f:
        f.seek(pos)
        b = f.read(1)
        f.seek(pos)
        f.write(bytes([b[0] ^ 0x5A]))

    broker.start()
    log = broker.log_text(all_runs=False)
    warn = [line for line in log.splitlines()
            if "WARN" in line and "checksum" in line.lower() and oldest.name in line]
    assert warn, f"no WARN line naming checksum and {oldest.name}; log:\n{log[-3000:]}"

    consumed = check_served(broker, sent, lost, dense=False)
    check_new_writes(broker, consumed)

    # A clean restart after recovery keeps the same picture.
    assert broker.stop() == 0
    broker.start()
    check_served_after = served(broker)
    for topic in ("dmg-a", "dmg-b"):
        for p, recs in check_served_after[topic].items():
            assert recs[:len(consumed[topic][p])] == consumed[topic][p], (topic, p)
