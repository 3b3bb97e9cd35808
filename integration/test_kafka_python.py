"""kafka-python: producer, consumer (assign), and the admin client."""

from __future__ import annotations

import time

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import ConfigResource, ConfigResourceType

COMMON = {"request_timeout_ms": 15000}


def admin_client(broker) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="strata-it-admin",
                            **COMMON)


def producer(broker, **kw) -> KafkaProducer:
    # Idempotence needs InitProducerId, which Strata does not serve yet.
    return KafkaProducer(bootstrap_servers=broker.bootstrap, acks="all",
                         enable_idempotence=False, max_block_ms=15000, **COMMON, **kw)


def consume_assigned(broker, topic: str, partitions, expected: int, timeout: float = 30.0):
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=None,
                             enable_auto_commit=False, auto_offset_reset="earliest",
                             fetch_max_wait_ms=100, **COMMON)
    try:
        tps = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        out = []
        deadline = time.monotonic() + timeout
        while len(out) < expected:
            assert time.monotonic() < deadline, f"consumed {len(out)} of {expected} in {timeout}s"
            for _tp, records in consumer.poll(timeout_ms=500).items():
                out.extend(records)
        return out
    finally:
        consumer.close()


def topic_configs(admin, topic: str) -> dict:
    res = admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)],
                                 config_filter="all")
    return res["topic"][topic]


@pytest.mark.timeout(90)
def test_produce_and_consume(broker):
    topic = "kp-roundtrip"
    admin = admin_client(broker)
    try:
        admin.create_topics({topic: {"num_partitions": 3, "replication_factor": 1}})
    finally:
        admin.close()

    p = producer(broker)
    sent = []
    futures = []
    for i in range(300):
        key = b"k%d" % (i % 7)
        value = b"kafka-python message %d" % i
        futures.append((key, value, p.send(topic, key=key, value=value)))
    p.flush(30)
    for key, value, fut in futures:
        md = fut.get(timeout=30)
        assert md.topic == topic and md.offset >= 0
        sent.append((md.partition, md.offset, key, value))
    p.close()

    # Offsets per partition: dense from 0 in send order; a key sticks to a partition.
    by_part = {}
    for part, off, key, value in sent:
        by_part.setdefault(part, []).append((off, key, value))
    for part, recs in by_part.items():
        assert [o for o, _, _ in recs] == list(range(len(recs))), f"partition {part}"
    key_parts = {}
    for part, _, key, _ in sent:
        key_parts.setdefault(key, set()).add(part)
    assert all(len(ps) == 1 for ps in key_parts.values()), key_parts

    got = consume_assigned(broker, topic, range(3), expected=len(sent))
    assert len(got) == len(sent), f"consumed {len(got)}, sent {len(sent)}"
    got_by_part = {}
    for r in got:
        got_by_part.setdefault(r.partition, []).append((r.offset, r.key, r.value))
    assert got_by_part == by_part


@pytest.mark.timeout(90)
def test_admin_topics_and_configs(broker):
    admin = admin_client(broker)
    try:
        admin.create_topics({
            "kp-admin": {"num_partitions": 2, "replication_factor": 1},
            "kp-doomed": {"num_partitions": 1, "replication_factor": 1},
        })
        topics = admin.list_topics()
        assert "kp-admin" in topics and "kp-doomed" in topics, topics

        # Every topic config is described, with Kafka's defaults.
        configs = topic_configs(admin, "kp-admin")
        assert configs["retention.ms"]["value"] == "604800000", configs["retention.ms"]
        assert configs["cleanup.policy"]["value"] == "delete", configs["cleanup.policy"]
        assert configs["retention.ms"]["config_source"] == "DEFAULT_CONFIG"
        assert "max.message.bytes" in configs

        # Change one config and read it back (IncrementalAlterConfigs when
        # the broker advertises it, which Strata does).
        result = admin.alter_configs([ConfigResource(
            ConfigResourceType.TOPIC, "kp-admin", configs={"retention.ms": "3600000"})])
        assert result["topic"]["kp-admin"] == "OK", result
        configs = topic_configs(admin, "kp-admin")
        assert configs["retention.ms"]["value"] == "3600000"
        assert configs["retention.ms"]["config_source"] == "DYNAMIC_TOPIC_CONFIG"
        assert configs["cleanup.policy"]["value"] == "delete"

        # The classic (whole-set) AlterConfigs as well.
        result = admin.alter_configs([ConfigResource(
            ConfigResourceType.TOPIC, "kp-admin",
            configs={"retention.ms": "7200000", "cleanup.policy": "compact"})],
            incremental=False)
        assert result["topic"]["kp-admin"] == "OK", result
        configs = topic_configs(admin, "kp-admin")
        assert configs["retention.ms"]["value"] == "7200000"
        assert configs["cleanup.policy"]["value"] == "compact"

        # CreatePartitions grows the topic.
        admin.create_partitions({"kp-admin": 5})
        desc = {t["topic"] if isinstance(t, dict) and "topic" in t else t["name"]: t
                for t in admin.describe_topics(["kp-admin"])}
        partitions = desc["kp-admin"]["partitions"]
        assert len(partitions) == 5, partitions

        # DeleteTopics removes it from the listing.
        admin.delete_topics(["kp-doomed"])
        deadline = time.monotonic() + 10
        while "kp-doomed" in admin.list_topics():
            assert time.monotonic() < deadline, "deleted topic still listed"
            time.sleep(0.2)
        assert "kp-admin" in admin.list_topics()
    finally:
        admin.close()
