#!/usr/bin/env python3
"""Memory and startup with a lot of retained data.

    CARGO_TARGET_DIR=... STRATA_BIN=... python benches/retained_memory.py [--fill-gb 20] [--small-batches 1000000]

1. A fresh broker (default settings) on an empty data dir: idle RSS.
2. Fill: topic `big` (4 partitions), --fill-gb of 1 KiB records from
   strata-bench produce at full speed (librdkafka's batching: linger.ms 5,
   batch.size 1 MB), in chunks.
3. Restart --restarts times (SIGTERM, start, time until GET /ready = 200),
   alternating a warm start (the data dir's files in the page cache as
   the fill left them) and a cold one (the data dir's files evicted from
   the page cache first with posix_fadvise(DONTNEED): only this data dir,
   nothing else on the machine); RSS right at /ready and 5 s later, and
   the batches loaded (from the `recovery summary` log line).
4. Calibration of the per-batch cost: --small-batches more records written
   one per batch (-X batch.num.messages=1) to topic `small`, then the same
   restarts. (RSS difference) / (batch difference) between 3 and 4 is the
   memory one stored batch costs; the same for startup time.
5. The extrapolation to 100 GB retained: per batch (at the batch size
   the fill's producer made and at smaller ones), and per WAL segment held
   (partitions keep one summary per sealed segment: the most RSS above
   idle over the segments, times the 1,490 segments of 100 GB).

The data dir is deleted at the end (--keep to keep it). The fill refuses
to leave less than --min-free-gb free on the data dir's file system.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lifecycle_common import (MB, Broker, create_topics, dir_bytes, disk_free, fs_type, log,  # noqa: E402
                              machine, metric, metric_sum, run_bench)

GB = 1_000_000_000


def evict(path: Path) -> None:
    """Drops the page-cache pages of every file under `path` (clean pages only)."""
    for root, _, files in os.walk(path):
        for f in files:
            try:
                fd = os.open(os.path.join(root, f), os.O_RDONLY)
            except OSError:
                continue
            try:
                os.fdatasync(fd)
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def recovery_summary(text: str) -> dict:
    lines = [ln for ln in text.splitlines() if "recovery summary" in ln]
    if not lines:
        return {}
    return {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)\b", lines[-1])}


def restarts(b: Broker, n: int, stage: str) -> list[dict]:
    out = []
    for i in range(n):
        cold = i % 2 == 1
        t = time.monotonic()
        b.stop()
        stop_s = time.monotonic() - t
        if cold:
            evict(b.data_dir)
        log_before = len(b.log_text())
        ready = b.start()
        rss_ready = b.rss_bytes()
        summary = recovery_summary(b.log_text()[log_before:])
        time.sleep(5)
        rss_5s = b.rss_bytes()
        m = b.scrape()
        r = {"stage": stage, "start": "cold" if cold else "warm", "stop_s": stop_s, "ready_s": ready,
             "rss_ready": rss_ready, "rss_5s": rss_5s,
             "batches": summary.get("entries_already_sealed", 0) + summary.get("entries_recovered", 0),
             "recovery_millis": summary.get("millis"), "wal_segments": summary.get("wal_segments"),
             "wal_bytes": metric(m, "wal_bytes"), "live": metric_sum(m, "partition_size_bytes")}
        log(f"  {stage} restart {i + 1} ({r['start']}): ready in {ready:.3f} s, RSS {rss_ready / MB:.0f} MB at ready,"
            f" {rss_5s / MB:.0f} MB 5 s later; {r['batches']:,} batches, {r['wal_segments']} segments")
        out.append(r)
    return out


def fill(b: Broker, topic: str, messages: int, chunk: int, size: int, extra: list[str]) -> list[dict]:
    runs = []
    done = 0
    while done < messages:
        n = min(chunk, messages - done)
        r = run_bench(b, f"fill-{topic}-{done // chunk}", "produce", "--topic", topic, "--messages", str(n),
                      "--size", str(size), "--max-seconds", "1800", *extra)
        assert r["produce"]["errors"] == 0, r
        done += n
        runs.append(r)
        log(f"  {topic}: {done:,} / {messages:,} messages, {r['produce']['mb_per_s']:.0f} MB/s;"
            f" disk free {disk_free(b.data_dir) / GB:.1f} GB")
    return runs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fill-gb", type=float, default=20.0)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--chunk", type=int, default=5_000_000, help="messages per strata-bench run")
    ap.add_argument("--small-batches", type=int, default=1_000_000,
                    help="records written one per batch for the per-batch calibration (0: skip)")
    ap.add_argument("--restarts", type=int, default=4)
    ap.add_argument("--min-free-gb", type=float, default=20.0)
    ap.add_argument("--work", default="/tmp/strata-retained")
    ap.add_argument("--keep", action="store_true")
    args = ap.parse_args()
    work = Path(args.work)
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    free = disk_free(work)
    need = args.fill_gb * GB * 1.05 + args.small_batches * (args.size + 200) + args.min_free_gb * GB
    if free < need:
        sys.exit(f"{free / GB:.0f} GB free: not enough for {args.fill_gb} GB and {args.min_free_gb} GB left free")
    facts = machine()
    facts["data_dir_fs"] = fs_type(work)
    facts["disk_free_gb_before"] = round(free / GB, 1)
    log(f"machine: {facts}")
    b = Broker(work / "data")
    res: dict = {"machine": facts, "args": vars(args)}
    try:
        res["first_ready_s"] = b.start()
        time.sleep(2)
        res["idle_rss"] = b.rss_bytes()
        log(f"idle RSS {res['idle_rss'] / MB:.1f} MB (empty data dir)")
        topics = {"big": (4, {})}
        if args.small_batches:
            topics["small"] = (4, {})
        create_topics(b.bootstrap, topics)
        messages = int(args.fill_gb * GB / args.size)
        t = time.monotonic()
        res["fill"] = fill(b, "big", messages, args.chunk, args.size, [])
        res["fill_seconds"] = time.monotonic() - t
        m = b.scrape()
        res["after_fill"] = {"rss": b.rss_bytes(), "entries": metric(m, "wal_appended_entries_total"),
                             "appended_bytes": metric(m, "wal_appended_bytes_total"),
                             "wal_bytes": metric(m, "wal_bytes"), "live": metric_sum(m, "partition_size_bytes"),
                             "data_dir_bytes": dir_bytes(b.data_dir)}
        log(f"filled {res['after_fill']['wal_bytes'] / GB:.2f} GB in {res['fill_seconds']:.0f} s,"
            f" {res['after_fill']['entries']:,.0f} batches; RSS {res['after_fill']['rss'] / MB:.0f} MB")
        res["restarts_big"] = restarts(b, args.restarts, "big")
        if args.small_batches:
            res["fill_small"] = fill(b, "small", args.small_batches, args.small_batches, args.size,
                                     ["-X", "batch.num.messages=1", "--linger-ms", "0"])
            res["restarts_small"] = restarts(b, args.restarts, "big+small")
        b.stop()
    finally:
        b.kill()
        json.dump(res, open(work / "retained_memory.json", "w"), indent=1)
        if not args.keep:
            shutil.rmtree(work / "data", ignore_errors=True)

    report(res)


def report(res: dict) -> None:
    idle = res["idle_rss"]
    big = res["restarts_big"]
    print()
    print("| data | start | batches | WAL GB | ready s | RSS at ready MB | RSS 5 s later MB | above idle MB |")
    print("|---|---|---|---|---|---|---|---|")
    for r in big + res.get("restarts_small", []):
        print(f"| {r['stage']} | {r['start']} | {r['batches']:,} | {r['wal_bytes'] / GB:.2f} | {r['ready_s']:.3f} "
              f"| {r['rss_ready'] / MB:.1f} | {r['rss_5s'] / MB:.1f} | {(r['rss_5s'] - idle) / MB:.1f} |")
    batches = big[0]["batches"]
    live = big[0]["live"]
    batch_size = live / batches
    rss_big = statistics.median(r["rss_5s"] for r in big)
    print()
    print(f"idle RSS (empty data dir) {idle / MB:.1f} MB; after the fill, before restarting,"
          f" {res['after_fill']['rss'] / MB:.0f} MB")
    print(f"fill: {live / GB:.2f} GB in {batches:,} batches: {batch_size / 1e3:,.0f} kB per batch,"
          f" {GB / batch_size:,.0f} batches per GB")
    per_batch = None
    if res.get("restarts_small"):
        small = res["restarts_small"]
        dn = small[0]["batches"] - batches
        rss_small = statistics.median(r["rss_5s"] for r in small)
        per_batch = (rss_small - rss_big) / dn
        warm_big = statistics.median(r["ready_s"] for r in big if r["start"] == "warm")
        warm_small = statistics.median(r["ready_s"] for r in small if r["start"] == "warm")
        cold_big = statistics.median([r["ready_s"] for r in big if r["start"] == "cold"] or [0])
        cold_small = statistics.median([r["ready_s"] for r in small if r["start"] == "cold"] or [0])
        print(f"calibration: +{dn:,} single-record batches: RSS +{(rss_small - rss_big) / MB:.1f} MB"
              f" = {per_batch:.0f} bytes per batch; ready +{(warm_small - warm_big) * 1e3:.0f} ms warm"
              f" ({(warm_small - warm_big) / dn * 1e9:.0f} ns per batch),"
              f" +{(cold_small - cold_big) * 1e3:.0f} ms cold ({(cold_small - cold_big) / dn * 1e9:.0f} ns per batch)")
        res["per_batch_bytes"] = per_batch
        res["per_batch_ready_ns_warm"] = (warm_small - warm_big) / dn * 1e9
        res["per_batch_ready_ns_cold"] = (cold_small - cold_big) / dn * 1e9
    last = (res.get("restarts_small") or big)[-1]
    above = max(r["rss_5s"] for r in big + res.get("restarts_small", [])) - idle
    segments = last["wal_segments"] or 1
    per_segment = above / segments
    slowest = max(r["ready_s"] for r in big + res.get("restarts_small", []))
    hundred = 100 * GB / (64 * 1024 * 1024)
    print(f"per WAL segment held (the most RSS above idle over the segments): {per_segment / 1e3:,.1f} kB;"
          f" slowest ready {slowest:.3f} s for {segments} segments")
    print(f"100 GB in 64 MiB segments = {hundred:,.0f} segments: {hundred * per_segment / MB:,.1f} MB above idle,"
          f" ready in about {slowest * hundred / segments:.2f} s (scaled by segments)")
    res["per_segment_bytes"] = per_segment
    print()
    print("| average batch | batches in 100 GB | memory for their entries | ready time (warm / cold, per-batch cost) |")
    print("|---|---|---|---|")
    cost = per_batch or 64
    for size in (batch_size, 1_000_000, 256_000, 64_000, 16_384, 1_100):
        n = 100 * GB / size
        ready = ""
        if res.get("per_batch_ready_ns_warm") is not None:
            ready = (f"{n * res['per_batch_ready_ns_warm'] / 1e9:.1f} s / {n * res['per_batch_ready_ns_cold'] / 1e9:.1f} s")
        label = f"{size / 1e3:,.1f} kB" + (" (this fill)" if size == batch_size else "")
        print(f"| {label} | {n:,.0f} | {n * cost / MB:,.0f} MB | {ready} |")


if __name__ == "__main__":
    main()
