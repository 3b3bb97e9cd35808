#!/usr/bin/env python3
"""Writes docs/benchmarks.md from a benches/run.sh results directory."""

import json
import os
import platform
import subprocess
import sys
from pathlib import Path


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001 - best effort machine description
        return "?"


def rdkafka_version():
    lock = Path(__file__).resolve().parent.parent / "Cargo.lock"
    text = lock.read_text() if lock.exists() else ""
    marker = 'name = "rdkafka-sys"\nversion = "'
    at = text.find(marker)
    return text[at + len(marker):].split('"')[0].split("+")[-1] if at >= 0 else "?"


def main():
    results = Path(sys.argv[1])
    out = Path(sys.argv[2])
    smoke = "--smoke" in sys.argv
    r = {p.stem: json.loads(p.read_text()) for p in results.glob("*.json")}
    before = r["limits"]["limits"]
    after = r.get("limits-after", r["limits"])["limits"]
    # Ratios use the mean of the limits measured before and after the
    # scenarios; both are shown.
    limits = {k: (before[k] + after[k]) / 2 for k in before}
    idle_rss = int((results / "idle_rss").read_text().strip())
    commands = (results / "commands.txt").read_text().strip()

    def tp(name, kind="produce"):
        return r[name][kind]

    def cost(name):
        return r[name].get("broker", {})

    s1p, s1c = tp("s1-produce"), tp("s1-consume", "consume")
    disk = limits["disk_write_fdatasync_mb_s"]
    loop = limits["loopback_tcp_mb_s"]
    fsync99 = limits["fdatasync_4k_p99_ms"]
    s3 = r["s3-half-peak"]
    s3s = r["s3-single"]
    s4 = tp("s4-produce")
    s5 = r["s5-burst"]
    s6 = r["s6-recovery"]

    def ok(cond):
        return "met" if cond else "**missed**"

    rows = [
        ("1 steady", "produce MB/s (1 KiB, 4 partitions)", f"{s1p['mb_per_s']:.0f} ({s1p['mb_per_s'] / disk:.2f} x disk)",
         f">= 0.7 x disk ({0.7 * disk:.0f})", ok(s1p["mb_per_s"] >= 0.7 * disk)),
        ("1 steady", "consume MB/s (one consumer)", f"{s1c['mb_per_s']:.0f} ({s1c['mb_per_s'] / loop:.2f} x loopback)",
         ">= 800", ok(s1c["mb_per_s"] >= 800)),
        ("1 steady", "consume MB/s, two consumers (one client process)", f"{tp('s1-consume-2', 'consume')['mb_per_s']:.0f}",
         "(for comparison)", ""),
        ("1 steady", "consume MB/s, same bytes as 10 KiB messages", f"{tp('s1-consume-10k', 'consume')['mb_per_s']:.0f}",
         "(broker delivery without the client's per-message cost)", ""),
        ("2 small", "100 B msgs/s, 1 partition", f"{tp('s2-p1')['msgs_per_s']:,.0f}", ">= 500,000",
         ok(tp("s2-p1")["msgs_per_s"] >= 500_000)),
        ("2 small", "100 B msgs/s, 4 partitions", f"{tp('s2-p4')['msgs_per_s']:,.0f}", ">= 500,000",
         ok(tp("s2-p4")["msgs_per_s"] >= 500_000)),
        ("3 latency", "end-to-end p99 at 50% of peak", f"{s3['e2e_latency']['p99_ms']:.2f} ms (p50 {s3['e2e_latency']['p50_ms']:.2f})",
         "<= 10 ms", ok(s3["e2e_latency"]["p99_ms"] <= 10)),
        ("3 latency", "single-message acks=all ack p99", f"{s3s['ack_latency']['p99_ms']:.2f} ms (p50 {s3s['ack_latency']['p50_ms']:.2f})",
         f"<= fdatasync p99 + 1 ms ({fsync99 + 1:.2f})", ok(s3s["ack_latency"]["p99_ms"] <= fsync99 + 1)),
        ("4 partitions", f"produce MB/s, {r['s4-produce'].get('load', '').split(',')[0]} over many partitions",
         f"{s4['mb_per_s']:.0f} ({s4['mb_per_s'] / s1p['mb_per_s']:.2f} x scenario 1)", ">= 0.8 x scenario 1",
         ok(s4["mb_per_s"] >= 0.8 * s1p["mb_per_s"])),
        ("5 burst", "produce / group-of-3 consume MB/s", f"{s5['produce']['mb_per_s']:.0f} / {s5['consume']['mb_per_s']:.0f}",
         "(no target)", ""),
        ("6 recovery", f"ready after kill -9 with {s6['wal_bytes'] / 2**20:.0f} MiB unsealed WAL", f"{s6['ready_seconds']:.2f} s",
         "<= 3 s", ok(s6["ready_seconds"] <= 3)),
        ("cost", "broker CPU-s per GB produced (scenario 1)", f"{cost('s1-produce').get('cpu_s_per_gb', 0):.2f}", "<= 1",
         ok(cost("s1-produce").get("cpu_s_per_gb", 99) <= 1)),
        ("cost", "broker CPU-s per GB consumed (scenario 1)", f"{cost('s1-consume').get('cpu_s_per_gb', 0):.2f}", "<= 0.3",
         ok(cost("s1-consume").get("cpu_s_per_gb", 99) <= 0.3)),
        ("cost", "broker RSS idle (after start)", f"{idle_rss / 1e6:.0f} MB", "<= 64 MB", ok(idle_rss <= 64e6)),
        ("cost", "broker peak RSS during scenario 4", f"{cost('s4-produce').get('peak_rss_bytes', 0) / 1e6:.0f} MB",
         "<= 512 MB", ok(cost("s4-produce").get("peak_rss_bytes", 1e12) <= 512e6)),
    ]

    runs = []
    for name in sorted(k for k in r if k.startswith("s") and k != "s6-recovery"):
        x = r[name]
        for kind in ("produce", "consume"):
            if kind in x:
                t = x[kind]
                b = x.get("broker", {})
                lat = x.get("ack_latency" if kind == "produce" else "e2e_latency")
                lat_s = f"{lat['p50_ms']:.2f} / {lat['p95_ms']:.2f} / {lat['p99_ms']:.2f} / {lat['p999_ms']:.2f} / {lat['max_ms']:.2f}" if lat else ""
                runs.append(f"| {name} | {kind} | {t['messages']:,} | {t['seconds']:.2f} | {t['msgs_per_s']:,.0f} | {t['mb_per_s']:.1f} | {t['errors']} | {lat_s} | "
                            f"{b.get('cpu_s_per_gb', 0):.2f} | {b.get('peak_rss_bytes', 0) / 1e6:.0f} |")

    cpu = sh("lscpu | sed -n 's/^Model name: *//p'")
    mem_kib = sh("awk '/MemTotal/ {print $2}' /proc/meminfo") or "0"
    fs = sh(f"df -T {results} | tail -1 | awk '{{print $2}}'")
    commit = sh("git rev-parse --short HEAD")
    dirty = " (with uncommitted changes)" if sh("git status --porcelain --untracked-files=no") else ""
    machine = [
        f"- CPU: {cpu} ({os.cpu_count()} logical CPUs), memory {int(mem_kib) / 2**20:.0f} GiB",
        f"- Kernel: {platform.release()}; data dir file system: {fs}",
        f"- Commit: {commit}{dirty}; client: librdkafka {rdkafka_version()} through the rdkafka crate",
        "- Client and broker share the machine (loopback).",
    ]

    text = f"""# Benchmarks

{'**Smoke run: tiny sizes, the figures mean nothing.**' if smoke else ''}
Produced by `benches/run.sh` (one command: builds release, starts strata on a
temporary data dir, measures the machine, runs the six standard scenarios
with `strata-bench`, the librdkafka load generator in `benches/loadgen`, and
rewrites this file). Every broker figure is also given as a ratio of the
machine limit measured in the same run: absolute numbers drift on a shared
machine, ratios in one run much less. MB = 10^6 payload bytes; every produce
is acks=all and strata answers only after fdatasync.

## Machine

{chr(10).join(machine)}

| limit (same run) | before the scenarios | after | mean (used for ratios) |
|---|---|---|---|
| sequential write, 1 MiB + fdatasync each | {before['disk_write_fdatasync_mb_s']:.0f} MB/s | {after['disk_write_fdatasync_mb_s']:.0f} MB/s | {disk:.0f} MB/s |
| sequential write, one fdatasync at the end | {before['disk_write_buffered_mb_s']:.0f} MB/s | {after['disk_write_buffered_mb_s']:.0f} MB/s | {limits['disk_write_buffered_mb_s']:.0f} MB/s |
| 4 KiB append + fdatasync p50 | {before['fdatasync_4k_p50_ms']:.3f} ms | {after['fdatasync_4k_p50_ms']:.3f} ms | {limits['fdatasync_4k_p50_ms']:.3f} ms |
| 4 KiB append + fdatasync p99 | {before['fdatasync_4k_p99_ms']:.3f} ms | {after['fdatasync_4k_p99_ms']:.3f} ms | {fsync99:.3f} ms |
| loopback TCP, one stream | {before['loopback_tcp_mb_s']:.0f} MB/s | {after['loopback_tcp_mb_s']:.0f} MB/s | {loop:.0f} MB/s |

## Targets

| scenario | figure | measured | target | |
|---|---|---|---|---|
""" + "\n".join(f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows) + f"""

## Every run

Latency columns: produce rows show send-to-ack latency (includes time queued
in the client at full speed), consume rows end-to-end latency (send to
receive; latency and mixed runs only). p50 / p95 / p99 / p99.9 / max in ms.
Broker CPU-s/GB counts the bytes produced plus consumed in that run.

| run | side | messages | s | msgs/s | MB/s | errors | latency ms | broker CPU-s/GB | broker peak RSS MB |
|---|---|---|---|---|---|---|---|---|---|
""" + "\n".join(runs) + f"""

## Commands

```sh
benches/run.sh        # all of the below, then this file
# $BOOT = the broker's address, $PID = its pid; each run also with --json
{commands}
```
"""
    extra = Path(__file__).with_name("notes.md")
    if extra.exists() and not smoke:
        text += "\n" + extra.read_text()
    out.write_text(text)


if __name__ == "__main__":
    main()
