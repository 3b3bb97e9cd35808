"""Durability: kill -9 under load, clean SIGTERM restarts."""

from __future__ import annotations

import random
import threading
import time

import pytest
from confluent_kafka import Producer

import helpers

CYCLES = 4
PARTITIONS = 3


class ContinuousProducer(threading.Thread):
    """Produces acks=all messages until stopped, recording every delivery report."""

    def __init__(self, bootstrap: str, topic: str):
        super().__init__(daemon=True)
        self.topic = topic
        self.producer = Producer(helpers.producer_config(
            bootstrap, **{
                "linger.ms": 2,
                "message.timeout.ms": 30000,
                "retry.backoff.ms": 50,
                "reconnect.backoff.ms": 50,
                "reconnect.backoff.max.ms": 500,
                "socket.connection.setup.timeout.ms": 2000,
            }))
        self.lock = threading.Lock()
        self.acked: list[helpers.Delivered] = []
        self.failed: list[helpers.Delivered] = []
        self.sent = 0
        self.stopping = threading.Event()
        self.error: BaseException | None = None

    def on_delivery(self, d: helpers.Delivered, err, msg) -> None:
        with self.lock:
            if err is not None:
                d.error = err
                self.failed.append(d)
            else:
                d.partition, d.offset = msg.partition(), msg.offset()
                self.acked.append(d)

    def acked_count(self) -> int:
        with self.lock:
            return len(self.acked)

    def run(self) -> None:
        try:
            i = 0
            while not self.stopping.is_set():
                for _ in range(20):
                    key = b"k%d" % (i % 31)
                    d = helpers.Delivered(i, key, b"durable-%08d" % i)
                    try:
                        self.producer.produce(
                            self.topic, key=d.key, value=d.value,
                            on_delivery=lambda err, msg, d=d: self.on_delivery(d, err, msg))
                    except BufferError:
                        break
                    i += 1
                self.sent = i
                self.producer.poll(0.005)
        except BaseException as e:  # surfaced by the test
            self.error = e

    def finish(self, timeout: float) -> int:
        self.stopping.set()
        self.join(10)
        return self.producer.flush(timeout)


def wait_for_progress(prod: ContinuousProducer, beyond: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while prod.acked_count() <= beyond:
        assert prod.error is None, prod.error
        assert time.monotonic() < deadline, (
            f"no acknowledgements beyond {beyond} within {timeout}s")
        time.sleep(0.02)


@pytest.mark.timeout(240)
def test_kill9_under_load_loses_no_acknowledged_message(broker):
    topic = "durable"
    helpers.create_topic(broker.bootstrap, topic, PARTITIONS)
    rng = random.Random(20240611)
    prod = ContinuousProducer(broker.bootstrap, topic)
    prod.start()
    try:
        for cycle in range(CYCLES):
            wait_for_progress(prod, prod.acked_count(), timeout=30)
            time.sleep(rng.uniform(0.2, 1.5))
            before = prod.acked_count()
            broker.kill9()
            print(f"cycle {cycle}: killed with {before} acknowledged")
            time.sleep(rng.uniform(0.0, 0.3))
            broker.start()
        wait_for_progress(prod, prod.acked_count(), timeout=30)
        left = prod.finish(timeout=60)
        assert left == 0, f"{left} messages neither delivered nor failed after 60s"
    finally:
        prod.stopping.set()
    assert prod.error is None, prod.error

    acked = list(prod.acked)
    print(f"sent {prod.sent}, acknowledged {len(acked)}, failed {len(prod.failed)}")
    assert len(acked) > 1000, "too few acknowledged messages for a meaningful test"

    # Still after one more clean restart.
    broker.restart()
    consumed = helpers.consume_all(broker.bootstrap, topic, range(PARTITIONS), timeout=120)
    helpers.check_against_acks(acked, consumed, dense=True, ordered=False)


@pytest.mark.timeout(120)
def test_sigterm_exits_zero_and_keeps_everything(broker):
    topic = "graceful"
    helpers.create_topic(broker.bootstrap, topic, 2)
    msgs = [(b"g%d" % (i % 11), b"graceful-%06d" % i) for i in range(5000)]
    producer = Producer(helpers.producer_config(broker.bootstrap))
    acked = helpers.produce_all(producer, topic, msgs)
    assert not [d for d in acked if d.error], "deliveries failed"

    code = broker.stop()
    assert code == 0, f"exit code {code} after SIGTERM; log:\n{broker.log_text()[-3000:]}"
    broker.start()

    consumed = helpers.consume_all(broker.bootstrap, topic, range(2))
    assert sum(len(v) for v in consumed.values()) == len(msgs)
    helpers.check_against_acks(acked, consumed)

    # New produce continues at the next offset of each partition.
    ends = {p: len(consumed[p]) for p in range(2)}
    more = [(b"g%d" % (i % 11), b"after-restart-%06d" % i) for i in range(500)]
    producer = Producer(helpers.producer_config(broker.bootstrap))
    acked2 = helpers.produce_all(producer, topic, more)
    assert not [d for d in acked2 if d.error], "deliveries failed after restart"
    for d in acked2:
        d.index += len(msgs)
    for p in range(2):
        offs = [d.offset for d in acked2 if d.partition == p]
        assert offs == list(range(ends[p], ends[p] + len(offs))), (
            f"partition {p}: offsets after restart start at {offs[:1]}, expected {ends[p]}")

    # And a second SIGTERM cycle keeps both generations.
    assert broker.stop() == 0
    broker.start()
    consumed = helpers.consume_all(broker.bootstrap, topic, range(2))
    helpers.check_against_acks(acked + acked2, consumed)
    assert sum(len(v) for v in consumed.values()) == len(msgs) + len(more)
