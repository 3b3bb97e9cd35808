"""Prometheus's own checker accepts what /metrics serves: `promtool check
metrics` on a real scrape, taken after produce, consume, a consumer group
commit, a transaction, a request error and a refused frame, so every
documented family is served and the counters, gauges and histograms have
samples. Any problem promtool prints fails the test, lint warnings (a counter
without `_total`, a missing HELP, ...) as well as parse errors."""

from __future__ import annotations

import shutil
import subprocess
import time

import pytest
from confluent_kafka import Consumer, Producer

import helpers
from test_metrics import documented_metrics, metadata_v1, unknown_api

PROMTOOL = shutil.which("promtool")
TOPIC = "prom"
PARTITIONS = 2
COUNT = 200
# Group ids are free text: the label value needs escaping to stay parseable.
GROUP = 'prom group "q" \\ é'


@pytest.fixture(autouse=True)
def need_promtool():
    if PROMTOOL is None:
        pytest.fail(
            "promtool is not installed (apt-get install --no-install-recommends prometheus;"
            " integration/install.sh does)", pytrace=False)


def promtool_check(text: str) -> tuple[int, str]:
    """`promtool check metrics` on `text` (stdin): exit code and everything it printed."""
    proc = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True,
                          text=True, timeout=30)
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def drive_traffic(bootstrap: str, port: int) -> None:
    """Produce, consume in a group and commit, one committed transaction, a
    request answered with an error and a refused frame."""
    metadata_v1(port, "no-such-topic")  # UNKNOWN_TOPIC_OR_PARTITION
    unknown_api(port)  # refused: the connection is closed
    helpers.create_topic(bootstrap, TOPIC, PARTITIONS)
    producer = Producer(helpers.producer_config(bootstrap))
    acked = helpers.produce_all(producer, TOPIC,
                                [(b"k%d" % i, b"v%d" % i) for i in range(COUNT)])
    assert all(d.error is None for d in acked), [d.error for d in acked if d.error][:3]

    consumer = Consumer(helpers.consumer_config(
        bootstrap, **{"group.id": GROUP, "enable.auto.offset.store": True}))
    try:
        consumer.subscribe([TOPIC])
        got = 0
        deadline = time.monotonic() + 30
        while got < COUNT:
            assert time.monotonic() < deadline, f"consumed {got} of {COUNT}"
            for m in consumer.consume(num_messages=1000, timeout=0.5):
                assert not m.error(), m.error()
                got += 1
        consumer.commit(asynchronous=False)
    finally:
        consumer.close()

    txn = Producer(helpers.producer_config(bootstrap, **{
        "transactional.id": "prom-txn", "enable.idempotence": True}))
    txn.init_transactions(15)
    txn.begin_transaction()
    for i in range(10):
        txn.produce(TOPIC, key=b"t%d" % i, value=b"txn")
    txn.commit_transaction(15)


def scrape_with_histograms(http_port: int, timeout: float = 10.0) -> str:
    """A scrape in which the produce and WAL histograms have samples (the
    broker folds samples into buckets every second)."""
    deadline = time.monotonic() + timeout
    while True:
        text = helpers.metrics_text(http_port)
        if ('\nkafka_request_duration_seconds_count{api="Produce"} ' in text
                and "\nwal_fsync_duration_seconds_count " in text):
            return text
        assert time.monotonic() < deadline, f"histograms never got samples:\n{text}"
        time.sleep(0.2)


@pytest.mark.timeout(120)
def test_promtool_accepts_a_scrape_after_traffic(broker_factory):
    broker = broker_factory(auto_create_topics=False)
    # A fresh broker: families without samples yet.
    code, output = promtool_check(helpers.metrics_text(broker.http_port))
    assert code == 0 and output == "", (
        f"promtool check metrics on a fresh broker exited {code} and reported:\n{output}")

    drive_traffic(broker.bootstrap, broker.port)
    text = scrape_with_histograms(broker.http_port)

    # The scrape is the one a user's Prometheus would get after this traffic:
    # every documented family, committed offsets, and samples of every kind.
    families = dict(line.split(" ")[2:4] for line in text.splitlines()
                    if line.startswith("# TYPE "))
    missing = documented_metrics() - set(families)
    assert not missing, f"documented families not in the scrape promtool checks: {missing}"
    kinds = set(families.values())
    assert {"counter", "gauge", "histogram"} <= kinds, kinds
    metrics = helpers.scrape(broker.http_port)
    committed = sum(helpers.sample(metrics, "consumer_group_committed_offset",
                                   group=GROUP, topic=TOPIC, partition=p)
                    for p in range(PARTITIONS))
    assert committed == COUNT, f"group {GROUP} committed {committed}, expected {COUNT}"

    code, output = promtool_check(text)
    assert code == 0 and output == "", (
        f"promtool check metrics exited {code} and reported:\n{output}")


def test_promtool_check_reports_a_bad_metric():
    """The check above can fail: promtool flags a counter without `_total`."""
    bad = "# HELP strata_things Things.\n# TYPE strata_things counter\nstrata_things 1\n"
    code, output = promtool_check(bad)
    assert "counter metrics should have \"_total\" suffix" in output, (code, output)
