"""Requests at the versions Kafka 4 removed (KIP-896) — here ListOffsets v0
and Produce v2, as old sarama, Burrow and kafka-go defaults send them —
close their connection, and the broker's log says why at WARN: client id,
peer address, API, version and the lowest version served, at most once a
minute per API and version. Other clients are served throughout."""

from __future__ import annotations

import re
import socket
import struct
import time

import pytest
from confluent_kafka import Producer

import helpers

LIST_OFFSETS = 2
PRODUCE = 0
REFUSAL = "refused a request at an API version this broker does not serve"


def string(text: str) -> bytes:
    raw = text.encode()
    return struct.pack(">h", len(raw)) + raw


def list_offsets_v0() -> bytes:
    """replica id, [topic, [partition, timestamp, max offsets]]."""
    return (struct.pack(">ii", -1, 1) + string("t") + struct.pack(">i", 1)
            + struct.pack(">iqi", 0, -1, 1))


def produce_v2() -> bytes:
    """acks, timeout, [topic, [partition, message set]] (an empty set)."""
    return (struct.pack(">hii", 1, 1000, 1) + string("t") + struct.pack(">i", 1)
            + struct.pack(">ii", 0, 0))


def send_refused(broker, api_key: int, version: int, body: bytes, client_id: str) -> int:
    """Sends one request on a fresh connection, checks it is closed, and
    returns the client's local port."""
    with socket.create_connection(("127.0.0.1", broker.port), timeout=5) as s:
        port = s.getsockname()[1]
        s.sendall(helpers.request_frame(api_key, version, 1, body, client_id=client_id))
        assert helpers.wait_closed(s, 5.0), f"api {api_key} v{version}: connection not closed"
    return port


def refusals(broker) -> list[str]:
    return [line for line in broker.log_text().splitlines() if REFUSAL in line]


def wait_for_refusals(broker, count: int) -> list[str]:
    deadline = time.monotonic() + 10
    while len(refusals(broker)) < count:
        assert time.monotonic() < deadline, f"expected {count} refusal lines:\n{refusals(broker)}"
        time.sleep(0.05)
    return refusals(broker)


def field(line: str, name: str) -> str:
    match = re.search(rf'\b{name}=("[^"]*"|\S+)', line)
    assert match, f"no {name} in {line}"
    return match.group(1).strip('"')


@pytest.mark.timeout(60)
def test_removed_versions_close_the_connection_with_a_warning(broker):
    port = send_refused(broker, LIST_OFFSETS, 0, list_offsets_v0(), "old-burrow")
    [line] = wait_for_refusals(broker, 1)
    assert " WARN " in f" {line} " or "WARN" in line.split()[:3], line
    assert field(line, "client_id") == "old-burrow"
    assert field(line, "peer") == f"127.0.0.1:{port}"
    assert (field(line, "api"), field(line, "version")) == ("ListOffsets", "0")
    served = helpers.api_versions(broker.port).ranges[LIST_OFFSETS]
    assert field(line, "lowest_served") == str(served[0]) == "1"
    assert "KIP-896" in line

    # Another API and version gets its own line at once.
    port = send_refused(broker, PRODUCE, 2, produce_v2(), "old-sarama")
    lines = wait_for_refusals(broker, 2)
    assert (field(lines[1], "api"), field(lines[1], "version")) == ("Produce", "2")
    assert field(lines[1], "client_id") == "old-sarama"
    assert field(lines[1], "peer") == f"127.0.0.1:{port}"
    assert field(lines[1], "lowest_served") == "3"

    # The same refusal again within the minute: closed, but not logged again.
    for _ in range(5):
        send_refused(broker, LIST_OFFSETS, 0, list_offsets_v0(), "old-burrow")
    time.sleep(0.5)
    assert len(refusals(broker)) == 2, refusals(broker)

    # The broker serves everyone else meanwhile.
    assert broker.alive()
    assert helpers.api_versions(broker.port).error_code == 0
    p = Producer(helpers.producer_config(broker.bootstrap))
    acked = helpers.produce_all(p, "after-refusals", [(b"k", b"v")] * 10)
    assert all(d.error is None for d in acked)
    got = helpers.consume_all(broker.bootstrap, "after-refusals", [0])
    assert [v for _, _, v, _ in got[0]] == [b"v"] * 10
