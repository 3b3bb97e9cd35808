"""Fixtures for the integration suite: the real `strata` binary, real clients.

`Broker` runs one broker process on free loopback ports with its own data
directory, captures its stderr to a file, and can stop (SIGTERM), kill -9 and
restart it on the same data dir and ports.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

import helpers

REPO = Path(__file__).resolve().parent.parent
BINARY = Path(os.environ.get(
    "STRATA_BIN", Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target")) / "release" / "strata"))

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 20.0

_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def free_port() -> int:
    """A loopback port that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Broker:
    """One `strata serve` process on its own data dir and loopback ports."""

    def __init__(
        self,
        workdir: Path,
        default_partitions: int = 1,
        auto_create_topics: bool = True,
        extra_args: tuple[str, ...] = (),
        group_initial_rebalance_delay_ms: int | None = 0,
    ):
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.data_dir = self.workdir / "data"
        self.port = free_port()
        self.http_port = free_port()
        while self.http_port == self.port:
            self.http_port = free_port()
        self.default_partitions = default_partitions
        self.auto_create_topics = auto_create_topics
        self.extra_args = tuple(extra_args)
        # The suite's groups form at once: a test does not wait out Kafka's
        # 3 s initial rebalance delay. None: the broker's default.
        self.group_initial_rebalance_delay_ms = group_initial_rebalance_delay_ms
        self.proc: subprocess.Popen | None = None
        self.runs = 0
        self.log_paths: list[Path] = []
        self.exit_codes: list[int] = []

    # ----------------------------------------------------------------- info
    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def wal_dir(self) -> Path:
        return self.data_dir / "wal"

    def wal_files(self) -> list[Path]:
        """WAL segments, oldest first."""
        return sorted(self.wal_dir.glob("*.wal"))

    def command(self) -> list[str]:
        return [
            str(BINARY),
            "serve",
            "--data-dir", str(self.data_dir),
            "--listen", self.bootstrap,
            "--advertised-listener", self.bootstrap,
            "--http-listen", f"127.0.0.1:{self.http_port}",
            "--default-partitions", str(self.default_partitions),
            "--auto-create-topics", "true" if self.auto_create_topics else "false",
            *([] if self.group_initial_rebalance_delay_ms is None else
              ["--group-initial-rebalance-delay-ms", str(self.group_initial_rebalance_delay_ms)]),
            *self.extra_args,
        ]

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_text(self, all_runs: bool = True) -> str:
        """The broker's stderr (ANSI colours removed): every run, or the current one."""
        paths = self.log_paths if all_runs else self.log_paths[-1:]
        parts = []
        for p in paths:
            try:
                parts.append(p.read_text(errors="replace"))
            except FileNotFoundError:
                pass
        return _ANSI.sub("", "".join(parts))

    # ------------------------------------------------------------ lifecycle
    def start(self) -> "Broker":
        assert not self.alive(), "broker already running"
        self.runs += 1
        log_path = self.workdir / f"strata-run{self.runs}.log"
        self.log_paths.append(log_path)
        env = dict(os.environ)
        env.setdefault("RUST_LOG", "info")
        env["NO_COLOR"] = "1"
        env.setdefault("RUST_BACKTRACE", "1")
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(
                self.command(),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=self.workdir,
            )
        self.wait_ready()
        return self

    def wait_ready(self, timeout: float = READY_TIMEOUT_S) -> None:
        """Until the Kafka listener answers an ApiVersions request."""
        deadline = time.monotonic() + timeout
        last_err: Exception | None = None
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(
                    f"strata exited with {self.proc.returncode} while starting;"
                    f" log:\n{self.log_text(all_runs=False)[-4000:]}"
                )
            try:
                versions = helpers.api_versions(self.port, timeout=2.0)
                if versions.error_code == 0 and versions.ranges:
                    return
                last_err = AssertionError(f"ApiVersions error {versions.error_code}")
            except OSError as e:  # refused, reset, timeout
                last_err = e
            time.sleep(0.05)
        self.kill9()
        raise AssertionError(
            f"strata not ready within {timeout}s ({last_err!r}); log:\n"
            f"{self.log_text(all_runs=False)[-4000:]}"
        )

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> int:
        """SIGTERM and wait; returns the exit code (fails if it does not exit)."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
                raise AssertionError(
                    f"strata did not exit within {timeout}s of SIGTERM; log tail:\n"
                    f"{self.log_text(all_runs=False)[-4000:]}"
                )
        code = self.proc.returncode
        self.exit_codes.append(code)
        return code

    def kill9(self) -> None:
        """SIGKILL: the process dies without any chance to flush or clean up."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)
        if self.proc is not None:
            self.exit_codes.append(self.proc.returncode)

    def restart(self) -> "Broker":
        """Stop (SIGTERM) if running, then start on the same data dir and ports."""
        if self.alive():
            code = self.stop()
            assert code == 0, f"strata exited {code} on SIGTERM"
        return self.start()

    def rss_bytes(self) -> int:
        """Resident memory of the broker process (Linux)."""
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
        return 0

    def cleanup(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                pass


# ------------------------------------------------------------------ fixtures
@pytest.fixture(scope="session", autouse=True)
def strata_binary() -> Path:
    """The release binary must exist: tests/run-all.sh builds it first."""
    if not BINARY.is_file() or not os.access(BINARY, os.X_OK):
        pytest.fail(
            f"{BINARY} is missing: run `cargo build --release --workspace` first"
            " (tests/run-all.sh does), or set STRATA_BIN",
            pytrace=False,
        )
    return BINARY


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    setattr(item, f"rep_{rep.when}", rep)


@pytest.fixture
def broker_factory(tmp_path, request):
    """Makes brokers (started); all are killed at the end of the test.

    When the test failed, the tail of each broker's log is printed (pytest
    shows it in the report).
    """
    made: list[Broker] = []

    def make(name: str = "broker", start: bool = True, **kwargs) -> Broker:
        b = Broker(tmp_path / name, **kwargs)
        made.append(b)
        if start:
            b.start()
        return b

    yield make
    for b in made:
        b.cleanup()
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        for b in made:
            lines = b.log_text().splitlines()
            print(f"---- strata log ({b.workdir.name}, {len(lines)} lines, last 80) ----")
            print("\n".join(lines[-80:]))


@pytest.fixture
def broker(broker_factory) -> Broker:
    """A running broker with default settings (1 partition, auto-create on)."""
    return broker_factory()


@pytest.fixture
def broker4(broker_factory) -> Broker:
    """A running broker whose auto-created topics have 4 partitions."""
    return broker_factory(default_partitions=4)
