#!/usr/bin/env bash
# Reproduces the figures in docs/benchmarks.md: starts a fresh etcd 3.4
# (/usr/bin/etcd) and a fresh tidemark on loopback, runs `tidemark bench ab`
# for put, range (linearizable) and txn, a 1-client put A/B, then
# `tidemark bench engines`; every result directory lands under $OUT.
# Usage: src/bench/scripts/docs-benchmarks.sh [OUT] (TIDEMARK_BIN overrides the binary)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../../.." && pwd)
TM=${TIDEMARK_BIN:-$ROOT/build/src/cli/tidemark}
OUT=${1:-$PWD/bench-docs}
DUR=${DUR:-3s}
REPS=${REPS:-3}
mkdir -p "$OUT"
WORK=$(mktemp -d /var/tmp/tidemark-docs-bench-XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; rm -rf "$WORK"; }
trap cleanup EXIT INT TERM

EP_A=127.0.0.1:24379 EP_B=127.0.0.1:24389
/usr/bin/etcd --name ref --data-dir "$WORK/etcd" --listen-client-urls "http://$EP_A" \
  --advertise-client-urls "http://$EP_A" --listen-peer-urls http://127.0.0.1:24380 \
  --initial-advertise-peer-urls http://127.0.0.1:24380 --initial-cluster ref=http://127.0.0.1:24380 \
  >"$OUT/etcd.log" 2>&1 &
pids+=($!)
"$TM" serve --data-dir "$WORK/tidemark" --listen-client-urls "http://$EP_B" \
  --advertise-client-urls "http://$EP_B" >"$OUT/tidemark.log" 2>&1 &
pids+=($!)
sleep 2

ab() {  # name, extra args...
  local name=$1; shift
  "$TM" bench ab --a "$EP_A" --b "$EP_B" --a-name etcd --b-name tidemark --test-mode \
    --duration "$DUR" --warmup 1s --reps "$REPS" --progress never --out "$OUT/$name" "$@" \
    | tee "$OUT/$name.txt"
}
ab put --workload put
ab range-l --workload range --consistency l --prefill --key-space 10000
ab txn --workload txn
ab put-1c --workload put --conns 1 --clients 1
ab watch --workload watch --watchers 1000 --watch-streams 10 --watched-keys 10 --put-rate 500 \
  --conns 10 --clients 10
"$TM" bench engines --clients 1 --duration "$DUR" --warmup 0.5s --reps "$REPS" \
  --key-space 10000 --prefill --progress never --out "$OUT/engines" | tee "$OUT/engines.txt"
echo "next: /usr/bin/python3 $ROOT/src/bench/scripts/make-benchmarks-md.py $OUT $ROOT/docs/benchmarks-data > $ROOT/docs/benchmarks.md"
echo "(src/bench/scripts/benchmarks-notes.md, the interpretation, is appended: update its figures)"
