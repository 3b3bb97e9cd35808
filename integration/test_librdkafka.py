"""librdkafka (confluent-kafka): keyed produce with every codec, consume back."""

from __future__ import annotations

import os
import random
import time
import zlib
from collections import defaultdict

import pytest
from confluent_kafka import Producer

import helpers

PARTITIONS = 4
# 100k messages per codec (about 3 s each on 2 cores); STRATA_IT_SCALE
# multiplies the count.
SCALE = float(os.environ.get("STRATA_IT_SCALE", "1"))
COUNTS = {"none": 100_000, "gzip": 100_000, "snappy": 100_000, "lz4": 100_000, "zstd": 100_000}


def make_messages(codec: str, n: int, seed: int):
    rng = random.Random(seed)
    words = [b"alpha", b"beta", b"gamma", b"delta", b"strata", b"kafka", b"log"]
    msgs = []
    for i in range(n):
        key = b"key-%d" % rng.randrange(500)
        # Half compressible words, half random bytes, varying length.
        body = b" ".join(rng.choice(words) for _ in range(rng.randrange(1, 20)))
        value = b"%s-%07d|" % (codec.encode(), i) + body + rng.randbytes(rng.randrange(0, 64))
        msgs.append((key, value))
    return msgs


@pytest.mark.timeout(300)
@pytest.mark.parametrize("codec", ["none", "gzip", "snappy", "lz4", "zstd"])
def test_keyed_produce_consume(broker, codec):
    n = int(COUNTS[codec] * SCALE)
    topic = f"rdk-{codec}"
    helpers.create_topic(broker.bootstrap, topic, PARTITIONS)
    msgs = make_messages(codec, n, seed=zlib.crc32(codec.encode()))

    producer = Producer(helpers.producer_config(
        broker.bootstrap, **{"compression.type": codec, "linger.ms": 10,
                             "batch.num.messages": 2000}))
    t0 = time.monotonic()
    acked = helpers.produce_all(producer, topic, msgs, timeout=180)
    t_produce = time.monotonic() - t0

    failed = [d for d in acked if d.error is not None]
    assert not failed, f"{len(failed)} deliveries failed, first: {failed[0].error}"
    assert all(0 <= d.partition < PARTITIONS and d.offset >= 0 for d in acked)

    # Same key, same partition.
    part_of_key: dict[bytes, set] = defaultdict(set)
    for d in acked:
        part_of_key[d.key].add(d.partition)
    spread = {k: ps for k, ps in part_of_key.items() if len(ps) > 1}
    assert not spread, f"keys landed on several partitions: {list(spread.items())[:3]}"
    assert len({d.partition for d in acked}) == PARTITIONS, "keys did not spread over partitions"

    # Delivery-report offsets are dense from 0 per partition, in produce order.
    by_part = defaultdict(list)
    for d in acked:
        by_part[d.partition].append(d)
    for p, ds in by_part.items():
        assert [d.offset for d in ds] == list(range(len(ds))), (
            f"partition {p}: acknowledged offsets not dense from 0 in produce order")

    t0 = time.monotonic()
    consumed = helpers.consume_all(broker.bootstrap, topic, range(PARTITIONS), timeout=120)
    t_consume = time.monotonic() - t0

    total = sum(len(v) for v in consumed.values())
    assert total == n, f"consumed {total} messages, produced and acknowledged {n}"
    for p, ds in by_part.items():
        got = consumed[p]
        assert [o for o, *_ in got] == [d.offset for d in ds], f"partition {p}: offsets differ"
        assert [(k, v) for _, k, v, _ in got] == [(d.key, d.value) for d in ds], (
            f"partition {p}: keys/values differ from produce order")
    helpers.check_against_acks(acked, consumed)
    print(f"{codec}: {n} messages, produce {t_produce:.1f}s, consume {t_consume:.1f}s")
