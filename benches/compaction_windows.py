#!/usr/bin/env python3
"""WAL compaction's cost to producers, measured inside one broker run:
compaction is let go and held back (POST /compaction/resume, /pause) in
short alternating windows while one load runs, and each window is compared
with its neighbour. Machine noise that lasts longer than a window (other
builds, the disk's drift) hits both sides of a pair alike.

    CARGO_TARGET_DIR=... STRATA_BIN=... python benches/compaction_windows.py \\
        [--scenario saturating,steady] [--windows 32] [--window-seconds 10] \\
        [--broker-args "--wal-compaction-bytes-per-sec 16777216"]

For each scenario, on a fresh data dir and one broker (retention checked
every second, compaction looking for work every second):

1. compaction is paused; topics `short` (retention.ms 1000) and `forever`
   (retention.ms -1), 4 partitions each, are written at once by two paced
   producers in the ratio (1 - live):live, --fill-gb in all, so every WAL
   segment holds both; retention empties `short`, leaving a backlog of
   segments --live live for compaction;
2. one strata-bench produce runs on topic `load` (4 partitions,
   retention.ms --load-retention-ms so the disk does not fill): at full
   speed (`saturating`: throughput is the figure) or at --rate msg/s
   (`steady`: p95 send-to-ack latency is the figure, and the acked rate must
   be the offered one), with acks and latencies reported per second of ack
   time (`--series-ms 1000`);
3. after --warmup-seconds, windows of --window-seconds alternate in the
   order off, on, on, off, off, on, ... (pairs (off, on), (on, off), ...: a
   steady drift favours neither side); each switch is a POST, and the
   broker's compaction counters are scraped at each switch, so the report
   shows what compaction read and wrote in every window;
4. per window, the seconds from --settle-seconds after the switch to the
   next switch count: MB/s acked, and p95 over the latencies of all of them.
   Each pair gives a ratio on / off; the report gives the median ratio, its
   spread, and the ratio of all "on" windows together to all "off" ones.

A window "on" in which compaction moved nothing is flagged: such a window
proves nothing (the backlog ran out; raise --fill-gb).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import shlex
import shutil
import statistics
import sys
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from lifecycle_common import (MB, Broker, create_topics, finish_bench, fs_type, log, machine,  # noqa: E402
                              metric, metric_sum, start_bench)

WATCH = ("compaction_io_bytes_total", "wal_compaction_bytes_copied_total", "wal_compaction_runs_total",
         "wal_compaction_bytes_reclaimed_total", "wal_segments", "wal_bytes")


def post(b: Broker, path: str) -> None:
    req = urllib.request.Request(f"http://127.0.0.1:{b.http_port}{path}", method="POST", data=b"")
    with urllib.request.urlopen(req, timeout=10) as r:
        assert r.status == 200, r.status


def counters(b: Broker) -> dict:
    m = b.scrape()
    c = {k: metric(m, k) for k in WATCH}
    c["t"] = time.time()
    c["bytes_in"] = metric_sum(m, "kafka_topic_bytes_in_total", topic="load")
    return c


def uptime() -> str:
    """The 1, 5 and 15 minute load averages."""
    return " ".join(open("/proc/loadavg").read().split()[:3])


def fill(args, b: Broker) -> dict:
    """Writes the backlog and waits until retention has emptied `short`."""
    total = int(args.fill_gb * 1e9 / args.size)
    n_forever = int(total * args.live)
    n_short = total - n_forever
    secs = total / args.fill_rate
    procs = [
        start_bench(b, "fill-short", "produce", "--topic", "short", "--messages", str(n_short),
                    "--size", str(args.size), "--rate", str(int(n_short / secs)), "--max-seconds", "900"),
        start_bench(b, "fill-forever", "produce", "--topic", "forever", "--messages", str(n_forever),
                    "--size", str(args.size), "--rate", str(int(n_forever / secs)), "--max-seconds", "900"),
    ]
    for f in [finish_bench(p) for p in procs]:
        assert f["produce"]["errors"] == 0, f
    deadline = time.monotonic() + 120
    while metric_sum(b.scrape(), "partition_size_bytes", topic="short") > 0:
        assert time.monotonic() < deadline, "retention did not empty `short`"
        time.sleep(0.2)
    m = b.scrape()
    return {"wal_bytes": metric(m, "wal_bytes"), "live_bytes": metric_sum(m, "partition_size_bytes")}


def run_scenario(args, scenario: str, work: Path) -> dict:
    data = work / scenario / "data"
    shutil.rmtree(data.parent, ignore_errors=True)
    flags = ["--log-retention-check-interval-ms", "1000", "--wal-compaction-check-interval-ms", "1000",
             *shlex.split(args.broker_args)]
    b = Broker(data, flags)
    try:
        b.start()
        post(b, "/compaction/pause")
        create_topics(b.bootstrap, {"short": (4, {"retention.ms": "1000"}),
                                    "forever": (4, {"retention.ms": "-1"}),
                                    "load": (args.partitions, {"retention.ms": str(args.load_retention_ms)})})
        log(f"{scenario}: filling {args.fill_gb} GB ({args.live:.0%} kept)")
        backlog = fill(args, b)
        log(f"{scenario}: backlog {backlog['wal_bytes'] / MB:,.0f} MB on disk, {backlog['live_bytes'] / MB:,.0f} MB live;"
            f" load {uptime()}")
        seconds = args.warmup_seconds + args.windows * args.window_seconds + 2
        load = ["--topic", "load", "--size", str(args.size), "--max-seconds", str(int(seconds)),
                "--series-ms", "1000", "--warmup-seconds", str(args.warmup_seconds)]
        if scenario == "steady":
            load += ["--rate", str(args.rate), "--messages", str(int(args.rate * seconds)),
                     "--linger-ms", str(args.linger_ms)]
        else:
            load += ["--messages", str(10**10)]
        proc = start_bench(b, f"{scenario}-load", "produce", *load)
        t0 = time.time()
        time.sleep(args.warmup_seconds)
        windows = []
        for k in range(args.windows):
            on = (k % 4) in (1, 2)
            post(b, "/compaction/resume" if on else "/compaction/pause")
            c = counters(b)
            if windows:
                windows[-1]["end"] = c
            windows.append({"index": k, "on": on, "start": c})
            time.sleep(max(0.0, t0 + args.warmup_seconds + (k + 1) * args.window_seconds - time.time()))
        post(b, "/compaction/pause")
        windows[-1]["end"] = counters(b)
        loadavg_end = uptime()
        result = finish_bench(proc)
    finally:
        b.kill()
        shutil.rmtree(data.parent, ignore_errors=True)
    return {"scenario": scenario, "backlog": backlog, "windows": windows, "load": result,
            "loadavg_end": loadavg_end, "args": vars(args)}


def percentile(hist: dict[int, int], q: float) -> float:
    total = sum(hist.values())
    if not total:
        return float("nan")
    seen = 0
    for v in sorted(hist):
        seen += hist[v]
        if seen >= q * total:
            return v / 1000.0
    return max(hist) / 1000.0


def window_figures(r: dict, settle: float) -> list[dict]:
    series = r["load"]["ack_series"]
    step = series["interval_ms"] / 1000.0
    origin = series["origin_unix_ms"] / 1000.0
    out = []
    for w in r["windows"]:
        lo, hi = w["start"]["t"] + settle, w["end"]["t"]
        hist: dict[int, int] = {}
        acked, n = 0, 0
        for i, slot in enumerate(series["slots"]):
            a = origin + i * step
            if a < lo or a + step > hi:
                continue
            n += 1
            acked += slot["bytes"]
            for v, c in slot["latency_us"]:
                hist[v] = hist.get(v, 0) + c
        d = lambda k: w["end"][k] - w["start"][k]  # noqa: E731
        span = w["end"]["t"] - w["start"]["t"]
        out.append({
            "index": w["index"], "on": w["on"], "seconds": n * step,
            "mbps": acked / (n * step) / MB if n else float("nan"),
            "p50": percentile(hist, 0.50), "p95": percentile(hist, 0.95), "p99": percentile(hist, 0.99),
            "hist": hist,
            "compaction_io_mbps": d("compaction_io_bytes_total") / span / MB,
            "copied_mb": d("wal_compaction_bytes_copied_total") / MB,
            "runs": d("wal_compaction_runs_total"),
            "broker_in_mbps": d("bytes_in") / span / MB,
        })
    return out


def bootstrap(xs: list[float], stat, rounds: int = 10_000) -> tuple[float, float]:
    """A 90% bootstrap interval of `stat` over `xs`."""
    rng = random.Random(1)
    values = sorted(stat(rng.choices(xs, k=len(xs))) for _ in range(rounds))
    return values[int(0.05 * rounds)], values[int(0.95 * rounds) - 1]


def geomean(xs: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(x) for x in xs))


def spread(xs: list[float]) -> str:
    """Median (90% bootstrap interval), quartiles, range, and the geometric mean."""
    xs = sorted(x for x in xs if x == x and x > 0)
    if not xs:
        return "-"
    q = statistics.quantiles(xs, n=4) if len(xs) >= 2 else [xs[0]] * 3
    lo, hi = bootstrap(xs, statistics.median)
    glo, ghi = bootstrap(xs, geomean)
    return (f"median {statistics.median(xs):.3f} (90% interval {lo:.3f}–{hi:.3f}; IQR {q[0]:.3f}–{q[2]:.3f},"
            f" range {xs[0]:.3f}–{xs[-1]:.3f}, n={len(xs)}); geometric mean {geomean(xs):.3f} ({glo:.3f}–{ghi:.3f})")


def pair_ratios(r: dict, settle: float) -> tuple[list[float], list[float]]:
    """Each pair's on / off ratio of acked MB/s, and of ack p95."""
    ws = window_figures(r, settle)
    tput, p95 = [], []
    for a, b in zip(ws[0::2], ws[1::2]):
        on, off = (a, b) if a["on"] else (b, a)
        tput.append(on["mbps"] / off["mbps"])
        p95.append(on["p95"] / off["p95"])
    return tput, p95


def report(r: dict, settle: float) -> str:
    ws = window_figures(r, settle)
    lines = [f"### {r['scenario']}", "",
             f"backlog {r['backlog']['wal_bytes'] / MB:,.0f} MB on disk, {r['backlog']['live_bytes'] / MB:,.0f} MB live;"
             f" load average at the end {r['loadavg_end']}", "",
             "| window | compaction | acked MB/s | broker bytes in MB/s | ack p50 ms | ack p95 ms | ack p99 ms "
             "| compaction I/O MB/s | copied MB (runs) |",
             "|---|---|---|---|---|---|---|---|---|"]
    for w in ws:
        lines.append(f"| {w['index']} | {'on' if w['on'] else 'off'} | {w['mbps']:.1f} | {w['broker_in_mbps']:.1f} "
                     f"| {w['p50']:.2f} | {w['p95']:.2f} | {w['p99']:.2f} | {w['compaction_io_mbps']:.1f} "
                     f"| {w['copied_mb']:.0f} ({w['runs']:.0f}) |")
    pairs = [(ws[i], ws[i + 1]) for i in range(0, len(ws) - 1, 2)]
    tput, p95 = [], []
    for a, b in pairs:
        on, off = (a, b) if a["on"] else (b, a)
        tput.append(on["mbps"] / off["mbps"])
        p95.append(on["p95"] / off["p95"])
    # Pairs whose reference ("off") window was quiet: its p95 at most twice
    # the median "off" p95. A window hit by other work on the machine says
    # nothing about compaction; only the reference is filtered, so a
    # disturbed "on" window still counts against compaction.
    off_p95 = statistics.median(w["p95"] for w in ws if not w["on"])
    quiet = [(on, off) for on, off in ((a, b) if a["on"] else (b, a) for a, b in pairs) if off["p95"] <= 2 * off_p95]
    quiet_tput = [on["mbps"] / off["mbps"] for on, off in quiet]
    quiet_p95 = [on["p95"] / off["p95"] for on, off in quiet]
    merged = {True: {}, False: {}}
    secs = {True: 0.0, False: 0.0}
    acked = {True: 0.0, False: 0.0}
    for w in ws:
        for v, c in w["hist"].items():
            merged[w["on"]][v] = merged[w["on"]].get(v, 0) + c
        secs[w["on"]] += w["seconds"]
        acked[w["on"]] += w["mbps"] * w["seconds"]
    idle = [w["index"] for w in ws if w["on"] and w["compaction_io_mbps"] < 1.0]
    on_io = [w["compaction_io_mbps"] for w in ws if w["on"]]
    off_io = [w["compaction_io_mbps"] for w in ws if not w["on"]]
    mb = {k: acked[k] / secs[k] if secs[k] else float("nan") for k in (True, False)}
    p = {k: percentile(merged[k], 0.95) for k in (True, False)}
    lines += ["",
              f"- pairs on / off, acked MB/s: {spread(tput)}",
              f"- pairs on / off, ack p95: {spread(p95)}",
              f"- pairs with a quiet 'off' window (p95 <= 2 x {off_p95:.2f} ms): acked MB/s {spread(quiet_tput)};"
              f" ack p95 {spread(quiet_p95)}",
              f"- all windows together: acked {mb[True]:.1f} / {mb[False]:.1f} MB/s = {mb[True] / mb[False]:.3f};"
              f" ack p95 {p[True]:.2f} / {p[False]:.2f} ms = {p[True] / p[False]:.3f}",
              f"- compaction I/O in 'on' windows: {min(on_io):.1f}–{max(on_io):.1f} MB/s;"
              f" in 'off' windows: {min(off_io):.1f}–{max(off_io):.1f} MB/s"
              + (f"; **idle 'on' windows: {idle}**" if idle else "")]
    if r["scenario"] == "steady":
        offered = r["args"]["rate"] * r["args"]["size"] / MB
        short = [w["index"] for w in ws if w["mbps"] < 0.98 * offered]
        lines.append(f"- offered {offered:.1f} MB/s; windows acking less than 98% of it: {short or 'none'}")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scenario", default="saturating,steady", help="comma-separated: saturating, steady")
    ap.add_argument("--windows", type=int, default=32, help="windows per scenario (a multiple of 4 is balanced)")
    ap.add_argument("--window-seconds", type=float, default=10.0)
    ap.add_argument("--settle-seconds", type=float, default=1.0, help="left out after each switch")
    ap.add_argument("--warmup-seconds", type=float, default=5.0)
    ap.add_argument("--fill-gb", type=float, default=12.0, help="backlog written before the load (default 12)")
    ap.add_argument("--fill-rate", type=int, default=200_000, help="msg/s of the two fill producers together")
    ap.add_argument("--live", type=float, default=0.25, help="share of the backlog kept (default 0.25)")
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--partitions", type=int, default=4)
    ap.add_argument("--rate", type=int, default=100_000, help="msg/s of the steady scenario")
    ap.add_argument("--linger-ms", type=int, default=1, help="linger.ms of the steady scenario")
    ap.add_argument("--load-retention-ms", type=int, default=20_000)
    ap.add_argument("--broker-args", default="", help="extra strata serve flags (quoted)")
    ap.add_argument("--work", default="/tmp/strata-compaction-windows", help="data dirs go here")
    ap.add_argument("--out", default=None, help="results dir (default: WORK/results)")
    ap.add_argument("--analyze", nargs="+", metavar="JSON", help="only report on results saved by earlier runs")
    args = ap.parse_args()
    if args.analyze:
        pooled: dict[str, tuple[list[float], list[float]]] = {}
        for path in args.analyze:
            r = json.load(open(path))
            print(report(r, args.settle_seconds), flush=True)
            tput, p95 = pair_ratios(r, args.settle_seconds)
            pool = pooled.setdefault(r["scenario"], ([], []))
            pool[0].extend(tput)
            pool[1].extend(p95)
        if len(args.analyze) > 1:
            for scenario, (tput, p95) in pooled.items():
                print(f"\n{scenario}, the pairs of every run together: acked MB/s on / off {spread(tput)};"
                      f" ack p95 on / off {spread(p95)}")
        return
    work = Path(args.work)
    out = Path(args.out) if args.out else work / "results"
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    facts = machine()
    facts["data_dir_fs"] = fs_type(work)
    log(f"machine: {facts}; load average {uptime()}")
    stamp = time.strftime("%Y%m%d-%H%M%S")
    tables = []
    for scenario in args.scenario.split(","):
        r = run_scenario(args, scenario, work)
        r["machine"] = facts
        json.dump(r, open(out / f"{stamp}-{scenario}.json", "w"))
        table = report(r, args.settle_seconds)
        print(table, flush=True)
        tables.append(table)
    (out / f"{stamp}-report.md").write_text("\n\n".join(tables) + "\n")


if __name__ == "__main__":
    main()
