"""A seconds-long run of benches/run.sh --smoke, so the benchmark tool and
script never rot: every scenario runs against the real broker, every message
is acknowledged and read back, and the report is written. No timing is
asserted."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from conftest import BINARY, REPO


@pytest.mark.timeout(300)
def test_benchmark_smoke_run(tmp_path):
    bench = BINARY.parent / "strata-bench"
    assert bench.is_file(), f"{bench} missing: cargo build --release --workspace builds it"
    env = dict(os.environ, STRATA_SKIP_BUILD="1", BENCH_DIR=str(tmp_path),
               OUT=str(tmp_path / "benchmarks.md"),
               CARGO_TARGET_DIR=str(BINARY.parent.parent))
    done = subprocess.run([str(REPO / "benches" / "run.sh"), "--smoke"], env=env,
                          capture_output=True, text=True, timeout=280)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    results = tmp_path / "results"
    runs = {p.stem: json.loads(p.read_text()) for p in results.glob("*.json")}
    expected = {"limits", "limits-after", "s1-produce", "s1-consume", "s1-consume-2", "s1-produce-10k", "s1-consume-10k", "s2-p1", "s2-p4", "s3-half-peak",
                "s3-single", "s4-produce", "s5-burst", "s6-fill", "s6-recovery"}
    assert expected <= set(runs), sorted(runs)
    for name, run in runs.items():
        if "produce" in run:
            p = run["produce"]
            assert p["errors"] == 0 and p["messages"] == p["sent"] > 0, (name, p)
            assert run["broker"]["cpu_seconds"] >= 0, name
        if "consume" in run:
            assert run["consume"]["messages"] > 0, name
    assert runs["s1-consume"]["consume"]["messages"] == runs["s1-produce"]["produce"]["messages"]
    assert runs["s5-burst"]["consume"]["messages"] == runs["s5-burst"]["produce"]["messages"]
    assert runs["s3-half-peak"]["e2e_latency"]["samples"] > 0
    assert runs["s6-recovery"]["wal_bytes"] > 4 * 1024 * 1024
    limits = runs["limits"]["limits"]
    assert limits["disk_write_fdatasync_mb_s"] > 0 and limits["loopback_tcp_mb_s"] > 0

    report = (tmp_path / "benchmarks.md").read_text()
    for heading in ("## Machine", "## Targets", "## Every run", "## Commands"):
        assert heading in report, heading
