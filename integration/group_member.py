"""A consumer group member in its own process, for tests that kill or restart one.

Usage: group_member.py BOOTSTRAP TOPIC GROUP STRATEGY INSTANCE_ID|- SECONDS

Prints one JSON object per line, flushed at once:
  {"event": "assign", "partitions": [...]}      incremental or full, as librdkafka reports
  {"event": "revoke", "partitions": [...]}
  {"event": "msg", "partition": p, "offset": o, "value": "..."}
Commits each consumed message's offset synchronously, so a successor starts after it.
"""

import json
import sys
import time

from confluent_kafka import Consumer


def emit(**kw):
    sys.stdout.write(json.dumps(kw) + "\n")
    sys.stdout.flush()


def main():
    bootstrap, topic, group, strategy, instance, seconds = sys.argv[1:7]
    conf = {
        "bootstrap.servers": bootstrap,
        "broker.address.family": "v4",
        "group.id": group,
        "partition.assignment.strategy": strategy,
        "session.timeout.ms": 6000,
        "heartbeat.interval.ms": 500,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 100,
    }
    if instance != "-":
        conf["group.instance.id"] = instance
    c = Consumer(conf)
    c.subscribe(
        [topic],
        on_assign=lambda _c, ps: emit(event="assign", partitions=sorted(p.partition for p in ps)),
        on_revoke=lambda _c, ps: emit(event="revoke", partitions=sorted(p.partition for p in ps)),
    )
    deadline = time.monotonic() + float(seconds)
    while time.monotonic() < deadline:
        m = c.poll(0.1)
        if m is None or m.error():
            continue
        emit(event="msg", partition=m.partition(), offset=m.offset(), value=m.value().decode())
        c.commit(message=m, asynchronous=False)
    c.close()


if __name__ == "__main__":
    main()
