"""kcat (librdkafka's command-line client): metadata, produce, consume."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

KCAT = shutil.which("kcat") or shutil.which("kafkacat")


@pytest.fixture(autouse=True)
def need_kcat():
    if KCAT is None:
        pytest.fail("kcat is not installed (apt-get install kcat; .ci/run does)", pytrace=False)


def kcat(*args: str, stdin: str | None = None, timeout: float = 30.0) -> str:
    proc = subprocess.run([KCAT, *args], input=stdin, capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, (
        f"kcat {' '.join(args)} exited {proc.returncode}\nstdout:\n{proc.stdout}\n"
        f"stderr:\n{proc.stderr}")
    return proc.stdout


def consume(broker, topic: str) -> list[tuple[int, int, str, str]]:
    out = kcat("-C", "-b", broker.bootstrap, "-t", topic, "-o", "beginning", "-e", "-q",
               "-f", "%p %o %k %s\\n")
    rows = []
    for line in out.splitlines():
        if not line.strip():
            continue
        p, o, k, s = line.split(" ", 3)
        rows.append((int(p), int(o), k, s))
    return rows


@pytest.mark.timeout(60)
def test_metadata_lists_broker_and_topic(broker):
    kcat("-P", "-b", broker.bootstrap, "-t", "kcat-meta", stdin="one\n")
    out = kcat("-L", "-b", broker.bootstrap)
    assert re.search(r"1 brokers:\s*\n\s*broker \d+ at 127\.0\.0\.1:%d" % broker.port, out), out
    assert re.search(r'topic "kcat-meta" with 1 partitions:', out), out
    out = kcat("-L", "-b", broker.bootstrap, "-t", "kcat-meta")
    assert re.search(r"partition 0, leader \d+", out), out


@pytest.mark.timeout(60)
def test_produce_and_consume_lines(broker):
    lines = [f"line number {i}" for i in range(50)]
    kcat("-P", "-b", broker.bootstrap, "-t", "kcat-plain", stdin="\n".join(lines) + "\n")
    rows = consume(broker, "kcat-plain")
    assert [(p, o) for p, o, _, _ in rows] == [(0, i) for i in range(50)], rows[:5]
    assert [s for _, _, _, s in rows] == lines
    assert all(k == "" for _, _, k, _ in rows)


@pytest.mark.timeout(60)
def test_produce_and_consume_keyed(broker):
    pairs = [(f"user{i % 5}", f"event {i}") for i in range(40)]
    stdin = "".join(f"{k}:{v}\n" for k, v in pairs)
    kcat("-P", "-b", broker.bootstrap, "-t", "kcat-keyed", "-K:", stdin=stdin)
    rows = consume(broker, "kcat-keyed")
    assert [o for _, o, _, _ in rows] == list(range(40))
    assert [(k, s) for _, _, k, s in rows] == pairs

    # A second batch continues at the next offset.
    kcat("-P", "-b", broker.bootstrap, "-t", "kcat-keyed", "-K:", stdin="late:arrival\n")
    rows = consume(broker, "kcat-keyed")
    assert rows[-1] == (0, 40, "late", "arrival"), rows[-3:]

    # -o -1: only the last message.
    out = kcat("-C", "-b", broker.bootstrap, "-t", "kcat-keyed", "-o", "-1", "-e", "-q",
               "-f", "%o %k %s\\n")
    assert out.split("\n")[0] == "40 late arrival", out
