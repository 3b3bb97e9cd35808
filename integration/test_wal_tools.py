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


def sealed_batches(path: Path) -> list[tuple[int, int, int]]:
    """(position, length, base offset) of every batch in a sealed segment."""
    data, pos, out = path.read_bytes(), 0, []
    while pos + 12 <= len(data):
        base, length = struct.unpack(">qi", data[pos:pos + 12])
        out.append((pos, length + 12, base))
        pos += length + 12
    return out


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
    sealed = [p for p in sorted(data.glob("partitions/*/*.log")) if b"tool-message" in p.read_bytes()]
    assert sealed, "expected sealed segments (the WAL rolls every 8 KiB)"
    lost = set()
    # Flip a byte inside the records of the third batch of the first sealed segment.
    pos, length, base = sealed_batches(sealed[0])[2]
    raw = bytearray(sealed[0].read_bytes())
    raw[pos + length - 3] ^= 0xFF
    sealed[0].write_bytes(raw)
    lost.add(base)
    # And inside the payload of a WAL entry that holds one of our batches.
    wal_file = next(f for f in broker.wal_files() if any(b"tool-message" in e.payload for e in helpers.wal_entries(f)))
    entry = next(e for e in helpers.wal_entries(wal_file) if b"tool-message" in e.payload)
    raw = bytearray(wal_file.read_bytes())
    raw[entry.end - 3] ^= 0xFF
    wal_file.write_bytes(raw)
    lost.add(struct.unpack(">q", entry.payload[21:29])[0])

    inspect = wal("inspect", wal_file, "--json")
    rows = [json.loads(line) for line in inspect.stdout.splitlines() if line.startswith("{")]
    assert rows and all({"position", "base_offset", "record_count", "codec"} <= r.keys() for r in rows)
    assert inspect.returncode == 1, "inspect reports the damaged entry too"

    verify = wal("verify", data)
    assert verify.returncode == 1, verify.stdout
    damaged = [line for line in verify.stdout.splitlines() if line.startswith("DAMAGED")]
    assert any(str(sealed[0]) in line for line in damaged), verify.stdout
    assert any(str(wal_file) in line for line in damaged), verify.stdout

    broker.start()
    refused = wal("repair", data)
    assert refused.returncode != 0 and "in use" in (refused.stderr + refused.stdout)
    assert broker.stop() == 0

    repair = wal("repair", data)
    assert repair.returncode == 0, repair.stderr
    assert wal("verify", data).returncode == 0

    log_before = len(broker.log_text())
    broker.start()
    assert "checksum" not in broker.log_text()[log_before:], "warnings after the repair"
    consumed = helpers.consume_all(broker.bootstrap, topic, [0])
    got = {offset: value for (offset, _k, value, _ts) in consumed[0]}
    expected = {d.offset: d.value for d in acked if d.offset not in lost}
    assert got == expected
