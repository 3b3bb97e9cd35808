#!/usr/bin/env bash
# Installs what the tests need: kcat, curl, perl, make (Debian) and the Python
# clients (into .venv at the repo root). Idempotent, and quick when done.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" -ne 0 ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

# kcat for the client tests; curl for benches/run.sh (its smoke run is a test);
# perl and make build librdkafka for benches/loadgen.
missing=()
for tool in kcat curl perl make; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install: ${missing[*]} (apt)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    echo "install: python venv at .venv"
    "$PYTHON" -m venv .venv
fi
# Pinned versions: pip does nothing (and needs no network) when they are there.
if ! .venv/bin/python - <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
want = {}
for line in open("integration/requirements.txt"):
    line = line.split("#", 1)[0].strip()
    if line:
        name, ver = line.split("==")
        want[name] = ver
sys.exit(0 if all(version(n) == v for n, v in want.items()) else 1)
PY
then
    echo "install: python packages (integration/requirements.txt)"
    .venv/bin/python -m pip install -q --disable-pip-version-check -r integration/requirements.txt
fi
