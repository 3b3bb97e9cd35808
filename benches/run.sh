#!/usr/bin/env bash
# Builds release, starts strata on a temporary data dir, measures the
# machine's limits and runs the standard scenarios, then writes the figures,
# ratios, machine description and exact commands to docs/benchmarks.md.
#
#   benches/run.sh            full run (a few minutes), rewrites docs/benchmarks.md
#   benches/run.sh --smoke    seconds; checks the tool end to end, writes to $OUT
#
# Environment: CARGO_TARGET_DIR (shared target dir), OUT (report path),
# BENCH_DIR (where the data dir and results go; default a new temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$(pwd)

SMOKE=0
[[ "${1:-}" == "--smoke" ]] && SMOKE=1

TARGET=${CARGO_TARGET_DIR:-$REPO/target}
STRATA=$TARGET/release/strata
BENCH=$TARGET/release/strata-bench
if [[ -z "${STRATA_SKIP_BUILD:-}" ]]; then
    cargo build --release -j2 -p strata -p strata-bench
fi

WORK=${BENCH_DIR:-$(mktemp -d /tmp/strata-bench.XXXXXX)}
mkdir -p "$WORK/results"
RESULTS=$WORK/results
if (( SMOKE )); then OUT=${OUT:-$WORK/benchmarks.md}; else OUT=${OUT:-$REPO/docs/benchmarks.md}; fi

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
PORT=$(free_port)
HTTP=$(free_port)
BOOT=127.0.0.1:$PORT
PID=
COMMANDS=$RESULTS/commands.txt
: > "$COMMANDS"

start_broker() { # extra serve args...
    "$STRATA" serve --data-dir "$WORK/data" --listen "$BOOT" --http-listen "127.0.0.1:$HTTP" \
        --default-partitions 1 "$@" >> "$WORK/strata.log" 2>&1 &
    PID=$!
    for _ in $(seq 1 600); do
        curl -sf "http://127.0.0.1:$HTTP/ready" > /dev/null && return 0
        sleep 0.01
    done
    echo "strata did not become ready; log:" >&2; tail -20 "$WORK/strata.log" >&2; exit 1
}
stop_broker() { [[ -n "$PID" ]] && kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true; PID=; }
trap stop_broker EXIT

# run NAME ARGS...: one strata-bench run, JSON kept, table shown, command recorded.
run() {
    local name=$1; shift
    # Each run starts on a quiet disk: the previous run's writeback is done.
    sync; sleep 0.5
    local cmd=("$BENCH" --bootstrap "$BOOT" --broker-pid "$PID" --limits "$RESULTS/limits.json" --label "$name" "$@")
    echo "strata-bench --bootstrap \$BOOT --broker-pid \$PID --limits limits.json --label $name $*" >> "$COMMANDS"
    "${cmd[@]}" --json > "$RESULTS/$name.json"
    python3 - "$RESULTS/$name.json" <<'PY'
import json, sys
r = json.load(open(sys.argv[1]))
for k in ("produce", "consume"):
    if k in r:
        t = r[k]
        print(f"  {r['label']:<24} {k:<8} {t['msgs_per_s']:>12,.0f} msg/s {t['mb_per_s']:>9.1f} MB/s  errors {t['errors']}")
for k in ("ack_latency", "e2e_latency"):
    if k in r:
        l = r[k]
        print(f"  {r['label']:<24} {k:<12} p50 {l['p50_ms']:.2f} ms  p99 {l['p99_ms']:.2f} ms")
PY
}

if (( SMOKE )); then
    S1=2000; S2=5000; LAT_S=2; WARMUP=0.3; S4P=20; S6_BYTES=$((4 * 1024 * 1024)); DISK_MB=8; LOOP_MB=64
else
    S1=500000; S2=2000000; LAT_S=10; WARMUP=1; S4P=1000; S6_BYTES=$((1024 * 1024 * 1024)); DISK_MB=512; LOOP_MB=4096
fi

echo "== machine limits (data dir's file system: $WORK)"
"$BENCH" limits --dir "$WORK" --disk-mb "$DISK_MB" --loopback-mb "$LOOP_MB" --json > "$RESULTS/limits.json"
echo "strata-bench limits --dir \$DATA_DIR_FS --disk-mb $DISK_MB --loopback-mb $LOOP_MB --json > limits.json" >> "$COMMANDS"

start_broker
IDLE_RSS=$(awk '/VmRSS/ {print $2 * 1024}' "/proc/$PID/status")
echo "$IDLE_RSS" > "$RESULTS/idle_rss"

echo "== 1. steady: 1 KiB, 4 partitions, acks=all, one producer; then one consumer"
run s1-produce produce --topic s1 --partitions 4 --messages "$S1" --size 1024
run s1-consume consume --topic s1
run s1-consume-2 consume --topic s1 --consumers 2
# The same bytes in 10 KiB messages: the client's per-message cost out of the way.
run s1-produce-10k produce --topic s1big --partitions 4 --messages $((S1 / 10)) --size 10240
run s1-consume-10k consume --topic s1big

echo "== 2. small messages: 100 B, acks=all"
run s2-p1 produce --topic s2a --partitions 1 --messages "$S2" --size 100
run s2-p4 produce --topic s2b --partitions 4 --messages "$S2" --size 100

echo "== 3. latency at 50% of scenario 1's peak, and single-message acks=all"
RATE=$(python3 -c "import json; print(int(json.load(open('$RESULTS/s1-produce.json'))['produce']['msgs_per_s'] * 0.5))")
run s3-half-peak latency --topic s3 --partitions 4 --size 1024 --rate "$RATE" --messages $((RATE * LAT_S)) --linger-ms 1 --warmup-seconds "$WARMUP"
run s3-single latency --topic s3single --partitions 1 --size 1024 --rate 200 --messages $((200 * LAT_S)) --linger-ms 0 --warmup-seconds "$WARMUP"

echo "== 4. many partitions: $S4P partitions, scenario 1's load"
run s4-produce produce --topic s4 --partitions "$S4P" --messages "$S1" --size 1024

echo "== 5. burst: one producer at full speed while a group of 3 reads"
run s5-burst mixed --topic s5 --partitions 6 --messages "$S1" --size 1024 --consumers 3 --warmup-seconds "$WARMUP"

echo "== 6. recovery: kill -9 with unsealed WAL, time until ready"
stop_broker
rm -rf "$WORK/data"
start_broker --wal-segment-bytes $((S6_BYTES * 2))
S6_MSGS=$((S6_BYTES / 1024))
run s6-fill produce --topic s6 --partitions 4 --messages "$S6_MSGS" --size 1024
WAL_BYTES=$(du -sb "$WORK/data/wal" | cut -f1)
kill -9 "$PID"; wait "$PID" 2>/dev/null || true; PID=
T0=$(date +%s.%N)
start_broker --wal-segment-bytes $((S6_BYTES * 2))
T1=$(date +%s.%N)
python3 -c "import json; json.dump({'label': 's6-recovery', 'wal_bytes': $WAL_BYTES, 'ready_seconds': $T1 - $T0}, open('$RESULTS/s6-recovery.json', 'w'))"
echo "  recovery of $WAL_BYTES WAL bytes: ready in $(python3 -c "print(round($T1 - $T0, 3))") s"
echo "kill -9 the broker; time strata serve ... until GET /ready answers 200" >> "$COMMANDS"
stop_broker

echo "== machine limits again, after the scenarios (shared disks drift)"
"$BENCH" limits --dir "$WORK" --disk-mb "$DISK_MB" --loopback-mb "$LOOP_MB" --json > "$RESULTS/limits-after.json"
echo "strata-bench limits ... --json > limits-after.json   # the same, after the scenarios" >> "$COMMANDS"

python3 benches/report.py "$RESULTS" "$OUT" $( (( SMOKE )) && echo --smoke )
echo "report: $OUT"
