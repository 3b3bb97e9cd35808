"""A WAL that cannot be written: the broker says so on /ready and in its
metrics for as long as the fault lasts, logs it in summary, loses nothing
acknowledged, and takes writes again once the disk has room.

The fault is real: the data dir sits on a small tmpfs that a filler file
fills up (mounting needs root, as CI runs)."""

from __future__ import annotations

import os
import subprocess
import time
import urllib.error
import urllib.request

import pytest
from confluent_kafka import Producer

import helpers


@pytest.fixture
def small_disk(tmp_path):
    mnt = tmp_path / "small-disk"
    mnt.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", str(mnt)], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def ready(http_port: int) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{http_port}/ready", timeout=5) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def fill(path, leave: int) -> None:
    """Writes a file that leaves about `leave` bytes free on its file system."""
    st = os.statvfs(path.parent)
    size = max(0, st.f_bavail * st.f_frsize - leave)
    with open(path, "wb") as f:
        chunk = b"\0" * (1 << 20)
        while size > 0:
            n = min(size, len(chunk))
            try:
                f.write(chunk[:n])
                f.flush()
            except OSError:
                break
            size -= n


def produce_one(producer, topic: str, value: bytes):
    [d] = helpers.produce_all(producer, topic, [(None, value)], timeout=30)
    return d


@pytest.mark.timeout(180)
def test_full_disk_turns_ready_off_counts_every_refusal_and_recovers(broker_factory, small_disk):
    broker = broker_factory(start=False)
    broker.data_dir = small_disk / "data"
    broker.start()
    topic = "disk-full"
    helpers.create_topic(broker.bootstrap, topic, 1)
    producer = Producer(helpers.producer_config(
        broker.bootstrap, **{"linger.ms": 0, "retries": 0, "message.timeout.ms": 10000}))
    value = b"v" * 64 * 1024

    acked = [produce_one(producer, topic, value) for _ in range(5)]
    assert all(d.error is None for d in acked)
    assert ready(broker.http_port)[0] == 200
    assert helpers.sample(helpers.scrape(broker.http_port), "wal_writable") == 1

    filler = small_disk / "filler"
    fill(filler, leave=256 * 1024)
    refused = 0
    for _ in range(40):
        d = produce_one(producer, topic, value)
        if d.error is None:
            acked.append(d)
        else:
            refused += 1
    assert refused >= 30, f"only {refused} of 40 produce requests were refused"

    status, body = ready(broker.http_port)
    assert status == 503, (status, body)
    assert "No space left on device" in body, body
    m = helpers.scrape(broker.http_port)
    assert helpers.sample(m, "wal_writable") == 0
    failures = helpers.sample(m, "wal_write_failures_total")
    assert failures >= refused, (failures, refused)

    # Every refusal counts, for as long as the fault lasts.
    for _ in range(5):
        assert produce_one(producer, topic, value).error is not None
    after = helpers.sample(helpers.scrape(broker.http_port), "wal_write_failures_total")
    assert after >= failures + 5, (failures, after)

    # The log summarises: the first failure, then one line per 10 s at most.
    lines = [ln for ln in broker.log_text().splitlines() if "WAL write failed" in ln]
    assert 1 <= len(lines) <= 3, f"{len(lines)} log lines for {refused + 5} refused groups"

    # Room again: writes resume without a restart.
    filler.unlink()
    d = produce_one(producer, topic, value)
    assert d.error is None, d.error
    acked.append(d)
    assert ready(broker.http_port)[0] == 200
    assert helpers.sample(helpers.scrape(broker.http_port), "wal_writable") == 1

    consumed = helpers.consume_all(broker.bootstrap, topic, [0])
    helpers.check_against_acks(acked, consumed)
