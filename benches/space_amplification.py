#!/usr/bin/env python3
"""Space amplification of the shared WAL in steady state: three topics with
very different retention written at the same time, at one steady rate.

    CARGO_TARGET_DIR=... STRATA_BIN=... python benches/space_amplification.py [--seconds 540]

Topics `secs` (retention.ms 10 s), `mins` (2 min) and `forever` (-1), 4
partitions each, each written by its own paced strata-bench producer at
--rate msg/s of 1 KiB records for --seconds. Time is scaled down so that a
run takes under ten minutes (10 s, 2 min and forever stand for, e.g., an
hour, half a day and forever); the broker's retention check interval is
scaled with it (--log-retention-check-interval-ms 1000 instead of Kafka's
5 minutes). WAL compaction runs with its defaults (live below 50%, 100 MiB
dead, 32 MiB/s, checked every 30 s) unless --broker-args says otherwise.

Every --every seconds: wal_bytes (the WAL files on disk) and live = the sum
of partition_size_bytes over all partitions (record batch bytes the
partitions still hold), per topic too, plus compaction and retention
counters. The ratio wal_bytes / live is the space amplification; the
difference wal_bytes - live is the dead space held. --topics changes the
mix (e.g. `--topics secs=10000,mins=120000`: no topic kept forever).
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lifecycle_common import (MB, Broker, create_topics, dir_bytes, finish_bench, fs_type, log,  # noqa: E402
                              machine, metric, metric_sum, start_bench)

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=int, default=540, help="how long the producers write (default 540)")
    ap.add_argument("--rate", type=int, default=5000, help="msg/s per topic (default 5000: ~5 MB/s each)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--topics", default="secs=10000,mins=120000,forever=-1",
                    help="name=retention.ms,... (default secs=10000,mins=120000,forever=-1)")
    ap.add_argument("--every", type=float, default=10.0, help="sampling interval, seconds")
    ap.add_argument("--steady-from", type=float, default=240.0,
                    help="samples from this second on count as steady state (default 240: twice the 2 min retention)")
    ap.add_argument("--broker-args", default="--log-retention-check-interval-ms 1000")
    ap.add_argument("--work", default="/tmp/strata-space-amp")
    args = ap.parse_args()
    topics = {n: int(ms) for n, ms in (t.split("=") for t in args.topics.split(","))}
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    facts = machine()
    facts["data_dir_fs"] = fs_type(work)
    log(f"machine: {facts}")
    b = Broker(work / "data", args.broker_args.split())
    rows = []
    try:
        b.start()
        create_topics(b.bootstrap, {t: (args.partitions, {"retention.ms": str(ms)}) for t, ms in topics.items()})
        n = args.rate * args.seconds
        procs = [start_bench(b, f"write-{t}", "produce", "--topic", t, "--messages", str(n), "--size", str(args.size),
                             "--rate", str(args.rate), "--max-seconds", str(args.seconds + 60))
                 for t in topics]
        t0 = time.monotonic()
        while any(p.poll() is None for p in procs):
            m = b.scrape()
            row = {
                "t": round(time.monotonic() - t0, 1),
                "wal_bytes": metric(m, "wal_bytes"),
                "wal_dir_bytes": dir_bytes(b.data_dir / "wal"),
                "live": metric_sum(m, "partition_size_bytes"),
                **{f"live_{t}": metric_sum(m, "partition_size_bytes", topic=t) for t in topics},
                **{k: metric(m, k) for k in ("wal_segments", "wal_live_ratio", "wal_compaction_runs_total",
                                             "wal_compaction_bytes_copied_total",
                                             "wal_compaction_bytes_reclaimed_total", "wal_appended_bytes_total",
                                             "retention_deleted_bytes_total", "wal_segments_removed_total",
                                             "process_resident_memory_bytes")},
            }
            row["ratio"] = row["wal_bytes"] / row["live"] if row["live"] else None
            rows.append(row)
            log(f"t={row['t']:.0f}s wal {row['wal_bytes'] / MB:,.0f} MB live {row['live'] / MB:,.0f} MB"
                f" ratio {row['ratio'] or 0:.2f} segments {row['wal_segments']:.0f}"
                f" compaction runs {row['wal_compaction_runs_total']:.0f}")
            time.sleep(max(0.0, args.every - (time.monotonic() - t0 - row["t"])))
        writes = [finish_bench(p) for p in procs]
        b.stop()
    finally:
        b.kill()
    json.dump({"machine": facts, "args": vars(args), "rows": rows, "writes": writes},
              open(work / "space_amplification.json", "w"), indent=1)

    print()
    print(f"| s | wal_bytes MB | live MB ({' / '.join(topics)}) | wal / live | dead MB (wal - live) "
          "| WAL segments | compaction runs | copied MB | wal_live_ratio |")
    print("|---|---|---|---|---|---|---|---|---|")
    for i, r in enumerate(rows):
        if i % 3 and i != len(rows) - 1:
            continue
        per_topic = " / ".join(f"{r[f'live_{t}'] / MB:,.0f}" for t in topics)
        print(f"| {r['t']:.0f} | {r['wal_bytes'] / MB:,.0f} | {r['live'] / MB:,.0f} ({per_topic}) "
              f"| {r['ratio'] or 0:.2f} | {(r['wal_bytes'] - r['live']) / MB:,.0f} | {r['wal_segments']:.0f} "
              f"| {r['wal_compaction_runs_total']:.0f} | {r['wal_compaction_bytes_copied_total'] / MB:,.0f} "
              f"| {r['wal_live_ratio']:.2f} |")
    steady = [r for r in rows if r["t"] >= args.steady_from and r["ratio"]]
    if steady:
        ratios = [r["ratio"] for r in steady]
        dead = [(r["wal_bytes"] - r["live"]) / MB for r in steady]
        print()
        print(f"steady state (t >= {args.steady_from:.0f} s, {len(steady)} samples): wal/live"
              f" median {statistics.median(ratios):.2f}, max {max(ratios):.2f}, min {min(ratios):.2f};"
              f" dead MB median {statistics.median(dead):,.0f}, max {max(dead):,.0f}")
    last = rows[-1]
    print(f"written: {last['wal_appended_bytes_total'] / MB:,.0f} MB; compaction copied"
          f" {last['wal_compaction_bytes_copied_total'] / MB:,.0f} MB"
          f" (write amplification {1 + last['wal_compaction_bytes_copied_total'] / last['wal_appended_bytes_total']:.2f});"
          f" produce rates: " + ", ".join(f"{w['topic']} {w['produce']['mb_per_s']:.2f} MB/s, errors {w['produce']['errors']}"
                                          for w in writes))
    shutil.rmtree(work / "data", ignore_errors=True)


if __name__ == "__main__":
    main()
