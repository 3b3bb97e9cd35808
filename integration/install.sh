#!/usr/bin/env bash
# Installs what the tests need: kcat, curl, perl, make, promtool, Burrow and
# ZooKeeper (Debian) and the Python clients (into .venv at the repo root).
# Idempotent, and quick when done.
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
# promtool (in Debian's prometheus package) checks what /metrics serves.
need_promtool=0
command -v promtool >/dev/null 2>&1 || need_promtool=1
# Burrow (a consumer-lag monitor that reads __consumer_offsets) and the
# ZooKeeper it keeps its own state in, for test_burrow.py.
need_burrow=0
{ command -v Burrow >/dev/null 2>&1 && [ -f /usr/share/java/zookeeper.jar ]; } || need_burrow=1
if [ "${#missing[@]}" -gt 0 ] || [ "$need_promtool" -eq 1 ] || [ "$need_burrow" -eq 1 ]; then
    $SUDO apt-get update -qq
fi
if [ "${#missing[@]}" -gt 0 ]; then
    echo "install: ${missing[*]} (apt)"
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# Installs Debian packages whose postinst would start a server nothing here
# wants (prometheus on port 9090, burrow): without a policy-rc.d, one that
# refuses every start is put in place for the install and removed after;
# and the units are not enabled for the next boot either.
install_without_starting() {
    local units="$1"
    shift
    local policy=/usr/sbin/policy-rc.d
    local made_policy=0
    if [ ! -e "$policy" ]; then
        made_policy=1
        # Expanded now: the trap may run after this function returns.
        trap "$SUDO rm -f $policy" EXIT
        printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$policy" >/dev/null
        $SUDO chmod 755 "$policy"
    fi
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        "$@" >/dev/null
    if [ "$made_policy" -eq 1 ]; then
        $SUDO rm -f "$policy"
        trap - EXIT
    fi
    if [ -d /run/systemd/system ]; then
        for unit in $units; do
            $SUDO systemctl disable --now "$unit" >/dev/null 2>&1 || true
        done
    fi
}
if [ "$need_promtool" -eq 1 ]; then
    echo "install: promtool (apt: prometheus; its server is not started)"
    install_without_starting prometheus.service prometheus
fi
if [ "$need_burrow" -eq 1 ]; then
    # The tests run ZooKeeper themselves, on a loopback port; the zookeeper
    # package (unlike zookeeperd) has no service.
    echo "install: Burrow and ZooKeeper (apt: burrow zookeeper; Burrow's service is not started)"
    install_without_starting burrow.service burrow zookeeper
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
