#!/usr/bin/env python3
"""Consuming data older than the tail cache, A/B in one run.

For each broker binary (label=path), each round:

 1. start it on a fresh data dir with a small tail cache (--wal-cache-bytes,
    default 8 MiB), produce N (default 1,000,000) 1 KiB records to a topic
    of 4 partitions with one producer (strata-bench produce), stop it;
 2. case "as-produced": drop the page cache (sync; echo 3 >
    /proc/sys/vm/drop_caches; the WAL is read with direct I/O, which
    bypasses it anyway), start the broker again (its tail cache is empty
    after a restart, so every batch is read from disk), read the whole topic
    from offset 0 with one consumer (strata-bench consume), stop it;
 3. case "compacted" (binaries that have `strata wal compact`, unless
    --no-compact): with the broker stopped, `strata wal compact DATA_DIR
    --live-percent 100` (offline; segments with anything dead are rewritten
    with their live batches grouped by partition), drop the page cache,
    start, read everything again, stop. Segments produced to 4 partitions
    at once are all live, so this pass finds nothing to do: it shows that
    compaction alone leaves them interleaved;
 4. case "regrouped" (binaries whose `wal compact` has --regroup): the same
    with `--live-percent 100 --regroup`, which rewrites every interleaved
    sealed segment grouped by partition; read everything again.

Offline compaction is paced by the default I/O budget (32 MiB/s of reads
plus writes), so a regroup of 1 GB takes about a minute.

The order of the binaries alternates from round to round (A B, B A, ...),
so drift of the shared disk and CPU falls on both alike. Every consume is
reported with MB/s (10^6 payload bytes per second, from the first fetch to
the last message) and the broker's CPU seconds per GB; the summary gives
the median per binary and case and each case's ratio to the first
binary's "as-produced" median, and per round.

    benches/cold_read.py --binary today=/work/wt-base/strata-bin \\
        --binary new=./strata-bin \\
        --binary "new-no-read-ahead=./strata-bin --wal-read-ahead-bytes 0" \\
        --compact new --bench $TARGET/release/strata-bench \\
        --rounds 5 --json results.json

A binary is `label=path [serve arguments...]`: the same binary may run
twice with different settings.

Needs python3 (standard library only) and root for drop_caches (skipped
with a note otherwise).
"""

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

TOPIC = "cold"
PARTITIONS = 4


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def drop_caches():
    subprocess.run(["sync"], check=True)
    try:
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")
        return True
    except OSError:
        return False


class Broker:
    def __init__(self, binary, data_dir, log_path, extra):
        self.binary = binary
        self.data_dir = data_dir
        self.log_path = log_path
        self.extra = extra
        self.proc = None
        self.port = free_port()
        self.http = free_port()

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    def start(self):
        log = open(self.log_path, "a")
        cmd = [self.binary, "serve", "--data-dir", self.data_dir,
               "--listen", self.bootstrap, "--http-listen", f"127.0.0.1:{self.http}",
               "--default-partitions", "1"] + self.extra
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.time() + 60
        while time.time() < deadline:
            if self.proc.poll() is not None:
                sys.exit(f"broker exited at start; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http}/ready", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                pass
            time.sleep(0.02)
        sys.exit(f"broker not ready in 60 s; see {self.log_path}")

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


def bench(args, broker, label, *mode):
    cmd = [args.bench, "--bootstrap", broker.bootstrap, "--broker-pid", str(broker.proc.pid),
           "--label", label, "--json"] + list(mode)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def compact_cases(binary):
    """The compaction cases `binary` can run: none without `wal compact`."""
    help_text = subprocess.run([binary, "wal", "compact", "--help"],
                               capture_output=True, text=True)
    if help_text.returncode != 0:
        return []
    return ["compacted"] + (["regrouped"] if "--regroup" in help_text.stdout else [])


def one_binary(args, work, name, binary, serve_args, rnd, rows):
    data = os.path.join(work, f"data-{name}-{rnd}")
    shutil.rmtree(data, ignore_errors=True)
    log = os.path.join(work, f"{name}.log")
    extra = ["--wal-cache-bytes", str(args.cache_bytes)] + args.serve_arg + serve_args
    broker = Broker(binary, data, log, extra)
    try:
        broker.start()
        p = bench(args, broker, f"{name}-produce-{rnd}", "produce", "--topic", TOPIC,
                  "--partitions", str(PARTITIONS), "--messages", str(args.messages),
                  "--size", str(args.size))
        print(f"  round {rnd} {name:<10} produce {p['produce']['mb_per_s']:7.1f} MB/s", flush=True)
        broker.stop()
        cases = ["as-produced"]
        if not args.no_compact and (not args.compact or name in args.compact):
            cases += compact_cases(binary)
        for case in cases:
            note = ""
            if case in ("compacted", "regrouped"):
                cmd = [binary, "wal", "compact", data, "--live-percent", "100"]
                if case == "regrouped":
                    cmd.append("--regroup")
                t0 = time.time()
                out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
                last = out.strip().splitlines()[-1] if out.strip() else ""
                note = f"{' '.join(cmd[1:3] + cmd[4:])}: {time.time() - t0:.1f} s, {last}"
            dropped = drop_caches()
            broker.start()
            for i in range(args.consumes):
                c = bench(args, broker, f"{name}-{case}-{rnd}", "consume", "--topic", TOPIC)
                t = c["consume"]
                row = {"round": rnd, "binary": name, "case": case, "read": i + 1,
                       "messages": t["messages"], "mb_per_s": t["mb_per_s"],
                       "seconds": t["seconds"],
                       "cpu_s_per_gb": c.get("broker", {}).get("cpu_s_per_gb"),
                       "peak_rss_mb": c.get("broker", {}).get("peak_rss_bytes", 0) / 1e6,
                       "page_cache_dropped": dropped, "note": note}
                rows.append(row)
                ok = "" if t["messages"] == args.messages else f"  ONLY {t['messages']} messages"
                print(f"  round {rnd} {name:<10} {case:<12} read {i + 1}: {t['mb_per_s']:7.1f} MB/s"
                      f"  {row['cpu_s_per_gb'] or 0:.2f} CPU-s/GB  RSS {row['peak_rss_mb']:.0f} MB{ok}"
                      + (f"  ({note})" if note else ""), flush=True)
            broker.stop()
    finally:
        broker.stop()
        if not args.keep:
            shutil.rmtree(data, ignore_errors=True)


def summary(rows, first):
    def med(binary, case, rnd=None):
        v = [r["mb_per_s"] for r in rows if r["binary"] == binary and r["case"] == case
             and r["read"] == 1 and (rnd is None or r["round"] == rnd)]
        return statistics.median(v) if v else None

    keys = []
    for r in rows:
        if (r["binary"], r["case"]) not in keys:
            keys.append((r["binary"], r["case"]))
    rounds = sorted({r["round"] for r in rows})
    base = med(first, "as-produced")
    print()
    print(f"| binary | case | " + " | ".join(f"round {n}" for n in rounds)
          + f" | median MB/s | x {first} as-produced (median) | per-round ratios |")
    print("|---|---|" + "---|" * len(rounds) + "---|---|---|")
    for binary, case in keys:
        per = [med(binary, case, n) for n in rounds]
        ratios = []
        for n, v in zip(rounds, per):
            b = med(first, "as-produced", n)
            ratios.append(f"{v / b:.2f}" if v and b else "-")
        m = med(binary, case)
        print(f"| {binary} | {case} | " + " | ".join(f"{v:.0f}" if v else "-" for v in per)
              + f" | {m:.0f} | {m / base:.2f} | {' / '.join(ratios)} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--binary", action="append", required=True,
                    help="label=path [serve arguments] of a strata binary; the first is the "
                         "reference (repeatable)")
    ap.add_argument("--bench", required=True, help="strata-bench binary")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--messages", type=int, default=1_000_000)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--cache-bytes", type=int, default=8 * 1024 * 1024,
                    help="--wal-cache-bytes for the broker (default 8 MiB)")
    ap.add_argument("--consumes", type=int, default=1,
                    help="reads of the whole topic per broker start (the first counts)")
    ap.add_argument("--no-compact", action="store_true", help="skip the compaction cases")
    ap.add_argument("--compact", action="append", default=[],
                    help="run the compaction cases for this binary label only (repeatable; "
                         "default: every binary that has `wal compact`)")
    ap.add_argument("--serve-arg", action="append", default=[],
                    help="extra argument for `strata serve` (repeatable)")
    ap.add_argument("--work", help="directory for data dirs and logs (default: a new temp dir)")
    ap.add_argument("--keep", action="store_true", help="keep the data dirs")
    ap.add_argument("--json", help="write every row here")
    args = ap.parse_args()
    binaries = []
    for b in args.binary:
        name, _, spec = b.partition("=")
        words = spec.split()
        if not words:
            sys.exit(f"--binary {b}: expected label=path [serve arguments]")
        binaries.append((name, os.path.abspath(words[0]), words[1:]))
    work = args.work or tempfile.mkdtemp(prefix="strata-cold.")
    os.makedirs(work, exist_ok=True)
    print(f"work dir {work}; {args.messages} x {args.size} B to {PARTITIONS} partitions; "
          f"--wal-cache-bytes {args.cache_bytes}; {args.rounds} rounds", flush=True)
    rows = []
    for rnd in range(1, args.rounds + 1):
        order = binaries if rnd % 2 == 1 else list(reversed(binaries))
        for name, binary, serve_args in order:
            one_binary(args, work, name, binary, serve_args, rnd, rows)
        if args.json:
            with open(args.json, "w") as f:
                json.dump(rows, f, indent=1)
    summary(rows, binaries[0][0])


if __name__ == "__main__":
    main()
