"""Consumer groups with real clients: shared partitions, rebalances on
failure, cooperative and static membership, committed offsets surviving a
broker kill -9."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from confluent_kafka import Producer

import helpers

HERE = Path(__file__).resolve().parent
PARTITIONS = 6


class Member:
    """A group member process and the events it reported."""

    def __init__(self, bootstrap, topic, group, strategy="range", instance=None, seconds=60):
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "group_member.py"), bootstrap, topic, group, strategy,
             instance or "-", str(seconds)],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.events: list[dict] = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.events.append(json.loads(line))

    def snapshot(self) -> list[dict]:
        with self.lock:
            return list(self.events)

    def assignment(self, cooperative=False) -> set[int]:
        owned: set[int] = set()
        for e in self.snapshot():
            if e["event"] == "assign":
                owned = owned | set(e["partitions"]) if cooperative else set(e["partitions"])
            elif e["event"] == "revoke":
                owned = owned - set(e["partitions"]) if cooperative else set()
        return owned

    def messages(self) -> list[tuple[int, int, str]]:
        return [(e["partition"], e["offset"], e["value"]) for e in self.snapshot() if e["event"] == "msg"]

    def rebalances(self) -> int:
        return sum(1 for e in self.snapshot() if e["event"] in ("assign", "revoke"))

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()


def wait_until(condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def stable_split(members, cooperative=False):
    sets = [m.assignment(cooperative) for m in members]
    union = set().union(*sets)
    disjoint = sum(len(s) for s in sets) == len(union)
    return disjoint and union == set(range(PARTITIONS)) and all(sets)


def produce(bootstrap, topic, count, tag):
    producer = Producer(helpers.producer_config(bootstrap))
    msgs = [(b"k%d" % i, f"{tag}-{i}".encode()) for i in range(count)]
    acked = helpers.produce_all(producer, topic, msgs)
    assert not [d for d in acked if d.error]
    return {d.value.decode() for d in acked}


@pytest.mark.parametrize("strategy", ["range", "cooperative-sticky"])
@pytest.mark.timeout(120)
def test_three_members_share_partitions_and_take_over_a_killed_one(broker, strategy):
    topic, group = f"shared-{strategy}", f"g-{strategy}"
    cooperative = strategy == "cooperative-sticky"
    helpers.create_topic(broker.bootstrap, topic, PARTITIONS)
    members = [Member(broker.bootstrap, topic, group, strategy) for _ in range(3)]
    try:
        wait_until(lambda: stable_split(members, cooperative), 45, "three disjoint assignments covering 6 partitions")
        first = produce(broker.bootstrap, topic, 600, "first")
        wait_until(lambda: {m[2] for x in members for m in x.messages()} >= first, 30, "first 600 consumed")
        seen = [m for x in members for m in x.messages()]
        assert len(seen) == len(set(seen)) == 600, "each message consumed exactly once by a stable group"

        victim = members.pop(0)
        victim_partitions = victim.assignment(cooperative)
        victim.kill()  # no LeaveGroup: the session timeout must notice
        second = produce(broker.bootstrap, topic, 600, "second")
        # Session timeout (6 s) plus a rebalance: the survivors take over everything.
        wait_until(lambda: stable_split(members, cooperative), 30, "survivors to own all 6 partitions")
        assert victim_partitions <= members[0].assignment(cooperative) | members[1].assignment(cooperative)
        wait_until(lambda: {m[2] for x in members for m in x.messages()} >= second, 30,
                   "every message produced after the kill consumed by the survivors")
    finally:
        for m in members:
            m.stop()


@pytest.mark.timeout(120)
def test_static_member_restart_does_not_rebalance(broker):
    """Each member restarts in turn, so both the leader and a follower do."""
    topic, group = "static", "g-static"
    helpers.create_topic(broker.bootstrap, topic, PARTITIONS)
    members = {
        name: Member(broker.bootstrap, topic, group, instance=name) for name in ("member-a", "member-b")
    }
    try:
        wait_until(lambda: stable_split(list(members.values())), 45, "two static members to split the partitions")
        time.sleep(2)
        for restarting, staying in (("member-b", "member-a"), ("member-a", "member-b")):
            events, partitions = members[staying].rebalances(), members[restarting].assignment()
            members[restarting].kill()  # a static member's crash: no LeaveGroup
            members[restarting] = Member(broker.bootstrap, topic, group, instance=restarting)
            wait_until(lambda: members[restarting].assignment() == partitions, 10,
                       f"{restarting} to get its partitions back")
            time.sleep(2)
            assert members[staying].rebalances() == events, f"{staying} saw a rebalance when {restarting} restarted"
        values = produce(broker.bootstrap, topic, 120, "static")
        wait_until(lambda: {m[2] for x in members.values() for m in x.messages()} >= values, 30, "all consumed")
    finally:
        for m in members.values():
            m.stop()


@pytest.mark.timeout(120)
def test_committed_offsets_survive_broker_kill9(broker):
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    topic, group = "commits", "g-commits"
    helpers.create_topic(broker.bootstrap, topic, 3)
    produce(broker.bootstrap, topic, 90, "c")
    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                             auto_offset_reset="earliest", enable_auto_commit=False,
                             consumer_timeout_ms=10000)
    consumed = 0
    for _ in consumer:
        consumed += 1
        if consumed == 90:
            break
    assert consumed == 90
    wanted = {
        TopicPartition(topic, p): OffsetAndMetadata(10 + p, f"meta-{p} ✓", -1) for p in range(3)
    }
    consumer.commit(wanted)
    consumer.close()

    broker.kill9()
    broker.start()

    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        got = admin.list_group_offsets({group: None, "g-absent": None})
        assert got["g-absent"] == {}
        got = got[group]
    finally:
        admin.close()
    assert {tp: (om.offset, om.metadata) for tp, om in got.items()} == {
        tp: (om.offset, om.metadata) for tp, om in wanted.items()
    }
    # A member of the group resumes from the committed offsets.
    consumer = KafkaConsumer(topic, bootstrap_servers=broker.bootstrap, group_id=group,
                             enable_auto_commit=False, consumer_timeout_ms=5000)
    resumed = list(consumer)
    consumer.close()
    assert len(resumed) == 90 - (10 + 11 + 12)
    assert min(r.offset for r in resumed if r.partition == 2) == 12


UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def subscribed(bootstrap, group, topic, **conf):
    from confluent_kafka import Consumer

    c = Consumer(helpers.consumer_config(bootstrap, **{
        "group.id": group, "partition.assignment.strategy": "range",
        "session.timeout.ms": 6000, "heartbeat.interval.ms": 300, **conf}))
    c.subscribe([topic])
    return c


def poll_until(consumers, condition, timeout, what):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        for c in consumers:
            c.poll(0.05)


def describe(bootstrap, group):
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})
    return admin.describe_consumer_groups([group], request_timeout=10)[group].result(10)


@pytest.mark.timeout(60)
def test_member_ids_start_with_client_id_and_describe_shows_client_and_host(broker):
    topic, group = "ids", "g-ids"
    helpers.create_topic(broker.bootstrap, topic, 2)
    consumers = {}
    try:
        # zeta joins first: the range assignor orders members by id, so the
        # split must follow the client ids, not the join order.
        for client_id in ("zeta-consumer", "alpha-consumer"):
            c = subscribed(broker.bootstrap, group, topic, **{"client.id": client_id})
            consumers[client_id] = c
            poll_until(list(consumers.values()), lambda c=c: c.assignment(), 20,
                       f"{client_id} to be assigned")
        both = list(consumers.values())
        poll_until(both, lambda: all(len(c.assignment()) == 1 for c in both), 20, "a 1 + 1 split")
        assert [tp.partition for tp in consumers["alpha-consumer"].assignment()] == [0]
        assert [tp.partition for tp in consumers["zeta-consumer"].assignment()] == [1]

        described = describe(broker.bootstrap, group)
        members = sorted(described.members, key=lambda m: m.client_id)
        assert [m.client_id for m in members] == ["alpha-consumer", "zeta-consumer"]
        for m in members:
            assert re.fullmatch(re.escape(m.client_id) + "-" + UUID, m.member_id), m.member_id
            assert m.host == "/127.0.0.1", m.host
            assert m.group_instance_id is None
    finally:
        for c in consumers.values():
            c.close()


@pytest.mark.timeout(60)
def test_static_member_id_starts_with_group_instance_id(broker):
    topic, group = "static-ids", "g-static-ids"
    helpers.create_topic(broker.bootstrap, topic, 1)
    c = subscribed(broker.bootstrap, group, topic,
                   **{"client.id": "some-client", "group.instance.id": "instance-7"})
    try:
        poll_until([c], lambda: c.assignment(), 20, "the static member to be assigned")
        (member,) = describe(broker.bootstrap, group).members
        assert re.fullmatch("instance-7-" + UUID, member.member_id), member.member_id
        assert member.group_instance_id == "instance-7"
        assert (member.client_id, member.host) == ("some-client", "/127.0.0.1")
    finally:
        c.close()


@pytest.mark.timeout(90)
def test_default_initial_rebalance_delay_gathers_members_started_apart(broker_factory):
    """Kafka's group.initial.rebalance.delay.ms default (3 s): a second member
    starting a second after the first lands in the same first generation."""
    broker = broker_factory(group_initial_rebalance_delay_ms=None)
    topic, group = "delayed", "g-delayed"
    helpers.create_topic(broker.bootstrap, topic, PARTITIONS)
    members = [Member(broker.bootstrap, topic, group)]
    try:
        time.sleep(1)
        members.append(Member(broker.bootstrap, topic, group))
        wait_until(lambda: stable_split(members), 30, "two members to split the partitions")
        time.sleep(2)
        for m in members:
            kinds = [e["event"] for e in m.snapshot() if e["event"] != "msg"]
            assert kinds == ["assign"], f"expected one assignment and no rebalance, got {kinds}"
    finally:
        for m in members:
            m.stop()


@pytest.mark.timeout(60)
def test_min_session_timeout_is_configurable(broker_factory):
    broker = broker_factory(extra_args=("--group-min-session-timeout-ms", "1000"))
    topic, group = "short-session", "g-short-session"
    helpers.create_topic(broker.bootstrap, topic, 1)
    values = produce(broker.bootstrap, topic, 3, "short")
    c = subscribed(broker.bootstrap, group, topic, **{"session.timeout.ms": 1000})
    got = set()
    try:
        deadline = time.monotonic() + 20
        while got != values:
            assert time.monotonic() < deadline, f"consumed {sorted(got)} of {sorted(values)}"
            m = c.poll(0.2)
            if m is None:
                continue
            assert m.error() is None, f"consumer error: {m.error()}"
            got.add(m.value().decode())
    finally:
        c.close()


@pytest.mark.timeout(60)
def test_null_commit_metadata_is_fetched_as_empty_string(broker):
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
    from kafka.structs import OffsetAndMetadata

    topic, group = "null-meta", "g-null-meta"
    helpers.create_topic(broker.bootstrap, topic, 2)
    produce(broker.bootstrap, topic, 10, "n")
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap, group_id=group,
                             enable_auto_commit=False)
    null_tp, kept_tp = TopicPartition(topic, 0), TopicPartition(topic, 1)
    try:
        consumer.assign([null_tp, kept_tp])
        consumer.commit({null_tp: OffsetAndMetadata(3, None, -1),
                         kept_tp: OffsetAndMetadata(4, "kept", -1)})
    finally:
        consumer.close()
    admin = KafkaAdminClient(bootstrap_servers=broker.bootstrap)
    try:
        got = admin.list_group_offsets({group: None})[group]
    finally:
        admin.close()
    assert {tp: (om.offset, om.metadata) for tp, om in got.items()} == {
        null_tp: (3, ""), kept_tp: (4, "kept")}
