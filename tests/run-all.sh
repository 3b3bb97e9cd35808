#!/usr/bin/env bash
# The one test command: build, Rust tests, then the integration suite
# (real clients against the real binary). Non-zero exit on any failure.
# Extra arguments go to pytest, e.g. tests/run-all.sh -k kcat
set -euo pipefail
cd "$(dirname "$0")/.."

# kcat and the Python clients (skipped quickly when already installed).
if [ "${STRATA_SKIP_INSTALL:-0}" != "1" ]; then
    integration/install.sh
fi

echo "== cargo build --release --workspace"
cargo build --release --workspace -j2
echo "== cargo test --workspace"
cargo test --workspace -j2

echo "== integration suite (pytest)"
cd integration
set +e
../.venv/bin/python -m pytest -q -p no:cacheprovider "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests: treating as a failure" >&2
    exit 1
fi
exit "$rc"
