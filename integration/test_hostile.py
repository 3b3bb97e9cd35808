"""Hostile and broken clients on raw sockets; the broker must shrug them off."""

from __future__ import annotations

import random
import socket
import struct
import time

import pytest
from confluent_kafka import Producer

import helpers

CLOSE_WAIT_S = 5.0


def connect(broker) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", broker.port), timeout=5)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def send_quietly(s: socket.socket, data: bytes) -> None:
    try:
        s.sendall(data)
    except (BrokenPipeError, ConnectionResetError):
        pass  # the broker may hang up before we finish: fine


def round_trip(broker, topic: str) -> None:
    """A normal client still produces and consumes."""
    producer = Producer(helpers.producer_config(broker.bootstrap))
    msgs = [(b"k%d" % i, b"after-hostile-%d" % i) for i in range(100)]
    acked = helpers.produce_all(producer, topic, msgs, timeout=30)
    assert not [d for d in acked if d.error], [d.error for d in acked if d.error][:3]
    consumed = helpers.consume_all(broker.bootstrap, topic, [0], timeout=30)
    helpers.check_against_acks(acked, consumed)
    assert len(consumed[0]) == 100


def test_unsupported_api_versions_version_gets_v0_answer(broker):
    with connect(broker) as s:
        # ApiVersions v9999 with a flexible (v2) request header and a v3-style body.
        body = b"\x06strata\x031.0\x00"
        s.sendall(helpers.request_frame(helpers.API_VERSIONS, 9999, 4242, body,
                                        flexible_header=True))
        frame = helpers.recv_frame(s)
    resp = helpers.parse_api_versions_v0(frame)
    assert resp.correlation_id == 4242
    assert resp.error_code == helpers.UNSUPPORTED_VERSION, resp
    assert resp.trailing == b"", f"unexpected bytes after the v0 body: {resp.trailing!r}"
    assert helpers.API_VERSIONS in resp.ranges, resp.ranges
    lo, hi = resp.ranges[helpers.API_VERSIONS]
    assert lo == 0 and 3 <= hi < 9999, (lo, hi)
    assert 0 in resp.ranges and 1 in resp.ranges, "Produce and Fetch not advertised"
    # The connection is still usable after that answer.
    assert broker.alive()


@pytest.mark.timeout(120)
def test_garbage_and_broken_frames_do_not_hurt(broker):
    idle = [connect(broker) for _ in range(20)]  # held open throughout
    rss_before = broker.rss_bytes()
    rng = random.Random(1234)

    # Random garbage.
    for _ in range(20):
        with connect(broker) as s:
            send_quietly(s, rng.randbytes(rng.randrange(1, 4096)))
            helpers.wait_closed(s, 0.2)

    # A length prefix of 2^31-1: must be refused before it is buffered.
    with connect(broker) as s:
        send_quietly(s, struct.pack(">i", 0x7FFFFFFF) + b"\x00" * 1000)
        assert helpers.wait_closed(s, CLOSE_WAIT_S), "2 GiB length prefix: connection not closed"

    # A negative length.
    with connect(broker) as s:
        send_quietly(s, struct.pack(">i", -5) + b"\x00" * 16)
        assert helpers.wait_closed(s, CLOSE_WAIT_S), "negative length: connection not closed"

    # Zero length.
    with connect(broker) as s:
        send_quietly(s, struct.pack(">i", 0))
        assert helpers.wait_closed(s, CLOSE_WAIT_S), "zero length frame: connection not closed"

    # A well-formed frame with an unknown API key.
    with connect(broker) as s:
        send_quietly(s, helpers.request_frame(999, 0, 1))
        assert helpers.wait_closed(s, CLOSE_WAIT_S), "unknown api key: connection not closed"

    # A known API at an unsupported version (not ApiVersions): closed.
    with connect(broker) as s:
        send_quietly(s, helpers.request_frame(3, 999, 1))
        assert helpers.wait_closed(s, CLOSE_WAIT_S), "Metadata v999: connection not closed"

    # A frame cut short, then the client goes away.
    for _ in range(5):
        s = connect(broker)
        full = helpers.request_frame(3, 9, 77, b"\x00\x00\x00\x01" + b"\x00" * 40)
        send_quietly(s, full[: len(full) // 2])
        s.close()

    # Known API keys with random bodies at every advertised version.
    ranges = helpers.api_versions(broker.port).ranges
    for _ in range(300):
        key = rng.choice(sorted(ranges))
        lo, hi = ranges[key]
        version = rng.randint(lo, hi)
        body = rng.randbytes(rng.randrange(0, 200))
        with connect(broker) as s:
            send_quietly(s, helpers.request_frame(key, version, rng.randrange(1 << 31), body,
                                                  flexible_header=rng.random() < 0.5))
            helpers.wait_closed(s, 0.05)

    # Slowloris: a header trickled byte by byte, abandoned.
    with connect(broker) as s:
        for b in helpers.request_frame(18, 3, 5)[:8]:
            send_quietly(s, bytes([b]))
            time.sleep(0.01)

    assert broker.alive(), f"broker died; log:\n{broker.log_text()[-3000:]}"
    # The idle connections did not stop anyone else, and a fresh raw request works.
    assert helpers.api_versions(broker.port).error_code == 0
    round_trip(broker, "after-hostile")
    rss_after = broker.rss_bytes()
    assert rss_after < rss_before + 512 * 1024 * 1024, (
        f"broker memory grew from {rss_before >> 20} MiB to {rss_after >> 20} MiB")
    # The idle connections are still open (or were closed politely), and the broker lives.
    for s in idle:
        s.close()
    assert broker.alive()


def test_many_requests_on_one_connection_keep_order(broker):
    """Pipelined ApiVersions requests come back in order with their ids."""
    with connect(broker) as s:
        s.sendall(b"".join(helpers.request_frame(18, 0, cid) for cid in range(50)))
        ids = [helpers.parse_api_versions_v0(helpers.recv_frame(s)).correlation_id
               for _ in range(50)]
    assert ids == list(range(50))
