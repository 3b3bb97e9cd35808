#!/usr/bin/env python3
"""WAL compaction's cost to producers: the same produce load with WAL
compaction off and on, on a WAL that holds plenty for compaction to do.

    CARGO_TARGET_DIR=... STRATA_BIN=... python benches/compaction_cost.py [--rounds 4] [--arms off,on]

Each round of each arm, on a fresh data dir:

1. setup broker (compaction off: --wal-compaction-live-percent 0, retention
   checked every second): topic `short` (retention.ms=1000) and topic
   `forever` (retention.ms=-1), 4 partitions each, written at the same time
   by two paced strata-bench producers in the ratio (1 - live):live, so
   every WAL segment holds both;
2. wait until retention has emptied `short`: every sealed segment is then
   mostly dead but still held by `forever`'s batches;
3. SIGTERM, restart with the arm's flags (compaction looks for work right
   after startup), and at once:
   - `produce`: full speed, --produce-messages x 1 KiB, 4 partitions
     (throughput, and send-to-ack latency, which at full speed is mostly
     time queued in the client);
   - `latency`: --latency-rate msg/s for --latency-seconds, 4 partitions
     (send-to-ack and end-to-end latency at a fixed rate);
   scraping wal_compaction_bytes_copied_total (and sealing counters)
   before and after each, so the report shows that compaction ran during
   the load.

Arms: off (--wal-compaction-live-percent 0), on (defaults: 32 MiB/s I/O
budget), unlimited (--wal-compaction-bytes-per-sec 0). Arms alternate
order from round to round. Results: JSON per run in --out, tables on stdout.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lifecycle_common import (MB, Broker, create_topics, finish_bench, fs_type, log, machine,  # noqa: E402
                              metric, metric_sum, run_bench, start_bench)

COMMON = ["--log-retention-check-interval-ms", "1000"]
ARMS = {
    "off": ["--wal-compaction-live-percent", "0"],
    "on": [],
    "unlimited": ["--wal-compaction-bytes-per-sec", "0"],
}
WATCH = ("wal_compaction_bytes_copied_total", "wal_compaction_runs_total",
         "wal_compaction_bytes_reclaimed_total", "wal_segments_sealed_total", "wal_segments", "wal_bytes")


def counters(b: Broker) -> dict:
    m = b.scrape()
    c = {k: metric(m, k) for k in WATCH}
    # WAL fsyncs: how many, their total time, how many took over 25 ms.
    c["fsyncs"] = metric(m, "wal_fsync_duration_seconds_count")
    c["fsync_seconds"] = metric(m, "wal_fsync_duration_seconds_sum")
    c["fsyncs_le_25ms"] = metric(m, "wal_fsync_duration_seconds_bucket", le="0.025")
    # WAL appends (queue + write + fsync) and Produce requests over 10 ms.
    c["appends"] = metric(m, "wal_append_duration_seconds_count")
    c["appends_le_10ms"] = metric(m, "wal_append_duration_seconds_bucket", le="0.01")
    c["produce_requests"] = metric(m, "kafka_request_duration_seconds_count", api="Produce")
    c["produce_requests_le_10ms"] = metric(m, "kafka_request_duration_seconds_bucket", api="Produce", le="0.01")
    return c


class Sampler(threading.Thread):
    """Scrapes the broker every second: bytes in, compaction, sealing."""

    def __init__(self, b: Broker):
        super().__init__(daemon=True)
        self.b, self.rows, self.stop = b, [], threading.Event()
        self.t0 = time.monotonic()

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                m = self.b.scrape()
            except OSError:
                break
            self.rows.append({
                "t": round(time.monotonic() - self.t0, 2),
                "bytes_in": metric_sum(m, "kafka_topic_bytes_in_total"),
                **{k: metric(m, k) for k in WATCH},
            })
            self.stop.wait(1.0)


def series_table(rows: list[dict]) -> str:
    """Per-second produce MB/s, compaction MB copied, segments sealed, WAL segments."""
    out = ["| s | produce MB/s | compaction copied MB (total) | segments sealed (total) | WAL segments |",
           "|---|---|---|---|---|"]
    for a, b in zip(rows, rows[1:]):
        dt = b["t"] - a["t"]
        out.append(f"| {b['t']:.0f} | {(b['bytes_in'] - a['bytes_in']) / dt / MB:.0f} "
                   f"| {b['wal_compaction_bytes_copied_total'] / MB:.0f} | {b['wal_segments_sealed_total']:.0f} "
                   f"| {b['wal_segments']:.0f} |")
    return "\n".join(out)


def one_round(args, arm: str, rnd: int, work: Path) -> dict:
    data = work / f"r{rnd}-{arm}" / "data"
    shutil.rmtree(data.parent, ignore_errors=True)
    b = Broker(data, COMMON + ARMS["off"])
    try:
        b.start()
        create_topics(b.bootstrap, {"short": (4, {"retention.ms": "1000"}),
                                    "forever": (4, {"retention.ms": "-1"})})
        total = int(args.fill_gb * 1e9 / args.size)
        n_forever = int(total * args.live)
        n_short = total - n_forever
        secs = total / args.fill_rate
        procs = []
        procs.append(start_bench(b, "fill-short", "produce", "--topic", "short", "--messages", str(n_short),
                                 "--size", str(args.size), "--rate", str(int(n_short / secs)), "--max-seconds", "600"))
        procs.append(start_bench(b, "fill-forever", "produce", "--topic", "forever", "--messages", str(n_forever),
                                 "--size", str(args.size), "--rate", str(int(n_forever / secs)), "--max-seconds", "600"))
        fills = [finish_bench(p) for p in procs]
        for f in fills:
            assert f["produce"]["errors"] == 0, f
        deadline = time.monotonic() + 60
        while metric_sum(b.scrape(), "partition_size_bytes", topic="short") > 0:
            assert time.monotonic() < deadline, "retention did not empty `short`"
            time.sleep(0.2)
        m = b.scrape()
        before_restart = {
            "wal_bytes": metric(m, "wal_bytes"),
            "live_bytes": metric_sum(m, "partition_size_bytes"),
        }
        b.stop()
        subprocess.run(["sync"], check=True)
        # The measured broker: compaction (if on) starts looking right away.
        b.start(COMMON + ARMS[arm])
        sampler = Sampler(b)
        sampler.start()
        c0 = counters(b)
        prod = run_bench(b, f"r{rnd}-{arm}-produce", "produce", "--topic", "load", "--partitions",
                         str(args.partitions), "--messages", str(args.produce_messages), "--size", str(args.size),
                         "--max-seconds", str(args.max_seconds))
        c1 = counters(b)
        lat = run_bench(b, f"r{rnd}-{arm}-latency", "latency", "--topic", "lat", "--partitions",
                        str(args.partitions), "--size", str(args.size), "--rate", str(args.latency_rate),
                        "--messages", str(args.latency_rate * args.latency_seconds), "--linger-ms", "1",
                        "--warmup-seconds", "1")
        c2 = counters(b)
        sampler.stop.set()
        sampler.join()
        t = time.monotonic()
        b.stop()
        stop_seconds = time.monotonic() - t
    finally:
        b.kill()
        shutil.rmtree(data.parent, ignore_errors=True)
    return {"round": rnd, "arm": arm, "fill": fills, "before_restart": before_restart,
            "counters": [c0, c1, c2], "produce": prod, "latency": lat,
            "series": sampler.rows, "stop_seconds": stop_seconds}


def fmt_mb(x: float) -> str:
    return f"{x / MB:,.0f}"


def share(a: dict, b: dict, k: str) -> str:
    """Share of `k` over 10 ms between two scrapes (blank for older results)."""
    if f"{k}_le_10ms" not in a:
        return ""
    n = b[k] - a[k]
    slow = n - (b[f"{k}_le_10ms"] - a[f"{k}_le_10ms"])
    return f"{100 * slow / n:.1f}%" if n else "-"


def report(results: list[dict], args) -> str:
    lines = []
    lines.append("| round | arm | produce MB/s | produce ack p95 ms | compaction copied during produce MB (runs) "
                 "| latency-run ack p95 ms | e2e p95 ms | compaction copied during latency run MB (runs) "
                 "| latency run: WAL fsyncs > 25 ms / all | latency run: WAL appends > 10 ms | "
                 "latency run: Produce requests > 10 ms | segments sealed during the two / WAL segments at the end "
                 "| SIGTERM to exit s |")
    lines.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        c0, c1, c2 = r["counters"]
        d = lambda a, b, k: b[k] - a[k]  # noqa: E731
        lines.append(
            f"| {r['round']} | {r['arm']} | {r['produce']['produce']['mb_per_s']:.0f} "
            f"| {r['produce']['ack_latency']['p95_ms']:.1f} "
            f"| {fmt_mb(d(c0, c1, 'wal_compaction_bytes_copied_total'))} ({d(c0, c1, 'wal_compaction_runs_total'):.0f}) "
            f"| {r['latency']['ack_latency']['p95_ms']:.2f} | {r['latency']['e2e_latency']['p95_ms']:.2f} "
            f"| {fmt_mb(d(c1, c2, 'wal_compaction_bytes_copied_total'))} ({d(c1, c2, 'wal_compaction_runs_total'):.0f}) "
            f"| {d(c1, c2, 'fsyncs') - d(c1, c2, 'fsyncs_le_25ms'):.0f} / {d(c1, c2, 'fsyncs'):.0f} "
            f"| {share(c1, c2, 'appends')} | {share(c1, c2, 'produce_requests')} "
            f"| {d(c0, c2, 'wal_segments_sealed_total'):.0f} / {c2['wal_segments']:.0f} "
            f"| {r.get('stop_seconds', 0):.1f} |")
    lines.append("")
    arms = [a for a in args.arms if any(r["arm"] == a for r in results)]
    med = {}
    for a in arms:
        rs = [r for r in results if r["arm"] == a]
        med[a] = {
            "mbps": statistics.median(r["produce"]["produce"]["mb_per_s"] for r in rs),
            "p95": statistics.median(r["produce"]["ack_latency"]["p95_ms"] for r in rs),
            "lat_p95": statistics.median(r["latency"]["ack_latency"]["p95_ms"] for r in rs),
            "e2e_p95": statistics.median(r["latency"]["e2e_latency"]["p95_ms"] for r in rs),
        }
    lines.append("| arm | median produce MB/s | ratio to off | median produce ack p95 ms | ratio to off "
                 "| median latency-run ack p95 ms | ratio to off | median e2e p95 ms | ratio to off |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    base = med.get("off")
    for a in arms:
        m = med[a]
        ratio = (lambda k: f"{m[k] / base[k]:.2f}") if base else (lambda k: "")
        lines.append(f"| {a} | {m['mbps']:.0f} | {ratio('mbps')} | {m['p95']:.1f} | {ratio('p95')} "
                     f"| {m['lat_p95']:.2f} | {ratio('lat_p95')} | {m['e2e_p95']:.2f} | {ratio('e2e_p95')} |")
    # Per-round ratios (each "on" round against the "off" round of the same round number).
    lines.append("")
    lines.append("| round | arm | produce MB/s on / off | produce ack p95 on / off | latency-run ack p95 on / off |")
    lines.append("|---|---|---|---|---|")
    for a in arms:
        if a == "off":
            continue
        for r in [r for r in results if r["arm"] == a]:
            o = next((x for x in results if x["arm"] == "off" and x["round"] == r["round"]), None)
            if not o:
                continue
            lines.append(
                f"| {r['round']} | {a} | {r['produce']['produce']['mb_per_s'] / o['produce']['produce']['mb_per_s']:.2f} "
                f"| {r['produce']['ack_latency']['p95_ms'] / o['produce']['ack_latency']['p95_ms']:.2f} "
                f"| {r['latency']['ack_latency']['p95_ms'] / o['latency']['ack_latency']['p95_ms']:.2f} |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=4)
    ap.add_argument("--arms", default="off,on", help="comma-separated: off, on, unlimited")
    ap.add_argument("--fill-gb", type=float, default=3.0, help="GB written before the restart (default 3)")
    ap.add_argument("--fill-rate", type=int, default=200_000, help="msg/s of the two fill producers together")
    ap.add_argument("--live", type=float, default=0.25, help="share of the fill kept forever (default 0.25)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--produce-messages", type=int, default=2_000_000)
    ap.add_argument("--latency-rate", type=int, default=100_000)
    ap.add_argument("--latency-seconds", type=int, default=10)
    ap.add_argument("--series", action="store_true", help="print each round's per-second series")
    ap.add_argument("--max-seconds", type=int, default=120, help="strata-bench --max-seconds of the produce run")
    ap.add_argument("--work", default="/tmp/strata-compaction-cost", help="data dirs go here")
    ap.add_argument("--out", default=None, help="results dir (default: WORK/results)")
    args = ap.parse_args()
    args.arms = args.arms.split(",")
    work = Path(args.work)
    out = Path(args.out) if args.out else work / "results"
    out.mkdir(parents=True, exist_ok=True)
    facts = machine()
    facts["data_dir_fs"] = fs_type(work)
    log(f"machine: {facts}")
    json.dump({"machine": facts, "args": vars(args)}, open(out / "setup.json", "w"), indent=1)
    results = []
    for rnd in range(1, args.rounds + 1):
        order = args.arms if rnd % 2 else list(reversed(args.arms))
        for arm in order:
            log(f"round {rnd} arm {arm}")
            r = one_round(args, arm, rnd, work)
            c0, c1, c2 = r["counters"]
            log(f"  produce {r['produce']['produce']['mb_per_s']:.0f} MB/s p95 {r['produce']['ack_latency']['p95_ms']:.1f} ms;"
                f" latency-run ack p95 {r['latency']['ack_latency']['p95_ms']:.2f} ms;"
                f" copied during produce {(c1['wal_compaction_bytes_copied_total'] - c0['wal_compaction_bytes_copied_total']) / MB:.0f} MB,"
                f" during latency {(c2['wal_compaction_bytes_copied_total'] - c1['wal_compaction_bytes_copied_total']) / MB:.0f} MB")
            json.dump(r, open(out / f"r{rnd}-{arm}.json", "w"), indent=1)
            if args.series:
                print(series_table(r["series"]), flush=True)
            results.append(r)
    table = report(results, args)
    (out / "report.md").write_text(table + "\n")
    print(table)


if __name__ == "__main__":
    main()
