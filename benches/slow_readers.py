#!/usr/bin/env python3
"""Broker RSS while ten consumers ask for 50 MB each and never read their
answers: the cost the fetch memory budget bounds.

    STRATA_BIN=target/release/strata .venv/bin/python benches/slow_readers.py [strata serve flags]

e.g. `--fetch-memory-bytes 8388608`. Writes 30 MB to one partition (the tail
cache off, so answers are read from disk into fresh memory), opens ten
connections with a 4 KiB receive buffer that each send one Fetch for 50 MB,
and prints the broker's RSS before and 3 s after.
"""

import socket
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integration"))

import conftest  # noqa: E402
import helpers  # noqa: E402
from confluent_kafka import Producer  # noqa: E402
from test_fetch_limits import fetch_v4, rss_bytes  # noqa: E402


def main() -> None:
    work = Path(tempfile.mkdtemp(prefix="strata-slow-readers."))
    broker = conftest.Broker(work, extra_args=("--wal-cache-bytes", "0", *sys.argv[1:]))
    broker.start()
    try:
        helpers.create_topic(broker.bootstrap, "slow", 1)
        producer = Producer(helpers.producer_config(broker.bootstrap, **{"linger.ms": 20}))
        helpers.produce_all(producer, "slow", [(None, b"v" * 100_000)] * 300)
        time.sleep(1)
        idle = rss_bytes(broker.proc.pid)
        readers = []
        for i in range(10):
            s = socket.socket()
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            s.connect(("127.0.0.1", broker.port))
            s.sendall(fetch_v4(i, "slow", 0, 0, 50 * 1024 * 1024))
            readers.append(s)
        time.sleep(3)
        busy = rss_bytes(broker.proc.pid)
        print(f"idle RSS {idle / 1e6:.0f} MB; with 10 slow readers {busy / 1e6:.0f} MB")
        for s in readers:
            s.close()
    finally:
        broker.cleanup()


if __name__ == "__main__":
    main()
