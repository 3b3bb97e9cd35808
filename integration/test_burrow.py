"""Burrow (LinkedIn's consumer-lag monitor; Debian's `burrow` 1.2.1, with
the ZooKeeper it keeps its own state in, Debian's `zookeeper`) reads
`__consumer_offsets` through Strata and decodes the offsets a group
committed through Strata: the failure the old record layout caused ("failed
to decode ... key version 256", no group at all) is gone.

This Burrow cannot report lag against Strata, nor against Kafka 4: its
cluster module asks the partitions' end offsets with ListOffsets v0 whatever
its `kafka-version` says (Burrow 1.9.4 and later do not), a version Kafka 4
removed (KIP-896). Strata refuses it and says so in its log, naming
Burrow's client id — which the test checks too. (Before 1.3.0 Burrow also
cannot read GroupMetadataValue v3, which Kafka writes since 2.3 and Strata
writes too: it warns and skips those records, as it does against Kafka.)
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
from confluent_kafka import Consumer, Producer, TopicPartition

import helpers
from conftest import free_port

BURROW = shutil.which("Burrow")
JAVA = shutil.which("java")
ZOOKEEPER_JAR = Path("/usr/share/java/zookeeper.jar")


@pytest.fixture(autouse=True)
def need_burrow():
    if BURROW is None or JAVA is None or not ZOOKEEPER_JAR.is_file():
        pytest.fail(
            "Burrow and ZooKeeper are not installed (apt-get install --no-install-recommends"
            " burrow zookeeper; integration/install.sh does)", pytrace=False)


def start(cmd: list[str], log: Path, cwd: Path) -> subprocess.Popen:
    with open(log, "wb") as out:
        return subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=out,
                                stderr=subprocess.STDOUT, cwd=cwd)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def zookeeper_serving(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
            s.sendall(b"srvr")
            answer = b""
            while chunk := s.recv(4096):
                answer += chunk
    except OSError:
        return False
    return b"Mode: standalone" in answer


@pytest.fixture
def zookeeper(tmp_path):
    """A standalone ZooKeeper on a loopback port (admin server off)."""
    workdir = tmp_path / "zookeeper"
    (workdir / "data").mkdir(parents=True)
    port = free_port()
    config = workdir / "zoo.cfg"
    config.write_text(
        f"tickTime=2000\ndataDir={workdir / 'data'}\nclientPort={port}\n"
        "clientPortAddress=127.0.0.1\nadmin.enableServer=false\n")
    proc = start([JAVA, "-cp", f"/etc/zookeeper/conf:{ZOOKEEPER_JAR}",
                  "org.apache.zookeeper.server.ZooKeeperServerMain", str(config)],
                 workdir / "zookeeper.log", workdir)
    # Ready once it answers `srvr` (the one four-letter command ZooKeeper
    # allows by default): its port opens before it serves sessions.
    deadline = time.monotonic() + 30
    while not zookeeper_serving(port):
        assert proc.poll() is None, (workdir / "zookeeper.log").read_text()
        assert time.monotonic() < deadline, "ZooKeeper did not serve within 30 s"
        time.sleep(0.2)
    yield f"127.0.0.1:{port}"
    stop(proc)


class Burrow:
    """One Burrow process watching one Strata broker."""

    def __init__(self, workdir: Path, zookeeper: str, bootstrap: str, kafka_version: str,
                 client_id: str):
        workdir.mkdir(parents=True)
        self.workdir = workdir
        # Its HTTP API, unused here, on a loopback port rather than its :8000.
        self.http = f"127.0.0.1:{free_port()}"
        (workdir / "burrow.toml").write_text(f"""
[general]
pidfile="{workdir / 'burrow.pid'}"

[logging]
filename="{workdir / 'burrow.log'}"
level="debug"

[zookeeper]
servers=["{zookeeper}"]
timeout=6
root-path="/burrow"

[client-profile.strata]
client-id="{client_id}"
kafka-version="{kafka_version}"

[cluster.strata]
class-name="kafka"
servers=["{bootstrap}"]
client-profile="strata"
topic-refresh=2
offset-refresh=1

[consumer.strata]
class-name="kafka"
cluster="strata"
servers=["{bootstrap}"]
client-profile="strata"
offsets-topic="__consumer_offsets"
start-latest=false

[httpserver.default]
address="{self.http}"

[storage.default]
class-name="inmemory"
workers=2
intervals=10
expire-group=604800
min-distance=1
""")
        self.proc = start([BURROW, "--config-dir", str(workdir)], workdir / "stdout.log", workdir)

    def log(self) -> str:
        return "".join(p.read_text(errors="replace")
                       for p in (self.workdir / "burrow.log", self.workdir / "stdout.log")
                       if p.exists())

    def stop(self) -> None:
        stop(self.proc)


def wait_for(what: str, check, burrow: Burrow, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        got = check()
        if got:
            return got
        assert burrow.proc.poll() is None, f"Burrow exited; its log:\n{burrow.log()[-4000:]}"
        assert time.monotonic() < deadline, (
            f"not within {timeout}s: {what}; Burrow's log:\n{burrow.log()[-4000:]}")
        time.sleep(0.5)


@pytest.mark.timeout(180)
def test_burrow_decodes_the_offsets_committed_through_strata(broker, zookeeper, tmp_path):
    bootstrap = broker.bootstrap
    helpers.create_topic(bootstrap, "watched", 2)
    p = Producer(helpers.producer_config(bootstrap))
    acked = helpers.produce_all(p, "watched", [(None, b"v")] * 30, partition=0)
    acked += helpers.produce_all(p, "watched", [(None, b"v")] * 20, partition=1)
    assert all(d.error is None for d in acked)

    burrow = Burrow(tmp_path / "burrow", zookeeper, bootstrap, "2.0.0", "burrow-it")
    try:
        c = Consumer(helpers.consumer_config(bootstrap, **{
            "group.id": "lagging", "client.id": "lagging-client"}))
        c.subscribe(["watched"])
        deadline = time.monotonic() + 30
        while not c.assignment():
            assert time.monotonic() < deadline, "no assignment"
            c.consume(num_messages=1, timeout=0.5)
        c.commit(offsets=[TopicPartition("watched", 0, 18),
                          TopicPartition("watched", 1, 3)], asynchronous=False)
        c.commit(offsets=[TopicPartition("watched", 0, 20)], asynchronous=False)
        c.close()

        def decoded():
            seen = {}
            for line in burrow.log().splitlines():
                if '"msg":"consumer offset"' not in line:
                    continue
                entry = json.loads(line)
                key = (entry["group"], entry["topic"], entry["partition"])
                seen.setdefault(key, []).append(entry["offset"])
            wanted = {("lagging", "watched", 0): [18, 20], ("lagging", "watched", 1): [3]}
            return seen == wanted and seen
        wait_for("Burrow decoding the committed offsets", decoded, burrow)

        def refused():
            return [line for line in broker.log_text().splitlines()
                    if "refused a request at an API version" in line
                    and 'client_id="burrow-it"' in line]
        [line, *_] = wait_for("the WARN for Burrow's ListOffsets v0", refused, burrow)
        assert "api=ListOffsets version=0 lowest_served=1" in line, line
    finally:
        burrow.stop()
    failures = [json.loads(line) for line in burrow.log().splitlines()
                if '"msg":"failed to decode"' in line]
    # Only the group records Burrow 1.2.1 does not know (v3, as Kafka >= 2.3
    # writes them); nothing of the offsets, no key it cannot read.
    assert failures, "Burrow saw no group record"
    assert all((f["message_type"], f["reason"], f["version"]) == ("metadata", "value version", 3)
               for f in failures), failures
    assert broker.alive()
    assert helpers.api_versions(broker.port).error_code == 0
