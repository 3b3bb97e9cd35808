"""Idempotent producers: retries after broker crashes write nothing twice and
leave no gaps."""

from __future__ import annotations

import time

import pytest
from confluent_kafka import Producer

import helpers

COUNT = 20000
PARTITIONS = 2


@pytest.mark.timeout(180)
def test_idempotent_producer_survives_kill9_without_duplicates_or_gaps(broker):
    topic = "idempotent"
    helpers.create_topic(broker.bootstrap, topic, PARTITIONS)
    producer = Producer(helpers.producer_config(
        broker.bootstrap, **{
            "enable.idempotence": True,
            "linger.ms": 5,
            "message.timeout.ms": 120000,
            "retry.backoff.ms": 50,
            "reconnect.backoff.ms": 50,
            "reconnect.backoff.max.ms": 500,
        }))
    delivered, failed = [], []

    def report(err, msg):
        (failed if err else delivered).append(msg)

    # The broker is killed twice while the stream is being produced: when
    # 6,000 and when 13,000 messages have been handed to the producer.
    kill_at = (6000, 13000)
    delivered_at_kill = []
    for i in range(COUNT):
        if i in kill_at:
            producer.poll(0)
            delivered_at_kill.append(len(delivered))
            broker.kill9()
            broker.start()
        while True:
            try:
                producer.produce(topic, key=b"k%d" % (i % PARTITIONS), value=b"%08d" % i, on_delivery=report)
                break
            except BufferError:
                producer.poll(0.05)
        if i % 500 == 0:
            producer.poll(0)
            time.sleep(0.05)  # spread the stream over the crashes
    assert producer.flush(120) == 0
    assert not failed, f"{len(failed)} deliveries failed, first: {failed[0].error()}"
    assert len(delivered) == COUNT
    assert all(n < k for n, k in zip(delivered_at_kill, kill_at)), (
        f"messages were still in flight at each crash: delivered {delivered_at_kill} of {kill_at}")

    consumed = helpers.consume_all(broker.bootstrap, topic, range(PARTITIONS), timeout=60)
    values = [int(v) for p in consumed.values() for (_, _, v, _) in p]
    assert len(values) == len(set(values)), f"{len(values) - len(set(values))} duplicates"
    assert sorted(values) == list(range(COUNT)), "gaps: some acknowledged messages are missing"
    for p, records in consumed.items():
        offsets = [o for (o, _, _, _) in records]
        assert offsets == list(range(len(offsets))), f"partition {p}: offsets not dense"
        ordered = [int(v) for (_, _, v, _) in records]
        assert ordered == sorted(ordered), f"partition {p}: produce order not kept"
    # The delivery reports name the offsets the messages are stored at.
    by_value = {int(v): (p, o) for p, recs in consumed.items() for (o, _, v, _) in recs}
    for m in delivered:
        assert by_value[int(m.value())] == (m.partition(), m.offset())
