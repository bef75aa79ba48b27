#!/usr/bin/env bash
# Render benchmark: 1,000 generated actors with asya, and the equivalent kustomize
# base+overlays tree with `kubectl kustomize`, timed in the same run; prints the ratio.
# The tree (bases per transport and scaling shape, a `spot` Component, one overlay per
# actor with labels, image and JSON patches) is checked to print the same objects as asya:
# counts per kind and every object compared after sorting keys (`asya bench --same-as`).
#
#   bash crates/render/benches/kustomize.sh [N]        (N defaults to 1000)
#
# Uses $ASYA_BIN, else target/release/asya (built render-only with mimalloc if missing: see
# BENCHMARKS.md), and the `kubectl` on PATH (kustomize is built into kubectl >= 1.14).
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
cd "$ROOT"
N=${1:-1000}
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
ASYA=${ASYA_BIN:-$TARGET/release/asya}
if [ ! -x "$ASYA" ]; then
  cargo build --release -p asya-cli --no-default-features --features mimalloc >&2
fi
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
now() { date +%s.%N; }
ms() { echo "($2 - $1) * 1000" | bc -l | xargs printf '%.0f'; }
# CPU milliseconds (user + system) of a command, from /usr/bin/time.
cpu_ms() { awk '{printf "%.0f", ($1 + $2) * 1000}' "$1"; }

echo "== asya (in-process render of $N actors; YAML, then JSON serialisation)"
"$ASYA" bench --actors "$N" --flavors flavors --kustomize-dir "$TMP/tree"
"$ASYA" bench --actors "$N" --flavors flavors -o json

echo "== asya render -f actors/ ($N files, whole CLI process; 3 runs, each to a new file, median)"
# One run is noisy here: its system time (writing the new output file) varied 0.05-0.4 s.
for run in 1 2 3; do
  t0=$(now); /usr/bin/time -f "%U %S" -o "$TMP/asya.cpu" "$ASYA" render -f "$TMP/tree/actors" --flavors flavors > "$TMP/asya-$run.yaml"; t1=$(now)
  echo "$(ms "$t0" "$t1") $(cpu_ms "$TMP/asya.cpu") $(awk '{print $1 * 1000, $2 * 1000}' "$TMP/asya.cpu")" >> "$TMP/asya.runs"
  echo "asya render run $run: $(grep -c '^kind:' "$TMP/asya-$run.yaml") objects in $(tail -1 "$TMP/asya.runs" | awk '{printf "%s ms wall, %s ms CPU (user %s, system %s)", $1, $2, $3, $4}')"
done
cp "$TMP/asya-1.yaml" "$TMP/asya.yaml"
ASYA_MS=$(sort -n -k1 "$TMP/asya.runs" | sed -n 2p | cut -d' ' -f1)
ASYA_CPU=$(sort -n -k2 "$TMP/asya.runs" | sed -n 2p | cut -d' ' -f2)
echo "asya render median: ${ASYA_MS} ms wall, ${ASYA_CPU} ms CPU"

echo "== kubectl kustomize (4 bases, 1 component, $N overlays)"
t0=$(now); /usr/bin/time -f "%U %S" -o "$TMP/kust.cpu" kubectl kustomize "$TMP/tree" > "$TMP/kustomize.yaml"; t1=$(now)
KUST_MS=$(ms "$t0" "$t1"); KUST_CPU=$(cpu_ms "$TMP/kust.cpu")
echo "kubectl kustomize: $(grep -c '^kind:' "$TMP/kustomize.yaml") objects in ${KUST_MS} ms wall, ${KUST_CPU} ms CPU ($(kubectl version --client 2>/dev/null | grep -i kustomize || true))"

echo "== same objects? (counts per kind; every object compared after sorting keys)"
"$ASYA" bench --actors "$N" --flavors flavors --same-as "$TMP/kustomize.yaml" --same-as "$TMP/asya.yaml" | grep -v '^asya render:'

echo "== ratio kustomize / asya render: wall $(echo "$KUST_MS / ($ASYA_MS + 0.5)" | bc -l | xargs printf '%.1f')x, CPU $(echo "$KUST_CPU / ($ASYA_CPU + 0.5)" | bc -l | xargs printf '%.1f')x"
