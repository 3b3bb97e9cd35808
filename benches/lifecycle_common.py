"""Shared pieces of the data-lifecycle benchmarks (compaction_cost.py,
space_amplification.py, retained_memory.py): a broker process on its own
data dir and ports, /metrics scrapes, topic creation with configs, and
strata-bench runs.

Binaries: STRATA_BIN (default: $CARGO_TARGET_DIR/release/strata, then
./strata-bin) and STRATA_BENCH (default: $CARGO_TARGET_DIR/release/strata-bench).
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


def _first_existing(*paths: Path) -> Path:
    for p in paths:
        if p.exists():
            return p
    return paths[0]


STRATA = Path(os.environ.get("STRATA_BIN") or _first_existing(TARGET / "release" / "strata", REPO / "strata-bin"))
BENCH = Path(os.environ.get("STRATA_BENCH") or TARGET / "release" / "strata-bench")

MB = 1_000_000
MIB = 1024 * 1024


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


class Broker:
    """`strata serve` on `data_dir` with fixed ports across restarts."""

    def __init__(self, data_dir: Path, args: list[str] | tuple[str, ...] = (), log_path: Path | None = None):
        self.data_dir = Path(data_dir)
        self.port = free_port()
        self.http_port = free_port()
        self.args = list(args)
        self.log_path = log_path or self.data_dir.parent / f"{self.data_dir.name}.log"
        self.proc: subprocess.Popen | None = None
        self.ready_seconds = 0.0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def command(self, args: list[str] | None = None) -> list[str]:
        return [
            str(STRATA), "serve",
            "--data-dir", str(self.data_dir),
            "--listen", self.bootstrap,
            "--http-listen", f"127.0.0.1:{self.http_port}",
            "--group-initial-rebalance-delay-ms", "0",
            *(self.args if args is None else args),
        ]

    def start(self, args: list[str] | None = None, timeout: float = 300.0) -> float:
        """Starts the broker; returns the seconds from spawn to GET /ready = 200."""
        if args is not None:
            self.args = list(args)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        logf = open(self.log_path, "ab")
        env = dict(os.environ, NO_COLOR="1")
        t0 = time.monotonic()
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=logf,
                                     stderr=subprocess.STDOUT, env=env)
        logf.close()
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"strata exited with {self.proc.returncode}; see {self.log_path}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/ready", timeout=1) as r:
                    if r.status == 200:
                        break
            except (urllib.error.URLError, ConnectionError, OSError):
                pass
            if time.monotonic() - t0 > timeout:
                self.kill()
                raise RuntimeError(f"strata not ready within {timeout}s; see {self.log_path}")
            time.sleep(0.005)
        self.ready_seconds = time.monotonic() - t0
        return self.ready_seconds

    def stop(self, timeout: float = 120.0) -> int:
        """SIGTERM and wait."""
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise RuntimeError(f"strata did not exit within {timeout}s of SIGTERM")
        code = self.proc.returncode
        self.proc = None
        return code

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def scrape(self) -> dict[tuple[str, frozenset], float]:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http_port}/metrics", timeout=10) as r:
            text = r.read().decode()
        out = {}
        for line in text.splitlines():
            if not line or line.startswith("#"):
                continue
            head, value = line.rsplit(" ", 1)
            labels: frozenset = frozenset()
            if "{" in head:
                name, rest = head.split("{", 1)
                pairs = [p for p in rest.rstrip("}").split(",") if p]
                labels = frozenset(tuple(p.split("=", 1)) for p in pairs)
                labels = frozenset((k, v.strip('"')) for k, v in labels)
            else:
                name = head
            out[(name, labels)] = float(value)
        return out

    def rss_bytes(self) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""


def metric(m: dict, name: str, **labels) -> float:
    """One sample (0 if absent)."""
    return m.get((name, frozenset((k, str(v)) for k, v in labels.items())), 0.0)


def metric_sum(m: dict, name: str, **labels) -> float:
    """Sum of every sample of `name` whose labels include `labels`."""
    want = {(k, str(v)) for k, v in labels.items()}
    return sum(v for (n, ls), v in m.items() if n == name and want <= ls)


def create_topics(bootstrap: str, topics: dict[str, tuple[int, dict]]) -> None:
    """{name: (partitions, configs)} through confluent-kafka's AdminClient."""
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "broker.address.family": "v4"})
    fs = admin.create_topics([NewTopic(n, num_partitions=p, replication_factor=1, config=c)
                              for n, (p, c) in topics.items()], request_timeout=15)
    for f in fs.values():
        f.result(15)


def bench_cmd(broker: Broker, label: str, mode: str, *args: str) -> list[str]:
    return [str(BENCH), "--bootstrap", broker.bootstrap, "--broker-pid", str(broker.pid),
            "--label", label, "--json", mode, *args]


def run_bench(broker: Broker, label: str, mode: str, *args: str) -> dict:
    """One strata-bench run; its JSON report."""
    cmd = bench_cmd(broker, label, mode, *args)
    out = subprocess.run(cmd, check=True, capture_output=True, text=True)
    return json.loads(out.stdout)


def start_bench(broker: Broker, label: str, mode: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(bench_cmd(broker, label, mode, *args), stdout=subprocess.PIPE, text=True)


def finish_bench(p: subprocess.Popen) -> dict:
    out, _ = p.communicate()
    if p.returncode != 0:
        raise RuntimeError(f"strata-bench exited {p.returncode}")
    return json.loads(out)


def dir_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += os.stat(os.path.join(root, f)).st_size
            except FileNotFoundError:
                pass
    return total


def machine() -> dict:
    """The facts a report states about the machine."""
    cpu = "unknown"
    try:
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = 0
    for line in open("/proc/meminfo"):
        if line.startswith("MemTotal:"):
            mem = int(line.split()[1]) * 1024
    commit = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return {
        "cpu": cpu,
        "cpus": os.cpu_count(),
        "memory_gib": round(mem / 2**30, 1),
        "kernel": platform.release(),
        "commit": commit,
        "strata": str(STRATA),
    }


def fs_type(path: Path) -> str:
    out = subprocess.run(["findmnt", "-no", "FSTYPE", "-T", str(path)], capture_output=True, text=True)
    return out.stdout.strip()


def disk_free(path: Path) -> int:
    return shutil.disk_usage(path).free
