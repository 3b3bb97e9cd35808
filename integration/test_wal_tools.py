"""`strata wal inspect | verify | repair` on a stopped broker's data dir."""

from __future__ import annotations

import json
import struct
import subprocess
from pathlib import Path

import pytest
from confluent_kafka import Producer

import helpers
from conftest import BINARY


def wal(*args) -> subprocess.CompletedProcess:
    return subprocess.run([str(BINARY), "wal", *map(str, args)], capture_output=True, text=True, timeout=60)


def flip(path: Path, position: int) -> None:
    raw = bytearray(path.read_bytes())
    raw[position] ^= 0xFF
    path.write_bytes(raw)


def our_entries(path: Path) -> list:
    return [e for e in helpers.wal_entries(path) if b"tool-message" in e.payload]


def base_offset(entry) -> int:
    return struct.unpack(">q", entry.payload[21:29])[0]


@pytest.mark.timeout(120)
def test_verify_finds_flipped_bytes_and_repair_keeps_every_intact_message(broker_factory):
    broker = broker_factory(extra_args=("--wal-segment-bytes", "8192"))
    topic = "tools"
    helpers.create_topic(broker.bootstrap, topic, 1)
    msgs = [(b"k", b"tool-message-%04d" % i) for i in range(300)]
    acked = helpers.produce_all(Producer(helpers.producer_config(broker.bootstrap)), topic, msgs, flush_each=True)
    assert not [d for d in acked if d.error]
    assert broker.stop() == 0

    data = broker.data_dir
    files = [f for f in broker.wal_files() if our_entries(f)]
    sealed = [f for f in files if f.with_suffix(".idx").exists()]
    unsealed = [f for f in files if not f.with_suffix(".idx").exists()]
    assert len(sealed) >= 2, "expected sealed segments (the WAL rolls every 8 KiB)"
    assert unsealed == [files[-1]], "only the segment written at shutdown is unsealed"
    lost = set()
    # A byte inside the records of the third batch of a sealed segment: the
    # broker reads that segment through its index and meets it only when
    # serving the batch.
    entry = our_entries(sealed[0])[2]
    flip(sealed[0], entry.end - 3)
    lost.add(base_offset(entry))
    # A byte inside another sealed segment's index.
    index = sealed[1].with_suffix(".idx")
    flip(index, 20)
    # A byte inside an entry of the unsealed segment.
    entry = our_entries(unsealed[0])[0]
    flip(unsealed[0], entry.end - 3)
    lost.add(base_offset(entry))

    inspect = wal("inspect", sealed[0], "--json")
    rows = [json.loads(line) for line in inspect.stdout.splitlines() if line.startswith("{")]
    assert rows and all({"position", "base_offset", "record_count", "codec"} <= r.keys() for r in rows)
    assert inspect.returncode == 1, "inspect reports the damaged entry too"

    verify = wal("verify", data)
    assert verify.returncode == 1, verify.stdout
    damaged = [line for line in verify.stdout.splitlines() if line.startswith("DAMAGED")]
    for path in (sealed[0], index, unsealed[0]):
        assert any(str(path) in line for line in damaged), (path, verify.stdout)

    # The broker serves everything intact around the damage, and says where
    # the damaged batch is when it meets it.
    log_before = len(broker.log_text())
    broker.start()
    refused = wal("repair", data)
    assert refused.returncode != 0 and "in use" in (refused.stderr + refused.stdout)
    consumed = helpers.consume_all(broker.bootstrap, topic, [0])
    got = {offset: value for (offset, _k, value, _ts) in consumed[0]}
    expected = {d.offset: d.value for d in acked if d.offset not in lost}
    assert got == expected
    log = broker.log_text()[log_before:]
    warn = [line for line in log.splitlines()
            if "WARN" in line and "checksum" in line and sealed[0].name in line]
    assert warn, log[-3000:]
    assert broker.stop() == 0

    repair = wal("repair", data)
    assert repair.returncode == 0, repair.stderr
    assert wal("verify", data).returncode == 0

    log_before = len(broker.log_text())
    broker.start()
    assert "checksum" not in broker.log_text()[log_before:], "warnings after the repair"
    consumed = helpers.consume_all(broker.bootstrap, topic, [0])
    got = {offset: value for (offset, _k, value, _ts) in consumed[0]}
    assert got == expected


@pytest.mark.timeout(120)
def test_compact_gives_back_dead_space_and_keeps_every_live_message(broker_factory):
    broker = broker_factory(extra_args=("--wal-segment-bytes", "16384"))
    helpers.create_topic(broker.bootstrap, "live", 1)
    helpers.create_topic(broker.bootstrap, "dropped", 1)
    p = Producer(helpers.producer_config(broker.bootstrap, **{"linger.ms": 0}))
    acked = []
    for start in range(0, 400, 20):
        acked += helpers.produce_all(p, "live", [(b"k", b"live-%04d" % i) for i in range(start, start + 20)])
        helpers.produce_all(p, "dropped", [(b"k", b"d" * 500) for _ in range(20)])
    for i, d in enumerate(acked):
        assert d.error is None
        d.index = i
    # Every "dropped" record goes: DeleteRecords to its end.
    from confluent_kafka import TopicPartition
    from confluent_kafka.admin import AdminClient
    admin = AdminClient({"bootstrap.servers": broker.bootstrap, "broker.address.family": "v4"})
    for f in admin.delete_records([TopicPartition("dropped", 0, -1)]).values():
        f.result(15)

    # Refused while the broker holds the data dir.
    busy = wal("compact", broker.data_dir)
    assert busy.returncode != 0 and "in use" in busy.stderr, busy
    assert broker.stop() == 0
    before = sum(f.stat().st_size for f in broker.wal_files())
    done = wal("compact", broker.data_dir, "--wal-segment-bytes", "16384")
    assert done.returncode == 0, done.stderr
    assert "runs (0 failed)" in done.stdout, done.stdout
    after = sum(f.stat().st_size for f in broker.wal_files())
    assert after < before * 0.5, (before, after, done.stdout)
    assert wal("verify", broker.data_dir).returncode == 0

    broker.start()
    helpers.check_against_acks(acked, helpers.consume_all(broker.bootstrap, "live", [0]))
    assert helpers.watermarks(broker.bootstrap, "dropped", [0])[0] == (400, 400)
