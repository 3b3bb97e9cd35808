"""`__consumer_offsets` and `__transaction_state` hold Kafka's record
layouts: what real clients commit through Strata, read back raw from the
topics, decodes with Kafka's schemas (kafka_records.py, written out from
Kafka's JSON specs) — offset commits, group records, tombstones of a
deleted group, and a transaction's states."""

from __future__ import annotations

import time
import uuid

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient
from kafka import KafkaConsumer
from kafka import TopicPartition as PyTopicPartition
from kafka.structs import OffsetAndMetadata

import helpers
import kafka_records

OFFSETS = "__consumer_offsets"
STATES = "__transaction_state"


def raw_records(bootstrap: str, topic: str) -> list[tuple[bytes, bytes | None]]:
    """Every record of an internal topic from its log start: (key, value)."""
    consumed = helpers.consume_all(bootstrap, topic, [0], **{"group.id": f"raw-{uuid.uuid4()}"})
    return [(key, value) for _, key, value, _ in consumed[0]]


def offsets_records(bootstrap: str) -> list[tuple[str, int, dict, dict | None]]:
    return [kafka_records.decode_offsets_record(k, v) for k, v in raw_records(bootstrap, OFFSETS)]


def wait_for(what: str, check, timeout: float = 15.0):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert time.monotonic() < deadline, f"not within {timeout}s: {what}"
        time.sleep(0.2)


def produce(bootstrap: str, topic: str, count: int) -> None:
    p = Producer(helpers.producer_config(bootstrap))
    acked = helpers.produce_all(p, topic, [(f"k{i}".encode(), b"v") for i in range(count)])
    assert all(d.error is None for d in acked)


@pytest.mark.timeout(90)
def test_commits_and_group_records_decode_with_kafkas_schemas(broker):
    bootstrap = broker.bootstrap
    helpers.create_topic(bootstrap, "lagged", 2)
    produce(bootstrap, "lagged", 20)

    # librdkafka: a subscribed member commits with metadata, then leaves.
    c = Consumer(helpers.consumer_config(bootstrap, **{
        "group.id": "rd-group", "client.id": "rd-client",
        "partition.assignment.strategy": "range"}))
    c.subscribe(["lagged"])
    wait_for("an assignment", lambda: c.consume(num_messages=5, timeout=0.5) or c.assignment())
    c.commit(offsets=[TopicPartition("lagged", 0, 3, metadata="rd-meta"),
                      TopicPartition("lagged", 1, 4)], asynchronous=False)

    # kafka-python: a commit without membership (generation -1).
    py = KafkaConsumer(bootstrap_servers=bootstrap, group_id="py-group",
                       enable_auto_commit=False)
    py.commit({PyTopicPartition("lagged", 1): OffsetAndMetadata(7, "py-meta", -1)})
    py.close()

    records = offsets_records(bootstrap)
    stable = [v for kind, _, k, v in records
              if kind == "group" and k["group"] == "rd-group" and v and v["members"]]
    assert stable, f"no Stable record of rd-group in {records}"
    group = stable[-1]
    assert group["_version"] == 3
    assert group["protocolType"] == "consumer" and group["protocol"] == "range"
    assert group["generation"] >= 1
    [member] = group["members"]
    assert member["memberId"] == group["leader"]
    assert member["memberId"].startswith("rd-client-")
    assert (member["clientId"], member["clientHost"]) == ("rd-client", "/127.0.0.1")
    assert member["sessionTimeout"] == 45000 and member["rebalanceTimeout"] > 0
    assert member["subscription"] and member["assignment"]
    now_ms = time.time() * 1000
    assert abs(group["currentStateTimestamp"] - now_ms) < 60_000

    c.close()  # LeaveGroup: the group empties, and its record says so.

    def empty_record():
        groups = [(v["generation"], v["members"]) for kind, _, k, v in offsets_records(bootstrap)
                  if kind == "group" and k["group"] == "rd-group" and v]
        return groups and groups[-1][1] == [] and groups[-1][0] > group["generation"]
    wait_for("rd-group's Empty record", empty_record)

    records = offsets_records(bootstrap)
    commits = {(k["group"], k["topic"], k["partition"]): (key_version, v)
               for kind, key_version, k, v in records if kind == "offset"}
    key_version, rd0 = commits[("rd-group", "lagged", 0)]
    assert key_version == 1 and rd0["_version"] == 3
    # confluent-kafka-python sends the metadata with its C string's NUL
    # terminator; the record holds exactly the bytes committed.
    assert (rd0["offset"], rd0["metadata"].rstrip("\x00")) == (3, "rd-meta")
    assert abs(rd0["commitTimestamp"] - now_ms) < 60_000
    assert commits[("rd-group", "lagged", 1)][1]["metadata"] == ""
    assert commits[("py-group", "lagged", 1)][1]["offset"] == 7
    assert commits[("py-group", "lagged", 1)][1]["metadata"] == "py-meta"

    # Deleting a group: a tombstone for each offset, then the group's.
    admin = AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})
    admin.delete_consumer_groups(["rd-group"], request_timeout=15)["rd-group"].result(15)
    tail = [(kind, k, v) for kind, _, k, v in offsets_records(bootstrap)][-3:]
    assert [(kind, v) for kind, _, v in tail] == [("offset", None), ("offset", None), ("group", None)]
    assert {(k["topic"], k["partition"]) for kind, k, _ in tail[:2]} == {("lagged", 0), ("lagged", 1)}
    assert all(k["group"] == "rd-group" for _, k, _ in tail)


@pytest.mark.timeout(90)
def test_transaction_states_decode_with_kafkas_schemas(broker):
    bootstrap = broker.bootstrap
    helpers.create_topic(bootstrap, "tx-out", 1)
    helpers.create_topic(bootstrap, "tx-in", 1)
    produce(bootstrap, "tx-in", 5)
    consumer = Consumer(helpers.consumer_config(bootstrap, **{"group.id": "tx-group"}))
    producer = Producer(helpers.producer_config(bootstrap, **{
        "transactional.id": "it-tx", "enable.idempotence": True}))
    producer.init_transactions(15)
    producer.begin_transaction()
    producer.produce("tx-out", key=b"k", value=b"v")
    producer.send_offsets_to_transaction([TopicPartition("tx-in", 0, 5)],
                                         consumer.consumer_group_metadata(), 15)
    producer.commit_transaction(15)
    consumer.close()

    states = []
    for key, value in raw_records(bootstrap, STATES):
        transactional_id, fields = kafka_records.decode_txn_record(key, value)
        assert transactional_id == "it-tx"
        states.append(fields)
    names = [kafka_records.TXN_STATUS[s["TransactionStatus"]] for s in states]
    assert names[0] == "Empty" and names[-2:] == ["PrepareCommit", "CompleteCommit"], names
    assert "Ongoing" in names
    producer_ids = {s["ProducerId"] for s in states}
    assert len(producer_ids) == 1 and producer_ids.pop() >= 0
    assert states[0]["TransactionPartitions"] is None, "Empty: null partitions"
    assert states[0]["_version"] == 0
    prepare = states[-2]
    topics = {p["Topic"]: p["PartitionIds"] for p in prepare["TransactionPartitions"]}
    assert topics == {"tx-out": [0]}
    assert prepare["TransactionTimeoutMs"] == 60000
    assert prepare["TransactionStartTimestampMs"] > 0
    assert prepare["TransactionLastUpdateTimestampMs"] >= prepare["TransactionStartTimestampMs"]
    # The offsets committed in the transaction ride in Strata's own tagged
    # fields: Kafka's reader sees version 1 with tags it skips.
    with_offsets = [s for s in states if s.get("_unknownTaggedFields")]
    assert with_offsets and all(s["_version"] == 1 for s in with_offsets)
    assert states[-1]["TransactionPartitions"] == []

    committed = [v for kind, _, k, v in offsets_records(bootstrap)
                 if kind == "offset" and k["group"] == "tx-group" and v]
    assert [c["offset"] for c in committed] == [5]
