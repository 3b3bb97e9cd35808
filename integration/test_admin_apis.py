"""Admin and transaction APIs with real clients: kafka-python's admin client
(DescribeLogDirs, DescribeTopicPartitions, ListConfigResources,
DescribeProducers, DescribeTransactions, ListTransactions) and
confluent-kafka's (CreatePartitions with assignments, incremental configs,
error messages null on success)."""

from __future__ import annotations

import pytest
from confluent_kafka import KafkaException, Producer
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry,
                                   ConfigResource, NewPartitions, ResourceType)
from kafka import KafkaAdminClient
from kafka.structs import TopicPartition

from helpers import create_topic, producer_config


def kp_admin(broker) -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=broker.bootstrap, client_id="strata-it-admin",
                            request_timeout_ms=10000)


def ck_admin(broker) -> AdminClient:
    return AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})


def test_describe_topic_partitions_and_log_dirs(broker):
    create_topic(broker.bootstrap, "adm-t", 3)
    p = Producer(producer_config(broker.bootstrap))
    p.produce("adm-t", b"value", partition=1)
    assert p.flush(10) == 0
    admin = kp_admin(broker)
    try:
        described = admin.describe_topic_partitions(["adm-t"])
        [topic] = described["topics"]
        assert topic["error_code"] == 0 and topic["name"] == "adm-t"
        assert [(p["partition_index"], p["leader_id"], p["leader_epoch"], p["isr_nodes"])
                for p in topic["partitions"]] == [(i, 0, 0, [0]) for i in range(3)]
        [dirs] = admin.describe_log_dirs()
        [log_dir] = dirs["log_dirs"]
        assert log_dir["error_code"] == 0 and log_dir["log_dir"].endswith("/data")
        [t] = [t for t in log_dir["topics"] if t["name"] == "adm-t"]
        sizes = {p["partition_index"]: p["partition_size"] for p in t["partitions"]}
        assert sizes[1] > 0 and sizes[0] == 0 and sizes[2] == 0
        resources = admin.list_config_resources()
        assert "adm-t" in resources["topic"] and resources["broker"] == ["0"]
    finally:
        admin.close()


def test_transactions_are_listed_and_described(broker):
    create_topic(broker.bootstrap, "adm-txn", 1)
    p = Producer(producer_config(broker.bootstrap, **{"transactional.id": "adm-tx-1", "enable.idempotence": True}))
    p.init_transactions(15)
    p.begin_transaction()
    p.produce("adm-txn", b"in-flight", partition=0)
    assert p.flush(10) == 0
    admin = kp_admin(broker)
    try:
        listed = admin.list_transactions()
        [listing] = [t for t in listed[0] if t.transactional_id == "adm-tx-1"]
        assert listing.state.value == "Ongoing"
        described = admin.describe_transactions(["adm-tx-1"])["adm-tx-1"]
        assert described.state.value == "Ongoing"
        assert described.topic_partitions == {TopicPartition("adm-txn", 0)}
        assert described.transaction_start_time_ms > 0
        producers = admin.describe_producers([TopicPartition("adm-txn", 0)])
        [state] = producers[TopicPartition("adm-txn", 0)].active_producers
        assert state.producer_id == listing.producer_id
        assert state.current_transaction_start_offset == 0
    finally:
        admin.close()
        p.abort_transaction(10)


def test_create_partitions_with_assignments(broker):
    create_topic(broker.bootstrap, "adm-cp", 1)
    admin = ck_admin(broker)

    def grow(count, assignment):
        fs = admin.create_partitions([NewPartitions("adm-cp", count, replica_assignment=assignment)],
                                     request_timeout=10)
        return fs["adm-cp"]

    for count, assignment in [(2, [[7]]), (2, [[0, 0]]), (3, [[0]])]:
        with pytest.raises(KafkaException) as failed:
            grow(count, assignment).result(10)
        assert failed.value.args[0].code() == 39, (count, assignment)  # INVALID_REPLICA_ASSIGNMENT
    grow(2, [[0]]).result(10)
    md = admin.list_topics("adm-cp", timeout=10)
    assert len(md.topics["adm-cp"].partitions) == 2


def test_cleanup_policy_can_be_emptied(broker):
    create_topic(broker.bootstrap, "adm-cfg", 1)
    admin = ck_admin(broker)
    resource = ConfigResource(ResourceType.TOPIC, "adm-cfg", incremental_configs=[
        ConfigEntry("cleanup.policy", "delete",
                    incremental_operation=AlterConfigOpType.SUBTRACT)])
    admin.incremental_alter_configs([resource])[resource].result(10)
    described = admin.describe_configs([ConfigResource(ResourceType.TOPIC, "adm-cfg")])
    configs = list(described.values())[0].result(10)
    assert configs["cleanup.policy"].value == ""
    retention = configs["retention.ms"]
    assert retention.source == 5  # DEFAULT_CONFIG
    assert configs["min.insync.replicas"].source == 3  # DYNAMIC_DEFAULT_BROKER_CONFIG
