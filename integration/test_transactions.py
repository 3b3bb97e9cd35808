"""Transactions with confluent-kafka: read_committed sees exactly the
committed records, read_uncommitted sees everything, a zombie is fenced,
offsets committed in a transaction land only on commit."""

from __future__ import annotations

import pytest
from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

import helpers


def txn_producer(bootstrap: str, txn_id: str) -> Producer:
    p = Producer(helpers.producer_config(bootstrap, **{
        "transactional.id": txn_id,
        "enable.idempotence": True,
        "transaction.timeout.ms": 60000,
    }))
    p.init_transactions(15)
    return p


def read(bootstrap: str, topic: str, partitions: int, isolation: str) -> list[str]:
    c = Consumer(helpers.consumer_config(bootstrap, **{
        "isolation.level": isolation, "group.id": f"reader-{isolation}"}))
    try:
        c.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
        out, idle = [], 0
        while idle < 15:
            m = c.poll(0.2)
            if m is None:
                idle += 1
                continue
            if m.error():
                continue
            idle = 0
            out.append(m.value().decode())
        return out
    finally:
        c.close()


@pytest.mark.timeout(120)
def test_committed_and_aborted_transactions(broker):
    topic = "txn"
    helpers.create_topic(broker.bootstrap, topic, 2)
    p = txn_producer(broker.bootstrap, "txn-app")
    committed = []
    for round_ in range(6):
        p.begin_transaction()
        values = [f"r{round_}-{i}" for i in range(50)]
        for i, v in enumerate(values):
            p.produce(topic, key=b"k%d" % (i % 2), value=v.encode())
        if round_ % 2 == 0:
            p.commit_transaction(15)
            committed += values
        else:
            p.flush(15)  # make sure the aborted records reach the log (abort purges unsent ones)
            p.abort_transaction(15)
    # An open transaction stays invisible to read_committed.
    p.begin_transaction()
    p.produce(topic, key=b"k0", value=b"open-0")
    p.flush(10)

    seen = read(broker.bootstrap, topic, 2, "read_committed")
    assert sorted(seen) == sorted(committed)
    everything = read(broker.bootstrap, topic, 2, "read_uncommitted")
    assert len(everything) == 6 * 50 + 1, "read_uncommitted sees every data record (markers are not records)"

    p.commit_transaction(15)
    seen = read(broker.bootstrap, topic, 2, "read_committed")
    assert sorted(seen) == sorted(committed + ["open-0"])


@pytest.mark.timeout(120)
def test_new_producer_fences_the_zombie_and_aborts_its_transaction(broker):
    topic = "fenced"
    helpers.create_topic(broker.bootstrap, topic, 1)
    zombie = txn_producer(broker.bootstrap, "same-id")
    zombie.begin_transaction()
    zombie.produce(topic, value=b"zombie-open")
    zombie.flush(10)

    successor = txn_producer(broker.bootstrap, "same-id")  # aborts the zombie's transaction
    successor.begin_transaction()
    successor.produce(topic, value=b"successor")
    successor.commit_transaction(15)

    with pytest.raises(KafkaException):
        zombie.produce(topic, value=b"zombie-late")
        zombie.commit_transaction(15)
    assert read(broker.bootstrap, topic, 1, "read_committed") == ["successor"]


@pytest.mark.timeout(120)
def test_consume_transform_produce_commits_offsets_with_the_transaction(broker):
    src, dst, group = "ctp-in", "ctp-out", "ctp-group"
    helpers.create_topic(broker.bootstrap, src, 1)
    helpers.create_topic(broker.bootstrap, dst, 1)
    plain = Producer(helpers.producer_config(broker.bootstrap))
    helpers.produce_all(plain, src, [(None, b"in-%d" % i) for i in range(20)])

    consumer = Consumer(helpers.consumer_config(broker.bootstrap, **{"group.id": group}))
    consumer.assign([TopicPartition(src, 0, 0)])
    p = txn_producer(broker.bootstrap, "ctp")
    batch = []
    while len(batch) < 10:
        m = consumer.poll(1)
        if m is not None and not m.error():
            batch.append(m)
    # First ten: aborted, offsets must not move.
    p.begin_transaction()
    for m in batch:
        p.produce(dst, value=b"out-" + m.value())
    p.send_offsets_to_transaction([TopicPartition(src, 0, 10)], consumer.consumer_group_metadata(), 15)
    p.abort_transaction(15)
    assert consumer.committed([TopicPartition(src, 0)], 10)[0].offset < 0
    # Again, committed this time.
    p.begin_transaction()
    for m in batch:
        p.produce(dst, value=b"out-" + m.value())
    p.send_offsets_to_transaction([TopicPartition(src, 0, 10)], consumer.consumer_group_metadata(), 15)
    p.commit_transaction(15)
    consumer.close()

    check = Consumer(helpers.consumer_config(broker.bootstrap, **{"group.id": group}))
    assert check.committed([TopicPartition(src, 0)], 10)[0].offset == 10
    check.close()
    assert read(broker.bootstrap, dst, 1, "read_committed") == [f"out-in-{i}" for i in range(10)]


@pytest.mark.timeout(120)
def test_open_transaction_survives_broker_kill9_and_commits_after(broker):
    topic = "txn-crash"
    helpers.create_topic(broker.bootstrap, topic, 1)
    p = txn_producer(broker.bootstrap, "crash-id")
    p.begin_transaction()
    for i in range(30):
        p.produce(topic, value=b"before-crash-%d" % i)
    p.flush(15)
    broker.kill9()
    broker.start()
    # The open transaction is still open: read_committed sees nothing yet.
    assert read(broker.bootstrap, topic, 1, "read_committed") == []
    p.commit_transaction(30)
    assert read(broker.bootstrap, topic, 1, "read_committed") == [f"before-crash-{i}" for i in range(30)]
