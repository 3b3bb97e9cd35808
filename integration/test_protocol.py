"""Kafka error codes and offset APIs, as clients see them."""

from __future__ import annotations

import os
import time

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic, OffsetSpec

import helpers


def admin(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})


def produce_one(producer, topic, value, key=None, timeout=20.0, **kw):
    """Produces one message; returns (error or None, partition, offset)."""
    reports = []
    producer.produce(topic, key=key, value=value,
                     on_delivery=lambda e, m: reports.append((e, m.partition(), m.offset())),
                     **kw)
    assert producer.flush(timeout) == 0, "message neither delivered nor failed in time"
    assert len(reports) == 1
    return reports[0]


@pytest.mark.timeout(60)
def test_unknown_topic_without_auto_create(broker_factory):
    broker = broker_factory(auto_create_topics=False)
    md = admin(broker).list_topics(topic="no-such-topic", timeout=10)
    t = md.topics.get("no-such-topic")
    assert t is not None and t.error is not None, md.topics
    assert t.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART, t.error

    producer = Producer(helpers.producer_config(broker.bootstrap, **{
        "message.timeout.ms": 5000, "topic.metadata.propagation.max.ms": 1000}))
    err, _, _ = produce_one(producer, "no-such-topic", b"x")
    assert err is not None, "produce to an unknown topic succeeded"
    assert err.code() in (KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError._UNKNOWN_TOPIC), err

    # Still not created.
    assert "no-such-topic" not in admin(broker).list_topics(timeout=10).topics


@pytest.mark.timeout(60)
def test_invalid_topic_name(broker):
    a = admin(broker)  # keep the client alive until the future completes
    fs = a.create_topics([NewTopic("bad name!", num_partitions=1, replication_factor=1)],
                         request_timeout=10)
    with pytest.raises(KafkaException) as exc:
        fs["bad name!"].result(15)
    assert exc.value.args[0].code() == KafkaError.TOPIC_EXCEPTION, exc.value


@pytest.mark.timeout(60)
def test_message_larger_than_topic_max_message_bytes(broker):
    helpers.create_topic(broker.bootstrap, "small-messages", 1,
                         config={"max.message.bytes": "10000"})
    producer = Producer(helpers.producer_config(broker.bootstrap, **{
        "message.max.bytes": 2_000_000, "compression.type": "none", "retries": 0}))
    err, _, _ = produce_one(producer, "small-messages", os.urandom(20000))
    assert err is not None and err.code() == KafkaError.MSG_SIZE_TOO_LARGE, err
    # A message under the limit is fine and gets offset 0.
    err, p, off = produce_one(producer, "small-messages", os.urandom(5000))
    assert err is None and (p, off) == (0, 0), (err, p, off)


@pytest.mark.timeout(60)
def test_list_offsets_and_offsets_for_times(broker):
    topic = "timed"
    helpers.create_topic(broker.bootstrap, topic, 1)
    producer = Producer(helpers.producer_config(broker.bootstrap, **{"linger.ms": 50}))
    reports = []
    # Three records in one batch, then two batches of one.
    for i, ts in enumerate((1000, 2000, 3000)):
        producer.produce(topic, value=b"t%d" % ts, timestamp=ts, partition=0,
                         on_delivery=lambda e, m: reports.append((e, m.offset())))
    assert producer.flush(15) == 0
    for ts in (4000, 5000):
        producer.produce(topic, value=b"t%d" % ts, timestamp=ts, partition=0,
                         on_delivery=lambda e, m: reports.append((e, m.offset())))
        assert producer.flush(15) == 0
    assert reports == [(None, i) for i in range(5)], reports

    consumer = Consumer(helpers.consumer_config(broker.bootstrap))
    try:
        assert consumer.get_watermark_offsets(TopicPartition(topic, 0), timeout=10) == (0, 5)

        def at(ts):
            (tp,) = consumer.offsets_for_times([TopicPartition(topic, 0, ts)], timeout=10)
            assert tp.error is None, tp.error
            return tp.offset

        assert at(0) == 0
        assert at(1000) == 0
        assert at(1001) == 1
        assert at(2500) == 2
        assert at(3000) == 2
        assert at(4500) == 4
        assert at(99_999) == -1  # past the last timestamp: no offset
    finally:
        consumer.close()

    # The same through the admin client's ListOffsets.
    a = admin(broker)
    tp = TopicPartition(topic, 0)
    specs = {"earliest": OffsetSpec.earliest(), "latest": OffsetSpec.latest(),
             "ts2500": OffsetSpec.for_timestamp(2500), "max": OffsetSpec.max_timestamp()}
    got = {}
    for name, spec in specs.items():
        fs = a.list_offsets({tp: spec}, request_timeout=10)
        got[name] = fs[tp].result(15)
    assert got["earliest"].offset == 0
    assert got["latest"].offset == 5
    assert got["ts2500"].offset == 2 and got["ts2500"].timestamp == 3000
    assert got["max"].offset == 4 and got["max"].timestamp == 5000

    # Consumed timestamps are the producer's.
    recs = helpers.consume_all(broker.bootstrap, topic, [0])[0]
    assert [(o, ts) for o, _, _, ts in recs] == [(i, (i + 1) * 1000) for i in range(5)]


@pytest.mark.timeout(60)
def test_keyless_message_to_compacted_topic_is_refused(broker):
    helpers.create_topic(broker.bootstrap, "compacted", 1, config={"cleanup.policy": "compact"})
    producer = Producer(helpers.producer_config(broker.bootstrap, **{"retries": 0}))
    err, _, _ = produce_one(producer, "compacted", b"no key here")
    assert err is not None and err.code() == KafkaError.INVALID_RECORD, err
    err, p, off = produce_one(producer, "compacted", b"keyed", key=b"k")
    assert err is None and (p, off) == (0, 0), (err, p, off)


@pytest.mark.timeout(60)
def test_delete_records_advances_low_watermark(broker):
    topic = "trimmed"
    helpers.create_topic(broker.bootstrap, topic, 1)
    producer = Producer(helpers.producer_config(broker.bootstrap))
    acked = helpers.produce_all(producer, topic, [(None, b"r%d" % i) for i in range(10)])
    assert [d.offset for d in acked] == list(range(10))

    a = admin(broker)
    fs = a.delete_records([TopicPartition(topic, 0, 4)], request_timeout=10)
    res = list(fs.values())[0].result(15)
    assert res.low_watermark == 4, res

    assert helpers.watermarks(broker.bootstrap, topic, [0])[0] == (4, 10)
    fs = a.list_offsets({TopicPartition(topic, 0): OffsetSpec.earliest()}, request_timeout=10)
    assert list(fs.values())[0].result(15).offset == 4

    recs = helpers.consume_all(broker.bootstrap, topic, [0])[0]
    assert [(o, v) for o, _, v, _ in recs] == [(i, b"r%d" % i) for i in range(4, 10)]

    # Survives a restart.
    assert broker.stop() == 0
    broker.start()
    assert helpers.watermarks(broker.bootstrap, topic, [0])[0] == (4, 10)
